//! Row sources: CSV (UTF-8 or TIS-620), Parquet and Excel files, and polars frames, read in
//! batches of rows behind one [`Batch`] trait so validation is written once.
//!
//! CSV is read with the `csv` crate rather than polars: validation must account for every input
//! row, and the `csv` crate reports each record's line, keeps ragged rows (polars either fails on
//! them or pads them silently) and lets us transcode TIS-620 fields as they stream, without holding
//! the decoded file in memory.
//!
//! ```no_run
//! use tpmap::ingest::source::{CsvText, Encoding};
//! let t = CsvText::open("data-samples/tis620/households.csv".as_ref(), Encoding::Auto)?;
//! println!("{} ({} preamble lines)", t.encoding_name(), t.preamble_lines);
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_arrow::array::{Array, BooleanArray, PrimitiveArray, Utf8ViewArray};

use super::{IngestOptions, TableInput};
use crate::error::{Error, Result};

/// One cell, borrowed from its batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    /// Empty or null.
    Null,
    /// Text (decoded to UTF-8), never empty: an empty field is [`Cell::Null`].
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
    /// What kind of value the cell holds, for messages that must not echo the value itself.
    pub fn kind(&self) -> &'static str {
        match self {
            Cell::Null => "an empty cell",
            Cell::Str(_) => "text",
            Cell::Int(_) => "a whole number",
            Cell::Float(_) => "a decimal number",
            Cell::Bool(_) => "a boolean",
            Cell::Date(_) => "a date",
        }
    }

    /// What is wrong with a cell that is not a status, without echoing it: "a number other than
    /// 0 and 1", "text that is not a status", "a date".
    pub fn status_problem(&self) -> &'static str {
        match self {
            Cell::Str(s) if crate::thai::fold_digits(s.trim()).parse::<f64>().is_ok() => "a number other than 0 and 1",
            Cell::Str(_) => "text that is not a status",
            Cell::Int(_) | Cell::Float(_) => "a number other than 0 and 1",
            other => other.kind(),
        }
    }

    /// The cell as the text a person would see (for rejected-row output).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out);
        out
    }

    /// [`Cell::to_text`], borrowed from a text cell (the common case: nothing allocated).
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            Cell::Str(s) => Cow::Borrowed(s),
            other => Cow::Owned(other.to_text()),
        }
    }

    /// Appends [`Cell::to_text`] to `out` (no allocation once `out` has room).
    pub fn write_text(&self, out: &mut String) {
        use std::fmt::Write;
        // Writing to a String cannot fail.
        let _ = match self {
            Cell::Null => Ok(()),
            Cell::Str(s) => out.write_str(s),
            Cell::Int(i) => write!(out, "{i}"),
            Cell::Float(f) => write!(out, "{f}"),
            Cell::Bool(b) => write!(out, "{b}"),
            Cell::Date(d) => match crate::thai::PartialDate::from_days_since_epoch(*d) {
                Some(date) => write!(out, "{date}"),
                None => write!(out, "{d} days after 1970-01-01"),
            },
        };
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
    /// The cells of column `col` in `rows`, each as [`Batch::cell`] gives it, into `out`
    /// (cleared first): one call for a run of rows, so a caller reading a chunk column by column
    /// pays no dynamic call per cell, and a columnar source looks its column's type up once.
    fn cells<'s>(&'s self, col: usize, rows: std::ops::Range<usize>, out: &mut Vec<Cell<'s>>) {
        out.clear();
        out.extend(rows.map(|r| self.cell(r, col)));
    }
    /// `rows` of several columns at once, row by row: `out[j]` (cleared first) gets the cells of
    /// column `cols[j]`, each as [`Batch::cell`] gives it. For sources that store a row's fields
    /// together (a CSV batch), where [`Batch::cells`] walks the whole batch once per column.
    /// Returns false, with `out` unspecified, when the batch does not read so (the caller then
    /// reads the columns one by one).
    fn cells_rows<'s>(&'s self, _cols: &[usize], _rows: std::ops::Range<usize>, _out: &mut [Vec<Cell<'s>>]) -> bool {
        false
    }
    /// Physical line (CSV) or sheet row (Excel) of `row`, where known.
    fn line(&self, row: usize) -> Option<u64>;
    /// Rows the whole file holds, as estimated from this batch (a text file claims no count:
    /// records read times the file's bytes over the bytes read); a hint for reservations only.
    fn rows_in_file(&self) -> Option<usize> {
        None
    }
    /// For sources with ragged rows: the number of fields `row` really had.
    fn field_count(&self, _row: usize) -> Option<usize> {
        None
    }
    /// True when a field of `row` was not valid text in the file's encoding.
    fn bad_encoding(&self, _row: usize) -> bool {
        false
    }
    /// Rows `start..start + fail.len()` of a column of statuses at once, where its type allows
    /// (whole numbers and booleans, read in place): sets `1 << bit` in `fail` for 1 or true and
    /// in `missing` for an empty cell, as [`crate::ingest::parse::status`] with
    /// [`crate::ingest::OneMeans::Fail`] reads them (`bit` is the column's own, clear in `fail`
    /// and `missing` before). Returns false, with both as they were, when those rows hold another
    /// value or type: the caller then reads them cell by cell, which names the bad row.
    fn fail_column(&self, _col: usize, _bit: u32, _start: usize, _fail: &mut [u64], _missing: &mut [u64]) -> bool {
        false
    }
    /// Rows `start..start + out.len()` of a column of statuses at once, where its type allows
    /// reading them in place (text, whole numbers, booleans): each cell as a [`RawStatus`],
    /// [`RawStatus::Unread`] for any form but the plain ones (the caller reads those by
    /// [`Batch::cell`], which names a bad row as before). Returns false, with `out` unspecified,
    /// when the column cannot be read so.
    fn status_codes(&self, _col: usize, _start: usize, _out: &mut [RawStatus]) -> bool {
        false
    }
    /// `rows` of several status columns at once, row by row, into `out` (replaced):
    /// `out[r * cols.len() + j]` is row `rows.start + r`'s cell of column `cols[j]`, as
    /// [`Batch::status_codes`] reads it. For sources that store a row's fields together (a CSV
    /// batch), where reading a column at a time walks the whole batch once per column. Returns
    /// false, with `out` unspecified, when the batch does not read so (the caller then reads the
    /// columns one by one).
    fn status_rows(&self, _cols: &[usize], _rows: std::ops::Range<usize>, _out: &mut Vec<RawStatus>) -> bool {
        false
    }
    /// The column's bytes in place, when it is a `UInt8` column without nulls (a status matrix
    /// as tpmap writes it): several such columns of statuses are read together
    /// ([`crate::mpi`]), a byte of eight statuses at a time.
    fn u8_column(&self, _col: usize) -> Option<&[u8]> {
        None
    }
    /// A whole column of numbers at once into `out`, where every cell is one that
    /// [`crate::ingest::parse::number`] accepts and none is empty (whole or decimal numbers,
    /// finite, not negative). Returns false, with `out` unspecified, otherwise: the caller then
    /// reads the column cell by cell, which names the bad row.
    fn number_column(&self, _col: usize, _out: &mut [f64]) -> bool {
        false
    }
    /// The column's text values in place, when it is a text column.
    fn text_column(&self, _col: usize) -> Option<&Utf8ViewArray> {
        None
    }
}

/// [`Batch::number_column`] over whole numbers.
fn numbers<T>(a: &PrimitiveArray<T>, out: &mut [f64]) -> bool
where
    T: polars_arrow::types::NativeType + Into<i64>,
{
    if a.len() != out.len() || a.null_count() > 0 {
        return false;
    }
    for (o, v) in out.iter_mut().zip(a.values().iter()) {
        let v: i64 = (*v).into();
        if v < 0 {
            return false;
        }
        *o = v as f64;
    }
    true
}

/// A status cell as written, before [`crate::ingest::OneMeans`] gives `0` and `1` their meaning:
/// what [`Batch::status_codes`] reads in place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum RawStatus {
    /// Not read in place: a form other than the ones below (`-`, `ผ่าน`, ` 1`, `2`, ...).
    #[default]
    Unread,
    /// `0`, or false.
    Zero,
    /// `1`, or true.
    One,
    /// `na` in any case.
    NotApplicable,
    /// Empty or null.
    Missing,
}

impl RawStatus {
    /// A text cell's status from its bytes as written: `0`, `1`, `na` in any case, or empty;
    /// [`RawStatus::Unread`] for anything else.
    fn of_text(bytes: &[u8]) -> RawStatus {
        match bytes {
            [] => RawStatus::Missing,
            [b'0'] => RawStatus::Zero,
            [b'1'] => RawStatus::One,
            [b'n' | b'N', b'a' | b'A'] => RawStatus::NotApplicable,
            _ => RawStatus::Unread,
        }
    }
}

/// A text cell's status from its view alone: the short forms are inline in the view, so no
/// string is built or trimmed (the per-cell path was a fifth of reading our own Parquet).
fn raw_status_of(v: &polars_arrow::array::View) -> RawStatus {
    let prefix = v.prefix.to_le_bytes();
    match prefix.get(..v.length as usize) {
        Some(bytes) => RawStatus::of_text(bytes),
        None => RawStatus::Unread,
    }
}

/// [`Batch::status_codes`] over whole numbers: 0 and 1 read, a null is missing, others unread.
fn raw_statuses<T>(a: &PrimitiveArray<T>, start: usize, out: &mut [RawStatus]) -> bool
where
    T: polars_arrow::types::NativeType + Into<i64>,
{
    let Some(values) = a.values().as_slice().get(start..start + out.len()) else {
        return false;
    };
    let validity = a.validity().filter(|_| a.null_count() > 0);
    for (k, (o, v)) in out.iter_mut().zip(values).enumerate() {
        *o = match (*v).into() {
            _ if validity.is_some_and(|m| !m.get_bit(start + k)) => RawStatus::Missing,
            0 => RawStatus::Zero,
            1 => RawStatus::One,
            _ => RawStatus::Unread,
        };
    }
    true
}

/// [`Batch::fail_column`] over whole numbers: 1 fails, 0 passes, a null is missing.
fn zero_one<T>(a: &PrimitiveArray<T>, bit: u32, start: usize, fail: &mut [u64], missing: &mut [u64]) -> bool
where
    T: polars_arrow::types::NativeType + Into<i64>,
{
    let valid = |i: usize| a.validity().is_none_or(|v| v.get_bit(start + i));
    let Some(values) = a.values().as_slice().get(start..start + fail.len()) else {
        return false;
    };
    if missing.len() != fail.len() {
        return false;
    }
    if a.null_count() == 0 {
        // The common case, without a validity lookup per cell, in one vectorised pass: the bit
        // is set from the value's lowest bit, and any value other than 0 or 1 noted. Such a value
        // clears the bit again (it is this column's own: it was clear before) and refuses.
        let mut bad = false;
        for (f, v) in fail.iter_mut().zip(values) {
            let v = (*v).into() as u64;
            bad |= v > 1;
            *f |= (v & 1) << bit;
        }
        if bad {
            fail.iter_mut().for_each(|f| *f &= !(1 << bit));
            return false;
        }
        return true;
    }
    if values.iter().enumerate().any(|(i, v)| !matches!((*v).into(), 0 | 1) && valid(i)) {
        return false;
    }
    for (i, v) in values.iter().enumerate() {
        if !valid(i) {
            missing[i] |= 1 << bit;
        } else if (*v).into() == 1 {
            fail[i] |= 1 << bit;
        }
    }
    true
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

text_forms!(Encoding, "the encoding", {
    Auto => "auto",
    Utf8 => "utf-8" | "utf8",
    Tis620 => "tis-620" | "tis620" | "windows-874" | "cp874",
});

/// Guesses the encoding of a short sample: UTF-8 if it decodes (allowing a character cut at the
/// end), else TIS-620. Files are decided on the evidence of every line ([`EncodingEvidence`]);
/// this is for samples only.
pub fn detect_encoding(sample: &[u8]) -> Encoding {
    match std::str::from_utf8(sample) {
        Ok(_) => Encoding::Utf8,
        Err(e) if e.error_len().is_none() && sample.len() - e.valid_up_to() < 4 => Encoding::Utf8,
        Err(_) => Encoding::Tis620,
    }
}

/// What the lines of a text file say about its encoding: how many hold UTF-8 text beyond ASCII
/// and how many are not valid UTF-8 (TIS-620 / Windows-874 Thai, or damage). ASCII-only lines
/// say nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EncodingEvidence {
    /// Lines that are valid UTF-8 with characters beyond ASCII.
    pub utf8_lines: u64,
    /// Lines that are not valid UTF-8.
    pub non_utf8_lines: u64,
}

impl EncodingEvidence {
    /// Reads a whole file (streaming, in 1 MiB blocks) and counts its lines by encoding. Lines
    /// end at `\n` or `\r`.
    pub fn scan(path: &Path) -> Result<EncodingEvidence> {
        Self::scan_prefix(path, u64::MAX)
    }

    /// Like [`EncodingEvidence::scan`], over the file's first `max_bytes` bytes (the last line
    /// counted as far as it goes).
    pub fn scan_prefix(path: &Path, max_bytes: u64) -> Result<EncodingEvidence> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut file = file.take(max_bytes);
        let mut lines = LineEvidence::default();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
            if n == 0 {
                break;
            }
            lines.feed(&buf[..n]);
        }
        Ok(lines.finish())
    }

    /// The encoding the evidence supports: UTF-8 unless lines that are not UTF-8 outnumber those
    /// that are. When both kinds occur the minority's rows are rejected as `bad_encoding` (never
    /// decoded into mojibake).
    pub fn decide(&self) -> Encoding {
        if self.non_utf8_lines > self.utf8_lines { Encoding::Tis620 } else { Encoding::Utf8 }
    }

    /// True when the file mixes UTF-8 lines with lines in another encoding.
    pub fn mixed(&self) -> bool {
        self.utf8_lines > 0 && self.non_utf8_lines > 0
    }
}

/// Counts a text's lines by encoding as its bytes stream past, block by block, for
/// [`EncodingEvidence`]: each line (bytes between `\n` or `\r`) beyond ASCII is UTF-8 or not, as
/// `std::str::from_utf8` of the whole line would say. Holds at most a character's bytes between
/// blocks, so a file without line ends costs no memory (the whole-line carry it replaced grew
/// with the line). Written by hand: UTF-8 validators check whole buffers, not lines cut across
/// the reads of a stream.
#[derive(Default)]
pub(crate) struct LineEvidence {
    evidence: EncodingEvidence,
    /// The line so far holds a byte beyond ASCII.
    non_ascii: bool,
    /// The line so far is not valid UTF-8.
    invalid: bool,
    /// The first bytes of a character cut by the end of the last block (at most 3).
    pending: [u8; 4],
    pending_len: usize,
}

impl LineEvidence {
    /// Counts the lines that end in `block`, and keeps the state of the one it leaves open.
    pub(crate) fn feed(&mut self, block: &[u8]) {
        let mut start = 0;
        for end in memchr::memchr2_iter(b'\n', b'\r', block) {
            self.segment(&block[start..end]);
            self.end_line();
            start = end + 1;
        }
        self.segment(&block[start..]);
    }

    /// The evidence, with the last line (one without a line end) counted.
    pub(crate) fn finish(mut self) -> EncodingEvidence {
        self.end_line();
        self.evidence
    }

    fn end_line(&mut self) {
        if self.non_ascii {
            if self.invalid || self.pending_len > 0 {
                self.evidence.non_utf8_lines += 1;
            } else {
                self.evidence.utf8_lines += 1;
            }
        }
        (self.non_ascii, self.invalid, self.pending_len) = (false, false, 0);
    }

    /// Bytes of the current line, with no line end among them.
    fn segment(&mut self, mut seg: &[u8]) {
        if seg.is_empty() {
            return;
        }
        if self.pending_len == 0 && seg.is_ascii() {
            return;
        }
        self.non_ascii = true;
        if self.invalid {
            return;
        }
        if self.pending_len > 0 {
            // Complete the cut character first: its width is set by its first byte (kept only
            // when from_utf8 said the input ended inside a character).
            let width = match self.pending[0] {
                0xC2..=0xDF => 2,
                0xE0..=0xEF => 3,
                _ => 4,
            };
            let take = (width - self.pending_len).min(seg.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&seg[..take]);
            self.pending_len += take;
            seg = &seg[take..];
            match std::str::from_utf8(&self.pending[..self.pending_len]) {
                Ok(_) => self.pending_len = 0,
                Err(e) if e.error_len().is_none() => return, // still cut: seg is used up
                Err(_) => {
                    self.invalid = true;
                    return;
                }
            }
        }
        if seg.is_ascii() {
            return;
        }
        if simdutf8::basic::from_utf8(seg).is_ok() {
            return;
        }
        match std::str::from_utf8(seg) {
            Ok(_) => {}
            Err(e) if e.error_len().is_none() => {
                let cut = &seg[e.valid_up_to()..];
                self.pending[..cut.len()].copy_from_slice(cut);
                self.pending_len = cut.len();
            }
            Err(_) => self.invalid = true,
        }
    }
}

/// True when `bytes` are valid UTF-8 holding Thai letters: text in UTF-8, which a TIS-620 reading
/// would turn into mojibake without any decoding error.
fn utf8_thai(bytes: &[u8]) -> bool {
    !bytes.is_ascii()
        && std::str::from_utf8(bytes).is_ok_and(|s| s.chars().any(|c| ('\u{0E01}'..='\u{0E5B}').contains(&c)))
}

/// A CSV file opened as text: byte-order mark, `#` preamble, encoding and delimiter settled, the
/// reader positioned at the header. Shared by the extract readers, link registries and served
/// lists, so every CSV input gets the same checks.
pub struct CsvText {
    /// Reader positioned at the header line (flexible: ragged rows are reported, not fatal).
    pub reader: csv::Reader<Box<dyn Read + Send>>,
    /// The encoding in use.
    pub encoding: Encoding,
    /// Line counts by encoding, when the encoding was detected.
    pub evidence: Option<EncodingEvidence>,
    /// Lines before the header (the `#` preamble).
    pub preamble_lines: u64,
    /// The preamble's text (without `#`), decoded.
    pub preamble: Vec<String>,
    /// Bytes before the header (a byte-order mark and the preamble): the reader's byte positions
    /// count from there.
    pub(crate) data_start: u64,
    /// The field delimiter detected.
    pub(crate) delimiter: u8,
    /// The lines the reader's records begin on ([`Lines::of`]).
    pub(crate) lines: Lines,
}

/// Longest CSV record accepted, in bytes: real records are a few hundred bytes; a quote left open
/// would otherwise make the rest of a file one record held in memory.
pub const MAX_RECORD_BYTES: u64 = 64 << 20;

/// A reader that fails once a CSV record (bytes between line ends outside quotes) grows past
/// `max` bytes: the csv crate holds a whole record in memory, so an unterminated quote in a 10 GB
/// file must stop here, not exhaust memory. It also notes where every line end passes
/// ([`Lines`]), since it looks at each one anyway.
///
/// Quotes are read as csv-core reads them with the csv crate's defaults (quoting on, `""` as an
/// escaped quote, no escape character): a `"` opens a quoted field only as a field's first byte
/// (after a delimiter, at a record's start, or after a leading UTF-8 byte-order mark) and is an
/// ordinary byte anywhere else in an unquoted field, such as `12"A`. Hand-written because csv-core
/// keeps its state to itself; `quotes_as_csv_core_reads_them` checks it byte for byte against a
/// transcription of csv-core's automaton.
struct RecordGuard<R> {
    inner: R,
    in_quotes: bool,
    since: u64,
    max: u64,
    /// Bytes passed so far.
    pos: u64,
    /// Where the line ends passed, for the reader's [`Lines`].
    ends: LineEnds,
    /// The line ends of the bytes being read, before they go to `ends` (kept to reuse).
    found: Vec<u64>,
    /// The csv reader's comment character, if it has one.
    comment: Option<u8>,
    /// Within a comment line (its quotes are not quotes; only `\n` ends it, as in csv-core).
    in_comment: bool,
    /// The next byte begins a line outside quotes (where a comment may begin).
    line_start: bool,
    /// The reader's field delimiter.
    delimiter: u8,
    /// Where the record being read begins: a `"` there opens a quoted field.
    record_start: u64,
    /// Where the last quoted field's closing quote was: a `"` right after it is an escaped quote.
    closed_at: u64,
    /// The last byte of the previous read (a `"` after a delimiter opens a quoted field).
    last: u8,
    /// Lines ended so far, counted as [`Lines`] counts them (`\n`, `\r\n` or a lone `\r`),
    /// from the line the guard's first byte is on (`Lines::ended` when it was made).
    lines_ended: u64,
    /// The line the open quoted field's quote is on, and the line ends inside it since.
    open_quote: (u64, u64),
}

impl<R> RecordGuard<R> {
    /// A guard on `inner` whose line ends are `lines`' to count, for a reader with `comment` and
    /// `delimiter`.
    fn new(inner: R, lines: &Lines, comment: Option<u8>, delimiter: u8) -> RecordGuard<R> {
        RecordGuard {
            inner,
            in_quotes: false,
            since: 0,
            max: MAX_RECORD_BYTES,
            pos: 0,
            ends: lines.ends.clone(),
            found: Vec::new(),
            comment,
            in_comment: false,
            line_start: true,
            delimiter,
            record_start: 0,
            closed_at: u64::MAX,
            last: b'\n',
            lines_ended: lines.ended,
            open_quote: (0, 0),
        }
    }
}

impl<R: Read> Read for RecordGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.in_comment && !buf.is_empty() {
            // csv-core's DFA (the one the csv crate runs) reads a comment line that ends the
            // file without a line end as a record of one empty field: a served list ending in
            // `# checked` would fail on a row that is not there. Ending the line makes it the
            // comment it is (the line end is not the file's, so not noted for `Lines`).
            self.in_comment = false;
            buf[0] = b'\n';
            return Ok(1);
        }
        if n == 0
            && !buf.is_empty()
            && let Ok(mut held) = self.ends.0.lock()
        {
            held.ended_in_quotes = self.in_quotes;
            // The lines a quote left open took in after its own, but for the file's last line
            // end (a quote left open on the last line takes in nothing more).
            let (line, ends) = self.open_quote;
            let last_end = u64::from(self.last == b'\n' || self.last == b'\r');
            held.open_quote = (self.in_quotes && ends > last_end).then(|| (line, ends.saturating_sub(last_end)));
        }
        let bytes = &buf[..n];
        self.found.clear();
        let mut k = 0;
        // csv-core skips a byte-order mark at the start of its first input (the csv crate's
        // buffer, filled by one read of this guard).
        if self.pos == 0 && bytes.starts_with(b"\xEF\xBB\xBF") {
            k = 3;
            self.since = 3;
            self.record_start = 3;
        }
        loop {
            if self.line_start && k < n {
                self.line_start = false;
                if self.comment == Some(bytes[k]) {
                    self.in_comment = true;
                    self.found.push(LineEnds::entry(self.pos + k as u64, LineEnds::COMMENT));
                }
            }
            let Some(i) = memchr::memchr3(b'"', b'\n', b'\r', &bytes[k..]) else { break };
            self.since += i as u64;
            let at = k + i;
            let here = self.pos + at as u64;
            match bytes[at] {
                b'"' if self.in_comment => {}
                b'"' if self.in_quotes => {
                    self.in_quotes = false;
                    self.closed_at = here;
                }
                b'"' => {
                    let before = if at > 0 { bytes[at - 1] } else { self.last };
                    self.in_quotes =
                        here == self.record_start || before == self.delimiter || self.closed_at.wrapping_add(1) == here;
                    if self.in_quotes {
                        self.open_quote = (self.lines_ended + 1, 0);
                    }
                }
                b => {
                    let before = if at > 0 { bytes[at - 1] } else { self.last };
                    if b == b'\r' || before != b'\r' {
                        self.lines_ended += 1;
                        self.open_quote.1 += u64::from(self.in_quotes);
                    }
                    let kind = if b == b'\r' { LineEnds::CR } else { LineEnds::LF };
                    self.found.push(LineEnds::entry(here, kind));
                    if self.in_comment {
                        self.in_comment = b == b'\r';
                    }
                    if !self.in_quotes && !self.in_comment {
                        self.since = 0;
                        self.line_start = true;
                        self.record_start = here + 1;
                    }
                }
            }
            self.check()?;
            k = at + 1;
        }
        self.since += (n - k) as u64;
        self.pos += n as u64;
        if let Some(&b) = bytes.last() {
            self.last = b;
        }
        self.check()?;
        self.ends.push(&mut self.found);
        Ok(n)
    }
}

impl<R> RecordGuard<R> {
    fn check(&self) -> std::io::Result<()> {
        if self.since > self.max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "a record is longer than {} MiB (a quote left open?); tpmap stops rather than hold it in memory",
                    self.max >> 20
                ),
            ));
        }
        Ok(())
    }
}

/// The line ends a [`RecordGuard`] has passed and its [`Lines`] has not yet counted, and the
/// comment lines' starts: each its byte position (from where the guard began) times four, plus
/// its kind ([`LineEnds::LF`], [`LineEnds::CR`], [`LineEnds::COMMENT`]).
#[derive(Clone, Default)]
struct LineEnds(std::sync::Arc<std::sync::Mutex<PendingEnds>>);

#[derive(Default)]
struct PendingEnds {
    ends: Vec<u64>,
    /// More than [`MAX_PENDING_LINE_ENDS`] were pending at once: the lines are not known.
    lost: bool,
    /// The guard's bytes ended inside a quoted field (known once it has read to the end).
    ended_in_quotes: bool,
    /// When they did, and the quoted field took in lines after its quote's (not counting the
    /// bytes' last line end): the line its quote is on, and the line ends it took in.
    open_quote: Option<(u64, u64)>,
}

/// Most line ends a [`RecordGuard`] holds for its [`Lines`] (32 MiB): a reader counts them record
/// by record, so only a record holding millions of quoted line ends (or a reader that never asks)
/// gets there; its lines are then not known, rather than held in memory.
const MAX_PENDING_LINE_ENDS: usize = 1 << 22;

impl LineEnds {
    /// A `\n`.
    const LF: u64 = 0;
    /// A `\r`.
    const CR: u64 = 1;
    /// The comment character at the start of a line outside quotes.
    const COMMENT: u64 = 2;

    fn entry(pos: u64, kind: u64) -> u64 {
        pos << 2 | kind
    }

    /// Moves `ends` (leaving it empty) to the pending ends.
    fn push(&self, ends: &mut Vec<u64>) {
        if ends.is_empty() {
            return;
        }
        if let Ok(mut held) = self.0.lock()
            && !held.lost
        {
            if held.ends.len() + ends.len() > MAX_PENDING_LINE_ENDS {
                held.lost = true;
                held.ends = Vec::new();
            } else {
                held.ends.extend_from_slice(ends);
            }
        }
        ends.clear();
    }
}

/// The line each CSV record begins on, as a text editor numbers the file's lines: a line ends at
/// `\n`, `\r\n` or a lone `\r`, blank lines and line ends inside quoted fields count, and the
/// preamble and header lines count.
///
/// The csv crate's own record positions do not say this: a record's position is where the
/// reader stood before reading it (before the blank lines it skipped, and for a file with
/// `\r\n` line ends on the previous line's `\n`), and it counts `\n` only. A file saved by
/// Excel on Windows had every row reported a line too early, and one with `\r` line ends every
/// row on line 1. Hand-written because no CSV library reports it; the [`RecordGuard`] that reads
/// the bytes notes where the line ends are, and [`Lines::record`] counts them up to each record.
#[derive(Default)]
pub(crate) struct Lines {
    ends: LineEnds,
    /// Line ends taken from `ends`, not yet counted.
    local: std::collections::VecDeque<u64>,
    /// Lines ended before the bytes not yet counted (the preamble's and any before a seek).
    ended: u64,
    /// Where the last `\r` counted was: a `\n` right after it ends no new line.
    last_cr: Option<u64>,
    /// The lines are not known ([`MAX_PENDING_LINE_ENDS`]).
    lost: bool,
    /// Skipping a comment line before a record.
    in_comment: bool,
}

impl Lines {
    /// Lines for a reader whose first byte begins line `ended + 1`; none known when `ended` is
    /// `None`.
    fn after(ended: Option<u64>) -> Lines {
        Lines { ended: ended.unwrap_or(0), lost: ended.is_none(), ..Lines::default() }
    }

    /// Whether the reader's bytes ended inside a quoted field (once it has read them all).
    fn ended_in_quotes(&self) -> bool {
        self.ends.0.lock().is_ok_and(|held| held.ended_in_quotes)
    }

    /// Once a reader of a whole file has read it to the end: an error naming `path` and the line
    /// when a quote left open took in the lines after its own. The csv crate reads such a file's
    /// rest as one field of one row (a quote opened by mistake on row 10 of 8,562 left one row,
    /// rejected, and 8,552 rows counted nowhere); a quote left open on the last line takes in
    /// nothing, and its row is read (and rejected) as the other rows are.
    /// `offset`: lines before the reader's first (a file's last part's), `None` when not known.
    pub(crate) fn check_quotes_closed(&self, path: &Path, offset: Option<u64>) -> Result<()> {
        let Some((line, ends)) = self.ends.0.lock().ok().and_then(|held| held.open_quote) else { return Ok(()) };
        let known = match offset.filter(|_| !self.lost) {
            Some(o) => format!("line {}: ", line.saturating_add(o)),
            None => String::new(),
        };
        Err(Error::Format {
            file: path.display().to_string(),
            message: format!(
                "{known}a quote opened in a field is never closed, so the {ends} line(s) after it would be read as \
                 that one field and their rows lost; close the quote (or double a quote meant as text: \"\")"
            ),
        })
    }

    /// The line of `record`, read by the reader these lines are of; called for each record in
    /// order. `None` when not known.
    pub(crate) fn of(&mut self, record: &csv::ByteRecord) -> Option<u64> {
        self.at(record.position())
    }

    /// The line of the record read at `position` ([`Lines::of`], for a `StringRecord`'s).
    pub(crate) fn at(&mut self, position: Option<&csv::Position>) -> Option<u64> {
        position.and_then(|p| self.record(p.byte()).1)
    }

    /// Where the record whose reading began at `from` (the csv crate's record position, in the
    /// guard's bytes) begins, and its line when known. Called for each record in order.
    pub(crate) fn record(&mut self, from: u64) -> (u64, Option<u64>) {
        let mut start = from;
        while !self.lost {
            if self.local.is_empty()
                && let Ok(mut held) = self.ends.0.lock()
            {
                self.lost = held.lost;
                self.local.extend(held.ends.drain(..));
            }
            let Some(&e) = self.local.front() else { break };
            let (pos, kind) = (e >> 2, e & 3);
            // Line ends before the reading began, and those the reader skipped before the
            // record's first byte (blank lines, the rest of a `\r\n`, comment lines).
            if pos > start && !self.in_comment {
                break;
            }
            if kind == LineEnds::COMMENT {
                // A comment line where the record would begin: skipped through its `\n`.
                self.in_comment |= pos == start;
                self.local.pop_front();
                continue;
            }
            let cr = kind == LineEnds::CR;
            if pos >= start {
                start = pos + 1;
                self.in_comment &= cr;
            }
            if cr || self.last_cr.is_none_or(|r| r + 1 != pos) {
                self.ended += 1;
            }
            self.last_cr = cr.then_some(pos);
            self.local.pop_front();
        }
        if self.lost {
            self.local = Default::default();
            return (from, None);
        }
        (start, Some(self.ended + 1))
    }
}

/// A csv reader built by `builder` on `input`, with the record-length guard ([`MAX_RECORD_BYTES`])
/// and the [`Lines`] its records are on: for CSV files read outside the extract readers (TPMAP's
/// published tables, served lists), whose fields `,` delimits (set on the builder too, as
/// `comment` is: lines beginning with it are skipped, and counted). Call [`Lines::of`] or
/// [`Lines::at`] for the records in order.
pub(crate) fn counting_reader(
    input: Box<dyn Read + Send>,
    builder: &mut csv::ReaderBuilder,
    comment: Option<u8>,
) -> (csv::Reader<Box<dyn Read + Send>>, Lines) {
    let lines = Lines::after(Some(0));
    let guarded = RecordGuard::new(input, &lines, comment, b',');
    (builder.comment(comment).delimiter(b',').from_reader(Box::new(guarded) as Box<dyn Read + Send>), lines)
}

/// The evidence of a whole file, counted by the reader that reads it ([`CsvText::open_deciding`]);
/// there once the reader has reached the end of the file.
#[derive(Clone, Default)]
pub(crate) struct WholeEvidence(std::sync::Arc<std::sync::Mutex<Option<EncodingEvidence>>>);

impl WholeEvidence {
    /// The whole file's evidence, once its reader has reached the end.
    pub(crate) fn get(&self) -> Option<EncodingEvidence> {
        self.0.lock().ok().and_then(|held| *held)
    }
}

/// A reader that counts the lines of what passes through it by encoding ([`LineEvidence`]),
/// when given somewhere to leave the counts at the end.
struct Counting<R> {
    inner: R,
    counts: Option<(LineEvidence, WholeEvidence)>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            if let Some((lines, _)) = &mut self.counts {
                lines.feed(&buf[..n]);
            }
        } else if !buf.is_empty()
            && let Some((lines, out)) = self.counts.take()
            && let Ok(mut held) = out.0.lock()
        {
            *held = Some(lines.finish());
        }
        Ok(n)
    }
}

/// Bytes on whose evidence an extract's encoding is decided before its rows are read
/// ([`CsvText::open_deciding`]): the whole file's evidence is counted while its rows are read,
/// instead of in a pass of its own before them (a second read of a national extract: 7 GB).
pub(crate) const DECIDE_ON_BYTES: u64 = 64 << 20;

/// Largest preamble line kept for notices.
const MAX_PREAMBLE_LINE: usize = 4096;

impl CsvText {
    /// Opens `path`: rejects UTF-16 and binary files with a message saying so, skips a UTF-8
    /// byte-order mark and leading `#` lines (ended by `\n`, `\r\n` or a lone `\r`), decides the
    /// encoding on the evidence of the whole file when `encoding` is `Auto`, and detects the
    /// delimiter (`,`, tab, `;` or `|`) from the header line.
    pub fn open(path: &Path, encoding: Encoding) -> Result<CsvText> {
        Self::open_deciding(path, encoding, None).map(|(text, _)| text)
    }

    /// As [`CsvText::open`]; with `decide_on: Some(n)` and [`Encoding::Auto`], the encoding is
    /// decided on the file's first `n` bytes instead of a pass over the whole file, and the
    /// whole file's evidence is counted as the reader reads it: the [`WholeEvidence`] returned
    /// holds it once the reader has reached the end. The caller must then check that it decides
    /// the same encoding ([`CsvSource`] does, and fails when it does not).
    pub(crate) fn open_deciding(
        path: &Path,
        encoding: Encoding,
        decide_on: Option<u64>,
    ) -> Result<(CsvText, Option<WholeEvidence>)> {
        Self::open_part(path, encoding, decide_on, u64::MAX)
    }

    /// As [`CsvText::open_deciding`], reading the file's first `until` bytes only (and counting
    /// the evidence of those): the first part of a file read in parts ([`CsvSource::part_from`]).
    fn open_part(
        path: &Path,
        encoding: Encoding,
        decide_on: Option<u64>,
        until: u64,
    ) -> Result<(CsvText, Option<WholeEvidence>)> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?.take(until);
        let whole = (encoding == Encoding::Auto && decide_on.is_some()).then(WholeEvidence::default);
        let file = Counting { inner: file, counts: whole.clone().map(|out| (LineEvidence::default(), out)) };
        let mut buf = BufReader::with_capacity(1 << 20, file);
        let io = |e| Error::io(path, e);
        let fmt = |message: String| Error::Format { file: path.display().to_string(), message };
        let head = buf.fill_buf().map_err(io)?;
        if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
            return Err(fmt("the file is UTF-16 text, not UTF-8 or TIS-620: save it as \"CSV UTF-8\"".into()));
        }
        if head[..head.len().min(8192)].contains(&0) {
            return Err(fmt(
                "the file holds NUL bytes: it is binary or UTF-16, not CSV text (save it as \"CSV UTF-8\")".into(),
            ));
        }
        let mut data_start = 0u64;
        if head.starts_with(b"\xEF\xBB\xBF") {
            buf.consume(3);
            data_start += 3;
        }
        let evidence = match (encoding, decide_on) {
            (Encoding::Auto, Some(bytes)) => Some(EncodingEvidence::scan_prefix(path, bytes)?),
            (Encoding::Auto, None) => Some(EncodingEvidence::scan(path)?),
            _ => None,
        };
        let encoding = match encoding {
            Encoding::Auto => evidence.map(|e| e.decide()).unwrap_or(Encoding::Utf8),
            e => e,
        };
        // Leading comment lines are a preamble, not rows.
        let mut preamble_lines = 0u64;
        let mut preamble = Vec::new();
        while buf.fill_buf().map_err(io)?.first() == Some(&b'#') {
            let mut line = Vec::new();
            loop {
                let chunk = buf.fill_buf().map_err(io)?;
                if chunk.is_empty() {
                    break;
                }
                match chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
                    Some(i) => {
                        let cr = chunk[i] == b'\r';
                        if line.len() < MAX_PREAMBLE_LINE {
                            line.extend_from_slice(&chunk[..i.min(MAX_PREAMBLE_LINE)]);
                        }
                        buf.consume(i + 1);
                        data_start += i as u64 + 1;
                        if cr && buf.fill_buf().map_err(io)?.first() == Some(&b'\n') {
                            buf.consume(1);
                            data_start += 1;
                        }
                        break;
                    }
                    None => {
                        let n = chunk.len();
                        if line.len() < MAX_PREAMBLE_LINE {
                            line.extend_from_slice(&chunk[..n.min(MAX_PREAMBLE_LINE)]);
                        }
                        buf.consume(n);
                        data_start += n as u64;
                    }
                }
            }
            preamble_lines += 1;
            let (mut text, mut scratch) = (String::new(), String::new());
            decode_into(&line[1..], encoding, &mut text, &mut scratch);
            preamble.push(text.trim().to_string());
        }
        let sample = buf.fill_buf().map_err(io)?;
        let first_line = sample.split(|&b| b == b'\n' || b == b'\r').next().unwrap_or(&[]);
        let count = |d: u8| first_line.iter().filter(|&&b| b == d).count();
        let delimiter = [b',', b'\t', b';', b'|'].into_iter().max_by_key(|&d| (count(d), d == b',')).unwrap_or(b',');
        let lines = Lines::after(Some(preamble_lines));
        let guarded = RecordGuard::new(buf, &lines, None, delimiter);
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(Box::new(guarded) as Box<dyn Read + Send>);
        Ok((CsvText { reader, encoding, evidence, preamble_lines, preamble, data_start, delimiter, lines }, whole))
    }

    /// The encoding as reports name it, with the evidence when lines were rejected for it.
    pub fn encoding_name(&self) -> String {
        encoding_label(self.encoding, self.evidence.as_ref())
    }
}

/// `utf-8` or `tis-620`, and for a mixed file how many lines were in the other encoding.
pub fn encoding_label(encoding: Encoding, evidence: Option<&EncodingEvidence>) -> String {
    let name = if encoding == Encoding::Tis620 { "tis-620" } else { "utf-8" };
    match evidence {
        Some(e) if e.mixed() => {
            let other = if encoding == Encoding::Tis620 { e.utf8_lines } else { e.non_utf8_lines };
            let other_name = if encoding == Encoding::Tis620 { "UTF-8" } else { "not UTF-8" };
            format!(
                "{name} (decided on {} lines against {other}; the {other} {other_name} lines are rejected as bad_encoding)",
                e.utf8_lines.max(e.non_utf8_lines)
            )
        }
        _ => name.to_string(),
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
    /// Line counts by encoding, when it was detected.
    pub evidence: Option<EncodingEvidence>,
    /// The lines of the records read ([`Lines`]).
    lines: Lines,
    record: csv::ByteRecord,
    scratch: String,
    done: bool,
    /// Text bytes of the last batch: the next batch's buffer starts that large instead of
    /// growing by doubling (national person rows hold about 170 bytes, not 64).
    text_hint: usize,
    /// Size of the file, when known: with the bytes and records read so far, an estimate of
    /// the records in the file ([`Batch::rows_in_file`]).
    file_bytes: Option<u64>,
    /// Records read so far.
    records: u64,
    /// The whole file's evidence, counted while reading, when the encoding was decided on the
    /// file's start ([`CsvSource::open_deciding`]).
    whole: Option<WholeEvidence>,
    /// Where in the file the reader began: the header ([`CsvText::data_start`]), or the mark it
    /// last sought.
    data_start: u64,
    /// The field delimiter.
    delimiter: u8,
    /// Where every [`MARK_ROWS`]th row read so far began, when asked to note it
    /// ([`Table::lay_out`]).
    marks: Option<Vec<CsvMark>>,
    /// The file's size and time of change when it began to be laid out.
    stamp: Option<Stamp>,
    /// The columns whose text is kept ([`Table::only`]); all when `None`.
    keep: Option<Vec<bool>>,
    /// One part of a file read in parts ([`CsvSource::part_from`]): the whole file's evidence
    /// is checked when the parts are joined ([`CsvSource::join_parts`]), not at this part's end.
    part: bool,
}

/// A file's size and time of change ([`Layout::stamp`]).
type Stamp = (u64, Option<std::time::SystemTime>);

/// Where a CSV file of at least `from` bytes may be cut into parts of about `part` bytes for
/// reading them at once ([`Table::open_part`]): each cut just past the first `\n` from its
/// share of the file on (within 1 MiB), at most [`MAX_PARTS`] parts. A cut is between two
/// records unless it falls inside a quoted field, which only the reading of the part before it
/// can tell ([`Table::join_parts`]). Empty for a smaller file, a file whose name does not say
/// CSV, or no `\n` near a share's start.
pub(crate) fn csv_cuts(path: &Path, from: u64, part: u64) -> Result<Vec<u64>> {
    use std::io::{Seek, SeekFrom};
    if Format::from_path(path)? != Format::Csv {
        return Ok(Vec::new());
    }
    let bytes = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    if bytes < from.max(2) {
        return Ok(Vec::new());
    }
    let parts = (bytes / part.max(1)).clamp(2, MAX_PARTS);
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut cuts: Vec<u64> = Vec::new();
    let mut window = Vec::new();
    for k in 1..parts {
        let share = bytes / parts * k;
        file.seek(SeekFrom::Start(share)).map_err(|e| Error::io(path, e))?;
        window.clear();
        (&mut file).take(1 << 20).read_to_end(&mut window).map_err(|e| Error::io(path, e))?;
        let Some(i) = memchr::memchr(b'\n', &window) else { return Ok(Vec::new()) };
        let cut = share + i as u64 + 1;
        if cut < bytes && cuts.last().is_none_or(|&last| last < cut) {
            cuts.push(cut);
        }
    }
    Ok(cuts)
}

/// Most parts a CSV file is read in at once ([`csv_cuts`]).
pub(crate) const MAX_PARTS: u64 = 16;

/// Rows between two [`CsvMark`]s: a wave parses at most this many rows before its first and
/// after its last (a mark at each batch, 2^17 rows, made the national waves parse 1.8 times the
/// households: a province's edge rarely falls on a batch's).
pub(crate) const MARK_ROWS: u64 = 1 << 14;

/// Where a run of [`MARK_ROWS`] rows of a CSV file begins, as a reading of the whole file found
/// it: a partitioned wave starts reading there instead of parsing every row before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CsvMark {
    /// The mark's data row (1-based).
    pub(crate) row: u64,
    /// Where that row's record begins: its first byte's offset in the file.
    byte: u64,
    /// The line it begins on ([`Lines`]); 0 when not known.
    line: u64,
}

/// A file as a reading of all of it found it ([`Table::lay_out`]): its data rows and the file's
/// size and time of change then, and for a CSV file where every [`MARK_ROWS`]th row begins, its
/// encoding and the evidence for it. A later reading of a CSV file goes straight to the runs of
/// rows it wants ([`Table::for_each_wanted`]); a Parquet file is read by row ranges and has no
/// marks. A later reading of either refuses a file that has changed since
/// ([`Table::open_laid_out`]): a partitioned run routes the rows once and reads its waves by
/// row number, so a file changed between would put rows in no wave or in the wrong one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) marks: Vec<CsvMark>,
    pub(crate) rows: u64,
    pub(crate) encoding: Encoding,
    pub(crate) evidence: Option<EncodingEvidence>,
    bytes: u64,
    modified: Option<std::time::SystemTime>,
}

impl Layout {
    /// Rows from mark `i` to mark `i + n` (or the end).
    fn rows_from(&self, i: usize, n: usize) -> u64 {
        let end = self.marks.get(i + n).map_or(self.rows + 1, |m| m.row);
        end.saturating_sub(self.marks[i].row)
    }

    /// What a reading of the rows in `wanted` reads: runs of marks `(first, n)` whose rows hold a
    /// wanted row, at most a batch's rows each.
    fn reads(&self, wanted: &super::partition::RowSet) -> Vec<(usize, usize)> {
        let per_batch = (BATCH_ROWS as u64 / MARK_ROWS) as usize;
        let mut reads: Vec<(usize, usize)> = Vec::new();
        for i in (0..self.marks.len()).filter(|&i| wanted.any_in(self.marks[i].row, self.rows_from(i, 1))) {
            match reads.last_mut() {
                Some((first, n)) if *first + *n == i && *n < per_batch => *n += 1,
                _ => reads.push((i, 1)),
            }
        }
        reads
    }

    /// The file's size and time of change.
    fn stamp(path: &Path) -> Result<Stamp> {
        let m = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        Ok((m.len(), m.modified().ok()))
    }

    /// The error for a file that is not as it was laid out.
    fn changed(path: &Path) -> Error {
        Error::Format {
            file: path.display().to_string(),
            message: "the file changed while it was read (its rows are not where a first reading found them)".into(),
        }
    }
}

impl CsvSource {
    /// Opens a CSV file (see [`CsvText::open`]) and reads the header.
    pub fn open(path: &Path, encoding: Encoding) -> Result<CsvSource> {
        Self::open_deciding(path, encoding, None)
    }

    /// As [`CsvSource::open`]; with `decide_on: Some(n)` and [`Encoding::Auto`] the encoding is
    /// decided on the file's first `n` bytes ([`CsvText::open_deciding`]), and the batch that
    /// reaches the end of the file fails instead when the whole file's evidence decides
    /// otherwise: the caller reads the file again with [`CsvSource::open`]. Then the reading is
    /// as if decided on the whole file first, or it fails.
    pub(crate) fn open_deciding(path: &Path, encoding: Encoding, decide_on: Option<u64>) -> Result<CsvSource> {
        Self::open_part(path, encoding, decide_on, None)
    }

    /// As [`CsvSource::open_deciding`]; with `until: Some(cut)`, the first part of a file read
    /// in parts: the file's bytes before `cut` ([`CsvSource::part_from`] reads the others).
    fn open_part(path: &Path, encoding: Encoding, decide_on: Option<u64>, until: Option<u64>) -> Result<CsvSource> {
        let (text, whole) = CsvText::open_part(path, encoding, decide_on, until.unwrap_or(u64::MAX))?;
        let CsvText { mut reader, encoding, evidence, preamble_lines, data_start, delimiter, lines, .. } = text;
        let mut record = csv::ByteRecord::new();
        if !reader.read_byte_record(&mut record).map_err(|e| csv_error(path, e))? {
            return Err(Error::Format {
                file: path.display().to_string(),
                message: if preamble_lines > 0 {
                    format!("no header after the {preamble_lines} '#' preamble line(s)")
                } else {
                    "file is empty (no header)".into()
                },
            });
        }
        let mut header = Vec::with_capacity(record.len());
        let mut scratch = String::new();
        for f in record.iter() {
            let mut s = String::new();
            decode_into(f, encoding, &mut s, &mut scratch);
            header.push(s);
        }
        Ok(CsvSource {
            reader,
            header,
            encoding,
            evidence,
            lines,
            record,
            scratch,
            done: false,
            text_hint: 0,
            file_bytes: std::fs::metadata(path).ok().filter(|m| m.is_file()).map(|m| m.len()),
            records: 0,
            whole,
            data_start,
            delimiter,
            marks: None,
            stamp: None,
            keep: None,
            part: until.is_some(),
        })
    }

    /// The part of a file from byte `start` (a line end's next byte) to byte `until` (its end
    /// when `None`), read as this source, the file's first part ([`CsvSource::open_part`]),
    /// reads its start: same header, encoding, delimiter and columns kept; rows and lines
    /// numbered from 1 until the parts are joined ([`CsvSource::join_parts`]).
    fn part_from(&self, path: &Path, start: u64, until: Option<u64>) -> Result<CsvSource> {
        use std::io::{Seek, SeekFrom};
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        file.seek(SeekFrom::Start(start)).map_err(|e| Error::io(path, e))?;
        let file = file.take(until.map_or(u64::MAX, |end| end.saturating_sub(start)));
        let whole = self.whole.as_ref().map(|_| WholeEvidence::default());
        let file = Counting { inner: file, counts: whole.clone().map(|out| (LineEvidence::default(), out)) };
        let lines = Lines::after(Some(0));
        let guarded = RecordGuard::new(BufReader::with_capacity(1 << 20, file), &lines, None, self.delimiter);
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(self.delimiter)
            .from_reader(Box::new(guarded) as Box<dyn Read + Send>);
        Ok(CsvSource {
            reader,
            header: self.header.clone(),
            encoding: self.encoding,
            evidence: self.evidence,
            lines,
            record: csv::ByteRecord::new(),
            scratch: String::new(),
            done: false,
            text_hint: 0,
            file_bytes: None,
            records: 0,
            whole,
            data_start: start,
            delimiter: self.delimiter,
            marks: self.marks.as_ref().map(|_| Vec::new()),
            stamp: None,
            keep: self.keep.clone(),
            part: true,
        })
    }

    /// Joins the file's other `parts` ([`CsvSource::part_from`], in order) to this first part
    /// once all are read to their ends, as if this source had read the whole file: its records,
    /// marks (rows and lines numbered on from the parts before) and the whole file's evidence,
    /// which must decide the encoding in use. `Ok(false)` when a cut was not between two
    /// records (inside a quoted field): the parts' rows are not the file's, which must be read
    /// whole.
    fn join_parts(&mut self, path: &Path, mut parts: Vec<CsvSource>) -> Result<bool> {
        // Every part read to its end, and every one but the last ended between two records.
        let last = parts.len();
        if !std::iter::once(&*self)
            .chain(&parts)
            .enumerate()
            .all(|(k, p)| p.done && (k == last || !p.lines.ended_in_quotes()))
        {
            return Ok(false);
        }
        // The whole file's evidence: the parts' added up.
        let counted: Vec<&Option<WholeEvidence>> =
            std::iter::once(&self.whole).chain(parts.iter().map(|p| &p.whole)).collect();
        let whole = if counted.iter().all(|w| w.is_none()) {
            None
        } else {
            let mut sum = EncodingEvidence::default();
            for w in counted {
                let Some(e) = w.as_ref().and_then(WholeEvidence::get) else {
                    return Err(Error::Format {
                        file: path.display().to_string(),
                        message: "internal: a part's end was reached without its lines counted".into(),
                    });
                };
                sum.utf8_lines += e.utf8_lines;
                sum.non_utf8_lines += e.non_utf8_lines;
            }
            Some(sum)
        };
        // What to add to each part's lines: the line its first record begins on, counted on
        // from where the part before it began (no bytes are left after a part to count), less one.
        let mut offsets = Vec::with_capacity(parts.len());
        let mut offset = Some(0u64);
        for k in 0..parts.len() {
            let start = parts[k].data_start;
            let line = match k {
                0 => self.lines.record(start.saturating_sub(self.data_start)).1,
                _ => {
                    let before = &mut parts[k - 1];
                    before.lines.record(start.saturating_sub(before.data_start)).1
                }
            };
            offset = offset.zip(line).map(|(o, l)| o + l - 1);
            offsets.push(offset);
        }
        // The last part read to the file's end: a quote it left open is the whole file's.
        match parts.last() {
            Some(p) => p.lines.check_quotes_closed(path, offsets.last().copied().flatten())?,
            None => self.lines.check_quotes_closed(path, Some(0))?,
        }
        for (part, offset) in parts.into_iter().zip(offsets) {
            if let (Some(marks), Some(more)) = (&mut self.marks, part.marks) {
                marks.extend(more.into_iter().map(|m| CsvMark {
                    row: m.row + self.records,
                    byte: m.byte,
                    line: match (m.line, offset) {
                        (0, _) | (_, None) => 0,
                        (line, Some(o)) => line + o,
                    },
                }));
            }
            self.records += part.records;
        }
        self.part = false;
        if let Some(sum) = whole {
            let counted = WholeEvidence::default();
            if let Ok(mut held) = counted.0.lock() {
                *held = Some(sum);
            }
            self.whole = Some(counted);
            self.check_whole_evidence(path)?;
        }
        Ok(true)
    }

    /// Reads on from `mark` (of a layout of this file): the batches read next begin there, their
    /// rows and lines numbered as in a reading of the whole file.
    fn seek_to(&mut self, path: &Path, mark: &CsvMark) -> Result<()> {
        use std::io::{Seek, SeekFrom};
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        file.seek(SeekFrom::Start(mark.byte)).map_err(|e| Error::io(path, e))?;
        // The mark is where its record's first byte is, on the line the mark names.
        self.lines = Lines::after(mark.line.checked_sub(1));
        let guarded = RecordGuard::new(BufReader::with_capacity(1 << 20, file), &self.lines, None, self.delimiter);
        self.reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(self.delimiter)
            .from_reader(Box::new(guarded) as Box<dyn Read + Send>);
        self.data_start = mark.byte;
        self.records = mark.row.saturating_sub(1);
        self.done = false;
        self.whole = None;
        self.file_bytes = None;
        Ok(())
    }

    /// The rows from mark `i` of `layout` to mark `i + n`, seeking to mark `i` unless the reader
    /// stands there (`*next == Some(i)`); an error unless they are the rows the layout says.
    fn batch_at(
        &mut self,
        path: &Path,
        layout: &Layout,
        (i, n): (usize, usize),
        next: &mut Option<usize>,
    ) -> Result<CsvBatch> {
        if *next != Some(i) {
            self.seek_to(path, &layout.marks[i])?;
        }
        *next = None;
        let rows = usize::try_from(layout.rows_from(i, n)).map_err(|_| Layout::changed(path))?;
        match self.next_batch(path, rows)? {
            Some(b) if b.len() == rows && b.lines.first() == Some(&layout.marks[i].line) => {
                *next = Some(i + n);
                Ok(b)
            }
            _ => Err(Layout::changed(path)),
        }
    }

    /// The next batch of up to `max_rows` records, or `None` at the end.
    pub fn next_batch(&mut self, path: &Path, max_rows: usize) -> Result<Option<CsvBatch>> {
        if self.done {
            return Ok(None);
        }
        let width = self.header.len();
        let mut b = CsvBatch {
            text: String::with_capacity((max_rows * 64).max(self.text_hint)),
            ends: Vec::with_capacity(max_rows * width),
            width,
            field_counts: Vec::with_capacity(max_rows),
            lines: Vec::with_capacity(max_rows),
            bad: Vec::new(),
            rows_in_file: None,
        };
        while b.field_counts.len() < max_rows {
            if !self.reader.read_byte_record(&mut self.record).map_err(|e| csv_error(path, e))? {
                self.done = true;
                if !self.part {
                    self.lines.check_quotes_closed(path, Some(0))?;
                }
                self.check_whole_evidence(path)?;
                break;
            }
            // 0: not known ([`Lines`]).
            let (start, line) = self.lines.record(self.record.position().map_or(0, |p| p.byte()));
            let line = line.unwrap_or(0);
            // A blank line is not a record: the csv crate skips it, and so do we.
            let row = b.field_counts.len();
            if (self.records + row as u64).is_multiple_of(MARK_ROWS)
                && let Some(marks) = &mut self.marks
            {
                marks.push(CsvMark { row: self.records + row as u64 + 1, byte: self.data_start + start, line });
            }
            let mut bad = false;
            if let Some(keep) = &self.keep {
                for i in 0..width {
                    if keep.get(i) == Some(&true)
                        && let Some(f) = self.record.get(i)
                    {
                        bad |= !decode_into(f, self.encoding, &mut b.text, &mut self.scratch);
                    }
                    b.ends.push(b.text.len() as u32);
                }
            } else if !self.push_utf8_record(&mut b) {
                for i in 0..width {
                    if let Some(f) = self.record.get(i) {
                        bad |= !decode_into(f, self.encoding, &mut b.text, &mut self.scratch);
                    }
                    b.ends.push(b.text.len() as u32);
                }
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
        self.text_hint = b.text.len();
        self.records += b.field_counts.len() as u64;
        // Records so far times the file's bytes over the bytes read so far, an eighth more.
        let read = self.reader.position().byte();
        b.rows_in_file = self.file_bytes.filter(|_| read > 0 && !self.done).and_then(|bytes| {
            let estimate = u128::from(self.records) * u128::from(bytes) / u128::from(read);
            usize::try_from(estimate + estimate / 8).ok()
        });
        Ok(if b.field_counts.is_empty() { None } else { Some(b) })
    }

    /// At the end of a file whose encoding was decided on its start: the whole file's evidence
    /// replaces the start's, and must decide the same encoding.
    fn check_whole_evidence(&mut self, path: &Path) -> Result<()> {
        if self.part {
            return Ok(());
        }
        let Some(whole) = self.whole.take() else { return Ok(()) };
        let fail = |message: String| Err(Error::Format { file: path.display().to_string(), message });
        let Some(evidence) = whole.get() else {
            return fail("internal: the file's end was reached without its lines counted".into());
        };
        self.evidence = Some(evidence);
        if evidence.decide() != self.encoding {
            return fail(format!(
                "the encoding decided on the file's start ({}) is not the one its lines as a whole decide ({}); \
                 the file must be read again",
                encoding_label(self.encoding, None),
                encoding_label(evidence.decide(), None),
            ));
        }
        Ok(())
    }

    /// Appends the record's first `width` fields to `b` at once when the file is UTF-8 and they
    /// are valid UTF-8 as a whole, each field starting on a character boundary (then each field
    /// is valid text on its own); false, with nothing appended, otherwise. One check and one copy
    /// per record instead of one per field: checking every short field on its own was the
    /// largest single cost of reading a UTF-8 extract.
    fn push_utf8_record(&self, b: &mut CsvBatch) -> bool {
        if self.encoding == Encoding::Tis620 {
            return false;
        }
        let fields = self.record.len().min(b.width);
        let used = match fields.checked_sub(1).and_then(|last| self.record.range(last)) {
            Some(r) => r.end,
            None => 0,
        };
        let Ok(text) = simdutf8::basic::from_utf8(&self.record.as_slice()[..used]) else { return false };
        if !(0..fields).all(|i| self.record.range(i).is_some_and(|r| text.is_char_boundary(r.start))) {
            return false;
        }
        let base = b.text.len();
        b.text.push_str(text);
        for i in 0..b.width {
            let end = match self.record.range(i) {
                Some(r) if i < fields => base + r.end,
                _ => b.text.len(),
            };
            b.ends.push(end as u32);
        }
        true
    }
}

/// A CSV reading error, naming the file.
pub(crate) fn csv_error(path: &Path, e: csv::Error) -> Error {
    let message = match e.kind() {
        csv::ErrorKind::Io(_) => format!("read error: {e}"),
        _ => format!("CSV error: {e}"),
    };
    Error::Format { file: path.display().to_string(), message }
}

/// Appends `bytes` decoded from `encoding` to `out`; false when they were not valid text
/// (invalid UTF-8 is replaced with U+FFFD). TIS-620 is decoded into `scratch` first: encoding_rs
/// writes into a String's spare capacity, which for the large batch buffer would cost its whole
/// size on every field.
pub(crate) fn decode_into(bytes: &[u8], encoding: Encoding, out: &mut String, scratch: &mut String) -> bool {
    match encoding {
        Encoding::Tis620 => {
            if let Ok(ascii) = std::str::from_utf8(bytes)
                && bytes.is_ascii()
            {
                out.push_str(ascii);
                return true;
            }
            if utf8_thai(bytes) {
                // UTF-8 Thai in a TIS-620 file: decoding it would give mojibake without an error.
                out.push_str(&String::from_utf8_lossy(bytes));
                return false;
            }
            let mut dec = encoding_rs::WINDOWS_874.new_decoder_without_bom_handling();
            scratch.clear();
            scratch.reserve(dec.max_utf8_buffer_length(bytes.len()).unwrap_or(bytes.len() * 3));
            let (res, read, had_errors) = dec.decode_to_string(bytes, scratch, true);
            // The reservation above is the decoder's own bound, so the whole input is consumed; a
            // decoder that stopped early is reported as bad text rather than trusted.
            out.push_str(scratch);
            !had_errors && res == encoding_rs::CoderResult::InputEmpty && read == bytes.len()
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
    rows_in_file: Option<usize>,
}

impl CsvBatch {
    /// The byte range of the batch's `k`-th field (row by row, `width` fields a row).
    fn span(&self, k: usize) -> std::ops::Range<usize> {
        k.checked_sub(1).map_or(0, |p| self.ends[p] as usize)..self.ends[k] as usize
    }
}

impl Batch for CsvBatch {
    fn len(&self) -> usize {
        self.field_counts.len()
    }
    fn rows_in_file(&self) -> Option<usize> {
        self.rows_in_file
    }
    fn cell(&self, row: usize, col: usize) -> Cell<'_> {
        let s = &self.text[self.span(row * self.width + col)];
        if s.is_empty() { Cell::Null } else { Cell::Str(s) }
    }
    /// A row's fields read together: its field ends are adjacent, so the batch is walked once
    /// instead of once per column.
    fn cells_rows<'s>(&'s self, cols: &[usize], rows: std::ops::Range<usize>, out: &mut [Vec<Cell<'s>>]) -> bool {
        if out.len() != cols.len()
            || rows.start > rows.end
            || rows.end > self.len()
            || cols.iter().any(|&c| c >= self.width)
        {
            return false;
        }
        for o in out.iter_mut() {
            o.clear();
            o.reserve(rows.len());
        }
        for r in rows {
            let base = r * self.width;
            for (o, &c) in out.iter_mut().zip(cols) {
                let s = &self.text[self.span(base + c)];
                o.push(if s.is_empty() { Cell::Null } else { Cell::Str(s) });
            }
        }
        true
    }
    fn line(&self, row: usize) -> Option<u64> {
        Some(self.lines[row]).filter(|&l| l > 0)
    }
    fn field_count(&self, row: usize) -> Option<usize> {
        Some(self.field_counts[row] as usize)
    }
    fn bad_encoding(&self, row: usize) -> bool {
        self.bad.binary_search(&row).is_ok()
    }
    /// A column's plain statuses straight from the batch's text, as [`FrameBatch`] reads a
    /// text column's views: exactly `0`, `1`, `na` in any case, or empty; any other form, and
    /// every cell of a row whose text was not valid in the file's encoding, is left
    /// [`RawStatus::Unread`] for the cell path.
    fn status_codes(&self, col: usize, start: usize, out: &mut [RawStatus]) -> bool {
        let Some(end) = start.checked_add(out.len()).filter(|&e| e <= self.len()) else { return false };
        if col >= self.width {
            return false;
        }
        let text = self.text.as_bytes();
        for (k, o) in out.iter_mut().enumerate() {
            *o = text.get(self.span((start + k) * self.width + col)).map_or(RawStatus::Unread, RawStatus::of_text);
        }
        let first_bad = self.bad.partition_point(|&r| r < start);
        for &r in self.bad[first_bad..].iter().take_while(|&&r| r < end) {
            out[r - start] = RawStatus::Unread;
        }
        true
    }
    /// [`CsvBatch::status_codes`] for several columns, a row's fields read together: a row's
    /// field ends are adjacent, so the batch is walked once instead of once per status column
    /// (16 columns of a persons file: 5 % of reading a CSV extract went to that walk).
    fn status_rows(&self, cols: &[usize], rows: std::ops::Range<usize>, out: &mut Vec<RawStatus>) -> bool {
        let (m, start, end) = (cols.len(), rows.start, rows.end);
        if m == 0 || start > end || end > self.len() || cols.iter().any(|&c| c >= self.width) {
            return false;
        }
        out.clear();
        out.resize(m * (end - start), RawStatus::Unread);
        let text = self.text.as_bytes();
        for (r, codes) in (start..end).zip(out.chunks_exact_mut(m)) {
            let base = r * self.width;
            for (o, &c) in codes.iter_mut().zip(cols) {
                *o = text.get(self.span(base + c)).map_or(RawStatus::Unread, RawStatus::of_text);
            }
        }
        let first_bad = self.bad.partition_point(|&r| r < start);
        for &r in self.bad[first_bad..].iter().take_while(|&&r| r < end) {
            let k = (r - start) * m;
            out[k..k + m].fill(RawStatus::Unread);
        }
        true
    }
}

// ---------------------------------------------------------------------------------------------
// polars frames (Parquet files, or frames handed in by a caller)

enum Col<'a> {
    Null,
    Str(&'a Utf8ViewArray),
    Int(&'a PrimitiveArray<i64>),
    // Narrower integers read in place (a cast to Int64 took as long as decoding the Parquet
    // matrix of 17 UInt8 status columns).
    I8(&'a PrimitiveArray<i8>),
    I16(&'a PrimitiveArray<i16>),
    I32(&'a PrimitiveArray<i32>),
    U8(&'a PrimitiveArray<u8>),
    U16(&'a PrimitiveArray<u16>),
    U32(&'a PrimitiveArray<u32>),
    Float(&'a PrimitiveArray<f64>),
    Bool(&'a BooleanArray),
    Date(&'a PrimitiveArray<i32>),
    /// A text column read as codes ([`CodeColumn`]).
    Codes(&'a CodeColumn),
}

/// How a column of a given type is read: as it is, or cast to one of the types cells come in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plan {
    Str,
    Bool,
    Null,
    /// Cast to `Date` (days since the epoch, as `Int32`).
    Date,
    Float,
    /// Cast to `Int64` (exactly: values that do not fit are read as text).
    Int,
    /// Cast to text.
    Text,
    /// An integer type narrower than 64 bits in one chunk: read in place.
    Narrow,
    /// Not readable (lists, structs, binary): the cells are empty and [`unsupported_type`] names
    /// it when a field needs the column.
    Unsupported,
}

fn plan_of(dt: &DataType) -> Plan {
    match dt {
        DataType::String => Plan::Str,
        DataType::Boolean => Plan::Bool,
        DataType::Null => Plan::Null,
        DataType::Date | DataType::Datetime(_, _) => Plan::Date,
        DataType::Float32 | DataType::Float64 => Plan::Float,
        DataType::Decimal(_, scale) if *scale == 0 => Plan::Int,
        DataType::Decimal(_, _) | DataType::Time | DataType::Duration(_) => Plan::Text,
        // Dictionary columns (pandas categoricals) are read as their text.
        dt if dt.is_categorical() || dt.is_enum() => Plan::Text,
        dt if dt.is_integer() => Plan::Int,
        _ => Plan::Unsupported,
    }
}

/// For a column tpmap cannot read (list, struct, binary, ...): what to tell the user.
pub fn unsupported_type(dt: &DataType) -> Option<String> {
    (plan_of(dt) == Plan::Unsupported).then(|| {
        format!(
            "is of type {dt}, which tpmap cannot read (it reads text, whole and decimal numbers, booleans and dates)"
        )
    })
}

/// A batch over a polars [`DataFrame`]: each column read in place from its Arrow array (one chunk
/// per column), with no per-batch copy of the cells.
pub struct FrameBatch<'a> {
    cols: Vec<Col<'a>>,
    rows: usize,
}

impl<'a> FrameBatch<'a> {
    /// Views the columns of `df` (which must be a single chunk per column: see
    /// [`DataFrame::rechunk_mut_par`]). Columns of other types are cast into `casts` first; casts
    /// are exact (an integer that does not fit 64 bits is read as text, never as null).
    pub fn new(df: &'a DataFrame, casts: &'a mut Vec<Series>) -> Result<FrameBatch<'a>> {
        Self::with_codes(df, casts, &[])
    }

    /// As [`FrameBatch::new`], with the columns at the positions of `codes` read from them (the
    /// frame holds nulls there).
    fn with_codes(
        df: &'a DataFrame,
        casts: &'a mut Vec<Series>,
        codes: &'a [(usize, CodeColumn)],
    ) -> Result<FrameBatch<'a>> {
        casts.clear();
        let mut plans = Vec::with_capacity(df.width());
        for c in df.columns() {
            let s = c.as_materialized_series();
            let mut plan = plan_of(s.dtype());
            if plan == Plan::Int && narrow_int(s).is_some() {
                plan = Plan::Narrow;
            }
            let cast = match plan {
                Plan::Date => Some(s.cast(&DataType::Date)?.cast(&DataType::Int32)?),
                Plan::Float => Some(s.cast(&DataType::Float64)?),
                Plan::Int => match s.strict_cast(&DataType::Int64) {
                    Ok(v) => Some(v),
                    Err(_) => {
                        casts.push(s.cast(&DataType::String)?.rechunk());
                        plans.push(Plan::Text);
                        continue;
                    }
                },
                Plan::Text => Some(s.cast(&DataType::String)?),
                Plan::Str | Plan::Bool | Plan::Null | Plan::Narrow | Plan::Unsupported => None,
            };
            if let Some(v) = cast {
                casts.push(v.rechunk());
            }
            plans.push(plan);
        }
        let one_chunk = |n: usize| -> Result<()> {
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
        let mut cols = Vec::with_capacity(plans.len());
        for (pos, (c, plan)) in df.columns().iter().zip(plans).enumerate() {
            let own = c.as_materialized_series();
            let coded = codes.iter().find(|(at, _)| *at == pos);
            let col = match plan {
                _ if coded.is_some() => coded.map_or(Col::Null, |(_, c)| Col::Codes(c)),
                Plan::Null | Plan::Unsupported => Col::Null,
                Plan::Str | Plan::Text => {
                    let ca = if plan == Plan::Str { own.str()? } else { next_cast(&mut cast_iter)?.str()? };
                    one_chunk(ca.chunks().len())?;
                    Col::Str(first_chunk(ca)?)
                }
                Plan::Bool => {
                    one_chunk(own.bool()?.chunks().len())?;
                    Col::Bool(first_chunk(own.bool()?)?)
                }
                Plan::Date => Col::Date(first_chunk(next_cast(&mut cast_iter)?.i32()?)?),
                Plan::Float => Col::Float(first_chunk(next_cast(&mut cast_iter)?.f64()?)?),
                Plan::Int => Col::Int(first_chunk(next_cast(&mut cast_iter)?.i64()?)?),
                Plan::Narrow => narrow_int(own).ok_or_else(|| Error::Format {
                    file: "frame".into(),
                    message: "internal: a narrow integer column changed".into(),
                })?,
            };
            if let Some(n) = col.len().filter(|&n| n != df.height()) {
                // A damaged Parquet file can decode to a column shorter than its row group (found
                // by fuzzing: in a release build the first cell past its end panicked).
                return Err(Error::Format {
                    file: "frame".into(),
                    message: format!(
                        "column '{}' holds {n} values where its rows number {} (a damaged file)",
                        crate::ids::redact_numbers(c.name()),
                        df.height()
                    ),
                });
            }
            cols.push(col);
        }
        Ok(FrameBatch { cols, rows: df.height() })
    }
}

impl Col<'_> {
    /// Values in the column's array (`None` for a column read as empty).
    fn len(&self) -> Option<usize> {
        Some(match self {
            Col::Null => return None,
            Col::Str(a) => a.len(),
            Col::Int(a) => a.len(),
            Col::I8(a) => a.len(),
            Col::I16(a) => a.len(),
            Col::I32(a) => a.len(),
            Col::U8(a) => a.len(),
            Col::U16(a) => a.len(),
            Col::U32(a) => a.len(),
            Col::Float(a) => a.len(),
            Col::Bool(a) => a.len(),
            Col::Date(a) => a.len(),
            Col::Codes(c) => c.rows.len(),
        })
    }
}

/// A single-chunk integer column narrower than 64 bits, viewed in place.
fn narrow_int(s: &Series) -> Option<Col<'_>> {
    fn one<T: polars::prelude::PolarsNumericType>(ca: &ChunkedArray<T>) -> Option<&PrimitiveArray<T::Native>> {
        if ca.chunks().len() == 1 { ca.downcast_iter().next() } else { None }
    }
    Some(match s.dtype() {
        DataType::Int8 => Col::I8(one(s.i8().ok()?)?),
        DataType::Int16 => Col::I16(one(s.i16().ok()?)?),
        DataType::Int32 => Col::I32(one(s.i32().ok()?)?),
        DataType::UInt8 => Col::U8(one(s.u8().ok()?)?),
        DataType::UInt16 => Col::U16(one(s.u16().ok()?)?),
        DataType::UInt32 => Col::U32(one(s.u32().ok()?)?),
        _ => return None,
    })
}

fn next_cast<'s>(it: &mut std::slice::Iter<'s, Series>) -> Result<&'s Series> {
    it.next()
        .ok_or_else(|| Error::Format { file: "frame".into(), message: "internal: a cast column is missing".into() })
}

fn first_chunk<T: polars::prelude::PolarsDataType>(ca: &ChunkedArray<T>) -> Result<&T::Array> {
    ca.downcast_iter()
        .next()
        .ok_or_else(|| Error::Format { file: "frame".into(), message: "internal: a column has no chunk".into() })
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
            Col::I8(a) if a.is_valid(row) => Cell::Int(i64::from(a.value(row))),
            Col::I16(a) if a.is_valid(row) => Cell::Int(i64::from(a.value(row))),
            Col::I32(a) if a.is_valid(row) => Cell::Int(i64::from(a.value(row))),
            Col::U8(a) if a.is_valid(row) => Cell::Int(i64::from(a.value(row))),
            Col::U16(a) if a.is_valid(row) => Cell::Int(i64::from(a.value(row))),
            Col::U32(a) if a.is_valid(row) => Cell::Int(i64::from(a.value(row))),
            Col::Float(a) if a.is_valid(row) => Cell::Float(a.value(row)),
            Col::Bool(a) if a.is_valid(row) => Cell::Bool(a.value(row)),
            Col::Date(a) if a.is_valid(row) => Cell::Date(a.value(row)),
            Col::Codes(c) => c.cell(row),
            _ => Cell::Null,
        }
    }
    fn cells<'s>(&'s self, col: usize, rows: std::ops::Range<usize>, out: &mut Vec<Cell<'s>>) {
        fn each<'s, T: polars_arrow::types::NativeType>(
            a: &'s PrimitiveArray<T>,
            rows: std::ops::Range<usize>,
            out: &mut Vec<Cell<'s>>,
            cell: impl Fn(T) -> Cell<'s>,
        ) {
            out.extend(rows.map(|r| if a.is_valid(r) { cell(a.value(r)) } else { Cell::Null }));
        }
        out.clear();
        // The arms are `cell`'s, with the column's type matched once for all the rows.
        match self.cols[col] {
            Col::Null => out.extend(rows.map(|_| Cell::Null)),
            Col::Str(a) => out.extend(rows.map(|r| match a.is_valid(r).then(|| a.value(r)) {
                Some(v) if !v.is_empty() => Cell::Str(v),
                _ => Cell::Null,
            })),
            Col::Int(a) => each(a, rows, out, Cell::Int),
            Col::I8(a) => each(a, rows, out, |v| Cell::Int(i64::from(v))),
            Col::I16(a) => each(a, rows, out, |v| Cell::Int(i64::from(v))),
            Col::I32(a) => each(a, rows, out, |v| Cell::Int(i64::from(v))),
            Col::U8(a) => each(a, rows, out, |v| Cell::Int(i64::from(v))),
            Col::U16(a) => each(a, rows, out, |v| Cell::Int(i64::from(v))),
            Col::U32(a) => each(a, rows, out, |v| Cell::Int(i64::from(v))),
            Col::Float(a) => each(a, rows, out, Cell::Float),
            Col::Bool(a) => out.extend(rows.map(|r| if a.is_valid(r) { Cell::Bool(a.value(r)) } else { Cell::Null })),
            Col::Date(a) => each(a, rows, out, Cell::Date),
            Col::Codes(c) => out.extend(rows.map(|r| c.cell(r))),
        }
    }
    fn line(&self, _row: usize) -> Option<u64> {
        None
    }
    fn fail_column(&self, col: usize, bit: u32, start: usize, fail: &mut [u64], missing: &mut [u64]) -> bool {
        match self.cols[col] {
            Col::Int(a) => zero_one(a, bit, start, fail, missing),
            Col::I8(a) => zero_one(a, bit, start, fail, missing),
            Col::I16(a) => zero_one(a, bit, start, fail, missing),
            Col::I32(a) => zero_one(a, bit, start, fail, missing),
            Col::U8(a) => zero_one(a, bit, start, fail, missing),
            Col::U16(a) => zero_one(a, bit, start, fail, missing),
            Col::U32(a) => zero_one(a, bit, start, fail, missing),
            Col::Bool(a) if start + fail.len() <= a.len() && fail.len() == missing.len() => {
                for (i, (f, m)) in fail.iter_mut().zip(missing.iter_mut()).enumerate() {
                    if !a.is_valid(start + i) {
                        *m |= 1 << bit;
                    } else if a.value(start + i) {
                        *f |= 1 << bit;
                    }
                }
                true
            }
            _ => false,
        }
    }
    fn status_codes(&self, col: usize, start: usize, out: &mut [RawStatus]) -> bool {
        if start.checked_add(out.len()).is_none_or(|end| end > self.rows) {
            return false;
        }
        match self.cols[col] {
            Col::Null => {
                out.fill(RawStatus::Missing);
                true
            }
            Col::Str(a) => {
                let Some(views) = a.views().get(start..start + out.len()) else {
                    return false;
                };
                let validity = a.validity().filter(|_| a.null_count() > 0);
                for (k, (o, v)) in out.iter_mut().zip(views.iter()).enumerate() {
                    *o = if validity.is_some_and(|m| !m.get_bit(start + k)) {
                        RawStatus::Missing
                    } else {
                        raw_status_of(v)
                    };
                }
                true
            }
            Col::Codes(c) => {
                let Some(rows) = c.rows.get(start..start + out.len()) else { return false };
                for (o, &code) in out.iter_mut().zip(rows) {
                    *o = c.status(code);
                }
                true
            }
            Col::Int(a) => raw_statuses(a, start, out),
            Col::I8(a) => raw_statuses(a, start, out),
            Col::I16(a) => raw_statuses(a, start, out),
            Col::I32(a) => raw_statuses(a, start, out),
            Col::U8(a) => raw_statuses(a, start, out),
            Col::U16(a) => raw_statuses(a, start, out),
            Col::U32(a) => raw_statuses(a, start, out),
            Col::Bool(a) if start + out.len() <= a.len() => {
                for (k, o) in out.iter_mut().enumerate() {
                    *o = match a.get(start + k) {
                        None => RawStatus::Missing,
                        Some(true) => RawStatus::One,
                        Some(false) => RawStatus::Zero,
                    };
                }
                true
            }
            _ => false,
        }
    }
    fn number_column(&self, col: usize, out: &mut [f64]) -> bool {
        match self.cols[col] {
            Col::Int(a) => numbers(a, out),
            Col::I8(a) => numbers(a, out),
            Col::I16(a) => numbers(a, out),
            Col::I32(a) => numbers(a, out),
            Col::U8(a) => numbers(a, out),
            Col::U16(a) => numbers(a, out),
            Col::U32(a) => numbers(a, out),
            Col::Float(a) if a.len() == out.len() && a.null_count() == 0 => {
                for (o, v) in out.iter_mut().zip(a.values().iter()) {
                    if !v.is_finite() || *v < 0.0 {
                        return false;
                    }
                    *o = *v;
                }
                true
            }
            _ => false,
        }
    }
    fn text_column(&self, col: usize) -> Option<&Utf8ViewArray> {
        match self.cols[col] {
            Col::Str(a) => Some(a),
            _ => None,
        }
    }
    fn u8_column(&self, col: usize) -> Option<&[u8]> {
        match self.cols[col] {
            Col::U8(a) if a.null_count() == 0 => Some(a.values().as_slice()),
            _ => None,
        }
    }
}

/// The shape of a Parquet file as its footer states it: rows (checked against the row groups),
/// row groups, column names and types.
pub struct ParquetShape {
    /// Rows, as the footer and the row groups agree.
    pub rows: usize,
    /// Row groups and their rows.
    pub row_groups: Vec<usize>,
    /// Column names.
    pub names: Vec<String>,
    /// Column types as polars reads them; `None` for a column of a type polars is not built to
    /// read here (structs, maps, unions): such a column is never read, and an error names it when
    /// a field needs it.
    pub types: Vec<Option<DataType>>,
    /// The footer, read once and handed to every slice's reader.
    metadata: polars::io::parquet::metadata::FileMetadataRef,
    /// Columns read as codes where they can be ([`Table::read_as_codes`]).
    coded: Vec<usize>,
}

impl ParquetShape {
    /// The columns that are read (every column of a readable type), in file order.
    pub fn readable(&self) -> Vec<String> {
        self.names.iter().zip(&self.types).filter(|(_, t)| t.is_some()).map(|(n, _)| n.clone()).collect()
    }
}

/// True when polars can convert an Arrow type with this build's features (struct-like types would
/// panic inside polars without its `dtype-struct` feature).
fn convertible(dt: &polars_arrow::datatypes::ArrowDataType) -> bool {
    use polars_arrow::datatypes::ArrowDataType as A;
    match dt {
        A::Struct(_) | A::Map(_, _) | A::Union(_) | A::Extension(_) => false,
        A::List(f) | A::LargeList(f) | A::FixedSizeList(f, _) => convertible(f.dtype()),
        A::Dictionary(_, values, _) => convertible(values),
        _ => true,
    }
}

fn parquet_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Format { file: path.display().to_string(), message: format!("cannot read this Parquet file: {e}") }
}

/// Reads a Parquet file's footer. The row counts it claims are checked against each other and
/// never used to reserve memory.
pub fn parquet_shape(path: &Path) -> Result<ParquetShape> {
    crate::diagnostics::foreign(path, "Parquet reader", || parquet_shape_unguarded(path))
}

fn parquet_shape_unguarded(path: &Path) -> Result<ParquetShape> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut r = ParquetReader::new(file);
    let metadata = r.get_metadata().map_err(|e| parquet_error(path, e))?.clone();
    let md = &metadata;
    let row_groups: Vec<usize> = md.row_groups.iter().map(|g| g.num_rows()).collect();
    let mut sum = 0usize;
    for &n in &row_groups {
        sum = sum.checked_add(n).ok_or_else(|| parquet_error(path, "row counts overflow"))?;
    }
    if sum != md.num_rows {
        return Err(parquet_error(
            path,
            format!("the footer claims {} rows but its row groups hold {sum}: the file is damaged", md.num_rows),
        ));
    }
    let schema = r.schema().map_err(|e| parquet_error(path, e))?;
    let (names, types) = schema
        .iter()
        .map(|(name, field)| (name.to_string(), convertible(field.dtype()).then(|| DataType::from_arrow_field(field))))
        .unzip();
    Ok(ParquetShape { rows: sum, row_groups, names, types, metadata, coded: Vec::new() })
}

/// Largest Parquet page accepted, compressed or not: 1 GiB (writers use about 1 MiB).
const MAX_PAGE_BYTES: usize = 1 << 30;

/// The compressed bytes of one column chunk, read from `file` (`path`, of `file_len` bytes):
/// `Err(None)` when the footer places the chunk outside the file or makes it larger than 64 pages
/// of [`MAX_PAGE_BYTES`] (nothing is allocated then), `Err(Some(_))` when reading fails.
fn column_chunk(
    path: &Path,
    file: &mut File,
    file_len: u64,
    column: &polars_parquet::parquet::metadata::ColumnChunkMetadata,
) -> std::result::Result<Vec<u8>, Option<Error>> {
    use std::io::{Seek, SeekFrom};
    let range = column.byte_range();
    if range.end > file_len || range.start > range.end || range.end - range.start > MAX_PAGE_BYTES as u64 * 64 {
        return Err(None);
    }
    let len = usize::try_from(range.end - range.start).map_err(|_| None)?;
    let mut bytes = vec![0u8; len];
    let io = |e| Some(Error::io(path, e));
    file.seek(SeekFrom::Start(range.start)).map_err(io)?;
    file.read_exact(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// Reads every page header of the column chunks of `read` columns in the row groups holding rows
/// `offset..offset + len` (the compressed bytes, one chunk at a time, no decoding) and checks the
/// counts polars would allocate from: a page's values must fit its row group (flat columns) and
/// an `i32`, and its sizes [`MAX_PAGE_BYTES`]. A damaged or crafted header (a negative value
/// count made polars reserve 2^61 bytes) is an error naming the file. Run before each slice is
/// decoded, on the chunks it decodes only (a column left unread is not checked: at the national
/// scale, checking the whole file first took 43 ms, most of it a household ID `tpmap mpi` never
/// reads).
fn check_pages(
    path: &Path,
    md: &polars_parquet::parquet::metadata::FileMetadata,
    offset: usize,
    len: usize,
    read: &[String],
) -> Result<()> {
    use polars_parquet::parquet::page::CompressedPage;
    use polars_parquet::parquet::read::PageReader;
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len_bytes = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut first = 0usize;
    for (g, group) in md.row_groups.iter().enumerate() {
        let rows = group.num_rows();
        let (lo, hi) = (first, first.saturating_add(rows));
        first = hi;
        if hi <= offset || lo >= offset.saturating_add(len) {
            continue;
        }
        for column in group.parquet_columns() {
            let top = column.descriptor().path_in_schema.first().map(|s| s.as_str());
            if !top.is_some_and(|top| read.iter().any(|r| r == top)) {
                continue;
            }
            let bytes = column_chunk(path, &mut file, len_bytes, column).map_err(|e| {
                e.unwrap_or_else(|| parquet_error(path, format!("row group {g}: a column chunk lies outside the file")))
            })?;
            let cursor = std::io::Cursor::new(polars_buffer::Buffer::from_vec(bytes));
            let flat = column.descriptor().descriptor.max_rep_level == 0;
            for page in PageReader::new(cursor, column, Vec::new(), MAX_PAGE_BYTES) {
                let page = page.map_err(|e| parquet_error(path, format!("row group {g}: {e}")))?;
                if let CompressedPage::Data(d) = &page {
                    let n = d.num_values();
                    if n > i32::MAX as usize || (flat && n > rows) || d.uncompressed_size() > MAX_PAGE_BYTES {
                        return Err(parquet_error(
                            path,
                            format!(
                                "row group {g}: a page claims {n} values or {} bytes: the file is damaged",
                                d.uncompressed_size()
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// One row group's part of a dictionary-encoded text column: its distinct values (the
/// dictionary page) and the rows where the index into them changes.
pub(crate) struct DictionaryChunk {
    /// The dictionary, in the file's order (checked UTF-8; a crafted file may repeat a value).
    pub(crate) values: Vec<String>,
    /// Each row (from the group's first, 0) whose index differs from the row before, and that
    /// index: the first row always, the rows in order, every index in range. Rows sorted by
    /// area make one change per area and group, not one index per row.
    pub(crate) changes: Vec<(usize, u32)>,
    /// Rows in the group.
    pub(crate) rows: usize,
}

/// The pages of a flat, optional-at-most text column chunk (the only kind the readers of
/// dictionary indices below take): `None` for any other column, or when its bytes cannot be read.
fn text_chunk_pages(
    path: &Path,
    column: &polars_parquet::parquet::metadata::ColumnChunkMetadata,
) -> Option<polars_parquet::parquet::read::PageReader> {
    use polars_parquet::parquet::schema::types::PhysicalType;
    let descriptor = &column.descriptor().descriptor;
    if descriptor.primitive_type.physical_type != PhysicalType::ByteArray
        || descriptor.max_rep_level != 0
        || descriptor.max_def_level > 1
    {
        return None;
    }
    let mut file = File::open(path).ok()?;
    let file_len = file.metadata().ok()?.len();
    let bytes = column_chunk(path, &mut file, file_len, column).ok()?;
    let cursor = std::io::Cursor::new(polars_buffer::Buffer::from_vec(bytes));
    Some(polars_parquet::parquet::read::PageReader::new(cursor, column, Vec::new(), MAX_PAGE_BYTES))
}

/// A dictionary page's values as checked UTF-8, as many as the page claims; `None` otherwise.
fn dictionary_values(d: &polars_parquet::parquet::page::DictPage) -> Option<Vec<&str>> {
    use polars_parquet::parquet::encoding::plain_byte_array::BinaryIter;
    let values =
        BinaryIter::new(&d.buffer, None).map(|v| std::str::from_utf8(v.ok()?).ok()).collect::<Option<Vec<&str>>>()?;
    (values.len() == d.num_values).then_some(values)
}

/// Reads one column chunk as its dictionary and the rows where its index changes, or `None` when
/// the chunk is not exactly what this reader handles: a text column of one dictionary page and
/// version-1 data pages of dictionary indices, without nulls or repetition, holding `rows` rows.
/// Every count is checked against the bytes before it is trusted; anything else (another
/// encoding, a null, a damaged page) is left to polars' reader, which reads it or names the
/// problem. Written by hand (on polars-parquet's page reader, decompressor and decoders) because
/// polars reads such a column only as one 16-byte view per row (827 MB for four area columns of
/// the national set) or, with a feature that recompiles polars, as a categorical; `tpmap mpi`
/// needs only where the values change.
fn dictionary_chunk(
    path: &Path,
    column: &polars_parquet::parquet::metadata::ColumnChunkMetadata,
    rows: usize,
) -> Option<DictionaryChunk> {
    use polars_parquet::parquet::compression::DecompressionContext;
    use polars_parquet::parquet::encoding::Encoding;
    use polars_parquet::parquet::encoding::hybrid_rle::{HybridRleChunk, HybridRleDecoder};
    use polars_parquet::parquet::page::{DataPageHeader, Page, split_buffer_v1};
    use polars_parquet::parquet::read::decompress;
    let descriptor = &column.descriptor().descriptor;
    let pages = text_chunk_pages(path, column)?;
    let mut values: Option<Vec<String>> = None;
    let mut changes: Vec<(usize, u32)> = Vec::new();
    // Rows decoded so far; a bit-packed run's indices, decoded into `packed` (at most a page's).
    let (mut at, mut packed): (usize, Vec<u32>) = (0, Vec::new());
    let (mut buffer, mut context) = (Vec::new(), DecompressionContext::Unset);
    for page in pages {
        let page = page.ok()?;
        if let polars_parquet::parquet::page::CompressedPage::Data(d) = &page {
            // The same bounds as `check_pages`: the values must fit the rows left.
            if d.num_values() > rows - at || d.uncompressed_size() > MAX_PAGE_BYTES {
                return None;
            }
        }
        match decompress(page, &mut buffer, &mut context).ok()? {
            Page::Dict(d) => {
                if values.is_some() {
                    return None;
                }
                values = Some(dictionary_values(&d)?.into_iter().map(str::to_string).collect());
            }
            Page::Data(d) => {
                let n = d.num_values();
                let dict_len = values.as_ref()?.len();
                if !matches!(d.encoding(), Encoding::RleDictionary | Encoding::PlainDictionary)
                    || !matches!(d.header(), DataPageHeader::V1(_))
                {
                    return None;
                }
                let split = split_buffer_v1(d.buffer(), false, descriptor.max_def_level > 0).ok()?;
                if descriptor.max_def_level > 0 {
                    // Every definition level must be 1: no nulls.
                    let mut seen = 0usize;
                    for chunk in HybridRleDecoder::new(split.def, 1, n).into_chunk_iter() {
                        match chunk.ok()? {
                            HybridRleChunk::Rle(1, len) => seen += len,
                            HybridRleChunk::Rle(..) => return None,
                            HybridRleChunk::Bitpacked(b) => {
                                let mut levels = Vec::with_capacity(b.len());
                                b.collect_into(&mut levels);
                                if levels.iter().any(|&l| l != 1) {
                                    return None;
                                }
                                seen += levels.len();
                            }
                        }
                    }
                    if seen != n {
                        return None;
                    }
                }
                let (&bits, data) = split.values.split_first()?;
                if bits > 32 {
                    return None;
                }
                let before = at;
                let mut note = |row: usize, v: u32| {
                    if changes.last().is_none_or(|&(_, last)| last != v) {
                        changes.push((row, v));
                    }
                    (v as usize) < dict_len
                };
                for chunk in HybridRleDecoder::new(data, u32::from(bits), n).into_chunk_iter() {
                    match chunk.ok()? {
                        HybridRleChunk::Rle(_, 0) => {}
                        HybridRleChunk::Rle(v, len) => {
                            if !note(at, v) {
                                return None;
                            }
                            at += len;
                        }
                        HybridRleChunk::Bitpacked(b) => {
                            packed.clear();
                            b.collect_into(&mut packed);
                            for &v in &packed {
                                if !note(at, v) {
                                    return None;
                                }
                                at += 1;
                            }
                        }
                    }
                }
                if at - before != n {
                    return None;
                }
            }
        }
    }
    (at == rows).then(|| DictionaryChunk { values: values.unwrap_or_default(), changes, rows })
}

/// Code of a null row in a [`CodeColumn`].
const NULL_CODE: u8 = u8::MAX;

/// A text column of a Parquet slice read as its distinct values and one byte per row indexing
/// them ([`NULL_CODE`] for a null): how the status columns of a Parquet extract are read.
/// polars decodes such a column into a 16-byte view per row, which tpmap then read only to tell
/// `0`, `1` and `na` apart (about 4 % of a partitioned national run, docs/bench/).
pub(crate) struct CodeColumn {
    /// The distinct values of the slice's chunks, in order of first appearance (a crafted file
    /// may repeat one in a dictionary; it is then found once).
    values: Vec<String>,
    /// Each value's status as written ([`RawStatus::of_text`]).
    statuses: Vec<RawStatus>,
    /// Per row of the slice: an index into `values`, or [`NULL_CODE`].
    rows: Vec<u8>,
}

impl CodeColumn {
    /// The cell at `row`, as polars' column would give it (an empty text is [`Cell::Null`]).
    fn cell(&self, row: usize) -> Cell<'_> {
        match self.rows.get(row).and_then(|&c| self.values.get(usize::from(c))) {
            Some(v) if !v.is_empty() => Cell::Str(v),
            _ => Cell::Null,
        }
    }

    /// The status as written of a row of code `code`, as [`raw_status_of`] reads polars' view
    /// of the same text ([`RawStatus::Missing`] for a null).
    fn status(&self, code: u8) -> RawStatus {
        self.statuses.get(usize::from(code)).copied().unwrap_or(RawStatus::Missing)
    }

    /// The code of the dictionary value `v`, added when new; `None` past 255 values.
    fn code_of(&mut self, v: &str) -> Option<u8> {
        if let Some(k) = self.values.iter().position(|x| x == v) {
            return u8::try_from(k).ok();
        }
        let k = u8::try_from(self.values.len()).ok().filter(|&k| k != NULL_CODE)?;
        self.values.push(v.to_string());
        self.statuses.push(RawStatus::of_text(v.as_bytes()));
        Some(k)
    }
}

/// Most rows of a data page [`code_rows`] reads (writers put 20 k to 1 M rows in a page); a
/// larger page is left to polars' reader.
const MAX_CODED_PAGE_ROWS: usize = 1 << 24;

/// Buffers [`code_rows`] reuses from page to page.
#[derive(Default)]
struct Scratch {
    /// Bit-packed definition levels or indices, a block at a time.
    defs: Vec<u32>,
    indices: Vec<u32>,
    /// A page's codes, when only part of it is wanted.
    codes: Vec<u8>,
}

/// Marks an index outside the dictionary in [`Indices::take`]'s table.
const BAD_INDEX: u16 = 0x100;

/// A data page's dictionary indices, taken as codes a run at a time: a run of one index is
/// written as one fill, a bit-packed block through a table. Per row, decoding the levels and the
/// indices into buffers and mapping them in passes over every row was slower than polars' own
/// decoding; runs are most of a status column (one value over many rows).
struct Indices<'a, 'b> {
    chunks: polars_parquet::parquet::encoding::hybrid_rle::HybridRleChunkIter<'a>,
    /// The current run: its index and rows left.
    run: (u32, usize),
    /// The current bit-packed block and the position in it.
    block: &'b mut Vec<u32>,
    at: usize,
    /// Code of each index below 256 ([`BAD_INDEX`] past the dictionary).
    table: [u16; 256],
    /// Or of every table entry taken: [`BAD_INDEX`] set when an index was outside the dictionary.
    seen: u16,
}

impl<'a, 'b> Indices<'a, 'b> {
    /// The indices of `chunks`, taken through `table`; `block` is a buffer (emptied here: a
    /// block left from another page must not be read).
    fn new(
        chunks: polars_parquet::parquet::encoding::hybrid_rle::HybridRleDecoder<'a>,
        block: &'b mut Vec<u32>,
        table: [u16; 256],
    ) -> Self {
        block.clear();
        Indices { chunks: chunks.into_chunk_iter(), run: (0, 0), block, at: 0, table, seen: 0 }
    }

    /// Appends the codes of the next `k` indices to `out`; `None` when the stream ends first or
    /// is damaged.
    fn take(&mut self, mut k: usize, out: &mut Vec<u8>) -> Option<()> {
        use polars_parquet::parquet::encoding::hybrid_rle::HybridRleChunk;
        while k > 0 {
            if self.run.1 > 0 {
                let m = k.min(self.run.1);
                let code = self.table[usize::try_from(self.run.0).ok().filter(|&i| i < 256)?];
                self.seen |= code;
                // A bad index's entry (0x100) becomes 0 here, and `seen` refuses the page.
                out.resize(out.len() + m, code as u8);
                (k, self.run.1) = (k - m, self.run.1 - m);
            } else if self.at < self.block.len() {
                let m = k.min(self.block.len() - self.at);
                let table = &self.table;
                let mut seen = 0u16;
                // Indices are below 256 here: a block is read only at 8 bits or fewer.
                out.extend(self.block[self.at..self.at + m].iter().map(|&i| {
                    let code = table[(i & 0xFF) as usize];
                    seen |= code;
                    code as u8
                }));
                self.seen |= seen;
                (k, self.at) = (k - m, self.at + m);
            } else {
                match self.chunks.next()?.ok()? {
                    HybridRleChunk::Rle(v, len) => self.run = (v, len),
                    HybridRleChunk::Bitpacked(b) => {
                        self.block.clear();
                        b.collect_into(self.block);
                        self.at = 0;
                    }
                }
            }
        }
        Some(())
    }
}

/// Reads rows `want` (from the group's first, 0) of one column chunk of `group_rows` rows into
/// `out`, or `None` when the chunk is not exactly what this reader handles: a text column of one
/// dictionary page and version-1 data pages of dictionary indices, without repetition, at most
/// 255 distinct values in the slice. As [`dictionary_chunk`], every count is checked against the
/// bytes before it is trusted, and anything else is left to polars' reader. Data pages wholly
/// outside `want` are not decompressed.
fn code_rows(
    path: &Path,
    column: &polars_parquet::parquet::metadata::ColumnChunkMetadata,
    group_rows: usize,
    want: std::ops::Range<usize>,
    out: &mut CodeColumn,
    scratch: &mut Scratch,
) -> Option<()> {
    use polars_parquet::parquet::compression::DecompressionContext;
    use polars_parquet::parquet::encoding::Encoding;
    use polars_parquet::parquet::encoding::hybrid_rle::{HybridRleChunk, HybridRleDecoder};
    use polars_parquet::parquet::page::{CompressedPage, DataPageHeader, Page, split_buffer_v1};
    use polars_parquet::parquet::read::decompress;
    if want.start > want.end || want.end > group_rows {
        return None;
    }
    let nullable = column.descriptor().descriptor.max_def_level > 0;
    let pages = text_chunk_pages(path, column)?;
    // The group's dictionary as codes of the slice's values.
    let mut remap: Option<Vec<u8>> = None;
    let (mut at, mut buffer, mut context) = (0usize, Vec::new(), DecompressionContext::Unset);
    for page in pages {
        let page = page.ok()?;
        if let CompressedPage::Data(d) = &page {
            // The values (rows: no repetition) must fit the rows left, as in `check_pages`, and
            // a page's codes at most MAX_CODED_PAGE_ROWS bytes (a run of a few bytes can claim
            // 2^31 rows).
            let n = d.num_values();
            if n > group_rows - at || n > MAX_CODED_PAGE_ROWS || d.uncompressed_size() > MAX_PAGE_BYTES {
                return None;
            }
            if at + n <= want.start || at >= want.end {
                at += n;
                continue;
            }
        }
        match decompress(page, &mut buffer, &mut context).ok()? {
            Page::Dict(d) => {
                if remap.is_some() {
                    return None;
                }
                remap = Some(dictionary_values(&d)?.into_iter().map(|v| out.code_of(v)).collect::<Option<_>>()?);
            }
            Page::Data(d) => {
                let remap = remap.as_ref()?;
                let n = d.num_values();
                if !matches!(d.encoding(), Encoding::RleDictionary | Encoding::PlainDictionary)
                    || !matches!(d.header(), DataPageHeader::V1(_))
                {
                    return None;
                }
                let split = split_buffer_v1(d.buffer(), false, nullable).ok()?;
                let Scratch { defs, indices, codes } = &mut *scratch;
                let (from, to) = (want.start.max(at) - at, want.end.min(at + n) - at);
                // The whole page straight into the column; part of it through `codes`.
                let whole = from == 0 && to == n;
                let target = if whole { &mut out.rows } else { &mut *codes };
                if !whole {
                    target.clear();
                }
                let before = target.len();
                let mut table = [BAD_INDEX; 256];
                table.iter_mut().zip(remap).for_each(|(t, &c)| *t = u16::from(c));
                let chunks = match split.values.split_first() {
                    // At most 8 bits: a dictionary of at most 255 values needs no more.
                    Some((&bits, data)) if bits <= 8 => HybridRleDecoder::new(data, u32::from(bits), n),
                    Some(_) => return None,
                    // No value byte: only nulls may follow.
                    None => HybridRleDecoder::new(&[], 1, 0),
                };
                let mut idx = Indices::new(chunks, indices, table);
                if nullable {
                    // Definition levels: 1 a value, 0 a null.
                    let mut levels = 0usize;
                    for chunk in HybridRleDecoder::new(split.def, 1, n).into_chunk_iter() {
                        match chunk.ok()? {
                            HybridRleChunk::Rle(1, len) => idx.take(len, target)?,
                            HybridRleChunk::Rle(0, len) => target.resize(target.len() + len, NULL_CODE),
                            HybridRleChunk::Rle(..) => return None,
                            HybridRleChunk::Bitpacked(b) => {
                                defs.clear();
                                b.collect_into(defs);
                                for &l in defs.iter() {
                                    match l {
                                        1 => idx.take(1, target)?,
                                        0 => target.push(NULL_CODE),
                                        _ => return None,
                                    }
                                }
                            }
                        }
                        levels = target.len() - before;
                    }
                    if levels != n {
                        return None;
                    }
                } else {
                    idx.take(n, target)?;
                }
                if idx.seen & BAD_INDEX != 0 || target.len() - before != n {
                    return None;
                }
                if !whole {
                    out.rows.extend_from_slice(codes.get(from..to)?);
                }
                at += n;
            }
        }
    }
    (at == group_rows).then_some(())
}

/// Column `name` of rows `offset..offset + len` of a Parquet file read as a [`CodeColumn`], or
/// `None` when a chunk is not what [`code_rows`] reads (polars then reads the column).
fn code_column(path: &Path, shape: &ParquetShape, name: &str, offset: usize, len: usize) -> Option<CodeColumn> {
    let mut out =
        CodeColumn { values: Vec::new(), statuses: Vec::new(), rows: Vec::with_capacity(len.min(MAX_SLICE_ROWS)) };
    let end = offset.checked_add(len)?;
    let mut scratch = Scratch::default();
    let mut first = 0usize;
    for group in &shape.metadata.row_groups {
        let rows = group.num_rows();
        let (lo, hi) = (first, first.checked_add(rows)?);
        first = hi;
        if hi <= offset || lo >= end {
            continue;
        }
        let mut found = group.parquet_columns().iter().filter(|c| {
            c.descriptor().path_in_schema.len() == 1
                && c.descriptor().path_in_schema.first().is_some_and(|p| p.as_str() == name)
        });
        let (Some(column), None) = (found.next(), found.next()) else { return None };
        code_rows(path, column, rows, offset.max(lo) - lo..end.min(hi) - lo, &mut out, &mut scratch)?;
    }
    (out.rows.len() == len).then_some(out)
}

/// Reads rows `offset..offset+len` of a Parquet file (only the row groups that hold them), every
/// readable column; a column that cannot be read comes back as nulls in its place.
pub fn read_parquet_slice(path: &Path, shape: &ParquetShape, offset: usize, len: usize) -> Result<DataFrame> {
    crate::diagnostics::foreign(path, "Parquet reader", || read_parquet_slice_unguarded(path, shape, offset, len))
}

fn read_parquet_slice_unguarded(path: &Path, shape: &ParquetShape, offset: usize, len: usize) -> Result<DataFrame> {
    Ok(read_parquet_coded_slice(path, shape, offset, len, &[])?.df)
}

/// Rows `offset..offset + len` of a Parquet table, its coded columns ([`Table::read_as_codes`])
/// read as codes.
fn read_slice(path: &Path, shape: &ParquetShape, offset: usize, len: usize) -> Result<Slice> {
    crate::diagnostics::foreign(path, "Parquet reader", || {
        read_parquet_coded_slice(path, shape, offset, len, &shape.coded)
    })
}

/// A slice of a Parquet file: the columns polars read, and those read as codes.
struct Slice {
    /// Every column in file order; a column read as codes is nulls here.
    df: DataFrame,
    /// The columns read as codes, by position in the file.
    codes: Vec<(usize, CodeColumn)>,
}

/// As [`read_parquet_slice`], the columns at `coded` (text columns) read as [`CodeColumn`]s
/// where [`code_column`] can, by polars otherwise.
fn read_parquet_coded_slice(
    path: &Path,
    shape: &ParquetShape,
    offset: usize,
    len: usize,
    coded: &[usize],
) -> Result<Slice> {
    use rayon::prelude::*;
    let mut readable = shape.readable();
    // The coded columns on every core, next to nothing else: polars decodes its own columns on
    // every core once these are done. A panic inside the page decoder counts as "not this
    // reader's" (polars then reads the column and names any problem).
    let codes: Vec<(usize, CodeColumn)> = coded
        .par_iter()
        .filter_map(|&c| {
            let name = shape.names.get(c)?;
            // A text column whose name no other column has (polars reads by name).
            let unique = shape.names.iter().filter(|n| *n == name).count() == 1;
            (unique && matches!(shape.types.get(c), Some(Some(DataType::String)))).then_some(())?;
            let read =
                crate::diagnostics::foreign(path, "Parquet reader", || Ok(code_column(path, shape, name, offset, len)));
            Some((c, read.ok().flatten()?))
        })
        .collect();
    readable.retain(|n| !codes.iter().any(|(c, _)| shape.names.get(*c) == Some(n)));
    if readable.is_empty() && !codes.is_empty() {
        // polars must read a column to know the slice's height: read them all as before.
        return read_parquet_coded_slice(path, shape, offset, len, &[]);
    }
    check_pages(path, &shape.metadata, offset, len, &readable)?;
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let all = readable.len() == shape.names.len();
    let mut reader = ParquetReader::new(file);
    reader.set_metadata(shape.metadata.clone());
    let mut df = reader
        .with_slice(Some((offset, len)))
        .with_columns((!all).then_some(readable))
        .finish()
        .map_err(|e| parquet_error(path, e))?;
    if !all {
        let height = df.height();
        for (pos, (name, t)) in shape.names.iter().zip(&shape.types).enumerate() {
            if t.is_none() || codes.iter().any(|(c, _)| *c == pos) {
                df.insert_column(pos, Column::full_null(name.as_str().into(), height, &DataType::Null))?;
            }
        }
    }
    df.rechunk_mut_par();
    Ok(Slice { df, codes })
}

// ---------------------------------------------------------------------------------------------
// The table of any format

/// Reads items `0..n` with `read` and hands each to `process` in order, the next one read by
/// another worker of the pool while this one is processed (two in memory at most): reading and
/// validating overlap. A rayon scope, not a thread of its own: a pool worker waiting on a thread
/// that needs the pool deadlocks once every worker waits (tests running side by side). An
/// item's error comes before the next one's: it is about earlier rows.
fn prefetched<T: Send>(
    n: usize,
    read: &mut (dyn FnMut(usize) -> Result<T> + Send),
    process: &mut dyn FnMut(usize, T) -> Result<()>,
) -> Result<()> {
    let mut current = (n > 0).then(|| read(0));
    for i in 0..n {
        let Some(item) = current.take() else { break };
        let item = item?;
        let mut next = None;
        rayon::in_place_scope(|scope| {
            if i + 1 < n {
                let (slot, read) = (&mut next, &mut *read);
                scope.spawn(move |_| *slot = Some(read(i + 1)));
            }
            process(i, item)
        })?;
        current = next;
    }
    Ok(())
}

/// An opened table of any supported format (shared with the general AF reader).
pub(crate) enum Table<'a> {
    Csv {
        src: Box<CsvSource>,
        path: PathBuf,
        /// The file's layout, when a reading of all of it found one: a wave reads only the
        /// batches holding its rows.
        layout: Option<Box<Layout>>,
    },
    Parquet {
        path: PathBuf,
        shape: ParquetShape,
        /// The file's size and time of change when it began to be laid out ([`Table::lay_out`]).
        stamp: Option<Stamp>,
    },
    Frame {
        df: &'a DataFrame,
        name: String,
        header: Vec<String>,
    },
    #[cfg(feature = "xlsx")]
    Xlsx {
        sheet: XlsxSheet,
        path: PathBuf,
        /// As a Parquet file's.
        stamp: Option<Stamp>,
    },
}

impl<'a> Table<'a> {
    pub(crate) fn open(input: TableInput<'a>, opts: &IngestOptions) -> Result<Table<'a>> {
        Self::open_deciding(input, opts, None)
    }

    /// As [`Table::open_deciding`]; a CSV file with a `layout` (of an earlier reading of all of
    /// it, [`Table::lay_out`]) is read in the encoding found then, with the evidence found then,
    /// and a reading of some of its rows ([`Table::for_each_wanted`]) reads only the batches that
    /// hold them. A file with a `layout` is refused when its size or time of change is not what
    /// it was then, or (Parquet, a workbook) its rows.
    pub(crate) fn open_laid_out(
        input: TableInput<'a>,
        opts: &IngestOptions,
        decide_on: Option<u64>,
        layout: Option<&Layout>,
    ) -> Result<Table<'a>> {
        let (TableInput::File(path), Some(layout)) = (&input, layout) else {
            return Self::open_deciding(input, opts, decide_on);
        };
        if Layout::stamp(path)? != (layout.bytes, layout.modified) {
            return Err(Layout::changed(path));
        }
        if Format::from_path(path)? != Format::Csv {
            let table = Self::open_deciding(input, opts, decide_on)?;
            // The stamp's time may be coarse (some file systems keep seconds): the rows too.
            if table.rows_known() != Some(layout.rows) {
                return Err(Layout::changed(path));
            }
            return Ok(table);
        }
        let mut src = CsvSource::open_deciding(path, layout.encoding, None)?;
        src.evidence = layout.evidence;
        Ok(Table::Csv { src: Box::new(src), path: path.to_path_buf(), layout: Some(Box::new(layout.clone())) })
    }

    /// The first part of a CSV file read in two parts at once: as [`Table::open_deciding`],
    /// reading the bytes before `cut` only; [`Table::part_from`] makes the others and
    /// [`Table::join_parts`] joins them.
    pub(crate) fn open_part(path: &Path, opts: &IngestOptions, decide_on: Option<u64>, cut: u64) -> Result<Table<'a>> {
        Ok(Table::Csv {
            src: Box::new(CsvSource::open_part(path, opts.encoding, decide_on, Some(cut))?),
            path: path.to_path_buf(),
            layout: None,
        })
    }

    /// Another part of a CSV file whose first part this is ([`Table::open_part`]): its bytes
    /// from `start` to `until` (the end when `None`), read as this part reads (columns kept,
    /// layout noted). `None` for other tables.
    pub(crate) fn part_from(&self, start: u64, until: Option<u64>) -> Result<Option<Table<'a>>> {
        let Table::Csv { src, path, .. } = self else { return Ok(None) };
        Ok(Some(Table::Csv { src: Box::new(src.part_from(path, start, until)?), path: path.clone(), layout: None }))
    }

    /// Joins the other `parts` (in order) to this first part, all read whole, as one reading of
    /// the whole file (rows, layout, the file's evidence); `Ok(false)` when the parts are not
    /// the file's rows (a cut fell inside a quoted field) and the file must be read whole.
    pub(crate) fn join_parts(&mut self, parts: Vec<Table<'a>>) -> Result<bool> {
        let Table::Csv { src, path, .. } = self else { return Ok(false) };
        let mut sources = Vec::with_capacity(parts.len());
        for part in parts {
            let Table::Csv { src, .. } = part else { return Ok(false) };
            sources.push(*src);
        }
        src.join_parts(path, sources)
    }

    /// Notes where each batch of a CSV file begins while it is read whole from here on: the
    /// layout ([`Table::layout`]) lets later readings go to the rows they want. Any file (CSV,
    /// Parquet, a workbook) is stamped now with its size and time of change, for later readings
    /// to refuse it changed ([`Table::open_laid_out`]).
    pub(crate) fn lay_out(&mut self) -> Result<()> {
        match self {
            Table::Csv { src, path, .. } => {
                src.stamp = Some(Layout::stamp(path)?);
                src.marks = Some(Vec::new());
            }
            Table::Parquet { path, stamp, .. } => *stamp = Some(Layout::stamp(path)?),
            #[cfg(feature = "xlsx")]
            Table::Xlsx { path, stamp, .. } => *stamp = Some(Layout::stamp(path)?),
            Table::Frame { .. } => {}
        }
        Ok(())
    }

    /// The layout of a CSV, Parquet or Excel file read whole since [`Table::lay_out`].
    pub(crate) fn layout(&self) -> Option<Layout> {
        match self {
            Table::Csv { src, .. } => {
                let (bytes, modified) = src.stamp?;
                Some(Layout {
                    marks: src.marks.clone()?,
                    rows: src.records,
                    encoding: src.encoding,
                    evidence: src.evidence,
                    bytes,
                    modified,
                })
            }
            Table::Parquet { stamp, .. } => self.stamped(*stamp),
            #[cfg(feature = "xlsx")]
            Table::Xlsx { stamp, .. } => self.stamped(*stamp),
            Table::Frame { .. } => None,
        }
    }

    /// The layout of a file read by row ranges (Parquet, a workbook's sheet) stamped when laid
    /// out: no marks, its rows.
    fn stamped(&self, stamp: Option<Stamp>) -> Option<Layout> {
        let (bytes, modified) = stamp?;
        // Their text is Unicode; the encoding is not used to read them.
        let encoding = Encoding::Utf8;
        Some(Layout { marks: Vec::new(), rows: self.rows_known()?, encoding, evidence: None, bytes, modified })
    }

    /// The data rows of a Parquet file (as its footer and row groups agree) or a workbook's
    /// sheet; `None` for a CSV file (known once read) or a frame.
    fn rows_known(&self) -> Option<u64> {
        match self {
            Table::Parquet { shape, .. } => Some(shape.rows as u64),
            #[cfg(feature = "xlsx")]
            Table::Xlsx { sheet, .. } => Some(sheet.rows() as u64),
            _ => None,
        }
    }

    /// As [`Table::open`], a CSV file's encoding decided on its first `decide_on` bytes when
    /// given ([`CsvSource::open_deciding`]).
    pub(crate) fn open_deciding(
        input: TableInput<'a>,
        opts: &IngestOptions,
        decide_on: Option<u64>,
    ) -> Result<Table<'a>> {
        match input {
            TableInput::Frame(df, name) => Ok(Table::Frame {
                df,
                name: name.to_string(),
                header: df.get_column_names().iter().map(|s| s.to_string()).collect(),
            }),
            TableInput::File(path) => match Format::from_path(path)? {
                Format::Csv => Ok(Table::Csv {
                    src: Box::new(CsvSource::open_deciding(path, opts.encoding, decide_on)?),
                    path: path.to_path_buf(),
                    layout: None,
                }),
                Format::Parquet => {
                    Ok(Table::Parquet { path: path.to_path_buf(), shape: parquet_shape(path)?, stamp: None })
                }
                #[cfg(feature = "xlsx")]
                Format::Xlsx => Ok(Table::Xlsx {
                    sheet: XlsxSheet::open(path, opts.sheet.as_deref(), &opts.limits)?,
                    path: path.to_path_buf(),
                    stamp: None,
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
            Table::Csv { src, .. } => &src.header,
            Table::Parquet { shape, .. } => &shape.names,
            Table::Frame { header, .. } => header,
            #[cfg(feature = "xlsx")]
            Table::Xlsx { sheet, .. } => &sheet.header,
        }
    }

    pub(crate) fn name(&self) -> String {
        match self {
            Table::Csv { path, .. } | Table::Parquet { path, .. } => path.display().to_string(),
            Table::Frame { name, .. } => name.clone(),
            #[cfg(feature = "xlsx")]
            Table::Xlsx { path, .. } => path.display().to_string(),
        }
    }

    pub(crate) fn format_name(&self) -> String {
        match self {
            Table::Csv { .. } => "csv",
            Table::Parquet { .. } => "parquet",
            Table::Frame { .. } => "frame",
            #[cfg(feature = "xlsx")]
            Table::Xlsx { .. } => "xlsx",
        }
        .to_string()
    }

    pub(crate) fn encoding_name(&self) -> Option<String> {
        match self {
            Table::Csv { src, .. } => Some(encoding_label(src.encoding, src.evidence.as_ref())),
            _ => None,
        }
    }

    /// Rows to reserve for: a hint only, never trusted beyond [`MAX_ROWS_HINT`] (a Parquet footer
    /// can claim 2^40 rows).
    pub(crate) fn rows_hint(&self) -> usize {
        match self {
            Table::Parquet { shape, .. } => shape.rows.min(MAX_ROWS_HINT),
            Table::Frame { df, .. } => df.height(),
            _ => 1 << 16,
        }
    }

    /// Rows the table says it has: a Parquet footer's count (untrusted, see
    /// `ingest::room_for`), a frame's height; `None` for text formats, known only once read.
    pub(crate) fn rows_claimed(&self) -> Option<usize> {
        match self {
            Table::Parquet { shape, .. } => Some(shape.rows),
            Table::Frame { df, .. } => Some(df.height()),
            _ => None,
        }
    }

    /// Reads only the columns at `used` from here on (the others come as empty columns): a
    /// Parquet file's other columns are not decoded; a CSV file's are parsed but not kept, nor
    /// checked for their encoding (a row is badly encoded only for a bad cell kept). The routing
    /// needs two columns: copying and checking every field of the national CSV files made it
    /// 17.3 s instead of 14.3 s (means of three alternating runs, docs/bench/).
    pub(crate) fn only(&mut self, used: &[usize]) {
        match self {
            Table::Parquet { shape, .. } => {
                for (c, t) in shape.types.iter_mut().enumerate() {
                    if !used.contains(&c) {
                        *t = None;
                    }
                }
            }
            Table::Csv { src, .. } => {
                let width = src.header.len();
                src.keep = Some((0..width).map(|c| used.contains(&c)).collect());
            }
            _ => {}
        }
    }

    /// Reads the text columns at `cols` (status columns) of a Parquet file as codes from here on
    /// ([`CodeColumn`]): their cells and statuses are the same, without a 16-byte view per row.
    pub(crate) fn read_as_codes(&mut self, cols: &[usize]) {
        if let Table::Parquet { shape, .. } = self {
            shape.coded = cols.to_vec();
        }
    }

    /// Checks that the columns the readers need (`used`, positions in the header) are of types
    /// tpmap reads: a list, struct or binary column gives an error naming file and column.
    pub(crate) fn check_types(&self, used: &[usize]) -> Result<()> {
        let types: Vec<Option<polars::prelude::DataType>> = match self {
            Table::Parquet { shape, .. } => shape.types.clone(),
            Table::Frame { df, .. } => df.dtypes().into_iter().map(Some).collect(),
            _ => return Ok(()),
        };
        for &c in used {
            let why = match types.get(c) {
                Some(Some(t)) => unsupported_type(t),
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

    /// Reads the text columns at `cols` of a Parquet file as dictionaries and the rows where
    /// their indices change ([`DictionaryChunk`]), a row group at a time (the columns of a group
    /// on every core), handing each group's chunks, in the order of `cols`, to `f`. `Ok(false)`
    /// when the table is not a Parquet file, a group claims more than [`MAX_ROWS_HINT`] rows, or
    /// any chunk is not a plain dictionary-encoded text column without nulls
    /// ([`dictionary_chunk`]), or `f` says so: the caller then reads the columns as usual and
    /// drops what `f` built.
    pub(crate) fn for_each_dictionary_group(
        &self,
        cols: &[usize],
        f: &mut dyn FnMut(&[DictionaryChunk]) -> Result<bool>,
    ) -> Result<bool> {
        use rayon::prelude::*;
        let Table::Parquet { path, shape, .. } = self else { return Ok(false) };
        if cols.iter().any(|&c| !matches!(shape.types.get(c), Some(Some(DataType::String)))) {
            return Ok(false);
        }
        let Some(names) = cols.iter().map(|&c| shape.names.get(c)).collect::<Option<Vec<_>>>() else {
            return Ok(false);
        };
        for group in &shape.metadata.row_groups {
            let rows = group.num_rows();
            if rows > MAX_ROWS_HINT {
                return Ok(false);
            }
            let mut chunks: Vec<&polars_parquet::parquet::metadata::ColumnChunkMetadata> = Vec::new();
            for name in &names {
                let mut found = group.parquet_columns().iter().filter(|c| {
                    c.descriptor().path_in_schema.len() == 1
                        && c.descriptor().path_in_schema.first().is_some_and(|p| p.as_str() == name.as_str())
                });
                match (found.next(), found.next()) {
                    (Some(c), None) => chunks.push(c),
                    _ => return Ok(false),
                }
            }
            // A panic inside the page decoder counts as "not this reader's": polars' reader
            // then reads the file and names the problem.
            let decoded: Option<Vec<DictionaryChunk>> = chunks
                .par_iter()
                .map(|c| {
                    crate::diagnostics::foreign(path, "Parquet reader", || Ok(dictionary_chunk(path, c, rows)))
                        .ok()
                        .flatten()
                })
                .collect();
            match decoded {
                Some(decoded) => {
                    if !f(&decoded)? {
                        return Ok(false);
                    }
                }
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Hands one decoded Parquet slice (rows `offset..offset + want`) to `f`.
    fn parquet_batch(
        path: &Path,
        shape: &ParquetShape,
        slice: &Slice,
        offset: usize,
        want: usize,
        casts: &mut Vec<Series>,
        f: &mut dyn FnMut(&dyn Batch, u64) -> Result<()>,
    ) -> Result<()> {
        let df = &slice.df;
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
        let b = FrameBatch::with_codes(df, casts, &slice.codes).map_err(|e| in_file(e, path))?;
        f(&b, offset as u64 + 1)
    }

    pub(crate) fn for_each(&mut self, f: &mut dyn FnMut(&dyn Batch, u64) -> Result<()>) -> Result<()> {
        self.for_each_wanted(None, f)
    }

    /// Like [`Table::for_each`]; a Parquet slice with no row in `wanted` is not read at all (a
    /// partitioned read of a file in province order reads each slice about once over all waves),
    /// nor is a batch of a CSV file opened with its layout ([`Table::open_laid_out`]). Other text
    /// files are read whole: their rows can only be found by reading.
    pub(crate) fn for_each_wanted(
        &mut self,
        wanted: Option<&super::partition::RowSet>,
        f: &mut dyn FnMut(&dyn Batch, u64) -> Result<()>,
    ) -> Result<()> {
        if let (Table::Csv { src, path, layout: Some(layout), .. }, Some(wanted)) = (&mut *self, wanted) {
            // The batches with a wanted row, each read from where it begins; the next one parsed
            // by another worker while this one is validated, as below.
            let reads = layout.reads(wanted);
            let (src, path, layout) = (&mut *src, &*path, &**layout);
            let mut next_mark = None;
            return prefetched(
                reads.len(),
                &mut |k| src.batch_at(path, layout, reads[k], &mut next_mark),
                &mut |k, b| f(&b, layout.marks[reads[k].0].row),
            );
        }
        match self {
            Table::Csv { src, path, .. } => {
                // The next batch is parsed by another worker of the pool while this one is
                // validated, as for Parquet below: parsing is sequential (the csv crate and the
                // text decoding), validation runs on every core. This batch's error comes first:
                // it is about earlier rows.
                let (src, path) = (&mut *src, &*path);
                let mut first = 1u64;
                let mut current = src.next_batch(path, BATCH_ROWS);
                loop {
                    let Some(b) = current? else { return Ok(()) };
                    let mut next = Ok(None);
                    rayon::in_place_scope(|scope| {
                        let slot = &mut next;
                        let src = &mut *src;
                        scope.spawn(move |_| *slot = src.next_batch(path, BATCH_ROWS));
                        f(&b, first)
                    })?;
                    first += b.len() as u64;
                    current = next;
                }
            }
            Table::Parquet { path, shape, .. } => {
                let slices: Vec<(usize, usize)> = match wanted {
                    // A wave reads the ranges of its rows (one per file in province order), in
                    // slices of at most 2^18 rows: polars decodes only the pages of a slice, so
                    // few rows of other provinces are decoded at a wave's edges (fixed 2^18-row
                    // slices decoded 2.5 times the households of the national waves). Fewer
                    // than 2^16 rows between two runs are read rather than cut around.
                    Some(w) => w
                        .ranges(1 << 16)
                        .into_iter()
                        .flat_map(|(first, rows)| {
                            let at = |row: u64| usize::try_from(row).unwrap_or(usize::MAX).min(shape.rows);
                            let (start, end) =
                                (at(first.saturating_sub(1)), at(first.saturating_sub(1).saturating_add(rows)));
                            (start..end).step_by(1 << 18).map(move |o| (o, (1usize << 18).min(end - o)))
                        })
                        .collect(),
                    None => parquet_slices(&shape.row_groups, 1 << 20),
                };
                let (path, shape) = (&*path, &*shape);
                if wanted.is_some() {
                    // A wave's slices one after the other: decoding the next one during the
                    // validation of this one made the national waves slower (docs/partitioned.md).
                    let mut casts = Vec::new();
                    for &(offset, want) in &slices {
                        let slice = read_slice(path, shape, offset, want)?;
                        Self::parquet_batch(path, shape, &slice, offset, want, &mut casts, f)?;
                    }
                    return Ok(());
                }
                // The next slice decoded while this one is processed.
                let mut casts = Vec::new();
                prefetched(slices.len(), &mut |i| read_slice(path, shape, slices[i].0, slices[i].1), &mut |i, slice| {
                    Self::parquet_batch(path, shape, &slice, slices[i].0, slices[i].1, &mut casts, f)
                })
            }
            Table::Frame { df, name, .. } => {
                let mut casts = Vec::new();
                for offset in (0..df.height()).step_by(BATCH_ROWS) {
                    let mut slice = df.slice(offset as i64, BATCH_ROWS);
                    slice.rechunk_mut_par();
                    let b = FrameBatch::new(&slice, &mut casts).map_err(|e| in_file(e, Path::new(name)))?;
                    f(&b, offset as u64 + 1)?;
                }
                Ok(())
            }
            #[cfg(feature = "xlsx")]
            Table::Xlsx { sheet, .. } => {
                let rows = sheet.rows();
                for start in (0..rows).step_by(BATCH_ROWS) {
                    let b = sheet.batch(start, BATCH_ROWS.min(rows - start));
                    f(&b, start as u64 + 1)?;
                }
                Ok(())
            }
        }
    }
}

/// Rows of a Parquet slice at most, however large the file's row groups.
pub const MAX_SLICE_ROWS: usize = 1 << 21;

/// The slices `(offset, rows)` a Parquet file with these row groups is read in: each group on
/// its own, small consecutive groups together while they hold at most a quarter of `step` rows,
/// and only a group above [`MAX_SLICE_ROWS`] cut (in pieces of
/// `step`). A slice that cut across groups would have both groups decoded for it, and a group
/// decoded again for the next slice (`tpmap synth`'s groups of 1,049,209 persons read in slices of
/// 2^20 rows were decoded about twice); a slice of several groups is copied into one chunk.
pub fn parquet_slices(row_groups: &[usize], step: usize) -> Vec<(usize, usize)> {
    let step = step.max(1);
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut offset = 0usize;
    let mut open: Option<(usize, usize)> = None;
    for &rows in row_groups {
        if rows > MAX_SLICE_ROWS {
            out.extend(open.take());
            let mut o = 0;
            while o < rows {
                out.push((offset + o, step.min(rows - o)));
                o += step;
            }
        } else {
            open = match open {
                Some((at, n)) if n + rows <= step / 4 => Some((at, n + rows)),
                other => {
                    out.extend(other);
                    Some((offset, rows))
                }
            };
        }
        offset += rows;
    }
    out.extend(open);
    out.retain(|&(_, n)| n > 0);
    out
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

// ---------------------------------------------------------------------------------------------
// Excel

/// A worksheet cell, owned and compact (16 bytes): text is interned per sheet.
#[cfg(feature = "xlsx")]
#[derive(Clone, Copy, Debug, PartialEq)]
enum XCell {
    Empty,
    Str(u32),
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(i32),
    Error,
}

/// One worksheet of an `.xlsx` workbook, held in memory as the rows that have cells (blank rows
/// are not records, as in CSV). The workbook is checked first: its parts may not decompress to
/// more than [`Limits::xlsx_bytes`](crate::limits::Limits), and the sheet may not hold more than
/// [`Limits::xlsx_cells`](crate::limits::Limits) cells — a single cell at `XFD1048576` costs one
/// cell, not Excel's whole grid.
#[cfg(feature = "xlsx")]
pub struct XlsxSheet {
    /// Header fields (the sheet's first row that is neither blank nor a `#` notice).
    pub header: Vec<String>,
    /// Data rows × header width.
    cells: Vec<XCell>,
    /// Sheet row (1-based) of each data row.
    lines: Vec<u32>,
    /// Cells each data row really has (for ragged rows).
    counts: Vec<u32>,
    strings: Vec<String>,
}

#[cfg(feature = "xlsx")]
impl XlsxSheet {
    /// Opens `sheet` (or the first sheet) of a workbook, within `limits`.
    pub fn open(path: &Path, sheet: Option<&str>, limits: &crate::limits::Limits) -> Result<XlsxSheet> {
        crate::diagnostics::foreign(path, "Excel reader", || XlsxSheet::open_unguarded(path, sheet, limits))
    }

    fn open_unguarded(path: &Path, sheet: Option<&str>, limits: &crate::limits::Limits) -> Result<XlsxSheet> {
        use calamine::{DataRef, Reader, open_workbook};
        let file = path.display().to_string();
        check_zip(path, limits.xlsx_bytes)?;
        let fmt = |message: String| Error::Format { file: file.clone(), message };
        let mut wb: calamine::Xlsx<_> = open_workbook(path).map_err(|e| fmt(format!("cannot open workbook: {e}")))?;
        let name = match sheet {
            Some(s) => s.to_string(),
            None => wb.sheet_names().first().cloned().ok_or_else(|| fmt("workbook has no sheets".into()))?,
        };
        let mut reader = wb.worksheet_cells_reader(&name).map_err(|e| fmt(format!("sheet '{name}': {e}")))?;
        let mut strings: Vec<String> = Vec::new();
        let mut interned: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
        let mut intern = |s: &str| -> u32 {
            if let Some(&i) = interned.get(s) {
                return i;
            }
            let i = strings.len() as u32;
            strings.push(s.to_string());
            interned.insert(s.to_string(), i);
            i
        };
        let mut cells: Vec<(u32, u32, XCell)> = Vec::new();
        loop {
            let next = reader.next_cell().map_err(|e| fmt(format!("sheet '{name}': {e}")))?;
            let Some(cell) = next else { break };
            let (r, c) = cell.get_position();
            let v = match cell.get_value() {
                DataRef::Empty => continue,
                DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) if s.is_empty() => continue,
                DataRef::SharedString("") => continue,
                DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => XCell::Str(intern(s)),
                DataRef::SharedString(s) => XCell::Str(intern(s)),
                DataRef::Int(i) => XCell::Int(*i),
                // Excel keeps every number as a double: whole ones are integers to the parsers.
                DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => XCell::Int(*f as i64),
                DataRef::Float(f) => XCell::Float(*f),
                DataRef::Bool(b) => XCell::Bool(*b),
                DataRef::DateTime(d) => excel_date(d.as_f64()).map_or(XCell::Float(d.as_f64()), XCell::Date),
                DataRef::Error(_) => XCell::Error,
            };
            if cells.len() as u64 >= limits.xlsx_cells {
                return Err(cell_limit(&file, limits.xlsx_cells));
            }
            cells.push((r, c, v));
        }
        drop(reader);
        // Row-major order (a workbook may list cells in any order); the last of two cells at one
        // position wins, as in Excel.
        cells.sort_by_key(|&(r, c, _)| (r, c));
        cells.dedup_by(|later, earlier| {
            let same = (later.0, later.1) == (earlier.0, earlier.1);
            if same {
                earlier.2 = later.2;
            }
            same
        });
        let min_col = cells.iter().map(|&(_, c, _)| c).min().unwrap_or(0);
        let text_of = |v: &XCell, strings: &[String]| -> String {
            match v {
                XCell::Str(i) => strings[*i as usize].clone(),
                other => xcell_to_cell(other, strings).to_text(),
            }
        };
        let rows: Vec<&[(u32, u32, XCell)]> = cells.chunk_by(|a, b| a.0 == b.0).collect();
        // Leading rows whose first cell starts with '#' are notices (synthetic-data marker).
        let mut first = 0;
        while first < rows.len() {
            let row = rows[first];
            let lead = row.iter().find(|&&(_, c, _)| c == min_col).map(|(_, _, v)| text_of(v, &strings));
            if lead.is_some_and(|t| t.starts_with('#')) {
                first += 1;
            } else {
                break;
            }
        }
        let mut header: Vec<String> = Vec::new();
        if let Some(row) = rows.get(first) {
            let width = row.iter().map(|&(_, c, _)| c - min_col + 1).max().unwrap_or(0) as usize;
            header = vec![String::new(); width];
            for (_, c, v) in row.iter() {
                header[(c - min_col) as usize] = text_of(v, &strings);
            }
        }
        let width = header.len();
        let data = rows.get(first + 1..).unwrap_or(&[]);
        if (data.len() as u64).saturating_mul(width as u64) > limits.xlsx_cells {
            return Err(cell_limit(&file, limits.xlsx_cells));
        }
        let mut out = Vec::with_capacity(data.len() * width);
        let mut lines = Vec::with_capacity(data.len());
        let mut counts = Vec::with_capacity(data.len());
        for row in data {
            let base = out.len();
            out.resize(base + width, XCell::Empty);
            let mut last = 0u32;
            for &(_, c, v) in row.iter() {
                let k = (c - min_col) as usize;
                if k < width {
                    out[base + k] = v;
                }
                last = last.max(c - min_col + 1);
            }
            lines.push(row[0].0.saturating_add(1));
            // A row with cells beyond the header is ragged; one with fewer is not (Excel does not
            // store trailing blank cells).
            counts.push(last.max(width as u32));
        }
        Ok(XlsxSheet { header, cells: out, lines, counts, strings })
    }

    /// Data rows.
    pub fn rows(&self) -> usize {
        self.lines.len()
    }

    /// A batch of data rows `start..start+len`.
    pub fn batch(&self, start: usize, len: usize) -> XlsxBatch<'_> {
        XlsxBatch { sheet: self, start, len }
    }
}

#[cfg(feature = "xlsx")]
fn cell_limit(file: &str, max: u64) -> Error {
    Error::Limit {
        file: file.to_string(),
        message: format!(
            "the worksheet holds more than {max} cells (rows × header columns), the limit; raise it with --max-xlsx-cells (each cell takes 16 bytes of memory) or save the sheet as CSV"
        ),
    }
}

/// Days since 1970-01-01 of an Excel serial date (days from 1899-12-30, the 1900 leap-year bug
/// included), for serials from 1 (1900-01-01) to 2,958,465 (9999-12-31); `None` outside.
#[cfg(feature = "xlsx")]
fn excel_date(serial: f64) -> Option<i32> {
    if !serial.is_finite() || !(1.0..2_958_466.0).contains(&serial) {
        return None;
    }
    Some(serial.floor() as i32 - 25_569)
}

#[cfg(feature = "xlsx")]
fn xcell_to_cell<'a>(v: &XCell, strings: &'a [String]) -> Cell<'a> {
    match *v {
        XCell::Empty => Cell::Null,
        XCell::Str(i) => Cell::Str(&strings[i as usize]),
        XCell::Int(i) => Cell::Int(i),
        XCell::Float(f) => Cell::Float(f),
        XCell::Bool(b) => Cell::Bool(b),
        XCell::Date(d) => Cell::Date(d),
        XCell::Error => Cell::Str("#ERROR"),
    }
}

/// Checks a workbook's zip parts before anything is parsed: the sizes the directory declares, and
/// then what each part really decompresses to (a declared size can lie), against `max_bytes` in
/// all. Decompressed bytes are counted and dropped: nothing is held.
#[cfg(feature = "xlsx")]
fn check_zip(path: &Path, max_bytes: u64) -> Result<()> {
    let file = path.display().to_string();
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut zip = ::zip::ZipArchive::new(BufReader::new(f))
        .map_err(|e| Error::Format { file: file.clone(), message: format!("not an .xlsx workbook (zip): {e}") })?;
    let limit = |what: String| Error::Limit {
        file: file.clone(),
        message: format!(
            "{what}: more than {max_bytes} bytes decompressed, the limit; raise it with --max-xlsx-bytes, or save the sheet as CSV"
        ),
    };
    let mut declared = 0u64;
    for i in 0..zip.len() {
        let entry = zip
            .by_index_raw(i)
            .map_err(|e| Error::Format { file: file.clone(), message: format!("damaged workbook: {e}") })?;
        declared = declared.saturating_add(entry.size());
    }
    if declared > max_bytes {
        return Err(limit("the workbook's parts declare".into()));
    }
    let mut total = 0u64;
    for i in 0..zip.len() {
        let entry = zip
            .by_index(i)
            .map_err(|e| Error::Format { file: file.clone(), message: format!("damaged workbook: {e}") })?;
        let name = entry.name().to_string();
        let budget = max_bytes - total;
        let n = std::io::copy(&mut entry.take(budget + 1), &mut std::io::sink()).map_err(|e| Error::Format {
            file: file.clone(),
            message: format!("damaged workbook part '{name}': {e}"),
        })?;
        if n > budget {
            return Err(limit(format!("the workbook's part '{name}' and those before it decompress to")));
        }
        total += n;
    }
    Ok(())
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
        let w = self.sheet.header.len();
        let k = (self.start + row) * w + col;
        match self.sheet.cells.get(k) {
            Some(v) if col < w => xcell_to_cell(v, &self.sheet.strings),
            _ => Cell::Null,
        }
    }
    fn line(&self, row: usize) -> Option<u64> {
        self.sheet.lines.get(self.start + row).map(|&l| l as u64)
    }
    fn field_count(&self, row: usize) -> Option<usize> {
        self.sheet.counts.get(self.start + row).map(|&n| n as usize)
    }
}

/// The first batch (up to 100 rows) of a UTF-8 CSV file of `bytes`, read from a temporary file.
#[cfg(test)]
pub(crate) fn csv_batch_of(bytes: &[u8]) -> CsvBatch {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("t.csv");
    std::fs::write(&path, bytes).expect("the file written");
    let mut src = CsvSource::open(&path, Encoding::Utf8).expect("the file opened");
    src.next_batch(&path, 100).expect("a batch read").expect("a batch with rows")
}

#[cfg(test)]
mod tests {
    /// Status columns read as codes give every cell and status polars' reading gives: nulls in
    /// runs and scattered, empty texts, forms read cell by cell (`ผ่าน`, ` 1`), a column of
    /// nulls only, row groups with different dictionaries, slices across groups and pages.
    #[test]
    fn coded_status_columns_read_as_polars_reads_them() {
        use super::{Batch, FrameBatch, RawStatus};
        use polars::prelude::*;
        let n = 5000usize;
        // A cheap deterministic mix: long runs of one value, then scattered values.
        let pick = |i: usize, salt: usize| (i.wrapping_mul(2654435761).wrapping_add(salt * 97) >> 7) % 11;
        let forms = [Some("0"), Some("1"), Some("na"), Some("NA"), None, Some(""), Some("ผ่าน"), Some(" 1")];
        let col = |salt: usize, kinds: usize| -> Vec<Option<&str>> {
            (0..n).map(|i| if (i / 700) % 2 == 0 { forms[salt % 2] } else { forms[pick(i, salt) % kinds] }).collect()
        };
        let mut df = df!(
            "id" => (0..n as u64).collect::<Vec<_>>(),
            "plain" => col(0, 3),
            "nulls" => col(1, 5),
            "mixed" => col(2, 8),
            "empty" => vec![None::<&str>; n],
            "twice" => col(3, 4),
        )
        .unwrap();
        // The last group's dictionary holds a value the others lack.
        let twice: Vec<Option<&str>> = (0..n).map(|i| if i >= 4700 { Some("ไม่ผ่าน") } else { col(3, 4)[i] }).collect();
        df.replace("twice", Series::new("twice".into(), twice).into_column()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("statuses.parquet");
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .with_row_group_size(Some(1200))
            .with_data_page_size(Some(256))
            .finish(&mut df)
            .unwrap();
        let shape = super::parquet_shape(&path).unwrap();
        assert!(shape.row_groups.len() > 3);
        let coded = [1, 2, 3, 4, 5];
        for (offset, len) in [(0, n), (0, 1200), (1100, 300), (1199, 1), (2399, 1202), (4000, 1000), (17, 4983)] {
            let by_polars = super::read_parquet_slice(&path, &shape, offset, len).unwrap();
            let slice = super::read_parquet_coded_slice(&path, &shape, offset, len, &coded).unwrap();
            assert_eq!(slice.codes.iter().map(|(c, _)| *c).collect::<Vec<_>>(), coded, "every column read as codes");
            assert_eq!(slice.df.height(), len);
            let (mut c1, mut c2) = (Vec::new(), Vec::new());
            let a = FrameBatch::new(&by_polars, &mut c1).unwrap();
            let b = FrameBatch::with_codes(&slice.df, &mut c2, &slice.codes).unwrap();
            for c in 0..6 {
                for r in 0..len {
                    assert_eq!(a.cell(r, c), b.cell(r, c), "column {c}, row {}", offset + r);
                }
                let mut cells = Vec::new();
                b.cells(c, 3.min(len)..len, &mut cells);
                assert!(cells.iter().enumerate().all(|(k, &x)| x == a.cell(k + 3.min(len), c)));
                if c > 0 {
                    let (mut x, mut y) = (vec![RawStatus::Unread; len], vec![RawStatus::Unread; len]);
                    assert!(a.status_codes(c, 0, &mut x) && b.status_codes(c, 0, &mut y));
                    assert_eq!(x, y, "column {c} at {offset}");
                }
            }
        }
    }

    /// Damaged status columns (an uncompressed file with one byte changed, at every position of
    /// its column chunks): the coded reading never panics, and wherever polars reads the slice,
    /// the coded reading gives the same cells or an error, never other values.
    #[test]
    fn damaged_coded_columns_read_as_polars_or_fail() {
        use super::{Batch, FrameBatch};
        use polars::prelude::*;
        let n = 600usize;
        let forms = [Some("0"), Some("1"), Some("na"), None];
        let mut df = df!(
            "id" => (0..n as u64).collect::<Vec<_>>(),
            "s" => (0..n).map(|i| forms[(i * 7 / 5 + i / 50) % 4]).collect::<Vec<_>>(),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.parquet");
        ParquetWriter::new(std::fs::File::create(&good).unwrap())
            .with_compression(ParquetCompression::Uncompressed)
            .with_row_group_size(Some(250))
            .with_data_page_size(Some(128))
            .finish(&mut df)
            .unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let bad = dir.path().join("bad.parquet");
        let (mut compared, mut refused) = (0, 0);
        // Every third byte before the footer (the footer's damage is `parquet_shape`'s to find),
        // changed in a way that depends on where.
        for at in (4..bytes.len().saturating_sub(200)).step_by(3) {
            let mut b = bytes.clone();
            b[at] ^= (at as u8).wrapping_mul(37) | 1;
            std::fs::write(&bad, &b).unwrap();
            let Ok(shape) = super::parquet_shape(&bad) else { continue };
            // As `read_slice` reads it: a panic inside polars is an error naming the file.
            let coded = crate::diagnostics::foreign(&bad, "Parquet reader", || {
                super::read_parquet_coded_slice(&bad, &shape, 0, n, &[1])
            });
            let Ok(by_polars) = super::read_parquet_slice(&bad, &shape, 0, n) else { continue };
            let Ok(slice) = coded else {
                refused += 1;
                continue;
            };
            let (mut c1, mut c2) = (Vec::new(), Vec::new());
            let (Ok(a), Ok(x)) =
                (FrameBatch::new(&by_polars, &mut c1), FrameBatch::with_codes(&slice.df, &mut c2, &slice.codes))
            else {
                continue;
            };
            for r in 0..n.min(a.len()).min(x.len()) {
                assert_eq!(a.cell(r, 1), x.cell(r, 1), "byte {at} changed, row {r}");
            }
            compared += usize::from(!slice.codes.is_empty());
        }
        // Most damage is outside the status column's pages, or in values the pages still hold.
        assert!(compared > 1000, "{compared} damaged files read as codes and compared, {refused} refused");
    }

    /// A status column read whole gives what reading it cell by cell gives: 1 fails, 0 passes,
    /// a null is missing; any other value refuses the column and touches nothing.
    #[test]
    fn zero_one_reads_statuses_with_and_without_nulls() {
        use polars_arrow::array::PrimitiveArray;
        let cells = [Some(1i32), None, Some(0), Some(1), None, Some(0)];
        let with_nulls = PrimitiveArray::<i32>::from(cells.to_vec());
        let (mut fail, mut missing) = (vec![0u64; 6], vec![1u64; 6]);
        assert!(super::zero_one(&with_nulls, 3, 0, &mut fail, &mut missing));
        for (i, c) in cells.iter().enumerate() {
            assert_eq!(fail[i], u64::from(*c == Some(1)) << 3, "row {i}");
            assert_eq!(missing[i], 1 | u64::from(c.is_none()) << 3, "row {i}");
        }
        // Rows 2..5 only, into masks of their own.
        let (mut fail, mut missing) = (vec![0u64; 3], vec![0u64; 3]);
        assert!(super::zero_one(&with_nulls, 1, 2, &mut fail, &mut missing));
        assert_eq!((fail, missing), (vec![0, 2, 0], vec![0, 0, 2]));
        // Rows past the end refuse.
        assert!(!super::zero_one(&with_nulls, 1, 4, &mut [0u64; 3], &mut [0u64; 3]));
        let plain = PrimitiveArray::<i32>::from_vec(vec![1, 0, 0, 1, 1, 0]);
        let mut fail = vec![0u64; 6];
        assert!(super::zero_one(&plain, 0, 0, &mut fail, &mut [0u64; 6]));
        assert_eq!(fail, [1, 0, 0, 1, 1, 0]);
        // A 2 refuses the column, also beside nulls.
        let bad = PrimitiveArray::<i32>::from(vec![Some(1), None, Some(2)]);
        let (mut fail, mut missing) = (vec![0u64; 3], vec![0u64; 3]);
        assert!(!super::zero_one(&bad, 0, 0, &mut fail, &mut missing));
        assert_eq!((fail, missing), (vec![0; 3], vec![0; 3]));
    }

    #[test]
    fn parquet_slices_follow_the_row_groups() {
        let step = 1 << 20;
        // tpmap synth's persons: groups a little larger than the step, one slice each.
        assert_eq!(
            parquet_slices(&[1_049_209, 1_049_209, 10], step),
            [(0, 1_049_209), (1_049_209, 1_049_209), (2_098_418, 10)]
        );
        // Groups of a quarter of the step or more on their own; smaller ones together.
        assert_eq!(parquet_slices(&[400_000, 400_000, 5], step), [(0, 400_000), (400_000, 400_000), (800_000, 5)]);
        assert_eq!(parquet_slices(&[100_000; 4], step), [(0, 200_000), (200_000, 200_000)]);
        assert_eq!(parquet_slices(&[1_000; 300], step).len(), 2);
        // A group above the largest slice is cut, the groups around it kept whole.
        let big = MAX_SLICE_ROWS + 3;
        let got = parquet_slices(&[7, big, 2], step);
        assert_eq!(got.first(), Some(&(0, 7)));
        assert_eq!(got.last(), Some(&(7 + big, 2)));
        assert_eq!(got.iter().map(|s| s.1).sum::<usize>(), 9 + big);
        assert!(got.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0));
        assert!(got.iter().all(|s| s.1 <= MAX_SLICE_ROWS));
        // Empty groups and no groups.
        assert_eq!(parquet_slices(&[0, 3, 0], step), [(0, 3)]);
        assert!(parquet_slices(&[], step).is_empty());
    }

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

    /// A quote left open that takes in the lines after its own is refused at the file's end,
    /// naming the line it is on and the lines taken in (`\n`, `\r\n` and lone `\r` line ends);
    /// one left open on the last line, or closed over several, is read as before.
    #[test]
    fn a_quote_left_open_over_lines_is_refused_naming_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&[u8], Option<&str>); 8] = [
            (
                b"a,b\n1,x\n2,\"y\n3,z\n4,w\n",
                Some("line 3: a quote opened in a field is never closed, so the 2 line(s)"),
            ),
            (
                b"a,b\r\n1,x\r\n2,\"y\r\n3,z\r\n",
                Some("line 3: a quote opened in a field is never closed, so the 1 line(s)"),
            ),
            (b"a,b\r1,\"x\r2,y\r3,z", Some("line 2: a quote opened in a field is never closed, so the 2 line(s)")),
            (b"a,b\n1,\"x\n\n\n", Some("line 2: a quote opened in a field is never closed, so the 2 line(s)")),
            (b"a,b\n1,x\n2,\"y\n", None),
            (b"a,b\n1,x\n2,\"y", None),
            (b"a,b\n1,\"x\ny\"\n2,z\n", None),
            (b"a,b\n1,x\"y\n2,z\n", None),
        ];
        for (k, (bytes, want)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("case{k}.csv"));
            std::fs::write(&path, bytes).unwrap();
            let mut src = CsvSource::open(&path, Encoding::Utf8).unwrap();
            let mut rows = 0;
            let got = loop {
                match src.next_batch(&path, 2) {
                    Ok(Some(b)) => rows += b.len(),
                    Ok(None) => break Ok(rows),
                    Err(e) => break Err(e.to_string()),
                }
            };
            // The readers outside the extracts' (published tables, served lists) say the same.
            let (mut reader, lines) = counting_reader(
                Box::new(std::io::Cursor::new(bytes.to_vec())),
                csv::ReaderBuilder::new().has_headers(false).flexible(true),
                None,
            );
            let mut rec = csv::ByteRecord::new();
            while reader.read_byte_record(&mut rec).unwrap() {}
            let plain = lines.check_quotes_closed(&path, Some(0)).map_err(|e| e.to_string());
            match want {
                Some(w) => {
                    let e = got.expect_err(&format!("case {k} read"));
                    assert!(e.contains(w) && e.contains(&format!("case{k}.csv")), "case {k}: {e}");
                    assert!(plain.expect_err("refused").contains(w), "case {k}");
                }
                None => {
                    assert!(got.is_ok_and(|rows| rows >= 2), "case {k}");
                    assert!(plain.is_ok(), "case {k}");
                }
            }
        }
        // Read in two parts, the second holding the quote: its line counted on from the first.
        let mut text = String::from("a,b\n");
        for i in 0..50 {
            text.push_str(&format!("{i},x\n"));
        }
        let cut = text.len() as u64;
        text.push_str("50,y\n51,\"z\n52,w\n53,v\n");
        let path = dir.path().join("parts.csv");
        std::fs::write(&path, &text).unwrap();
        let mut first = CsvSource::open_part(&path, Encoding::Utf8, None, Some(cut)).unwrap();
        let mut second = first.part_from(&path, cut, None).unwrap();
        while first.next_batch(&path, 7).unwrap().is_some() {}
        while second.next_batch(&path, 7).unwrap().is_some() {}
        let e = first.join_parts(&path, vec![second]).unwrap_err().to_string();
        assert!(e.contains("line 53: a quote opened in a field is never closed, so the 2 line(s)"), "{e}");
    }

    #[test]
    fn record_guard_stops_an_endless_record_and_passes_quoted_line_breaks() {
        let read_all = |data: &[u8], max: u64| {
            let mut g = RecordGuard { max, ..RecordGuard::new(data, &Lines::default(), None, b',') };
            let mut out = Vec::new();
            g.read_to_end(&mut out).map(|_| out.len())
        };
        assert_eq!(read_all(b"a,b\n\"x\ny\",z\r\nc,d\n", 8).unwrap(), 17);
        assert!(read_all(b"a,\"open quote\nand more\nand more\n", 16).is_err());
        assert!(read_all(&[b'x'; 100], 64).is_err());
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

#[cfg(test)]
mod status_code_tests {
    use super::*;
    use crate::indicators::IndicatorStatus;
    use crate::ingest::OneMeans;
    use crate::ingest::parse::status;

    /// Statuses read in place give what reading them cell by cell gives, for every form, type
    /// and reading of 1; forms left unread are exactly those the short path does not know.
    /// A run of cells read at once is the cells read one by one, for every column type a
    /// frame batch holds (nulls and empty text included) and windows inside the column.
    #[test]
    fn cells_agree_with_reading_cell_by_cell() {
        let n = 23;
        let pick = |i: usize| i % 4 != 3;
        // Row numbers as a small type, widened losslessly into each column's.
        let k = |i: usize| u8::try_from(i).expect("a few rows");
        let df = DataFrame::new(
            n,
            vec![
                Column::new("text".into(), (0..n).map(|i| pick(i).then(|| ["", "ก", "x1"][i % 3])).collect::<Vec<_>>()),
                Column::new("i64".into(), (0..n).map(|i| pick(i).then_some(i64::from(k(i)) - 5)).collect::<Vec<_>>()),
                Column::new(
                    "i8".into(),
                    (0..n).map(|i| pick(i).then_some(i8::try_from(k(i)).expect("below 128") - 9)).collect::<Vec<_>>(),
                ),
                Column::new(
                    "i16".into(),
                    (0..n).map(|i| pick(i).then_some(i16::from(k(i)) * -1_000)).collect::<Vec<_>>(),
                ),
                Column::new(
                    "i32".into(),
                    (0..n).map(|i| pick(i).then_some(i32::from(k(i)) * -70_000)).collect::<Vec<_>>(),
                ),
                Column::new("u8".into(), (0..n).map(|i| pick(i).then_some(k(i) * 11)).collect::<Vec<_>>()),
                Column::new(
                    "u16".into(),
                    (0..n).map(|i| pick(i).then_some(u16::from(k(i)) * 2_500)).collect::<Vec<_>>(),
                ),
                Column::new(
                    "u32".into(),
                    (0..n).map(|i| pick(i).then_some(u32::from(k(i)) * 150_000_000)).collect::<Vec<_>>(),
                ),
                Column::new("f64".into(), (0..n).map(|i| pick(i).then_some(f64::from(k(i)) / 4.0)).collect::<Vec<_>>()),
                Column::new("bool".into(), (0..n).map(|i| pick(i).then_some(i % 2 == 0)).collect::<Vec<_>>()),
                Column::new(
                    "date".into(),
                    (0..n).map(|i| pick(i).then_some(i32::from(k(i)) * 400)).collect::<Vec<_>>(),
                )
                .cast(&DataType::Date)
                .expect("dates"),
                Column::new("no_nulls".into(), (0..n).map(|i| u32::from(k(i))).collect::<Vec<_>>()),
                Column::full_null("empty".into(), n, &DataType::Null),
            ],
        )
        .expect("frame");
        let mut casts = Vec::new();
        let batch = FrameBatch::new(&df, &mut casts).expect("batch");
        let mut out = vec![Cell::Int(7)];
        for col in 0..df.width() {
            for rows in [0..n, 0..0, 3..n, 5..9, n - 1..n] {
                batch.cells(col, rows.clone(), &mut out);
                let one_by_one: Vec<Cell<'_>> = rows.map(|r| batch.cell(r, col)).collect();
                assert_eq!(out, one_by_one, "column {}", df.get_column_names()[col]);
            }
        }
    }

    #[test]
    fn status_codes_agree_with_reading_cell_by_cell() {
        let text = [
            Some("0"),
            Some("1"),
            Some("na"),
            Some("NA"),
            Some("nA"),
            Some(""),
            None,
            Some("-"),
            Some(" 1"),
            Some("2"),
            Some("ผ่าน"),
            Some("1.0"),
            Some("nan"),
            Some("n"),
            Some("a long form, not inline"),
        ];
        let n = text.len();
        let ints: Vec<Option<i64>> = (0..n).map(|i| [Some(0), Some(1), None, Some(2), Some(-1)][i % 5]).collect();
        let small: Vec<Option<u8>> = (0..n).map(|i| [Some(1), None, Some(0), Some(7)][i % 4]).collect();
        let flags: Vec<Option<bool>> = (0..n).map(|i| [Some(true), Some(false), None][i % 3]).collect();
        let df = DataFrame::new(
            n,
            vec![
                Column::new("text".into(), text.to_vec()),
                Column::new("ints".into(), ints),
                Column::new("small".into(), small),
                Column::new("flags".into(), flags),
                Column::full_null("empty".into(), n, &DataType::Null),
            ],
        )
        .expect("frame");
        let mut casts = Vec::new();
        let batch = FrameBatch::new(&df, &mut casts).expect("batch");
        for col in 0..df.width() {
            // Every window, including ones that start inside the column and one past its end.
            for start in [0, 3, n - 1] {
                let mut codes = vec![RawStatus::Unread; n - start];
                assert!(batch.status_codes(col, start, &mut codes), "column {col} from {start}");
                for (k, code) in codes.iter().enumerate() {
                    for one in [OneMeans::Fail, OneMeans::Pass] {
                        let by_cell = status(batch.cell(start + k, col), one);
                        let fails = |v| matches!((v, one), (true, OneMeans::Fail) | (false, OneMeans::Pass));
                        let expected = match code {
                            RawStatus::Unread => continue,
                            RawStatus::Zero if fails(false) => IndicatorStatus::Fail,
                            RawStatus::One if fails(true) => IndicatorStatus::Fail,
                            RawStatus::Zero | RawStatus::One => IndicatorStatus::Pass,
                            RawStatus::NotApplicable => IndicatorStatus::NotApplicable,
                            RawStatus::Missing => IndicatorStatus::Missing,
                        };
                        assert_eq!(by_cell, Ok(expected), "column {col}, row {}", start + k);
                    }
                }
            }
            assert!(!batch.status_codes(col, n - 1, &mut [RawStatus::Unread; 2]), "past the end");
        }
        // The text column: the plain forms read in place, all others left to the cell path.
        let mut codes = vec![RawStatus::Unread; n];
        assert!(batch.status_codes(0, 0, &mut codes));
        use RawStatus::*;
        let unread = [Unread; 8];
        let mut expected = vec![Zero, One, NotApplicable, NotApplicable, NotApplicable, Missing, Missing];
        expected.extend(unread);
        assert_eq!(codes, expected);
    }
}

#[cfg(test)]
mod csv_text_tests {
    use super::*;
    use proptest::prelude::*;

    /// Line counting as it was first written: split at every line end, each line checked alone.
    fn count_lines_reference(text: &[u8]) -> EncodingEvidence {
        let mut ev = EncodingEvidence::default();
        for line in text.split(|&b| b == b'\n' || b == b'\r') {
            if line.is_ascii() {
                continue;
            }
            match std::str::from_utf8(line) {
                Ok(_) => ev.utf8_lines += 1,
                Err(_) => ev.non_utf8_lines += 1,
            }
        }
        ev
    }

    /// A record's cells (None when empty) and whether it was flagged as bad text.
    type Row = (Vec<Option<String>>, bool);

    /// Reads `bytes` as a CSV file of `encoding`: the header and every record.
    fn read(bytes: &[u8], encoding: Encoding) -> (Vec<String>, Vec<Row>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, bytes).unwrap();
        let mut src = CsvSource::open(&path, encoding).unwrap();
        let mut rows = Vec::new();
        while let Some(b) = src.next_batch(&path, 3).unwrap() {
            rows.extend((0..b.len()).map(|r| row_of(&b, r)));
        }
        (src.header.clone(), rows)
    }

    /// Row `r` of a batch: its cells and whether it was flagged as bad text.
    fn row_of(b: &CsvBatch, r: usize) -> Row {
        let cells = (0..b.width)
            .map(|c| match b.cell(r, c) {
                Cell::Str(s) => Some(s.to_string()),
                _ => None,
            })
            .collect();
        (cells, b.bad_encoding(r))
    }

    /// Whole records read at once give the cells and bad-text flags reading field by field
    /// gives: short and long records, missing fields, quoted fields, and two fields valid as
    /// UTF-8 only together (a Thai letter cut between them) or not at all.
    #[test]
    fn utf8_records_read_whole_keep_every_field_and_flag() {
        let mut bytes = "a,b,c\nก,\"ข,ค\",1\n,,\nx\n1,2,3,4\n".as_bytes().to_vec();
        // "ก" is E0 B8 81: cut after its second byte, the record is valid UTF-8 as a whole.
        bytes.extend_from_slice(b"\xE0\xB8,\x81,z\n");
        bytes.extend_from_slice(b"ok,\xFF,z\n");
        bytes.extend_from_slice("ไทย,\"q\"\"q\",\n".as_bytes());
        let (header, rows) = read(&bytes, Encoding::Utf8);
        assert_eq!(header, ["a", "b", "c"]);
        let s = |v: &str| Some(v.to_string());
        let want: Vec<Row> = vec![
            (vec![s("ก"), s("ข,ค"), s("1")], false),
            (vec![None, None, None], false),
            (vec![s("x"), None, None], false),
            (vec![s("1"), s("2"), s("3")], false),
            (vec![s("\u{FFFD}"), s("\u{FFFD}"), s("z")], true),
            (vec![s("ok"), s("\u{FFFD}"), s("z")], true),
            (vec![s("ไทย"), s("q\"q"), None], false),
        ];
        assert_eq!(rows, want);
    }

    /// A CSV batch's statuses read in place agree with reading them cell by cell, in every
    /// window of rows and column: plain forms, other forms (left unread), short and long
    /// records, quoted cells, and a row with bad text (left unread whatever its cells hold).
    #[test]
    fn a_csv_file_estimates_its_rows_from_the_bytes_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let mut text = String::from("# notice\nid,name\n");
        for i in 0..10_000 {
            text.push_str(&format!("{},สมชาย{}\n", 1_000_000 + i, i % 10));
        }
        std::fs::write(&path, text).unwrap();
        let mut src = CsvSource::open(&path, Encoding::Utf8).unwrap();
        let mut batches = 0;
        while let Some(b) = src.next_batch(&path, 1000).unwrap() {
            batches += 1;
            match b.rows_in_file() {
                // Rows of even length: the records left, and an eighth more for longer ones.
                Some(n) => assert!((10_000..=11_300).contains(&n), "batch {batches}: {n}"),
                None => panic!("batch {batches}: no estimate before the end of the file"),
            }
        }
        assert_eq!(batches, 10);
    }

    #[test]
    fn csv_status_codes_agree_with_reading_cell_by_cell() {
        use crate::indicators::IndicatorStatus;
        use crate::ingest::{OneMeans, parse::status};
        let mut bytes = b"a,b,c\n0,1,na\nNA,,-\n\" 1\",2,\"0\"\n1\n0,1,0,1\n".to_vec();
        bytes.extend_from_slice(b"1,\xFF,0\n");
        bytes.extend_from_slice("ผ่าน,nA,1\n".as_bytes());
        let b = csv_batch_of(&bytes);
        let n = b.len();
        assert_eq!(n, 7);
        let mut read_in_place = 0;
        for col in 0..3 {
            for start in 0..n {
                let mut codes = vec![RawStatus::Unread; n - start];
                assert!(b.status_codes(col, start, &mut codes));
                for (k, code) in codes.iter().enumerate() {
                    let r = start + k;
                    if b.bad_encoding(r) {
                        assert_eq!(*code, RawStatus::Unread, "row {r} has bad text");
                    }
                    let expected = match code {
                        RawStatus::Unread => continue,
                        RawStatus::Zero => IndicatorStatus::Pass,
                        RawStatus::One => IndicatorStatus::Fail,
                        RawStatus::NotApplicable => IndicatorStatus::NotApplicable,
                        RawStatus::Missing => IndicatorStatus::Missing,
                    };
                    read_in_place += 1;
                    assert_eq!(status(b.cell(r, col), OneMeans::Fail), Ok(expected), "row {r}, column {col}");
                }
            }
            assert!(!b.status_codes(col, n - 1, &mut [RawStatus::Unread; 2]), "past the end");
        }
        assert!(!b.status_codes(3, 0, &mut [RawStatus::Unread; 1]), "no such column");
        // The plain forms of every column, as written.
        let mut codes = vec![RawStatus::Unread; n];
        use RawStatus::*;
        let want = [
            [Zero, NotApplicable, Unread, One, Zero, Unread, Unread],
            [One, Missing, Unread, Missing, One, Unread, NotApplicable],
            [NotApplicable, Unread, Zero, Missing, Zero, Unread, One],
        ];
        for (col, want) in want.iter().enumerate() {
            assert!(b.status_codes(col, 0, &mut codes));
            assert_eq!(&codes[..], want, "column {col}");
        }
        assert!(read_in_place > 30);
    }

    /// A CSV batch's rows read together (`status_rows`, `cells_rows`) are its columns read one by
    /// one, for every set of columns (repeated, out of order) and every range of rows, ragged
    /// rows and a row of bad text included; requests past the row's width or the batch's end
    /// are refused.
    #[test]
    fn csv_rows_read_together_are_its_columns_read_one_by_one() {
        let mut bytes = b"a,b,c,d\n0,1,na,x\nNA,,-,\n\" 1\",2,\"0\",y\n1\n0,1,0,1,9\n".to_vec();
        bytes.extend_from_slice(b"1,\xFF,0,z\n");
        bytes.extend_from_slice("ผ่าน,nA,1,ก\n".as_bytes());
        let b = csv_batch_of(&bytes);
        let n = b.len();
        assert_eq!(n, 7);
        assert!((0..n).any(|r| b.bad_encoding(r)));
        let sets: [&[usize]; 6] = [&[0], &[2, 0], &[0, 1, 2, 3], &[3, 3, 1], &[1, 0, 3, 2], &[2]];
        let (mut codes, mut one) = (Vec::new(), Vec::new());
        for cols in sets {
            for start in 0..=n {
                for end in start..=n {
                    assert!(b.status_rows(cols, start..end, &mut codes), "{cols:?} {start}..{end}");
                    assert_eq!(codes.len(), cols.len() * (end - start));
                    let mut cells = vec![Vec::new(); cols.len()];
                    assert!(b.cells_rows(cols, start..end, &mut cells));
                    for (j, &c) in cols.iter().enumerate() {
                        one.clear();
                        one.resize(end - start, RawStatus::Unread);
                        assert!(b.status_codes(c, start, &mut one));
                        let together: Vec<RawStatus> = codes.iter().skip(j).step_by(cols.len()).copied().collect();
                        assert_eq!(together, one, "statuses of column {c} in {cols:?}, rows {start}..{end}");
                        let mut by_column = Vec::new();
                        b.cells(c, start..end, &mut by_column);
                        assert_eq!(cells[j], by_column, "cells of column {c} in {cols:?}, rows {start}..{end}");
                    }
                }
            }
        }
        // The plain statuses of rows 1..3 of columns 2 and 0, row by row.
        assert!(b.status_rows(&[2, 0], 1..3, &mut codes));
        use RawStatus::*;
        assert_eq!(codes, [Unread, NotApplicable, Zero, Unread]);
        assert!(!b.status_rows(&[0, 4], 0..n, &mut codes), "no such column");
        assert!(!b.status_rows(&[0], 0..n + 1, &mut codes), "past the end");
        assert!(!b.status_rows(&[], 0..n, &mut codes), "no column");
        let mut two = vec![Vec::new(); 2];
        assert!(!b.cells_rows(&[0, 4], 0..n, &mut two), "no such column");
        assert!(!b.cells_rows(&[0, 1], 1..n + 1, &mut two), "past the end");
        assert!(!b.cells_rows(&[0], 0..n, &mut two), "a column for each list");
    }

    /// The records of a file (each with its line), its encoding and the evidence at the end.
    type Decided = (Vec<(Row, u64)>, Encoding, Option<EncodingEvidence>);

    /// Reads `path` with its encoding decided on its first `decide_on` bytes.
    fn read_deciding(path: &Path, decide_on: Option<u64>) -> Result<Decided> {
        let mut src = CsvSource::open_deciding(path, Encoding::Auto, decide_on)?;
        let mut rows = Vec::new();
        while let Some(b) = src.next_batch(path, 2)? {
            rows.extend((0..b.len()).map(|r| (row_of(&b, r), b.lines[r])));
        }
        Ok((rows, src.encoding, src.evidence))
    }

    /// The reference for the line tests: rows `r0`, `r1`, ... beginning at byte `starts` of
    /// `text`, each on the line a text editor shows (line ends before it, `\r\n` counted once).
    fn rows_on_editor_lines(text: &str, starts: &[usize]) -> Vec<(String, Option<u64>)> {
        let bytes = text.as_bytes();
        let ends_before = |at: usize| {
            (0..at).filter(|&k| bytes[k] == b'\r' || (bytes[k] == b'\n' && (k == 0 || bytes[k - 1] != b'\r'))).count()
        };
        starts.iter().enumerate().map(|(i, &at)| (format!("r{i}"), Some(1 + ends_before(at) as u64))).collect()
    }

    /// A record holding more line ends than are kept for counting: the lines after it are not
    /// known (none is guessed), and the rows are all read.
    #[test]
    fn lines_past_the_pending_limit_are_unknown_not_wrong() {
        let mut text = String::from("a,b\nr0,x\nr1,\"");
        text.push_str(&"\n".repeat(MAX_PENDING_LINE_ENDS + (1 << 16)));
        text.push_str("\"\nr2,y\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, &text).unwrap();
        let mut src = CsvSource::open(&path, Encoding::Utf8).unwrap();
        let b = src.next_batch(&path, 10).unwrap().unwrap();
        let got: Vec<(String, Option<u64>)> = (0..b.len()).map(|r| (b.cell(r, 0).to_text(), b.line(r))).collect();
        // r1 begins before the line ends that overflow: its line may still be known.
        assert_eq!(got[0], ("r0".to_string(), Some(2)));
        assert!(got[1] == ("r1".to_string(), Some(3)) || got[1] == ("r1".to_string(), None), "{got:?}");
        assert_eq!(got[2], ("r2".to_string(), None));
    }

    proptest! {
        /// A file's encoding decided on its start, its evidence counted while it is read: the
        /// same records, encoding and evidence as deciding on the whole file first, or (only
        /// when the start decides otherwise than the whole) an error at the end.
        #[test]
        fn deciding_on_the_start_reads_as_deciding_on_the_whole_or_fails(
            bom in any::<bool>(),
            preamble in any::<bool>(),
            lines in proptest::collection::vec(0u8..4, 0..12),
            cut in 0u64..400,
        ) {
            let mut bytes = Vec::new();
            if bom {
                bytes.extend_from_slice(b"\xEF\xBB\xBF");
            }
            if preamble {
                bytes.extend_from_slice("# ข้อมูล\r\n".as_bytes());
            }
            bytes.extend_from_slice(b"a,b\n");
            for kind in &lines {
                bytes.extend_from_slice(match kind {
                    0 => b"1,x\n".as_slice(),
                    1 => "2,ไทย\n".as_bytes(),
                    2 => b"3,\xE4\xB7\xC2\r\n",
                    _ => b"\"4\n,\xA1\",\"\xE0\xB8\"\n",
                });
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.csv");
            std::fs::write(&path, &bytes).unwrap();
            let whole = read_deciding(&path, None).unwrap();
            let start = EncodingEvidence::scan_prefix(&path, cut).unwrap().decide();
            match read_deciding(&path, Some(cut)) {
                Ok(streamed) => {
                    prop_assert_eq!(start, whole.1);
                    prop_assert_eq!(streamed, whole);
                }
                Err(e) => {
                    prop_assert_ne!(start, whole.1);
                    prop_assert!(e.to_string().contains("read again"), "{}", e);
                }
            }
        }

        /// Each record's line is the line its first byte is on, as a text editor counts lines
        /// (`\n`, `\r\n` or a lone `\r` ends one): whatever the line ends, blank lines, quoted
        /// fields holding line ends, a byte-order mark and a preamble, read in batches of three.
        #[test]
        fn each_record_is_on_the_line_its_first_byte_is_on(
            bom in any::<bool>(),
            preamble in any::<bool>(),
            records in proptest::collection::vec((0u8..4, 0usize..3, proptest::collection::vec(0usize..3, 0..3)), 0..40),
            last_ended in any::<bool>(),
        ) {
            const ENDS: [&str; 3] = ["\n", "\r\n", "\r"];
            let mut text = String::new();
            if bom {
                text.push('\u{feff}');
            }
            if preamble {
                text.push_str("# ข้อมูล\r\n# two\r");
            }
            text.push_str("a,b\n");
            let mut starts = Vec::new();
            for (i, (kind, end, blanks)) in records.iter().enumerate() {
                starts.push(text.len());
                text.push_str(&match kind {
                    0 => format!("r{i},x"),
                    1 => format!("r{i},\"two\nlines\""),
                    2 => format!("\"r{i}\",\"a\r\nb\rc\""),
                    _ => format!("r{i}"),
                });
                if i + 1 < records.len() || last_ended {
                    text.push_str(ENDS[*end]);
                    for &b in blanks {
                        text.push_str(ENDS[b]);
                    }
                }
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.csv");
            std::fs::write(&path, &text).unwrap();
            let mut src = CsvSource::open(&path, Encoding::Auto).unwrap();
            let mut got = Vec::new();
            while let Some(b) = src.next_batch(&path, 3).unwrap() {
                for r in 0..b.len() {
                    got.push((b.cell(r, 0).to_text(), b.line(r)));
                }
            }
            let want = rows_on_editor_lines(&text, &starts);
            prop_assert_eq!(got, want);
        }

        /// With a comment character, comment lines (quotes in them too) are skipped and
        /// counted: each record is still on the line its first byte is on.
        #[test]
        fn records_after_comment_lines_are_on_their_own_lines(
            first_comment in any::<bool>(),
            records in proptest::collection::vec((0u8..4, 0usize..2, proptest::collection::vec(0usize..4, 0..3)), 0..30),
        ) {
            // After a record: its end, then blank lines (\n, \r\n) or comment lines.
            let mut text = String::new();
            if first_comment {
                text.push_str("# a \"note\r\n");
            }
            let mut starts = Vec::new();
            for (i, (kind, end, after)) in records.iter().enumerate() {
                starts.push(text.len());
                text.push_str(&match kind {
                    0 => format!("r{i},x"),
                    1 => format!("r{i},\"two\n#lines\""),
                    // A quote inside an unquoted field is an ordinary byte: no quote opens.
                    2 => format!("r{i},12\"A"),
                    _ => format!("r{i}"),
                });
                text.push_str(["\n", "\r\n"][*end]);
                for &a in after {
                    text.push_str(["\n", "\r\n", "#\"odd quote\n", "# two\r\n"][a]);
                }
            }
            let input = Box::new(std::io::Cursor::new(text.clone().into_bytes()));
            let (mut reader, mut lines) =
                counting_reader(input, csv::ReaderBuilder::new().has_headers(false).flexible(true), Some(b'#'));
            let mut got = Vec::new();
            let mut rec = csv::ByteRecord::new();
            while reader.read_byte_record(&mut rec).unwrap() {
                got.push((String::from_utf8_lossy(&rec[0]).into_owned(), lines.of(&rec)));
            }
            let want = rows_on_editor_lines(&text, &starts);
            prop_assert_eq!(got, want);
        }

        /// Line counts by block agree with counting line by line, for any mix of ASCII, UTF-8
        /// Thai, TIS-620 bytes and line ends.
        #[test]
        fn line_counts_agree_with_line_by_line(parts in proptest::collection::vec(
            prop_oneof![
                Just(b"ab,1".to_vec()),
                Just("ไทย".as_bytes().to_vec()),
                Just(b"\xA1\xB5".to_vec()),
                Just(b"\n".to_vec()),
                Just(b"\r\n".to_vec()),
                Just(b"\r".to_vec()),
                Just(b"\xE0\xB8".to_vec()),
            ],
            0..40,
        )) {
            let text = parts.concat();
            let mut lines = LineEvidence::default();
            lines.feed(&text);
            prop_assert_eq!(lines.finish(), count_lines_reference(&text));
        }

        /// Fed in blocks cut anywhere (inside characters too), any bytes at all, the streamed
        /// counts agree with counting line by line over the whole text.
        #[test]
        fn streamed_line_counts_agree_with_line_by_line_for_any_cuts(
            parts in proptest::collection::vec(
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..6),
                    Just("ไทย ก".as_bytes().to_vec()),
                    Just("é€😀".as_bytes().to_vec()),
                    Just(b"\xA1\xB5".to_vec()),
                    Just(b"\n".to_vec()),
                    Just(b"\r".to_vec()),
                ],
                0..40,
            ),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            let text = parts.concat();
            let mut at: Vec<usize> = cuts.iter().map(|c| c % (text.len() + 1)).collect();
            at.push(0);
            at.push(text.len());
            at.sort_unstable();
            let mut lines = LineEvidence::default();
            for w in at.windows(2) {
                lines.feed(&text[w[0]..w[1]]);
            }
            prop_assert_eq!(lines.finish(), count_lines_reference(&text));
        }
    }
}

#[cfg(test)]
mod record_guard_tests {
    use super::*;
    use proptest::prelude::*;

    /// csv-core's reading automaton (`csv_core::Reader::transition_nfa`, csv-core 0.1, with the
    /// csv crate's defaults: quoting, `""` escapes, `\r`, `\n` and `\r\n` ending records),
    /// transcribed a byte at a time.
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Nfa {
        StartRecord,
        StartField,
        InField,
        InQuoted,
        AfterQuote,
        InComment,
        Crlf,
    }

    /// What the automaton made of `bytes`: its state after each byte, where comment lines begin,
    /// and the records it read (fields as bytes). A byte-order mark at the start is skipped.
    fn csv_core_reads(bytes: &[u8], delimiter: u8, comment: Option<u8>) -> (Vec<Nfa>, Vec<u64>, Vec<Vec<Vec<u8>>>) {
        use Nfa::*;
        let (mut states, mut comments, mut records) = (Vec::new(), Vec::new(), Vec::new());
        let (mut record, mut field): (Vec<Vec<u8>>, Vec<u8>) = (Vec::new(), Vec::new());
        let mut state = StartRecord;
        let skip = if bytes.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
        let term = |b: u8| b == b'\r' || b == b'\n';
        for (at, &b) in bytes.iter().enumerate() {
            if at < skip {
                states.push(state);
                continue;
            }
            // A record ends at its terminator; one more byte of a `\r\n` follows.
            let mut end_record = |record: &mut Vec<Vec<u8>>, field: &mut Vec<u8>| {
                record.push(std::mem::take(field));
                records.push(std::mem::take(record));
                if b == b'\r' { Crlf } else { StartRecord }
            };
            state = loop {
                match state {
                    StartRecord if term(b) => break StartRecord,
                    StartRecord if comment == Some(b) => {
                        comments.push(at as u64);
                        break InComment;
                    }
                    StartRecord => state = StartField,
                    StartField if b == b'"' => break InQuoted,
                    StartField | InField | AfterQuote if b == delimiter => {
                        record.push(std::mem::take(&mut field));
                        break StartField;
                    }
                    StartField | InField | AfterQuote if term(b) => break end_record(&mut record, &mut field),
                    AfterQuote if b == b'"' => {
                        field.push(b);
                        break InQuoted;
                    }
                    StartField | InField | AfterQuote => {
                        field.push(b);
                        break InField;
                    }
                    InQuoted if b == b'"' => break AfterQuote,
                    InQuoted => {
                        field.push(b);
                        break InQuoted;
                    }
                    InComment => break if b == b'\n' { StartRecord } else { InComment },
                    Crlf if b == b'\n' => break StartRecord,
                    Crlf => state = StartRecord,
                }
            };
            states.push(state);
        }
        if !matches!(state, StartRecord | InComment | Crlf) {
            record.push(field);
            records.push(record);
        }
        (states, comments, records)
    }

    /// A reader handing out `bytes` in pieces of the given sizes (then the rest at once).
    struct Pieces<'a> {
        bytes: &'a [u8],
        sizes: std::vec::IntoIter<usize>,
    }

    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.sizes.next().unwrap_or(usize::MAX).min(self.bytes.len()).min(buf.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    proptest! {
        /// Read in pieces cut anywhere, the guard is inside a quoted field or a comment line
        /// after each piece exactly when csv-core is, and sees the comment lines csv-core
        /// skips; the csv crate reading through the guard reads the transcription's records.
        #[test]
        fn quotes_as_csv_core_reads_them(
            parts in proptest::collection::vec(prop_oneof![
                Just(&b"a"[..]), Just(&b","[..]), Just(&b";"[..]), Just(&b"\""[..]),
                Just(&b"\n"[..]), Just(&b"\r"[..]), Just(&b"#"[..]), Just(&b"\xEF\xBB\xBF"[..]),
            ], 0..60),
            bom in any::<bool>(),
            first in 4usize..9,
            sizes in proptest::collection::vec(1usize..5, 0..60),
            semicolons in any::<bool>(),
            comment in proptest::option::of(Just(b'#')),
        ) {
            let mut bytes = if bom { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
            bytes.extend(parts.concat());
            let delimiter = if semicolons { b';' } else { b',' };
            // The first piece holds a byte-order mark whole: csv-core takes a first input of
            // the mark alone for the end of the file (the readers tpmap builds read 8 KiB on).
            let sizes: Vec<usize> = std::iter::once(first).chain(sizes).collect();
            let (states, comments, records) = csv_core_reads(&bytes, delimiter, comment);

            // The csv crate reading through the guard, as tpmap's readers do.
            let mut csv_records = Vec::new();
            let guarded = RecordGuard::new(Pieces { bytes: &bytes, sizes: sizes.clone().into_iter() }, &Lines::default(), comment, delimiter);
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .delimiter(delimiter)
                .comment(comment)
                .from_reader(guarded);
            let mut rec = csv::ByteRecord::new();
            while reader.read_byte_record(&mut rec).unwrap() {
                csv_records.push(rec.iter().map(<[u8]>::to_vec).collect::<Vec<_>>());
            }
            prop_assert_eq!(&records, &csv_records);

            let lines = Lines::default();
            let mut guard = RecordGuard::new(Pieces { bytes: &bytes, sizes: sizes.into_iter() }, &lines, comment, delimiter);
            let mut buf = [0u8; 64];
            let mut read = 0;
            let mut seen_comments = Vec::new();
            loop {
                let n = guard.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                read += n;
                if read > bytes.len() {
                    break;
                }
                let state = states[read - 1];
                prop_assert_eq!(guard.in_quotes, state == Nfa::InQuoted, "after {} bytes", read);
                prop_assert_eq!(guard.in_comment, state == Nfa::InComment, "after {} bytes", read);
                let pending = std::mem::take(&mut guard.ends.0.lock().unwrap().ends);
                seen_comments.extend(pending.iter().filter(|&&e| e & 3 == LineEnds::COMMENT).map(|&e| e >> 2));
            }
            // One line end more when the file ends inside a comment line.
            prop_assert_eq!(read, bytes.len() + usize::from(states.last() == Some(&Nfa::InComment)));
            prop_assert_eq!(seen_comments, comments);
        }
    }

    /// A quote inside an unquoted field (a house number `12"A`) opens nothing: the rows after
    /// it are records of their own, not one record past the limit.
    #[test]
    fn a_quote_inside_a_field_opens_nothing() {
        let read_all = |data: &[u8]| {
            let mut g = RecordGuard { max: 32, ..RecordGuard::new(data, &Lines::default(), None, b',') };
            let mut out = Vec::new();
            g.read_to_end(&mut out).map(|_| out.len())
        };
        let rows = "h,12\"A,3\n".to_string() + &"1,row of the file,2\n".repeat(20);
        assert_eq!(read_all(rows.as_bytes()).unwrap(), rows.len());
        // At a field's start, it opens a quoted field, which here never closes.
        let rows = "h,\"12A,3\n".to_string() + &"1,row of the file,2\n".repeat(20);
        assert!(read_all(rows.as_bytes()).is_err());
        // `""` inside a quoted field is a quote; after the field closes, a quote is a byte.
        let rows = "h,\"1\"\"2\"x\"y,3\n".to_string() + &"1,row of the file,2\n".repeat(20);
        assert_eq!(read_all(rows.as_bytes()).unwrap(), rows.len());
    }
}
