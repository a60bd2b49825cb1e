//! A link registry (CSV bytes): read, or an error naming the file.
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
    let p = dir.path().join("registry.csv");
    std::fs::write(&p, data).unwrap();
    let mut r = tpmap::link::Records::default();
    // Reading and normalising only: a link job trains on at least 100,000 random pairs, far too
    // slow per input (the property tests link mutated registries instead).
    if let Err(e) = r.push_csv(&p) {
        assert!(e.to_string().contains("registry.csv"));
    }
});
