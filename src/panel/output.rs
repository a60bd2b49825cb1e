//! The panel's tables as polars frames, and the files `tpmap panel` writes.

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;

use super::effects::{Effect, Served};
use super::{AreaTransitions, Panel, Round};
use crate::Result;
use crate::frame::{write_csv, write_parquet};
use crate::ingest::Encoding;

/// Every household of both rounds: its keys, route or fate, villages, and status in each.
pub fn matches_frame(p: &Panel, served: &[Served]) -> Result<DataFrame> {
    matches_rows(p, &programs_of(&p.t.edition, served), 0..p.matches.len())
}

/// Matches a `matches.parquet` batch holds: the file is written a batch at a time, so that the
/// text columns of a national panel (25 M rows) are never built whole.
const BATCH: usize = 1 << 20;

/// The programs a served list gives each household, as `matches.parquet` and
/// `trajectories.parquet` write them (`program:indicator`, space-separated).
fn programs_of(edition: &crate::indicators::Edition, served: &[Served]) -> HashMap<u64, String> {
    let mut programs: HashMap<u64, String> = HashMap::new();
    for s in served {
        let text = programs.entry(s.household_id).or_default();
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&s.program);
        text.push(':');
        text.push_str(&edition.indicator(s.indicator).label());
    }
    programs
}

/// A text column of the indicators set in each row's bits (`None`: no row), each distinct set
/// written once.
fn labels_column(name: &str, edition: &crate::indicators::Edition, bits: &[Option<u64>]) -> Column {
    let mut cache: HashMap<u64, String> = HashMap::new();
    for &b in bits.iter().flatten() {
        cache.entry(b).or_insert_with(|| {
            (0..64).filter(|i| b >> i & 1 == 1).map(|i| edition.indicator(i).label()).collect::<Vec<_>>().join(" ")
        });
    }
    let ca: StringChunked = bits.iter().map(|b| b.and_then(|b| cache.get(&b)).map(String::as_str)).collect();
    ca.with_name(name.into()).into_column()
}

/// A text column over `rows` from a value that borrows its text.
fn text_column<'a>(name: &str, rows: impl Iterator<Item = Option<&'a str>>) -> Column {
    let ca: StringChunked = rows.collect();
    ca.with_name(name.into()).into_column()
}

/// The rows `range` of [`matches_frame`].
fn matches_rows(p: &Panel, programs: &HashMap<u64, String>, range: std::ops::Range<usize>) -> Result<DataFrame> {
    let (x0, x1) = (&*p.t, &*p.t1);
    let m = &p.matches[range];
    let t = |f: &dyn Fn(usize) -> Option<u64>| m.iter().map(|r| r.t.and_then(|i| f(i as usize))).collect::<Vec<_>>();
    let t1 = |f: &dyn Fn(usize) -> Option<u64>| m.iter().map(|r| r.t1.and_then(|j| f(j as usize))).collect::<Vec<_>>();
    let tb = |f: &dyn Fn(usize) -> bool| m.iter().map(|r| r.t.map(|i| f(i as usize))).collect::<Vec<_>>();
    let t1b = |f: &dyn Fn(usize) -> bool| m.iter().map(|r| r.t1.map(|j| f(j as usize))).collect::<Vec<_>>();
    let cols = vec![
        Column::new("household_id_t".into(), t(&|i| Some(x0.households.id[i].0))),
        Column::new("household_id_t1".into(), t1(&|j| Some(x1.households.id[j].0))),
        text_column("route", m.iter().map(|r| r.route.map(|r| r.as_str()))),
        text_column("fate", m.iter().map(|r| r.fate.map(|f| f.as_str()))),
        Column::new("members_in_common".into(), m.iter().map(|r| r.members_in_common).collect::<Vec<_>>()),
        text_column("village_t", m.iter().map(|r| r.t.map(|i| x0.households.village[i as usize].as_str()))),
        text_column("village_t1", m.iter().map(|r| r.t1.map(|j| x1.households.village[j as usize].as_str()))),
        Column::new("poor_t".into(), tb(&|i| x0.households.poor[i])),
        Column::new("poor_t1".into(), t1b(&|j| x1.households.poor[j])),
        Column::new("target_poor_t".into(), tb(&|i| x0.households.target[i])),
        Column::new("target_poor_t1".into(), t1b(&|j| x1.households.target[j])),
        Column::new(
            "score_t".into(),
            m.iter().map(|r| r.t.map(|i| x0.households.score[i as usize])).collect::<Vec<_>>(),
        ),
        Column::new(
            "score_t1".into(),
            m.iter().map(|r| r.t1.map(|j| x1.households.score[j as usize])).collect::<Vec<_>>(),
        ),
        labels_column("deprived_t", &x0.edition, &t(&|i| Some(x0.deprived(i)))),
        labels_column("deprived_t1", &x1.edition, &t1(&|j| Some(x1.deprived(j)))),
        text_column(
            "programs_t",
            m.iter().map(|r| r.t.and_then(|i| programs.get(&x0.households.id[i as usize].0)).map(String::as_str)),
        ),
    ];
    Ok(DataFrame::new_infer_height(cols)?)
}

/// Writes [`matches_frame`] to `path` a batch of rows at a time.
fn write_matches(p: &Panel, served: &[Served], path: &Path) -> Result<()> {
    let programs = programs_of(&p.t.edition, served);
    write_batches(path, p.matches.len(), &|rows| matches_rows(p, &programs, rows))
}

/// One row per area: the flows of poor and target poor households, per dimension and indicator.
pub fn transitions_frame(p: &Panel) -> Result<DataFrame> {
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
    p: &Panel,
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
    p: &Panel,
    served: &[Served],
    effects: &[Effect],
    unknown_served: u64,
    notices: &[String],
    out: &Path,
) -> Result<()> {
    write_matches(p, served, &out.join("matches.parquet"))?;
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
pub fn html(p: &Panel, effects: &[Effect], notices: &[String]) -> String {
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
pub fn trajectories_frame(panels: &[Panel], names: &[String], served: &[Vec<Served>]) -> Result<DataFrame> {
    let t = Trajectories::new(panels, names, served)?;
    t.rows(0..t.len())
}

/// Writes [`trajectories_frame`] to `path`, a batch of trajectories at a time.
pub fn write_trajectories(panels: &[Panel], names: &[String], served: &[Vec<Served>], path: &Path) -> Result<()> {
    let t = Trajectories::new(panels, names, served)?;
    write_batches(path, t.len(), &|rows| t.rows(rows))
}

/// Writes the `len` rows `frame` makes to `path`, [`BATCH`] at a time (at least one batch: a
/// table without rows still has its columns).
fn write_batches(path: &Path, len: usize, frame: &dyn Fn(std::ops::Range<usize>) -> Result<DataFrame>) -> Result<()> {
    let mut out = crate::frame::ParquetAppender::new(path, &[]);
    let mut start = 0;
    loop {
        let end = (start + BATCH).min(len);
        out.push(&frame(start..end)?)?;
        if end == len {
            break;
        }
        start = end;
    }
    out.finish()
}

/// The chains of household rows, one row of `n` rounds per trajectory.
struct Trajectories<'a> {
    panels: &'a [Panel],
    names: &'a [String],
    programs: Vec<HashMap<u64, String>>,
    /// `chains[c * n + r]`: trajectory `c`'s household row in round `r`.
    chains: Vec<Option<u32>>,
    n: usize,
}

impl<'a> Trajectories<'a> {
    fn new(panels: &'a [Panel], names: &'a [String], served: &[Vec<Served>]) -> Result<Self> {
        let n = panels.len() + 1;
        if names.len() != n || served.len() > n {
            return Err(crate::Error::Config("one name per round and at most one served list per round".into()));
        }
        let mut chains: Vec<Option<u32>> = Vec::new();
        let mut start = |r: usize, h: u32| {
            let at = chains.len();
            chains.resize(at + n, None);
            chains[at + r] = Some(h);
            let mut cur = h;
            for (k, p) in panels.iter().enumerate().skip(r) {
                match p.successor[cur as usize] {
                    Some(next) => {
                        chains[at + k + 1] = Some(next);
                        cur = next;
                    }
                    None => break,
                }
            }
        };
        if let Some(first) = panels.first() {
            // Household rows as `u32` (Round::check_rows), counted, not narrowed.
            for (_, h) in first.t.households.id.iter().zip(0u32..) {
                start(0, h);
            }
        }
        for (r, p) in panels.iter().enumerate() {
            for (pred, j) in p.predecessor.iter().zip(0u32..) {
                let continuing = pred.is_some_and(|i| p.successor[i as usize] == Some(j));
                if !continuing {
                    start(r + 1, j);
                }
            }
        }
        let programs = (0..n)
            .map(|r| programs_of(&Self::round_of(panels, r).edition, served.get(r).map_or(&[], Vec::as_slice)))
            .collect();
        Ok(Trajectories { panels, names, programs, chains, n })
    }

    fn round_of(panels: &[Panel], r: usize) -> &Round {
        if r < panels.len() { &panels[r].t } else { &panels[r - 1].t1 }
    }

    fn len(&self) -> usize {
        self.chains.len() / self.n
    }

    fn rows(&self, range: std::ops::Range<usize>) -> Result<DataFrame> {
        let mut cols = Vec::new();
        for r in 0..self.n {
            let x = Self::round_of(self.panels, r);
            let programs = &self.programs[r];
            let at: Vec<Option<usize>> =
                range.clone().map(|c| self.chains[c * self.n + r].map(|h| h as usize)).collect();
            let y = &self.names[r];
            let h = &x.households;
            cols.push(Column::new(
                format!("household_id_{y}").into(),
                at.iter().map(|c| c.map(|i| h.id[i].0)).collect::<Vec<_>>(),
            ));
            cols.push(text_column(&format!("village_{y}"), at.iter().map(|c| c.map(|i| h.village[i].as_str()))));
            cols.push(Column::new(
                format!("poor_{y}").into(),
                at.iter().map(|c| c.map(|i| h.poor[i])).collect::<Vec<_>>(),
            ));
            cols.push(Column::new(
                format!("target_poor_{y}").into(),
                at.iter().map(|c| c.map(|i| h.target[i])).collect::<Vec<_>>(),
            ));
            cols.push(Column::new(
                format!("score_{y}").into(),
                at.iter().map(|c| c.map(|i| h.score[i])).collect::<Vec<_>>(),
            ));
            let bits: Vec<Option<u64>> = at.iter().map(|c| c.map(|i| x.deprived(i))).collect();
            cols.push(labels_column(&format!("deprived_{y}"), &x.edition, &bits));
            cols.push(text_column(
                &format!("programs_{y}"),
                at.iter().map(|c| c.and_then(|i| programs.get(&h.id[i].0)).map(String::as_str)),
            ));
        }
        Ok(DataFrame::new_infer_height(cols)?)
    }
}
