//! The `tpmap` command-line program. See `tpmap --help`.
//!
//! A thin layer: options are the library's own types (their `FromStr` and `clap::ValueEnum`
//! come from the core), every file is written by the library, and what is printed is read from
//! the library's typed reports.

/// mimalloc instead of glibc malloc: the linker and the readers allocate many short strings on
/// several threads, where glibc's arenas cost ~17 % of a `tpmap link` run (perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (the 16th option of `mi_option_e` in mimalloc v3's
/// `mimalloc.h`, the version libmimalloc-sys builds; the crate names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory is kept 10 s before it goes back to the system (mimalloc's default: 1 s). A
/// partitioned run frees a wave's tables and allocates the next wave's within a second: with the
/// default, every wave's memory was given back and faulted in again, zeroed by the kernel (sys
/// time 8.3-8.9 s of a 45-48 s national run, 3.1-3.4 s with this; docs/bench/national-reading.txt).
/// Peak memory is unchanged within noise there; memory still goes back after a pause. Not for
/// the linkage commands ([`keeps_freed_memory`]): `tpmap link` frees one phase's structures and
/// builds the next's, and holding the freed ones raised its national peak from 6.99 to 7.96 GiB
/// (the aim is 8 GiB).
fn keep_freed_memory_a_while() {
    // SAFETY: sets one integer option, before any other thread starts (mimalloc's options are
    // not synchronised). An unknown option number would be ignored, never unsafe.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10_000) };
}

/// What the library calls when a phase has freed large structures ([`tpmap::memory::release`]):
/// mimalloc's forced collection on this thread, which also purges the memory every thread has
/// given back to mimalloc's arenas. mimalloc purges on its own only when allocations happen to
/// trigger it: in the national run with a welfare registry, 1.9 GB that blocking had freed
/// were still resident through the comparisons, 14 s later, and the records dropped before
/// clustering stayed resident through it.
fn give_back_freed_memory() {
    // SAFETY: mi_collect takes no pointers and may be called on any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use tpmap::Error;
use tpmap::indicators::Edition;
use tpmap::ingest::{AreaCheck, Encoding, IngestOptions, Mode, OneMeans};
use tpmap::link::Task;
use tpmap::pipeline::{Compare, PlanInputs, RunOptions};
use tpmap::plan::{PlanOptions, Population};
use tpmap::score::{Cutoff, DimensionMask, MissingPolicy, NaPolicy, Unit, Welfare};
use tpmap::synth::{SynthFormat, SynthOptions, Synthesizer};
use tpmap::thai::PartialDate;

/// tpmap: find, score and help Thailand's poor households, from BMN (จปฐ.) extracts.
///
/// Exit codes: 0 success; 1 error (bad input in strict mode, unreadable file, bad options, a limit
/// reached); 2 command-line usage error.
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
    /// preferred when several exist). Given several folders — survey rounds, oldest first — the
    /// job runs on the last and compares the rounds household by household (like `tpmap panel`):
    /// --out/panel/ and the report's "Year over year".
    Run {
        /// Folder with households.{parquet,csv,xlsx} and persons.{parquet,csv,xlsx}; or several
        /// such folders, one per survey round, oldest first.
        #[arg(required = true, num_args = 1..=20)]
        dirs: Vec<PathBuf>,
        #[command(flatten)]
        job: JobArgs,
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// Plan assistance: ingest and score the folder's extracts like `run`, match the target
    /// households to a program catalogue and write household plans, agency work lists, the
    /// provincial report and (with --compare-*) a what-if comparison to --out/plan.
    Plan {
        /// Folder with households.* and persons.* (an output folder of `run` works too).
        dir: PathBuf,
        #[command(flatten)]
        job: JobArgs,
        #[command(flatten)]
        plan: PlanArgs,
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
        #[command(flatten)]
        job: JobArgs,
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
        /// Several consecutive TPMAP years (2561,2562,2563): one round per year with household
        /// and person dynamics, written to OUT/<year>/ with each round's served list and
        /// OUT/truth.json (Parquet; see docs/panel.md).
        #[arg(long, value_delimiter = ',')]
        years: Vec<u16>,
        /// With --years: a deprived household's yearly chance of leaving a deprivation.
        #[arg(long, default_value_t = 0.35)]
        exit: f64,
        /// With --years: the served households' extra chance of leaving the addressed deprivation
        /// (the program's true effect).
        #[arg(long, default_value_t = 0.25)]
        served_effect: f64,
        /// With --years: keep --exit every year, instead of calibrating each year's exit chance
        /// so that the target poor follow TPMAP's published national series (2561 1,032,987 ...
        /// 2566 655,365), scaled to the first round.
        #[arg(long)]
        stationary: bool,
        /// Hide the progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Compare two survey rounds household by household: match the later round's households to
    /// the earlier ones (same keys, else members' citizen IDs; splits kept as such), count who
    /// left poverty, who fell in and who stayed in every area, per dimension and indicator, and
    /// with a served list of the earlier round, whether the served households left the addressed
    /// deprivation more often than comparable unserved ones. Writes matches.parquet,
    /// transitions.{csv,parquet}, effects.csv and panel.json to --out.
    Panel {
        /// The rounds, oldest first: folders with households.* and persons.* (and the round's
        /// served.csv, when there is one). With more than two, each consecutive pair is written
        /// to OUT/<earlier>-<later>/; OUT/trajectories.parquet follows every household through
        /// all of them.
        #[arg(required = true, num_args = 2..)]
        rounds: Vec<PathBuf>,
        /// Served list of the earlier of two rounds: CSV household_id,program,indicator (default:
        /// the earlier folder's served.csv, when present).
        #[arg(long)]
        served: Option<PathBuf>,
        /// TPMAP dimension switches for "poor".
        #[arg(long, default_value = "11111")]
        mask: DimensionMask,
        /// Welfare condition for target poor.
        #[arg(long, value_enum, default_value_t = Welfare::Validated)]
        welfare: Welfare,
        /// Indicator edition of the rounds: one (built-in id or TOML file) for all, or one per
        /// round, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "bmn-2560")]
        edition: Vec<String>,
        /// Mapping files (TOML) saying which indicators of two editions correspond, for pairs of
        /// rounds with different editions (each file names its two editions; docs/panel.md).
        #[arg(long)]
        edition_map: Vec<PathBuf>,
        /// Read each round whole, or a wave of provinces at a time (keeping only what matching
        /// and the flows need of each wave, an earlier round's names on disk: two national
        /// rounds within 4 GiB). `auto` reads Parquet rounds of 10 M persons or more (CSV persons
        /// files of 1.6 GB or more) by province, everything else whole.
        #[arg(long, value_enum, default_value_t = PartitionArg::Auto)]
        partition: PartitionArg,
        /// Memory budget (4GiB, 512MiB, 8GB): every round is read a wave of provinces at a time
        /// in waves that fit what the rounds kept so far leave of it, and a budget below the
        /// comparison's estimate is an error before any round is read.
        #[arg(long, value_parser = tpmap::limits::parse_bytes)]
        max_memory: Option<u64>,
        /// Output folder.
        #[arg(long, default_value = "tpmap-out")]
        out: PathBuf,
        /// Print nothing.
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
        k: Cutoff,
        /// Area columns, coarsest first (comma-separated): nested, each inside the one before.
        #[arg(long, value_delimiter = ',')]
        areas: Vec<String>,
        /// A column giving a breakdown of its own, not nested (repeat for more, as mpitb's
        /// over(sex region)): its rows follow the nested levels', with the column as their level.
        #[arg(long)]
        over: Vec<String>,
        /// Weight column (household size, or a sampling weight).
        #[arg(long)]
        weight: Option<String>,
        /// Strata column (with --psu) for design-based standard errors.
        #[arg(long, requires = "psu")]
        strata: Option<String>,
        /// Primary-sampling-unit column (with --strata).
        #[arg(long, requires = "strata")]
        psu: Option<String>,
        /// A second round's units table, same columns: measures both rounds (into t0/ and t1/)
        /// and writes the changes of H, A, M0 and the censored headcounts per area
        /// (changes.csv), with standard errors for independent samples (or a panel: --unit-id).
        #[arg(long, conflicts_with = "round")]
        then: Option<PathBuf>,
        /// A column of --data naming each unit's round, when one table holds two rounds (as
        /// --then, the earlier round first: by number, else by text).
        #[arg(long)]
        round: Option<String>,
        /// A column naming each unit (household): with two rounds, the changes get panel standard
        /// errors (the covariance of the rounds counted); with --bootstrap, a unit's replicate
        /// weights follow its id, not its row (the same however the rows are ordered or split).
        #[arg(long)]
        unit_id: Option<String>,
        /// Years between the two rounds, for annualised changes (with --then or --round).
        #[arg(long)]
        years: Option<f64>,
        /// Write the partial result (partial.json and leaves.parquet: every area's sums) instead
        /// of the measures, for `tpmap merge` to add up with other parts' (one province each,
        /// say) exactly. Not with --over, --then, --round or --strata; --bootstrap needs
        /// --unit-id (replicates drawn per unit, so that the parts' add up to the whole's).
        #[arg(long, conflicts_with_all = ["then", "round", "over", "strata"])]
        partial: bool,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Output folder.
        #[arg(long, default_value = "tpmap-out")]
        out: PathBuf,
        /// Print nothing.
        #[arg(long)]
        quiet: bool,
    },
    /// Merge the partial results of `tpmap mpi --partial` (one folder per part, same spec and
    /// levels) into the measures of the whole: the same numbers as one run over all the parts'
    /// units, bit for bit with whole-number weights. Writes measures.{csv,parquet,json} to --out.
    Merge {
        /// Folders written by `tpmap mpi --partial`, in the order of the data.
        #[arg(required = true)]
        parts: Vec<PathBuf>,
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
        /// Folder with TPMAP's files (YY_country_common.csv, YY_PP_village_MASK.csv, ...; .csv.gz too).
        dir: PathBuf,
        /// Two-digit BE year of the files.
        #[arg(long, default_value = "61")]
        year: String,
        /// Dimension mask (health, living, education, income, access).
        #[arg(long, default_value = "11111")]
        mask: DimensionMask,
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
        #[arg(long, value_enum, default_value_t = Task::Link)]
        task: Task,
        /// Match probability threshold (strictly between 0 and 1).
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
        /// name_soundex_set, tambon, amphoe, province, house).
        #[arg(long)]
        block: Vec<tpmap::link::model::BlockRule>,
        /// Memory budget (4GiB, 512MiB, 8GB): what the job holds is added up at every phase
        /// (the records once read, each blocking rule's keys and pairs, the patterns, the scores,
        /// the clustering, a truth's evaluation) and the job stops with an error naming the phase
        /// before it passes the budget; nothing is written then.
        #[arg(long, value_parser = tpmap::limits::parse_bytes)]
        max_memory: Option<u64>,
        /// Link the first of two files in parts, a group of provinces at a time, beside the
        /// second held whole: the same files as the whole job, holding a part of the first
        /// file's records instead of all of them (put the larger file first). Chosen by itself
        /// under --max-memory when the whole job is estimated to pass the budget. A link task
        /// without --truth, with the default blocking rules or a --model.
        #[arg(long)]
        split: bool,
        /// Output folder.
        #[arg(long, default_value = "tpmap-link")]
        out: PathBuf,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Generate the SYNTHETIC labelled linkage benchmark: survey.csv, welfare.csv, agency.csv
    /// (or records.csv with --single-file) and truth.csv.
    LinkBench {
        /// Which benchmark: `tpmap` (one list of corruptions, at most three per record) or
        /// `registries` (the independent specification in docs/linkage.md: per-source fault rates,
        /// partial and mistyped dates, marriages, moves, twins, namesakes, duplicates).
        #[arg(long, default_value = "tpmap", value_parser = ["tpmap", "registries"])]
        kind: String,
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
    /// Write registries as `tpmap link` normalises them (names without titles, CE ISO dates,
    /// partial dates as columns, area codes by level, LK82 codes) to one CSV, so that a peer tool
    /// links the same cleaned inputs. Citizen IDs become keyed letter tokens (equal IDs equal,
    /// one mistyped digit one letter off); the file is as confidential as its inputs.
    LinkNormalise {
        /// Registry CSV files (as for `tpmap link`).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Secret key of the ID tokens (else $TPMAP_PSEUDONYM_KEY, else the public default).
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Output CSV file.
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

/// What every job (run, plan, ingest) takes: the output folder, reading, scoring and printing.
#[derive(clap::Args)]
struct JobArgs {
    /// Output folder (created if missing; written all at once at the end).
    #[arg(long, default_value = "tpmap-out")]
    out: PathBuf,
    #[command(flatten)]
    ingest: IngestArgs,
    #[command(flatten)]
    score: ScoreArgs,
    /// Print nothing but errors.
    #[arg(long)]
    quiet: bool,
    /// Print the report as JSON on standard output (for scripts).
    #[arg(long)]
    json: bool,
    /// Read the extract whole, or province by province in waves (peak memory bounded by the
    /// largest wave, the same outputs, the plan made over the poor households after the last
    /// wave; see docs/partitioned.md). `auto` reads a Parquet extract of 10 M persons or more (or
    /// a CSV persons file of 1.6 GB or more) by province (earlier rounds are then compared a
    /// wave of provinces at a time, within --max-memory when given), and everything else whole (a welfare registry or beneficiary list is linked with every
    /// wave's persons; under --max-memory a wave at a time).
    #[arg(long, value_enum, default_value_t = PartitionArg::Auto)]
    partition: PartitionArg,
    /// Memory budget of a partitioned run (4GiB, 512MiB, 8GB): provinces are read together while
    /// their estimate fits, and a budget below the largest province's needs is an error before
    /// any output is written. Implies a partitioned run.
    #[arg(long, value_parser = tpmap::limits::parse_bytes)]
    max_memory: Option<u64>,
}

/// How `--partition` reads the extract.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PartitionArg {
    /// By province for a large Parquet or CSV extract when nothing needs it whole, else whole.
    Auto,
    /// All at once.
    Whole,
    /// Province by province.
    Province,
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
    #[arg(long, value_enum, default_value_t = Population::Target)]
    population: Population,
    /// Date programs must be running on (YYYY-MM-DD; default: the catalogue's as_of).
    #[arg(long, value_parser = tpmap::pipeline::parse_plan_date)]
    date: Option<PartialDate>,
    /// File holding the secret key for pseudonyms in work lists and for ranking ties
    /// (default: $TPMAP_PSEUDONYM_KEY, else a fixed public key — set one in production).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Write household IDs, and citizen IDs and names in person work lists (default: pseudonyms).
    #[arg(long)]
    reveal_ids: bool,
    /// Suppress counts below this in the publication files (provinces.csv, amphoes.csv, report.xlsx).
    #[arg(long, default_value_t = tpmap::report::DEFAULT_SUPPRESS)]
    suppress: u64,
    /// What-if: plan again with this catalogue and compare.
    #[arg(long)]
    compare_catalogue: Option<PathBuf>,
    /// What-if: plan again with this welfare condition for target households and compare.
    #[arg(long, value_enum)]
    compare_welfare: Option<Welfare>,
    /// What-if: plan again for this population and compare.
    #[arg(long, value_enum)]
    compare_population: Option<Population>,
    /// Also run the exact optimiser (max weighted deprivations covered under the same rules),
    /// write its plan to plan/optimized/ and compare it with rank-and-fill.
    #[arg(long)]
    optimize: bool,
    /// Time limit for the optimiser in seconds (it returns the best plan found, marked not proven optimal).
    #[arg(long, default_value_t = 60.0)]
    optimize_seconds: f64,
}

#[derive(clap::Args)]
struct PolicyArgs {
    /// How not-applicable indicators count.
    #[arg(long, value_enum, default_value_t = NaPolicy::NotDeprived)]
    na: NaPolicy,
    /// How missing values count.
    #[arg(long, value_enum, default_value_t = MissingPolicy::Drop)]
    missing: MissingPolicy,
    /// Bootstrap replicates for standard errors (0 = none).
    #[arg(long, default_value_t = 0)]
    bootstrap: usize,
    /// Bootstrap seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(clap::Args)]
struct ScoreArgs {
    /// TPMAP dimension switches: five 0/1 digits for health, living, education, income, access.
    #[arg(long, default_value = "11111")]
    mask: DimensionMask,
    /// Welfare condition for target poor.
    #[arg(long, value_enum, default_value_t = Welfare::Validated)]
    welfare: Welfare,
    /// Unit of the area measures.
    #[arg(long, value_enum, default_value_t = Unit::People)]
    unit: Unit,
    /// TPMAP year (BE) for the public-format file names.
    #[arg(long, default_value_t = 2561)]
    tpmap_year: u16,
    #[command(flatten)]
    policy: PolicyArgs,
}

#[derive(clap::Args)]
struct IngestArgs {
    /// Stop at the first bad row with an error naming file, row and column (default: lenient,
    /// bad rows are written to rejected_*.csv).
    #[arg(long)]
    strict: bool,
    /// CSV text encoding (auto: decided on the evidence of every line).
    #[arg(long, value_enum, default_value_t = Encoding::Auto)]
    encoding: Encoding,
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
    /// Most cells (rows × header columns) one Excel worksheet may hold; each takes 16 bytes.
    #[arg(long, default_value_t = tpmap::limits::DEFAULT_XLSX_CELLS)]
    max_xlsx_cells: u64,
    /// Most bytes the parts of one Excel workbook may decompress to.
    #[arg(long, default_value_t = tpmap::limits::DEFAULT_XLSX_BYTES)]
    max_xlsx_bytes: u64,
    /// Deepest nesting of a catalogue's eligibility rule (parentheses, not, any/all).
    #[arg(long, default_value_t = tpmap::limits::DEFAULT_RULE_DEPTH)]
    max_rule_depth: usize,
    /// Most eligible units a plan decides on (places given and declined, over all programs;
    /// about 384 bytes each). Within --max-memory, also what the budget leaves for them.
    #[arg(long, default_value_t = tpmap::limits::DEFAULT_PLAN_DECISIONS)]
    max_plan_decisions: u64,
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
        if tpmap::diagnostics::in_foreign_code() {
            return; // another crate's reader on a damaged file: reported as an error naming it
        }
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        // Output piped into a reader that has stopped (`tpmap link ... | head -1`): end quietly,
        // with the status of a program ended by SIGPIPE (128 + 13), as other tools do, not as a
        // bug (Rust ignores SIGPIPE, so `println!` panics). The outputs were written before.
        if what.contains("failed printing to stdout") && what.contains("Broken pipe") {
            std::process::exit(141);
        }
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!(
            "error: internal error in tpmap{at} (a bug: please report it): {}",
            tpmap::ids::redact_numbers(&what)
        );
    }));
    // Usage errors (exit 2) quote the value given: hide long numbers in them as in every message.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprint!("{}", tpmap::ids::redact_numbers(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    if keeps_freed_memory(&cli.command) {
        // Before any other thread starts (parsing starts none).
        keep_freed_memory_a_while();
    }
    tpmap::memory::set_release(give_back_freed_memory);
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
        Err(_) => ExitCode::from(1),
    }
}

/// Whether `command` keeps freed memory a while ([`keep_freed_memory_a_while`]): all but the
/// linkage commands. A run that links a welfare registry keeps it too: its linkage gives what
/// each phase frees back through [`give_back_freed_memory`] (the national partitioned run with
/// a registry: 221.5 s and 7.36 GiB, against 268.3 s and 6.99 GiB with the delay off;
/// docs/bench/national-welfare.txt). Before that hook, holding the linkage's freed memory
/// raised that run's peak to 9.69 GB.
fn keeps_freed_memory(command: &Command) -> bool {
    !matches!(command, Command::Link { .. } | Command::LinkBench { .. } | Command::LinkNormalise { .. })
}

fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Run { dirs, job, plan } => {
            let Some((dir, earlier)) = dirs.split_last() else {
                return Err(Error::Config("run needs a folder".into()));
            };
            // The folder's own files, unless named on the command line.
            let found =
                |name: &str, given: &Option<PathBuf>| given.clone().or(Some(dir.join(name)).filter(|p| p.exists()));
            let mut o =
                RunOptions::new(&tpmap::pipeline::pick(dir, "households")?, &tpmap::pipeline::pick(dir, "persons")?);
            o.welfare_registry = found("welfare_registry.csv", &plan.welfare_registry);
            let served = (found("served.csv", &plan.served), found("served_list.csv", &plan.served_list));
            o.plan = found("catalogue.toml", &plan.catalogue).map(|c| plan_inputs(c, &plan, served)).transpose()?;
            if !earlier.is_empty() {
                let options = tpmap::panel::rounds::RoundsOptions::default();
                o.earlier = Some(tpmap::pipeline::EarlierRounds { folders: earlier.to_vec(), options });
            }
            main_job(o, &job)
        }
        Command::Plan { dir, job, plan } => {
            let catalogue = plan.catalogue.clone().ok_or_else(|| Error::Config("plan needs --catalogue".into()))?;
            let mut o =
                RunOptions::new(&tpmap::pipeline::pick(&dir, "households")?, &tpmap::pipeline::pick(&dir, "persons")?);
            o.welfare_registry = plan.welfare_registry.clone();
            o.plan = Some(plan_inputs(catalogue, &plan, (plan.served.clone(), plan.served_list.clone()))?);
            main_job(o, &job)
        }
        Command::Ingest { households, persons, job } => main_job(RunOptions::new(&households, &persons), &job),
        Command::Mpi {
            data,
            spec,
            k,
            areas,
            over,
            weight,
            strata,
            psu,
            then,
            round,
            unit_id,
            years,
            partial,
            policy,
            out,
            quiet,
        } => {
            let two_rounds = then.is_some() || round.is_some();
            if !two_rounds && (years.is_some() || (unit_id.is_some() && policy.bootstrap == 0)) {
                return Err(Error::Config(
                    "--years needs two rounds (--then or --round); --unit-id two rounds or --bootstrap".into(),
                ));
            }
            let opts = tpmap::mpi::MpiOptions {
                k,
                areas,
                over,
                weight,
                design: strata.zip(psu),
                na: policy.na,
                missing: policy.missing,
                bootstrap: (policy.bootstrap, policy.seed),
                round,
                unit_id,
            };
            let t0 = Instant::now();
            if two_rounds {
                use tpmap::ingest::TableInput;
                let rows = tpmap::mpi::read_spec(&spec)?;
                let r = tpmap::mpi::measure_changes(
                    TableInput::File(&data),
                    then.as_deref().map(TableInput::File),
                    rows,
                    &opts,
                    years,
                )?;
                tpmap::mpi::write_changes(&out, &r)?;
                if !quiet {
                    let (a, b) = (&r.measures[0].rows[0], &r.measures[1].rows[0]);
                    println!(
                        "{} -> {}: M0 {:.4} -> {:.4}, H {:.4} -> {:.4}, A {:.4} -> {:.4}; SEs for {} -> {}/changes.{{csv,parquet,json}}, t0/, t1/",
                        r.names[0],
                        r.names[1],
                        a.m0,
                        b.m0,
                        a.h,
                        b.h,
                        a.a,
                        b.a,
                        if r.panel { "a panel (units linked by --unit-id)" } else { "independent samples" },
                        out.display()
                    );
                }
                return Ok(());
            }
            if partial {
                let p =
                    tpmap::mpi::partial(tpmap::ingest::TableInput::File(&data), tpmap::mpi::read_spec(&spec)?, &opts)?;
                let stage = tpmap::output::Staging::new(&out)?;
                p.write(stage.path())?;
                stage.commit()?;
                if !quiet {
                    println!(
                        "{} areas' sums over levels {} in {:.2} s -> {}/partial.json, leaves.parquet",
                        p.leaves.len(),
                        p.levels.join(", "),
                        t0.elapsed().as_secs_f64(),
                        out.display()
                    );
                }
                return Ok(());
            }
            let (m, timing) = tpmap::mpi::run_timed(&data, &spec, &opts)?;
            tpmap::mpi::write(&out, &m, &timing)?;
            if !quiet {
                let all = &m.rows[0];
                let exact =
                    all.exact.as_ref().map(|e| format!(" (exactly {}, {}, {})", e[0], e[1], e[2])).unwrap_or_default();
                println!(
                    "{} units: H = {:.4}, A = {:.4}, M0 = {:.4}{exact}; {} rows over levels {} in {:.2} s ({:.3} s reading, {:.3} s scoring and measures) -> {}/measures.{{csv,parquet,json}}",
                    all.units,
                    all.h,
                    all.a,
                    all.m0,
                    m.rows.len(),
                    m.levels.join(", "),
                    t0.elapsed().as_secs_f64(),
                    timing.read_seconds,
                    timing.measure_seconds,
                    out.display()
                );
            }
            // The command is done and the process ends: its memory goes back to the system whole.
            // Freeing the rows one vector at a time took 40 ms nationally (92,633 areas).
            std::mem::forget(m);
            Ok(())
        }
        Command::Merge { parts, out, quiet } => {
            let t0 = Instant::now();
            let partials = parts.iter().map(|p| tpmap::partial::Partial::read(p)).collect::<Result<Vec<_>, _>>()?;
            let read_seconds = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            let m = tpmap::partial::merge(&partials)?;
            let units = m.rows.first().map_or(0, |r| r.units + r.dropped) as usize;
            let timing = tpmap::mpi::Timing { read_seconds, measure_seconds: t1.elapsed().as_secs_f64(), units };
            tpmap::mpi::write(&out, &m, &timing)?;
            if let (false, Some(all)) = (quiet, m.rows.first()) {
                println!(
                    "{} parts, {} units: H = {:.4}, A = {:.4}, M0 = {:.4}; {} rows -> {}/measures.{{csv,parquet,json}}",
                    partials.len(),
                    units,
                    all.h,
                    all.a,
                    all.m0,
                    m.rows.len(),
                    out.display()
                );
            }
            Ok(())
        }
        Command::Reconcile { dir, year, mask } => {
            let r = tpmap::published::Published::read_dir(&dir, &year, &mask.to_string())?.reconcile();
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
        Command::Synth { households, seed, out, provinces, years, exit, served_effect, stationary, quiet, .. }
            if !years.is_empty() =>
        {
            let t0 = Instant::now();
            let dynamics =
                tpmap::panel::synth::Dynamics { exit, served_effect, follow_tpmap: !stationary, ..Default::default() };
            let opts = tpmap::panel::synth::PanelSynthOptions { households, seed, provinces, years, dynamics };
            let written = tpmap::panel::synth::generate_into(&opts, &out)?;
            if !quiet {
                let sizes: Vec<String> =
                    written.years.iter().zip(&written.households).map(|(y, n)| format!("{y}: {n}")).collect();
                println!(
                    "wrote {} SYNTHETIC rounds to {} (households {}) in {:.1} s; the follow-up truth is in truth.json",
                    written.years.len(),
                    out.display(),
                    sizes.join(", "),
                    t0.elapsed().as_secs_f64()
                );
            }
            Ok(())
        }
        Command::Panel { rounds, served, mask, welfare, edition, edition_map, partition, max_memory, out, quiet } => {
            let editions = (edition, edition_map);
            let reading = match partition {
                PartitionArg::Auto => tpmap::panel::rounds::Reading::Auto,
                PartitionArg::Whole => tpmap::panel::rounds::Reading::Whole,
                PartitionArg::Province => tpmap::panel::rounds::Reading::Provinces,
            };
            if partition == PartitionArg::Whole && max_memory.is_some() {
                return Err(Error::Config(
                    "--max-memory reads the rounds in waves: leave out --partition whole".into(),
                ));
            }
            panel(&rounds, served, (mask, welfare, reading, max_memory), &editions, &out, quiet)
        }
        Command::Synth { households, seed, out, format, provinces, survey_year, quiet, .. } => {
            let t0 = Instant::now();
            let s = Synthesizer::new(SynthOptions { households, seed, survey_year, provinces })?;
            let bar = bar(quiet, s.persons(), "{spinner} synthesising [{bar:40}] {pos}/{len} persons ({eta})");
            tpmap::synth::write_dir(&s, &out, format, &|n| bar.set_position(n))?;
            bar.finish_and_clear();
            if !quiet {
                println!(
                    "wrote {} SYNTHETIC households and {} persons to {} in {:.1} s",
                    s.households(),
                    s.persons(),
                    out.display(),
                    t0.elapsed().as_secs_f64()
                );
            }
            Ok(())
        }
        Command::Link { inputs, task, threshold, model, truth, explain, block, max_memory, split, out, output } => {
            let rules: Vec<_> = block.into_iter().map(|r| r.0).collect();
            let blocking = (!rules.is_empty()).then(|| tpmap::link::Blocking { rules, ..Default::default() });
            let job = (task, threshold, model.as_deref(), blocking, (max_memory, split));
            link(&inputs, job, truth.as_deref(), explain, &out, &output)
        }
        Command::LinkBench { kind, households, seed, single_file, welfare_share, agency_share, out } => {
            let stage = tpmap::output::Staging::new(&out)?;
            let files = if kind == "registries" {
                if single_file {
                    return Err(tpmap::Error::Config("--single-file applies to --kind tpmap only".into()));
                }
                let o = tpmap::link::registries::RegistriesOptions { households, seed };
                tpmap::link::registries::write(stage.path(), &o)?
            } else {
                let o = tpmap::link::bench::BenchOptions {
                    households,
                    seed,
                    single_file,
                    welfare_share,
                    agency_share,
                    ..Default::default()
                };
                tpmap::link::bench::write(stage.path(), &o)?
            };
            stage.commit()?;
            let counts: Vec<String> = files.records.iter().map(|(s, n)| format!("{s} {n}")).collect();
            println!(
                "wrote a SYNTHETIC linkage benchmark for {} people to {}: {}",
                files.people,
                out.display(),
                counts.join(", ")
            );
            Ok(())
        }
        Command::LinkNormalise { inputs, key_file, out } => {
            let mut r = tpmap::link::Records::default();
            for p in &inputs {
                r.push_csv(p)?;
            }
            let key = tpmap::ids::PseudonymKey::resolve(key_file.as_deref())?;
            if let Some(w) = key.warning() {
                eprintln!("{w}");
            }
            let tokens = tpmap::link::output::IdTokens::new(&key.pseudonymizer());
            let mut df = tpmap::link::output::normalised_frame(&r, &tokens)?;
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            tpmap::frame::write_csv(&mut df, &out, &[], tpmap::ingest::Encoding::Utf8)?;
            println!("wrote {} normalised records to {}", r.len(), out.display());
            Ok(())
        }
        Command::Edition { id, overrides } => {
            let mut e = Edition::builtin(&id)?;
            if let Some(p) = overrides {
                e = e.with_overrides(&tpmap::limits::read_config(&p, tpmap::limits::DEFAULT_CONFIG_BYTES)?)?;
            }
            print!("{}", e.to_toml());
            Ok(())
        }
    }
}

/// The plan part of the run options from the command line: served lists default to `defaults`.
fn plan_inputs(
    catalogue: PathBuf,
    pa: &PlanArgs,
    defaults: (Option<PathBuf>, Option<PathBuf>),
) -> Result<PlanInputs, Error> {
    let key = tpmap::ids::PseudonymKey::resolve(pa.key_file.as_deref())?;
    if let Some(w) = key.warning() {
        eprintln!("{w}");
    }
    let compare = (pa.compare_catalogue.is_some() || pa.compare_welfare.is_some() || pa.compare_population.is_some())
        .then(|| Compare {
            catalogue: pa.compare_catalogue.clone(),
            welfare: pa.compare_welfare,
            population: pa.compare_population,
        });
    let optimize = match pa.optimize {
        true => {
            Some(std::time::Duration::try_from_secs_f64(pa.optimize_seconds).ok().filter(|d| !d.is_zero()).ok_or_else(
                || {
                    Error::Config(format!(
                        "--optimize-seconds must be a positive number of seconds, not {}",
                        pa.optimize_seconds
                    ))
                },
            )?)
        }
        false => None,
    };
    Ok(PlanInputs {
        catalogue,
        served: defaults.0,
        served_list: defaults.1,
        options: PlanOptions { population: pa.population, date: pa.date, key, max_decisions: None },
        reveal_ids: pa.reveal_ids,
        suppress: pa.suppress,
        optimize,
        compare,
    })
}

/// `run`, `plan` and `ingest`: the library's main job with the command line's options.
fn panel(
    rounds: &[PathBuf],
    served: Option<PathBuf>,
    (mask, welfare, reading, max_memory): (DimensionMask, Welfare, tpmap::panel::rounds::Reading, Option<u64>),
    (editions, maps): &(Vec<String>, Vec<PathBuf>),
    out: &Path,
    quiet: bool,
) -> Result<(), Error> {
    use tpmap::panel::{Fate, Route};
    let t0 = Instant::now();
    let o = tpmap::panel::rounds::RoundsOptions {
        served,
        mask,
        welfare,
        editions: editions.clone(),
        edition_maps: maps.clone(),
        reading,
        max_memory,
        ..Default::default()
    };
    let stage = tpmap::output::Staging::new(out)?;
    let done = tpmap::panel::rounds::write_rounds(rounds, &o, stage.path(), None)?;
    stage.commit()?;
    let names = &done.names;
    if !quiet {
        for (name, t) in names.iter().zip(&done.reports) {
            println!(
                "{name}: {} households and {} persons accepted, {} and {} rejected",
                t.households.accepted, t.persons.accepted, t.households.rejected, t.persons.rejected
            );
        }
        for p in &done.pairs {
            let s = &p.summary;
            let route = |x| s.by_route.get(&x).copied().unwrap_or(0);
            let fate = |f| s.by_fate.get(&f).copied().unwrap_or(0);
            println!(
                "\n{} -> {}: later households {} by the same keys, {} by members' citizen IDs, {} split off, {} new; earlier: {} continue, {} merged, {} vanished",
                p.earlier,
                p.later,
                route(Route::SameHousehold),
                route(Route::Members),
                route(Route::Split),
                route(Route::New),
                fate(Fate::Continues),
                fate(Fate::Merged),
                fate(Fate::Vanished)
            );
            if !p.only_earlier.is_empty() || !p.only_later.is_empty() {
                println!(
                    "indicators without a counterpart: earlier {:?}, later {:?} (not in the per-indicator flows)",
                    p.only_earlier, p.only_later
                );
            }
            if let Some(c) = &p.country {
                let f = &c.poor;
                println!(
                    "poor households: {} -> {} ({} stayed, {} left poverty, {} fell in; {} new or split off, {} gone)",
                    f.poor_t, f.poor_t1, f.stayed, f.exits, f.entries, f.new_poor, f.gone_poor
                );
            }
            for e in &p.effects {
                let pts = |v: f64| if v.is_finite() { format!("{:+.1}", 100.0 * v) } else { "–".into() };
                println!(
                    "  {:<24} {:<6} served {:>7} followed {:>7}: {:.1}% resolved vs {:.1}%, effect {} pts (95% CI {} to {})",
                    e.program,
                    e.indicator,
                    e.served,
                    e.followed,
                    100.0 * e.rate_served,
                    100.0 * e.rate_comparison,
                    pts(e.effect),
                    pts(e.ci_low),
                    pts(e.ci_high)
                );
            }
            if !p.effects.is_empty() {
                println!("  ({})", tpmap::panel::output::CAVEAT);
            }
        }
        println!("\nwrote {}/ in {:.1} s", out.display(), t0.elapsed().as_secs_f64());
    }
    Ok(())
}

fn main_job(mut o: RunOptions, job: &JobArgs) -> Result<(), Error> {
    let a = &job.ingest;
    o.ingest = IngestOptions {
        mode: if a.strict { Mode::Strict } else { Mode::Lenient },
        encoding: a.encoding,
        edition: Arc::new(Edition::from_id_or_file(&a.edition)?),
        area_check: if a.allow_new_villages { AreaCheck::Tambon } else { AreaCheck::Village },
        one_means: if a.one_means_pass { OneMeans::Pass } else { OneMeans::Fail },
        default_survey_year: a.survey_year,
        sheet: a.sheet.clone(),
        limits: tpmap::limits::Limits {
            xlsx_cells: a.max_xlsx_cells,
            xlsx_bytes: a.max_xlsx_bytes,
            rule_depth: a.max_rule_depth,
            plan_decisions: a.max_plan_decisions,
            ..Default::default()
        },
        ..IngestOptions::default()
    };
    let s = &job.score;
    (o.mask, o.welfare, o.unit, o.tpmap_year) = (s.mask, s.welfare, s.unit, s.tpmap_year);
    (o.na, o.missing, o.bootstrap) = (s.policy.na, s.policy.missing, (s.policy.bootstrap, s.policy.seed));
    let t0 = Instant::now();
    let progress = Bars::new(job.quiet || job.json);
    let partitioned = match job.partition {
        PartitionArg::Whole => false,
        PartitionArg::Province => true,
        PartitionArg::Auto => job.max_memory.is_some() || tpmap::pipeline::partition_by_default(&o),
    };
    if job.partition == PartitionArg::Whole && job.max_memory.is_some() {
        return Err(Error::Config("--max-memory needs a partitioned run: leave out --partition whole".into()));
    }
    let (report, measures) = if partitioned {
        let done = tpmap::pipeline::run_partitioned(&o, job.max_memory, &job.out, &progress)?;
        (done.report, done.measures)
    } else {
        let done = tpmap::pipeline::run(&o, &job.out, &progress)?;
        (done.report, done.measures)
    };
    progress.bar.finish_and_clear();
    if job.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !job.quiet {
        print_summary(&report, &measures, &job.out, t0.elapsed().as_secs_f64());
    }
    Ok(())
}

fn bar(hidden: bool, len: u64, template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    if hidden {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
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
}

impl tpmap::pipeline::Progress for Bars {
    fn step(&self, what: &str) {
        self.bar.set_style(indicatif::ProgressStyle::default_spinner());
        self.bar.set_message(what.to_string());
    }
    fn programs(&self, done: usize, total: usize) {
        if done == 0 || self.bar.length() != Some(total as u64) {
            self.bar.set_length(total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} planning [{bar:40}] {pos}/{len} programs ({elapsed})",
            ) {
                self.bar.set_style(style.progress_chars("=> "));
            }
        }
        self.bar.set_position(done as u64);
    }
}

fn print_summary(r: &tpmap::pipeline::RunReport, m: &tpmap::aggregate::Measures, out: &Path, secs: f64) {
    if let Some(p) = &r.partition {
        println!(
            "read province by province: {} waves{}, the largest estimated at {}{}{}{}\n",
            p.waves.len(),
            if p.waves_in_flight > 1 { " (one written while the next is read)" } else { "" },
            tpmap::limits::format_bytes(p.largest_wave_estimate),
            p.max_memory.map(|b| format!(" (budget {})", tpmap::limits::format_bytes(b))).unwrap_or_default(),
            p.plan_room
                .map(|n| format!("; the budget holds up to about {n} persons of poor households"))
                .unwrap_or_default(),
            if p.passes > 1 {
                "; read twice: a citizen ID's first holder in the file was in a later wave than another \
                 holder (the files are not in province order)"
            } else {
                ""
            }
        );
    }
    if let Some(w) = &r.welfare_link {
        println!(
            "welfare registry linked: {} of {} persons matched ({} by citizen ID, the rest by name, birth date and address), {} validated; {} registry records matched no one ({:.1} s)\n",
            w.matched, w.persons, w.matched_by_id, w.validated, w.registry_unmatched, w.seconds
        );
    }
    for t in [&r.ingest.households, &r.ingest.persons] {
        let check = if t.reconciles() { "" } else { "  (DOES NOT RECONCILE)" };
        println!("{}: {} rows read, {} accepted, {} rejected{check}", t.file, t.input_rows, t.accepted, t.rejected);
        for (reason, n) in &t.by_reason {
            println!("    {n:>8}  {}", reason.describe());
        }
    }
    let s = &r.summary;
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
        let share = 100.0 * i.households_failing as f64 / i.households_applicable.max(1) as f64;
        let missing =
            if i.households_missing > 0 { format!(", {} missing", i.households_missing) } else { String::new() };
        println!(
            "  {:>6} {:<10} {:>9} of {:>9} ({share:5.1}%){missing}",
            i.label,
            i.dimension.as_deref().unwrap_or("-"),
            i.households_failing,
            i.households_applicable
        );
    }
    let c = &r.measure.country;
    let by_dim: Vec<String> = match m.rows.first() {
        Some(country) => {
            m.spec.dimensions.iter().zip(&country.dimension_poor).map(|(d, n)| format!("{d} {n:.0}")).collect()
        }
        None => Vec::new(),
    };
    println!(
        "\nTPMAP rule ({}): {:.0} poor of {:.0} ({:.2}%), {:.0} target poor; by dimension among the poor: {}",
        m.spec.dimensions.join("+"),
        c.poor,
        c.population,
        100.0 * c.h,
        c.target_poor,
        by_dim.join(", ")
    );
    println!(
        "\nwrote {}/: households.parquet, persons.parquet, rejected_*.csv, household_scores.parquet, measures.{{csv,parquet,json}} ({} areas), tpmap/ (public-format tables), report.html, report.json ({secs:.2} s)",
        out.display(),
        m.rows.len()
    );
    if let Some(p) = &r.plan {
        let s = &p.summary;
        println!(
            "\nplan ({}{}): {} households, {} deprivations, {} covered ({:.1}%), {} with no program; {} places, {} baht, {} programs running",
            s.catalogue,
            if s.illustrative { ", ILLUSTRATIVE" } else { "" },
            s.households,
            s.deprivations,
            s.covered,
            100.0 * s.covered as f64 / s.deprivations.max(1) as f64,
            s.no_program,
            s.places,
            s.spent,
            s.active_programs
        );
        let dims: Vec<String> = s.by_dimension.iter().map(|(k, v)| format!("{k} {}/{}", v[1], v[0])).collect();
        println!("  covered by dimension: {}", dims.join(", "));
        #[cfg(feature = "optimize")]
        if let Some(o) = &p.optimized {
            let c = &o.comparison;
            println!(
                "  optimiser: weighted deprivations covered {} (rank-and-fill) -> {} ({}), {} -> {} places, {:.2} s",
                c.covered_weight[0],
                c.covered_weight[1],
                if c.proven_optimal { "proven optimal" } else { "time limit: best found" },
                c.places[0],
                c.places[1],
                c.seconds[1]
            );
        }
        if let Some(w) = &p.what_if {
            println!(
                "  what-if: population {} -> {}, households helped {} -> {} ({} enter, {} leave), budget {} -> {} baht",
                w.population[0], w.population[1], w.helped[0], w.helped[1], w.entered, w.left, w.spent[0], w.spent[1]
            );
        }
        println!(
            "  wrote {}/: household_plan, programs, declined, worklists/, provinces, amphoes, report.xlsx, plan.json",
            p.dir.display()
        );
    }
}

/// A link job as the command line gives it: task, threshold, saved model, blocking rules, and
/// the memory budget with whether `--split` was asked for.
type LinkJob<'a> = (Task, f64, Option<&'a Path>, Option<tpmap::link::Blocking>, (Option<u64>, bool));

fn link(
    inputs: &[PathBuf],
    (task, threshold, model, blocking, (max_memory, split)): LinkJob<'_>,
    truth: Option<&Path>,
    explain: usize,
    out: &Path,
    o: &OutputArgs,
) -> Result<(), Error> {
    use tpmap::link::budget::{self, Budget};
    use tpmap::link::{LinkOptions, Records};
    let t0 = Instant::now();
    let model = match model {
        Some(p) => {
            Some(tpmap::link::Model::from_json(&tpmap::limits::read_config(p, tpmap::limits::DEFAULT_CONFIG_BYTES)?)?)
        }
        None => None,
    };
    // The candidate pairs are read only against a truth (pairs completeness, the errors).
    let mut opts = LinkOptions { task, threshold, model, keep_candidates: truth.is_some(), ..Default::default() };
    if let Some(b) = blocking {
        opts.blocking = b;
    }
    opts.validate()?;
    // In parts (`tpmap::link::split`) when asked, or under a budget the whole job is estimated
    // to pass; only a link of two files without a truth can be.
    let can_split = inputs.len() == 2
        && task == Task::Link
        && truth.is_none()
        && (opts.model.is_some() || opts.blocking == tpmap::link::Blocking::default());
    let bytes = inputs.iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).fold(0, u64::saturating_add);
    let over = max_memory.is_some_and(|m| tpmap::link::split::whole_job_exceeds(bytes, m));
    if split && !can_split {
        return Err(Error::Config(
            "--split links two files (--task link) without --truth, with the default blocking rules or a --model"
                .into(),
        ));
    }
    if split || (can_split && over) {
        opts.max_memory = max_memory;
        let stage = tpmap::output::Staging::new(out)?;
        let spinner = bar(o.quiet || o.json, 0, "{spinner} linking in parts ({elapsed})");
        spinner.enable_steady_tick(std::time::Duration::from_millis(120));
        let report = tpmap::link::split::link_files(stage.path(), (&inputs[0], &inputs[1]), &opts, explain, t0)?;
        stage.commit()?;
        spinner.finish_and_clear();
        print_link_report(&report, out, o, (false, t0))?;
        return Ok(());
    }
    let mut r = Records::default();
    for p in inputs {
        r.push_csv(p)?;
        if max_memory.is_some() {
            let what = || format!("once {} is read", p.display());
            Budget::new(max_memory, r.len()).check(what, r.heap_bytes())?;
        }
    }
    // No room for records that never came: the columns grown by doubling hold up to twice their
    // rows' room, never written (so not resident), but counted against a budget.
    r.shrink_to_fit();
    let read_seconds = t0.elapsed().as_secs_f64();
    let n = r.len();
    let within = Budget::new(max_memory, n);
    opts.max_memory = max_memory;
    if truth.is_some() && max_memory.is_some() {
        // A truth file is read beside the job (below): its share is counted in the job's sums.
        opts.held_beside = budget::times(n, budget::TRUTH_BYTES_PER_RECORD);
        let what = || "once the truth is read beside the records".into();
        within.check(what, r.heap_bytes().saturating_add(opts.held_beside))?;
    }
    let spinner = bar(o.quiet || o.json, 0, "{spinner} linking ({elapsed})");
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let Some(truth) = truth else {
        // Linked and written in one, the records' names, dates and addresses given up once the
        // pairs are scored; staged, so that a job that fails leaves nothing behind.
        let stage = tpmap::output::Staging::new(out)?;
        let report = tpmap::link::run_and_write(stage.path(), r, &opts, explain, read_seconds, t0)?;
        stage.commit()?;
        spinner.finish_and_clear();
        print_link_report(&report, out, o, (false, t0))?;
        return Ok(());
    };
    // The truth file (a benchmark's) is read on a thread of its own while the records are
    // linked: its reading is sequential, and linking leaves a core idle in its sequential steps.
    // Against a truth, the entities' stable ids are made after the evaluation (below).
    let (linked, t) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| tpmap::link::bench::read_truth(truth, &r));
        let linked = tpmap::link::run_without_ids(&r, &opts);
        let t = reader.join().unwrap_or_else(|_| Err(Error::Config("reading the truth file failed".into())));
        (linked, t)
    });
    let (mut linked, t) = (linked?, t?);
    spinner.finish_and_clear();
    let mut report = tpmap::link::output::LinkReport::of(&r, &linked, threshold, read_seconds, t0);
    let mut lap = tpmap::diagnostics::Lap::start();
    if within.is_set() {
        let held = budget::sum([r.heap_bytes(), linked.heap_bytes(), tpmap::memory::vec_bytes(&t)]);
        let evaluation = budget::times(n, budget::EVALUATION_BYTES_PER_RECORD);
        within.check(|| "evaluating against the truth".into(), held.saturating_add(evaluation))?;
    }
    report.quality =
        Some(tpmap::link::model::evaluate(&r, task, &t, &linked.pairs, &linked.scored, threshold, &linked.entity));
    // The evaluation's orders and sizes (0.6 GB nationally) given back before the errors'.
    tpmap::memory::release();
    lap.lap("evaluated");
    let errors = tpmap::link::misses::find(&r, &linked, &t, threshold, task);
    lap.lap("errors found");
    // The truth and the candidate pairs (read by the evaluation and the errors only; the pairs
    // 0.6 GB nationally) go before the ids are made; the ids' seconds are the clustering's, as
    // without a truth.
    drop(t);
    linked.pairs = Vec::new();
    tpmap::memory::release();
    within.check_entity_ids(n, || r.heap_bytes().saturating_add(linked.heap_bytes()))?;
    let seconds = linked.make_entity_ids(&r);
    report.seconds.phases.cluster += seconds;
    report.seconds.total += seconds;
    let stage = tpmap::output::Staging::new(out)?;
    tpmap::link::output::write(stage.path(), &r, &linked, &report, explain)?;
    lap.lap("outputs written");
    tpmap::link::misses::write(stage.path(), &r, &errors, 1_000_000)?;
    lap.lap("errors written");
    stage.commit()?;
    print_link_report(&report, out, o, (true, t0))?;
    // The process ends here: returning the records' and pairs' millions of small allocations to
    // the allocator one by one only delays the exit (the operating system takes the memory back).
    std::mem::forget((r, linked, errors));
    Ok(())
}

/// What `tpmap link` prints of its report (`with_truth`: the errors' files were written too).
fn print_link_report(
    report: &tpmap::link::output::LinkReport,
    out: &Path,
    o: &OutputArgs,
    (with_truth, started): (bool, Instant),
) -> Result<(), Error> {
    if o.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !o.quiet {
        let parts = match report.parts {
            Some(1) => " (the first file in 1 part)".to_string(),
            Some(k) => format!(" (the first file in {k} parts)"),
            None => String::new(),
        };
        println!(
            "{} records from {}{parts}: {} candidate pairs, {} matches, {} entities in {:.2} s",
            report.records,
            report.sources.join(", "),
            report.candidate_pairs,
            report.matches,
            report.entities,
            started.elapsed().as_secs_f64()
        );
        for w in &report.warnings {
            eprintln!("  warning: {w}");
        }
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
        let also = if with_truth { ", errors.csv, error_patterns.csv" } else { "" };
        println!("  wrote {}/: pairs.csv, entities.csv, model.json, explanations.json, link.json{also}", out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_15_is_mimallocs_purge_delay() {
        // The purge delay's default is 1000 ms and the options either side of it default to 1
        // (the deprecated eager-commit delay) and 0 (NUMA nodes): a renumbered option list
        // would show here before a wrong option were set.
        // SAFETY: reads integer options (no other thread of this test sets them).
        let got = unsafe {
            [
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY - 1),
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY),
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY + 1),
            ]
        };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() && std::env::var_os("MIMALLOC_RESET_DELAY").is_none() {
            assert_eq!(got, [1, 1000, 0]);
        }
        keep_freed_memory_a_while();
        // SAFETY: as above.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }, 10_000);
    }

    #[test]
    fn the_linkage_commands_give_freed_memory_back_at_once() {
        let command = |args: &[&str]| Cli::try_parse_from(args).map(|c| c.command).unwrap();
        assert!(!keeps_freed_memory(&command(&["tpmap", "link", "a.csv", "b.csv"])));
        assert!(!keeps_freed_memory(&command(&["tpmap", "link-bench", "--out", "o"])));
        assert!(keeps_freed_memory(&command(&["tpmap", "ingest", "--households", "h.csv", "--persons", "p.csv"])));
        // A run linking a welfare registry (named, or in the folder: the samples hold one) keeps
        // freed memory for its waves; its linkage gives memory back through `memory::release`.
        assert!(keeps_freed_memory(&command(&["tpmap", "run", "data-samples/dirty"])));
        assert!(keeps_freed_memory(&command(&["tpmap", "run", "data-samples"])));
        assert!(keeps_freed_memory(&command(&["tpmap", "run", "data-samples/dirty", "--welfare-registry", "r.csv"])));
        assert!(keeps_freed_memory(&command(&["tpmap", "plan", "d", "--catalogue", "c", "--welfare-registry", "r"])));
        assert!(keeps_freed_memory(&command(&["tpmap", "plan", "d", "--catalogue", "c"])));
    }
}
