//! A link registry (CSV bytes): read, or an error naming the file. Reading and normalising only:
//! a link job trains on at least 100,000 random pairs, far too slow per input (the property tests
//! link mutated registries instead).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::abort_on_own_panics();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("registry.csv");
    std::fs::write(&p, data).unwrap();
    let mut r = tpmap::link::Records::default();
    if let Err(e) = r.push_csv(&p) {
        assert!(e.to_string().contains("registry.csv"));
    }
});
