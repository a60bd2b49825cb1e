//! Changes over time: how H, A and M0 of each area moved between two rounds, as mpitb's
//! `mpitb est ..., cotyear(...)` reports them.
//!
//! Each round is measured on its own (its own sample, its own [`Measures`]); rows are paired by
//! level and area key. For each of H, A and M0 the change is given four ways — absolute
//! (`X₁ − X₀`), relative (`X₁/X₀ − 1`), annualised absolute (`(X₁ − X₀)/Δt`) and annualised
//! relative (`(X₁/X₀)^(1/Δt) − 1`, compound) — with standard errors that treat the two rounds as
//! independent samples, which is how mpitb computes them for repeated cross-sections: the absolute
//! change's variance is `se₀² + se₁²`, the relative change's by the delta method
//! `(se₁/X₀)² + (X₁·se₀/X₀²)²`, and the annualised ones scaled accordingly. A panel (the same
//! households in both rounds) would need the covariance term too; that is not what this computes.
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

use crate::aggregate::Measures;
use crate::error::{Error, Result};

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
    let absolute = x1 - x0;
    let se_absolute = s0.hypot(s1);
    let ratio = if x0 > 0.0 { x1 / x0 } else { f64::NAN };
    // Delta method for g(x0, x1) = x1/x0: ∂g/∂x1 = 1/x0, ∂g/∂x0 = −x1/x0².
    let se_ratio = if x0 > 0.0 { (s1 / x0).hypot(x1 * s0 / (x0 * x0)) } else { f64::NAN };
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
