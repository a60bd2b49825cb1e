//! Row sources: CSV (UTF-8 or TIS-620), Parquet and Excel files, and polars frames, read in
//! batches of rows behind one [`Batch`] trait so validation is written once.
//!
//! CSV is read with the `csv` crate rather than polars: validation must account for every input
//! row, and the `csv` crate reports each record's line, keeps ragged rows (polars either fails on
//! them or pads them silently) and lets us transcode TIS-620 fields as they stream, without holding
//! the decoded file in memory.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use polars::prelude::*;
use polars_arrow::array::{Array, BooleanArray, PrimitiveArray, Utf8ViewArray};

use crate::error::{Error, Result};

/// One cell, borrowed from its batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    /// Empty or null.
    Null,
    /// Text.
    Str(&'a str),
    /// An integer (typed Parquet or Excel column).
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A date, as days since 1970-01-01.
    Date(i32),
}

impl Cell<'_> {
    /// The cell as the text a person would see (for rejected-row output).
    pub fn to_text(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Str(s) => s.to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => f.to_string(),
            Cell::Bool(b) => b.to_string(),
            Cell::Date(d) => crate::thai::PartialDate::from_days_since_epoch(*d).to_string(),
        }
    }
}

/// A batch of rows from one source.
pub trait Batch: Sync {
    /// Rows in the batch.
    fn len(&self) -> usize;
    /// True when the batch has no rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The cell at `row` (within the batch) and `col` (position in the header).
    fn cell(&self, row: usize, col: usize) -> Cell<'_>;
    /// Physical line (CSV) or sheet row (Excel) of `row`, where known.
    fn line(&self, row: usize) -> Option<u64>;
    /// For sources with ragged rows: the number of fields `row` really had.
    fn field_count(&self, _row: usize) -> Option<usize> {
        None
    }
    /// True when a field of `row` was not valid text in the file's encoding.
    fn bad_encoding(&self, _row: usize) -> bool {
        false
    }
}

/// Text encoding of a CSV file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// Detect: UTF-8 when the start of the file is valid UTF-8, else TIS-620.
    #[default]
    Auto,
    /// UTF-8, with or without a byte-order mark.
    Utf8,
    /// TIS-620 / Windows-874 (Thai single-byte).
    Tis620,
}

impl std::str::FromStr for Encoding {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "auto" => Ok(Encoding::Auto),
            "utf8" | "utf-8" => Ok(Encoding::Utf8),
            "tis620" | "tis-620" | "windows-874" | "cp874" => Ok(Encoding::Tis620),
            _ => Err(Error::Parse(format!("unknown encoding '{s}' (auto, utf-8, tis-620)"))),
        }
    }
}

/// Guesses the encoding of a CSV sample: UTF-8 if it decodes (allowing a character cut at the
/// end), else TIS-620.
pub fn detect_encoding(sample: &[u8]) -> Encoding {
    match std::str::from_utf8(sample) {
        Ok(_) => Encoding::Utf8,
        Err(e) if e.error_len().is_none() && sample.len() - e.valid_up_to() < 4 => Encoding::Utf8,
        Err(_) => Encoding::Tis620,
    }
}

/// File formats the readers take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma- (or tab-, semicolon-, pipe-) separated text.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// Excel workbook (`.xlsx`).
    Xlsx,
}

impl Format {
    /// The format named by a file's extension (`.csv`, `.tsv`, `.txt`, `.parquet`, `.pq`, `.xlsx`).
    pub fn from_path(path: &Path) -> Result<Format> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "tsv" | "txt" => Ok(Format::Csv),
            "parquet" | "pq" => Ok(Format::Parquet),
            "xlsx" | "xlsm" => Ok(Format::Xlsx),
            _ => Err(Error::Format {
                file: path.display().to_string(),
                message: "unknown file type (expected .csv, .parquet or .xlsx)".into(),
            }),
        }
    }
}

/// Rows per batch: large enough to amortise per-batch work, small enough to bound memory.
pub const BATCH_ROWS: usize = 1 << 17;

// ---------------------------------------------------------------------------------------------
// CSV

/// A CSV reader that yields batches of records, decoded to UTF-8.
pub struct CsvSource {
    reader: csv::Reader<Box<dyn Read + Send>>,
    /// Header fields, decoded.
    pub header: Vec<String>,
    /// The encoding in use (after detection).
    pub encoding: Encoding,
    line_offset: u64,
    record: csv::ByteRecord,
    scratch: String,
    done: bool,
}

impl CsvSource {
    /// Opens a CSV file: skips a UTF-8 byte-order mark and leading `#` comment lines (the marker
    /// of synthetic files), detects the encoding and the delimiter, and reads the header.
    pub fn open(path: &Path, encoding: Encoding) -> Result<CsvSource> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut buf = BufReader::with_capacity(1 << 20, file);
        let io = |e| Error::io(path, e);
        // Byte-order mark.
        if buf.fill_buf().map_err(io)?.starts_with(b"\xEF\xBB\xBF") {
            buf.consume(3);
        }
        // Leading comment lines are a preamble, not rows.
        let mut line_offset = 0u64;
        while buf.fill_buf().map_err(io)?.first() == Some(&b'#') {
            let mut skip = Vec::new();
            buf.read_until(b'\n', &mut skip).map_err(io)?;
            line_offset += 1;
        }
        let sample = buf.fill_buf().map_err(io)?;
        let encoding = match encoding {
            Encoding::Auto => detect_encoding(sample),
            e => e,
        };
        let first_line = sample.split(|&b| b == b'\n').next().unwrap_or(&[]);
        let count = |d: u8| first_line.iter().filter(|&&b| b == d).count();
        let delimiter = [b',', b'\t', b';', b'|'].into_iter().max_by_key(|&d| (count(d), d == b',')).unwrap_or(b',');
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(Box::new(buf) as Box<dyn Read + Send>);
        let mut record = csv::ByteRecord::new();
        if !reader.read_byte_record(&mut record).map_err(|e| csv_error(path, e))? {
            return Err(Error::Format {
                file: path.display().to_string(),
                message: "file is empty (no header)".into(),
            });
        }
        let mut header = Vec::with_capacity(record.len());
        let mut scratch = String::new();
        for f in record.iter() {
            let mut s = String::new();
            decode_into(f, encoding, &mut s, &mut scratch);
            header.push(s);
        }
        Ok(CsvSource { reader, header, encoding, line_offset, record, scratch, done: false })
    }

    /// The next batch of up to `max_rows` records, or `None` at the end.
    pub fn next_batch(&mut self, path: &Path, max_rows: usize) -> Result<Option<CsvBatch>> {
        if self.done {
            return Ok(None);
        }
        let width = self.header.len();
        let mut b = CsvBatch {
            text: String::with_capacity(max_rows * 64),
            ends: Vec::with_capacity(max_rows * width),
            width,
            field_counts: Vec::with_capacity(max_rows),
            lines: Vec::with_capacity(max_rows),
            bad: Vec::new(),
        };
        while b.field_counts.len() < max_rows {
            if !self.reader.read_byte_record(&mut self.record).map_err(|e| csv_error(path, e))? {
                self.done = true;
                break;
            }
            let line = self.record.position().map(|p| p.line()).unwrap_or(0) + self.line_offset;
            // A blank line is not a record: the csv crate skips it, and so do we.
            let row = b.field_counts.len();
            let mut bad = false;
            for i in 0..width {
                if let Some(f) = self.record.get(i) {
                    bad |= !decode_into(f, self.encoding, &mut b.text, &mut self.scratch);
                }
                b.ends.push(b.text.len() as u32);
            }
            if b.text.len() > u32::MAX as usize / 2 {
                return Err(Error::Format {
                    file: path.display().to_string(),
                    message: "a batch exceeded 2 GiB of text".into(),
                });
            }
            if bad {
                b.bad.push(row);
            }
            b.field_counts.push(self.record.len() as u32);
            b.lines.push(line);
        }
        Ok(if b.field_counts.is_empty() { None } else { Some(b) })
    }
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    match e.kind() {
        csv::ErrorKind::Io(_) => {
            Error::Format { file: path.display().to_string(), message: format!("read error: {e}") }
        }
        _ => Error::Csv(e),
    }
}

/// Appends `bytes` decoded from `encoding` to `out`; false when they were not valid text
/// (invalid UTF-8 is replaced with U+FFFD). TIS-620 is decoded into `scratch` first: encoding_rs
/// writes into a String's spare capacity, which for the large batch buffer would cost its whole
/// size on every field.
fn decode_into(bytes: &[u8], encoding: Encoding, out: &mut String, scratch: &mut String) -> bool {
    match encoding {
        Encoding::Tis620 => {
            if bytes.is_ascii() {
                out.push_str(std::str::from_utf8(bytes).expect("ASCII"));
                return true;
            }
            let mut dec = encoding_rs::WINDOWS_874.new_decoder_without_bom_handling();
            scratch.clear();
            scratch.reserve(dec.max_utf8_buffer_length(bytes.len()).unwrap_or(bytes.len() * 3));
            let (res, read, had_errors) = dec.decode_to_string(bytes, scratch, true);
            // The reservation above is the decoder's own bound: the whole input is consumed.
            assert!(res == encoding_rs::CoderResult::InputEmpty && read == bytes.len(), "TIS-620 decoder bound");
            out.push_str(scratch);
            !had_errors
        }
        _ => match std::str::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(s);
                true
            }
            Err(_) => {
                out.push_str(&String::from_utf8_lossy(bytes));
                false
            }
        },
    }
}

/// A batch of CSV records: all field text in one buffer.
pub struct CsvBatch {
    text: String,
    ends: Vec<u32>,
    width: usize,
    field_counts: Vec<u32>,
    lines: Vec<u64>,
    bad: Vec<usize>,
}

impl Batch for CsvBatch {
    fn len(&self) -> usize {
        self.field_counts.len()
    }
    fn cell(&self, row: usize, col: usize) -> Cell<'_> {
        let k = row * self.width + col;
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        let s = &self.text[start..self.ends[k] as usize];
        if s.is_empty() { Cell::Null } else { Cell::Str(s) }
    }
    fn line(&self, row: usize) -> Option<u64> {
        Some(self.lines[row])
    }
    fn field_count(&self, row: usize) -> Option<usize> {
        Some(self.field_counts[row] as usize)
    }
    fn bad_encoding(&self, row: usize) -> bool {
        self.bad.binary_search(&row).is_ok()
    }
}

// ---------------------------------------------------------------------------------------------
// polars frames (Parquet files, or frames handed in by a caller)

enum Col<'a> {
    Null,
    Str(&'a Utf8ViewArray),
    Int(&'a PrimitiveArray<i64>),
    Float(&'a PrimitiveArray<f64>),
    Bool(&'a BooleanArray),
    Date(&'a PrimitiveArray<i32>),
}

/// A batch over a polars [`DataFrame`]: each column read in place from its Arrow array (one chunk
/// per column), with no per-batch copy of the cells.
pub struct FrameBatch<'a> {
    cols: Vec<Col<'a>>,
    rows: usize,
}

impl<'a> FrameBatch<'a> {
    /// Views the columns of `df` (which must be a single chunk per column: see
    /// [`DataFrame::rechunk_mut_par`]). Columns of other types are cast into `casts` first.
    pub fn new(df: &'a DataFrame, casts: &'a mut Vec<Series>) -> Result<FrameBatch<'a>> {
        casts.clear();
        let mut plan = Vec::with_capacity(df.width());
        for c in df.columns() {
            let s = c.as_materialized_series();
            let kind = match s.dtype() {
                DataType::String => 's',
                DataType::Boolean => 'b',
                DataType::Null => 'n',
                DataType::Date => {
                    casts.push(s.cast(&DataType::Int32)?.rechunk());
                    'd'
                }
                DataType::Float32 | DataType::Float64 => {
                    casts.push(s.cast(&DataType::Float64)?.rechunk());
                    'f'
                }
                dt if dt.is_integer() => {
                    casts.push(s.cast(&DataType::Int64)?.rechunk());
                    'i'
                }
                _ => {
                    casts.push(s.cast(&DataType::String)?.rechunk());
                    's'
                }
            };
            plan.push(kind);
        }
        let single = |n: usize| -> Result<()> {
            if n == 1 {
                Ok(())
            } else {
                Err(Error::Format {
                    file: "frame".into(),
                    message: "frame batches must be one chunk per column".into(),
                })
            }
        };
        let mut cast_iter = casts.iter();
        let mut cols = Vec::with_capacity(plan.len());
        for (c, kind) in df.columns().iter().zip(plan) {
            let own = c.as_materialized_series();
            let col = match kind {
                'n' => Col::Null,
                's' => {
                    let ca = if own.dtype() == &DataType::String {
                        own.str()?
                    } else {
                        cast_iter.next().expect("cast").str()?
                    };
                    single(ca.chunks().len())?;
                    Col::Str(ca.downcast_iter().next().expect("one chunk"))
                }
                'b' => {
                    single(own.bool()?.chunks().len())?;
                    Col::Bool(own.bool()?.downcast_iter().next().expect("one chunk"))
                }
                'd' => Col::Date(cast_iter.next().expect("cast").i32()?.downcast_iter().next().expect("one chunk")),
                'f' => Col::Float(cast_iter.next().expect("cast").f64()?.downcast_iter().next().expect("one chunk")),
                _ => Col::Int(cast_iter.next().expect("cast").i64()?.downcast_iter().next().expect("one chunk")),
            };
            cols.push(col);
        }
        Ok(FrameBatch { cols, rows: df.height() })
    }
}

impl Batch for FrameBatch<'_> {
    fn len(&self) -> usize {
        self.rows
    }
    fn cell(&self, row: usize, col: usize) -> Cell<'_> {
        match self.cols[col] {
            Col::Null => Cell::Null,
            Col::Str(a) if a.is_valid(row) => {
                let v = a.value(row);
                if v.is_empty() { Cell::Null } else { Cell::Str(v) }
            }
            Col::Int(a) if a.is_valid(row) => Cell::Int(a.value(row)),
            Col::Float(a) if a.is_valid(row) => Cell::Float(a.value(row)),
            Col::Bool(a) if a.is_valid(row) => Cell::Bool(a.value(row)),
            Col::Date(a) if a.is_valid(row) => Cell::Date(a.value(row)),
            _ => Cell::Null,
        }
    }
    fn line(&self, _row: usize) -> Option<u64> {
        None
    }
}

/// Reads a Parquet file's row count and column names.
pub fn parquet_shape(path: &Path) -> Result<(usize, Vec<String>)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut r = ParquetReader::new(file);
    let n = r.num_rows()?;
    let schema = r.schema()?;
    Ok((n, schema.iter_names().map(|s| s.to_string()).collect()))
}

/// Reads rows `offset..offset+len` of a Parquet file (only the row groups that hold them).
pub fn read_parquet_slice(path: &Path, offset: usize, len: usize) -> Result<DataFrame> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut df = ParquetReader::new(file).with_slice(Some((offset, len))).finish()?;
    df.rechunk_mut_par();
    Ok(df)
}

// ---------------------------------------------------------------------------------------------
// Excel

/// One worksheet of an `.xlsx` workbook, held in memory (workbooks are small by Excel's limit of
/// 1,048,576 rows).
#[cfg(feature = "xlsx")]
pub struct XlsxSheet {
    range: calamine::Range<calamine::Data>,
    /// Header fields (the sheet's first non-empty row).
    pub header: Vec<String>,
    header_row: usize,
}

#[cfg(feature = "xlsx")]
impl XlsxSheet {
    /// Opens `sheet` (or the first sheet) of a workbook.
    pub fn open(path: &Path, sheet: Option<&str>) -> Result<XlsxSheet> {
        use calamine::{Reader, open_workbook};
        let mut wb: calamine::Xlsx<_> = open_workbook(path).map_err(|e| Error::Format {
            file: path.display().to_string(),
            message: format!("cannot open workbook: {e}"),
        })?;
        let name = match sheet {
            Some(s) => s.to_string(),
            None => wb.sheet_names().first().cloned().ok_or_else(|| Error::Format {
                file: path.display().to_string(),
                message: "workbook has no sheets".into(),
            })?,
        };
        let range = wb
            .worksheet_range(&name)
            .map_err(|e| Error::Format { file: path.display().to_string(), message: format!("sheet '{name}': {e}") })?;
        // Skip leading rows whose first cell starts with '#' (a synthetic-data marker) or that are empty.
        let mut header_row = 0;
        while header_row < range.height() {
            let first = range.get((header_row, 0)).map(|d| d.to_string()).unwrap_or_default();
            let empty =
                (0..range.width()).all(|c| matches!(range.get((header_row, c)), None | Some(calamine::Data::Empty)));
            if empty || first.starts_with('#') {
                header_row += 1;
            } else {
                break;
            }
        }
        let header =
            (0..range.width()).map(|c| range.get((header_row, c)).map(|d| d.to_string()).unwrap_or_default()).collect();
        Ok(XlsxSheet { range, header, header_row })
    }

    /// Data rows.
    pub fn rows(&self) -> usize {
        self.range.height().saturating_sub(self.header_row + 1)
    }

    /// A batch of data rows `start..start+len`.
    pub fn batch(&self, start: usize, len: usize) -> XlsxBatch<'_> {
        XlsxBatch { sheet: self, start, len }
    }
}

/// A batch of worksheet rows.
#[cfg(feature = "xlsx")]
pub struct XlsxBatch<'a> {
    sheet: &'a XlsxSheet,
    start: usize,
    len: usize,
}

#[cfg(feature = "xlsx")]
impl Batch for XlsxBatch<'_> {
    fn len(&self) -> usize {
        self.len
    }
    fn cell(&self, row: usize, col: usize) -> Cell<'_> {
        use calamine::Data;
        let r = self.sheet.header_row + 1 + self.start + row;
        match self.sheet.range.get((r, col)) {
            None | Some(Data::Empty) => Cell::Null,
            Some(Data::String(s)) if s.is_empty() => Cell::Null,
            Some(Data::String(s)) => Cell::Str(s),
            Some(Data::Int(i)) => Cell::Int(*i),
            // Excel keeps every number as a double: whole ones are integers to the parsers.
            Some(Data::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Cell::Int(*f as i64),
            Some(Data::Float(f)) => Cell::Float(*f),
            Some(Data::Bool(b)) => Cell::Bool(*b),
            // Excel serial dates count days from 1899-12-30 (the 1900 leap-year bug included).
            Some(Data::DateTime(d)) => Cell::Date(d.as_f64().floor() as i32 - 25_569),
            Some(Data::DateTimeIso(s)) | Some(Data::DurationIso(s)) => Cell::Str(s),
            Some(Data::Error(_)) => Cell::Str("#ERROR"),
        }
    }
    fn line(&self, row: usize) -> Option<u64> {
        Some((self.sheet.header_row + 2 + self.start + row) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_detection() {
        assert_eq!(detect_encoding("ชื่อ,นามสกุล".as_bytes()), Encoding::Utf8);
        let (tis, _, _) = encoding_rs::WINDOWS_874.encode("ชื่อ,นามสกุล");
        assert_eq!(detect_encoding(&tis), Encoding::Tis620);
        // A UTF-8 sample cut inside a character is still UTF-8.
        let s = "ชื่อ".as_bytes();
        assert_eq!(detect_encoding(&s[..s.len() - 1]), Encoding::Utf8);
    }

    #[test]
    fn tis620_decodes_per_field() {
        let (tis, _, _) = encoding_rs::WINDOWS_874.encode("สมชาย");
        let (mut out, mut scratch) = (String::from("x"), String::new());
        assert!(decode_into(&tis, Encoding::Tis620, &mut out, &mut scratch));
        assert_eq!(out, "xสมชาย");
        let mut out = String::new();
        assert!(!decode_into(&[0xE0, 0x41, 0xFF], Encoding::Utf8, &mut out, &mut scratch));
    }
}
