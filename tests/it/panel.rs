//! Year over year (`tpmap::panel`): SYNTHETIC rounds with known dynamics are read back without a
//! rejected row, matched by every route, their flows balance in every area, and the follow-up
//! estimate recovers the effect the generator put in (and finds none where there is none).

use tpmap::ingest::ingest;
use tpmap::panel::effects::{effects, read_served};
use tpmap::panel::synth::{Dynamics, PanelSynthOptions, generate, write};
use tpmap::panel::{Fate, Panel, PanelOptions, Route};

fn rounds(dir: &std::path::Path, effect: f64, seed: u64) -> Vec<tpmap::panel::synth::Truth> {
    let opts = PanelSynthOptions {
        households: 12_000,
        seed,
        provinces: vec![40, 57, 90],
        years: vec![2561, 2562],
        dynamics: Dynamics { served_effect: effect, ..Dynamics::default() },
    };
    let (rounds, truths) = generate(&opts).unwrap();
    write(&rounds, &truths, &opts.dynamics, dir).unwrap();
    truths
}

fn read(dir: &std::path::Path, year: u16) -> tpmap::ingest::Ingested {
    let d = dir.join(year.to_string());
    let got = ingest(&d.join("households.parquet"), &d.join("persons.parquet"), &Default::default()).unwrap();
    for t in [&got.report.households, &got.report.persons] {
        assert_eq!(t.rejected, 0, "{year}: {:?}", t.by_reason);
    }
    got
}

#[test]
fn synthetic_rounds_match_by_every_route_and_balance_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let truths = rounds(tmp.path(), 0.25, 11);
    let (a, b) = (read(tmp.path(), 2561), read(tmp.path(), 2562));
    let p = Panel::build(&a.extract, &b.extract, &PanelOptions::default()).unwrap();
    let s = &p.summary;
    for r in [Route::SameHousehold, Route::Members, Route::Split, Route::New] {
        assert!(s.by_route.get(&r).copied().unwrap_or(0) > 0, "no household matched by {r:?}: {s:?}");
    }
    assert!(s.by_fate[&Fate::Vanished] > 0 && s.by_fate[&Fate::Continues] > 0);
    // Every household of each round is accounted for.
    assert_eq!(s.by_route.values().sum::<u64>(), s.households_t1);
    assert_eq!(s.by_fate.values().sum::<u64>(), s.households_t);
    eprintln!("{s:?}\n{:?}", p.transitions[0]);
    assert!(s.persons_in_both > 0 && s.persons_only_t > 0 && s.persons_only_t1 > 0);
    // The identity, in every area, for poor and target poor.
    assert!(p.transitions.len() > 100);
    assert_eq!(p.transitions[0].level, "country");
    for a in &p.transitions {
        assert!(a.poor.balances(), "{} {}: {:?}", a.level, a.area, a.poor);
        assert!(a.target.balances(), "{} {}: {:?}", a.level, a.area, a.target);
        assert!(a.people.balances(), "{} {}: {:?}", a.level, a.area, a.people);
    }
    let c = &p.transitions[0].poor;
    assert!(c.exits > 0 && c.entries > 0 && c.stayed > 0 && c.new_poor > 0 && c.gone_poor > 0);
    // Moves cancel at the country level and not below it.
    assert_eq!((c.moved_in, c.moved_out), (0, 0));
    // People: the persons in both rounds are the continuing ones, and they add up.
    let people = &p.transitions[0].people;
    assert_eq!(people.stayed + people.exits + people.entries + people.never, s.persons_in_both);
    assert_eq!(
        (people.stayed, people.exits, people.entries),
        (s.persons_stayed_poor, s.persons_left_poverty, s.persons_fell_into_poverty)
    );
    assert!(p.transitions.iter().any(|a| a.poor.moved_in > 0));
    // The follow-up recovers the effect put in.
    let served = read_served(&tmp.path().join("2561").join("served.csv"), &a.extract.edition).unwrap();
    assert!(!served.is_empty());
    let (e, unknown) = effects(&p, &served);
    assert_eq!(unknown, 0);
    let all = e.iter().find(|x| x.program == "all").unwrap();
    let truth = truths[0].expected_effect;
    assert!(truth > 0.2, "{truth}");
    assert!(all.ci_low <= truth && truth <= all.ci_high, "truth {truth} outside [{}, {}]", all.ci_low, all.ci_high);
    assert!(all.ci_low > 0.1, "the effect should be found: {all:?}");
    assert!(all.matched as f64 > 0.95 * all.followed as f64);
    eprintln!("truth {truth}: {all:?}");
}

#[test]
fn no_effect_is_found_where_there_is_none() {
    let tmp = tempfile::tempdir().unwrap();
    let truths = rounds(tmp.path(), 0.0, 12);
    assert_eq!(truths[0].expected_effect, 0.0);
    let (a, b) = (read(tmp.path(), 2561), read(tmp.path(), 2562));
    let p = Panel::build(&a.extract, &b.extract, &PanelOptions::default()).unwrap();
    let served = read_served(&tmp.path().join("2561").join("served.csv"), &a.extract.edition).unwrap();
    let (e, _) = effects(&p, &served);
    let all = e.iter().find(|x| x.program == "all").unwrap();
    assert!(all.ci_low <= 0.0 && 0.0 <= all.ci_high, "{all:?}");
}

#[test]
fn a_bad_served_list_is_named_by_file_row_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("served.csv");
    std::fs::write(&f, "household_id,program,indicator\n4001000000101,p,1.1\n4001000000101,p,nonsense\n").unwrap();
    let e = read_served(&f, &tpmap::indicators::Edition::bmn_2560()).unwrap_err().to_string();
    assert!(e.contains("served.csv") && e.contains("row 2") && e.contains("indicator"), "{e}");
}

/// A served list's bad row is named on the line a text editor shows it on, past comment lines
/// and blank lines, whatever the line ends.
#[test]
fn a_bad_served_row_is_named_on_its_line_past_comments() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("served.csv");
    for end in ["\n", "\r\n"] {
        let text = [
            "# served in 2561, \"round one\"",
            "household_id,program,indicator",
            "4001000000101,p,1.1",
            "",
            "# the next one is wrong",
            "4001000000101,p,nonsense",
        ]
        .join(end);
        std::fs::write(&f, text + end).unwrap();
        match read_served(&f, &tpmap::indicators::Edition::bmn_2560()) {
            Err(tpmap::Error::InvalidRow { row, line, column, .. }) => {
                assert_eq!((row, line, column.as_str()), (2, Some(6), "indicator"), "{end:?}")
            }
            other => panic!("{end:?}: {other:?}"),
        }
    }
}

/// A quote inside an unquoted field (a program named `p"2`) is an ordinary character, as the csv
/// crate reads it: the comment line after it is still a comment and the bad row is named on its
/// line; a list ending in a comment line without a line end has no row more than it shows.
#[test]
fn a_quote_inside_a_field_and_a_last_comment_line_are_read_as_written() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("served.csv");
    let edition = tpmap::indicators::Edition::bmn_2560();
    let head = "household_id,program,indicator\n4001000000101,p\"2,1.1\n# checked\n";
    std::fs::write(&f, format!("{head}4001000000101,p,nonsense\n")).unwrap();
    match read_served(&f, &edition) {
        Err(tpmap::Error::InvalidRow { row, line, column, .. }) => {
            assert_eq!((row, line, column.as_str()), (2, Some(4), "indicator"))
        }
        other => panic!("{other:?}"),
    }
    for end in ["# end of the list", "# end\r"] {
        std::fs::write(&f, format!("{head}4001000000102,p,1.2\n{end}")).unwrap();
        let served = read_served(&f, &edition).unwrap();
        let programs: Vec<&str> = served.iter().map(|s| s.program.as_str()).collect();
        assert_eq!(programs, ["p\"2", "p"], "{end:?}");
    }
}

#[test]
fn the_command_line_writes_the_follow_up_and_refuses_bad_rounds() {
    let tmp = tempfile::tempdir().unwrap();
    let tpmap = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tpmap")).args(args).current_dir(tmp.path()).output().unwrap()
    };
    let o = tpmap(&[
        "synth",
        "--households",
        "3000",
        "--provinces",
        "40",
        "--years",
        "2561,2562",
        "--out",
        "rounds",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = tpmap(&["panel", "rounds/2561", "rounds/2562", "--out", "out"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("by the same keys") && said.contains("Observational"), "{said}");
    for f in ["matches.parquet", "transitions.csv", "transitions.parquet", "effects.csv", "panel.json", "panel.html"] {
        assert!(tmp.path().join("out").join(f).exists(), "{f}");
    }
    // The page: the data's SYNTHETIC notice, every province's tile with its Thai name, the
    // follow-up with its caveat.
    let page = std::fs::read_to_string(tmp.path().join("out/panel.html")).unwrap();
    assert!(page.contains("SYNTHETIC DATA"));
    assert_eq!(page.matches("<g class=\"tile\"").count(), 77);
    assert!(page.contains(">ขอนแก่น</text>") && page.contains("id=\"follow-up\"") && page.contains("Observational"));
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("out/panel.json")).unwrap()).unwrap();
    assert_eq!(j["served_rows_not_found"], 0);
    assert!(j["summary"]["households_t"].as_u64().unwrap() == 3000);
    // `tpmap run` over the two rounds: the later round's job, and the comparison in panel/ and
    // in the report's "Year over year" section.
    let o = tpmap(&["run", "rounds/2561", "rounds/2562", "--out", "run", "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["report.html", "measures.csv", "panel/matches.parquet", "panel/panel.html", "panel/trajectories.parquet"]
    {
        assert!(tmp.path().join("run").join(f).exists(), "{f}");
    }
    let report = std::fs::read_to_string(tmp.path().join("run/report.html")).unwrap();
    assert!(report.contains("id=\"year-over-year\"") && report.contains("href=\"panel/panel.html\""));
    assert!(report.contains("2561 → 2562") && report.contains("Observational"));
    // The section's own map of the net change, beside the report's map (distinct ids).
    assert!(report.contains("<svg id=\"change-map\"") && report.matches("<svg id=\"map\"").count() == 1);
    assert_eq!(report.matches("<g class=\"tile\"").count(), 2 * 77);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("run/report.json")).unwrap()).unwrap();
    assert_eq!(r["panel"]["pairs"][0]["summary"], j["summary"]);
    assert_eq!(r["summary"]["households"], j["summary"]["households_t1"]);
    // One folder: no comparison.
    let o = tpmap(&["run", "rounds/2562", "--out", "one", "--quiet"]);
    assert!(o.status.success());
    assert!(!tmp.path().join("one/panel").exists());
    // A partitioned run compares too (reading the rounds again): the same comparison and report
    // section; within a memory budget it refuses, before writing anything.
    let o = tpmap(&["run", "rounds/2561", "rounds/2562", "--out", "parts", "--partition", "province", "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["transitions.csv", "effects.csv", "panel.json"] {
        let read = |d: &str| std::fs::read(tmp.path().join(d).join("panel").join(f)).unwrap();
        assert_eq!(read("run"), read("parts"), "{f}");
    }
    let parts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("parts/report.json")).unwrap()).unwrap();
    assert_eq!(parts["panel"]["pairs"], r["panel"]["pairs"]);
    assert!(parts["partition"].is_object());
    assert!(std::fs::read_to_string(tmp.path().join("parts/report.html")).unwrap().contains("id=\"year-over-year\""));
    // Within a memory budget too (refused before the twenty-sixth session): the same comparison.
    let o = tpmap(&["run", "rounds/2561", "rounds/2562", "--out", "budget", "--max-memory", "4GiB", "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["transitions.csv", "effects.csv", "panel.json"] {
        let read = |d: &str| std::fs::read(tmp.path().join(d).join("panel").join(f)).unwrap();
        assert_eq!(read("run"), read("budget"), "{f}");
    }
    // `tpmap panel` below its estimate: refused before any round is read, nothing written.
    let o = tpmap(&["panel", "rounds/2561", "rounds/2562", "--out", "small", "--max-memory", "64MiB"]);
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && said.contains("comparing these 2 rounds needs"), "{said}");
    assert!(!tmp.path().join("small").exists());
    // Three rounds: each pair in its folder, trajectories through all.
    let o = tpmap(&[
        "synth",
        "--households",
        "1000",
        "--provinces",
        "40",
        "--years",
        "2561,2562,2563",
        "--out",
        "three",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = tpmap(&["panel", "three/2561", "three/2562", "three/2563", "--out", "out3", "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["2561-2562/effects.csv", "2562-2563/panel.html", "trajectories.parquet"] {
        assert!(tmp.path().join("out3").join(f).exists(), "{f}");
    }
    // The same round twice: its columns are numbered, nothing collides.
    let o = tpmap(&["panel", "three/2561", "three/2561", "--out", "twice", "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("twice/panel.json")).unwrap()).unwrap();
    assert_eq!(j["summary"]["by_route"]["same_household"], j["summary"]["households_t"]);
    let o = tpmap(&["panel", "three/2561", "three/2562", "three/2563", "--served", "x.csv", "--out", "never"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--served goes with two rounds"));
    // Years that are not consecutive; a round that is not there.
    let o = tpmap(&["synth", "--households", "100", "--years", "2561,2563", "--out", "bad"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("consecutive"));
    let o = tpmap(&["panel", "rounds/2561", "nowhere", "--out", "never"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("nowhere"));
    assert!(!tmp.path().join("never").exists());
}

#[test]
fn trajectories_follow_every_household_through_three_rounds() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = PanelSynthOptions {
        households: 4_000,
        seed: 3,
        provinces: vec![40],
        years: vec![2561, 2562, 2563],
        dynamics: Dynamics::default(),
    };
    let (rounds, truths) = generate(&opts).unwrap();
    assert_eq!(truths.len(), 2);
    write(&rounds, &truths, &opts.dynamics, tmp.path()).unwrap();
    let got: Vec<_> = [2561, 2562, 2563].iter().map(|&y| read(tmp.path(), y)).collect();
    let panels: Vec<Panel> =
        got.windows(2).map(|w| Panel::build(&w[0].extract, &w[1].extract, &PanelOptions::default()).unwrap()).collect();
    let names: Vec<String> = ["2561", "2562", "2563"].map(String::from).to_vec();
    let served: Vec<_> = (0..2)
        .map(|r| read_served(&tmp.path().join(&names[r]).join("served.csv"), &got[r].extract.edition).unwrap())
        .collect();
    let t = tpmap::panel::output::trajectories_frame(&panels, &names, &served).unwrap();
    // Each round's households once each.
    for (y, g) in names.iter().zip(&got) {
        let ids = t.column(&format!("household_id_{y}")).unwrap().drop_nulls();
        assert_eq!(ids.len() as u64, g.report.households.accepted);
        assert_eq!(ids.n_unique().unwrap(), ids.len());
    }
    // A trajectory never skips a round: present in the first and third means present in the second.
    let has = |y: &str| t.column(&format!("household_id_{y}")).unwrap().is_not_null();
    let skips = (has("2561") & has("2563")) & !has("2562");
    assert_eq!(skips.sum(), Some(0));
    // Programs are carried (the served lists are not empty).
    assert!(!t.column("programs_2561").unwrap().drop_nulls().is_empty());
}

#[test]
fn rounds_of_different_editions_compare_through_a_mapping() {
    use tpmap::indicators::Edition;
    use tpmap::panel::editions::EditionMap;
    let tmp = tempfile::tempdir().unwrap();
    rounds(tmp.path(), 0.25, 21);
    // The later round's edition calls indicator 2.4 "2.9".
    let base = Edition::bmn_2560();
    let no = (0..base.len()).map(|i| base.indicator(i)).find(|i| i.code.as_deref() == Some("2.4")).unwrap().no;
    let sel: Vec<String> = base
        .selection("tpmap")
        .unwrap()
        .iter()
        .map(|&i| base.indicator(i).label())
        .map(|l| if l == "2.4" { "2.9".to_string() } else { l })
        .collect();
    let renamed = base
        .with_overrides(&format!(
            "id = \"bmn-test\"\n[selections]\ntpmap = {sel:?}\n[[indicator]]\nno = {no}\ncode = \"2.9\"\n"
        ))
        .unwrap();
    let d = tmp.path().join("2562");
    let opts = tpmap::ingest::IngestOptions { edition: std::sync::Arc::new(renamed.clone()), ..Default::default() };
    let b2 = ingest(&d.join("households.parquet"), &d.join("persons.parquet"), &opts).unwrap();
    let (a, b) = (read(tmp.path(), 2561), read(tmp.path(), 2562));
    // Without a mapping: refused, saying what to give.
    let e = Panel::build(&a.extract, &b2.extract, &PanelOptions::default()).err().unwrap().to_string();
    assert!(e.contains("bmn-test") && e.contains("--edition-map"), "{e}");
    // By labels only: 2.4 has no counterpart, and says so; the flows still balance.
    let by_label =
        PanelOptions { editions: Some(EditionMap::by_label(&a.extract.edition, &renamed)), ..Default::default() };
    let p = Panel::build(&a.extract, &b2.extract, &by_label).unwrap();
    assert_eq!(p.editions.only_earlier, ["2.4"]);
    assert_eq!(p.editions.only_later, ["2.9"]);
    assert!(!p.indicators.iter().any(|i| i.label == "2.4"));
    assert!(p.transitions.iter().all(|t| t.poor.balances()));
    // With the file's pair: the same flows as comparing the rounds in one edition.
    let f = tmp.path().join("map.toml");
    std::fs::write(&f, "earlier = \"bmn-2560\"\nlater = \"bmn-test\"\n[[pair]]\nearlier = \"2.4\"\nlater = \"2.9\"\n")
        .unwrap();
    let mapped = PanelOptions {
        editions: Some(EditionMap::load(&f, &a.extract.edition, &renamed).unwrap()),
        ..Default::default()
    };
    let p = Panel::build(&a.extract, &b2.extract, &mapped).unwrap();
    let same = Panel::build(&a.extract, &b.extract, &PanelOptions::default()).unwrap();
    assert!(p.editions.only_earlier.is_empty());
    assert_eq!(p.transitions, same.transitions);
    let served = read_served(&tmp.path().join("2561").join("served.csv"), &a.extract.edition).unwrap();
    let (e1, _) = effects(&p, &served);
    let (e2, _) = effects(&same, &served);
    assert_eq!(format!("{e1:?}"), format!("{e2:?}"));
}

#[test]
fn members_without_citizen_ids_are_linked_by_name_birth_date_and_address() {
    // The later round with nine in ten citizen IDs blanked: households that moved (new keys) are
    // found by linking their members, as they were by IDs.
    let tmp = tempfile::tempdir().unwrap();
    rounds(tmp.path(), 0.25, 31);
    let (a, b) = (read(tmp.path(), 2561), read(tmp.path(), 2562));
    let by_id = Panel::build(&a.extract, &b.extract, &PanelOptions::default()).unwrap();
    let mut blanked = b.extract.clone();
    for (k, id) in blanked.persons.citizen_id.iter_mut().enumerate() {
        if k % 10 != 0 {
            *id = None;
        }
    }
    let p = Panel::build(&a.extract, &blanked, &PanelOptions::default()).unwrap();
    let linked = p.summary.by_route.get(&Route::Linked).copied().unwrap_or(0);
    assert!(linked > 100, "{:?}", p.summary.by_route);
    // The households found by members' IDs before are found again, by IDs left or by linking.
    let moved: Vec<usize> = (0..by_id.predecessor.len())
        .filter(|&j| by_id.matches.iter().any(|m| m.t1 == Some(j as u32) && m.route == Some(Route::Members)))
        .collect();
    assert!(moved.len() > 100);
    let same = moved.iter().filter(|&&j| p.predecessor[j] == by_id.predecessor[j]).count();
    assert!(same as f64 >= 0.97 * moved.len() as f64, "{same} of {}", moved.len());
    // No household found wrongly: every predecessor found agrees with the one by IDs.
    let wrong = (0..p.predecessor.len())
        .filter(|&j| {
            p.predecessor[j].is_some() && by_id.predecessor[j].is_some() && p.predecessor[j] != by_id.predecessor[j]
        })
        .count();
    assert!(wrong as f64 <= 0.002 * p.predecessor.len() as f64, "{wrong} households matched differently");
    assert!(p.transitions.iter().all(|t| t.poor.balances() && t.people.balances()));
}

#[test]
fn target_poor_follow_tpmaps_published_series() {
    // 2565 → 2566: TPMAP's target poor fell from 1,025,782 to 655,365. The synthetic rounds
    // follow the ratio (scaled to the first round), and the effect put in is still the truth.
    let opts = |follow_tpmap: bool| PanelSynthOptions {
        households: 12_000,
        seed: 5,
        provinces: vec![40, 57, 90],
        years: vec![2564, 2565, 2566],
        dynamics: Dynamics { follow_tpmap, ..Dynamics::default() },
    };
    let (rounds, truths) = generate(&opts(true)).unwrap();
    let spec = tpmap::score::Spec::tpmap(&rounds[0].extract.edition, tpmap::score::DimensionMask::ALL).unwrap();
    let first = count_target(&rounds[0].extract, &spec);
    for (n, t) in truths.iter().enumerate() {
        let year = rounds[n + 1].year;
        let want = first * tpmap::panel::synth::tpmap_target_poor(year) / tpmap::panel::synth::tpmap_target_poor(2564);
        assert!((t.target_poor_goal - want).abs() < 1e-6, "{year}");
        assert!((t.target_poor - want).abs() <= 0.01 * want, "{year}: {} for {want}", t.target_poor);
        assert_eq!(t.target_poor, count_target(&rounds[n + 1].extract, &spec));
        assert!(t.exit + Dynamics::default().served_effect <= 1.0 + 1e-12);
    }
    // The drop needs a higher exit chance than the default's.
    assert!(truths[1].exit > Dynamics::default().exit, "{:?}", truths[1]);
    let fall = truths[1].target_poor / truths[0].target_poor;
    assert!((fall - 655_365.0 / 1_025_782.0).abs() < 0.02, "{fall}");
    // Without calibration the totals stay near the first round's.
    let (_, flat) = generate(&opts(false)).unwrap();
    assert_eq!(flat[1].exit, Dynamics::default().exit);
    assert!(flat[1].target_poor > 0.85 * first, "{} vs {first}", flat[1].target_poor);
}

/// Target poor people of an extract as the panel counts them (independently of the generator).
fn count_target(x: &tpmap::extract::Extract, spec: &tpmap::score::Spec) -> f64 {
    let profiles = tpmap::score::Profiles::of_households(x, tpmap::score::Unit::Households);
    let scores = tpmap::score::score(&profiles, spec).unwrap();
    let w = tpmap::score::target_weights(x, tpmap::score::Unit::People, tpmap::score::Welfare::Validated);
    (0..x.households.len()).filter(|&h| scores.poor[h]).map(|h| w[h]).sum()
}

/// SYNTHETIC rounds of `households` households in provinces 40, 57 and 90 (one per year of
/// `years`) written to `dir`, round `r`'s citizen IDs blanked but one person in `keep_one_in`
/// for each `(r, keep_one_in)` of `blank` (so that matching by name runs); the rounds' folders.
fn rounds_with_ids_blanked(
    dir: &std::path::Path,
    (households, seed): (u64, u64),
    years: &[u16],
    blank: &[(usize, usize)],
) -> Vec<std::path::PathBuf> {
    let opts = PanelSynthOptions {
        households,
        seed,
        provinces: vec![40, 57, 90],
        years: years.to_vec(),
        dynamics: Dynamics::default(),
    };
    let (mut rounds, truths) = generate(&opts).unwrap();
    for &(r, keep_one_in) in blank {
        for (k, id) in rounds[r].extract.persons.citizen_id.iter_mut().enumerate() {
            if k % keep_one_in != 0 {
                *id = None;
            }
        }
    }
    write(&rounds, &truths, &opts.dynamics, dir).unwrap();
    years.iter().map(|y| dir.join(y.to_string())).collect()
}

#[test]
fn rounds_read_a_wave_of_provinces_at_a_time_compare_as_when_read_whole() {
    use polars::prelude::*;
    // Three provinces, two rounds; the later round without most citizen IDs, so that matching
    // by linkage (the names kept across waves) runs too.
    let tmp = tempfile::tempdir().unwrap();
    let dirs = rounds_with_ids_blanked(tmp.path(), (6_000, 41), &[2561, 2562], &[(1, 10)]);
    let ((_, a), (waves, b)) = whole_and_by_province(&dirs, tmp.path());
    // Read in three waves (the routing bucket 0 of unreadable rows is empty here).
    let s = &waves.pairs[0].summary;
    assert!(s.by_route.get(&Route::Linked).copied().unwrap_or(0) > 50, "{s:?}");
    // Rows in the order read (here the files' own: provinces in order), the same either way.
    for (f, keys) in [
        ("matches.parquet", ["household_id_t1", "household_id_t"]),
        ("trajectories.parquet", ["household_id_2561", "household_id_2562"]),
    ] {
        let frame = |dir: &std::path::Path| {
            let df = ParquetReader::new(std::fs::File::open(dir.join(f)).unwrap()).finish().unwrap();
            df.sort(keys, SortMultipleOptions::default().with_nulls_last(true)).unwrap()
        };
        let (x, y) = (frame(&a), frame(&b));
        assert!(x.height() > 6_000);
        assert!(x.equals_missing(&y), "{f} differs");
    }
}

#[test]
fn three_rounds_read_a_wave_of_provinces_at_a_time_compare_as_when_read_whole() {
    use tpmap::panel::rounds::{Reading, RoundsOptions, write_rounds};
    // The middle round is the later of one pair and the earlier of the next: read in waves, its
    // names wait on disk and are read back twice, for each pair's own persons. Most of its
    // citizen IDs and some of the last round's are blanked, so that both pairs link by name.
    let tmp = tempfile::tempdir().unwrap();
    let dirs = rounds_with_ids_blanked(tmp.path(), (4_000, 47), &[2561, 2562, 2563], &[(1, 10), (2, 3)]);
    let run = |reading: Reading, name: &str| {
        let out = tmp.path().join(name);
        std::fs::create_dir_all(&out).unwrap();
        (write_rounds(&dirs, &RoundsOptions { reading, ..Default::default() }, &out, None).unwrap(), out)
    };
    let ((whole, a), (waves, b)) = (run(Reading::Whole, "whole"), run(Reading::Provinces, "waves"));
    // Within a budget too: the middle round's names held for the second pair, the first pair's
    // matches and flows beside the second's matching, all counted.
    let estimate = tpmap::panel::rounds::need(&dirs, &RoundsOptions::default(), None).unwrap();
    assert!(estimate.what.contains("round 2 to round 3") || estimate.what.starts_with("reading"), "{estimate:?}");
    let c = tmp.path().join("budget");
    std::fs::create_dir_all(&c).unwrap();
    let budget = RoundsOptions { max_memory: Some(estimate.bytes + (64 << 20)), ..Default::default() };
    let within = write_rounds(&dirs, &budget, &c, None).unwrap();
    assert_eq!(waves.pairs.len(), 2);
    for ((w, v), u) in whole.pairs.iter().zip(&waves.pairs).zip(&within.pairs) {
        assert!(v.summary.by_route.get(&Route::Linked).copied().unwrap_or(0) > 20, "{:?}", v.summary);
        assert_eq!(format!("{:?}", w.summary), format!("{:?}", v.summary));
        assert_eq!(format!("{:?}", u.summary), format!("{:?}", v.summary));
        for f in ["transitions.csv", "effects.csv", "panel.json"] {
            let (x, y, z) = (a.join(&v.folder).join(f), b.join(&v.folder).join(f), c.join(&v.folder).join(f));
            assert_eq!(std::fs::read(&x).unwrap(), std::fs::read(y).unwrap(), "{} {f}", v.folder);
            assert_eq!(std::fs::read(x).unwrap(), std::fs::read(z).unwrap(), "{} {f} within a budget", v.folder);
        }
    }
}

#[test]
fn rounds_compared_within_a_budget_compare_as_without_or_are_refused_with_nothing_written() {
    use tpmap::panel::rounds::{RoundsOptions, need, write_rounds};
    // Most of the later round's citizen IDs blanked: many of its persons' names are kept for
    // matching by name, which the estimate made before reading cannot know.
    let tmp = tempfile::tempdir().unwrap();
    let dirs = rounds_with_ids_blanked(tmp.path(), (4_000, 53), &[2561, 2562], &[(1, 10)]);
    let run = |max_memory: Option<u64>, name: &str| {
        let out = tmp.path().join(name);
        std::fs::create_dir_all(&out).unwrap();
        (write_rounds(&dirs, &RoundsOptions { max_memory, ..Default::default() }, &out, None), out)
    };
    let (free, a) = run(None, "free");
    free.unwrap();
    let estimate = need(&dirs, &RoundsOptions::default(), None).unwrap();
    // The estimate counts the rounds' columns: more than the fixed share, and where its peak is.
    assert!(estimate.bytes > tpmap::panel::rounds::PANEL_BYTES_FIXED, "{estimate:?}");
    assert!(estimate.what.starts_with("matching") || estimate.what.starts_with("reading"), "{estimate:?}");
    // Below it: refused before any round is read, nothing written.
    let (below, out) = run(Some(estimate.bytes - 1), "below");
    let e = below.unwrap_err().to_string();
    assert!(e.contains("comparing these 2 rounds needs") && e.contains("give at least that"), "{e}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    // Above it, the smallest budget accepted (to a KiB): every budget below is refused with the
    // budget and what it lacks named, before matching and with nothing written (the names kept
    // for matching by name are measured once known, while the rounds are read and before
    // matching); the smallest accepted compares as without a budget.
    let (mut lo, mut hi) = (estimate.bytes - 1, estimate.bytes + (64 << 20));
    assert!(run(Some(hi), "wide").0.is_ok());
    while hi - lo > 1024 {
        let mid = lo + (hi - lo) / 2;
        let (got, out) = run(Some(mid), &format!("b{mid}"));
        match got {
            Ok(_) => hi = mid,
            Err(e) => {
                let e = e.to_string();
                assert!(e.starts_with("configuration: --max-memory") && e.contains("give at least that"), "{e}");
                assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "{e}");
                lo = mid;
            }
        }
    }
    let (within, b) = run(Some(hi), "within");
    let within = within.unwrap();
    let linked = within.pairs[0].summary.by_route.get(&Route::Linked).copied().unwrap_or(0);
    assert!(linked > 20, "{:?}", within.pairs[0].summary);
    for f in ["transitions.csv", "effects.csv", "panel.json"] {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f}");
    }
    // The names kept for matching by name were counted: the smallest budget is above the estimate.
    assert!(hi > estimate.bytes, "{hi} {estimate:?}");
}

#[test]
fn a_round_out_of_province_order_with_an_id_in_two_provinces_reads_as_when_read_whole() {
    use polars::prelude::*;
    // The earlier round's files reversed (province 90 first, read in the last wave) and its first
    // person given the citizen ID of its last (province 40, the first wave): read a province at a
    // time, the round is read twice and keeps the first holder in the file, as read whole.
    let tmp = tempfile::tempdir().unwrap();
    let opts = PanelSynthOptions {
        households: 3_000,
        seed: 43,
        provinces: vec![40, 57, 90],
        years: vec![2561, 2562],
        dynamics: Dynamics::default(),
    };
    let (rounds, truths) = generate(&opts).unwrap();
    write(&rounds, &truths, &opts.dynamics, tmp.path()).unwrap();
    let earlier = tmp.path().join("2561");
    for name in ["households.parquet", "persons.parquet"] {
        let path = earlier.join(name);
        let mut df = ParquetReader::new(std::fs::File::open(&path).unwrap()).finish().unwrap().reverse();
        if name == "persons.parquet" {
            let mut ids: Vec<Option<String>> =
                df.column("citizen_id").unwrap().str().unwrap().iter().map(|v| v.map(str::to_string)).collect();
            let homes: Vec<u64> = df.column("household_id").unwrap().u64().unwrap().into_no_null_iter().collect();
            let last = ids.len() - 1;
            assert!(homes[0] / 100_000_000_000 == 90 && homes[last] / 100_000_000_000 == 40);
            ids[0] = ids[last].clone();
            assert!(ids[0].is_some());
            df.replace("citizen_id", Column::new("citizen_id".into(), ids)).unwrap();
        }
        ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
    }
    let dirs = [earlier, tmp.path().join("2562")];
    let ((whole, _), _) = whole_and_by_province(&dirs, tmp.path());
    assert_eq!(whole.reports[0].persons.by_reason.get(&tpmap::ingest::Reason::DuplicatePerson), Some(&1));
}

/// The rounds in `dirs` compared read whole and a province at a time (into `tmp`'s `whole` and
/// `waves`): the same summary, reports, `transitions.csv`, `effects.csv` and `panel.json`. Each
/// run's outcome and folder.
fn whole_and_by_province(
    dirs: &[std::path::PathBuf],
    tmp: &std::path::Path,
) -> (
    (tpmap::panel::rounds::RoundsOutcome, std::path::PathBuf),
    (tpmap::panel::rounds::RoundsOutcome, std::path::PathBuf),
) {
    use tpmap::panel::rounds::{Reading, RoundsOptions, write_rounds};
    let run = |reading: Reading, name: &str| {
        let out = tmp.join(name);
        std::fs::create_dir_all(&out).unwrap();
        let o = RoundsOptions { reading, ..Default::default() };
        (write_rounds(dirs, &o, &out, None).unwrap(), out)
    };
    let (whole, a) = run(Reading::Whole, "whole");
    let (waves, b) = run(Reading::Provinces, "waves");
    assert_eq!(format!("{:?}", whole.pairs[0].summary), format!("{:?}", waves.pairs[0].summary));
    for (w, v) in whole.reports.iter().zip(&waves.reports) {
        assert_eq!(format!("{w:?}"), format!("{v:?}"));
    }
    for f in ["transitions.csv", "effects.csv", "panel.json"] {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f}");
    }
    ((whole, a), (waves, b))
}

#[test]
fn a_panel_made_a_group_of_provinces_at_a_time_reads_back_whole_and_keeps_its_truth() {
    use tpmap::panel::synth::generate_in_groups;
    // Three provinces of 4,000-odd households each in groups of at most 8,000: two groups,
    // written one after the other into the same files.
    let tmp = tempfile::tempdir().unwrap();
    let opts = PanelSynthOptions {
        households: 12_000,
        seed: 17,
        provinces: vec![40, 57, 90],
        years: vec![2561, 2562],
        dynamics: Dynamics::default(),
    };
    let w = generate_in_groups(&opts, tmp.path(), 8_000).unwrap();
    assert_eq!(w.groups.len(), 2, "{:?}", w.groups);
    assert_eq!(w.households[0], 12_000);
    // IDs and keys are unique across the groups: nothing is rejected.
    let (a, b) = (read(tmp.path(), 2561), read(tmp.path(), 2562));
    assert_eq!(b.extract.households.len() as u64, w.households[1]);
    assert!(a.extract.households.village.is_sorted() && b.extract.households.village.is_sorted());
    let p = Panel::build(&a.extract, &b.extract, &PanelOptions::default()).unwrap();
    // Moves between provinces happen, within a group.
    let group = |v: &tpmap::areas::AreaCode| w.groups.iter().position(|g| g.contains(&v.province_number()));
    let (h0, h1) = (&a.extract.households, &b.extract.households);
    let mut across = 0;
    for (j, i) in p.successor.iter().enumerate().filter_map(|(i, j)| j.map(|j| (j as usize, i))) {
        let (from, to) = (h0.village[i], h1.village[j]);
        assert_eq!(group(&from), group(&to), "{from} -> {to}");
        across += usize::from(from.province_number() != to.province_number());
    }
    assert!(across > 0);
    let served = read_served(&tmp.path().join("2561").join("served.csv"), &a.extract.edition).unwrap();
    let (e, unknown) = effects(&p, &served);
    assert_eq!(unknown, 0);
    let all = e.iter().find(|x| x.program == "all").unwrap();
    let truth = w.truths[0].expected_effect;
    assert_eq!(all.followed, w.truths[0].followed);
    assert!(all.ci_low <= truth && truth <= all.ci_high, "truth {truth} outside [{}, {}]", all.ci_low, all.ci_high);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("truth.json")).unwrap()).unwrap();
    assert_eq!(json["follow_up"][0]["followed"], w.truths[0].followed);
}

#[test]
fn rounds_without_a_household_compare_to_empty_tables_whole_by_province_or_within_a_budget() {
    use tpmap::panel::rounds::{Reading, RoundsOptions, write_rounds};
    // The samples' headers and no row: nothing to match, every table written with its columns.
    let tmp = tempfile::tempdir().unwrap();
    let header = |f: &str| {
        let text =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data-samples").join(f))
                .unwrap();
        text.lines().find(|l| !l.starts_with('#')).unwrap().to_string() + "\n"
    };
    let dirs: Vec<std::path::PathBuf> = ["a", "b"].iter().map(|d| tmp.path().join(d)).collect();
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("households.csv"), header("households.csv")).unwrap();
        std::fs::write(d.join("persons.csv"), header("persons.csv")).unwrap();
    }
    // Within a budget too (the rounds read in waves, none of them holding a row).
    for (reading, name, max_memory) in
        [(Reading::Whole, "whole", None), (Reading::Provinces, "waves", None), (Reading::Auto, "budget", Some(1 << 30))]
    {
        let out = tmp.path().join(name);
        std::fs::create_dir_all(&out).unwrap();
        let o = RoundsOptions { reading, max_memory, ..Default::default() };
        let done = write_rounds(&dirs, &o, &out, None).unwrap();
        assert_eq!((done.pairs[0].summary.households_t, done.pairs[0].summary.households_t1), (0, 0));
        for f in ["matches.parquet", "trajectories.parquet"] {
            use polars::prelude::{ParquetReader, SerReader};
            let df = ParquetReader::new(std::fs::File::open(out.join(f)).unwrap()).finish().unwrap();
            assert_eq!(df.height(), 0, "{f}");
            assert!(df.width() > 5, "{f}: {:?}", df.get_column_names());
        }
    }
}
