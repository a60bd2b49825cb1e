//! Changes over time: how H, A and M0 of each area moved between two rounds, as mpitb's
//! `mpitb est ..., cotyear(...)` reports them.
//!
//! Each round is measured on its own (its own sample, its own [`Measures`]); rows are paired by
//! level and area key. For each of H, A and M0 the change is given four ways — absolute
//! (`X₁ − X₀`), relative (`X₁/X₀ − 1`), annualised absolute (`(X₁ − X₀)/Δt`) and annualised
//! relative (`(X₁/X₀)^(1/Δt) − 1`, compound) — with standard errors that treat the two rounds as
//! independent samples, which is how mpitb computes them for repeated cross-sections: the absolute
//! change's variance is `se₀² + se₁²`, the relative change's by the delta method
//! `(se₁/X₀)² + (X₁·se₀/X₀²)²`, and the annualised ones scaled accordingly. Censored headcount
//! ratios change the same way (`measure` = `censored`, with the indicator). For a panel (the same
//! households in both rounds, linked by an id) [`panel_variances`] and [`apply_panel`] count the
//! covariance of the two rounds' estimates; [`crate::mpi::measure_changes`] does it all.
//!
//! ```
//! use tpmap::aggregate::{measures, AggregateOptions, Hierarchy};
//! use tpmap::changes::changes;
//! use tpmap::score::{score, Cutoff, Profiles, Spec};
//! // One indicator; two of four units poor in the first round, one in the second, 2 years on.
//! let spec = Spec::from_weights(vec![(0, "d".into(), "i".into(), tpmap::rational::Rational::ONE)], Cutoff::K(tpmap::rational::Rational::ONE))?;
//! let round = |masks: Vec<u64>| -> tpmap::Result<_> {
//!     let p = Profiles::from_masks(masks, vec![0; 4], vec![0; 4], vec![1.0; 4], 0b1);
//!     let h = Hierarchy::from_keys(vec!["region".into()], vec![vec!["n".to_string(); 4]])?;
//!     measures(&p, &spec, &score(&p, &spec)?, &h, &AggregateOptions::default())
//! };
//! let c = changes(&round(vec![1, 1, 0, 0])?, &round(vec![1, 0, 0, 0])?, Some(2.0))?;
//! assert_eq!((c[0].measure, c[0].absolute, c[0].relative), ("H", -0.25, -0.5));
//! # Ok::<(), tpmap::Error>(())
//! ```

use serde::Serialize;
use std::collections::HashMap;

use crate::aggregate::{Hierarchy, Measures};
use crate::error::{Error, Result};
use crate::score::{Profiles, Scores, Spec};

/// One measure's change in one area between two rounds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// Level name.
    pub level: String,
    /// Area key.
    pub area: String,
    /// `"H"`, `"A"`, `"M0"` or `"censored"` (an indicator's censored headcount ratio).
    pub measure: &'static str,
    /// The indicator, for a censored headcount ratio.
    pub indicator: Option<String>,
    /// Value in the first round.
    pub t0: f64,
    /// Value in the second round.
    pub t1: f64,
    /// `t1 − t0`.
    pub absolute: f64,
    /// `t1/t0 − 1`; NaN when `t0` is 0.
    pub relative: f64,
    /// `(t1 − t0)/years`, when the years between the rounds are given.
    pub annualised_absolute: Option<f64>,
    /// `(t1/t0)^(1/years) − 1` (NaN when `t0` is 0), when the years are given.
    pub annualised_relative: Option<f64>,
    /// Standard error of `absolute` (independent samples, analytic SEs of each round).
    pub se_absolute: f64,
    /// Standard error of `relative` (delta method).
    pub se_relative: f64,
    /// Standard error of `annualised_absolute`.
    pub se_annualised_absolute: Option<f64>,
    /// Standard error of `annualised_relative` (delta method).
    pub se_annualised_relative: Option<f64>,
}

const NAMES: [&str; 3] = ["H", "A", "M0"];

/// Pair the two rounds' rows by level and area and compute the change of H, A, M0 and of each
/// indicator's censored headcount ratio (indicators paired by label; one measured in only one
/// round is left out).
///
/// Areas present in only one round are left out (a change needs both ends). `years`, the time
/// between the rounds, gives the annualised changes; it must be finite and positive. The two
/// rounds must have the same levels.
pub fn changes(t0: &Measures, t1: &Measures, years: Option<f64>) -> Result<Vec<Change>> {
    if let Some(years) = years.filter(|y| !(y.is_finite() && *y > 0.0)) {
        return Err(Error::Config(format!("the time between rounds must be a positive number of years, not {years}")));
    }
    if t0.levels != t1.levels {
        return Err(Error::Config(format!(
            "the two rounds have different levels ({} and {})",
            t0.levels.join("/"),
            t1.levels.join("/")
        )));
    }
    let first: HashMap<(&str, &str), usize> =
        t0.rows.iter().enumerate().map(|(i, r)| ((r.level.as_str(), r.area.as_str()), i)).collect();
    // Indicators of both rounds, by label: (label, index in t0, index in t1).
    let items: Vec<(&str, usize, usize)> = t1
        .spec
        .items
        .iter()
        .enumerate()
        .filter_map(|(j1, it)| {
            t0.spec.items.iter().position(|x| x.label == it.label).map(|j0| (it.label.as_str(), j0, j1))
        })
        .collect();
    let mut out = Vec::with_capacity(3 * t1.rows.len().min(t0.rows.len()));
    for r1 in &t1.rows {
        let Some(&i) = first.get(&(r1.level.as_str(), r1.area.as_str())) else {
            continue;
        };
        let r0 = &t0.rows[i];
        let v0 = [r0.h, r0.a, r0.m0];
        let v1 = [r1.h, r1.a, r1.m0];
        for m in 0..3 {
            out.push(change(
                &r1.level,
                &r1.area,
                NAMES[m],
                (v0[m], r0.se_analytic[m]),
                (v1[m], r1.se_analytic[m]),
                years,
            ));
        }
        for &(label, j0, j1) in &items {
            let mut c = change(
                &r1.level,
                &r1.area,
                "censored",
                (r0.censored[j0], r0.se_censored[j0]),
                (r1.censored[j1], r1.se_censored[j1]),
                years,
            );
            c.indicator = Some(label.to_string());
            out.push(c);
        }
    }
    Ok(out)
}

/// The changes as a table: `level, area, measure, t0, t1, absolute, relative, ...` in the
/// field order of [`Change`]; undefined values (a relative change from 0, annualised changes
/// without years) are empty.
pub fn to_frame(changes: &[Change]) -> Result<polars::prelude::DataFrame> {
    use polars::prelude::*;
    let text = |name: &str, f: fn(&Change) -> &str| Column::new(name.into(), changes.iter().map(f).collect::<Vec<_>>());
    let num = |name: &str, f: fn(&Change) -> Option<f64>| {
        Column::new(name.into(), changes.iter().map(|c| f(c).filter(|v| v.is_finite())).collect::<Vec<_>>())
    };
    let cols = vec![
        text("level", |c| &c.level),
        text("area", |c| &c.area),
        text("measure", |c| c.measure),
        Column::new("indicator".into(), changes.iter().map(|c| c.indicator.as_deref()).collect::<Vec<_>>()),
        num("t0", |c| Some(c.t0)),
        num("t1", |c| Some(c.t1)),
        num("absolute", |c| Some(c.absolute)),
        num("relative", |c| Some(c.relative)),
        num("annualised_absolute", |c| c.annualised_absolute),
        num("annualised_relative", |c| c.annualised_relative),
        num("se_absolute", |c| Some(c.se_absolute)),
        num("se_relative", |c| Some(c.se_relative)),
        num("se_annualised_absolute", |c| c.se_annualised_absolute),
        num("se_annualised_relative", |c| c.se_annualised_relative),
    ];
    Ok(DataFrame::new_infer_height(cols)?)
}

/// Writes `changes.{csv,parquet,json}` into `dir`.
pub fn write(dir: &std::path::Path, changes: &[Change]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut df = to_frame(changes)?;
    crate::frame::write_parquet(&mut df, &dir.join("changes.parquet"), &[])?;
    crate::frame::write_csv(&mut df, &dir.join("changes.csv"), &[], crate::ingest::Encoding::Utf8)?;
    let path = dir.join("changes.json");
    std::fs::write(&path, serde_json::to_string_pretty(changes)?).map_err(|e| Error::io(&path, e))
}

fn change(
    level: &str,
    area: &str,
    measure: &'static str,
    (x0, s0): (f64, f64),
    (x1, s1): (f64, f64),
    years: Option<f64>,
) -> Change {
    change_cov(level, area, measure, (x0, s0), (x1, s1), 0.0, years)
}

/// [`change`] with the covariance of the two estimates (0 for independent samples).
fn change_cov(
    level: &str,
    area: &str,
    measure: &'static str,
    (x0, s0): (f64, f64),
    (x1, s1): (f64, f64),
    cov: f64,
    years: Option<f64>,
) -> Change {
    let absolute = x1 - x0;
    let se_absolute = (s0 * s0 + s1 * s1 - 2.0 * cov).max(0.0).sqrt();
    let ratio = if x0 > 0.0 { x1 / x0 } else { f64::NAN };
    // Delta method for g(x0, x1) = x1/x0: ∂g/∂x1 = 1/x0, ∂g/∂x0 = −x1/x0²; the covariance term
    // is 2·(∂g/∂x0)(∂g/∂x1)·cov.
    let se_ratio = if x0 > 0.0 {
        let (d0, d1) = (-x1 / (x0 * x0), 1.0 / x0);
        (d1 * d1 * s1 * s1 + d0 * d0 * s0 * s0 + 2.0 * d0 * d1 * cov).max(0.0).sqrt()
    } else {
        f64::NAN
    };
    let annual = |t: f64| {
        // d/dr r^(1/t) = (1/t)·r^(1/t − 1), undefined at r = 0.
        let se = if ratio > 0.0 { ratio.powf(1.0 / t - 1.0) / t * se_ratio } else { f64::NAN };
        (ratio.powf(1.0 / t) - 1.0, se)
    };
    let annual = years.map(annual);
    Change {
        level: level.to_string(),
        area: area.to_string(),
        measure,
        indicator: None,
        t0: x0,
        t1: x1,
        absolute,
        relative: ratio - 1.0,
        annualised_absolute: years.map(|t| absolute / t),
        annualised_relative: annual.map(|a| a.0),
        se_absolute,
        se_relative: se_ratio,
        se_annualised_absolute: years.map(|t| se_absolute / t),
        se_annualised_relative: annual.map(|a| a.1),
    }
}

/// Variances of one measure's estimates in the two rounds and their covariance, in one area.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PanelVariance {
    /// Variance of the first round's estimate.
    pub var0: f64,
    /// Variance of the second round's estimate.
    pub var1: f64,
    /// Covariance of the two.
    pub cov: f64,
}

/// Panel standard errors: when the same units (households) are observed in both rounds and an
/// id links them, the two rounds' estimates are correlated and a change's variance is
/// `var₀ + var₁ − 2·cov`. Linearised as Stata's `svy` does with the unit id as the cluster (PSU)
/// of the stacked rounds: each estimate `X̂ᵣ = Σw·x/Σw` of round r has the influence
/// `zᵣ = w(x − X̂ᵣ)/Σw` per observation (A, a ratio over the poor: `w·p(c − Â)/Σw·p`), summed per
/// id; over the `n` ids of the area, `var_r = n/(n−1)·Σ zᵣ²` and `cov = n/(n−1)·Σ z₀z₁`. A unit
/// seen in one round only contributes to that round's variance.
///
/// `p`, `s` and `h` hold the units of both rounds (round 0's and round 1's, in any order),
/// `round` says which round each unit is in (0 or 1) and `id` its linking id (hashed). Returns,
/// per `(level, area key)`, one [`PanelVariance`] per measure: H, A, M0, then each indicator's
/// censored headcount ratio in spec order. Dropped units (missing policy) take no part.
pub fn panel_variances(
    spec: &Spec,
    p: &Profiles,
    s: &Scores,
    h: &Hierarchy,
    round: &[u8],
    id: &[u64],
) -> Result<HashMap<(String, String), Vec<PanelVariance>>> {
    let n = p.len();
    if s.poor.len() != n || h.unit_leaf.len() != n || round.len() != n || id.len() != n {
        return Err(Error::Config("panel: profiles, scores, areas, rounds and ids need one entry per unit".into()));
    }
    let items: Vec<u64> = spec.items.iter().map(|it| 1u64 << it.bit).collect();
    let k = 3 + items.len();
    let mut out = HashMap::new();
    let live: Vec<usize> = (0..n).filter(|&u| !s.dropped[u] && round[u] <= 1).collect();
    for (l, level) in h.levels.iter().enumerate() {
        let groups = h.groups[l].len();
        let group = |u: usize| h.leaf_group[l][h.unit_leaf[u] as usize] as usize;
        // Per group and round: Σw, Σw·p, Σw·c, Σw per censored indicator.
        let stride = 3 + items.len();
        let mut sums = vec![0f64; groups * 2 * stride];
        for &u in &live {
            let base = (group(u) * 2 + round[u] as usize) * stride;
            let w = p.weight[u];
            sums[base] += w;
            if s.poor[u] {
                sums[base + 1] += w;
                sums[base + 2] += w * s.score[u];
                for (j, bit) in items.iter().enumerate() {
                    if s.deprived[u] & bit != 0 {
                        sums[base + 3 + j] += w;
                    }
                }
            }
        }
        let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { 0.0 };
        // Each observation's influence on each measure of its round.
        let influence = |u: usize, z: &mut [f64]| {
            let b = &sums[(group(u) * 2 + round[u] as usize) * stride..][..stride];
            let (w, pw, cw) = (b[0], b[1], b[2]);
            let wu = p.weight[u];
            let (poor, c) = (s.poor[u], if s.poor[u] { s.score[u] } else { 0.0 });
            z[0] += ratio(wu * (poor as u8 as f64 - ratio(pw, w)), w);
            z[1] += if poor { ratio(wu * (c - ratio(cw, pw)), pw) } else { 0.0 };
            z[2] += ratio(wu * (c - ratio(cw, w)), w);
            for (j, bit) in items.iter().enumerate() {
                let x = (poor && s.deprived[u] & bit != 0) as u8 as f64;
                z[3 + j] += ratio(wu * (x - ratio(b[3 + j], w)), w);
            }
        };
        let mut order = live.clone();
        order.sort_unstable_by_key(|&u| (group(u), id[u]));
        let mut acc = vec![0f64; groups * k * 3];
        let mut clusters = vec![0f64; groups];
        let mut z = vec![0f64; 2 * k];
        for run in order.chunk_by(|&a, &b| (group(a), id[a]) == (group(b), id[b])) {
            z.iter_mut().for_each(|x| *x = 0.0);
            for &u in run {
                let r = round[u] as usize;
                influence(u, &mut z[r * k..(r + 1) * k]);
            }
            let g = group(run[0]);
            clusters[g] += 1.0;
            for m in 0..k {
                let a = &mut acc[(g * k + m) * 3..][..3];
                a[0] += z[m] * z[m];
                a[1] += z[k + m] * z[k + m];
                a[2] += z[m] * z[k + m];
            }
        }
        for g in 0..groups {
            let c = clusters[g];
            let f = if c > 1.0 { c / (c - 1.0) } else { 0.0 };
            let v: Vec<PanelVariance> = (0..k)
                .map(|m| {
                    let a = &acc[(g * k + m) * 3..][..3];
                    PanelVariance { var0: f * a[0], var1: f * a[1], cov: f * a[2] }
                })
                .collect();
            out.insert((level.clone(), h.groups[l][g].clone()), v);
        }
    }
    Ok(out)
}

/// Replaces the standard errors of `changes` with panel ones ([`panel_variances`]): each change
/// whose level, area and measure have panel variances gets SEs from `var₀`, `var₁` and `cov`.
/// `labels` are the indicators in spec order (the censored headcounts' order in the variances).
/// Returns how many changes were updated.
pub fn apply_panel(
    changes: &mut [Change],
    panel: &HashMap<(String, String), Vec<PanelVariance>>,
    labels: &[String],
    years: Option<f64>,
) -> usize {
    let mut updated = 0;
    for c in changes.iter_mut() {
        let Some(v) = panel.get(&(c.level.clone(), c.area.clone())) else { continue };
        let m = match (c.measure, &c.indicator) {
            ("H", _) => Some(0),
            ("A", _) => Some(1),
            ("M0", _) => Some(2),
            (_, Some(ind)) => labels.iter().position(|l| l == ind).map(|j| 3 + j),
            _ => None,
        };
        let Some(pv) = m.and_then(|m| v.get(m)) else { continue };
        let mut next =
            change_cov(&c.level, &c.area, c.measure, (c.t0, pv.var0.sqrt()), (c.t1, pv.var1.sqrt()), pv.cov, years);
        next.indicator = c.indicator.take();
        *c = next;
        updated += 1;
    }
    updated
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{AggregateOptions, Hierarchy, measures};
    use crate::rational::Rational;
    use crate::score::{Cutoff, Profiles, Spec, score};

    fn round(masks: Vec<u64>, areas: Vec<&str>) -> Measures {
        let n = masks.len();
        let p = Profiles::from_masks(masks, vec![0; n], vec![0; n], vec![1.0; n], 0b11);
        let half = Rational::new(1, 2);
        let spec = Spec::from_weights(
            vec![(0, "d0".into(), "x0".into(), half), (1, "d1".into(), "x1".into(), half)],
            Cutoff::K(half),
        )
        .unwrap();
        let s = score(&p, &spec).unwrap();
        let h =
            Hierarchy::from_keys(vec!["region".into()], vec![areas.into_iter().map(String::from).collect()]).unwrap();
        measures(&p, &spec, &s, &h, &AggregateOptions::default()).unwrap()
    }

    #[test]
    fn changes_pair_areas_and_follow_the_definitions() {
        // Round 0: a has 2 of 2 poor (one fully deprived), b 1 of 2; round 1: a 1 of 2, b none,
        // and a new area c that has no first round.
        let r0 = round(vec![0b11, 0b01, 0b10, 0b00], vec!["a", "a", "b", "b"]);
        let r1 = round(vec![0b01, 0b00, 0b00, 0b00, 0b11], vec!["a", "a", "b", "b", "c"]);
        let c = changes(&r0, &r1, Some(4.0)).unwrap();
        // Country, a and b: three areas by three measures and two censored headcounts; c is left
        // out.
        assert_eq!(c.len(), 15);
        assert!(c.iter().all(|x| x.area != "c"));
        let get = |area: &str, m: &str| c.iter().find(|x| x.area.ends_with(area) && x.measure == m).unwrap();
        // Censored headcount of x0 in a: 1/2 (the fully deprived unit) to 1/2; of x1 in a: 1 to 0.
        let cen = |area: &str, ind: &str| {
            c.iter().find(|x| x.area.ends_with(area) && x.indicator.as_deref() == Some(ind)).unwrap()
        };
        assert_eq!((cen("a", "x0").t0, cen("a", "x0").t1, cen("a", "x0").absolute), (1.0, 0.5, -0.5));
        assert_eq!((cen("a", "x1").t0, cen("a", "x1").t1), (0.5, 0.0));
        // Its SE, by hand: Stata's mean of a 0/1 variable with unit weights, sqrt(p(1−p)/(n−1)).
        let by_hand = |p: f64, n: f64| (p * (1.0 - p) / (n - 1.0)).sqrt();
        let x1 = cen("a", "x1");
        assert!((x1.se_absolute - by_hand(0.5, 2.0).hypot(by_hand(0.0, 2.0))).abs() < 1e-15);
        let a_h = get("a", "H");
        assert_eq!((a_h.t0, a_h.t1), (1.0, 0.5));
        assert_eq!(a_h.absolute, -0.5);
        assert_eq!(a_h.relative, -0.5);
        assert_eq!(a_h.annualised_absolute, Some(-0.125));
        assert!((a_h.annualised_relative.unwrap() - (0.5f64.powf(0.25) - 1.0)).abs() < 1e-15);
        // Independent samples: the variances add.
        let (s0, s1) = (r0.rows[1].se_analytic[0], r1.rows[1].se_analytic[0]);
        assert!((a_h.se_absolute - (s0 * s0 + s1 * s1).sqrt()).abs() < 1e-15);
        assert!((a_h.se_annualised_absolute.unwrap() - a_h.se_absolute / 4.0).abs() < 1e-15);
        // b: H from 1/2 to 0; relative change −100 %, compound annual rate −100 % too.
        let b_h = get("b", "H");
        assert_eq!((b_h.relative, b_h.annualised_relative), (-1.0, Some(-1.0)));
        // From H = 0 in the first round a relative change is undefined: NaN, not a number made up.
        let r2 = round(vec![0b00, 0b00, 0b00, 0b00], vec!["a", "a", "b", "b"]);
        let back = changes(&r2, &r0, None).unwrap();
        assert!(back.iter().filter(|x| x.measure == "H").all(|x| x.relative.is_nan()));
    }

    #[test]
    fn relative_change_standard_error_matches_a_numerical_delta_method() {
        let (x0, s0, x1, s1) = (0.4, 0.03, 0.3, 0.02);
        let c = change("l", "a", "H", (x0, s0), (x1, s1), Some(3.0));
        let g = |a: f64, b: f64| b / a - 1.0;
        let e = 1e-7;
        let d0 = (g(x0 + e, x1) - g(x0 - e, x1)) / (2.0 * e);
        let d1 = (g(x0, x1 + e) - g(x0, x1 - e)) / (2.0 * e);
        assert!((c.se_relative - ((d0 * s0).powi(2) + (d1 * s1).powi(2)).sqrt()).abs() < 1e-6);
        let ga = |a: f64, b: f64| (b / a).powf(1.0 / 3.0) - 1.0;
        let d0 = (ga(x0 + e, x1) - ga(x0 - e, x1)) / (2.0 * e);
        let d1 = (ga(x0, x1 + e) - ga(x0, x1 - e)) / (2.0 * e);
        assert!((c.se_annualised_relative.unwrap() - ((d0 * s0).powi(2) + (d1 * s1).powi(2)).sqrt()).abs() < 1e-6);
    }

    #[test]
    fn panel_standard_errors_are_those_of_the_paired_differences() {
        // One indicator, k = 1; four households in both rounds (weights 1, 2, 3, 4), one of them
        // twice in round 1 under the same id (a split household keeps its id), and a fifth seen
        // only in round 0.
        let fail0 = [1u64, 1, 0, 0, 1];
        let fail1 = [1u64, 0, 0, 1, 1];
        let w = [1.0, 2.0, 3.0, 4.0, 2.0];
        let id0 = [10u64, 20, 30, 40, 50];
        let id1 = [10u64, 20, 30, 40, 40];
        let mut fail = fail0.to_vec();
        fail.extend(&fail1[..]);
        let mut weight = w.to_vec();
        weight.extend([1.0, 2.0, 3.0, 4.0, 1.0]);
        let mut id = id0.to_vec();
        id.extend(id1);
        let round: Vec<u8> = [0u8; 5].into_iter().chain([1u8; 5]).collect();
        let n = fail.len();
        let p = Profiles::from_masks(fail.clone(), vec![0; n], vec![0; n], weight.clone(), 0b1);
        let spec =
            Spec::from_weights(vec![(0, "d".into(), "x".into(), Rational::ONE)], Cutoff::K(Rational::ONE)).unwrap();
        let s = score(&p, &spec).unwrap();
        let h = Hierarchy::country(n);
        let v = panel_variances(&spec, &p, &s, &h, &round, &id).unwrap();
        let pv = v.get(&(h.levels[0].clone(), h.groups[0][0].clone())).unwrap()[0];
        // By hand, as Stata's svy with the id as the cluster: per id, z = Σ w(x − X̂ᵣ)/Wᵣ over
        // its observations of round r; var = n/(n−1)·Σ z², n = 5 ids.
        let mean =
            |f: &[u64], w: &[f64]| f.iter().zip(w).map(|(f, w)| *f as f64 * w).sum::<f64>() / w.iter().sum::<f64>();
        let (w0, w1) = (&weight[..5], &weight[5..]);
        let (x0, x1) = (mean(&fail0, w0), mean(&fail1, w1));
        let (sw0, sw1): (f64, f64) = (w0.iter().sum(), w1.iter().sum());
        let mut z = std::collections::BTreeMap::<u64, (f64, f64)>::new();
        for u in 0..5 {
            z.entry(id0[u]).or_default().0 += w0[u] * (fail0[u] as f64 - x0) / sw0;
            z.entry(id1[u]).or_default().1 += w1[u] * (fail1[u] as f64 - x1) / sw1;
        }
        let f = 5.0 / 4.0;
        let var0: f64 = f * z.values().map(|z| z.0 * z.0).sum::<f64>();
        let var1: f64 = f * z.values().map(|z| z.1 * z.1).sum::<f64>();
        let cov: f64 = f * z.values().map(|z| z.0 * z.1).sum::<f64>();
        assert!((pv.var0 - var0).abs() < 1e-15 && (pv.var1 - var1).abs() < 1e-15 && (pv.cov - cov).abs() < 1e-15);
        // With equal weights and every unit in both rounds once, the change's SE is the paired
        // differences' SE: sd(x₁ − x₀)/√n.
        let (a, b) = (vec![1u64, 1, 0, 0], vec![1u64, 0, 0, 0]);
        let mut fail = a.clone();
        fail.extend(&b);
        let p = Profiles::from_masks(fail, vec![0; 8], vec![0; 8], vec![1.0; 8], 0b1);
        let s = score(&p, &spec).unwrap();
        let round: Vec<u8> = [0u8; 4].into_iter().chain([1u8; 4]).collect();
        let id = vec![1u64, 2, 3, 4, 1, 2, 3, 4];
        let h = Hierarchy::country(8);
        let v = panel_variances(&spec, &p, &s, &h, &round, &id).unwrap();
        let mut c = vec![change("country", &h.groups[0][0], "H", (0.5, 0.0), (0.25, 0.0), None)];
        c[0].level = h.levels[0].clone();
        assert_eq!(apply_panel(&mut c, &v, &["x".to_string()], None), 1);
        let d = [0.0f64, -1.0, 0.0, 0.0];
        let dm = d.iter().sum::<f64>() / 4.0;
        let sd = (d.iter().map(|x| (x - dm) * (x - dm)).sum::<f64>() / 3.0).sqrt();
        assert!((c[0].se_absolute - sd / 2.0).abs() < 1e-15, "{} {}", c[0].se_absolute, sd / 2.0);
        // Independent samples would have said more.
        let independent = ((0.5 * 0.5 / 3.0) + (0.25 * 0.75 / 3.0f64)).sqrt();
        assert!(c[0].se_absolute < independent);
    }

    #[test]
    fn bad_years_and_mismatched_levels_are_errors() {
        let r = round(vec![0b11, 0b00], vec!["a", "b"]);
        for years in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(changes(&r, &r, Some(years)).is_err());
        }
        let mut other = r.clone();
        other.levels = vec!["province".into()];
        assert!(changes(&r, &other, None).is_err());
        // Without years there are no annualised changes.
        assert!(changes(&r, &r, None).unwrap().iter().all(|c| c.annualised_absolute.is_none()));
    }
}
