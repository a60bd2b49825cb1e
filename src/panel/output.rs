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
    for (prefix, pick) in [("", 0usize), ("target_", 1), ("people_", 2)] {
        let f = |a: &AreaTransitions| match pick {
            0 => a.poor.clone(),
            1 => a.target.clone(),
            _ => a.people.clone(),
        };
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
    for (k, pair) in p.indicators.iter().enumerate() {
        let label = &pair.label;
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
/// list), `panel.html` (with `notices` on top) and `panel.json` into `dir` (all or nothing).
pub fn write(
    p: &Panel<'_>,
    served: &[Served],
    effects: &[Effect],
    unknown_served: u64,
    notices: &[String],
    dir: &Path,
) -> Result<()> {
    let stage = crate::output::Staging::new(dir)?;
    write_into(p, served, effects, unknown_served, notices, stage.path())?;
    stage.commit()
}

/// Like [`write`], into a folder that exists (a staging folder the caller commits).
pub fn write_into(
    p: &Panel<'_>,
    served: &[Served],
    effects: &[Effect],
    unknown_served: u64,
    notices: &[String],
    out: &Path,
) -> Result<()> {
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
    let page = out.join("panel.html");
    std::fs::write(&page, html(p, effects, notices)).map_err(|e| crate::Error::io(&page, e))?;
    let path = out.join("panel.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json)?).map_err(|e| crate::Error::io(&path, e))
}

/// The relative change in an area's poor households (0 when it had none).
fn poor_change(a: &AreaTransitions) -> f64 {
    let (t, t1) = (a.poor.poor_t as f64, a.poor.poor_t1 as f64);
    if t > 0.0 { (t1 - t) / t } else { 0.0 }
}

/// The tile map of the provinces shaded by the change in their poor households (green fewer, red
/// more; the scale stops at ±50 %: a province with few poor households can change by several
/// hundred per cent and would wash out the others), the flows on hover. `id` is the SVG's id.
pub(crate) fn change_map(id: &str, provinces: &[&AreaTransitions]) -> String {
    use crate::report::html::{diverge, int, tile_map};
    let change = poor_change;
    let max = provinces.iter().map(|a| change(a).abs()).fold(0.0f64, f64::max).clamp(0.05, 0.5);
    let cell = |key: &str| {
        provinces.iter().find(|a| a.area == key).map(|a| {
            (
                diverge(change(a), max),
                format!(
                    "poor households {} → {} ({:+.1}%): {} left, {} fell in, {} moved in, {} moved out",
                    int(a.poor.poor_t as f64),
                    int(a.poor.poor_t1 as f64),
                    100.0 * change(a),
                    int(a.poor.exits as f64),
                    int(a.poor.entries as f64),
                    int(a.poor.moved_in as f64),
                    int(a.poor.moved_out as f64)
                ),
                change(a).abs() > 0.6 * max,
            )
        })
    };
    let legend: Vec<(String, String)> = [-1.0, -0.5, 0.0, 0.5, 1.0]
        .iter()
        .map(|f| (diverge(f * max, max), format!("{:+.0}%", 100.0 * f * max)))
        .collect();
    tile_map(id, "Provinces shaded by the change in poor households", &cell, &legend)
}

/// `panel.html`: one self-contained page — the country's flows, flows by dimension, provinces
/// shaded by the net change in poor households, the provinces' table and the follow-up of
/// each program.
pub fn html(p: &Panel<'_>, effects: &[Effect], notices: &[String]) -> String {
    use std::fmt::Write;

    use crate::report::html::{SCRIPT, STYLE, bars_with, dimension_colour, escape, int, names_of, pct};
    let mut s = String::with_capacity(64 * 1024);
    s.push_str("<!DOCTYPE html>\n<html lang=\"th\"><head><meta charset=\"utf-8\">");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    s.push_str("<title>tpmap panel — in and out of poverty</title><style>");
    s.push_str(STYLE);
    s.push_str("</style></head><body><header><h1>tpmap — in and out of poverty between two rounds</h1>");
    s.push_str("<div>ครัวเรือนที่พ้นความยากจน ตกเป็นคนจน และผลการช่วยเหลือ</div></header><main>");
    for n in notices {
        let _ = write!(s, "<div class=\"notice\">{}</div>", escape(n));
    }
    let Some(country) = p.transitions.first() else {
        s.push_str("</main></body></html>");
        return s;
    };
    let c = &country.poor;
    let m = &p.summary;
    s.push_str("<section id=\"country\"><h2>Country / ทั้งประเทศ (poor households)</h2><div class=\"cards\">");
    let mut card = |v: String, label: &str| {
        let _ = write!(s, "<div class=\"card\"><b>{v}</b><span>{label}</span></div>");
    };
    card(format!("{} → {}", int(c.poor_t as f64), int(c.poor_t1 as f64)), "poor households, earlier → later");
    card(int(c.exits as f64), "left poverty / พ้นจน");
    card(int(c.entries as f64), "fell into poverty / ตกเป็นคนจน");
    card(int(c.stayed as f64), "stayed poor / ยังจน");
    card(format!("+{} / −{}", int(c.new_poor as f64), int(c.gone_poor as f64)), "poor households new / gone");
    let route = |r| m.by_route.get(&r).copied().unwrap_or(0) as f64;
    card(
        pct(route(super::Route::SameHousehold) + route(super::Route::Members), m.households_t1 as f64),
        "later households matched to earlier ones",
    );
    s.push_str("</div>");
    let _ = write!(
        s,
        "<p>Households: {} earlier, {} later — {} matched by the same keys, {} by members' citizen IDs, {} split off, {} new; {} earlier households vanished, {} merged. People with a citizen ID in both rounds: {} ({} left poverty, {} fell in).</p></section>",
        int(m.households_t as f64),
        int(m.households_t1 as f64),
        int(route(super::Route::SameHousehold)),
        int(route(super::Route::Members)),
        int(route(super::Route::Split)),
        int(route(super::Route::New)),
        int(m.by_fate.get(&super::Fate::Vanished).copied().unwrap_or(0) as f64),
        int(m.by_fate.get(&super::Fate::Merged).copied().unwrap_or(0) as f64),
        int(m.persons_in_both as f64),
        int(m.persons_left_poverty as f64),
        int(m.persons_fell_into_poverty as f64),
    );
    // Map and flows by dimension.
    let provinces: Vec<&AreaTransitions> = p.transitions.iter().filter(|a| a.level == "province").collect();
    let change = poor_change;
    s.push_str("<section id=\"map-section\"><h2>Net change in poor households by province</h2><div class=\"row\"><div class=\"mapbox\">");
    s.push_str(&change_map("map", &provinces));
    s.push_str("<p class=\"small\">Green: fewer poor households than in the earlier round; red: more (the scale stops at its ends: a change beyond them has the end colour). Hover for the flows.</p></div><div>");
    let dims = &p.t.spec.dimensions;
    let mut rows: Vec<(String, f64, &str, String)> = Vec::new();
    let total = (country.poor.poor_t.max(1)) as f64;
    for (d, name) in dims.iter().enumerate() {
        let (x, e) = (country.dimension_exits[d] as f64, country.dimension_entries[d] as f64);
        rows.push((
            format!("{name}: left"),
            x / total,
            dimension_colour(dims, name),
            format!("{name}: {} households left the deprivation", int(x)),
        ));
        rows.push((format!("{name}: entered"), e / total, "#999", format!("{name}: {} households entered it", int(e))));
    }
    s.push_str("<h2>Continuing households leaving and entering each dimension</h2><p class=\"small\">As a share of the earlier round's poor households.</p>");
    s.push_str(&bars_with(&rows, 560, 170));
    s.push_str("</div></div></section>");
    // Provinces.
    s.push_str("<section id=\"provinces\"><h2>Provinces</h2><div class=\"scroll\"><table class=\"sortable\"><thead><tr><th>code</th><th class=\"l\">province</th><th>poor earlier</th><th>poor later</th><th>change</th><th>left</th><th>fell in</th><th>moved in</th><th>moved out</th><th>new</th><th>gone</th><th>target poor earlier → later</th></tr></thead><tbody>");
    for a in &provinces {
        let (th, en) = names_of(&a.area);
        let f = &a.poor;
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"l\">{} <small>{}</small></td><td>{}</td><td>{}</td><td data-v=\"{:.6}\">{:+.1}%</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} → {}</td></tr>",
            escape(&a.area),
            escape(&th),
            escape(&en),
            f.poor_t,
            f.poor_t1,
            change(a),
            100.0 * change(a),
            f.exits,
            f.entries,
            f.moved_in,
            f.moved_out,
            f.new_poor,
            f.gone_poor,
            a.target.poor_t,
            a.target.poor_t1
        );
    }
    s.push_str("</tbody></table></div></section>");
    // Follow-up.
    if !effects.is_empty() {
        s.push_str("<section id=\"follow-up\"><h2>Did the help work? / ผลการช่วยเหลือ</h2><div class=\"scroll\"><table class=\"sortable\"><thead><tr><th class=\"l\">program</th><th class=\"l\">indicator</th><th>served</th><th>followed</th><th>resolved</th><th>comparison resolved</th><th>effect</th><th>95% CI</th></tr></thead><tbody>");
        for e in effects {
            let shown = |v: f64| if v.is_finite() { format!("{:+.1} pts", 100.0 * v) } else { "–".into() };
            let _ = write!(
                s,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td data-v=\"{}\">{}</td><td>{} to {}</td></tr>",
                escape(&e.program),
                escape(&e.indicator),
                e.served,
                e.followed,
                pct(e.resolved as f64, e.followed as f64),
                pct(e.comparison_resolved as f64, e.comparison as f64),
                if e.effect.is_finite() { e.effect } else { 0.0 },
                shown(e.effect),
                shown(e.ci_low),
                shown(e.ci_high)
            );
        }
        let _ = write!(s, "</tbody></table></div><p class=\"small\">{}</p></section>", escape(CAVEAT));
    }
    s.push_str("</main><footer><p>Made by tpmap panel from the two rounds' extracts; the tile-grid layout is tpmap's own (no boundary data).</p></footer><script>");
    s.push_str(SCRIPT);
    s.push_str("</script></body></html>");
    s
}

/// One row per household trajectory across several rounds (`panels[r]` compares round `r` with
/// `r + 1`; `names[r]` names round `r`): a trajectory starts at a household of the first round,
/// or at a later round's new or split-off household, and follows each continuing successor.
/// Columns per round: household ID, village, poor, target poor, score, deprived indicators and
/// the programs it received that round (`served[r]`).
pub fn trajectories_frame(panels: &[Panel<'_>], names: &[String], served: &[Vec<Served>]) -> Result<DataFrame> {
    let n = panels.len() + 1;
    if names.len() != n || served.len() > n {
        return Err(crate::Error::Config("one name per round and at most one served list per round".into()));
    }
    let round = |r: usize| if r < panels.len() { &panels[r].t } else { &panels[r - 1].t1 };
    // Chains: household rows per round.
    let mut chains: Vec<Vec<Option<u32>>> = Vec::new();
    let start = |r: usize, h: u32, chains: &mut Vec<Vec<Option<u32>>>| {
        let mut c = vec![None; n];
        c[r] = Some(h);
        let mut cur = h;
        for (k, p) in panels.iter().enumerate().skip(r) {
            match p.successor[cur as usize] {
                Some(next) => {
                    c[k + 1] = Some(next);
                    cur = next;
                }
                None => break,
            }
        }
        chains.push(c);
    };
    if let Some(first) = panels.first() {
        // Household rows as `u32` (Panel::build checked they fit), counted, not narrowed.
        for (_, h) in first.t.x.households.id.iter().zip(0u32..) {
            start(0, h, &mut chains);
        }
    }
    for (r, p) in panels.iter().enumerate() {
        for (pred, j) in p.predecessor.iter().zip(0u32..) {
            let continuing = pred.is_some_and(|i| p.successor[i as usize] == Some(j));
            if !continuing {
                start(r + 1, j, &mut chains);
            }
        }
    }
    let mut cols = Vec::new();
    for r in 0..n {
        let rd = round(r);
        let x = rd.x;
        let mut programs: std::collections::HashMap<u64, Vec<String>> = std::collections::HashMap::new();
        for s in served.get(r).map(Vec::as_slice).unwrap_or(&[]) {
            programs.entry(s.household_id).or_default().push(format!(
                "{}:{}",
                s.program,
                x.edition.indicator(s.indicator).label()
            ));
        }
        let labels = |bits: u64| -> String {
            (0..64).filter(|b| bits >> b & 1 == 1).map(|b| x.edition.indicator(b).label()).collect::<Vec<_>>().join(" ")
        };
        let at = |c: &Vec<Option<u32>>| c[r].map(|h| h as usize);
        let y = &names[r];
        cols.push(Column::new(
            format!("household_id_{y}").into(),
            chains.iter().map(|c| at(c).map(|h| x.households.id[h].0)).collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            format!("village_{y}").into(),
            chains.iter().map(|c| at(c).map(|h| x.households.village[h].to_string())).collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            format!("poor_{y}").into(),
            chains.iter().map(|c| at(c).map(|h| rd.scores.poor[h])).collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            format!("target_poor_{y}").into(),
            chains.iter().map(|c| at(c).map(|h| rd.target[h])).collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            format!("score_{y}").into(),
            chains.iter().map(|c| at(c).map(|h| rd.scores.score[h])).collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            format!("deprived_{y}").into(),
            chains.iter().map(|c| at(c).map(|h| labels(rd.deprived(h)))).collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            format!("programs_{y}").into(),
            chains
                .iter()
                .map(|c| at(c).and_then(|h| programs.get(&x.households.id[h].0)).map(|v| v.join(" ")))
                .collect::<Vec<_>>(),
        ));
    }
    Ok(DataFrame::new_infer_height(cols)?)
}
