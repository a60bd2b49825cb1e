//! Criterion: the linkage kernels on a SYNTHETIC labelled benchmark of 30,000 households
//! (`tpmap::link::bench`, about 84,000 survey persons, a welfare registry and an agency list):
//! reading and normalising the three files into compact records (names, sound codes, areas and
//! house numbers interned), blocking, comparing, scoring, clustering, and the whole job.

use criterion::{Criterion, criterion_group, criterion_main};
use tpmap::link::{LinkOptions, Records, Task, model};

fn link(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("tpmap-link-bench-{}", std::process::id()));
    let opts = tpmap::link::bench::BenchOptions { households: 30_000, ..Default::default() };
    tpmap::link::bench::write(&dir, &opts).expect("benchmark files");
    let files = ["survey.csv", "welfare.csv", "agency.csv"].map(|f| dir.join(f));
    let read = || {
        let mut r = Records::default();
        for f in &files {
            r.push_csv(f).expect("read");
        }
        r
    };
    let r = read();
    let o = LinkOptions::default();
    let cand = model::block(&r, Task::Link, &o.blocking);
    let pats = model::patterns(&r, &cand.pairs);
    let linked = tpmap::link::run(&r, &o).expect("link");
    let tf = linked.tf.clone();
    let mut g = c.benchmark_group("link");
    g.sample_size(10);
    g.bench_function(format!("read and normalise {} records", r.len()), |b| b.iter(read));
    g.bench_function(format!("block {} records (13 rules)", r.len()), |b| {
        b.iter(|| model::block(&r, Task::Link, &o.blocking))
    });
    g.bench_function(format!("compare {} candidate pairs", cand.pairs.len()), |b| {
        b.iter(|| model::patterns(&r, &cand.pairs))
    });
    g.bench_function(format!("score {} candidate pairs", cand.pairs.len()), |b| {
        b.iter(|| model::score_pairs_above(&r, &linked.model, Some(&tf), &cand.pairs, &pats, tpmap::link::SCORE_FLOOR))
    });
    g.bench_function(format!("cluster {} scored pairs", linked.scored.len()), |b| {
        b.iter(|| model::cluster(&r, &linked.scored, o.threshold, Task::Link))
    });
    g.bench_function(format!("whole job, {} records", r.len()), |b| b.iter(|| tpmap::link::run(&r, &o)));
    // The survey's persons with the welfare registry: one job for the matches, and the bounded
    // linkage (`link::parts`) over the persons in four parts by province (each part cloned on
    // every reading, as a partitioned run reads its waves again), with the same matches.
    let mut survey = Records::default();
    survey.push_csv(&files[0]).expect("read");
    let mut registry = Records::default();
    registry.push_csv(&files[1]).expect("read");
    let mut both = survey.clone();
    both.push_csv(&files[1]).expect("read");
    let parts = Provinces::of(&survey, 4);
    let one = tpmap::link::run_matches(both.clone(), &o).expect("link");
    let bounded = tpmap::link::parts::matches_in_parts(&mut parts.clone(), survey.len(), registry.clone(), &o)
        .expect("link in parts");
    assert_eq!(one.scored, bounded.scored, "the bounded linkage gives the whole job's pairs");
    g.bench_function(format!("survey x registry, one job, {} records", both.len()), |b| {
        b.iter(|| tpmap::link::run_matches(both.clone(), &o))
    });
    g.bench_function(format!("survey x registry in 4 parts by province, {} records", both.len()), |b| {
        b.iter(|| tpmap::link::parts::matches_in_parts(&mut parts.clone(), survey.len(), registry.clone(), &o))
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Persons in parts by province (province k, in order of first appearance, in part k % parts).
#[derive(Clone)]
struct Provinces(Vec<(Records, Vec<u32>)>);

impl Provinces {
    fn of(whole: &Records, parts: usize) -> Provinces {
        let mut seen: Vec<String> = Vec::new();
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); parts];
        for i in 0..whole.len() {
            let p = whole.area.get(i).map(|a| a.as_str()[..2].to_string()).unwrap_or_default();
            let k = seen.iter().position(|q| *q == p).unwrap_or_else(|| {
                seen.push(p);
                seen.len() - 1
            });
            members[k % parts].push(i as u32);
        }
        Provinces(members.into_iter().filter(|m| !m.is_empty()).map(|m| (whole.take(&m), m)).collect())
    }
}

impl tpmap::link::parts::PersonParts for Provinces {
    fn parts(&self) -> usize {
        self.0.len()
    }
    fn read(&mut self, i: usize) -> tpmap::Result<(Records, Vec<u32>)> {
        Ok(self.0[i].clone())
    }
}

criterion_group!(benches, link);
criterion_main!(benches);
