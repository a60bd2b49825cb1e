//! Writes `data-samples/`: a small SYNTHETIC extract in every format the readers take, plus a
//! dirty copy whose defects are listed in `data-samples/dirty/README.md` and `defects.json`.
//!
//! ```text
//! cargo run --profile ci --all-features --example make_samples
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use tpmap::frame;
use tpmap::ingest::Encoding;
use tpmap::synth::{SYNTHETIC_NOTICE, SynthOptions, Synthesizer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = Path::new("data-samples");
    for d in ["", "tis620", "xlsx", "dirty"] {
        std::fs::create_dir_all(out.join(d))?;
    }
    // Khon Kaen, Chiang Mai, Nakhon Si Thammarat and Yala: north, north-east and south.
    let opts = SynthOptions { households: 3_000, seed: 2561, provinces: vec![40, 50, 80, 95], ..Default::default() };
    let s = Synthesizer::new(opts)?;
    let x = s.generate();
    let e = s.edition();
    let mut hh = frame::households_frame(&x.households, e)?;
    let mut pp = frame::persons_frame(&x.persons, &x.households.id, e)?;
    let meta = frame::synthetic_metadata(SYNTHETIC_NOTICE);
    let note = vec![SYNTHETIC_NOTICE.to_string()];
    frame::write_parquet(&mut hh, &out.join("households.parquet"), &meta)?;
    frame::write_parquet(&mut pp, &out.join("persons.parquet"), &meta)?;
    frame::write_csv(&mut hh, &out.join("households.csv"), &note, Encoding::Utf8)?;
    frame::write_csv(&mut pp, &out.join("persons.csv"), &note, Encoding::Utf8)?;
    frame::write_xlsx(&hh, &out.join("xlsx/households.xlsx"), "households", &note)?;
    frame::write_xlsx(&pp, &out.join("xlsx/persons.xlsx"), "persons", &note)?;

    // The TIS-620 copy is the same data as a provincial office might export it: Thai column
    // names, Buddhist-Era birth dates in Thai digits, Thai status words.
    let thai = |df: &polars::prelude::DataFrame, table: &str| -> Result<Vec<Vec<String>>, Box<dyn std::error::Error>> {
        let mut rows = csv_rows(df)?;
        let header = rows[0].clone();
        for (c, name) in header.iter().enumerate() {
            rows[0][c] = match (table, name.as_str()) {
                (_, "household_id") => "รหัสครัวเรือน".into(),
                (_, "village_code") => "รหัสหมู่บ้าน".into(),
                (_, "house_id") => "รหัสประจำบ้าน".into(),
                (_, "house_no") => "บ้านเลขที่".into(),
                (_, "survey_year") => "ปีสำรวจ".into(),
                (_, "members") => "จำนวนสมาชิก".into(),
                (_, "income_per_member") => "รายได้เฉลี่ยต่อคนต่อปี".into(),
                (_, "citizen_id") => "เลขประจำตัวประชาชน".into(),
                (_, "title") => "คำนำหน้า".into(),
                (_, "first_name") => "ชื่อ".into(),
                (_, "last_name") => "นามสกุล".into(),
                (_, "sex") => "เพศ".into(),
                (_, "birth_date") => "วันเกิด".into(),
                (_, "age") => "อายุ".into(),
                (_, "relation") => "ความสัมพันธ์กับหัวหน้าครัวเรือน".into(),
                (_, "disabled") => "ความพิการ".into(),
                (_, "welfare_registered") => "ลงทะเบียนสวัสดิการ".into(),
                (_, "welfare_validated") => "ผ่านการตรวจสอบสิทธิ์".into(),
                (_, n) if n.starts_with("ind_") => format!("ตัวชี้วัดที่{}", &n[4..]),
                (_, n) => n.into(),
            };
            for r in rows.iter_mut().skip(1) {
                let v = &mut r[c];
                match name.as_str() {
                    "birth_date" if !v.is_empty() => {
                        let d = tpmap::thai::parse_date(v).expect("ISO date");
                        *v = thai_digits(&format!(
                            "{:02}/{:02}/{}",
                            d.day,
                            d.month,
                            tpmap::thai::ce_to_be(d.year, d.month)
                        ));
                    }
                    "sex" => *v = if v == "1" { "ชาย".into() } else { "หญิง".into() },
                    "citizen_id" => *v = thai_digits(v),
                    n if n.starts_with("ind_") => {
                        *v = match v.as_str() {
                            "1" => "ไม่ผ่าน".into(),
                            "0" => "ผ่าน".into(),
                            "na" => "ไม่เกี่ยวข้อง".into(),
                            o => o.into(),
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(rows)
    };
    write_rows(&out.join("tis620/households.csv"), &thai(&hh, "households")?, Encoding::Tis620)?;
    write_rows(&out.join("tis620/persons.csv"), &thai(&pp, "persons")?, Encoding::Tis620)?;

    // The dirty copy: the first 400 households and their persons, with one defect per listed row.
    let hrows = csv_rows(&hh)?;
    let prows = csv_rows(&pp)?;
    let keep: std::collections::HashSet<String> = hrows[1..401].iter().map(|r| r[0].clone()).collect();
    let mut h: Vec<Vec<String>> = std::iter::once(hrows[0].clone()).chain(hrows[1..401].iter().cloned()).collect();
    let mut p: Vec<Vec<String>> =
        std::iter::once(prows[0].clone()).chain(prows[1..].iter().filter(|r| keep.contains(&r[0])).cloned()).collect();
    let hc = |name: &str| h[0].iter().position(|c| c == name).expect("column");
    let pc = |name: &str| p[0].iter().position(|c| c == name).expect("column");
    let mut defects: Vec<(String, usize, &str, &str)> = Vec::new();
    let mut hset =
        |row: usize, col: usize, v: &str, reason: &'static str, what: &'static str, h: &mut Vec<Vec<String>>| {
            h[row][col] = v.to_string();
            defects.push(("households".into(), row, reason, what));
        };
    let (c_id, c_v, c_y, c_m, c_i, c_s) = (
        hc("household_id"),
        hc("village_code"),
        hc("survey_year"),
        hc("members"),
        hc("income_per_member"),
        hc("ind_8"),
    );
    hset(3, c_v, "4001000101", "unknown_tambon", "village code in a tambon that does not exist", &mut h);
    hset(5, c_v, "40a1", "bad_area_code", "malformed village code", &mut h);
    hset(7, c_v, "9901010101", "unknown_province", "province 99 does not exist", &mut h);
    hset(9, c_id, "", "missing_value", "household ID empty", &mut h);
    hset(11, c_y, "60", "bad_year", "survey year written as 60", &mut h);
    hset(13, c_s, "2", "bad_status", "status 2 (neither 1/0 nor a word)", &mut h);
    hset(15, c_i, "-5000", "bad_number", "negative income", &mut h);
    hset(17, c_m, "three", "bad_number", "members written in words", &mut h);
    hset(19, c_id, "12-34x", "bad_household_id", "household ID with a letter", &mut h);
    let dup = h[21].clone();
    h.push(dup);
    let last = h.len() - 1;
    defects.push(("households".into(), last, "duplicate_household", "row 21 repeated at the end"));
    h[23].truncate(5);
    defects.push(("households".into(), 23, "field_count", "row cut short after 5 fields"));
    // Persons of rejected households are rejected too: as `household_rejected` when the household
    // row still carries its ID, as `person_without_household` when the ID itself was spoiled.
    let mut orphaned: BTreeMap<String, &str> = BTreeMap::new();
    for (t, r, reason, _) in &defects {
        if t == "households" && *reason != "duplicate_household" {
            let id_spoiled = matches!(*reason, "missing_value" | "bad_household_id");
            orphaned.insert(
                hrows[*r][0].clone(),
                if id_spoiled { "person_without_household" } else { "household_rejected" },
            );
        }
    }

    let (p_cid, p_hh, p_age, p_bd, p_sex, p_rel, p_dis, p_st) = (
        pc("citizen_id"),
        pc("household_id"),
        pc("age"),
        pc("birth_date"),
        pc("sex"),
        pc("relation"),
        pc("disabled"),
        pc("ind_7"),
    );
    let mut pset =
        |row: usize, col: usize, v: &str, reason: &'static str, what: &'static str, p: &mut Vec<Vec<String>>| {
            p[row][col] = v.to_string();
            defects.push(("persons".into(), row, reason, what));
        };
    // Person defects start at row 200, past the persons of the defective households.
    // A check-digit error: change the last digit.
    let mut bad = p[202][p_cid].clone();
    let d = bad.pop().expect("digit").to_digit(10).expect("digit");
    bad.push(char::from_digit((d + 1) % 10, 10).expect("digit"));
    pset(202, p_cid, &bad, "bad_check_digit", "last digit of the citizen ID changed", &mut p);
    let short = p[204][p_cid][..12].to_string();
    pset(204, p_cid, &short, "bad_citizen_id", "citizen ID of 12 digits", &mut p);
    let dup_id = p[206][p_cid].clone();
    pset(208, p_cid, &dup_id, "duplicate_person", "citizen ID of row 206 repeated", &mut p);
    pset(210, p_hh, "9999999999999", "person_without_household", "household ID not in the households table", &mut p);
    pset(212, p_age, "150", "impossible_age", "age 150", &mut p);
    pset(214, p_bd, "2030-01-01", "impossible_age", "born after the survey", &mut p);
    pset(216, p_bd, "31/02/2530", "bad_date", "31 February", &mut p);
    pset(218, p_age, "3", "age_birth_mismatch", "age disagrees with birth date", &mut p);
    pset(220, p_sex, "X", "bad_sex", "sex X", &mut p);
    pset(222, p_rel, "boss", "bad_relation", "relation 'boss'", &mut p);
    pset(224, p_dis, "maybe", "bad_flag", "disability 'maybe'", &mut p);
    pset(226, p_st, "ผ่านบ้าง", "bad_status", "status 'ผ่านบ้าง' (partly passes)", &mut p);
    // Accepted oddities: Thai digits in an ID, a BE date in Thai digits, a dashed ID.
    let thai_id = thai_digits(&p[228][p_cid]);
    p[228][p_cid] = thai_id;
    let dashed = {
        let s = &p[230][p_cid];
        format!("{}-{}-{}-{}-{}", &s[..1], &s[1..5], &s[5..10], &s[10..12], &s[12..])
    };
    p[230][p_cid] = dashed;
    let bd = tpmap::thai::parse_date(&p[232][p_bd]).expect("date");
    p[232][p_bd] = thai_digits(&format!("{}/{}/{}", bd.day, bd.month, tpmap::thai::ce_to_be(bd.year, bd.month)));
    p[234].push("extra".into());
    defects.push(("persons".into(), 234, "field_count", "one field too many"));
    #[allow(clippy::needless_range_loop)] // the row number is what the manifest records
    for r in 1..p.len() {
        if let Some(reason) = orphaned.get(&p[r][p_hh])
            && !defects.iter().any(|d| d.0 == "persons" && d.1 == r)
        {
            defects.push(("persons".into(), r, reason, "their household row was rejected"));
        }
    }
    write_rows(&out.join("dirty/households.csv"), &h, Encoding::Utf8)?;
    write_rows(&out.join("dirty/persons.csv"), &p, Encoding::Utf8)?;
    defects.sort();
    let manifest: Vec<BTreeMap<&str, String>> = defects
        .iter()
        .map(|(t, r, reason, what)| {
            BTreeMap::from([
                ("table", t.clone()),
                ("row", r.to_string()),
                ("reason", reason.to_string()),
                ("what", what.to_string()),
            ])
        })
        .collect();
    std::fs::write(out.join("dirty/defects.json"), serde_json::to_string_pretty(&manifest)?)?;
    let mut md = String::from(
        "# Dirty sample (SYNTHETIC)\n\nThe first 400 households of `../households.csv` and their persons, with the defects below. \
         `tpmap ingest --households households.csv --persons persons.csv` must reject exactly these rows, for these reasons, \
         and accept every other row (the test `dirty_sample_reconciles` checks it against `defects.json`). Rows are data rows, \
         counting from 1 after the header.\n\n| table | row | expected reason | defect |\n|---|---|---|---|\n",
    );
    for (t, r, reason, what) in &defects {
        md += &format!("| {t} | {r} | `{reason}` | {what} |\n");
    }
    md += "\nAccepted on purpose: persons row 228 has its citizen ID in Thai digits, row 230 a dashed ID, row 232 a Buddhist-Era birth date in Thai digits.\n";
    std::fs::write(out.join("dirty/README.md"), md)?;
    println!("wrote {} SYNTHETIC households and {} persons to {}", x.households.len(), x.persons.len(), out.display());
    Ok(())
}

fn thai_digits(s: &str) -> String {
    s.chars()
        .map(
            |c| {
                if c.is_ascii_digit() { char::from_u32(0x0E50 + c as u32 - '0' as u32).expect("Thai digit") } else { c }
            },
        )
        .collect()
}

fn csv_rows(df: &polars::prelude::DataFrame) -> Result<Vec<Vec<String>>, Box<dyn std::error::Error>> {
    let mut buf = Vec::new();
    frame::append_csv(&mut df.clone(), &mut buf, true)?;
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).from_reader(buf.as_slice());
    Ok(rdr.records().map(|r| r.map(|r| r.iter().map(String::from).collect())).collect::<Result<_, _>>()?)
}

fn write_rows(path: &Path, rows: &[Vec<String>], encoding: Encoding) -> Result<(), Box<dyn std::error::Error>> {
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
    for r in rows {
        w.write_record(r)?;
    }
    let text = format!("# {SYNTHETIC_NOTICE}\n{}", String::from_utf8(w.into_inner()?)?);
    let bytes = match encoding {
        Encoding::Tis620 => encoding_rs::WINDOWS_874.encode(&text).0.into_owned(),
        _ => text.into_bytes(),
    };
    std::fs::write(path, bytes)?;
    Ok(())
}
