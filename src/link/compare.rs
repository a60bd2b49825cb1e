//! Comparisons of two records, each with ordered levels (the first is the strongest agreement),
//! and the string and date kernels behind them.
//!
//! Thai names are compared per character (Unicode scalar), never per UTF-8 byte: byte distances
//! disagree with character distances on most Thai name pairs. Jaro–Winkler and Levenshtein come
//! from `strsim`, which works on `char`s.
//!
//! ```
//! use tpmap::link::compare::jaro_winkler;
//! assert_eq!(jaro_winkler("สมชาย", "สมชาย"), 1.0);
//! assert!(jaro_winkler("สมชาย", "สมชาญ") > 0.9);
//! ```

use serde::{Deserialize, Serialize};

use super::records::Records;
use crate::extract::Sex;
use crate::thai::PartialDate;

/// The fields a model compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// Citizen ID.
    CitizenId,
    /// Given name (also checked against the other's family name: swapped names).
    FirstName,
    /// Family name.
    LastName,
    /// Birth date.
    BirthDate,
    /// Sex.
    Sex,
    /// Address: village and house number.
    Address,
}

impl Field {
    /// All fields, in model order.
    pub const ALL: [Field; 6] =
        [Field::CitizenId, Field::FirstName, Field::LastName, Field::BirthDate, Field::Sex, Field::Address];

    /// Level labels, strongest first; the last is "else" (disagreement).
    pub fn levels(self) -> &'static [&'static str] {
        match self {
            Field::CitizenId => &["exact", "one transposition or one digit", "else"],
            Field::FirstName | Field::LastName => &[
                "exact",
                "exact without tone marks",
                "Jaro-Winkler >= 0.92",
                "same LK82 soundex",
                "swapped with the other name",
                "romanised Jaro-Winkler >= 0.90",
                "Jaro-Winkler >= 0.80",
                "else",
            ],
            Field::BirthDate => &[
                "exact",
                "day and month swapped",
                "Buddhist/Common Era confusion",
                "year mistyped (one digit or two adjacent), day and month agree",
                "within 31 days",
                "same year (or partial date agrees)",
                "else",
            ],
            Field::Sex => &["same", "else"],
            Field::Address => &["same village and house number", "same village", "same tambon", "same amphoe", "else"],
        }
    }
}

/// How far two values agree: the index of the level reached in [`Field::levels`] (0 is the
/// strongest, the last is disagreement), or `None` when either side is missing (it does not count).
pub type Agreement = Option<u8>;

/// Compares two records on one field.
pub fn compare(r: &Records, a: usize, b: usize, f: Field) -> Agreement {
    match f {
        Field::CitizenId => id_level(r, a, b),
        Field::FirstName => name_level(r, a, b, true),
        Field::LastName => name_level(r, a, b, false),
        Field::BirthDate => date_level(r.birth[a], r.birth[b]),
        Field::Sex => match (r.sex[a], r.sex[b]) {
            (Sex::Unknown, _) | (_, Sex::Unknown) => None,
            (x, y) => Some((x != y) as u8),
        },
        Field::Address => {
            let (x, y) = (r.area.get(a)?, r.area.get(b)?);
            let (x, y) = (x.as_str(), y.as_str());
            let common = x.bytes().zip(y.bytes()).take_while(|(p, q)| p == q).count();
            Some(if x == y && x.len() >= 8 {
                if r.house.get(a).is_some() && r.house.get(a) == r.house.get(b) { 0 } else { 1 }
            } else if common >= 6 {
                2
            } else if common >= 4 {
                3
            } else {
                4
            })
        }
    }
}

fn id_digits(r: &Records, i: usize) -> Option<u64> {
    r.citizen_id[i].map(|c| c.as_u64()).or_else(|| r.raw_id.get(i))
}

fn id_level(r: &Records, a: usize, b: usize) -> Agreement {
    let (x, y) = (id_digits(r, a)?, id_digits(r, b)?);
    if x == y {
        return Some(0);
    }
    Some(if id_near(x, y) { 1 } else { 2 })
}

/// Two 13-digit IDs one substituted digit or one adjacent transposition apart.
pub fn id_near(x: u64, y: u64) -> bool {
    // Digit by digit from the right, stopping at the third difference: most compared IDs (random
    // pairs for u) differ in their last digits, so this ends after two or three steps, where
    // spelling both IDs out cost 26 divisions and an allocation per pair.
    let (mut x, mut y) = (x, y);
    let mut diff = [(0usize, 0u64, 0u64); 2];
    let mut n = 0;
    for k in 0..13 {
        let (a, b) = (x % 10, y % 10);
        if a != b {
            if n == 2 {
                return false;
            }
            diff[n] = (k, a, b);
            n += 1;
        }
        x /= 10;
        y /= 10;
    }
    match n {
        1 => true,
        2 => {
            let ((i, xi, yi), (j, xj, yj)) = (diff[0], diff[1]);
            j == i + 1 && xi == yj && xj == yi
        }
        _ => false,
    }
}

/// Jaro–Winkler similarity on characters.
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    jaro_winkler_or_bound(&Decoded::of(a), &Decoded::of(b), 0.0)
}

/// Longest name decoded onto the stack; longer ones take strsim's own path.
const SHORT: usize = 48;

/// A name's characters decoded once (strsim walks the second string from its start for every
/// character of the first: on Thai UTF-8 that decoding dominated the linkage profile), with the
/// set of its characters' low 7 bits (Thai U+0E00-U+0E7F and ASCII each map one to one; a
/// collision between them only makes the set larger).
struct Decoded<'a> {
    text: &'a str,
    chars: [u32; SHORT],
    len: Option<usize>,
    set: u128,
}

impl<'a> Decoded<'a> {
    fn of(text: &'a str) -> Self {
        let mut d = Decoded { text, chars: [0; SHORT], len: Some(0), set: 0 };
        let mut n = 0;
        for c in text.chars() {
            let Some(slot) = d.chars.get_mut(n) else {
                d.len = None;
                return d;
            };
            *slot = c as u32;
            d.set |= 1u128 << (c as u32 & 127);
            n += 1;
        }
        d.len = Some(n);
        d
    }

    fn short(&self) -> Option<&[u32]> {
        self.len.map(|n| &self.chars[..n])
    }
}

/// Jaro–Winkler similarity of `a` and `b`, exact, or an upper bound of it when that bound is
/// already below `floor` (callers compare the result with thresholds at or above `floor`).
///
/// Random record pairs (u is estimated on hundreds of thousands of them) rarely share enough
/// characters to reach the name thresholds: a match pairs a character of one name with an equal
/// one of the other, so the matches are at most the characters of either name found anywhere in
/// the other, and Jaro–Winkler with that many matches, no transpositions and the real common
/// prefix bounds the exact value. Floating-point rounding is covered by a margin of 1e-9.
fn jaro_winkler_or_bound(a: &Decoded<'_>, b: &Decoded<'_>, floor: f64) -> f64 {
    let (Some(x), Some(y)) = (a.short(), b.short()) else {
        return strsim::jaro_winkler(a.text, b.text);
    };
    if floor > 0.0 && !x.is_empty() && !y.is_empty() {
        let found = |s: &[u32], set: u128| s.iter().filter(|&&c| set >> (c & 127) & 1 == 1).count();
        let m = found(x, b.set).min(found(y, a.set));
        let bound = if m == 0 {
            0.0
        } else {
            let j = (m as f64 / x.len() as f64 + m as f64 / y.len() as f64 + 1.0) / 3.0;
            let prefix = x.iter().take(4).zip(y).take_while(|(p, q)| p == q).count();
            if j > 0.7 { j + 0.1 * prefix as f64 * (1.0 - j) } else { j }
        };
        if bound < floor - 1e-9 {
            return bound;
        }
    }
    jaro_winkler_short(x, y)
}

/// strsim's `generic_jaro_winkler` (0.11) step for step, for sequences of at most [`SHORT`]
/// items, with the match flags on the stack (strsim allocates them on every call).
fn jaro_winkler_short(a: &[u32], b: &[u32]) -> f64 {
    let (a_len, b_len) = (a.len(), b.len());
    if a_len == 0 && b_len == 0 {
        return 1.0;
    } else if a_len == 0 || b_len == 0 {
        return 0.0;
    }
    let search_range = (a_len.max(b_len) / 2).saturating_sub(1);
    let (mut a_flags, mut b_flags) = ([false; SHORT], [false; SHORT]);
    let mut matches = 0usize;
    for (i, x) in a.iter().enumerate() {
        let lo = i.saturating_sub(search_range);
        let hi = b_len.min(i + search_range + 1);
        for j in lo..hi {
            if *x == b[j] && !b_flags[j] {
                a_flags[i] = true;
                b_flags[j] = true;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut transpositions = 0usize;
    let mut matched_b = (0..b_len).filter(|&j| b_flags[j]).map(|j| b[j]);
    for (i, x) in a.iter().enumerate() {
        if a_flags[i] && matched_b.next() != Some(*x) {
            transpositions += 1;
        }
    }
    transpositions /= 2;
    let sim = ((matches as f64 / a_len as f64)
        + (matches as f64 / b_len as f64)
        + ((matches - transpositions) as f64 / matches as f64))
        / 3.0;
    if sim > 0.7 {
        let prefix = a.iter().take(4).zip(b).take_while(|(x, y)| x == y).count();
        sim + 0.1 * prefix as f64 * (1.0 - sim)
    } else {
        sim
    }
}

fn name_level(r: &Records, a: usize, b: usize, first: bool) -> Agreement {
    let (x, y, other_b) = if first {
        (r.first.get(a), r.first.get(b), r.last.get(b))
    } else {
        (r.last.get(a), r.last.get(b), r.first.get(b))
    };
    if x.is_empty() || y.is_empty() {
        return None;
    }
    if x == y {
        return Some(0);
    }
    if super::normalize::eq_without_tone_marks(x, y) {
        return Some(1);
    }
    // Exact when it may reach 0.80, the lowest threshold it is compared with below.
    let dx = Decoded::of(x);
    let jw = jaro_winkler_or_bound(&dx, &Decoded::of(y), 0.80);
    if jw >= 0.92 {
        return Some(2);
    }
    let (lx, ly) = if first { (r.first_lk.get(a), r.first_lk.get(b)) } else { (r.last_lk.get(a), r.last_lk.get(b)) };
    if !lx.is_empty() && lx == ly {
        return Some(3);
    }
    if !other_b.is_empty() && (x == other_b || jaro_winkler_or_bound(&dx, &Decoded::of(other_b), 0.95) >= 0.95) {
        return Some(4);
    }
    // Thai against Latin: both romanised here, for the few pairs that need it (romanising every
    // name up front was a third of the normalisation time).
    let latin = |s: &str| s.is_ascii();
    if latin(x) != latin(y) {
        let (rx, ry) = (super::phonetic::romanize(x), super::phonetic::romanize(y));
        if !rx.is_empty() && jaro_winkler(&rx, &ry) >= 0.90 {
            return Some(5);
        }
    }
    Some(if jw >= 0.80 { 6 } else { 7 })
}

fn date_level(a: Option<PartialDate>, b: Option<PartialDate>) -> Agreement {
    let (a, b) = (a?, b?);
    if a.is_complete() && b.is_complete() {
        if a == b {
            return Some(0);
        }
        if a.year == b.year && a.month == b.day && a.day == b.month {
            return Some(1);
        }
        let dy = (a.year as i32 - b.year as i32).abs();
        if (dy == 543 || dy == 542) && a.month == b.month && a.day == b.day {
            return Some(2);
        }
        if a.month == b.month && a.day == b.day && year_mistyped(a.year, b.year) {
            return Some(3);
        }
        if (a.days_since_epoch() - b.days_since_epoch()).abs() <= 31 {
            return Some(4);
        }
        return Some(if a.year == b.year { 5 } else { 6 });
    }
    // Partial dates: agree on what both know. A Buddhist-Era year alone up to 2483 does not say
    // its CE year: January to March of BE 2482 were 1940, April to December 1939 (the year began
    // in April until 1941), so such a year also agrees with January to March of the next CE year.
    let dy = (a.year as i32 - b.year as i32).abs();
    let months_agree = a.month == 0 || b.month == 0 || a.month == b.month;
    let (early, late) = if a.year <= b.year { (a, b) } else { (b, a) };
    let old_year_start =
        early.month == 0 && early.year <= 1940 && late.year == early.year + 1 && (1..=3).contains(&late.month);
    Some(if (a.year == b.year && months_agree) || old_year_start {
        5
    } else if (dy == 543 || dy == 542) && months_agree {
        2
    } else if months_agree && a.month != 0 && b.month != 0 && year_mistyped(a.year, b.year) {
        3
    } else {
        6
    })
}

/// Whether two birth years are one mistyped digit or two swapped adjacent digits apart, as
/// written in either era: a CE year (1800–2200, what dates normalise to) is also tried as its
/// Buddhist-Era form, and a year no era explains (`4539`, kept by
/// [`super::normalize::birth_date`]) as written. `4539` and `1996` (BE `2539`) are.
///
/// ```
/// use tpmap::link::compare::year_mistyped;
/// assert!(year_mistyped(4539, 1996));
/// assert!(year_mistyped(1969, 1996));
/// assert!(!year_mistyped(1996, 1996));
/// assert!(!year_mistyped(1950, 1996));
/// ```
pub fn year_mistyped(a: u16, b: u16) -> bool {
    // Buddhist-Era forms: + 543, or + 542 for January to March of 1941 and earlier.
    fn forms(y: u16) -> [u16; 3] {
        match y {
            1800..=1941 => [y, y + 543, y + 542],
            1942..=2200 => [y, y + 543, y + 543],
            _ => [y, y, y],
        }
    }
    fn near(x: u16, y: u16) -> bool {
        let (sx, sy) = (format_digits(x), format_digits(y));
        let diff: Vec<usize> = (0..4).filter(|&i| sx[i] != sy[i]).collect();
        match diff.as_slice() {
            [_] => true,
            [i, j] => *j == i + 1 && sx[*i] == sy[*j] && sx[*j] == sy[*i],
            _ => false,
        }
    }
    fn format_digits(y: u16) -> [u8; 4] {
        [(y / 1000 % 10) as u8, (y / 100 % 10) as u8, (y / 10 % 10) as u8, (y % 10) as u8]
    }
    a != b && forms(a).iter().any(|&x| forms(b).iter().any(|&y| near(x, y)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaro_winkler_on_slices_equals_strsim() {
        let long = "ก".repeat(60);
        for (a, b) in [
            ("สมชาย", "สมชาย"),
            ("สมชาย", "สมชัย"),
            ("ประเสริฐ", "ประเสรีฐ"),
            ("", "ก"),
            ("somchai", "somchay"),
            (long.as_str(), "กกก"),
            ("ab", "ba"),
            ("martha", "marhta"),
            ("dixon", "dicksonx"),
            ("a", "a"),
        ] {
            assert_eq!(jaro_winkler(a, b), strsim::jaro_winkler(a, b), "{a} {b}");
        }
    }

    /// The plain definition `id_near` must agree with: the differing positions of both IDs'
    /// 13 digits.
    fn id_near_reference(x: u64, y: u64) -> bool {
        let digits = |mut v: u64| {
            let mut d = [0u64; 13];
            for k in (0..13).rev() {
                d[k] = v % 10;
                v /= 10;
            }
            d
        };
        let (dx, dy) = (digits(x), digits(y));
        let diff: Vec<usize> = (0..13).filter(|&i| dx[i] != dy[i]).collect();
        match diff.as_slice() {
            [_] => true,
            [i, j] => *j == i + 1 && dx[*i] == dy[*j] && dx[*j] == dy[*i],
            _ => false,
        }
    }

    /// The bound never hides a value at or above its floor, and is exact when it may reach it.
    fn bound_holds(a: &str, b: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        let exact = strsim::jaro_winkler(a, b);
        for floor in [0.80, 0.92, 0.95] {
            let got = jaro_winkler_or_bound(&Decoded::of(a), &Decoded::of(b), floor);
            proptest::prop_assert!(got >= exact);
            proptest::prop_assert_eq!(got >= floor, exact >= floor);
            if got >= floor - 1e-9 {
                proptest::prop_assert_eq!(got, exact);
            }
        }
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn id_near_equals_its_definition(
            x in 1_000_000_000_000u64..9_999_999_999_999,
            edits in proptest::collection::vec((0u32..13, 0u64..10, proptest::bool::ANY), 0..3),
            other in 0u64..9_999_999_999_999
        ) {
            // Near IDs made by substitutions and swaps, and unrelated ones.
            let mut y = x;
            for (k, d, swap) in edits {
                let p = 10u64.pow(k);
                let digit = |v: u64, p: u64| (v / p) % 10;
                if swap && k < 12 {
                    let (a, b) = (digit(y, p), digit(y, p * 10));
                    y = y - a * p - b * p * 10 + b * p + a * p * 10;
                } else {
                    y = y - digit(y, p) * p + d * p;
                }
            }
            proptest::prop_assert_eq!(id_near(x, y), id_near_reference(x, y));
            proptest::prop_assert_eq!(id_near(x, other), id_near_reference(x, other));
        }

        #[test]
        fn the_bound_holds_on_names_sharing_few_characters(a in "[ก-ฮะ-ูa-e]{0,9}", b in "[ก-ฮะ-ูa-e]{0,9}") {
            bound_holds(&a, &b)?;
        }

        #[test]
        fn jaro_winkler_equals_strsim_on_any_short_names(
            a in "[กขคงสมชายัิีึุู่้ab]{0,50}", b in "[กขคงสมชายัิีึุู่้ab]{0,50}"
        ) {
            proptest::prop_assert_eq!(jaro_winkler(&a, &b), strsim::jaro_winkler(&a, &b));
            bound_holds(&a, &b)?;
        }
    }
    use crate::link::records::RawRecord;

    fn recs(rows: &[[&str; 8]]) -> Records {
        let raw: Vec<RawRecord<'_>> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| RawRecord {
                key: i.to_string(),
                citizen_id: r[0],
                title: "",
                first: r[1],
                last: r[2],
                birth: r[3],
                sex: r[4],
                area: r[5],
                house: r[6],
                ..Default::default()
            })
            .collect();
        let mut out = Records::default();
        out.push_source("t", &raw);
        out
    }

    #[test]
    fn id_levels() {
        // 1101700230708 is valid; a transposition and a substitution of it.
        let r = recs(&[
            ["1101700230708", "ก", "ข", "", "", "", "", ""],
            ["1101700230708", "ก", "ข", "", "", "", "", ""],
            ["1101700203708", "ก", "ข", "", "", "", "", ""],
            ["1101700230709", "ก", "ข", "", "", "", "", ""],
            ["3100600012345", "ก", "ข", "", "", "", "", ""],
            ["", "ก", "ข", "", "", "", "", ""],
        ]);
        assert_eq!(compare(&r, 0, 1, Field::CitizenId), Some(0));
        assert_eq!(compare(&r, 0, 2, Field::CitizenId), Some(1), "adjacent transposition");
        assert_eq!(compare(&r, 0, 3, Field::CitizenId), Some(1), "one digit (check digit fails: kept raw)");
        assert_eq!(compare(&r, 0, 4, Field::CitizenId), Some(2));
        assert_eq!(compare(&r, 0, 5, Field::CitizenId), None, "missing does not count");
        assert!(id_near(1101700230708, 1101700320708), "adjacent swap");
        assert!(!id_near(1101700230708, 1101700032708), "non-adjacent swap");
        assert!(!id_near(1101700230708, 1101700230799), "two digits");
    }

    #[test]
    fn name_levels() {
        let r = recs(&[
            ["", "สมศรี", "ใจดี", "", "", "", "", ""],
            ["", "สมศรี", "ใจดี", "", "", "", "", ""],
            ["", "นางสมศรี", "ใจดี", "", "", "", "", ""], // title left in the name field
            ["", "สมศรี", "ใจด", "", "", "", "", ""],
            ["", "สมสี", "ใจดี", "", "", "", "", ""],
            ["", "ใจดี", "สมศรี", "", "", "", "", ""], // swapped
            ["", "Somsri", "Jaidee", "", "", "", "", ""],
            ["", "มานี", "มีนา", "", "", "", "", ""],
            ["", "สุดใจ", "ผ่องแผ้ว", "", "", "", "", ""],
            ["", "สุดใจ", "ผองแผว", "", "", "", "", ""],
        ]);
        assert_eq!(compare(&r, 0, 1, Field::FirstName), Some(0));
        assert_eq!(compare(&r, 0, 2, Field::FirstName), Some(0), "titles are stripped first");
        assert_eq!(compare(&r, 8, 9, Field::LastName), Some(1), "tone marks dropped");
        assert_eq!(compare(&r, 0, 3, Field::LastName), Some(2), "one letter dropped: Jaro-Winkler");
        assert_eq!(compare(&r, 0, 4, Field::FirstName), Some(3), "ศร / ส: same LK82");
        assert_eq!(compare(&r, 0, 5, Field::FirstName), Some(4), "swapped first and last names");
        assert_eq!(compare(&r, 0, 6, Field::FirstName), Some(5), "romanised");
        assert_eq!(compare(&r, 0, 7, Field::FirstName), Some(7));
    }

    #[test]
    fn date_levels() {
        let d = |s: &str| crate::thai::parse_date(s);
        assert_eq!(date_level(d("1970-03-05"), d("1970-03-05")), Some(0));
        assert_eq!(date_level(d("1970-03-05"), d("1970-05-03")), Some(1), "day and month swapped");
        assert_eq!(date_level(d("1970-03-05"), d("5/3/2513")), Some(0), "BE read as CE when parsed");
        let be_as_ce = PartialDate::ymd(2513, 3, 5);
        assert_eq!(date_level(d("1970-03-05"), be_as_ce), Some(2), "a BE year stored as CE");
        assert_eq!(date_level(d("1970-03-05"), d("1970-03-25")), Some(4));
        assert_eq!(date_level(d("1970-03-05"), d("1970-11-25")), Some(5));
        assert_eq!(date_level(d("1970"), d("1970-03-05")), Some(5), "partial date agrees");
        assert_eq!(date_level(d("1971-03-05"), d("1970-03-05")), Some(3), "one year digit");
        assert_eq!(date_level(d("1975-03-05"), d("1970-03-05")), Some(3), "one year digit");
        assert_eq!(date_level(d("1948-03-05"), d("1970-03-05")), Some(6));
        let typo = crate::link::normalize::birth_date("05/03/4513");
        assert_eq!(date_level(d("1970-03-05"), typo), Some(3), "BE 2513 typed 4513");
        assert_eq!(date_level(d("03/2513"), crate::link::normalize::birth_date("03/2573")), Some(3));
        assert_eq!(date_level(d("2482"), d("17/02/2482")), Some(5), "BE 2482 alone is 1939 or early 1940");
        assert_eq!(date_level(d("2482"), d("17/05/2482")), Some(5));
        assert_eq!(date_level(d("2482"), d("17/05/2483")), Some(6));
        let typo = crate::link::normalize::birth_date("20/03/2983");
        assert_eq!(date_level(d("20/03/2483"), typo), Some(3), "March BE 2483 was 1941 (BE = CE + 542)");
        assert_eq!(date_level(None, d("1970-03-05")), None);
    }

    #[test]
    fn address_and_sex_levels() {
        let r = recs(&[
            ["", "ก", "ข", "", "ชาย", "4001020101", "12/3", ""],
            ["", "ก", "ข", "", "m", "4001020101", "๑๒/๓", ""],
            ["", "ก", "ข", "", "หญิง", "4001020101", "14", ""],
            ["", "ก", "ข", "", "", "4001020201", "", ""],
            ["", "ก", "ข", "", "", "4001030101", "", ""],
            ["", "ก", "ข", "", "", "5001030101", "", ""],
        ]);
        assert_eq!(compare(&r, 0, 1, Field::Address), Some(0));
        assert_eq!(compare(&r, 0, 2, Field::Address), Some(1));
        assert_eq!(compare(&r, 0, 3, Field::Address), Some(2));
        assert_eq!(compare(&r, 0, 4, Field::Address), Some(3));
        assert_eq!(compare(&r, 0, 5, Field::Address), Some(4));
        assert_eq!(compare(&r, 0, 1, Field::Sex), Some(0));
        assert_eq!(compare(&r, 0, 2, Field::Sex), Some(1));
        assert_eq!(compare(&r, 0, 3, Field::Sex), None);
    }
}
