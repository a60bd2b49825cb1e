//! An analyst's Alkire–Foster study by area: the household deprivation matrix from the samples,
//! equal weights by dimension, the headcount H, intensity A and adjusted headcount M0 by province
//! at several cutoffs k (exact fractions), and each dimension's contribution.
//!
//! ```sh
//! cargo run --profile ci --all-features --example analyst_af_study -- [DIR]
//! ```
//!
//! The bundled households are SYNTHETIC: the figures show the method, not Thailand.

use tpmap::aggregate::{AggregateOptions, Hierarchy, measures};
use tpmap::ingest::{IngestOptions, ingest};
use tpmap::rational::Rational;
use tpmap::score::{Cutoff, Profiles, Spec, Unit, score};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "data-samples".into()));
    let got = ingest(&dir.join("households.csv"), &dir.join("persons.csv"), &IngestOptions::default())?;
    let x = &got.extract;

    // TPMAP's indicators, each dimension weighted equally and shared equally by its indicators.
    let tpmap = Spec::tpmap(&x.edition, tpmap::score::DimensionMask::ALL)?;
    let dims = tpmap.dimensions.len() as u128;
    let per_dim: Vec<u128> =
        (0..tpmap.dimensions.len()).map(|d| tpmap.items.iter().filter(|i| i.dimension == d).count() as u128).collect();
    let items: Vec<_> = tpmap
        .items
        .iter()
        .map(|i| {
            let w = Rational::new(1, dims * per_dim[i.dimension]);
            (i.bit, tpmap.dimensions[i.dimension].clone(), i.label.clone(), w)
        })
        .collect();

    let profiles = Profiles::of_households(x, Unit::People); // people count: weight = members
    let areas = Hierarchy::tpmap(&x.households.village);
    println!("k      H       A       M0      (country; SYNTHETIC data)");
    for k in ["1/10", "1/8", "1/5", "1/4", "1/3"] {
        let spec = Spec::from_weights(items.clone(), Cutoff::K(k.parse()?))?;
        let scores = score(&profiles, &spec)?;
        let m = measures(&profiles, &spec, &scores, &areas, &AggregateOptions::default())?;
        let c = &m.rows[0];
        println!("{k:<6} {:.4}  {:.4}  {:.4}", c.h, c.a, c.m0);
        if k == "1/10" {
            println!("  provinces at k = 1/10 (highest M0 first), contributions by dimension:");
            let mut provinces: Vec<_> = m.rows.iter().filter(|r| r.level == "province").collect();
            provinces.sort_by(|a, b| b.m0.total_cmp(&a.m0));
            for r in provinces.iter().take(5) {
                let shares: Vec<String> = spec
                    .dimensions
                    .iter()
                    .zip(&r.dimension_contribution)
                    .map(|(d, v)| format!("{d} {v:.0}%"))
                    .collect();
                println!("  {}  M0 {:.4} ± {:.4}  {}", r.area, r.m0, r.se_analytic[2], shares.join(", "));
            }
        }
    }
    Ok(())
}
