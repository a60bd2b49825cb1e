//! The general Alkire–Foster entry point, for analysts with their own deprivation matrix.
//!
//! Input: a units table (CSV, Parquet or Excel) with one `0/1/na/empty` column per indicator
//! (`1` = deprived), optional area columns (coarsest first), an optional weight column (household
//! size, or a sampling weight), optional id, strata and PSU columns; and a spec table of
//! `dimension,indicator,weight` rows (weights as `1/15`, `0.0667` or `6.67%`).
//!
//! ```no_run
//! use tpmap::mpi::{MpiOptions, run};
//! let opts = MpiOptions { k: "1/3".parse()?, areas: vec!["province".into()], weight: Some("hh_size".into()), ..Default::default() };
//! let m = run("units.csv".as_ref(), "spec.csv".as_ref(), &opts)?;
//! println!("national M0 = {}", m.rows[0].m0);
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use crate::aggregate::{
    AggregateOptions, AreaRuns, Hierarchy, KeyColumn, LeafSums, Measures, leaf_sums, measures_of, measures_of_sums,
};
use crate::error::{Error, Result};
use crate::indicators::IndicatorStatus;
use crate::ingest::parse::{self, OneMeans};
use crate::ingest::source::Cell;
use crate::ingest::source::Table;
use crate::ingest::{IngestOptions, TableInput};
use crate::rational::Rational;
use crate::score::{Cutoff, ExactScorer, MissingPolicy, NaPolicy, Profiles, Spec, UnitScores, score};

/// Options of [`run`].
#[derive(Clone, Debug, Default)]
pub struct MpiOptions {
    /// Poverty cutoff (`"1/3".parse()?`, union or intersection).
    pub k: Cutoff,
    /// Area columns, coarsest first (nested: each inside the one before).
    pub areas: Vec<String>,
    /// Columns each giving a breakdown of its own, not nested (mpitb's `over(sex region)`): their
    /// rows have the column's name as their level, after the nested levels' rows.
    pub over: Vec<String>,
    /// Weight column.
    pub weight: Option<String>,
    /// Strata and PSU columns, for design-based standard errors.
    pub design: Option<(String, String)>,
    /// Not-applicable policy.
    pub na: NaPolicy,
    /// Missing policy.
    pub missing: MissingPolicy,
    /// Bootstrap replicates and seed.
    pub bootstrap: (usize, u64),
    /// A column naming each unit's round, when one table holds two rounds ([`measure_changes`]).
    pub round: Option<String>,
    /// A column whose value links a unit across rounds (a household id): the rounds are then a
    /// panel and changes get panel standard errors ([`crate::changes::panel_variances`]). With a
    /// bootstrap, it also keys each unit's replicate weights ([`AggregateOptions::unit_keys`]).
    pub unit_id: Option<String>,
}

/// Reads a spec table: `dimension,indicator,weight` (header required, any column order; UTF-8 or
/// TIS-620; `#` preamble lines skipped).
pub fn read_spec(path: &Path) -> Result<Vec<(String, String, Rational)>> {
    use crate::ingest::source::{CsvText, csv_error};
    let name = path.display().to_string();
    let mut text = CsvText::open(path, crate::ingest::Encoding::Auto)?;
    let mut rec = csv::StringRecord::new();
    let csv_err = |e| csv_error(path, e);
    if !text.reader.read_record(&mut rec).map_err(csv_err)? {
        return Err(Error::Format { file: name, message: "the spec is empty (no header)".into() });
    }
    let header: Vec<String> = rec.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
    let col = |n: &str| {
        header
            .iter()
            .position(|h| h == n)
            .ok_or_else(|| Error::Format { file: name.clone(), message: format!("spec needs a '{n}' column") })
    };
    let (d, i, w) = (col("dimension")?, col("indicator")?, col("weight")?);
    let mut out = Vec::new();
    let mut n = 0u64;
    while text.reader.read_record(&mut rec).map_err(csv_err)? {
        n += 1;
        let line = text.lines.at(rec.position());
        if out.len() >= 64 {
            return Err(Error::Format { file: name, message: "a spec has at most 64 indicators".into() });
        }
        let field = |k: usize| rec.get(k).unwrap_or("").trim();
        let weight = field(w).parse::<Rational>().map_err(|e| Error::InvalidRow {
            file: name.clone(),
            row: n,
            line,
            column: "weight".into(),
            reason: e.to_string(),
        })?;
        out.push((field(d).to_string(), field(i).to_string(), weight));
    }
    Ok(out)
}

/// Units read from a table, ready to score.
pub struct Units {
    /// Profiles, one bit per spec indicator (in spec order).
    pub profiles: Profiles,
    /// Area keys per level (coarsest first).
    pub area_keys: Vec<KeyColumn>,
    /// Keys of each `over` column.
    pub over_keys: Vec<KeyColumn>,
    /// Strata and PSU indices, if asked for.
    pub design: Option<(Vec<u32>, Vec<u32>)>,
    /// Each unit's round (index into `round_names`), when a round column was given.
    pub round: Vec<u32>,
    /// The round column's distinct values, in order of appearance.
    pub round_names: Vec<String>,
    /// Each unit's linking id (a stable 64-bit hash of its text), when a unit-id column was given.
    pub id: Vec<u64>,
}

impl Units {
    /// The units at `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Units {
        let pick = |v: &Vec<u64>| idx.iter().map(|&i| v[i]).collect::<Vec<u64>>();
        let keys = |k: &Vec<KeyColumn>| k.iter().map(|col| col.take(idx)).collect::<Vec<KeyColumn>>();
        Units {
            profiles: Profiles {
                fail: pick(&self.profiles.fail),
                na: pick(&self.profiles.na),
                missing: pick(&self.profiles.missing),
                present: self.profiles.present,
                weight: idx.iter().map(|&i| self.profiles.weight[i]).collect(),
            },
            area_keys: keys(&self.area_keys),
            over_keys: keys(&self.over_keys),
            design: self
                .design
                .as_ref()
                .map(|(st, ps)| (idx.iter().map(|&i| st[i]).collect(), idx.iter().map(|&i| ps[i]).collect())),
            round: if self.round.is_empty() { Vec::new() } else { idx.iter().map(|&i| self.round[i]).collect() },
            round_names: self.round_names.clone(),
            id: if self.id.is_empty() { Vec::new() } else { pick(&self.id) },
        }
    }
}

/// Reads the units table for the given indicator columns.
pub fn read_units(path: &Path, indicators: &[String], opts: &MpiOptions) -> Result<Units> {
    read_units_from(TableInput::File(path), indicators, opts)
}

/// Like [`read_units`], from a file or a polars frame.
pub fn read_units_from(input: TableInput<'_>, indicators: &[String], opts: &MpiOptions) -> Result<Units> {
    crate::in_pool(|| read_units_in_pool(input, indicators, opts, false)).map(|r| r.units)
}

/// Like [`read_units_from`], the area keys kept as runs of units ([`AreaRuns`]), not per unit:
/// the units' `area_keys` are left empty and the runs come beside them (when there are areas).
fn read_units_in_runs(input: TableInput<'_>, indicators: &[String], opts: &MpiOptions) -> Result<Read> {
    crate::in_pool(|| read_units_in_pool(input, indicators, opts, !opts.areas.is_empty()))
}

/// What [`read_units_in_pool`] read.
struct Read {
    units: Units,
    /// The area keys as runs of units, when asked for.
    runs: Option<AreaRuns>,
    /// Whether any cell was missing (else every missing mask is zero).
    missing_seen: bool,
}

fn read_units_in_pool(input: TableInput<'_>, indicators: &[String], opts: &MpiOptions, in_runs: bool) -> Result<Read> {
    let ing = IngestOptions::default();
    let mut src = Table::open(input, &ing)?;
    let name = src.name();
    let header = src.header().to_vec();
    let find = |c: &str| {
        header
            .iter()
            .position(|h| h.trim() == c)
            .ok_or_else(|| Error::Format { file: name.clone(), message: format!("no column '{c}'") })
    };
    let ind_cols: Vec<usize> = indicators.iter().map(|c| find(c)).collect::<Result<_>>()?;
    let area_cols: Vec<usize> = opts.areas.iter().map(|c| find(c)).collect::<Result<_>>()?;
    let over_cols: Vec<usize> = opts.over.iter().map(|c| find(c)).collect::<Result<_>>()?;
    let weight_col = opts.weight.as_deref().map(find).transpose()?;
    let round_col = opts.round.as_deref().map(find).transpose()?;
    let id_col = opts.unit_id.as_deref().map(find).transpose()?;
    let design_cols = opts.design.as_ref().map(|(s, p)| Ok::<_, Error>((find(s)?, find(p)?))).transpose()?;
    if indicators.len() > 64 {
        return Err(Error::Config(format!("at most 64 indicators, not {}", indicators.len())));
    }
    let used: Vec<usize> = ind_cols
        .iter()
        .chain(&area_cols)
        .chain(&over_cols)
        .copied()
        .chain(weight_col)
        .chain(round_col)
        .chain(id_col)
        .chain(design_cols.into_iter().flat_map(|(a, b)| [a, b]))
        .collect();
    src.check_types(&used)?;
    // Area columns stored as dictionaries are read as their indices, which say where the keys
    // change without a string per unit (nationally the four area columns were most of the
    // reading); the columns are then left out of the rows read below. Anything else (another
    // format or encoding, a null) is read with the rest, as before.
    let mut dictionary_runs = None;
    if in_runs {
        let mut fresh = AreaRuns::new(area_cols.len());
        let read = src.for_each_dictionary_group(&area_cols, &mut |chunks| {
            let values: Vec<&[String]> = chunks.iter().map(|c| c.values.as_slice()).collect();
            let changes: Vec<&[(usize, u32)]> = chunks.iter().map(|c| c.changes.as_slice()).collect();
            let rows = chunks.first().map_or(0, |c| c.rows);
            fresh.push_changes(&values, &changes, rows)
        })?;
        if read {
            dictionary_runs = Some(fresh);
        }
    }
    let areas_done = dictionary_runs.is_some();
    if areas_done {
        let rest: Vec<usize> = used.iter().copied().filter(|c| !area_cols.contains(c)).collect();
        src.only(&rest);
    } else {
        src.only(&used);
    }
    let mut u = Units {
        // One bit per indicator (at most 64: checked above).
        profiles: Profiles {
            present: u64::MAX.checked_shr(64 - indicators.len() as u32).unwrap_or(0),
            ..Default::default()
        },
        area_keys: vec![KeyColumn::default(); if in_runs { 0 } else { area_cols.len() }],
        over_keys: vec![KeyColumn::default(); over_cols.len()],
        design: design_cols.map(|_| (Vec::new(), Vec::new())),
        round: Vec::new(),
        round_names: Vec::new(),
        id: Vec::new(),
    };
    let mut runs = match dictionary_runs {
        Some(r) => Some(r),
        None => in_runs.then(|| AreaRuns::new(area_cols.len())),
    };
    let mut area_text = vec![String::new(); area_cols.len()];
    let mut interned: [HashMap<String, u32>; 2] = [HashMap::new(), HashMap::new()];
    let mut rounds: HashMap<String, u32> = HashMap::new();
    let mut text = String::new();
    // Room for the rows the source claims (a hint, capped): no copies while the columns grow.
    let hint = src.rows_hint();
    let p = &mut u.profiles;
    p.fail.reserve(hint);
    p.weight.reserve(hint);
    // Not-applicable and missing statuses are rare: their masks are written only once one
    // appears (at the national scale each mask is 103 MB of pages to fault in and fill with zeros).
    let (mut na_masks, mut missing_masks) = (SparseMasks::default(), SparseMasks::default());
    for k in u.area_keys.iter_mut().chain(u.over_keys.iter_mut()) {
        k.codes.reserve(hint);
    }
    let mut missing: Vec<u64> = Vec::new();
    src.for_each(&mut |b, first_row| {
        // Statuses a block of rows at a time, the blocks shared between the cores: a block's
        // masks stay in the cache while every column is OR-ed into them (a whole batch's did not:
        // 17 passes over 8 MB). A column whose cells are not all 0/1 (text, or a bad value that
        // must be named) is read cell by cell below.
        const BLOCK: usize = 1 << 14;
        let n = b.len();
        let start = u.profiles.fail.len();
        crate::extend_zeroed(&mut u.profiles.fail, n, 0);
        // One buffer for every batch's missing masks: fresh zero pages each batch cost faults.
        missing.clear();
        missing.resize(n, 0);
        // Status columns of bytes without nulls (as tpmap writes them), in runs of consecutive
        // bits: eight statuses packed into a byte, then OR-ed into the masks once per eight
        // columns instead of once per column.
        let bytes: Vec<(u32, &[u8])> =
            ind_cols.iter().zip(0u32..).filter_map(|(&c, bit)| b.u8_column(c).map(|v| (bit, v))).collect();
        // Each block also says whether it saw a missing cell (checked while it is in the cache).
        let (mut by_cell, any_missing): (Vec<(usize, usize)>, bool) = u.profiles.fail[start..]
            .par_chunks_mut(BLOCK)
            .zip(missing.par_chunks_mut(BLOCK))
            .enumerate()
            .map(|(k, (f, m))| {
                let done = packed_statuses(&bytes, k * BLOCK, f);
                let mut cells = Vec::new();
                for (bit, &c) in ind_cols.iter().enumerate() {
                    if done & (1 << bit) == 0 && !b.fail_column(c, bit as u32, k * BLOCK, f, m) {
                        cells.push((bit, c));
                    }
                }
                (cells, m.iter().any(|&x| x != 0))
            })
            .reduce(
                || (Vec::new(), false),
                |(mut a, x), (b, y)| {
                    a.extend(b);
                    (a, x || y)
                },
            );
        by_cell.sort_unstable();
        by_cell.dedup();
        // Whole columns of weights and text keys at once where their types allow (the key
        // columns in parallel: each has its own codes).
        // Weights straight into the profiles' column (zeroed on every core first: fresh pages);
        // taken back off when the column is not all numbers, and read cell by cell below.
        let weights_read = weight_col.is_some_and(|c| {
            let at = u.profiles.weight.len();
            crate::extend_zeroed(&mut u.profiles.weight, n, 0.0);
            let read = b.number_column(c, &mut u.profiles.weight[at..]);
            if !read {
                u.profiles.weight.truncate(at);
            }
            read
        });
        let areas_read = match runs.as_mut() {
            Some(_) if areas_done => true,
            Some(runs) => match area_cols.iter().map(|&c| b.text_column(c)).collect::<Option<Vec<_>>>() {
                Some(columns) => runs.push_arrays(&columns)?,
                None => false,
            },
            None => true,
        };
        let keys_read: Vec<bool> = u
            .area_keys
            .iter_mut()
            .zip(&area_cols)
            .chain(u.over_keys.iter_mut().zip(&over_cols))
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|(keys, &c)| match b.text_column(c) {
                Some(a) => keys.push_array(a).map(|()| true),
                None => Ok(false),
            })
            .collect::<Result<_>>()?;
        let whole_columns = by_cell.is_empty()
            && (weight_col.is_none() || weights_read)
            && keys_read.iter().all(|&k| k)
            && areas_read
            && round_col.is_none()
            && id_col.is_none()
            && u.design.is_none();
        if whole_columns {
            // Nothing left to read cell by cell: the batch's columns as they are.
            let p = &mut u.profiles;
            na_masks.zeros(n);
            match any_missing {
                true => missing_masks.extend(&missing),
                false => missing_masks.zeros(n),
            }
            if weight_col.is_none() {
                p.weight.resize(p.weight.len() + n, 1.0);
            }
            return Ok(());
        }
        // `missing` holds the batch's rows' missing masks, one a row.
        for (r, &missing_mask) in missing.iter().enumerate() {
            let row = first_row + r as u64;
            let err = |c: usize, reason: String| Error::InvalidRow {
                file: name.clone(),
                row,
                line: b.line(r),
                column: header[c].clone(),
                reason,
            };
            let (mut f, mut na, mut m) = (u.profiles.fail[start + r], 0u64, missing_mask);
            for &(bit, c) in &by_cell {
                let cell = b.cell(r, c);
                match parse::status(cell, OneMeans::Fail) {
                    Ok(IndicatorStatus::Fail) => f |= 1 << bit,
                    Ok(IndicatorStatus::NotApplicable) => na |= 1 << bit,
                    Ok(IndicatorStatus::Missing) => m |= 1 << bit,
                    Ok(IndicatorStatus::Pass) => {}
                    Err(reason) => {
                        return Err(err(c, format!("{} (found {})", reason.describe(), cell.status_problem())));
                    }
                }
            }
            // `None`: the batch's weights are in the column already.
            let w = match weight_col {
                Some(_) if weights_read => None,
                Some(c) => Some(
                    parse::number(b.cell(r, c))
                        .map_err(|reason| err(c, reason.describe().into()))?
                        .ok_or_else(|| err(c, "weight is empty".into()))?,
                ),
                None => Some(1.0),
            };
            u.profiles.fail[start + r] = f;
            na_masks.push(na);
            missing_masks.push(m);
            if let Some(w) = w {
                u.profiles.weight.push(w);
            }
            for (k, (keys, &c)) in
                u.area_keys.iter_mut().zip(&area_cols).chain(u.over_keys.iter_mut().zip(&over_cols)).enumerate()
            {
                if keys_read[k] {
                    continue;
                }
                match b.cell(r, c) {
                    Cell::Str(s) => keys.push(s)?,
                    cell => {
                        text.clear();
                        cell.write_text(&mut text);
                        keys.push(&text)?;
                    }
                }
            }
            if let (Some(runs), false) = (runs.as_mut(), areas_read) {
                for (text, &c) in area_text.iter_mut().zip(&area_cols) {
                    text.clear();
                    b.cell(r, c).write_text(text);
                }
                runs.push(area_text.iter().map(String::as_str))?;
            }
            if let Some(c) = round_col {
                let key = match b.cell(r, c) {
                    Cell::Null => return Err(err(c, "the round is empty".into())),
                    cell => cell.to_text(),
                };
                let next = rounds.len() as u32;
                let k = *rounds.entry(key).or_insert_with_key(|key| {
                    u.round_names.push(key.clone());
                    next
                });
                u.round.push(k);
            }
            if let Some(c) = id_col {
                match b.cell(r, c) {
                    // The id itself is never kept or shown: only its hash links the rounds.
                    Cell::Null => return Err(err(c, "the unit id is empty".into())),
                    cell => u.id.push(crate::stable_hash(cell.to_text().trim().as_bytes())),
                }
            }
            if let (Some((sc, pc)), Some((st, ps))) = (design_cols, u.design.as_mut()) {
                for (k, (c, out)) in [(sc, st), (pc, ps)].into_iter().enumerate() {
                    let key = b.cell(r, c).to_text();
                    let next = interned[k].len() as u32;
                    out.push(*interned[k].entry(key).or_insert(next));
                }
            }
        }
        Ok(())
    })?;
    if let Some(r) = runs.as_ref().filter(|_| areas_done)
        && r.units() != u.profiles.fail.len()
    {
        return Err(Error::Format {
            file: name,
            message: format!(
                "its area columns hold {} rows and its other columns {}: the file is damaged",
                r.units(),
                u.profiles.fail.len()
            ),
        });
    }
    let missing_seen = missing_masks.any();
    u.profiles.na = na_masks.finish();
    u.profiles.missing = missing_masks.finish();
    Ok(Read { units: u, runs, missing_seen })
}

/// Sets the fail bits of rows `start..start + fail.len()` from status columns of bytes
/// (`(bit, column)`, bits increasing), every value 0 or 1; returns the bits set this way. A
/// column with another value in these rows is left alone (its bit is not in the answer: the
/// caller reads it the usual way, which names the value). Consecutive bits are packed eight to a
/// byte first: a byte OR is sixteen statuses an instruction here, a widening to 64 bits is not.
fn packed_statuses(columns: &[(u32, &[u8])], start: usize, fail: &mut [u64]) -> u64 {
    const MAX_BLOCK: usize = 1 << 14;
    let len = fail.len();
    if len > MAX_BLOCK || columns.iter().any(|(bit, _)| *bit >= 64) {
        return 0;
    }
    let mut done = 0u64;
    let mut packed = [0u8; MAX_BLOCK];
    let mut i = 0;
    while let Some(&(first, _)) = columns.get(i) {
        // The run of columns at bits first, first + 1, ... (at most eight).
        let mut width = 0u32;
        while width < 8 && columns.get(i + width as usize).is_some_and(|&(bit, _)| bit == first + width) {
            width += 1;
        }
        let j = i + width as usize;
        let packed = &mut packed[..len];
        packed.fill(0);
        let mut any = false;
        for (shift, &(bit, values)) in columns[i..j].iter().enumerate() {
            let Some(values) = values.get(start..start + len) else { continue };
            if values.iter().fold(0u8, |a, &v| a | v) > 1 {
                continue;
            }
            for (p, &v) in packed.iter_mut().zip(values) {
                *p |= v << shift;
            }
            done |= 1 << bit;
            any = true;
        }
        if any {
            for (f, &p) in fail.iter_mut().zip(packed.iter()) {
                *f |= u64::from(p) << first;
            }
        }
        i = j;
    }
    done
}

/// A column of status masks that stays unwritten while every mask is zero: once one is not, the
/// zeros before it are written and the column grows as any vector. [`SparseMasks::finish`] on a
/// column of zeros allocates it zeroed, which the allocator takes from fresh pages of the system
/// without writing them.
#[derive(Default)]
struct SparseMasks {
    masks: Vec<u64>,
    len: usize,
}

impl SparseMasks {
    fn written(&mut self) -> &mut Vec<u64> {
        if self.masks.len() < self.len {
            self.masks.resize(self.len, 0);
        }
        &mut self.masks
    }
    fn zeros(&mut self, n: usize) {
        self.len += n;
    }
    fn extend(&mut self, masks: &[u64]) {
        if !self.masks.is_empty() || masks.iter().any(|&m| m != 0) {
            self.written().extend_from_slice(masks);
        }
        self.len += masks.len();
    }
    fn push(&mut self, mask: u64) {
        if mask != 0 || !self.masks.is_empty() {
            self.written().push(mask);
        }
        self.len += 1;
    }
    /// Whether any mask is not zero.
    fn any(&self) -> bool {
        !self.masks.is_empty()
    }
    fn finish(mut self) -> Vec<u64> {
        if self.masks.is_empty() {
            return vec![0; self.len];
        }
        self.written();
        self.masks
    }
}

/// Reads a spec and a units table and computes the measures at every level.
pub fn run(data: &Path, spec_path: &Path, opts: &MpiOptions) -> Result<Measures> {
    run_timed(data, spec_path, opts).map(|(m, _)| m)
}

/// Writes the measures (`measures.{csv,parquet,json}`) and the timing (`timing.json`) into `out`,
/// all at once at the end ([`crate::output::Staging`]).
pub fn write(out: &Path, measures: &Measures, timing: &Timing) -> Result<()> {
    let m = measures;
    let stage = crate::output::Staging::new(out)?;
    m.write(stage.path())?;
    let path = stage.path().join("timing.json");
    std::fs::write(&path, serde_json::to_string_pretty(timing)?).map_err(|e| Error::io(&path, e))?;
    stage.commit()
}

/// Writes two rounds and their changes into `out`: each round's measures in `t0/` and `t1/`,
/// `changes.{csv,parquet,json}` ([`crate::changes`]) and `timing.json` (the rounds' names, units,
/// whether the SEs are panel ones, seconds), all at once at the end.
pub fn write_changes(out: &Path, rounds: &Rounds) -> Result<()> {
    let stage = crate::output::Staging::new(out)?;
    rounds.measures[0].write(&stage.path().join("t0"))?;
    rounds.measures[1].write(&stage.path().join("t1"))?;
    crate::changes::write(stage.path(), &rounds.changes)?;
    let path = stage.path().join("timing.json");
    let info = serde_json::json!({
        "rounds": rounds.names,
        "units": rounds.units,
        "standard_errors": if rounds.panel { "panel" } else { "independent samples" },
        "seconds": rounds.seconds,
    });
    std::fs::write(&path, serde_json::to_string_pretty(&info)?).map_err(|e| Error::io(&path, e))?;
    stage.commit()
}

/// Seconds spent by [`run_timed`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct Timing {
    /// Reading the spec and the units.
    pub read_seconds: f64,
    /// Scoring and all levels' measures, with the data in memory.
    pub measure_seconds: f64,
    /// Units read.
    pub units: usize,
}

/// Like [`run`], also timing reading and computing separately.
pub fn run_timed(data: &Path, spec_path: &Path, opts: &MpiOptions) -> Result<(Measures, Timing)> {
    let t0 = std::time::Instant::now();
    let rows = read_spec(spec_path)?;
    let (m, mut t) = measure(TableInput::File(data), rows, opts)?;
    t.read_seconds = t0.elapsed().as_secs_f64() - t.measure_seconds; // the spec file counts as reading
    Ok((m, t))
}

/// Alkire–Foster measures at every level for a units table (file or polars frame) and spec rows
/// `(dimension, indicator column, weight)`.
///
/// ```
/// use polars::prelude::*;
/// use tpmap::ingest::TableInput;
/// use tpmap::mpi::{measure, MpiOptions};
/// let units = df!("area" => ["a", "a", "b"], "water" => [1, 0, 1], "school" => [1, 0, 0])?;
/// let spec = vec![
///     ("living".to_string(), "water".to_string(), "1/2".parse()?),
///     ("education".to_string(), "school".to_string(), "1/2".parse()?),
/// ];
/// let opts = MpiOptions { k: "1/2".parse()?, areas: vec!["area".into()], ..Default::default() };
/// let (m, _) = measure(TableInput::Frame(&units, "units"), spec, &opts)?;
/// assert_eq!(m.rows[0].poor, 2.0); // two of three units are deprived in at least half the weight
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn measure(
    data: TableInput<'_>,
    rows: Vec<(String, String, Rational)>,
    opts: &MpiOptions,
) -> Result<(Measures, Timing)> {
    let t0 = std::time::Instant::now();
    let mut lap = crate::diagnostics::Lap::start();
    let (spec, labels) = spec_of(rows, opts)?;
    let Read { units, runs, missing_seen } = read_units_in_runs(data, &labels, opts)?;
    lap.lap("units read");
    let read_seconds = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    let n_units = units.profiles.len();
    let m = match runs {
        Some(runs) => {
            let h = Hierarchy::from_runs(opts.areas.clone(), runs)?;
            lap.lap("areas grouped");
            measure_grouped(units, h, &spec, opts, missing_seen)?
        }
        None => measure_units(units, &spec, opts)?,
    };
    lap.lap("inputs freed");
    Ok((m, Timing { read_seconds, measure_seconds: t1.elapsed().as_secs_f64(), units: n_units }))
}

/// The partial result ([`crate::partial`]) of a units table (file or polars frame): what
/// [`measure`] computes, as per-area sums that [`crate::partial::merge`] adds up exactly with
/// other parts' (for example one province per run). Breakdowns (`over`), bootstrap and design
/// options are refused: a version-1 partial does not carry them.
pub fn partial(
    data: TableInput<'_>,
    rows: Vec<(String, String, Rational)>,
    opts: &MpiOptions,
) -> Result<crate::partial::Partial> {
    if !opts.over.is_empty() || opts.round.is_some() {
        return Err(Error::Config("partial results carry no breakdowns (--over) or rounds (--round)".into()));
    }
    let (spec, labels) = spec_of(rows, opts)?;
    let units = read_units_from(data, &labels, opts)?;
    let h = if opts.areas.is_empty() {
        Hierarchy::country(units.profiles.len())
    } else {
        Hierarchy::from_columns(opts.areas.clone(), units.area_keys)?
    };
    let unit_keys = (opts.bootstrap.0 > 0 && !units.id.is_empty()).then(|| units.id.clone());
    let agg = AggregateOptions { bootstrap: opts.bootstrap, design: units.design, unit_keys, ..Default::default() };
    match ExactScorer::new(&units.profiles, &spec)? {
        Some(exact) => crate::partial::Partial::of_units(&units.profiles, &spec, &exact, &h, &agg),
        None => crate::partial::Partial::of(&units.profiles, &spec, &score(&units.profiles, &spec)?, &h, &agg),
    }
}

/// The spec of `rows` under `opts` (cutoff, not-applicable and missing policies).
fn spec_of(rows: Vec<(String, String, Rational)>, opts: &MpiOptions) -> Result<(Spec, Vec<String>)> {
    if rows.is_empty() || rows.len() > 64 {
        return Err(Error::Config(format!("a spec has 1 to 64 indicators, this one has {}", rows.len())));
    }
    let labels: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
    let mut spec =
        Spec::from_weights(rows.into_iter().enumerate().map(|(i, (d, ind, w))| (i, d, ind, w)).collect(), opts.k)?;
    spec.na = opts.na;
    spec.missing = opts.missing;
    Ok((spec, labels))
}

/// The measures of units already read.
fn measure_units(mut units: Units, spec: &Spec, opts: &MpiOptions) -> Result<Measures> {
    let mut lap = crate::diagnostics::Lap::start();
    let h = if opts.areas.is_empty() {
        Hierarchy::country(units.profiles.len())
    } else {
        Hierarchy::from_columns(opts.areas.clone(), std::mem::take(&mut units.area_keys))?
    };
    lap.lap("areas grouped");
    measure_grouped(units, h, spec, opts, true)
}

/// The measures of `units` grouped as `h` (its areas, then each `over` breakdown);
/// `missing_seen` false when the reader saw no missing cell.
fn measure_grouped(units: Units, h: Hierarchy, spec: &Spec, opts: &MpiOptions, missing_seen: bool) -> Result<Measures> {
    let mut lap = crate::diagnostics::Lap::start();
    // With a unit-id column, replicate weights follow the unit, not its row.
    let unit_keys = (opts.bootstrap.0 > 0 && !units.id.is_empty()).then(|| units.id.clone());
    let agg = AggregateOptions { bootstrap: opts.bootstrap, design: units.design, unit_keys, ..Default::default() };
    let over: Vec<(String, KeyColumn)> = opts.over.iter().cloned().zip(units.over_keys).collect();
    for (i, (name, _)) in over.iter().enumerate() {
        if h.levels.contains(name) || over[..i].iter().any(|(n, _)| n == name) {
            return Err(Error::Config(format!("'{name}' is given twice as a breakdown")));
        }
    }
    // Exact scores are worked out as the units are added, not stored first.
    let (sums, breakdowns) = match ExactScorer::new(&units.profiles, spec)? {
        Some(exact) if !missing_seen => {
            sums_and_breakdowns(&units.profiles, spec, &exact.with_no_missing_cells(), &h, over, &agg)?
        }
        Some(exact) => sums_and_breakdowns(&units.profiles, spec, &exact, &h, over, &agg)?,
        None => {
            let s = score(&units.profiles, spec)?;
            lap.lap("scored");
            sums_and_breakdowns(&units.profiles, spec, &s, &h, over, &agg)?
        }
    };
    lap.lap("leaf sums");
    // The units are freed before the levels' rows are made, so those rows (120 MB nationally)
    // take memory already mapped rather than fresh pages that the kernel must zero first.
    drop(units.profiles);
    lap.lap("units freed");
    let mut m = measures_of_sums(spec, &h, &sums);
    // Each `over` column is a breakdown of its own: its groups' rows (not its country row) follow.
    for (name, extra) in breakdowns {
        let at = m.levels.len();
        m.levels.push(name);
        for mut row in extra.rows.into_iter().skip(1) {
            let key = row.path.pop().flatten();
            row.path = vec![None; at - 1];
            row.path.push(key);
            m.rows.push(row);
        }
    }
    Ok(m)
}

/// The per-leaf sums of `h`'s areas, and each `over` column's breakdown measured whole: all
/// that needs the units.
fn sums_and_breakdowns(
    profiles: &Profiles,
    spec: &Spec,
    s: &impl UnitScores,
    h: &Hierarchy,
    over: Vec<(String, KeyColumn)>,
    agg: &AggregateOptions,
) -> Result<(LeafSums, Vec<(String, Measures)>)> {
    let sums = crate::in_pool(|| leaf_sums(profiles, spec, s, h, agg))?;
    let breakdowns = over
        .into_iter()
        .map(|(name, keys)| {
            let extra = measures_of(profiles, spec, s, &Hierarchy::from_columns(vec![name.clone()], vec![keys])?, agg)?;
            Ok((name, extra))
        })
        .collect::<Result<_>>()?;
    Ok((sums, breakdowns))
}

/// Two rounds measured and compared ([`measure_changes`]).
#[derive(Clone, Debug)]
pub struct Rounds {
    /// The two rounds' names (the round column's values, earlier first; or `t0`, `t1`).
    pub names: [String; 2],
    /// Each round's measures.
    pub measures: [Measures; 2],
    /// The changes from the first round to the second ([`crate::changes`]).
    pub changes: Vec<crate::changes::Change>,
    /// Whether the standard errors of the changes are panel ones (a unit id linked the rounds).
    pub panel: bool,
    /// Units read in each round.
    pub units: [usize; 2],
    /// Seconds reading and computing.
    pub seconds: f64,
}

/// Alkire–Foster changes over time between two rounds: `data` holds both (its
/// [`MpiOptions::round`] column says which; exactly two distinct values, ordered as numbers when
/// both are numbers, else as text) or, with `then`, each table holds one round. With
/// [`MpiOptions::unit_id`] the rounds are a panel and the changes' standard errors take the
/// covariance into account; otherwise they are independent samples. `years` gives annualised
/// changes. Row numbers in errors are the rows of the file read.
pub fn measure_changes(
    data: TableInput<'_>,
    then: Option<TableInput<'_>>,
    rows: Vec<(String, String, Rational)>,
    opts: &MpiOptions,
    years: Option<f64>,
) -> Result<Rounds> {
    let t = std::time::Instant::now();
    let (spec, labels) = spec_of(rows, opts)?;
    let name = match &data {
        TableInput::File(p) => p.display().to_string(),
        TableInput::Frame(_, n) => n.to_string(),
    };
    let (u0, u1, names) = match then {
        Some(then) => {
            if opts.round.is_some() {
                return Err(Error::Config("give a round column or a second table, not both".into()));
            }
            let u0 = read_units_from(data, &labels, opts)?;
            let u1 = read_units_from(then, &labels, opts)?;
            (u0, u1, ["t0".to_string(), "t1".to_string()])
        }
        None => {
            let Some(col) = opts.round.as_deref() else {
                return Err(Error::Config("changes over time need a round column or a second table".into()));
            };
            let all = read_units_from(data, &labels, opts)?;
            if all.round_names.len() != 2 {
                return Err(Error::Format {
                    file: name,
                    message: format!(
                        "the round column '{col}' has {} distinct values; changes over time need exactly two",
                        all.round_names.len()
                    ),
                });
            }
            let rn = &all.round_names;
            let later_first = match (rn[0].trim().parse::<f64>(), rn[1].trim().parse::<f64>()) {
                (Ok(a), Ok(b)) => a > b,
                _ => rn[0] > rn[1],
            };
            let (r0, r1) = if later_first { (1, 0) } else { (0, 1) };
            let idx = |r: u32| (0..all.round.len()).filter(|&i| all.round[i] == r).collect::<Vec<_>>();
            let (u0, u1) = (all.subset(&idx(r0)), all.subset(&idx(r1)));
            (u0, u1, [rn[r0 as usize].clone(), rn[r1 as usize].clone()])
        }
    };
    let units = [u0.profiles.len(), u1.profiles.len()];
    let panel = opts.unit_id.is_some();
    let combined = panel.then(|| concat(&u0, &u1)).transpose()?;
    let m0 = measure_units(u0, &spec, opts)?;
    let m1 = measure_units(u1, &spec, opts)?;
    let mut changes = crate::changes::changes(&m0, &m1, years)?;
    if let Some((all, round)) = combined {
        let s = score(&all.profiles, &spec)?;
        let mut hierarchies = vec![if opts.areas.is_empty() {
            Hierarchy::country(all.profiles.len())
        } else {
            Hierarchy::from_columns(opts.areas.clone(), all.area_keys.clone())?
        }];
        for (name, keys) in opts.over.iter().zip(&all.over_keys) {
            hierarchies.push(Hierarchy::from_columns(vec![name.clone()], vec![keys.clone()])?);
        }
        for (k, h) in hierarchies.iter().enumerate() {
            let mut v = crate::changes::panel_variances(&spec, &all.profiles, &s, h, &round, &all.id)?;
            if k > 0 {
                // An `over` breakdown's country row is not one of the measures' rows.
                v.remove(&(h.levels[0].clone(), h.groups[0][0].clone()));
            }
            crate::changes::apply_panel(&mut changes, &v, &labels, years);
        }
    }
    Ok(Rounds { names, measures: [m0, m1], changes, panel, units, seconds: t.elapsed().as_secs_f64() })
}

/// Both rounds' units in one table (round 0's first) and each unit's round.
fn concat(u0: &Units, u1: &Units) -> Result<(Units, Vec<u8>)> {
    let n0 = u0.profiles.len();
    let idx0: Vec<usize> = (0..n0).collect();
    let mut all = u0.subset(&idx0);
    let cat = |a: &mut Vec<u64>, b: &Vec<u64>| a.extend_from_slice(b);
    cat(&mut all.profiles.fail, &u1.profiles.fail);
    cat(&mut all.profiles.na, &u1.profiles.na);
    cat(&mut all.profiles.missing, &u1.profiles.missing);
    all.profiles.weight.extend_from_slice(&u1.profiles.weight);
    for (a, b) in all.area_keys.iter_mut().zip(&u1.area_keys).chain(all.over_keys.iter_mut().zip(&u1.over_keys)) {
        a.append(b)?;
    }
    all.id.extend_from_slice(&u1.id);
    let round = std::iter::repeat_n(0u8, n0).chain(std::iter::repeat_n(1u8, u1.profiles.len())).collect();
    Ok((all, round))
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    #[test]
    fn typed_status_columns_read_whole_or_name_the_bad_cell() {
        // UInt8, Int64 and boolean statuses are read a column at a time; the same units as text.
        let spec = || {
            vec![
                ("a".to_string(), "x".to_string(), "1/2".parse().unwrap()),
                ("b".to_string(), "y".to_string(), "1/2".parse().unwrap()),
            ]
        };
        let opts = MpiOptions { k: "1/2".parse().unwrap(), areas: vec!["area".into()], ..Default::default() };
        let typed = df!(
            "area" => ["p", "p", "q", "q"],
            "x" => [Some(1u8), Some(0), None, Some(1)],
            "y" => [Some(true), Some(false), Some(true), None]
        )
        .unwrap();
        let text = df!(
            "area" => ["p", "p", "q", "q"],
            "x" => [Some("1"), Some("0"), None, Some("1")],
            "y" => [Some("1"), Some("0"), Some("1"), None]
        )
        .unwrap();
        let (a, _) = measure(TableInput::Frame(&typed, "typed"), spec(), &opts).unwrap();
        let (b, _) = measure(TableInput::Frame(&text, "text"), spec(), &opts).unwrap();
        assert_eq!(a.rows, b.rows);
        assert_eq!(a.rows[0].dropped, 2, "a missing status drops its unit");
        // Weights read a column at a time (whole and decimal numbers), area keys with gaps: the
        // same measures as the same values as text.
        let opts_w = MpiOptions { weight: Some("w".into()), ..opts.clone() };
        let typed_w = df!(
            "area" => [Some("p"), None, Some("q"), Some("q")],
            "x" => [1u8, 0, 0, 1],
            "y" => [true, false, true, true],
            "w" => [3u16, 1, 2, 5]
        )
        .unwrap();
        let text_w = df!(
            "area" => [Some("p"), Some(""), Some("q"), Some("q")],
            "x" => ["1", "0", "0", "1"],
            "y" => ["1", "0", "1", "1"],
            "w" => ["3", "1", "2.0", "5"]
        )
        .unwrap();
        let (a, _) = measure(TableInput::Frame(&typed_w, "typed"), spec(), &opts_w).unwrap();
        let (b, _) = measure(TableInput::Frame(&text_w, "text"), spec(), &opts_w).unwrap();
        assert_eq!(a.rows, b.rows);
        assert_eq!(a.rows[0].population, 11.0);
        // A negative or empty typed weight falls back to the cell-by-cell reading and is named.
        for (w, row) in [(vec![Some(1i64), Some(-2), Some(1), Some(1)], 2), (vec![Some(1), Some(1), None, Some(1)], 3)]
        {
            let mut df = typed_w.clone();
            df.replace("w", Column::new("w".into(), w)).unwrap();
            match measure(TableInput::Frame(&df, "bad"), spec(), &opts_w).unwrap_err() {
                Error::InvalidRow { row: r, column, .. } => assert_eq!((r, column.as_str()), (row, "w")),
                other => panic!("{other}"),
            }
        }
        // A value that is neither 0 nor 1 in a typed column: the error names its row and column.
        let bad = df!("area" => ["p", "p", "q"], "x" => [1i64, 0, 2], "y" => [0i64, 0, 0]).unwrap();
        let e = measure(TableInput::Frame(&bad, "bad"), spec(), &opts).unwrap_err();
        match e {
            Error::InvalidRow { row, column, .. } => assert_eq!((row, column.as_str()), (3, "x")),
            other => panic!("{other}"),
        }
    }

    /// A units table of `n` rows over three area levels (long Thai keys, a village name repeated
    /// under two tambons), random statuses and weights; `sorted` keeps each village's units
    /// together, else they are interleaved.
    fn area_units(n: usize, sorted: bool) -> DataFrame {
        let mut state = 0x2561u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            state >> 33
        };
        let (mut p, mut a, mut v, mut x, mut y, mut w) = (vec![], vec![], vec![], vec![], vec![], vec![]);
        for i in 0..n {
            let village = if sorted { i * 40 / n } else { (next() % 40) as usize };
            p.push(["กรุงเทพมหานคร", "นครศรีธรรมราช"][village / 20].to_string());
            a.push(format!("อำเภอที่ {}", village / 5));
            v.push(format!("หมู่ {}", village % 3));
            x.push((next() % 2) as u8);
            y.push((next() % 3 == 0) as u8);
            w.push((next() % 7 + 1) as u32);
        }
        df!("province" => p, "amphoe" => a, "village" => v, "x" => x, "y" => y, "w" => w).unwrap()
    }

    #[test]
    fn dictionary_area_columns_give_the_measures_of_their_text() {
        // A Parquet file's dictionary-encoded area columns are read as their indices (row groups
        // and pages of a few hundred rows here); the measures must be those of the same units
        // read as text, sorted or not, and a null in an area column takes the usual reading.
        let spec = || {
            vec![
                ("a".to_string(), "x".to_string(), Rational::new(1, 2)),
                ("b".to_string(), "y".to_string(), Rational::new(1, 2)),
            ]
        };
        let opts = MpiOptions {
            k: Cutoff::K(Rational::new(1, 2)),
            areas: vec!["province".into(), "amphoe".into(), "village".into()],
            weight: Some("w".into()),
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        for (sorted, with_null) in [(true, false), (false, false), (true, true)] {
            let mut df = area_units(5000, sorted);
            if with_null {
                let village = df.column("village").unwrap().as_materialized_series().clone();
                let mask: BooleanChunked = (0..5000).map(|i| i != 4321).collect();
                df.replace(
                    "village",
                    village
                        .zip_with(&mask, &Series::full_null("village".into(), 5000, &DataType::String))
                        .unwrap()
                        .into_column(),
                )
                .unwrap();
            }
            let path = dir.path().join(format!("units-{sorted}-{with_null}.parquet"));
            ParquetWriter::new(std::fs::File::create(&path).unwrap())
                .with_row_group_size(Some(1200))
                .with_data_page_size(Some(256))
                .finish(&mut df.clone())
                .unwrap();
            let table = crate::ingest::source::Table::open(TableInput::File(&path), &IngestOptions::default()).unwrap();
            let mut groups = 0;
            let dictionary = table
                .for_each_dictionary_group(&[0, 1, 2], &mut |chunks| {
                    groups += 1;
                    // Sorted units change area a few times a group, not at every row.
                    assert!(!sorted || chunks.iter().all(|c| c.changes.len() * 10 < c.rows));
                    Ok(chunks.len() == 3)
                })
                .unwrap();
            assert_eq!(dictionary, !with_null, "the dictionary reading is taken only without nulls");
            let Table::Parquet { shape, .. } = &table else { panic!("a Parquet table") };
            assert!(shape.row_groups.len() > 2);
            if !with_null {
                assert_eq!(groups, shape.row_groups.len());
            }
            let (from_file, _) = measure(TableInput::File(&path), spec(), &opts).unwrap();
            let (from_frame, _) = measure(TableInput::Frame(&df, "units"), spec(), &opts).unwrap();
            assert_eq!(from_file.rows, from_frame.rows, "sorted {sorted}, null {with_null}");
            assert_eq!(from_file.rows.iter().filter(|r| r.level == "village").count(), 24 + usize::from(with_null));
        }
    }

    #[test]
    fn damaged_dictionary_pages_never_panic() {
        // Every 7th byte of a small file flipped in turn: each run reads the file or names the
        // damage (a panic fails the test), and where both read it, the measures are those of the
        // frame polars reads from it.
        let df = area_units(600, true);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("units.parquet");
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .with_row_group_size(Some(250))
            .with_compression(ParquetCompression::Uncompressed)
            .finish(&mut df.clone())
            .unwrap();
        let good = std::fs::read(&path).unwrap();
        let spec = || vec![("a".to_string(), "x".to_string(), Rational::new(1, 1))];
        let opts = MpiOptions {
            k: Cutoff::K(Rational::new(1, 1)),
            areas: vec!["province".into(), "amphoe".into(), "village".into()],
            ..Default::default()
        };
        let bad = dir.path().join("bad.parquet");
        for at in (4..good.len().saturating_sub(8)).step_by(7) {
            let mut bytes = good.clone();
            bytes[at] ^= 0x5a;
            std::fs::write(&bad, &bytes).unwrap();
            let ours = measure(TableInput::File(&bad), spec(), &opts);
            // Where polars reads the damaged file whole, the measures must be those of what it read.
            let read = crate::ingest::source::parquet_shape(&bad)
                .and_then(|shape| crate::ingest::source::read_parquet_slice(&bad, &shape, 0, shape.rows))
                .ok();
            if let (Ok((ours, _)), Some(frame)) = (ours, read)
                && let Ok((theirs, _)) = measure(TableInput::Frame(&frame, "units"), spec(), &opts)
            {
                assert_eq!(ours.rows, theirs.rows, "byte {at}");
            }
        }
    }

    #[test]
    fn packed_statuses_set_the_bits_one_column_at_a_time_would() {
        // Columns at bits in runs and gaps (to the last bit), one with a 2 in some rows: the bits
        // set are those of each column read on its own, the bad column's left to the caller.
        let bits: Vec<u32> = (0..3).chain(5..14).chain(60..64).collect();
        let rows = 3000;
        let columns: Vec<Vec<u8>> =
            bits.iter().map(|&b| (0..rows).map(|r| u8::from((r * 7 + b as usize * 13) % 5 < 2)).collect()).collect();
        let mut bad = columns.clone();
        bad[4][1234] = 2;
        for cols in [&columns, &bad] {
            let with_bits: Vec<(u32, &[u8])> = bits.iter().copied().zip(cols.iter().map(Vec::as_slice)).collect();
            for (start, len) in [(0, rows), (1000, 1500), (2999, 1), (17, 0)] {
                let mut fail = vec![0u64; len];
                let done = packed_statuses(&with_bits, start, &mut fail);
                let mut expected = vec![0u64; len];
                let mut expected_done = 0u64;
                for (&bit, col) in bits.iter().zip(cols) {
                    let part = &col[start..start + len];
                    if part.iter().all(|&v| v <= 1) {
                        expected_done |= 1 << bit;
                        for (e, &v) in expected.iter_mut().zip(part) {
                            *e |= u64::from(v) << bit;
                        }
                    }
                }
                assert_eq!((done, &fail), (expected_done, &expected), "start {start}, len {len}");
                assert_eq!(
                    done.count_ones() as usize,
                    bits.len() - usize::from(cols == &bad && start <= 1234 && 1234 < start + len)
                );
            }
        }
    }

    #[test]
    fn breakdowns_over_columns_are_not_nested() {
        // Nested by region; over sex: four units, poor when deprived in both (k = 1).
        let units = df!(
            "region" => ["n", "n", "s", "s"],
            "sex" => ["f", "m", "f", "f"],
            "a" => [1, 1, 0, 1],
            "b" => [1, 0, 0, 1]
        )
        .unwrap();
        let spec = vec![
            ("x".to_string(), "a".to_string(), Rational::new(1, 2)),
            ("y".into(), "b".into(), Rational::new(1, 2)),
        ];
        let opts = MpiOptions {
            k: "1".parse().unwrap(),
            areas: vec!["region".into()],
            over: vec!["sex".into()],
            ..Default::default()
        };
        let (m, _) = measure(TableInput::Frame(&units, "units"), spec, &opts).unwrap();
        assert_eq!(m.levels, ["country", "region", "sex"]);
        let sex: Vec<&crate::aggregate::AreaMeasures> = m.rows.iter().filter(|r| r.level == "sex").collect();
        assert_eq!(sex.len(), 2);
        let f = sex.iter().find(|r| r.area == "f").unwrap();
        assert_eq!((f.units, f.poor), (3, 2.0)); // units 0 and 3 of the three women
        let df = m.to_frame().unwrap();
        let col = |name: &str| -> Vec<Option<String>> {
            df.column(name).unwrap().str().unwrap().iter().map(|v| v.map(String::from)).collect()
        };
        let (region, sex_col, level) = (col("region"), col("sex"), col("level"));
        for i in 0..df.height() {
            match level[i].as_deref() {
                Some("sex") => assert!(region[i].is_none() && sex_col[i].is_some()),
                Some("region") => assert!(region[i].is_some() && sex_col[i].is_none()),
                _ => assert!(region[i].is_none() && sex_col[i].is_none()),
            }
        }
        // A breakdown named twice, or by an area level, is refused before any work.
        for over in [vec!["sex", "sex"], vec!["region"]] {
            let opts = MpiOptions { over: over.iter().map(|s| s.to_string()).collect(), ..opts.clone() };
            let spec = vec![("x".to_string(), "a".to_string(), Rational::ONE)];
            let err = measure(TableInput::Frame(&units, "units"), spec, &opts).unwrap_err().to_string();
            assert!(err.contains("given twice as a breakdown"), "{over:?}: {err}");
        }
    }

    #[test]
    fn measures_without_area_columns_cover_the_country() {
        let units = df!("a" => [1, 0, 1, 0], "b" => [1, 1, 0, 0]).unwrap();
        let spec = vec![
            ("x".to_string(), "a".to_string(), Rational::new(1, 2)),
            ("y".into(), "b".into(), Rational::new(1, 2)),
        ];
        let opts = MpiOptions { k: "1".parse().unwrap(), ..Default::default() };
        let (m, t) = measure(TableInput::Frame(&units, "units"), spec, &opts).unwrap();
        assert_eq!(t.units, 4);
        assert_eq!(m.rows.len(), 1);
        assert_eq!((m.rows[0].units, m.rows[0].poor), (4, 1.0)); // only the first unit has both
    }

    #[test]
    fn weights_read_whole_or_cell_by_cell_agree_and_an_empty_one_is_named() {
        // Whole numbers are read as a column into the profiles; text and negative numbers are
        // taken back off and read cell by cell (where "-2" is refused with its row).
        let spec = || vec![("x".to_string(), "a".to_string(), Rational::ONE)];
        let opts = MpiOptions { k: "1".parse().unwrap(), weight: Some("w".into()), ..Default::default() };
        let measure_of = |w: Column| {
            let units = DataFrame::new(4, vec![Column::new("a".into(), [1, 0, 1, 1]), w]).unwrap();
            measure(TableInput::Frame(&units, "units"), spec(), &opts).map(|(m, _)| m)
        };
        let whole = measure_of(Column::new("w".into(), [2u32, 1, 3, 5])).unwrap();
        let text = measure_of(Column::new("w".into(), ["2", "1", "3", "5"])).unwrap();
        assert_eq!((whole.rows[0].population, whole.rows[0].poor), (11.0, 10.0));
        assert_eq!((text.rows[0].population, text.rows[0].poor, text.rows[0].h), (11.0, 10.0, whole.rows[0].h));
        let empty = measure_of(Column::new("w".into(), [Some(2u32), None, Some(3), Some(5)])).unwrap_err().to_string();
        assert!(empty.contains("weight is empty") && empty.contains("'w'"), "{empty}");
        let negative = measure_of(Column::new("w".into(), [2i32, 1, -2, 5])).unwrap_err().to_string();
        assert!(negative.contains("'w'"), "{negative}");
    }
}
