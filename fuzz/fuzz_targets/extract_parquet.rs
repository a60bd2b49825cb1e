//! An extract's households file (Parquet bytes) with the corpus base persons: every row accounted for.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("households.parquet");
    std::fs::write(&h, data).unwrap();
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/_base/persons.csv");
    if let Ok(got) = tpmap::ingest::ingest(&h, &p, &Default::default()) {
        assert!(got.report.households.reconciles() && got.report.persons.reconciles());
    }
});
