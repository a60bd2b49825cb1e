//! A link registry (CSV bytes): read, or an error naming the file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("registry.csv");
    std::fs::write(&p, data).unwrap();
    let mut r = tpmap::link::Records::default();
    // Reading and normalising only: a link job trains on at least 100,000 random pairs, far too
    // slow per input (the property tests link mutated registries instead).
    if let Err(e) = r.push_csv(&p) {
        assert!(e.to_string().contains("registry.csv"));
    }
});
