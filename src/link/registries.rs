//! The second, independent labelled linkage benchmark ("registries"): three SYNTHETIC Thai
//! registries about the same people, generated from the specification in `docs/linkage.md`
//! ("The registries benchmark") — written before this generator and not tuned on tpmap's results.
//!
//! Unlike [`super::bench`] (one list of corruptions, at most three per record), every source here
//! has its own fault rates and every fault is drawn independently: an agency record may lack its
//! ID, carry a glued title, a month-year date and a tambon-only address all at once. People
//! include twins and same-village namesakes; the agency list holds duplicates.
//!
//! ```no_run
//! use tpmap::link::registries::{write, RegistriesOptions};
//! let files = write("registries".as_ref(), &RegistriesOptions { households: 1_000, seed: 11 })?;
//! println!("{} people in {:?}", files.people, files.records);
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::bench::{BenchFiles, CsvOut, HEADER};
use crate::extract::{Extract, Sex};
use crate::ids::CitizenId;
use crate::synth::{SynthOptions, Synthesizer};
use crate::thai::{PartialDate, ce_to_be};
use crate::{Error, Result};

/// Options of the generator.
#[derive(Clone, Debug)]
pub struct RegistriesOptions {
    /// Households to synthesise (people ≈ 2.8 × households).
    pub households: u64,
    /// Seed: the same seed writes the same benchmark.
    pub seed: u64,
}

impl Default for RegistriesOptions {
    fn default() -> Self {
        RegistriesOptions { households: 10_000, seed: 11 }
    }
}

/// One person behind the records (the truth).
#[derive(Clone, Debug)]
struct Person {
    id: u64,
    title: &'static str,
    first: String,
    last: String,
    birth: Option<PartialDate>,
    sex: Sex,
    village: String,
    house: String,
    age: u8,
}

/// Fault rates of one source (the table of the specification).
struct Faults {
    id_missing: f64,
    id_mistyped: f64,
    /// Birth-date forms with their shares, in order (the rest is the first form).
    dates: &'static [(DateForm, f64)],
    /// Share of people 60+ whose date is year-only (survey only).
    old_year_only: f64,
    typo: f64,
    marks: f64,
    glued_title: f64,
    spaces: f64,
    married: f64,
    moves: bool,
    village_missing: f64,
    sex_codes: [&'static str; 2],
}

#[derive(Clone, Copy, Debug)]
enum DateForm {
    /// `dd/mm/BBBB`.
    DmyBe,
    /// `dd/mm/BBBB` in Thai digits.
    ThaiDigits,
    /// `BBBB`.
    YearOnly,
    /// ISO, CE.
    Iso,
    /// `mm/BBBB`.
    MonthYear,
    /// `dd/mm/YYYY`, CE.
    DmyCe,
    /// `dd/mm/BBBB` with one digit of the BE year mistyped.
    YearTypo,
}

const SURVEY: Faults = Faults {
    id_missing: 0.03,
    id_mistyped: 0.01,
    dates: &[(DateForm::DmyBe, 0.80), (DateForm::ThaiDigits, 0.15), (DateForm::YearOnly, 0.05)],
    old_year_only: 0.25,
    typo: 0.03,
    marks: 0.01,
    glued_title: 0.0,
    spaces: 0.01,
    married: 0.0,
    moves: false,
    village_missing: 0.0,
    sex_codes: ["ชาย", "หญิง"],
};

const WELFARE: Faults = Faults {
    id_missing: 0.005,
    id_mistyped: 0.03,
    dates: &[(DateForm::Iso, 0.70), (DateForm::DmyBe, 0.25), (DateForm::MonthYear, 0.03), (DateForm::YearTypo, 0.02)],
    old_year_only: 0.0,
    typo: 0.03,
    marks: 0.02,
    glued_title: 0.03,
    spaces: 0.02,
    married: 0.12,
    moves: true,
    village_missing: 0.0,
    sex_codes: ["1", "2"],
};

const AGENCY: Faults = Faults {
    id_missing: 0.35,
    id_mistyped: 0.04,
    dates: &[
        (DateForm::Iso, 0.30),
        (DateForm::DmyBe, 0.20),
        (DateForm::ThaiDigits, 0.15),
        (DateForm::DmyCe, 0.10),
        (DateForm::MonthYear, 0.10),
        (DateForm::YearOnly, 0.10),
        (DateForm::YearTypo, 0.05),
    ],
    old_year_only: 0.0,
    typo: 0.06,
    marks: 0.04,
    glued_title: 0.06,
    spaces: 0.06,
    married: 0.12,
    moves: true,
    village_missing: 1.0 / 3.0,
    sex_codes: ["ชาย", "หญิง"],
};

/// What the generator draws from: people, name pools, places.
struct World {
    people: Vec<Person>,
    /// Family names per tambon (first six characters of the village code).
    family_by_tambon: HashMap<String, Vec<String>>,
    /// Villages per tambon, tambons per province, provinces.
    villages_by_tambon: HashMap<String, Vec<String>>,
    tambons_by_province: HashMap<String, Vec<String>>,
    provinces: Vec<String>,
}

/// Writes `survey.csv`, `welfare.csv`, `agency.csv` and `truth.csv` (`source,record_id,person`)
/// into `dir`.
pub fn write(dir: &Path, o: &RegistriesOptions) -> Result<BenchFiles> {
    let syn = Synthesizer::new(SynthOptions { households: o.households, seed: o.seed, ..Default::default() })?;
    let chunk = syn.generate();
    let x = Extract::new(Arc::clone(syn.edition()), chunk.households, chunk.persons);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(o.seed ^ 0x0e61_5717);
    let w = world(&x, &mut rng)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let notice = "SYNTHETIC linkage benchmark (registries specification, docs/linkage.md) generated by tpmap: \
                  no row describes a real person.";
    let sources = ["survey", "welfare", "agency"];
    let mut files: Vec<CsvOut> = sources
        .iter()
        .map(|s| CsvOut::create(&dir.join(format!("{s}.csv")), Some(notice), &HEADER))
        .collect::<Result<_>>()?;
    let mut truth = CsvOut::create(&dir.join("truth.csv"), None, &["source", "record_id", "person"])?;
    let mut counts = [0usize; 3];
    for (i, p) in w.people.iter().enumerate() {
        let listed = [true, p.age >= 18 && rng.random_bool(0.45), rng.random_bool(0.15)];
        for s in 0..3 {
            if !listed[s] {
                continue;
            }
            let faults = [&SURVEY, &WELFARE, &AGENCY][s];
            // The agency lists 4 % of its people twice, each copy faulted on its own.
            let copies = if s == 2 && rng.random_bool(0.04) { 2 } else { 1 };
            for _ in 0..copies {
                counts[s] += 1;
                let key = format!("{}{}", &sources[s][..1], counts[s]);
                let rec = record(p, faults, &w, &mut rng);
                files[s].row([key.as_str(), &rec[0], &rec[1], &rec[2], &rec[3], &rec[4], &rec[5], &rec[6], &rec[7]])?;
                truth.row([sources[s], key.as_str(), i.to_string().as_str()])?;
            }
        }
    }
    for f in files {
        f.finish()?;
    }
    truth.finish()?;
    Ok(BenchFiles { records: sources.iter().map(|s| s.to_string()).zip(counts).collect(), people: w.people.len() })
}

fn sex_index(s: Sex) -> usize {
    (s == Sex::Female) as usize
}

/// The synthetic people, with twins and namesakes added, and the pools faults draw from.
fn world(x: &Extract, rng: &mut impl Rng) -> Result<World> {
    let p = &x.persons;
    let h = &x.households;
    let mut used: HashSet<u64> = p.citizen_id.iter().flatten().map(|c| c.as_u64()).collect();
    let mut people: Vec<Person> = (0..p.len())
        .map(|i| {
            let hh = p.household[i] as usize;
            Person {
                id: p.citizen_id[i].map(|c| c.as_u64()).unwrap_or(0),
                title: title_for(p.sex[i], p.age[i].unwrap_or(30), p.title.get(i) == "นาง"),
                first: p.first_name.get(i).to_string(),
                last: p.last_name.get(i).to_string(),
                birth: p.birth_date[i],
                sex: p.sex[i],
                village: h.village[hh].as_str().to_string(),
                house: h.house_no.get(hh).to_string(),
                age: p.age[i].unwrap_or(30),
            }
        })
        .collect();
    let mut given: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    let mut family_by_tambon: HashMap<String, Vec<String>> = HashMap::new();
    let mut villages_by_tambon: HashMap<String, Vec<String>> = HashMap::new();
    for q in &people {
        if q.sex != Sex::Unknown && q.first.chars().count() >= 2 {
            given[sex_index(q.sex)].push(q.first.clone());
        }
        let tambon = q.village.get(..6).unwrap_or(&q.village).to_string();
        family_by_tambon.entry(tambon.clone()).or_default().push(q.last.clone());
        let v = villages_by_tambon.entry(tambon).or_default();
        if v.last() != Some(&q.village) {
            v.push(q.village.clone());
        }
    }
    if given.iter().any(|g| g.is_empty()) || people.is_empty() {
        return Err(Error::Config(
            "the registries benchmark needs people of both sexes: ask for more households".into(),
        ));
    }
    let mut tambons_by_province: HashMap<String, Vec<String>> = HashMap::new();
    for t in villages_by_tambon.keys() {
        tambons_by_province.entry(t[..2].to_string()).or_default().push(t.clone());
    }
    for v in tambons_by_province.values_mut() {
        v.sort();
    }
    let mut provinces: Vec<String> = tambons_by_province.keys().cloned().collect();
    provinces.sort();
    let mut new_id = |rng: &mut dyn rand::RngCore| loop {
        let mut d = [0u8; 12];
        d[0] = 1;
        for x in &mut d[1..] {
            *x = rng.random_range(0..10);
        }
        let id = CitizenId::with_check_digit(&d).as_u64();
        if used.insert(id) {
            break id;
        }
    };
    // Twins: 1 % of households with a member under 18.
    let n = people.len();
    let mut extra = Vec::new();
    for hh in 0..h.len() {
        let members = x.members(hh);
        if let Some(c) = members.clone().find(|&i| people[i].age < 18)
            && rng.random_bool(0.01)
        {
            let mut t = people[c].clone();
            t.sex = if rng.random() { Sex::Male } else { Sex::Female };
            t.title = title_for(t.sex, t.age, false);
            let pool = &given[sex_index(t.sex)];
            // Another given name; a pool of one name (a tiny set) gives no twin rather than a
            // loop without end.
            let Some(first) = (0..64).filter_map(|_| pool.choose(rng)).find(|g| **g != people[c].first).cloned() else {
                continue;
            };
            t.first = first;
            t.id = new_id(rng);
            extra.push(t);
        }
    }
    // Namesakes: 0.5 % of adults get one in another house of their village, born another year.
    for original in &people[..n] {
        if original.age >= 18 && rng.random_bool(0.005) {
            let mut s = original.clone();
            s.house = format!("{}", rng.random_range(1..400));
            let age = loop {
                let a = rng.random_range(18u8..85);
                if a != s.age {
                    break a;
                }
            };
            let year = original.birth.map_or(1980, |b| b.year as i32) + s.age as i32 - age as i32;
            let month = rng.random_range(1..=12u8);
            s.birth = u16::try_from(year).ok().and_then(|y| PartialDate::ymd(y, month, rng.random_range(1..=28)));
            s.age = age;
            s.id = new_id(rng);
            extra.push(s);
        }
    }
    people.extend(extra);
    // Everyone has an ID of their own: the synthesiser gives a few people a duplicate ID (the
    // ingest checks want them), which here would make two people one.
    let mut seen: HashSet<u64> = HashSet::with_capacity(people.len());
    for q in people.iter_mut() {
        if q.id == 0 || !seen.insert(q.id) {
            q.id = new_id(rng);
            seen.insert(q.id);
        }
    }
    Ok(World { people, family_by_tambon, villages_by_tambon, tambons_by_province, provinces })
}

fn title_for(sex: Sex, age: u8, married: bool) -> &'static str {
    match (sex, age < 15) {
        (Sex::Male, true) => "เด็กชาย",
        (Sex::Female, true) => "เด็กหญิง",
        (Sex::Male, false) => "นาย",
        (Sex::Female, false) if married => "นาง",
        (Sex::Female, false) => "นางสาว",
        (Sex::Unknown, _) => "",
    }
}

/// One record of `p` in a source with `f`'s faults: citizen ID, title, given name, family name,
/// birth date, sex, area code, house number.
fn record(p: &Person, f: &Faults, w: &World, rng: &mut impl Rng) -> [String; 8] {
    let mut id = if p.id == 0 { String::new() } else { format!("{:013}", p.id) };
    if rng.random_bool(f.id_missing) {
        id.clear();
    } else if !id.is_empty() && rng.random_bool(f.id_mistyped) {
        id = mistype_id(&id, rng);
    }
    let mut title = p.title.to_string();
    let mut first = p.first.clone();
    let mut last = p.last.clone();
    if f.married > 0.0 && p.sex == Sex::Female && (20..=45).contains(&p.age) && rng.random_bool(f.married) {
        let pool = w.family_by_tambon.get(p.village.get(..6).unwrap_or("")).map(Vec::as_slice).unwrap_or(&[]);
        if let Some(other) = pool.iter().filter(|l| **l != p.last).collect::<Vec<_>>().choose(rng) {
            last = other.to_string();
            title = "นาง".into();
        }
    }
    if rng.random_bool(f.typo) {
        let target = if rng.random() { &mut first } else { &mut last };
        *target = typo(target, rng);
    }
    if rng.random_bool(f.marks) {
        let target = if rng.random() { &mut first } else { &mut last };
        *target = misorder(target, rng);
    }
    if rng.random_bool(f.spaces) {
        let target = if rng.random() { &mut first } else { &mut last };
        *target = spaced(target, rng);
    }
    if rng.random_bool(f.glued_title) && !title.is_empty() {
        first = format!("{title}{first}");
        title.clear();
    }
    let form = if p.age >= 60 && rng.random_bool(f.old_year_only) {
        DateForm::YearOnly
    } else {
        let mut u: f64 = rng.random();
        let mut form = f.dates[0].0;
        for &(d, share) in f.dates {
            if u < share {
                form = d;
                break;
            }
            u -= share;
        }
        form
    };
    let birth = p.birth.map(|b| date(b, form, rng)).unwrap_or_default();
    let sex = match p.sex {
        Sex::Male => f.sex_codes[0],
        Sex::Female => f.sex_codes[1],
        Sex::Unknown => "",
    };
    let (mut village, mut house) = (p.village.clone(), p.house.clone());
    if f.moves {
        let u: f64 = rng.random();
        let tambon = p.village.get(..6).unwrap_or("").to_string();
        let moved = if u < 0.84 {
            None
        } else if u < 0.91 {
            w.villages_by_tambon.get(&tambon).and_then(|v| v.choose(rng)).cloned()
        } else if u < 0.96 {
            let t = w.tambons_by_province.get(p.village.get(..2).unwrap_or("")).and_then(|t| t.choose(rng));
            t.and_then(|t| w.villages_by_tambon.get(t)).and_then(|v| v.choose(rng)).cloned()
        } else {
            let t = w.provinces.choose(rng).and_then(|pr| w.tambons_by_province.get(pr)).and_then(|t| t.choose(rng));
            t.and_then(|t| w.villages_by_tambon.get(t)).and_then(|v| v.choose(rng)).cloned()
        };
        if let Some(v) = moved {
            village = v;
            house = format!("{}", rng.random_range(1..400));
            if rng.random_bool(0.3) {
                house = format!("{house}/{}", rng.random_range(1..20));
            }
        }
    }
    if rng.random_bool(f.village_missing) {
        village.truncate(6);
    }
    [id, title, first, last, birth, sex.to_string(), village, house]
}

fn mistype_id(id: &str, rng: &mut impl Rng) -> String {
    let mut d: Vec<u8> = id.bytes().collect();
    let i = rng.random_range(0..12);
    if rng.random_bool(2.0 / 3.0) {
        d[i] = b'0' + (d[i] - b'0' + rng.random_range(1..10)) % 10;
    } else if d[i] != d[i + 1] {
        d.swap(i, i + 1);
    } else {
        d[i] = b'0' + (d[i] - b'0' + 1) % 10;
    }
    String::from_utf8(d).unwrap_or_default()
}

const LETTERS: &[char] = &[
    'ก', 'ข', 'ค', 'ง', 'จ', 'ช', 'ด', 'ต', 'ท', 'ธ', 'น', 'ณ', 'บ', 'ป', 'พ', 'ภ', 'ม', 'ย', 'ร', 'ล', 'ว', 'ศ', 'ส',
    'ห', 'อ',
];

fn is_mark(c: char) -> bool {
    matches!(c, '\u{0E31}' | '\u{0E34}'..='\u{0E3A}' | '\u{0E47}'..='\u{0E4E}')
}

/// A Thai letter substituted, dropped, doubled, or two letters transposed.
fn typo(s: &str, rng: &mut impl Rng) -> String {
    let mut c: Vec<char> = s.chars().collect();
    if c.len() < 3 {
        return s.to_string();
    }
    let i = rng.random_range(0..c.len() - 1);
    match rng.random_range(0..4) {
        0 => c[i] = LETTERS.choose(rng).copied().unwrap_or('ก'),
        1 => {
            c.remove(i);
        }
        2 => c.insert(i, c[i]),
        _ => c.swap(i, i + 1),
    }
    c.into_iter().collect()
}

/// แ typed as เเ; or a tone mark typed before the vowel mark it follows; or a vowel mark twice.
fn misorder(s: &str, rng: &mut impl Rng) -> String {
    if s.contains('แ') && rng.random() {
        return s.replacen('แ', "เเ", 1);
    }
    let mut c: Vec<char> = s.chars().collect();
    if let Some(i) = (0..c.len().saturating_sub(1)).find(|&i| {
        is_mark(c[i]) && crate::link::normalize::is_tone_mark(c[i + 1]) && !crate::link::normalize::is_tone_mark(c[i])
    }) {
        c.swap(i, i + 1);
    } else if let Some(i) = c.iter().position(|&ch| is_mark(ch)) {
        c.insert(i, c[i]);
    }
    c.into_iter().collect()
}

/// Spaces around the name, or one space inside it (between two letters).
fn spaced(s: &str, rng: &mut impl Rng) -> String {
    let c: Vec<char> = s.chars().collect();
    let cuts: Vec<usize> = (1..c.len()).filter(|&i| !is_mark(c[i]) && !matches!(c[i], 'ะ' | 'า' | 'ำ')).collect();
    match cuts.choose(rng) {
        Some(&i) if rng.random() => {
            let (a, b) = c.split_at(i);
            format!("{} {}", a.iter().collect::<String>(), b.iter().collect::<String>())
        }
        _ => format!(" {s}  "),
    }
}

fn thai_digits(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_digit() { char::from_u32(0x0E50 + (c as u32 - '0' as u32)).unwrap_or(c) } else { c })
        .collect()
}

fn date(b: PartialDate, form: DateForm, rng: &mut impl Rng) -> String {
    let be = ce_to_be(b.year, b.month);
    let (d, m) = (b.day, b.month);
    match form {
        DateForm::DmyBe => format!("{d:02}/{m:02}/{be}"),
        DateForm::ThaiDigits => thai_digits(&format!("{d:02}/{m:02}/{be}")),
        DateForm::YearOnly => format!("{be}"),
        DateForm::Iso => format!("{:04}-{m:02}-{d:02}", b.year),
        DateForm::MonthYear => format!("{m:02}/{be}"),
        DateForm::DmyCe => format!("{d:02}/{m:02}/{}", b.year),
        DateForm::YearTypo => {
            let mut y: Vec<u8> = format!("{be}").into_bytes();
            let i = rng.random_range(0..y.len());
            y[i] = b'0' + (y[i] - b'0' + rng.random_range(1..10)) % 10;
            format!("{d:02}/{m:02}/{}", String::from_utf8(y).unwrap_or_default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_do_what_the_specification_says() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let d = PartialDate::ymd(1996, 5, 12).unwrap();
        assert_eq!(date(d, DateForm::DmyBe, &mut rng), "12/05/2539");
        assert_eq!(date(d, DateForm::ThaiDigits, &mut rng), "๑๒/๐๕/๒๕๓๙");
        assert_eq!(date(d, DateForm::MonthYear, &mut rng), "05/2539");
        let t = date(d, DateForm::YearTypo, &mut rng);
        let differing = t[6..].bytes().zip("2539".bytes()).filter(|(a, b)| a != b).count();
        assert_eq!((&t[..6], differing), ("12/05/", 1), "{t}");
        assert_eq!(misorder("แก้ว", &mut rand_chacha::ChaCha8Rng::seed_from_u64(1)).chars().count(), 5);
        // A misordered name normalises back to the original.
        for seed in 0..20 {
            let m = misorder("ผู้ใหญ่", &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
            assert_eq!(crate::link::normalize::canonical_marks(&m), "ผู้ใหญ่", "{m}");
        }
        let id = "1101700230708";
        for seed in 0..20 {
            let m = mistype_id(id, &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
            assert!(crate::link::compare::id_near(m.parse().unwrap(), id.parse().unwrap()), "{m}");
        }
    }

    #[test]
    fn tiny_sets_end() {
        // One or two households: name pools of one name must not make the twin draw loop forever.
        for households in 1..=4 {
            let dir = tempfile::tempdir().unwrap();
            match write(dir.path(), &RegistriesOptions { households, seed: households }) {
                Ok(f) => assert_eq!(f.records[0].1, f.people),
                Err(e) => assert!(e.to_string().contains("both sexes"), "{e}"),
            }
        }
    }

    #[test]
    fn writes_labelled_registries() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), &RegistriesOptions { households: 300, seed: 5 }).unwrap();
        let n: usize = f.records.iter().map(|(_, n)| n).sum();
        let truth = std::fs::read_to_string(dir.path().join("truth.csv")).unwrap();
        assert_eq!(truth.lines().count(), n + 1, "one truth row per record");
        assert!(f.people > 300 && f.records[0].1 == f.people, "the survey lists everyone once: {f:?}");
        let again = tempfile::tempdir().unwrap();
        write(again.path(), &RegistriesOptions { households: 300, seed: 5 }).unwrap();
        for file in ["survey.csv", "welfare.csv", "agency.csv", "truth.csv"] {
            assert_eq!(
                std::fs::read(dir.path().join(file)).unwrap(),
                std::fs::read(again.path().join(file)).unwrap(),
                "{file}: the same seed writes the same benchmark"
            );
        }
    }
}
