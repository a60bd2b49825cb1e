//! The `tpmap` command-line program. See `tpmap --help`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use tpmap::indicators::Edition;
use tpmap::ingest::{AreaCheck, Encoding, IngestOptions, Ingested, Mode, OneMeans};
use tpmap::summary::Summary;
use tpmap::synth::{SYNTHETIC_NOTICE, SynthOptions, Synthesizer};
use tpmap::{Error, frame};

/// tpmap: find, score and help Thailand's poor households, from BMN (จปฐ.) extracts.
///
/// Exit codes: 0 success; 1 error (bad input in strict mode, unreadable file, bad options);
/// 2 command-line usage error.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The main job on a folder of extracts: ingest and validate, score every household by TPMAP's
    /// rule, compute area measures at every level and TPMAP's public tables, and — when the folder
    /// holds catalogue.toml or --catalogue is given — plan assistance, writing every output to
    /// --out. The folder must hold households.* and persons.* (Parquet, CSV or Excel; Parquet is
    /// preferred when several exist).
    Run {
        /// Folder with households.{parquet,csv,xlsx} and persons.{parquet,csv,xlsx}.
        dir: PathBuf,
        /// Output folder (created if missing).
        #[arg(long, default_value = "tpmap-out")]
        out: PathBuf,
        #[command(flatten)]
        ingest: IngestArgs,
        #[command(flatten)]
        score: ScoreArgs,
        #[command(flatten)]
        plan: PlanArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Plan assistance: ingest and score the folder's extracts like `run`, match the target
    /// households to a program catalogue and write household plans, agency work lists, the
    /// provincial report and (with --compare-*) a what-if comparison to --out/plan.
    Plan {
        /// Folder with households.* and persons.* (an output folder of `run` works too).
        dir: PathBuf,
        /// Output folder (created if missing).
        #[arg(long, default_value = "tpmap-out")]
        out: PathBuf,
        #[command(flatten)]
        ingest: IngestArgs,
        #[command(flatten)]
        score: ScoreArgs,
        #[command(flatten)]
        plan: PlanArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Ingest and validate one households file and one persons file; write the accepted rows as
    /// Parquet, the rejected rows as CSV (unchanged, with row numbers and reasons) and a report.
    Ingest {
        /// Households file (.csv, .parquet or .xlsx).
        #[arg(long)]
        households: PathBuf,
        /// Persons file (.csv, .parquet or .xlsx).
        #[arg(long)]
        persons: PathBuf,
        /// Output folder (created if missing).
        #[arg(long, default_value = "tpmap-out")]
        out: PathBuf,
        #[command(flatten)]
        ingest: IngestArgs,
        #[command(flatten)]
        score: ScoreArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Generate SYNTHETIC households and persons shaped by the real TPMAP 2561 village tables
    /// (deterministic per seed; every file is marked synthetic).
    Synth {
        /// Households to generate (12935866 for the national set).
        #[arg(long, default_value_t = 10_000)]
        households: u64,
        /// Random seed.
        #[arg(long, default_value_t = 2561)]
        seed: u64,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// File format(s) to write.
        #[arg(long, value_enum, default_value_t = SynthFormat::Parquet)]
        format: SynthFormat,
        /// Only these provinces (comma-separated 2-digit codes).
        #[arg(long, value_delimiter = ',')]
        provinces: Vec<u8>,
        /// BMN survey year (BE).
        #[arg(long, default_value_t = 2560)]
        survey_year: u16,
        /// Hide the progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// The general Alkire-Foster measure on your own deprivation matrix: H, A, M0, headcount ratios
    /// and contributions at every level of the given area columns, as CSV, Parquet and JSON.
    Mpi {
        /// Units table (.csv, .parquet or .xlsx): one 0/1/na/empty column per indicator (1 = deprived).
        #[arg(long)]
        data: PathBuf,
        /// Spec table with columns dimension,indicator,weight (weights like 1/15, 0.0667 or 6.67%).
        #[arg(long)]
        spec: PathBuf,
        /// Poverty cutoff: a fraction (1/3), decimal (0.333), percent (33.3%), union or intersection.
        #[arg(long)]
        k: String,
        /// Area columns, coarsest first (comma-separated).
        #[arg(long, value_delimiter = ',')]
        areas: Vec<String>,
        /// Weight column (household size, or a sampling weight).
        #[arg(long)]
        weight: Option<String>,
        /// Strata column (with --psu) for design-based standard errors.
        #[arg(long, requires = "psu")]
        strata: Option<String>,
        /// Primary-sampling-unit column (with --strata).
        #[arg(long, requires = "strata")]
        psu: Option<String>,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Output folder.
        #[arg(long, default_value = "tpmap-out")]
        out: PathBuf,
        /// Print nothing.
        #[arg(long)]
        quiet: bool,
    },
    /// Read TPMAP's public tables from a folder, roll the villages up to every level and compare
    /// with the published higher levels. Exit code 1 when anything differs.
    Reconcile {
        /// Folder with TPMAP's files (YY_country_common.csv, YY_PP_village_MASK.csv, ...).
        dir: PathBuf,
        /// Two-digit BE year of the files.
        #[arg(long, default_value = "61")]
        year: String,
        /// Dimension mask (health, living, education, income, access).
        #[arg(long, default_value = "11111")]
        mask: String,
    },
    /// Link person records across registries (survey, welfare card, agencies' lists) and/or
    /// deduplicate them: Thai-aware normalisation, blocking, Fellegi-Sunter scoring (trained by EM,
    /// or a saved model), deterministic citizen-ID pass, clustering into entities. Writes
    /// pairs.csv, entities.csv, model.json, explanations.json and link.json to --out.
    Link {
        /// Registry CSV files (UTF-8 or TIS-620): record_id, citizen_id, title, first_name,
        /// last_name, birth_date, sex, village_code, house_no (Thai headers accepted).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// dedupe (within all records), link (across files only) or link-and-dedupe.
        #[arg(long, value_enum, default_value_t = TaskArg::Link)]
        task: TaskArg,
        /// Match probability threshold.
        #[arg(long, default_value_t = 0.9)]
        threshold: f64,
        /// A saved model (model.json of an earlier run) instead of training.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Ground truth (source,record_id,person) to report quality.
        #[arg(long)]
        truth: Option<PathBuf>,
        /// Explanations to write: the N pairs nearest the threshold.
        #[arg(long, default_value_t = 20)]
        explain: usize,
        /// Blocking rules replacing the default ones, each keys joined by '+', e.g.
        /// --block citizen_id --block last_soundex+tambon (keys: citizen_id, first_soundex,
        /// last_soundex, first, last, birth_date, birth_year, birth_month_day,
        /// name_soundex_set, tambon, amphoe).
        #[arg(long)]
        block: Vec<String>,
        /// Output folder.
        #[arg(long, default_value = "tpmap-link")]
        out: PathBuf,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Generate the SYNTHETIC labelled linkage benchmark: survey.csv, welfare.csv, agency.csv
    /// (or records.csv with --single-file) and truth.csv.
    LinkBench {
        /// Households to synthesise (people ≈ 2.8 × households).
        #[arg(long, default_value_t = 10_000)]
        households: u64,
        /// Seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// One file holding every source (a dedupe task).
        #[arg(long)]
        single_file: bool,
        /// Share of adults in the welfare registry.
        #[arg(long, default_value_t = 0.4)]
        welfare_share: f64,
        /// Share of people on the agency list (0 writes an empty list).
        #[arg(long, default_value_t = 0.1)]
        agency_share: f64,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print an indicator edition as TOML (the built-in one, or a file with overrides applied).
    Edition {
        /// Built-in edition id.
        #[arg(long, default_value = "bmn-2560")]
        id: String,
        /// TOML overrides to apply.
        #[arg(long)]
        overrides: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct PlanArgs {
    /// Welfare-card registry (CSV of person records with an optional `validated` column) to link
    /// with the survey's persons: their welfare flags are set from it before scoring. `run` uses
    /// DIR/welfare_registry.csv when present.
    #[arg(long)]
    welfare_registry: Option<PathBuf>,
    /// An agency's beneficiary list (CSV of person records with a `program` column) to link with
    /// the survey: matched households already receive that program. `run` uses
    /// DIR/served_list.csv when present.
    #[arg(long)]
    served_list: Option<PathBuf>,
    /// Program catalogue (TOML; see docs/programs.md). `run` uses DIR/catalogue.toml if present.
    #[arg(long)]
    catalogue: Option<PathBuf>,
    /// Households already receiving programs: CSV with household_id,program. `run` uses
    /// DIR/served.csv if present.
    #[arg(long)]
    served: Option<PathBuf>,
    /// Who the plan serves.
    #[arg(long, value_enum, default_value_t = PopulationArg::Target)]
    population: PopulationArg,
    /// Date programs must be running on (YYYY-MM-DD; default: the catalogue's as_of).
    #[arg(long)]
    date: Option<String>,
    /// File holding the secret key for pseudonyms in work lists and for ranking ties
    /// (default: $TPMAP_PSEUDONYM_KEY, else a fixed public key — set one in production).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Write household IDs, and citizen IDs and names in person work lists (default: pseudonyms).
    #[arg(long)]
    reveal_ids: bool,
    /// Suppress counts below this in the publication files (provinces.csv, amphoes.csv, report.xlsx).
    #[arg(long, default_value_t = 5)]
    suppress: u64,
    /// What-if: plan again with this catalogue and compare.
    #[arg(long)]
    compare_catalogue: Option<PathBuf>,
    /// What-if: plan again with this welfare condition for target households and compare.
    #[arg(long, value_enum)]
    compare_welfare: Option<WelfareArg>,
    /// What-if: plan again for this population and compare.
    #[arg(long, value_enum)]
    compare_population: Option<PopulationArg>,
    /// Also run the exact optimiser (max weighted deprivations covered under the same rules),
    /// write its plan to plan/optimized/ and compare it with rank-and-fill.
    #[arg(long)]
    optimize: bool,
    /// Time limit for the optimiser in seconds (it returns the best plan found, marked not proven optimal).
    #[arg(long, default_value_t = 60.0)]
    optimize_seconds: f64,
}

#[derive(Clone, Copy, ValueEnum)]
enum TaskArg {
    Dedupe,
    Link,
    LinkAndDedupe,
}

#[derive(Clone, Copy, ValueEnum)]
enum PopulationArg {
    Target,
    Poor,
}

#[derive(clap::Args)]
struct PolicyArgs {
    /// How not-applicable indicators count.
    #[arg(long, value_enum, default_value_t = NaArg::NotDeprived)]
    na: NaArg,
    /// How missing values count.
    #[arg(long, value_enum, default_value_t = MissingArg::Drop)]
    missing: MissingArg,
    /// Bootstrap replicates for standard errors (0 = none).
    #[arg(long, default_value_t = 0)]
    bootstrap: usize,
    /// Bootstrap seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum NaArg {
    NotDeprived,
    Reweight,
}

#[derive(Clone, Copy, ValueEnum)]
enum MissingArg {
    Drop,
    Deprived,
    NotDeprived,
}

#[derive(clap::Args)]
struct ScoreArgs {
    /// TPMAP dimension switches: five 0/1 digits for health, living, education, income, access.
    #[arg(long, default_value = "11111")]
    mask: String,
    /// Welfare condition for target poor.
    #[arg(long, value_enum, default_value_t = WelfareArg::Validated)]
    welfare: WelfareArg,
    /// Unit of the area measures.
    #[arg(long, value_enum, default_value_t = UnitArg::People)]
    unit: UnitArg,
    /// TPMAP year (BE) for the public-format file names.
    #[arg(long, default_value_t = 2561)]
    tpmap_year: u16,
    #[command(flatten)]
    policy: PolicyArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum WelfareArg {
    Validated,
    Registered,
    None,
}

#[derive(Clone, Copy, ValueEnum)]
enum UnitArg {
    People,
    Households,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum SynthFormat {
    Parquet,
    Csv,
    Both,
}

#[derive(clap::Args)]
struct IngestArgs {
    /// Stop at the first bad row with an error naming file, row and column (default: lenient,
    /// bad rows are written to rejected_*.csv).
    #[arg(long)]
    strict: bool,
    /// CSV text encoding.
    #[arg(long, value_enum, default_value_t = EncodingArg::Auto)]
    encoding: EncodingArg,
    /// Indicator edition: a built-in id (bmn-2560) or a TOML file.
    #[arg(long, default_value = "bmn-2560")]
    edition: String,
    /// Accept villages missing from the known village lists (their tambon must still be known).
    #[arg(long)]
    allow_new_villages: bool,
    /// Read a status of 1 as "passes" instead of "fails (deprived)".
    #[arg(long)]
    one_means_pass: bool,
    /// Survey year (BE) for households files without a survey_year column.
    #[arg(long)]
    survey_year: Option<u16>,
    /// Worksheet to read from Excel files.
    #[arg(long)]
    sheet: Option<String>,
    #[command(flatten)]
    limits: LimitArgs,
}

/// Resource limits for untrusted input (defaults pass every real file; see the README).
#[derive(clap::Args)]
struct LimitArgs {
    /// Most cells (rows × header columns) one Excel worksheet may hold; each takes 16 bytes.
    #[arg(long, default_value_t = tpmap::limits::DEFAULT_XLSX_CELLS)]
    max_xlsx_cells: u64,
    /// Most bytes the parts of one Excel workbook may decompress to.
    #[arg(long, default_value_t = tpmap::limits::DEFAULT_XLSX_BYTES)]
    max_xlsx_bytes: u64,
    /// Deepest nesting of a catalogue's eligibility rule (parentheses, not, any/all).
    #[arg(long, default_value_t = tpmap::limits::DEFAULT_RULE_DEPTH)]
    max_rule_depth: usize,
}

impl LimitArgs {
    fn limits(&self) -> tpmap::limits::Limits {
        tpmap::limits::Limits {
            xlsx_cells: self.max_xlsx_cells,
            xlsx_bytes: self.max_xlsx_bytes,
            rule_depth: self.max_rule_depth,
            ..Default::default()
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum EncodingArg {
    Auto,
    Utf8,
    Tis620,
}

#[derive(clap::Args)]
struct OutputArgs {
    /// Print nothing but errors.
    #[arg(long)]
    quiet: bool,
    /// Print the report as JSON on standard output (for scripts).
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    // A panic is a bug in tpmap, never an answer to bad input: say so in one line, without the
    // panic's own text unredacted (it could hold a value from the data), and exit with 1 like
    // any other error instead of Rust's 101.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!(
            "error: internal error in tpmap{at} (a bug: please report it): {}",
            tpmap::ids::redact_numbers(&what)
        );
    }));
    let cli = Cli::parse();
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
        Err(_) => ExitCode::from(1),
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Run { dir, out, ingest, score, mut plan, output } => {
            let households = tpmap::pipeline::pick(&dir, "households")?;
            let persons = tpmap::pipeline::pick(&dir, "persons")?;
            for (slot, name) in [
                (&mut plan.catalogue, "catalogue.toml"),
                (&mut plan.served, "served.csv"),
                (&mut plan.welfare_registry, "welfare_registry.csv"),
                (&mut plan.served_list, "served_list.csv"),
            ] {
                if slot.is_none() && dir.join(name).exists() {
                    *slot = Some(dir.join(name));
                }
            }
            ingest_cmd(&households, &persons, &out, &ingest, &score, Some(&plan), &output)
        }
        Command::Plan { dir, out, ingest, score, plan, output } => {
            if plan.catalogue.is_none() {
                return Err(Error::Config("plan needs --catalogue".into()));
            }
            let households = tpmap::pipeline::pick(&dir, "households")?;
            let persons = tpmap::pipeline::pick(&dir, "persons")?;
            ingest_cmd(&households, &persons, &out, &ingest, &score, Some(&plan), &output)
        }
        Command::Ingest { households, persons, out, ingest, score, output } => {
            ingest_cmd(&households, &persons, &out, &ingest, &score, None, &output)
        }
        Command::Mpi { data, spec, k, areas, weight, strata, psu, policy, out, quiet } => {
            let opts = tpmap::mpi::MpiOptions {
                k,
                areas,
                weight,
                design: strata.zip(psu),
                na: na_policy(policy.na),
                missing: missing_policy(policy.missing),
                bootstrap: (policy.bootstrap, policy.seed),
            };
            let t0 = Instant::now();
            let (m, timing) = tpmap::mpi::run_timed(&data, &spec, &opts)?;
            let stage = tpmap::output::Staging::new(&out)?;
            m.write(stage.path())?;
            let tpath = stage.path().join("timing.json");
            std::fs::write(&tpath, serde_json::to_string_pretty(&timing)?).map_err(|e| Error::io(&tpath, e))?;
            stage.commit()?;
            if !quiet {
                let all = &m.rows[0];
                println!(
                    "{} units: H = {:.4}, A = {:.4}, M0 = {:.4}{}; {} rows over levels {} in {:.2} s ({:.3} s reading, {:.3} s scoring and measures) -> {}/measures.{{csv,parquet,json}}",
                    all.units,
                    all.h,
                    all.a,
                    all.m0,
                    all.exact.as_ref().map(|e| format!(" (exactly {}, {}, {})", e[0], e[1], e[2])).unwrap_or_default(),
                    m.rows.len(),
                    m.levels.join(", "),
                    t0.elapsed().as_secs_f64(),
                    timing.read_seconds,
                    timing.measure_seconds,
                    out.display()
                );
            }
            Ok(())
        }
        Command::Reconcile { dir, year, mask } => {
            let p = tpmap::published::Published::read_dir(&dir, &year, &mask)?;
            let r = p.reconcile();
            println!(
                "{} published rows, {} values compared, {} differ",
                r.rows_compared,
                r.values_compared,
                r.mismatches.len()
            );
            for m in r.mismatches.iter().take(20) {
                println!(
                    "  {:?} {} {} {}: published {:?}, villages add up to {:?}",
                    m.level, m.table, m.area, m.column, m.published, m.rolled_up
                );
            }
            if r.mismatches.is_empty() {
                Ok(())
            } else {
                Err(Error::Format { file: dir.display().to_string(), message: "tables do not reconcile".into() })
            }
        }
        Command::Synth { households, seed, out, format, provinces, survey_year, quiet } => {
            synth_cmd(SynthOptions { households, seed, survey_year, provinces }, &out, format, quiet)
        }
        Command::Link { inputs, task, threshold, model, truth, explain, block, out, output } => {
            let blocking = if block.is_empty() {
                None
            } else {
                let rules = block
                    .iter()
                    .map(|r| {
                        r.split('+')
                            .map(|k| {
                                serde_json::from_value::<tpmap::link::model::Key>(serde_json::json!(k.trim()))
                                    .map_err(|_| Error::Parse(format!("--block: unknown key '{k}'")))
                            })
                            .collect::<Result<Vec<_>, Error>>()
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                Some(tpmap::link::Blocking { rules, ..Default::default() })
            };
            link_cmd(&inputs, task, threshold, model.as_deref(), truth.as_deref(), explain, blocking, &out, &output)
        }
        Command::LinkBench { households, seed, single_file, welfare_share, agency_share, out } => {
            let o = tpmap::link::bench::BenchOptions {
                households,
                seed,
                single_file,
                welfare_share,
                agency_share,
                ..Default::default()
            };
            let stage = tpmap::output::Staging::new(&out)?;
            let files = tpmap::link::bench::write(stage.path(), &o)?;
            stage.commit()?;
            println!(
                "wrote a SYNTHETIC linkage benchmark for {} people to {}: {}",
                files.people,
                out.display(),
                files.records.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(", ")
            );
            Ok(())
        }
        Command::Edition { id, overrides } => {
            let mut e = Edition::builtin(&id)?;
            if let Some(p) = overrides {
                let text = tpmap::limits::read_config(&p, tpmap::limits::DEFAULT_CONFIG_BYTES)?;
                e = e.with_overrides(&text)?;
            }
            print!("{}", e.to_toml());
            Ok(())
        }
    }
}

fn options(a: &IngestArgs) -> Result<IngestOptions, Error> {
    let edition =
        if Path::new(&a.edition).exists() { Edition::load(&a.edition)? } else { Edition::builtin(&a.edition)? };
    Ok(IngestOptions {
        mode: if a.strict { Mode::Strict } else { Mode::Lenient },
        encoding: match a.encoding {
            EncodingArg::Auto => Encoding::Auto,
            EncodingArg::Utf8 => Encoding::Utf8,
            EncodingArg::Tis620 => Encoding::Tis620,
        },
        edition: Arc::new(edition),
        area_check: if a.allow_new_villages { AreaCheck::Tambon } else { AreaCheck::Village },
        one_means: if a.one_means_pass { OneMeans::Pass } else { OneMeans::Fail },
        default_survey_year: a.survey_year,
        sheet: a.sheet.clone(),
        limits: a.limits.limits(),
        ..IngestOptions::default()
    })
}

fn na_policy(a: NaArg) -> tpmap::score::NaPolicy {
    match a {
        NaArg::NotDeprived => tpmap::score::NaPolicy::NotDeprived,
        NaArg::Reweight => tpmap::score::NaPolicy::Reweight,
    }
}

fn missing_policy(a: MissingArg) -> tpmap::score::MissingPolicy {
    match a {
        MissingArg::Drop => tpmap::score::MissingPolicy::Drop,
        MissingArg::Deprived => tpmap::score::MissingPolicy::Deprived,
        MissingArg::NotDeprived => tpmap::score::MissingPolicy::NotDeprived,
    }
}

fn ingest_cmd(
    households: &Path,
    persons: &Path,
    out: &Path,
    a: &IngestArgs,
    sc: &ScoreArgs,
    pa: Option<&PlanArgs>,
    o: &OutputArgs,
) -> Result<(), Error> {
    use tpmap::pipeline::RunOptions;
    let t0 = Instant::now();
    let mut ro = RunOptions::new(households, persons);
    ro.ingest = options(a)?;
    ro.mask = tpmap::pipeline::parse_mask(&sc.mask).map_err(|e| Error::Parse(format!("--mask: {e}")))?;
    ro.welfare = welfare_of(sc.welfare);
    ro.unit = match sc.unit {
        UnitArg::People => tpmap::score::Unit::People,
        UnitArg::Households => tpmap::score::Unit::Households,
    };
    ro.na = na_policy(sc.policy.na);
    ro.missing = missing_policy(sc.policy.missing);
    ro.bootstrap = (sc.policy.bootstrap, sc.policy.seed);
    ro.tpmap_year = sc.tpmap_year;
    if let Some(pa) = pa {
        ro.welfare_registry = pa.welfare_registry.clone();
        if let Some(catalogue) = &pa.catalogue {
            ro.plan = Some(plan_inputs(catalogue, pa)?);
        }
    }
    let progress = Bars::new(o.quiet || o.json);
    let done = tpmap::pipeline::run(&ro, out, &progress)?;
    progress.finish();
    let report = &done.report;
    if o.json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else if !o.quiet {
        if let Some(w) = report.get("welfare_link").filter(|w| !w.is_null()) {
            println!(
                "welfare registry linked: {} of {} persons matched ({} by citizen ID, the rest by name, birth date and address), {} validated; {} registry records matched no one ({:.1} s)\n",
                w["matched"],
                w["persons"],
                w["matched_by_id"],
                w["validated"],
                w["registry_unmatched"],
                w["seconds"].as_f64().unwrap_or(0.0)
            );
        }
        print_summary(&done.ingested, &done.summary, &done.measures, out, t0.elapsed().as_secs_f64());
        if let Some(p) = report.get("plan").filter(|p| !p.is_null()) {
            print_plan(p);
        }
    }
    Ok(())
}

/// The plan part of the run options from the command line.
fn plan_inputs(catalogue: &Path, pa: &PlanArgs) -> Result<tpmap::pipeline::PlanInputs, Error> {
    use tpmap::plan::PlanOptions;
    let key = tpmap::ids::PseudonymKey::resolve(pa.key_file.as_deref())?;
    if let Some(w) = key.warning() {
        eprintln!("{w}");
    }
    let date = match &pa.date {
        Some(d) => Some(tpmap::pipeline::parse_plan_date(d).map_err(|e| Error::Parse(format!("--{e}")))?),
        None => None,
    };
    let compare = (pa.compare_catalogue.is_some() || pa.compare_welfare.is_some() || pa.compare_population.is_some())
        .then(|| tpmap::pipeline::Compare {
            catalogue: pa.compare_catalogue.clone(),
            welfare: pa.compare_welfare.map(welfare_of),
            population: pa.compare_population.map(population_of),
        });
    Ok(tpmap::pipeline::PlanInputs {
        catalogue: catalogue.to_path_buf(),
        served: pa.served.clone(),
        served_list: pa.served_list.clone(),
        options: PlanOptions { population: population_of(pa.population), date, key },
        reveal_ids: pa.reveal_ids,
        suppress: pa.suppress,
        optimize: match pa.optimize {
            true => Some(
                std::time::Duration::try_from_secs_f64(pa.optimize_seconds).ok().filter(|d| !d.is_zero()).ok_or_else(
                    || {
                        Error::Config(format!(
                            "--optimize-seconds must be a positive number of seconds, not {}",
                            pa.optimize_seconds
                        ))
                    },
                )?,
            ),
            false => None,
        },
        compare,
    })
}

/// Progress on the terminal: a spinner naming the step, a bar while programs are allocated.
struct Bars {
    bar: indicatif::ProgressBar,
}

impl Bars {
    fn new(hidden: bool) -> Bars {
        let bar = indicatif::ProgressBar::new_spinner();
        if hidden {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        } else {
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
        }
        Bars { bar }
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl tpmap::pipeline::Progress for Bars {
    fn step(&self, what: &str) {
        self.bar.set_style(indicatif::ProgressStyle::default_spinner());
        self.bar.set_message(what.to_string());
    }
    fn programs(&self, done: usize, total: usize) {
        if done == 0 || self.bar.length() != Some(total as u64) {
            self.bar.set_length(total as u64);
            self.bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} planning [{bar:40}] {pos}/{len} programs ({elapsed})",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
        }
        self.bar.set_position(done as u64);
    }
}

fn welfare_of(w: WelfareArg) -> tpmap::published::Welfare {
    match w {
        WelfareArg::Validated => tpmap::published::Welfare::Validated,
        WelfareArg::Registered => tpmap::published::Welfare::Registered,
        WelfareArg::None => tpmap::published::Welfare::None,
    }
}

fn population_of(p: PopulationArg) -> tpmap::plan::Population {
    match p {
        PopulationArg::Target => tpmap::plan::Population::Target,
        PopulationArg::Poor => tpmap::plan::Population::Poor,
    }
}

fn print_plan(p: &serde_json::Value) {
    let s = &p["summary"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    println!(
        "\nplan ({}{}): {} households, {} deprivations, {} covered ({:.1}%), {} with no program; {} places, {} baht, {} programs running",
        s["catalogue"].as_str().unwrap_or(""),
        if s["illustrative"].as_bool() == Some(true) { ", ILLUSTRATIVE" } else { "" },
        n(&s["households"]),
        n(&s["deprivations"]),
        n(&s["covered"]),
        100.0 * n(&s["covered"]) as f64 / n(&s["deprivations"]).max(1) as f64,
        n(&s["no_program"]),
        n(&s["places"]),
        n(&s["spent"]),
        n(&s["active_programs"]),
    );
    if let Some(d) = s["by_dimension"].as_object() {
        let parts: Vec<String> = d.iter().map(|(k, v)| format!("{k} {}/{}", n(&v[1]), n(&v[0]))).collect();
        println!("  covered by dimension: {}", parts.join(", "));
    }
    if let Some(c) = p.get("optimized") {
        let c = &c["comparison"];
        println!(
            "  optimiser: weighted deprivations covered {} (rank-and-fill) -> {} ({}), {} -> {} places, {:.2} s",
            c["covered_weight"][0],
            c["covered_weight"][1],
            if c["proven_optimal"].as_bool() == Some(true) { "proven optimal" } else { "time limit: best found" },
            c["places"][0],
            c["places"][1],
            c["seconds"][1].as_f64().unwrap_or(0.0)
        );
    }
    if let Some(w) = p.get("what_if") {
        println!(
            "  what-if: population {} -> {}, households helped {} -> {} ({} enter, {} leave), budget {} -> {} baht",
            w["population"][0],
            w["population"][1],
            w["helped"][0],
            w["helped"][1],
            w["entered"],
            w["left"],
            w["spent"][0],
            w["spent"][1]
        );
    }
    println!(
        "  wrote {}/: household_plan, programs, declined, worklists/, provinces, amphoes, report.xlsx, plan.json",
        p["dir"].as_str().unwrap_or("")
    );
}

fn print_summary(got: &Ingested, s: &Summary, m: &tpmap::aggregate::Measures, out: &Path, secs: f64) {
    for t in [&got.report.households, &got.report.persons] {
        println!(
            "{}: {} rows read, {} accepted, {} rejected{}",
            t.file,
            t.input_rows,
            t.accepted,
            t.rejected,
            if t.reconciles() { "" } else { "  (DOES NOT RECONCILE)" }
        );
        for (reason, n) in &t.by_reason {
            println!("    {n:>8}  {}", reason.describe());
        }
    }
    println!(
        "\n{} households, {} persons in {} provinces; welfare card: {} registered, {} validated",
        s.households,
        s.persons,
        s.provinces.len(),
        s.welfare_registered,
        s.welfare_validated
    );
    println!("\nhouseholds failing each reported indicator:");
    for i in &s.indicators {
        let share = if i.households_applicable > 0 {
            100.0 * i.households_failing as f64 / i.households_applicable as f64
        } else {
            0.0
        };
        println!(
            "  {:>6} {:<10} {:>9} of {:>9} ({share:5.1}%){}",
            i.label,
            i.dimension.as_deref().unwrap_or("-"),
            i.households_failing,
            i.households_applicable,
            if i.households_missing > 0 { format!(", {} missing", i.households_missing) } else { String::new() }
        );
    }
    let c = &m.rows[0];
    println!(
        "\nTPMAP rule ({}): {:.0} poor of {:.0} ({:.2}%), {:.0} target poor; by dimension among the poor: {}",
        m.spec.dimensions.join("+"),
        c.poor,
        c.population,
        100.0 * c.h,
        c.target_poor,
        m.spec
            .dimensions
            .iter()
            .zip(&c.dimension_poor)
            .map(|(d, n)| format!("{d} {n:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "\nwrote {}/: households.parquet, persons.parquet, rejected_*.csv, household_scores.parquet, measures.{{csv,parquet,json}} ({} areas), tpmap/ (public-format tables), report.html, report.json ({secs:.2} s)",
        out.display(),
        m.rows.len()
    );
}

fn synth_cmd(opts: SynthOptions, out: &Path, format: SynthFormat, quiet: bool) -> Result<(), Error> {
    let t0 = Instant::now();
    let s = Synthesizer::new(opts)?;
    let stage = tpmap::output::Staging::new(out)?;
    let (shown, out) = (out, stage.path());
    let bar = indicatif::ProgressBar::new(s.persons());
    if quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} synthesising [{bar:40}] {pos}/{len} persons ({eta})")
            .expect("template")
            .progress_chars("=> "),
    );
    let meta = frame::synthetic_metadata(SYNTHETIC_NOTICE);
    let edition = s.edition().clone();
    let parquet = matches!(format, SynthFormat::Parquet | SynthFormat::Both);
    let csv = matches!(format, SynthFormat::Csv | SynthFormat::Both);
    let mut pq: Option<(frame::ParquetBatches, frame::ParquetBatches)> = None;
    let mut cw: Option<(std::io::BufWriter<std::fs::File>, std::io::BufWriter<std::fs::File>)> = None;
    for chunk in s.chunks(1 << 20) {
        let mut hh = frame::households_frame(&chunk.households, &edition)?;
        let mut pp = frame::persons_frame(&chunk.persons, &chunk.households.id, &edition)?;
        if parquet {
            if pq.is_none() {
                pq = Some((
                    frame::ParquetBatches::create(&out.join("households.parquet"), hh.schema(), &meta)?,
                    frame::ParquetBatches::create(&out.join("persons.parquet"), pp.schema(), &meta)?,
                ));
            }
            let (a, b) = pq.as_mut().expect("created");
            a.write(&hh)?;
            b.write(&pp)?;
        }
        if csv {
            let first = cw.is_none();
            if first {
                let open = |name: &str| -> Result<_, Error> {
                    use std::io::Write;
                    let p = out.join(name);
                    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).map_err(|e| Error::io(&p, e))?);
                    writeln!(f, "# {SYNTHETIC_NOTICE}").map_err(|e| Error::io(&p, e))?;
                    Ok(f)
                };
                cw = Some((open("households.csv")?, open("persons.csv")?));
            }
            let (a, b) = cw.as_mut().expect("created");
            frame::append_csv(&mut hh, a, first)?;
            frame::append_csv(&mut pp, b, first)?;
        }
        bar.inc(chunk.persons.len() as u64);
    }
    if let Some((a, b)) = pq {
        a.finish()?;
        b.finish()?;
    }
    drop(cw);
    bar.finish_and_clear();
    let readme = out.join("README.txt");
    std::fs::write(
        &readme,
        format!("{SYNTHETIC_NOTICE}\n\nhouseholds: {}\npersons: {}\n", s.households(), s.persons()),
    )
    .map_err(|e| Error::io(&readme, e))?;
    stage.commit()?;
    if !quiet {
        println!(
            "wrote {} SYNTHETIC households and {} persons to {} in {:.1} s",
            s.households(),
            s.persons(),
            shown.display(),
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn link_cmd(
    inputs: &[PathBuf],
    task: TaskArg,
    threshold: f64,
    model: Option<&Path>,
    truth: Option<&Path>,
    explain: usize,
    blocking: Option<tpmap::link::Blocking>,
    out: &Path,
    o: &OutputArgs,
) -> Result<(), Error> {
    use tpmap::link::output::LinkReport;
    use tpmap::link::{LinkOptions, Records, Task};
    let t0 = Instant::now();
    let model = match model {
        Some(p) => {
            Some(tpmap::link::Model::from_json(&tpmap::limits::read_config(p, tpmap::limits::DEFAULT_CONFIG_BYTES)?)?)
        }
        None => None,
    };
    let task = match task {
        TaskArg::Dedupe => Task::Dedupe,
        TaskArg::Link => Task::Link,
        TaskArg::LinkAndDedupe => Task::LinkAndDedupe,
    };
    let mut opts = LinkOptions { task, threshold, model, ..Default::default() };
    if let Some(b) = blocking {
        opts.blocking = b;
    }
    opts.validate()?;
    let mut r = Records::default();
    for p in inputs {
        r.push_csv(p)?;
    }
    let read_seconds = t0.elapsed().as_secs_f64();
    let spinner = (!o.quiet && !o.json).then(|| {
        let s = indicatif::ProgressBar::new_spinner().with_message("linking");
        s.enable_steady_tick(std::time::Duration::from_millis(120));
        s
    });
    let linked = tpmap::link::run(&r, &opts)?;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let mut report = LinkReport::of(&r, &linked, threshold, read_seconds, t0);
    if let Some(p) = truth {
        let t = tpmap::link::bench::read_truth(p, &r)?;
        report.quality =
            Some(tpmap::link::model::evaluate(&r, task, &t, &linked.pairs, &linked.scored, threshold, &linked.entity));
    }
    let stage = tpmap::output::Staging::new(out)?;
    tpmap::link::output::write(stage.path(), &r, &linked, &report, explain)?;
    stage.commit()?;
    if o.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !o.quiet {
        println!(
            "{} records from {}: {} candidate pairs, {} matches, {} entities in {:.2} s",
            r.len(),
            r.sources.join(", "),
            linked.pairs.len(),
            report.matches,
            report.entities,
            t0.elapsed().as_secs_f64()
        );
        for (source, n) in &report.unreadable {
            println!("  {source}: {n} records not valid text in the file's encoding were not linked");
        }
        if let Some(q) = &report.quality {
            println!(
                "  against the truth: pairs completeness {:.4}, reduction ratio {:.6}, precision {:.4}, recall {:.4}, F1 {:.4}; clusters (B-cubed) P {:.4} R {:.4} F1 {:.4}",
                q.pairs_completeness,
                q.reduction_ratio,
                q.precision,
                q.recall,
                q.f1,
                q.cluster_precision,
                q.cluster_recall,
                q.cluster_f1
            );
        }
        println!("  wrote {}/: pairs.csv, entities.csv, model.json, explanations.json, link.json", out.display());
    }
    Ok(())
}
