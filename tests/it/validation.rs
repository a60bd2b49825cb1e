//! Strict-mode errors, derived values, and the privacy of error messages.

use tpmap::Error;
use tpmap::indicators::IndicatorStatus;
use tpmap::ingest::{IngestOptions, Mode, Reason, ingest};

use crate::{samples, write};

const H: &str = "household_id,village_code,survey_year,members,income_per_member,ind_8,ind_22\n\
1,1101100101,2560,2,50000,0,\n\
2,1101100201,2017,,20000,1,0\n";

fn strict() -> IngestOptions {
    IngestOptions { mode: Mode::Strict, ..IngestOptions::default() }
}

#[test]
fn strict_mode_names_file_row_and_column() {
    let dir = samples().join("dirty");
    let err = ingest(&dir.join("households.csv"), &dir.join("persons.csv"), &strict()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::InvalidRow { row: 3, line: Some(5), .. }), "{msg}");
    assert!(
        msg.contains("dirty/households.csv") && msg.contains("row 3 (line 5)") && msg.contains("column 'village_code'"),
        "{msg}"
    );
    assert!(msg.contains("unknown tambon"), "{msg}");
}

/// The dirty sample with its line ends as Excel on Windows (`\r\n`) and old Mac software (`\r`)
/// write them, and with blank lines: each rejected row is reported on the line a text editor
/// shows it on (the csv crate's own positions put `\r\n` rows a line early and `\r` rows all on
/// line 1).
#[test]
fn rejected_rows_name_their_line_whatever_the_line_ends() {
    let dir = samples().join("dirty");
    let text = std::fs::read_to_string(dir.join("households.csv")).unwrap();
    assert!(!text.contains('\r') && text.starts_with('#'), "the sample: LF line ends, one preamble line");
    let lines: Vec<&str> = text.lines().collect();
    let tmp = tempfile::tempdir().unwrap();
    let blank_after_header = format!("{}\n{}\n\r\n\n{}\n", lines[0], lines[1], lines[2..].join("\n"));
    for (name, file, extra) in [
        ("lf", text.clone(), 0),
        ("crlf", text.replace('\n', "\r\n"), 0),
        ("cr", text.replace('\n', "\r"), 0),
        ("blank", blank_after_header, 2),
    ] {
        let h = write(tmp.path(), &format!("{name}.csv"), &file);
        let got = ingest(&h, &dir.join("persons.csv"), &IngestOptions::default()).unwrap();
        assert!(!got.household_rejects.is_empty());
        for rej in got.household_rejects.iter() {
            assert_eq!(rej.line, Some(rej.row + 2 + extra), "{name}: row {}", rej.row);
        }
    }
}

#[test]
fn messages_never_carry_raw_citizen_ids() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(dir.path(), "h.csv", H);
    // 1234567890122 has a wrong check digit; 1234567890121 is valid but duplicated.
    for (persons, reason) in [
        ("household_id,citizen_id\n1,1234567890122\n", "check digit"),
        ("household_id,citizen_id\n1,1234567890121\n2,1-2345-67890-12-1\n", "already seen"),
        ("household_id,citizen_id\n1,12345678901\n", "13 digits"),
    ] {
        let p = write(dir.path(), "p.csv", persons);
        let err = ingest(&h, &p, &strict()).unwrap_err().to_string();
        assert!(err.contains(reason), "{err}");
        assert!(!err.contains("12345678901") && !err.contains("2345-67890"), "raw ID leaked: {err}");
        // Lenient mode: the report and the problems carry no raw ID either (only the
        // rejects file keeps the row unchanged, by design).
        let got = ingest(&h, &p, &IngestOptions::default()).unwrap();
        let report = serde_json::to_string(&got.report).unwrap() + &serde_json::to_string(&got.person_rejects).unwrap();
        assert!(!report.contains("12345678901"), "raw ID leaked: {report}");
    }
}

#[test]
fn missing_required_columns_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(dir.path(), "h.csv", "household_id,survey_year\n1,2560\n");
    let p = write(dir.path(), "p.csv", "household_id\n1\n");
    let err = ingest(&h, &p, &IngestOptions::default()).unwrap_err().to_string();
    assert!(err.contains("h.csv") && err.contains("village_code"), "{err}");
    let h = write(dir.path(), "h.csv", "household_id,village_code\n1,1101100101\n");
    let err = ingest(&h, &p, &IngestOptions::default()).unwrap_err().to_string();
    assert!(err.contains("survey_year"), "{err}");
    let ok = IngestOptions { default_survey_year: Some(2560), ..IngestOptions::default() };
    assert_eq!(ingest(&h, &p, &ok).unwrap().extract.households.survey_year, [2560]);
}

#[test]
fn scope_income_and_members_are_derived() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(dir.path(), "h.csv", H);
    // ind_7 (exercise) applies from age 6; ind_20 (work) to ages 15-59.
    let p = write(
        dir.path(),
        "p.csv",
        "household_id,age,birth_date,ind_7,ind_20\n\
         1,4,,1,1\n\
         1,,01/06/2520,1,na\n\
         2,70,,0,1\n",
    );
    let got = ingest(&h, &p, &strict()).unwrap();
    let x = &got.extract;
    let e = &x.edition;
    let (i7, i20, i22) = (e.by_no(7).unwrap(), e.by_no(20).unwrap(), e.by_no(22).unwrap());
    let s = &x.persons.statuses;
    assert_eq!(s.get(0, i7), Some(IndicatorStatus::NotApplicable), "age 4 is out of scope for exercise");
    assert_eq!(s.get(0, i20), Some(IndicatorStatus::NotApplicable));
    // Born 1 June 1977 (BE 2520): 39 on 31 March 2017 (BE 2560).
    assert_eq!(x.persons.age[1], Some(39));
    assert_eq!(s.get(1, i7), Some(IndicatorStatus::Fail));
    assert_eq!(s.get(1, i20), Some(IndicatorStatus::Missing), "in scope but reported n/a");
    assert_eq!(s.get(2, i20), Some(IndicatorStatus::NotApplicable), "age 70 is out of scope for 15-59");
    // Income 20,000 < 38,000 fails 4.3 even though the row said 0; 50,000 passes.
    let hs = &x.households.statuses;
    assert_eq!(hs.get(0, i22), Some(IndicatorStatus::Pass));
    assert_eq!(hs.get(1, i22), Some(IndicatorStatus::Fail));
    let n = &got.report.notes;
    assert_eq!((n.income_status_derived, n.income_status_overruled), (2, 1));
    assert_eq!((n.derived_not_applicable, n.reported_na_in_scope_as_missing, n.ages_derived), (3, 1, 1));
    // Members: household 1 declared 2 and has 2; household 2 declared none: counted 1.
    assert_eq!(x.households.members, [2, 1]);
    assert_eq!(x.members(0), 0..2);
    // Survey year 2017 CE is read as BE 2560.
    assert_eq!(x.households.survey_year, [2560, 2560]);
}

#[test]
fn persons_sorted_by_household_keep_file_order_within() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(dir.path(), "h.csv", H);
    let p = write(dir.path(), "p.csv", "household_id,first_name\n2,ข\n1,ก\n2,ค\n1,ง\n");
    let x = ingest(&h, &p, &strict()).unwrap().extract;
    assert_eq!(x.persons.first_name.iter().collect::<Vec<_>>(), ["ก", "ง", "ข", "ค"]);
    assert_eq!(x.persons.source_row, [2, 4, 1, 3]);
    assert_eq!(x.member_offsets, [0, 2, 4]);
}

#[test]
fn one_means_pass_flips_numeric_statuses_only() {
    let dir = tempfile::tempdir().unwrap();
    let h =
        write(dir.path(), "h.csv", "household_id,village_code,survey_year,ind_8,ind_9\n1,1101100101,2560,1,ไม่ผ่าน\n");
    let p = write(dir.path(), "p.csv", "household_id\n1\n");
    let opts = IngestOptions { one_means: tpmap::ingest::OneMeans::Pass, ..IngestOptions::default() };
    let x = ingest(&h, &p, &opts).unwrap().extract;
    let e = &x.edition;
    assert_eq!(x.households.statuses.get(0, e.by_no(8).unwrap()), Some(IndicatorStatus::Pass));
    assert_eq!(x.households.statuses.get(0, e.by_no(9).unwrap()), Some(IndicatorStatus::Fail));
}

#[test]
fn new_villages_can_be_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(dir.path(), "h.csv", "household_id,village_code,survey_year\n1,11011098,2560\n");
    let p = write(dir.path(), "p.csv", "household_id\n1\n");
    let got = ingest(&h, &p, &IngestOptions::default()).unwrap();
    assert_eq!(got.household_rejects[0].problems[0].reason, Reason::UnknownVillage);
    assert_eq!(got.person_rejects[0].problems[0].reason, Reason::HouseholdRejected);
    let opts = IngestOptions { area_check: tpmap::ingest::AreaCheck::Tambon, ..IngestOptions::default() };
    assert_eq!(ingest(&h, &p, &opts).unwrap().extract.households.len(), 1);
}

#[test]
fn empty_and_headerless_files() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(dir.path(), "h.csv", H);
    let p = write(dir.path(), "p.csv", "household_id,citizen_id\n");
    let got = ingest(&h, &p, &IngestOptions::default()).unwrap();
    assert_eq!(got.report.persons.input_rows, 0);
    assert_eq!(got.report.notes.households_without_persons, 0, "no persons table rows: nothing to say");
    let p = write(dir.path(), "p.csv", "");
    let err = ingest(&h, &p, &IngestOptions::default()).unwrap_err().to_string();
    assert!(err.contains("p.csv") && err.contains("empty"), "{err}");
    let err = ingest(&dir.path().join("nope.csv"), &p, &IngestOptions::default()).unwrap_err().to_string();
    assert!(err.contains("nope.csv"), "{err}");
}

#[test]
fn citizen_ids_claimed_elsewhere_reject_the_rows_that_repeat_them() {
    // What a run split into parts tells a part (tpmap.spark): IDs accepted on earlier rows of
    // other parts. The row repeating one is a duplicate, as it is when the extract is one piece.
    let dir = tempfile::tempdir().unwrap();
    let h = write(dir.path(), "h.csv", H);
    let p = write(dir.path(), "p.csv", "household_id,citizen_id\n1,1234567890121\n2,3400112345671\n");
    let alone = ingest(&h, &p, &IngestOptions::default()).unwrap();
    assert_eq!(alone.report.persons.accepted, 2);
    let opts =
        IngestOptions { earlier_citizen_ids: std::sync::Arc::from([3400112345671u64]), ..IngestOptions::default() };
    let got = ingest(&h, &p, &opts).unwrap();
    assert_eq!((got.report.persons.accepted, got.report.persons.rejected), (1, 1));
    assert_eq!(got.person_rejects[0].row, 2);
    assert_eq!(got.person_rejects[0].problems[0].reason, Reason::DuplicatePerson);
}
