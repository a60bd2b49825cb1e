//! Dimensions, indicator statuses and indicator *editions* — the BMN indicator sets, as data.
//!
//! The BMN (จปฐ.) survey changes its indicators every five years (31 in 2560–2564, 38 in
//! 2566–2570), and TPMAP picks 17 of them into five dimensions. An [`Edition`] is loaded from TOML
//! so a new edition is a file, not code. The built-in `bmn-2560` edition is
//! `editions/bmn-2560.toml`, embedded in the library.
//!
//! ```
//! use tpmap::indicators::{Dimension, Edition};
//! let e = Edition::bmn_2560();
//! assert_eq!(e.len(), 31);
//! let tpmap = e.selection("tpmap").unwrap();
//! assert_eq!(tpmap.len(), 17);
//! let i = e.by_code("4.3").unwrap();
//! assert_eq!(e.indicator(i).dimension, Some(Dimension::Income));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// TPMAP's five dimensions of deprivation, in TPMAP's order (the order of its dimension masks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// สุขภาพ
    Health,
    /// ความเป็นอยู่ (living conditions)
    Living,
    /// การศึกษา
    Education,
    /// รายได้
    Income,
    /// การเข้าถึงบริการรัฐ (access to state services)
    Access,
}

impl Dimension {
    /// All five, in TPMAP's order.
    pub const ALL: [Dimension; 5] =
        [Dimension::Health, Dimension::Living, Dimension::Education, Dimension::Income, Dimension::Access];

    /// Position in TPMAP's order (0–4).
    pub fn index(self) -> usize {
        self as usize
    }

    /// English name as used in outputs.
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Health => "health",
            Dimension::Living => "living",
            Dimension::Education => "education",
            Dimension::Income => "income",
            Dimension::Access => "access",
        }
    }

    /// Thai name.
    pub fn name_th(self) -> &'static str {
        match self {
            Dimension::Health => "สุขภาพ",
            Dimension::Living => "ความเป็นอยู่",
            Dimension::Education => "การศึกษา",
            Dimension::Income => "รายได้",
            Dimension::Access => "การเข้าถึงบริการรัฐ",
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dimension {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_lowercase();
        Dimension::ALL
            .into_iter()
            .find(|d| d.name() == t || d.name_th() == s.trim() || (t == "accessibility" && *d == Dimension::Access))
            .ok_or_else(|| Error::Parse(format!("unknown dimension '{s}'")))
    }
}

/// The status of one indicator for one household or person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorStatus {
    /// Meets the standard (ผ่าน): not deprived.
    Pass,
    /// Fails the standard (ไม่ผ่าน): deprived.
    Fail,
    /// The indicator does not apply (ไม่เกี่ยวข้อง), e.g. no member in its age band.
    NotApplicable,
    /// Not recorded.
    Missing,
}

/// Who an indicator applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every household.
    Household,
    /// Members whose age in years is in `min..=max`.
    Age {
        /// Youngest age in scope.
        min: u8,
        /// Oldest age in scope (255 for no upper bound).
        max: u8,
    },
    /// Newborns (age 0).
    Newborn,
    /// Members aged 60 and over.
    Elderly,
    /// Members with a disability.
    Disabled,
    /// Members who have just finished lower secondary school (ม.3): not derivable from the extract.
    M3Leaver,
    /// Applicability cannot be derived from the extract: the reported status is trusted.
    Reported,
}

impl Scope {
    /// Whether a member with this age and disability is in scope: `Some(true/false)` when it can
    /// be decided from the extract, `None` when it cannot.
    pub fn applies_to(&self, age: Option<u8>, disabled: Option<bool>) -> Option<bool> {
        match *self {
            Scope::Household => Some(true),
            Scope::Age { min, max } => age.map(|a| a >= min && a <= max),
            Scope::Newborn => age.map(|a| a == 0),
            Scope::Elderly => age.map(|a| a >= 60),
            Scope::Disabled => disabled,
            Scope::M3Leaver | Scope::Reported => None,
        }
    }
}

impl FromStr for Scope {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        Ok(match s {
            "household" => Scope::Household,
            "newborn" => Scope::Newborn,
            "elderly" => Scope::Elderly,
            "disabled" => Scope::Disabled,
            "m3_leaver" => Scope::M3Leaver,
            "reported" => Scope::Reported,
            _ => {
                let band = s.strip_prefix("age:").ok_or_else(|| Error::Config(format!("unknown scope '{s}'")))?;
                let (a, b) =
                    band.split_once('-').ok_or_else(|| Error::Config(format!("age scope needs A-B or A-: '{s}'")))?;
                let min = a.trim().parse().map_err(|_| Error::Config(format!("bad age in scope '{s}'")))?;
                let max = if b.trim().is_empty() {
                    255
                } else {
                    b.trim().parse().map_err(|_| Error::Config(format!("bad age in scope '{s}'")))?
                };
                if min > max {
                    return Err(Error::Config(format!("empty age band in scope '{s}'")));
                }
                Scope::Age { min, max }
            }
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Household => f.write_str("household"),
            Scope::Age { min, max: 255 } => write!(f, "age:{min}-"),
            Scope::Age { min, max } => write!(f, "age:{min}-{max}"),
            Scope::Newborn => f.write_str("newborn"),
            Scope::Elderly => f.write_str("elderly"),
            Scope::Disabled => f.write_str("disabled"),
            Scope::M3Leaver => f.write_str("m3_leaver"),
            Scope::Reported => f.write_str("reported"),
        }
    }
}

/// Where an indicator's status is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordedFor {
    /// One status per household.
    Household,
    /// One status per member; the household fails when any member in scope fails.
    Person,
}

/// One indicator of an edition.
#[derive(Clone, Debug, PartialEq)]
pub struct Indicator {
    /// BMN number within the edition (1-based).
    pub no: u16,
    /// TPMAP's code (`"1.1"`) when TPMAP uses it.
    pub code: Option<String>,
    /// TPMAP dimension, if the indicator belongs to one.
    pub dimension: Option<Dimension>,
    /// The BMN survey's own chapter.
    pub group: String,
    /// Household- or person-level status.
    pub level: RecordedFor,
    /// Who it applies to.
    pub scope: Scope,
    /// For income indicators: baht per member per year below which the household fails.
    pub income_threshold: Option<f64>,
    /// Thai label.
    pub name_th: String,
    /// English label.
    pub name_en: String,
    /// Extra column names that carry this indicator in extracts.
    pub columns: Vec<String>,
}

impl Indicator {
    /// A short label: the TPMAP code if any, else `bmn<no>`.
    pub fn label(&self) -> String {
        self.code.clone().unwrap_or_else(|| format!("bmn{}", self.no))
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct EditionFile {
    id: String,
    name: String,
    #[serde(default)]
    bmn_years: Option<[u16; 2]>,
    #[serde(default)]
    selections: BTreeMap<String, Vec<String>>,
    indicator: Vec<IndicatorFile>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct IndicatorFile {
    no: u16,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    dimension: Option<Dimension>,
    #[serde(default)]
    group: String,
    level: RecordedFor,
    scope: String,
    #[serde(default)]
    income_threshold: Option<f64>,
    #[serde(default)]
    name_th: String,
    #[serde(default)]
    name_en: String,
    #[serde(default)]
    columns: Vec<String>,
}

/// The most indicators an edition may have: statuses are kept as 64-bit masks.
pub const MAX_INDICATORS: usize = 64;

/// A set of BMN indicators for a span of survey years, with named selections (such as TPMAP's).
///
/// Indicators are addressed by their position in the edition (`0..len()`), which is also their
/// bit in the status masks of [`crate::extract::StatusMatrix`].
#[derive(Clone, Debug, PartialEq)]
pub struct Edition {
    /// Short identifier, e.g. `bmn-2560`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// First and last BMN survey year (BE) the edition is meant for.
    pub bmn_years: Option<[u16; 2]>,
    indicators: Vec<Indicator>,
    selections: BTreeMap<String, Vec<usize>>,
}

impl Edition {
    /// The BMN 2560–2564 edition with TPMAP's selection (`editions/bmn-2560.toml`).
    pub fn bmn_2560() -> Edition {
        Edition::from_toml(include_str!("../editions/bmn-2560.toml")).expect("built-in edition is valid")
    }

    /// A built-in edition by id.
    pub fn builtin(id: &str) -> Result<Edition> {
        match id {
            "bmn-2560" => Ok(Edition::bmn_2560()),
            _ => Err(Error::Config(format!("no built-in edition '{id}' (built in: bmn-2560; load others from TOML)"))),
        }
    }

    /// Parses an edition from TOML (see `editions/bmn-2560.toml` for the format).
    pub fn from_toml(text: &str) -> Result<Edition> {
        let f: EditionFile = toml::from_str(text).map_err(|e| Error::Config(format!("edition TOML: {e}")))?;
        Self::from_file(f)
    }

    /// A built-in edition by id (`bmn-2560`), or an edition file (TOML) when `id_or_path` names
    /// an existing file.
    pub fn from_id_or_file(id_or_path: &str) -> Result<Edition> {
        if std::path::Path::new(id_or_path).is_file() {
            Edition::load(id_or_path)
        } else {
            Edition::builtin(id_or_path)
        }
    }

    /// Loads an edition from a TOML file.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Edition> {
        let path = path.as_ref();
        let text = crate::limits::read_config(path, crate::limits::DEFAULT_CONFIG_BYTES)?;
        Self::from_toml(&text)
    }

    /// Applies a TOML override: indicators listed there (by `no`) replace or extend this edition's;
    /// selections listed there replace those of the same name. Top-level `id` and `name` replace
    /// this edition's.
    pub fn with_overrides(&self, text: &str) -> Result<Edition> {
        let over: toml::Table = toml::from_str(text).map_err(|e| Error::Config(format!("override TOML: {e}")))?;
        let mut base: toml::Table = toml::Table::try_from(self.to_file()).map_err(|e| Error::Config(e.to_string()))?;
        for (k, v) in over {
            match (k.as_str(), v) {
                ("indicator", toml::Value::Array(items)) => {
                    let list = base.get_mut("indicator").and_then(|v| v.as_array_mut()).expect("indicators");
                    for item in items {
                        let no = item
                            .get("no")
                            .and_then(|n| n.as_integer())
                            .ok_or_else(|| Error::Config("override indicator needs `no`".into()))?;
                        match list.iter_mut().find(|i| i.get("no").and_then(|n| n.as_integer()) == Some(no)) {
                            Some(existing) => {
                                let (Some(t), toml::Value::Table(new)) = (existing.as_table_mut(), item) else {
                                    return Err(Error::Config("override indicator must be a table".into()));
                                };
                                t.extend(new);
                            }
                            None => list.push(item),
                        }
                    }
                }
                ("selections", toml::Value::Table(sel)) => {
                    let s = base.entry("selections").or_insert(toml::Value::Table(Default::default()));
                    s.as_table_mut().expect("table").extend(sel);
                }
                (key, v) => {
                    base.insert(key.to_string(), v);
                }
            }
        }
        let f: EditionFile =
            base.try_into().map_err(|e: toml::de::Error| Error::Config(format!("override TOML: {e}")))?;
        Self::from_file(f)
    }

    fn to_file(&self) -> EditionFile {
        EditionFile {
            id: self.id.clone(),
            name: self.name.clone(),
            bmn_years: self.bmn_years,
            selections: self
                .selections
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().map(|&i| self.indicators[i].label()).collect()))
                .collect(),
            indicator: self
                .indicators
                .iter()
                .map(|i| IndicatorFile {
                    no: i.no,
                    code: i.code.clone(),
                    dimension: i.dimension,
                    group: i.group.clone(),
                    level: i.level,
                    scope: i.scope.to_string(),
                    income_threshold: i.income_threshold,
                    name_th: i.name_th.clone(),
                    name_en: i.name_en.clone(),
                    columns: i.columns.clone(),
                })
                .collect(),
        }
    }

    /// Serialises the edition back to TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.to_file()).expect("edition serialises")
    }

    fn from_file(f: EditionFile) -> Result<Edition> {
        if f.indicator.is_empty() || f.indicator.len() > MAX_INDICATORS {
            return Err(Error::Config(format!(
                "an edition needs 1 to {MAX_INDICATORS} indicators, '{}' has {}",
                f.id,
                f.indicator.len()
            )));
        }
        let mut indicators = Vec::with_capacity(f.indicator.len());
        for i in f.indicator {
            let scope: Scope = i.scope.parse()?;
            indicators.push(Indicator {
                no: i.no,
                code: i.code,
                dimension: i.dimension,
                group: i.group,
                level: i.level,
                scope,
                income_threshold: i.income_threshold,
                name_th: i.name_th,
                name_en: i.name_en,
                columns: i.columns,
            });
        }
        indicators.sort_by_key(|i| i.no);
        for w in indicators.windows(2) {
            if w[0].no == w[1].no {
                return Err(Error::Config(format!("indicator number {} appears twice", w[0].no)));
            }
        }
        let mut e = Edition { id: f.id, name: f.name, bmn_years: f.bmn_years, indicators, selections: BTreeMap::new() };
        let mut seen_codes = std::collections::HashSet::new();
        for i in &e.indicators {
            if let Some(c) = &i.code
                && !seen_codes.insert(c.clone())
            {
                return Err(Error::Config(format!("indicator code {c} appears twice")));
            }
        }
        for (name, labels) in f.selections {
            let mut idx = Vec::with_capacity(labels.len());
            for l in &labels {
                let i = e
                    .find(l)
                    .ok_or_else(|| Error::Config(format!("selection '{name}' names unknown indicator '{l}'")))?;
                if e.indicators[i].dimension.is_none() {
                    return Err(Error::Config(format!("selection '{name}': indicator '{l}' has no dimension")));
                }
                idx.push(i);
            }
            e.selections.insert(name, idx);
        }
        Ok(e)
    }

    /// Number of indicators.
    pub fn len(&self) -> usize {
        self.indicators.len()
    }

    /// True when the edition has no indicators (never, for a loaded edition).
    pub fn is_empty(&self) -> bool {
        self.indicators.is_empty()
    }

    /// All indicators, in order of their number.
    pub fn indicators(&self) -> &[Indicator] {
        &self.indicators
    }

    /// The indicator at position `i`.
    pub fn indicator(&self, i: usize) -> &Indicator {
        &self.indicators[i]
    }

    /// Position of the indicator with BMN number `no`.
    pub fn by_no(&self, no: u16) -> Option<usize> {
        self.indicators.iter().position(|i| i.no == no)
    }

    /// Position of the indicator with TPMAP code `code`.
    pub fn by_code(&self, code: &str) -> Option<usize> {
        self.indicators.iter().position(|i| i.code.as_deref() == Some(code))
    }

    /// Position of an indicator named by TPMAP code (`1.1`), `bmn<no>` or its number.
    pub fn find(&self, label: &str) -> Option<usize> {
        let l = label.trim();
        self.by_code(l)
            .or_else(|| l.strip_prefix("bmn").and_then(|n| n.parse().ok()).and_then(|n| self.by_no(n)))
            .or_else(|| l.parse().ok().and_then(|n| self.by_no(n)))
    }

    /// A named selection's indicator positions (e.g. `"tpmap"`).
    pub fn selection(&self, name: &str) -> Option<&[usize]> {
        self.selections.get(name).map(|v| v.as_slice())
    }

    /// Names of all selections.
    pub fn selection_names(&self) -> impl Iterator<Item = &str> {
        self.selections.keys().map(|s| s.as_str())
    }

    /// Bit mask of a set of indicator positions.
    pub fn mask(indices: &[usize]) -> u64 {
        indices.iter().fold(0u64, |m, &i| m | (1u64 << i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_edition_matches_domain_notes() {
        let e = Edition::bmn_2560();
        assert_eq!(e.len(), 31);
        let t = e.selection("tpmap").unwrap();
        let per_dim = |d| t.iter().filter(|&&i| e.indicator(i).dimension == Some(d)).count();
        assert_eq!([4, 4, 4, 3, 2], Dimension::ALL.map(per_dim));
        let bmn: Vec<u16> = t.iter().map(|&i| e.indicator(i).no).collect();
        assert_eq!(bmn, [1, 4, 5, 7, 8, 9, 10, 11, 15, 16, 17, 19, 20, 21, 22, 27, 28]);
        assert_eq!(e.indicator(e.by_no(7).unwrap()).scope, Scope::Age { min: 6, max: 255 });
        assert_eq!(e.indicator(e.by_no(22).unwrap()).income_threshold, Some(38000.0));
        assert_eq!(e.find("bmn12"), e.by_no(12));
        assert_eq!(e.find("3.3"), e.by_no(17));
    }

    #[test]
    fn round_trip_and_override() {
        let e = Edition::bmn_2560();
        assert_eq!(Edition::from_toml(&e.to_toml()).unwrap(), e);
        let o =
            e.with_overrides("id = \"bmn-2560-local\"\n[[indicator]]\nno = 22\nincome_threshold = 40000\n").unwrap();
        assert_eq!(o.id, "bmn-2560-local");
        assert_eq!(o.indicator(o.by_no(22).unwrap()).income_threshold, Some(40000.0));
        assert_eq!(o.selection("tpmap"), e.selection("tpmap"));
    }

    #[test]
    fn a_38_indicator_edition_loads_from_toml() {
        let mut t = String::from("id = \"bmn-2566\"\nname = \"test\"\nselections = { core = [\"bmn1\", \"bmn29\"] }\n");
        for no in 1..=38 {
            let dim = ["health", "living", "education", "income", "access"][no % 5];
            t += &format!(
                "[[indicator]]\nno = {no}\ndimension = \"{dim}\"\nlevel = \"household\"\nscope = \"household\"\n"
            );
        }
        let e = Edition::from_toml(&t).unwrap();
        assert_eq!(e.len(), 38);
        assert_eq!(e.selection("core").unwrap().len(), 2);
    }

    #[test]
    fn bad_editions_are_refused() {
        let one = "[[indicator]]\nno = 1\nlevel = \"household\"\nscope = \"household\"\n";
        assert!(Edition::from_toml(&format!("id=\"x\"\nname=\"x\"\n{one}{one}")).is_err());
        assert!(Edition::from_toml(&format!("id=\"x\"\nname=\"x\"\nselections={{a=[\"9\"]}}\n{one}")).is_err());
        assert!(
            Edition::from_toml("id=\"x\"\nname=\"x\"\n[[indicator]]\nno=1\nlevel=\"household\"\nscope=\"age:9-3\"\n")
                .is_err()
        );
        assert!(
            Edition::from_toml(
                "id=\"x\"\nname=\"x\"\n[[indicator]]\nno=1\nlevel=\"household\"\nscope=\"household\"\ntypo=1\n"
            )
            .is_err()
        );
    }

    #[test]
    fn scopes() {
        let s: Scope = "age:15-59".parse().unwrap();
        assert_eq!(s.applies_to(Some(15), None), Some(true));
        assert_eq!(s.applies_to(Some(60), None), Some(false));
        assert_eq!(s.applies_to(None, None), None);
        assert_eq!(Scope::Disabled.applies_to(Some(3), Some(false)), Some(false));
        assert_eq!(Scope::M3Leaver.applies_to(Some(15), None), None);
        assert_eq!("age:60-".parse::<Scope>().unwrap().to_string(), "age:60-");
    }
}
