//! Partitioned runs (`tpmap::pipeline::run_partitioned`, `--partition province`): read a few
//! provinces at a time, they write what a whole run writes — the same measures, tables, rejected
//! rows and report figures, byte for byte; the same accepted rows, scores and deprivations
//! (Parquet compared as frames, rows in the same order when the file is in province order).

use std::path::Path;

use polars::prelude::*;
use tpmap::pipeline::{RunOptions, Silent, run, run_partitioned};

use crate::{files_under, samples};

/// Runs `households`/`persons` whole and partitioned (with `budget`) and asserts the outputs
/// agree; `sort` compares the Parquet outputs sorted by household (a file not in province order).
fn same_outputs(households: &Path, persons: &Path, budget: Option<u64>, sort: bool) -> serde_json::Value {
    same_outputs_of(&RunOptions::new(households, persons), budget, sort)
}

/// [`same_outputs`] with options of one's own (a plan).
fn same_outputs_of(o: &RunOptions, budget: Option<u64>, sort: bool) -> serde_json::Value {
    let tmp = tempfile::tempdir().unwrap();
    same_outputs_in(o, budget, sort, tmp.path())
}

/// [`same_outputs_of`], writing the runs to `dir`'s `whole` and `parts`.
fn same_outputs_in(o: &RunOptions, budget: Option<u64>, sort: bool, dir: &Path) -> serde_json::Value {
    let (whole, parts) = (dir.join("whole"), dir.join("parts"));
    let done = run(o, &whole, &Silent).unwrap();
    let p = run_partitioned(o, budget, &parts, &Silent).unwrap();
    assert_eq!(done.measures.rows.len(), p.measures.rows.len());
    let rel = |dir: &Path| -> Vec<std::path::PathBuf> {
        files_under(dir).iter().map(|f| f.strip_prefix(dir).unwrap().to_path_buf()).collect()
    };
    let files = rel(&whole);
    assert_eq!(files, rel(&parts));
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let (a, b) = (whole.join(f), parts.join(f));
        if name.ends_with(".parquet") && !name.starts_with("measures") {
            let read = |p: &Path| {
                let df = ParquetReader::new(std::fs::File::open(p).unwrap()).finish().unwrap();
                // The plan's files are in input order in both runs.
                if sort && df.height() > 0 && !f.starts_with("plan") {
                    let by: Vec<&str> = if name == "persons.parquet" {
                        vec!["household_id", "citizen_id", "first_name"]
                    } else {
                        vec!["household_id"]
                    };
                    df.sort(by, SortMultipleOptions::default()).unwrap()
                } else {
                    df
                }
            };
            let (x, y) = (read(&a), read(&b));
            assert!(x.equals_missing(&y), "{name} differs");
        } else if name == "report.json" {
            let read = |p: &Path| {
                let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
                v.as_object_mut().unwrap().remove("seconds");
                // The plan's time and folder (each run's own).
                if let Some(plan) = v["plan"].as_object_mut() {
                    assert!(plan.remove("seconds").is_some() && plan.remove("dir").is_some());
                }
                if let Some(link) = v["welfare_link"].as_object_mut() {
                    assert!(link.remove("seconds").is_some());
                }
                v
            };
            let (mut x, mut y) = (read(&a), read(&b));
            let waves = y.as_object_mut().unwrap().remove("partition").expect("a partitioned run says so");
            assert!(x.as_object_mut().unwrap().remove("partition").is_none());
            assert_eq!(x, y, "report.json differs");
            return_waves(&waves, &x);
        } else if name.ends_with(".xlsx") {
            // A workbook states when it was made: every part but that one the same.
            assert_eq!(workbook_parts(&a), workbook_parts(&b), "{name} differs");
        } else {
            assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(), "{name} differs");
        }
    }
    serde_json::to_value(&p.report).unwrap()
}

/// A workbook's parts (name and bytes), without `docProps/core.xml` (its creation time).
#[cfg(feature = "xlsx")]
fn workbook_parts(path: &Path) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut zip = ::zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut parts = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        if f.name() == "docProps/core.xml" {
            continue;
        }
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        parts.push((f.name().to_string(), bytes));
    }
    assert!(parts.len() > 3, "a workbook has its parts");
    parts
}

/// Without the `xlsx` feature no workbook is written.
#[cfg(not(feature = "xlsx"))]
fn workbook_parts(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// The waves cover every input row once.
fn return_waves(partition: &serde_json::Value, report: &serde_json::Value) {
    let waves = partition["waves"].as_array().unwrap();
    let sum = |k: &str| waves.iter().map(|w| w[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("household_rows"), report["ingest"]["households"]["input_rows"].as_u64().unwrap());
    assert_eq!(sum("person_rows"), report["ingest"]["persons"]["input_rows"].as_u64().unwrap());
}

fn waves(report: &serde_json::Value) -> usize {
    report["partition"]["waves"].as_array().unwrap().len()
}

#[test]
fn samples_partitioned_are_the_whole_run() {
    let s = samples();
    // One province a wave (four), and all in one wave.
    let r = same_outputs(&s.join("households.csv"), &s.join("persons.csv"), None, false);
    assert_eq!(waves(&r), 4);
    let r = same_outputs(&s.join("households.parquet"), &s.join("persons.parquet"), Some(u64::MAX), false);
    assert_eq!(waves(&r), 1);
}

#[test]
fn dirty_samples_partitioned_reject_the_same_rows() {
    let d = samples().join("dirty");
    let r = same_outputs(&d.join("households.csv"), &d.join("persons.csv"), None, false);
    // Rows naming no readable village or household make a wave of their own.
    assert_eq!(r["partition"]["waves"][0]["provinces"][0], "00");
    assert!(r["ingest"]["households"]["rejected"].as_u64().unwrap() > 0);
}

/// A CSV file's lines, to change cells of: its header is the first line not starting with `#`.
struct CsvLines {
    lines: Vec<String>,
    head: usize,
}

impl CsvLines {
    fn read(path: &Path) -> CsvLines {
        let lines: Vec<String> = std::fs::read_to_string(path).unwrap().lines().map(str::to_string).collect();
        let head = lines.iter().position(|l| !l.starts_with('#')).unwrap();
        CsvLines { lines, head }
    }

    /// The position of column `name`.
    fn col(&self, name: &str) -> usize {
        self.lines[self.head].split(',').position(|c| c == name).unwrap()
    }

    /// The lines holding data rows.
    fn data(&self) -> std::ops::Range<usize> {
        self.head + 1..self.lines.len()
    }

    /// Line `i`'s cell in column `col`.
    fn cell(&self, i: usize, col: usize) -> &str {
        self.lines[i].split(',').nth(col).unwrap()
    }

    fn set(&mut self, i: usize, col: usize, value: &str) {
        let mut cells: Vec<&str> = self.lines[i].split(',').collect();
        cells[col] = value;
        self.lines[i] = cells.join(",");
    }

    fn write(&self, path: &Path) {
        std::fs::write(path, self.lines.join("\n") + "\n").unwrap();
    }
}

/// Reverses the data rows of a CSV file (keeping its `#` notice and header lines).
fn reversed(from: &Path, to: &Path) {
    let text = std::fs::read_to_string(from).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let head = lines.iter().position(|l| !l.starts_with('#')).unwrap() + 1;
    lines[head..].reverse();
    std::fs::write(to, lines.join("\n") + "\n").unwrap();
}

#[test]
fn rows_out_of_province_order_give_the_same_measures() {
    let tmp = tempfile::tempdir().unwrap();
    let s = samples();
    let (h, p) = (tmp.path().join("households.csv"), tmp.path().join("persons.csv"));
    reversed(&s.join("households.csv"), &h);
    reversed(&s.join("persons.csv"), &p);
    let r = same_outputs(&h, &p, None, true);
    assert_eq!(waves(&r), 4);
}

#[test]
fn a_partial_birth_date_in_a_later_province_makes_the_column_text_in_both_runs() {
    // Whole dates in the first waves, one birth date without its day in the last province: the
    // partitioned run rewrote its earlier row groups (it stopped on polars' statistics error).
    let tmp = tempfile::tempdir().unwrap();
    let s = samples();
    let mut csv = CsvLines::read(&s.join("persons.csv"));
    let col = csv.col("birth_date");
    // The last person born on a 15th: an unknown day counts as the 15th, so the age agrees.
    let last = csv.data().rev().find(|&i| csv.cell(i, col).ends_with("-15")).unwrap();
    assert!(last > csv.lines.len() - 2000, "in the last province");
    let whole = csv.cell(last, col).to_string();
    csv.set(last, col, &format!("{}-00", &whole[..7]));
    let (h, p) = (s.join("households.csv"), tmp.path().join("persons.csv"));
    csv.write(&p);
    let dir = tmp.path().join("runs");
    let r = same_outputs_in(&RunOptions::new(&h, &p), None, false, &dir);
    assert_eq!(waves(&r), 4);
    assert_eq!(
        r["ingest"]["persons"]["rejected"],
        0,
        "{}",
        std::fs::read_to_string(dir.join("whole/rejected_persons.csv")).unwrap()
    );
    let read = |run: &str| {
        let f = std::fs::File::open(dir.join(run).join("persons.parquet")).unwrap();
        ParquetReader::new(f).finish().unwrap()
    };
    for run in ["whole", "parts"] {
        let df = read(run);
        let birth = df.column("birth_date").unwrap().str().unwrap().clone();
        assert_eq!(birth.iter().filter(|b| b.is_some_and(|b| b.len() == 7)).count(), 1, "{run}: the partial date");
        assert!(birth.iter().any(|b| b == Some(&whole[..7])), "{run}: the partial date as written");
        assert!(birth.iter().filter(|b| b.is_some_and(|b| b.len() == 10)).count() > 8000, "{run}: whole dates");
    }
    // The partitioned run's output reads back with every person and the partial date.
    let opts = tpmap::ingest::IngestOptions::default();
    let again = tpmap::ingest::ingest(&dir.join("parts/households.parquet"), &dir.join("parts/persons.parquet"), &opts)
        .unwrap();
    assert_eq!(again.report.persons.rejected, 0, "{:?}", again.person_rejects);
    assert_eq!(again.extract.persons.birth_date.iter().filter(|d| d.is_some_and(|d| !d.is_complete())).count(), 1);
}

/// Writes SYNTHETIC households and persons of `provinces` to `dir`.
fn synthesize(dir: &Path, households: u64, seed: u64, provinces: &[u8], format: tpmap::synth::SynthFormat) {
    let opts = tpmap::synth::SynthOptions { households, seed, provinces: provinces.to_vec(), ..Default::default() };
    let synth = tpmap::synth::Synthesizer::new(opts).unwrap();
    tpmap::synth::write_dir(&synth, dir, format, &|_| {}).unwrap();
}

#[test]
fn synthetic_provinces_in_waves_under_a_budget() {
    // SYNTHETIC households in six provinces, read in waves of several provinces.
    let tmp = tempfile::tempdir().unwrap();
    synthesize(tmp.path(), 6_000, 7, &[10, 11, 12, 30, 50, 90], tpmap::synth::SynthFormat::Parquet);
    let (h, p) = (tmp.path().join("households.parquet"), tmp.path().join("persons.parquet"));
    let one = tpmap::ingest::partition::Split::read(&h, &p, &Default::default()).unwrap();
    let each = one.waves(None).unwrap();
    // Province 10 (Bangkok) has no village in TPMAP's 2561 tables: five provinces.
    assert_eq!(each.len(), 5);
    // A budget that holds about two provinces' rows.
    let largest = each.iter().map(|w| w.estimated_bytes()).max().unwrap();
    let budget = tpmap::ingest::partition::BYTES_FIXED + (1 << 20) + 2 * largest;
    let r = same_outputs(&h, &p, Some(budget), false);
    let n = waves(&r);
    assert!(n > 1 && n < 5, "{n} waves");
    // Room for two waves at once: one is written while the next is read.
    assert_eq!(r["partition"]["waves_in_flight"], 2);
    // With the sample catalogue, its per-amphoe caps made national ones that bind: the same plan.
    let text = std::fs::read_to_string(samples().join("catalogue.toml")).unwrap();
    assert!(text.contains("capacity = { per_amphoe = 5 }"));
    let catalogue = tmp.path().join("catalogue.toml");
    std::fs::write(&catalogue, text.replace("capacity = { per_amphoe = 5 }", "capacity = { total = 20 }")).unwrap();
    let runs = tmp.path().join("planned");
    let r = same_outputs_in(&with_catalogue(&h, &p, &catalogue), Some(budget), false, &runs);
    // The poor households go to a temporary file, not held across the waves: they leave the
    // waves their room (as many waves as without a plan).
    assert_eq!(waves(&r), n);
    assert!(
        declined(&runs.join("parts"), &["declined_capacity", "declined_budget"]) > 0,
        "a national cap or budget binds"
    );
    // Room for the largest wave alone: one wave at a time, as large as the budget allows.
    let r = same_outputs_in(&RunOptions::new(&h, &p), Some(budget - largest), false, &tmp.path().join("one"));
    assert_eq!(r["partition"]["waves_in_flight"], 1);
    assert!(waves(&r) > 1 && waves(&r) < 5, "{} waves", waves(&r));
    // Too small a budget: refused before any output, naming the option.
    let out = tmp.path().join("never");
    let e = run_partitioned(&RunOptions::new(&h, &p), Some(largest), &out, &Silent).err().unwrap().to_string();
    assert!(e.contains("--max-memory"), "{e}");
    assert!(!out.exists());
}

#[test]
fn synthetic_csv_out_of_province_order_read_by_the_waves_from_their_marks() {
    // SYNTHETIC households in six provinces as CSV, rows reversed (each wave's rows scattered
    // over the files), some persons' citizen IDs broken (rejected rows name their lines): the
    // waves read only the runs of rows holding theirs (more than one mark in both files), and
    // write what the whole run writes.
    let tmp = tempfile::tempdir().unwrap();
    let made = tmp.path().join("made");
    synthesize(&made, 20_000, 11, &[11, 12, 30, 50, 90, 96], tpmap::synth::SynthFormat::Csv);
    let (h, p) = (tmp.path().join("households.csv"), tmp.path().join("persons.csv"));
    reversed(&made.join("households.csv"), &h);
    let mut csv = CsvLines::read(&made.join("persons.csv"));
    assert!(csv.lines.len() > 40_000, "{} person lines", csv.lines.len());
    let id = csv.col("citizen_id");
    for i in csv.data().step_by(4_999) {
        csv.set(i, id, "1234567890123");
    }
    csv.write(&p);
    reversed(&p.clone(), &p);
    let r = same_outputs(&h, &p, None, true);
    assert_eq!(waves(&r), 6);
    assert!(r["ingest"]["persons"]["rejected"].as_u64().unwrap() >= 8);
}

/// The error of the whole run of `o` (into `dir`/whole) and of its partitioned run (into
/// `dir`/parts): the same, and the partitioned run leaves no folder. Returns it.
fn same_error(o: &RunOptions, dir: &Path) -> String {
    let whole = run(o, &dir.join("whole"), &Silent).err().unwrap().to_string();
    let parts = run_partitioned(o, None, &dir.join("parts"), &Silent).err().unwrap().to_string();
    assert_eq!(parts, whole);
    assert!(!dir.join("parts").exists(), "a failed partitioned run left its folder");
    whole
}

/// Plan options for the sample catalogue, with a fixed pseudonym key.
fn with_plan(households: &Path, persons: &Path) -> RunOptions {
    with_catalogue(households, persons, &samples().join("catalogue.toml"))
}

/// [`with_plan`] with another catalogue.
fn with_catalogue(households: &Path, persons: &Path, catalogue: &Path) -> RunOptions {
    let mut o = RunOptions::new(households, persons);
    let key = tpmap::ids::PseudonymKey::from_bytes(b"test key of the partitioned plans").unwrap();
    o.plan = Some(tpmap::pipeline::PlanInputs {
        catalogue: catalogue.to_path_buf(),
        served: None,
        served_list: None,
        options: tpmap::plan::PlanOptions { key, ..Default::default() },
        reveal_ids: false,
        suppress: tpmap::report::DEFAULT_SUPPRESS,
        optimize: None,
        compare: None,
    });
    o
}

/// Units declined for `reasons` (columns of `plan/programs.csv` of a run in `out`, such as
/// `declined_capacity`), summed over the programs.
fn declined(out: &Path, reasons: &[&str]) -> u64 {
    let programs = CsvLines::read(&out.join("plan").join("programs.csv"));
    let at: Vec<usize> = reasons.iter().map(|r| programs.col(r)).collect();
    programs
        .data()
        .flat_map(|i| at.iter().map(move |&c| (i, c)))
        .map(|(i, c)| programs.cell(i, c).parse::<u64>().unwrap())
        .sum()
}

#[test]
fn a_plan_over_the_provinces_is_the_whole_runs() {
    let s = samples();
    // Province by province (four waves), with a what-if over every poor household: the plan's
    // files, its part of report.json and report.html are the whole run's, byte for byte.
    let mut o = with_plan(&s.join("households.csv"), &s.join("persons.csv"));
    if let Some(p) = &mut o.plan {
        p.compare =
            Some(tpmap::pipeline::Compare { population: Some(tpmap::plan::Population::Poor), ..Default::default() });
    }
    let r = same_outputs_of(&o, None, false);
    assert_eq!(waves(&r), 4);
    assert!(r["plan"]["summary"]["places"].as_u64().unwrap() > 0, "{}", r["plan"]);
    assert!(r["plan"]["what_if"].is_object());
    // Rows out of province order: the plan puts the poor households back in input order.
    let tmp = tempfile::tempdir().unwrap();
    let (h, p) = (tmp.path().join("households.csv"), tmp.path().join("persons.csv"));
    reversed(&s.join("households.csv"), &h);
    reversed(&s.join("persons.csv"), &p);
    same_outputs_of(&with_plan(&h, &p), None, true);
    // A served file naming every household (poor or not) of the samples: the same plan, with
    // households declined because they already receive the program.
    let text = std::fs::read_to_string(s.join("households.csv")).unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let at = lines.next().unwrap().split(',').position(|c| c == "household_id").unwrap();
    let ids: Vec<String> = lines.map(|l| l.split(',').nth(at).unwrap().to_string()).collect();
    let served = tmp.path().join("served.csv");
    let rows: Vec<String> = ids.iter().map(|id| format!("{id},moph-healthy-home")).collect();
    std::fs::write(&served, format!("household_id,program\n{}\n", rows.join("\n"))).unwrap();
    let mut o = with_plan(&s.join("households.csv"), &s.join("persons.csv"));
    if let Some(p) = &mut o.plan {
        p.served = Some(served.clone());
    }
    let runs = tmp.path().join("served-runs");
    same_outputs_in(&o, None, false, &runs);
    assert!(declined(&runs.join("parts"), &["declined_already_receives"]) > 0, "served households are declined");
    // A household in no province: an error naming the row, after the waves, nothing written.
    std::fs::write(&served, format!("household_id,program\n{},moph-healthy-home\n999999999999", ids[0])).unwrap();
    std::fs::write(&served, std::fs::read_to_string(&served).unwrap() + ",moph-healthy-home\n").unwrap();
    let out = tmp.path().join("never");
    let e = run_partitioned(&o, None, &out, &Silent).err().unwrap().to_string();
    assert!(e.contains("row 2") && e.contains("not in the extract"), "{e}");
    assert!(!out.exists());
    // An unknown program: refused before the waves.
    std::fs::write(&served, format!("household_id,program\n{},no-such-program\n", ids[0])).unwrap();
    let e = run_partitioned(&o, None, &out, &Silent).err().unwrap().to_string();
    assert!(e.contains("no program 'no-such-program'"), "{e}");
}

#[test]
fn a_beneficiary_list_is_linked_with_every_province_as_in_a_whole_run() {
    // The list's persons matched among every wave's persons (gathered as the waves are read,
    // linked after the last, in the whole extract's order), their households declined for the
    // program as in a whole run: the same plan and report, in province order and reversed, with
    // a served file beside it, and with a welfare registry (read once more for it); and within a
    // budget, linked a wave at a time from the link records the scoring pass keeps
    // (`tpmap::plan::served::ListInParts`), in one wave and in several.
    let tmp = tempfile::tempdir().unwrap();
    let s = samples();
    let with_list = |h: &Path, p: &Path| {
        let mut o = with_plan(h, p);
        if let Some(plan) = &mut o.plan {
            plan.served_list = Some(s.join("served_list.csv"));
        }
        o
    };
    let r = same_outputs_of(&with_list(&s.join("households.csv"), &s.join("persons.csv")), None, false);
    let link = &r["plan"]["served_link"];
    assert!(link["matched"].as_u64().unwrap() > 100, "{link}");
    assert_eq!(r["partition"]["passes"], 1);
    let o = with_list(&s.join("households.csv"), &s.join("persons.csv"));
    let b = same_outputs_of(&o, Some(8 << 30), false);
    assert_eq!((&b["partition"]["passes"], &b["plan"]["served_link"]), (&1.into(), link));
    let several = budget_of_waves(&o, 3);
    let b = same_outputs_of(&o, Some(several), false);
    assert_eq!((&b["partition"]["passes"], &b["plan"]["served_link"]), (&1.into(), link));
    let (hr, pr) = (tmp.path().join("households-reversed.csv"), tmp.path().join("persons-reversed.csv"));
    reversed(&s.join("households.csv"), &hr);
    reversed(&s.join("persons.csv"), &pr);
    let runs = tmp.path().join("reversed");
    let r = same_outputs_in(&with_list(&hr, &pr), None, true, &runs);
    assert_eq!(&r["plan"]["served_link"], link);
    assert!(declined(&runs.join("parts"), &["declined_already_receives"]) > 0, "matched households are declined");
    let b = same_outputs_in(&with_list(&hr, &pr), Some(several), true, &tmp.path().join("reversed-budget"));
    assert_eq!(&b["plan"]["served_link"], link);
    // With a served file naming one household, and with the welfare registry too.
    let households = CsvLines::read(&s.join("households.csv"));
    let id = households.cell(households.head + 1, households.col("household_id"));
    let served = tmp.path().join("served.csv");
    std::fs::write(&served, format!("household_id,program\n{id},moph-healthy-home\n")).unwrap();
    let mut o = with_list(&hr, &pr);
    if let Some(p) = &mut o.plan {
        p.served = Some(served);
    }
    o.welfare_registry = Some(s.join("welfare_registry.csv"));
    let r = same_outputs_in(&o, None, true, &tmp.path().join("all"));
    assert_eq!((&r["partition"]["passes"], &r["plan"]["served_link"]), (&2.into(), link));
    // Both linked within a budget: the registry's from the first reading, the list's from the
    // second.
    let b = same_outputs_in(&o, Some(budget_of_waves(&o, 3)), true, &tmp.path().join("all-budget"));
    assert_eq!((&b["partition"]["passes"], &b["plan"]["served_link"]), (&2.into(), link));
    assert_eq!(b["welfare_link"]["matched"], r["welfare_link"]["matched"]);
    // A list naming a program the catalogue lacks: the whole run's error, nothing written.
    let mut list = CsvLines::read(&s.join("served_list.csv"));
    let bad = tmp.path().join("served_list.csv");
    let (last, col) = (list.lines.len() - 1, list.col("program"));
    list.set(last, col, "no-such-program");
    list.write(&bad);
    let mut o = with_list(&s.join("households.csv"), &s.join("persons.csv"));
    if let Some(p) = &mut o.plan {
        p.served_list = Some(bad);
    }
    let whole = same_error(&o, &tmp.path().join("bad"));
    assert!(whole.contains("no program 'no-such-program'"), "{whole}");
    let within = run_partitioned(&o, Some(8 << 30), &tmp.path().join("bad-budget"), &Silent).err().unwrap();
    assert_eq!(within.to_string(), whole);
    assert!(!tmp.path().join("bad-budget").exists());
}

#[test]
fn a_citizen_id_in_two_provinces_is_kept_once() {
    // Person row 1 (province 40) gets the citizen ID of a person in province 95.
    let tmp = tempfile::tempdir().unwrap();
    let s = samples();
    let mut csv = CsvLines::read(&s.join("persons.csv"));
    let (col, hh) = (csv.col("citizen_id"), csv.col("household_id"));
    let last = csv.data().rev().find(|&i| csv.cell(i, hh).starts_with("95")).unwrap();
    let id = csv.cell(last, col).to_string();
    let first = csv.head + 1;
    assert!(csv.cell(first, hh).starts_with("40"));
    csv.set(first, col, &id);
    let p = tmp.path().join("persons.csv");
    csv.write(&p);
    let r = same_outputs(&s.join("households.csv"), &p, None, false);
    let persons = &r["ingest"]["persons"];
    assert_eq!(persons["rejected"], 1);
    assert_eq!(persons["by_reason"]["duplicate_person"], 1);
    // In province order: one reading.
    assert_eq!(r["partition"]["passes"], 1);
    // Both files reversed: the province-95 holder is now first in the file but read in the last
    // wave. The first reading kept the province-40 one; the second keeps the first in the file,
    // as the whole run does.
    let (hr, pr) = (tmp.path().join("households-reversed.csv"), tmp.path().join("persons-reversed.csv"));
    reversed(&s.join("households.csv"), &hr);
    reversed(&p, &pr);
    let runs = tmp.path().join("reversed");
    let r = same_outputs_in(&RunOptions::new(&hr, &pr), None, true, &runs);
    assert_eq!(r["partition"]["passes"], 2);
    assert_eq!(r["ingest"]["persons"]["by_reason"]["duplicate_person"], 1);
    let rejected = std::fs::read_to_string(runs.join("parts/rejected_persons.csv")).unwrap();
    let row = rejected.lines().find(|l| l.contains("duplicate_person")).unwrap();
    assert!(row.split(',').nth(3).unwrap().starts_with("40"), "the province-40 holder, now later, is rejected: {row}");
    // Strict: the error names the later holder, as the whole run's does (not the first holder,
    // met in the later wave).
    let mut o = RunOptions::new(&hr, &pr);
    o.ingest.mode = tpmap::ingest::Mode::Strict;
    let whole = same_error(&o, &tmp.path().join("strict"));
    assert!(whole.contains("citizen_id"), "{whole}");
    // Reversed with no repeated ID: out of order, but nothing crossed: one reading.
    let (pr2, runs2) = (tmp.path().join("persons-reversed-clean.csv"), tmp.path().join("reversed-clean"));
    reversed(&s.join("persons.csv"), &pr2);
    let r = same_outputs_in(&RunOptions::new(&hr, &pr2), None, true, &runs2);
    assert_eq!(r["partition"]["passes"], 1);
}

#[test]
fn a_strict_partitioned_run_fails_on_the_whole_runs_first_bad_row() {
    // Bad households in provinces 40 and 95 and a bad person in 40, the files in province order
    // and reversed: the error is the whole run's (every household row before any person row,
    // each file in row order), not the first a wave meets. A panel reading the round a province
    // at a time, and a partitioned run comparing it as an earlier round (read before the run's
    // waves since the twenty-eighth session), fail with it too.
    use tpmap::panel::rounds::{Reading, RoundsOptions, write_rounds};
    let tmp = tempfile::tempdir().unwrap();
    let s = samples();
    let mut households = CsvLines::read(&s.join("households.csv"));
    let (head, year) = (households.head, households.col("survey_year"));
    let last_40 = households.data().rev().find(|&i| households.lines[i].starts_with("40")).unwrap();
    let first_95 = households.data().find(|&i| households.lines[i].starts_with("95")).unwrap();
    for i in [last_40, first_95] {
        households.set(i, year, "year");
    }
    // Data rows of the households: in province order the first bad one is province 40's;
    // reversed, province 95's (its data rows run the other way).
    let data = households.data().len();
    let wants = [last_40 - head, data - (first_95 - head) + 1];
    let (sorted, rev) = (tmp.path().join("sorted"), tmp.path().join("reversed"));
    for d in [&sorted, &rev] {
        std::fs::create_dir(d).unwrap();
    }
    let h = sorted.join("households.csv");
    households.write(&h);
    let mut persons = CsvLines::read(&s.join("persons.csv"));
    let sex = persons.col("sex");
    persons.set(persons.head + 1, sex, "9");
    let p = sorted.join("persons.csv");
    persons.write(&p);
    let (hr, pr) = (rev.join("households.csv"), rev.join("persons.csv"));
    reversed(&h, &hr);
    reversed(&p, &pr);
    for ((h, p), want) in [(&h, &p), (&hr, &pr)].into_iter().zip(wants) {
        let mut o = RunOptions::new(h, p);
        o.ingest.mode = tpmap::ingest::Mode::Strict;
        let whole = run(&o, &tmp.path().join("whole"), &Silent).err().unwrap().to_string();
        assert!(whole.contains(&format!("row {want} ")) && whole.contains("survey_year"), "{whole}");
        for budget in [None, Some(u64::MAX)] {
            let parts = run_partitioned(&o, budget, &tmp.path().join("parts"), &Silent).err().unwrap().to_string();
            assert_eq!(parts, whole, "{budget:?}");
        }
        assert!(!tmp.path().join("parts").exists());
        let dir = h.parent().unwrap().to_path_buf();
        for reading in [Reading::Whole, Reading::Provinces] {
            let r = RoundsOptions { ingest: o.ingest.clone(), reading, ..Default::default() };
            let out = tmp.path().join("panel");
            std::fs::create_dir_all(&out).unwrap();
            let panel = write_rounds(&[dir.clone(), dir.clone()], &r, &out, None).err().unwrap().to_string();
            assert_eq!(panel, whole, "{reading:?}");
        }
        o.earlier = Some(tpmap::pipeline::EarlierRounds { folders: vec![dir.clone()], options: Default::default() });
        let compared = run_partitioned(&o, None, &tmp.path().join("compared"), &Silent).err().unwrap().to_string();
        assert_eq!(compared, whole);
        assert!(!tmp.path().join("compared").exists());
    }
}

#[test]
fn a_large_csv_extract_is_partitioned_by_default() {
    // The size decides (a sparse file of that size is never read): a large CSV persons file with
    // CSV or Parquet households; not a smaller one, nor with an Excel households file.
    use tpmap::pipeline::{AUTO_CSV_PERSON_BYTES, partition_by_default};
    let tmp = tempfile::tempdir().unwrap();
    let s = samples();
    let big = tmp.path().join("persons.csv");
    std::fs::File::create(&big).unwrap().set_len(AUTO_CSV_PERSON_BYTES).unwrap();
    assert!(partition_by_default(&RunOptions::new(&s.join("households.csv"), &big)));
    assert!(partition_by_default(&RunOptions::new(&s.join("households.parquet"), &big)));
    // `tpmap panel` reads such rounds a wave of provinces at a time too.
    assert!(tpmap::pipeline::large_extract(&s.join("households.csv"), &big));
    assert!(!partition_by_default(&RunOptions::new(&s.join("xlsx/households.xlsx"), &big)));
    std::fs::File::create(&big).unwrap().set_len(AUTO_CSV_PERSON_BYTES - 1).unwrap();
    assert!(!partition_by_default(&RunOptions::new(&s.join("households.csv"), &big)));
    assert!(!tpmap::pipeline::large_extract(&s.join("households.csv"), &big));
    assert!(!partition_by_default(&RunOptions::new(&s.join("households.csv"), &s.join("persons.csv"))));
}

#[test]
fn the_command_line_partitions_on_request_and_refuses_what_it_cannot() {
    let tmp = tempfile::tempdir().unwrap();
    let s = samples();
    let tpmap = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tpmap")).args(args).current_dir(tmp.path()).output().unwrap()
    };
    let (h, p) = (s.join("households.parquet"), s.join("persons.parquet"));
    let (h, p) = (h.to_str().unwrap(), p.to_str().unwrap());
    let ingest = |extra: &[&str], out: &str| {
        let mut args = vec!["ingest", "--households", h, "--persons", p, "--out", out, "--json"];
        args.extend_from_slice(extra);
        tpmap(&args)
    };
    let report = |o: &std::process::Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    // `auto` reads a small extract whole; a budget partitions.
    assert!(report(&ingest(&[], "auto")).get("partition").is_none());
    assert!(!tpmap::pipeline::partition_by_default(&RunOptions::new(
        &s.join("households.parquet"),
        &s.join("persons.parquet")
    )));
    let budget = report(&ingest(&["--max-memory", "8GiB"], "budget"));
    assert_eq!(budget["partition"]["waves"].as_array().unwrap().len(), 1);
    assert_eq!(budget["partition"]["max_memory"], 8u64 << 30);
    // Refused before any output: a budget too small, a budget with `whole`, a size that is not one.
    for (extra, says) in [
        (&["--max-memory", "1MiB"][..], "below what province"),
        (&["--partition", "whole", "--max-memory", "4GiB"][..], "needs a partitioned run"),
        (&["--max-memory", "lots"][..], "not a size"),
    ] {
        let o = ingest(extra, "refused");
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{extra:?}: {err}");
        assert!(!tmp.path().join("refused").exists());
    }
    // The samples folder's welfare registry and beneficiary list are linked province by
    // province, and within a budget a wave at a time: the same links.
    let o = tpmap(&["run", s.to_str().unwrap(), "--partition", "province", "--out", "plan", "--json"]);
    let r = report(&o);
    assert!(r["plan"]["served_link"]["matched"].as_u64().unwrap() > 0 && r["welfare_link"].is_object());
    let o = tpmap(&["run", s.to_str().unwrap(), "--max-memory", "8GiB", "--out", "plan-budget", "--json"]);
    let b = report(&o);
    assert_eq!(b["plan"]["served_link"], r["plan"]["served_link"]);
    assert_eq!(b["welfare_link"]["matched"], r["welfare_link"]["matched"]);
    std::fs::remove_dir_all(tmp.path().join("plan")).unwrap();
    let dir = tmp.path().join("extract");
    std::fs::create_dir(&dir).unwrap();
    for f in ["households.parquet", "persons.parquet", "welfare_registry.csv"] {
        std::fs::copy(s.join(f), dir.join(f)).unwrap();
    }
    let link = |extra: &[&str], out: &str| {
        let mut args = vec!["run", dir.to_str().unwrap(), "--out", out, "--json"];
        args.extend_from_slice(extra);
        let mut r = report(&tpmap(&args));
        assert!(r["welfare_link"].as_object_mut().unwrap().remove("seconds").is_some());
        r
    };
    let (province, budget) =
        (link(&["--partition", "province"], "province"), link(&["--max-memory", "8GiB"], "budget"));
    assert_eq!(budget["welfare_link"], province["welfare_link"]);
    assert!(budget["welfare_link"]["matched"].as_u64().unwrap() > 1000);
    // Read once for the whole order (counted for the linkage, its link records kept), once to
    // score: the linkage compares the records kept, not a third reading.
    assert_eq!((&province["partition"]["passes"], &budget["partition"]["passes"]), (&2.into(), &2.into()));
    // A budget below the registry's share is refused before any output.
    let o = tpmap(&["run", dir.to_str().unwrap(), "--max-memory", "100KiB", "--out", "small"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("linking the welfare registry takes"), "{err}");
    assert!(!tmp.path().join("small").exists());
}

/// The smallest whole number of MiB (from 200) under which `o` runs in at least `waves` waves.
fn budget_of_waves(o: &RunOptions, waves: usize) -> u64 {
    let tmp = tempfile::tempdir().unwrap();
    for mib in 200..2000u64 {
        if let Ok(p) = run_partitioned(o, Some(mib << 20), &tmp.path().join(mib.to_string()), &Silent) {
            let got = p.report.partition.as_ref().unwrap().waves.len();
            assert!(got >= waves, "{mib} MiB: {got} waves");
            return mib << 20;
        }
    }
    panic!("no budget below 2000 MiB runs");
}

/// Progress that keeps the steps' names.
#[derive(Default)]
struct Steps(std::sync::Mutex<Vec<String>>);

impl tpmap::pipeline::Progress for Steps {
    fn step(&self, what: &str) {
        self.0.lock().unwrap().push(what.to_string());
    }
}

#[test]
fn earlier_rounds_are_compared_before_the_waves_with_a_registry_given_back_or_kept() {
    // A partitioned run compares earlier rounds before its waves (since the twenty-eighth
    // session). A welfare registry's records are kept beside the comparison when a budget holds
    // both, else given back and keyed again after: without a budget, always. Every output the
    // same either way (the main job's as a run without earlier rounds, the comparison's as
    // `tpmap panel`'s); the comparison's step comes before the first wave's.
    let tmp = tempfile::tempdir().unwrap();
    let s = samples();
    let mut o = RunOptions::new(&s.join("households.parquet"), &s.join("persons.parquet"));
    o.welfare_registry = Some(s.join("welfare_registry.csv"));
    let panel = tmp.path().join("panel");
    std::fs::create_dir(&panel).unwrap();
    let rounds = tpmap::panel::rounds::RoundsOptions::default();
    tpmap::panel::rounds::write_rounds(&[s.clone(), s.clone()], &rounds, &panel, None).unwrap();
    let earlier = tpmap::pipeline::EarlierRounds { folders: vec![s.clone()], options: Default::default() };
    for (budget, again) in [(None, true), (Some(8u64 << 30), false)] {
        // The same run without earlier rounds (the same waves: the same files byte for byte).
        let alone = tmp.path().join(format!("alone-{budget:?}"));
        o.earlier = None;
        run_partitioned(&o, budget, &alone, &Silent).unwrap();
        o.earlier = Some(earlier.clone());
        let (out, steps) = (tmp.path().join(format!("{budget:?}")), Steps::default());
        run_partitioned(&o, budget, &out, &steps).unwrap();
        let steps = steps.0.into_inner().unwrap();
        let at = |what: &str| steps.iter().position(|s| s.starts_with(what));
        assert!(at("comparing with the earlier rounds").unwrap() < at("wave 1 of").unwrap(), "{steps:?}");
        assert_eq!(at("reading and keying the welfare registry again").is_some(), again, "{budget:?}: {steps:?}");
        for f in files_under(&alone) {
            let name = f.strip_prefix(&alone).unwrap();
            // The report has the comparison's section and its times.
            if !name.to_string_lossy().starts_with("report.") {
                assert!(std::fs::read(&f).unwrap() == std::fs::read(out.join(name)).unwrap(), "{name:?} differs");
            }
        }
        let compared = files_under(&panel);
        assert!(compared.len() >= 5 && files_under(&out.join("panel")).len() == compared.len());
        for f in compared {
            let name = f.strip_prefix(&panel).unwrap();
            assert!(
                std::fs::read(&f).unwrap() == std::fs::read(out.join("panel").join(name)).unwrap(),
                "{name:?} differs"
            );
        }
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
        assert!(report["welfare_link"]["matched"].as_u64().unwrap() > 1000);
        assert_eq!(report["panel"]["pairs"].as_array().unwrap().len(), 1);
    }
}

#[test]
fn a_welfare_registry_is_linked_across_the_provinces_as_in_a_whole_run() {
    // The waves are read once to gather every person's link records, which are linked with the
    // registry in the whole extract's order, then read again to score and write: the same
    // marks, outputs and report as a whole run — the files in province order, reversed (the
    // records put back in the whole run's order), and reversed with a citizen ID in two
    // provinces (the first reading crossed: read again, three readings in all).
    let tmp = tempfile::tempdir().unwrap();
    let s = samples();
    let registry = s.join("welfare_registry.csv");
    let with_registry = |h: &Path, p: &Path| {
        let mut o = RunOptions::new(h, p);
        o.welfare_registry = Some(registry.clone());
        o
    };
    let r = same_outputs_of(&with_registry(&s.join("households.parquet"), &s.join("persons.parquet")), None, false);
    assert_eq!(r["partition"]["passes"], 2);
    // Within a budget, linked a wave at a time (`tpmap::link::parts`): the same outputs, in
    // one wave and in several.
    let o = with_registry(&s.join("households.parquet"), &s.join("persons.parquet"));
    let b = same_outputs_of(&o, Some(8 << 30), false);
    assert_eq!((&b["partition"]["passes"], &b["welfare_link"]["matched"]), (&2.into(), &r["welfare_link"]["matched"]));
    let several = budget_of_waves(&o, 3);
    let b = same_outputs_of(&o, Some(several), false);
    assert_eq!((&b["partition"]["passes"], &b["welfare_link"]["matched"]), (&2.into(), &r["welfare_link"]["matched"]));
    let link = &r["welfare_link"];
    assert!(link["matched"].as_u64().unwrap() > 1000, "{link}");
    assert!(link["matched_by_id"].as_u64().unwrap() < link["matched"].as_u64().unwrap(), "{link}");
    assert_eq!(link["persons"], r["summary"]["persons"]);
    // The marks replace the extract's own flags (the samples' registry agrees with them): a
    // registry of its first 200 records marks at most 200 persons registered.
    let text = std::fs::read_to_string(&registry).unwrap();
    let short = tmp.path().join("registry-200.csv");
    std::fs::write(&short, text.lines().take(201).collect::<Vec<_>>().join("\n") + "\n").unwrap();
    let mut o = with_registry(&s.join("households.parquet"), &s.join("persons.parquet"));
    o.welfare_registry = Some(short);
    let r = same_outputs_of(&o, None, false);
    let matched = r["welfare_link"]["matched"].as_u64().unwrap();
    assert!((150..=200).contains(&matched), "{}", r["welfare_link"]);
    assert_eq!(r["summary"]["welfare_registered"], matched);
    let (hr, pr) = (tmp.path().join("households-reversed.csv"), tmp.path().join("persons-reversed.csv"));
    reversed(&s.join("households.csv"), &hr);
    reversed(&s.join("persons.csv"), &pr);
    let r = same_outputs_in(&with_registry(&hr, &pr), None, true, &tmp.path().join("reversed"));
    assert_eq!((&r["partition"]["passes"], &r["welfare_link"]["matched"]), (&2.into(), &link["matched"]));
    // Out of file order, each citizen ID's holder is kept by row: a budget of its own.
    let several = budget_of_waves(&with_registry(&hr, &pr), 3);
    let b = same_outputs_in(&with_registry(&hr, &pr), Some(several), true, &tmp.path().join("reversed-budget"));
    assert_eq!((&b["partition"]["passes"], &b["welfare_link"]["matched"]), (&2.into(), &link["matched"]));
    // A person of province 40, last in the reversed file, given the ID of the first person of
    // province 95 (first in the file, read in the last wave).
    let mut csv = CsvLines::read(&pr);
    let col = csv.col("citizen_id");
    let id = csv.cell(csv.head + 1, col).to_string();
    let last = csv.lines.len() - 1;
    assert!(csv.cell(last, csv.col("household_id")).starts_with("40"));
    csv.set(last, col, &id);
    let crossing = tmp.path().join("persons-crossing.csv");
    csv.write(&crossing);
    let r = same_outputs_in(&with_registry(&hr, &crossing), None, true, &tmp.path().join("crossing"));
    assert_eq!(r["partition"]["passes"], 3);
    let b = same_outputs_in(&with_registry(&hr, &crossing), Some(several), true, &tmp.path().join("crossing-budget"));
    // The records kept from the first reading, which crossed, are forgotten: those of the
    // second are linked.
    assert_eq!((&b["partition"]["passes"], &b["welfare_link"]["matched"]), (&3.into(), &r["welfare_link"]["matched"]));
    assert_eq!(r["ingest"]["persons"]["by_reason"]["duplicate_person"], 1);
    // Strict: the whole run's first bad row, before any linking.
    let mut o = with_registry(&hr, &crossing);
    o.ingest.mode = tpmap::ingest::Mode::Strict;
    let whole = same_error(&o, &tmp.path().join("strict"));
    assert!(whole.contains("citizen_id"), "{whole}");
    // A registry that cannot be read: the whole run's error, and no output.
    let mut o = with_registry(&s.join("households.parquet"), &s.join("persons.parquet"));
    let bad = tmp.path().join("registry.csv");
    std::fs::write(&bad, "record_id,citizen_id\n1,2\n").unwrap();
    o.welfare_registry = Some(bad);
    let whole = same_error(&o, &tmp.path().join("bad"));
    assert!(whole.contains("first_name"), "{whole}");
}

#[test]
fn bootstrap_standard_errors_are_the_whole_runs_bit_for_bit() {
    // Replicates keyed by household and kept as integer sums: the waves add up to the whole.
    let tmp = tempfile::tempdir().unwrap();
    let s = samples();
    let mut o = RunOptions::new(&s.join("households.csv"), &s.join("persons.csv"));
    o.bootstrap = (40, 7);
    o.html = false;
    let whole = run(&o, &tmp.path().join("whole"), &Silent).unwrap();
    let parts = run_partitioned(&o, None, &tmp.path().join("parts"), &Silent).unwrap();
    assert_eq!(parts.report.partition.as_ref().unwrap().waves.len(), 4);
    assert!(whole.measures.rows.iter().all(|r| r.se_bootstrap.is_some()));
    let read = |d: &str| std::fs::read(tmp.path().join(d).join("measures.csv")).unwrap();
    assert!(read("whole") == read("parts"), "measures.csv differs");
    // And the same when the rows come in another order (the keys are household IDs).
    let (h, p) = (tmp.path().join("households.csv"), tmp.path().join("persons.csv"));
    reversed(&s.join("households.csv"), &h);
    reversed(&s.join("persons.csv"), &p);
    let mut r = RunOptions::new(&h, &p);
    (r.bootstrap, r.html) = ((40, 7), false);
    let again = run(&r, &tmp.path().join("reversed"), &Silent).unwrap();
    for (a, b) in whole.measures.rows.iter().zip(&again.measures.rows) {
        assert_eq!((&a.area, a.se_bootstrap), (&b.area, b.se_bootstrap));
    }
}

#[test]
fn a_synthetic_half_million_households_partitioned_are_the_whole_run() {
    // SYNTHETIC: 500,000 households (about 1.4 M persons) in every province, as Parquet, with
    // what the waves must agree on across provinces: persons carrying the citizen ID of a
    // person in a later province (the earlier row is kept, the later one rejected, in both
    // runs), IDs with a wrong check digit, and households in a province that does not exist
    // (rejected with their persons). One province a wave, then a budget of several provinces
    // a wave with two waves in flight: every output the whole run's.
    let tmp = tempfile::tempdir().unwrap();
    let made = tmp.path().join("made");
    synthesize(&made, 500_000, 2562, &[], tpmap::synth::SynthFormat::Parquet);
    let read = |p: &Path| ParquetReader::new(std::fs::File::open(p).unwrap()).finish().unwrap();
    let write = |df: &mut DataFrame, p: &Path| {
        ParquetWriter::new(std::fs::File::create(p).unwrap()).finish(df).unwrap();
    };
    let province = |household: u64| household / 100_000_000_000;

    let mut households = read(&made.join("households.parquet"));
    let n_households = households.height();
    assert_eq!(n_households, 500_000);
    let ids: Vec<u64> = households.column("household_id").unwrap().u64().unwrap().into_no_null_iter().collect();
    let mut villages: Vec<Option<String>> =
        households.column("village_code").unwrap().str().unwrap().iter().map(|v| v.map(str::to_string)).collect();
    let gone: Vec<u64> = [1_000, 250_000, 499_000].iter().map(|&i| ids[i]).collect();
    for i in [1_000, 250_000, 499_000] {
        villages[i] = Some("99999999".into());
    }
    households.replace("village_code", Column::new("village_code".into(), villages)).unwrap();

    let mut persons = read(&made.join("persons.parquet"));
    let n_persons = persons.height();
    assert!(n_persons > 1_000_000, "{n_persons} persons");
    let homes: Vec<u64> = persons.column("household_id").unwrap().u64().unwrap().into_no_null_iter().collect();
    let mut cids: Vec<Option<String>> =
        persons.column("citizen_id").unwrap().str().unwrap().iter().map(|v| v.map(str::to_string)).collect();
    let in_gone = homes.iter().filter(|h| gone.contains(h)).count();
    assert!(in_gone > 0);
    // Twenty IDs copied from the second half onto rows of the first, each into another province.
    let (mut copied, mut step, mut later) = (0, 0, Vec::new());
    while copied < 20 {
        let (to, from) = (1 + step * 31_013, n_persons - 1 - step * 29_017);
        step += 1;
        let usable = |i: usize| cids[i].is_some() && !gone.contains(&homes[i]);
        if !usable(to) || !usable(from) || province(homes[to]) == province(homes[from]) {
            continue;
        }
        cids[to] = cids[from].clone();
        later.push(from as u64 + 1);
        copied += 1;
    }
    // Seven IDs with a wrong check digit (valid ones are 13 digits, the last a checksum).
    let mut broken = 0;
    for i in (7..n_persons).step_by(n_persons / 8).take(7) {
        let id = cids[i].clone().filter(|_| !gone.contains(&homes[i])).expect("an ID on a kept household");
        let last = id.as_bytes()[12] - b'0';
        cids[i] = Some(format!("{}{}", &id[..12], (last + 1) % 10));
        broken += 1;
    }
    persons.replace("citizen_id", Column::new("citizen_id".into(), cids)).unwrap();
    let (h, p) = (tmp.path().join("households.parquet"), tmp.path().join("persons.parquet"));
    write(&mut households, &h);
    write(&mut persons, &p);
    drop((households, persons));

    let runs = tmp.path().join("by-province");
    let r = same_outputs_in(&RunOptions::new(&h, &p), None, false, &runs);
    // Bangkok has no village in TPMAP's 2561 tables; the three households of no province make
    // a wave of their own.
    let n = waves(&r);
    assert!(n >= 76, "{n} waves");
    let (hh, pp) = (&r["ingest"]["households"], &r["ingest"]["persons"]);
    assert_eq!(hh["input_rows"].as_u64(), Some(n_households as u64));
    assert_eq!(hh["rejected"], 3);
    assert_eq!(hh["by_reason"]["unknown_province"], 3, "{hh}");
    assert_eq!(pp["input_rows"].as_u64(), Some(n_persons as u64));
    assert_eq!(pp["by_reason"]["duplicate_person"], copied);
    assert_eq!(pp["by_reason"]["bad_check_digit"], broken);
    assert_eq!(pp["by_reason"]["household_rejected"].as_u64(), Some(in_gone as u64));
    assert_eq!(pp["rejected"].as_u64(), Some((copied + broken + in_gone) as u64));
    assert_eq!(pp["accepted"].as_u64().unwrap() + pp["rejected"].as_u64().unwrap(), n_persons as u64);
    // The later holder of each copied ID is the one rejected (`_row`: the 1-based data row).
    let rejected = std::fs::read_to_string(runs.join("parts/rejected_persons.csv")).unwrap();
    let mut rows: Vec<u64> = rejected
        .lines()
        .filter(|l| l.split(',').nth(2) == Some("duplicate_person@citizen_id"))
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    rows.sort_unstable();
    later.sort_unstable();
    assert_eq!(rows, later);

    // Several provinces a wave, two in flight, with the samples' catalogue: the same plan too.
    let one = tpmap::ingest::partition::Split::read(&h, &p, &Default::default()).unwrap();
    let largest = one.waves(None).unwrap().iter().map(|w| w.estimated_bytes()).max().unwrap();
    // The merged results of its ~84 k villages are held beyond BYTES_FIXED's.
    let budget = tpmap::ingest::partition::BYTES_FIXED + (64 << 20) + 8 * largest + one.merging_bytes(0);
    assert!(one.villages > 80_000, "{} villages", one.villages);
    let r = same_outputs_of(&with_plan(&h, &p), Some(budget), false);
    assert!(waves(&r) > 1 && waves(&r) < n, "{} waves", waves(&r));
    assert_eq!(r["partition"]["waves_in_flight"], 2);
    assert!(r["plan"]["summary"]["places"].as_u64().unwrap() > 1_000, "{}", r["plan"]["summary"]);
}

#[test]
fn a_budget_holds_the_merged_results_of_every_village() {
    // The routing counts the households' distinct villages; the merge after the last wave holds
    // a row of each (more with bootstrap replicates), so a budget that leaves the waves room
    // but not the merge is refused before any output, naming the villages.
    let tmp = tempfile::tempdir().unwrap();
    let s = samples();
    let (h, p) = (s.join("households.csv"), s.join("persons.csv"));
    let text = std::fs::read_to_string(&h).unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let col = lines.next().unwrap().split(',').position(|c| c == "village_code").unwrap();
    let villages: std::collections::HashSet<&str> = lines.map(|l| l.split(',').nth(col).unwrap()).collect();
    let split = tpmap::ingest::partition::Split::read(&h, &p, &Default::default()).unwrap();
    assert_eq!(split.villages, villages.len() as u64);
    assert!(split.villages > 50, "{}", split.villages);
    let mut o = RunOptions::new(&h, &p);
    o.bootstrap = (10_000, 7);
    let merging = split.merging_bytes(10_000);
    assert_eq!(merging, split.villages * 10_000 * 48, "the samples' villages are within BYTES_FIXED's");
    let budget = split.held_across(0) + merging - 1;
    let Err(e) = run_partitioned(&o, Some(budget), &tmp.path().join("out"), &Silent) else {
        panic!("a budget below the merge's was accepted");
    };
    let e = e.to_string();
    assert!(e.contains("merging the provinces") && e.contains(&format!("{} villages", split.villages)), "{e}");
    assert!(e.contains("with 10000 bootstrap replicates"), "{e}");
    assert!(!tmp.path().join("out").exists());
    // Without replicates the same budget leaves room for the merge: the run is made.
    o.bootstrap = (0, 1);
    let done = run_partitioned(&o, Some(budget), &tmp.path().join("out"), &Silent).unwrap();
    assert!(done.report.partition.is_some());
}

/// The decisions (places given and declined) of a run's plan, from its report's plan folder.
fn decisions(report: &serde_json::Value) -> u64 {
    let dir = std::path::PathBuf::from(report["plan"]["dir"].as_str().unwrap());
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    plan["programs"].as_array().unwrap().iter().map(|p| p["eligible"].as_u64().unwrap()).sum()
}

#[test]
fn a_budget_holds_the_poor_households_counted_for_the_plan() {
    // SYNTHETIC households in ten provinces, every one of them poor (an income of 1,000 baht a
    // member): the waves write them to a temporary file, and the plan reads them back after the
    // last wave. As the waves count them, a budget without room for all of them is refused
    // before any output, naming them.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    synthesize(&dir, 2_000, 3, &[11, 12, 13, 14, 20, 30, 40, 50, 80, 90], tpmap::synth::SynthFormat::Csv);
    let h = dir.join("households.csv");
    let text = std::fs::read_to_string(&h).unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let header = lines.next().unwrap();
    let col = header.split(',').position(|c| c == "income_per_member").unwrap();
    let rows: Vec<String> = lines
        .map(|l| {
            l.split(',').enumerate().map(|(i, c)| if i == col { "1000.0" } else { c }).collect::<Vec<_>>().join(",")
        })
        .collect();
    std::fs::write(&h, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    let p = dir.join("persons.csv");
    let split = tpmap::ingest::partition::Split::read(&h, &p, &Default::default()).unwrap();
    let persons = split.persons.len() as u64;
    assert!(split.villages < tpmap::ingest::partition::VILLAGES_IN_FIXED, "the merged results are within BYTES_FIXED");
    let o = with_plan(&h, &p);
    // What the plan needs for every person poor and each of its decisions, beside the fixed
    // share (the decisions counted by a run without a budget).
    let unbounded = run_partitioned(&o, None, &tmp.path().join("unbounded"), &Silent).unwrap();
    let decided = decisions(&serde_json::to_value(&unbounded.report).unwrap());
    assert!(decided > 0);
    let per_decision = tpmap::ingest::partition::BYTES_PER_PLAN_DECISION;
    let held =
        tpmap::ingest::partition::BYTES_FIXED + persons * tpmap::ingest::partition::BYTES_PLANNED_PER_POOR_PERSON;
    let need = held + decided * per_decision;
    let out = tmp.path().join("never");
    let Err(e) = run_partitioned(&o, Some(held - 1), &out, &Silent) else {
        panic!("a budget below the poor households' need was accepted");
    };
    let e = e.to_string();
    assert!(e.contains("planning takes: about") && e.contains(&format!("poor households' {persons} persons")), "{e}");
    assert!(!out.exists());
    // Room for the households but one decision fewer than the plan makes: it stops there.
    let e = run_partitioned(&o, Some(need - 1), &out, &Silent).err().unwrap().to_string();
    assert!(e.contains(&format!("decide on {decided} eligible units")), "{e}");
    assert!(!out.exists());
    // At the need itself: several waves, and the whole run's plan and outputs.
    let r = same_outputs_in(&o, Some(need), false, &tmp.path().join("runs"));
    assert!(waves(&r) > 1, "{} waves", waves(&r));
    assert_eq!(r["measure"]["country"]["poor"].as_f64(), Some(persons as f64), "every person poor");
    assert!(r["plan"]["summary"]["households"].as_u64().unwrap() > 0);
    // A plan over every poor household takes more (`PLANNED_WIDE_FACTOR`): the same budget is
    // refused, twice the persons' share and its own decisions accepted.
    let mut wide = with_plan(&h, &p);
    if let Some(plan) = &mut wide.plan {
        plan.options.population = tpmap::plan::Population::Poor;
    }
    let e = run_partitioned(&wide, Some(need), &out, &Silent).err().unwrap().to_string();
    assert!(e.contains("planning takes"), "{e}");
    let wide_decided = decisions(
        &serde_json::to_value(
            &run_partitioned(&wide, None, &tmp.path().join("wide-unbounded"), &Silent).unwrap().report,
        )
        .unwrap(),
    );
    let factor = tpmap::ingest::partition::PLANNED_WIDE_FACTOR;
    let wide_need = tpmap::ingest::partition::BYTES_FIXED
        + factor * persons * tpmap::ingest::partition::BYTES_PLANNED_PER_POOR_PERSON
        + wide_decided * per_decision;
    assert!(run_partitioned(&wide, Some(wide_need), &tmp.path().join("wide"), &Silent).is_ok());
    // Out of file order the plan puts them back in input order, a copy of them for a moment:
    // the same budget is refused.
    let (rh, rp) = (tmp.path().join("households.csv"), tmp.path().join("persons.csv"));
    reversed(&h, &rh);
    reversed(&p, &rp);
    let e = run_partitioned(&with_plan(&rh, &rp), Some(need), &out, &Silent).err().unwrap().to_string();
    assert!(e.contains("planning takes"), "{e}");
    assert!(!out.exists());
}

#[test]
fn a_budget_is_not_refused_for_poor_households_it_would_hold() {
    // SYNTHETIC households in 40 of the smaller provinces, about one person in eight in a poor
    // household, planned over every poor household (`--population poor`: twice the bytes a
    // person). A budget with just the room their plan needs: until the twenty-fifth session a
    // quarter of the persons were assumed poor before any work and this budget refused (as the
    // national set's was within 4 GiB); now it is accepted, its room reported, and the run makes
    // the whole run's outputs. A budget with room for one person fewer than are poor stops at
    // the wave whose count shows it, with nothing written.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let provinces = [
        14, 15, 16, 17, 18, 19, 22, 23, 24, 25, 26, 27, 37, 38, 39, 49, 51, 52, 53, 54, 55, 56, 58, 61, 63, 64, 66, 75,
        76, 77, 81, 82, 83, 85, 86, 91, 92, 93, 94, 95,
    ];
    synthesize(&dir, 4_000, 5, &provinces, tpmap::synth::SynthFormat::Parquet);
    let (h, p) = (dir.join("households.parquet"), dir.join("persons.parquet"));
    let split = tpmap::ingest::partition::Split::read(&h, &p, &Default::default()).unwrap();
    assert!(split.households_in_order_of(&split.waves(None).unwrap()), "the synthetic files are in province order");
    let persons = split.persons.len() as u64;
    let per = tpmap::ingest::partition::BYTES_PLANNED_PER_POOR_PERSON * tpmap::ingest::partition::PLANNED_WIDE_FACTOR;
    let mut o = with_plan(&h, &p);
    if let Some(plan) = &mut o.plan {
        plan.options.population = tpmap::plan::Population::Poor;
    }
    // The persons of poor households and the plan's decisions, counted without a budget.
    let unbounded =
        serde_json::to_value(&run_partitioned(&o, None, &tmp.path().join("unbounded"), &Silent).unwrap().report)
            .unwrap();
    let poor = unbounded["measure"]["country"]["poor"].as_f64().unwrap() as u64;
    let decided = decisions(&unbounded);
    assert!(poor > 0 && poor < persons / 5, "{poor} poor of {persons}");
    // Exactly what they need: refused before (a quarter of the persons assumed poor), accepted
    // now, with the whole run's outputs and the room reported.
    let need = tpmap::ingest::partition::BYTES_FIXED
        + poor * per
        + decided * tpmap::ingest::partition::BYTES_PER_PLAN_DECISION;
    assert!(need < tpmap::ingest::partition::BYTES_FIXED + persons / 4 * per, "the old assumption refused it");
    let r = same_outputs_in(&o, Some(need), false, &tmp.path().join("need"));
    assert!(waves(&r) > 1, "{} waves", waves(&r));
    let room = r["partition"]["plan_room"].as_u64().unwrap();
    assert_eq!(room, (need - tpmap::ingest::partition::BYTES_FIXED) / per);
    assert!(room >= poor);
    // Room for one person fewer than are poor: refused once counted, nothing written.
    let short = tpmap::ingest::partition::BYTES_FIXED + (poor - 1) * per;
    let out = tmp.path().join("short");
    let e = run_partitioned(&o, Some(short), &out, &Silent).err().unwrap().to_string();
    assert!(e.contains("planning takes") && e.contains(&format!("poor households' {poor} persons")), "{e}");
    assert!(e.contains("counted by wave"), "{e}");
    assert!(!out.exists());
}

#[test]
fn without_a_budget_a_linking_run_groups_provinces_up_to_the_largest() {
    // SYNTHETIC households in eight provinces of unequal size: without a budget each province is
    // a wave, but a run that links a welfare registry a wave at a time groups consecutive
    // provinces into waves no larger than the largest one (each wave's comparison has a cost of
    // its own), with the whole run's outputs.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    synthesize(&dir, 3_000, 9, &[11, 12, 13, 14, 15, 16, 17, 30], tpmap::synth::SynthFormat::Parquet);
    let (h, p) = (dir.join("households.parquet"), dir.join("persons.parquet"));
    let split = tpmap::ingest::partition::Split::read(&h, &p, &Default::default()).unwrap();
    let each = split.waves(None).unwrap();
    let largest = each.iter().map(|w| w.estimated_bytes()).max().unwrap();
    let plain = run_partitioned(&RunOptions::new(&h, &p), None, &tmp.path().join("plain"), &Silent).unwrap();
    assert_eq!(plain.report.partition.as_ref().unwrap().waves.len(), each.len());
    let mut o = RunOptions::new(&h, &p);
    o.welfare_registry = Some(samples().join("welfare_registry.csv"));
    let r = same_outputs_in(&o, None, false, &tmp.path().join("linked"));
    let grouped = waves(&r);
    assert!(grouped < each.len(), "{grouped} waves of {} provinces", each.len());
    assert!(r["partition"]["largest_wave_estimate"].as_u64().unwrap() <= largest);
}
