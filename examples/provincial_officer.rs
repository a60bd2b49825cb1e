//! A provincial officer's run: the whole job for the bundled samples, then a look at one
//! province — its target poor, what the agencies' programs cover there, the gaps and why.
//!
//! ```sh
//! cargo run --profile ci --all-features --example provincial_officer -- [DIR] [PROVINCE]
//! ```
//!
//! DIR defaults to `data-samples` (SYNTHETIC households, ILLUSTRATIVE catalogue); PROVINCE is a
//! two-digit code and defaults to the province with the most target poor.

use std::collections::BTreeMap;

use tpmap::areas::AreaRegistry;
use tpmap::pipeline::{RunOptions, Silent, run};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).map(String::as_str).unwrap_or("data-samples"));
    let out = std::env::temp_dir().join("tpmap-provincial-officer");

    // 1. The main job, as `tpmap run` does it: every output (and report.html) in `out`.
    let opts = RunOptions::for_dir(&dir)?;
    let done = run(&opts, &out, &Silent)?;
    let provinces: Vec<_> = done.measures.rows.iter().filter(|r| r.level == "province").collect();
    let mine = match args.get(2) {
        Some(code) => provinces.iter().find(|r| &r.area == code).ok_or(format!("no province {code} in the data"))?,
        None => provinces.iter().max_by(|a, b| a.target_poor.total_cmp(&b.target_poor)).ok_or("no provinces")?,
    };
    let code = tpmap::areas::AreaCode::parse(&mine.area)?;
    let name = AreaRegistry::embedded().names(&code).map(|n| n.th.clone()).unwrap_or_default();
    println!(
        "province {} {name}: {:.0} people, {:.0} poor ({:.1}%), {:.0} target poor; full outputs in {}",
        mine.area,
        mine.population,
        mine.poor,
        100.0 * mine.h,
        mine.target_poor,
        out.display()
    );

    // 2. The plan `run` made and wrote (the same served lists, unit and key as plan/): this
    //    province's households line by line.
    let x = &done.ingested.extract;
    let plan = done.plan.as_ref().ok_or("no catalogue.toml in the folder: nothing was planned")?;
    let (catalogue, lines) = (&plan.catalogue, &plan.lines);
    let here: Vec<_> = lines.iter().filter(|l| x.households.village[l.household as usize].province() == code).collect();
    let covered = here.iter().filter(|l| l.covered).count();
    println!("{} deprivations of target households here, {covered} covered by a program", here.len());

    // 3. The gaps, by indicator, with the first reason given.
    let mut gaps: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for l in here.iter().filter(|l| !l.covered) {
        let e = gaps.entry(x.edition.indicator(l.indicator).label()).or_insert((0, l.gap.clone()));
        e.0 += 1;
    }
    println!("gaps by indicator (count, an example of why):");
    for (label, (n, why)) in &gaps {
        println!("  {label:>6} {n:>5}  {why}");
    }

    // 4. Places per agency here: what each agency's work list holds for this province.
    let mut per_agency: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &plan.allocation.assignments {
        if x.households.village[a.household as usize].province() == code {
            let agency = &catalogue.agencies[catalogue.programs[a.program as usize].agency];
            *per_agency.entry(agency.name_en.as_str()).or_default() += 1;
        }
    }
    println!("places by agency:");
    for (agency, n) in per_agency {
        println!("  {n:>5}  {agency}");
    }
    Ok(())
}
