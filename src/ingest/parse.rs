//! Parsers from [`Cell`]s to typed values. Each returns `Ok(None)` for an empty cell and
//! `Err(reason)` for a value that cannot be read.
//!
//! ```
//! use tpmap::indicators::IndicatorStatus;
//! use tpmap::ingest::parse::{status, OneMeans};
//! use tpmap::ingest::source::Cell;
//! assert_eq!(status(Cell::Str("ไม่ผ่าน"), OneMeans::Fail), Ok(IndicatorStatus::Fail));
//! assert_eq!(status(Cell::Str("1.0"), OneMeans::Fail), Ok(IndicatorStatus::Fail)); // Stata's 0/1
//! assert!(status(Cell::Str("2"), OneMeans::Fail).is_err());
//! ```

use super::rejects::Reason;
use super::source::Cell;
use crate::indicators::IndicatorStatus;
use crate::thai::{PartialDate, fold_digits};
use std::borrow::Cow;

/// `s.trim().to_lowercase()`, borrowed when lowering changes nothing: ASCII without capitals and
/// Thai letters (which have no case) — the codes and words files hold, read for every cell of
/// several columns of a CSV extract.
fn lower(s: &str) -> Cow<'_, str> {
    let s = s.trim();
    // ASCII without capitals (`false`, `na`) is checked a byte at a time.
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase())
        || s.chars().all(|c| (c.is_ascii() && !c.is_ascii_uppercase()) || ('\u{0E00}'..='\u{0E7F}').contains(&c))
    {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

/// `s.trim()` (Unicode whitespace at either end), without decoding a character at an end that
/// cannot begin or end one. Every whitespace character's UTF-8 form begins with an ASCII
/// whitespace byte or 0xC2, 0xE1, 0xE2 or 0xE3, so a Thai name (0xE0 ...) at both ends is
/// returned as it is. `str::trim` was 6 % of reading the national persons (docs/bench/).
pub(crate) fn trim_text(s: &str) -> &str {
    let may_be_space = |lead: u8| lead.is_ascii_whitespace() || lead == 0x0B || matches!(lead, 0xC2 | 0xE1..=0xE3);
    let b = s.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else { return s };
    // The lead byte of the last character: at most three continuation bytes (0b10xx_xxxx) back.
    let last_lead =
        if last < 0x80 { last } else { b.iter().rev().take(4).copied().find(|&x| x & 0xC0 != 0x80).unwrap_or(last) };
    if may_be_space(first) || may_be_space(last_lead) { s.trim() } else { s }
}

/// What a numeric status of `1` means (and `true` in a boolean column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OneMeans {
    /// `1` = deprived (fails the standard), `0` = not deprived: the deprivation-matrix convention.
    #[default]
    Fail,
    /// `1` = meets the standard (passes), `0` = fails.
    Pass,
}

fn fast_status(b: &[u8]) -> Option<u8> {
    match b.len() {
        1 if b[0] == b'1' => Some(1),
        1 if b[0] == b'0' => Some(0),
        2 if (b[0] | 0x20) == b'n' && (b[1] | 0x20) == b'a' => Some(2),
        _ => None,
    }
}

/// `0` or `1` written as a decimal number (`1.0`, `0.00`, `1.`: what Stata and pandas export for
/// a column that once held a missing value); `None` for anything else.
fn decimal_zero_one(s: &str) -> Option<bool> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b == b'0') {
        return None;
    }
    match int.trim_start_matches('0') {
        "" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

/// An indicator status: `1`/`0` in any numeric form (`1.0`, `0.00`; see [`OneMeans`]),
/// `pass`/`fail`, `ผ่าน`/`ไม่ผ่าน`, `ไม่เกี่ยวข้อง`/`na`/`n/a`/`-`, and empty (or `missing`,
/// or a float NaN — pandas' missing value) for missing.
pub fn status(cell: Cell<'_>, one: OneMeans) -> Result<IndicatorStatus, Reason> {
    use IndicatorStatus::*;
    let by_one = |v: bool| match (v, one) {
        (true, OneMeans::Fail) | (false, OneMeans::Pass) => Fail,
        _ => Pass,
    };
    match cell {
        Cell::Null => Ok(Missing),
        Cell::Int(1) => Ok(by_one(true)),
        Cell::Int(0) => Ok(by_one(false)),
        Cell::Float(1.0) => Ok(by_one(true)),
        Cell::Float(0.0) => Ok(by_one(false)),
        Cell::Float(f) if f.is_nan() => Ok(Missing),
        Cell::Bool(b) => Ok(by_one(b)),
        // Fast path for the forms files really use: byte comparisons, no allocation and no
        // `memcmp` call (string-literal patterns compile to one per arm).
        Cell::Str(s) if s.len() <= 2 && fast_status(s.as_bytes()).is_some() => {
            Ok(match fast_status(s.as_bytes()).expect("checked") {
                1 => by_one(true),
                0 => by_one(false),
                _ => NotApplicable,
            })
        }
        Cell::Str(s) => {
            let s = fold_digits(s.trim());
            match &*lower(&s) {
                "1" => Ok(by_one(true)),
                "0" => Ok(by_one(false)),
                "pass" | "p" | "ผ่าน" | "ผ" => Ok(Pass),
                "fail" | "f" | "ไม่ผ่าน" | "มผ" | "ม.ผ." => Ok(Fail),
                "na" | "n/a" | "-" | "ไม่เกี่ยวข้อง" | "not applicable" | "not_applicable" => {
                    Ok(NotApplicable)
                }
                "" | "missing" | "ไม่ทราบ" | "null" => Ok(Missing),
                other => match decimal_zero_one(other) {
                    Some(v) => Ok(by_one(v)),
                    None => Err(Reason::BadStatus),
                },
            }
        }
        _ => Err(Reason::BadStatus),
    }
}

/// A yes/no flag: `1`/`0`, `y`/`n`, `yes`/`no`, `true`/`false`, `ใช่`/`ไม่ใช่`, `มี`/`ไม่มี`,
/// `ผ่าน`/`ไม่ผ่าน`, `พิการ`/`ไม่พิการ`.
pub fn flag(cell: Cell<'_>) -> Result<Option<bool>, Reason> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Bool(b) => Ok(Some(b)),
        Cell::Int(1) => Ok(Some(true)),
        Cell::Int(0) => Ok(Some(false)),
        Cell::Float(1.0) => Ok(Some(true)),
        Cell::Float(0.0) => Ok(Some(false)),
        Cell::Str(s) if s.len() == 1 && matches!(s.as_bytes()[0], b'0' | b'1') => Ok(Some(s.as_bytes()[0] == b'1')),
        // As a CSV file writes a boolean column, without folding and lowering it first.
        Cell::Str("true") => Ok(Some(true)),
        Cell::Str("false") => Ok(Some(false)),
        Cell::Str(s) => flag_text(s),
        Cell::Float(f) if f.is_nan() => Ok(None),
        _ => Err(Reason::BadFlag),
    }
}

/// A flag written as text in any form [`flag`] takes.
fn flag_text(s: &str) -> Result<Option<bool>, Reason> {
    match &*lower(&fold_digits(s)) {
        "1" | "y" | "yes" | "true" | "t" | "ใช่" | "มี" | "ผ่าน" | "พิการ" => {
            Ok(Some(true))
        }
        "0" | "n" | "no" | "false" | "ไม่ใช่" | "ไม่มี" | "ไม่ผ่าน" | "ไม่พิการ" => {
            Ok(Some(false))
        }
        "" => Ok(None),
        other => decimal_zero_one(other).map(Some).ok_or(Reason::BadFlag),
    }
}

/// The value of text of one to 15 ASCII digits, with nothing else or a point and zeros after
/// them (an age, a count, a code, an amount such as `98996.0` as a CSV file writes it), which
/// `str::parse::<f64>` would give exactly: the common case read without trimming, folding Thai
/// digits, looking for separators and parsing a float.
fn ascii_whole(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let digits = match b.iter().position(|&c| c == b'.') {
        Some(p) if p + 1 < b.len() && b[p + 1..].iter().all(|&c| c == b'0') => &b[..p],
        Some(_) => return None,
        None => b,
    };
    crate::thai::ascii_digits(digits, 15)
}

/// A non-negative number, allowing thousands separators and Thai digits.
pub fn number(cell: Cell<'_>) -> Result<Option<f64>, Reason> {
    let v = match cell {
        Cell::Null => return Ok(None),
        Cell::Int(i) => i as f64,
        Cell::Float(f) => f,
        Cell::Str(s) => return ascii_whole(s).map_or_else(|| number_text(s), |v| Ok(Some(v as f64))),
        _ => return Err(Reason::BadNumber),
    };
    non_negative(v)
}

/// `v` when it is a finite number of zero or more.
fn non_negative(v: f64) -> Result<Option<f64>, Reason> {
    if !v.is_finite() || v < 0.0 { Err(Reason::BadNumber) } else { Ok(Some(v)) }
}

/// A number written as text in any form [`number`] takes.
fn number_text(s: &str) -> Result<Option<f64>, Reason> {
    let s = fold_digits(s.trim());
    // Thousands separators and inner spaces are dropped, in a copy only when there are any.
    let cleaned =
        if s.contains([',', ' ']) { Cow::Owned(s.chars().filter(|&c| c != ',' && c != ' ').collect()) } else { s };
    if cleaned.is_empty() {
        return Ok(None);
    }
    non_negative(cleaned.parse::<f64>().map_err(|_| Reason::BadNumber)?)
}

/// A non-negative whole number.
pub fn whole(cell: Cell<'_>) -> Result<Option<u64>, Reason> {
    match number(cell)? {
        None => Ok(None),
        Some(v) if v.fract() == 0.0 && v <= u32::MAX as f64 => Ok(Some(v as u64)),
        Some(_) => Err(Reason::BadNumber),
    }
}

/// Text of a cell (numbers formatted), with Thai digits kept as written.
pub fn text(cell: Cell<'_>) -> String {
    cell.to_text()
}

/// A date: text in the forms [`crate::thai::parse_date`] takes, a typed date, or an integer
/// `YYYYMMDD`.
pub fn date(cell: Cell<'_>) -> Result<Option<PartialDate>, Reason> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Date(d) => PartialDate::from_days_since_epoch(d).map(Some).ok_or(Reason::BadDate),
        Cell::Str(s) => crate::thai::parse_date(s).map(Some).ok_or(Reason::BadDate),
        Cell::Int(i) => crate::thai::parse_date(&i.to_string()).map(Some).ok_or(Reason::BadDate),
        _ => Err(Reason::BadDate),
    }
}

/// A year, BE or CE, returned as BE.
pub fn year_be(cell: Cell<'_>) -> Result<Option<u16>, Reason> {
    match whole(cell).map_err(|_| Reason::BadYear)? {
        None => Ok(None),
        Some(y @ 2400..=2700) => Ok(Some(y as u16)),
        Some(y @ 1900..=2157) => Ok(Some(y as u16 + 543)),
        Some(_) => Err(Reason::BadYear),
    }
}

/// Sex: `1`/`m`/`male`/`ชาย`/`ช` and `2`/`f`/`female`/`หญิง`/`ญ`.
pub fn sex(cell: Cell<'_>) -> Result<crate::extract::Sex, Reason> {
    use crate::extract::Sex;
    match cell {
        Cell::Null => Ok(Sex::Unknown),
        Cell::Int(1) => Ok(Sex::Male),
        Cell::Int(2) => Ok(Sex::Female),
        // The code as a CSV file writes it, without folding and lowering it first.
        Cell::Str("1") => Ok(Sex::Male),
        Cell::Str("2") => Ok(Sex::Female),
        Cell::Str(s) => sex_text(s),
        _ => Err(Reason::BadSex),
    }
}

/// Sex written as text in any form [`sex`] takes.
fn sex_text(s: &str) -> Result<crate::extract::Sex, Reason> {
    use crate::extract::Sex;
    match &*lower(&fold_digits(s)) {
        "1" | "m" | "male" | "ชาย" | "ช" | "ช." => Ok(Sex::Male),
        "2" | "f" | "female" | "หญิง" | "ญ" | "ญ." => Ok(Sex::Female),
        "" => Ok(Sex::Unknown),
        _ => Err(Reason::BadSex),
    }
}

/// Relation to the head: a code 1–8 or a Thai or English name.
pub fn relation(cell: Cell<'_>) -> Result<crate::extract::Relation, Reason> {
    use crate::extract::Relation as R;
    match cell {
        Cell::Null => Ok(R::Unknown),
        Cell::Int(n) => relation_code(n),
        Cell::Float(f) if f.fract() == 0.0 => relation_code(f as i64),
        // A one-digit code as a CSV file writes it, without folding and lowering it first.
        Cell::Str(s) if s.len() == 1 && s.as_bytes()[0].is_ascii_digit() => {
            relation_code(i64::from(s.as_bytes()[0] - b'0'))
        }
        Cell::Str(s) => relation_text(s),
        _ => Err(Reason::BadRelation),
    }
}

/// The relation of code `n` (1 to 8).
fn relation_code(n: i64) -> Result<crate::extract::Relation, Reason> {
    use crate::extract::Relation as R;
    R::ALL.get(n as usize).copied().filter(|_| (1..=8).contains(&n)).ok_or(Reason::BadRelation)
}

/// A relation written as text in any form [`relation`] takes.
fn relation_text(s: &str) -> Result<crate::extract::Relation, Reason> {
    use crate::extract::Relation as R;
    let folded = fold_digits(s);
    let s = lower(&folded);
    if let Ok(n) = s.parse::<i64>() {
        return relation_code(n);
    }
    Ok(match &*s {
        "head" | "หัวหน้าครัวเรือน" | "หัวหน้า" | "เจ้าบ้าน" => {
            R::Head
        }
        "spouse" | "คู่สมรส" | "สามี" | "ภรรยา" | "ภริยา" => R::Spouse,
        "child" | "บุตร" | "ลูก" | "บุตรเขย" | "บุตรสะใภ้" => R::Child,
        "parent" | "บิดามารดา" | "บิดา" | "มารดา" | "พ่อ" | "แม่" => {
            R::Parent
        }
        "grandchild" | "หลาน" => R::Grandchild,
        "sibling" | "พี่น้อง" | "พี่" | "น้อง" => R::Sibling,
        "relative" | "other_relative" | "ญาติ" | "ญาติอื่น" => R::OtherRelative,
        "non_relative" | "other" | "ผู้อาศัย" | "ผู้อาศัยอื่น" | "ไม่ใช่ญาติ" => {
            R::NonRelative
        }
        "" => R::Unknown,
        _ => return Err(Reason::BadRelation),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The fast paths for text as a CSV file writes it (digits only) give what the general
        /// text readers give: numbers of up to 15 digits (then 16 and more, which take the
        /// general path), one-character sexes and relations of every ASCII character.
        #[test]
        fn digits_read_fast_as_the_general_readers_read_them(
            s in "[0-9]{1,18}|[0-9]{0,16}\\.0{0,3}|[0-9]{0,3}[ ,.a-][0-9]{0,3}|[0-9]{1,3}\\.0*[1-9]0?"
        ) {
            proptest::prop_assert_eq!(number(Cell::Str(&s)), number_text(&s));
            let (digits, after) = s.split_once('.').unwrap_or((&s, ""));
            let plain = (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
            let zeros = s.contains('.') != after.is_empty() && after.bytes().all(|b| b == b'0');
            proptest::prop_assert_eq!(ascii_whole(&s).is_some(), plain && zeros);
        }
    }

    #[test]
    fn one_character_codes_and_booleans_read_fast_as_the_general_readers_read_them() {
        for c in (0u8..0x80).map(char::from) {
            let s = c.to_string();
            if s.trim().is_empty() {
                continue; // an empty cell is Cell::Null, never Cell::Str
            }
            assert_eq!(sex(Cell::Str(&s)), sex_text(&s), "{s:?}");
            assert_eq!(relation(Cell::Str(&s)), relation_text(&s), "{s:?}");
        }
        for s in ["true", "false", "True", "FALSE", "t", "truee", "0", "1", "1.0"] {
            assert_eq!(flag(Cell::Str(s)), flag_text(s), "{s:?}");
        }
        assert_eq!(flag(Cell::Str("false")), Ok(Some(false)));
        assert_eq!(relation(Cell::Str("3")), Ok(crate::extract::Relation::ALL[3]));
        assert_eq!(relation(Cell::Str("9")), Err(Reason::BadRelation));
        assert_eq!(sex(Cell::Str("2")), Ok(crate::extract::Sex::Female));
    }

    /// `lower` is `trim().to_lowercase()` for every ASCII and Thai character, alone and in words
    /// with spaces and capitals; it borrows only when nothing changes.
    #[test]
    fn lower_is_trimmed_to_lowercase() {
        let chars = (0u32..0x80).chain(0x0E00..0x0E80).chain([0xC4, 0x130, 0x1E9E, 0xFF21]).filter_map(char::from_u32);
        for c in chars {
            for s in [c.to_string(), format!(" {c}x "), format!("ไม่{c}"), format!("{c}A")] {
                let got = lower(&s);
                assert_eq!(got, s.trim().to_lowercase(), "{s:?}");
                assert_eq!(matches!(got, Cow::Borrowed(_)), got == s.trim(), "{s:?}");
            }
        }
        assert_eq!(number(Cell::Str(" 1,234 567.5 ")), Ok(Some(1_234_567.5)));
        assert_eq!(number(Cell::Str("๑,๐๐๐")), Ok(Some(1000.0)));
        assert_eq!(number(Cell::Str(",")), Ok(None));
        assert_eq!(number(Cell::Str("12a")), Err(Reason::BadNumber));
    }

    /// The shortcut trims exactly what `str::trim` trims, for every character at either end.
    #[test]
    fn trim_text_is_str_trim() {
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            for s in [format!("{c}"), format!("{c}ก"), format!("ก{c}"), format!("{c}ab{c}"), format!("x{c}{c}")] {
                assert_eq!(trim_text(&s), s.trim(), "U+{:04X}", c as u32);
            }
        }
        assert_eq!(trim_text(""), "");
        assert_eq!(trim_text("\u{3000}สมชาย\u{00A0}"), "สมชาย");
    }
    use IndicatorStatus::*;

    #[test]
    fn statuses() {
        let cases = [
            (Cell::Str("1"), Fail),
            (Cell::Str("๐"), Pass),
            (Cell::Str("ผ่าน"), Pass),
            (Cell::Str(" ไม่ผ่าน "), Fail),
            (Cell::Str("PASS"), Pass),
            (Cell::Str("fail"), Fail),
            (Cell::Str("ไม่เกี่ยวข้อง"), NotApplicable),
            (Cell::Str("NA"), NotApplicable),
            (Cell::Null, Missing),
            (Cell::Int(1), Fail),
            (Cell::Bool(false), Pass),
        ];
        for (c, want) in cases {
            assert_eq!(status(c, OneMeans::Fail), Ok(want), "{c:?}");
        }
        assert_eq!(status(Cell::Str("1"), OneMeans::Pass), Ok(Pass));
        // Stata and pandas write 0/1 columns that once held a missing value as decimals.
        for (text, want) in [("1.0", Fail), ("0.0", Pass), ("1.00", Fail), ("0.", Pass), ("๑.๐", Fail)] {
            assert_eq!(status(Cell::Str(text), OneMeans::Fail), Ok(want), "{text}");
        }
        assert_eq!(status(Cell::Float(f64::NAN), OneMeans::Fail), Ok(Missing));
        for bad in ["1.5", "2.0", "10", "1e0", "-0", ".5", "0x1", "inf", "NaN"] {
            assert_eq!(status(Cell::Str(bad), OneMeans::Fail), Err(Reason::BadStatus), "{bad}");
        }
        assert_eq!(status(Cell::Float(0.5), OneMeans::Fail), Err(Reason::BadStatus));
        assert_eq!(status(Cell::Int(2), OneMeans::Fail), Err(Reason::BadStatus));
        assert_eq!(status(Cell::Str("2"), OneMeans::Fail), Err(Reason::BadStatus));
        assert_eq!(status(Cell::Str("ผ่านบ้าง"), OneMeans::Fail), Err(Reason::BadStatus));
    }

    #[test]
    fn flags_numbers_years() {
        assert_eq!(flag(Cell::Str("มี")), Ok(Some(true)));
        assert_eq!(flag(Cell::Str("ไม่พิการ")), Ok(Some(false)));
        assert_eq!(flag(Cell::Str("maybe")), Err(Reason::BadFlag));
        assert_eq!(number(Cell::Str("๓๘,๐๐๐")), Ok(Some(38000.0)));
        assert_eq!(number(Cell::Str("-5")), Err(Reason::BadNumber));
        assert_eq!(whole(Cell::Str("2.5")), Err(Reason::BadNumber));
        assert_eq!(year_be(Cell::Int(2017)), Ok(Some(2560)));
        assert_eq!(year_be(Cell::Str("๒๕๖๐")), Ok(Some(2560)));
        assert_eq!(year_be(Cell::Str("60")), Err(Reason::BadYear));
    }

    #[test]
    fn sex_and_relation() {
        use crate::extract::{Relation, Sex};
        assert_eq!(sex(Cell::Str("หญิง")), Ok(Sex::Female));
        assert_eq!(sex(Cell::Int(1)), Ok(Sex::Male));
        assert_eq!(sex(Cell::Str("x")), Err(Reason::BadSex));
        assert_eq!(relation(Cell::Str("บุตร")), Ok(Relation::Child));
        assert_eq!(relation(Cell::Str("๑")), Ok(Relation::Head));
        assert_eq!(relation(Cell::Int(9)), Err(Reason::BadRelation));
        assert_eq!(relation(Cell::Str("boss")), Err(Reason::BadRelation));
    }

    #[test]
    fn dates() {
        assert_eq!(date(Cell::Str("15/03/2530")).unwrap().unwrap().year, 1987);
        assert_eq!(date(Cell::Int(25300315)).unwrap().unwrap().month, 3);
        assert_eq!(date(Cell::Date(0)).unwrap(), Some(PartialDate { year: 1970, month: 1, day: 1 }));
        assert_eq!(date(Cell::Str("soon")), Err(Reason::BadDate));
    }
}
