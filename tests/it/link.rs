//! Record linkage on the SYNTHETIC labelled Thai benchmark: quality, explanations, saved models,
//! dedupe, stable entity ids, and the guard against chains through weak links.

use std::sync::OnceLock;

use tpmap::link::bench::{BenchOptions, read_truth, write};
use tpmap::link::model::{Scored, Task, cluster, entity_ids, evaluate};
use tpmap::link::records::RawRecord;
use tpmap::link::{LinkOptions, Model, Records, run};

struct Bench {
    dir: tempfile::TempDir,
}

fn bench() -> &'static Bench {
    static B: OnceLock<Bench> = OnceLock::new();
    B.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &BenchOptions { households: 3000, seed: 3, ..Default::default() }).unwrap();
        Bench { dir }
    })
}

fn records() -> Records {
    let d = bench().dir.path();
    let mut r = Records::default();
    for s in ["survey", "welfare", "agency"] {
        r.push_csv(&d.join(format!("{s}.csv"))).unwrap();
    }
    r
}

#[test]
fn links_the_thai_benchmark_well() {
    let r = records();
    let truth = read_truth(&bench().dir.path().join("truth.csv"), &r).unwrap();
    let o = LinkOptions::default();
    let l = run(&r, &o).unwrap();
    let q = evaluate(&r, Task::Link, &truth, &l.pairs, &l.scored, o.threshold, &l.entity);
    assert!(q.pairs_completeness >= 0.98, "{q:?}");
    assert!(q.reduction_ratio >= 0.999, "{q:?}");
    assert!(q.precision >= 0.98 && q.recall >= 0.97 && q.f1 >= 0.98, "{q:?}");
    assert!(q.cluster_f1 >= 0.98, "{q:?}");
    // Exact citizen IDs alone miss many (mistyped and missing IDs): the model must do better.
    let exact_id = l
        .scored
        .iter()
        .filter(|s| r.citizen_id[s.a as usize].is_some() && r.citizen_id[s.a as usize] == r.citizen_id[s.b as usize]);
    let id_tp = exact_id.filter(|s| truth[s.a as usize] == truth[s.b as usize]).count() as f64;
    assert!(
        q.recall > id_tp / q.true_pairs as f64 + 0.05,
        "recall {} vs exact IDs {}",
        q.recall,
        id_tp / q.true_pairs as f64
    );
}

#[test]
fn explanations_add_up_and_models_reload() {
    let r = records();
    let l = run(&r, &LinkOptions::default()).unwrap();
    for s in l.scored.iter().step_by(97).take(50) {
        let e = l.model.explain(&r, Some(&l.tf), s.a as usize, s.b as usize);
        let sum: f64 = e.prior_weight + e.terms.iter().map(|t| t.weight).sum::<f64>();
        assert!((sum - e.match_weight).abs() < 1e-9);
        assert!((e.match_weight - s.weight).abs() < 1e-9, "explanation and score agree");
        assert_eq!(e.terms.len(), 6);
    }
    // A saved model scores the same.
    let json = serde_json::to_string(&l.model).unwrap();
    let m: Model = serde_json::from_str(&json).unwrap();
    let again = run(&r, &LinkOptions { model: Some(m), ..Default::default() }).unwrap();
    assert_eq!(again.pairs, l.pairs);
    assert!(again.scored.iter().zip(&l.scored).all(|(a, b)| (a.weight - b.weight).abs() < 1e-9));
    assert_eq!(again.entity_id, l.entity_id);
}

#[test]
fn dedupe_in_one_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &BenchOptions { households: 1500, seed: 5, single_file: true, ..Default::default() }).unwrap();
    let mut r = Records::default();
    r.push_csv(&dir.path().join("records.csv")).unwrap();
    assert_eq!(r.sources, vec!["records".to_string()]);
    let truth = read_truth(&dir.path().join("truth.csv"), &r).unwrap();
    let o = LinkOptions { task: Task::Dedupe, ..Default::default() };
    let l = run(&r, &o).unwrap();
    let q = evaluate(&r, Task::Dedupe, &truth, &l.pairs, &l.scored, o.threshold, &l.entity);
    assert!(q.f1 >= 0.97 && q.cluster_f1 >= 0.98, "{q:?}");
}

fn tiny(rows: &[(&str, &str, &str, &str)]) -> Records {
    let keys: Vec<String> = (0..rows.len()).map(|i| format!("r{i}")).collect();
    tiny_keyed(rows, &keys)
}

fn tiny_keyed(rows: &[(&str, &str, &str, &str)], keys: &[String]) -> Records {
    let raw: Vec<RawRecord<'_>> = rows
        .iter()
        .enumerate()
        .map(|(i, (id, first, last, birth))| RawRecord {
            key: keys[i].clone(),
            citizen_id: id,
            first,
            last,
            birth,
            ..Default::default()
        })
        .collect();
    let mut r = Records::default();
    r.push_source("t", &raw);
    r
}

#[test]
fn clusters_never_join_two_known_different_ids() {
    // 0 and 2 carry different valid IDs; 1 has none and strongly matches both.
    let id = |d: [u8; 12]| tpmap::ids::CitizenId::with_check_digit(&d).expose();
    let (x, y) = (id([1, 1, 0, 1, 7, 0, 0, 2, 3, 0, 7, 0]), id([3, 1, 0, 0, 6, 0, 0, 0, 1, 2, 3, 4]));
    let r = tiny(&[
        (&x, "สมชาย", "ใจดี", "1970-01-01"),
        ("", "สมชาย", "ใจดี", "1970-01-01"),
        (&y, "สมชาย", "ใจดี", "1970-01-01"),
    ]);
    assert!(r.citizen_id[0].is_some() && r.citizen_id[2].is_some());
    let s = |a, b, p| Scored { a, b, weight: 10.0, probability: p, deterministic: false, contradicted: false };
    let e = cluster(&r, &[s(0, 1, 0.99), s(1, 2, 0.98)], 0.9, tpmap::link::Task::Dedupe);
    assert_eq!(e[0], e[1], "the stronger link wins");
    assert_ne!(e[1], e[2], "and the chain stops at a conflicting ID");
    // Stable ids: the same entity gets the same id whatever the record order.
    let ids = entity_ids(&r, &e);
    let keys: Vec<String> = ["r2", "r1", "r0"].iter().map(|k| k.to_string()).collect();
    let r2 = tiny_keyed(
        &[(&y, "สมชาย", "ใจดี", "1970-01-01"), ("", "สมชาย", "ใจดี", "1970-01-01"), (&x, "สมชาย", "ใจดี", "1970-01-01")],
        &keys,
    );
    let e2 = cluster(&r2, &[s(2, 1, 0.99), s(1, 0, 0.98)], 0.9, tpmap::link::Task::Dedupe);
    let ids2 = entity_ids(&r2, &e2);
    assert_eq!(ids[0], ids2[2]);
    assert_eq!(ids[2], ids2[0]);
}

#[test]
fn a_link_task_joins_at_most_one_record_per_source() {
    // Source a: record 0; source b: records 1 and 2, both look like 0 (a namesake).
    let raw = |key: &str| RawRecord {
        key: key.into(),
        first: "สมชาย",
        last: "ใจดี",
        birth: "1970-01-01",
        ..Default::default()
    };
    let mut r = Records::default();
    r.push_source("a", &[raw("a0")]);
    r.push_source("b", &[raw("b1"), raw("b2")]);
    let s = |a, b, p| Scored { a, b, weight: 10.0, probability: p, deterministic: false, contradicted: false };
    let pairs = [s(0, 1, 0.97), s(0, 2, 0.99)];
    let e = cluster(&r, &pairs, 0.9, tpmap::link::Task::Link);
    assert_eq!(e[0], e[2], "the best match wins");
    assert_ne!(e[0], e[1], "and the namesake of the same source stays apart");
    // Deduplicating, both join.
    let d = cluster(&r, &pairs, 0.9, tpmap::link::Task::LinkAndDedupe);
    assert!(d[0] == d[1] && d[1] == d[2]);
}

#[test]
fn welfare_flags_and_served_households_come_from_linkage() {
    use tpmap::ingest::{IngestOptions, ingest};
    let s = crate::samples();
    let got = ingest(&s.join("households.csv"), &s.join("persons.csv"), &IngestOptions::default()).unwrap();
    let mut x = got.extract;
    let before: Vec<(Option<bool>, Option<bool>)> =
        x.persons.welfare_registered.iter().copied().zip(x.persons.welfare_validated.iter().copied()).collect();
    // Forget the extract's own flags: the registry (30 % of its records corrupted) must restore them.
    x.persons.welfare_registered.iter_mut().for_each(|f| *f = None);
    x.persons.welfare_validated.iter_mut().for_each(|f| *f = None);
    let w = tpmap::link::mark_welfare(&mut x, &s.join("welfare_registry.csv"), &LinkOptions::default()).unwrap();
    assert_eq!(w.matched, w.registry_records, "{w:?}");
    assert!(w.matched_by_id < w.matched, "some records only match by name, birth date and address");
    let after: Vec<(Option<bool>, Option<bool>)> =
        x.persons.welfare_registered.iter().copied().zip(x.persons.welfare_validated.iter().copied()).collect();
    let same = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| (b.0 == Some(true)) == (a.0 == Some(true)) && (b.1 == Some(true)) == (a.1 == Some(true)))
        .count();
    assert_eq!(same, before.len(), "every person's welfare status recovered by linkage");
    let c = tpmap::programs::Catalogue::load(s.join("catalogue.toml"), &x.edition).unwrap();
    let (served, rep) =
        tpmap::plan::served::from_list(&x, &s.join("served_list.csv"), &c, &LinkOptions::default()).unwrap();
    assert_eq!(rep.matched, rep.records);
    assert_eq!(served.len(), rep.households);
    assert!(served.iter().all(|&(h, p)| (h as usize) < x.households.len() && (p as usize) < c.programs.len()));
}

#[test]
fn quality_measures_by_hand() {
    // Truth: {0, 1} and {2, 3}; entities: {0, 1, 2} and {3}.
    let r = tiny(&[("", "ก", "ข", ""), ("", "ก", "ข", ""), ("", "ค", "ง", ""), ("", "ค", "ง", "")]);
    let truth = [7u64, 7, 9, 9];
    let entity = [0u32, 0, 0, 1];
    let s = |a, b, p| Scored { a, b, weight: 0.0, probability: p, deterministic: false, contradicted: false };
    let pairs = [(0, 1), (1, 2), (2, 3)];
    let scored = [s(0, 1, 0.99), s(1, 2, 0.95), s(2, 3, 0.5)];
    let q = evaluate(&r, Task::Dedupe, &truth, &pairs, &scored, 0.9, &entity);
    assert_eq!(q.true_pairs, 2);
    assert_eq!((q.pairs_completeness, q.reduction_ratio), (1.0, 0.5));
    assert_eq!((q.precision, q.recall), (0.5, 0.5)); // (0,1) right, (1,2) wrong, (2,3) missed
    assert!((q.cluster_precision - 2.0 / 3.0).abs() < 1e-12);
    assert!((q.cluster_recall - 0.75).abs() < 1e-12);
}
