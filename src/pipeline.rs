//! The main job in one call: ingest and validate, link with a welfare registry, score, area
//! measures at every level, TPMAP's public tables, a plan against a program catalogue, and the
//! HTML report — every output written to one folder. The `tpmap run` command, the Python
//! `tpmap.run` and services call this; it prints nothing and reports progress through
//! [`Progress`].
//!
//! [`run`] returns what it computed ([`RunOutput`]: the extract, scores, measures and the plan)
//! and a typed [`RunReport`], which is also written as `report.json`.
//!
//! ```no_run
//! use tpmap::pipeline::{run, RunOptions, Silent};
//! let opts = RunOptions::for_dir("data-samples".as_ref())?;
//! let done = run(&opts, "tpmap-out".as_ref(), &Silent)?;
//! println!("{} target poor", done.report.measure.country.target_poor);
//! if let Some(plan) = &done.plan {
//!     println!("{} places given", plan.allocation.assignments.len());
//! }
//! # Ok::<(), tpmap::Error>(())
//! ```

mod partitioned;
pub use partitioned::{
    AUTO_CSV_PERSON_BYTES, AUTO_PERSON_ROWS, PartitionReport, PartitionedOutput, large_extract, partition_by_default,
    run_partitioned,
};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::aggregate::{AggregateOptions, Hierarchy, Measures};
use crate::frame;
use crate::ingest::{IngestOptions, IngestReport, Ingested};
use crate::link::WelfareLink;
use crate::plan::served::ServedLink;
use crate::plan::{
    Allocation, PlanLine, PlanOptions, Population, Served, Subjects, allocate, allocate_with_progress, household_plan,
};
use crate::programs::Catalogue;
use crate::report::{PlanFigures, PlanSummary};
use crate::score::{DimensionMask, MissingPolicy, NaPolicy, Profiles, Scores, Spec, Unit, Welfare};
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
    pub mask: DimensionMask,
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
    /// Earlier survey rounds to compare this one with, household by household
    /// (`tpmap run R1 R2 ... RN`): written to `panel/` and to the report's "Year over year".
    pub earlier: Option<EarlierRounds>,
}

/// The earlier rounds of [`RunOptions::earlier`].
#[derive(Clone, Debug)]
pub struct EarlierRounds {
    /// Their folders, oldest first (this run's folder, the latest round, comes after them).
    pub folders: Vec<PathBuf>,
    /// How they are compared: the served list and edition maps (the rounds are read with the
    /// run's own reading options and edition, and compared with its mask and welfare condition).
    pub options: crate::panel::rounds::RoundsOptions,
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

impl PlanInputs {
    /// These inputs with the plan's decisions limited to `most` ([`crate::limits::Limits`]'s
    /// `plan_decisions`), to `budget` when given (what a memory budget leaves for them), and to
    /// the options' own limit.
    pub fn limited(&self, most: u64, budget: Option<u64>) -> PlanInputs {
        let mut p = self.clone();
        let own = p.options.max_decisions.unwrap_or(u64::MAX);
        p.options.max_decisions = Some(most.min(budget.unwrap_or(u64::MAX)).min(own));
        p
    }
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
            mask: DimensionMask::ALL,
            welfare: Welfare::Validated,
            unit: Unit::People,
            na: NaPolicy::NotDeprived,
            missing: MissingPolicy::Drop,
            bootstrap: (0, 1),
            tpmap_year: 2561,
            welfare_registry: None,
            plan: None,
            html: true,
            earlier: None,
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
            suppress: crate::report::DEFAULT_SUPPRESS,
            optimize: None,
            compare: None,
        });
        Ok(o)
    }
}

/// Parses a plan date: a full date (`YYYY-MM-DD`, CE or BE, Thai digits allowed).
pub fn parse_plan_date(d: &str) -> Result<crate::thai::PartialDate> {
    crate::thai::parse_date(d)
        .filter(|d| d.is_complete())
        .ok_or_else(|| Error::Parse(format!("date: '{d}' is not a full date (YYYY-MM-DD)")))
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

/// What [`run`] computed, besides the files: everything a service or an example needs, so that
/// nothing is scored or planned twice.
pub struct RunOutput {
    /// The ingested extract (welfare flags set by linkage when a registry was given), with the
    /// ingest report and rejected rows.
    pub ingested: Ingested,
    /// Counts per province and indicator.
    pub summary: Summary,
    /// The TPMAP spec scored with (dimensions of the mask, policies).
    pub spec: Spec,
    /// The households' profiles (one per household, weighted by the unit).
    pub profiles: Profiles,
    /// The households' scores.
    pub scores: Scores,
    /// Area measures at every level.
    pub measures: Measures,
    /// The plan, when one was made.
    pub plan: Option<PlanOutput>,
    /// The content of `report.json`.
    pub report: RunReport,
}

/// A plan made by [`run`]: the catalogue, who was already served, and the allocation.
pub struct PlanOutput {
    /// The catalogue planned against.
    pub catalogue: Catalogue,
    /// Households already served (from the served file and the linked beneficiary list).
    pub served: Served,
    /// The allocation (rank-and-fill).
    pub allocation: Allocation,
    /// One line per deprived indicator of each household of the population.
    pub lines: Vec<PlanLine>,
    /// The welfare condition the plan's target population was taken with.
    pub welfare: Welfare,
}

impl PlanOutput {
    /// The subjects of the plan (the extract with its scores), to explain or write it again.
    pub fn subjects<'a>(&self, out: &'a RunOutput) -> Result<Subjects<'a>> {
        Subjects::new(&out.ingested.extract, &out.spec, &out.profiles, &out.scores, self.welfare)
    }
}

/// The content of `report.json`: what the run read, linked, found and planned.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Rows read, accepted and rejected, per table, and derived values.
    pub ingest: IngestReport,
    /// Linkage with the welfare registry, when one was given.
    pub welfare_link: Option<WelfareLink>,
    /// Counts per province and indicator.
    pub summary: Summary,
    /// Notices that travel with the data (the SYNTHETIC marker).
    pub notices: Vec<String>,
    /// The national measure by TPMAP's rule.
    pub measure: MeasureReport,
    /// The plan, when one was made.
    pub plan: Option<PlanReport>,
    /// Seconds per step.
    pub seconds: RunSeconds,
    /// How a partitioned run read the extract ([`run_partitioned`]); absent for a whole run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<PartitionReport>,
    /// The comparison with earlier rounds, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panel: Option<crate::panel::rounds::RoundsOutcome>,
}

/// The national measure of a run.
#[derive(Clone, Debug, Serialize)]
pub struct MeasureReport {
    /// The rule (`tpmap`).
    pub rule: &'static str,
    /// TPMAP's dimension switches.
    pub mask: DimensionMask,
    /// Unit of the measures.
    pub unit: Unit,
    /// Welfare condition of target poor.
    pub welfare: Welfare,
    /// Units left out for missing values.
    pub dropped_units: usize,
    /// The country's figures.
    pub country: CountryFigures,
}

/// The country's figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CountryFigures {
    /// Units counted.
    pub units: u64,
    /// Population (sum of unit weights).
    pub population: f64,
    /// Poor (weighted).
    pub poor: f64,
    /// Target poor (weighted).
    pub target_poor: f64,
    /// Headcount ratio.
    #[serde(rename = "H")]
    pub h: f64,
    /// Intensity among the poor.
    #[serde(rename = "A")]
    pub a: f64,
    /// Adjusted headcount ratio.
    #[serde(rename = "M0")]
    pub m0: f64,
    /// H, A and M0 as exact fractions, where the weights allow.
    pub exact: Option<[String; 3]>,
}

/// Seconds per step of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunSeconds {
    /// Reading and validating.
    pub ingest_and_validate: f64,
    /// Scoring and the area measures.
    pub score_and_measures: f64,
    /// TPMAP's public tables.
    pub tpmap_tables: f64,
    /// The whole run.
    pub total: f64,
}

/// The plan part of `report.json`.
#[derive(Clone, Debug, Serialize)]
pub struct PlanReport {
    /// The plan's summary.
    pub summary: PlanSummary,
    /// Seconds of rank-and-fill planning and writing.
    pub seconds: f64,
    /// The folder the plan was written to.
    pub dir: PathBuf,
    /// What linking the beneficiary list found, when one was given.
    pub served_link: Option<ServedLink>,
    /// Where the pseudonym key came from.
    pub pseudonym_key: crate::ids::KeySource,
    /// The optimiser's comparison, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optimized: Option<OptimizedReport>,
    /// The what-if comparison, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what_if: Option<WhatIfReport>,
}

/// The optimiser against rank-and-fill.
#[derive(Clone, Debug, Serialize)]
pub struct OptimizedReport {
    /// The comparison.
    #[cfg(feature = "optimize")]
    pub comparison: crate::plan::optimize::Comparison,
    /// Variables of the model.
    pub variables: usize,
    /// Constraints of the model.
    pub constraints: usize,
}

/// A what-if comparison in numbers (A: the plan; B: the alternative).
#[derive(Clone, Debug, Serialize)]
pub struct WhatIfReport {
    /// Households in the population of A / of B.
    pub population: [u64; 2],
    /// In B's population, not A's.
    pub population_entered: u64,
    /// In A's population, not B's.
    pub population_left: u64,
    /// Households helped in A / B.
    pub helped: [u64; 2],
    /// Helped in B, not in A.
    pub entered: usize,
    /// Helped in A, not in B.
    pub left: usize,
    /// Places given in A / B.
    pub places: [u64; 2],
    /// Budget used in A / B (baht).
    pub spent: [u64; 2],
    /// Deprivations covered in A / B.
    pub covered: [u64; 2],
    /// Deprivations of the population in A / B.
    pub deprivations: [u64; 2],
}

/// The plan's inputs, read and checked before any output is written.
struct LoadedPlan {
    catalogue: Catalogue,
    compare_catalogue: Option<Catalogue>,
    served: Served,
    served_link: Option<ServedLink>,
}

impl LoadedPlan {
    /// The catalogue and the what-if's, read and checked; nobody served yet.
    fn catalogues(
        p: &PlanInputs,
        edition: &crate::indicators::Edition,
        limits: &crate::limits::Limits,
    ) -> Result<LoadedPlan> {
        let catalogue = Catalogue::load_with(&p.catalogue, edition, limits)?;
        let compare_catalogue = match p.compare.as_ref().and_then(|c| c.catalogue.as_ref()) {
            Some(path) => Some(Catalogue::load_with(path, edition, limits)?),
            None => None,
        };
        Ok(LoadedPlan { catalogue, compare_catalogue, served: Vec::new(), served_link: None })
    }
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
        // Before any work: a partitioned run's memory plan counts the replicates.
        crate::aggregate::check_bootstrap_count(self.bootstrap.0)?;
        if !(2400..=2700).contains(&self.tpmap_year) {
            return Err(Error::Config(format!(
                "TPMAP year {} is not a Buddhist-Era year (2400-2700)",
                self.tpmap_year
            )));
        }
        Ok(())
    }
}

/// The folders of the rounds `o` compares (the earlier rounds `e`, then this run's) and how
/// they are read: as this run reads its round (reading options, edition), within `max_memory`.
fn earlier_rounds(
    o: &RunOptions,
    e: &EarlierRounds,
    max_memory: Option<u64>,
) -> (Vec<PathBuf>, crate::panel::rounds::RoundsOptions) {
    let this = o.households.parent().map(Path::to_path_buf).unwrap_or_default();
    let folders: Vec<PathBuf> = e.folders.iter().cloned().chain([this]).collect();
    let rounds = crate::panel::rounds::RoundsOptions {
        mask: o.mask,
        welfare: o.welfare,
        ingest: o.ingest.clone(),
        editions: Vec::new(),
        max_memory,
        ..e.options.clone()
    };
    (folders, rounds)
}

/// Compares the earlier rounds `e` with this run's round (the folder of `o.households`) into
/// `out/panel/`, every round read as this one is (the run's reading options and edition).
/// `latest`: this run's own reading of its round, when it holds one (a whole run), else the round
/// is read again (a partitioned run: a wave of provinces at a time).
/// `within`: the budget of the comparison ([`crate::panel::rounds::RoundsOptions::max_memory`]),
/// its estimate already checked against it by the caller, with the rounds' routing the estimate
/// read ([`crate::panel::rounds::need_routed`]).
fn compare_earlier(
    o: &RunOptions,
    e: &EarlierRounds,
    out: &Path,
    latest: Option<&crate::ingest::Ingested>,
    within: Option<(u64, Vec<crate::panel::rounds::Routed>)>,
) -> Result<crate::panel::rounds::RoundsOutcome> {
    let (max_memory, routed) = within.unzip();
    let (folders, rounds) = earlier_rounds(o, e, max_memory);
    let dir = out.join("panel");
    std::fs::create_dir_all(&dir).map_err(|err| Error::io(&dir, err))?;
    crate::panel::rounds::write_rounds_checked(&folders, &rounds, &dir, latest, routed)
}

/// Runs the main job and writes every output to `out` (see the README for the list).
///
/// All or nothing: options, inputs, the catalogue and served lists are read and checked before
/// the first output is written, and the outputs are written into a temporary folder beside `out`
/// and moved into place at the end ([`crate::output::Staging`]): a run that fails leaves `out` as
/// it was.
pub fn run(options: &RunOptions, out: &Path, progress: &dyn Progress) -> Result<RunOutput> {
    let o = options;
    o.validate()?;
    let t0 = Instant::now();
    let traced = crate::diagnostics::Traced::new(progress);
    let progress: &dyn Progress = &traced;
    progress.step("reading and validating");
    let mut got = crate::ingest::ingest(&o.households, &o.persons, &o.ingest)?;
    let mut seconds = RunSeconds { ingest_and_validate: t0.elapsed().as_secs_f64(), ..Default::default() };
    let welfare_link = match &o.welfare_registry {
        Some(reg) => {
            progress.step("linking with the welfare registry");
            Some(crate::link::mark_welfare(&mut got.extract, reg, &crate::link::LinkOptions::default())?)
        }
        None => None,
    };
    // The plan's inputs are read now: a bad catalogue or served list stops the run before any
    // output exists.
    let loaded = match &o.plan {
        Some(p) => {
            progress.step("reading the catalogue and served lists");
            let mut loaded = LoadedPlan::catalogues(p, &got.extract.edition, &o.ingest.limits)?;
            (loaded.served, loaded.served_link) = crate::plan::served::gather(
                &got.extract,
                &loaded.catalogue,
                p.served.as_deref(),
                p.served_list.as_deref(),
            )?;
            Some(loaded)
        }
        None => None,
    };
    let stage = crate::output::Staging::new(out)?;
    let final_out = stage.target().to_path_buf();
    let out = stage.path();
    progress.step("writing accepted and rejected rows");
    got.write_rejects(out)?;
    let x = &got.extract;
    // The two tables at once (the writers leave cores idle).
    let (households, persons) = crate::in_pool(|| {
        rayon::join(
            || -> Result<()> {
                frame::write_households_parquet(&x.households, &x.edition, &out.join("households.parquet"), &[])
            },
            || {
                frame::write_persons_parquet(
                    &x.persons,
                    &x.households.id,
                    &x.edition,
                    &out.join("persons.parquet"),
                    &[],
                )
            },
        )
    });
    households?;
    persons?;
    let summary = Summary::of(x);

    progress.step("scoring and area measures");
    let t1 = Instant::now();
    let mut lap = crate::diagnostics::Lap::start();
    let mut spec = Spec::tpmap(&x.edition, o.mask)?;
    spec.na = o.na;
    spec.missing = o.missing;
    let profiles = Profiles::of_households(x, o.unit);
    let scores = crate::score::score(&profiles, &spec)?;
    let hierarchy = Hierarchy::tpmap(&x.households.village);
    let agg = AggregateOptions::tpmap(x, o.unit, o.welfare, o.bootstrap);
    lap.lap("profiles, scores");
    let measures = crate::aggregate::measures(&profiles, &spec, &scores, &hierarchy, &agg)?;
    seconds.score_and_measures = t1.elapsed().as_secs_f64();
    let tables = crate::published::tables_from_scores(x, o.tpmap_year, &spec, &profiles, &scores, o.welfare)?;
    seconds.tpmap_tables = t1.elapsed().as_secs_f64() - seconds.score_and_measures;
    lap.lap("measures, TPMAP tables");
    measures.write(out)?;
    lap.lap("measures written");
    let household_target = crate::score::target_weights(x, Unit::People, o.welfare);
    // Three independent outputs at once: each leaves cores idle while polars encodes or the
    // files are written.
    let household_scores = || -> Result<()> {
        let mut file = frame::ParquetAppender::new(&out.join("household_scores.parquet"), &[]);
        frame::append_household_scores(&mut file, &x.households, &spec, &scores, &household_target)?;
        file.finish()
    };
    let deprivations = || -> Result<()> {
        let mut file = frame::ParquetAppender::new(&out.join("deprivations.parquet"), &[]);
        frame::append_deprivations(&mut file, &x.households, &spec, &profiles)?;
        file.finish()
    };
    let (written, (tables_written, deprivations_written)) = crate::in_pool(|| {
        rayon::join(household_scores, || rayon::join(|| tables.write_dir(&out.join("tpmap")), deprivations))
    });
    written?;
    tables_written?;
    deprivations_written?;
    lap.lap("household_scores.parquet, TPMAP tables and deprivations.parquet written");
    let spec_path = out.join("spec.csv");
    std::fs::write(&spec_path, frame::spec_csv(&spec)).map_err(|e| Error::io(&spec_path, e))?;

    let planned = match (&o.plan, loaded) {
        (Some(p), Some(loaded)) => {
            progress.step("planning");
            let dirs = (out.join("plan"), final_out.join("plan"));
            let inputs = p.limited(o.ingest.limits.plan_decisions, None);
            Some(plan(x, &spec, &profiles, &scores, o.welfare, &inputs, loaded, &dirs, progress)?)
        }
        _ => None,
    };
    let notices = data_notices(&o.households);
    let mut report = RunReport {
        ingest: got.report.clone(),
        welfare_link,
        summary,
        notices,
        measure: measure_report(o, &measures, scores.dropped_count()),
        plan: planned.as_ref().map(|(r, _, _)| r.clone()),
        seconds,
        partition: None,
        panel: None,
    };
    if let Some(e) = &o.earlier {
        progress.step("comparing with the earlier rounds");
        // The latest round is this job's own reading (with the welfare registry linked, when
        // one was given), not read a second time.
        report.panel = Some(compare_earlier(o, e, out, Some(&got), None)?);
    }
    if o.html {
        progress.step("writing the HTML report");
        write_html(o, &spec, &report, &measures, planned.as_ref().map(|(_, f, _)| f), out)?;
    }
    report.seconds.total = t0.elapsed().as_secs_f64();
    let path = out.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?).map_err(|e| Error::io(&path, e))?;
    stage.commit()?;
    let summary = report.summary.clone();
    Ok(RunOutput { ingested: got, summary, spec, profiles, scores, measures, plan: planned.map(|(_, _, p)| p), report })
}

/// The `measure` part of `report.json`.
fn measure_report(o: &RunOptions, measures: &Measures, dropped_units: usize) -> MeasureReport {
    let country = measures.rows.first().map(|country| CountryFigures {
        units: country.units,
        population: country.population,
        poor: country.poor,
        target_poor: country.target_poor,
        h: country.h,
        a: country.a,
        m0: country.m0,
        exact: country.exact.clone(),
    });
    MeasureReport {
        rule: "tpmap",
        mask: o.mask,
        unit: o.unit,
        welfare: o.welfare,
        dropped_units,
        country: country.unwrap_or_default(),
    }
}

/// Writes `report.html`.
fn write_html(
    o: &RunOptions,
    spec: &Spec,
    report: &RunReport,
    measures: &Measures,
    plan: Option<&PlanFigures>,
    out: &Path,
) -> Result<()> {
    let inputs = crate::report::html::Inputs {
        summary: &report.summary,
        measures,
        ingest: &report.ingest,
        plan,
        notices: &report.notices,
        options: format!(
            "TPMAP rule, dimensions {} ({}), welfare condition {:?}, unit {:?}",
            o.mask,
            spec.dimensions.join(", "),
            o.welfare,
            o.unit
        ),
        edition: &o.ingest.edition,
        panel: report.panel.as_ref(),
    };
    let path = out.join("report.html");
    std::fs::write(&path, crate::report::html::render(&inputs)).map_err(|e| Error::io(&path, e))
}

/// Notices that travel with the data: the `# ...` preamble of a CSV file or the `tpmap.notice`
/// metadata of a Parquet file (synthetic data says so there).
pub fn data_notices(households: &Path) -> Vec<String> {
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

/// Plans against the catalogue (and the what-if alternative) and writes `dirs.0` (the staging
/// folder of what will be `dirs.1`).
#[allow(clippy::too_many_arguments)]
fn plan(
    x: &crate::extract::Extract,
    spec: &Spec,
    profiles: &Profiles,
    scores: &Scores,
    welfare: Welfare,
    inputs: &PlanInputs,
    loaded: LoadedPlan,
    dirs: &(PathBuf, PathBuf),
    progress: &dyn Progress,
) -> Result<(PlanReport, PlanFigures, PlanOutput)> {
    let t0 = Instant::now();
    let dir = dirs.0.as_path();
    let LoadedPlan { catalogue, compare_catalogue, served, served_link } = loaded;
    let opts = &inputs.options;
    let subjects = Subjects::new(x, spec, profiles, scores, welfare)?;
    let each = |done: usize, total: usize| progress.programs(done, total);
    let allocation = allocate_with_progress(&subjects, &catalogue, &served, opts, &each)?;
    let lines = household_plan(&subjects, &catalogue, &allocation);
    let pseudonyms = opts.key.pseudonymizer();
    let write = crate::report::WriteOptions {
        suppress: inputs.suppress,
        reveal_ids: inputs.reveal_ids,
        key_warning: opts.key.warning(),
    };
    let written = crate::report::write_plan(dir, &subjects, &catalogue, &allocation, &lines, &pseudonyms, &write)?;
    let greedy_seconds = t0.elapsed().as_secs_f64();
    let figures = crate::report::plan_figures(&subjects, &catalogue, &allocation, &lines, written.clone());
    let mut report = PlanReport {
        summary: written.clone(),
        seconds: greedy_seconds,
        dir: dirs.1.clone(),
        served_link,
        pseudonym_key: opts.key.source(),
        optimized: None,
        what_if: None,
    };
    #[cfg(feature = "optimize")]
    if let Some(limit) = inputs.optimize {
        use crate::plan::optimize::{Comparison, OptimizeOptions, covered_weight, optimize};
        progress.step("optimising");
        let oo = OptimizeOptions { time_limit: Some(limit) };
        let opt = optimize(&subjects, &catalogue, &served, opts, &allocation, &oo)?;
        let lines_o = household_plan(&subjects, &catalogue, &opt.allocation);
        let sum_o = crate::report::write_plan(
            &dir.join("optimized"),
            &subjects,
            &catalogue,
            &opt.allocation,
            &lines_o,
            &pseudonyms,
            &write,
        )?;
        let comparison = Comparison {
            covered_weight: [covered_weight(&subjects, &lines), covered_weight(&subjects, &lines_o)],
            covered: [written.covered, sum_o.covered],
            places: [written.places, sum_o.places],
            spent: [written.spent, sum_o.spent],
            proven_optimal: opt.proven_optimal,
            seconds: [greedy_seconds, opt.seconds],
        };
        let path = dir.join("optimized").join("comparison.json");
        std::fs::write(&path, serde_json::to_string_pretty(&comparison)?).map_err(|e| Error::io(&path, e))?;
        report.optimized = Some(OptimizedReport { comparison, variables: opt.variables, constraints: opt.constraints });
    }
    #[cfg(not(feature = "optimize"))]
    if inputs.optimize.is_some() {
        return Err(Error::Config("the optimiser needs tpmap's `optimize` feature".into()));
    }
    if let Some(cmp) = &inputs.compare {
        progress.step("what-if");
        let cat_b = compare_catalogue.unwrap_or_else(|| catalogue.clone());
        let welfare_b = cmp.welfare.unwrap_or(welfare);
        let opts_b = PlanOptions { population: cmp.population.unwrap_or(opts.population), ..opts.clone() };
        // The same households are served; program indices follow catalogue B by id.
        let served_b: Served = served
            .iter()
            .filter_map(|&(h, p)| cat_b.program(&catalogue.programs[p as usize].id).map(|q| (h, q as u32)))
            .collect();
        let subjects_b = Subjects::new(x, spec, profiles, scores, welfare_b)?;
        let alloc_b = allocate(&subjects_b, &cat_b, &served_b, &opts_b)?;
        let lines_b = household_plan(&subjects_b, &cat_b, &alloc_b);
        let wi = crate::report::what_if((&catalogue, &allocation, &lines), (&cat_b, &alloc_b, &lines_b))?;
        let wdir = dir.join("whatif");
        crate::report::write_plan(&wdir.join("b"), &subjects_b, &cat_b, &alloc_b, &lines_b, &pseudonyms, &write)?;
        crate::report::write_what_if(&wdir, &subjects, &wi, &pseudonyms, &write)?;
        report.what_if = Some(WhatIfReport {
            population: wi.population,
            population_entered: wi.population_entered,
            population_left: wi.population_left,
            helped: wi.helped,
            entered: wi.entered.len(),
            left: wi.left.len(),
            places: wi.places,
            spent: wi.spent,
            covered: wi.covered,
            deprivations: wi.deprivations,
        });
    }
    drop(subjects);
    let output = PlanOutput { catalogue, served, allocation, lines, welfare };
    Ok((report, figures, output))
}
