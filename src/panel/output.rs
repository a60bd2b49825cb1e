//! The panel's tables as polars frames, and the files `tpmap panel` writes.

use std::path::Path;

use polars::prelude::*;

use super::effects::{Effect, Served};
use super::{AreaTransitions, Panel};
use crate::Result;
use crate::frame::{write_csv, write_parquet};
use crate::ingest::Encoding;

/// Every household of both rounds: its keys, route or fate, villages, and status in each.
pub fn matches_frame(p: &Panel<'_>, served: &[Served]) -> Result<DataFrame> {
    let (x0, x1) = (p.t.x, p.t1.x);
    let mut programs: std::collections::HashMap<u64, Vec<String>> = std::collections::HashMap::new();
    for s in served {
        let label = x0.edition.indicator(s.indicator).label();
        programs.entry(s.household_id).or_default().push(format!("{}:{label}", s.program));
    }
    let labels = |bits: u64| -> String {
        (0..64).filter(|b| bits >> b & 1 == 1).map(|b| x0.edition.indicator(b).label()).collect::<Vec<_>>().join(" ")
    };
    let m = &p.matches;
    let t = |f: &dyn Fn(usize) -> Option<u64>| m.iter().map(|r| r.t.and_then(|i| f(i as usize))).collect::<Vec<_>>();
    let t1 = |f: &dyn Fn(usize) -> Option<u64>| m.iter().map(|r| r.t1.and_then(|j| f(j as usize))).collect::<Vec<_>>();
    let ts = |f: &dyn Fn(usize) -> String| m.iter().map(|r| r.t.map(|i| f(i as usize))).collect::<Vec<_>>();
    let t1s = |f: &dyn Fn(usize) -> String| m.iter().map(|r| r.t1.map(|j| f(j as usize))).collect::<Vec<_>>();
    let tb = |f: &dyn Fn(usize) -> bool| m.iter().map(|r| r.t.map(|i| f(i as usize))).collect::<Vec<_>>();
    let t1b = |f: &dyn Fn(usize) -> bool| m.iter().map(|r| r.t1.map(|j| f(j as usize))).collect::<Vec<_>>();
    let cols = vec![
        Column::new("household_id_t".into(), t(&|i| Some(x0.households.id[i].0))),
        Column::new("household_id_t1".into(), t1(&|j| Some(x1.households.id[j].0))),
        Column::new("route".into(), m.iter().map(|r| r.route.map(|r| r.as_str())).collect::<Vec<_>>()),
        Column::new(
            "fate".into(),
            m.iter().map(|r| r.fate.map(|f| format!("{f:?}").to_lowercase())).collect::<Vec<_>>(),
        ),
        Column::new("members_in_common".into(), m.iter().map(|r| r.members_in_common).collect::<Vec<_>>()),
        Column::new("village_t".into(), ts(&|i| x0.households.village[i].to_string())),
        Column::new("village_t1".into(), t1s(&|j| x1.households.village[j].to_string())),
        Column::new("poor_t".into(), tb(&|i| p.t.scores.poor[i])),
        Column::new("poor_t1".into(), t1b(&|j| p.t1.scores.poor[j])),
        Column::new("target_poor_t".into(), tb(&|i| p.t.target[i])),
        Column::new("target_poor_t1".into(), t1b(&|j| p.t1.target[j])),
        Column::new("score_t".into(), m.iter().map(|r| r.t.map(|i| p.t.scores.score[i as usize])).collect::<Vec<_>>()),
        Column::new(
            "score_t1".into(),
            m.iter().map(|r| r.t1.map(|j| p.t1.scores.score[j as usize])).collect::<Vec<_>>(),
        ),
        Column::new("deprived_t".into(), ts(&|i| labels(p.t.deprived(i)))),
        Column::new("deprived_t1".into(), t1s(&|j| labels(p.t1.deprived(j)))),
        Column::new(
            "programs_t".into(),
            m.iter()
                .map(|r| r.t.and_then(|i| programs.get(&x0.households.id[i as usize].0)).map(|v| v.join(" ")))
                .collect::<Vec<_>>(),
        ),
    ];
    Ok(DataFrame::new_infer_height(cols)?)
}

/// One row per area: the flows of poor and target poor households, per dimension and indicator.
pub fn transitions_frame(p: &Panel<'_>) -> Result<DataFrame> {
    let rows: &[AreaTransitions] = &p.transitions;
    let spec = &p.t.spec;
    let u = |f: &dyn Fn(&AreaTransitions) -> u64| rows.iter().map(f).collect::<Vec<u64>>();
    let mut cols = vec![
        Column::new("level".into(), rows.iter().map(|a| a.level).collect::<Vec<_>>()),
        Column::new("area".into(), rows.iter().map(|a| a.area.as_str()).collect::<Vec<_>>()),
    ];
    for (prefix, pick) in [("", 0usize), ("target_", 1)] {
        let f = |a: &AreaTransitions| if pick == 0 { a.poor.clone() } else { a.target.clone() };
        for (name, get) in [
            ("poor_t", (|f: &super::Flows| f.poor_t) as fn(&super::Flows) -> u64),
            ("poor_t1", |f| f.poor_t1),
            ("stayed", |f| f.stayed),
            ("exits", |f| f.exits),
            ("entries", |f| f.entries),
            ("never", |f| f.never),
            ("moved_in", |f| f.moved_in),
            ("moved_out", |f| f.moved_out),
            ("new_poor", |f| f.new_poor),
            ("gone_poor", |f| f.gone_poor),
        ] {
            cols.push(Column::new(format!("{prefix}{name}").into(), u(&|a| get(&f(a)))));
        }
    }
    for (d, name) in spec.dimensions.iter().enumerate() {
        cols.push(Column::new(format!("{name}_exits").into(), u(&|a| a.dimension_exits[d])));
        cols.push(Column::new(format!("{name}_entries").into(), u(&|a| a.dimension_entries[d])));
    }
    for (k, it) in spec.items.iter().enumerate() {
        let label = p.t.x.edition.indicator(it.bit).label();
        cols.push(Column::new(format!("ind_{label}_exits").into(), u(&|a| a.indicator_exits[k])));
        cols.push(Column::new(format!("ind_{label}_entries").into(), u(&|a| a.indicator_entries[k])));
    }
    cols.push(Column::new("deprivations_gained".into(), u(&|a| a.deprivations_gained)));
    cols.push(Column::new("deprivations_lost".into(), u(&|a| a.deprivations_lost)));
    Ok(DataFrame::new_infer_height(cols)?)
}

/// The follow-up of each program and indicator.
pub fn effects_frame(e: &[Effect]) -> Result<DataFrame> {
    let u = |f: &dyn Fn(&Effect) -> u64| e.iter().map(f).collect::<Vec<u64>>();
    let x = |f: &dyn Fn(&Effect) -> f64| e.iter().map(|r| Some(f(r)).filter(|v| v.is_finite())).collect::<Vec<_>>();
    Ok(DataFrame::new_infer_height(vec![
        Column::new("program".into(), e.iter().map(|r| r.program.as_str()).collect::<Vec<_>>()),
        Column::new("indicator".into(), e.iter().map(|r| r.indicator.as_str()).collect::<Vec<_>>()),
        Column::new("served".into(), u(&|r| r.served)),
        Column::new("followed".into(), u(&|r| r.followed)),
        Column::new("resolved".into(), u(&|r| r.resolved)),
        Column::new("comparison".into(), u(&|r| r.comparison)),
        Column::new("comparison_resolved".into(), u(&|r| r.comparison_resolved)),
        Column::new("matched".into(), u(&|r| r.matched)),
        Column::new("rate_served".into(), x(&|r| r.rate_served)),
        Column::new("rate_comparison".into(), x(&|r| r.rate_comparison)),
        Column::new("effect".into(), x(&|r| r.effect)),
        Column::new("se".into(), x(&|r| r.se)),
        Column::new("ci_low".into(), x(&|r| r.ci_low)),
        Column::new("ci_high".into(), x(&|r| r.ci_high)),
    ])?)
}

/// The caveat written with every follow-up.
pub const CAVEAT: &str = "Observational: served households are compared with unserved ones deprived in the same indicator, in the same province and need band (number of deprivations); differences those do not capture (who was chosen, and why) remain in the estimate.";

/// Writes `matches.parquet`, `transitions.csv` and `.parquet`, `effects.csv` (with a served
/// list) and `panel.json` into `dir` (all or nothing).
pub fn write(p: &Panel<'_>, served: &[Served], effects: &[Effect], unknown_served: u64, dir: &Path) -> Result<()> {
    let stage = crate::output::Staging::new(dir)?;
    let out = stage.path();
    write_parquet(&mut matches_frame(p, served)?, &out.join("matches.parquet"), &[])?;
    let mut t = transitions_frame(p)?;
    write_parquet(&mut t, &out.join("transitions.parquet"), &[])?;
    write_csv(&mut t, &out.join("transitions.csv"), &[], Encoding::Utf8)?;
    if !served.is_empty() {
        let mut e = effects_frame(effects)?;
        write_csv(&mut e, &out.join("effects.csv"), &[CAVEAT.to_string()], Encoding::Utf8)?;
    }
    let json = serde_json::json!({
        "summary": p.summary,
        "country": p.transitions.first(),
        "effects": effects,
        "served_rows_not_found": unknown_served,
        "caveat": CAVEAT,
    });
    let path = out.join("panel.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json)?).map_err(|e| crate::Error::io(&path, e))?;
    stage.commit()
}
