//! Nothing is lost: accepted + rejected = input, on the dirty sample and on random junk.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use tpmap::ingest::{IngestOptions, ingest};

use crate::{samples, write};

#[test]
fn dirty_sample_reconciles() {
    let dir = samples().join("dirty");
    let got = ingest(&dir.join("households.csv"), &dir.join("persons.csv"), &IngestOptions::default()).unwrap();
    let r = &got.report;
    assert!(r.households.reconciles() && r.persons.reconciles());
    assert_eq!(r.households.input_rows, 401);

    // Exactly the listed rows are rejected, each with (at least) its listed reason.
    let manifest: Vec<BTreeMap<String, String>> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("defects.json")).unwrap()).unwrap();
    for (table, rejects) in [("households", &got.household_rejects), ("persons", &got.person_rejects)] {
        let expected: BTreeMap<u64, String> = manifest
            .iter()
            .filter(|d| d["table"] == table)
            .map(|d| (d["row"].parse().unwrap(), d["reason"].clone()))
            .collect();
        let got_rows: BTreeSet<u64> = rejects.iter().map(|r| r.row).collect();
        assert_eq!(got_rows, expected.keys().copied().collect(), "{table}: rejected rows");
        for rej in rejects.iter() {
            let codes: Vec<&str> = rej.problems.iter().map(|p| p.reason.code()).collect();
            assert!(codes.contains(&expected[&rej.row].as_str()), "{table} row {}: {codes:?}", rej.row);
            assert_eq!(rej.line, Some(rej.row + 2), "a preamble line and the header come first");
        }
    }

    // The rejects files carry the rows unchanged.
    let out = tempfile::tempdir().unwrap();
    got.write_rejects(out.path()).unwrap();
    let original: Vec<csv::StringRecord> = csv::ReaderBuilder::new()
        .flexible(true)
        .comment(Some(b'#'))
        .from_path(dir.join("households.csv"))
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .collect();
    let mut rdr =
        csv::ReaderBuilder::new().flexible(true).from_path(out.path().join("rejected_households.csv")).unwrap();
    let mut n = 0;
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let row: usize = rec[0].parse().unwrap();
        let orig = &original[row - 1];
        for (i, v) in orig.iter().enumerate() {
            assert_eq!(&rec[3 + i], v, "row {row} column {i}");
        }
        n += 1;
    }
    assert_eq!(n, got.household_rejects.len());
}

fn junk_cell() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("1".to_string()),
        Just("0".to_string()),
        Just("na".to_string()),
        Just("ผ่าน".to_string()),
        Just("1101100101".to_string()),
        Just("2560".to_string()),
        Just("1234567890121".to_string()),
        Just("15/03/2530".to_string()),
        "[0-9]{1,14}",
        "[ก-ฮ0-9a-z/,\" -]{0,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]
    /// Random tables of plausible and implausible cells (ragged rows, quotes, Thai text): the
    /// lenient reader never fails and every row is accepted or rejected.
    #[test]
    fn random_tables_reconcile(
        hh in proptest::collection::vec(proptest::collection::vec(junk_cell(), 3..7), 0..30),
        pp in proptest::collection::vec(proptest::collection::vec(junk_cell(), 3..9), 0..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut w = csv::WriterBuilder::new().flexible(true).from_writer(vec![]);
        w.write_record(["household_id", "village_code", "survey_year", "ind_8", "members", "income"]).unwrap();
        for r in &hh { w.write_record(r).unwrap(); }
        let h = write(dir.path(), "h.csv", &String::from_utf8(w.into_inner().unwrap()).unwrap());
        let mut w = csv::WriterBuilder::new().flexible(true).from_writer(vec![]);
        w.write_record(["household_id", "citizen_id", "age", "ind_7", "birth_date", "sex", "disabled", "ind_20"]).unwrap();
        for r in &pp { w.write_record(r).unwrap(); }
        let p = write(dir.path(), "p.csv", &String::from_utf8(w.into_inner().unwrap()).unwrap());
        let got = ingest(&h, &p, &IngestOptions::default()).unwrap();
        let r = &got.report;
        prop_assert_eq!(r.households.input_rows as usize, hh.len());
        prop_assert_eq!(r.persons.input_rows as usize, pp.len());
        prop_assert!(r.households.reconciles());
        prop_assert!(r.persons.reconciles());
        prop_assert_eq!(r.households.accepted as usize, got.extract.households.len());
        prop_assert_eq!(r.persons.accepted as usize, got.extract.persons.len());
        prop_assert_eq!(r.persons.rejected as usize, got.person_rejects.len());
    }
}
