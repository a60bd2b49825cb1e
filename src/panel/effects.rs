//! Did the help work? For each program and indicator of a served list of the earlier round: of
//! the households it served that were deprived in the indicator and continue in the later round,
//! how many no longer are, against comparable households deprived in it that were not served —
//! exact matching on province and need band (the number of deprivations), the served households'
//! strata weighting the comparison (the effect on the served). Observational: households were
//! not served at random in real data, and matching on province and need removes only the
//! differences those carry.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Serialize;

use super::Panel;
use crate::indicators::Edition;
use crate::{Error, Result};

/// One row of a served list: a household of the earlier round served by a program for an
/// indicator (an edition position).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Served {
    /// Household ID in the earlier round.
    pub household_id: u64,
    /// Program.
    pub program: String,
    /// The indicator addressed (position in the edition).
    pub indicator: usize,
}

/// Most rows one served list may have.
pub const MAX_SERVED_ROWS: usize = 50_000_000;

/// Reads a served list: CSV with `household_id`, `program` and `indicator` (the indicator's
/// TPMAP code such as `1.1`, its label such as `bmn12`, or its BMN number). Errors name the
/// file, row and column.
pub fn read_served(path: &Path, edition: &Edition) -> Result<Vec<Served>> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // Guarded against an endless record, and counting the lines a text editor shows.
    let (mut r, mut lines) = crate::ingest::source::counting_reader(
        Box::new(std::io::BufReader::new(file)),
        &mut csv::ReaderBuilder::new(),
        Some(b'#'),
    );
    let header: Vec<String> = r
        .headers()
        .map_err(|e| Error::Format { file: name.clone(), message: e.to_string() })?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let col = |c: &str| {
        header.iter().position(|h| h == c).ok_or_else(|| Error::Format {
            file: name.clone(),
            message: format!("column '{c}' is missing (household_id, program, indicator)"),
        })
    };
    let (hc, pc, ic) = (col("household_id")?, col("program")?, col("indicator")?);
    let mut out = Vec::new();
    for (n, rec) in r.records().enumerate() {
        let row = n as u64 + 1;
        let rec = rec.map_err(|e| Error::Format { file: name.clone(), message: format!("row {row}: {e}") })?;
        let line = lines.at(rec.position());
        if out.len() >= MAX_SERVED_ROWS {
            return Err(Error::Limit { file: name, message: format!("more than {MAX_SERVED_ROWS} rows") });
        }
        let bad = |column: &str, reason: &str| Error::InvalidRow {
            file: name.clone(),
            row,
            line,
            column: column.to_string(),
            reason: reason.to_string(),
        };
        let household_id = rec
            .get(hc)
            .and_then(|s| s.trim().parse::<crate::ids::HouseholdId>().ok())
            .ok_or_else(|| bad("household_id", "household ID must be 1 to 18 digits"))?
            .0;
        let program = rec.get(pc).map(str::trim).filter(|s| !s.is_empty()).ok_or_else(|| bad("program", "empty"))?;
        let text = rec.get(ic).map(str::trim).unwrap_or("");
        let indicator = (0..edition.len())
            .find(|&i| {
                let ind = edition.indicator(i);
                ind.label() == text || ind.code.as_deref() == Some(text) || ind.no.to_string() == text
            })
            .ok_or_else(|| bad("indicator", "not an indicator of the edition (a TPMAP code, bmnN or a number)"))?;
        out.push(Served { household_id, program: program.to_string(), indicator });
    }
    // A quote left open took in the lines after it: an error, not one row.
    lines.check_quotes_closed(path, Some(0))?;
    Ok(out)
}

/// The follow-up of one program and indicator.
#[derive(Clone, Debug, Serialize)]
pub struct Effect {
    /// Program.
    pub program: String,
    /// Indicator label.
    pub indicator: String,
    /// Households the list names for it (found in the earlier round).
    pub served: u64,
    /// ... deprived in the indicator then and continuing in the later round: the ones followed.
    pub followed: u64,
    /// ... of which no longer deprived in it.
    pub resolved: u64,
    /// Comparable households: deprived in it then, not served for it, continuing.
    pub comparison: u64,
    /// ... of which no longer deprived.
    pub comparison_resolved: u64,
    /// Followed households in a stratum (province × need band) with comparison households.
    pub matched: u64,
    /// Share resolved among the followed.
    pub rate_served: f64,
    /// Share resolved among the comparison households (all strata).
    pub rate_comparison: f64,
    /// The effect on the served: the served households' strata-weighted difference in the share
    /// resolved (percentage points as a fraction).
    pub effect: f64,
    /// Its standard error (strata independent, binomial within, with the Agresti–Caffo
    /// adjustment).
    pub se: f64,
    /// 95% confidence interval.
    pub ci_low: f64,
    /// See `ci_low`.
    pub ci_high: f64,
}

/// Need band of a household with `n` deprivations: 1, 2, 3, or 4 and more.
fn band(n: u32) -> u8 {
    n.clamp(1, 4) as u8
}

/// The follow-up of every program and indicator of `served`, and (when there are several) of
/// all of them together (program and indicator `all`, strata by indicator too). Rows for
/// households not in the earlier round are counted in nothing; their count is returned second.
pub fn effects(panel: &Panel, served: &[Served]) -> (Vec<Effect>, u64) {
    let t = &*panel.t;
    let x0 = t;
    let mut unknown = 0u64;
    // Served households per (program, indicator); households served for an indicator by any program.
    let mut groups: BTreeMap<(String, usize), Vec<usize>> = BTreeMap::new();
    let mut served_for: HashSet<(usize, usize)> = HashSet::new();
    for s in served {
        match t.household_of_key(crate::ids::HouseholdId(s.household_id)).map(|i| i as usize) {
            Some(i) => {
                groups.entry((s.program.clone(), s.indicator)).or_default().push(i);
                served_for.insert((i, s.indicator));
            }
            None => unknown += 1,
        }
    }
    let t1 = &panel.t1;
    // Whether household i (earlier) was deprived in indicator bit b and continues, and resolved it.
    let outcome = |i: usize, b: usize| -> Option<bool> {
        let bit = 1u64 << b;
        if t.households.fail[i] & bit == 0 {
            return None;
        }
        let j = panel.successor[i]? as usize;
        // The same indicator in the later round's edition (none: not followed).
        let later = 1u64 << panel.editions.later_of(b)?;
        Some(t1.households.fail[j] & later == 0)
    };
    let stratum =
        |i: usize, b: usize| (b, x0.households.village[i].province_number(), band(t.deprived(i).count_ones()));
    // The estimate for served (household, indicator) pairs against every unserved household
    // deprived in the same indicators.
    let estimate = |program: String, indicator: String, mut pairs: Vec<(usize, usize)>| -> Effect {
        pairs.sort_unstable();
        pairs.dedup();
        let mut s: BTreeMap<(usize, u8, u8), [u64; 4]> = BTreeMap::new();
        let (mut followed, mut resolved) = (0u64, 0u64);
        let mut bits: Vec<usize> = Vec::new();
        for &(i, b) in &pairs {
            if !bits.contains(&b) {
                bits.push(b);
            }
            if let Some(r) = outcome(i, b) {
                followed += 1;
                resolved += r as u64;
                let e = s.entry(stratum(i, b)).or_default();
                e[0] += 1;
                e[1] += r as u64;
            }
        }
        let (mut comparison, mut comparison_resolved) = (0u64, 0u64);
        for &b in &bits {
            for i in 0..x0.households.len() {
                // The outcome first: most households are not deprived in `b` (a bit test), and
                // the served set is a hash lookup.
                let Some(r) = outcome(i, b) else { continue };
                if !served_for.contains(&(i, b)) {
                    comparison += 1;
                    comparison_resolved += r as u64;
                    if let Some(e) = s.get_mut(&stratum(i, b)) {
                        e[2] += 1;
                        e[3] += r as u64;
                    }
                }
            }
        }
        let matched: u64 = s.values().filter(|e| e[2] > 0).map(|e| e[0]).sum();
        let (mut effect, mut var) = (0f64, 0f64);
        for e in s.values().filter(|e| e[2] > 0) {
            let w = e[0] as f64 / matched as f64;
            let (pt, pc) = (e[1] as f64 / e[0] as f64, e[3] as f64 / e[2] as f64);
            effect += w * (pt - pc);
            // Binomial variances with the Agresti–Caffo adjustment ((x + 1) / (n + 2)): a small
            // stratum where all or none resolved still has a variance.
            let adj = |x: u64, n: u64| (x as f64 + 1.0) / (n as f64 + 2.0);
            let (at, ac) = (adj(e[1], e[0]), adj(e[3], e[2]));
            var += w * w * (at * (1.0 - at) / e[0] as f64 + ac * (1.0 - ac) / e[2] as f64);
        }
        let se = var.sqrt();
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let some = |v: f64| if matched > 0 { v } else { f64::NAN };
        Effect {
            program,
            indicator,
            served: pairs.len() as u64,
            followed,
            resolved,
            comparison,
            comparison_resolved,
            matched,
            rate_served: ratio(resolved, followed),
            rate_comparison: ratio(comparison_resolved, comparison),
            effect: some(effect),
            se: some(se),
            ci_low: some(effect - 1.96 * se),
            ci_high: some(effect + 1.96 * se),
        }
    };
    let mut out = Vec::new();
    let mut all: Vec<(usize, usize)> = Vec::new();
    for ((program, b), rows) in groups {
        let pairs: Vec<(usize, usize)> = rows.iter().map(|&i| (i, b)).collect();
        all.extend_from_slice(&pairs);
        out.push(estimate(program, x0.edition.indicator(b).label(), pairs));
    }
    if out.len() > 1 {
        out.push(estimate("all".into(), "all".into(), all));
    }
    (out, unknown)
}
