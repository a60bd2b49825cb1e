//! TPMAP's public files: the real 2561 tables reconcile, and our own output round-trips.

use std::path::PathBuf;

use tpmap::ingest::{IngestOptions, ingest};
use tpmap::published::{Published, TableLevel, tables_from_extract};
use tpmap::score::Welfare;

use crate::samples;

/// The real TPMAP 2561 tables, as the repository keeps them (`data/tpmap-2561/published/`,
/// gzip-compressed): the test reads nothing outside the repository.
fn tables_2561() -> PathBuf {
    let dir = crate::root().join("data/tpmap-2561/published");
    assert!(dir.is_dir(), "the TPMAP 2561 tables are missing from {}", dir.display());
    dir
}

#[test]
fn real_2561_tables_reconcile_exactly() {
    let p = Published::read_dir(&tables_2561(), "61", "11111").unwrap();
    assert_eq!(p.common[&TableLevel::Village].rows.len(), 84_090);
    assert_eq!(p.poor[&TableLevel::Province].rows.len(), 76);
    let country = &p.common[&TableLevel::Country].rows[""];
    assert_eq!(country[1], Some(36_647_817.0)); // HOUSEMEMBER_CNT
    let r = p.reconcile();
    assert!(r.values_compared > 500_000, "{}", r.values_compared);
    assert!(r.mismatches.is_empty(), "{} mismatches, first: {:?}", r.mismatches.len(), r.mismatches.first());
}

#[test]
fn our_tables_round_trip_and_reconcile() {
    let got =
        ingest(&samples().join("households.parquet"), &samples().join("persons.parquet"), &IngestOptions::default())
            .unwrap();
    let x = &got.extract;
    let p = tables_from_extract(x, 2561, tpmap::score::DimensionMask::ALL, Welfare::Validated).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = p.write_dir(dir.path()).unwrap();
    let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for want in [
        "61_country_common.csv",
        "61_country_11111.csv",
        "61_province_11111.csv",
        "61_40_amphur_common.csv",
        "61_95_village_11111.csv",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    let back = Published::read_dir(dir.path(), "61", "11111").unwrap();
    assert_eq!(back.common, p.common);
    assert_eq!(back.poor, p.poor);
    assert!(back.reconcile().mismatches.is_empty());
    // Country counts agree with the extract.
    let c = &back.common[&TableLevel::Country].rows[""];
    assert_eq!(c[0], Some(x.households.len() as f64));
    let people: f64 = x.households.members.iter().map(|&m| m as f64).sum();
    assert_eq!(c[1], Some(people));
    // Target poor never exceed poor people; poor people never exceed members.
    let q = &back.poor[&TableLevel::Country].rows[""];
    assert!(q[3].unwrap() <= q[1].unwrap() && q[1].unwrap() <= people);
    // Scoring once and reusing the scores gives the same tables.
    let spec = tpmap::score::Spec::tpmap(&x.edition, tpmap::score::DimensionMask::ALL).unwrap();
    let prof = tpmap::score::Profiles::of_households(x, tpmap::score::Unit::People);
    let sc = tpmap::score::score(&prof, &spec).unwrap();
    let reused = tpmap::published::tables_from_scores(x, 2561, &spec, &prof, &sc, Welfare::Validated).unwrap();
    assert_eq!((reused.common, reused.poor, reused.mask), (p.common.clone(), p.poor.clone(), p.mask.clone()));
    // With no welfare condition, target poor = poor people.
    let none = tables_from_extract(x, 2567, tpmap::score::DimensionMask::ALL, Welfare::None).unwrap();
    let q2 = &none.poor[&TableLevel::Country].rows[""];
    assert_eq!(q2[3], q2[1]);
    assert_eq!(none.year, "67");
}
