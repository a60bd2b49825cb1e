//! Columns written to an anonymous temporary file and read back, part after part: what a
//! partitioned run keeps on disk instead of in memory between its waves — each wave's link
//! records ([`crate::link::records::RecordSpill`]) and each wave's poor households
//! ([`crate::extract::ExtractSpill`]).
//!
//! Written by hand: the columns are this crate's own (interned codes beside their distinct
//! values, text columns as offsets into one string, packed statuses), and what is wanted is
//! their values as they are, column by column in little-endian order, read back with one
//! `read_exact` a column. A general format would convert every column twice (Arrow IPC: into
//! arrays and back) or need serde for types that keep hash tables.
//!
//! The file is this process's own (gone when dropped), but what is read back is checked all
//! the same: every length against what the part holds before anything is allocated for it,
//! every text as UTF-8; each spill checks its own values (codes, IDs, enums).

use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use crate::extract::StrColumn;
use crate::{Error, Result};

/// An I/O error on a spill: names its folder, never data.
pub(crate) fn io(e: std::io::Error) -> Error {
    Error::io(std::env::temp_dir(), e)
}

/// Parts written one after another to an anonymous temporary file (in `TMPDIR`), each read
/// back whole.
#[derive(Debug)]
pub(crate) struct SpillFile {
    file: std::fs::File,
    /// Where each part begins in the file, and the end.
    starts: Vec<u64>,
    /// What the file holds, for errors ("the link records' temporary file").
    name: &'static str,
}

impl SpillFile {
    /// An empty spill: a new anonymous temporary file.
    pub(crate) fn new(name: &'static str) -> Result<SpillFile> {
        Ok(SpillFile { file: tempfile::tempfile().map_err(io)?, starts: vec![0], name })
    }

    /// Number of parts written.
    pub(crate) fn parts(&self) -> usize {
        self.starts.len() - 1
    }

    /// Bytes written.
    pub(crate) fn bytes(&self) -> u64 {
        self.starts.last().copied().unwrap_or(0)
    }

    /// Forgets every part (the file is emptied).
    pub(crate) fn clear(&mut self) -> Result<()> {
        self.file.set_len(0).map_err(io)?;
        self.starts = vec![0];
        Ok(())
    }

    /// Writes the next part with `write`.
    pub(crate) fn push_with(
        &mut self,
        write: impl FnOnce(&mut Writer<BufWriter<&mut std::fs::File>>) -> std::io::Result<()>,
    ) -> Result<()> {
        let end = self.bytes();
        self.file.seek(SeekFrom::Start(end)).map_err(io)?;
        let mut w = Writer::at(BufWriter::with_capacity(1 << 20, &mut self.file), end);
        write(&mut w).map_err(io)?;
        w.flush_buf().map_err(io)?;
        let at = w.at;
        w.w.flush().map_err(io)?;
        drop(w);
        self.starts.push(at);
        Ok(())
    }

    /// Part `i`, read back with `read`, which must read all of it.
    pub(crate) fn read_with<T>(
        &mut self,
        i: usize,
        read: impl FnOnce(&mut Reader<BufReader<std::io::Take<&mut std::fs::File>>>) -> Result<T>,
    ) -> Result<T> {
        let name = self.name;
        let (Some(&start), Some(&end)) = (self.starts.get(i), self.starts.get(i + 1)) else {
            return Err(corrupt(name, "has no such part"));
        };
        self.file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut r =
            Reader::new(BufReader::with_capacity(1 << 20, (&mut self.file).take(end - start)), end - start, name);
        let got = read(&mut r)?;
        if r.left != 0 {
            return Err(r.corrupt("holds more than a part"));
        }
        Ok(got)
    }
}

/// A sex as one byte on a spill ([`sex_of_byte`] reads it back).
pub(crate) fn sex_byte(s: &crate::extract::Sex) -> [u8; 1] {
    [*s as u8]
}

/// The sex [`sex_byte`] wrote, `None` for a byte no sex has.
pub(crate) fn sex_of_byte([b]: [u8; 1]) -> Option<crate::extract::Sex> {
    use crate::extract::Sex;
    [Sex::Unknown, Sex::Male, Sex::Female].get(usize::from(b)).copied()
}

/// A birth date, known or not, as five bytes on a spill: known, year (little-endian), month,
/// day ([`birth_of_bytes`] reads it back).
pub(crate) fn birth_bytes(d: &Option<crate::thai::PartialDate>) -> [u8; 5] {
    let (known, d) = d.map_or((0, crate::thai::PartialDate { year: 0, month: 0, day: 0 }), |d| (1, d));
    let y = d.year.to_le_bytes();
    [known, y[0], y[1], d.month, d.day]
}

/// The birth date [`birth_bytes`] wrote; the outer `None` for a first byte it never writes.
pub(crate) fn birth_of_bytes(b: [u8; 5]) -> Option<Option<crate::thai::PartialDate>> {
    match b[0] {
        0 => Some(None),
        1 => Some(Some(crate::thai::PartialDate { year: u16::from_le_bytes([b[1], b[2]]), month: b[3], day: b[4] })),
        _ => None,
    }
}

/// A spill that does not hold what was written (never expected: the file is this process's).
fn corrupt(name: &str, what: &str) -> Error {
    Error::Config(format!("internal: {name} {what}"))
}

/// Writes columns, each gathered in a buffer first.
pub(crate) struct Writer<W: Write> {
    pub(crate) w: W,
    /// A column's bytes before they are written.
    pub(crate) buf: Vec<u8>,
    /// Bytes written so far (the file's offset).
    pub(crate) at: u64,
}

impl<W: Write> Writer<W> {
    /// A writer whose first byte is at offset `at`.
    pub(crate) fn at(w: W, at: u64) -> Writer<W> {
        Writer { w, buf: Vec::new(), at }
    }

    /// Writes what is buffered.
    pub(crate) fn flush_buf(&mut self) -> std::io::Result<()> {
        self.w.write_all(&self.buf)?;
        self.at += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Writes what is buffered once it holds a mebibyte.
    pub(crate) fn flush_some(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= 1 << 20 { self.flush_buf() } else { Ok(()) }
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Bytes as they are (their count first), written at once ([`Reader::bytes_of`] reads them).
    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.u64(bytes.len() as u64);
        self.flush_buf()?;
        self.w.write_all(bytes)?;
        self.at += bytes.len() as u64;
        Ok(())
    }

    /// A column of fixed-width values, `bytes` of each (a length first), written in pieces.
    pub(crate) fn column<T, const N: usize>(
        &mut self,
        values: &[T],
        bytes: impl Fn(&T) -> [u8; N],
    ) -> std::io::Result<()> {
        self.column_of(values.iter(), bytes)
    }

    /// [`Writer::column`] of the values an iterator gives.
    pub(crate) fn column_of<T, const N: usize>(
        &mut self,
        values: impl ExactSizeIterator<Item = T>,
        bytes: impl Fn(T) -> [u8; N],
    ) -> std::io::Result<()> {
        self.u64(values.len() as u64);
        for v in values {
            self.buf.extend_from_slice(&bytes(v));
            self.flush_some()?;
        }
        self.flush_buf()
    }

    /// Texts: their count, each one's byte length (u32), then their bytes.
    pub(crate) fn texts(&mut self, texts: &StrColumn) -> std::io::Result<()> {
        self.text_values(texts.len(), || texts.iter())
    }

    /// [`Writer::texts`] of `n` values that `values()` gives (each time it is called, the same).
    pub(crate) fn text_values<S: AsRef<str>, I: Iterator<Item = S>>(
        &mut self,
        n: usize,
        values: impl Fn() -> I,
    ) -> std::io::Result<()> {
        self.u64(n as u64);
        let mut total = 0u64;
        for s in values() {
            let s = s.as_ref();
            // A row's text is far below 4 GiB (a line of a file); saturated if not, and refused
            // when read back.
            self.buf.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
            total += s.len() as u64;
            self.flush_some()?;
        }
        self.u64(total);
        self.flush_buf()?;
        for s in values() {
            self.buf.extend_from_slice(s.as_ref().as_bytes());
            self.flush_some()?;
        }
        self.flush_buf()
    }
}

/// Reads columns back, never allocating beyond what the part holds.
pub(crate) struct Reader<R: Read> {
    r: R,
    /// Bytes of the part not read yet.
    pub(crate) left: u64,
    name: &'static str,
}

impl<R: Read> Reader<R> {
    /// A reader of a part of `left` bytes from the spill `name`.
    pub(crate) fn new(r: R, left: u64, name: &'static str) -> Reader<R> {
        Reader { r, left, name }
    }

    /// The error for a part that does not hold what was written.
    pub(crate) fn corrupt(&self, what: &str) -> Error {
        corrupt(self.name, what)
    }

    /// `len` bytes, refused beyond what the part holds (no allocation from a length alone).
    pub(crate) fn bytes(&mut self, len: u64) -> Result<Vec<u8>> {
        if len > self.left {
            return Err(self.corrupt("is shorter than its lengths"));
        }
        let mut v = vec![0u8; usize::try_from(len).map_err(|_| self.corrupt("has a length beyond memory"))?];
        self.r.read_exact(&mut v).map_err(io)?;
        self.left -= len;
        Ok(v)
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        let b = self.bytes(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| self.corrupt("is short"))?))
    }

    /// A count of rows, at most `max`.
    pub(crate) fn count(&mut self, max: usize) -> Result<usize> {
        let n = self.u64()?;
        usize::try_from(n).ok().filter(|&n| n <= max).ok_or_else(|| self.corrupt("has too many rows"))
    }

    /// The `n` bytes [`Writer::bytes`] wrote (its count checked first).
    pub(crate) fn bytes_of(&mut self, n: usize) -> Result<Vec<u8>> {
        if self.count(n)? != n {
            return Err(self.corrupt("holds other counts"));
        }
        self.rows(n, 1)
    }

    /// `n` rows of `width` bytes each.
    pub(crate) fn rows(&mut self, n: usize, width: usize) -> Result<Vec<u8>> {
        self.bytes((n as u64).saturating_mul(width as u64))
    }

    /// A column that [`Writer::column`] wrote, of `n` rows, each decoded from its `N` bytes
    /// (`None`: not a value the column holds, `what`).
    pub(crate) fn column<T, const N: usize>(
        &mut self,
        n: usize,
        what: &str,
        decode: impl Fn([u8; N]) -> Option<T>,
    ) -> Result<Vec<T>> {
        if self.count(n)? != n {
            return Err(self.corrupt("holds columns of other lengths"));
        }
        let b = self.rows(n, N)?;
        // Made to its length (collecting `Result`s would grow it by doubling).
        let mut out = Vec::with_capacity(n);
        for c in b.chunks_exact(N) {
            match c.try_into().ok().and_then(&decode) {
                Some(v) => out.push(v),
                None => return Err(self.corrupt(&format!("holds an unknown {what}"))),
            }
        }
        Ok(out)
    }

    /// Texts that [`Writer::texts`] wrote, at most `max`.
    pub(crate) fn texts(&mut self, max: usize) -> Result<StrColumn> {
        let n = self.count(max)?;
        let lengths = self.rows(n, 4)?;
        let total = self.u64()?;
        let text = String::from_utf8(self.bytes(total)?).map_err(|_| self.corrupt("holds text that is not UTF-8"))?;
        let lengths = lengths.chunks_exact(4).map(|l| u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize);
        StrColumn::from_lengths(text, lengths).ok_or_else(|| self.corrupt("holds texts other than its bytes"))
    }

    /// `n` one-byte values, each decoded (`None`: not a value `what` has).
    pub(crate) fn small<T>(&mut self, n: usize, what: &str, decode: impl Fn(u8) -> Option<T>) -> Result<Vec<T>> {
        let b = self.rows(n, 1)?;
        let mut out = Vec::with_capacity(n);
        for &b in &b {
            out.push(decode(b).ok_or_else(|| self.corrupt(&format!("holds an unknown {what}")))?);
        }
        Ok(out)
    }
}
