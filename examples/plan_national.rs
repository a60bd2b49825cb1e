//! Benchmark: plan assistance for the poor households of the SYNTHETIC national set against a
//! generated catalogue of 52 programs with quotas in every province and amphoe, with
//! rank-and-fill and with the exact optimiser.
//!
//! ```sh
//! target/release/tpmap synth --households 12935866 --out /data/national
//! cargo run --release --all-features --example plan_national -- /data/national [optimiser seconds per province]
//! cargo run --release --all-features --example plan_national -- --catalogue-out bench-52.toml
//! ```
//!
//! The second form only writes the catalogue, for `tpmap run --catalogue` (scripts/national.sh).
//!
//! The catalogue is generated (three programs per TPMAP indicator, one national cash transfer
//! left out so that provinces stay independent) and ILLUSTRATIVE; the households are SYNTHETIC.

use std::time::{Duration, Instant};

use tpmap::ingest::{IngestOptions, ingest};
use tpmap::plan::optimize::{OptimizeOptions, covered_weight, optimize};
use tpmap::plan::{PlanOptions, Population, Subjects, allocate, household_plan};
use tpmap::programs::Catalogue;
use tpmap::score::Welfare;
use tpmap::score::{Profiles, Spec, Unit, score};

#[path = "support/bench_catalogue.rs"]
mod bench_catalogue;
use bench_catalogue::catalogue_toml;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, path] = args.as_slice()
        && flag == "--catalogue-out"
    {
        std::fs::write(path, catalogue_toml())?;
        return Ok(());
    }
    let dir = std::path::PathBuf::from(args.get(1).map(String::as_str).unwrap_or("data-samples"));
    let per_part = args.get(2).map(|s| s.parse::<f64>()).transpose()?.unwrap_or(120.0);
    let pick = |stem: &str| {
        ["parquet", "csv"].iter().map(|e| dir.join(format!("{stem}.{e}"))).find(|p| p.exists()).expect("extract files")
    };
    let t = Instant::now();
    let got = ingest(&pick("households"), &pick("persons"), &IngestOptions::default())?;
    let x = &got.extract;
    println!("ingest: {} households in {:.1} s", x.households.len(), t.elapsed().as_secs_f64());
    let spec = Spec::tpmap(&x.edition, tpmap::score::DimensionMask::ALL)?;
    let profiles = Profiles::of_households(x, Unit::Households);
    let scores = score(&profiles, &spec)?;
    let catalogue = Catalogue::from_toml(&catalogue_toml(), &x.edition, "bench-52")?;
    println!("catalogue: {} programs", catalogue.programs.len());
    let s = Subjects::new(x, &spec, &profiles, &scores, Welfare::Validated)?;
    let opts = PlanOptions { population: Population::Poor, ..Default::default() };
    let t = Instant::now();
    let g = allocate(&s, &catalogue, &Vec::new(), &opts)?;
    let greedy_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let lines = household_plan(&s, &catalogue, &g);
    let plan_s = t.elapsed().as_secs_f64();
    let wg = covered_weight(&s, &lines);
    println!(
        "rank-and-fill: {} poor households, {} places, {} of {} deprivations covered (weight {wg}) in {greedy_s:.2} s; household plan {plan_s:.2} s",
        g.population_rows.len(),
        g.assignments.len(),
        lines.iter().filter(|l| l.covered).count(),
        lines.len()
    );
    let t = Instant::now();
    let o = optimize(
        &s,
        &catalogue,
        &Vec::new(),
        &opts,
        &g,
        &OptimizeOptions { time_limit: Some(Duration::from_secs_f64(per_part)) },
    )?;
    let opt_s = t.elapsed().as_secs_f64();
    let lo = household_plan(&s, &catalogue, &o.allocation);
    let wo = covered_weight(&s, &lo);
    println!(
        "optimiser: {} parts ({} proven optimal, {} kept rank-and-fill at the time limit), {} variables, {} constraints, {} places, {} deprivations covered (weight {wo}, {:+.3}%), {} in {opt_s:.1} s",
        o.parts,
        o.parts_proven,
        o.parts_fallback,
        o.variables,
        o.constraints,
        o.allocation.assignments.len(),
        lo.iter().filter(|l| l.covered).count(),
        100.0 * (wo as f64 - wg as f64) / wg.max(1) as f64,
        if o.proven_optimal { "proven optimal" } else { "time limit reached in some province: best found" }
    );
    Ok(())
}
