//! The HTML report: one self-contained file (inline CSS and SVG, a few lines of script for
//! sorting tables, no fonts, images or scripts fetched from anywhere) with the national and
//! per-province figures, poverty by dimension and indicator, the province ranking, a tile-grid
//! map of the provinces shaded by target-poor rate, and — with a plan — the coverage of
//! deprivations by the agencies' programs and the gaps.
//!
//! Written by hand rather than with a template or chart library: the page is small, must open
//! without a network, and a template engine or plotting crate would add build time for a few
//! hundred lines of markup.
//!
//! ```
//! assert_eq!(tpmap::report::html::escape("<b>ผ่าน & fail</b>"), "&lt;b&gt;ผ่าน &amp; fail&lt;/b&gt;");
//! ```

use std::fmt::Write as _;

use super::PlanFigures;
use crate::aggregate::{AreaMeasures, Measures};
use crate::areas::{AreaCode, AreaRegistry};
use crate::ingest::IngestReport;
use crate::summary::Summary;

/// What the report shows.
pub struct Inputs<'a> {
    /// Counts per province and indicator.
    pub summary: &'a Summary,
    /// Area measures (country first, then provinces and lower levels).
    pub measures: &'a Measures,
    /// Rows read, accepted and rejected.
    pub ingest: &'a IngestReport,
    /// Plan figures, when a plan was made.
    pub plan: Option<&'a PlanFigures>,
    /// Notices that travel with the data (e.g. that it is SYNTHETIC).
    pub notices: &'a [String],
    /// The scoring options in words.
    pub options: String,
    /// The indicator edition (for the indicators' names).
    pub edition: &'a crate::indicators::Edition,
    /// Earlier rounds compared with this one (`tpmap run R1 R2 ...`), for "Year over year".
    pub panel: Option<&'a crate::panel::rounds::RoundsOutcome>,
}

/// Tile-grid positions `(province code, row, column)`: one square per province, placed by hand
/// near its geographic position (north at the top). No boundary data is used; the layout is
/// tpmap's own, checked to hold each of the 77 provinces once.
pub const TILES: [(u8, u8, u8); 77] = [
    (57, 0, 2),
    (58, 1, 0),
    (50, 1, 1),
    (56, 1, 2),
    (55, 1, 3),
    (51, 2, 1),
    (52, 2, 2),
    (54, 2, 3),
    (43, 2, 6),
    (38, 2, 7),
    (63, 3, 0),
    (64, 3, 1),
    (53, 3, 2),
    (65, 3, 3),
    (42, 3, 4),
    (39, 3, 5),
    (41, 3, 6),
    (47, 3, 7),
    (48, 3, 8),
    (62, 4, 1),
    (66, 4, 2),
    (67, 4, 3),
    (36, 4, 4),
    (40, 4, 5),
    (46, 4, 6),
    (49, 4, 7),
    (61, 5, 1),
    (60, 5, 2),
    (16, 5, 3),
    (30, 5, 4),
    (44, 5, 5),
    (45, 5, 6),
    (35, 5, 7),
    (37, 5, 8),
    (71, 6, 0),
    (72, 6, 1),
    (18, 6, 2),
    (17, 6, 3),
    (19, 6, 4),
    (31, 6, 5),
    (32, 6, 6),
    (33, 6, 7),
    (34, 6, 8),
    (70, 7, 0),
    (73, 7, 1),
    (15, 7, 2),
    (14, 7, 3),
    (26, 7, 4),
    (25, 7, 5),
    (27, 7, 6),
    (75, 8, 0),
    (74, 8, 1),
    (12, 8, 2),
    (13, 8, 3),
    (24, 8, 4),
    (76, 9, 0),
    (10, 9, 2),
    (11, 9, 3),
    (20, 9, 4),
    (21, 9, 5),
    (22, 9, 6),
    (23, 9, 7),
    (77, 10, 0),
    (86, 11, 0),
    (85, 12, 0),
    (84, 12, 1),
    (82, 13, 0),
    (81, 13, 1),
    (80, 13, 2),
    (83, 14, 0),
    (92, 14, 1),
    (93, 14, 2),
    (91, 15, 1),
    (90, 15, 2),
    (94, 15, 3),
    (95, 16, 3),
    (96, 16, 4),
];

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// An integer with thousands separators (`1,234,567`).
pub(crate) fn int(v: f64) -> String {
    let s = format!("{:.0}", v.max(0.0));
    let mut o = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            o.push(',');
        }
        o.push(c);
    }
    o
}

pub(crate) fn pct(num: f64, den: f64) -> String {
    if den > 0.0 { format!("{:.1}%", 100.0 * num / den) } else { "–".into() }
}

/// Sequential colour (light yellow to dark red) for a share in `[0, max]`.
fn shade(v: f64, max: f64) -> String {
    let t = if max > 0.0 { (v / max).clamp(0.0, 1.0) } else { 0.0 };
    let stops = [(255.0, 247.0, 188.0), (254.0, 196.0, 79.0), (236.0, 112.0, 20.0), (153.0, 52.0, 4.0)];
    let x = t * (stops.len() - 1) as f64;
    let i = (x.floor() as usize).min(stops.len() - 2);
    let f = x - i as f64;
    let (a, b) = (stops[i], stops[i + 1]);
    let m = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    format!("#{:02x}{:02x}{:02x}", m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

/// Diverging colour for a change in `[-max, max]`: green for a fall, red for a rise, white at 0.
pub(crate) fn diverge(v: f64, max: f64) -> String {
    let t = if max > 0.0 { (v / max).clamp(-1.0, 1.0) } else { 0.0 };
    let (end, f) = if t < 0.0 { ((26.0, 152.0, 80.0), -t) } else { ((215.0, 48.0, 39.0), t) };
    let m = |q: f64| (255.0 + (q - 255.0) * f).round() as u8;
    format!("#{:02x}{:02x}{:02x}", m(end.0), m(end.1), m(end.2))
}

const DIMENSION_COLOURS: [&str; 5] = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e"];

pub(crate) fn dimension_colour(names: &[String], name: &str) -> &'static str {
    names.iter().position(|d| d == name).map_or("#888", |i| DIMENSION_COLOURS[i % DIMENSION_COLOURS.len()])
}

/// Horizontal bars: `(label, value, colour, title)`, values as shares in `[0, 1]`.
fn bars(rows: &[(String, f64, &str, String)], width: u32) -> String {
    bars_with(rows, width, 150)
}

/// [`bars`] with `label_w` pixels for the labels.
pub(crate) fn bars_with(rows: &[(String, f64, &str, String)], width: u32, label_w: u32) -> String {
    let h = 22;
    let max = rows.iter().map(|r| r.1).fold(0.0f64, f64::max).max(1e-9);
    let total_h = rows.len() as u32 * h + 4;
    let mut s = format!(
        r#"<svg class="bars" role="img" viewBox="0 0 {width} {total_h}" width="{width}" height="{total_h}" xmlns="http://www.w3.org/2000/svg">"#
    );
    for (i, (label, v, colour, title)) in rows.iter().enumerate() {
        let y = i as u32 * h + 2;
        let w = ((width - label_w - 60) as f64 * v / max).max(0.5);
        let _ = write!(
            s,
            r#"<g><title>{}</title><text x="{}" y="{}" text-anchor="end">{}</text><rect x="{label_w}" y="{}" width="{w:.1}" height="{}" fill="{colour}"/><text x="{:.1}" y="{}">{:.1}%</text></g>"#,
            escape(title),
            label_w - 6,
            y + 15,
            escape(label),
            y + 3,
            h - 6,
            label_w as f64 + w + 4.0,
            y + 15,
            100.0 * v
        );
    }
    s.push_str("</svg>");
    s
}

/// An indicator's label and Thai name (`1.1 เด็กแรกเกิดมีน้ำหนัก...`), from the edition when the
/// profile bit is one of its indicators.
pub(crate) fn indicator_name(e: &crate::indicators::Edition, bit: usize, label: &str) -> String {
    if bit < e.len() && e.indicator(bit).label() == label {
        format!("{label} {}", e.indicator(bit).name_th)
    } else {
        label.to_string()
    }
}

/// `text` cut to `n` characters, with an ellipsis when cut.
pub(crate) fn short(text: &str, n: usize) -> String {
    if text.chars().count() <= n { text.to_string() } else { text.chars().take(n - 1).chain(['…']).collect() }
}

fn province_rows(m: &Measures) -> Vec<&AreaMeasures> {
    m.rows.iter().filter(|r| r.level == "province").collect()
}

pub(crate) fn names_of(code: &str) -> (String, String) {
    AreaCode::parse(code)
        .ok()
        .and_then(|c| AreaRegistry::embedded().names(&c).map(|n| (n.th.clone(), n.en.clone())))
        .unwrap_or_else(|| (code.to_string(), code.to_string()))
}

fn target_rate(r: &AreaMeasures) -> f64 {
    if r.population > 0.0 { r.target_poor / r.population } else { 0.0 }
}

/// A province's tile: its fill, hover text, and whether the fill is dark (white lettering).
pub(crate) type TileCell<'a> = dyn Fn(&str) -> Option<(String, String, bool)> + 'a;

/// The tile-grid map as inline SVG: each province's tile shows its Thai name (squeezed to the
/// tile), with its code, English name and `cell`'s text on hover; `cell` gives a province's
/// fill and text (`None`: grey, no data); `legend` is drawn below the tiles.
pub(crate) fn tile_map(id: &str, aria: &str, cell: &TileCell<'_>, legend: &[(String, String)]) -> String {
    let (size, gap) = (56u32, 4u32);
    let cols = TILES.iter().map(|t| t.2).max().unwrap_or(0) as u32 + 1;
    let rows = TILES.iter().map(|t| t.1).max().unwrap_or(0) as u32 + 1;
    let (w, h) = (cols * (size + gap), rows * (size + gap) + 40);
    let mut s = format!(
        r#"<svg id="{}" role="img" aria-label="{}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(id),
        escape(aria)
    );
    for &(code, row, col) in &TILES {
        let key = format!("{code:02}");
        let (x, y) = (col as u32 * (size + gap), row as u32 * (size + gap));
        let (th, en) = names_of(&key);
        let (fill, text, dark) = cell(&key).unwrap_or_else(|| ("#e5e5e5".to_string(), "no data".to_string(), false));
        // Long names are squeezed into the tile rather than cut: about 6.6 px a letter at 11 px
        // (Thai vowel and tone marks above and below take no width).
        let combining = |c: char| matches!(c, '\u{0E31}' | '\u{0E34}'..='\u{0E3A}' | '\u{0E47}'..='\u{0E4E}');
        let squeeze = th.chars().filter(|&c| !combining(c)).count() as f64 * 6.6 > (size - 6) as f64;
        let _ = write!(
            s,
            r##"<g class="tile" data-province="{key}"><title>{key} {} ({}): {}</title><rect x="{x}" y="{y}" width="{size}" height="{size}" rx="4" fill="{fill}" stroke="#fff"/><text x="{}" y="{}" text-anchor="middle"{}{}>{}</text><text x="{}" y="{}" text-anchor="middle" class="code{}">{key}</text></g>"##,
            escape(&th),
            escape(&en),
            escape(&text),
            x + size / 2,
            y + size / 2 - 2,
            if dark { r#" class="on-dark""# } else { "" },
            if squeeze {
                format!(r#" textLength="{}" lengthAdjust="spacingAndGlyphs""#, size - 6)
            } else {
                String::new()
            },
            escape(&th),
            x + size / 2,
            y + size / 2 + 14,
            if dark { " on-dark" } else { "" },
        );
    }
    let ly = rows * (size + gap) + 8;
    for (i, (fill, label)) in legend.iter().enumerate() {
        let _ = write!(
            s,
            r#"<rect x="{}" y="{ly}" width="30" height="12" fill="{fill}"/><text x="{}" y="{}" class="small">{}</text>"#,
            i * 40,
            i * 40,
            ly + 26,
            escape(label)
        );
    }
    s.push_str("</svg>");
    s
}

/// The target-poor rate map of the main report.
fn map(m: &Measures) -> String {
    let provinces = province_rows(m);
    let max = provinces.iter().map(|r| target_rate(r)).fold(0.0f64, f64::max);
    let cell = |key: &str| {
        provinces.iter().find(|r| r.area == key).map(|r| {
            (
                shade(target_rate(r), max),
                format!(
                    "target poor {} of {} people ({}); poor {}",
                    int(r.target_poor),
                    int(r.population),
                    pct(r.target_poor, r.population),
                    pct(r.poor, r.population)
                ),
                target_rate(r) > 0.6 * max,
            )
        })
    };
    let legend: Vec<(String, String)> =
        (0..=5).map(|i| max * i as f64 / 5.0).map(|v| (shade(v, max), format!("{:.1}%", 100.0 * v))).collect();
    tile_map("map", "Provinces shaded by target-poor rate", &cell, &legend)
}

pub(crate) const STYLE: &str = r#"
body{font-family:"Noto Sans Thai","Sarabun","Loma","Garuda",system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#14365d;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:24px}
main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:14px 18px;margin:16px 0}
h2{font-size:19px;margin:4px 0 10px}
.notice{background:#fff3cd;border:1px solid #e0c36a;padding:8px 12px;border-radius:4px;margin:10px 0;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:150px;background:#fff}
.card b{display:block;font-size:22px}.card span{color:#555;font-size:13px}
.row{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}
th{background:#f0f3f7;cursor:pointer;position:sticky;top:0}td.l,th.l{text-align:left}
.scroll{max-height:560px;overflow:auto}
svg text{font-size:12px;fill:#222}svg .small{font-size:10px}.tile text{font-size:11px;font-weight:600}.tile text.code{font-size:9px;font-weight:400;fill:#555}.tile text.on-dark{fill:#fff}
.mapbox{max-width:540px}#map{max-width:100%;height:auto}.bar{display:inline-block;height:10px;background:#ec7014;vertical-align:middle}
footer{font-size:12px;color:#555;padding:0 28px 30px;max-width:1200px}
"#;

// Sorts a table by a clicked header (numbers by value, text by Thai collation). The report reads
// the same without it.
pub(crate) const SCRIPT: &str = r#"
document.querySelectorAll('table.sortable th').forEach(function(th,i){th.addEventListener('click',function(){
var tb=th.closest('table').tBodies[0],rows=Array.from(tb.rows),asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
rows.sort(function(a,b){var x=a.cells[i].dataset.v||a.cells[i].textContent,y=b.cells[i].dataset.v||b.cells[i].textContent;
var p=parseFloat(x),q=parseFloat(y);var c=(!isNaN(p)&&!isNaN(q))?p-q:x.localeCompare(y,'th');return asc?c:-c;});
rows.forEach(function(r){tb.appendChild(r);});});});
document.body.dataset.tiles=document.querySelectorAll('#map .tile').length;
"#;

/// Renders the report as one HTML document.
pub fn render(inputs: &Inputs) -> String {
    let i = inputs;
    let m = i.measures;
    let c = &m.rows[0];
    let mut s = String::with_capacity(64 * 1024);
    s.push_str("<!DOCTYPE html>\n<html lang=\"th\"><head><meta charset=\"utf-8\">");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    s.push_str("<title>tpmap report — poverty and assistance by province</title><style>");
    s.push_str(STYLE);
    s.push_str("</style></head><body>");
    let _ = write!(
        s,
        "<header><h1>tpmap — poverty and assistance report</h1><div>รายงานคนจนเป้าหมายและการช่วยเหลือ · {}</div></header><main>",
        escape(&i.options)
    );
    for n in i.notices {
        let _ = write!(s, "<div class=\"notice\">{}</div>", escape(n));
    }
    if let Some(p) = i.plan
        && p.summary.illustrative
    {
        let _ = write!(
            s,
            "<div class=\"notice\">Program catalogue {} is ILLUSTRATIVE: its programs are invented, not real ones.</div>",
            escape(&p.summary.catalogue)
        );
    }

    // Key figures.
    s.push_str("<section id=\"country\"><h2>Country / ทั้งประเทศ</h2><div class=\"cards\">");
    let rejected = i.ingest.households.rejected + i.ingest.persons.rejected;
    let mut card = |v: String, label: &str| {
        let _ = write!(s, "<div class=\"card\"><b>{v}</b><span>{label}</span></div>");
    };
    card(int(i.summary.households as f64), "households / ครัวเรือน");
    card(int(i.summary.persons as f64), "people / คน");
    card(format!("{} ({})", int(c.poor), pct(c.poor, c.population)), "poor (TPMAP rule) / คนจน");
    card(format!("{} ({})", int(c.target_poor), pct(c.target_poor, c.population)), "target poor / คนจนเป้าหมาย");
    card(format!("{:.3}", c.m0), "M0 (adjusted headcount)");
    card(int(rejected as f64), "input rows rejected");
    if let Some(p) = i.plan {
        card(
            format!(
                "{} ({})",
                int(p.summary.covered as f64),
                pct(p.summary.covered as f64, p.summary.deprivations as f64)
            ),
            "deprivations covered by programs",
        );
    }
    s.push_str("</div>");
    let _ = write!(
        s,
        "<p>Dimensions: {}. Rows read: households {} ({} accepted), persons {} ({} accepted).</p></section>",
        escape(&m.spec.dimensions.join(" + ")),
        int(i.ingest.households.input_rows as f64),
        int(i.ingest.households.accepted as f64),
        int(i.ingest.persons.input_rows as f64),
        int(i.ingest.persons.accepted as f64)
    );

    // Map and dimensions.
    s.push_str(
        "<section id=\"provinces-map\"><h2>Target-poor rate by province</h2><div class=\"row\"><div class=\"mapbox\">",
    );
    s.push_str(&map(m));
    s.push_str("<p class=\"small\">Tile-grid map: one square per province (its Thai name and code), placed near its position; hover for the English name and figures. Grey: no households in the data.</p></div><div>");
    let dims: Vec<(String, f64, &str, String)> = m
        .spec
        .dimensions
        .iter()
        .zip(&c.dimension_poor)
        .map(|(d, n)| {
            let share = if c.population > 0.0 { n / c.population } else { 0.0 };
            (d.clone(), share, dimension_colour(&m.spec.dimensions, d), format!("{d}: {} people", int(*n)))
        })
        .collect();
    s.push_str("<h2>Poor by dimension (share of people)</h2>");
    s.push_str(&bars(&dims, 560));
    let inds: Vec<(String, f64, &str, String)> = m
        .spec
        .items
        .iter()
        .zip(&c.uncensored)
        .map(|(it, v)| {
            let d = &m.spec.dimensions[it.dimension];
            let name = indicator_name(i.edition, it.bit, &it.label);
            (short(&name, 28), *v, dimension_colour(&m.spec.dimensions, d), format!("{name} ({d}): {:.2}%", 100.0 * v))
        })
        .collect();
    s.push_str("<h2>Deprived in each indicator (uncensored headcount)</h2>");
    s.push_str(&bars_with(&inds, 560, 230));
    s.push_str("</div></div></section>");

    // Province ranking.
    let mut provinces = province_rows(m);
    provinces.sort_by(|a, b| target_rate(b).total_cmp(&target_rate(a)).then_with(|| a.area.cmp(&b.area)));
    let max_rate = provinces.first().map_or(0.0, |r| target_rate(r));
    s.push_str("<section id=\"ranking\"><h2>Province ranking by target-poor rate</h2><div class=\"scroll\"><table class=\"sortable\"><thead><tr><th>rank</th><th>code</th><th class=\"l\">province</th><th>people</th><th>poor</th><th>H</th><th>target poor</th><th>target rate</th><th>M0</th>");
    if i.plan.is_some() {
        s.push_str("<th>deprivations</th><th>covered</th>");
    }
    s.push_str("</tr></thead><tbody>");
    for (rank, r) in provinces.iter().enumerate() {
        let (th, en) = names_of(&r.area);
        let rate = target_rate(r);
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td class=\"l\">{} <small>{}</small></td><td data-v=\"{}\">{}</td><td data-v=\"{}\">{}</td><td data-v=\"{:.6}\">{}</td><td data-v=\"{}\">{}</td><td data-v=\"{rate:.6}\"><span class=\"bar\" style=\"width:{:.0}px\"></span> {}</td><td>{:.4}</td>",
            rank + 1,
            escape(&r.area),
            escape(&th),
            escape(&en),
            r.population,
            int(r.population),
            r.poor,
            int(r.poor),
            r.h,
            pct(r.poor, r.population),
            r.target_poor,
            int(r.target_poor),
            if max_rate > 0.0 { 60.0 * rate / max_rate } else { 0.0 },
            pct(r.target_poor, r.population),
            r.m0
        );
        if let Some(p) = i.plan {
            match p.areas.iter().find(|a| a.level == "province" && a.code == r.area) {
                Some(a) => {
                    let (d, cv) = (a.deprivations_total(), a.covered_total());
                    let _ = write!(
                        s,
                        "<td data-v=\"{d}\">{}</td><td data-v=\"{}\">{}</td>",
                        int(d as f64),
                        if d > 0 { cv as f64 / d as f64 } else { 0.0 },
                        pct(cv as f64, d as f64)
                    );
                }
                None => s.push_str("<td>0</td><td>–</td>"),
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div></section>");

    // Plan coverage.
    if let Some(p) = i.plan {
        s.push_str("<section id=\"coverage\"><h2>Coverage of deprivations by agency programs, and the gaps</h2>");
        let _ = write!(
            s,
            "<p>Catalogue {}: {} households planned for, {} deprivations, {} covered ({}), {} with no program addressing them; {} places, {} baht, {} programs running.</p><div class=\"row\"><div>",
            escape(&p.summary.catalogue),
            int(p.summary.households as f64),
            int(p.summary.deprivations as f64),
            int(p.summary.covered as f64),
            pct(p.summary.covered as f64, p.summary.deprivations as f64),
            int(p.summary.no_program as f64),
            int(p.summary.places as f64),
            int(p.summary.spent as f64),
            p.summary.active_programs
        );
        let dims: Vec<(String, f64, &str, String)> = p
            .summary
            .by_dimension
            .iter()
            .map(|(d, v)| {
                let share = if v[0] > 0 { v[1] as f64 / v[0] as f64 } else { 0.0 };
                (
                    d.to_string(),
                    share,
                    dimension_colour(&m.spec.dimensions, d),
                    format!("{d}: {} of {} covered", int(v[1] as f64), int(v[0] as f64)),
                )
            })
            .collect();
        s.push_str("<h2>Share of deprivations covered, by dimension</h2>");
        s.push_str(&bars(&dims, 520));
        s.push_str("<h2>By indicator</h2><table class=\"sortable\"><thead><tr><th class=\"l\">indicator</th><th class=\"l\">dimension</th><th>deprivations</th><th>covered</th><th>gaps</th><th>no program</th></tr></thead><tbody>");
        for (label, dim, n, cv, none) in &p.indicators {
            let _ = write!(
                s,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td data-v=\"{n}\">{}</td><td data-v=\"{}\">{}</td><td data-v=\"{}\">{}</td><td data-v=\"{none}\">{}</td></tr>",
                escape(label),
                escape(dim),
                int(*n as f64),
                if *n > 0 { *cv as f64 / *n as f64 } else { 0.0 },
                pct(*cv as f64, *n as f64),
                n - cv,
                int((n - cv) as f64),
                int(*none as f64)
            );
        }
        s.push_str("</tbody></table></div><div><h2>Places by agency</h2><table class=\"sortable\"><thead><tr><th class=\"l\">agency</th><th>programs</th><th>places</th></tr></thead><tbody>");
        for (th, en, places, programs) in &p.agencies {
            let _ = write!(
                s,
                "<tr><td class=\"l\">{} <small>{}</small></td><td>{programs}</td><td data-v=\"{places}\">{}</td></tr>",
                escape(th),
                escape(en),
                int(*places as f64)
            );
        }
        s.push_str("</tbody></table></div></div></section>");
    }
    if let Some(r) = i.panel {
        year_over_year(&mut s, r);
    }
    s.push_str("</main><footer><p>Made by tpmap ");
    s.push_str(env!("CARGO_PKG_VERSION"));
    s.push_str(". Sources: scores and measures computed from the input extracts by TPMAP's rule; province names from the DOPA/BMN area tables embedded in tpmap; the tile-grid layout is tpmap's own (no boundary data). Counts here are not suppressed: this report is for internal use; publish the suppressed files in plan/.</p></footer>");
    s.push_str("<script>");
    s.push_str(SCRIPT);
    s.push_str("</script></body></html>\n");
    s
}

/// "Year over year": the latest pair of rounds — the country's flows into and out of poverty,
/// the provinces' flows with their net change, and the programs' follow-up — with links to each
/// pair's own page (maps and flows by dimension).
fn year_over_year(s: &mut String, r: &crate::panel::rounds::RoundsOutcome) {
    let Some(p) = r.pairs.last() else { return };
    let _ = write!(
        s,
        "<section id=\"year-over-year\"><h2>Year over year / การเปลี่ยนแปลงรายปี: {} → {}</h2>",
        escape(&p.earlier),
        escape(&p.later)
    );
    if let Some(c) = &p.country {
        s.push_str("<div class=\"cards\">");
        let f = &c.poor;
        let mut card = |v: String, label: &str| {
            let _ = write!(s, "<div class=\"card\"><b>{v}</b><span>{label}</span></div>");
        };
        card(
            format!("{} → {} ({})", int(f.poor_t as f64), int(f.poor_t1 as f64), change(f.poor_t, f.poor_t1)),
            "poor households / ครัวเรือนยากจน",
        );
        card(int(f.exits as f64), "households that left poverty / พ้นความยากจน");
        card(int(f.entries as f64), "households that fell into poverty / ตกเป็นคนจน");
        let t = &c.target;
        card(
            format!("{} → {} ({})", int(t.poor_t as f64), int(t.poor_t1 as f64), change(t.poor_t, t.poor_t1)),
            "target-poor households / ครัวเรือนเป้าหมาย",
        );
        let pe = &c.people;
        card(format!("{} / {}", int(pe.exits as f64), int(pe.entries as f64)), "people out of / into poverty");
        s.push_str("</div>");
        s.push_str("<div class=\"scroll\"><table><thead><tr><th class=\"l\">flows (country)</th><th>earlier</th><th>stayed</th><th>left</th><th>fell in</th><th>new</th><th>gone</th><th>later</th></tr></thead><tbody>");
        for (label, f) in
            [("poor households", &c.poor), ("target-poor households", &c.target), ("poor people", &c.people)]
        {
            let _ = write!(
                s,
                "<tr><td class=\"l\">{label}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                int(f.poor_t as f64),
                int(f.stayed as f64),
                int(f.exits as f64),
                int(f.entries as f64),
                int(f.new_poor as f64),
                int(f.gone_poor as f64),
                int(f.poor_t1 as f64)
            );
        }
        s.push_str("</tbody></table></div>");
    }
    if !p.provinces.is_empty() {
        let provinces: Vec<&crate::panel::AreaTransitions> = p.provinces.iter().collect();
        s.push_str("<h3>Net change in poor households by province</h3><div class=\"mapbox\">");
        s.push_str(&crate::panel::output::change_map("change-map", &provinces));
        s.push_str("<p class=\"small\">Green: fewer poor households than in the earlier round; red: more (the scale stops at its ends). Hover for the flows.</p></div>");
        s.push_str("<h3>Provinces: poor households</h3><div class=\"scroll\"><table class=\"sortable\"><thead><tr><th>code</th><th class=\"l\">province</th><th>earlier</th><th>left</th><th>fell in</th><th>moved in − out</th><th>new − gone</th><th>later</th><th>net change</th></tr></thead><tbody>");
        for a in &p.provinces {
            let (th, en) = names_of(&a.area);
            let f = &a.poor;
            let net = if f.poor_t > 0 { (f.poor_t1 as f64 - f.poor_t as f64) / f.poor_t as f64 } else { 0.0 };
            let _ = write!(
                s,
                "<tr><td>{}</td><td class=\"l\">{} <small>{}</small></td><td>{}</td><td>{}</td><td>{}</td><td data-v=\"{}\">{}</td><td data-v=\"{}\">{}</td><td>{}</td><td data-v=\"{net:.6}\">{}</td></tr>",
                escape(&a.area),
                escape(&th),
                escape(&en),
                int(f.poor_t as f64),
                int(f.exits as f64),
                int(f.entries as f64),
                f.moved_in as i64 - f.moved_out as i64,
                signed(f.moved_in as i64 - f.moved_out as i64),
                f.new_poor as i64 - f.gone_poor as i64,
                signed(f.new_poor as i64 - f.gone_poor as i64),
                int(f.poor_t1 as f64),
                change(f.poor_t, f.poor_t1)
            );
        }
        s.push_str("</tbody></table></div>");
    }
    if !p.effects.is_empty() {
        s.push_str("<h3>Did the help work? Programs of the earlier round, followed up</h3><div class=\"scroll\"><table><thead><tr><th class=\"l\">program</th><th>indicator</th><th>served</th><th>followed</th><th>resolved</th><th>comparison resolved</th><th>effect</th><th>95% CI</th></tr></thead><tbody>");
        let pts = |v: f64| if v.is_finite() { format!("{:+.1} pts", 100.0 * v) } else { "–".into() };
        for e in &p.effects {
            let _ = write!(
                s,
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td>{:.1}%</td><td>{}</td><td>{} to {}</td></tr>",
                escape(&e.program),
                escape(&e.indicator),
                int(e.served as f64),
                int(e.followed as f64),
                100.0 * e.rate_served,
                100.0 * e.rate_comparison,
                pts(e.effect),
                pts(e.ci_low),
                pts(e.ci_high)
            );
        }
        let _ = write!(s, "</tbody></table></div><p class=\"small\">{}</p>", escape(crate::panel::output::CAVEAT));
    }
    s.push_str("<p>Each pair's page, with the province map shaded by the net change and the flows by dimension: ");
    for (k, q) in r.pairs.iter().enumerate() {
        let href =
            if q.folder.is_empty() { "panel/panel.html".to_string() } else { format!("panel/{}/panel.html", q.folder) };
        let _ = write!(
            s,
            "{}<a href=\"{}\">{} → {}</a>",
            if k > 0 { ", " } else { "" },
            escape(&href),
            escape(&q.earlier),
            escape(&q.later)
        );
    }
    s.push_str(" (matches, transitions and trajectories in panel/).</p></section>");
}

/// `+12.3%` from `a` to `b` (– when `a` is 0).
fn change(a: u64, b: u64) -> String {
    if a == 0 { "–".into() } else { format!("{:+.1}%", 100.0 * (b as f64 - a as f64) / a as f64) }
}

/// A count with its sign (`+1,234`, `−56`).
fn signed(v: i64) -> String {
    if v < 0 { format!("−{}", int(v.unsigned_abs() as f64)) } else { format!("+{}", int(v as f64)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_hold_every_province_once_on_distinct_squares() {
        let mut codes: Vec<u8> = TILES.iter().map(|t| t.0).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), 77);
        let known = AreaRegistry::embedded().provinces();
        assert_eq!(known.len(), 77);
        for p in known {
            assert!(codes.contains(&p.province_number()), "{p} has no tile");
        }
        let mut squares: Vec<(u8, u8)> = TILES.iter().map(|t| (t.1, t.2)).collect();
        squares.sort_unstable();
        squares.dedup();
        assert_eq!(squares.len(), 77);
    }

    #[test]
    fn escapes_markup_and_formats_numbers() {
        assert_eq!(escape("<a href=\"x\">ก & ข</a>"), "&lt;a href=&quot;x&quot;&gt;ก &amp; ข&lt;/a&gt;");
        assert_eq!(int(1234567.4), "1,234,567");
        assert_eq!(int(999.0), "999");
        assert_eq!(pct(1.0, 0.0), "–");
        assert_eq!(shade(0.0, 1.0), "#fff7bc");
        assert_eq!(shade(1.0, 1.0), "#993404");
    }
}
