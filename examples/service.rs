//! A service that imports the crate: it receives households and persons as in-memory tables (here
//! read from the samples; in a real service, from a request or a database), validates them,
//! scores them and answers with province figures as JSON — and, with the `arrow` feature, hands
//! the same table to arrow-rs code as `RecordBatch`es without copying.
//!
//! ```sh
//! cargo run --profile ci --all-features --example service
//! ```

use polars::prelude::*;
use serde::Serialize;
use tpmap::aggregate::{AggregateOptions, Hierarchy, measures};
use tpmap::ingest::{IngestOptions, TableInput, ingest_tables};
use tpmap::score::{Profiles, Spec, Unit, score};
use tpmap::score::{Welfare, target_weights};

/// What the service answers for one province.
#[derive(Serialize)]
struct ProvinceFigures {
    province: String,
    people: f64,
    poor: f64,
    target_poor: f64,
    h: f64,
}

/// The service's handler: tables in, JSON out; bad rows are counted, never lost.
fn handle(households: &DataFrame, persons: &DataFrame) -> tpmap::Result<serde_json::Value> {
    let got = ingest_tables(
        TableInput::Frame(households, "request.households"),
        TableInput::Frame(persons, "request.persons"),
        &IngestOptions::default(),
    )?;
    let x = &got.extract;
    let spec = Spec::tpmap(&x.edition, tpmap::score::DimensionMask::ALL)?;
    let profiles = Profiles::of_households(x, Unit::People);
    let scores = score(&profiles, &spec)?;
    let opts =
        AggregateOptions { target: Some(target_weights(x, Unit::People, Welfare::Validated)), ..Default::default() };
    let m = measures(&profiles, &spec, &scores, &Hierarchy::tpmap(&x.households.village), &opts)?;
    let provinces: Vec<ProvinceFigures> = m
        .rows
        .iter()
        .filter(|r| r.level == "province")
        .map(|r| ProvinceFigures {
            province: r.area.clone(),
            people: r.population,
            poor: r.poor,
            target_poor: r.target_poor,
            h: r.h,
        })
        .collect();
    Ok(serde_json::json!({
        "accepted": { "households": got.report.households.accepted, "persons": got.report.persons.accepted },
        "rejected": { "households": got.report.households.rejected, "persons": got.report.persons.rejected },
        "provinces": provinces,
    }))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let read = |p: &str| -> PolarsResult<DataFrame> {
        CsvReadOptions::default()
            .with_infer_schema_length(Some(0)) // every column as text: tpmap validates it
            .with_parse_options(CsvParseOptions::default().with_comment_prefix(Some("#")))
            .try_into_reader_with_file_path(Some(p.into()))?
            .finish()
    };
    let (h, p) = (read("data-samples/households.csv")?, read("data-samples/persons.csv")?);
    let answer = handle(&h, &p)?;
    println!("{}", serde_json::to_string_pretty(&answer["rejected"])?);
    println!("{} provinces answered", answer["provinces"].as_array().map_or(0, |a| a.len()));

    #[cfg(feature = "arrow")]
    {
        // Downstream arrow-rs code gets record batches through the C Data Interface.
        let batches = tpmap::frame::to_record_batches(&h)?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        println!("{rows} household rows handed to arrow-rs in {} batches", batches.len());
    }
    Ok(())
}
