//! The main job on `data-samples/`, compared file by file with a stored copy
//! (`tests/golden/run/`, each file gzip-compressed): a refactoring that changes an output, by a
//! byte, fails here. Timings are the only thing left out (`seconds` keys of `report.json`, the
//! creation time inside `report.xlsx`).
//!
//! After an intended change, rewrite the copy with `TPMAP_UPDATE_GOLDEN=1 cargo test --profile ci
//! --all-features --test it golden` and say in the commit what changed and why.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::{files_under, root, samples};

/// Files below `dir`, relative to it.
fn relative_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir).into_iter().map(|p| p.strip_prefix(dir).unwrap().to_path_buf()).collect()
}

/// Drops every timing from a report: keys named `seconds` or ending in `_seconds`.
fn without_timings(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|k, _| k != "seconds" && !k.ends_with("_seconds"));
            m.values_mut().for_each(without_timings);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(without_timings),
        _ => {}
    }
}

/// The comparable content of an output file: paths of this run's folders replaced by `{out}`
/// and `{samples}` in text files.
fn content(path: &Path, bytes: Vec<u8>, folders: &[(&Path, &str)]) -> Vec<u8> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let bytes = if [".json", ".csv", ".html"].iter().any(|e| name.ends_with(e)) {
        let mut text = String::from_utf8(bytes).unwrap();
        for (dir, mark) in folders {
            // JSON escapes nothing in these paths; the plain and the JSON form are the same.
            text = text.replace(dir.to_str().unwrap(), mark);
        }
        text.into_bytes()
    } else {
        bytes
    };
    if name.ends_with(".json") {
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        without_timings(&mut v);
        return serde_json::to_vec_pretty(&v).unwrap();
    }
    if name.ends_with(".xlsx") {
        // Every part of the workbook but its document properties (which hold the creation time).
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut out = Vec::new();
        let mut names: Vec<String> = z.file_names().map(String::from).collect();
        names.sort();
        for n in names.iter().filter(|n| !n.starts_with("docProps/")) {
            out.extend_from_slice(n.as_bytes());
            z.by_name(n).unwrap().read_to_end(&mut out).unwrap();
        }
        return out;
    }
    bytes
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn ungz(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn main_job_outputs_match_the_stored_copy() {
    let out = tempfile::tempdir().unwrap();
    let mut opts = tpmap::pipeline::RunOptions::for_dir(&samples()).unwrap();
    if let Some(p) = opts.plan.as_mut() {
        p.options.key = tpmap::ids::PseudonymKey::public_default();
    }
    tpmap::pipeline::run(&opts, out.path(), &tpmap::pipeline::Silent).unwrap();
    let golden = root().join("tests/golden/run");
    let made = relative_files(out.path());
    let samples_dir = samples();
    let folders: Vec<(&Path, &str)> = vec![(out.path(), "{out}"), (samples_dir.as_path(), "{samples}")];
    if std::env::var_os("TPMAP_UPDATE_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(&golden);
        for rel in &made {
            let bytes = content(rel, std::fs::read(out.path().join(rel)).unwrap(), &folders);
            let dest = golden.join(format!("{}.gz", rel.display()));
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(dest, gz(&bytes)).unwrap();
        }
        return;
    }
    let stored: Vec<PathBuf> = relative_files(&golden)
        .into_iter()
        .map(|p| PathBuf::from(p.to_str().unwrap().strip_suffix(".gz").unwrap()))
        .collect();
    assert_eq!(made, stored, "the main job writes other files than the stored copy holds");
    let mut differ = Vec::new();
    for rel in &made {
        let got = content(rel, std::fs::read(out.path().join(rel)).unwrap(), &folders);
        let want = ungz(&std::fs::read(golden.join(format!("{}.gz", rel.display()))).unwrap());
        if got != want {
            differ.push(rel.display().to_string());
        }
    }
    assert!(differ.is_empty(), "outputs differ from tests/golden/run: {differ:?}");
}
