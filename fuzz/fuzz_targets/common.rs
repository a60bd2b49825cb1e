//! What the file targets share.

/// A panic inside polars or calamine on a damaged file is turned into an error by tpmap
/// (`diagnostics::foreign`): keep libFuzzer's abort for every other panic only.
pub fn abort_on_own_panics() {
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
}

/// `data` as the households file (`households.<ext>`) with the corpus base persons: read, and
/// if read, every row accounted for.
#[allow(dead_code)]
pub fn households(data: &[u8], ext: &str) {
    abort_on_own_panics();
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join(format!("households.{ext}"));
    std::fs::write(&h, data).unwrap();
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/_base/persons.csv");
    if let Ok(got) = tpmap::ingest::ingest(&h, &p, &Default::default()) {
        assert!(got.report.households.reconciles() && got.report.persons.reconciles());
    }
}
