//! Python bindings of `tpmap`: a thin layer over the Rust API (no logic of its own).
//!
//! Tables cross the boundary through the Arrow PyCapsule interface (the Arrow C stream), so
//! polars, pyarrow and pandas frames go in and polars frames come out without copying row by row.
//! pyo3-polars would do the same but turns on polars features of its own, which makes cargo
//! compile polars a second time beside the library's tests (see docs/design.md); pyo3-arrow needs
//! another pyo3. The stream import and export below use polars-arrow's own C interface.

use std::ffi::CStr;
use std::path::PathBuf;
use std::sync::Arc;

use polars::prelude::*;
use polars_arrow::array::{Array, StructArray};
use polars_arrow::datatypes::{ArrowDataType, Field as ArrowField};
use polars_arrow::ffi::{ArrowArrayStream, ArrowArrayStreamReader, export_iterator};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};

use tpmap::ingest::{AreaCheck, Encoding, IngestOptions, Ingested, Mode, OneMeans, TableInput};
use tpmap::plan::{Allocation, PlanLine, PlanOptions, Subjects};
use tpmap::programs::Catalogue as RustCatalogue;
use tpmap::score::Welfare;
use tpmap::score::{Profiles, Spec, Unit};

mod link_steps;

/// The Python exception for a tpmap error: a class of `tpmap.errors` (which also subclasses the
/// built-in exception for what happened), with the redacted message and the error's fields.
fn err(e: tpmap::Error) -> PyErr {
    Python::attach(|py| {
        let build = || -> PyResult<PyErr> {
            use tpmap::Error as E;
            let errors = py.import("tpmap.errors")?;
            let message = e.to_string();
            let shown = |s: &str| tpmap::ids::redact_numbers(s).into_owned();
            let value = match &e {
                E::InvalidRow { file, row, line, column, .. } => {
                    errors.getattr("InvalidRowError")?.call1((message, shown(file), *row, *line, shown(column)))?
                }
                E::Format { file, .. } => errors.getattr("FormatError")?.call1((message, shown(file)))?,
                E::Limit { file, .. } => errors.getattr("LimitError")?.call1((message, shown(file)))?,
                E::Rule { column, .. } => errors.getattr("RuleError")?.call1((message, *column))?,
                E::Parse(_) | E::Config(_) => errors.getattr("ConfigError")?.call1((message,))?,
                E::Io { path, source } => {
                    let class = if source.kind() == std::io::ErrorKind::NotFound {
                        "TpmapFileNotFoundError"
                    } else {
                        "TpmapOSError"
                    };
                    errors.getattr(class)?.call1((
                        message,
                        shown(&path.display().to_string()),
                        source.raw_os_error(),
                    ))?
                }
                _ => errors.getattr("TpmapError")?.call1((message,))?,
            };
            Ok(PyErr::from_value(value))
        };
        build().unwrap_or_else(|e| e)
    })
}

fn perr(e: PolarsError) -> PyErr {
    err(tpmap::Error::Polars(e))
}

/// An option's value by its core type's `FromStr` (the text forms live in the library).
fn opt<T: std::str::FromStr<Err = tpmap::Error>>(v: &str) -> PyResult<T> {
    v.parse().map_err(err)
}

fn bad(msg: impl Into<String>) -> PyErr {
    pyo3::exceptions::PyValueError::new_err(msg.into())
}

const STREAM: &CStr = c"arrow_array_stream";

/// A table exported through the Arrow C stream interface (`__arrow_c_stream__`).
#[pyclass(module = "tpmap._tpmap", frozen)]
struct Table {
    df: DataFrame,
}

#[pymethods]
impl Table {
    /// Exports the table as an Arrow C stream of struct arrays (the PyCapsule interface).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema; // the schema is the table's own
        let stream = export_stream(&self.df);
        PyCapsule::new_with_value(py, stream, STREAM)
    }

    /// Rows.
    #[getter]
    fn num_rows(&self) -> usize {
        self.df.height()
    }

    /// Column names.
    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.df.get_column_names().iter().map(|s| s.to_string()).collect()
    }
}

fn export_stream(df: &DataFrame) -> ArrowArrayStream {
    let mut df = df.clone();
    df.rechunk_mut();
    let fields: Vec<ArrowField> = df.columns().iter().map(|c| c.field().to_arrow(CompatLevel::newest())).collect();
    let dtype = ArrowDataType::Struct(fields);
    let batches: Vec<PolarsResult<Box<dyn Array>>> = df
        .iter_chunks(CompatLevel::newest(), false)
        .map(|b| {
            let len = b.height();
            Ok(StructArray::new(dtype.clone(), len, b.into_arrays(), None).boxed())
        })
        .collect();
    export_iterator(Box::new(batches.into_iter()), ArrowField::new("".into(), dtype.clone(), false))
}

/// Reads any object with `__arrow_c_stream__` (polars, pyarrow, pandas ≥ 2.2, ...) into a frame.
fn import_frame(obj: &Bound<'_, PyAny>) -> PyResult<DataFrame> {
    if !obj.hasattr("__arrow_c_stream__")? {
        return Err(bad(format!(
            "expected a table with __arrow_c_stream__ (polars, pyarrow or pandas), not {}",
            obj.get_type().name()?
        )));
    }
    let capsule = obj.call_method0("__arrow_c_stream__")?.cast_into::<PyCapsule>()?;
    let ptr = capsule.pointer_checked(Some(STREAM))?.cast::<ArrowArrayStream>();
    // Take the stream out of the capsule and leave a released one behind, so that the capsule's
    // destructor does not release it a second time.
    let stream = unsafe { std::ptr::replace(ptr.as_ptr(), ArrowArrayStream::empty()) };
    let mut reader = unsafe { ArrowArrayStreamReader::try_new(Box::new(stream)) }.map_err(perr)?;
    if !matches!(reader.field().dtype(), ArrowDataType::Struct(_)) {
        return Err(bad("the Arrow stream does not hold a table (struct arrays)"));
    }
    let mut out: Option<DataFrame> = None;
    while let Some(array) = unsafe { reader.next() } {
        let array = array.map_err(perr)?;
        let s = array
            .as_any()
            .downcast_ref::<StructArray>()
            .ok_or_else(|| bad("the Arrow stream does not hold struct arrays"))?
            .clone();
        let df = DataFrame::try_from(s).map_err(perr)?;
        match &mut out {
            None => out = Some(df),
            Some(acc) => {
                acc.vstack_mut(&df).map_err(perr)?;
            }
        }
    }
    let mut df = match out {
        Some(df) => df,
        None => {
            let ArrowDataType::Struct(fields) = reader.field().dtype() else { unreachable!("checked above") };
            let cols = fields
                .iter()
                .map(|f| Series::new_empty(f.name.clone(), &DataType::from_arrow_field(f)).into_column())
                .collect();
            DataFrame::new(0, cols).map_err(perr)?
        }
    };
    df.rechunk_mut();
    Ok(df)
}

/// A polars DataFrame (Python) from a Rust frame, through the PyCapsule interface.
fn to_polars<'py>(py: Python<'py>, df: DataFrame) -> PyResult<Bound<'py, PyAny>> {
    let table = Bound::new(py, Table { df })?;
    py.import("polars")?.getattr("DataFrame")?.call1((table,))
}

/// A Python object (dict, list, ...) from anything serde can write.
fn to_py<'py>(py: Python<'py>, v: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(v).map_err(|e| err(tpmap::Error::Json(e)))?;
    py.import("json")?.call_method1("loads", (text,))
}

fn edition_of(edition: &str) -> PyResult<tpmap::indicators::Edition> {
    tpmap::indicators::Edition::from_id_or_file(edition).map_err(err)
}

/// An accepted extract with its ingest report and rejected rows.
#[pyclass(module = "tpmap._tpmap", frozen)]
struct Extract {
    inner: Arc<Ingested>,
}

#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (households, persons, *, strict=false, encoding="auto", edition="bmn-2560", allow_new_villages=false, one_means_pass=false, survey_year=None, sheet=None, earlier_citizen_ids=None))]
fn read_extract(
    py: Python<'_>,
    households: &Bound<'_, PyAny>,
    persons: &Bound<'_, PyAny>,
    strict: bool,
    encoding: &str,
    edition: &str,
    allow_new_villages: bool,
    one_means_pass: bool,
    survey_year: Option<u16>,
    sheet: Option<String>,
    earlier_citizen_ids: Option<Vec<u64>>,
) -> PyResult<Extract> {
    let opts = IngestOptions {
        earlier_citizen_ids: earlier_citizen_ids.unwrap_or_default().into(),
        mode: if strict { Mode::Strict } else { Mode::Lenient },
        encoding: opt::<Encoding>(encoding)?,
        edition: Arc::new(edition_of(edition)?),
        area_check: if allow_new_villages { AreaCheck::Tambon } else { AreaCheck::Village },
        one_means: if one_means_pass { OneMeans::Pass } else { OneMeans::Fail },
        default_survey_year: survey_year,
        sheet,
        ..IngestOptions::default()
    };
    // A path (str or os.PathLike) or a table.
    enum In {
        Path(PathBuf),
        Frame(DataFrame),
    }
    let take = |o: &Bound<'_, PyAny>| -> PyResult<In> {
        if o.hasattr("__arrow_c_stream__")? { Ok(In::Frame(import_frame(o)?)) } else { Ok(In::Path(o.extract()?)) }
    };
    let (h, p) = (take(households)?, take(persons)?);
    fn input<'a>(x: &'a In, name: &'static str) -> TableInput<'a> {
        match x {
            In::Path(p) => TableInput::File(p.as_path()),
            In::Frame(df) => TableInput::Frame(df, name),
        }
    }
    let got = py
        .detach(|| tpmap::ingest::ingest_tables(input(&h, "households frame"), input(&p, "persons frame"), &opts))
        .map_err(err)?;
    Ok(Extract { inner: Arc::new(got) })
}

/// `{"year", "mask", "common": {level: frame}, "poor": {level: frame}}` of TPMAP's tables.
fn published_to_py<'py>(py: Python<'py>, p: &tpmap::published::Published) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("year", &p.year)?;
    d.set_item("mask", &p.mask)?;
    for (key, tables) in [("common", &p.common), ("poor", &p.poor)] {
        let by_level = PyDict::new(py);
        for (level, t) in tables {
            by_level.set_item(level.name(), to_polars(py, t.to_frame().map_err(err)?)?)?;
        }
        d.set_item(key, by_level)?;
    }
    Ok(d)
}

/// TPMAP's public tables at every level from their village rows (frames of `area` and TPMAP's
/// columns, as `Scores.tpmap_tables()["common"]["village"]` and `["poor"]["village"]` give
/// them, possibly summed over parts of an extract): counts are summed up the levels and the
/// rates derived again, as `tpmap run` does. `year` is the two-digit BE year (`"61"`).
#[pyfunction]
#[pyo3(signature = (common, poor, *, year, mask))]
fn roll_up_tables<'py>(
    py: Python<'py>,
    common: &Bound<'py, PyAny>,
    poor: &Bound<'py, PyAny>,
    year: String,
    mask: String,
) -> PyResult<Bound<'py, PyDict>> {
    let (c, q) = (import_frame(common)?, import_frame(poor)?);
    let mask: tpmap::score::DimensionMask = opt(&mask)?;
    if year.len() != 2 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(tpmap::Error::Config(format!("year must be two digits (\"61\"), not {year:?}"))));
    }
    let names = |df: &DataFrame| -> Vec<String> {
        df.get_column_names().iter().filter(|n| n.as_str() != "area").map(|n| n.to_string()).collect()
    };
    let village = tpmap::published::TableLevel::Village;
    let p = tpmap::published::Published {
        year,
        mask: mask.to_string(),
        common: [(village, tpmap::published::Table::from_frame(&c, &names(&c), "common").map_err(err)?)].into(),
        poor: [(village, tpmap::published::Table::from_frame(&q, &names(&q), "poor").map_err(err)?)].into(),
    };
    published_to_py(py, &p.roll_up())
}

/// The column `read_extract` takes the household key from, among `columns` (a households
/// table's, or with `persons=True` a persons table's), or `None`: what `tpmap.spark` groups rows
/// by, so that the column aliases are tpmap's own.
#[pyfunction]
#[pyo3(signature = (columns, *, persons=false, edition="bmn-2560"))]
fn key_column(columns: Vec<String>, persons: bool, edition: &str) -> PyResult<Option<String>> {
    use tpmap::ingest::columns::{HouseholdField, PersonField, map_households, map_persons};
    let edition = edition_of(edition)?;
    let at = if persons {
        map_persons(&columns, &edition).ok().and_then(|m| m.get(PersonField::HouseholdId))
    } else {
        map_households(&columns, &edition).ok().and_then(|m| m.get(HouseholdField::HouseholdId))
    };
    Ok(at.and_then(|i| columns.get(i).cloned()))
}

#[pymethods]
impl Extract {
    /// Accepted households: one row per household, indicator statuses as text.
    fn households<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let x = &self.inner.extract;
        to_polars(py, tpmap::frame::households_frame(&x.households, &x.edition).map_err(err)?)
    }

    /// Accepted persons, with their household id.
    fn persons<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let x = &self.inner.extract;
        to_polars(py, tpmap::frame::persons_frame(&x.persons, &x.households.id, &x.edition).map_err(err)?)
    }

    /// Rejected household rows: row number, line, column and reasons (no cell values: they may
    /// hold citizen IDs).
    fn rejected_households<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_polars(py, rejects_frame(&self.inner.household_rejects)?)
    }

    /// Rejected person rows (as [`rejected_households`]).
    /// Per accepted person with a citizen ID: the ID (`citizen_id`, UInt64: the raw ID, keep it
    /// out of logs) and the person's data row (`row`, 1-based): what a run split into parts
    /// checks duplicates across the parts with (`tpmap.spark`).
    fn citizen_id_rows<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let p = &self.inner.extract.persons;
        let rows = |i: usize| p.source_row.get(i).copied();
        let (ids, at): (Vec<u64>, Vec<u64>) =
            p.citizen_id.iter().enumerate().filter_map(|(i, c)| Some((c.as_ref()?.as_u64(), rows(i)?))).unzip();
        let df = DataFrame::new(ids.len(), vec![Column::new("citizen_id".into(), ids), Column::new("row".into(), at)])
            .map_err(perr)?;
        to_polars(py, df)
    }

    fn rejected_persons<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_polars(py, rejects_frame(&self.inner.person_rejects)?)
    }

    /// The ingest report: rows read, accepted and rejected per table, reasons, notes.
    #[getter]
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.report)
    }

    /// Counts of households, persons, welfare card, per province and per indicator.
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &tpmap::summary::Summary::of(&self.inner.extract))
    }

    /// The persons as link records (`tpmap.link`'s record columns; `record_id` is the household
    /// ID and member position) in extract order, with each one's household index (`household`),
    /// position among its members (`member`) and data row (`row`, 1-based; null for persons made
    /// in memory): what `tpmap.spark` links with a welfare registry. Holds citizen IDs and names.
    fn link_records<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let x = &self.inner.extract;
        let mut df = tpmap::link::records::extract_frame(x).map_err(err)?;
        let rows: Vec<Option<u64>> = (0..x.persons.len()).map(|i| x.persons.source_row.get(i).copied()).collect();
        df.with_column(Column::new("row".into(), rows)).map_err(perr)?;
        to_polars(py, df)
    }

    /// A copy of this extract whose persons' welfare flags are `registered` and `validated` (one
    /// per person, in extract order), as `link_welfare` sets them from a registry.
    fn with_welfare(&self, registered: Vec<bool>, validated: Vec<bool>) -> PyResult<Extract> {
        let n = self.inner.extract.persons.len();
        if registered.len() != n || validated.len() != n {
            return Err(bad(format!("give one flag per person ({n})")));
        }
        let mut got = (*self.inner).clone();
        let p = &mut got.extract.persons;
        for (i, (r, v)) in registered.into_iter().zip(validated).enumerate() {
            p.welfare_registered[i] = Some(r);
            p.welfare_validated[i] = Some(v);
        }
        Ok(Extract { inner: Arc::new(got) })
    }

    /// A copy of this extract whose persons' welfare flags come from linking with a welfare-card
    /// registry (CSV of person records), and what the linkage found.
    fn link_welfare<'py>(&self, py: Python<'py>, registry: PathBuf) -> PyResult<(Extract, Bound<'py, PyAny>)> {
        let mut got = (*self.inner).clone();
        let rep = py
            .detach(|| tpmap::link::mark_welfare(&mut got.extract, &registry, &tpmap::link::LinkOptions::default()))
            .map_err(err)?;
        Ok((Extract { inner: Arc::new(got) }, to_py(py, &rep)?))
    }

    /// Scores every household by TPMAP's rule (poor = deprived in any indicator of the dimensions
    /// switched on by `mask`: health, living, education, income, access).
    #[pyo3(signature = (*, mask="11111", welfare="validated", unit="people", na="not-deprived", missing="drop"))]
    fn score(
        &self,
        py: Python<'_>,
        mask: &str,
        welfare: &str,
        unit: &str,
        na: &str,
        missing: &str,
    ) -> PyResult<Scores> {
        let x = &self.inner.extract;
        let mut spec = Spec::tpmap(&x.edition, opt(mask)?).map_err(err)?;
        spec.na = opt(na)?;
        spec.missing = opt(missing)?;
        let (unit, welfare): (Unit, Welfare) = (opt(unit)?, opt(welfare)?);
        let (profiles, scores) = py
            .detach(|| {
                let profiles = Profiles::of_households(x, unit);
                tpmap::score::score(&profiles, &spec).map(|s| (profiles, s))
            })
            .map_err(err)?;
        Ok(Scores { inner: Arc::new(Scored { x: self.inner.clone(), unit, spec, profiles, scores, welfare }) })
    }

    fn __repr__(&self) -> String {
        let r = &self.inner.report;
        format!(
            "Extract(households: {} accepted of {}, persons: {} accepted of {})",
            r.households.accepted, r.households.input_rows, r.persons.accepted, r.persons.input_rows
        )
    }
}

fn rejects_frame(rows: &[tpmap::ingest::Rejection]) -> PyResult<DataFrame> {
    let row: Vec<u64> = rows.iter().map(|r| r.row).collect();
    let line: Vec<Option<u64>> = rows.iter().map(|r| r.line).collect();
    let reasons: Vec<String> = rows.iter().map(|r| r.reasons_text()).collect();
    DataFrame::new(
        rows.len(),
        vec![Column::new("row".into(), row), Column::new("line".into(), line), Column::new("reasons".into(), reasons)],
    )
    .map_err(perr)
}

struct Scored {
    x: Arc<Ingested>,
    unit: Unit,
    spec: Spec,
    profiles: Profiles,
    scores: tpmap::score::Scores,
    welfare: Welfare,
}

impl Scored {
    fn subjects(&self) -> PyResult<Subjects<'_>> {
        Subjects::new(&self.x.extract, &self.spec, &self.profiles, &self.scores, self.welfare).map_err(err)
    }
}

/// Households scored by TPMAP's rule.
#[pyclass(module = "tpmap._tpmap", frozen)]
struct Scores {
    inner: Arc<Scored>,
}

#[pymethods]
impl Scores {
    /// One row per household: score (also exact), poor, target-poor members, deprived dimensions.
    fn households<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = &self.inner;
        let target = tpmap::score::target_weights(&s.x.extract, Unit::People, s.welfare);
        to_polars(
            py,
            tpmap::frame::household_scores_frame(&s.x.extract.households, &s.spec, &s.scores, &target).map_err(err)?,
        )
    }

    /// Area measures at every level (country, province, amphoe, tambon, village): H, A, M0 (also
    /// exact), headcount ratios, contributions, target poor and standard errors.
    #[pyo3(signature = (*, bootstrap=0, seed=1))]
    fn measures<'py>(&self, py: Python<'py>, bootstrap: usize, seed: u64) -> PyResult<Bound<'py, PyAny>> {
        let s = &self.inner;
        let m = py
            .detach(|| {
                let x = &s.x.extract;
                let h = tpmap::aggregate::Hierarchy::tpmap(&x.households.village);
                let o = tpmap::aggregate::AggregateOptions::tpmap(x, s.unit, s.welfare, (bootstrap, seed));
                tpmap::aggregate::measures(&s.profiles, &s.spec, &s.scores, &h, &o)?.to_frame()
            })
            .map_err(err)?;
        to_polars(py, m)
    }

    /// Writes the partial result of these households (every village's sums; `partial.json` and
    /// `leaves.parquet`, docs/partial.md) into the folder `out`: `merge(parts, tpmap_areas=True)`
    /// over the parts of an extract gives what `measures()` gives over the whole, bit for bit.
    ///
    /// With `bootstrap` replicates (drawn per household, from its ID and `seed`) the partial is
    /// format version 2 and the merge's bootstrap standard errors are `measures(bootstrap=,
    /// seed=)`'s.
    #[pyo3(signature = (out, *, bootstrap=0, seed=1))]
    fn write_partial(&self, py: Python<'_>, out: PathBuf, bootstrap: usize, seed: u64) -> PyResult<()> {
        let s = &self.inner;
        py.detach(|| {
            let x = &s.x.extract;
            let h = tpmap::aggregate::Hierarchy::tpmap(&x.households.village);
            let o = tpmap::aggregate::AggregateOptions::tpmap(x, s.unit, s.welfare, (bootstrap, seed));
            tpmap::partial::Partial::of(&s.profiles, &s.spec, &s.scores, &h, &o)?.write(&out)
        })
        .map_err(err)
    }

    /// TPMAP's public tables (`tpmap run`'s `tpmap/` folder) as frames: `{"year", "mask",
    /// "common": {level: frame}, "poor": {level: frame}}`, levels `country` to `village`, each frame
    /// `area` and TPMAP's columns.
    #[pyo3(signature = (*, year=2561))]
    fn tpmap_tables<'py>(&self, py: Python<'py>, year: u16) -> PyResult<Bound<'py, PyDict>> {
        let s = &self.inner;
        let p = py
            .detach(|| {
                tpmap::published::tables_from_scores(&s.x.extract, year, &s.spec, &s.profiles, &s.scores, s.welfare)
            })
            .map_err(err)?;
        published_to_py(py, &p)
    }

    /// The household deprivation matrix (0/1 per indicator, household size), input for `mpi`.
    fn deprivations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = &self.inner;
        to_polars(
            py,
            tpmap::frame::deprivation_matrix_frame(&s.x.extract.households, &s.spec, &s.profiles).map_err(err)?,
        )
    }

    /// The scoring rule as `dimension, indicator, weight` rows (indicator = column of
    /// `deprivations()`, weight an exact fraction): the spec for `mpi`.
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let sp = &self.inner.spec;
        let dims: Vec<&str> = sp.items.iter().map(|i| sp.dimensions[i.dimension].as_str()).collect();
        let inds: Vec<String> = sp.items.iter().map(|i| tpmap::frame::matrix_column(&i.label)).collect();
        let weights: Vec<String> = sp.items.iter().map(|i| i.weight.to_string()).collect();
        let df = DataFrame::new(
            dims.len(),
            vec![
                Column::new("dimension".into(), dims),
                Column::new("indicator".into(), inds),
                Column::new("weight".into(), weights),
            ],
        )
        .map_err(perr)?;
        to_polars(py, df)
    }

    /// Plans assistance: matches the households to a program catalogue by rank-and-fill.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (catalogue, *, served=None, served_list=None, population="target", date=None, key=None))]
    fn plan(
        &self,
        py: Python<'_>,
        catalogue: &Catalogue,
        served: Option<PathBuf>,
        served_list: Option<PathBuf>,
        population: &str,
        date: Option<&str>,
        key: Option<Vec<u8>>,
    ) -> PyResult<Plan> {
        let s = self.inner.clone();
        let c = catalogue.inner.clone();
        let date = date.map(|d| tpmap::pipeline::parse_plan_date(d).map_err(|e| bad(e.to_string()))).transpose()?;
        let opts = PlanOptions {
            population: opt(population)?,
            date,
            key: match key {
                Some(k) => tpmap::ids::PseudonymKey::from_bytes(&k).map_err(|e| bad(e.to_string()))?,
                None => tpmap::ids::PseudonymKey::resolve(None).map_err(err)?,
            },
            max_decisions: None,
        };
        if let Some(w) = opts.key.warning() {
            PyErr::warn(
                py,
                &py.get_type::<pyo3::exceptions::PyUserWarning>(),
                &std::ffi::CString::new(w).unwrap_or_default(),
                1,
            )?;
        }
        let x = &s.x.extract;
        let (done, _) =
            py.detach(|| tpmap::plan::served::gather(x, &c, served.as_deref(), served_list.as_deref())).map_err(err)?;
        let subjects = s.subjects()?;
        let (alloc, lines) = py
            .detach(|| {
                let a = tpmap::plan::allocate(&subjects, &c, &done, &opts)?;
                let l = tpmap::plan::household_plan(&subjects, &c, &a);
                Ok::<_, tpmap::Error>((a, l))
            })
            .map_err(err)?;
        drop(subjects);
        Ok(Plan { s, c, alloc, lines, key: opts.key })
    }

    fn __repr__(&self) -> String {
        let poor = self.inner.scores.poor.iter().filter(|&&p| p).count();
        format!("Scores({} households, {poor} poor)", self.inner.x.extract.households.len())
    }
}

/// A program catalogue (TOML; see docs/programs.md in the repository).
#[pyclass(module = "tpmap._tpmap", frozen)]
struct Catalogue {
    inner: Arc<RustCatalogue>,
}

#[pymethods]
impl Catalogue {
    /// Loads and checks a catalogue against an indicator edition.
    #[new]
    #[pyo3(signature = (path, *, edition="bmn-2560"))]
    fn new(path: PathBuf, edition: &str) -> PyResult<Catalogue> {
        let e = edition_of(edition)?;
        Ok(Catalogue { inner: Arc::new(RustCatalogue::load(&path, &e).map_err(err)?) })
    }

    /// Catalogue id.
    #[getter]
    fn id(&self) -> String {
        self.inner.id.clone()
    }

    /// Version.
    #[getter]
    fn version(&self) -> String {
        self.inner.version.clone()
    }

    /// Whether its programs are invented (ILLUSTRATIVE).
    #[getter]
    fn illustrative(&self) -> bool {
        self.inner.illustrative
    }

    /// Program ids in catalogue order.
    #[getter]
    fn programs(&self) -> Vec<String> {
        self.inner.programs.iter().map(|p| p.id.clone()).collect()
    }

    /// The eligibility rule of a program, in its canonical text form.
    fn rule(&self, program: &str) -> PyResult<String> {
        let i = self.inner.program(program).ok_or_else(|| bad(format!("no program '{program}'")))?;
        Ok(self.inner.programs[i].rule.to_string())
    }

    fn __repr__(&self) -> String {
        format!("Catalogue({} v{}, {} programs)", self.inner.id, self.inner.version, self.inner.programs.len())
    }
}

/// A plan: households matched to programs, with gaps and reasons.
#[pyclass(module = "tpmap._tpmap", frozen)]
struct Plan {
    s: Arc<Scored>,
    c: Arc<RustCatalogue>,
    alloc: Allocation,
    lines: Vec<PlanLine>,
    key: tpmap::ids::PseudonymKey,
}

#[pymethods]
impl Plan {
    /// One row per deprived indicator of each household: programs assigned, or the gap and why.
    #[pyo3(signature = (*, reveal_ids=false))]
    fn household_plan<'py>(&self, py: Python<'py>, reveal_ids: bool) -> PyResult<Bound<'py, PyAny>> {
        let s = self.s.subjects()?;
        let ps = self.key.pseudonymizer();
        to_polars(py, tpmap::report::household_plan_frame(&s, &self.c, &self.lines, &ps, reveal_ids).map_err(err)?)
    }

    /// Per program: eligible, selected, declined by reason, places, budget.
    fn programs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_polars(py, tpmap::report::programs_frame(&self.c, &self.alloc).map_err(err)?)
    }

    /// Eligible units left out, with the reason.
    #[pyo3(signature = (*, reveal_ids=false))]
    fn declined<'py>(&self, py: Python<'py>, reveal_ids: bool) -> PyResult<Bound<'py, PyAny>> {
        let s = self.s.subjects()?;
        let ps = self.key.pseudonymizer();
        to_polars(py, tpmap::report::declined_frame(&s, &self.c, &self.alloc, &ps, reveal_ids).map_err(err)?)
    }

    /// The provincial report at `level` (`country`, `province` or `amphoe`); counts below
    /// `suppress` are hidden as in the publication files.
    #[pyo3(signature = (level="province", *, suppress=None))]
    fn report<'py>(&self, py: Python<'py>, level: &str, suppress: Option<u64>) -> PyResult<Bound<'py, PyAny>> {
        if !["country", "province", "amphoe"].contains(&level) {
            return Err(bad(format!("level must be 'country', 'province' or 'amphoe', not '{level}'")));
        }
        let s = self.s.subjects()?;
        let lines = tpmap::report::provincial_report(&s, &self.c, &self.alloc, &self.lines);
        to_polars(py, tpmap::report::report_frame(&lines, level, suppress).map_err(err)?)
    }

    /// Work lists per agency id (pseudonymised references unless `reveal_ids`).
    #[pyo3(signature = (*, reveal_ids=false))]
    fn worklists<'py>(&self, py: Python<'py>, reveal_ids: bool) -> PyResult<Bound<'py, PyDict>> {
        let s = self.s.subjects()?;
        let ps = self.key.pseudonymizer();
        let d = PyDict::new(py);
        for (agency, df) in tpmap::report::worklists(&s, &self.c, &self.alloc, &ps, reveal_ids).map_err(err)? {
            d.set_item(agency, to_polars(py, df)?)?;
        }
        Ok(d)
    }

    /// Totals: households, deprivations, covered, gaps, places, budget, by dimension and agency.
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.s.subjects()?;
        to_py(py, &tpmap::report::plan_summary(&s, &self.c, &self.alloc, &self.lines))
    }

    /// Why a household is or is not eligible for a program: the outcome (`pass`, `fail`,
    /// `unknown`) and every condition with the facts behind it.
    #[pyo3(signature = (household_id, program))]
    fn explain<'py>(&self, py: Python<'py>, household_id: &str, program: &str) -> PyResult<Bound<'py, PyAny>> {
        let s = self.s.subjects()?;
        let x = &self.s.x.extract;
        let wanted: tpmap::ids::HouseholdId =
            household_id.parse().map_err(|_| bad(format!("'{household_id}' is not a household id")))?;
        let h = x
            .households
            .id
            .iter()
            .position(|id| *id == wanted)
            .ok_or_else(|| bad(format!("no household '{household_id}' in the extract")))?;
        let p = self.c.program(program).ok_or_else(|| bad(format!("no program '{program}' in the catalogue")))?;
        let (outcome, reasons) = tpmap::plan::explain(&s, &self.c, p, h, None);
        let d = PyDict::new(py);
        d.set_item("outcome", format!("{outcome:?}").to_lowercase())?;
        d.set_item("reasons", reasons.iter().map(|r| r.to_string()).collect::<Vec<_>>())?;
        Ok(d.into_any())
    }

    /// Writes household_plan, programs, declined, work lists and the provincial report to `dir`.
    #[pyo3(signature = (dir, *, suppress=5, reveal_ids=false))]
    fn write<'py>(
        &self,
        py: Python<'py>,
        dir: PathBuf,
        suppress: u64,
        reveal_ids: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let s = self.s.subjects()?;
        let ps = self.key.pseudonymizer();
        let w = tpmap::report::WriteOptions { suppress, reveal_ids, key_warning: self.key.warning() };
        let sum = tpmap::report::write_plan(&dir, &s, &self.c, &self.alloc, &self.lines, &ps, &w).map_err(err)?;
        to_py(py, &sum)
    }

    fn __repr__(&self) -> String {
        format!("Plan({} places, {} deprivation lines)", self.alloc.assignments.len(), self.lines.len())
    }
}

/// Spec rows `(dimension, indicator column, weight)`, as `tpmap::mpi::measure` takes them.
type SpecRows = Vec<(String, String, tpmap::rational::Rational)>;

/// The spec rows and options `mpi` and `mpi_changes` share, checked.
#[allow(clippy::too_many_arguments)]
fn mpi_inputs(
    spec: Vec<(String, String, String)>,
    k: &str,
    areas: Vec<String>,
    over: Vec<String>,
    weight: Option<String>,
    strata: Option<String>,
    psu: Option<String>,
    na: &str,
    missing: &str,
    bootstrap: usize,
    seed: u64,
) -> PyResult<(SpecRows, tpmap::mpi::MpiOptions)> {
    let rows = spec
        .into_iter()
        .map(|(d, i, w)| {
            w.parse::<tpmap::rational::Rational>()
                .map(|w| (d, i.clone(), w))
                .map_err(|e| bad(format!("weight of '{i}': {e}")))
        })
        .collect::<PyResult<Vec<_>>>()?;
    let design = match (strata, psu) {
        (Some(s), Some(p)) => Some((s, p)),
        (None, None) => None,
        _ => return Err(bad("strata and psu go together")),
    };
    let opts = tpmap::mpi::MpiOptions {
        k: opt(k)?,
        areas,
        over,
        weight,
        design,
        na: opt(na)?,
        missing: opt(missing)?,
        bootstrap: (bootstrap, seed),
        ..Default::default()
    };
    Ok((rows, opts))
}

/// Alkire–Foster measures at every level for your own deprivation matrix.
#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (data, spec, k, *, areas=Vec::new(), over=Vec::new(), weight=None, strata=None, psu=None, na="not-deprived", missing="drop", bootstrap=0, seed=1))]
fn mpi<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    spec: Vec<(String, String, String)>,
    k: &str,
    areas: Vec<String>,
    over: Vec<String>,
    weight: Option<String>,
    strata: Option<String>,
    psu: Option<String>,
    na: &str,
    missing: &str,
    bootstrap: usize,
    seed: u64,
) -> PyResult<Bound<'py, PyAny>> {
    let df = import_frame(data)?;
    let (rows, opts) = mpi_inputs(spec, k, areas, over, weight, strata, psu, na, missing, bootstrap, seed)?;
    let m = py
        .detach(|| tpmap::mpi::measure(TableInput::Frame(&df, "data"), rows, &opts).and_then(|(m, _)| m.to_frame()))
        .map_err(err)?;
    to_polars(py, m)
}

/// Writes the partial result of `data` (every area's sums; `partial.json` and `leaves.parquet`,
/// docs/partial.md) into the folder `out`, for [`merge`] to add up with other parts' exactly.
#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (data, spec, k, out, *, areas=Vec::new(), weight=None, na="not-deprived", missing="drop"))]
fn mpi_partial(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    spec: Vec<(String, String, String)>,
    k: &str,
    out: PathBuf,
    areas: Vec<String>,
    weight: Option<String>,
    na: &str,
    missing: &str,
) -> PyResult<()> {
    let df = import_frame(data)?;
    let (rows, opts) = mpi_inputs(spec, k, areas, Vec::new(), weight, None, None, na, missing, 0, 1)?;
    py.detach(|| tpmap::mpi::partial(TableInput::Frame(&df, "data"), rows, &opts).and_then(|p| p.write(&out)))
        .map_err(err)
}

/// The measures of the whole from partial-result folders (written by [`mpi_partial`] or
/// `tpmap mpi --partial`), as [`mpi`] returns them.
///
/// With `tpmap_areas=True` the leaves are TPMAP villages (parts written by
/// `Scores.write_partial`): the areas are TPMAP's hierarchy, labelled and ordered as
/// `Scores.measures()` labels and orders them.
#[pyfunction]
#[pyo3(signature = (parts, *, tpmap_areas=false))]
fn merge<'py>(py: Python<'py>, parts: Vec<PathBuf>, tpmap_areas: bool) -> PyResult<Bound<'py, PyAny>> {
    let m = py
        .detach(|| {
            let partials =
                parts.iter().map(|p| tpmap::partial::Partial::read(p)).collect::<Result<Vec<_>, tpmap::Error>>()?;
            if tpmap_areas { tpmap::partial::merge_tpmap(&partials) } else { tpmap::partial::merge(&partials) }?
                .to_frame()
        })
        .map_err(err)?;
    to_polars(py, m)
}

/// Changes of H, A, M0 and the censored headcounts per area between two rounds: `t0` and `t1`
/// tables, or `t0` holding both with a `round` column (and `t1=None`). With `unit_id` (a column
/// linking units across rounds) the standard errors are panel ones; otherwise the rounds are
/// independent samples.
#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (t0, t1, spec, k, *, years=None, round=None, unit_id=None, areas=Vec::new(), over=Vec::new(), weight=None, strata=None, psu=None, na="not-deprived", missing="drop", bootstrap=0, seed=1))]
fn mpi_changes<'py>(
    py: Python<'py>,
    t0: &Bound<'py, PyAny>,
    t1: Option<&Bound<'py, PyAny>>,
    spec: Vec<(String, String, String)>,
    k: &str,
    years: Option<f64>,
    round: Option<String>,
    unit_id: Option<String>,
    areas: Vec<String>,
    over: Vec<String>,
    weight: Option<String>,
    strata: Option<String>,
    psu: Option<String>,
    na: &str,
    missing: &str,
    bootstrap: usize,
    seed: u64,
) -> PyResult<Bound<'py, PyAny>> {
    let d0 = import_frame(t0)?;
    let d1 = t1.map(import_frame).transpose()?;
    let (rows, mut opts) = mpi_inputs(spec, k, areas, over, weight, strata, psu, na, missing, bootstrap, seed)?;
    opts.round = round;
    opts.unit_id = unit_id;
    let c = py
        .detach(|| {
            let then = d1.as_ref().map(|d| TableInput::Frame(d, "t1"));
            let r = tpmap::mpi::measure_changes(TableInput::Frame(&d0, "t0"), then, rows, &opts, years)?;
            tpmap::changes::to_frame(&r.changes)
        })
        .map_err(err)?;
    to_polars(py, c)
}

/// Records linked across registries.
#[pyclass(module = "tpmap._tpmap", frozen)]
struct Linked {
    records: tpmap::link::Records,
    linked: tpmap::link::Linked,
    task: tpmap::link::Task,
    threshold: f64,
}

/// Links person registries by citizen ID, Thai name, birth date and address. Each source is a
/// CSV file or a table (polars, pyarrow, pandas) with the registry columns (`record_id`,
/// `citizen_id`, `title`, `first_name`, `last_name`, `birth_date`, `sex`, `village_code`,
/// `house_no`); tables are named `names[i]`, else `frame<i>`. `max_memory` (bytes or `"4GiB"`):
/// the job stops with an error naming its phase before what it holds passes the budget.
#[pyfunction]
#[pyo3(signature = (sources, *, names=None, task="link", threshold=0.9, model=None, max_memory=None))]
fn link(
    py: Python<'_>,
    sources: Vec<Bound<'_, PyAny>>,
    names: Option<Vec<String>>,
    task: &str,
    threshold: f64,
    model: Option<String>,
    max_memory: Option<Bound<'_, PyAny>>,
) -> PyResult<Linked> {
    use tpmap::link::{LinkOptions, Records, Task};
    let task: Task = opt(task)?;
    let model = match model {
        Some(m) => Some(tpmap::link::Model::from_json(&m).map_err(err)?),
        None => None,
    };
    let opts = LinkOptions { task, threshold, model, max_memory: budget_of(max_memory)?, ..Default::default() };
    opts.validate().map_err(err)?;
    enum Src {
        File(PathBuf),
        Frame(String, DataFrame),
    }
    if names.as_ref().is_some_and(|n| n.len() != sources.len()) {
        return Err(bad("names must name every source"));
    }
    let mut inputs = Vec::with_capacity(sources.len());
    for (i, o) in sources.iter().enumerate() {
        let name = names.as_ref().map(|n| n[i].clone()).unwrap_or_else(|| format!("frame{i}"));
        inputs.push(if o.hasattr("__arrow_c_stream__")? {
            Src::Frame(name, import_frame(o)?)
        } else {
            Src::File(o.extract()?)
        });
    }
    let (records, linked) = py
        .detach(|| {
            let mut r = Records::default();
            for s in &inputs {
                match s {
                    Src::File(p) => r.push_csv(p)?,
                    Src::Frame(name, df) => r.push_frame(name, df)?,
                };
            }
            // No room for records that never came (counted against a budget).
            r.shrink_to_fit();
            let l = tpmap::link::run(&r, &opts)?;
            Ok::<_, tpmap::Error>((r, l))
        })
        .map_err(err)?;
    Ok(Linked { records, linked, task, threshold })
}

impl Linked {
    fn misses(&self, truth: &std::path::Path) -> PyResult<Vec<tpmap::link::misses::PairError>> {
        let t = tpmap::link::bench::read_truth(truth, &self.records).map_err(err)?;
        Ok(tpmap::link::misses::find(&self.records, &self.linked, &t, self.threshold, self.task))
    }
}

#[pymethods]
impl Linked {
    /// Scored candidate pairs at or above `min_probability` (and every deterministic one).
    #[pyo3(signature = (*, min_probability=0.01))]
    fn pairs<'py>(&self, py: Python<'py>, min_probability: f64) -> PyResult<Bound<'py, PyAny>> {
        let df = tpmap::link::output::pairs_frame(&self.records, &self.linked, self.threshold, min_probability)
            .map_err(err)?;
        to_polars(py, df)
    }

    /// Every record with its stable entity id (hex).
    fn entities<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_polars(py, tpmap::link::output::entities_frame(&self.records, &self.linked).map_err(err)?)
    }

    /// Why pair `index` (from `pairs()`) scored as it did: every comparison's level and Bayes
    /// factor, the prior, the total weight and the probability.
    fn explain<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyAny>> {
        let s = self.linked.scored.get(index).ok_or_else(|| bad(format!("no pair {index}")))?;
        let tf = self.linked.model.tf.then_some(&self.linked.tf);
        to_py(py, &self.linked.model.explain(&self.records, tf, s.a as usize, s.b as usize))
    }

    /// The trained model as JSON (pass it to `link(model=...)` to reuse it).
    fn model_json(&self) -> PyResult<String> {
        serde_json::to_string_pretty(&self.linked.model).map_err(|e| err(tpmap::Error::Json(e)))
    }

    /// Pairs completeness, reduction ratio, precision, recall, F1 (pairs and clusters) against a
    /// truth file (`source,record_id,person_id`).
    fn quality<'py>(&self, py: Python<'py>, truth: PathBuf) -> PyResult<Bound<'py, PyAny>> {
        let t = tpmap::link::bench::read_truth(&truth, &self.records).map_err(err)?;
        let l = &self.linked;
        let q =
            tpmap::link::model::evaluate(&self.records, self.task, &t, &l.pairs, &l.scored, self.threshold, &l.entity);
        to_py(py, &q)
    }

    /// Every missed true pair and false match against a truth file, with each field's comparison
    /// level (`kind`: not a candidate, below the threshold, kept apart, contradicted, false match).
    fn errors<'py>(&self, py: Python<'py>, truth: PathBuf) -> PyResult<Bound<'py, PyAny>> {
        let e = self.misses(&truth)?;
        to_polars(py, tpmap::link::misses::errors_frame(&self.records, &e).map_err(err)?)
    }

    /// The errors of `errors(truth)` grouped by kind and comparison pattern, commonest first.
    fn error_patterns<'py>(&self, py: Python<'py>, truth: PathBuf) -> PyResult<Bound<'py, PyAny>> {
        let e = self.misses(&truth)?;
        to_polars(py, tpmap::link::misses::patterns_frame(&e).map_err(err)?)
    }

    /// What looked implausible about the fitted model (empty when nothing did).
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.linked.warnings.clone()
    }

    /// Records read.
    #[getter]
    fn records(&self) -> usize {
        self.records.len()
    }

    /// Candidate pairs compared.
    #[getter]
    fn candidate_pairs(&self) -> usize {
        self.linked.candidates
    }

    /// Pairs accepted as matches.
    #[getter]
    fn matches(&self) -> usize {
        self.linked.matches(self.threshold).count()
    }

    fn __repr__(&self) -> String {
        format!(
            "Linked({} records, {} candidate pairs, {} matches)",
            self.records(),
            self.candidate_pairs(),
            self.matches()
        )
    }
}

/// Writes a SYNTHETIC labelled Thai linkage benchmark (`survey.csv`, `welfare.csv`,
/// `agency.csv` and `truth.csv`) for `households` households into `dir`; returns records per
/// source and people. `kind`: `"tpmap"` (one list of corruptions) or `"registries"` (the
/// independent specification of docs/linkage.md).
#[pyfunction]
#[pyo3(signature = (dir, *, households=1000, seed=1, kind="tpmap"))]
fn link_bench<'py>(
    py: Python<'py>,
    dir: PathBuf,
    households: u64,
    seed: u64,
    kind: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let files = match kind {
        "tpmap" => {
            let o = tpmap::link::bench::BenchOptions { households, seed, ..Default::default() };
            py.detach(|| tpmap::link::bench::write(&dir, &o)).map_err(err)?
        }
        "registries" => {
            let o = tpmap::link::registries::RegistriesOptions { households, seed };
            py.detach(|| tpmap::link::registries::write(&dir, &o)).map_err(err)?
        }
        other => return Err(bad(format!("kind must be \"tpmap\" or \"registries\", not {other:?}"))),
    };
    let d = PyDict::new(py);
    d.set_item("records", files.records.into_iter().collect::<std::collections::BTreeMap<_, _>>())?;
    d.set_item("people", files.people)?;
    Ok(d.into_any())
}

/// Links two registry CSV files with the first read a group of provinces at a time beside the
/// second held whole (`tpmap link --split`; docs/linkage.md, "In parts"): the files the whole
/// job writes — `pairs.csv`, `entities.csv`, `model.json`, `explanations.json` (the `explain`
/// pairs nearest the threshold) and `link.json` — written to `out`, holding only a part of the
/// first file's records (put the larger file first). Within `max_memory` (bytes or `"4GiB"`)
/// the parts are as large as the budget leaves room for; a job that cannot fit is refused with
/// an error naming what needs the memory, and nothing is written. A link task with the default
/// blocking rules or a `model` (JSON). Returns the content of `link.json`.
#[pyfunction]
#[pyo3(signature = (first, second, out, *, threshold=0.9, model=None, max_memory=None, explain=20))]
#[allow(clippy::too_many_arguments)] // Python keyword arguments, one parameter each.
fn link_files<'py>(
    py: Python<'py>,
    first: PathBuf,
    second: PathBuf,
    out: PathBuf,
    threshold: f64,
    model: Option<String>,
    max_memory: Option<Bound<'py, PyAny>>,
    explain: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let model = match model {
        Some(m) => Some(tpmap::link::Model::from_json(&m).map_err(err)?),
        None => None,
    };
    let opts = tpmap::link::LinkOptions { threshold, model, max_memory: budget_of(max_memory)?, ..Default::default() };
    let report = py
        .detach(|| {
            let stage = tpmap::output::Staging::new(&out)?;
            let report = tpmap::link::split::link_files(
                stage.path(),
                (&first, &second),
                &opts,
                explain,
                std::time::Instant::now(),
            )?;
            stage.commit()?;
            Ok::<_, tpmap::Error>(report)
        })
        .map_err(err)?;
    to_py(py, &report)
}

/// A memory budget as given: a number of bytes or a size such as `"4GiB"`.
fn budget_of(max_memory: Option<Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    Ok(match max_memory {
        None => None,
        Some(v) => Some(match v.extract::<u64>() {
            Ok(n) => n,
            Err(_) => tpmap::limits::parse_bytes(&v.extract::<String>()?).map_err(|m| err(tpmap::Error::Config(m)))?,
        }),
    })
}

/// The main job on a folder (`tpmap run`): ingest and validate, link with the folder's welfare
/// registry, score, measures at every level, TPMAP's tables, a plan against its catalogue and
/// the HTML report, all written to `out`. Returns the content of `report.json`.
///
/// `partition="province"` (or a `max_memory` budget such as `"4GiB"` or a number of bytes) reads
/// the extract a wave of provinces at a time with the same outputs (docs/partitioned.md; a plan
/// is made over the waves' poor households; a welfare registry or beneficiary list is linked
/// with every wave's persons; under a budget both a wave at a time). `"auto"` (the default) partitions a Parquet
/// extract of 10 M persons or more (a CSV persons file of 1.6 GB or more); earlier rounds are then
/// compared a wave of provinces at a time, within `max_memory` when given.
/// `earlier`: folders of earlier survey rounds, oldest first, compared with this one household
/// by household (`out/panel/`, the report's "Year over year", report.json's `panel`).
#[pyfunction]
#[pyo3(signature = (dir, out, *, partition = "auto", max_memory = None, earlier = Vec::new()))]
fn run<'py>(
    py: Python<'py>,
    dir: PathBuf,
    out: PathBuf,
    partition: &str,
    max_memory: Option<Bound<'py, PyAny>>,
    earlier: Vec<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let budget = budget_of(max_memory)?;
    if !matches!(partition, "auto" | "whole" | "province") {
        let m = format!("partition must be 'auto', 'whole' or 'province', not {partition:?}");
        return Err(err(tpmap::Error::Config(m)));
    }
    if partition == "whole" && budget.is_some() {
        return Err(err(tpmap::Error::Config(
            "max_memory needs a partitioned run: leave out partition='whole'".into(),
        )));
    }
    let report = py
        .detach(|| {
            let mut o = tpmap::pipeline::RunOptions::for_dir(&dir)?;
            if !earlier.is_empty() {
                o.earlier = Some(tpmap::pipeline::EarlierRounds { folders: earlier, options: Default::default() });
            }
            let partitioned = match partition {
                "province" => true,
                "auto" => budget.is_some() || tpmap::pipeline::partition_by_default(&o),
                _ => false,
            };
            if partitioned {
                tpmap::pipeline::run_partitioned(&o, budget, &out, &tpmap::pipeline::Silent).map(|d| d.report)
            } else {
                tpmap::pipeline::run(&o, &out, &tpmap::pipeline::Silent).map(|d| d.report)
            }
        })
        .map_err(err)?;
    to_py(py, &report)
}

/// Survey rounds read from their folders (oldest first), compared pair by pair and written to
/// `out`, like `tpmap panel R1 R2 ...`: large Parquet rounds are read a wave of provinces at a
/// time (`partition="auto"`; `"province"` always, `"whole"` never), keeping only what matching
/// needs — two national rounds in under 4 GiB, where `panel` needs both extracts in memory.
/// `max_memory` (bytes or `"4.5GiB"`): the comparison's estimate is checked before any round is
/// read, and the rounds are read in waves that fit (docs/panel.md, "Memory").
/// `served`: the earlier round's served list (two rounds; default its folder's `served.csv`).
/// Returns what was read and matched (each round's reading report, each pair's summary, country
/// and province flows and follow-up); the tables are the files in `out`.
#[pyfunction]
#[pyo3(signature = (rounds, out, *, served=None, mask="11111", welfare="validated", partition="auto", max_memory=None))]
#[allow(clippy::too_many_arguments)] // Python keyword arguments, one parameter each.
fn panel_rounds<'py>(
    py: Python<'py>,
    rounds: Vec<PathBuf>,
    out: PathBuf,
    served: Option<PathBuf>,
    mask: &str,
    welfare: &str,
    partition: &str,
    max_memory: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    use tpmap::panel::rounds::{Reading, RoundsOptions, write_rounds};
    let reading = match partition {
        "auto" => Reading::Auto,
        "whole" => Reading::Whole,
        "province" => Reading::Provinces,
        other => {
            let m = format!("partition must be 'auto', 'whole' or 'province', not {other:?}");
            return Err(err(tpmap::Error::Config(m)));
        }
    };
    let max_memory = budget_of(max_memory)?;
    if partition == "whole" && max_memory.is_some() {
        return Err(err(tpmap::Error::Config(
            "max_memory reads the rounds in waves: leave out partition='whole'".into(),
        )));
    }
    let o =
        RoundsOptions { served, mask: opt(mask)?, welfare: opt(welfare)?, reading, max_memory, ..Default::default() };
    let done = py
        .detach(|| {
            let stage = tpmap::output::Staging::new(&out)?;
            let done = write_rounds(&rounds, &o, stage.path(), None)?;
            stage.commit()?;
            Ok::<_, tpmap::Error>(done)
        })
        .map_err(err)?;
    to_py(py, &done)
}

/// Two survey rounds compared household by household (`tpmap panel`): `earlier` and `later` are
/// extracts from `read_extract`; `served` an optional served list of the earlier round (CSV
/// household_id,program,indicator). Returns a dict with `summary` (how households and people
/// were matched), `matches` (every household of both rounds), `transitions` (flows in and out of
/// poverty per area, dimension and indicator) and `effects` (the follow-up of each program) as
/// polars frames, and the `caveat`; with `out`, also writes the files of `tpmap panel`.
#[pyfunction]
#[pyo3(signature = (earlier, later, *, served=None, mask="11111", welfare="validated", edition_map=None, out=None))]
#[allow(clippy::too_many_arguments)]
fn panel<'py>(
    py: Python<'py>,
    earlier: &Extract,
    later: &Extract,
    served: Option<PathBuf>,
    mask: &str,
    welfare: &str,
    edition_map: Option<PathBuf>,
    out: Option<PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let (mask, welfare) = (opt(mask)?, opt(welfare)?);
    let (a, b) = (earlier.inner.clone(), later.inner.clone());
    let (summary, matches, transitions, effects) = py
        .detach(|| {
            let editions = match &edition_map {
                Some(f) => Some(tpmap::panel::editions::EditionMap::load(f, &a.extract.edition, &b.extract.edition)?),
                None => None,
            };
            let opts = tpmap::panel::PanelOptions { mask, welfare, editions };
            let p = tpmap::panel::Panel::build(&a.extract, &b.extract, &opts)?;
            let served = match &served {
                Some(f) => tpmap::panel::effects::read_served(f, &a.extract.edition)?,
                None => Vec::new(),
            };
            let (effects, unknown) = tpmap::panel::effects::effects(&p, &served);
            if let Some(dir) = &out {
                let mut notices = tpmap::pipeline::data_notices(std::path::Path::new(&a.report.households.file));
                notices.extend(tpmap::pipeline::data_notices(std::path::Path::new(&b.report.households.file)));
                notices.dedup();
                tpmap::panel::output::write(&p, &served, &effects, unknown, &notices, dir)?;
            }
            Ok::<_, tpmap::Error>((
                serde_json::to_value(&p.summary)?,
                tpmap::panel::output::matches_frame(&p, &served)?,
                tpmap::panel::output::transitions_frame(&p)?,
                tpmap::panel::output::effects_frame(&effects)?,
            ))
        })
        .map_err(err)?;
    let d = PyDict::new(py);
    d.set_item("summary", to_py(py, &summary)?)?;
    d.set_item("matches", to_polars(py, matches)?)?;
    d.set_item("transitions", to_polars(py, transitions)?)?;
    d.set_item("effects", to_polars(py, effects)?)?;
    d.set_item("caveat", tpmap::panel::output::CAVEAT)?;
    Ok(d)
}

/// Writes SYNTHETIC survey rounds of consecutive TPMAP `years` to `out/<year>/` (households,
/// persons, the round's served list) and `out/truth.json` (the follow-up effect put in), like
/// `tpmap synth --years`. Returns truth.json's content.
#[pyfunction]
#[pyo3(signature = (out, years, *, households=10_000, seed=2561, provinces=None, exit=0.35, served_effect=0.25, stationary=false))]
#[allow(clippy::too_many_arguments)]
fn synth_panel<'py>(
    py: Python<'py>,
    out: PathBuf,
    years: Vec<u16>,
    households: u64,
    seed: u64,
    provinces: Option<Vec<u8>>,
    exit: f64,
    served_effect: f64,
    stationary: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let dynamics =
        tpmap::panel::synth::Dynamics { exit, served_effect, follow_tpmap: !stationary, ..Default::default() };
    let opts = tpmap::panel::synth::PanelSynthOptions {
        households,
        seed,
        provinces: provinces.unwrap_or_default(),
        years,
        dynamics,
    };
    py.detach(|| tpmap::panel::synth::generate_into(&opts, &out)).map_err(err)?;
    let text = std::fs::read_to_string(out.join("truth.json")).map_err(|e| err(tpmap::Error::io(&out, e)))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| err(tpmap::Error::from(e)))?;
    to_py(py, &v)
}

/// How the extension was built: version, cargo profile, optimisation level, debug assertions.
#[pyfunction]
fn build_info<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("version", env!("CARGO_PKG_VERSION"))?;
    d.set_item("profile", env!("TPMAP_PROFILE"))?;
    d.set_item("opt_level", env!("TPMAP_OPT_LEVEL"))?;
    d.set_item("debug_assertions", cfg!(debug_assertions))?;
    Ok(d)
}

#[pymodule]
fn _tpmap(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Table>()?;
    m.add_class::<Extract>()?;
    m.add_class::<Scores>()?;
    m.add_class::<Catalogue>()?;
    m.add_class::<Plan>()?;
    m.add_class::<Linked>()?;
    m.add_function(wrap_pyfunction!(read_extract, m)?)?;
    m.add_function(wrap_pyfunction!(panel, m)?)?;
    m.add_function(wrap_pyfunction!(panel_rounds, m)?)?;
    m.add_function(wrap_pyfunction!(synth_panel, m)?)?;
    m.add_function(wrap_pyfunction!(mpi, m)?)?;
    m.add_function(wrap_pyfunction!(mpi_changes, m)?)?;
    m.add_function(wrap_pyfunction!(mpi_partial, m)?)?;
    m.add_function(wrap_pyfunction!(merge, m)?)?;
    m.add_function(wrap_pyfunction!(key_column, m)?)?;
    m.add_function(wrap_pyfunction!(roll_up_tables, m)?)?;
    m.add_function(wrap_pyfunction!(link, m)?)?;
    m.add_function(wrap_pyfunction!(link_files, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(link_bench, m)?)?;
    m.add_function(wrap_pyfunction!(build_info, m)?)?;
    link_steps::register(m)?;
    Ok(())
}
