//! Rejected rows, their reasons, and the per-table reconciliation report.
//!
//! ```
//! use tpmap::ingest::{Problem, Reason, Rejection};
//! let bad_date = Problem { column: "birth_date".into(), reason: Reason::BadDate, detail: None };
//! let r = Rejection { row: 3, line: Some(5), problems: vec![bad_date], values: vec![] };
//! assert_eq!(r.reasons_text(), "bad_date@birth_date");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};

/// Why a row was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A required value is empty.
    MissingValue,
    /// The row has a different number of fields than the header.
    FieldCount,
    /// A field is not valid text in the file's encoding.
    BadEncoding,
    /// The household ID is not 1–18 digits.
    BadHouseholdId,
    /// The area code is malformed.
    BadAreaCode,
    /// The province does not exist.
    UnknownProvince,
    /// The amphoe does not exist.
    UnknownAmphoe,
    /// The tambon does not exist.
    UnknownTambon,
    /// The village is in no known village list.
    UnknownVillage,
    /// The house ID is not 11 digits.
    BadHouseId,
    /// The house number holds a long number (11 or more digits): an ID typed in the wrong column,
    /// which would otherwise reach the agencies' work lists.
    BadHouseNo,
    /// The survey year is not a BE or CE year.
    BadYear,
    /// A number cannot be read or is negative.
    BadNumber,
    /// An indicator status cannot be read.
    BadStatus,
    /// The citizen ID is not 13 digits.
    BadCitizenId,
    /// The citizen ID's check digit does not match.
    BadCheckDigit,
    /// A date cannot be read.
    BadDate,
    /// Age outside 0–120, or born after the survey.
    ImpossibleAge,
    /// Age and birth date disagree by more than a year.
    AgeBirthMismatch,
    /// Sex cannot be read.
    BadSex,
    /// Relation to head cannot be read.
    BadRelation,
    /// A yes/no value cannot be read.
    BadFlag,
    /// The household ID appeared on an earlier row.
    DuplicateHousehold,
    /// The citizen ID appeared on an earlier row.
    DuplicatePerson,
    /// The person's household is not in the households table.
    PersonWithoutHousehold,
    /// The person's household row was rejected.
    HouseholdRejected,
}

impl Reason {
    /// The reason's snake_case name, as written in outputs.
    pub fn code(self) -> &'static str {
        match self {
            Reason::MissingValue => "missing_value",
            Reason::FieldCount => "field_count",
            Reason::BadEncoding => "bad_encoding",
            Reason::BadHouseholdId => "bad_household_id",
            Reason::BadAreaCode => "bad_area_code",
            Reason::UnknownProvince => "unknown_province",
            Reason::UnknownAmphoe => "unknown_amphoe",
            Reason::UnknownTambon => "unknown_tambon",
            Reason::UnknownVillage => "unknown_village",
            Reason::BadHouseId => "bad_house_id",
            Reason::BadHouseNo => "bad_house_no",
            Reason::BadYear => "bad_year",
            Reason::BadNumber => "bad_number",
            Reason::BadStatus => "bad_status",
            Reason::BadCitizenId => "bad_citizen_id",
            Reason::BadCheckDigit => "bad_check_digit",
            Reason::BadDate => "bad_date",
            Reason::ImpossibleAge => "impossible_age",
            Reason::AgeBirthMismatch => "age_birth_mismatch",
            Reason::BadSex => "bad_sex",
            Reason::BadRelation => "bad_relation",
            Reason::BadFlag => "bad_flag",
            Reason::DuplicateHousehold => "duplicate_household",
            Reason::DuplicatePerson => "duplicate_person",
            Reason::PersonWithoutHousehold => "person_without_household",
            Reason::HouseholdRejected => "household_rejected",
        }
    }

    /// A sentence for people.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::MissingValue => "required value is empty",
            Reason::FieldCount => "row has a different number of fields than the header",
            Reason::BadEncoding => "text is not valid in the file's encoding",
            Reason::BadHouseholdId => "household ID must be 1 to 18 digits",
            Reason::BadAreaCode => "area code must be 2, 4, 6, 8 or 10 digits",
            Reason::UnknownProvince => "unknown province",
            Reason::UnknownAmphoe => "unknown amphoe",
            Reason::UnknownTambon => "unknown tambon",
            Reason::UnknownVillage => "unknown village",
            Reason::BadHouseId => "house ID must be 11 digits",
            Reason::BadHouseNo => "house number holds a number of 11 or more digits (an ID in the wrong column?)",
            Reason::BadYear => "not a year (BE 2400-2700 or CE 1900-2157)",
            Reason::BadNumber => "not a non-negative number",
            Reason::BadStatus => "status must be 1/0, pass/fail, ผ่าน/ไม่ผ่าน, na/ไม่เกี่ยวข้อง or empty",
            Reason::BadCitizenId => "citizen ID must have 13 digits",
            Reason::BadCheckDigit => "citizen ID check digit does not match",
            Reason::BadDate => "unreadable date",
            Reason::ImpossibleAge => "impossible age (outside 0-120, or born after the survey)",
            Reason::AgeBirthMismatch => "age and birth date disagree by more than a year",
            Reason::BadSex => "sex must be 1/2, m/f, ชาย/หญิง or empty",
            Reason::BadRelation => "relation must be a code 1-8 or a known name",
            Reason::BadFlag => "yes/no value must be 1/0, y/n, ใช่/ไม่ใช่, มี/ไม่มี or empty",
            Reason::DuplicateHousehold => "household ID already seen on an earlier row",
            Reason::DuplicatePerson => "citizen ID already seen on an earlier row",
            Reason::PersonWithoutHousehold => "household ID not in the households table",
            Reason::HouseholdRejected => "the person's household row was rejected",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// One problem with one row: the column and the reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The column as named in the file (or the field's canonical name).
    pub column: String,
    /// What is wrong.
    pub reason: Reason,
    /// Extra detail (never raw personal data), e.g. the row of the first occurrence.
    pub detail: Option<String>,
}

/// A rejected row: where it was, why, and its values as read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rejection {
    /// 1-based data row (the header is not counted).
    pub row: u64,
    /// Physical line (CSV) or sheet row (Excel), where known.
    pub line: Option<u64>,
    /// Every problem found.
    pub problems: Vec<Problem>,
    /// The row's values as read, one per header column (kept for the rejects file only).
    #[serde(skip)]
    pub values: Vec<String>,
}

impl Rejection {
    /// `reason@column; reason@column` for the rejects file.
    pub fn reasons_text(&self) -> String {
        self.problems
            .iter()
            .map(|p| match &p.detail {
                Some(d) => format!("{}@{} ({d})", p.reason.code(), p.column),
                None => format!("{}@{}", p.reason.code(), p.column),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The reconciliation of one input table: accepted + rejected = input rows, always.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TableReport {
    /// The file (or frame) name.
    pub file: String,
    /// The format read.
    pub format: String,
    /// The text encoding (CSV only).
    pub encoding: Option<String>,
    /// Data rows read.
    pub input_rows: u64,
    /// Rows accepted.
    pub accepted: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// Rejected rows per reason (a row with several reasons counts under each).
    pub by_reason: BTreeMap<Reason, u64>,
    /// Header columns used.
    pub columns_used: Vec<String>,
    /// Header columns not recognised.
    pub columns_ignored: Vec<String>,
}

impl TableReport {
    /// True when every input row is accounted for.
    pub fn reconciles(&self) -> bool {
        self.accepted + self.rejected == self.input_rows
    }
}

/// Writes rejected rows as CSV: `_row,_line,_reasons`, then the original columns unchanged —
/// except that a formula-like cell gets a leading `'` ([`crate::frame::neutralize`]), so the
/// file can be opened in a spreadsheet without running what a hostile row holds.
pub fn write_rejects(path: &Path, header: &[String], rejects: &[Rejection]) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    let mut head = vec!["_row".to_string(), "_line".to_string(), "_reasons".to_string()];
    head.extend(header.iter().map(|h| crate::frame::neutralize(h).into_owned()));
    w.write_record(&head).map_err(|e| crate::ingest::source::csv_error(path, e))?;
    for r in rejects {
        let mut rec = vec![
            r.row.to_string(),
            r.line.map(|l| l.to_string()).unwrap_or_default(),
            crate::frame::neutralize(&r.reasons_text()).into_owned(),
        ];
        rec.extend(r.values.iter().map(|v| crate::frame::neutralize(v).into_owned()));
        rec.resize(head.len(), String::new());
        w.write_record(&rec).map_err(|e| crate::ingest::source::csv_error(path, e))?;
    }
    w.into_inner().map_err(|e| Error::io(path, e.into_error()))?.flush().map_err(|e| Error::io(path, e))?;
    Ok(())
}
