//! Partial results (`tpmap::partial`): the parts' sums merge into the whole run's measures, bit
//! for bit with whole-number weights, however the data is cut; a partial read from disk is
//! checked before it is trusted.

use polars::prelude::*;
use rand::{Rng, SeedableRng};
use tpmap::aggregate::AreaMeasures;
use tpmap::ingest::TableInput;
use tpmap::mpi::{MpiOptions, measure, partial};
use tpmap::partial::{Partial, merge};
use tpmap::rational::Rational;

const INDICATORS: [&str; 6] = ["water", "school", "income", "health", "house", "card"];

/// SYNTHETIC units in 3 provinces × 2 amphoe × 2 tambon × 3 villages, sorted by area (as TPMAP
/// extracts come): statuses 1/0/na/empty, household sizes 1–8 (or fractional survey weights).
fn units(n: usize, seed: u64, fractional: bool) -> DataFrame {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut area: Vec<(u32, u32, u32, u32)> = (0..n)
        .map(|_| (rng.random_range(10..13), rng.random_range(1..3), rng.random_range(1..3), rng.random_range(1..4)))
        .collect();
    area.sort();
    let mut cols = vec![
        Column::new("province".into(), area.iter().map(|a| a.0.to_string()).collect::<Vec<_>>()),
        Column::new("amphoe".into(), area.iter().map(|a| format!("{}{:02}", a.0, a.1)).collect::<Vec<_>>()),
        Column::new("tambon".into(), area.iter().map(|a| format!("{}{:02}{:02}", a.0, a.1, a.2)).collect::<Vec<_>>()),
        Column::new(
            "village".into(),
            area.iter().map(|a| format!("{}{:02}{:02}{:02}", a.0, a.1, a.2, a.3)).collect::<Vec<_>>(),
        ),
    ];
    let members: Vec<f64> =
        (0..n).map(|_| if fractional { rng.random_range(0.5..40.0) } else { rng.random_range(1..9) as f64 }).collect();
    cols.push(Column::new("members".into(), members));
    for ind in INDICATORS {
        let v: Vec<Option<&str>> = (0..n)
            .map(|_| match rng.random_range(0..20) {
                0..=4 => Some("1"),
                5 => Some("na"),
                6 => None,
                _ => Some("0"),
            })
            .collect();
        cols.push(Column::new(ind.into(), v));
    }
    DataFrame::new_infer_height(cols).unwrap()
}

fn spec() -> Vec<(String, String, Rational)> {
    let w = |s: &str| s.parse::<Rational>().unwrap();
    vec![
        ("living".into(), "water".into(), w("1/6")),
        ("living".into(), "house".into(), w("1/6")),
        ("education".into(), "school".into(), w("1/3")),
        ("income".into(), "income".into(), w("1/9")),
        ("income".into(), "health".into(), w("1/9")),
        ("income".into(), "card".into(), w("1/9")),
    ]
}

fn options(k: &str, missing: &str) -> MpiOptions {
    MpiOptions {
        k: k.parse().unwrap(),
        areas: vec!["province".into(), "amphoe".into(), "tambon".into(), "village".into()],
        weight: Some("members".into()),
        missing: missing.parse().unwrap(),
        ..Default::default()
    }
}

fn partials_of(parts: &[DataFrame], opts: &MpiOptions) -> Vec<Partial> {
    parts.iter().map(|p| partial(TableInput::Frame(p, "part"), spec(), opts).unwrap()).collect()
}

fn sorted(mut rows: Vec<AreaMeasures>) -> Vec<AreaMeasures> {
    rows.sort_by(|a, b| (&a.level, &a.area).cmp(&(&b.level, &b.area)));
    rows
}

#[test]
fn consecutive_parts_merge_to_the_whole_bit_for_bit() {
    let df = units(3_000, 1, false);
    for (k, missing) in [("1/3", "drop"), ("union", "deprived"), ("1/2", "not-deprived")] {
        let opts = options(k, missing);
        let (whole, _) = measure(TableInput::Frame(&df, "units"), spec(), &opts).unwrap();
        // Cuts anywhere, inside villages too: a village in two parts is added back together.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for parts in [1usize, 2, 5, 17] {
            let mut cuts: Vec<usize> = (1..parts).map(|_| rng.random_range(1..df.height())).collect();
            cuts.extend([0, df.height()]);
            cuts.sort();
            let pieces: Vec<DataFrame> = cuts.windows(2).map(|w| df.slice(w[0] as i64, w[1] - w[0])).collect();
            let merged = merge(&partials_of(&pieces, &opts)).unwrap();
            assert_eq!(merged.levels, whole.levels);
            assert_eq!(merged.rows, whole.rows, "k {k}, missing {missing}, {parts} parts");
        }
    }
}

#[test]
fn rows_dealt_at_random_merge_to_the_same_measures() {
    // Units dealt to four parts at random (as a cluster's partitions): the same numbers, bit for
    // bit; only the order of the rows follows the parts.
    let df = units(2_000, 2, false);
    let opts = options("1/3", "drop");
    let (whole, _) = measure(TableInput::Frame(&df, "units"), spec(), &opts).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let part: Vec<u32> = (0..df.height()).map(|_| rng.random_range(0..4)).collect();
    let pieces: Vec<DataFrame> = (0..4)
        .map(|p| {
            let mask: BooleanChunked = part.iter().map(|&x| x == p).collect();
            df.filter(&mask).unwrap()
        })
        .collect();
    let merged = merge(&partials_of(&pieces, &opts)).unwrap();
    assert_eq!(sorted(merged.rows), sorted(whole.rows));
}

#[test]
fn fractional_weights_merge_to_within_rounding() {
    let df = units(2_000, 3, true);
    let opts = options("1/3", "drop");
    let (whole, _) = measure(TableInput::Frame(&df, "units"), spec(), &opts).unwrap();
    let pieces = [df.slice(0, 777), df.slice(777, 2_000)];
    let merged = merge(&partials_of(&pieces, &opts)).unwrap();
    assert_eq!(merged.rows.len(), whole.rows.len());
    for (m, w) in merged.rows.iter().zip(&whole.rows) {
        assert_eq!((&m.area, m.units), (&w.area, w.units));
        for (x, y) in [(m.h, w.h), (m.a, w.a), (m.m0, w.m0), (m.population, w.population)] {
            assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{} {x} {y}", m.area);
        }
    }
}

#[test]
fn partials_survive_the_disk_and_the_command_line() {
    let df = units(1_500, 4, false);
    let opts = options("1/3", "drop");
    let (whole, _) = measure(TableInput::Frame(&df, "units"), spec(), &opts).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pieces = [df.slice(0, 500), df.slice(500, 1_000)];
    let mut read = Vec::new();
    for (i, p) in partials_of(&pieces, &opts).iter().enumerate() {
        let d = dir.path().join(format!("p{i}"));
        p.write(&d).unwrap();
        let back = Partial::read(&d).unwrap();
        assert_eq!(&back, p);
        read.push(back);
    }
    assert_eq!(merge(&read).unwrap().rows, whole.rows);

    // The same through the command line: two CSV parts, `tpmap mpi --partial`, `tpmap merge`,
    // against `tpmap mpi` on the whole file: the same measures.csv, byte for byte.
    let spec_csv = dir.path().join("spec.csv");
    let mut text = String::from("dimension,indicator,weight\n");
    for (d, i, w) in spec() {
        text.push_str(&format!("{d},{i},{w}\n"));
    }
    std::fs::write(&spec_csv, text).unwrap();
    let write_csv = |df: &DataFrame, name: &str| {
        let path = dir.path().join(name);
        let mut df = df.clone();
        CsvWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
        path
    };
    let run = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tpmap")).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let mpi = |data: &std::path::Path, out: &std::path::Path, partial: bool| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "mpi".as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
            "--spec".as_ref(),
            spec_csv.as_os_str(),
            "--k".as_ref(),
            "1/3".as_ref(),
            "--areas".as_ref(),
            "province,amphoe,tambon,village".as_ref(),
            "--weight".as_ref(),
            "members".as_ref(),
            "--quiet".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ];
        if partial {
            args.push("--partial".as_ref());
        }
        run(&args);
    };
    let whole_csv = write_csv(&df, "whole.csv");
    mpi(&whole_csv, &dir.path().join("cli-whole"), false);
    // The same units from Parquet (typed columns read a column at a time, unused ones skipped).
    let whole_parquet = dir.path().join("whole.parquet");
    let mut with_extra = df.clone();
    with_extra.with_column(Column::new("unused".into(), vec![u64::MAX; df.height()])).unwrap();
    ParquetWriter::new(std::fs::File::create(&whole_parquet).unwrap()).finish(&mut with_extra).unwrap();
    mpi(&whole_parquet, &dir.path().join("cli-parquet"), false);
    let (a, b) = (write_csv(&pieces[0], "a.csv"), write_csv(&pieces[1], "b.csv"));
    mpi(&a, &dir.path().join("cli-a"), true);
    mpi(&b, &dir.path().join("cli-b"), true);
    let (pa, pb, merged) = (dir.path().join("cli-a"), dir.path().join("cli-b"), dir.path().join("cli-merged"));
    run(&["merge".as_ref(), pa.as_os_str(), pb.as_os_str(), "--quiet".as_ref(), "--out".as_ref(), merged.as_os_str()]);
    let read = |d: &str| std::fs::read(dir.path().join(d).join("measures.csv")).unwrap();
    assert_eq!(read("cli-merged"), read("cli-whole"));
    assert_eq!(read("cli-parquet"), read("cli-whole"));
}

#[test]
fn parts_of_different_measures_are_not_merged() {
    let df = units(300, 5, false);
    let a = partial(TableInput::Frame(&df, "a"), spec(), &options("1/3", "drop")).unwrap();
    let b = partial(TableInput::Frame(&df, "b"), spec(), &options("1/2", "drop")).unwrap();
    assert!(merge(&[a.clone(), b]).is_err());
    assert!(merge(&[]).is_err());
    // Bootstrap replicates drawn by row position would not add up across parts: refused
    // without a unit-id column; breakdowns are not in the format: refused, not dropped.
    let mut boot = options("1/3", "drop");
    boot.bootstrap = (50, 1);
    assert!(partial(TableInput::Frame(&df, "a"), spec(), &boot).is_err());
    let mut over = options("1/3", "drop");
    over.over = vec!["province".into()];
    assert!(partial(TableInput::Frame(&df, "a"), spec(), &over).is_err());
}

#[test]
fn a_tampered_partial_is_an_error_naming_the_file() {
    let df = units(300, 6, false);
    let p = partial(TableInput::Frame(&df, "a"), spec(), &options("1/3", "drop")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    p.write(&good).unwrap();
    let json = std::fs::read_to_string(good.join("partial.json")).unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("version", json.replace("\"version\": 1", "\"version\": 3")),
        ("replicates in version 1", json.replacen('{', "{\"replicates\": 5,", 1)),
        (
            "replicates without their columns",
            json.replace("\"version\": 1", "\"version\": 2").replacen('{', "{\"replicates\": 5,", 1),
        ),
        (
            "too many replicates",
            json.replace("\"version\": 1", "\"version\": 2").replacen('{', "{\"replicates\": 100000,", 1),
        ),
        ("format", json.replace("tpmap-partial", "other")),
        ("unknown field", json.replacen('{', "{\"extra\": 1,", 1)),
        ("leaves", json.replace(&format!("\"leaves\": {}", p.leaves.len()), "\"leaves\": 3")),
        ("too many leaves", json.replace(&format!("\"leaves\": {}", p.leaves.len()), "\"leaves\": 99999999999")),
        ("one leaf over the limit", json.replace(&format!("\"leaves\": {}", p.leaves.len()), "\"leaves\": 1000001")),
        ("weight", json.replace("\"1/3\"", "\"x\"")),
        ("weights not summing to 1", json.replace("\"1/9\"", "\"1/7\"")),
        ("columns", json.replace("\"w2_poor\"", "\"w2_rich\"")),
        ("not json", "{".to_string()),
    ];
    for (what, text) in cases {
        assert_ne!(text, json, "{what}: the case must change the file");
        let d = dir.path().join(what.replace(' ', "_"));
        p.write(&d).unwrap();
        std::fs::write(d.join("partial.json"), text).unwrap();
        let e = Partial::read(&d).expect_err(what).to_string();
        assert!(e.contains("partial.json") || e.contains("leaves.parquet"), "{what}: {e}");
    }
    // A sum that is not a number, and a missing key, in the Parquet file.
    let d = dir.path().join("nan");
    let mut bad = p.clone();
    bad.sums[3] = f64::NAN;
    bad.write(&d).unwrap();
    let e = Partial::read(&d).unwrap_err().to_string();
    assert!(e.contains("leaves.parquet") && e.contains("not a finite number"), "{e}");
    // A leaves file from another partial (other levels).
    let other = partial(
        TableInput::Frame(&df, "a"),
        spec(),
        &MpiOptions { areas: vec!["province".into()], ..options("1/3", "drop") },
    )
    .unwrap();
    let d2 = dir.path().join("other");
    other.write(&d2).unwrap();
    let d3 = dir.path().join("mixed");
    p.write(&d3).unwrap();
    std::fs::copy(d2.join("leaves.parquet"), d3.join("leaves.parquet")).unwrap();
    assert!(Partial::read(&d3).unwrap_err().to_string().contains("leaves.parquet"));
}

#[test]
fn bootstrap_weights_follow_the_unit_not_its_row() {
    // The same units in reverse order: with a unit-id column the replicate weights are the same
    // (the standard errors agree but for the order of float additions); by row position they
    // are other draws.
    let mut df = units(3_000, 5, false);
    let ids: Vec<String> = (0..df.height()).map(|i| format!("h{i}")).collect();
    df.with_column(Column::new("hh".into(), ids)).unwrap();
    let reversed = df.reverse();
    let se = |d: &DataFrame, keyed: bool| -> [f64; 3] {
        let opts =
            MpiOptions { bootstrap: (60, 9), unit_id: keyed.then(|| "hh".to_string()), ..options("1/3", "drop") };
        let (m, _) = measure(TableInput::Frame(d, "units"), spec(), &opts).unwrap();
        m.rows[0].se_bootstrap.unwrap()
    };
    let (a, b) = (se(&df, true), se(&reversed, true));
    for k in 0..3 {
        assert!((a[k] - b[k]).abs() <= 1e-12 * a[k].abs().max(1e-300), "{k}: {} {}", a[k], b[k]);
    }
    let (c, d) = (se(&df, false), se(&reversed, false));
    assert!((c[0] - d[0]).abs() > 1e-6 * c[0], "row-keyed draws should differ: {} {}", c[0], d[0]);
}

#[test]
fn bootstrap_replicates_survive_the_disk_and_merge_to_the_whole() {
    // Version 2: replicate sums per leaf, drawn per unit (by its id), so that parts written,
    // read back and merged give the whole run's bootstrap standard errors bit for bit.
    let mut df = units(2_400, 8, false);
    let ids: Vec<String> = (0..df.height()).map(|i| format!("h{i}")).collect();
    df.with_column(Column::new("hh".into(), ids)).unwrap();
    let opts = MpiOptions { bootstrap: (40, 7), unit_id: Some("hh".into()), ..options("1/3", "drop") };
    let (whole, _) = measure(TableInput::Frame(&df, "units"), spec(), &opts).unwrap();
    assert!(whole.rows[0].se_bootstrap.is_some());
    let dir = tempfile::tempdir().unwrap();
    let pieces = [df.slice(0, 700), df.slice(700, 900), df.slice(1_600, 800)];
    let mut read = Vec::new();
    for (i, p) in partials_of(&pieces, &opts).iter().enumerate() {
        assert_eq!((p.reps, p.seed), (40, 7));
        let d = dir.path().join(format!("p{i}"));
        p.write(&d).unwrap();
        let header = std::fs::read_to_string(d.join("partial.json")).unwrap();
        assert!(header.contains("\"version\": 2") && header.contains("\"replicates\": 40"), "{header}");
        let back = Partial::read(&d).unwrap();
        assert_eq!(&back, p);
        read.push(back);
    }
    assert_eq!(merge(&read).unwrap().rows, whole.rows);
    // Another seed is another set of replicates: not merged with these.
    let other = MpiOptions { bootstrap: (40, 8), ..opts.clone() };
    let mut mixed = read.clone();
    mixed[2] = partial(TableInput::Frame(&pieces[2], "part"), spec(), &other).unwrap();
    assert!(merge(&mixed).is_err());
    // A partial without replicates is still written as version 1.
    let plain = partial(TableInput::Frame(&df, "units"), spec(), &options("1/3", "drop")).unwrap();
    plain.write(&dir.path().join("v1")).unwrap();
    let header = std::fs::read_to_string(dir.path().join("v1/partial.json")).unwrap();
    assert!(header.contains("\"version\": 1") && !header.contains("replicates"), "{header}");
}
