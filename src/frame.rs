//! The polars edge: extracts to and from [`DataFrame`]s, and writers for Parquet, CSV (UTF-8 or
//! TIS-620) and Excel. With the `arrow` feature, frames are handed to arrow-rs as
//! `RecordBatch`es through the Arrow C Data Interface without copying buffers.
//!
//! Frames written here use the extract format of `docs/data-format.md`, so they read back with
//! [`crate::ingest`].
//!
//! ```no_run
//! use tpmap::frame::{households_frame, write_csv, write_parquet};
//! use tpmap::ingest::{ingest, Encoding, IngestOptions};
//! let got = ingest("data-samples/households.csv".as_ref(), "data-samples/persons.csv".as_ref(), &IngestOptions::default())?;
//! let x = &got.extract;
//! let mut df = households_frame(&x.households, &x.edition)?;
//! write_parquet(&mut df, "households.parquet".as_ref(), &[])?;
//! write_csv(&mut df, "households.csv".as_ref(), &["SYNTHETIC".into()], Encoding::Tis620)?;
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::fs::File;
use std::io::Write;
use std::path::Path;

use polars::prelude::*;

use crate::areas::AreaCode;
use crate::error::{Error, Result};
use crate::extract::{Households, Persons};
use crate::ids::HouseholdId;
use crate::indicators::{Edition, IndicatorStatus};
use crate::ingest::Encoding;

/// How a frame's status and text columns are built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StatusText {
    /// Text (`"0"`, `"1"`, `"na"`, null): the frames handed to users and to the CSV and Excel
    /// writers.
    Plain,
    /// The same text as a dictionary of the values present in these rows (a polars `Enum`, whose
    /// codes Parquet stores as they are): for our own Parquet files. Text columns cost the writer a
    /// cardinality estimate and a hash of every value to find the same dictionary (about half of
    /// writing the national extract, docs/bench/national-writing.txt); the file's pages and the
    /// type readers see are the same, since `file_metadata` declares these columns as `string`.
    Dictionary,
}

/// Status texts in code order: 0 passes, 1 fails, 2 not applicable.
const STATUS_TEXT: [&str; 3] = ["0", "1", "na"];

/// The status columns of indicators `indicators` for `rows`, named by `name(i)`: text
/// ([`StatusText::Plain`]), or codes under a dictionary of the statuses present
/// ([`StatusText::Dictionary`]).
///
/// The dictionary columns are made together, a block of rows at a time: a row's statuses are
/// three words (fail, not applicable, missing) holding every indicator's bit, and reading them
/// once per indicator from memory (17 passes over 24 bytes a row for the national persons) was
/// most of this function's time. Each block is read from memory once and stays in the core's
/// cache while every indicator's codes and validity are taken from it; blocks run on every core.
fn status_columns(
    name: impl Fn(usize) -> String,
    statuses: &crate::extract::StatusMatrix,
    indicators: &[usize],
    rows: std::ops::Range<usize>,
    how: StatusText,
) -> Result<Vec<Column>> {
    use rayon::prelude::*;
    let (missing, na, fail) = (&statuses.missing[rows.clone()], &statuses.na[rows.clone()], &statuses.fail[rows]);
    let n = missing.len();
    if how == StatusText::Plain {
        return Ok(indicators
            .iter()
            .map(|&i| {
                let code = |r: usize| -> Option<&str> {
                    let bit = 1u64 << i;
                    if missing[r] & bit != 0 {
                        None
                    } else if na[r] & bit != 0 {
                        Some(STATUS_TEXT[2])
                    } else {
                        Some(STATUS_TEXT[usize::from(fail[r] & bit != 0)])
                    }
                };
                Column::new(name(i).into(), (0..n).map(code).collect::<Vec<Option<&str>>>())
            })
            .collect());
    }
    // Rows a task takes (a multiple of 8, so that its validity is whole bytes), and rows a block
    // (three words a row: 24 KiB, in the first-level cache).
    const TASK: usize = 1 << 16;
    const BLOCK: usize = 1 << 10;
    // Which statuses occur among the rows present, for every indicator at once: [pass, fail,
    // not applicable, missing], a bit per indicator.
    let occur = missing
        .par_chunks(TASK)
        .zip(na.par_chunks(TASK))
        .zip(fail.par_chunks(TASK))
        .map(|((m, a), f)| {
            let mut acc = [0u64; 4];
            for ((&m, &a), &f) in m.iter().zip(a).zip(f) {
                acc[0] |= !m & !a & !f;
                acc[1] |= !m & !a & f;
                acc[2] |= !m & a;
                acc[3] |= m;
            }
            acc
        })
        .reduce(|| [0u64; 4], |x, y| std::array::from_fn(|k| x[k] | y[k]));
    // Only the values present are categories: Parquet's min/max statistics of a dictionary column
    // are taken from its dictionary, so they stay those of the rows. A status's code is the number
    // of present statuses before it; a missing row's code is 0 (any code will do under a null, and
    // with no category at all every row is null).
    struct Plan {
        indicator: usize,
        fail_code: u8,
        na_code: u8,
        categories: Vec<&'static str>,
        any_missing: bool,
    }
    let plans: Vec<Plan> = indicators
        .iter()
        .map(|&i| {
            let seen: [bool; 3] = std::array::from_fn(|k| occur[k] >> i & 1 == 1);
            Plan {
                indicator: i,
                fail_code: u8::from(seen[0]),
                na_code: u8::from(seen[0]) + u8::from(seen[1]),
                categories: STATUS_TEXT.iter().zip(seen).filter(|(_, s)| *s).map(|(t, _)| *t).collect(),
                any_missing: occur[3] >> i & 1 == 1,
            }
        })
        .collect();
    let mut codes: Vec<Vec<u8>> = plans.iter().map(|_| vec![0u8; n]).collect();
    let mut valid: Vec<Vec<u8>> = plans.iter().map(|_| vec![0u8; n.div_ceil(8)]).collect();
    // Each task's slice of every column.
    type Slices<'a> = (Vec<&'a mut [u8]>, Vec<&'a mut [u8]>);
    let mut tasks: Vec<Slices<'_>> = (0..n.div_ceil(TASK)).map(|_| (Vec::new(), Vec::new())).collect();
    for (c, v) in codes.iter_mut().zip(valid.iter_mut()) {
        for (task, (cs, vs)) in tasks.iter_mut().zip(c.chunks_mut(TASK).zip(v.chunks_mut(TASK / 8))) {
            task.0.push(cs);
            task.1.push(vs);
        }
    }
    tasks.into_par_iter().enumerate().for_each(|(t, (mut cs, mut vs))| {
        let first = t * TASK;
        let end = (first + TASK).min(n);
        for b in (first..end).step_by(BLOCK) {
            let e = (b + BLOCK).min(end);
            let (m, a, f) = (&missing[b..e], &na[b..e], &fail[b..e]);
            for ((plan, cs), vs) in plans.iter().zip(&mut cs).zip(&mut vs) {
                let bit = plan.indicator;
                let out = &mut cs[b - first..e - first];
                for (o, ((&m, &a), &f)) in out.iter_mut().zip(m.iter().zip(a).zip(f)) {
                    let bit_of = |w: u64| u8::from(w >> bit & 1 == 1);
                    let (present, a, f) = (1 - bit_of(m), bit_of(a), bit_of(f));
                    // Branch-free, so that the loop is vectorised: 0 passes, then fail, then na
                    // (bits times codes of at most 2: no product leaves u8).
                    *o = present * (a * plan.na_code + (1 - a) * f * plan.fail_code);
                }
                let bytes = &mut vs[(b - first) / 8..(e - first).div_ceil(8)];
                for (byte, m) in bytes.iter_mut().zip(m.chunks(8)) {
                    *byte = m.iter().enumerate().fold(0u8, |x, (k, &m)| x | u8::from(m >> bit & 1 == 0) << k);
                }
            }
        }
    });
    plans
        .into_iter()
        .zip(codes)
        .zip(valid)
        .map(|((plan, codes), valid)| {
            let name = name(plan.indicator);
            let validity = plan.any_missing.then(|| polars_arrow::bitmap::Bitmap::from_u8_vec(valid, n));
            let codes = UInt8Chunked::from_vec_validity(name.as_str().into(), codes, validity);
            let dtype = DataType::from_frozen_categories(FrozenCategories::new(plan.categories)?);
            if dtype.cat_physical()? != CategoricalPhysical::U8 {
                return Err(Error::Format {
                    file: "frame".into(),
                    message: format!("status column '{name}': categories are not stored as bytes"),
                });
            }
            // SAFETY: every code is below the number of categories (a present status's code
            // counts the statuses present before it; a missing row's is 0 under a null), and the
            // dtype's physical type is UInt8 (checked). The checked constructor looked every one
            // of 17 x 36.6 M codes up again: 5 % of writing the national outputs (docs/bench/).
            let cats = unsafe { CategoricalChunked::<Categorical8Type>::from_cats_and_dtype_unchecked(codes, dtype) };
            Ok(cats.into_series().with_name(name.into()).into())
        })
        .collect()
}

/// A text column: as it is ([`StatusText::Plain`]), or as a dictionary of the values present in
/// order of first appearance ([`StatusText::Dictionary`]; area codes in our own Parquet files, where
/// polars would otherwise estimate the cardinality of 13 M codes and hash every one to find the same
/// dictionary; names, where its hashing was a sixth of writing the national persons). Equal
/// neighbours (area codes in area order, a household's family name) are not looked up again.
fn text_column<'a>(name: &str, values: impl ExactSizeIterator<Item = &'a str>, how: StatusText) -> Result<Column> {
    if how == StatusText::Plain {
        return Ok(Column::new(name.into(), values.collect::<Vec<&str>>()));
    }
    dictionary_column(name, values, |v| v)
}

/// Area codes as [`text_column`] writes text: compared as codes, and made text once per
/// distinct code (not once per household).
fn area_column(name: &str, codes: impl ExactSizeIterator<Item = AreaCode>, how: StatusText) -> Result<Column> {
    if how == StatusText::Plain {
        let mut b = StringChunkedBuilder::new(name.into(), codes.len());
        codes.for_each(|c| b.append_value(c.as_str()));
        return Ok(b.finish().into_column());
    }
    dictionary_column(name, codes, |c| c.as_str())
}

/// The dictionary form of [`text_column`] over any key that is text once (`text`).
fn dictionary_column<K: Copy + Eq + std::hash::Hash>(
    name: &str,
    values: impl ExactSizeIterator<Item = K>,
    text: impl Fn(&K) -> &str,
) -> Result<Column> {
    let mut index: hashbrown::HashMap<K, u32> = hashbrown::HashMap::new();
    let mut categories: Vec<K> = Vec::new();
    let mut codes: Vec<u32> = Vec::with_capacity(values.len());
    let mut last: Option<(K, u32)> = None;
    for v in values {
        let code = match last {
            Some((l, c)) if l == v => c,
            _ => {
                let next = u32::try_from(categories.len())
                    .map_err(|_| Error::Config(format!("column '{name}': more than 2^32 distinct values")))?;
                let c = *index.entry(v).or_insert(next);
                if c == next {
                    categories.push(v);
                }
                last = Some((v, c));
                c
            }
        };
        codes.push(code);
    }
    categorical(name, categories.iter().map(text), codes)
}

/// Titles kept as codes ([`crate::extract::DictColumn`]) in the form of [`dictionary_column`]:
/// the values present numbered as they first appear, from their codes, not from a hash of
/// each row's text.
fn coded_column(name: &str, codes: &[u8], values: &[Box<str>]) -> Result<Column> {
    let mut number = [u32::MAX; 256];
    let mut order: Vec<&str> = Vec::new();
    let mut numbered: Vec<u32> = Vec::with_capacity(codes.len());
    for &c in codes {
        let n = &mut number[c as usize];
        if *n == u32::MAX {
            // At most 256 values: a code is a byte.
            *n = u32::try_from(order.len()).map_err(|_| Error::Config(format!("column '{name}': too many values")))?;
            order.push(values.get(c as usize).map_or("", |v| &**v));
        }
        numbered.push(*n);
    }
    // A dictionary column's values are distinct; checked, as the codes' safety rests on it.
    let mut distinct = order.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() != order.len() {
        return Err(Error::Config(format!("column '{name}': a value twice in its dictionary")));
    }
    categorical(name, order.into_iter(), numbered)
}

/// A dictionary column of `codes` into `categories` (each code below their number).
fn categorical<'t>(name: &str, categories: impl Iterator<Item = &'t str>, codes: Vec<u32>) -> Result<Column> {
    let dtype = DataType::from_frozen_categories(FrozenCategories::new(categories)?);
    // SAFETY (each arm): every code is below the number of categories, which are distinct (the
    // callers number each value once, as it first appears), and the codes' type is the dtype's
    // physical type (matched).
    let series = match dtype.cat_physical()? {
        CategoricalPhysical::U8 => {
            let ca = UInt8Chunked::from_vec(name.into(), narrow(name, &codes)?);
            unsafe { CategoricalChunked::<Categorical8Type>::from_cats_and_dtype_unchecked(ca, dtype) }.into_series()
        }
        CategoricalPhysical::U16 => {
            let ca = UInt16Chunked::from_vec(name.into(), narrow(name, &codes)?);
            unsafe { CategoricalChunked::<Categorical16Type>::from_cats_and_dtype_unchecked(ca, dtype) }.into_series()
        }
        CategoricalPhysical::U32 => {
            let ca = UInt32Chunked::from_vec(name.into(), codes);
            unsafe { CategoricalChunked::<Categorical32Type>::from_cats_and_dtype_unchecked(ca, dtype) }.into_series()
        }
    };
    Ok(series.into())
}

/// Codes in the dictionary's physical type: an error, never a wrapped code, for one that does not fit.
fn narrow<T: TryFrom<u32>>(name: &str, codes: &[u32]) -> Result<Vec<T>> {
    codes
        .iter()
        .map(|&c| {
            T::try_from(c).map_err(|_| Error::Config(format!("column '{name}': a code does not fit its dictionary")))
        })
        .collect()
}

/// House numbers as text, built without a `String` per household.
fn house_ids(ids: &[Option<crate::ids::HouseId>]) -> StringChunked {
    use std::fmt::Write as _;
    let mut b = StringChunkedBuilder::new("house_id".into(), ids.len());
    let mut text = String::with_capacity(20);
    for id in ids {
        match id {
            Some(id) => {
                text.clear();
                // Writing to a String cannot fail.
                let _ = write!(text, "{id}");
                b.append_value(&text);
            }
            None => b.append_null(),
        }
    }
    b.finish()
}

/// The raw citizen IDs as text, built without a `String` per person.
fn citizen_ids(ids: &[Option<crate::ids::CitizenId>]) -> StringChunked {
    let mut b = StringChunkedBuilder::new("citizen_id".into(), ids.len());
    let mut buf = [0u8; 13];
    for id in ids {
        match id {
            Some(id) => b.append_value(id.expose_into(&mut buf)),
            None => b.append_null(),
        }
    }
    b.finish()
}

/// Name of an indicator's status column: `ind_<no>`.
pub fn indicator_column_name(edition: &Edition, i: usize) -> String {
    format!("ind_{}", edition.indicator(i).no)
}

/// The households table as a frame in the extract format.
pub fn households_frame(h: &Households, edition: &Edition) -> Result<DataFrame> {
    households_frame_rows(h, edition, 0..h.len(), StatusText::Plain)
}

fn households_frame_rows(
    h: &Households,
    edition: &Edition,
    rows: std::ops::Range<usize>,
    how: StatusText,
) -> Result<DataFrame> {
    let r = rows.clone();
    let mut cols = vec![
        Column::new("household_id".into(), h.id[r.clone()].iter().map(|x| x.0).collect::<Vec<u64>>()),
        area_column("village_code", h.village[r.clone()].iter().copied(), how)?,
        house_ids(&h.house_id[r.clone()]).into_column(),
        Column::new("house_no".into(), r.clone().map(|k| h.house_no.get(k)).collect::<Vec<&str>>()),
        Column::new("survey_year".into(), h.survey_year[r.clone()].to_vec()),
    ];
    if h.members.len() == h.len() {
        cols.push(Column::new("members".into(), h.members[r.clone()].to_vec()));
    }
    cols.push(Column::new("income_per_member".into(), h.income_per_member[r.clone()].to_vec()));
    let indicators: Vec<usize> = (0..edition.len()).filter(|&i| h.statuses.present & (1u64 << i) != 0).collect();
    cols.extend(status_columns(|i| indicator_column_name(edition, i), &h.statuses, &indicators, r.clone(), how)?);
    Ok(DataFrame::new_infer_height(cols)?)
}

/// Writes the households table to Parquet (see [`append_households`]).
pub fn write_households_parquet(
    h: &Households,
    edition: &Edition,
    path: &Path,
    metadata: &[(String, String)],
) -> Result<()> {
    let mut out = ParquetAppender::new(path, metadata);
    append_households(&mut out, h, edition)?;
    out.finish()
}

/// Appends the households table to `out` one row group (2^18 rows) at a time, its status columns
/// stored as dictionaries of the values present (read back as text, like [`households_frame`]).
pub fn append_households(out: &mut ParquetAppender, h: &Households, edition: &Edition) -> Result<()> {
    append_slices(out, h.len(), ROW_GROUP, |rows| households_frame_rows(h, edition, rows, StatusText::Dictionary))
}

/// The persons table as a frame in the extract format; `household_ids[p.household[k]]` is the
/// household key written for person `k`.
pub fn persons_frame(p: &Persons, household_ids: &[HouseholdId], edition: &Edition) -> Result<DataFrame> {
    persons_frame_rows(p, household_ids, edition, 0..p.len())
}

/// Rows `rows` of the persons table as a frame (for writing large tables in slices); rows past
/// the end are not there to take.
pub fn persons_frame_rows(
    p: &Persons,
    household_ids: &[HouseholdId],
    edition: &Edition,
    rows: std::ops::Range<usize>,
) -> Result<DataFrame> {
    let end = rows.end.min(p.len());
    let rows = rows.start.min(end)..end;
    let text = has_partial_dates(&p.birth_date[rows.clone()]);
    persons_frame_with(p, household_ids, edition, rows, StatusText::Plain, text)
}

/// True when a birth date lacks its day or month: such a column is written as text
/// (`YYYY-MM-DD`, `YYYY-MM`, `YYYY`), a column of whole dates as a date.
fn has_partial_dates(dates: &[Option<crate::thai::PartialDate>]) -> bool {
    dates.iter().any(|d| d.is_some_and(|d| !d.is_complete()))
}

fn persons_frame_with(
    p: &Persons,
    household_ids: &[HouseholdId],
    edition: &Edition,
    rows: std::ops::Range<usize>,
    how: StatusText,
    birth_as_text: bool,
) -> Result<DataFrame> {
    // The slice's columns are made straight from the table's (no copy of the slice first), a
    // column per task: this was most of writing the national persons after polars' own work.
    let statuses: Vec<usize> = (0..edition.len()).filter(|&i| p.statuses.present & (1u64 << i) != 0).collect();
    let r = rows;
    let column = |c: usize| -> Result<Column> {
        let code = |v: u8| (v != 0).then_some(v);
        Ok(match c {
            0 => Column::new(
                "household_id".into(),
                p.household[r.clone()].iter().map(|&h| household_ids[h as usize].0).collect::<Vec<u64>>(),
            ),
            1 => citizen_ids(&p.citizen_id[r.clone()]).into_column(),
            // Titles kept as codes are numbered by their codes, not hashed as text.
            2 => match p.title.dictionary() {
                Some((codes, values)) if how == StatusText::Dictionary => {
                    coded_column("title", &codes[r.clone()], values)?
                }
                _ => text_column("title", r.clone().map(|i| p.title.get(i)), how)?,
            },
            3 => text_column("first_name", r.clone().map(|i| p.first_name.get(i)), how)?,
            4 => text_column("last_name", r.clone().map(|i| p.last_name.get(i)), how)?,
            5 => optional::<UInt8Type>("sex", p.sex[r.clone()].iter().map(|&s| code(s as u8))),
            6 if birth_as_text => Column::new(
                "birth_date".into(),
                p.birth_date[r.clone()].iter().map(|d| d.map(|d| d.to_string())).collect::<Vec<Option<String>>>(),
            ),
            6 => optional::<Int32Type>(
                "birth_date",
                p.birth_date[r.clone()].iter().map(|d| d.map(|d| d.days_since_epoch())),
            )
            .cast(&DataType::Date)?,
            7 => optional::<UInt8Type>("age", p.age[r.clone()].iter().copied()),
            8 => optional::<UInt8Type>("relation", p.relation[r.clone()].iter().map(|&x| code(x as u8))),
            9 => optional_flags("disabled", &p.disabled[r.clone()]),
            10 => optional_flags("welfare_registered", &p.welfare_registered[r.clone()]),
            _ => optional_flags("welfare_validated", &p.welfare_validated[r.clone()]),
        })
    };
    use rayon::prelude::*;
    let (cols, status_cols) = rayon::join(
        || (0..12).into_par_iter().map(column).collect::<Result<Vec<Column>>>(),
        || status_columns(|i| indicator_column_name(edition, i), &p.statuses, &statuses, r.clone(), how),
    );
    let mut cols = cols?;
    cols.extend(status_cols?);
    Ok(DataFrame::new_infer_height(cols)?)
}

/// A column of optional numbers built as its values and, when one is missing, a validity bitmap:
/// the array polars' builder makes from `Option`s one by one (a null's value slot holds zero, and
/// a column without nulls has no bitmap), without the builder's call per value.
fn optional<T: PolarsNumericType>(name: &str, values: impl ExactSizeIterator<Item = Option<T::Native>>) -> Column {
    let mut out: Vec<T::Native> = Vec::with_capacity(values.len());
    let mut valid = polars_arrow::bitmap::MutableBitmap::with_capacity(values.len());
    for v in values {
        out.push(v.unwrap_or_default());
        valid.push(v.is_some());
    }
    let validity = (valid.unset_bits() > 0).then(|| valid.into());
    ChunkedArray::<T>::from_vec_validity(name.into(), out, validity).into_column()
}

/// [`optional`] for flags: a bitmap of values and one of validity.
fn optional_flags(name: &str, flags: &[Option<bool>]) -> Column {
    use polars_arrow::bitmap::Bitmap;
    let values = Bitmap::from_iter(flags.iter().map(|f| f.unwrap_or(false)));
    let validity = flags.iter().any(Option::is_none).then(|| Bitmap::from_iter(flags.iter().map(Option::is_some)));
    let array =
        polars_arrow::array::BooleanArray::new(polars_arrow::datatypes::ArrowDataType::Boolean, values, validity);
    BooleanChunked::with_chunk(name.into(), array).into_column()
}

/// Writes the persons table to Parquet one slice of rows at a time, so that only a slice is ever
/// held twice in memory.
pub fn write_persons_parquet(
    p: &Persons,
    household_ids: &[HouseholdId],
    edition: &Edition,
    path: &Path,
    metadata: &[(String, String)],
) -> Result<()> {
    let mut out = ParquetAppender::new(path, metadata);
    append_persons(&mut out, p, household_ids, edition)?;
    out.finish()
}

/// Appends the persons table to `out` in slices of 2^20 rows, one row group each (a slice's frame
/// is the only copy made), its status columns stored as dictionaries of the values present (read
/// back as text, like [`persons_frame`]).
///
/// `birth_date` has one type in the whole file: a date while every birth date appended is
/// whole, text once one lacks its day or month. When that first happens after whole dates were
/// written (a later wave of a partitioned run), the row groups already in the file are written
/// again with the column as text ([`ParquetAppender::recast_written`]), so a partitioned run
/// and a whole one write the same values and types.
pub fn append_persons(
    out: &mut ParquetAppender,
    p: &Persons,
    household_ids: &[HouseholdId],
    edition: &Edition,
) -> Result<()> {
    const SLICE: usize = 1 << 20;
    let text = out.column_type("birth_date") == Some(&DataType::String) || has_partial_dates(&p.birth_date);
    if text && out.column_type("birth_date").is_some_and(|t| t != &DataType::String) {
        out.recast_written("birth_date", &DataType::String)?;
    }
    append_slices(out, p.len(), SLICE, |rows| {
        persons_frame_with(p, household_ids, edition, rows, StatusText::Dictionary, text)
    })
}

/// Appends `len` rows to `out` in slices of `slice` rows, one row group each, `frame` making a
/// slice's frame; the next slice's frame is made while polars encodes the current one (on its
/// own threads, leaving ours idle). No rows: one empty frame, for the file's columns.
fn append_slices(
    out: &mut ParquetAppender,
    len: usize,
    slice: usize,
    frame: impl Fn(std::ops::Range<usize>) -> Result<DataFrame> + Sync,
) -> Result<()> {
    let slices: Vec<std::ops::Range<usize>> =
        (0..len.max(1)).step_by(slice).map(|start| start..(start + slice).min(len)).collect();
    let mut next = slices.first().map(|r| frame(r.clone()));
    for k in 0..slices.len() {
        let Some(df) = next.take() else { break };
        let df = df?;
        let (written, made) = rayon::join(|| out.push(&df), || slices.get(k + 1).map(|r| frame(r.clone())));
        written?;
        next = made;
    }
    Ok(())
}

/// One Parquet file written frame after frame, with the first non-empty frame's schema (the
/// outputs of a partitioned run, one frame per wave). A file that only ever saw empty frames is
/// written with the first one's columns.
pub struct ParquetAppender {
    path: std::path::PathBuf,
    metadata: Vec<(String, String)>,
    writer: Option<(ParquetBatches, Schema)>,
    empty: Option<DataFrame>,
}

impl ParquetAppender {
    /// An appender that creates `path` with its first rows.
    pub fn new(path: &Path, metadata: &[(String, String)]) -> ParquetAppender {
        ParquetAppender { path: path.to_path_buf(), metadata: metadata.to_vec(), writer: None, empty: None }
    }

    /// The type of column `name` in the rows written so far (`None` before the first rows).
    pub fn column_type(&self, name: &str) -> Option<&DataType> {
        self.writer.as_ref().and_then(|(_, schema)| schema.get(name))
    }

    /// Writes the rows written so far again with column `name` cast to `to`, one row group at a
    /// time (the file is finished, read back group by group and written anew; the rows to come
    /// are appended after them). For the rare column whose type a later frame widens, such as
    /// a persons table's `birth_date` when a partial date first appears.
    pub fn recast_written(&mut self, name: &str, to: &DataType) -> Result<()> {
        let Some((w, _)) = self.writer.take() else {
            return Ok(());
        };
        w.finish()?;
        let mut old = self.path.clone().into_os_string();
        old.push(".recast");
        let old = std::path::PathBuf::from(old);
        std::fs::rename(&self.path, &old).map_err(|e| Error::io(&self.path, e))?;
        let open = || File::open(&old).map_err(|e| Error::io(&old, e));
        let groups: Vec<usize> =
            ParquetReader::new(open()?).get_metadata()?.row_groups.iter().map(|g| g.num_rows()).collect();
        let mut start = 0usize;
        for rows in groups {
            let mut df = ParquetReader::new(open()?).with_slice(Some((start, rows))).finish()?;
            start += rows;
            let cast = df.column(name)?.cast(to)?;
            df.with_column(cast)?;
            // Text columns written as dictionaries come back as plain strings: both are stored as
            // dictionary-encoded `string` columns, so the frames to come can follow them.
            self.push(&df)?;
        }
        std::fs::remove_file(&old).map_err(|e| Error::io(&old, e))?;
        Ok(())
    }

    /// Appends `df`'s rows (an error if its columns differ from the first frame's).
    pub fn push(&mut self, df: &DataFrame) -> Result<()> {
        if df.height() == 0 {
            if self.writer.is_none() && self.empty.is_none() {
                self.empty = Some(df.clone());
            }
            return Ok(());
        }
        self.push_with(df, df.schema())
    }

    fn push_with(&mut self, df: &DataFrame, schema: &Schema) -> Result<()> {
        match &mut self.writer {
            Some((w, _)) => w.write(df),
            None => {
                let mut w = ParquetBatches::create(&self.path, schema, &self.metadata)?;
                w.write(df)?;
                self.writer = Some((w, schema.clone()));
                Ok(())
            }
        }
    }

    /// Finishes the file.
    pub fn finish(self) -> Result<()> {
        match self.writer {
            Some((w, _)) => w.finish(),
            None => write_parquet(&mut self.empty.unwrap_or_default(), &self.path, &self.metadata),
        }
    }
}

/// Key/value metadata that marks a file as synthetic.
pub fn synthetic_metadata(description: &str) -> Vec<(String, String)> {
    vec![
        ("tpmap.synthetic".to_string(), "true".to_string()),
        ("tpmap.description".to_string(), description.to_string()),
    ]
}

/// Our Parquet writer: zstd, 256 k-row groups, min/max and null-count statistics but no distinct
/// counts (their HyperLogLog sketches cost more than the rest of the write).
/// The Parquet writer of every file tpmap writes. Buffered: polars writes page and column
/// headers a few bytes at a time (14,088 one-byte `write` calls for the national
/// `measures.parquet`); it flushes the buffer itself when it writes the footer, errors included.
/// zstd at level 1, not polars' default 3: `tpmap mpi` 1.24–1.29 s → 1.22–1.23 s (measures.parquet
/// 14.2 → 15.3 MB), a 1 M-household ingest 5.76–5.78 s → 5.61–5.73 s (outputs 142 → 144 MB), A/B
/// in one session (docs/bench/parquet-reading.txt).
fn writer(file: File) -> ParquetWriter<std::io::BufWriter<File>> {
    ParquetWriter::new(std::io::BufWriter::with_capacity(1 << 20, file))
        .with_compression(compression())
        .with_row_group_size(Some(ROW_GROUP))
        .with_statistics(statistics())
}

/// The compression of [`writer`].
fn compression() -> ParquetCompression {
    ParquetCompression::Zstd(polars_parquet::write::ZstdLevel::try_new(1).ok())
}

/// The statistics of [`writer`].
fn statistics() -> StatisticsOptions {
    StatisticsOptions { distinct_count: false, ..StatisticsOptions::default() }
}

/// Rows in a row group of the files [`write_parquet`] writes.
const ROW_GROUP: usize = 1 << 18;

/// Writes a frame to Parquet (zstd level 1), with file-level key/value metadata.
pub fn write_parquet(df: &mut DataFrame, path: &Path, metadata: &[(String, String)]) -> Result<()> {
    // Row groups as polars' `finish` cuts them; written by [`ParquetBatches`], whose columns are
    // encoded and compressed on every core.
    let chunked = polars_core::frame::chunk_df_for_writing(df, ROW_GROUP).map_err(|e| Error::from(e).writing(path))?;
    let mut w = ParquetBatches::create(path, chunked.schema(), metadata)?;
    w.write(&chunked)?;
    w.finish()
}

/// The file's key/value metadata: `metadata`, and the Arrow schema readers take the column
/// types from, with text as plain `string` (`utf8`) and bytes as `binary`; dictionaries of text
/// (our status columns) are declared as `string` too, without polars' `Enum` annotation.
///
/// polars 0.55 declares its own string type, `string_view`, which pyarrow compute, pandas' `.str`,
/// Ray's shuffle and older Spark readers reject. The Parquet pages are the same either way (byte
/// arrays with the UTF-8 annotation): only the declared Arrow type changes, and polars writes its
/// own declaration only when the metadata has none.
fn file_metadata(schema: &Schema, metadata: &[(String, String)]) -> KeyValueMetadata {
    use polars_arrow::datatypes::ArrowDataType as A;
    let mut arrow = schema.to_arrow(CompatLevel::oldest());
    for field in arrow.iter_values_mut() {
        if let A::Dictionary(_, values, _) = &field.dtype
            && matches!(values.as_ref(), A::Utf8 | A::LargeUtf8 | A::Utf8View)
        {
            field.dtype = A::Utf8;
            field.metadata = None;
        }
        field.dtype = match &field.dtype {
            A::LargeUtf8 | A::Utf8View => A::Utf8,
            A::LargeBinary | A::BinaryView => A::Binary,
            other => other.clone(),
        };
    }
    let declared = polars_parquet::write::schema_to_metadata_key(&arrow);
    let mut all = vec![(declared.key, declared.value.unwrap_or_default())];
    all.extend(metadata.iter().cloned());
    KeyValueMetadata::from_static(all)
}

/// How [`sorted_key_encoding`] writes a column of sorted keys.
enum SortedKeys {
    /// As this dictionary (the keys' runs, in order).
    Dictionary(Box<dyn polars_arrow::array::Array>),
    /// Plain: too many distinct values for a dictionary to pay.
    Plain,
}

/// polars' choice for a column of 64-bit keys in ascending runs (household IDs, a household's
/// members in a row), made without hashing. polars estimates the distinct values of such a
/// column by hashing every one (HyperLogLog), then hashes every one again to build the
/// dictionary in order of first appearance; over sorted keys that dictionary is the runs' heads
/// and each value's code its run's number, and the distinct values are counted exactly. The
/// rule is polars' own (a dictionary when at most three quarters of the values are distinct,
/// else plain), with the exact count for the estimate (near three quarters the two may choose
/// differently; either file reads back the same); the pages are then made by polars as from its
/// own dictionary. `None` (polars decides as ever) for any other column: not `UInt64`,
/// with nulls, 128 rows or fewer, not in ascending runs, or spanning at most 2^16 values
/// (polars' min-max path).
fn sorted_key_encoding(
    array: &dyn polars_arrow::array::Array,
    encoding: &[polars_parquet::write::Encoding],
) -> Option<SortedKeys> {
    use polars_arrow::array::{DictionaryArray, PrimitiveArray};
    use polars_arrow::datatypes::{ArrowDataType, IntegerType};
    if encoding != [polars_parquet::write::Encoding::RleDictionary] || array.len() <= 128 || array.null_count() > 0 {
        return None;
    }
    let values = array.as_any().downcast_ref::<PrimitiveArray<u64>>()?.values().as_slice();
    let (&first, &last) = (values.first()?, values.last()?);
    if !values.is_sorted() || last - first <= u64::from(u16::MAX) {
        return None;
    }
    let runs = 1 + values.windows(2).filter(|w| w[0] != w[1]).count();
    // polars: `estimated / len > 0.75` goes plain (both below 2^53: exact as f64).
    if runs as f64 / values.len() as f64 > 0.75 {
        return Some(SortedKeys::Plain);
    }
    // Codes count the runs: checked to fit once, not per value.
    u32::try_from(runs).ok()?;
    let mut heads: Vec<u64> = Vec::with_capacity(runs);
    let mut codes: Vec<u32> = Vec::with_capacity(values.len());
    let mut code = 0u32;
    for &v in values {
        match heads.last() {
            Some(&h) if h == v => {}
            Some(_) => {
                code += 1;
                heads.push(v);
            }
            None => heads.push(v),
        }
        codes.push(code);
    }
    let keys = PrimitiveArray::new(ArrowDataType::UInt32, codes.into(), None);
    let heads = PrimitiveArray::new(ArrowDataType::UInt64, heads.into(), None);
    let dtype = ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(ArrowDataType::UInt64), false);
    let dict = DictionaryArray::<u32>::try_new(dtype, keys, Box::new(heads)).ok()?;
    Some(SortedKeys::Dictionary(Box::new(dict)))
}

/// A Parquet file written in batches (bounded memory for national-scale outputs).
pub struct ParquetBatches {
    /// The file, named in errors.
    path: std::path::PathBuf,
    writer: polars::io::parquet::write::BatchedWriter<std::io::BufWriter<File>>,
    /// The file's columns as Parquet types, their encodings and the write options: what the
    /// writer's own `write_batch` encodes with, kept to encode and compress on every core.
    fields: Vec<polars_parquet::write::ParquetType>,
    encodings: Vec<Vec<polars_parquet::write::Encoding>>,
    options: polars_parquet::write::WriteOptions,
}

impl ParquetBatches {
    /// Creates the file for frames of `schema`.
    pub fn create(path: &Path, schema: &Schema, metadata: &[(String, String)]) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let w = writer(file).with_key_value_metadata(Some(file_metadata(schema, metadata)));
        let mut writer = w.batched(schema).map_err(|e| Error::from(e).writing(path))?;
        let fields = writer.parquet_schema().fields().to_vec();
        let encodings = polars::io::parquet::write::get_encodings(&schema.to_arrow(CompatLevel::newest()))
            .iter()
            .cloned()
            .collect();
        let options = polars_parquet::write::WriteOptions {
            statistics: statistics(),
            compression: compression().into(),
            version: polars_parquet::write::Version::V1,
            data_page_size: None,
        };
        Ok(ParquetBatches { path: path.to_path_buf(), writer, fields, encodings, options })
    }

    /// Appends a frame, a row group per chunk.
    ///
    /// Each column's pages are encoded and compressed on the pool, all columns at once, and the
    /// writer is handed them finished. polars' `write_batch` made the pages lazily and compressed
    /// them as it wrote, one column after the other on the writing thread: that was most of the
    /// writing of the national outputs, on one core. The bytes are the same.
    pub fn write(&mut self, df: &DataFrame) -> Result<()> {
        self.write_batches(df).map_err(|e| e.writing(&self.path))
    }

    /// [`Self::write`], its polars errors not yet naming the file.
    fn write_batches(&mut self, df: &DataFrame) -> Result<()> {
        use polars_parquet::write::{CompressedPage, array_to_columns, compress};
        use rayon::prelude::*;
        let options = self.options;
        let encode = |((array, field), encoding): ((&ArrayRef, &polars_parquet::write::ParquetType), &Vec<_>)| {
            let leaves = match sorted_key_encoding(array.as_ref(), encoding) {
                Some(SortedKeys::Dictionary(d)) => array_to_columns(d, field.clone(), options, encoding)?,
                Some(SortedKeys::Plain) => {
                    array_to_columns(array, field.clone(), options, &[polars_parquet::write::Encoding::Plain])?
                }
                None => array_to_columns(array, field.clone(), options, encoding)?,
            };
            leaves
                .into_iter()
                .map(|pages| {
                    pages
                        .map(|page| Ok(compress(page?, Vec::new(), options.compression)?))
                        .collect::<PolarsResult<Vec<CompressedPage>>>()
                })
                .collect::<PolarsResult<Vec<Vec<CompressedPage>>>>()
        };
        for batch in df.iter_chunks(CompatLevel::newest(), false) {
            if batch.is_empty() {
                continue;
            }
            if batch.columns().len() != self.fields.len() {
                return Err(Error::Config("internal: a frame's columns differ from its file's".into()));
            }
            let columns: Vec<Vec<Vec<CompressedPage>>> = crate::in_pool(|| {
                batch
                    .columns()
                    .par_iter()
                    .zip(&self.fields)
                    .zip(&self.encodings)
                    .map(encode)
                    .collect::<PolarsResult<_>>()
            })?;
            let leaves: Vec<Vec<CompressedPage>> = columns.into_iter().flatten().collect();
            self.writer.write_row_group(batch.len() as u64, &leaves)?;
        }
        Ok(())
    }

    /// Finishes the file.
    pub fn finish(self) -> Result<()> {
        self.writer.finish().map_err(|e| Error::from(e).writing(&self.path))?;
        Ok(())
    }
}

/// Reads a Parquet file's key/value metadata.
pub fn parquet_metadata(path: &Path) -> Result<Vec<(String, Option<String>)>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut r = ParquetReader::new(file);
    let md = r.get_metadata()?;
    Ok(md
        .key_value_metadata()
        .as_ref()
        .map(|kv| kv.iter().map(|k| (k.key.clone(), k.value.clone())).collect())
        .unwrap_or_default())
}

/// True when a spreadsheet would read `cell` as a formula: it starts with `=`, `+`, `-`, `@`, a tab
/// or a carriage return (OWASP's list) and is not simply a number (`-5`, `+66` stay as they are).
pub fn is_formula_like(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && cell.trim().parse::<f64>().is_err()
}

/// The text of a CSV cell meant for spreadsheets: a formula-like cell ([`is_formula_like`]) gets
/// a leading `'`, which spreadsheets show as text and do not evaluate (OWASP's advice for CSV
/// injection). Every other cell is unchanged.
///
/// ```
/// use tpmap::frame::neutralize;
/// assert_eq!(neutralize("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
/// assert_eq!(neutralize("-5"), "-5");
/// assert_eq!(neutralize("สมชาย"), "สมชาย");
/// ```
pub fn neutralize(cell: &str) -> std::borrow::Cow<'_, str> {
    if is_formula_like(cell) { std::borrow::Cow::Owned(format!("'{cell}")) } else { std::borrow::Cow::Borrowed(cell) }
}

/// Neutralises formula-like text in every string column of `df` (see [`neutralize`]); columns
/// without one are left untouched (no copy).
pub fn neutralize_formulas(df: &mut DataFrame) -> Result<()> {
    let names: Vec<PlSmallStr> = df
        .columns()
        .iter()
        .filter(|c| c.dtype() == &DataType::String)
        .filter(|c| c.str().is_ok_and(|ca| ca.iter().any(|v| v.is_some_and(is_formula_like))))
        .map(|c| c.name().clone())
        .collect();
    for name in names {
        let ca = df.column(&name)?.str()?.clone();
        let fixed: StringChunked = ca.iter().map(|v| v.map(neutralize)).collect();
        df.with_column(fixed.with_name(name).into_column())?;
    }
    Ok(())
}

/// A preamble line made safe: line breaks and other control characters become spaces (a line
/// cannot break out of its `#`), and long numbers are hidden ([`crate::ids::redact_numbers`]).
pub fn preamble_line(text: &str) -> String {
    let one: String =
        text.chars().map(|c| if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') { ' ' } else { c }).collect();
    crate::ids::redact_numbers(&one).into_owned()
}

/// Writes a frame as CSV text, after `#`-comment preamble lines, in UTF-8 or TIS-620. Every
/// output meant for spreadsheets goes through here: formula-like text cells are neutralised
/// ([`neutralize_formulas`]) and preamble lines cannot break ([`preamble_line`]).
pub fn write_csv(df: &mut DataFrame, path: &Path, preamble: &[String], encoding: Encoding) -> Result<()> {
    write_csv_text(df, path, preamble, encoding).map_err(|e| e.writing(path))
}

/// [`write_csv`], its polars errors not yet naming `path`.
fn write_csv_text(df: &mut DataFrame, path: &Path, preamble: &[String], encoding: Encoding) -> Result<()> {
    neutralize_formulas(df)?;
    let mut head: Vec<u8> = Vec::new();
    for line in preamble {
        head.extend_from_slice(b"# ");
        head.extend_from_slice(preamble_line(line).as_bytes());
        head.push(b'\n');
    }
    if encoding != Encoding::Tis620 {
        // UTF-8 goes straight to the file: the national `measures.csv` (78 MB) built in one
        // growing buffer first spent a tenth of `tpmap mpi` copying it and faulting in its pages.
        let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        w.write_all(&head).map_err(|e| Error::io(path, e))?;
        CsvWriter::new(&mut w).include_header(true).finish(df)?;
        return w.flush().map_err(|e| Error::io(path, e));
    }
    // TIS-620: the whole text, then encoded (it must be checked for characters TIS-620 lacks
    // before anything is written).
    let mut buf = head;
    CsvWriter::new(&mut buf).include_header(true).finish(df)?;
    let unencodable = || Error::Format {
        file: path.display().to_string(),
        message: "text has characters TIS-620 cannot encode".into(),
    };
    let text = String::from_utf8(buf).map_err(|_| unencodable())?;
    let (enc, _, unmappable) = encoding_rs::WINDOWS_874.encode(&text);
    if unmappable {
        return Err(unencodable());
    }
    std::fs::write(path, enc).map_err(|e| Error::io(path, e))
}

/// Appends a frame to an open CSV stream (no header when `header` is false), formula-like text
/// neutralised. Its errors name no file: a caller writing one names it with [`Error::writing`].
pub fn append_csv(df: &mut DataFrame, out: &mut impl Write, header: bool) -> Result<()> {
    neutralize_formulas(df)?;
    CsvWriter::new(out).include_header(header).finish(df)?;
    Ok(())
}

/// Writes a frame to an `.xlsx` sheet, after preamble rows (whose first cell starts with `#`),
/// with the title and comment set in the workbook's properties.
#[cfg(feature = "xlsx")]
pub fn write_xlsx(df: &DataFrame, path: &Path, sheet: &str, preamble: &[String]) -> Result<()> {
    write_xlsx_sheets(&[(sheet, df)], path, preamble)
}

/// Writes several frames as the sheets of one `.xlsx` workbook, each sheet starting with the
/// preamble lines.
#[cfg(feature = "xlsx")]
pub fn write_xlsx_sheets(sheets: &[(&str, &DataFrame)], path: &Path, preamble: &[String]) -> Result<()> {
    use rust_xlsxwriter::{DocProperties, Workbook};
    let xl = |e: rust_xlsxwriter::XlsxError| Error::Excel(e.to_string());
    let mut wb = Workbook::new();
    if !preamble.is_empty() {
        wb.set_properties(&DocProperties::new().set_title(&preamble[0]).set_comment(preamble.join(" ")));
    }
    for (sheet, df) in sheets {
        write_sheet(&mut wb, df, sheet, preamble)?;
    }
    wb.save(path).map_err(xl)?;
    Ok(())
}

#[cfg(feature = "xlsx")]
fn write_sheet(wb: &mut rust_xlsxwriter::Workbook, df: &DataFrame, sheet: &str, preamble: &[String]) -> Result<()> {
    let xl = |e: rust_xlsxwriter::XlsxError| Error::Excel(e.to_string());
    let ws = wb.add_worksheet();
    ws.set_name(sheet).map_err(xl)?;
    let mut row = 0u32;
    for line in preamble {
        ws.write_string(row, 0, format!("# {line}")).map_err(xl)?;
        row += 1;
    }
    for (c, name) in df.get_column_names().iter().enumerate() {
        ws.write_string(row, c as u16, name.as_str()).map_err(xl)?;
    }
    for (c, col) in df.columns().iter().enumerate() {
        let s = col.as_materialized_series();
        for r in 0..df.height() {
            let v = s.get(r)?;
            let (rr, cc) = (row + 1 + r as u32, c as u16);
            match v {
                AnyValue::Null => continue,
                AnyValue::String(t) => ws.write_string(rr, cc, t),
                AnyValue::StringOwned(t) => ws.write_string(rr, cc, t.as_str()),
                AnyValue::Boolean(b) => ws.write_number(rr, cc, b as u8 as f64),
                AnyValue::Date(d) => match crate::thai::PartialDate::from_days_since_epoch(d) {
                    Some(date) => ws.write_string(rr, cc, date.to_string()),
                    None => ws.write_number(rr, cc, d as f64),
                },
                // Integers keep full precision as text when Excel's doubles cannot hold them.
                AnyValue::UInt64(x) if x > (1u64 << 53) => ws.write_string(rr, cc, x.to_string()),
                other => match other.extract::<f64>() {
                    Some(x) => ws.write_number(rr, cc, x),
                    None => ws.write_string(rr, cc, other.to_string()),
                },
            }
            .map_err(xl)?;
        }
    }
    Ok(())
}

/// Reads an indicator status back from a status column value (`"1"`, `"0"`, `"na"`, null).
pub fn status_from_text(v: Option<&str>) -> IndicatorStatus {
    match v {
        None => IndicatorStatus::Missing,
        Some("na") => IndicatorStatus::NotApplicable,
        Some("1") => IndicatorStatus::Fail,
        _ => IndicatorStatus::Pass,
    }
}

/// Hands a polars frame to arrow-rs as a `RecordBatch` through the Arrow C Data Interface.
///
/// Numeric and boolean buffers are shared, not copied; polars' string views are exported as
/// Arrow `Utf8View`. Each polars chunk becomes one batch.
#[cfg(feature = "arrow")]
pub fn to_record_batches(df: &DataFrame) -> Result<Vec<arrow_array::RecordBatch>> {
    use arrow_array::{RecordBatch, StructArray, ffi};
    use polars_arrow::ffi as pffi;
    let mut df = df.clone();
    df.align_chunks_par();
    let mut out = Vec::new();
    let schema = df.schema().to_arrow(CompatLevel::newest());
    for chunk in df.iter_chunks(CompatLevel::newest(), false) {
        let fields: Vec<polars_arrow::datatypes::Field> = schema.iter_values().cloned().collect();
        let dtype = polars_arrow::datatypes::ArrowDataType::Struct(fields);
        let arr = polars_arrow::array::StructArray::new(dtype.clone(), chunk.len(), chunk.into_arrays(), None);
        let field = polars_arrow::datatypes::Field::new("".into(), dtype, false);
        let c_array = pffi::export_array_to_c(Box::new(arr));
        let c_schema = pffi::export_field_to_c(&field);
        // SAFETY: the two structs were just produced by polars' exporter for the same array and
        // follow the C Data Interface layout that arrow-rs's FFI types mirror; ownership of the
        // buffers moves to arrow-rs, which calls the release callbacks.
        let data = unsafe {
            let a: ffi::FFI_ArrowArray = std::mem::transmute(c_array);
            let s: ffi::FFI_ArrowSchema = std::mem::transmute(c_schema);
            ffi::from_ffi(a, &s).map_err(|e| Error::Format { file: "frame".into(), message: e.to_string() })?
        };
        out.push(RecordBatch::from(StructArray::from(data)));
    }
    Ok(out)
}

/// Household scores as a frame: key, village, members, the score (float, and exactly as numerator
/// over denominator), poor, target
/// poor members, and one column per dimension saying whether the household is deprived in it.
pub fn household_scores_frame(
    h: &Households,
    spec: &crate::score::Spec,
    scores: &crate::score::Scores,
    target: &[f64],
) -> Result<DataFrame> {
    household_scores_frame_rows(h, spec, scores, target, 0..h.len(), StatusText::Plain)
}

/// Rows `rows` of [`household_scores_frame`] (for writing the national table in slices).
fn household_scores_frame_rows(
    h: &Households,
    spec: &crate::score::Spec,
    scores: &crate::score::Scores,
    target: &[f64],
    rows: std::ops::Range<usize>,
    how: StatusText,
) -> Result<DataFrame> {
    let r = rows;
    let mut cols = vec![
        Column::new("household_id".into(), h.id[r.clone()].iter().map(|x| x.0).collect::<Vec<u64>>()),
        area_column("village_code", h.village[r.clone()].iter().copied(), how)?,
        Column::new("members".into(), h.members[r.clone()].to_vec()),
        Column::new("score".into(), scores.score[r.clone()].to_vec()),
    ];
    if let Some(num) = &scores.score_num {
        // The exact score is score_numerator / score_denominator (integers, not 13 M strings).
        cols.push(Column::new("score_numerator".into(), num[r.clone()].to_vec()));
        cols.push(Column::new("score_denominator".into(), vec![scores.denominator; r.len()]));
    }
    cols.push(Column::new("poor".into(), scores.poor[r.clone()].to_vec()));
    cols.push(Column::new("dropped".into(), scores.dropped[r.clone()].to_vec()));
    cols.push(Column::new(
        "target_poor".into(),
        target[r.clone()]
            .iter()
            .zip(&scores.poor[r.clone()])
            .map(|(t, &p)| if p { *t } else { 0.0 })
            .collect::<Vec<f64>>(),
    ));
    let mut dims = vec![0u8; r.len()];
    for (d, name) in spec.dimensions.iter().enumerate() {
        let m = spec.dimension_mask(d);
        let v: Vec<bool> = scores.deprived[r.clone()].iter().map(|&x| x & m != 0).collect();
        for (k, &b) in v.iter().enumerate() {
            dims[k] += b as u8;
        }
        cols.push(Column::new(format!("deprived_{name}").into(), v));
    }
    cols.push(Column::new("deprived_dimensions".into(), dims));
    Ok(DataFrame::new_infer_height(cols)?)
}

/// Appends [`household_scores_frame`]'s rows to `out` one row group (2^18 rows) at a time: the
/// national frame whole was about 0.7 GB of fresh memory, and on machines where a first touch of
/// memory is slow its page faults cost more than the writing (docs/bench/national-writing.txt).
pub fn append_household_scores(
    out: &mut ParquetAppender,
    h: &Households,
    spec: &crate::score::Spec,
    scores: &crate::score::Scores,
    target: &[f64],
) -> Result<()> {
    append_slices(out, h.len(), ROW_GROUP, |rows| {
        household_scores_frame_rows(h, spec, scores, target, rows, StatusText::Dictionary)
    })
}

/// The household deprivation matrix of a spec, for `tpmap mpi` and other AF tools: key, the area
/// codes at each level, members, and one `UInt8` column per indicator (1 deprived, 0 not deprived
/// or not applicable, null missing), named `tpmap_1_1`-style; with [`spec_csv`] it reproduces the
/// measures of the spec (not-applicable counted as not deprived).
pub fn deprivation_matrix_frame(
    h: &Households,
    spec: &crate::score::Spec,
    p: &crate::score::Profiles,
) -> Result<DataFrame> {
    deprivation_matrix_frame_rows(h, spec, p, 0..h.len(), StatusText::Plain)
}

/// Rows `rows` of [`deprivation_matrix_frame`] (for writing the national matrix in slices).
fn deprivation_matrix_frame_rows(
    h: &Households,
    spec: &crate::score::Spec,
    p: &crate::score::Profiles,
    rows: std::ops::Range<usize>,
    how: StatusText,
) -> Result<DataFrame> {
    use crate::areas::AreaLevel;
    let r = rows;
    let villages = &h.village[r.clone()];
    let mut cols = vec![Column::new("household_id".into(), h.id[r.clone()].iter().map(|x| x.0).collect::<Vec<u64>>())];
    for level in [AreaLevel::Province, AreaLevel::Amphoe, AreaLevel::Tambon] {
        // A code's parent is a prefix of it (a code shorter than the level stands for itself).
        cols.push(area_column(level.name(), villages.iter().map(|v| v.at(level).unwrap_or(*v)), how)?);
    }
    cols.push(area_column("village", villages.iter().copied(), how)?);
    cols.push(Column::new("members".into(), h.members[r.clone()].iter().map(|&m| u32::from(m)).collect::<Vec<u32>>()));
    let (fail, missing) = (&p.fail[r.clone()], &p.missing[r.clone()]);
    for it in &spec.items {
        // The 0/1 values and, when a row lacks one, the validity: built as the array itself (an
        // `Option<u8>` per row through polars' builder was a second copy of every cell).
        let bit = 1u64 << it.bit;
        let values: Vec<u8> = fail.iter().map(|&f| u8::from(f & bit != 0)).collect();
        let validity = missing
            .iter()
            .any(|&m| m & bit != 0)
            .then(|| polars_arrow::bitmap::Bitmap::from_iter(missing.iter().map(|&m| m & bit == 0)));
        let ca = UInt8Chunked::from_vec_validity(matrix_column(&it.label).into(), values, validity);
        cols.push(ca.into_column());
    }
    Ok(DataFrame::new_infer_height(cols)?)
}

/// Appends [`deprivation_matrix_frame`]'s rows to `out` one row group (2^18 rows) at a time (the
/// national matrix whole was about 1.4 GB of fresh memory for a 26 MB file).
pub fn append_deprivations(
    out: &mut ParquetAppender,
    h: &Households,
    spec: &crate::score::Spec,
    p: &crate::score::Profiles,
) -> Result<()> {
    append_slices(out, h.len(), ROW_GROUP, |rows| {
        deprivation_matrix_frame_rows(h, spec, p, rows, StatusText::Dictionary)
    })
}

/// Column name of an indicator in the deprivation matrix: `tpmap_1_1` for TPMAP code 1.1.
pub fn matrix_column(label: &str) -> String {
    if label.starts_with("bmn") { label.to_string() } else { format!("tpmap_{}", label.replace('.', "_")) }
}

/// The spec as `dimension,indicator,weight` CSV (the input of `tpmap mpi`).
pub fn spec_csv(spec: &crate::score::Spec) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut rows = vec![["dimension".to_string(), "indicator".to_string(), "weight".to_string()]];
    for it in &spec.items {
        rows.push([spec.dimensions[it.dimension].clone(), matrix_column(&it.label), it.weight.to_string()]);
    }
    for r in rows {
        // Writing to a Vec cannot fail.
        let _ = w.write_record(r.iter().map(|f| neutralize(f).into_owned()));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{IngestOptions, ingest};

    /// A full disk while writing names the file and keeps the system's error: `/dev/full` fails
    /// every write with "No space left on device" (os error 28). The frames are larger than the
    /// writers' 1 MiB buffers, so polars' own writes meet the error, not only the last flush
    /// (before, its error reached the user as "polars: No space left on device" with no file).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_names_the_file_written() {
        let full = Path::new("/dev/full");
        if std::fs::OpenOptions::new().write(true).open(full).is_err() {
            return; // no /dev/full in this sandbox: nothing to check
        }
        let text: Vec<String> = (0..200_000).map(|i| format!("บ้านเลขที่ {i}")).collect();
        let n: Vec<u64> = (0..200_000).collect();
        let df = DataFrame::new(n.len(), vec![Column::new("text".into(), text), Column::new("n".into(), n)]).unwrap();
        let is_full = |e: &Error| {
            matches!(e, Error::Io { path, source } if path == full && source.raw_os_error() == Some(28))
                && e.to_string().starts_with("/dev/full: ")
        };
        let e = write_csv(&mut df.clone(), full, &[], Encoding::Utf8).unwrap_err();
        assert!(is_full(&e), "{e:?}");
        let mut w = std::io::BufWriter::new(std::fs::File::create(full).unwrap());
        let e = append_csv(&mut df.clone(), &mut w, true).map_err(|e| e.writing(full)).unwrap_err();
        assert!(is_full(&e), "{e:?}");
        // polars' Parquet writer passes the system's error on as text ("underlying IO error: …"),
        // so it is a format error of the file, with the system's words.
        let e = write_parquet(&mut df.clone(), full, &[]).unwrap_err();
        let shown = e.to_string();
        assert!(shown.starts_with("/dev/full: ") && shown.contains("os error 28"), "{shown}");
    }

    /// Text columns written as dictionaries read back as the text written plain: repeated
    /// neighbours, values that come back after others, the empty text, and enough distinct
    /// values for codes of one, two and four bytes.
    #[test]
    fn text_dictionaries_read_back_as_the_plain_text() {
        for distinct in [3usize, 300, 70_000] {
            let values: Vec<String> = (0..150_000usize)
                .map(|i| if i % 7 == 0 { String::new() } else { format!("v{}", (i / 2) % distinct) })
                .collect();
            let plain = text_column("t", values.iter().map(String::as_str), StatusText::Plain).unwrap();
            let dict = text_column("t", values.iter().map(String::as_str), StatusText::Dictionary).unwrap();
            assert!(matches!(dict.dtype(), DataType::Categorical(..) | DataType::Enum(..)), "{:?}", dict.dtype());
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.parquet");
            write_parquet(&mut DataFrame::new_infer_height(vec![dict]).unwrap(), &path, &[]).unwrap();
            let read = ParquetReader::new(File::open(&path).unwrap()).finish().unwrap();
            assert_eq!(read.column("t").unwrap().dtype(), &DataType::String);
            assert!(read.equals_missing(&DataFrame::new_infer_height(vec![plain]).unwrap()), "{distinct} values");
        }
    }

    /// Columns of sorted 64-bit keys, whose dictionary (or its refusal) tpmap works out without
    /// hashing, are written byte for byte as polars' own writer writes them: runs of a few rows
    /// (a dictionary), every value distinct (plain), a narrow range (polars' min-max path), and
    /// keys out of order (polars' hashing), over two row groups. (Where three quarters of the
    /// values are distinct, polars' estimate and the exact count may choose differently.)
    #[test]
    fn sorted_keys_are_written_as_polars_writes_them() {
        let n = ROW_GROUP + 40_000;
        let base = 4_001_000_000_000u64;
        let columns = vec![
            Column::new("runs".into(), (0..n as u64).map(|i| base + 7 * (i / 3)).collect::<Vec<u64>>()),
            Column::new("distinct".into(), (0..n as u64).map(|i| base + 2 * i).collect::<Vec<u64>>()),
            Column::new("narrow".into(), (0..n as u64).map(|i| base + i / 8).collect::<Vec<u64>>()),
            Column::new("shuffled".into(), (0..n as u64).map(|i| base + (i * 7_919) % 100_003).collect::<Vec<u64>>()),
        ];
        let mut df = DataFrame::new_infer_height(columns).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours.parquet");
        let theirs = dir.path().join("theirs.parquet");
        write_parquet(&mut df, &ours, &[]).unwrap();
        writer(File::create(&theirs).unwrap())
            .with_key_value_metadata(Some(file_metadata(df.schema(), &[])))
            .finish(&mut df)
            .unwrap();
        assert_eq!(std::fs::read(&ours).unwrap(), std::fs::read(&theirs).unwrap());
        let read = ParquetReader::new(File::open(&ours).unwrap()).finish().unwrap();
        assert!(read.equals(&df));
        // Three quarters distinct exactly: polars' estimate may choose plain, the exact count a
        // dictionary; the file reads back the same.
        let half: Vec<u64> = (0..n as u64).map(|i| base + 1_000 * (i - i % 2 + (i % 4) / 3)).collect();
        let mut half = DataFrame::new_infer_height(vec![Column::new("half".into(), half)]).unwrap();
        write_parquet(&mut half, &ours, &[]).unwrap();
        assert!(ParquetReader::new(File::open(&ours).unwrap()).finish().unwrap().equals(&half));
        // The shortcut itself: a dictionary of the runs, plain for distinct keys, polars' call otherwise.
        let dict = [polars_parquet::write::Encoding::RleDictionary];
        let array = |name: &str| df.column(name).unwrap().as_materialized_series().rechunk().chunks()[0].clone();
        assert!(
            matches!(sorted_key_encoding(array("runs").as_ref(), &dict), Some(SortedKeys::Dictionary(d)) if d.len() == n)
        );
        assert!(matches!(sorted_key_encoding(array("distinct").as_ref(), &dict), Some(SortedKeys::Plain)));
        assert!(sorted_key_encoding(array("narrow").as_ref(), &dict).is_none());
        assert!(sorted_key_encoding(array("shuffled").as_ref(), &dict).is_none());
        assert!(sorted_key_encoding(array("runs").as_ref(), &[polars_parquet::write::Encoding::Plain]).is_none());
    }

    /// Optional columns built as values and a bitmap are the columns polars' builder makes from
    /// `Option`s: equal, and written to the same bytes, with no null, some and only nulls.
    #[test]
    fn optional_columns_are_the_builders() {
        for nulls in [0usize, 7, 1] {
            let n = 1_000usize;
            let missing = |i: usize| nulls == 1 || (nulls > 1 && i % nulls == 3);
            let small: Vec<Option<u8>> =
                (0..n).map(|i| (!missing(i)).then(|| u8::try_from(i % 97).unwrap_or(0))).collect();
            let days: Vec<Option<i32>> =
                (0..n).map(|i| (!missing(i)).then(|| i32::try_from(i).unwrap_or(0) * 37 - 9_000)).collect();
            let flags: Vec<Option<bool>> = (0..n).map(|i| (!missing(i)).then_some(i % 3 == 0)).collect();
            let ours = vec![
                optional::<UInt8Type>("a", small.iter().copied()),
                optional::<Int32Type>("d", days.iter().copied()).cast(&DataType::Date).unwrap(),
                optional_flags("f", &flags),
            ];
            let theirs = vec![
                Column::new("a".into(), small.clone()),
                Column::new("d".into(), days.clone()).cast(&DataType::Date).unwrap(),
                Column::new("f".into(), flags.clone()),
            ];
            let mut ours = DataFrame::new_infer_height(ours).unwrap();
            let mut theirs = DataFrame::new_infer_height(theirs).unwrap();
            assert!(ours.equals_missing(&theirs), "{nulls}");
            let dir = tempfile::tempdir().unwrap();
            let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
            write_parquet(&mut ours, &a, &[]).unwrap();
            write_parquet(&mut theirs, &b, &[]).unwrap();
            assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "{nulls}");
        }
    }

    /// Status columns made as dictionaries, a block of rows at a time on every core, hold the
    /// text of the plain ones: over several tasks and a ragged last byte, from a row range that
    /// does not start at 0, for indicators with every mix of statuses (all missing, one value,
    /// no missing, a missing row only at the very end).
    #[test]
    fn dictionary_status_columns_are_the_plain_text() {
        let n = (1 << 16) * 2 + 1_003;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut statuses = crate::extract::StatusMatrix::new(0, n);
        for r in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (mut fail, mut na, mut missing) = (x & 0xffff, (x >> 16) & 0xffff, (x >> 32) & 0xffff);
            na &= !missing;
            fail &= !(na | missing);
            // 0: all missing; 1: all fail; 2: no missing row; 3: missing on the last row only.
            missing = (missing | 1) & !0b1110;
            fail = (fail | 0b10) & !1;
            na &= !0b11;
            if r == n - 1 {
                missing |= 0b1000;
                fail &= !0b1000;
                na &= !0b1000;
            } else {
                missing &= !0b1000;
            }
            statuses.push(fail, na, missing);
        }
        let indicators: Vec<usize> = (0..16).collect();
        let name = |i: usize| format!("s{i}");
        for rows in [0..n, 5..n - 3, 7..7, 64..200] {
            let plain = status_columns(name, &statuses, &indicators, rows.clone(), StatusText::Plain).unwrap();
            let dict = status_columns(name, &statuses, &indicators, rows.clone(), StatusText::Dictionary).unwrap();
            for (p, d) in plain.iter().zip(&dict) {
                assert!(matches!(d.dtype(), DataType::Categorical(..) | DataType::Enum(..)), "{:?}", d.dtype());
                let d = d.cast(&DataType::String).unwrap();
                assert!(p.as_materialized_series().equals_missing(d.as_materialized_series()), "{} {rows:?}", p.name());
            }
            if rows == (0..n) {
                assert_eq!(plain[0].null_count(), n, "all missing");
                assert_eq!(plain[1].str().unwrap().iter().filter(|v| *v == Some("1")).count(), n, "all fail");
                assert_eq!(plain[2].null_count(), 0);
                assert_eq!(plain[3].null_count(), 1);
                assert!(plain[4].str().unwrap().iter().any(|v| v == Some("na")));
            }
        }
    }

    /// Statuses written as dictionaries read back as the same text, by polars and by our ingest,
    /// including a column whose rows are all missing and one that holds a single value.
    #[test]
    fn dictionary_statuses_read_back_as_text() {
        let got = ingest(
            "data-samples/households.csv".as_ref(),
            "data-samples/persons.csv".as_ref(),
            &IngestOptions::default(),
        )
        .unwrap();
        let mut x = got.extract;
        let first = (0..x.edition.len()).find(|&i| x.households.statuses.present & (1u64 << i) != 0).unwrap();
        let last = (0..x.edition.len()).rev().find(|&i| x.households.statuses.present & (1u64 << i) != 0).unwrap();
        assert_ne!(first, last);
        for r in 0..x.households.len() {
            x.households.statuses.missing[r] |= 1u64 << first;
            x.households.statuses.fail[r] |= 1u64 << last;
            x.households.statuses.na[r] &= !(1u64 << last);
            x.households.statuses.missing[r] &= !(1u64 << last);
        }
        let dir = tempfile::tempdir().unwrap();
        let (h, p) = (dir.path().join("h.parquet"), dir.path().join("p.parquet"));
        write_households_parquet(&x.households, &x.edition, &h, &[]).unwrap();
        write_persons_parquet(&x.persons, &x.households.id, &x.edition, &p, &[]).unwrap();

        let read = ParquetReader::new(File::open(&h).unwrap()).finish().unwrap();
        let expected = households_frame(&x.households, &x.edition).unwrap();
        assert_eq!(read.schema(), expected.schema());
        assert!(read.equals_missing(&expected));
        let name = indicator_column_name(&x.edition, first);
        assert_eq!(read.column(&name).unwrap().null_count(), x.households.len());
        let read = ParquetReader::new(File::open(&p).unwrap()).finish().unwrap();
        let expected = persons_frame(&x.persons, &x.households.id, &x.edition).unwrap();
        assert_eq!(read.schema(), expected.schema());
        assert!(read.equals_missing(&expected));
        // A slice is the whole frame's rows; one past the end stops at the end.
        let n = x.persons.len();
        let tail = persons_frame_rows(&x.persons, &x.households.id, &x.edition, n - 3..n + 5).unwrap();
        assert!(tail.equals_missing(&expected.slice(n as i64 - 3, 3)));
        assert_eq!(persons_frame_rows(&x.persons, &x.households.id, &x.edition, n + 1..n + 2).unwrap().height(), 0);

        // Our ingest reads them as it reads the same frames written as text.
        let (th, tp) = (dir.path().join("th.parquet"), dir.path().join("tp.parquet"));
        write_parquet(&mut households_frame(&x.households, &x.edition).unwrap(), &th, &[]).unwrap();
        write_parquet(&mut persons_frame(&x.persons, &x.households.id, &x.edition).unwrap(), &tp, &[]).unwrap();
        let back = ingest(&h, &p, &IngestOptions::default()).unwrap();
        let text = ingest(&th, &tp, &IngestOptions::default()).unwrap();
        assert_eq!(back.extract.households.len(), x.households.len());
        assert_eq!(back.extract.households.statuses, text.extract.households.statuses);
        assert_eq!(back.extract.persons.statuses, text.extract.persons.statuses);
        assert_eq!(
            back.extract.households.statuses.fail.iter().filter(|&&f| f & (1u64 << last) != 0).count(),
            x.households.len()
        );
    }
}
