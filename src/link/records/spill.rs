//! Link records written to a temporary file and read back, part after part: the bounded
//! linkage ([`crate::link::parts`]) keeps each wave's persons' records from the first reading of
//! a partitioned run instead of reading and normalising the wave again on the second (about
//! 2.7 µs a person: 100 s for the national set's 36.6 M persons, reading aside).
//!
//! Written by hand on `crate::spill`'s columns (see there why): interned codes beside their
//! distinct values, whose hash tables are rebuilt from the values. What is read back is checked
//! all the same: every length against the records' limits and what the file holds, every code
//! against its values, every text as UTF-8, every ID's check digit.

use std::hash::BuildHasher;
use std::io::{Read, Write};

use super::{Codes, InternedColumn, InternedValues, KeyColumn, MAX_RECORDS, Records};
use crate::areas::AreaCode;
use crate::extract::{Sex, StrColumn};
use crate::ids::CitizenId;
use crate::link::normalize::HouseNumber;
use crate::spill::{Reader, SpillFile, Writer};
use crate::thai::PartialDate;
use crate::{Error, Result};

/// What the spill's errors call it.
const NAME: &str = "the link records' temporary file";

/// Parts of link records in an anonymous temporary file (in `TMPDIR`), each read back as it was
/// written: the same values, the same interned codes.
///
/// ```
/// use tpmap::link::records::{RawRecord, RecordSpill, Records};
/// let mut r = Records::default();
/// r.push_source("survey", &[RawRecord { key: "h1:0".into(), first: "สมชาย", last: "ใจดี", ..Default::default() }]);
/// let mut spill = RecordSpill::new()?;
/// spill.push(&r)?;
/// let back = spill.read(0)?;
/// assert_eq!((back.len(), back.first.get(0), &*back.key.get(0)), (1, "สมชาย", "h1:0"));
/// # Ok::<(), tpmap::Error>(())
/// ```
#[derive(Debug)]
pub struct RecordSpill(SpillFile);

impl RecordSpill {
    /// An empty spill: a new anonymous temporary file.
    pub fn new() -> Result<RecordSpill> {
        Ok(RecordSpill(SpillFile::new(NAME)?))
    }

    /// Number of parts written.
    pub fn parts(&self) -> usize {
        self.0.parts()
    }

    /// Bytes written.
    pub fn bytes(&self) -> u64 {
        self.0.bytes()
    }

    /// Forgets every part (the file is emptied).
    pub fn clear(&mut self) -> Result<()> {
        self.0.clear()
    }

    /// Writes `r` as the next part. Records with unreadable registry records are refused (a
    /// part of persons has none).
    pub fn push(&mut self, r: &Records) -> Result<()> {
        if !r.unreadable.is_empty() {
            return Err(Error::Config("internal: records with unreadable ones are not spilled".into()));
        }
        self.0.push_with(|w| w.records(r))
    }

    /// Part `i`, as it was written.
    pub fn read(&mut self, i: usize) -> Result<Records> {
        self.0.read_with(i, |r| r.records())
    }
}

/// Link records' columns on a spill's [`Writer`].
trait WriteRecords {
    fn codes(&mut self, codes: impl ExactSizeIterator<Item = u32>) -> std::io::Result<()>;
    fn interned(&mut self, c: &InternedColumn) -> std::io::Result<()>;
    fn records(&mut self, r: &Records) -> std::io::Result<()>;
}

impl<W: Write> WriteRecords for Writer<W> {
    fn codes(&mut self, codes: impl ExactSizeIterator<Item = u32>) -> std::io::Result<()> {
        self.u64(codes.len() as u64);
        for c in codes {
            self.buf.extend_from_slice(&c.to_le_bytes());
            self.flush_some()?;
        }
        self.flush_buf()
    }

    fn interned(&mut self, c: &InternedColumn) -> std::io::Result<()> {
        self.texts(&c.values)?;
        self.codes(c.codes())
    }

    fn records(&mut self, r: &Records) -> std::io::Result<()> {
        let n = r.len();
        self.u64(n as u64);
        let mut sources = StrColumn::default();
        r.sources.iter().for_each(|s| sources.push(s));
        self.texts(&sources)?;
        self.buf.extend(r.source.iter().flat_map(|s| s.to_le_bytes()));
        self.flush_buf()?;
        self.text_values(r.key.len(), || r.key.iter())?;
        self.buf.extend(r.citizen_id.iter().flat_map(|c| c.map_or(0, |c| c.as_u64()).to_le_bytes()));
        self.flush_buf()?;
        self.u64(r.raw_id.rows.len() as u64);
        for &(i, d) in &r.raw_id.rows {
            self.u64(i as u64);
            self.u64(d);
        }
        self.flush_buf()?;
        for c in [&r.title, &r.first, &r.last, &r.first_lk, &r.last_lk, &r.tag] {
            self.interned(c)?;
        }
        for b in &r.birth {
            let (known, d) = b.map_or((0, PartialDate { year: 0, month: 0, day: 0 }), |d| (1, d));
            self.buf.push(known);
            self.buf.extend_from_slice(&d.year.to_le_bytes());
            self.buf.extend_from_slice(&[d.month, d.day]);
        }
        self.buf.extend(r.sex.iter().map(|s| match s {
            Sex::Unknown => 0u8,
            Sex::Male => 1,
            Sex::Female => 2,
        }));
        self.buf.extend(r.flag.iter().map(|f| f.map_or(0, |f| 1 + u8::from(f))));
        self.flush_buf()?;
        self.u64(r.area.values.len() as u64);
        for a in &r.area.values {
            // An area code has at most 10 characters (`AreaCode`): its length fits a byte.
            let text = a.as_ref().map_or("", |a| a.as_str());
            let len = u8::try_from(text.len()).map_err(|_| std::io::Error::other("an area code beyond 255 bytes"))?;
            self.buf.push(len);
            self.buf.extend_from_slice(text.as_bytes());
        }
        self.codes(r.area.codes.rows.iter())?;
        self.u64(r.house.values.len() as u64);
        for h in &r.house.values {
            let (tag, main, sub) = match h {
                None => (0u8, 0, 0),
                Some(HouseNumber { main, sub: None }) => (1, *main, 0),
                Some(HouseNumber { main, sub: Some(s) }) => (2, *main, *s),
            };
            self.buf.push(tag);
            self.buf.extend_from_slice(&main.to_le_bytes());
            self.buf.extend_from_slice(&sub.to_le_bytes());
        }
        self.codes(r.house.codes.rows.iter())
    }
}

/// Link records' columns on a spill's [`Reader`].
trait ReadRecords {
    fn codes(&mut self, n: usize, distinct: usize) -> Result<Vec<u32>>;
    fn interned(&mut self, n: usize) -> Result<InternedColumn>;
    fn values<T: Copy + Eq + std::hash::Hash>(&mut self, n: usize, values: Vec<T>) -> Result<InternedValues<T>>;
    fn records(&mut self) -> Result<Records>;
}

impl<R: Read> ReadRecords for Reader<R> {
    /// Codes of `n` rows, each below `distinct`.
    fn codes(&mut self, n: usize, distinct: usize) -> Result<Vec<u32>> {
        if self.count(MAX_RECORDS)? != n {
            return Err(self.corrupt("holds columns of other lengths"));
        }
        let b = self.rows(n, 4)?;
        let codes: Vec<u32> = b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if codes.iter().any(|&c| c as usize >= distinct) {
            return Err(self.corrupt("holds a code beyond its values"));
        }
        Ok(codes)
    }

    fn interned(&mut self, n: usize) -> Result<InternedColumn> {
        let values = self.texts(MAX_RECORDS)?;
        let rows = self.codes(n, values.len())?;
        let at = |c: u32| values.get(c as usize);
        let codes = Codes::of_values(rows, values.len(), |h, c| h.hash_one(at(c)), |a, b| at(a) == at(b))
            .ok_or_else(|| self.corrupt("holds a value twice"))?;
        Ok(InternedColumn { codes, values })
    }

    fn values<T: Copy + Eq + std::hash::Hash>(&mut self, n: usize, values: Vec<T>) -> Result<InternedValues<T>> {
        let rows = self.codes(n, values.len())?;
        let at = |c: u32| values[c as usize];
        let codes = Codes::of_values(rows, values.len(), |h, c| h.hash_one(at(c)), |a, b| at(a) == at(b))
            .ok_or_else(|| self.corrupt("holds a value twice"))?;
        Ok(InternedValues { codes, values })
    }

    fn records(&mut self) -> Result<Records> {
        let n = self.count(MAX_RECORDS)?;
        let sources: Vec<String> = self.texts(MAX_RECORDS)?.iter().map(String::from).collect();
        let source: Vec<u16> = self.rows(n, 2)?.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
        if source.iter().any(|&s| usize::from(s) >= sources.len()) {
            return Err(self.corrupt("holds a record of no source"));
        }
        let key: KeyColumn = self.texts(MAX_RECORDS)?.iter().collect();
        if key.len() != n {
            return Err(self.corrupt("holds columns of other lengths"));
        }
        let citizen_id = self
            .rows(n, 8)?
            .chunks_exact(8)
            .map(|b| match u64::from_le_bytes(b.try_into().unwrap_or_default()) {
                0 => Ok(None),
                v => CitizenId::from_u64(v).map(Some).map_err(|_| self.corrupt("holds an invalid ID")),
            })
            .collect::<Result<Vec<_>>>()?;
        let raw = self.count(MAX_RECORDS)?;
        let raw_rows = self.rows(raw, 16)?;
        let mut raw_id = super::RawIds::default();
        for e in raw_rows.chunks_exact(16) {
            let i = u64::from_le_bytes(e[..8].try_into().unwrap_or_default());
            let d = u64::from_le_bytes(e[8..].try_into().unwrap_or_default());
            match usize::try_from(i) {
                Ok(i) if i < n && raw_id.rows.last().is_none_or(|l| l.0 < i) => raw_id.rows.push((i, d)),
                _ => return Err(self.corrupt("holds raw IDs out of order")),
            }
        }
        // In the order written.
        let title = self.interned(n)?;
        let first = self.interned(n)?;
        let last = self.interned(n)?;
        let first_lk = self.interned(n)?;
        let last_lk = self.interned(n)?;
        let tag = self.interned(n)?;
        let birth = self
            .rows(n, 5)?
            .chunks_exact(5)
            .map(|b| match b[0] {
                0 => Ok(None),
                1 => Ok(Some(PartialDate { year: u16::from_le_bytes([b[1], b[2]]), month: b[3], day: b[4] })),
                _ => Err(self.corrupt("holds an unknown birth date")),
            })
            .collect::<Result<Vec<_>>>()?;
        let sex = self.small(n, "sex", |s| match s {
            0 => Some(Sex::Unknown),
            1 => Some(Sex::Male),
            2 => Some(Sex::Female),
            _ => None,
        })?;
        let flag = self.small(n, "flag", |f| match f {
            0 => Some(None),
            1 => Some(Some(false)),
            2 => Some(Some(true)),
            _ => None,
        })?;
        let areas = self.count(MAX_RECORDS)?;
        let mut area_values = Vec::with_capacity(areas.min(1 << 20));
        for _ in 0..areas {
            let len = self.bytes(1)?[0];
            let text = self.bytes(u64::from(len))?;
            area_values.push(match len {
                0 => None,
                _ => Some(
                    std::str::from_utf8(&text)
                        .ok()
                        .and_then(|t| AreaCode::parse(t).ok())
                        .ok_or_else(|| self.corrupt("holds an invalid area"))?,
                ),
            });
        }
        let area = self.values(n, area_values)?;
        let houses = self.count(MAX_RECORDS)?;
        let house_values = self
            .rows(houses, 9)?
            .chunks_exact(9)
            .map(|b| {
                let main = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
                let sub = u32::from_le_bytes([b[5], b[6], b[7], b[8]]);
                match b[0] {
                    0 => Ok(None),
                    1 => Ok(Some(HouseNumber { main, sub: None })),
                    2 => Ok(Some(HouseNumber { main, sub: Some(sub) })),
                    _ => Err(self.corrupt("holds an unknown house number")),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let house = self.values(n, house_values)?;
        Ok(Records {
            sources,
            source,
            key,
            citizen_id,
            raw_id,
            title,
            first,
            last,
            first_lk,
            last_lk,
            birth,
            sex,
            area,
            house,
            flag,
            tag,
            unreadable: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(r: &Records) -> Vec<u8> {
        let mut w = Writer::at(Vec::new(), 0);
        w.records(r).unwrap();
        w.flush_buf().unwrap();
        assert_eq!(w.at, w.w.len() as u64);
        w.w
    }

    fn read(b: &[u8]) -> Result<Records> {
        let mut r = Reader::new(b, b.len() as u64, NAME);
        let got = r.records()?;
        if r.left != 0 {
            return Err(r.corrupt("holds more"));
        }
        Ok(got)
    }

    /// Every part back as written (the records' own test helpers compare every column and the
    /// interned codes), records pushed after it interned alike, and the file emptied by `clear`.
    #[test]
    fn parts_come_back_as_written() {
        let t = super::super::tests::texts(2000);
        let all: Vec<_> = t.iter().collect();
        let (a, b) = all.split_at(1300);
        let parts = [super::super::tests::pushed(a), super::super::tests::pushed(b), Records::default()];
        let mut spill = RecordSpill::new().unwrap();
        for p in &parts {
            spill.push(p).unwrap();
        }
        assert_eq!(spill.parts(), 3);
        // Out of order, and twice.
        for i in [1, 0, 2, 1] {
            let mut back = spill.read(i).unwrap();
            let mut want = parts[i].clone();
            assert_eq!(super::super::tests::columns(&back), super::super::tests::columns(&want));
            for r in [&mut back, &mut want] {
                r.push_source(
                    "registry",
                    &[super::super::RawRecord {
                        key: "x".into(), first: "ปิติ", last: "ใหม่", ..Default::default()
                    }],
                );
            }
            assert_eq!(super::super::tests::columns(&back), super::super::tests::columns(&want));
        }
        assert!(spill.read(3).is_err());
        spill.clear().unwrap();
        assert_eq!((spill.parts(), spill.bytes()), (0, 0));
        spill.push(&parts[1]).unwrap();
        assert_eq!(super::super::tests::columns(&spill.read(0).unwrap()), super::super::tests::columns(&parts[1]));
    }

    /// A spill cut short or with a byte changed anywhere is an error or other records, never a
    /// panic; a length is never allocated beyond what the part holds.
    #[test]
    fn damaged_spills_are_errors() {
        let t = super::super::tests::texts(60);
        let r = super::super::tests::pushed(&t.iter().collect::<Vec<_>>());
        let b = written(&r);
        assert_eq!(super::super::tests::columns(&read(&b).unwrap()), super::super::tests::columns(&r));
        for cut in 0..b.len() {
            assert!(read(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut errors = 0;
        for at in 0..b.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut d = b.clone();
                d[at] ^= x;
                errors += usize::from(read(&d).is_err());
            }
        }
        assert!(errors > b.len(), "most changes are caught ({errors} of {})", 3 * b.len());
        let mut huge = b.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(read(&huge).is_err());
    }
}
