//! Column names: the canonical fields of the extract format and their Thai and English aliases.
//! See `docs/data-format.md`.
//!
//! ```
//! use tpmap::ingest::columns::{map_households, HouseholdField};
//! let e = tpmap::indicators::Edition::bmn_2560();
//! let header: Vec<String> = ["household_id", "village_code", "ind_8", "notes"].map(String::from).to_vec();
//! let map = map_households(&header, &e).unwrap();
//! assert_eq!(map.get(HouseholdField::HouseholdId), Some(0));
//! assert_eq!(map.indicators.len(), 1);
//! assert_eq!(map.ignored, vec!["notes".to_string()]);
//! ```

use crate::indicators::Edition;

/// Fields of the households table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HouseholdField {
    /// `household_id`
    HouseholdId,
    /// `village_code`
    Village,
    /// `house_id`
    HouseId,
    /// `house_no`
    HouseNo,
    /// `survey_year`
    SurveyYear,
    /// `members`
    Members,
    /// `income_per_member`
    IncomePerMember,
}

/// Fields of the persons table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PersonField {
    /// `household_id`
    HouseholdId,
    /// `citizen_id`
    CitizenId,
    /// `title`
    Title,
    /// `first_name`
    FirstName,
    /// `last_name`
    LastName,
    /// `sex`
    Sex,
    /// `birth_date`
    BirthDate,
    /// `age`
    Age,
    /// `relation`
    Relation,
    /// `disabled`
    Disabled,
    /// `welfare_registered`
    WelfareRegistered,
    /// `welfare_validated`
    WelfareValidated,
}

const HOUSEHOLD_ALIASES: &[(HouseholdField, &[&str])] = &[
    (HouseholdField::HouseholdId, &["household_id", "hh_id", "hhid", "household", "รหัสครัวเรือน", "เลขที่ครัวเรือน"]),
    (HouseholdField::Village, &["village_code", "village_id", "village", "vill_code", "รหัสหมู่บ้าน", "หมู่บ้าน"]),
    (HouseholdField::HouseId, &["house_id", "house_code", "รหัสประจำบ้าน", "รหัสบ้าน"]),
    (HouseholdField::HouseNo, &["house_no", "house_number", "address_no", "บ้านเลขที่", "เลขที่บ้าน"]),
    (HouseholdField::SurveyYear, &["survey_year", "bmn_year", "year", "ปีสำรวจ", "ปี", "ปีที่สำรวจ"]),
    (HouseholdField::Members, &["members", "member_count", "housemember_cnt", "จำนวนสมาชิก", "สมาชิก"]),
    (
        HouseholdField::IncomePerMember,
        &["income_per_member", "income_per_capita", "income", "รายได้เฉลี่ยต่อคนต่อปี", "รายได้ต่อคนต่อปี", "รายได้เฉลี่ย", "รายได้"],
    ),
];

const PERSON_ALIASES: &[(PersonField, &[&str])] = &[
    (PersonField::HouseholdId, &["household_id", "hh_id", "hhid", "household", "รหัสครัวเรือน", "เลขที่ครัวเรือน"]),
    (
        PersonField::CitizenId,
        &[
            "citizen_id",
            "national_id",
            "cid",
            "pid",
            "id_card",
            "เลขประจำตัวประชาชน",
            "เลขบัตรประชาชน",
            "เลขบัตรประจำตัวประชาชน",
        ],
    ),
    (PersonField::Title, &["title", "prefix", "คำนำหน้า", "คำนำหน้าชื่อ"]),
    (PersonField::FirstName, &["first_name", "given_name", "name", "fname", "ชื่อ"]),
    (PersonField::LastName, &["last_name", "family_name", "surname", "lname", "นามสกุล"]),
    (PersonField::Sex, &["sex", "gender", "เพศ"]),
    (PersonField::BirthDate, &["birth_date", "date_of_birth", "dob", "birthdate", "วันเกิด", "วันเดือนปีเกิด"]),
    (PersonField::Age, &["age", "age_years", "อายุ"]),
    (PersonField::Relation, &["relation", "relation_to_head", "relationship", "ความสัมพันธ์", "ความสัมพันธ์กับหัวหน้าครัวเรือน"]),
    (PersonField::Disabled, &["disabled", "disability", "is_disabled", "พิการ", "ความพิการ", "คนพิการ"]),
    (
        PersonField::WelfareRegistered,
        &["welfare_registered", "mof_reg", "welfare_reg", "ลงทะเบียนสวัสดิการ", "ลงทะเบียนบัตรสวัสดิการแห่งรัฐ", "ลงทะเบียน"],
    ),
    (
        PersonField::WelfareValidated,
        &["welfare_validated", "mof_val", "welfare_val", "ผ่านการตรวจสอบ", "ผ่านการตรวจสอบสิทธิ์", "บัตรสวัสดิการแห่งรัฐ"],
    ),
];

/// Normalises a header: trims, lower-cases ASCII, drops a BOM and zero-width characters, and
/// turns spaces, dots and hyphens into underscores.
pub fn normalize_header(h: &str) -> String {
    let mut out = String::with_capacity(h.len());
    for c in h.trim().trim_start_matches('\u{FEFF}').chars() {
        match c {
            '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{FEFF}' => {}
            ' ' | '.' | '-' | '\t' => {
                if !out.ends_with('_') {
                    out.push('_')
                }
            }
            c => out.push(c.to_ascii_lowercase()),
        }
    }
    out.trim_matches('_').to_string()
}

/// The indicator an indicator column names: `ind_7`, `ind7`, `indicator7`, `bmn7`, `ตัวชี้วัดที่7`,
/// a TPMAP code as `tpmap_1_4`, or any extra name the edition lists for it.
pub fn indicator_column(edition: &Edition, header: &str) -> Option<usize> {
    let h = normalize_header(header);
    for (i, ind) in edition.indicators().iter().enumerate() {
        if ind.columns.iter().any(|c| normalize_header(c) == h) {
            return Some(i);
        }
    }
    for prefix in ["indicator_", "indicator", "ind_", "ind", "bmn_", "bmn", "ตัวชี้วัดที่_", "ตัวชี้วัดที่", "ตัวชี้วัด_", "ตัวชี้วัด"]
    {
        if let Some(rest) = h.strip_prefix(prefix)
            && let Ok(no) = rest.parse::<u16>()
        {
            return edition.by_no(no);
        }
    }
    if let Some(code) = h.strip_prefix("tpmap_") {
        return edition.by_code(&code.replace('_', "."));
    }
    None
}

/// How the columns of one table map to fields and indicators.
#[derive(Clone, Debug)]
pub struct ColumnMap<F> {
    /// `(field, column position)` for each recognised field.
    pub fields: Vec<(F, usize)>,
    /// `(indicator position in the edition, column position)`.
    pub indicators: Vec<(usize, usize)>,
    /// Columns that were not recognised (reported, not used).
    pub ignored: Vec<String>,
}

impl<F: Copy + PartialEq> ColumnMap<F> {
    /// Column position of `field`, if present.
    pub fn get(&self, field: F) -> Option<usize> {
        self.fields.iter().find(|(f, _)| *f == field).map(|&(_, c)| c)
    }

    /// Bit mask of the indicators present.
    pub fn indicator_mask(&self) -> u64 {
        self.indicators.iter().fold(0, |m, &(i, _)| m | (1u64 << i))
    }

    /// Positions of every column a field or an indicator reads, in header order.
    pub fn used_columns(&self) -> Vec<usize> {
        let mut used: Vec<usize> =
            self.fields.iter().map(|&(_, c)| c).chain(self.indicators.iter().map(|&(_, c)| c)).collect();
        used.sort_unstable();
        used
    }
}

fn map_columns<F: Copy + PartialEq>(
    header: &[String],
    aliases: &[(F, &[&str])],
    edition: &Edition,
) -> Result<ColumnMap<F>, String> {
    let mut map = ColumnMap { fields: Vec::new(), indicators: Vec::new(), ignored: Vec::new() };
    for (pos, h) in header.iter().enumerate() {
        let n = normalize_header(h);
        if let Some((field, _)) = aliases.iter().find(|(_, names)| names.iter().any(|a| normalize_header(a) == n)) {
            if map.get(*field).is_some() {
                return Err(format!("two columns map to the same field: '{h}' repeats an earlier column"));
            }
            map.fields.push((*field, pos));
        } else if let Some(i) = indicator_column(edition, h) {
            if map.indicators.iter().any(|&(j, _)| j == i) {
                return Err(format!("indicator {} appears in two columns ('{h}')", edition.indicator(i).label()));
            }
            map.indicators.push((i, pos));
        } else {
            map.ignored.push(h.clone());
        }
    }
    Ok(map)
}

/// Maps a households header.
pub fn map_households(header: &[String], edition: &Edition) -> Result<ColumnMap<HouseholdField>, String> {
    map_columns(header, HOUSEHOLD_ALIASES, edition)
}

/// Maps a persons header.
pub fn map_persons(header: &[String], edition: &Edition) -> Result<ColumnMap<PersonField>, String> {
    map_columns(header, PERSON_ALIASES, edition)
}

/// The canonical column name of a household field.
pub fn household_field_name(f: HouseholdField) -> &'static str {
    HOUSEHOLD_ALIASES.iter().find(|(g, _)| *g == f).map(|(_, a)| a[0]).expect("every field has aliases")
}

/// The canonical column name of a person field.
pub fn person_field_name(f: PersonField) -> &'static str {
    PERSON_ALIASES.iter().find(|(g, _)| *g == f).map(|(_, a)| a[0]).expect("every field has aliases")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_in_thai_and_english() {
        let e = Edition::bmn_2560();
        let header: Vec<String> =
            ["\u{FEFF}รหัสครัวเรือน", "Village Code", "บ้านเลขที่", "ปีสำรวจ", "ind_22", "ตัวชี้วัดที่ 8", "tpmap_2.2", "note"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let m = map_households(&header, &e).unwrap();
        assert_eq!(m.get(HouseholdField::HouseholdId), Some(0));
        assert_eq!(m.get(HouseholdField::Village), Some(1));
        assert_eq!(m.get(HouseholdField::HouseNo), Some(2));
        assert_eq!(m.get(HouseholdField::SurveyYear), Some(3));
        let nos: Vec<u16> = m.indicators.iter().map(|&(i, _)| e.indicator(i).no).collect();
        assert_eq!(nos, [22, 8, 9]);
        assert_eq!(m.ignored, ["note"]);
    }

    #[test]
    fn duplicate_columns_are_an_error() {
        let e = Edition::bmn_2560();
        let header: Vec<String> = ["household_id", "hh_id"].iter().map(|s| s.to_string()).collect();
        assert!(map_households(&header, &e).is_err());
        let header: Vec<String> = ["ind7", "indicator_7"].iter().map(|s| s.to_string()).collect();
        assert!(map_persons(&header, &e).is_err());
    }
}
