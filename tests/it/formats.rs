//! Every reader gives the same extract for the same data.

use tpmap::extract::Extract;
use tpmap::ingest::{IngestOptions, Mode, ingest};

use crate::samples;

fn load(h: &str, p: &str) -> Extract {
    let opts = IngestOptions { mode: Mode::Strict, ..IngestOptions::default() };
    let got = ingest(&samples().join(h), &samples().join(p), &opts).unwrap_or_else(|e| panic!("{h}: {e}"));
    assert!(got.report.households.reconciles() && got.report.persons.reconciles());
    assert_eq!(got.report.households.rejected + got.report.persons.rejected, 0, "{h}: clean sample has rejects");
    got.extract
}

/// Like `assert_eq!` on two columns, but reports only the first differing row.
macro_rules! same {
    ($a:expr, $b:expr, $($msg:tt)+) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            let (va, vb): (Vec<_>, Vec<_>) = (a.iter().collect(), b.iter().collect());
            let row = va.iter().zip(&vb).position(|(x, y)| x != y);
            match row {
                Some(r) => panic!("{}: first difference at row {r}: {:?} vs {:?}", format!($($msg)+), va[r], vb[r]),
                None => panic!("{}: lengths {} vs {}", format!($($msg)+), va.len(), vb.len()),
            }
        }
    }};
}

fn assert_same(a: &Extract, b: &Extract, what: &str) {
    let (ha, hb) = (&a.households, &b.households);
    same!(ha.id, hb.id, "{what}: household ids");
    same!(ha.village, hb.village, "{what}: villages");
    same!(ha.house_id, hb.house_id, "{what}: house ids");
    same!(ha.house_no, hb.house_no, "{what}: house numbers");
    same!(ha.survey_year, hb.survey_year, "{what}: survey years");
    same!(ha.members, hb.members, "{what}: members");
    same!(ha.income_per_member, hb.income_per_member, "{what}: income");
    same!(ha.statuses.fail, hb.statuses.fail, "{what}: household fail");
    same!(ha.statuses.na, hb.statuses.na, "{what}: household na");
    same!(ha.statuses.missing, hb.statuses.missing, "{what}: household missing");
    assert_eq!(ha.statuses.present, hb.statuses.present, "{what}: household statuses present");
    let (pa, pb) = (&a.persons, &b.persons);
    same!(pa.household, pb.household, "{what}: person households");
    same!(pa.citizen_id, pb.citizen_id, "{what}: citizen ids");
    same!(pa.title, pb.title, "{what}: titles");
    same!(pa.first_name, pb.first_name, "{what}: first names");
    same!(pa.last_name, pb.last_name, "{what}: last names");
    same!(pa.sex, pb.sex, "{what}: sex");
    same!(pa.birth_date, pb.birth_date, "{what}: birth dates");
    same!(pa.age, pb.age, "{what}: ages");
    same!(pa.relation, pb.relation, "{what}: relations");
    same!(pa.disabled, pb.disabled, "{what}: disability");
    same!(pa.welfare_registered, pb.welfare_registered, "{what}: registered");
    same!(pa.welfare_validated, pb.welfare_validated, "{what}: validated");
    same!(pa.statuses.fail, pb.statuses.fail, "{what}: person fail");
    same!(pa.statuses.na, pb.statuses.na, "{what}: person na");
    same!(pa.statuses.missing, pb.statuses.missing, "{what}: person missing");
    assert_eq!(pa.statuses.present, pb.statuses.present, "{what}: person statuses present");
}

#[test]
fn csv_parquet_xlsx_and_tis620_agree() {
    let csv = load("households.csv", "persons.csv");
    assert_eq!(csv.households.len(), 3_000);
    assert!(csv.persons.len() > 7_000);
    assert_same(&csv, &load("households.parquet", "persons.parquet"), "parquet");
    assert_same(&csv, &load("xlsx/households.xlsx", "xlsx/persons.xlsx"), "xlsx");
    // Thai headers, BE dates in Thai digits, Thai status words, TIS-620 bytes.
    assert_same(&csv, &load("tis620/households.csv", "tis620/persons.csv"), "tis-620");
}

#[test]
fn tis620_is_detected_and_can_be_named() {
    let opts = IngestOptions { encoding: tpmap::ingest::Encoding::Tis620, ..IngestOptions::default() };
    let got = ingest(&samples().join("tis620/households.csv"), &samples().join("tis620/persons.csv"), &opts).unwrap();
    assert_eq!(got.report.persons.encoding.as_deref(), Some("tis-620"));
    assert_eq!(got.report.persons.rejected, 0);
    // Read as UTF-8 by mistake, every Thai byte is invalid: rows are rejected, none lost.
    let opts = IngestOptions { encoding: tpmap::ingest::Encoding::Utf8, ..IngestOptions::default() };
    let got = ingest(&samples().join("tis620/households.csv"), &samples().join("tis620/persons.csv"), &opts);
    if let Ok(got) = got {
        assert!(got.report.persons.reconciles());
    }
}

#[test]
fn synthetic_files_say_so() {
    let md = tpmap::frame::parquet_metadata(&samples().join("persons.parquet")).unwrap();
    assert!(md.iter().any(|(k, v)| k == "tpmap.synthetic" && v.as_deref() == Some("true")), "{md:?}");
    for f in ["households.csv", "persons.csv", "dirty/persons.csv"] {
        let text = std::fs::read_to_string(samples().join(f)).unwrap();
        assert!(text.starts_with("# SYNTHETIC DATA"), "{f}");
    }
}

#[test]
fn frames_round_trip_through_ingest() {
    // Write the extract back as frames and read the frames: nothing changes.
    let x = load("households.parquet", "persons.parquet");
    let h = tpmap::frame::households_frame(&x.households, &x.edition).unwrap();
    let p = tpmap::frame::persons_frame(&x.persons, &x.households.id, &x.edition).unwrap();
    let got = tpmap::ingest::ingest_tables(
        tpmap::ingest::TableInput::Frame(&h, "households"),
        tpmap::ingest::TableInput::Frame(&p, "persons"),
        &IngestOptions::default(),
    )
    .unwrap();
    assert_same(&x, &got.extract, "frames");
}

#[cfg(feature = "arrow")]
#[test]
fn arrow_record_batches_without_copy() {
    use arrow_array::Array;
    let x = load("households.parquet", "persons.parquet");
    let h = tpmap::frame::households_frame(&x.households, &x.edition).unwrap();
    let batches = tpmap::frame::to_record_batches(&h).unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), h.height());
    let b = &batches[0];
    assert_eq!(b.schema().field(0).name(), "household_id");
    let ids = b.column(0).as_any().downcast_ref::<arrow_array::UInt64Array>().unwrap();
    assert_eq!(ids.value(0), x.households.id[0].0);
    assert_eq!(ids.len(), b.num_rows());
    // The numeric buffer is polars' own: same address, no copy.
    let polars_ptr = h
        .column("household_id")
        .unwrap()
        .as_materialized_series()
        .u64()
        .unwrap()
        .downcast_iter()
        .next()
        .unwrap()
        .values()
        .as_ptr();
    assert_eq!(ids.values().as_ptr(), polars_ptr);
}

#[test]
fn synthetic_income_agrees_with_its_status() {
    // Synth draws incomes on the right side of the threshold, so ingest never overrules a status.
    let got =
        ingest(&samples().join("households.parquet"), &samples().join("persons.parquet"), &IngestOptions::default())
            .unwrap();
    assert_eq!(got.report.notes.income_status_derived, 3_000);
    assert_eq!(got.report.notes.income_status_overruled, 0);
}
