//! Small Thai-text helpers shared by the parsers: Thai digits, Buddhist-Era years and dates.
//!
//! ```
//! use tpmap::thai::parse_date;
//! assert_eq!(parse_date("๑๕ มี.ค. ๒๕๓๐").unwrap().to_string(), "1987-03-15");
//! assert_eq!(parse_date("03/2530").unwrap().to_string(), "1987-03"); // month and year only
//! assert_eq!(parse_date("15/259/2530"), None); // never wrapped into range
//! ```

use std::borrow::Cow;

/// Replaces Thai digits (๐–๙, U+0E50–U+0E59) with ASCII digits; borrows when there are none.
///
/// ```
/// assert_eq!(tpmap::thai::fold_digits("๑๒/๓"), "12/3");
/// ```
pub fn fold_digits(s: &str) -> Cow<'_, str> {
    // Most cells are ASCII: one word-at-a-time check instead of decoding every character.
    if s.is_ascii() || !s.chars().any(is_thai_digit) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars().map(|c| if is_thai_digit(c) { char::from(b'0' + (c as u32 - 0x0E50) as u8) } else { c }).collect(),
    )
}

/// The value of 1 to `max_digits` ASCII digits and nothing else (`max_digits` ≤ 19, so the value
/// fits a `u64`): the plain form of IDs and numbers in a text extract, read without the general
/// readers' trimming and folding.
pub(crate) fn ascii_digits(b: &[u8], max_digits: usize) -> Option<u64> {
    if b.is_empty() || b.len() > max_digits.min(19) || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u64, |v, &d| v * 10 + u64::from(d - b'0')))
}

fn is_thai_digit(c: char) -> bool {
    ('\u{0E50}'..='\u{0E59}').contains(&c)
}

/// A calendar date in the Gregorian (CE) calendar whose month or day may be unknown.
///
/// Government files often carry only a birth year, or a year and month. `month == 0` means the
/// month is unknown, `day == 0` the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartialDate {
    /// Year of the common era.
    pub year: u16,
    /// 1–12, or 0 when unknown.
    pub month: u8,
    /// 1–31, or 0 when unknown.
    pub day: u8,
}

impl PartialDate {
    /// A full date, checked for a valid day of the month.
    pub fn ymd(year: u16, month: u8, day: u8) -> Option<Self> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(PartialDate { year, month, day })
    }

    /// True when year, month and day are all known.
    pub fn is_complete(&self) -> bool {
        self.month != 0 && self.day != 0
    }

    /// Completed years of age on `on`, counting an unknown month as July and an unknown day as
    /// the 15th (the middle of what is known).
    pub fn age_on(&self, on: PartialDate) -> i32 {
        let m = if self.month == 0 { 7 } else { self.month };
        let d = if self.day == 0 { 15 } else { self.day };
        let mut age = on.year as i32 - self.year as i32;
        if (on.month, on.day) < (m, d) {
            age -= 1;
        }
        age
    }

    /// Days since 1970-01-01 (for complete dates; unknown parts count as the 1st).
    pub fn days_since_epoch(&self) -> i32 {
        days_from_civil(self.year as i32, self.month.clamp(1, 12) as u32, self.day.clamp(1, 31) as u32)
    }

    /// The date `days` after 1970-01-01, when it falls in the years [`MIN_YEAR`]..=[`MAX_YEAR`].
    ///
    /// ```
    /// use tpmap::thai::PartialDate;
    /// assert_eq!(PartialDate::from_days_since_epoch(0), Some(PartialDate { year: 1970, month: 1, day: 1 }));
    /// assert_eq!(PartialDate::from_days_since_epoch(i32::MAX), None); // a Parquet date32 of i32::MAX
    /// ```
    pub fn from_days_since_epoch(days: i32) -> Option<Self> {
        if !(MIN_EPOCH_DAY..=MAX_EPOCH_DAY).contains(&days) {
            return None;
        }
        let (y, m, d) = civil_from_days(days);
        Some(PartialDate { year: u16::try_from(y).ok()?, month: m as u8, day: d as u8 })
    }
}

/// The earliest year a [`PartialDate`] holds (CE).
pub const MIN_YEAR: u16 = 1;
/// The latest year a [`PartialDate`] holds (CE).
pub const MAX_YEAR: u16 = 9999;
/// Days from 1970-01-01 to 0001-01-01.
const MIN_EPOCH_DAY: i32 = -719_162;
/// Days from 1970-01-01 to 9999-12-31.
const MAX_EPOCH_DAY: i32 = 2_932_896;

impl std::fmt::Display for PartialDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.month, self.day) {
            (0, _) => write!(f, "{:04}", self.year),
            (m, 0) => write!(f, "{:04}-{:02}", self.year, m),
            (m, d) => write!(f, "{:04}-{:02}-{:02}", self.year, m, d),
        }
    }
}

/// Days in a Gregorian month.
pub fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => 29,
        2 => 28,
        _ => 0,
    }
}

// Howard Hinnant's civil-date algorithms: exact for the proleptic Gregorian calendar, and no crate
// is needed for two tiny functions.
fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Converts a Buddhist-Era year (with its month, 0 if unknown) to the common era.
///
/// BE = CE + 543 from 1941 on. Before 1941 the Thai year began on 1 April, so January–March of
/// BE 2483 and earlier belong to CE year BE − 542.
///
/// ```
/// use tpmap::thai::be_to_ce;
/// assert_eq!(be_to_ce(2530, 5), 1987);
/// assert_eq!(be_to_ce(2483, 2), 1941); // February of BE 2483 was February 1941
/// assert_eq!(be_to_ce(2483, 6), 1940);
/// ```
pub fn be_to_ce(be_year: u16, month: u8) -> u16 {
    // Saturating: years below 543 are not Buddhist-Era years; callers range-check first.
    if be_year <= 2483 && (1..=3).contains(&month) { be_year.saturating_sub(542) } else { be_year.saturating_sub(543) }
}

/// Converts a common-era year (with its month, 0 if unknown) to the Buddhist Era: the inverse of
/// [`be_to_ce`] (January–March of 1941 and earlier are BE = CE + 542).
///
/// ```
/// use tpmap::thai::{be_to_ce, ce_to_be};
/// assert_eq!(ce_to_be(1938, 2), 2480);
/// assert_eq!(be_to_ce(ce_to_be(1938, 2), 2), 1938);
/// ```
pub fn ce_to_be(ce_year: u16, month: u8) -> u16 {
    if ce_year <= 1941 && (1..=3).contains(&month) { ce_year.saturating_add(542) } else { ce_year.saturating_add(543) }
}

/// Converts a year that may be BE or CE to CE: 2400 and later are read as BE, 1800–2200 as CE.
pub fn normalize_year(year: u32, month: u8) -> Option<u16> {
    match year {
        2400..=2700 => Some(be_to_ce(year as u16, month)),
        1800..=2200 => Some(year as u16),
        _ => None,
    }
}

const THAI_MONTHS: [(&str, &str); 12] = [
    ("ม.ค.", "มกราคม"),
    ("ก.พ.", "กุมภาพันธ์"),
    ("มี.ค.", "มีนาคม"),
    ("เม.ย.", "เมษายน"),
    ("พ.ค.", "พฤษภาคม"),
    ("มิ.ย.", "มิถุนายน"),
    ("ก.ค.", "กรกฎาคม"),
    ("ส.ค.", "สิงหาคม"),
    ("ก.ย.", "กันยายน"),
    ("ต.ค.", "ตุลาคม"),
    ("พ.ย.", "พฤศจิกายน"),
    ("ธ.ค.", "ธันวาคม"),
];

fn thai_month(s: &str) -> Option<u8> {
    let s = s.trim();
    THAI_MONTHS
        .iter()
        .position(|(abbr, full)| s == *abbr || s == *full || s == abbr.trim_end_matches('.'))
        .map(|i| i as u8 + 1)
}

/// Parses a date as government files write it, to a [`PartialDate`] in CE.
///
/// Accepted: `YYYY-MM-DD`, `YYYY/MM/DD`, `DD/MM/YYYY`, `DD-MM-YYYY`, `DD.MM.YYYY`, `YYYYMMDD`,
/// `MM/YYYY`, `YYYY-MM`, `YYYY`, and `15 มี.ค. 2530` with Thai month names; Thai or ASCII digits; years in
/// BE (2400 and later) or CE. A day or month of `0` or `00` means unknown (partial date).
///
/// ```
/// use tpmap::thai::{parse_date, PartialDate};
/// assert_eq!(parse_date("๑๕/๐๓/๒๕๓๐"), Some(PartialDate { year: 1987, month: 3, day: 15 }));
/// assert_eq!(parse_date("1987-03-15"), parse_date("15 มี.ค. 2530"));
/// assert_eq!(parse_date("00/00/2500"), Some(PartialDate { year: 1957, month: 0, day: 0 }));
/// assert_eq!(parse_date("31/02/2530"), None);
/// ```
pub fn parse_date(raw: &str) -> Option<PartialDate> {
    // ISO dates (`1991-09-29`), what nearly every extract writes: read without splitting or
    // collecting the parts, with the same result as the general path below.
    if let Some(d) = iso_date(raw.as_bytes()) {
        return d;
    }
    let s = fold_digits(raw.trim());
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    // Thai month names: "15 มี.ค. 2530", "มีนาคม 2530".
    if s.chars().any(|c| ('\u{0E01}'..='\u{0E4F}').contains(&c)) {
        let parts: Vec<&str> = s.split_whitespace().collect();
        return match parts.as_slice() {
            [d, m, y] => build(digits(y)?, thai_month(m)? as u32, digits(d)?),
            [m, y] => build(digits(y)?, thai_month(m)? as u32, 0),
            _ => None,
        };
    }
    // Excel and ISO timestamps: keep the date part.
    let s = s.split(['T', ' ']).next().unwrap_or(s);
    // Every part must be ASCII digits from here on: byte offsets below are then character offsets.
    if !s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'/' | b'.')) {
        return None;
    }
    let parts: Vec<&str> = s.split(['-', '/', '.']).collect();
    match parts.as_slice() {
        [one] if one.len() == 8 => build(digits(&one[..4])?, digits(&one[4..6])?, digits(&one[6..])?),
        [one] if one.len() == 4 => build(digits(one)?, 0, 0),
        [a, b, c] if a.len() == 4 => build(digits(a)?, digits(b)?, digits(c)?),
        [a, b, c] if c.len() == 4 => build(digits(c)?, digits(b)?, digits(a)?),
        [m, y] if y.len() == 4 => build(digits(y)?, digits(m)?, 0),
        // ISO 8601 without the day, as tpmap writes a date whose day is unknown.
        [y, m] if y.len() == 4 => build(digits(y)?, digits(m)?, 0),
        _ => None,
    }
}

/// `YYYY-MM-DD` in ASCII digits exactly, as [`build`] takes it (`Some(None)`: such a date that
/// is not one); `None` for any other form.
fn iso_date(b: &[u8]) -> Option<Option<PartialDate>> {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *b else { return None };
    let mut n = [0u32; 8];
    for (o, c) in n.iter_mut().zip([y0, y1, y2, y3, m0, m1, d0, d1]) {
        if !c.is_ascii_digit() {
            return None;
        }
        *o = u32::from(c - b'0');
    }
    let [a, b, c, d, e, f, g, h] = n;
    Some(build(a * 1000 + b * 100 + c * 10 + d, e * 10 + f, g * 10 + h))
}

/// One to four ASCII digits as a number (`None` for anything else: no value is ever wrapped or
/// truncated into range).
fn digits(p: &str) -> Option<u32> {
    if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

/// Checks month and day ranges before narrowing them: `259` is not a month, never `259 % 256`.
fn build(year: u32, month: u32, day: u32) -> Option<PartialDate> {
    if month > 12 || day > 31 {
        return None;
    }
    let (month, day) = (month as u8, day as u8);
    let year = normalize_year(year, month)?;
    if month == 0 {
        return if day == 0 { Some(PartialDate { year, month: 0, day: 0 }) } else { None };
    }
    if day == 0 {
        return Some(PartialDate { year, month, day: 0 });
    }
    PartialDate::ymd(year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_fold_and_borrow() {
        assert!(matches!(fold_digits("12"), Cow::Borrowed(_)));
        assert_eq!(fold_digits("บ้านเลขที่ ๙๙/๑"), "บ้านเลขที่ 99/1");
    }

    #[test]
    fn iso_dates_read_directly_as_by_the_general_path() {
        // A leading space keeps a string off the ISO shortcut: both must agree on every
        // ten-byte form of digits and dashes tried here, dates or not.
        let forms = [
            "1991-09-29",
            "2530-03-15",
            "0000-00-00",
            "1987-02-29",
            "1988-02-29",
            "2024-13-01",
            "2024-12-32",
            "2483-03-31",
            "2484-01-01",
            "1987-00-15",
            "1987-03-00",
            "9999-99-99",
            "19-87-0315",
            "1987/03/15",
            "1987-03-1x",
        ];
        for s in forms {
            assert_eq!(parse_date(s), parse_date(&format!(" {s}")), "{s}");
        }
        for y in [1900u32, 1987, 2000, 2482, 2483, 2484, 2530, 2567] {
            for m in 0..=13 {
                for d in [0u32, 1, 28, 29, 30, 31, 32] {
                    let s = format!("{y:04}-{m:02}-{d:02}");
                    assert_eq!(parse_date(&s), parse_date(&format!(" {s}")), "{s}");
                }
            }
        }
        assert!(matches!(fold_digits("1991-09-29"), Cow::Borrowed(_)));
    }

    #[test]
    fn be_boundary_before_1941() {
        // 1 January 1941 CE was still BE 2483; 1 April 1941 began BE 2484.
        assert_eq!(parse_date("01/01/2483").unwrap().year, 1941);
        assert_eq!(parse_date("31/03/2483").unwrap().year, 1941);
        assert_eq!(parse_date("01/04/2483").unwrap().year, 1940);
        assert_eq!(parse_date("01/04/2484").unwrap().year, 1941);
        assert_eq!(parse_date("01/01/2485").unwrap().year, 1942);
    }

    #[test]
    fn written_dates_read_back() {
        // What `Display` writes (outputs' partial dates among them) is read as the same date.
        for d in [
            PartialDate { year: 1987, month: 3, day: 15 },
            PartialDate { year: 1987, month: 3, day: 0 },
            PartialDate { year: 1987, month: 0, day: 0 },
        ] {
            assert_eq!(parse_date(&d.to_string()), Some(d), "{d}");
        }
        assert_eq!(parse_date("2530-03"), Some(PartialDate { year: 1987, month: 3, day: 0 }));
        assert_eq!(parse_date("1987-13"), None);
    }

    #[test]
    fn formats() {
        let d = PartialDate { year: 1987, month: 3, day: 15 };
        for s in
            ["1987-03-15", "15/3/1987", "15-03-2530", "25300315", "15.03.2530", "15 มีนาคม 2530", "1987-03-15T00:00:00"]
        {
            assert_eq!(parse_date(s), Some(d), "{s}");
        }
        assert_eq!(parse_date("03/2530"), Some(PartialDate { year: 1987, month: 3, day: 0 }));
        assert_eq!(parse_date("2530"), Some(PartialDate { year: 1987, month: 0, day: 0 }));
        for bad in [
            "",
            "abc",
            "32/01/2530",
            "29/02/2530",
            "15/13/2530",
            "15/03/3100",
            "1/1/99",
            // Byte slicing inside a character, and values that would wrap modulo 256.
            "12€678",
            "12345€",
            "15/259/2530",
            "271/03/2530",
            "2026-0258-0001",
            "๑๕ มี.ค. ๒๕๓๐๐",
            "๓๐๐ มี.ค. ๒๕๓๐",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn be_ce_round_trip() {
        for y in 1900..2100u16 {
            for m in 0..=12u8 {
                assert_eq!(be_to_ce(ce_to_be(y, m), m), y, "{y}-{m}");
            }
        }
    }

    #[test]
    fn leap_day_in_be() {
        assert_eq!(parse_date("29/02/2531"), Some(PartialDate { year: 1988, month: 2, day: 29 }));
        assert_eq!(parse_date("29/02/2530"), None);
    }

    #[test]
    fn ages() {
        let on = PartialDate { year: 2017, month: 3, day: 31 };
        assert_eq!(PartialDate { year: 1987, month: 3, day: 31 }.age_on(on), 30);
        assert_eq!(PartialDate { year: 1987, month: 4, day: 1 }.age_on(on), 29);
        assert_eq!(PartialDate { year: 1987, month: 0, day: 0 }.age_on(on), 29);
    }

    #[test]
    fn epoch_days_round_trip() {
        for days in [-30_000, -1, 0, 1, 365, 10_957, 20_000, MIN_EPOCH_DAY, MAX_EPOCH_DAY] {
            assert_eq!(PartialDate::from_days_since_epoch(days).unwrap().days_since_epoch(), days);
        }
        assert_eq!(PartialDate::from_days_since_epoch(MAX_EPOCH_DAY).unwrap().to_string(), "9999-12-31");
        assert_eq!(PartialDate::from_days_since_epoch(MIN_EPOCH_DAY).unwrap().to_string(), "0001-01-01");
        for bad in [i32::MIN, MIN_EPOCH_DAY - 1, MAX_EPOCH_DAY + 1, i32::MAX] {
            assert_eq!(PartialDate::from_days_since_epoch(bad), None, "{bad}");
        }
        assert_eq!(PartialDate { year: 2000, month: 1, day: 1 }.days_since_epoch(), 10_957);
    }
}
