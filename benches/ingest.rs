//! Criterion benchmarks of ingest and validation on SYNTHETIC data.
//!
//! ```text
//! cargo bench --all-features --bench ingest
//! ```
//! Throughput is reported in person rows per second (households ride along). The national-scale
//! run (12.9 M households, 36.6 M persons) is `scripts/national.sh`; its numbers are in the README.

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tpmap::frame;
use tpmap::ingest::{Encoding, IngestOptions, ingest};
use tpmap::synth::{SynthOptions, Synthesizer};

fn write_set(dir: &Path, households: u64) -> usize {
    let s = Synthesizer::new(SynthOptions { households, seed: 1, ..Default::default() }).unwrap();
    let x = s.generate();
    let mut h = frame::households_frame(&x.households, s.edition()).unwrap();
    let mut p = frame::persons_frame(&x.persons, &x.households.id, s.edition()).unwrap();
    frame::write_parquet(&mut h, &dir.join("h.parquet"), &[]).unwrap();
    frame::write_parquet(&mut p, &dir.join("p.parquet"), &[]).unwrap();
    frame::write_csv(&mut h, &dir.join("h.csv"), &[], Encoding::Utf8).unwrap();
    frame::write_csv(&mut p, &dir.join("p.csv"), &[], Encoding::Utf8).unwrap();
    frame::write_csv(&mut h, &dir.join("h620.csv"), &[], Encoding::Tis620).unwrap();
    frame::write_csv(&mut p, &dir.join("p620.csv"), &[], Encoding::Tis620).unwrap();
    x.persons.len()
}

fn bench_ingest(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let persons = write_set(dir.path(), 100_000);
    let opts = IngestOptions::default();
    let mut g = c.benchmark_group("ingest_100k_households");
    g.sample_size(10);
    g.throughput(Throughput::Elements(persons as u64));
    for (name, h, p) in
        [("parquet", "h.parquet", "p.parquet"), ("csv_utf8", "h.csv", "p.csv"), ("csv_tis620", "h620.csv", "p620.csv")]
    {
        g.bench_function(name, |b| {
            b.iter(|| {
                let got = ingest(&dir.path().join(h), &dir.path().join(p), &opts).unwrap();
                assert_eq!(got.extract.persons.len(), persons);
            })
        });
    }
    g.finish();
}

fn bench_parsers(c: &mut Criterion) {
    let ids: Vec<String> = (0..10_000u64)
        .map(|i| {
            let body = 1_100_000_000_000 + i * 7919;
            let d: [u8; 12] = std::array::from_fn(|k| ((body / 10u64.pow(11 - k as u32)) % 10) as u8);
            tpmap::ids::CitizenId::with_check_digit(&d).expose()
        })
        .collect();
    let mut g = c.benchmark_group("parsers");
    g.throughput(Throughput::Elements(ids.len() as u64));
    g.bench_function("citizen_id", |b| {
        b.iter(|| ids.iter().filter(|s| tpmap::ids::CitizenId::parse(s).is_ok()).count())
    });
    let dates: Vec<String> = (0..10_000).map(|i| format!("{}/{}/25{:02}", 1 + i % 28, 1 + i % 12, i % 60)).collect();
    g.bench_function("thai_date", |b| b.iter(|| dates.iter().filter(|s| tpmap::thai::parse_date(s).is_some()).count()));
    g.finish();
}

fn bench_synth(c: &mut Criterion) {
    let mut g = c.benchmark_group("synth");
    g.sample_size(10);
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("100k_households", |b| {
        b.iter(|| {
            Synthesizer::new(SynthOptions { households: 100_000, seed: 1, ..Default::default() }).unwrap().generate()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_ingest, bench_parsers, bench_synth);
criterion_main!(benches);
