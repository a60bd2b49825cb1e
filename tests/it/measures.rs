//! The general Alkire–Foster entry point, and properties of the measures.

use proptest::prelude::*;
use tpmap::aggregate::{AggregateOptions, Hierarchy, measures};
use tpmap::mpi::{MpiOptions, run};
use tpmap::rational::Rational;
use tpmap::score::{Cutoff, Profiles, Spec, score};

use crate::write;

#[test]
fn alkire_foster_2011_through_files() {
    // The worked example of Alkire & Foster (2011) as an analyst would hand it over: the 0/1
    // deprivation matrix with cutoffs (13, 12, 3, 1) already applied, equal weights, k = 2 of 4.
    let dir = tempfile::tempdir().unwrap();
    let data = write(
        dir.path(),
        "units.csv",
        "id,region,income,education,health,water\n1,a,0,0,0,0\n2,a,0,1,0,1\n3,b,1,1,1,1\n4,b,0,1,0,0\n",
    );
    let spec = write(
        dir.path(),
        "spec.csv",
        "dimension,indicator,weight\ni,income,1/4\ne,education,0.25\nh,health,25%\nw,water,1/4\n",
    );
    let opts = MpiOptions { k: "2/4".parse().unwrap(), areas: vec!["region".into()], ..Default::default() };
    let m = run(&data, &spec, &opts).unwrap();
    let all = &m.rows[0];
    assert_eq!(all.exact.as_ref().unwrap(), &["1/2".to_string(), "3/4".to_string(), "3/8".to_string()]);
    assert_eq!(m.rows.len(), 3);
    // Decomposition: population shares 1/2 and 1/2; M0(a) = 2/8, M0(b) = 4/8.
    let sub: f64 = m.rows[1..].iter().map(|r| r.population / all.population * r.m0).sum();
    assert!((sub - all.m0).abs() < 1e-15);
    // Frames and files.
    let df = m.to_frame().unwrap();
    assert_eq!(df.height(), 3);
    for c in [
        "level",
        "area",
        "units",
        "population",
        "poor",
        "H",
        "A",
        "M0",
        "income_uncensored",
        "income_censored",
        "income_contribution",
        "M0_exact",
    ] {
        assert!(df.column(c).is_ok(), "{c}");
    }
    m.write(dir.path()).unwrap();
    assert!(dir.path().join("measures.parquet").exists() && dir.path().join("measures.json").exists());
    // The JSON is a summary: the whole's row and each level's number of areas, not every area.
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("measures.json")).unwrap()).unwrap();
    assert_eq!(j["format"], "tpmap-measures-summary");
    assert_eq!(j["whole"]["h"].as_f64().unwrap(), m.rows[0].h);
    let areas: u64 = j["levels"].as_array().unwrap().iter().map(|l| l["areas"].as_u64().unwrap()).sum();
    assert_eq!(areas as usize, m.rows.len());
    assert!(j.get("rows").is_none());
}

#[test]
fn weights_design_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("prov,stratum,psu,w,a,b\n");
    for i in 0..40 {
        text += &format!(
            "p{},{},{},{},{},{}\n",
            i % 2,
            i % 2,
            i % 8,
            1 + i % 3,
            i % 3 == 0,
            if i % 5 == 0 { "na" } else { "0" }
        );
    }
    let text = text.replace("true", "1").replace("false", "0");
    let data = write(dir.path(), "u.csv", &text);
    let spec = write(dir.path(), "s.csv", "dimension,indicator,weight\nx,a,1/2\ny,b,1/2\n");
    let opts = MpiOptions {
        k: "union".parse().unwrap(),
        areas: vec!["prov".into()],
        weight: Some("w".into()),
        design: Some(("stratum".into(), "psu".into())),
        bootstrap: (20, 7),
        ..Default::default()
    };
    let m = run(&data, &spec, &opts).unwrap();
    let all = &m.rows[0];
    assert!(all.se_design.unwrap()[0] > 0.0 && all.se_bootstrap.unwrap()[0] > 0.0);
    assert!(all.population > 40.0, "weights are used");
    // Bad inputs name the file, row and column.
    let bad = write(dir.path(), "bad.csv", "a,b\n1,0\n2,0\n");
    let err =
        run(&bad, &spec, &MpiOptions { k: "union".parse().unwrap(), ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("bad.csv") && err.contains("row 2") && err.contains("column 'a'"), "{err}");
    let err = run(&data, &spec, &MpiOptions { k: "0".parse().unwrap(), ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("k must be above 0"), "{err}");
    let missing_col = write(dir.path(), "s2.csv", "dimension,indicator,weight\nx,zzz,1\n");
    assert!(
        run(&data, &missing_col, &MpiOptions { k: "1".parse().unwrap(), ..Default::default() })
            .unwrap_err()
            .to_string()
            .contains("zzz")
    );
}

fn profiles_strategy() -> impl Strategy<Value = (Vec<u64>, Vec<u8>, Vec<u32>)> {
    (1usize..60).prop_flat_map(|n| {
        (
            proptest::collection::vec(0u64..64, n), // deprivations over 6 indicators
            proptest::collection::vec(0u8..4, n),   // group
            proptest::collection::vec(1u32..6, n),  // weight (household size)
        )
    })
}

fn spec6(k: Rational) -> Spec {
    let w = [
        Rational::new(1, 6),
        Rational::new(1, 6),
        Rational::new(1, 9),
        Rational::new(1, 9),
        Rational::new(1, 9),
        Rational::new(1, 3),
    ];
    let dims = ["a", "a", "b", "b", "b", "c"];
    Spec::from_weights((0..6).map(|i| (i, dims[i].to_string(), format!("x{i}"), w[i])).collect(), Cutoff::K(k)).unwrap()
}

fn all_levels(fail: &[u64], groups: &[u8], weights: &[u32], k: Rational) -> tpmap::aggregate::Measures {
    let n = fail.len();
    let p =
        Profiles::from_masks(fail.to_vec(), vec![0; n], vec![0; n], weights.iter().map(|&w| w as f64).collect(), 63);
    let spec = spec6(k);
    let s = score(&p, &spec).unwrap();
    let h = Hierarchy::from_keys(vec!["group".into()], vec![groups.iter().map(|g| g.to_string()).collect()]).unwrap();
    measures(&p, &spec, &s, &h, &AggregateOptions::default()).unwrap()
}

fn frac(s: &str) -> Rational {
    s.parse().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// M0 of the whole is the population-weighted sum of its subgroups' M0, exactly.
    #[test]
    fn subgroup_decomposition_is_exact((fail, groups, weights) in profiles_strategy(), kn in 1u128..18) {
        let m = all_levels(&fail, &groups, &weights, Rational::new(kn, 18));
        let all = &m.rows[0];
        let pop = Rational::new(all.population as u128, 1);
        let mut sum = Rational::ZERO;
        for g in &m.rows[1..] {
            let share = Rational::new(g.population as u128, 1).checked_div(pop).unwrap();
            sum = sum.checked_add(share.checked_mul(frac(&g.exact.as_ref().unwrap()[2])).unwrap()).unwrap();
        }
        prop_assert_eq!(sum, frac(&all.exact.as_ref().unwrap()[2]));
        // And H likewise.
        let mut h = Rational::ZERO;
        for g in &m.rows[1..] {
            let share = Rational::new(g.population as u128, 1).checked_div(pop).unwrap();
            h = h.checked_add(share.checked_mul(frac(&g.exact.as_ref().unwrap()[0])).unwrap()).unwrap();
        }
        prop_assert_eq!(h, frac(&all.exact.as_ref().unwrap()[0]));
    }

    /// Adding a deprivation to any unit never lowers H or M0 (monotonicity), and raises M0 when
    /// that unit is poor afterwards.
    #[test]
    fn more_deprivation_never_lowers_h_or_m0((fail, groups, weights) in profiles_strategy(), who in 0usize..60, bit in 0u32..6, kn in 1u128..18) {
        let k = Rational::new(kn, 18);
        let who = who % fail.len();
        let before = all_levels(&fail, &groups, &weights, k);
        let mut more = fail.clone();
        let added = more[who] & (1 << bit) == 0;
        more[who] |= 1 << bit;
        let after = all_levels(&more, &groups, &weights, k);
        let (b, a) = (&before.rows[0], &after.rows[0]);
        let (hb, ha) = (frac(&b.exact.as_ref().unwrap()[0]), frac(&a.exact.as_ref().unwrap()[0]));
        let (mb, ma) = (frac(&b.exact.as_ref().unwrap()[2]), frac(&a.exact.as_ref().unwrap()[2]));
        prop_assert!(ha >= hb);
        prop_assert!(ma >= mb);
        let now_poor = score(&Profiles::from_masks(vec![more[who]], vec![0], vec![0], vec![1.0], 63), &spec6(k)).unwrap().poor[0];
        if added && now_poor {
            prop_assert!(ma > mb);
        }
    }
}

#[test]
fn panel_changes_from_one_table_with_a_round_column() {
    // The rounds of `changes_between_two_rounds_through_the_cli` in one table, the later round
    // first (rounds are ordered by number, not by appearance), households linked by `hh`.
    // Poor: round 2561 units 2, 3 (H = 1/2); round 2562 units 2, 3, 4 (H = 3/4).
    let dir = tempfile::tempdir().unwrap();
    let both = write(
        dir.path(),
        "both.csv",
        "year,hh,region,income,education,health,water\n\
         2562,h1,a,0,0,0,0\n2562,h2,a,0,1,0,1\n2562,h3,b,1,1,0,0\n2562,h4,b,0,1,0,1\n\
         2561,h1,a,0,0,0,0\n2561,h2,a,0,1,0,1\n2561,h3,b,1,1,1,1\n2561,h4,b,0,1,0,0\n",
    );
    let spec = write(
        dir.path(),
        "spec.csv",
        "dimension,indicator,weight\ni,income,1/4\ne,education,1/4\nh,health,1/4\nw,water,1/4\n",
    );
    let run = |extra: &[&str], out: &std::path::Path| {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_tpmap"))
            .args(["mpi", "--k", "50%", "--areas", "region", "--round", "year", "--quiet"])
            .args(extra)
            .arg("--data")
            .arg(&both)
            .arg("--spec")
            .arg(&spec)
            .arg("--out")
            .arg(out)
            .status()
            .unwrap();
        assert!(status.success());
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(out.join("changes.json")).unwrap()).unwrap();
        let info: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("timing.json")).unwrap()).unwrap();
        (rows, info)
    };
    let (panel, info) = run(&["--unit-id", "hh"], &dir.path().join("panel"));
    assert_eq!(info["rounds"], serde_json::json!(["2561", "2562"]));
    assert_eq!(info["standard_errors"], "panel");
    let country = panel[0]["area"].as_str().unwrap().to_string();
    let h = panel.iter().find(|r| r["area"] == country.as_str() && r["measure"] == "H").unwrap();
    assert_eq!(h["absolute"].as_f64().unwrap(), 0.25);
    // The same households: the change's SE is the paired differences' (0, 0, 0, 1):
    // sd = √((3·(1/4)² + (3/4)²)/3) = 1/2, over √4.
    assert!((h["se_absolute"].as_f64().unwrap() - 0.25).abs() < 1e-12, "{h}");
    let (independent, info) = run(&[], &dir.path().join("independent"));
    assert_eq!(info["standard_errors"], "independent samples");
    let hi = independent.iter().find(|r| r["area"] == country.as_str() && r["measure"] == "H").unwrap();
    let se = |h: f64| (h * (1.0 - h) / 3.0).sqrt();
    assert!((hi["se_absolute"].as_f64().unwrap() - se(0.5).hypot(se(0.75))).abs() < 1e-12);
    // A round column with three values is an error naming the column.
    let three = write(dir.path(), "three.csv", "year,income\n1,0\n2,1\n3,1\n");
    let spec1 = write(dir.path(), "spec1.csv", "dimension,indicator,weight\ni,income,1\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tpmap"))
        .args(["mpi", "--k", "1", "--round", "year", "--quiet", "--data"])
        .arg(&three)
        .arg("--spec")
        .arg(&spec1)
        .arg("--out")
        .arg(dir.path().join("o3"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'year' has 3 distinct values"));
}

#[test]
fn changes_between_two_rounds_through_the_cli() {
    // Round 0 is Alkire & Foster's example (H = 1/2, A = 3/4, M0 = 3/8); in round 1, unit 3 is
    // deprived only in income and education (score 2/4, still poor) and unit 4 gains water too
    // (2/4, now poor): H = 3/4, A = (2/4 + 2/4 + 2/4)/3 = 1/2, M0 = 3/8. Three years apart.
    let dir = tempfile::tempdir().unwrap();
    let header = "id,region,income,education,health,water\n";
    let r0 = write(dir.path(), "r0.csv", &format!("{header}1,a,0,0,0,0\n2,a,0,1,0,1\n3,b,1,1,1,1\n4,b,0,1,0,0\n"));
    let r1 = write(dir.path(), "r1.csv", &format!("{header}1,a,0,0,0,0\n2,a,0,1,0,1\n3,b,1,1,0,0\n4,b,0,1,0,1\n"));
    let spec = write(
        dir.path(),
        "spec.csv",
        "dimension,indicator,weight\ni,income,1/4\ne,education,1/4\nh,health,1/4\nw,water,1/4\n",
    );
    let out = dir.path().join("out");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tpmap"))
        .args(["mpi", "--k", "50%", "--areas", "region", "--years", "3", "--quiet"])
        .arg("--data")
        .arg(&r0)
        .arg("--then")
        .arg(&r1)
        .arg("--spec")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    for f in ["changes.csv", "changes.parquet", "changes.json", "t0/measures.csv", "t1/measures.csv", "timing.json"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("changes.json")).unwrap()).unwrap();
    assert_eq!(rows.len(), 21); // country, a, b × H, A, M0 and four censored headcounts
    let get = |area: &str, m: &str, field: &str| {
        rows.iter().find(|r| r["area"] == area && r["measure"] == m).unwrap()[field].as_f64().unwrap()
    };
    let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    let country = rows[0]["area"].as_str().unwrap().to_string();
    close(get(&country, "H", "absolute"), 0.25);
    close(get(&country, "H", "relative"), 0.5);
    close(get(&country, "A", "absolute"), -0.25);
    close(get(&country, "A", "relative"), -1.0 / 3.0);
    close(get(&country, "M0", "absolute"), 0.0);
    close(get(&country, "H", "annualised_absolute"), 0.25 / 3.0);
    close(get(&country, "A", "annualised_relative"), (2.0f64 / 3.0).powf(1.0 / 3.0) - 1.0);
    // H's standard error in each round: √(H(1−H)/(n−1)), n = 4; the rounds are independent.
    let se = |h: f64| (h * (1.0 - h) / 3.0).sqrt();
    close(get(&country, "H", "se_absolute"), (se(0.5).powi(2) + se(0.75).powi(2)).sqrt());
    // Censored headcounts: health from 1/4 (unit 3) to 0; water 2/4 both rounds (units 2, 3 then
    // 2, 4). The SE of a 0/1 mean has the same form as H's.
    let cen = |ind: &str, field: &str| {
        rows.iter().find(|r| r["area"] == country.as_str() && r["indicator"] == ind).unwrap()[field].as_f64().unwrap()
    };
    close(cen("health", "t0"), 0.25);
    close(cen("health", "absolute"), -0.25);
    close(cen("health", "se_absolute"), se(0.25));
    close(cen("water", "absolute"), 0.0);
    close(cen("water", "se_absolute"), (2.0 * se(0.5).powi(2)).sqrt());
    // Area a did not change at all.
    let a = rows.iter().find(|r| r["level"] == "region" && r["measure"] == "M0" && r["absolute"] == 0.0);
    assert!(a.is_some());
    // Asking for years without a second round is a usage error.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tpmap"))
        .args(["mpi", "--k", "50%", "--years", "3", "--quiet"])
        .arg("--data")
        .arg(&r0)
        .arg("--spec")
        .arg(&spec)
        .arg("--out")
        .arg(dir.path().join("o2"))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
}
