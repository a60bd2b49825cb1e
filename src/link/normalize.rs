//! Thai-aware normalisation of names, dates and house numbers for record linkage. Each step is
//! its own function, tested with real Thai strings.
//!
//! ```
//! use tpmap::link::normalize::{clean, split_title, canonical_marks};
//! assert_eq!(clean("  นาง\u{200b}สาว  สมศรี  "), "นางสาว สมศรี");
//! let (title, rest) = split_title("น.ส.สมศรี");
//! assert_eq!((title, rest), (Some("นางสาว"), "สมศรี"));
//! assert_eq!(canonical_marks("ก่ี"), "กี่"); // tone mark typed before the vowel
//! ```

use unicode_normalization::UnicodeNormalization;

/// Thai combining marks by the order they take after a consonant: below vowels, above vowels
/// (and mai han-akat, maitaikhu), tone marks, then the other signs (thanthakhat, nikhahit, yamakkan).
fn mark_class(c: char) -> Option<u8> {
    match c {
        '\u{0E38}'..='\u{0E3A}' => Some(1),
        '\u{0E31}' | '\u{0E34}'..='\u{0E37}' | '\u{0E47}' => Some(2),
        '\u{0E48}'..='\u{0E4B}' => Some(3),
        '\u{0E4C}'..='\u{0E4E}' => Some(4),
        _ => None,
    }
}

/// Tone marks (mai ek, mai tho, mai tri, mai chattawa).
pub fn is_tone_mark(c: char) -> bool {
    ('\u{0E48}'..='\u{0E4B}').contains(&c)
}

/// Unicode NFC, zero-width and soft-hyphen characters removed, every run of whitespace (also
/// no-break space) made one space, trimmed; Thai digits to ASCII.
pub fn clean(s: &str) -> String {
    // Most names are already NFC: the quick check skips the (costly) recomposition for them.
    if unicode_normalization::is_nfc_quick(s.chars()) == unicode_normalization::IsNormalized::Yes {
        clean_chars(s.chars(), s.len())
    } else {
        clean_chars(s.nfc(), s.len())
    }
}

fn clean_chars(chars: impl Iterator<Item = char>, len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut space = false;
    for c in chars {
        match c {
            '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' => {}
            c if c.is_whitespace() => space = !out.is_empty(),
            c => {
                if space {
                    out.push(' ');
                    space = false;
                }
                out.push(match c {
                    '๐'..='๙' => char::from(b'0' + (c as u32 - '๐' as u32) as u8),
                    c => c,
                });
            }
        }
    }
    out
}

/// Canonical order and spelling of Thai combining marks: within the marks after a consonant, below
/// vowels, then above vowels, then tone marks, then other signs; a mark typed twice kept once;
/// nikhahit + sara aa (`ํา`, with any tone mark between them moved before) written as sara am
/// (`ำ`). Keyboards and OCR produce all of these variants of one spelling.
pub fn canonical_marks(s: &str) -> String {
    // Most names are canonical already: no two marks in a row and no nikhahit.
    let mut prev_mark = false;
    let canonical = s.chars().all(|c| {
        let mark = mark_class(c).is_some();
        let ok = !(mark && prev_mark) && c != '\u{0E4D}';
        prev_mark = mark;
        ok
    });
    if canonical {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out: Vec<char> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if mark_class(chars[i]).is_some() {
            let start = i;
            while i < chars.len() && mark_class(chars[i]).is_some() {
                i += 1;
            }
            let mut run: Vec<char> = chars[start..i].to_vec();
            // Nikhahit followed by sara aa: sara am (tone marks in the run stay before it).
            let am = run.contains(&'\u{0E4D}') && chars.get(i) == Some(&'\u{0E32}');
            if am {
                run.retain(|&c| c != '\u{0E4D}');
            }
            run.sort_by_key(|&c| mark_class(c));
            run.dedup();
            out.extend(run);
            if am {
                out.push('\u{0E33}');
                i += 1;
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// The text without tone marks (a looser comparison level: tone marks are dropped in typing and OCR).
pub fn without_tone_marks(s: &str) -> String {
    s.chars().filter(|&c| !is_tone_mark(c)).collect()
}

/// Whether two texts are equal once tone marks are dropped (no allocation).
pub fn eq_without_tone_marks(a: &str, b: &str) -> bool {
    a.chars().filter(|&c| !is_tone_mark(c)).eq(b.chars().filter(|&c| !is_tone_mark(c)))
}

/// Titles, longest spellings first, each with its canonical form. Civil, child, academic,
/// police and military, monastic and English ones.
const TITLES: &[(&str, &str)] = &[
    ("เด็กชาย", "เด็กชาย"),
    ("เด็กหญิง", "เด็กหญิง"),
    ("ด.ช.", "เด็กชาย"),
    ("ด.ญ.", "เด็กหญิง"),
    ("ดช.", "เด็กชาย"),
    ("ดญ.", "เด็กหญิง"),
    ("นางสาว", "นางสาว"),
    ("น.ส.", "นางสาว"),
    ("นส.", "นางสาว"),
    ("นาง", "นาง"),
    ("นาย", "นาย"),
    ("พลเอก", "พลเอก"),
    ("พล.อ.", "พลเอก"),
    ("พลตำรวจเอก", "พลตำรวจเอก"),
    ("พล.ต.อ.", "พลตำรวจเอก"),
    ("พันเอก", "พันเอก"),
    ("พ.อ.", "พันเอก"),
    ("พันตรี", "พันตรี"),
    ("พ.ต.", "พันตรี"),
    ("ร้อยเอก", "ร้อยเอก"),
    ("ร.อ.", "ร้อยเอก"),
    ("ร้อยตรี", "ร้อยตรี"),
    ("ร.ต.", "ร้อยตรี"),
    ("จ่าสิบเอก", "จ่าสิบเอก"),
    ("จ.ส.อ.", "จ่าสิบเอก"),
    ("สิบเอก", "สิบเอก"),
    ("ส.อ.", "สิบเอก"),
    ("สิบตรี", "สิบตรี"),
    ("ส.ต.", "สิบตรี"),
    ("พันตำรวจโท", "พันตำรวจโท"),
    ("พ.ต.ท.", "พันตำรวจโท"),
    ("ดาบตำรวจ", "ดาบตำรวจ"),
    ("ด.ต.", "ดาบตำรวจ"),
    ("ว่าที่ร้อยตรี", "ว่าที่ร้อยตรี"),
    ("ว่าที่ ร.ต.", "ว่าที่ร้อยตรี"),
    ("พระครู", "พระครู"),
    ("พระมหา", "พระมหา"),
    ("พระ", "พระ"),
    ("สามเณร", "สามเณร"),
    ("ศาสตราจารย์", "ศาสตราจารย์"),
    ("รองศาสตราจารย์", "รองศาสตราจารย์"),
    ("ผู้ช่วยศาสตราจารย์", "ผู้ช่วยศาสตราจารย์"),
    ("ผศ.", "ผู้ช่วยศาสตราจารย์"),
    ("รศ.", "รองศาสตราจารย์"),
    ("ศ.", "ศาสตราจารย์"),
    ("ดร.", "ดร."),
    ("Mrs.", "นาง"),
    ("Mrs", "นาง"),
    ("Miss", "นางสาว"),
    ("Ms.", "นางสาว"),
    ("Mr.", "นาย"),
    ("Mr", "นาย"),
];

/// Splits a leading title off a (cleaned) name: `("นางสาว", "สมศรี")` from `"น.ส.สมศรี"` or
/// `"นางสาว สมศรี"`. Returns the canonical title. A title must be followed by a space, a dot
/// ending it, or a Thai letter; a name that merely starts like one (`"นายิกา"` is not `นาย` +
/// `ิกา`) is kept whole: the rest must start with a consonant or a leading vowel.
pub fn split_title(name: &str) -> (Option<&'static str>, &str) {
    // Titles longest first, each with its first character and whether it is ASCII (matched
    // case-insensitively), worked out once: this runs for every name of every registry.
    type Entry = (&'static str, &'static str, Option<char>, bool);
    static SORTED: std::sync::OnceLock<Vec<Entry>> = std::sync::OnceLock::new();
    let sorted = SORTED.get_or_init(|| {
        let mut v: Vec<Entry> = TITLES.iter().map(|&(t, c)| (t, c, t.chars().next(), t.is_ascii())).collect();
        v.sort_by_key(|(t, ..)| std::cmp::Reverse(t.chars().count()));
        v
    });
    // Most names start with no title's first letter: skip the scan for them.
    let first = name.chars().next();
    for &(t, canon, _, _) in sorted.iter().filter(|(_, _, c, ascii)| *c == first || *ascii) {
        let Some(rest) = strip_prefix_ci(name, t) else { continue };
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            continue;
        }
        let first = trimmed.chars().next().expect("non-empty");
        let starts_word = rest.len() != trimmed.len()
            || t.ends_with('.')
            || ('ก'..='ฮ').contains(&first)
            || ('\u{0E40}'..='\u{0E44}').contains(&first);
        if starts_word && mark_class(first).is_none() {
            return (Some(canon), trimmed);
        }
    }
    (None, name)
}

fn strip_prefix_ci<'a>(s: &'a str, p: &str) -> Option<&'a str> {
    if p.is_ascii() {
        let n = p.len();
        (s.len() >= n && s.is_char_boundary(n) && s[..n].eq_ignore_ascii_case(p)).then(|| &s[n..])
    } else {
        s.strip_prefix(p)
    }
}

/// A person's name ready for comparison.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Name {
    /// Canonical title, if one was written.
    pub title: Option<&'static str>,
    /// Given name, cleaned, marks canonical.
    pub first: String,
    /// Family name, cleaned, marks canonical.
    pub last: String,
}

/// Normalises a name given as separate fields (either may hold a title; a family name left in
/// the given-name field is moved).
pub fn name(title: &str, first: &str, last: &str) -> Name {
    let (t1, first) = given_name(first);
    joined(title_field(title), t1, first, family_name(last))
}

/// The canonical title written in a title field, if any ([`name`]'s first part).
pub fn title_field(title: &str) -> Option<&'static str> {
    if title.is_empty() {
        return None;
    }
    let c = clean(title);
    split_title(&c).0.or_else(|| TITLES.iter().find(|(t, _)| *t == c).map(|(_, canon)| *canon))
}

/// A given-name field cleaned: the title glued to its front, if any, and the name with its
/// marks canonical ([`name`]'s second part).
pub fn given_name(first: &str) -> (Option<&'static str>, String) {
    let c = clean(first);
    let (t1, f) = split_title(&c);
    (t1, canonical_marks(f))
}

/// A family-name field cleaned, its marks canonical ([`name`]'s third part).
pub fn family_name(last: &str) -> String {
    canonical_marks(&clean(last))
}

/// [`name`] from its three parts: the title field's title before the given name's, and a family
/// name left in the given-name field (no family name given) moved.
pub fn joined(title: Option<&'static str>, glued: Option<&'static str>, mut first: String, mut last: String) -> Name {
    if last.is_empty()
        && let Some((a, b)) = first.clone().split_once(' ')
    {
        first = a.to_string();
        last = b.to_string();
    }
    Name { title: title.or(glued), first, last }
}

/// A house number as written in Thai addresses: `12`, `12/3`, `๑๒/๓`, `12/3 ม.4` (the village
/// part is ignored here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HouseNumber {
    /// The number before the slash.
    pub main: u32,
    /// The number after the slash, if any.
    pub sub: Option<u32>,
}

/// A birth date for linkage: [`crate::thai::parse_date`], and when that fails only because the
/// four-digit year fits no era (`12/05/4539`: BE 2539 with a mistyped digit), the date with that
/// year kept as written — outside 1800–2200, so it never equals a real year but
/// [`super::compare::year_mistyped`] still sees how close it is, and its day and month still block.
///
/// ```
/// use tpmap::link::normalize::birth_date;
/// use tpmap::thai::PartialDate;
/// assert_eq!(birth_date("12/05/2539"), PartialDate::ymd(1996, 5, 12));
/// assert_eq!(birth_date("12/05/4539"), Some(PartialDate { year: 4539, month: 5, day: 12 }));
/// assert_eq!(birth_date("31/02/4539"), None); // not a date whatever the year
/// assert_eq!(birth_date("12/05/0539"), None); // a year starting with 0 is not a mistyped year
/// ```
pub fn birth_date(raw: &str) -> Option<crate::thai::PartialDate> {
    if let Some(d) = crate::thai::parse_date(raw) {
        return Some(d);
    }
    let s = crate::thai::fold_digits(raw.trim());
    let s = s.trim();
    if s.len() > 64 || !s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'/' | b'.')) {
        return None;
    }
    // The one four-digit part is the year; 2000 stands in for it (a leap year: 29/02 stays valid).
    let parts: Vec<&str> = s.split(['-', '/', '.']).collect();
    let years: Vec<usize> = (0..parts.len()).filter(|&i| parts[i].len() == 4).collect();
    let [k] = years.as_slice() else { return None };
    let year: u16 = parts[*k].parse().ok().filter(|y| *y >= 1000)?;
    let mut stand_in = parts.clone();
    stand_in[*k] = "2000";
    let d = crate::thai::parse_date(&stand_in.join("/"))?;
    Some(crate::thai::PartialDate { year, ..d })
}

/// Parses a house number; `None` when the text has no leading number.
pub fn house_number(s: &str) -> Option<HouseNumber> {
    let c = clean(s);
    let c = c.trim_start_matches(|ch: char| !ch.is_ascii_digit());
    let digits: String = c.chars().take_while(|ch| ch.is_ascii_digit()).collect();
    let main: u32 = digits.parse().ok()?;
    let rest = c[digits.len()..].trim_start();
    let sub = rest.strip_prefix('/').and_then(|r| {
        let d: String = r.trim_start().chars().take_while(|ch| ch.is_ascii_digit()).collect();
        d.parse().ok()
    });
    Some(HouseNumber { main, sub })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning() {
        assert_eq!(clean("\u{feff}สม\u{200b}ชาย\u{00a0}\u{00a0}ใจดี "), "สมชาย ใจดี");
        assert_eq!(clean("บ้านเลขที่ ๑๒/๓"), "บ้านเลขที่ 12/3");
        assert_eq!(clean("   "), "");
    }

    #[test]
    fn marks_made_canonical() {
        // Tone mark before the above vowel, as some keyboards type it.
        assert_eq!(canonical_marks("ก่ี"), "กี่");
        // Doubled tone mark.
        assert_eq!(canonical_marks("น้้อย"), "น้อย");
        // Nikhahit + sara aa for sara am, with the tone mark between them.
        assert_eq!(canonical_marks("น\u{0E4D}\u{0E49}\u{0E32}"), "น้ำ");
        assert_eq!(canonical_marks("ค\u{0E4D}\u{0E32}"), "คำ");
        // Below vowel and tone mark in either order.
        assert_eq!(canonical_marks("ปุ่ม"), canonical_marks("ปุ่ม"));
        assert_eq!(canonical_marks("สมศรี"), "สมศรี");
        assert_eq!(without_tone_marks("สุดใจ ผ่องแผ้ว"), "สุดใจ ผองแผว");
    }

    #[test]
    fn titles() {
        for (raw, title, rest) in [
            ("นายสมชาย", Some("นาย"), "สมชาย"),
            ("นาย สมชาย", Some("นาย"), "สมชาย"),
            ("น.ส.สมศรี", Some("นางสาว"), "สมศรี"),
            ("นางสาวสมศรี", Some("นางสาว"), "สมศรี"),
            ("นางสมศรี", Some("นาง"), "สมศรี"),
            ("ด.ญ.มะลิ", Some("เด็กหญิง"), "มะลิ"),
            ("เด็กชายต้น", Some("เด็กชาย"), "ต้น"),
            ("จ.ส.อ.วีระ", Some("จ่าสิบเอก"), "วีระ"),
            ("พระครูสมุห์", Some("พระครู"), "สมุห์"),
            ("Mr. Somchai", Some("นาย"), "Somchai"),
            ("นายิกา", None, "นายิกา"), // a name that begins like a title
            ("นางนวล", Some("นาง"), "นวล"),
            ("สมชาย", None, "สมชาย"),
        ] {
            assert_eq!(split_title(raw), (title, rest), "{raw}");
        }
    }

    #[test]
    fn names() {
        let n = name("", "นายสมชาย  ใจดี", "");
        assert_eq!(n, Name { title: Some("นาย"), first: "สมชาย".into(), last: "ใจดี".into() });
        let n = name("น.ส.", "ส\u{200b}มศรี", "มีสุข");
        assert_eq!(n, Name { title: Some("นางสาว"), first: "สมศรี".into(), last: "มีสุข".into() });
    }

    #[test]
    fn house_numbers() {
        assert_eq!(house_number("12/3"), Some(HouseNumber { main: 12, sub: Some(3) }));
        assert_eq!(house_number("๑๒/๓ ม.๔"), Some(HouseNumber { main: 12, sub: Some(3) }));
        assert_eq!(house_number("บ้านเลขที่ 45"), Some(HouseNumber { main: 45, sub: None }));
        assert_eq!(house_number("12 / 7"), Some(HouseNumber { main: 12, sub: Some(7) }));
        assert_eq!(house_number("ไม่มี"), None);
    }
}
