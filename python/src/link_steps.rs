//! The steps of a distributed link job (`tpmap::link::steps`) for `tpmap.spark.link`: each takes
//! and returns tables, so that Spark's Arrow UDFs can call it on a batch. No logic of their own.

use polars::prelude::*;
use pyo3::prelude::*;

use tpmap::link::model::{self, Blocking, Model, Pattern, Scored, Task};
use tpmap::link::records::Records;
use tpmap::link::steps::{self, BlockRow, ClusterRecord};

use super::{bad, err, import_frame, opt, perr, to_polars};

/// A column as 64-bit integers (nulls kept).
fn ints(df: &DataFrame, name: &str) -> PyResult<Vec<Option<i64>>> {
    let c = df.column(name).map_err(perr)?.cast(&DataType::Int64).map_err(perr)?;
    Ok(c.i64().map_err(perr)?.iter().collect())
}

/// A column of whole numbers in `T` (no nulls).
fn whole<T: TryFrom<i64>>(df: &DataFrame, name: &str) -> PyResult<Vec<T>> {
    ints(df, name)?
        .into_iter()
        .map(|v| v.and_then(|v| T::try_from(v).ok()).ok_or_else(|| bad(format!("column {name}: a value out of range"))))
        .collect()
}

fn bools(df: &DataFrame, name: &str) -> PyResult<Vec<bool>> {
    let c = df.column(name).map_err(perr)?.cast(&DataType::Boolean).map_err(perr)?;
    Ok(c.bool().map_err(perr)?.iter().map(|b| b.unwrap_or(false)).collect())
}

fn texts(df: &DataFrame, name: &str) -> PyResult<Vec<String>> {
    let c = df.column(name).map_err(perr)?.cast(&DataType::String).map_err(perr)?;
    Ok(c.str().map_err(perr)?.iter().map(|s| s.unwrap_or("").to_string()).collect())
}

/// The bits of a u64 as an i64 (Spark has no unsigned types): a reinterpretation, not a cast.
fn signed(v: u64) -> i64 {
    i64::from_le_bytes(v.to_le_bytes())
}

fn unsigned(v: i64) -> u64 {
    u64::from_le_bytes(v.to_le_bytes())
}

fn patterns_of(df: &DataFrame) -> PyResult<Vec<Pattern>> {
    let cols: Vec<Vec<Option<i64>>> = (0..6).map(|k| ints(df, &format!("p{k}"))).collect::<PyResult<_>>()?;
    (0..df.height())
        .map(|i| {
            let mut p = [u8::MAX; 6];
            for (k, c) in cols.iter().enumerate() {
                p[k] = c[i].and_then(|v| u8::try_from(v).ok()).ok_or_else(|| bad("a pattern level out of range"))?;
            }
            Ok(p)
        })
        .collect()
}

fn model_of(json: &str) -> PyResult<Model> {
    Model::from_json(json).map_err(err)
}

/// The blocking of a saved model, else the default rules (as `tpmap.link` chooses them).
fn blocking_of(model: Option<&str>) -> PyResult<Blocking> {
    let b = match model {
        Some(m) => model_of(m)?.blocking,
        None => Blocking::default(),
    };
    b.validate().map_err(err)?;
    Ok(b)
}

/// Step 1: every record of `table` (a registry's columns, as `tpmap.link` reads them) with its
/// key (`record_id`, else `rows[i]`), normalised names (`first`, `last`, null when empty), valid
/// citizen ID (`citizen_id`, null when none), its yes/no flag (`flag`: a welfare registry's
/// `validated`, null when none), its entity id alone (`entity`, 16 hex digits) and
/// its blocking key under each rule (`k0`, `k1`, ..., null when none).
#[pyfunction]
#[pyo3(signature = (table, *, source, rows, model=None))]
pub fn link_record_keys<'py>(
    py: Python<'py>,
    table: &Bound<'py, PyAny>,
    source: String,
    rows: Vec<u64>,
    model: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let df = import_frame(table)?;
    let blocking = blocking_of(model.as_deref())?;
    let out = py
        .detach(|| {
            let mut r = Records::default();
            r.push_frame_rows(&source, &df, Some(&rows))?;
            let keys = steps::record_keys(&r, &blocking);
            let n = r.len();
            let name = |v: &str| (!v.is_empty()).then(|| v.to_string());
            let mut cols = vec![
                tpmap::link::output::key_column("key", n, r.key.iter()),
                Column::new("first".into(), (0..n).map(|i| name(r.first.get(i))).collect::<Vec<_>>()),
                Column::new("last".into(), (0..n).map(|i| name(r.last.get(i))).collect::<Vec<_>>()),
                Column::new(
                    "citizen_id".into(),
                    r.citizen_id.iter().map(|c| c.map(|c| signed(c.as_u64()))).collect::<Vec<_>>(),
                ),
                Column::new("flag".into(), r.flag.clone()),
                Column::new(
                    "entity".into(),
                    (0..n).map(|i| format!("{:016x}", model::entity_id(&source, &r.key.get(i)))).collect::<Vec<_>>(),
                ),
            ];
            for (k, ks) in keys.iter().enumerate() {
                cols.push(Column::new(format!("k{k}").into(), ks.iter().map(|v| v.map(signed)).collect::<Vec<_>>()));
            }
            Ok::<_, tpmap::Error>(DataFrame::new(n, cols)?)
        })
        .map_err(err)?;
    to_polars(py, out)
}

/// Step 2: the pairs of whole blocks under the blocking of `model` (else the default rules).
/// `table` has `rule`, `key`, `rec` (the record's index in the job) and `src` (its source) for
/// every record of each block it holds. Returns the pairs (`rule`, `a`, `b`) and the blocks
/// skipped for size per rule.
#[pyfunction]
#[pyo3(signature = (table, *, task, model=None))]
pub fn link_block_pairs<'py>(
    py: Python<'py>,
    table: &Bound<'py, PyAny>,
    task: &str,
    model: Option<String>,
) -> PyResult<(Bound<'py, PyAny>, Vec<usize>)> {
    let task: Task = opt(task)?;
    let blocking = blocking_of(model.as_deref())?;
    let (rules, max_block) = (blocking.rules.len(), blocking.max_block);
    let df = import_frame(table)?;
    let (rule, rec, src) = (whole::<u16>(&df, "rule")?, whole::<u32>(&df, "rec")?, whole::<u16>(&df, "src")?);
    let key = ints(&df, "key")?;
    let mut rows: Vec<BlockRow> = (0..df.height())
        .map(|i| {
            let key = key[i].map(unsigned).ok_or_else(|| bad("column key: a null"))?;
            Ok(BlockRow { rule: rule[i], key, record: rec[i], source: src[i] })
        })
        .collect::<PyResult<_>>()?;
    let bp = py.detach(|| steps::pairs_in_blocks(&mut rows, rules, task, max_block)).map_err(err)?;
    let df = DataFrame::new(
        bp.pairs.len(),
        vec![
            Column::new("rule".into(), bp.pairs.iter().map(|p| p.0).collect::<Vec<_>>()),
            Column::new("a".into(), bp.pairs.iter().map(|p| i64::from(p.1)).collect::<Vec<_>>()),
            Column::new("b".into(), bp.pairs.iter().map(|p| i64::from(p.2)).collect::<Vec<_>>()),
        ],
    )
    .map_err(perr)?;
    Ok((to_polars(py, df)?, bp.skipped))
}

/// Step 3: the comparison pattern (`p0` … `p5`, 255 = missing) of row i of `first` against row i
/// of `second` (both with a registry's columns).
#[pyfunction]
pub fn link_patterns<'py>(
    py: Python<'py>,
    first: &Bound<'py, PyAny>,
    second: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let (a, b) = (import_frame(first)?, import_frame(second)?);
    if a.height() != b.height() {
        return Err(bad("first and second must have as many rows"));
    }
    let pats = py
        .detach(|| {
            let mut r = Records::default();
            r.push_frame("first", &a)?;
            r.push_frame("second", &b)?;
            steps::aligned_patterns(&r)
        })
        .map_err(err)?;
    let cols = (0..6)
        .map(|k| Column::new(format!("p{k}").into(), pats.iter().map(|p| i16::from(p[k])).collect::<Vec<_>>()))
        .collect();
    to_polars(py, DataFrame::new(pats.len(), cols).map_err(perr)?)
}

/// Step 4a: the random record pairs u is estimated from (`a`, `b`), for sources of `sizes`
/// records in that order.
#[pyfunction]
#[pyo3(signature = (sizes, *, task))]
pub fn link_u_sample<'py>(py: Python<'py>, sizes: Vec<u64>, task: &str) -> PyResult<Bound<'py, PyAny>> {
    let task: Task = opt(task)?;
    let mut ends: Vec<usize> = Vec::with_capacity(sizes.len());
    let mut total: usize = 0;
    for s in &sizes {
        total = usize::try_from(*s).ok().and_then(|s| total.checked_add(s)).ok_or_else(|| bad("too many records"))?;
        ends.push(total);
    }
    let source = |i: usize| u16::try_from(ends.partition_point(|&e| e <= i)).unwrap_or(u16::MAX);
    let pairs = model::u_sample(total, source, task, &model::TrainOptions::default()).map_err(err)?;
    let df = DataFrame::new(
        pairs.len(),
        vec![
            Column::new("a".into(), pairs.iter().map(|p| i64::from(p.0)).collect::<Vec<_>>()),
            Column::new("b".into(), pairs.iter().map(|p| i64::from(p.1)).collect::<Vec<_>>()),
        ],
    )
    .map_err(perr)?;
    to_polars(py, df)
}

fn counts_of(df: &DataFrame) -> PyResult<Vec<(Pattern, f64)>> {
    let pats = patterns_of(df)?;
    let counts = whole::<u64>(df, "count")?;
    Ok(model::group_counts(pats.into_iter().zip(counts)))
}

/// Step 4b: the model (JSON, as `Linked.model_json()` writes it) and its warnings from pattern counts (`p0` … `p5`, `count`) of the
/// random pairs and of the candidate pairs of the default blocking, as `tpmap.link` trains it.
#[pyfunction]
pub fn link_train(random: &Bound<'_, PyAny>, candidates: &Bound<'_, PyAny>) -> PyResult<(String, Vec<String>)> {
    let (r, c) = (counts_of(&import_frame(random)?)?, counts_of(&import_frame(candidates)?)?);
    let m = model::train_grouped(&r, &c, &Blocking::default(), &model::TrainOptions::default());
    let warnings = model::plausibility(&m, &c);
    Ok((pretty(&m)?, warnings))
}

/// A model as `Linked.model_json()` writes it.
fn pretty(m: &Model) -> PyResult<String> {
    serde_json::to_string_pretty(m).map_err(|e| err(tpmap::Error::Json(e)))
}

/// Step 4b for a saved model: the model as `Linked.model_json()` writes it, and its warnings on
/// the candidates' pattern counts.
#[pyfunction]
pub fn link_model_warnings(model: &str, candidates: &Bound<'_, PyAny>) -> PyResult<(String, Vec<String>)> {
    let m = model_of(model)?;
    let warnings = model::plausibility(&m, &counts_of(&import_frame(candidates)?)?);
    Ok((pretty(&m)?, warnings))
}

/// Step 5: scores pairs (`a`, `b`, `p0` … `p5`, `has_id` of the first record, `first_count` and
/// `last_count` of its names among the job's `records` records) with `model`; keeps deterministic
/// pairs and those at or above `floor`: `a`, `b`, `weight`, `probability`, `deterministic`,
/// `contradicted`, `accepted` (an edge for clustering at `threshold`, `Scored::accepted`).
#[pyfunction]
#[pyo3(signature = (table, *, model, records, floor, threshold))]
pub fn link_score<'py>(
    py: Python<'py>,
    table: &Bound<'py, PyAny>,
    model: &str,
    records: u64,
    floor: f64,
    threshold: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let m = model_of(model)?;
    let df = import_frame(table)?;
    let (a, b, pats, has_id) =
        (whole::<u32>(&df, "a")?, whole::<u32>(&df, "b")?, patterns_of(&df)?, bools(&df, "has_id")?);
    let (first, last) = (ints(&df, "first_count")?, ints(&df, "last_count")?);
    let count = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
    let scored: Vec<Scored> = (0..df.height())
        .map(|i| steps::score_pair(&m, a[i], b[i], &pats[i], has_id[i], count(first[i]), count(last[i]), records))
        .filter(|s| s.deterministic || s.probability >= floor)
        .collect();
    let df = DataFrame::new(
        scored.len(),
        vec![
            Column::new("a".into(), scored.iter().map(|s| i64::from(s.a)).collect::<Vec<_>>()),
            Column::new("b".into(), scored.iter().map(|s| i64::from(s.b)).collect::<Vec<_>>()),
            Column::new("weight".into(), scored.iter().map(|s| s.weight).collect::<Vec<_>>()),
            Column::new("probability".into(), scored.iter().map(|s| s.probability).collect::<Vec<_>>()),
            Column::new("deterministic".into(), scored.iter().map(|s| s.deterministic).collect::<Vec<_>>()),
            Column::new("contradicted".into(), scored.iter().map(|s| s.contradicted).collect::<Vec<_>>()),
            Column::new("accepted".into(), scored.iter().map(|s| s.accepted(threshold)).collect::<Vec<_>>()),
        ],
    )
    .map_err(perr)?;
    to_polars(py, df)
}

/// Step 6: entities of whole connected components. `records`: `rec`, `src`, `citizen_id`,
/// `source_name`, `key` of every record of the components; `edges`: their matched pairs (`a`, `b`,
/// `probability`, `deterministic`, `contradicted`). Returns `rec`, `rep` (the entity's smallest
/// record index) and `entity` (16 hex digits).
#[pyfunction]
#[pyo3(signature = (records, edges, *, sources, threshold, task))]
pub fn link_cluster<'py>(
    py: Python<'py>,
    records: &Bound<'py, PyAny>,
    edges: &Bound<'py, PyAny>,
    sources: usize,
    threshold: f64,
    task: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let task: Task = opt(task)?;
    let (rd, ed) = (import_frame(records)?, import_frame(edges)?);
    let (rec, src, cid) = (whole::<u32>(&rd, "rec")?, whole::<u16>(&rd, "src")?, ints(&rd, "citizen_id")?);
    let (names, keys) = (texts(&rd, "source_name")?, texts(&rd, "key")?);
    let mut recs: Vec<ClusterRecord> = (0..rd.height())
        .map(|i| ClusterRecord {
            record: rec[i],
            source: src[i],
            citizen_id: cid[i].map(unsigned),
            source_name: names[i].clone(),
            key: keys[i].clone(),
        })
        .collect();
    let (a, b, p) = (whole::<u32>(&ed, "a")?, whole::<u32>(&ed, "b")?, ed.column("probability").map_err(perr)?);
    let p: Vec<f64> =
        p.cast(&DataType::Float64).map_err(perr)?.f64().map_err(perr)?.iter().map(|v| v.unwrap_or(0.0)).collect();
    let (det, con) = (bools(&ed, "deterministic")?, bools(&ed, "contradicted")?);
    let scored: Vec<Scored> = (0..ed.height())
        .map(|i| Scored {
            a: a[i],
            b: b[i],
            weight: 0.0,
            probability: p[i],
            deterministic: det[i],
            contradicted: con[i],
        })
        .collect();
    let got = py.detach(|| steps::cluster_components(&mut recs, &scored, sources, threshold, task)).map_err(err)?;
    let df = DataFrame::new(
        got.len(),
        vec![
            Column::new("rec".into(), got.iter().map(|g| i64::from(g.record)).collect::<Vec<_>>()),
            Column::new("rep".into(), got.iter().map(|g| i64::from(g.representative)).collect::<Vec<_>>()),
            Column::new("entity".into(), got.iter().map(|g| format!("{:016x}", g.entity)).collect::<Vec<_>>()),
        ],
    )
    .map_err(perr)?;
    to_polars(py, df)
}

/// For each person of a welfare-card linkage, the registry record it takes, as
/// `Extract.link_welfare` chooses it. `table`: the matched pairs of persons (`person`) and registry
/// records (`record`) with `probability`, `deterministic`, the pair's position among the scored
/// pairs (`index`) and the record's `flag` (its `validated`). Returns `person`, `deterministic`,
/// `validated`.
#[pyfunction]
pub fn link_best_registry<'py>(py: Python<'py>, table: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    use tpmap::link::BestMatch;
    let df = import_frame(table)?;
    let (person, record, index) =
        (whole::<u64>(&df, "person")?, whole::<usize>(&df, "record")?, whole::<u64>(&df, "index")?);
    let p = df.column("probability").map_err(perr)?.cast(&DataType::Float64).map_err(perr)?;
    let prob: Vec<f64> = p.f64().map_err(perr)?.iter().map(|v| v.unwrap_or(0.0)).collect();
    let det = bools(&df, "deterministic")?;
    let flag: Vec<Option<bool>> = {
        let c = df.column("flag").map_err(perr)?.cast(&DataType::Boolean).map_err(perr)?;
        c.bool().map_err(perr)?.iter().collect()
    };
    // In scored-pair order: ties go to the earlier pair.
    let mut order: Vec<usize> = (0..df.height()).collect();
    order.sort_by_key(|&i| index[i]);
    let mut best: std::collections::BTreeMap<u64, (Option<BestMatch>, Option<bool>)> = Default::default();
    for i in order {
        let slot = best.entry(person[i]).or_default();
        let before = slot.0;
        BestMatch::offer(&mut slot.0, BestMatch { probability: prob[i], deterministic: det[i], record: record[i] });
        if slot.0 != before {
            slot.1 = flag[i];
        }
    }
    let rows: Vec<(u64, bool, bool)> =
        best.iter().filter_map(|(&p, (b, f))| b.map(|b| (p, b.deterministic, BestMatch::validated(*f)))).collect();
    let df = DataFrame::new(
        rows.len(),
        vec![
            Column::new("person".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
            Column::new("deterministic".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
            Column::new("validated".into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
        ],
    )
    .map_err(perr)?;
    to_polars(py, df)
}

/// Registers the steps.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(link_record_keys, m)?)?;
    m.add_function(wrap_pyfunction!(link_block_pairs, m)?)?;
    m.add_function(wrap_pyfunction!(link_patterns, m)?)?;
    m.add_function(wrap_pyfunction!(link_u_sample, m)?)?;
    m.add_function(wrap_pyfunction!(link_train, m)?)?;
    m.add_function(wrap_pyfunction!(link_model_warnings, m)?)?;
    m.add_function(wrap_pyfunction!(link_score, m)?)?;
    m.add_function(wrap_pyfunction!(link_cluster, m)?)?;
    m.add_function(wrap_pyfunction!(link_columns, m)?)?;
    m.add_function(wrap_pyfunction!(link_best_registry, m)?)?;
    m.add("LINK_RECORD_COLUMNS", tpmap::link::records::RECORD_COLUMNS.to_vec())?;
    Ok(())
}

/// Which of `columns` `tpmap.link` reads as each record column (`record_id`, `citizen_id`,
/// `title`, `first_name`, `last_name`, `birth_date`, `sex`, `village_code`, `house_no`,
/// `validated`, `program`; Thai and English aliases accepted): the canonical name → the column,
/// for the columns present.
#[pyfunction]
pub fn link_columns(columns: Vec<String>) -> Vec<(String, String)> {
    let headers: Vec<String> = columns.iter().map(|h| h.trim().to_lowercase()).collect();
    tpmap::link::records::record_columns(&headers)
        .iter()
        .zip(tpmap::link::records::RECORD_COLUMNS)
        .filter_map(|(c, name)| c.map(|i| (name.to_string(), columns[i].clone())))
        .collect()
}
