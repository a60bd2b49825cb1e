//! Integration tests, compiled into one binary to keep link time down (polars is large).

mod formats;
mod measures;
mod published;
mod reconcile;
mod validation;

use std::path::{Path, PathBuf};

/// The repository's `data-samples/` folder.
pub fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data-samples")
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
