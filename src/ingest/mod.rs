//! Ingest: read household and person extracts, validate every row, and lose none.
//!
//! Every input row is either accepted into the [`Extract`] or rejected with its reasons
//! ([`Rejection`]); [`TableReport::reconciles`] holds for both tables, always. In
//! [`Mode::Strict`] the first bad row stops the run with an error naming file, row and column; in
//! [`Mode::Lenient`] bad rows are set aside and can be written unchanged with
//! [`write_rejects`](rejects::write_rejects).
//!
//! ```no_run
//! use tpmap::ingest::{ingest, IngestOptions, Mode};
//! let opts = IngestOptions { mode: Mode::Lenient, ..IngestOptions::default() };
//! let got = ingest("data-samples/households.csv".as_ref(), "data-samples/persons.csv".as_ref(), &opts)?;
//! assert!(got.report.households.reconciles() && got.report.persons.reconciles());
//! println!("{} households, {} persons", got.extract.households.len(), got.extract.persons.len());
//! # Ok::<(), tpmap::Error>(())
//! ```

pub mod columns;
mod duplicates;
mod households;
pub mod parse;
pub mod partition;
mod persons;
pub mod rejects;
pub mod source;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use polars::prelude::DataFrame;
use rayon::prelude::*;
use serde::Serialize;

use crate::areas::{AreaCode, AreaRegistry, UnknownArea};
use crate::error::{Error, Result};
use crate::extract::{Extract, Households, Persons, Relation, Sex};
use crate::ids::{CitizenId, HouseId, HouseholdId, IdError};
use crate::indicators::{Edition, IndicatorStatus, RecordedFor, Scope};
use crate::thai::PartialDate;
use columns::{ColumnMap, HouseholdField as HF, PersonField as PF};
pub(crate) use duplicates::IdHash;
use duplicates::Seen;
use households::{HouseholdBuilder, HouseholdCtx};
pub use parse::OneMeans;
use persons::{PersonBuilder, PersonCtx};
pub use rejects::{Problem, Reason, Rejection, TableReport};
use source::{Batch, Cell, RawStatus, Table};
pub use source::{Encoding, Format};

/// Strict stops at the first bad row; lenient sets bad rows aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Fail with an error naming file, row and column.
    Strict,
    /// Reject bad rows with reasons and carry on.
    #[default]
    Lenient,
}

/// How area codes are checked against the embedded registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AreaCheck {
    /// Province, amphoe, tambon and the village itself must be known.
    #[default]
    Village,
    /// Province, amphoe and tambon must be known; new villages are accepted.
    Tambon,
    /// Only the code's form is checked.
    FormOnly,
}

/// Options for [`ingest`].
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// Strict or lenient.
    pub mode: Mode,
    /// CSV text encoding.
    pub encoding: Encoding,
    /// The indicator edition the status columns refer to.
    pub edition: Arc<Edition>,
    /// How area codes are checked.
    pub area_check: AreaCheck,
    /// What a numeric status of 1 means.
    pub one_means: OneMeans,
    /// Month and day of the survey year on which ages are reckoned (default 31 March, the end of
    /// BMN fieldwork).
    pub reference_day: (u8, u8),
    /// Survey year (BE) for households tables without a `survey_year` column.
    pub default_survey_year: Option<u16>,
    /// Worksheet to read from Excel files (default: the first).
    pub sheet: Option<String>,
    /// Resource limits for the input files.
    pub limits: crate::limits::Limits,
    /// Citizen IDs accepted on earlier rows read elsewhere (other parts of the same extract, read
    /// by other workers): a person with one of them is rejected as `duplicate_person`, as the
    /// later row is when the extract is read in one piece (`tpmap.spark` uses this).
    pub earlier_citizen_ids: Arc<[u64]>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            mode: Mode::Lenient,
            encoding: Encoding::Auto,
            edition: Arc::new(Edition::bmn_2560()),
            area_check: AreaCheck::Village,
            one_means: OneMeans::Fail,
            reference_day: (3, 31),
            default_survey_year: None,
            sheet: None,
            limits: crate::limits::Limits::default(),
            earlier_citizen_ids: Arc::from([]),
        }
    }
}

impl IngestOptions {
    /// Checks the options themselves before any file is read: a survey year in the Buddhist Era
    /// (2400–2700) and a reference day that exists.
    pub fn validate(&self) -> Result<()> {
        if let Some(y) = self.default_survey_year
            && !(2400..=2700).contains(&y)
        {
            return Err(Error::Config(format!(
                "survey year {y} is not a Buddhist-Era year (2400-2700; 2560 is CE 2017)"
            )));
        }
        let (m, d) = self.reference_day;
        if PartialDate::ymd(2000, m, d).is_none() {
            return Err(Error::Config(format!("reference day {m}/{d} is not a day of the year (month, day)")));
        }
        Ok(())
    }
}

/// Counts of values that were derived or adjusted (not rejections).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Notes {
    /// Person statuses set to not-applicable because the person is outside the indicator's scope.
    pub derived_not_applicable: u64,
    /// Persons in an indicator's scope reported as not applicable: read as missing.
    pub reported_na_in_scope_as_missing: u64,
    /// Household income-indicator statuses derived from income per member.
    pub income_status_derived: u64,
    /// ... of which the reported status disagreed with the income.
    pub income_status_overruled: u64,
    /// Ages derived from birth dates.
    pub ages_derived: u64,
    /// Households without a members column whose members were counted from the persons.
    pub members_counted: u64,
    /// Households whose declared members differ from their person rows.
    pub members_mismatch: u64,
    /// Households with no person rows (when a persons table was given).
    pub households_without_persons: u64,
}

/// What [`ingest`] found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IngestReport {
    /// The households table.
    pub households: TableReport,
    /// The persons table.
    pub persons: TableReport,
    /// Derived and adjusted values.
    pub notes: Notes,
}

impl IngestReport {
    /// Adds the counts of `other`, the report of another part (a wave of provinces) of the same
    /// files: rows, rejections by reason and notes add up; file names and columns stay these.
    pub fn absorb(&mut self, other: IngestReport) {
        for (into, from) in [(&mut self.households, other.households), (&mut self.persons, other.persons)] {
            into.input_rows += from.input_rows;
            into.accepted += from.accepted;
            into.rejected += from.rejected;
            for (reason, n) in from.by_reason {
                *into.by_reason.entry(reason).or_default() += n;
            }
        }
        let (n, f) = (&mut self.notes, other.notes);
        n.derived_not_applicable += f.derived_not_applicable;
        n.reported_na_in_scope_as_missing += f.reported_na_in_scope_as_missing;
        n.income_status_derived += f.income_status_derived;
        n.income_status_overruled += f.income_status_overruled;
        n.ages_derived += f.ages_derived;
        n.members_counted += f.members_counted;
        n.members_mismatch += f.members_mismatch;
        n.households_without_persons += f.households_without_persons;
    }
}

/// The result of [`ingest`]: the extract, the report, and the rejected rows.
#[derive(Clone, Debug)]
pub struct Ingested {
    /// Accepted rows.
    pub extract: Extract,
    /// Reconciliation and notes.
    pub report: IngestReport,
    /// Rejected household rows, in row order.
    pub household_rejects: Vec<Rejection>,
    /// Rejected person rows, in row order.
    pub person_rejects: Vec<Rejection>,
    /// The households file's header, as written.
    pub household_header: Vec<String>,
    /// The persons file's header, as written.
    pub person_header: Vec<String>,
}

impl Ingested {
    /// Writes `rejected_households.csv` and `rejected_persons.csv` into `dir` (rows unchanged,
    /// with `_row`, `_line` and `_reasons`).
    pub fn write_rejects(&self, dir: &Path) -> Result<()> {
        rejects::write_rejects(&dir.join("rejected_households.csv"), &self.household_header, &self.household_rejects)?;
        rejects::write_rejects(&dir.join("rejected_persons.csv"), &self.person_header, &self.person_rejects)
    }
}

/// A table to read: a file, or a polars frame already in memory.
#[derive(Clone, Copy)]
pub enum TableInput<'a> {
    /// A file; its format is taken from the extension.
    File(&'a Path),
    /// A frame, with a name for messages.
    Frame(&'a DataFrame, &'a str),
}

/// Reads, validates and links a households file and a persons file.
///
/// A CSV file's encoding ([`Encoding::Auto`]) is decided on the evidence of every line, in one
/// read of the file: decided on its first 64 MiB, checked against the whole file's lines at its
/// end, and the file read again (as deciding first) in the rare file where the two differ.
pub fn ingest(households: &Path, persons: &Path, opts: &IngestOptions) -> Result<Ingested> {
    ingest_tables(TableInput::File(households), TableInput::File(persons), opts)
}

/// Like [`ingest`], for files or frames.
pub fn ingest_tables(households: TableInput<'_>, persons: TableInput<'_>, opts: &IngestOptions) -> Result<Ingested> {
    // Our parallel work runs in polars' thread pool, which also decodes Parquet: two pools on
    // two cores would oversubscribe them.
    crate::in_pool(|| ingest_deciding_on(households, persons, opts, source::DECIDE_ON_BYTES))
}

/// [`ingest_tables`] in the pool, a CSV extract's encoding decided on its first `decide_on`
/// bytes and its whole evidence counted while its rows are read (one read of the file, not two).
/// When that fails for any reason (the whole file deciding otherwise among them), the extract
/// is read again with its encoding decided on every line first: the result, or the error, is
/// then the one that reading gives.
fn ingest_deciding_on(
    households: TableInput<'_>,
    persons: TableInput<'_>,
    opts: &IngestOptions,
    decide_on: u64,
) -> Result<Ingested> {
    let csv =
        |t: &TableInput<'_>| matches!(t, TableInput::File(p) if Format::from_path(p).is_ok_and(|f| f == Format::Csv));
    if opts.encoding == Encoding::Auto && (csv(&households) || csv(&persons)) {
        ingest_in_pool(households, persons, opts, None, Some(decide_on))
            .or_else(|_| ingest_in_pool(households, persons, opts, None, None))
    } else {
        ingest_in_pool(households, persons, opts, None, None)
    }
}

/// The rows one wave of a partitioned read takes, and what the waves share.
pub(crate) struct WaveScope<'a> {
    households: &'a partition::RowSet,
    persons: &'a partition::RowSet,
    /// Citizen IDs accepted by earlier waves; this wave's are added.
    seen_ids: &'a mut Seen,
    /// The persons file has data rows (in any wave).
    persons_file_rows: u64,
    /// The households file as the routing found it: its stamp, and where the batches of a CSV
    /// file begin ([`Table::open_laid_out`]).
    household_layout: Option<&'a source::Layout>,
    /// The same for the persons file.
    person_layout: Option<&'a source::Layout>,
}

/// Rows of `set` among `len` rows from `first` (1-based); all of them without a set.
fn rows_in(set: Option<&partition::RowSet>, first: u64, len: usize) -> u64 {
    match set {
        None => len as u64,
        Some(s) => (first..first + len as u64).filter(|&r| s.contains(r)).count() as u64,
    }
}

fn ingest_in_pool(
    households: TableInput<'_>,
    persons: TableInput<'_>,
    opts: &IngestOptions,
    mut scope: Option<WaveScope<'_>>,
    decide_on: Option<u64>,
) -> Result<Ingested> {
    let hh_rows = scope.as_ref().map(|s| s.households);
    let p_rows = scope.as_ref().map(|s| s.persons);
    opts.validate()?;
    let registry = AreaRegistry::embedded();
    let mut hh_src =
        Table::open_laid_out(households, opts, decide_on, scope.as_ref().and_then(|s| s.household_layout))?;
    let hh_header = hh_src.header().to_vec();
    let hh_map = columns::map_households(&hh_header, &opts.edition)
        .map_err(|m| Error::Format { file: hh_src.name(), message: m })?;
    for (field, name) in [(HF::HouseholdId, "household_id"), (HF::Village, "village_code")] {
        if hh_map.get(field).is_none() {
            return Err(Error::Format { file: hh_src.name(), message: format!("required column '{name}' is missing") });
        }
    }
    if hh_map.get(HF::SurveyYear).is_none() && opts.default_survey_year.is_none() {
        return Err(Error::Format {
            file: hh_src.name(),
            message: "column 'survey_year' is missing (or give a default survey year)".into(),
        });
    }
    hh_src.check_types(&hh_map.used_columns())?;
    hh_src.read_as_codes(&hh_map.indicators.iter().map(|&(_, c)| c).collect::<Vec<_>>());
    let hh_ctx = HouseholdCtx::new(&hh_map, &hh_header, opts, registry);
    let mut hh = HouseholdBuilder::new(hh_ctx.statuses_present);
    // Rows this run will read: a wave's count is known (a first pass counted them); a whole
    // file's is what it claims.
    let hh_claimed = hh_rows.map_or(hh_src.rows_claimed(), |s| usize::try_from(s.len()).ok());
    let mut hh_rejects = Vec::new();
    let mut seen_hh = Seen::default();
    let hh_id_column = hh_map.get(HF::HouseholdId).map_or("", |c| hh_header[c].as_str());
    let mut rejected_ids = Vec::new();
    let mut input_rows = 0u64;
    let name = hh_src.name();
    let mut trace = crate::diagnostics::Lap::start();
    hh_src.for_each_wanted(hh_rows, &mut |batch, first_row| {
        trace.lap("households: read batch");
        input_rows += rows_in(hh_rows, first_row, batch.len());
        let prep = |b, rows| Chunk::read(b, rows, hh_header.len(), &hh_map, opts.one_means);
        let start = |pre: &Chunk<'_>, rows| HouseholdBuilder::for_chunk(rows, pre, &hh_map);
        let parts = par_parse(batch, first_row, prep, start, |b, r, row, pre, out: &mut HouseholdBuilder| {
            if hh_rows.is_none_or(|s| s.contains(row)) {
                hh_ctx.row(b, r, row, pre, out)
            }
        });
        trace.lap("households: validate batch");
        // Each chunk joins the households as it is (no batch-sized copy in between).
        // Duplicates are found in row order, across chunks and batches: the first is kept.
        // A wave's households are all its set holds (the set is the wave's): room for the wave's
        // rows, not for the file's.
        seen_hh.make_room(parts.iter().map(|p| p.len()).sum(), hh_claimed.or(batch.rows_in_file()));
        let repeats = seen_hh.repeats_in_parts(&parts, |p| p.households.id.iter().map(|id| Some(id.0)));
        let mut kept = Vec::with_capacity(parts.len());
        for (mut part, repeats) in parts.into_iter().zip(repeats) {
            part = set_aside_repeats(
                part,
                &repeats,
                batch,
                first_row,
                hh_id_column,
                Reason::DuplicateHousehold,
                hh_header.len(),
            );
            strict_check(opts, &name, &part.rejects)?;
            rejected_ids.append(&mut part.rejected_ids);
            hh_rejects.append(&mut part.rejects);
            hh.make_room(&part, hh_claimed.or(batch.rows_in_file()));
            kept.push(part);
        }
        trace.lap("households: duplicates");
        hh.append_all(kept);
        trace.lap("households: append");
        Ok(())
    })?;
    drop(seen_hh);
    let mut hh_report = TableReport {
        file: name,
        format: hh_src.format_name(),
        encoding: hh_src.encoding_name(),
        input_rows,
        accepted: hh.len() as u64,
        rejected: hh_rejects.len() as u64,
        ..Default::default()
    };
    describe_columns(&mut hh_report, &hh_header, &hh_map);
    count_reasons(&mut hh_report, &hh_rejects);

    // Index of accepted households, for persons to find theirs.
    let mut index: Vec<(u64, u32)> = hh.households.id.iter().enumerate().map(|(i, id)| (id.0, i as u32)).collect();
    index.par_sort_unstable();
    rejected_ids.par_sort_unstable();
    trace.lap("households: index");

    let mut p_src = Table::open_laid_out(persons, opts, decide_on, scope.as_ref().and_then(|s| s.person_layout))?;
    let p_header = p_src.header().to_vec();
    let p_map =
        columns::map_persons(&p_header, &opts.edition).map_err(|m| Error::Format { file: p_src.name(), message: m })?;
    if p_map.get(PF::HouseholdId).is_none() {
        return Err(Error::Format { file: p_src.name(), message: "required column 'household_id' is missing".into() });
    }
    p_src.check_types(&p_map.used_columns())?;
    p_src.read_as_codes(&p_map.indicators.iter().map(|&(_, c)| c).collect::<Vec<_>>());
    let p_ctx = PersonCtx::new(&p_map, &p_header, opts, &index, &rejected_ids, &hh.households.survey_year);
    let mut people = PersonBuilder::new(p_map.indicator_mask());
    let p_claimed = p_rows.map_or(p_src.rows_claimed(), |s| usize::try_from(s.len()).ok());
    let p_file_claimed = p_src.rows_claimed();
    let mut p_rejects = Vec::new();
    let mut own_ids = Seen::default();
    // Only rows with an ID can repeat one, so the column is there when it is named.
    let p_id_column = p_map.get(PF::CitizenId).map_or("", |c| p_header[c].as_str());
    let seen_ids = match scope.as_mut() {
        Some(s) => &mut *s.seen_ids,
        None => &mut own_ids,
    };
    // IDs claimed on earlier rows elsewhere (the positions `repeats` returns do not matter here).
    seen_ids.claim_before_the_file(opts.earlier_citizen_ids.iter().copied());
    let mut p_input = 0u64;
    let p_name = p_src.name();
    let mut notes = Notes::default();
    p_src.for_each_wanted(p_rows, &mut |batch, first_row| {
        trace.lap("persons: read batch");
        p_input += rows_in(p_rows, first_row, batch.len());
        let prep = |b, rows| Chunk::read(b, rows, p_header.len(), &p_map, opts.one_means);
        let start = |pre: &Chunk<'_>, rows| PersonBuilder::for_chunk(rows, pre, &p_map);
        let parts = par_parse(batch, first_row, prep, start, |b, r, row, pre, out: &mut PersonBuilder| {
            if p_rows.is_none_or(|s| s.contains(row)) {
                p_ctx.row(b, r, row, pre, out)
            }
        });
        trace.lap("persons: validate batch");
        let mut kept = Vec::with_capacity(parts.len());
        seen_ids.make_room(parts.iter().map(|p| p.len()).sum(), p_file_claimed.or(batch.rows_in_file()));
        let repeats = seen_ids.repeats_in_parts_at(&parts, |p| {
            p.persons.citizen_id.iter().zip(&p.persons.source_row).map(|(c, &row)| (c.map(|c| c.as_u64()), row))
        });
        for (mut part, repeats) in parts.into_iter().zip(repeats) {
            part = set_aside_repeats(
                part,
                &repeats,
                batch,
                first_row,
                p_id_column,
                Reason::DuplicatePerson,
                p_header.len(),
            );
            strict_check(opts, &p_name, &part.rejects)?;
            p_rejects.append(&mut part.rejects);
            people.make_room(&part, p_claimed.or(batch.rows_in_file()));
            kept.push(part);
        }
        trace.lap("persons: duplicates");
        people.append_all(kept);
        trace.lap("persons: append");
        Ok(())
    })?;
    drop(own_ids);
    notes.derived_not_applicable = people.notes.derived_not_applicable;
    notes.reported_na_in_scope_as_missing = people.notes.reported_na_in_scope_as_missing;
    notes.ages_derived = people.notes.ages_derived;
    notes.income_status_derived = hh.notes.income_status_derived;
    notes.income_status_overruled = hh.notes.income_status_overruled;

    let mut p_report = TableReport {
        file: p_name,
        format: p_src.format_name(),
        encoding: p_src.encoding_name(),
        input_rows: p_input,
        accepted: people.len() as u64,
        rejected: p_rejects.len() as u64,
        ..Default::default()
    };
    describe_columns(&mut p_report, &p_header, &p_map);
    count_reasons(&mut p_report, &p_rejects);

    // Members: declared, or counted from the persons.
    let mut counted = vec![0u32; hh.len()];
    for &h in &people.persons.household {
        counted[h as usize] += 1;
    }
    let mut households = hh.households;
    households.members = hh
        .members_given
        .iter()
        .zip(&counted)
        .map(|(given, &n)| match given {
            Some(m) => {
                if *m as u32 != n {
                    notes.members_mismatch += 1;
                }
                *m
            }
            None => {
                notes.members_counted += 1;
                n.min(u16::MAX as u32) as u16
            }
        })
        .collect();
    if scope.as_ref().map_or(p_input, |s| s.persons_file_rows) > 0 {
        notes.households_without_persons = counted.iter().filter(|&&n| n == 0).count() as u64;
    }
    let extract = Extract::new(opts.edition.clone(), households, people.persons);
    Ok(Ingested {
        extract,
        report: IngestReport { households: hh_report, persons: p_report, notes },
        household_rejects: hh_rejects,
        person_rejects: p_rejects,
        household_header: hh_header,
        person_header: p_header,
    })
}

fn describe_columns<F: Copy + PartialEq>(report: &mut TableReport, header: &[String], map: &ColumnMap<F>) {
    // Header cells are data too: a long number in one (an ID typed as a column name) is hidden.
    let shown = |h: &str| crate::ids::redact_numbers(h).into_owned();
    report.columns_used = map.used_columns().into_iter().map(|c| shown(&header[c])).collect();
    report.columns_ignored = map.ignored.iter().map(|h| shown(h)).collect();
}

fn count_reasons(report: &mut TableReport, rejects: &[Rejection]) {
    let mut by: BTreeMap<Reason, u64> = BTreeMap::new();
    for r in rejects {
        let mut seen: Vec<Reason> = r.problems.iter().map(|p| p.reason).collect();
        seen.sort();
        seen.dedup();
        for reason in seen {
            *by.entry(reason).or_default() += 1;
        }
    }
    report.by_reason = by;
}

fn strict_check(opts: &IngestOptions, file: &str, rejects: &[Rejection]) -> Result<()> {
    match rejects.first() {
        Some(r) if opts.mode == Mode::Strict => Err(strict_error(file, r)),
        _ => Ok(()),
    }
}

/// The error a strict read stops with at rejected row `r` of `file`: its first problem.
pub(crate) fn strict_error(file: &str, r: &Rejection) -> Error {
    let (column, reason) = match r.problems.first() {
        Some(p) => (
            p.column.clone(),
            match &p.detail {
                Some(d) => format!("{} ({d})", p.reason.describe()),
                None => p.reason.describe().to_string(),
            },
        ),
        None => (String::new(), "rejected".to_string()),
    };
    Error::InvalidRow { file: file.to_string(), row: r.row, line: r.line, column, reason }
}

/// Rejections for rows that repeat a key (`repeats`: positions among the parsed rows, whose
/// `source_rows` say where they are in the batch).
fn repeat_rejections(
    batch: &dyn Batch,
    first_row: u64,
    source_rows: &[u64],
    repeats: &[usize],
    column: &str,
    reason: Reason,
    width: usize,
) -> Vec<Rejection> {
    repeats
        .iter()
        .map(|&i| {
            let row = source_rows[i];
            let r = (row - first_row) as usize;
            Rejection {
                row,
                line: batch.line(r),
                problems: vec![Problem { column: column.to_string(), reason, detail: None }],
                values: row_values(batch, r, width),
            }
        })
        .collect()
}

fn keep_mask(n: usize, drop: &[usize]) -> Vec<bool> {
    let mut keep = vec![true; n];
    for &i in drop {
        keep[i] = false;
    }
    keep
}

fn row_values(batch: &dyn Batch, r: usize, width: usize) -> Vec<String> {
    (0..width).map(|c| batch.cell(r, c).to_text()).collect()
}

/// Something that collects parsed rows of one chunk (concatenated in order by `append_all`).
trait Part: Send + Sized {
    /// Rows parsed (accepted so far).
    fn len(&self) -> usize;
    /// The 1-based source row of each row parsed.
    fn source_rows(&self) -> &[u64];
    /// Only the rows where `keep` is true, rejections as they were.
    fn filter(self, keep: &[bool]) -> Self;
    /// The chunk's rejections, in row order.
    fn rejects_mut(&mut self) -> &mut Vec<Rejection>;
}

/// Sets aside the parsed rows at `repeats` (positions of keys seen before, in `column` of
/// `batch`, whose first row is `first_row`, of `width` columns) as rejections for `reason`, kept
/// in row order.
fn set_aside_repeats<P: Part>(
    part: P,
    repeats: &[usize],
    batch: &dyn Batch,
    first_row: u64,
    column: &str,
    reason: Reason,
    width: usize,
) -> P {
    if repeats.is_empty() {
        return part;
    }
    let rejects = repeat_rejections(batch, first_row, part.source_rows(), repeats, column, reason, width);
    let keep = keep_mask(part.len(), repeats);
    let mut part = part.filter(&keep);
    let all = part.rejects_mut();
    all.extend(rejects);
    all.sort_by_key(|r| r.row);
    part
}

/// Parses a batch in parallel chunks: `prep` reads what is read column by column for a chunk's
/// rows, `start` makes the chunk's part with room for them, then `row_fn` parses each row. The
/// chunks come back in row order, for the caller to append each where it belongs
/// (concatenating them here first copied every row once more).
fn par_parse<'b, P: Send, S>(
    batch: &'b dyn Batch,
    first_row: u64,
    prep: impl Fn(&'b dyn Batch, std::ops::Range<usize>) -> S + Sync,
    start: impl Fn(&S, usize) -> P + Sync,
    row_fn: impl Fn(&'b dyn Batch, usize, u64, &S, &mut P) + Sync,
) -> Vec<P> {
    const CHUNK: usize = 8192;
    let n = batch.len();
    (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let rows = c * CHUNK..((c + 1) * CHUNK).min(n);
            let pre = prep(batch, rows.clone());
            let mut p = start(&pre, rows.len());
            for r in rows {
                row_fn(batch, r, first_row + r as u64, &pre, &mut p);
            }
            p
        })
        .collect()
}

/// A chunk's statuses read column by column where the batch allows ([`Batch::status_codes`]):
/// per row, the masks [`read_statuses`] gives and the indicators whose cells it must still read
/// one by one (forms other than the plain ones, and every cell of a column not read so).
#[derive(Default)]
struct ChunkStatuses {
    start: usize,
    fail: Vec<u64>,
    na: Vec<u64>,
    missing: Vec<u64>,
    left: Vec<u64>,
}

impl ChunkStatuses {
    /// Reads the status columns `cols` ((indicator, column) pairs) of the batch's `rows`.
    fn read(batch: &dyn Batch, rows: std::ops::Range<usize>, cols: &[(usize, usize)], one: OneMeans) -> Self {
        let n = rows.len();
        let mut s = ChunkStatuses {
            start: rows.start,
            fail: vec![0; n],
            na: vec![0; n],
            missing: vec![0; n],
            left: vec![0; n],
        };
        // What `parse::status` makes of a 0 and of a 1.
        let (zero_fails, one_fails) = match one {
            OneMeans::Fail => (false, true),
            OneMeans::Pass => (true, false),
        };
        // The masks (fail, na, missing, left) each code sets, all ones or none, by the code's
        // number: a row's four words are or-ed without a branch per cell.
        let all = |yes: bool| if yes { u64::MAX } else { 0 };
        let sets = |code: RawStatus| -> [u64; 4] {
            match code {
                RawStatus::Unread => [0, 0, 0, u64::MAX],
                RawStatus::Zero => [all(zero_fails), 0, 0, 0],
                RawStatus::One => [all(one_fails), 0, 0, 0],
                RawStatus::NotApplicable => [0, u64::MAX, 0, 0],
                RawStatus::Missing => [0, 0, u64::MAX, 0],
            }
        };
        let mut table = [[0u64; 4]; 5];
        for code in [RawStatus::Unread, RawStatus::Zero, RawStatus::One, RawStatus::NotApplicable, RawStatus::Missing] {
            table[code as usize] = sets(code);
        }
        // A source that keeps a row's fields together reads them row by row, and a row's four
        // words are made in registers.
        let columns: Vec<usize> = cols.iter().map(|&(_, c)| c).collect();
        let mut row_codes = Vec::new();
        if !cols.is_empty()
            && batch.status_rows(&columns, rows.clone(), &mut row_codes)
            && row_codes.len() == n * cols.len()
        {
            let words = s.fail.iter_mut().zip(s.na.iter_mut()).zip(s.missing.iter_mut()).zip(s.left.iter_mut());
            for ((((f, na), m), l), codes) in words.zip(row_codes.chunks_exact(cols.len())) {
                let [mut wf, mut wn, mut wm, mut wl] = [0u64; 4];
                for (&(i, _), &code) in cols.iter().zip(codes) {
                    let bit = 1u64 << i;
                    let [sf, sn, sm, sl] = table[code as usize];
                    wf |= sf & bit;
                    wn |= sn & bit;
                    wm |= sm & bit;
                    wl |= sl & bit;
                }
                (*f, *na, *m, *l) = (wf, wn, wm, wl);
            }
            return s;
        }
        let mut codes = vec![RawStatus::Unread; n];
        for &(i, c) in cols {
            let bit = 1u64 << i;
            if !batch.status_codes(c, rows.start, &mut codes) {
                s.left.iter_mut().for_each(|l| *l |= bit);
                continue;
            }
            let words = s.fail.iter_mut().zip(s.na.iter_mut()).zip(s.missing.iter_mut()).zip(s.left.iter_mut());
            for ((((f, na), m), l), &code) in words.zip(&codes) {
                let [sf, sn, sm, sl] = table[code as usize];
                *f |= sf & bit;
                *na |= sn & bit;
                *m |= sm & bit;
                *l |= sl & bit;
            }
        }
        s
    }
}

/// What a chunk of rows is validated from: its statuses and the cells of its mapped fields,
/// each read a column at a time.
struct Chunk<'b> {
    statuses: ChunkStatuses,
    cells: ChunkCells<'b>,
}

impl<'b> Chunk<'b> {
    /// Reads `rows` of the batch's columns that `map` names (in a header of `width` columns).
    fn read<F>(
        b: &'b dyn Batch,
        rows: std::ops::Range<usize>,
        width: usize,
        map: &ColumnMap<F>,
        one: OneMeans,
    ) -> Self {
        Chunk {
            statuses: ChunkStatuses::read(b, rows.clone(), &map.indicators, one),
            cells: ChunkCells::read(b, rows, width, map.fields.iter().map(|&(_, c)| c)),
        }
    }
}

/// The cells a chunk of rows is validated from, read a column at a time ([`Batch::cells`])
/// rather than by a dynamic call per row and column.
struct ChunkCells<'b> {
    start: usize,
    /// By header position: the chunk's cells of each column read, empty for the others.
    cols: Vec<Vec<Cell<'b>>>,
}

impl<'b> ChunkCells<'b> {
    /// Reads `rows` of the columns `read` (positions in a header of `width` columns).
    fn read(b: &'b dyn Batch, rows: std::ops::Range<usize>, width: usize, read: impl Iterator<Item = usize>) -> Self {
        let mut cols: Vec<Vec<Cell<'b>>> = (0..width).map(|_| Vec::new()).collect();
        let mut wanted: Vec<usize> = read.filter(|&c| c < width).collect();
        wanted.sort_unstable();
        wanted.dedup();
        // A source that keeps a row's fields together reads them row by row.
        let mut got: Vec<Vec<Cell<'b>>> = wanted.iter().map(|_| Vec::new()).collect();
        if b.cells_rows(&wanted, rows.clone(), &mut got) && got.iter().all(|g| g.len() == rows.len()) {
            for (&c, g) in wanted.iter().zip(got) {
                cols[c] = g;
            }
        } else {
            for &c in &wanted {
                b.cells(c, rows.clone(), &mut cols[c]);
            }
        }
        ChunkCells { start: rows.start, cols }
    }

    /// The cell of batch row `r` (in the chunk) in column `c` (one read).
    fn get(&self, r: usize, c: usize) -> Cell<'b> {
        self.cols[c][r - self.start]
    }

    /// [`ChunkCells::get`] of an optional column: empty when there is none.
    fn at(&self, r: usize, c: Option<usize>) -> Cell<'b> {
        c.map_or(Cell::Null, |c| self.get(r, c))
    }

    /// Bytes of the text cells of column `c` (none when it is not read): room enough for its
    /// values in a text column, which trimming only shortens (a cell of another kind, written
    /// out as text, may still make the column grow).
    fn text_bytes(&self, c: Option<usize>) -> usize {
        let cells = c.and_then(|c| self.cols.get(c)).map_or(&[][..], Vec::as_slice);
        cells.iter().map(|cell| if let Cell::Str(s) = cell { s.len() } else { 0 }).sum()
    }
}

/// Rows of one table reserved for on a file's word alone: more than Thailand's population
/// (66 M), so the national persons (36.6 M) are reserved for in one step. A footer that lies
/// costs address space, not memory: columns are reserved, not written; only the citizen-ID
/// set's control bytes (one per slot, 128 MB at this bound) are written when it is made.
pub(crate) const TRUSTED_TABLE_ROWS: usize = 1 << 26;

/// Rows to make room for when `incoming` rows join `len` rows held in room for `capacity`:
/// none while they fit; else room for as many rows as the input claims (`claimed`), trusted up
/// to [`TRUSTED_TABLE_ROWS`] or four times the rows really held, so a Parquet footer claiming
/// 2^40 rows reserves no more than real rows back. One reservation of the right size replaces the
/// doublings that copied every column of the national persons (docs/bench/).
fn room_for(len: usize, capacity: usize, incoming: usize, claimed: Option<usize>) -> usize {
    let want = len.saturating_add(incoming);
    if want <= capacity {
        return 0;
    }
    let trusted = TRUSTED_TABLE_ROWS.max(want.saturating_mul(4));
    claimed.map_or(want, |c| c.min(trusted)).max(want) - len
}

/// Collects problems for one row.
struct RowProblems<'h> {
    header: &'h [String],
    problems: Vec<Problem>,
}

impl<'h> RowProblems<'h> {
    fn new(header: &'h [String]) -> Self {
        RowProblems { header, problems: Vec::new() }
    }
    fn add(&mut self, col: usize, reason: Reason) {
        self.problems.push(Problem { column: self.header[col].clone(), reason, detail: None });
    }
    fn add_detail(&mut self, col: usize, reason: Reason, detail: String) {
        self.problems.push(Problem { column: self.header[col].clone(), reason, detail: Some(detail) });
    }
    fn add_named(&mut self, column: &str, reason: Reason) {
        self.problems.push(Problem { column: column.to_string(), reason, detail: None });
    }
    fn check_shape(&mut self, batch: &dyn Batch, r: usize) {
        if let Some(n) = batch.field_count(r)
            && n != self.header.len()
        {
            self.problems.push(Problem {
                column: "*".into(),
                reason: Reason::FieldCount,
                detail: Some(format!("{n} fields, header has {}", self.header.len())),
            });
        }
        if batch.bad_encoding(r) {
            self.add_named("*", Reason::BadEncoding);
        }
    }
    fn into_rejection(self, batch: &dyn Batch, r: usize, row: u64) -> Rejection {
        Rejection { row, line: batch.line(r), problems: self.problems, values: row_values(batch, r, self.header.len()) }
    }
}

/// Reads the status columns of a row into (fail, na, missing) masks: those of its chunk read
/// column by column (`pre`), the cells left there one by one.
fn read_statuses(
    batch: &dyn Batch,
    r: usize,
    cols: &[(usize, usize)],
    one: OneMeans,
    pre: &ChunkStatuses,
    problems: &mut RowProblems<'_>,
) -> (u64, u64, u64) {
    let (mut fail, mut na, mut missing, left) = match r.checked_sub(pre.start).filter(|&k| k < pre.left.len()) {
        Some(k) => (pre.fail[k], pre.na[k], pre.missing[k], pre.left[k]),
        None => (0, 0, 0, u64::MAX),
    };
    if left == 0 {
        return (fail, na, missing);
    }
    for &(i, c) in cols {
        let bit = 1u64 << i;
        if left & bit == 0 {
            continue;
        }
        let cell = batch.cell(r, c);
        match parse::status(cell, one) {
            Ok(IndicatorStatus::Fail) => fail |= bit,
            Ok(IndicatorStatus::NotApplicable) => na |= bit,
            Ok(IndicatorStatus::Missing) => missing |= bit,
            Ok(IndicatorStatus::Pass) => {}
            Err(reason) => problems.add_detail(c, reason, format!("found {}", cell.status_problem())),
        }
    }
    (fail, na, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A persons extract whose first rows are UTF-8 and the rest (most) TIS-620: decided on its
    /// start, reading fails at the end; read through `ingest_deciding_on`, it is read again as
    /// decided on every line, with the same result as deciding on every line first.
    #[test]
    fn an_extract_whose_start_decides_another_encoding_is_read_as_decided_on_every_line() {
        let lines = |path: &str| -> Vec<Vec<u8>> {
            std::fs::read(path).unwrap().split_inclusive(|&c| c == b'\n').map(<[u8]>::to_vec).collect()
        };
        let (utf8, tis620) = (lines("data-samples/persons.csv"), lines("data-samples/tis620/persons.csv"));
        assert_eq!(utf8.len(), tis620.len());
        let start = 2 + 20; // the preamble, the header and 20 rows
        let dir = tempfile::tempdir().unwrap();
        let persons = dir.path().join("persons.csv");
        std::fs::write(&persons, [&utf8[..start], &tis620[start..]].concat().concat()).unwrap();
        let decide_on = utf8[..start].concat().len() as u64;
        let households = Path::new("data-samples/households.csv");
        let opts = IngestOptions::default();
        let (hh, p) = (TableInput::File(households), TableInput::File(&persons));
        let first = crate::in_pool(|| ingest_in_pool(hh, p, &opts, None, None)).unwrap();
        let label = first.report.persons.encoding.clone().unwrap_or_default();
        assert!(label.starts_with("tis-620 (decided on"), "{label}");
        let err = crate::in_pool(|| ingest_in_pool(hh, p, &opts, None, Some(decide_on))).err().unwrap();
        assert!(err.to_string().contains("utf-8") && err.to_string().contains("read again"), "{err}");
        let again = crate::in_pool(|| ingest_deciding_on(hh, p, &opts, decide_on)).unwrap();
        assert_eq!(serde_json::to_string(&again.report).unwrap(), serde_json::to_string(&first.report).unwrap());
        assert_eq!(again.report.persons.rejected, first.report.persons.rejected);
        assert_eq!(again.extract.persons.first_name, first.extract.persons.first_name);
        assert_eq!(again.extract.persons.source_row, first.extract.persons.source_row);
        assert_eq!(again.person_rejects.len(), first.person_rejects.len());
        // Decided on a start long enough, the one reading gives the same.
        let whole_start = crate::in_pool(|| ingest_in_pool(hh, p, &opts, None, Some(u64::MAX))).unwrap();
        assert_eq!(serde_json::to_string(&whole_start.report).unwrap(), serde_json::to_string(&first.report).unwrap());
    }

    /// A batch read a column at a time: a CSV batch without its row-by-row reads.
    struct ByColumn<'a>(&'a source::CsvBatch);

    impl Batch for ByColumn<'_> {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn cell(&self, row: usize, col: usize) -> source::Cell<'_> {
            self.0.cell(row, col)
        }
        fn line(&self, row: usize) -> Option<u64> {
            self.0.line(row)
        }
        fn field_count(&self, row: usize) -> Option<usize> {
            self.0.field_count(row)
        }
        fn bad_encoding(&self, row: usize) -> bool {
            self.0.bad_encoding(row)
        }
        fn status_codes(&self, col: usize, start: usize, out: &mut [source::RawStatus]) -> bool {
            self.0.status_codes(col, start, out)
        }
    }

    /// A chunk's statuses and cells read row by row (a CSV batch) are those read column by
    /// column, under both meanings of a 1, for indicators mapped out of order and to a column
    /// twice, in chunks that start and end anywhere.
    #[test]
    fn a_chunk_read_row_by_row_is_the_chunk_read_column_by_column() {
        let mut bytes = b"a,b,c,d,e\n0,1,na,x,1\nNA,,-,,0\n\" 1\",2,\"0\",y,na\n1\n0,1,0,1,9,8\n".to_vec();
        bytes.extend_from_slice(b"1,\xFF,0,z,1\n");
        bytes.extend_from_slice("ผ่าน,nA,1,ก,\n1,0,na,NA,0\n".as_bytes());
        let b = source::csv_batch_of(&bytes);
        let n = b.len();
        assert_eq!(n, 8);
        let indicators = [(5, 4), (0, 0), (63, 2), (7, 1), (9, 4), (2, 3)];
        let by_column = ByColumn(&b);
        for one in [OneMeans::Fail, OneMeans::Pass] {
            for start in 0..=n {
                for end in start..=n {
                    let (x, y) = (
                        ChunkStatuses::read(&b, start..end, &indicators, one),
                        ChunkStatuses::read(&by_column, start..end, &indicators, one),
                    );
                    assert_eq!(
                        (x.start, &x.fail, &x.na, &x.missing, &x.left),
                        (y.start, &y.fail, &y.na, &y.missing, &y.left),
                        "{start}..{end}"
                    );
                    let fields = [4, 0, 3, 4, 9];
                    let (x, y) = (
                        ChunkCells::read(&b, start..end, 5, fields.into_iter()),
                        ChunkCells::read(&by_column, start..end, 5, fields.into_iter()),
                    );
                    assert_eq!(x.start, y.start);
                    assert_eq!(x.cols, y.cols, "{start}..{end}");
                }
            }
        }
        // Read row by row, row 0 (0,1,na,x,1): indicator 0 passes, 7 fails, 63 is not applicable,
        // 2 (x) and 5 and 9 (1) as a 1 means; row 1's empty b is missing.
        let x = ChunkStatuses::read(&b, 0..2, &indicators, OneMeans::Fail);
        assert_eq!(x.fail[0], 1 << 7 | 1 << 5 | 1 << 9);
        assert_eq!(x.na[0], 1 << 63);
        assert_eq!(x.left[0], 1 << 2);
        assert_eq!(x.missing[1], 1 << 7 | 1 << 2);
        assert_eq!(x.na[1], 1 << 0);
        let x = ChunkStatuses::read(&b, 0..1, &indicators, OneMeans::Pass);
        assert_eq!(x.fail[0], 1 << 0);
    }

    #[test]
    fn room_is_made_once_and_only_as_far_as_real_rows_back_a_claim() {
        // Fits: nothing to reserve.
        assert_eq!(room_for(10, 100, 90, Some(1000)), 0);
        // A text file claims nothing: room for the rows at hand.
        assert_eq!(room_for(10, 10, 5, None), 5);
        // An honest footer: room for every row it claims, in one step (the national persons).
        assert_eq!(room_for(0, 0, 1 << 20, Some(36_647_817)), 36_647_817);
        assert_eq!(room_for(1 << 20, 1 << 20, 1 << 20, Some(36_647_817)), 36_647_817 - (1 << 20));
        // A footer claiming 2^40 rows over a few real ones: no more than TRUSTED_TABLE_ROWS ...
        assert_eq!(room_for(0, 0, 8192, Some(1 << 40)), TRUSTED_TABLE_ROWS);
        // ... and later four times the rows really held.
        let held = 1usize << 27;
        assert_eq!(room_for(held, held, 1, Some(1 << 40)), 4 * (held + 1) - held);
        // A claim below the rows at hand never shrinks the room below them.
        assert_eq!(room_for(100, 100, 50, Some(10)), 50);
    }
}
