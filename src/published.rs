//! TPMAP's public aggregate files, both ways.
//!
//! TPMAP publishes, per year `YY` (BE, two digits) and dimension mask (five 0/1 digits for
//! health, living, education, income, access): `YY_country_common.csv`, `YY_country_MASK.csv`,
//! `YY_province_*.csv`, and per province `YY_PP_amphur_*.csv`, `YY_PP_tambol_*.csv`,
//! `YY_PP_village_*.csv`. `_common` files hold counts of households, members, welfare-card
//! registration, and each BMN indicator's `indicatorN.ALL` (people in households where it applies)
//! and `indicatorN.CNT` (people in households failing it); `_MASK` files hold the poor and target
//! poor counts under that mask.
//!
//! [`Published::read_dir`] reads such a folder; [`Published::roll_up`] sums village rows to every
//! higher level and [`Published::reconcile`] compares them with the published rows.
//! [`tables_from_extract`] computes the same tables from an extract, and [`Published::write_dir`]
//! writes them with TPMAP's exact column names, so TPMAP's dashboards can read our output.
//!
//! ```no_run
//! use tpmap::published::Published;
//! let p = Published::read_dir("data/tpmap-2561/published".as_ref(), "61", "11111")?;
//! let r = p.reconcile();
//! assert!(r.mismatches.is_empty()); // TPMAP's real 2561 tables add up at every level
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::extract::Extract;
use crate::score::{DimensionMask, Profiles, Spec, Unit, Welfare, score};

/// A level of the public files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableLevel {
    /// `YY_country_*`
    Country,
    /// `YY_province_*`
    Province,
    /// `YY_PP_amphur_*`
    Amphur,
    /// `YY_PP_tambol_*`
    Tambol,
    /// `YY_PP_village_*`
    Village,
}

impl TableLevel {
    /// All levels, coarsest first.
    pub const ALL: [TableLevel; 5] =
        [TableLevel::Country, TableLevel::Province, TableLevel::Amphur, TableLevel::Tambol, TableLevel::Village];

    fn file_word(self) -> &'static str {
        match self {
            TableLevel::Country => "country",
            TableLevel::Province => "province",
            TableLevel::Amphur => "amphur",
            TableLevel::Tambol => "tambol",
            TableLevel::Village => "village",
        }
    }

    fn id_column(self) -> Option<&'static str> {
        match self {
            TableLevel::Country => None,
            TableLevel::Province => Some("province_ID"),
            TableLevel::Amphur => Some("amphur_ID"),
            TableLevel::Tambol => Some("tumbol_ID"),
            TableLevel::Village => Some("village_ID"),
        }
    }

    /// Characters of the area id at this level.
    fn id_len(self) -> usize {
        match self {
            TableLevel::Country => 0,
            TableLevel::Province => 2,
            TableLevel::Amphur => 4,
            TableLevel::Tambol => 6,
            TableLevel::Village => 10,
        }
    }
}

/// One table: rows keyed by area id (empty for the country), columns by TPMAP's names.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Table {
    /// Value columns, in file order (without the id and trailing `province_ID`).
    pub columns: Vec<String>,
    /// Rows by area id; `None` is an empty cell.
    pub rows: BTreeMap<String, Vec<Option<f64>>>,
}

impl Table {
    fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The table as a frame: `area` (the area id), then one Float64 column per value column
    /// (null for an empty cell), rows in id order.
    pub fn to_frame(&self) -> Result<polars::prelude::DataFrame> {
        use polars::prelude::*;
        let ids: Vec<&str> = self.rows.keys().map(String::as_str).collect();
        let mut cols = vec![Column::new("area".into(), ids)];
        for (k, name) in self.columns.iter().enumerate() {
            let v: Vec<Option<f64>> = self.rows.values().map(|r| r.get(k).copied().flatten()).collect();
            cols.push(Column::new(name.as_str().into(), v));
        }
        Ok(DataFrame::new_infer_height(cols)?)
    }

    /// The inverse of [`Table::to_frame`] for `columns` (in that order): `area` holds text ids of
    /// ASCII letters and digits (at most 16), the value columns numbers. A repeated id is an
    /// error (a table has one row per area).
    pub fn from_frame(df: &polars::prelude::DataFrame, columns: &[String], name: &str) -> Result<Table> {
        use polars::prelude::*;
        let bad = |message: String| Error::Format { file: name.to_string(), message };
        let area = df.column("area").map_err(|_| bad("no 'area' column".into()))?;
        let area = area.cast(&DataType::String).map_err(|_| bad("'area' is not text".into()))?;
        let area = area.str().map_err(|_| bad("'area' is not text".into()))?;
        let mut values: Vec<Column> = Vec::with_capacity(columns.len());
        for c in columns {
            let col = df.column(c).map_err(|_| bad(format!("no '{}' column", crate::frame::neutralize(c))))?;
            values.push(
                col.cast(&DataType::Float64)
                    .map_err(|_| bad(format!("column '{}' is not numbers", crate::frame::neutralize(c))))?,
            );
        }
        let values: Vec<&Float64Chunked> =
            values.iter().map(|c| c.f64()).collect::<PolarsResult<_>>().map_err(|e| bad(e.to_string()))?;
        let mut rows = BTreeMap::new();
        for (i, id) in area.iter().enumerate() {
            let id = id.filter(|v| !v.is_empty() && v.len() <= 16 && v.bytes().all(|b| b.is_ascii_alphanumeric()));
            let Some(id) = id else {
                return Err(bad(format!("row {}: 'area' is not an area id (ASCII letters and digits)", i + 1)));
            };
            let row: Vec<Option<f64>> = values.iter().map(|v| v.get(i).filter(|x| x.is_finite())).collect();
            if rows.insert(id.to_string(), row).is_some() {
                return Err(bad(format!("row {}: area {id} repeated", i + 1)));
            }
        }
        Ok(Table { columns: columns.to_vec(), rows })
    }
}

impl TableLevel {
    /// The level's word in TPMAP's file names (`country`, `province`, `amphur`, `tambol`,
    /// `village`).
    pub fn name(self) -> &'static str {
        self.file_word()
    }
}

/// An area's members, and its household-weighted sum of `happiness` with the weight.
type AreaWeights = (f64, f64, f64);

/// A set of public tables for one year and mask: `common` and `mask` tables per level.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Published {
    /// Two-digit BE year (`61`).
    pub year: String,
    /// Dimension mask (`11111`).
    pub mask: String,
    /// `_common` tables by level.
    pub common: BTreeMap<TableLevel, Table>,
    /// `_MASK` tables by level.
    pub poor: BTreeMap<TableLevel, Table>,
}

/// An area id with its row of values.
type RowRef<'a> = (&'a String, &'a Vec<Option<f64>>);

/// Columns that are not counts: they are not summed when rolling up.
const NOT_COUNTS: [&str; 2] = ["happiness", "JPT.MOFval.pov.rate"];

fn read_table(path: &Path, level: TableLevel, into: &mut Table) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // TPMAP's files as published, or gzip-compressed (`.csv.gz`, as the repository keeps them).
    let input: Box<dyn std::io::Read + Send> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    // Guarded against an endless record, and counting the lines a text editor shows.
    let (mut rdr, mut lines) = crate::ingest::source::counting_reader(input, &mut csv::ReaderBuilder::new(), None);
    let header: Vec<String> =
        rdr.headers().map_err(|e| crate::ingest::source::csv_error(path, e))?.iter().map(|s| s.to_string()).collect();
    let id_pos = level.id_column().map(|c| header.iter().position(|h| h == c));
    if let Some(None) = id_pos {
        return Err(Error::Format {
            file: path.display().to_string(),
            message: format!("no column {}", level.id_column().unwrap_or("")),
        });
    }
    let id_pos = id_pos.flatten();
    let value_cols: Vec<usize> =
        (0..header.len()).filter(|&i| Some(i) != id_pos && header[i] != "province_ID").collect();
    let names: Vec<String> = value_cols.iter().map(|&i| header[i].clone()).collect();
    if into.columns.is_empty() {
        into.columns = names;
    } else if into.columns != names {
        return Err(Error::Format {
            file: path.display().to_string(),
            message: "columns differ from the other files of this level".into(),
        });
    }
    for (n, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| crate::ingest::source::csv_error(path, e))?;
        let line = lines.at(rec.position());
        let id = id_pos.map(|p| rec[p].trim().to_string()).unwrap_or_default();
        let mut vals = Vec::with_capacity(value_cols.len());
        for &c in &value_cols {
            let t = rec[c].trim();
            vals.push(if t.is_empty() || t == "NA" {
                None
            } else {
                Some(t.parse::<f64>().map_err(|_| Error::InvalidRow {
                    file: path.display().to_string(),
                    row: n as u64 + 1,
                    line,
                    column: header[c].clone(),
                    reason: format!("not a number: '{t}'"),
                })?)
            });
        }
        if into.rows.insert(id.clone(), vals).is_some() {
            return Err(Error::Format {
                file: path.display().to_string(),
                message: format!("area {id} appears twice"),
            });
        }
    }
    // A quote left open took in the lines after it: an error, not one row.
    lines.check_quotes_closed(path, Some(0))?;
    Ok(())
}

impl Published {
    /// Reads every table of `year` and `mask` in `dir` (TPMAP's file names).
    pub fn read_dir(dir: &Path, year: &str, mask: &str) -> Result<Published> {
        // File names are built from these: two digits and five 0/1 switches, never a path.
        if year.len() != 2 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Parse(format!(
                "the TPMAP year is two digits of the BE year (61 for 2561), not '{year}'"
            )));
        }
        mask.parse::<DimensionMask>()?;
        let mut p = Published { year: year.into(), mask: mask.into(), ..Default::default() };
        let mut entries: Vec<_> =
            std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".csv").or_else(|| n.strip_suffix(".csv.gz")))
            else {
                continue;
            };
            let parts: Vec<&str> = name.split('_').collect();
            if parts.first() != Some(&year) {
                continue;
            }
            let (word, kind) = match parts.as_slice() {
                [_, w, k] => (*w, *k),
                [_, _pp, w, k] => (*w, *k),
                _ => continue,
            };
            let Some(level) = TableLevel::ALL.into_iter().find(|l| l.file_word() == word) else { continue };
            let table = match kind {
                "common" => p.common.entry(level).or_default(),
                k if k == mask => p.poor.entry(level).or_default(),
                _ => continue,
            };
            read_table(&path, level, table)?;
        }
        if p.common.is_empty() && p.poor.is_empty() {
            return Err(Error::Format {
                file: dir.display().to_string(),
                message: format!("no TPMAP tables for year {year}, mask {mask}"),
            });
        }
        Ok(p)
    }

    /// Sums the village rows to every higher level. Counts are summed; `JPT.MOFval.pov.rate` is
    /// recomputed as 100 × target poor / members; `happiness` as the household-weighted mean.
    pub fn roll_up(&self) -> Published {
        let mut out = Published { year: self.year.clone(), mask: self.mask.clone(), ..Default::default() };
        let common_village = self.common.get(&TableLevel::Village);
        let column_of = |name: &str| common_village.and_then(|c| c.col(name).map(|i| (c, i)));
        let (members, households) = (column_of("HOUSEMEMBER_CNT"), column_of("household.CNT"));
        for (tables, into, is_common) in [(&self.common, &mut out.common, true), (&self.poor, &mut out.poor, false)] {
            let Some(village) = tables.get(&TableLevel::Village) else { continue };
            // Looked up once per village, not once per village and level: the members and
            // households of each village row (in row order), and which columns are counts.
            let value = |c: Option<(&Table, usize)>, id: &str| {
                c.and_then(|(t, i)| t.rows.get(id).and_then(|r| r.get(i).copied().flatten())).unwrap_or(0.0)
            };
            let weights: Vec<(f64, f64)> =
                village.rows.keys().map(|id| (value(members, id), value(households, id))).collect();
            let counted: Vec<bool> = village.columns.iter().map(|c| !NOT_COUNTS.contains(&c.as_str())).collect();
            let happiness = if is_common { village.col("happiness") } else { None };
            let rate = if is_common { None } else { village.col("JPT.MOFval.pov.rate") };
            let val = village.col("poor.JPT.MOFval.CNT");
            for level in TableLevel::ALL {
                // Rows are in id order, so the villages of an area (the ids that share its
                // prefix) come one after another: each area is summed in one run, in the same
                // order as before, and its row closed when the prefix changes.
                let mut rows: Vec<(String, Vec<Option<f64>>)> = Vec::new();
                // Per area: members, and the household-weighted sum of `happiness` with its weight.
                let close = |key: &str, mut row: Vec<Option<f64>>, (m, hsum, hw): (f64, f64, f64)| {
                    if let Some(cell) = happiness.and_then(|hc| row.get_mut(hc)) {
                        *cell = (hw > 0.0).then(|| hsum / hw);
                    }
                    if let (Some(rc), Some(vc)) = (rate, val) {
                        let v = row.get(vc).copied().flatten();
                        if let Some(cell) = row.get_mut(rc) {
                            *cell = v.map(|v| if m > 0.0 { 100.0 * v / m } else { 0.0 });
                        }
                    }
                    (key.to_string(), row)
                };
                let mut open: Option<(&str, Vec<Option<f64>>, AreaWeights)> = None;
                for ((id, vals), &(m, h)) in village.rows.iter().zip(&weights) {
                    let key = &id[..level.id_len().min(id.len())];
                    if open.as_ref().is_none_or(|(k, _, _)| *k != key) {
                        rows.extend(open.take().map(|(k, row, w)| close(k, row, w)));
                        open = Some((key, vec![Some(0.0); vals.len()], (0.0, 0.0, 0.0)));
                    }
                    let Some((_, row, w)) = open.as_mut() else { continue };
                    for (k, v) in vals.iter().enumerate() {
                        if !counted.get(k).copied().unwrap_or(false) {
                            continue;
                        }
                        if let Some(cell) = row.get_mut(k) {
                            *cell = match (*cell, v) {
                                (Some(a), Some(b)) => Some(a + b),
                                _ => None,
                            };
                        }
                    }
                    w.0 += m;
                    if let Some(x) = happiness.and_then(|hc| vals.get(hc).copied().flatten()) {
                        w.1 += x * h;
                        w.2 += h;
                    }
                }
                rows.extend(open.take().map(|(k, row, w)| close(k, row, w)));
                into.insert(level, Table { columns: village.columns.clone(), rows: rows.into_iter().collect() });
            }
        }
        out
    }

    /// Compares rolled-up village rows with the published rows of every higher level: counts must
    /// be equal; rates and means must agree to 1e-9 (relative).
    pub fn reconcile(&self) -> Reconciliation {
        let rolled = self.roll_up();
        let mut rep = Reconciliation::default();
        for (mine, theirs, kind) in [(&rolled.common, &self.common, "common"), (&rolled.poor, &self.poor, "mask")] {
            for level in [TableLevel::Country, TableLevel::Province, TableLevel::Amphur, TableLevel::Tambol] {
                let (Some(a), Some(b)) = (mine.get(&level), theirs.get(&level)) else { continue };
                for (id, want) in &b.rows {
                    rep.rows_compared += 1;
                    let Some(got) = a.rows.get(id) else {
                        rep.mismatches.push(Mismatch {
                            table: kind.into(),
                            level,
                            area: id.clone(),
                            column: "*".into(),
                            published: None,
                            rolled_up: None,
                        });
                        continue;
                    };
                    for (k, col) in b.columns.iter().enumerate() {
                        let Some(j) = a.col(col) else { continue };
                        let (w, g) = (want[k], got[j]);
                        let ok = match (w, g) {
                            (Some(x), Some(y)) if NOT_COUNTS.contains(&col.as_str()) => {
                                (x - y).abs() <= 1e-9 * x.abs().max(1.0)
                            }
                            (Some(x), Some(y)) => x == y,
                            (None, None) => true,
                            _ => false,
                        };
                        rep.values_compared += 1;
                        if !ok {
                            rep.mismatches.push(Mismatch {
                                table: kind.into(),
                                level,
                                area: id.clone(),
                                column: col.clone(),
                                published: w,
                                rolled_up: g,
                            });
                        }
                    }
                }
            }
        }
        rep
    }

    /// Writes every table in TPMAP's layout and names into `dir`; returns the files written.
    pub fn write_dir(&self, dir: &Path) -> Result<Vec<std::path::PathBuf>> {
        use rayon::prelude::*;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        // The files and their rows first, then the files written on every core (the national
        // tables are 460 files, which took 0.7 s one after another).
        let mut files: Vec<(String, TableLevel, &Table, Vec<RowRef<'_>>)> = Vec::new();
        for (tables, kind) in [(&self.common, "common".to_string()), (&self.poor, self.mask.clone())] {
            for (&level, t) in tables {
                // Country and province in one file each; lower levels one file per province.
                let mut by_file: BTreeMap<String, Vec<RowRef<'_>>> = BTreeMap::new();
                for (id, row) in &t.rows {
                    let name = match level {
                        TableLevel::Country | TableLevel::Province => {
                            format!("{}_{}_{kind}.csv", self.year, level.file_word())
                        }
                        _ => format!("{}_{}_{}_{kind}.csv", self.year, province_of(id)?, level.file_word()),
                    };
                    by_file.entry(name).or_default().push((id, row));
                }
                files.extend(by_file.into_iter().map(|(name, rows)| (name, level, t, rows)));
            }
        }
        crate::in_pool(|| {
            files.par_iter().map(|(name, level, t, rows)| write_table_file(dir, name, *level, t, rows)).collect()
        })
    }
}

/// Writes one file of [`Published::write_dir`]: `rows` of `t` at `level`.
fn write_table_file(
    dir: &Path,
    name: &str,
    level: TableLevel,
    t: &Table,
    rows: &[RowRef<'_>],
) -> Result<std::path::PathBuf> {
    let path = dir.join(name);
    let csv_error = |e| crate::ingest::source::csv_error(&path, e);
    let mut w = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Necessary)
        .from_path(&path)
        .map_err(|e| Error::Format { file: name.to_string(), message: e.to_string() })?;
    let below_province = matches!(level, TableLevel::Amphur | TableLevel::Tambol | TableLevel::Village);
    let mut head: Vec<&str> = Vec::new();
    if let Some(c) = level.id_column() {
        head.push(c);
    }
    head.extend(t.columns.iter().map(String::as_str));
    if below_province {
        head.push("province_ID");
    }
    w.write_record(&head).map_err(csv_error)?;
    // A record's fields written one by one from a reused buffer (no String per value).
    let mut field = String::new();
    for (id, row) in rows {
        if level.id_column().is_some() {
            w.write_field(id).map_err(csv_error)?;
        }
        for v in row.iter() {
            field.clear();
            if let Some(v) = v {
                write_number(&mut field, *v);
            }
            w.write_field(&field).map_err(csv_error)?;
        }
        if below_province {
            w.write_field(province_of(id)?).map_err(csv_error)?;
        }
        w.write_record(None::<&[u8]>).map_err(csv_error)?;
    }
    w.flush().map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// The province code an area ID below the province begins with: two ASCII digits, or an error
/// (it names a file, so nothing else from the data goes into a path, and no text is cut inside
/// a character).
fn province_of(id: &str) -> Result<&str> {
    id.get(..2).filter(|p| p.bytes().all(|b| b.is_ascii_digit())).ok_or_else(|| Error::Format {
        file: "TPMAP tables".into(),
        message: "an area ID below the province level does not begin with a two-digit province code".into(),
    })
}

/// Appends a table value's text to `out`: whole numbers without a decimal point.
fn write_number(out: &mut String, v: f64) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = if v.fract() == 0.0 && v.abs() < 1e15 { write!(out, "{}", v as i64) } else { write!(out, "{v}") };
}

/// One value that did not reconcile.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Mismatch {
    /// `common` or `mask`.
    pub table: String,
    /// The level of the table.
    pub level: TableLevel,
    /// Area id.
    pub area: String,
    /// The column, as TPMAP names it.
    pub column: String,
    /// Published value.
    pub published: Option<f64>,
    /// Rolled-up value.
    pub rolled_up: Option<f64>,
}

/// The result of [`Published::reconcile`].
#[derive(Clone, Debug, Default, Serialize)]
pub struct Reconciliation {
    /// Published rows compared.
    pub rows_compared: u64,
    /// Values compared.
    pub values_compared: u64,
    /// Values that differ.
    pub mismatches: Vec<Mismatch>,
}

/// Computes TPMAP's public tables at every level from an extract: the `_common` tables (all
/// indicators of the edition) and the `_MASK` tables for the dimensions switched on in `mask`.
/// Counts are of people, as TPMAP's are; `household.CNT` and `poor.household.CNT` of households.
/// A person is target poor when their household is poor and they meet `welfare`. Columns the
/// extract cannot give (`CHRONICPATIENT_CNT`, `happiness`) are left empty.
pub fn tables_from_extract(x: &Extract, year_be: u16, mask: DimensionMask, welfare: Welfare) -> Result<Published> {
    let spec = Spec::tpmap(&x.edition, mask)?;
    let profiles = Profiles::of_households(x, Unit::Households);
    let scores = score(&profiles, &spec)?;
    tables_from_scores(x, year_be, &spec, &profiles, &scores, welfare)
}

/// Like [`tables_from_extract`], for households already scored with a TPMAP `spec` (with whatever
/// not-applicable and missing policies the caller chose), so nothing is scored twice. `profiles`
/// and `scores` have one entry per household; their unit weights are not used.
pub fn tables_from_scores(
    x: &Extract,
    year_be: u16,
    spec: &Spec,
    profiles: &Profiles,
    scores: &crate::score::Scores,
    welfare: Welfare,
) -> Result<Published> {
    if profiles.len() != x.households.len() || scores.poor.len() != x.households.len() {
        return Err(Error::Config("profiles and scores must have one entry per household".into()));
    }
    // The mask written in file names: the dimensions the spec switches on, in TPMAP's order.
    let mask = DimensionMask::new(std::array::from_fn(|i| {
        spec.dimensions.iter().any(|d| d.parse::<crate::indicators::Dimension>().is_ok_and(|d| d.index() == i))
    }))?;
    crate::in_pool(|| tables_in_pool(x, year_be, mask, spec, profiles, scores, welfare))
}

/// Calls `f` with the position of each set bit of `bits`, lowest first.
fn each_bit(mut bits: u64, mut f: impl FnMut(usize)) {
    while bits != 0 {
        f(bits.trailing_zeros() as usize);
        bits &= bits - 1;
    }
}

fn tables_in_pool(
    x: &Extract,
    year_be: u16,
    mask: DimensionMask,
    spec: &Spec,
    profiles: &Profiles,
    scores: &crate::score::Scores,
    welfare: Welfare,
) -> Result<Published> {
    let e = &x.edition;
    let n_ind = e.len();
    let dims = spec.dimensions.len();
    let dim_masks: Vec<u64> = (0..dims).map(|d| spec.dimension_mask(d)).collect();
    let h = &x.households;
    let p = &x.persons;
    // Columns.
    let mut common_cols: Vec<String> = [
        "household.CNT",
        "HOUSEMEMBER_CNT",
        "MOF_REG_CNT",
        "MOF_VAL_CNT",
        "ELDERLY_CNT",
        "DISABLED_CNT",
        "CHRONICPATIENT_CNT",
        "happiness",
    ]
    .map(String::from)
    .to_vec();
    let nos: Vec<u16> = e.indicators().iter().map(|i| i.no).collect();
    common_cols.extend(nos.iter().map(|n| format!("indicator{n}.ALL")));
    common_cols.extend(nos.iter().map(|n| format!("indicator{n}.CNT")));
    let mut poor_cols: Vec<String> =
        ["poor.household.CNT", "poor.JPT.CNT", "poor.JPT.MOFreg.CNT", "poor.JPT.MOFval.CNT"].map(String::from).to_vec();
    let dim_names = ["health", "living", "education", "income", "accessibility"];
    for d in &spec.dimensions {
        let idx = d.parse::<crate::indicators::Dimension>().map(|d| d.index()).unwrap_or(0);
        poor_cols.push(format!("poor.JPT.MOFval.{}", dim_names[idx]));
    }
    poor_cols.push("JPT.MOFval.pov.rate".into());
    poor_cols.extend(nos.iter().map(|n| format!("poor.JPT.MOFval.ind{n}.CNT")));
    // Per-village sums in one parallel pass.
    // Villages as codes (no string per household), and the index of each household's village.
    // Found run by run: a village's households are usually consecutive, so only the first of
    // each run is sorted and looked up (sorting 12.9 M codes and a binary search for each took
    // most of the tables' time at the national scale).
    let mut lap = crate::diagnostics::Lap::start();
    let runs: Vec<usize> = (0..h.len()).filter(|&u| u == 0 || h.village[u] != h.village[u - 1]).collect();
    let mut villages: Vec<crate::areas::AreaCode> = runs.iter().map(|&u| h.village[u]).collect();
    villages.par_sort_unstable();
    villages.dedup();
    let mut vidx = vec![0u32; h.len()];
    for (k, &start) in runs.iter().enumerate() {
        let end = runs.get(k + 1).copied().unwrap_or(h.len());
        // Every run's village is in `villages`, which was made from them.
        let i = u32::try_from(villages.binary_search(&h.village[start]).unwrap_or(0))
            .map_err(|_| Error::Config("more than 2^32 villages".into()))?;
        vidx[start..end].fill(i);
    }
    let cw = common_cols.len();
    let pw = poor_cols.len();
    // Indicators' bits of the edition (statuses beyond it are not columns).
    let in_edition = if n_ind >= 64 { u64::MAX } else { (1u64 << n_ind) - 1 };
    // Sums are counts of people and households: whole numbers far below 2^53, so every sum is
    // exact in f64 whatever the order of its terms. `indicator<n>.ALL` is kept as minus the
    // members of households where the indicator is not applicable or missing (few bits), and the
    // village's members are added at the end: a household costs its set bits, not a pass over
    // every indicator.
    // Household `u` into its village's rows `c` and `q`.
    let add_one = |u: usize, c: &mut [f64], q: &mut [f64]| {
        let m = h.members[u] as f64;
        let (mut reg, mut val, mut elderly, mut disabled) = (0u32, 0u32, 0u32, 0u32);
        for k in x.members(u) {
            reg += u32::from(p.welfare_registered[k] == Some(true));
            val += u32::from(p.welfare_validated[k] == Some(true));
            elderly += u32::from(p.age[k].is_some_and(|a| a >= 60));
            disabled += u32::from(p.disabled[k] == Some(true));
        }
        let (reg, val) = (f64::from(reg), f64::from(val));
        let row = c;
        row[0] += 1.0;
        row[1] += m;
        row[2] += reg;
        row[3] += val;
        row[4] += f64::from(elderly);
        row[5] += f64::from(disabled);
        let (fail, na, miss) = (profiles.fail[u] & in_edition, profiles.na[u], profiles.missing[u]);
        each_bit(profiles.present & (na | miss) & in_edition, |i| row[8 + i] -= m);
        each_bit(fail, |i| row[8 + n_ind + i] += m);
        if scores.poor[u] {
            let target = match welfare {
                Welfare::Validated => val,
                Welfare::Registered => reg,
                Welfare::None => m,
            };
            let row = q;
            row[0] += 1.0;
            row[1] += m;
            row[2] += reg;
            row[3] += target;
            for (d, dm) in dim_masks.iter().enumerate() {
                if fail & dm != 0 {
                    row[4 + d] += target;
                }
            }
            each_bit(fail, |i| row[5 + dims + i] += target);
        }
    };
    // Households `units` of one village into its rows `c` and `q`.
    let add = |units: std::ops::Range<usize>, c: &mut [f64], q: &mut [f64]| {
        for u in units {
            add_one(u, c, q);
        }
    };
    // Households sorted by village (extracts in area order): each thread sums its own villages
    // of one table; otherwise one table per thread, added together.
    lap.lap("tables: villages found");
    let (mut common, poor) = if vidx.is_sorted() {
        crate::aggregate::by_leaf_ranges(&vidx, villages.len(), cw, pw, &add)
    } else {
        let zero =
            || (crate::aggregate::sums_table(villages.len() * cw), crate::aggregate::sums_table(villages.len() * pw));
        crate::aggregate::per_thread(h.len(), zero, |u, c: &mut Vec<f64>, q: &mut Vec<f64>| {
            let v = vidx[u] as usize;
            add_one(u, &mut c[v * cw..(v + 1) * cw], &mut q[v * pw..(v + 1) * pw])
        })
    };
    let applicable = profiles.present & in_edition;
    common.par_chunks_mut(cw.max(1)).for_each(|row| {
        let members = row[1];
        each_bit(applicable, |i| row[8 + i] += members);
    });
    lap.lap("tables: village sums");
    let mut village_common = Table { columns: common_cols, rows: BTreeMap::new() };
    let mut village_poor = Table { columns: poor_cols, rows: BTreeMap::new() };
    for (i, v) in villages.iter().enumerate() {
        let mut c: Vec<Option<f64>> = common[i * cw..(i + 1) * cw].iter().map(|&x| Some(x)).collect();
        c[6] = None; // CHRONICPATIENT_CNT: not in the extract format
        c[7] = None; // happiness: not in the extract format
        let mut q: Vec<Option<f64>> = poor[i * pw..(i + 1) * pw].iter().map(|&x| Some(x)).collect();
        let members = c[1].unwrap_or(0.0);
        q[4 + dims] = Some(if members > 0.0 { 100.0 * q[3].unwrap_or(0.0) / members } else { 0.0 });
        village_common.rows.insert(v.to_string(), c);
        village_poor.rows.insert(v.to_string(), q);
    }
    let mask_text = mask.to_string();
    let base = Published {
        year: format!("{:02}", year_be % 100),
        mask: mask_text,
        common: BTreeMap::from([(TableLevel::Village, village_common)]),
        poor: BTreeMap::from([(TableLevel::Village, village_poor)]),
    };
    lap.lap("tables: village rows");
    let rolled = base.roll_up();
    lap.lap("tables: rolled up");
    Ok(rolled)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value that is not a number is named on the line a text editor shows it on, whatever
    /// the file's line ends and blank lines, and a quote left open does not read the file whole.
    #[test]
    fn a_bad_value_names_its_line_and_an_open_quote_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("61_10_village_common.csv");
        for end in ["\n", "\r\n", "\r"] {
            let text = ["village_ID,household.CNT", "1001010101,12", "", "1001010102,x"].join(end) + end;
            std::fs::write(&path, text).unwrap();
            let err = read_table(&path, TableLevel::Village, &mut Table::default()).unwrap_err();
            match err {
                Error::InvalidRow { row, line, column, .. } => {
                    assert_eq!((row, line, column.as_str()), (2, Some(4), "household.CNT"), "{end:?}");
                }
                other => panic!("{other}"),
            }
        }
        let mut f = std::fs::File::create(&path).unwrap();
        use std::io::Write;
        f.write_all(b"village_ID,household.CNT\n1001010101,\"").unwrap();
        let chunk = vec![b'9'; 1 << 20];
        for _ in 0..(crate::ingest::source::MAX_RECORD_BYTES >> 20) + 1 {
            f.write_all(&chunk).unwrap();
        }
        drop(f);
        assert!(read_table(&path, TableLevel::Village, &mut Table::default()).is_err());
    }

    #[test]
    fn tables_go_to_frames_and_back_and_bad_ids_are_refused() {
        let t = Table {
            columns: vec!["household.CNT".into(), "happiness".into()],
            rows: BTreeMap::from([
                ("4001020101".to_string(), vec![Some(3.0), None]),
                ("5001010101".to_string(), vec![Some(7.0), Some(2.5)]),
            ]),
        };
        let df = t.to_frame().unwrap();
        assert_eq!(Table::from_frame(&df, &t.columns, "t").unwrap(), t);
        use polars::prelude::*;
        for bad in [vec!["ก", "5001010101"], vec!["4001020101", "4001020101"], vec!["", "1"]] {
            let mut d = df.clone();
            d.replace("area", Column::new("area".into(), bad.clone())).unwrap();
            let e = Table::from_frame(&d, &t.columns, "villages").unwrap_err().to_string();
            assert!(e.contains("villages") && e.contains("row"), "{bad:?}: {e}");
        }
        assert!(Table::from_frame(&df, &["missing".to_string()], "villages").is_err());
    }

    /// The tables of an extract do not depend on the order of its households: households in
    /// village order (each thread sums its own villages) and reversed (a table per thread) give
    /// the same tables, and every count is a whole number.
    #[test]
    fn tables_do_not_depend_on_household_order() {
        let got = crate::ingest::ingest(
            "data-samples/households.csv".as_ref(),
            "data-samples/persons.csv".as_ref(),
            &Default::default(),
        )
        .unwrap();
        let x = &got.extract;
        let mut order: Vec<u32> = (0..x.households.len() as u32).collect();
        order.sort_by_key(|&u| x.households.village[u as usize]);
        let sorted = x.select(&order);
        order.reverse();
        let reversed = x.select(&order);
        assert!(!reversed.households.village.is_sorted());
        let tables = |x: &Extract| tables_from_extract(x, 2561, DimensionMask::ALL, Welfare::Validated).unwrap();
        let (a, b) = (tables(&sorted), tables(&reversed));
        assert!(a.common.len() == 5 && a.poor.len() == 5);
        for level in TableLevel::ALL {
            assert_eq!(a.common[&level], b.common[&level], "{level:?}");
            assert_eq!(a.poor[&level], b.poor[&level], "{level:?}");
        }
        let village = &a.common[&TableLevel::Village];
        let all = village.col("indicator1.ALL").unwrap();
        assert!(village.rows.values().all(|r| r[all].is_some_and(|v| v >= 0.0 && v.fract() == 0.0)));
        assert!(village.rows.values().any(|r| r[all].is_some_and(|v| v > 0.0)));
    }

    #[test]
    fn levels_map_to_file_words_and_ids() {
        assert_eq!(TableLevel::Tambol.id_column(), Some("tumbol_ID"));
        assert_eq!(TableLevel::Amphur.file_word(), "amphur");
        let text = |v: f64| {
            let mut s = String::new();
            write_number(&mut s, v);
            s
        };
        assert_eq!(text(12.0), "12");
        assert_eq!(text(2.5), "2.5");
        assert_eq!(province_of("1101").ok(), Some("11"));
        for bad in ["", "1", "ก1", "/x01", "1ก"] {
            assert!(province_of(bad).is_err(), "{bad:?}");
        }
    }
}
