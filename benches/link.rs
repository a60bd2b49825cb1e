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
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, link);
criterion_main!(benches);
