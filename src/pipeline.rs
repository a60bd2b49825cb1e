//! The main job in one call: ingest and validate, link with a welfare registry, score, area
//! measures at every level, TPMAP's public tables, a plan against a program catalogue, and the
//! HTML report — every output written to one folder. The `tpmap run` command, the Python
//! `tpmap.run` and services call this; it prints nothing and reports progress through
//! [`Progress`].
//!
//! ```no_run
//! use tpmap::pipeline::{run, RunOptions, Silent};
//! let opts = RunOptions::for_dir("data-samples".as_ref())?;
//! let done = run(&opts, "tpmap-out".as_ref(), &Silent)?;
//! println!("{}", done.report["measure"]["country"]["target_poor"]);
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::aggregate::{AggregateOptions, Hierarchy, Measures};
use crate::frame;
use crate::ingest::{IngestOptions, Ingested};
use crate::plan::{PlanOptions, Population, Subjects, allocate, allocate_with_progress, household_plan};
use crate::programs::Catalogue;
use crate::published::Welfare;
use crate::score::{MissingPolicy, NaPolicy, Profiles, Spec, Unit};
use crate::summary::Summary;
use crate::{Error, Result};

/// Where the pipeline reports what it is doing. Every method has a default that does nothing.
pub trait Progress: Sync {
    /// A new step begins ("reading and validating", "linking with the welfare registry", ...).
    fn step(&self, _what: &str) {}
    /// Planning: `done` of `total` programs allocated.
    fn programs(&self, _done: usize, _total: usize) {}
}

/// Progress that goes nowhere.
pub struct Silent;
impl Progress for Silent {}

/// Options of [`run`]. [`RunOptions::for_dir`] fills the inputs from a folder the way `tpmap run`
/// does.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Households file (.parquet, .csv or .xlsx).
    pub households: PathBuf,
    /// Persons file.
    pub persons: PathBuf,
    /// Reading and validation.
    pub ingest: IngestOptions,
    /// TPMAP's dimension switches (health, living, education, income, access).
    pub mask: [bool; 5],
    /// Welfare condition for target poor.
    pub welfare: Welfare,
    /// Unit of the area measures.
    pub unit: Unit,
    /// Not-applicable policy.
    pub na: NaPolicy,
    /// Missing-value policy.
    pub missing: MissingPolicy,
    /// Bootstrap replicates and seed for standard errors (0 = none).
    pub bootstrap: (usize, u64),
    /// TPMAP year (BE) for the public-format file names.
    pub tpmap_year: u16,
    /// Welfare-card registry to link with before scoring (sets every person's welfare flags).
    pub welfare_registry: Option<PathBuf>,
    /// The plan; `None` skips planning.
    pub plan: Option<PlanInputs>,
    /// Write `report.html`.
    pub html: bool,
}

/// The planning part of [`RunOptions`].
#[derive(Clone, Debug)]
pub struct PlanInputs {
    /// Program catalogue (TOML).
    pub catalogue: PathBuf,
    /// Households already receiving programs (CSV `household_id,program`).
    pub served: Option<PathBuf>,
    /// An agency's beneficiary list (person records with a `program` column), linked.
    pub served_list: Option<PathBuf>,
    /// Who the plan serves, the plan date and the pseudonym key.
    pub options: PlanOptions,
    /// Write household and citizen IDs in work lists instead of pseudonyms.
    pub reveal_ids: bool,
    /// Suppress counts below this in publication files.
    pub suppress: u64,
    /// Also run the exact optimiser with this time limit.
    pub optimize: Option<Duration>,
    /// What-if: plan again with another catalogue, welfare condition or population.
    pub compare: Option<Compare>,
}

/// The alternative of a what-if comparison; unset parts stay as in the main plan.
#[derive(Clone, Debug, Default)]
pub struct Compare {
    /// Another catalogue.
    pub catalogue: Option<PathBuf>,
    /// Another welfare condition.
    pub welfare: Option<Welfare>,
    /// Another population.
    pub population: Option<Population>,
}

impl RunOptions {
    /// Options for two files with TPMAP's defaults (all dimensions, validated welfare card,
    /// people as the unit) and no plan.
    pub fn new(households: &Path, persons: &Path) -> RunOptions {
        RunOptions {
            households: households.to_path_buf(),
            persons: persons.to_path_buf(),
            ingest: IngestOptions::default(),
            mask: [true; 5],
            welfare: Welfare::Validated,
            unit: Unit::People,
            na: NaPolicy::NotDeprived,
            missing: MissingPolicy::Drop,
            bootstrap: (0, 1),
            tpmap_year: 2561,
            welfare_registry: None,
            plan: None,
            html: true,
        }
    }

    /// Options for a folder as `tpmap run` reads it: `households.*` and `persons.*` (Parquet
    /// preferred, then CSV, then Excel), and, when present, `welfare_registry.csv`,
    /// `catalogue.toml`, `served.csv` and `served_list.csv`. The pseudonym key follows tpmap's
    /// policy ([`crate::ids::PseudonymKey::resolve`]: `$TPMAP_PSEUDONYM_KEY`, else the public
    /// default, which the outputs then warn about).
    pub fn for_dir(dir: &Path) -> Result<RunOptions> {
        let key = crate::ids::PseudonymKey::resolve(None)?;
        let mut o = RunOptions::new(&pick(dir, "households")?, &pick(dir, "persons")?);
        let found = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
        o.welfare_registry = found("welfare_registry.csv");
        o.plan = found("catalogue.toml").map(|catalogue| PlanInputs {
            catalogue,
            served: found("served.csv"),
            served_list: found("served_list.csv"),
            options: PlanOptions { key: key.clone(), ..PlanOptions::default() },
            reveal_ids: false,
            suppress: 5,
            optimize: None,
            compare: None,
        });
        Ok(o)
    }

    /// The mask as TPMAP writes it (`11111`).
    pub fn mask_text(&self) -> String {
        self.mask.iter().map(|&b| if b { '1' } else { '0' }).collect()
    }
}

/// Parses TPMAP's dimension switches: five `0`/`1` digits (health, living, education, income,
/// access) with at least one `1`. The inverse of [`RunOptions::mask_text`].
pub fn parse_mask(m: &str) -> Result<[bool; 5]> {
    let b = m.as_bytes();
    if b.len() != 5 || !b.iter().all(|c| *c == b'0' || *c == b'1') || !b.contains(&b'1') {
        return Err(Error::Parse(format!("mask must be five 0/1 digits with at least one 1, not '{m}'")));
    }
    Ok(std::array::from_fn(|i| b[i] == b'1'))
}

/// Parses a plan date: a full date (`YYYY-MM-DD`, CE or BE, Thai digits allowed).
pub fn parse_plan_date(d: &str) -> Result<crate::thai::PartialDate> {
    crate::thai::parse_date(d)
        .filter(|d| d.is_complete())
        .ok_or_else(|| Error::Parse(format!("date: '{d}' is not a full date (YYYY-MM-DD)")))
}

/// Households already receiving programs: from a `household_id,program` file, and from an
/// agency's beneficiary list linked with the extract (with what that linkage found).
pub fn served(
    x: &crate::extract::Extract,
    catalogue: &Catalogue,
    served: Option<&Path>,
    served_list: Option<&Path>,
) -> Result<(crate::plan::Served, Option<crate::link::ServedLink>)> {
    let mut out = match served {
        Some(p) => crate::plan::read_served(p, x, catalogue)?,
        None => Vec::new(),
    };
    let link = match served_list {
        Some(p) => {
            let (more, rep) = crate::link::served_from_list(x, p, catalogue, &crate::link::LinkOptions::default())?;
            out.extend(more);
            out.sort_unstable();
            out.dedup();
            Some(rep)
        }
        None => None,
    };
    Ok((out, link))
}

/// Finds `stem.parquet`, `stem.csv` or `stem.xlsx` in a folder, in that order.
pub fn pick(dir: &Path, stem: &str) -> Result<PathBuf> {
    for ext in ["parquet", "csv", "xlsx"] {
        let p = dir.join(format!("{stem}.{ext}"));
        if p.exists() {
            return Ok(p);
        }
    }
    Err(Error::Format {
        file: dir.display().to_string(),
        message: format!("no {stem}.parquet, {stem}.csv or {stem}.xlsx in this folder"),
    })
}

/// What [`run`] produced besides the files.
pub struct RunOutput {
    /// The ingested extract (welfare flags set by linkage when a registry was given), with the
    /// ingest report and rejected rows.
    pub ingested: Ingested,
    /// Counts per province and indicator.
    pub summary: Summary,
    /// Area measures at every level.
    pub measures: Measures,
    /// The content of `report.json`.
    pub report: serde_json::Value,
}

/// The plan's inputs, read and checked before any output is written.
struct LoadedPlan {
    catalogue: Catalogue,
    compare_catalogue: Option<Catalogue>,
    served: crate::plan::Served,
    served_link: Option<crate::link::ServedLink>,
}

impl RunOptions {
    /// Checks the options before any file is read: ingest options, the plan's date and time
    /// limit.
    pub fn validate(&self) -> Result<()> {
        self.ingest.validate()?;
        if let Some(p) = &self.plan
            && let Some(limit) = p.optimize
            && limit.is_zero()
        {
            return Err(Error::Config("the optimiser's time limit must be positive".into()));
        }
        if !(2400..=2700).contains(&self.tpmap_year) {
            return Err(Error::Config(format!(
                "TPMAP year {} is not a Buddhist-Era year (2400-2700)",
                self.tpmap_year
            )));
        }
        Ok(())
    }
}

/// Runs the main job and writes every output to `out` (see the README for the list).
///
/// All or nothing: options, inputs, the catalogue and served lists are read and checked before
/// the first output is written, and the outputs are written into a temporary folder beside `out`
/// and moved into place at the end ([`crate::output::Staging`]): a run that fails leaves `out` as
/// it was.
pub fn run(o: &RunOptions, out: &Path, progress: &dyn Progress) -> Result<RunOutput> {
    o.validate()?;
    let t0 = Instant::now();
    // With TPMAP_TRACE set, each step's time and the memory in use go to standard error.
    let trace = std::env::var_os("TPMAP_TRACE").is_some();
    let mut lap = Instant::now();
    let mut step = |what: &str| {
        if trace {
            eprintln!("trace: {:.3} s, {}; next: {what}", lap.elapsed().as_secs_f64(), crate::ingest::memory());
        }
        lap = Instant::now();
        progress.step(what);
    };
    step("reading and validating");
    let mut got = crate::ingest::ingest(&o.households, &o.persons, &o.ingest)?;
    let ingest_seconds = t0.elapsed().as_secs_f64();
    let welfare_link = match &o.welfare_registry {
        Some(reg) => {
            step("linking with the welfare registry");
            Some(crate::link::mark_welfare(&mut got.extract, reg, &crate::link::LinkOptions::default())?)
        }
        None => None,
    };
    // The plan's inputs are read now: a bad catalogue or served list stops the run before any
    // output exists.
    let loaded = match &o.plan {
        Some(p) => {
            step("reading the catalogue and served lists");
            let limits = &o.ingest.limits;
            let catalogue = Catalogue::load_with(&p.catalogue, &got.extract.edition, limits)?;
            let compare_catalogue = match p.compare.as_ref().and_then(|c| c.catalogue.as_ref()) {
                Some(path) => Some(Catalogue::load_with(path, &got.extract.edition, limits)?),
                None => None,
            };
            let (served, served_link) =
                served(&got.extract, &catalogue, p.served.as_deref(), p.served_list.as_deref())?;
            Some(LoadedPlan { catalogue, compare_catalogue, served, served_link })
        }
        None => None,
    };
    let stage = crate::output::Staging::new(out)?;
    let final_out = stage.target().to_path_buf();
    let out = stage.path();
    step("writing accepted and rejected rows");
    got.write_rejects(out)?;
    let x = &got.extract;
    frame::write_parquet(
        &mut frame::households_frame(&x.households, &x.edition)?,
        &out.join("households.parquet"),
        &[],
    )?;
    frame::write_persons_parquet(&x.persons, &x.households.id, &x.edition, &out.join("persons.parquet"), &[])?;
    let summary = Summary::of(x);

    step("scoring and area measures");
    let t1 = Instant::now();
    let mut spec = Spec::tpmap(&x.edition, o.mask)?;
    spec.na = o.na;
    spec.missing = o.missing;
    let profiles = Profiles::of_households(x, o.unit);
    let scores = crate::score::score(&profiles, &spec)?;
    let hierarchy = Hierarchy::tpmap(&x.households.village);
    let target = crate::published::target_weights(x, o.unit, o.welfare);
    let agg = AggregateOptions { bootstrap: o.bootstrap, target: Some(target), ..Default::default() };
    let measures = crate::aggregate::measures(&profiles, &spec, &scores, &hierarchy, &agg)?;
    let score_seconds = t1.elapsed().as_secs_f64();
    let tables = crate::published::tables_from_scores(x, o.tpmap_year, &spec, &profiles, &scores, o.welfare)?;
    let tables_seconds = t1.elapsed().as_secs_f64() - score_seconds;
    measures.write(out)?;
    let household_target = crate::published::target_weights(x, Unit::People, o.welfare);
    frame::write_parquet(
        &mut frame::household_scores_frame(&x.households, &spec, &scores, &household_target)?,
        &out.join("household_scores.parquet"),
        &[],
    )?;
    tables.write_dir(&out.join("tpmap"))?;
    frame::write_parquet(
        &mut frame::deprivation_matrix_frame(&x.households, &spec, &profiles)?,
        &out.join("deprivations.parquet"),
        &[],
    )?;
    let spec_path = out.join("spec.csv");
    std::fs::write(&spec_path, frame::spec_csv(&spec)).map_err(|e| Error::io(&spec_path, e))?;

    let mut figures = None;
    let plan = match (&o.plan, loaded) {
        (Some(p), Some(loaded)) => {
            step("planning");
            let dirs = (out.join("plan"), final_out.join("plan"));
            let (json, f) = plan(x, &spec, &profiles, &scores, o.welfare, p, loaded, &dirs, progress)?;
            figures = Some(f);
            Some(json)
        }
        _ => None,
    };
    let notices = data_notices(&o.households);
    let country = &measures.rows[0];
    let mut report = serde_json::json!({
        "welfare_link": welfare_link,
        "plan": plan,
        "ingest": got.report,
        "summary": summary,
        "notices": notices,
        "measure": { "rule": "tpmap", "mask": o.mask_text(), "unit": o.unit, "welfare": o.welfare, "dropped_units": scores.dropped_count(),
            "country": { "units": country.units, "population": country.population, "poor": country.poor, "target_poor": country.target_poor,
                "H": country.h, "A": country.a, "M0": country.m0, "exact": country.exact } },
        "seconds": { "ingest_and_validate": ingest_seconds, "score_and_measures": score_seconds, "tpmap_tables": tables_seconds },
    });
    if o.html {
        step("writing the HTML report");
        let inputs = crate::report::html::Inputs {
            summary: &summary,
            measures: &measures,
            ingest: &got.report,
            plan: figures.as_ref(),
            notices: &notices,
            options: format!(
                "TPMAP rule, dimensions {} ({}), welfare condition {:?}, unit {:?}",
                o.mask_text(),
                spec.dimensions.join(", "),
                o.welfare,
                o.unit
            ),
        };
        let path = out.join("report.html");
        std::fs::write(&path, crate::report::html::render(&inputs)).map_err(|e| Error::io(&path, e))?;
    }
    report["seconds"]["total"] = serde_json::json!(t0.elapsed().as_secs_f64());
    let path = out.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?).map_err(|e| Error::io(&path, e))?;
    stage.commit()?;
    Ok(RunOutput { ingested: got, summary, measures, report })
}

/// Notices that travel with the data: the `# ...` preamble of a CSV file or the `tpmap.notice`
/// metadata of a Parquet file (synthetic data says so there).
fn data_notices(households: &Path) -> Vec<String> {
    let is_parquet = households.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    if is_parquet {
        return frame::parquet_metadata(households)
            .map(|md| md.into_iter().filter_map(|(_, v)| v.filter(|v| v.contains("SYNTHETIC"))).collect())
            .unwrap_or_default();
    }
    use std::io::BufRead;
    let Ok(f) = std::fs::File::open(households) else { return Vec::new() };
    std::io::BufReader::new(f)
        .lines()
        .take(5)
        .map_while(|l| l.ok())
        .filter_map(|l| l.trim_start_matches('\u{feff}').strip_prefix('#').map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty())
        .collect()
}

/// Plan figures for the HTML report.
#[derive(Clone, Debug, Serialize)]
pub struct PlanFigures {
    /// The plan's summary.
    pub summary: crate::report::PlanSummary,
    /// Country, province and amphoe lines of the provincial report (unsuppressed).
    pub areas: Vec<crate::report::AreaLine>,
    /// Per indicator: label, dimension, deprivations, covered, with no program addressing it.
    pub indicators: Vec<(String, String, u64, u64, u64)>,
    /// Per agency: Thai name, English name, places, programs.
    pub agencies: Vec<(String, String, u64, u64)>,
}

/// Plans against the catalogue (and the what-if alternative) and writes `dirs.0` (the staging
/// folder of what will be `dirs.1`).
#[allow(clippy::too_many_arguments)]
fn plan(
    x: &crate::extract::Extract,
    spec: &Spec,
    profiles: &Profiles,
    scores: &crate::score::Scores,
    welfare: Welfare,
    pa: &PlanInputs,
    loaded: LoadedPlan,
    dirs: &(PathBuf, PathBuf),
    progress: &dyn Progress,
) -> Result<(serde_json::Value, PlanFigures)> {
    let t0 = Instant::now();
    let dir = dirs.0.as_path();
    let LoadedPlan { catalogue, compare_catalogue, served, served_link } = loaded;
    let opts = &pa.options;
    let subjects = Subjects::new(x, spec, profiles, scores, welfare)?;
    let each = |done: usize, total: usize| progress.programs(done, total);
    let alloc = allocate_with_progress(&subjects, &catalogue, &served, opts, &each)?;
    let lines = household_plan(&subjects, &catalogue, &alloc);
    let ps = opts.key.pseudonymizer();
    let w = crate::report::WriteOptions {
        suppress: pa.suppress,
        reveal_ids: pa.reveal_ids,
        key_warning: opts.key.warning(),
    };
    let summary = crate::report::write_plan(dir, &subjects, &catalogue, &alloc, &lines, &ps, &w)?;
    let greedy_seconds = t0.elapsed().as_secs_f64();
    let figures = plan_figures(&subjects, &catalogue, &alloc, &lines, summary.clone());
    let mut json = serde_json::json!({ "summary": summary, "seconds": greedy_seconds, "dir": dirs.1,
        "served_link": served_link, "pseudonym_key": opts.key.source() });
    #[cfg(feature = "optimize")]
    if let Some(limit) = pa.optimize {
        use crate::plan::optimize::{Comparison, OptimizeOptions, covered_weight, optimize};
        progress.step("optimising");
        let oo = OptimizeOptions { time_limit: Some(limit) };
        let opt = optimize(&subjects, &catalogue, &served, opts, &alloc, &oo)?;
        let lines_o = household_plan(&subjects, &catalogue, &opt.allocation);
        let sum_o = crate::report::write_plan(
            &dir.join("optimized"),
            &subjects,
            &catalogue,
            &opt.allocation,
            &lines_o,
            &ps,
            &w,
        )?;
        let cmp = Comparison {
            covered_weight: [covered_weight(&subjects, &lines), covered_weight(&subjects, &lines_o)],
            covered: [summary.covered, sum_o.covered],
            places: [summary.places, sum_o.places],
            spent: [summary.spent, sum_o.spent],
            proven_optimal: opt.proven_optimal,
            seconds: [greedy_seconds, opt.seconds],
        };
        let path = dir.join("optimized").join("comparison.json");
        std::fs::write(&path, serde_json::to_string_pretty(&cmp)?).map_err(|e| Error::io(&path, e))?;
        json["optimized"] =
            serde_json::json!({ "comparison": cmp, "variables": opt.variables, "constraints": opt.constraints });
    }
    #[cfg(not(feature = "optimize"))]
    if pa.optimize.is_some() {
        return Err(Error::Config("the optimiser needs tpmap's `optimize` feature".into()));
    }
    if let Some(cmp) = &pa.compare {
        progress.step("what-if");
        let cat_b = match compare_catalogue {
            Some(c) => c,
            None => catalogue.clone(),
        };
        let welfare_b = cmp.welfare.unwrap_or(welfare);
        let opts_b = PlanOptions { population: cmp.population.unwrap_or(opts.population), ..opts.clone() };
        // The same households are served; program indices follow catalogue B by id.
        let served_b: crate::plan::Served = served
            .iter()
            .filter_map(|&(h, p)| cat_b.program(&catalogue.programs[p as usize].id).map(|q| (h, q as u32)))
            .collect();
        let subjects_b = Subjects::new(x, spec, profiles, scores, welfare_b)?;
        let alloc_b = allocate(&subjects_b, &cat_b, &served_b, &opts_b)?;
        let lines_b = household_plan(&subjects_b, &cat_b, &alloc_b);
        let wi = crate::report::what_if((&catalogue, &alloc, &lines), (&cat_b, &alloc_b, &lines_b))?;
        let wdir = dir.join("whatif");
        crate::report::write_plan(&wdir.join("b"), &subjects_b, &cat_b, &alloc_b, &lines_b, &ps, &w)?;
        crate::report::write_what_if(&wdir, &subjects, &wi, &ps, pa.reveal_ids)?;
        json["what_if"] = serde_json::json!({
            "population": wi.population, "population_entered": wi.population_entered, "population_left": wi.population_left,
            "helped": wi.helped, "entered": wi.entered.len(), "left": wi.left.len(), "places": wi.places,
            "spent": wi.spent, "covered": wi.covered, "deprivations": wi.deprivations,
        });
    }
    Ok((json, figures))
}

/// Coverage by indicator and places by agency, for the report.
fn plan_figures(
    s: &Subjects,
    c: &Catalogue,
    a: &crate::plan::Allocation,
    lines: &[crate::plan::PlanLine],
    summary: crate::report::PlanSummary,
) -> PlanFigures {
    let e = &s.x.edition;
    let mut per = vec![(0u64, 0u64, 0u64); e.len()];
    for l in lines {
        let v = &mut per[l.indicator];
        v.0 += 1;
        v.1 += l.covered as u64;
        v.2 += (!l.covered && !c.programs.iter().any(|p| p.addresses & (1 << l.indicator) != 0)) as u64;
    }
    let indicators = per
        .iter()
        .enumerate()
        .filter(|(_, v)| v.0 > 0)
        .map(|(i, v)| {
            let ind = e.indicator(i);
            (ind.label(), ind.dimension.map(|d| d.name().to_string()).unwrap_or_default(), v.0, v.1, v.2)
        })
        .collect();
    let mut agencies: Vec<(String, String, u64, u64)> = c
        .agencies
        .iter()
        .enumerate()
        .map(|(k, ag)| {
            let progs: Vec<usize> =
                c.programs.iter().enumerate().filter(|(_, p)| p.agency == k).map(|(i, _)| i).collect();
            let places = a.assignments.iter().filter(|g| progs.contains(&(g.program as usize))).count() as u64;
            (ag.name_th.clone(), ag.name_en.clone(), places, progs.len() as u64)
        })
        .collect();
    agencies.sort_by(|x, y| y.2.cmp(&x.2).then_with(|| x.1.cmp(&y.1)));
    let areas = crate::report::provincial_report(s, c, a, lines);
    PlanFigures { summary, areas, indicators, agencies }
}
