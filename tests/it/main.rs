//! Integration tests, compiled into one binary to keep link time down (polars is large).

mod corpus;
mod formats;
mod golden;
mod hostile;
mod link;
mod measures;
mod panel;
mod partial;
mod partitioned;
mod plan;
mod published;
mod reconcile;
mod validation;

use std::path::{Path, PathBuf};

/// The repository's root, read at run time: a test binary reused from another checkout of the
/// same sources (a shared `CARGO_TARGET_DIR`) must not read that checkout's files.
pub fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The repository's `data-samples/` folder.
pub fn samples() -> PathBuf {
    root().join("data-samples")
}

/// Every file below `dir`, sorted (full paths).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out.sort();
    out
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
