//! Programs and plans: the illustrative catalogue end to end, determinism whatever the row order,
//! and (property test) capacities, quotas, budgets and exclusions never exceeded.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use tpmap::extract::Extract;
use tpmap::ids::Pseudonymizer;
use tpmap::ingest::{IngestOptions, ingest};
use tpmap::plan::{Allocation, Decline, PlanOptions, Subjects, allocate, household_plan};
use tpmap::programs::Catalogue;
use tpmap::score::Welfare;
use tpmap::score::{Profiles, Scores, Spec, Unit, score};

use crate::samples;

struct Scored {
    x: Extract,
    spec: Spec,
    profiles: Profiles,
    scores: Scores,
}

fn scored(x: Extract) -> Scored {
    let spec = Spec::tpmap(&x.edition, tpmap::score::DimensionMask::ALL).unwrap();
    let profiles = Profiles::of_households(&x, Unit::Households);
    let scores = score(&profiles, &spec).unwrap();
    Scored { x, spec, profiles, scores }
}

fn samples_scored() -> Scored {
    let got =
        ingest(&samples().join("households.csv"), &samples().join("persons.csv"), &IngestOptions::default()).unwrap();
    scored(got.extract)
}

fn catalogue(x: &Extract) -> Catalogue {
    Catalogue::load(samples().join("catalogue.toml"), &x.edition).unwrap()
}

#[test]
fn illustrative_catalogue_end_to_end() {
    let d = samples_scored();
    let c = catalogue(&d.x);
    assert!(c.illustrative);
    let agencies: HashSet<&str> = c.agencies.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(agencies.len(), 13, "the 12 ministries and the BMA");
    let s = Subjects::new(&d.x, &d.spec, &d.profiles, &d.scores, Welfare::Validated).unwrap();
    let a = allocate(&s, &c, &Vec::new(), &PlanOptions::default()).unwrap();
    assert!(!a.population_rows.is_empty());
    assert!(a.population_rows.iter().all(|&h| s.target[h as usize]));
    let lines = household_plan(&s, &c, &a);
    // One line per deprived indicator of each household of the population.
    let want: usize = a.population_rows.iter().map(|&h| s.needs(h as usize).count_ones() as usize).sum();
    assert_eq!(lines.len(), want);
    let e = &d.x.edition;
    let ex = e.find("1.4").unwrap();
    for l in &lines {
        if l.covered {
            assert!(!l.programs.is_empty() && l.gap.is_empty());
        } else {
            assert!(!l.gap.is_empty(), "a gap says why");
        }
        if l.indicator == ex {
            assert_eq!(l.gap, "no program covers this", "1.4 is deliberately uncovered");
        }
    }
    assert!(lines.iter().any(|l| l.covered) && lines.iter().any(|l| !l.covered && l.gap.contains("quota")));
    // The ended pilot never runs; every eligible unit is selected or declined.
    let pilot = c.program("old-pilot-2565").unwrap();
    assert!(!a.programs[pilot].active && a.programs[pilot].selected == 0);
    for (i, o) in a.programs.iter().enumerate() {
        let declined = a.declined.iter().filter(|x| x.program as usize == i).count() as u64;
        assert_eq!(o.eligible, o.selected + declined, "{}", o.id);
        assert_eq!(o.candidates, o.eligible + o.ineligible + o.unknown, "{}", o.id);
    }
    // Outputs: work lists carry pseudonyms, not household IDs; publication files suppress.
    let dir = tempfile::tempdir().unwrap();
    let ps = Pseudonymizer::new(b"test key");
    let sum = tpmap::report::write_plan(dir.path(), &s, &c, &a, &lines, &ps, &Default::default()).unwrap();
    assert_eq!(sum.covered, lines.iter().filter(|l| l.covered).count() as u64);
    let ids: HashSet<String> = d.x.households.id.iter().map(|i| i.0.to_string()).collect();
    for f in std::fs::read_dir(dir.path().join("worklists")).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        assert!(text.contains("ILLUSTRATIVE"));
        for field in text.split([',', '\n']) {
            assert!(!ids.contains(field.trim()), "household ID {field} in a work list");
        }
    }
    let prov = std::fs::read_to_string(dir.path().join("provinces.csv")).unwrap();
    assert!(prov.contains("<5"), "small cells suppressed");
    let amph = std::fs::read_to_string(dir.path().join("amphoes.csv")).unwrap();
    let mut rows = amph.lines().filter(|l| !l.starts_with('#'));
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    for row in rows {
        let cells: Vec<&str> = row.split(',').collect();
        for (name, cell) in header.iter().zip(&cells).skip(3) {
            // Counts of programs and agencies are not about people; coverage rates are percents.
            if matches!(*name, "programs" | "agencies") || name.starts_with("coverage_pct") || *cell == "s" {
                continue;
            }
            if let Ok(n) = cell.parse::<u64>() {
                assert!(n == 0 || n >= 5 || *name == "budget_baht", "unsuppressed small count {n} in {name}: {row}");
            }
        }
        let cell = |name: &str| cells[header.iter().position(|h| *h == name).unwrap()];
        // Covered and gaps add up to deprivations: neither may be small, or the other is hidden too.
        for (part, rest) in [(cell("covered"), cell("gaps"))] {
            for (a, b) in [(part, rest), (rest, part)] {
                if a == "<5" {
                    assert!(b == "<5" || b == "s", "complementary suppression: {row}");
                }
            }
        }
        let places = cell("places");
        let budget = cells[header.iter().position(|h| *h == "budget_baht").unwrap()];
        assert_eq!(places == "<5", budget.starts_with("<5"), "budget reveals few places: {row}");
    }
    assert!(dir.path().join("report.xlsx").exists() && dir.path().join("household_plan.parquet").exists());
}

#[test]
fn allocation_does_not_depend_on_row_order() {
    let base = samples_scored();
    // Shuffle both files' data rows.
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for name in ["households.csv", "persons.csv"] {
        let text = std::fs::read_to_string(samples().join(name)).unwrap();
        let (head, rows): (Vec<&str>, Vec<&str>) = {
            let mut it = text.lines();
            let mut head = Vec::new();
            for l in it.by_ref() {
                head.push(l);
                if !l.starts_with('#') {
                    break;
                }
            }
            (head, it.collect())
        };
        let mut rows = rows;
        rows.shuffle(&mut rng);
        std::fs::write(dir.path().join(name), format!("{}\n{}\n", head.join("\n"), rows.join("\n"))).unwrap();
    }
    let got =
        ingest(&dir.path().join("households.csv"), &dir.path().join("persons.csv"), &IngestOptions::default()).unwrap();
    let shuffled = scored(got.extract);
    let c = catalogue(&base.x);
    let key = |d: &Scored, a: &Allocation| -> Vec<(u64, String, String, u32)> {
        let mut v: Vec<_> = a
            .assignments
            .iter()
            .map(|g| {
                let person = g.person.map(|p| d.x.persons.first_name.get(p as usize).to_string()).unwrap_or_default();
                (d.x.households.id[g.household as usize].0, c.programs[g.program as usize].id.clone(), person, g.rank)
            })
            .collect();
        v.sort();
        v
    };
    let run = |d: &Scored| {
        let s = Subjects::new(&d.x, &d.spec, &d.profiles, &d.scores, Welfare::Validated).unwrap();
        let a = allocate(&s, &c, &Vec::new(), &PlanOptions::default()).unwrap();
        key(d, &a)
    };
    let (a, b) = (run(&base), run(&shuffled));
    assert!(!a.is_empty());
    assert_eq!(a, b, "same households, same plan, whatever the row order");
}

#[test]
fn what_if_registered_welfare_widens_the_population() {
    let d = samples_scored();
    let c = catalogue(&d.x);
    let sa = Subjects::new(&d.x, &d.spec, &d.profiles, &d.scores, Welfare::Validated).unwrap();
    let sb = Subjects::new(&d.x, &d.spec, &d.profiles, &d.scores, Welfare::Registered).unwrap();
    let opts = PlanOptions::default();
    let (a, b) = (allocate(&sa, &c, &Vec::new(), &opts).unwrap(), allocate(&sb, &c, &Vec::new(), &opts).unwrap());
    let (la, lb) = (household_plan(&sa, &c, &a), household_plan(&sb, &c, &b));
    let w = tpmap::report::what_if((&c, &a, &la), (&c, &b, &lb)).unwrap();
    assert!(w.population[1] >= w.population[0], "validated implies registered");
    assert_eq!(w.population_left, 0);
    assert_eq!(w.population[1] - w.population[0], w.population_entered);
    let helped_a: HashSet<u32> = a.assignments.iter().map(|g| g.household).collect();
    let helped_b: HashSet<u32> = b.assignments.iter().map(|g| g.household).collect();
    assert_eq!(w.entered.len(), helped_b.difference(&helped_a).count());
    assert_eq!(w.left.len(), helped_a.difference(&helped_b).count());
    assert_eq!(w.spent, [a.spent(), b.spent()]);
}

#[test]
fn served_households_and_explanations() {
    let d = samples_scored();
    let c = catalogue(&d.x);
    let s = Subjects::new(&d.x, &d.spec, &d.profiles, &d.scores, Welfare::Validated).unwrap();
    let a = allocate(&s, &c, &Vec::new(), &PlanOptions::default()).unwrap();
    // Mark the first household given the water tank as already receiving it.
    let tank = c.program("moi-water-tank").unwrap() as u32;
    let first = a.assignments.iter().find(|g| g.program == tank).unwrap().household;
    let dir = tempfile::tempdir().unwrap();
    let served = crate::write(
        dir.path(),
        "served.csv",
        &format!("household_id,program\n{},moi-water-tank\n", d.x.households.id[first as usize].0),
    );
    let served = tpmap::plan::served::read(&served, &d.x, &c).unwrap();
    let b = allocate(&s, &c, &served, &PlanOptions::default()).unwrap();
    assert!(!b.assignments.iter().any(|g| g.program == tank && g.household == first));
    assert!(
        b.declined
            .iter()
            .any(|x| x.program == tank && x.household == first && x.reason == Decline::AlreadyReceives(tank))
    );
    // A bad served row names file, row and column.
    let bad = crate::write(dir.path(), "bad.csv", "household_id,program\n999999999999999,moi-water-tank\n");
    let err = tpmap::plan::served::read(&bad, &d.x, &c).unwrap_err().to_string();
    assert!(err.contains("bad.csv") && err.contains("row 1") && err.contains("household_id"), "{err}");
    // Explanations for a household of the population.
    let h = a.population_rows[0] as usize;
    let p = c.program("msdhs-house-repair").unwrap();
    let (o, why) = tpmap::plan::explain(&s, &c, p, h, None);
    assert_eq!(o, c.programs[p].rule.eval(&s, h, None));
    assert!(why[0].condition == "all of" && why.iter().any(|r| r.condition == "target"));
}

#[test]
fn a_limit_on_decisions_stops_the_plan_naming_the_program() {
    // Every eligible unit is given a place or declined: the plan's decisions. At their count the
    // plan is the same as without a limit; one below it the plan stops, naming the program and
    // the limit (a partitioned run within a budget sets it from what the budget leaves).
    let d = samples_scored();
    let c = catalogue(&d.x);
    let s = Subjects::new(&d.x, &d.spec, &d.profiles, &d.scores, Welfare::Validated).unwrap();
    let all = allocate(&s, &c, &Vec::new(), &PlanOptions::default()).unwrap();
    let decided = (all.assignments.len() + all.declined.len()) as u64;
    assert!(decided > 0 && !all.declined.is_empty());
    assert_eq!(decided, all.programs.iter().map(|p| p.eligible).sum::<u64>());
    let at = PlanOptions { max_decisions: Some(decided), ..Default::default() };
    let same = allocate(&s, &c, &Vec::new(), &at).unwrap();
    assert_eq!(same.assignments, all.assignments);
    assert_eq!(same.declined.len(), all.declined.len());
    let below = PlanOptions { max_decisions: Some(decided - 1), ..Default::default() };
    let e = allocate(&s, &c, &Vec::new(), &below).unwrap_err().to_string();
    assert!(e.contains(&format!("decide on {decided} eligible units")), "{e}");
    assert!(e.contains(&format!("more than the {} it may hold", decided - 1)), "{e}");
    // The last program in fill order with eligible units is the one that passes the limit.
    let last = all.fill_order.iter().rev().map(|&i| &all.programs[i as usize]).find(|p| p.eligible > 0).unwrap();
    assert!(e.contains(&format!("by program '{}'", last.id)), "{e}");
}

#[test]
fn a_gap_names_at_most_sixteen_programs_and_quotes_their_rules_shortly() {
    // Twenty programs address every indicator, none eligible, each with a long rule: every
    // deprivation of the population is a gap, whose reason names the first sixteen programs
    // (their rules cut after 200 characters) and counts the other four. Before, a gap named
    // every program addressing it with its whole rule: a catalogue of thousands made each
    // line's reason megabytes long.
    let d = samples_scored();
    let rule = vec!["not true"; 40].join(" or ");
    assert!(rule.chars().count() > tpmap::plan::GAP_RULE_CHARS);
    let addresses: Vec<String> = INDICATORS.iter().map(|i| format!("\"{i}\"")).collect();
    let mut t = String::from(
        "[catalogue]\nid = \"gaps\"\nversion = \"1\"\nas_of = \"2026-10-01\"\n[[agency]]\nid = \"a\"\nname_th = \"ก\"\nname_en = \"A\"\n",
    );
    for i in 0..20 {
        t += &format!(
            "[[program]]\nid = \"p{i}\"\nname_th = \"p{i}\"\nagency = \"a\"\naddresses = [{}]\nunit = \"household\"\neligible = \"{rule}\"\nbenefit = {{ kind = \"service\" }}\nunit_cost = 1\n",
            addresses.join(", ")
        );
    }
    let c = Catalogue::from_toml(&t, &d.x.edition, "gaps").unwrap();
    let s = Subjects::new(&d.x, &d.spec, &d.profiles, &d.scores, Welfare::Validated).unwrap();
    let a = allocate(&s, &c, &Vec::new(), &PlanOptions::default()).unwrap();
    let lines = household_plan(&s, &c, &a);
    assert!(!lines.is_empty() && lines.iter().all(|l| !l.covered));
    let cut: String = rule.chars().take(tpmap::plan::GAP_RULE_CHARS).collect();
    for l in &lines {
        let parts: Vec<&str> = l.gap.split("; ").collect();
        assert_eq!(parts.len(), tpmap::plan::GAP_PROGRAMS_NAMED + 1, "{}", l.gap);
        for (i, part) in parts[..tpmap::plan::GAP_PROGRAMS_NAMED].iter().enumerate() {
            assert_eq!(*part, format!("p{i}: not eligible ({cut}…)"));
        }
        assert_eq!(parts[tpmap::plan::GAP_PROGRAMS_NAMED], "and 4 more programs address it");
    }
}

/// Every rule of the allocation holds: capacity, budget, quotas, exclusions, served lists, need,
/// and ranks 1..=eligible each used once by selected and declined units.
fn check_constraints(d: &Scored, c: &Catalogue, served: &[(u32, u32)], a: &Allocation) -> Result<(), String> {
    macro_rules! prop_assert {
        ($c:expr) => { if !$c { return Err(format!("{} failed", stringify!($c))); } };
        ($c:expr, $($m:tt)*) => { if !$c { return Err(format!($($m)*)); } };
    }
    macro_rules! prop_assert_eq {
        ($a:expr, $b:expr) => {
            if $a != $b {
                return Err(format!("{:?} != {:?}", $a, $b));
            }
        };
    }
    let s = Subjects::new(&d.x, &d.spec, &d.profiles, &d.scores, Welfare::Validated).unwrap();
    let served_set: HashSet<(u32, u32)> = served.iter().copied().collect();
    let mut given: HashMap<u32, HashSet<u32>> = HashMap::new();
    for (i, prog) in c.programs.iter().enumerate() {
        let mine: Vec<_> = a.assignments.iter().filter(|g| g.program as usize == i).collect();
        let n = mine.len() as u64;
        prop_assert_eq!(n, a.programs[i].selected);
        if let Some(t) = prog.capacity.total {
            prop_assert!(n <= t as u64);
        }
        if let Some(b) = prog.budget {
            prop_assert!(n * prog.unit_cost <= b);
        }
        let mut by_prov: HashMap<&str, u32> = HashMap::new();
        let mut by_amph: HashMap<&str, u32> = HashMap::new();
        for g in &mine {
            let v = d.x.households.village[g.household as usize].as_str();
            *by_prov.entry(&v[..2]).or_default() += 1;
            *by_amph.entry(&v[..4]).or_default() += 1;
            given.entry(g.household).or_default().insert(g.program);
            prop_assert!(!served_set.contains(&(g.household, g.program)), "served household given the program again");
            prop_assert!(s.needs(g.household as usize) & prog.addresses != 0, "given without need");
        }
        if let Some(q) = prog.capacity.per_province {
            prop_assert!(by_prov.values().all(|&k| k <= q));
        }
        if let Some(q) = prog.capacity.per_amphoe {
            prop_assert!(by_amph.values().all(|&k| k <= q));
        }
        // Ranks 1..=eligible, each used once, by selected and declined together.
        let mut ranks: Vec<u32> = mine
            .iter()
            .map(|g| g.rank)
            .chain(a.declined.iter().filter(|x| x.program as usize == i).map(|x| x.rank))
            .collect();
        ranks.sort_unstable();
        prop_assert_eq!(ranks, (1..=a.programs[i].eligible as u32).collect::<Vec<_>>());
        // Places once full stay full: nobody ranked after a capacity or budget decline got one.
        if let Some(first) = a
            .declined
            .iter()
            .filter(|x| x.program as usize == i && matches!(x.reason, Decline::Capacity | Decline::Budget))
            .map(|x| x.rank)
            .min()
        {
            prop_assert!(mine.iter().all(|g| g.rank < first));
        }
    }
    for (h, progs) in &given {
        for &p in progs {
            for &q in &c.programs[p as usize].excludes {
                prop_assert!(
                    !progs.contains(&(q as u32)),
                    "household {} given two programs that exclude each other",
                    h
                );
            }
        }
    }
    Ok(())
}

// ---- property test: constraints never exceeded -------------------------------------------

fn synthetic() -> &'static Scored {
    static S: OnceLock<Scored> = OnceLock::new();
    S.get_or_init(|| {
        let syn = tpmap::synth::Synthesizer::new(tpmap::synth::SynthOptions {
            households: 3000,
            seed: 11,
            provinces: vec![40, 50, 95],
            ..Default::default()
        })
        .unwrap();
        let chunk = syn.generate();
        scored(Extract::new(Arc::clone(syn.edition()), chunk.households, chunk.persons))
    })
}

const RULES: [&str; 6] = [
    "true",
    "target",
    "score >= 2/17",
    "any(age >= 60 or disabled)",
    "income < 50000 or members >= 4",
    "not province = 50",
];
const PERSON_RULES: [&str; 3] = ["true", "age >= 15 and age <= 59", "not disabled"];
const INDICATORS: [&str; 17] = [
    "1.1", "1.2", "1.3", "1.4", "2.1", "2.2", "2.3", "2.4", "3.1", "3.2", "3.3", "3.4", "4.1", "4.2", "4.3", "5.1",
    "5.2",
];

#[derive(Debug, Clone)]
struct P {
    addresses: Vec<usize>,
    person: bool,
    rule: usize,
    total: Option<u32>,
    per_province: Option<u32>,
    per_amphoe: Option<u32>,
    cost: u64,
    budget: Option<u64>,
    excludes: Option<usize>,
    priority: i32,
}

fn program() -> impl Strategy<Value = P> {
    (
        proptest::collection::vec(0..17usize, 1..4),
        any::<bool>(),
        0..6usize,
        proptest::option::of(0..60u32),
        proptest::option::of(0..20u32),
        proptest::option::of(0..6u32),
        1..5000u64,
        proptest::option::of(0..100_000u64),
        proptest::option::of(0..8usize),
        -1..2i32,
    )
        .prop_map(
            |(addresses, person, rule, total, per_province, per_amphoe, cost, budget, excludes, priority)| P {
                addresses,
                person,
                rule,
                total,
                per_province,
                per_amphoe,
                cost,
                budget,
                excludes,
                priority,
            },
        )
}

fn toml_of(ps: &[P]) -> String {
    let mut t = String::from(
        "[catalogue]\nid = \"prop\"\nversion = \"1\"\nas_of = \"2026-10-01\"\n[[agency]]\nid = \"a\"\nname_th = \"ก\"\nname_en = \"A\"\n",
    );
    for (i, p) in ps.iter().enumerate() {
        let rule = if p.person { PERSON_RULES[p.rule % 3] } else { RULES[p.rule] };
        let addresses: Vec<String> = p.addresses.iter().map(|&k| format!("\"{}\"", INDICATORS[k])).collect();
        t += &format!(
            "[[program]]\nid = \"p{i}\"\nname_th = \"p{i}\"\nagency = \"a\"\naddresses = [{}]\nunit = \"{}\"\neligible = \"{rule}\"\nbenefit = {{ kind = \"service\" }}\nunit_cost = {}\npriority = {}\n",
            addresses.join(", "),
            if p.person { "person" } else { "household" },
            p.cost,
            p.priority
        );
        let mut cap = Vec::new();
        if let Some(v) = p.total {
            cap.push(format!("total = {v}"));
        }
        if let Some(v) = p.per_province {
            cap.push(format!("per_province = {v}"));
        }
        if let Some(v) = p.per_amphoe {
            cap.push(format!("per_amphoe = {v}"));
        }
        t += &format!("capacity = {{ {} }}\n", cap.join(", "));
        if let Some(b) = p.budget {
            t += &format!("budget = {b}\n");
        }
        if let Some(j) = p.excludes.filter(|&j| j < ps.len() && j != i) {
            t += &format!("excludes = [\"p{j}\"]\n");
        }
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn never_exceeds_capacity_quota_budget_or_exclusions(
        ps in proptest::collection::vec(program(), 1..8),
        served_picks in proptest::collection::vec((0..3000usize, 0..8usize), 0..40),
        poor in any::<bool>(),
    ) {
        let d = synthetic();
        let c = Catalogue::from_toml(&toml_of(&ps), &d.x.edition, "prop").unwrap();
        let s = Subjects::new(&d.x, &d.spec, &d.profiles, &d.scores, Welfare::Validated).unwrap();
        let served: Vec<(u32, u32)> = served_picks.iter().filter(|(_, p)| *p < ps.len()).map(|&(h, p)| (h as u32, p as u32)).collect();
        let opts = PlanOptions { population: if poor { tpmap::plan::Population::Poor } else { tpmap::plan::Population::Target }, ..Default::default() };
        let a = allocate(&s, &c, &served, &opts).unwrap();
        check_constraints(d, &c, &served, &a).map_err(TestCaseError::fail)?;
        // Same input, same output.
        let again = allocate(&s, &c, &served, &opts).unwrap();
        prop_assert_eq!(&again.assignments, &a.assignments);
    }
}

#[cfg(feature = "optimize")]
#[test]
fn optimiser_covers_at_least_the_greedy_cover_within_the_same_rules() {
    use tpmap::plan::optimize::{OptimizeOptions, covered_weight, optimize};
    let d = samples_scored();
    let c = catalogue(&d.x);
    let s = Subjects::new(&d.x, &d.spec, &d.profiles, &d.scores, Welfare::Validated).unwrap();
    let opts = PlanOptions::default();
    let g = allocate(&s, &c, &Vec::new(), &opts).unwrap();
    let o = optimize(&s, &c, &Vec::new(), &opts, &g, &OptimizeOptions { time_limit: None }).unwrap();
    assert!(o.proven_optimal);
    let (lg, lo) = (household_plan(&s, &c, &g), household_plan(&s, &c, &o.allocation));
    let (wg, wo) = (covered_weight(&s, &lg), covered_weight(&s, &lo));
    eprintln!("greedy {wg}, optimiser {wo}, {} variables, {:.3} s", o.variables, o.seconds);
    assert!(wo >= wg, "optimiser {wo} < greedy {wg}");
    check_constraints(&d, &c, &Vec::new(), &o.allocation).unwrap();
    for (i, p) in o.allocation.programs.iter().enumerate() {
        let declined = o.allocation.declined.iter().filter(|x| x.program as usize == i).count() as u64;
        assert_eq!(p.eligible, p.selected + declined, "{}", p.id);
    }
}

#[cfg(feature = "optimize")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn optimiser_keeps_every_rule_and_never_covers_less(
        ps in proptest::collection::vec(program(), 1..6),
        served_picks in proptest::collection::vec((0..3000usize, 0..6usize), 0..20),
    ) {
        use tpmap::plan::optimize::{OptimizeOptions, covered_weight, optimize};
        let d = synthetic();
        let c = Catalogue::from_toml(&toml_of(&ps), &d.x.edition, "prop").unwrap();
        let s = Subjects::new(&d.x, &d.spec, &d.profiles, &d.scores, Welfare::Validated).unwrap();
        let served: Vec<(u32, u32)> = served_picks.iter().filter(|(_, p)| *p < ps.len()).map(|&(h, p)| (h as u32, p as u32)).collect();
        let opts = PlanOptions { population: tpmap::plan::Population::Poor, ..Default::default() };
        let g = allocate(&s, &c, &served, &opts).unwrap();
        let o = optimize(&s, &c, &served, &opts, &g, &OptimizeOptions { time_limit: Some(std::time::Duration::from_secs(20)) }).unwrap();
        check_constraints(d, &c, &served, &o.allocation).map_err(TestCaseError::fail)?;
        let wg = covered_weight(&s, &household_plan(&s, &c, &g));
        let wo = covered_weight(&s, &household_plan(&s, &c, &o.allocation));
        prop_assert!(wo >= wg, "optimiser {} < greedy {}", wo, wg);
    }
}
