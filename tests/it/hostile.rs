//! Property tests that throw random and mutated input at every parser: none may panic, and what
//! each accepts must be what the input says. (The corpus in `tests/corpus/` holds the known
//! defects; these search around them. `fuzz/` runs the same parsers under libFuzzer.)

use std::path::Path;

use proptest::prelude::*;
use tpmap::ingest::source::Cell;
use tpmap::ingest::{IngestOptions, ingest, parse};

use crate::root;

/// Mutations of a byte string: flip, insert, delete or duplicate bytes, and splice in hostile
/// fragments (quotes, separators, line ends, NUL, invalid UTF-8, Thai text, huge numbers).
fn mutate(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let fragments: Vec<&'static [u8]> = vec![
        b"\"",
        b",",
        b"\r",
        b"\n",
        b"\x00",
        b"\xff\xfe",
        b"\xe0\xb8",
        "สมชาย".as_bytes(),
        "๑๒".as_bytes(),
        b"99999999999999999999999",
        b"-1",
        b"1e400",
        b"NaN",
        b"=1+1",
        b"#",
        b"((((",
        b"not ",
        b"/0",
        b"\\u0000",
    ];
    let n = base.len().max(1);
    proptest::collection::vec((0..n, 0u8..5, any::<u8>(), 0..fragments.len()), 1..8).prop_map(move |edits| {
        let mut v = base.clone();
        for (at, op, byte, frag) in edits {
            let at = at.min(v.len());
            match op {
                0 if at < v.len() => v[at] ^= byte | 1,
                1 => v.insert(at, byte),
                2 if at < v.len() => {
                    v.remove(at);
                }
                3 => {
                    let piece: Vec<u8> = v[at..(at + 16).min(v.len())].to_vec();
                    v.splice(at..at, piece);
                }
                _ => {
                    v.splice(at..at, fragments[frag].iter().copied());
                }
            }
        }
        v
    })
}

fn base(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/corpus/_base").join(name)).unwrap()
}

fn ingest_bytes(hh: &[u8], persons: &[u8], ext: &str) -> tpmap::Result<tpmap::ingest::Ingested> {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join(format!("households.{ext}"));
    let p = dir.path().join(format!("persons.{ext}"));
    std::fs::write(&h, hh).unwrap();
    std::fs::write(&p, persons).unwrap();
    ingest(&h, &p, &IngestOptions::default())
}

fn cell() -> impl Strategy<Value = Cell<'static>> {
    prop_oneof![
        Just(Cell::Null),
        any::<i64>().prop_map(Cell::Int),
        any::<f64>().prop_map(Cell::Float),
        any::<bool>().prop_map(Cell::Bool),
        any::<i32>().prop_map(Cell::Date),
        "\\PC{0,12}".prop_map(|s| Cell::Str(Box::leak(s.into_boxed_str()))),
        "[0-9๐-๙./ -]{0,14}".prop_map(|s| Cell::Str(Box::leak(s.into_boxed_str()))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Dates from any text: never a panic; what is accepted is a real (partial) date.
    #[test]
    fn dates_from_any_text(s in "\\PC{0,16}|[0-9๐-๙]{1,5}[-/. ][0-9๐-๙]{1,5}[-/. ][0-9๐-๙]{1,5}|[0-9]{8}|[0-9€]{8}") {
        if let Some(d) = tpmap::thai::parse_date(&s) {
            prop_assert!((1800..=2200).contains(&d.year), "{s} -> {d:?}");
            prop_assert!(d.month <= 12);
            if d.month == 0 { prop_assert_eq!(d.day, 0); }
            if d.day > 0 { prop_assert!(d.day <= tpmap::thai::days_in_month(d.year, d.month)); }
        }
    }

    /// Every cell parser on every kind of cell: a value or a reason, never a panic.
    #[test]
    fn cell_parsers_never_panic(c in cell()) {
        let _ = parse::status(c, parse::OneMeans::Fail);
        let _ = parse::flag(c);
        let _ = parse::number(c).map(|n| n.inspect(|v| assert!(v.is_finite() && *v >= 0.0)));
        let _ = parse::whole(c);
        if let Ok(Some(y)) = parse::year_be(c) { prop_assert!((2400..=2700).contains(&y)); }
        let _ = parse::date(c);
        let _ = parse::sex(c);
        let _ = parse::relation(c);
        let _ = c.to_text();
    }

    /// Citizen IDs from any text: accepted only with a valid check digit.
    #[test]
    fn citizen_ids_from_any_text(s in "\\PC{0,20}|[0-9๐-๙ -]{10,20}") {
        if let Ok(id) = tpmap::ids::CitizenId::parse(&s) {
            let d = id.digits();
            let first: [u8; 12] = d[..12].try_into().unwrap();
            prop_assert_eq!(tpmap::ids::check_digit(&first), d[12]);
        }
        let _ = s.parse::<tpmap::ids::HouseholdId>();
        let _ = s.parse::<tpmap::ids::HouseId>();
    }

    /// Redaction leaves no run of 11 digits (ASCII or Thai, separators between) and keeps the
    /// text's length in characters.
    #[test]
    fn redaction_hides_every_long_number(s in "([0-9๐-๙]{1,14}[ -]?|[a-zก-ฮ,'/]{0,3}){0,8}") {
        let r = tpmap::ids::redact_numbers(&s);
        prop_assert_eq!(r.chars().count(), s.chars().count());
        let mut run = 0;
        let chars: Vec<char> = r.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            let digit = c.is_ascii_digit() || ('\u{0E50}'..='\u{0E59}').contains(c);
            let sep = matches!(c, '-' | ' ' | '.') && i > 0 && i + 1 < chars.len();
            if digit { run += 1 } else if !sep { run = 0 }
            prop_assert!(run < tpmap::ids::REDACT_MIN_DIGITS, "{s} -> {r}");
        }
    }

    /// Fractions from any text: a positive denominator, and comparisons agree with exact
    /// cross-multiplication.
    #[test]
    fn fractions_from_any_text(a in "\\PC{0,12}|[0-9]{1,40}(/[0-9]{1,40}|\\.[0-9]{1,20}|%)?", b in "[0-9]{1,30}(/[0-9]{1,30})?") {
        if let (Ok(x), Ok(y)) = (a.parse::<tpmap::rational::Rational>(), b.parse::<tpmap::rational::Rational>()) {
            prop_assert!(x.den() > 0 && y.den() > 0);
            prop_assert_eq!(x.cmp(&y), y.cmp(&x).reverse());
            let _ = x.checked_add(y);
            let _ = x.checked_mul(y);
        }
    }

    /// Eligibility rules from any text, and mutations of real ones: a rule or an error.
    #[test]
    fn rules_from_any_text(s in "\\PC{0,40}|((not |any\\(|\\()*(age|score|income|members|province|deprived\\(2\\.1\\)|target|poor) ?(>=|<|=|!=|in) ?[0-9/.%()]{0,12}( and | or |\\)){0,3}){1,4}") {
        let e = tpmap::indicators::Edition::bmn_2560();
        for unit in [tpmap::score::Unit::Households, tpmap::score::Unit::People] {
            if let Ok(r) = tpmap::programs::Rule::parse(&s, &e, unit) {
                let _ = r.to_string();
            }
        }
    }

    /// Catalogues: mutations of a real one load or fail with an error.
    #[test]
    fn catalogues_mutated(bytes in mutate(base("catalogue.toml"))) {
        let e = tpmap::indicators::Edition::bmn_2560();
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = tpmap::programs::Catalogue::from_toml(text, &e, "mutated.toml");
        }
    }

    /// Saved link models: mutations of a valid one are refused or fit (validated) — never an
    /// index out of bounds when scoring.
    #[test]
    fn link_models_mutated(bytes in mutate(model_json().into_bytes())) {
        if let Ok(text) = std::str::from_utf8(&bytes)
            && let Ok(m) = tpmap::link::Model::from_json(text)
        {
            let mut r = tpmap::link::Records::default();
            r.push_csv(&root().join("tests/corpus/_base/welfare_registry.csv")).unwrap();
            let o = tpmap::link::LinkOptions { model: Some(m), task: tpmap::link::Task::Dedupe, ..Default::default() };
            let _ = tpmap::link::run(&r, &o);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Extract files (CSV) with mutated bytes: the lenient reader fails only on the file as a
    /// whole, and otherwise accounts for every row.
    #[test]
    fn extract_csv_mutated(hh in mutate(base("households.csv")), pp in mutate(base("persons.csv"))) {
        if let Ok(got) = ingest_bytes(&hh, &pp, "csv") {
            prop_assert!(got.report.households.reconciles() && got.report.persons.reconciles());
        }
    }

    /// Link registries with mutated bytes: read, or an error naming the file.
    #[test]
    fn registries_mutated(bytes in mutate(base("welfare_registry.csv"))) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("registry.csv");
        std::fs::write(&p, &bytes).unwrap();
        let mut r = tpmap::link::Records::default();
        if let Err(e) = r.push_csv(&p) {
            prop_assert!(e.to_string().contains("registry.csv"), "{e}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Workbooks with mutated bytes (zip and XML damage): read, or an error naming the file.
    #[test]
    fn workbooks_mutated(bytes in mutate(std::fs::read(root().join("tests/corpus/xlsx-cell-limit/households.xlsx")).unwrap())) {
        let pp = std::fs::read(root().join("tests/corpus/xlsx-cell-limit/persons.xlsx")).unwrap();
        match ingest_bytes(&bytes, &pp, "xlsx") {
            Ok(got) => prop_assert!(got.report.households.reconciles()),
            Err(e) => prop_assert!(e.to_string().contains("households.xlsx"), "{e}"),
        }
    }

    /// Parquet files whose columns hold any values of their types (dates of any i32, integers of
    /// any width and sign, floats with NaN and infinities): read, every row accounted for.
    #[test]
    fn parquet_typed_columns(
        days in proptest::collection::vec(any::<i32>(), 1..12),
        ints in proptest::collection::vec(any::<i64>(), 1..12),
        floats in proptest::collection::vec(any::<f64>(), 1..12),
        small in proptest::collection::vec(any::<i8>(), 1..12),
    ) {
        use polars::prelude::*;
        let n = days.len().min(ints.len()).min(floats.len()).min(small.len());
        let dir = tempfile::tempdir().unwrap();
        let hh_csv = root().join("tests/corpus/_base/households.csv");
        let pp_csv = root().join("tests/corpus/_base/persons.csv");
        let base = ingest(&hh_csv, &pp_csv, &IngestOptions::default()).unwrap();
        let x = &base.extract;
        let ids: Vec<u64> = (0..n).map(|i| x.households.id[i % x.households.len()].0).collect();
        let villages: Vec<&str> = (0..n).map(|i| x.households.village[i % x.households.len()].as_str()).collect();
        let mut hh = df!(
            "household_id" => ints.iter().take(n).zip(&ids).map(|(v, id)| if v % 3 == 0 { *v } else { *id as i64 }).collect::<Vec<i64>>(),
            "village_code" => villages,
            "survey_year" => small.iter().take(n).map(|&s| 2500 + s as i64).collect::<Vec<i64>>(),
            "income_per_member" => floats[..n].to_vec(),
            "ind_8" => small[..n].to_vec(),
        ).unwrap();
        let mut pp = df!(
            "household_id" => ids.iter().map(|&v| v as i64).collect::<Vec<i64>>(),
            "age" => small[..n].to_vec(),
            "ind_20" => floats[..n].to_vec(),
        ).unwrap();
        pp.with_column(Column::new("birth_date".into(), days[..n].to_vec()).cast(&DataType::Date).unwrap()).unwrap();
        let h = dir.path().join("households.parquet");
        let p = dir.path().join("persons.parquet");
        ParquetWriter::new(std::fs::File::create(&h).unwrap()).finish(&mut hh).unwrap();
        ParquetWriter::new(std::fs::File::create(&p).unwrap()).finish(&mut pp).unwrap();
        let got = ingest(&h, &p, &IngestOptions::default()).unwrap();
        prop_assert_eq!(got.report.households.input_rows as usize, n);
        prop_assert!(got.report.households.reconciles() && got.report.persons.reconciles());
    }
}

/// A status cell as an extract may hold it: the plain forms, Thai words, padded or decimal forms,
/// bad values, empty text, null, or any short text.
fn status_form() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => prop::sample::select(vec!["0", "1", "na", "NA", "ผ่าน", "ไม่ผ่าน", " 1", "1.0", "2", "", "-"])
            .prop_map(|s| Some(s.to_string())),
        1 => Just(None),
        1 => "\\PC{0,6}".prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Text status columns of a Parquet extract (read as codes over their dictionary) give what
    /// the same frames give read in memory (through polars' text views): the same statuses
    /// accepted, the same rows rejected for the same reasons with the same values. Small row
    /// groups and pages, so that slices cross them.
    #[test]
    fn parquet_text_statuses_read_as_the_frames_read_them(
        hh_forms in proptest::collection::vec(status_form(), 1..12),
        p_forms in proptest::collection::vec(status_form(), 1..12),
        runs in 1usize..40,
    ) {
        use polars::prelude::*;
        use tpmap::ingest::{TableInput, ingest_tables};
        let hh_csv = root().join("tests/corpus/_base/households.csv");
        let pp_csv = root().join("tests/corpus/_base/persons.csv");
        let base = ingest(&hh_csv, &pp_csv, &IngestOptions::default()).unwrap();
        let x = &base.extract;
        let form = |forms: &[Option<String>], i: usize| forms[(i / runs) % forms.len()].clone();
        let n = x.households.len();
        let mut hh = df!(
            "household_id" => x.households.id.iter().map(|id| id.0 as i64).collect::<Vec<i64>>(),
            "village_code" => x.households.village.iter().map(|v| v.as_str()).collect::<Vec<&str>>(),
            "survey_year" => vec![2566i64; n],
            "ind_8" => (0..n).map(|i| form(&hh_forms, i)).collect::<Vec<Option<String>>>(),
            "ind_9" => (0..n).map(|i| form(&hh_forms, i * 7 + 3)).collect::<Vec<Option<String>>>(),
        ).unwrap();
        let m = x.persons.len();
        let mut pp = df!(
            "household_id" => x.persons.household.iter().map(|&h| x.households.id[h as usize].0 as i64).collect::<Vec<i64>>(),
            "ind_20" => (0..m).map(|i| form(&p_forms, i)).collect::<Vec<Option<String>>>(),
        ).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let h = dir.path().join("households.parquet");
        let p = dir.path().join("persons.parquet");
        for (path, df) in [(&h, &mut hh), (&p, &mut pp)] {
            ParquetWriter::new(std::fs::File::create(path).unwrap())
                .with_row_group_size(Some(17))
                .with_data_page_size(Some(64))
                .finish(df)
                .unwrap();
        }
        let opts = IngestOptions::default();
        let from_files = ingest(&h, &p, &opts);
        let from_frames = ingest_tables(TableInput::Frame(&hh, "households"), TableInput::Frame(&pp, "persons"), &opts);
        match (from_files, from_frames) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(&a.extract.households.statuses, &b.extract.households.statuses);
                prop_assert_eq!(&a.extract.persons.statuses, &b.extract.persons.statuses);
                for (ra, rb) in [(&a.household_rejects, &b.household_rejects), (&a.person_rejects, &b.person_rejects)] {
                    prop_assert_eq!(ra.len(), rb.len());
                    for (x, y) in ra.iter().zip(rb.iter()) {
                        prop_assert_eq!(x.row, y.row);
                        prop_assert_eq!(&x.values, &y.values);
                        let reasons = |r: &tpmap::ingest::rejects::Rejection| r.problems.iter().map(|p| (p.reason, p.column.clone())).collect::<Vec<_>>();
                        prop_assert_eq!(reasons(x), reasons(y));
                    }
                }
                prop_assert!(a.report.households.reconciles() && a.report.persons.reconciles());
            }
            (a, b) => prop_assert_eq!(a.is_ok(), b.is_ok(), "{:?} / {:?}", a.err(), b.err()),
        }
    }
}

/// A valid saved model: trained once on the base registry.
fn model_json() -> String {
    static MODEL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MODEL
        .get_or_init(|| {
            let mut r = tpmap::link::Records::default();
            r.push_csv(Path::new(&root().join("tests/corpus/_base/welfare_registry.csv"))).unwrap();
            r.push_csv(Path::new(&root().join("tests/corpus/_base/served_list.csv"))).unwrap();
            let l = tpmap::link::run(&r, &tpmap::link::LinkOptions::default()).unwrap();
            serde_json::to_string(&l.model).unwrap()
        })
        .clone()
}

#[test]
fn config_files_are_read_within_their_limit() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.toml");
    std::fs::write(&p, "x".repeat(2000)).unwrap();
    assert_eq!(tpmap::limits::read_config(&p, 2000).unwrap().len(), 2000);
    let e = tpmap::limits::read_config(&p, 1999).unwrap_err();
    assert!(matches!(e, tpmap::Error::Limit { .. }), "{e}");
    std::fs::write(&p, b"\xff\xfe").unwrap();
    assert!(tpmap::limits::read_config(&p, 100).unwrap_err().to_string().contains("UTF-8"));
}
