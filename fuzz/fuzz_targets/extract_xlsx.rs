//! An extract's households file (.xlsx bytes) with the corpus base persons: every row accounted for.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A panic inside polars or calamine on a damaged file is turned into an error by tpmap
    // (diagnostics::foreign): keep libFuzzer's abort for every other panic only.
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !tpmap::diagnostics::in_foreign_code() {
                default(info);
                std::process::abort();
            }
        }));
    });
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("households.xlsx");
    std::fs::write(&h, data).unwrap();
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/_base/persons.csv");
    if let Ok(got) = tpmap::ingest::ingest(&h, &p, &Default::default()) {
        assert!(got.report.households.reconciles() && got.report.persons.reconciles());
    }
});
