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
pub mod parse;
pub mod rejects;
pub mod source;

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::DataFrame;
use rayon::prelude::*;
use serde::Serialize;

use crate::areas::{AreaCode, AreaRegistry, UnknownArea};
use crate::error::{Error, Result};
use crate::extract::{Extract, Households, Persons, Relation, Sex, StrColumn};
use crate::ids::{CitizenId, HouseId, HouseholdId, IdError};
use crate::indicators::{Edition, IndicatorStatus, Level, Scope};
use crate::thai::PartialDate;
use columns::{ColumnMap, HouseholdField as HF, PersonField as PF};
pub use parse::OneMeans;
pub use rejects::{Problem, Reason, Rejection, TableReport};
use source::{Batch, Cell};
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
pub enum TableInput<'a> {
    /// A file; its format is taken from the extension.
    File(&'a Path),
    /// A frame, with a name for messages.
    Frame(&'a DataFrame, &'a str),
}

/// Reads, validates and links a households file and a persons file.
pub fn ingest(households: &Path, persons: &Path, opts: &IngestOptions) -> Result<Ingested> {
    ingest_tables(TableInput::File(households), TableInput::File(persons), opts)
}

/// Like [`ingest`], for files or frames.
pub fn ingest_tables(households: TableInput<'_>, persons: TableInput<'_>, opts: &IngestOptions) -> Result<Ingested> {
    // Our parallel work runs in polars' thread pool, which also decodes Parquet: two pools on
    // two cores would oversubscribe them.
    crate::in_pool(|| ingest_in_pool(households, persons, opts))
}

fn ingest_in_pool(households: TableInput<'_>, persons: TableInput<'_>, opts: &IngestOptions) -> Result<Ingested> {
    opts.validate()?;
    let registry = AreaRegistry::embedded();
    let mut hh_src = Opened::open(households, opts)?;
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
    let hh_ctx = HouseholdCtx::new(&hh_map, &hh_header, opts, registry);
    let mut hh = HouseholdBuilder::new(hh_ctx.statuses_present);
    hh.reserve(hh_src.rows_hint());
    let mut hh_rejects = Vec::new();
    let mut seen_hh: HashSet<u64, IdHash> = HashSet::with_capacity_and_hasher(hh_src.rows_hint(), IdHash::default());
    let mut rejected_ids = Vec::new();
    let mut input_rows = 0u64;
    let name = hh_src.name();
    hh_src.for_each(&mut |batch, first_row| {
        input_rows += batch.len() as u64;
        let mut part = par_parse(batch, first_row, |b, r, row, out: &mut HouseholdBuilder| hh_ctx.row(b, r, row, out));
        // Duplicates are found in row order, across batches: the first occurrence is kept.
        let mut keep = vec![true; part.len()];
        let mut first_rows: Vec<(usize, Rejection)> = Vec::new();
        #[allow(clippy::needless_range_loop)] // indexes several parallel columns
        for i in 0..part.len() {
            if !seen_hh.insert(part.households.id[i].0) {
                keep[i] = false;
                let row = part.households.source_row[i];
                let r = (row - first_row) as usize;
                let column = hh_header[hh_map.get(HF::HouseholdId).expect("checked")].clone();
                first_rows.push((
                    i,
                    Rejection {
                        row,
                        line: batch.line(r),
                        problems: vec![Problem { column, reason: Reason::DuplicateHousehold, detail: None }],
                        values: row_values(batch, r, hh_header.len()),
                    },
                ));
            }
        }
        if !first_rows.is_empty() {
            part = part.filter(&keep);
            part.rejects.extend(first_rows.into_iter().map(|(_, r)| r));
            part.rejects.sort_by_key(|r| r.row);
        }
        strict_check(opts, &name, &part.rejects)?;
        rejected_ids.append(&mut part.rejected_ids);
        hh_rejects.append(&mut part.rejects);
        hh.append(part);
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

    let mut p_src = Opened::open(persons, opts)?;
    let p_header = p_src.header().to_vec();
    let p_map =
        columns::map_persons(&p_header, &opts.edition).map_err(|m| Error::Format { file: p_src.name(), message: m })?;
    if p_map.get(PF::HouseholdId).is_none() {
        return Err(Error::Format { file: p_src.name(), message: "required column 'household_id' is missing".into() });
    }
    p_src.check_types(&p_map.used_columns())?;
    let p_ctx = PersonCtx::new(&p_map, &p_header, opts, &index, &rejected_ids, &hh.households.survey_year);
    let mut people = PersonBuilder::new(p_map.indicator_mask());
    people.reserve(p_src.rows_hint());
    let mut p_rejects = Vec::new();
    let mut seen_ids: HashSet<u64, IdHash> = HashSet::with_capacity_and_hasher(p_src.rows_hint(), IdHash::default());
    let mut p_input = 0u64;
    let p_name = p_src.name();
    let mut notes = Notes::default();
    let mut trace = crate::diagnostics::Lap::start();
    p_src.for_each(&mut |batch, first_row| {
        trace.lap("persons: read batch");
        p_input += batch.len() as u64;
        let mut part = par_parse(batch, first_row, |b, r, row, out: &mut PersonBuilder| p_ctx.row(b, r, row, out));
        trace.lap("persons: validate batch");
        let mut keep = vec![true; part.len()];
        let mut dups = Vec::new();
        #[allow(clippy::needless_range_loop)] // indexes several parallel columns
        for i in 0..part.len() {
            if let Some(id) = part.persons.citizen_id[i]
                && !seen_ids.insert(id.as_u64())
            {
                keep[i] = false;
                let row = part.persons.source_row[i];
                let r = (row - first_row) as usize;
                let column = p_header[p_map.get(PF::CitizenId).expect("an ID implies its column")].clone();
                dups.push(Rejection {
                    row,
                    line: batch.line(r),
                    problems: vec![Problem { column, reason: Reason::DuplicatePerson, detail: None }],
                    values: row_values(batch, r, p_header.len()),
                });
            }
        }
        if !dups.is_empty() {
            part = part.filter(&keep);
            part.rejects.extend(dups);
            part.rejects.sort_by_key(|r| r.row);
        }
        trace.lap("persons: duplicates");
        strict_check(opts, &p_name, &part.rejects)?;
        p_rejects.append(&mut part.rejects);
        people.append(part);
        trace.lap("persons: append");
        Ok(())
    })?;
    drop(seen_ids);
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
    if p_input > 0 {
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
    if opts.mode == Mode::Strict
        && let Some(r) = rejects.first()
    {
        let p = &r.problems[0];
        let reason = match &p.detail {
            Some(d) => format!("{} ({d})", p.reason.describe()),
            None => p.reason.describe().to_string(),
        };
        return Err(Error::InvalidRow {
            file: file.to_string(),
            row: r.row,
            line: r.line,
            column: p.column.clone(),
            reason,
        });
    }
    Ok(())
}

fn row_values(batch: &dyn Batch, r: usize, width: usize) -> Vec<String> {
    (0..width).map(|c| batch.cell(r, c).to_text()).collect()
}

/// A fast hasher for integer keys (MurmurHash3's 64-bit finaliser): the ID sets hold tens of
/// millions of keys, and SipHash's DoS resistance buys nothing for trusted local files.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type IdHash = BuildHasherDefault<IdHasher>;

// ---------------------------------------------------------------------------------------------
// Sources

/// An opened table of any supported format (shared with the general AF reader).
pub(crate) enum Opened<'a> {
    Csv {
        src: source::CsvSource,
        path: PathBuf,
    },
    Parquet {
        path: PathBuf,
        shape: source::ParquetShape,
    },
    Frame {
        df: &'a DataFrame,
        name: String,
        header: Vec<String>,
    },
    #[cfg(feature = "xlsx")]
    Xlsx {
        sheet: source::XlsxSheet,
        path: PathBuf,
    },
}

impl<'a> Opened<'a> {
    pub(crate) fn open(input: TableInput<'a>, opts: &IngestOptions) -> Result<Opened<'a>> {
        match input {
            TableInput::Frame(df, name) => Ok(Opened::Frame {
                df,
                name: name.to_string(),
                header: df.get_column_names().iter().map(|s| s.to_string()).collect(),
            }),
            TableInput::File(path) => match Format::from_path(path)? {
                Format::Csv => {
                    Ok(Opened::Csv { src: source::CsvSource::open(path, opts.encoding)?, path: path.to_path_buf() })
                }
                Format::Parquet => {
                    Ok(Opened::Parquet { path: path.to_path_buf(), shape: source::parquet_shape(path)? })
                }
                #[cfg(feature = "xlsx")]
                Format::Xlsx => Ok(Opened::Xlsx {
                    sheet: source::XlsxSheet::open(path, opts.sheet.as_deref(), &opts.limits)?,
                    path: path.to_path_buf(),
                }),
                #[cfg(not(feature = "xlsx"))]
                Format::Xlsx => Err(Error::Format {
                    file: path.display().to_string(),
                    message: "built without the `xlsx` feature".into(),
                }),
            },
        }
    }

    pub(crate) fn header(&self) -> &[String] {
        match self {
            Opened::Csv { src, .. } => &src.header,
            Opened::Parquet { shape, .. } => &shape.names,
            Opened::Frame { header, .. } => header,
            #[cfg(feature = "xlsx")]
            Opened::Xlsx { sheet, .. } => &sheet.header,
        }
    }

    pub(crate) fn name(&self) -> String {
        match self {
            Opened::Csv { path, .. } | Opened::Parquet { path, .. } => path.display().to_string(),
            Opened::Frame { name, .. } => name.clone(),
            #[cfg(feature = "xlsx")]
            Opened::Xlsx { path, .. } => path.display().to_string(),
        }
    }

    fn format_name(&self) -> String {
        match self {
            Opened::Csv { .. } => "csv",
            Opened::Parquet { .. } => "parquet",
            Opened::Frame { .. } => "frame",
            #[cfg(feature = "xlsx")]
            Opened::Xlsx { .. } => "xlsx",
        }
        .to_string()
    }

    fn encoding_name(&self) -> Option<String> {
        match self {
            Opened::Csv { src, .. } => Some(source::encoding_label(src.encoding, src.evidence.as_ref())),
            _ => None,
        }
    }

    /// Rows to reserve for: a hint only, never trusted beyond [`MAX_ROWS_HINT`] (a Parquet footer
    /// can claim 2^40 rows).
    fn rows_hint(&self) -> usize {
        match self {
            Opened::Parquet { shape, .. } => shape.rows.min(MAX_ROWS_HINT),
            Opened::Frame { df, .. } => df.height(),
            _ => 1 << 16,
        }
    }

    /// Checks that the columns the readers need (`used`, positions in the header) are of types
    /// tpmap reads: a list, struct or binary column gives an error naming file and column.
    pub(crate) fn check_types(&self, used: &[usize]) -> Result<()> {
        let types: Vec<Option<polars::prelude::DataType>> = match self {
            Opened::Parquet { shape, .. } => shape.types.clone(),
            Opened::Frame { df, .. } => df.dtypes().into_iter().map(Some).collect(),
            _ => return Ok(()),
        };
        for &c in used {
            let why = match types.get(c) {
                Some(Some(t)) => source::unsupported_type(t),
                Some(None) => Some(
                    "is of a nested type (struct, map or union), which tpmap cannot read (it reads text, numbers, booleans and dates)"
                        .to_string(),
                ),
                None => None,
            };
            if let Some(why) = why {
                return Err(Error::Format {
                    file: self.name(),
                    message: format!("column '{}' {why}", self.header()[c]),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn for_each(&mut self, f: &mut dyn FnMut(&dyn Batch, u64) -> Result<()>) -> Result<()> {
        match self {
            Opened::Csv { src, path } => {
                let mut first = 1u64;
                while let Some(b) = src.next_batch(path, source::BATCH_ROWS)? {
                    f(&b, first)?;
                    first += b.len() as u64;
                }
                Ok(())
            }
            Opened::Parquet { path, shape } => {
                let step = 1 << 20;
                let mut casts = Vec::new();
                let mut offset = 0usize;
                while offset < shape.rows {
                    let want = step.min(shape.rows - offset);
                    let df = source::read_parquet_slice(path, shape, offset, want)?;
                    if df.height() != want {
                        return Err(Error::Format {
                            file: path.display().to_string(),
                            message: format!(
                                "the footer claims {} rows but only {} could be read: the file is damaged",
                                shape.rows,
                                offset + df.height()
                            ),
                        });
                    }
                    let b = source::FrameBatch::new(&df, &mut casts).map_err(|e| in_file(e, path))?;
                    f(&b, offset as u64 + 1)?;
                    offset += want;
                }
                Ok(())
            }
            Opened::Frame { df, name, .. } => {
                let mut casts = Vec::new();
                for offset in (0..df.height()).step_by(source::BATCH_ROWS) {
                    let mut slice = df.slice(offset as i64, source::BATCH_ROWS);
                    slice.rechunk_mut_par();
                    let b = source::FrameBatch::new(&slice, &mut casts).map_err(|e| in_file(e, Path::new(name)))?;
                    f(&b, offset as u64 + 1)?;
                }
                Ok(())
            }
            #[cfg(feature = "xlsx")]
            Opened::Xlsx { sheet, .. } => {
                let rows = sheet.rows();
                for start in (0..rows).step_by(source::BATCH_ROWS) {
                    let b = sheet.batch(start, source::BATCH_ROWS.min(rows - start));
                    f(&b, start as u64 + 1)?;
                }
                Ok(())
            }
        }
    }
}

/// Rows reserved for up front at most, whatever a file claims.
pub const MAX_ROWS_HINT: usize = 1 << 24;

/// Names the file in an error that came from a reader without one.
fn in_file(e: Error, path: &Path) -> Error {
    match e {
        Error::Polars(p) => Error::Format { file: path.display().to_string(), message: p.to_string() },
        Error::Format { file, message } if file == "frame" => {
            Error::Format { file: path.display().to_string(), message }
        }
        other => other,
    }
}

/// Something that collects parsed rows of one chunk and can be concatenated in order.
trait Part: Send + Sized {
    fn append(&mut self, other: Self);
}

/// Parses a batch in parallel chunks and concatenates the chunks in row order.
fn par_parse<P: Part + Default>(
    batch: &dyn Batch,
    first_row: u64,
    row_fn: impl Fn(&dyn Batch, usize, u64, &mut P) + Sync,
) -> P {
    const CHUNK: usize = 8192;
    let n = batch.len();
    let parts: Vec<P> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut p = P::default();
            for r in c * CHUNK..((c + 1) * CHUNK).min(n) {
                row_fn(batch, r, first_row + r as u64, &mut p);
            }
            p
        })
        .collect();
    let mut lap = crate::diagnostics::Lap::start();
    let mut it = parts.into_iter();
    let mut acc = it.next().unwrap_or_default();
    for p in it {
        acc.append(p);
    }
    lap.lap("  concatenate chunks");
    acc
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

fn cell_at(batch: &dyn Batch, r: usize, col: Option<usize>) -> Cell<'_> {
    col.map_or(Cell::Null, |c| batch.cell(r, c))
}

/// Reads the status columns of a row into (fail, na, missing) masks.
fn read_statuses(
    batch: &dyn Batch,
    r: usize,
    cols: &[(usize, usize)],
    one: OneMeans,
    problems: &mut RowProblems<'_>,
) -> (u64, u64, u64) {
    let (mut fail, mut na, mut missing) = (0u64, 0u64, 0u64);
    for &(i, c) in cols {
        let bit = 1u64 << i;
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

// ---------------------------------------------------------------------------------------------
// Households

#[derive(Default)]
struct HouseholdBuilder {
    households: Households,
    members_given: Vec<Option<u16>>,
    rejects: Vec<Rejection>,
    rejected_ids: Vec<u64>,
    notes: Notes,
}

impl HouseholdBuilder {
    fn new(present: u64) -> Self {
        let mut b = HouseholdBuilder::default();
        b.households.statuses.present = present;
        b
    }
    fn len(&self) -> usize {
        self.households.id.len()
    }
    fn reserve(&mut self, n: usize) {
        let h = &mut self.households;
        h.id.reserve(n);
        h.village.reserve(n);
        h.house_id.reserve(n);
        h.survey_year.reserve(n);
        h.income_per_member.reserve(n);
        h.statuses.fail.reserve(n);
        h.statuses.na.reserve(n);
        h.statuses.missing.reserve(n);
        h.source_row.reserve(n);
        self.members_given.reserve(n);
    }
    fn filter(self, keep: &[bool]) -> Self {
        let idx: Vec<u32> = (0..keep.len() as u32).filter(|&i| keep[i as usize]).collect();
        let h = &self.households;
        fn pick<T: Copy>(v: &[T], idx: &[u32]) -> Vec<T> {
            idx.iter().map(|&i| v[i as usize]).collect()
        }
        HouseholdBuilder {
            households: Households {
                id: pick(&h.id, &idx),
                village: pick(&h.village, &idx),
                house_id: pick(&h.house_id, &idx),
                house_no: h.house_no.take(&idx),
                survey_year: pick(&h.survey_year, &idx),
                members: Vec::new(),
                income_per_member: pick(&h.income_per_member, &idx),
                statuses: h.statuses.take(&idx),
                source_row: pick(&h.source_row, &idx),
            },
            members_given: pick(&self.members_given, &idx),
            rejects: self.rejects,
            rejected_ids: self.rejected_ids,
            notes: self.notes,
        }
    }
}

impl Part for HouseholdBuilder {
    fn append(&mut self, o: Self) {
        let (h, x) = (&mut self.households, o.households);
        h.id.extend(x.id);
        h.village.extend(x.village);
        h.house_id.extend(x.house_id);
        h.house_no.extend_from(&x.house_no);
        h.survey_year.extend(x.survey_year);
        h.income_per_member.extend(x.income_per_member);
        h.statuses.present |= x.statuses.present;
        h.statuses.fail.extend(x.statuses.fail);
        h.statuses.na.extend(x.statuses.na);
        h.statuses.missing.extend(x.statuses.missing);
        h.source_row.extend(x.source_row);
        self.members_given.extend(o.members_given);
        self.rejects.extend(o.rejects);
        self.rejected_ids.extend(o.rejected_ids);
        self.notes.income_status_derived += o.notes.income_status_derived;
        self.notes.income_status_overruled += o.notes.income_status_overruled;
    }
}

struct HouseholdCtx<'a> {
    header: &'a [String],
    map: &'a ColumnMap<HF>,
    opts: &'a IngestOptions,
    registry: &'a AreaRegistry,
    /// (indicator, threshold) for income indicators derivable from income per member.
    income: Option<(usize, f64)>,
    statuses_present: u64,
}

impl<'a> HouseholdCtx<'a> {
    fn new(map: &'a ColumnMap<HF>, header: &'a [String], opts: &'a IngestOptions, registry: &'a AreaRegistry) -> Self {
        let income = map.get(HF::IncomePerMember).and_then(|_| {
            opts.edition
                .indicators()
                .iter()
                .position(|i| i.level == Level::Household && i.income_threshold.is_some())
                .map(|i| (i, opts.edition.indicator(i).income_threshold.expect("checked")))
        });
        let statuses_present = map.indicator_mask() | income.map_or(0, |(i, _)| 1u64 << i);
        HouseholdCtx { header, map, opts, registry, income, statuses_present }
    }

    fn row(&self, b: &dyn Batch, r: usize, row: u64, out: &mut HouseholdBuilder) {
        if out.households.statuses.present == 0 {
            out.households.statuses.present = self.statuses_present;
        }
        let m = self.map;
        let mut pr = RowProblems::new(self.header);
        pr.check_shape(b, r);
        let id_col = m.get(HF::HouseholdId).expect("required");
        let id = match b.cell(r, id_col) {
            Cell::Null => {
                pr.add(id_col, Reason::MissingValue);
                None
            }
            Cell::Int(i) if i >= 0 => Some(HouseholdId(i as u64)),
            c => match c.to_text().parse::<HouseholdId>() {
                Ok(id) => Some(id),
                Err(_) => {
                    pr.add(id_col, Reason::BadHouseholdId);
                    None
                }
            },
        };
        let v_col = m.get(HF::Village).expect("required");
        let village = match b.cell(r, v_col) {
            Cell::Null => {
                pr.add(v_col, Reason::MissingValue);
                None
            }
            c => match AreaCode::parse(&c.to_text()) {
                Ok(code) if code.level() < crate::areas::AreaLevel::Village => {
                    pr.add(v_col, Reason::BadAreaCode);
                    None
                }
                Ok(code) => {
                    let check = match self.opts.area_check {
                        AreaCheck::Village => self.registry.check(&code),
                        AreaCheck::Tambon => self.registry.check_tambon(&code),
                        AreaCheck::FormOnly => Ok(()),
                    };
                    match check {
                        Ok(()) => Some(code),
                        Err(u) => {
                            pr.add(
                                v_col,
                                match u {
                                    UnknownArea::Province => Reason::UnknownProvince,
                                    UnknownArea::Amphoe => Reason::UnknownAmphoe,
                                    UnknownArea::Tambon => Reason::UnknownTambon,
                                    UnknownArea::Village => Reason::UnknownVillage,
                                },
                            );
                            None
                        }
                    }
                }
                Err(_) => {
                    pr.add(v_col, Reason::BadAreaCode);
                    None
                }
            },
        };
        let house_id = match m.get(HF::HouseId).map(|c| (c, b.cell(r, c))) {
            None | Some((_, Cell::Null)) => None,
            Some((c, cell)) => match cell.to_text().parse::<HouseId>() {
                Ok(h) => Some(h),
                Err(_) => {
                    pr.add(c, Reason::BadHouseId);
                    None
                }
            },
        };
        if let Some(c) = m.get(HF::HouseNo) {
            let long_number = match b.cell(r, c) {
                Cell::Null => false,
                Cell::Str(s) => crate::ids::redact_numbers(s) != s,
                other => crate::ids::redact_numbers(&other.to_text()) != other.to_text(),
            };
            if long_number {
                pr.add(c, Reason::BadHouseNo);
            }
        }
        let year = match m.get(HF::SurveyYear) {
            Some(c) => match parse::year_be(b.cell(r, c)) {
                Ok(Some(y)) => Some(y),
                Ok(None) => self.opts.default_survey_year.or_else(|| {
                    pr.add(c, Reason::MissingValue);
                    None
                }),
                Err(reason) => {
                    pr.add(c, reason);
                    None
                }
            },
            None => self.opts.default_survey_year,
        };
        let members = match m.get(HF::Members) {
            Some(c) => match parse::whole(b.cell(r, c)) {
                Ok(v) if v.is_none_or(|v| v <= u16::MAX as u64) => v.map(|v| v as u16),
                _ => {
                    pr.add(c, Reason::BadNumber);
                    None
                }
            },
            None => None,
        };
        let income = match m.get(HF::IncomePerMember) {
            Some(c) => parse::number(b.cell(r, c)).unwrap_or_else(|reason| {
                pr.add(c, reason);
                None
            }),
            None => None,
        };
        let (mut fail, mut na, mut missing) = read_statuses(b, r, &m.indicators, self.opts.one_means, &mut pr);

        if !pr.problems.is_empty() {
            if let Some(id) = id {
                out.rejected_ids.push(id.0);
            }
            out.rejects.push(pr.into_rejection(b, r, row));
            return;
        }
        if let (Some((i, threshold)), Some(inc)) = (self.income, income) {
            let bit = 1u64 << i;
            let derived_fail = inc < threshold;
            let reported = m.indicators.iter().any(|&(j, _)| j == i);
            if reported && (missing | na) & bit == 0 && (fail & bit != 0) != derived_fail {
                out.notes.income_status_overruled += 1;
            }
            out.notes.income_status_derived += 1;
            na &= !bit;
            missing &= !bit;
            if derived_fail { fail |= bit } else { fail &= !bit }
        }
        let h = &mut out.households;
        h.id.push(id.expect("no problems"));
        h.village.push(village.expect("no problems"));
        h.house_id.push(house_id);
        match cell_at(b, r, m.get(HF::HouseNo)) {
            Cell::Str(s) => h.house_no.push(&crate::thai::fold_digits(s.trim())),
            Cell::Null => h.house_no.push(""),
            c => h.house_no.push(&c.to_text()),
        }
        h.survey_year.push(year.expect("no problems"));
        h.income_per_member.push(income);
        h.statuses.push(fail, na, missing);
        h.source_row.push(row);
        out.members_given.push(members);
    }
}

// ---------------------------------------------------------------------------------------------
// Persons

#[derive(Default)]
struct PersonBuilder {
    persons: Persons,
    rejects: Vec<Rejection>,
    notes: Notes,
    /// Position in the household index of the previous row's household: persons arrive grouped
    /// by household, so the next lookup is usually that entry or the one after it, and a binary
    /// search over millions of households (a cache miss per step) is avoided.
    hint: usize,
}

impl PersonBuilder {
    fn new(present: u64) -> Self {
        let mut b = PersonBuilder::default();
        b.persons.statuses.present = present;
        b
    }
    fn len(&self) -> usize {
        self.persons.household.len()
    }
    fn reserve(&mut self, n: usize) {
        let p = &mut self.persons;
        p.household.reserve(n);
        p.citizen_id.reserve(n);
        p.sex.reserve(n);
        p.birth_date.reserve(n);
        p.age.reserve(n);
        p.relation.reserve(n);
        p.disabled.reserve(n);
        p.welfare_registered.reserve(n);
        p.welfare_validated.reserve(n);
        p.statuses.fail.reserve(n);
        p.statuses.na.reserve(n);
        p.statuses.missing.reserve(n);
        p.source_row.reserve(n);
    }
    fn filter(self, keep: &[bool]) -> Self {
        let idx: Vec<u32> = (0..keep.len() as u32).filter(|&i| keep[i as usize]).collect();
        PersonBuilder { persons: self.persons.take(&idx), rejects: self.rejects, notes: self.notes, hint: self.hint }
    }
}

impl Part for PersonBuilder {
    fn append(&mut self, o: Self) {
        let (p, x) = (&mut self.persons, o.persons);
        p.household.extend(x.household);
        p.citizen_id.extend(x.citizen_id);
        p.title.extend_from(&x.title);
        p.first_name.extend_from(&x.first_name);
        p.last_name.extend_from(&x.last_name);
        p.sex.extend(x.sex);
        p.birth_date.extend(x.birth_date);
        p.age.extend(x.age);
        p.relation.extend(x.relation);
        p.disabled.extend(x.disabled);
        p.welfare_registered.extend(x.welfare_registered);
        p.welfare_validated.extend(x.welfare_validated);
        p.statuses.present |= x.statuses.present;
        p.statuses.fail.extend(x.statuses.fail);
        p.statuses.na.extend(x.statuses.na);
        p.statuses.missing.extend(x.statuses.missing);
        p.source_row.extend(x.source_row);
        self.rejects.extend(o.rejects);
        self.notes.derived_not_applicable += o.notes.derived_not_applicable;
        self.notes.reported_na_in_scope_as_missing += o.notes.reported_na_in_scope_as_missing;
        self.notes.ages_derived += o.notes.ages_derived;
    }
}

struct PersonCtx<'a> {
    header: &'a [String],
    map: &'a ColumnMap<PF>,
    opts: &'a IngestOptions,
    index: &'a [(u64, u32)],
    rejected_ids: &'a [u64],
    survey_year: &'a [u16],
    /// (indicator, scope) for person-level statuses whose scope can be derived.
    scopes: Vec<(usize, Scope)>,
    present: u64,
}

impl<'a> PersonCtx<'a> {
    fn new(
        map: &'a ColumnMap<PF>,
        header: &'a [String],
        opts: &'a IngestOptions,
        index: &'a [(u64, u32)],
        rejected_ids: &'a [u64],
        survey_year: &'a [u16],
    ) -> Self {
        let scopes = map
            .indicators
            .iter()
            .map(|&(i, _)| (i, opts.edition.indicator(i).scope))
            .filter(|(_, s)| !matches!(s, Scope::Household | Scope::M3Leaver | Scope::Reported))
            .collect();
        PersonCtx { header, map, opts, index, rejected_ids, survey_year, scopes, present: map.indicator_mask() }
    }

    /// Finds a household in the index, trying the previous row's entry and its successor first.
    fn lookup(&self, id: u64, hint: &mut usize) -> std::result::Result<usize, usize> {
        let idx = self.index;
        for pos in [*hint, *hint + 1] {
            if idx.get(pos).is_some_and(|e| e.0 == id) {
                *hint = pos;
                return Ok(pos);
            }
        }
        let found = idx.binary_search_by_key(&id, |&(k, _)| k);
        if let Ok(pos) = found {
            *hint = pos;
        }
        found
    }

    /// Appends a text cell without allocating for the common case of a string cell.
    fn push_text(out: &mut StrColumn, b: &dyn Batch, r: usize, col: Option<usize>) {
        match cell_at(b, r, col) {
            Cell::Null => out.push(""),
            Cell::Str(s) => out.push(s.trim()),
            c => out.push(c.to_text().trim()),
        }
    }

    fn row(&self, b: &dyn Batch, r: usize, row: u64, out: &mut PersonBuilder) {
        if out.persons.statuses.present == 0 {
            out.persons.statuses.present = self.present;
        }
        let m = self.map;
        let mut pr = RowProblems::new(self.header);
        pr.check_shape(b, r);
        let hh_col = m.get(PF::HouseholdId).expect("required");
        let household = match b.cell(r, hh_col) {
            Cell::Null => {
                pr.add(hh_col, Reason::MissingValue);
                None
            }
            c => {
                let id = match c {
                    Cell::Int(i) if i >= 0 => Some(HouseholdId(i as u64)),
                    c => c.to_text().parse::<HouseholdId>().ok(),
                };
                match id {
                    None => {
                        pr.add(hh_col, Reason::BadHouseholdId);
                        None
                    }
                    Some(id) => match self.lookup(id.0, &mut out.hint) {
                        Ok(pos) => Some(self.index[pos].1),
                        Err(_) if self.rejected_ids.binary_search(&id.0).is_ok() => {
                            pr.add(hh_col, Reason::HouseholdRejected);
                            None
                        }
                        Err(_) => {
                            pr.add(hh_col, Reason::PersonWithoutHousehold);
                            None
                        }
                    },
                }
            }
        };
        let citizen_id = match m.get(PF::CitizenId).map(|c| (c, b.cell(r, c))) {
            None | Some((_, Cell::Null)) => None,
            Some((c, cell)) => {
                let parsed = match cell {
                    Cell::Int(i) if i >= 0 => CitizenId::from_u64(i as u64),
                    Cell::Str(s) => CitizenId::parse(s),
                    _ => Err(IdError::NotDigits),
                };
                match parsed {
                    Ok(id) => Some(id),
                    Err(IdError::CheckDigit) => {
                        pr.add(c, Reason::BadCheckDigit);
                        None
                    }
                    Err(_) => {
                        pr.add(c, Reason::BadCitizenId);
                        None
                    }
                }
            }
        };
        let sex = m.get(PF::Sex).map_or(Ok(Sex::Unknown), |c| parse::sex(b.cell(r, c))).unwrap_or_else(|reason| {
            pr.add(m.get(PF::Sex).expect("present"), reason);
            Sex::Unknown
        });
        let relation = m
            .get(PF::Relation)
            .map_or(Ok(Relation::Unknown), |c| parse::relation(b.cell(r, c)))
            .unwrap_or_else(|reason| {
                pr.add(m.get(PF::Relation).expect("present"), reason);
                Relation::Unknown
            });
        let mut flag = |f: PF| match m.get(f) {
            Some(c) => parse::flag(b.cell(r, c)).unwrap_or_else(|reason| {
                pr.add(c, reason);
                None
            }),
            None => None,
        };
        let disabled = flag(PF::Disabled);
        let registered = flag(PF::WelfareRegistered);
        let validated = flag(PF::WelfareValidated);
        let birth = match m.get(PF::BirthDate) {
            Some(c) => parse::date(b.cell(r, c)).unwrap_or_else(|reason| {
                pr.add(c, reason);
                None
            }),
            None => None,
        };
        let given_age = match m.get(PF::Age) {
            Some(c) => match parse::whole(b.cell(r, c)) {
                Ok(Some(a)) if a <= 120 => Some(a as i32),
                Ok(Some(_)) => {
                    pr.add(c, Reason::ImpossibleAge);
                    None
                }
                Ok(None) => None,
                Err(_) => {
                    pr.add(c, Reason::BadNumber);
                    None
                }
            },
            None => None,
        };
        // Age on the reference day of the household's survey year.
        let mut age = given_age;
        let mut derived = false;
        if let (Some(h), Some(bd)) = (household, birth) {
            let be = self.survey_year[h as usize];
            let (month, day) = self.opts.reference_day;
            let on = PartialDate { year: be - 543, month, day };
            let d = bd.age_on(on);
            let col = m.get(PF::BirthDate).expect("birth implies column");
            if !(0..=120).contains(&d) {
                pr.add(col, Reason::ImpossibleAge);
            } else if let Some(g) = given_age {
                if (g - d).abs() > 1 {
                    pr.add(m.get(PF::Age).expect("given"), Reason::AgeBirthMismatch);
                }
            } else {
                age = Some(d);
                derived = true;
            }
        }
        let (mut fail, mut na, mut missing) = read_statuses(b, r, &m.indicators, self.opts.one_means, &mut pr);

        if !pr.problems.is_empty() {
            out.rejects.push(pr.into_rejection(b, r, row));
            return;
        }
        let age = age.map(|a| a as u8);
        for &(i, scope) in &self.scopes {
            let bit = 1u64 << i;
            match scope.applies_to(age, disabled) {
                Some(false) if na & bit == 0 => {
                    na |= bit;
                    fail &= !bit;
                    missing &= !bit;
                    out.notes.derived_not_applicable += 1;
                }
                Some(true) if na & bit != 0 => {
                    na &= !bit;
                    missing |= bit;
                    out.notes.reported_na_in_scope_as_missing += 1;
                }
                _ => {}
            }
        }
        if derived {
            out.notes.ages_derived += 1;
        }
        let p = &mut out.persons;
        p.household.push(household.expect("no problems"));
        p.citizen_id.push(citizen_id);
        Self::push_text(&mut p.title, b, r, m.get(PF::Title));
        Self::push_text(&mut p.first_name, b, r, m.get(PF::FirstName));
        Self::push_text(&mut p.last_name, b, r, m.get(PF::LastName));
        p.sex.push(sex);
        p.birth_date.push(birth);
        p.age.push(age);
        p.relation.push(relation);
        p.disabled.push(disabled);
        p.welfare_registered.push(registered);
        p.welfare_validated.push(validated);
        p.statuses.push(fail, na, missing);
        p.source_row.push(row);
    }
}
