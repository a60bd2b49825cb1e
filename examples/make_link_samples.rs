//! Writes the SYNTHETIC welfare-card registry (`data-samples/welfare_registry.csv`) and an
//! agency beneficiary list (`data-samples/served_list.csv`) for the samples: person records
//! about the samples' people, corrupted like the linkage benchmark, so that `tpmap run
//! data-samples` must link them to use them.
//!
//! ```sh
//! cargo run --profile ci --all-features --example make_link_samples
//! ```

use tpmap::ingest::{IngestOptions, ingest};
use tpmap::link::bench::{agency_list_from_extract, registry_from_extract};

fn main() -> Result<(), tpmap::Error> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data-samples");
    let got = ingest(&dir.join("households.csv"), &dir.join("persons.csv"), &IngestOptions::default())?;
    let x = &got.extract;
    let n = registry_from_extract(x, &dir.join("welfare_registry.csv"), 2561, 0.3)?;
    // Every 25th household, and every 4th poor one, is already on an agency's list.
    let spec = tpmap::score::Spec::tpmap(&x.edition, tpmap::score::DimensionMask::ALL)?;
    let scores = tpmap::score::score(&tpmap::score::Profiles::of_households(x, tpmap::score::Unit::Households), &spec)?;
    let poor: Vec<usize> = (0..x.households.len()).filter(|&h| scores.poor[h]).collect();
    let mut households: Vec<usize> = (0..x.households.len()).step_by(25).chain(poor.into_iter().step_by(4)).collect();
    households.sort_unstable();
    households.dedup();
    let m = agency_list_from_extract(
        x,
        &dir.join("served_list.csv"),
        &households,
        &["moi-water-tank", "moph-healthy-home", "moac-home-garden"],
        2561,
    )?;
    println!("wrote {n} registry records and {m} beneficiary-list records to {}", dir.display());
    Ok(())
}
