//! The dirty-input corpus (`tests/corpus/`, written by `scripts/make_corpus.py`): every case runs
//! the `tpmap` program and must end as its entry says — exit 0, 1 or 2, never a panic (101) or an
//! abort (134) — and, whatever it is, keep tpmap's promises:
//!
//! - nothing lost: in every ingest report, accepted + rejected = input rows, and the rejects file
//!   holds exactly the rejected rows;
//! - nothing leaked: no citizen ID of the case (`canaries`) in standard output or error, nor in
//!   any output file but the accepted extract (`households.parquet`, `persons.parquet`) and the
//!   rejected rows — in digits, dashed or Thai digits;
//! - nothing escapes: the working folder holds `--out` and nothing else (no temporary folder left,
//!   no file written beside or above it);
//! - all or nothing: a failed run leaves no `--out` folder;
//! - no live formula: no CSV cell of any output starts like a spreadsheet formula.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::{files_under, root};

#[derive(Deserialize)]
struct Corpus {
    canaries: Vec<String>,
    case: Vec<Case>,
}

#[derive(Deserialize, Clone)]
struct Case {
    id: String,
    class: String,
    why: String,
    args: Vec<String>,
    exit: i32,
    stderr: Option<String>,
    /// Run with `--reveal-ids`: output files may hold IDs (messages still may not).
    #[serde(default)]
    reveal: bool,
    #[serde(default)]
    expect: BTreeMap<String, toml::Value>,
}

struct Outcome {
    case: Case,
    failures: Vec<String>,
}

fn corpus() -> Corpus {
    let text = std::fs::read_to_string(root().join("tests/corpus/cases.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

/// The forms a citizen ID can take in text.
fn forms(id: &str) -> Vec<String> {
    let d: Vec<char> = id.chars().collect();
    let dashed = format!(
        "{}-{}-{}-{}-{}",
        d[0],
        d[1..5].iter().collect::<String>(),
        d[5..10].iter().collect::<String>(),
        d[10..12].iter().collect::<String>(),
        d[12]
    );
    let thai: String = id.chars().map(|c| char::from_u32(0x0E50 + c.to_digit(10).unwrap()).unwrap()).collect();
    vec![id.to_string(), dashed, thai]
}

/// Output files that may carry citizen IDs: the accepted extract and the rejected rows.
fn may_hold_ids(rel: &Path) -> bool {
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    rel.parent().is_none_or(|p| p.as_os_str().is_empty())
        && matches!(name, "households.parquet" | "persons.parquet" | "rejected_households.csv" | "rejected_persons.csv")
}

/// The text of an output file for the leak check: text files as they are, Parquet files as every
/// value of every column.
fn text_of(path: &Path) -> String {
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => {
            use polars::prelude::*;
            let df = ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap();
            let mut s = String::new();
            for c in df.columns() {
                s.push_str(c.name());
                s.push('\n');
                let text = c.cast(&DataType::String).unwrap();
                for v in text.str().unwrap().iter().flatten() {
                    s.push_str(v);
                    s.push('\n');
                }
            }
            s
        }
        Some("xlsx") => String::new(), // written by rust_xlsxwriter from the same frames as the CSVs
        _ => String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned(),
    }
}

fn run_case(c: &Case, canaries: &[String], bin: &Path) -> Outcome {
    let work = tempfile::tempdir().unwrap();
    let run = run_checked(c, canaries, bin, work.path(), &[]);
    let mut failures = run.failures;
    if run.code != c.exit {
        failures.push(format!(
            "exit {}, expected {}; stderr: {}",
            run.code,
            c.exit,
            run.stderr.chars().take(600).collect::<String>()
        ));
    }
    if let Some(want) = &c.stderr
        && !run.stderr.contains(want.as_str())
    {
        failures.push(format!("stderr lacks '{want}': {}", run.stderr.chars().take(600).collect::<String>()));
    }
    Outcome { case: c.clone(), failures }
}

/// How a case's command ended, and the promises it broke (the exit code and message are the
/// caller's to judge).
struct Checked {
    failures: Vec<String>,
    code: i32,
    stderr: String,
}

/// Runs case `c` in folder `work` (its output in `work/out`), with `extra` arguments after the
/// command's name, and checks every promise of the corpus but its exit code and message.
fn run_checked(c: &Case, canaries: &[String], bin: &Path, work: &Path, extra: &[&str]) -> Checked {
    let mut failures = Vec::new();
    let case_dir = root().join("tests/corpus").join(&c.id);
    let out = work.join("out");
    let mut args: Vec<String> = c
        .args
        .iter()
        .map(|a| a.replace("{case}", &case_dir.display().to_string()).replace("{out}", &out.display().to_string()))
        .collect();
    let at = 1.min(args.len());
    args.splice(at..at, extra.iter().map(|a| a.to_string()));
    let run = Command::new(bin)
        .args(&args)
        .current_dir(work)
        .env_remove("TPMAP_PSEUDONYM_KEY")
        .env_remove("TPMAP_TRACE")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let code = run.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let mut fail = |m: String| failures.push(m);
    for bad in ["panicked", "internal error", "stack overflow", "memory allocation", "RUST_BACKTRACE"] {
        if stderr.contains(bad) {
            fail(format!("stderr says '{bad}'"));
        }
    }
    let all_forms: Vec<String> = canaries.iter().flat_map(|id| forms(id)).collect();
    for f in &all_forms {
        if stderr.contains(f.as_str()) || stdout.contains(f.as_str()) {
            fail("a citizen ID reached standard output or error".into());
        }
    }
    // Nothing beside --out: no temporary folder left, no escape.
    let beside: Vec<String> = std::fs::read_dir(work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "out")
        .collect();
    if !beside.is_empty() {
        fail(format!("files beside --out: {beside:?}"));
    }
    for escaped in ["/tmp/tpmap-escape", "/tmp/tpmap-escape.csv"] {
        if Path::new(escaped).exists() {
            fail(format!("{escaped} was written"));
        }
    }
    if code != 0 && out.exists() {
        fail("a failed run left an output folder".into());
    }
    if out.exists() {
        for path in files_under(&out) {
            let rel = path.strip_prefix(&out).unwrap().to_path_buf();
            if !c.reveal && !may_hold_ids(&rel) {
                let text = text_of(&path);
                if all_forms.iter().any(|f| text.contains(f.as_str())) {
                    fail(format!("a citizen ID in {}", rel.display()));
                }
            }
            if path.extension().is_some_and(|e| e == "csv") {
                let bytes = std::fs::read(&path).unwrap();
                let body: Vec<u8> = {
                    // Skip the `#` preamble lines.
                    let mut rest = &bytes[..];
                    while rest.first() == Some(&b'#') {
                        let n = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
                        rest = &rest[n..];
                    }
                    rest.to_vec()
                };
                let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(&body[..]);
                for rec in rdr.records() {
                    match rec {
                        Ok(rec) => {
                            if let Some(cell) = rec.iter().find(|v| tpmap::frame::is_formula_like(v)) {
                                fail(format!("a live formula in {}: {cell:?}", rel.display()));
                                break;
                            }
                        }
                        Err(e) => {
                            fail(format!("{} is not well-formed CSV: {e}", rel.display()));
                            break;
                        }
                    }
                }
            }
        }
        check_report(&out, c, &mut fail);
    }
    Checked { failures, code, stderr }
}

/// Rows conserved in every report, and the case's own expectations.
fn check_report(out: &Path, c: &Case, fail: &mut dyn FnMut(String)) {
    let report: Option<serde_json::Value> =
        std::fs::read_to_string(out.join("report.json")).ok().map(|t| serde_json::from_str(&t).unwrap());
    if let Some(r) = &report {
        for table in ["households", "persons"] {
            let t = &r["ingest"][table];
            let (input, acc, rej) = (t["input_rows"].as_u64(), t["accepted"].as_u64(), t["rejected"].as_u64());
            match (input, acc, rej) {
                (Some(i), Some(a), Some(j)) if a + j == i => {
                    let rejects = out.join(format!("rejected_{table}.csv"));
                    let rows = csv::Reader::from_path(&rejects).map(|mut r| r.records().count() as u64).unwrap_or(0);
                    if rows != j {
                        fail(format!("{table}: {j} rejected but {rows} rows in the rejects file"));
                    }
                }
                _ => fail(format!("{table}: rows not conserved ({input:?} in, {acc:?} accepted, {rej:?} rejected)")),
            }
        }
    }
    let link: Option<serde_json::Value> =
        std::fs::read_to_string(out.join("link.json")).ok().map(|t| serde_json::from_str(&t).unwrap());
    for (key, want) in &c.expect {
        let got: Option<String> = match key.as_str() {
            "link_records" => link.as_ref().map(|l| l["records"].to_string()),
            "link_unreadable" => link.as_ref().map(|l| {
                l["unreadable"]
                    .as_array()
                    .map_or(0, |a| a.iter().map(|p| p[1].as_u64().unwrap_or(0)).sum::<u64>())
                    .to_string()
            }),
            "entities_rows" => {
                csv::Reader::from_path(out.join("entities.csv")).ok().map(|mut r| r.records().count().to_string())
            }
            k => {
                let (table, what) = k.split_once('_').unwrap();
                report.as_ref().map(|r| {
                    let t = &r["ingest"][table];
                    match what {
                        "rejected" => t["rejected"].to_string(),
                        "input" => t["input_rows"].to_string(),
                        "encoding" => t["encoding"].as_str().unwrap_or("").split(' ').next().unwrap_or("").to_string(),
                        "reason" => {
                            let want = want.as_str().unwrap();
                            if t["by_reason"].get(want).is_some() {
                                want.to_string()
                            } else {
                                format!("{}", t["by_reason"])
                            }
                        }
                        _ => panic!("unknown expectation {k}"),
                    }
                })
            }
        };
        let want_text = match want {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if got.as_deref() != Some(want_text.as_str()) {
            fail(format!("{key}: got {got:?}, expected {want_text}"));
        }
    }
}

#[test]
fn dirty_corpus_keeps_every_promise() {
    let corpus = corpus();
    assert!(corpus.case.len() >= 80, "the corpus has {} cases", corpus.case.len());
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tpmap"));
    let cases: Vec<&Case> = corpus.case.iter().collect();
    assert_all_kept(&cases, |c| run_case(c, &corpus.canaries, &bin).failures);
}

/// Runs `check` on every case on two workers (each case runs processes of its own) and fails
/// with every case whose check found something, its failures listed.
fn assert_all_kept(cases: &[&Case], check: impl Fn(&Case) -> Vec<String> + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let outcomes = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&c) = cases.get(i) else { break };
                    let failures = check(c);
                    outcomes.lock().unwrap().push(Outcome { case: c.clone(), failures });
                }
            });
        }
    });
    let outcomes = outcomes.into_inner().unwrap();
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.failures.is_empty())
        .map(|o| format!("{} ({}: {}):\n    {}", o.case.id, o.case.class, o.case.why, o.failures.join("\n    ")))
        .collect();
    assert!(failed.is_empty(), "{} of {} corpus cases failed:\n{}", failed.len(), outcomes.len(), failed.join("\n"));
}

/// Every `ingest` and `run` case again with `--partition province` (the mode a national extract
/// is read in by default: a routing pass, then a wave per province) and with `--max-memory 1GiB`
/// (every province in one wave): the same promises, and the
/// whole run's ending — the same exit code (no case is refused: welfare registries and
/// beneficiary lists are linked province by province, and within a budget a wave at a time),
/// and when both succeed the same outputs: files byte for byte, the Parquet ones row for row (in any order: a
/// file out of province order is written a province at a time), `report.json` apart from its
/// times and the waves.
#[test]
fn dirty_corpus_partitioned_keeps_every_promise_and_ends_as_the_whole_run() {
    let corpus = corpus();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tpmap"));
    let cases: Vec<&Case> =
        corpus.case.iter().filter(|c| matches!(c.args.first().map(String::as_str), Some("ingest" | "run"))).collect();
    assert!(cases.len() >= 100, "{} cases", cases.len());
    let compared = std::sync::atomic::AtomicUsize::new(0);
    assert_all_kept(&cases, |c| {
        let w = tempfile::tempdir().unwrap();
        let whole = run_checked(c, &corpus.canaries, &bin, w.path(), &[]);
        let mut failures = Vec::new();
        // One province a wave; and all in one wave under a budget.
        for extra in [&["--partition", "province"][..], &["--max-memory", "1GiB"][..]] {
            let p = tempfile::tempdir().unwrap();
            let parts = run_checked(c, &corpus.canaries, &bin, p.path(), extra);
            let mode = extra.join(" ");
            failures.extend(parts.failures.iter().map(|f| format!("{mode}: {f}")));
            if parts.code == 1 && parts.stderr.contains("a partitioned run does not") {
                failures.push(format!("{mode}: refused: {}", parts.stderr.chars().take(400).collect::<String>()));
            } else if parts.code != whole.code {
                failures.push(format!(
                    "{mode}: exit {}, whole {}; its stderr: {}; whole stderr: {}",
                    parts.code,
                    whole.code,
                    parts.stderr.chars().take(400).collect::<String>(),
                    whole.stderr.chars().take(400).collect::<String>()
                ));
            } else if whole.code == 0 {
                same_outputs(&w.path().join("out"), &p.path().join("out"), &mode, &mut failures);
                compared.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            } else if parts.stderr.replace(&*p.path().to_string_lossy(), "")
                != whole.stderr.replace(&*w.path().to_string_lossy(), "")
            {
                failures.push(format!(
                    "{mode}: another error: {}; whole {}",
                    parts.stderr.chars().take(400).collect::<String>(),
                    whole.stderr.chars().take(400).collect::<String>()
                ));
            }
        }
        failures
    });
    // Each successful case ran every way.
    let compared = compared.into_inner();
    assert!(compared >= 100, "{compared} runs compared");
}

/// Records in `failures`, after `mode`, where the output folders `whole` and `parts` differ (see
/// [`dirty_corpus_partitioned_keeps_every_promise_and_ends_as_the_whole_run`]).
fn same_outputs(whole: &Path, parts: &Path, mode: &str, failures: &mut Vec<String>) {
    let rel = |dir: &Path| -> Vec<PathBuf> {
        files_under(dir).iter().map(|f| f.strip_prefix(dir).unwrap().to_path_buf()).collect()
    };
    let files = rel(whole);
    if files != rel(parts) {
        failures.push(format!("{mode}: files differ: whole {files:?}, partitioned {:?}", rel(parts)));
        return;
    }
    for f in &files {
        let (a, b) = (whole.join(f), parts.join(f));
        let same = match f.extension().and_then(|e| e.to_str()) {
            Some("parquet") => parquet_rows(&a) == parquet_rows(&b),
            // A workbook states when it was made (tests/it/partitioned.rs compares its parts).
            Some("xlsx") => true,
            _ if f.as_os_str() == "report.json" => report_without_times(&a) == report_without_times(&b),
            _ => std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        };
        if !same {
            failures.push(format!("{mode}: {} differs", f.display()));
        }
    }
}

/// A Parquet file's schema and its rows as text, the rows sorted.
fn parquet_rows(path: &Path) -> (String, Vec<String>) {
    use polars::prelude::*;
    let df = ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap();
    let columns: Vec<Vec<Option<String>>> = df
        .columns()
        .iter()
        .map(|c| c.cast(&DataType::String).unwrap().str().unwrap().iter().map(|v| v.map(str::to_string)).collect())
        .collect();
    let mut rows: Vec<String> =
        (0..df.height()).map(|i| format!("{:?}", columns.iter().map(|c| &c[i]).collect::<Vec<_>>())).collect();
    rows.sort_unstable();
    (format!("{:?}", df.schema()), rows)
}

/// `report.json` without what each run has of its own: its times (the linkage's too), its waves,
/// the plan's folder.
fn report_without_times(path: &Path) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    if let Some(o) = v.as_object_mut() {
        o.remove("seconds");
        o.remove("partition");
    }
    if let Some(plan) = v.get_mut("plan").and_then(|p| p.as_object_mut()) {
        plan.remove("seconds");
        plan.remove("dir");
    }
    if let Some(link) = v.get_mut("welfare_link").and_then(|l| l.as_object_mut()) {
        link.remove("seconds");
    }
    v
}

/// Files of an output folder (other than the accepted extract and the rejected rows) that hold
/// any of `forms`.
fn leaking_files(out: &Path, forms: &[String]) -> Vec<String> {
    if !out.exists() {
        return Vec::new();
    }
    files_under(out)
        .into_iter()
        .filter(|p| !may_hold_ids(p.strip_prefix(out).unwrap()))
        .filter(|p| {
            let text = text_of(p);
            forms.iter().any(|f| text.contains(f.as_str()))
        })
        .map(|p| p.strip_prefix(out).unwrap().display().to_string())
        .collect()
}

/// Reads a CSV of the base: its `#` preamble lines and its records.
fn read_base_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let preamble: Vec<String> = text.lines().take_while(|l| l.starts_with('#')).map(String::from).collect();
    let body: String = text.lines().skip(preamble.len()).map(|l| format!("{l}\n")).collect();
    let rows = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (preamble, rows)
}

fn write_base_csv(path: &Path, preamble: &[String], rows: &[Vec<String>]) {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    for r in rows {
        w.write_record(r).unwrap();
    }
    let mut text = preamble.iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes();
    text.extend(w.into_inner().unwrap());
    std::fs::write(path, text).unwrap();
}

/// A citizen ID placed in any field of any input of the main job — each column of each CSV, in a
/// data row and in the header, and the catalogue's texts — never reaches standard output or error,
/// nor any output but the accepted extract and the rejected rows. (The household key columns are
/// left alone: a household ID is the key the user gives, carried into the score outputs.)
#[test]
fn an_id_in_any_field_never_leaks() {
    let base = root().join("tests/corpus/_base");
    let canary = "1101700230503";
    let forms_all = forms(canary);
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tpmap"));
    // (description, file, row (0 = header), column or catalogue text to replace)
    let mut variants: Vec<(String, String, usize, usize)> = Vec::new();
    for file in ["households.csv", "persons.csv", "welfare_registry.csv", "served_list.csv", "served.csv"] {
        let (_, rows) = read_base_csv(&base.join(file));
        for (c, name) in rows[0].iter().enumerate() {
            if name == "household_id" {
                continue;
            }
            for row in [0, 1] {
                variants.push((
                    format!("{file}: {} of column '{name}'", if row == 0 { "header" } else { "row 1" }),
                    file.into(),
                    row,
                    c,
                ));
            }
        }
    }
    let catalogue = std::fs::read_to_string(base.join("catalogue.toml")).unwrap();
    let texts = [
        "Corpus catalogue (ILLUSTRATIVE)",
        "Ministry of Social Development",
        "ซ่อมบ้าน (ตัวอย่าง)",
        "Department of Social Development",
    ];
    for (k, t) in texts.iter().enumerate() {
        assert!(catalogue.contains(t), "the base catalogue has '{t}'");
        variants.push((format!("catalogue.toml: '{t}'"), "catalogue.toml".into(), usize::MAX, k));
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((what, file, row, c)) = variants.get(i) else { break };
                    let work = tempfile::tempdir().unwrap();
                    let dir = work.path().join("in");
                    std::fs::create_dir(&dir).unwrap();
                    for e in std::fs::read_dir(&base).unwrap() {
                        let p = e.unwrap().path();
                        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
                    }
                    // Alternate the plain and the dashed form of the ID.
                    let planted = if i.is_multiple_of(2) { forms_all[0].clone() } else { forms_all[1].clone() };
                    if file == "catalogue.toml" {
                        let text = catalogue.replacen(texts[*c], &format!("{} {planted}", texts[*c]), 1);
                        std::fs::write(dir.join(file), text).unwrap();
                    } else {
                        let (pre, mut rows) = read_base_csv(&base.join(file));
                        rows[*row][*c] = planted.clone();
                        write_base_csv(&dir.join(file), &pre, &rows);
                    }
                    let out = work.path().join("out");
                    let run = Command::new(&bin)
                        .args(["run", dir.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"])
                        .env_remove("TPMAP_PSEUDONYM_KEY")
                        .output()
                        .unwrap();
                    let code = run.status.code().unwrap_or(-1);
                    let said =
                        format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
                    let mut problems = Vec::new();
                    if !(code == 0 || code == 1) || said.contains("internal error") {
                        problems.push(format!("exit {code}: {}", said.chars().take(300).collect::<String>()));
                    }
                    if forms_all.iter().any(|f| said.contains(f.as_str())) {
                        problems.push("the ID reached standard output or error".into());
                    }
                    let leaks = leaking_files(&out, &forms_all);
                    if !leaks.is_empty() {
                        problems.push(format!("the ID reached {leaks:?}"));
                    }
                    if !problems.is_empty() {
                        failures.lock().unwrap().push(format!("{what}: {}", problems.join("; ")));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(variants.len() > 100, "{} variants", variants.len());
    assert!(
        failures.is_empty(),
        "{} of {} placements leaked:\n{}",
        failures.len(),
        variants.len(),
        failures.join("\n")
    );
}
