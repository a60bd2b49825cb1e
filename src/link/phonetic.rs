//! Thai phonetic keys and romanisation for matching.
//!
//! [`lk82`] implements the LK82 Thai soundex (Vichit Lorchirachoonkul, "A Thai soundex system",
//! Information Processing & Management 18(5), 1982) from its published rules, as documented by
//! PyThaiNLP (Apache-2.0; rules reimplemented here, no code copied). Written by hand: no Rust
//! crate implements a Thai soundex.
//!
//! [`romanize`] is a simplified RTGS transcription for comparing Thai names with Latin-script
//! spellings of them (passports, agency lists typed in English): initial consonant values, vowels
//! moved after the consonant they are written before, no tones.
//!
//! ```
//! use tpmap::link::phonetic::{lk82, romanize};
//! assert_eq!(lk82("รัก"), lk82("ลัก"));
//! assert_eq!(lk82("สมศรี"), lk82("สมสี"));
//! assert_eq!(romanize("สมชาย"), "somchai");
//! ```

/// LK82 first-letter groups: consonants that sound alike share one letter.
fn group(c: char) -> char {
    match c {
        'ก' | 'ข' | 'ฃ' | 'ค' | 'ฅ' | 'ฆ' => 'ก',
        'ง' => 'ง',
        'จ' => 'จ',
        'ฉ' | 'ช' | 'ฌ' => 'ช',
        'ซ' | 'ศ' | 'ษ' | 'ส' => 'ซ',
        'ญ' | 'ย' => 'ย',
        'ฎ' | 'ด' => 'ด',
        'ฏ' | 'ต' => 'ต',
        'ณ' | 'น' => 'น',
        'ฐ' | 'ฑ' | 'ฒ' | 'ถ' | 'ท' | 'ธ' => 'ท',
        'บ' => 'บ',
        'ป' => 'ป',
        'ผ' | 'พ' | 'ภ' => 'พ',
        'ฝ' | 'ฟ' => 'ฟ',
        'ม' => 'ม',
        'ร' | 'ล' | 'ฬ' | 'ฤ' | 'ฦ' => 'ร',
        'ว' => 'ว',
        'ห' | 'ฮ' => 'ห',
        'อ' => 'อ',
        other => other,
    }
}

/// LK82 codes of the other letters: sound classes of consonants (1 k-sounds, 2 ng, 3 t-sounds,
/// 4 n-sounds, 5 p-sounds, 6 m, 7 y- and w-sounds, 8 h) and vowel codes (9 and A–F).
fn code(c: char) -> Option<char> {
    Some(match c {
        'ก' | 'ข' | 'ฃ' | 'ค' | 'ฅ' | 'ฆ' => '1',
        'ง' => '2',
        'จ' | 'ฉ' | 'ช' | 'ซ' | 'ฌ' | 'ฎ' | 'ฏ' | 'ฐ' | 'ฑ' | 'ฒ' | 'ด' | 'ต' | 'ถ' | 'ท' | 'ธ' | 'ศ' | 'ษ' | 'ส' => {
            '3'
        }
        'ญ' | 'ณ' | 'น' | 'ร' | 'ล' | 'ฬ' | 'ฤ' | 'ฦ' => '4',
        'บ' | 'ป' | 'พ' | 'ฟ' | 'ภ' | 'ผ' | 'ฝ' => '5',
        'ม' | 'ำ' => '6',
        'ย' | 'ว' | 'ไ' | 'ใ' => '7',
        'ห' | 'ฮ' => '8',
        'า' => '9',
        'ๅ' | 'ึ' | 'ื' => 'A',
        'เ' => 'B',
        'แ' => 'C',
        'โ' => 'D',
        'ุ' | 'ู' => 'E',
        'อ' => 'F',
        _ => return None,
    })
}

fn is_consonant(c: char) -> bool {
    ('ก'..='ฮ').contains(&c)
}

/// Removes silent letters marked by thanthakhat (the letter, and a vowel written on it, before
/// `์`; and the clusters จน์ มณ์ ณฑ์ ทร์ ตร์), tone marks and the signs that carry no sound.
fn strip_silent(s: &str) -> Vec<char> {
    let chars: Vec<char> = s.chars().filter(|&c| !super::normalize::is_tone_mark(c)).collect();
    let mut out: Vec<char> = Vec::with_capacity(chars.len());
    for &c in &chars {
        if c == '\u{0E4C}' {
            // Drop the silent letters before thanthakhat.
            let two = out.len() >= 2 && {
                let (a, b) = (out[out.len() - 2], out[out.len() - 1]);
                matches!((a, b), ('จ', 'น') | ('ม', 'ณ') | ('ณ', 'ฑ') | ('ท', 'ร') | ('ต', 'ร'))
            };
            let vowel_on_consonant = out.last().is_some_and(|&v| ('\u{0E30}'..='\u{0E39}').contains(&v))
                && out.len() >= 2
                && is_consonant(out[out.len() - 2]);
            if two || vowel_on_consonant {
                out.truncate(out.len() - 2);
            } else if out.last().is_some_and(|&l| is_consonant(l)) {
                out.pop();
            }
            continue;
        }
        if matches!(c, '\u{0E2F}' | '\u{0E3A}' | '\u{0E46}' | '\u{0E47}' | '\u{0E4D}') {
            continue;
        }
        out.push(c);
    }
    out
}

/// The LK82 soundex of a Thai word: its first consonant's group, then up to four codes.
pub fn lk82(word: &str) -> String {
    let t = strip_silent(word);
    if t.is_empty() {
        return String::new();
    }
    let mut res: Vec<Option<char>> = Vec::with_capacity(t.len() + 1);
    let rest: &[char] = if is_consonant(t[0]) {
        res.push(Some(group(t[0])));
        &t[1..]
    } else {
        // A leading vowel (เ แ โ ใ ไ) is written before the consonant it follows in sound.
        if let Some(&c) = t.get(1) {
            res.push(Some(group(c)));
        }
        res.push(code(t[0]).or(Some(t[0])));
        t.get(2..).unwrap_or(&[])
    };
    let before_u = |i: usize| rest.get(i + 1).is_some_and(|c| matches!(c, 'ึ' | 'ื' | 'ุ' | 'ู'));
    let mut last_vowel: Option<usize> = None;
    for (i, &c) in rest.iter().enumerate() {
        let emit = match c {
            // Vowels that only separate.
            'ะ' | 'ั' | 'ิ' | 'ี' => {
                last_vowel = Some(i);
                None
            }
            // Vowels that separate and sound.
            'า' | 'ึ' | 'ื' | 'ู' | 'ๅ' => {
                last_vowel = Some(i);
                code(c)
            }
            'ุ' => {
                last_vowel = Some(i);
                if i > 0 && matches!(rest[i - 1], 'ต' | 'ธ') { None } else { code(c) }
            }
            'ห' | 'อ' => {
                if !before_u(i) {
                    continue;
                }
                code(c)
            }
            'ย' | 'ร' | 'ฤ' | 'ฦ' | 'ว' => {
                if !(last_vowel.is_some_and(|v| v + 1 == i) || before_u(i)) {
                    continue;
                }
                code(c)
            }
            c => code(c).or(Some(c)),
        };
        res.push(emit);
    }
    // Adjacent repeats collapse (a silent separator between them keeps both).
    let mut out = String::with_capacity(5);
    let mut prev: Option<Option<char>> = None;
    for r in res {
        if prev != Some(r)
            && let Some(c) = r
        {
            out.push(c);
        }
        prev = Some(r);
    }
    out.extend(std::iter::repeat_n('0', 5));
    out.chars().take(5).collect()
}

/// Simplified RTGS romanisation (lower-case ASCII) of a Thai name, for comparison with Latin
/// spellings. Initial-consonant values throughout, leading vowels moved after their consonant,
/// `อ` as a vowel carrier silent, tone marks and signs dropped, ASCII letters kept as they are.
pub fn romanize(s: &str) -> String {
    let chars: Vec<char> = strip_silent(s);
    let mut out = String::with_capacity(chars.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, 'เ' | 'แ' | 'โ' | 'ใ' | 'ไ') && i + 1 < chars.len() && is_consonant(chars[i + 1]) {
            // Leading vowel: the consonant first (and a second one of a cluster like ปร, กล).
            out.push_str(consonant(chars[i + 1], out.is_empty() || out.ends_with(' ')));
            i += 2;
            if i < chars.len()
                && matches!(chars[i], 'ร' | 'ล' | 'ว')
                && chars.get(i + 1).is_none_or(|n| !is_consonant(*n))
            {
                out.push_str(consonant(chars[i], false));
                i += 1;
            }
            let v = match c {
                'เ' => {
                    if chars.get(i) == Some(&'ี') && chars.get(i + 1) == Some(&'ย') {
                        i += 2;
                        "ia"
                    } else if chars.get(i) == Some(&'า') {
                        i += 1;
                        "ao"
                    } else if chars.get(i) == Some(&'ื') && chars.get(i + 1) == Some(&'อ') {
                        i += 2;
                        "uea"
                    } else {
                        "e"
                    }
                }
                'แ' => "ae",
                'โ' => "o",
                _ => "ai",
            };
            out.push_str(v);
            continue;
        }
        let at_start = out.is_empty() || out.ends_with(' ');
        let next_is_vowel = chars.get(i + 1).is_some_and(|n| vowel(*n).is_some() || matches!(n, 'ั'));
        let piece: String = match c {
            'อ' if at_start || next_is_vowel => String::new(),
            'อ' => "o".into(),
            c if is_consonant(c) => {
                let mut p = consonant(c, at_start).to_string();
                // An initial consonant followed by another with no vowel written carries "o"
                // (สม → som), unless the pair is a cluster.
                let next = chars.get(i + 1).copied();
                if at_start
                    && next.is_some_and(is_consonant)
                    && !matches!(next, Some('ร' | 'ล' | 'ว'))
                    && chars.get(i + 2).is_none_or(|n| is_consonant(*n) || *n == ' ')
                {
                    p.push('o');
                }
                p
            }
            'ั' => "a".into(),
            ' ' => " ".into(),
            c if c.is_ascii_alphabetic() => c.to_ascii_lowercase().to_string(),
            c => vowel(c).unwrap_or("").into(),
        };
        out.push_str(&piece);
        i += 1;
    }
    // "ay" at a word end is written "ai" (ไ/ใ and -าย), "aw" is "ao".
    let mut words: Vec<String> = out.split(' ').map(|w| w.replace("aay", "ai").replace("ay", "ai")).collect();
    for w in &mut words {
        if w.ends_with("aw") {
            w.truncate(w.len() - 2);
            w.push_str("ao");
        }
    }
    words.join(" ").replace("aa", "a")
}

fn consonant(c: char, initial: bool) -> &'static str {
    match c {
        'ก' => "k",
        'ข' | 'ฃ' | 'ค' | 'ฅ' | 'ฆ' => "kh",
        'ง' => "ng",
        'จ' | 'ฉ' | 'ช' | 'ฌ' => "ch",
        'ซ' | 'ศ' | 'ษ' | 'ส' => "s",
        'ญ' | 'ย' => "y",
        'ฎ' | 'ด' => "d",
        'ฏ' | 'ต' => "t",
        'ฐ' | 'ฑ' | 'ฒ' | 'ถ' | 'ท' | 'ธ' => "th",
        'ณ' | 'น' => "n",
        'บ' => "b",
        'ป' => "p",
        'ผ' | 'พ' | 'ภ' => "ph",
        'ฝ' | 'ฟ' => "f",
        'ม' => "m",
        'ร' if initial => "r",
        'ร' => "r",
        'ล' | 'ฬ' => "l",
        'ว' => "w",
        'ห' | 'ฮ' => "h",
        'ฤ' => "rue",
        'ฦ' => "lue",
        _ => "",
    }
}

fn vowel(c: char) -> Option<&'static str> {
    Some(match c {
        'ะ' | 'า' | 'ๅ' => "a",
        'ำ' => "am",
        'ิ' | 'ี' => "i",
        'ึ' | 'ื' => "ue",
        'ุ' | 'ู' => "u",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lk82_published_examples() {
        // The examples given with the rules.
        assert_eq!(lk82("ลัก"), "ร1000");
        assert_eq!(lk82("รัก"), "ร1000");
        assert_eq!(lk82("รักษ์"), "ร1000");
        assert_eq!(lk82("บูรณการ"), "บE419");
        assert_eq!(lk82("ปัจจุบัน"), "ป3E54");
    }

    #[test]
    fn lk82_groups_homophones() {
        // Consonants that sound alike: ส/ศ/ษ, น/ณ, ท/ธ, and tone marks ignored.
        for (a, b) in [
            ("สมศรี", "สมสี"),
            ("ศรีสุข", "สีสุข"),
            ("กาญจนา", "กาญจนา"),
            ("ธนพร", "ทนพร"),
            ("ณัฐ", "นัฐ"),
            ("ผ่องแผ้ว", "ผองแผว"),
        ] {
            assert_eq!(lk82(a), lk82(b), "{a} / {b}");
        }
        assert_ne!(lk82("สมชาย"), lk82("สมหญิง"));
        assert_eq!(lk82(""), "");
        assert_eq!(lk82("เก่ง").chars().count(), 5);
    }

    #[test]
    fn romanisation() {
        for (th, want) in [
            ("สมชาย", "somchai"),
            ("สมศรี", "somsri"),
            ("มานี", "mani"),
            ("ใจดี", "chaidi"),
            ("ประเสริฐ", "prasoet"),
            ("แก้ว", "kaeo"),
            ("เพชร", "phet"),
        ] {
            let got = romanize(th);
            let sim = strsim::jaro_winkler(&got, want);
            assert!(sim >= 0.8, "{th}: {got} vs {want} ({sim:.2})");
        }
        assert_eq!(romanize("สมชาย"), "somchai");
        assert_eq!(romanize("มานี"), "mani");
        assert_eq!(romanize("Somchai"), "somchai");
    }
}
