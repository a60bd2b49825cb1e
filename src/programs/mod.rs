//! The program catalogue: which agency helps with which deprivation, for whom, how many, at what
//! cost — a versioned, serde-typed TOML file (see `data-samples/catalogue.toml`).
//!
//! ```toml
//! [catalogue]
//! id = "illustrative-2570"
//! version = "1"
//! title = "Illustrative catalogue"
//! as_of = "2026-10-01"          # the date effective ranges are checked against
//! illustrative = true
//!
//! [[agency]]
//! id = "msdhs"
//! name_th = "กระทรวงการพัฒนาสังคมและความมั่นคงของมนุษย์"
//! name_en = "Ministry of Social Development and Human Security"
//!
//! [[program]]
//! id = "msdhs-house-repair"
//! name_th = "ซ่อมแซมบ้านผู้มีรายได้น้อย"
//! name_en = "House repair for low-income households"
//! agency = "msdhs"
//! department = "Department of Social Development and Welfare"
//! addresses = ["2.1"]           # indicator codes or labels, or dimension names
//! unit = "household"            # or "person"
//! eligible = "target and any(age >= 60 or disabled)"
//! benefit = { kind = "in_kind", amount = 20000, description = "materials and labour" }
//! unit_cost = 20000             # baht per household (or person) helped
//! capacity = { total = 5000, per_province = 200 }
//! budget = 90000000
//! effective = { from = "2026-10-01", to = "2027-09-30" }
//! excludes = ["other-program"]  # cannot be combined; also excluded when already received
//! ```

pub mod rule;

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::indicators::{Dimension, Edition};
use crate::limits::Limits;
use crate::score::Unit;
use crate::thai::PartialDate;
use crate::{Error, Result};
pub use rule::{Outcome, Rule, RuleStep};

/// An agency of the 2021 MOU (a ministry or the BMA) or any other helper.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agency {
    /// Short id used by programs (`msdhs`).
    pub id: String,
    /// Thai name.
    pub name_th: String,
    /// English name.
    pub name_en: String,
}

/// What a program gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BenefitKind {
    /// Money paid to the household or person.
    Cash,
    /// Goods or works (materials, a water tank, house repair).
    InKind,
    /// Training or education.
    Training,
    /// A service (health check, registration, referral).
    Service,
}

/// A program's benefit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Benefit {
    /// Kind of benefit.
    pub kind: BenefitKind,
    /// Value in baht per unit, where it has one.
    #[serde(default)]
    pub amount: Option<u64>,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// Places a program can give: in total and per area. `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    /// Places in all.
    #[serde(default)]
    pub total: Option<u32>,
    /// Places per province.
    #[serde(default)]
    pub per_province: Option<u32>,
    /// Places per amphoe.
    #[serde(default)]
    pub per_amphoe: Option<u32>,
}

/// One program of the catalogue, resolved against an indicator edition.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// Program id.
    pub id: String,
    /// Thai name.
    pub name_th: String,
    /// English name.
    pub name_en: String,
    /// Index into [`Catalogue::agencies`].
    pub agency: usize,
    /// Department within the agency.
    pub department: String,
    /// Indicators the program addresses (bits of the edition).
    pub addresses: u64,
    /// Household or person program.
    pub unit: Unit,
    /// Eligibility rule.
    pub rule: Rule,
    /// What it gives.
    pub benefit: Benefit,
    /// Cost in baht per unit helped.
    pub unit_cost: u64,
    /// Places it can give: in total, per province, per amphoe.
    pub capacity: Capacity,
    /// Budget in baht, if capped.
    pub budget: Option<u64>,
    /// First and last day the program runs.
    pub effective: Option<(PartialDate, PartialDate)>,
    /// Programs (indices) it cannot be combined with.
    pub excludes: Vec<usize>,
    /// Higher first when programs are filled in turn (then catalogue order).
    pub priority: i32,
}

impl Program {
    /// Dimensions of the indicators it addresses.
    pub fn dimensions(&self, e: &Edition) -> Vec<Dimension> {
        let mut d: Vec<Dimension> =
            (0..e.len()).filter(|&i| self.addresses & (1 << i) != 0).filter_map(|i| e.indicator(i).dimension).collect();
        d.sort();
        d.dedup();
        d
    }

    /// Whether it runs on `date` (programs without dates always run).
    pub fn active_on(&self, date: PartialDate) -> bool {
        self.effective.is_none_or(|(a, b)| {
            a.days_since_epoch() <= date.days_since_epoch() && date.days_since_epoch() <= b.days_since_epoch()
        })
    }

    /// Places affordable within the budget (`None` = unlimited).
    pub fn affordable(&self) -> Option<u64> {
        match (self.budget, self.unit_cost) {
            (Some(b), c) if c > 0 => Some(b / c),
            _ => None,
        }
    }
}

/// A program catalogue.
#[derive(Clone, Debug, PartialEq)]
pub struct Catalogue {
    /// Catalogue id.
    pub id: String,
    /// Version string.
    pub version: String,
    /// Title, repeated in the preamble of every plan output.
    pub title: String,
    /// Reference date: programs whose effective range excludes it are left out of plans.
    pub as_of: PartialDate,
    /// Marked illustrative (not real programs): every output says so.
    pub illustrative: bool,
    /// Free-text note carried into outputs.
    pub note: String,
    /// Agencies, in file order ([`Program::agency`] indexes them).
    pub agencies: Vec<Agency>,
    /// Programs, in file order.
    pub programs: Vec<Program>,
    /// Indicator edition id the catalogue was resolved against.
    pub edition: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    catalogue: Meta,
    #[serde(default)]
    agency: Vec<Agency>,
    #[serde(default)]
    program: Vec<ProgramFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    id: String,
    version: String,
    #[serde(default)]
    title: String,
    as_of: String,
    #[serde(default)]
    illustrative: bool,
    #[serde(default)]
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgramFile {
    id: String,
    name_th: String,
    #[serde(default)]
    name_en: String,
    agency: String,
    #[serde(default)]
    department: String,
    addresses: Vec<String>,
    unit: UnitFile,
    #[serde(default)]
    eligible: String,
    benefit: Benefit,
    #[serde(default)]
    unit_cost: u64,
    #[serde(default)]
    capacity: Capacity,
    #[serde(default)]
    budget: Option<u64>,
    #[serde(default)]
    effective: Option<Effective>,
    #[serde(default)]
    excludes: Vec<String>,
    #[serde(default)]
    priority: i32,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum UnitFile {
    Household,
    Person,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Effective {
    from: String,
    to: String,
}

impl Catalogue {
    /// Reads a catalogue file and resolves it against `edition`, with the default [`Limits`].
    pub fn load(path: impl AsRef<Path>, edition: &Edition) -> Result<Catalogue> {
        Catalogue::load_with(path, edition, &Limits::default())
    }

    /// [`Catalogue::load`] within `limits` (file size, rule nesting).
    pub fn load_with(path: impl AsRef<Path>, edition: &Edition, limits: &Limits) -> Result<Catalogue> {
        let path = path.as_ref();
        let text = crate::limits::read_config(path, limits.config_bytes)?;
        Catalogue::from_toml_with(&text, edition, &path.display().to_string(), limits)
    }

    /// Parses a catalogue. `source` names it in errors.
    pub fn from_toml(text: &str, edition: &Edition, source: &str) -> Result<Catalogue> {
        Catalogue::from_toml_with(text, edition, source, &Limits::default())
    }

    /// [`Catalogue::from_toml`] within `limits`.
    pub fn from_toml_with(text: &str, edition: &Edition, source: &str, limits: &Limits) -> Result<Catalogue> {
        let f: File =
            toml::from_str(text).map_err(|e| Error::Format { file: source.to_string(), message: e.to_string() })?;
        let bad = |message: String| Error::Format { file: source.to_string(), message };
        let date = |s: &str, what: &str| {
            crate::thai::parse_date(s)
                .filter(|d| d.is_complete())
                .ok_or_else(|| bad(format!("{what}: '{s}' is not a full date (YYYY-MM-DD, CE or BE)")))
        };
        let as_of = date(&f.catalogue.as_of, "catalogue.as_of")?;
        check_id(&f.catalogue.id, "catalogue.id").map_err(bad)?;
        for (what, text) in [
            ("catalogue.title", &f.catalogue.title),
            ("catalogue.version", &f.catalogue.version),
            ("catalogue.note", &f.catalogue.note),
        ] {
            check_text(text, what).map_err(bad)?;
        }
        let mut agency_ix = HashMap::new();
        for a in &f.agency {
            check_id(&a.id, "agency id").map_err(bad)?;
            for (what, text) in [("name_th", &a.name_th), ("name_en", &a.name_en)] {
                check_text(text, &format!("agency '{}': {what}", a.id)).map_err(bad)?;
            }
        }
        for (i, a) in f.agency.iter().enumerate() {
            if agency_ix.insert(a.id.clone(), i).is_some() {
                return Err(bad(format!("agency '{}' is listed twice", a.id)));
            }
        }
        let mut program_ix = HashMap::new();
        for (i, p) in f.program.iter().enumerate() {
            if program_ix.insert(p.id.clone(), i).is_some() {
                return Err(bad(format!("program '{}' is listed twice", p.id)));
            }
        }
        let mut programs = Vec::with_capacity(f.program.len());
        for p in &f.program {
            check_id(&p.id, "program id").map_err(bad)?;
            let ctx = |m: String| bad(format!("program '{}': {m}", p.id));
            for (what, text) in [
                ("name_th", &p.name_th),
                ("name_en", &p.name_en),
                ("department", &p.department),
                ("benefit.description", &p.benefit.description),
            ] {
                check_text(text, what).map_err(ctx)?;
            }
            for (what, value) in
                [("unit_cost", Some(p.unit_cost)), ("budget", p.budget), ("benefit.amount", p.benefit.amount)]
            {
                if let Some(v) = value
                    && v > MAX_BAHT
                {
                    return Err(ctx(format!("{what} {v} is more than {MAX_BAHT} baht, the most tpmap accepts")));
                }
            }
            let agency = *agency_ix.get(&p.agency).ok_or_else(|| ctx(format!("unknown agency '{}'", p.agency)))?;
            let mut addresses = 0u64;
            for a in &p.addresses {
                if let Some(i) = edition.find(a) {
                    addresses |= 1 << i;
                } else if let Some(d) = Dimension::ALL.into_iter().find(|d| d.name() == a.as_str() || d.name_th() == a)
                {
                    for i in 0..edition.len() {
                        if edition.indicator(i).dimension == Some(d) {
                            addresses |= 1 << i;
                        }
                    }
                } else {
                    return Err(ctx(format!(
                        "addresses: '{a}' is neither an indicator of {} nor a dimension",
                        edition.id
                    )));
                }
            }
            if addresses == 0 {
                return Err(ctx("addresses no indicator".into()));
            }
            let unit = match p.unit {
                UnitFile::Household => Unit::Households,
                UnitFile::Person => Unit::People,
            };
            let rule = Rule::parse_with_depth(&p.eligible, edition, unit, limits.rule_depth).map_err(|e| match e {
                Error::Rule { text, column, message, .. } => {
                    Error::Rule { context: format!("{source}, program '{}': ", p.id), text, column, message }
                }
                Error::Limit { message, .. } => {
                    Error::Limit { file: source.to_string(), message: format!("program '{}': {message}", p.id) }
                }
                other => other,
            })?;
            let effective = match &p.effective {
                Some(e) => {
                    let (a, b) = (date(&e.from, "effective.from")?, date(&e.to, "effective.to")?);
                    if a.days_since_epoch() > b.days_since_epoch() {
                        return Err(ctx(format!("effective range ends ({}) before it starts ({})", e.to, e.from)));
                    }
                    Some((a, b))
                }
                None => None,
            };
            let mut excludes = Vec::new();
            for x in &p.excludes {
                let j = *program_ix.get(x).ok_or_else(|| ctx(format!("excludes unknown program '{x}'")))?;
                if x == &p.id {
                    return Err(ctx("excludes itself".into()));
                }
                excludes.push(j);
            }
            if p.budget.is_some() && p.unit_cost == 0 {
                return Err(ctx("has a budget but no unit_cost: the budget could never bind".into()));
            }
            programs.push(Program {
                id: p.id.clone(),
                name_th: p.name_th.clone(),
                name_en: p.name_en.clone(),
                agency,
                department: p.department.clone(),
                addresses,
                unit,
                rule,
                benefit: p.benefit.clone(),
                unit_cost: p.unit_cost,
                capacity: p.capacity,
                budget: p.budget,
                effective,
                excludes,
                priority: p.priority,
            });
        }
        // Exclusions are symmetric: "A cannot be combined with B" binds B too.
        let pairs: Vec<(usize, usize)> =
            programs.iter().enumerate().flat_map(|(i, p)| p.excludes.iter().map(move |&j| (j, i))).collect();
        for (j, i) in pairs {
            if !programs[j].excludes.contains(&i) {
                programs[j].excludes.push(i);
            }
        }
        Ok(Catalogue {
            id: f.catalogue.id,
            version: f.catalogue.version,
            title: f.catalogue.title,
            as_of,
            illustrative: f.catalogue.illustrative,
            note: f.catalogue.note,
            agencies: f.agency,
            programs,
            edition: edition.id.clone(),
        })
    }

    /// A program's index by id.
    pub fn program(&self, id: &str) -> Option<usize> {
        self.programs.iter().position(|p| p.id == id)
    }

    /// Indicators addressed by any program (mask).
    pub fn addressed(&self) -> u64 {
        self.programs.iter().fold(0, |m, p| m | p.addresses)
    }
}

/// The largest amount of money (unit cost, budget, benefit) a catalogue may state: one trillion
/// baht, a third of Thailand's national budget. With it no sum of costs over every household of
/// the country can overflow.
pub const MAX_BAHT: u64 = 1_000_000_000_000;

/// Longest id (catalogue, agency, program).
pub const MAX_ID_LEN: usize = 64;

/// Checks an id that may become part of a file name (agency work lists are `worklists/<id>.csv`):
/// 1 to [`MAX_ID_LEN`] ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit —
/// never a path, a hidden file, an option (`-x`) or a spreadsheet formula (`-A1`), the same on
/// every file system.
pub fn check_id(id: &str, what: &str) -> std::result::Result<(), String> {
    let ok = id.len() <= MAX_ID_LEN
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !crate::ids::has_long_number(id);
    if ok {
        Ok(())
    } else {
        let shown: String = id.chars().take(MAX_ID_LEN).map(|c| if c.is_control() { '?' } else { c }).collect();
        Err(format!(
            "{what} '{shown}' must be 1 to {MAX_ID_LEN} letters (a-z, A-Z), digits, '-', '_' or '.', starting with a letter or digit (ids name files)"
        ))
    }
}

/// Checks free text that reaches file preambles and reports: no control characters (a line break
/// would end a `#` preamble line), at most 1,000 characters.
fn check_text(text: &str, what: &str) -> std::result::Result<(), String> {
    if text.chars().any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')) {
        return Err(format!("{what} holds a line break or control character"));
    }
    if text.chars().count() > 1000 {
        return Err(format!("{what} is longer than 1000 characters"));
    }
    if crate::ids::has_long_number(text) {
        return Err(format!(
            "{what} holds a number of {} or more digits: a catalogue carries no personal identifiers",
            crate::ids::REDACT_MIN_DIGITS
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"
[catalogue]
id = "t"
version = "1"
as_of = "2569-10-01"
[[agency]]
id = "a"
name_th = "ก"
name_en = "A"
[[program]]
id = "p1"
name_th = "หนึ่ง"
agency = "a"
addresses = ["2.1", "income"]
unit = "household"
eligible = "target"
benefit = { kind = "cash", amount = 1000 }
unit_cost = 1000
budget = 5000
excludes = ["p2"]
[[program]]
id = "p2"
name_th = "สอง"
agency = "a"
addresses = ["4.1"]
unit = "person"
eligible = "age >= 15 and age <= 59"
benefit = { kind = "training" }
effective = { from = "2026-10-01", to = "2027-09-30" }
"#;

    #[test]
    fn parses_resolves_and_symmetrises_exclusions() {
        let e = Edition::bmn_2560();
        let c = Catalogue::from_toml(MINI, &e, "mini").unwrap();
        assert_eq!(c.as_of, PartialDate::ymd(2026, 10, 1).unwrap(), "BE date read as CE");
        let p1 = &c.programs[0];
        let income: Vec<usize> =
            (0..e.len()).filter(|&i| e.indicator(i).dimension == Some(Dimension::Income)).collect();
        assert!(income.iter().all(|&i| p1.addresses & (1 << i) != 0));
        assert_eq!(p1.addresses.count_ones() as usize, income.len() + 1);
        assert_eq!(p1.affordable(), Some(5));
        assert_eq!(c.programs[1].excludes, vec![0]);
        assert!(c.programs[1].active_on(c.as_of));
        assert!(!c.programs[1].active_on(PartialDate::ymd(2027, 10, 1).unwrap()));
    }

    #[test]
    fn errors_name_the_program_and_the_problem() {
        let e = Edition::bmn_2560();
        let cases = [
            (
                MINI.replace("agency = \"a\"\naddresses = [\"4.1\"]", "agency = \"zz\"\naddresses = [\"4.1\"]"),
                "unknown agency 'zz'",
            ),
            (MINI.replace("[\"4.1\"]", "[\"9.9\"]"), "'9.9' is neither"),
            (MINI.replace("excludes = [\"p2\"]", "excludes = [\"p3\"]"), "unknown program 'p3'"),
            (MINI.replace("to = \"2027-09-30\"", "to = \"2025-09-30\""), "ends"),
            (MINI.replace("id = \"p2\"", "id = \"p1\""), "listed twice"),
            (MINI.replace("unit_cost = 1000\n", ""), "no unit_cost"),
        ];
        for (text, want) in cases {
            let err = Catalogue::from_toml(&text, &e, "mini").unwrap_err().to_string();
            assert!(err.contains(want), "{err} should contain {want}");
            assert!(err.starts_with("mini"), "{err}");
        }
        let bad_rule = MINI.replace("age >= 15 and age <= 59", "age >= 15 and ag <= 59");
        let err = Catalogue::from_toml(&bad_rule, &e, "mini").unwrap_err().to_string();
        assert!(
            err.contains("program 'p2'") && err.contains("column 15") && err.contains("unknown field 'ag'"),
            "{err}"
        );
        let household_age = MINI.replace("eligible = \"target\"", "eligible = \"age >= 60\"");
        let err = Catalogue::from_toml(&household_age, &e, "mini").unwrap_err().to_string();
        assert!(err.contains("any(age"), "{err}");
    }
}
