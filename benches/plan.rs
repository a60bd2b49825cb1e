//! Criterion: rank-and-fill allocation and the household plan for the poor households of
//! 100,000 SYNTHETIC households against the generated 52-program catalogue.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tpmap::extract::Extract;
use tpmap::plan::{PlanOptions, Population, Subjects, allocate, household_plan};
use tpmap::programs::Catalogue;
use tpmap::score::Welfare;
use tpmap::score::{Profiles, Spec, Unit, score};

#[path = "../examples/support/bench_catalogue.rs"]
mod bench_catalogue;

fn plan(c: &mut Criterion) {
    let syn = tpmap::synth::Synthesizer::new(tpmap::synth::SynthOptions { households: 100_000, ..Default::default() })
        .expect("synthesizer");
    let chunk = syn.generate();
    let x = Extract::new(Arc::clone(syn.edition()), chunk.households, chunk.persons);
    let spec = Spec::tpmap(&x.edition, tpmap::score::DimensionMask::ALL).expect("spec");
    let profiles = Profiles::of_households(&x, Unit::Households);
    let scores = score(&profiles, &spec).expect("scores");
    let catalogue =
        Catalogue::from_toml(&bench_catalogue::catalogue_toml(), &x.edition, "bench-52").expect("catalogue");
    let s = Subjects::new(&x, &spec, &profiles, &scores, Welfare::Validated).expect("subjects");
    let opts = PlanOptions { population: Population::Poor, ..Default::default() };
    let mut g = c.benchmark_group("plan");
    g.sample_size(10);
    g.bench_function("allocate 100k households, 52 programs", |b| {
        b.iter(|| allocate(&s, &catalogue, &Vec::new(), &opts).expect("allocate"))
    });
    let a = allocate(&s, &catalogue, &Vec::new(), &opts).expect("allocate");
    g.bench_function("household plan 100k households", |b| b.iter(|| household_plan(&s, &catalogue, &a)));
    #[cfg(feature = "optimize")]
    g.bench_function("optimiser 100k households, 52 programs", |b| {
        use tpmap::plan::optimize::{OptimizeOptions, optimize};
        let o = OptimizeOptions { time_limit: Some(std::time::Duration::from_secs(30)) };
        b.iter(|| optimize(&s, &catalogue, &Vec::new(), &opts, &a, &o).expect("optimize"))
    });
    g.finish();
}

criterion_group!(benches, plan);
criterion_main!(benches);
