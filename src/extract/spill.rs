//! Extracts written to a temporary file and read back, part after part: a partitioned run that
//! makes a plan keeps each wave's poor households there ([`crate::pipeline::run_partitioned`])
//! instead of in memory across the waves, and reads them back after the last wave, when the
//! waves' memory is free (on the SYNTHETIC national set, 4.4 M persons in poor households).
//!
//! Written by hand on `crate::spill`'s columns (see there why). What is read back is checked
//! all the same: every length against what the part holds, every text as UTF-8, every citizen
//! ID's check digit, every area code, enum and household index; the edition is the caller's.

use std::io::{Read, Write};
use std::sync::Arc;

use super::{DictColumn, Extract, Households, Persons, Relation, StatusMatrix, StrColumn};
use crate::Result;
use crate::areas::AreaCode;
use crate::ids::{CitizenId, HouseId, HouseholdId};
use crate::indicators::Edition;
use crate::spill::{Reader, SpillFile, Writer};

/// What the spill's errors call it.
const NAME: &str = "the poor households' temporary file";

/// Most households or persons in a part (an extract numbers them with 32 bits).
const MAX_ROWS: usize = u32::MAX as usize;

/// Parts of extracts in an anonymous temporary file (in `TMPDIR`), each read back as it was
/// written (its edition given back by the caller).
#[derive(Debug)]
pub(crate) struct ExtractSpill {
    file: SpillFile,
    /// Households and persons written.
    rows: (u64, u64),
}

impl ExtractSpill {
    /// An empty spill: a new anonymous temporary file.
    pub(crate) fn new() -> Result<ExtractSpill> {
        Ok(ExtractSpill { file: SpillFile::new(NAME)?, rows: (0, 0) })
    }

    /// Number of parts written.
    pub(crate) fn parts(&self) -> usize {
        self.file.parts()
    }

    /// Bytes written.
    pub(crate) fn bytes(&self) -> u64 {
        self.file.bytes()
    }

    /// Households and persons written.
    pub(crate) fn rows(&self) -> (u64, u64) {
        self.rows
    }

    /// Forgets every part (the file is emptied).
    pub(crate) fn clear(&mut self) -> Result<()> {
        self.rows = (0, 0);
        self.file.clear()
    }

    /// Writes `x` as the next part.
    pub(crate) fn push(&mut self, x: &Extract) -> Result<()> {
        self.file.push_with(|w| {
            w.households(&x.households)?;
            w.persons(&x.persons)
        })?;
        self.rows.0 += x.households.len() as u64;
        self.rows.1 += x.persons.len() as u64;
        Ok(())
    }

    /// Part `i`, as it was written, its statuses those of `edition`.
    pub(crate) fn read(&mut self, i: usize, edition: &Arc<Edition>) -> Result<Extract> {
        self.file.read_with(i, |r| {
            let households = r.households()?;
            let persons = r.persons(households.len())?;
            Ok(Extract::new(edition.clone(), households, persons))
        })
    }

    /// Every part, in order, as one extract (each column reserved for every part's rows once the
    /// first is read: appending does not double them).
    pub(crate) fn read_all(&mut self, edition: &Arc<Edition>) -> Result<Extract> {
        let mut all = Extract::new(edition.clone(), Households::default(), Persons::default());
        for i in 0..self.parts() {
            let x = self.read(i, edition)?;
            if i == 0 {
                all = x;
                let (h, p) = self.rows;
                let more = |n: u64, had: usize| usize::try_from(n).unwrap_or(usize::MAX).saturating_sub(had);
                all.households.reserve(more(h, all.households.len()));
                all.persons.reserve(more(p, all.persons.len()));
                all.member_offsets.reserve(more(h, all.households.len()));
            } else {
                all.append(x)?;
            }
        }
        Ok(all)
    }
}

/// An optional 8-byte value as a tag byte (0: none, 1: given) and its bytes.
fn tagged(v: Option<u64>) -> [u8; 9] {
    let mut b = [0u8; 9];
    if let Some(v) = v {
        b[0] = 1;
        b[1..].copy_from_slice(&v.to_le_bytes());
    }
    b
}

/// [`tagged`]'s value back (`None`: an unknown tag).
fn untagged(b: [u8; 9]) -> Option<Option<u64>> {
    let v = u64::from_le_bytes(b[1..].try_into().ok()?);
    match b[0] {
        0 => Some(None),
        1 => Some(Some(v)),
        _ => None,
    }
}

/// An extract's columns on a spill's [`Writer`].
trait WriteExtract {
    fn statuses(&mut self, s: &StatusMatrix) -> std::io::Result<()>;
    fn flags(&mut self, flags: &[Option<bool>]) -> std::io::Result<()>;
    fn households(&mut self, h: &Households) -> std::io::Result<()>;
    fn persons(&mut self, p: &Persons) -> std::io::Result<()>;
}

impl<W: Write> WriteExtract for Writer<W> {
    fn statuses(&mut self, s: &StatusMatrix) -> std::io::Result<()> {
        self.u64(s.present);
        for masks in [&s.fail, &s.na, &s.missing] {
            self.column(masks, |m| m.to_le_bytes())?;
        }
        Ok(())
    }

    fn flags(&mut self, flags: &[Option<bool>]) -> std::io::Result<()> {
        self.column(flags, |f| [f.map_or(0, |f| 1 + u8::from(f))])
    }

    fn households(&mut self, h: &Households) -> std::io::Result<()> {
        self.u64(h.len() as u64);
        self.column(&h.id, |id| id.0.to_le_bytes())?;
        self.column(&h.village, |v| {
            // An area code has at most 10 bytes (`AreaCode`): its length and its bytes, padded.
            let mut b = [0u8; 11];
            let text = v.as_str().as_bytes();
            let len = text.len().min(10);
            b[0] = u8::try_from(len).unwrap_or(10);
            b[1..=len].copy_from_slice(&text[..len]);
            b
        })?;
        self.column(&h.house_id, |v| tagged(v.map(|v| v.as_u64())))?;
        self.texts(&h.house_no)?;
        self.column(&h.survey_year, |y| y.to_le_bytes())?;
        self.column(&h.members, |m| m.to_le_bytes())?;
        self.column(&h.income_per_member, |v| tagged(v.map(f64::to_bits)))?;
        self.statuses(&h.statuses)?;
        self.column(&h.source_row, |r| r.to_le_bytes())
    }

    fn persons(&mut self, p: &Persons) -> std::io::Result<()> {
        self.u64(p.len() as u64);
        self.column(&p.household, |h| h.to_le_bytes())?;
        self.column(&p.citizen_id, |c| c.map_or(0, |c| c.as_u64()).to_le_bytes())?;
        let titles: StrColumn = p.title.iter().collect();
        self.texts(&titles)?;
        self.texts(&p.first_name)?;
        self.texts(&p.last_name)?;
        self.column(&p.sex, crate::spill::sex_byte)?;
        self.column(&p.birth_date, crate::spill::birth_bytes)?;
        self.column(&p.age, |a| [u8::from(a.is_some()), a.unwrap_or(0)])?;
        self.column(&p.relation, |r| [*r as u8])?;
        for flags in [&p.disabled, &p.welfare_registered, &p.welfare_validated] {
            self.flags(flags)?;
        }
        self.statuses(&p.statuses)?;
        self.column(&p.source_row, |r| r.to_le_bytes())
    }
}

/// An extract's columns on a spill's [`Reader`].
trait ReadExtract {
    fn statuses(&mut self, n: usize) -> Result<StatusMatrix>;
    fn flags(&mut self, n: usize, what: &str) -> Result<Vec<Option<bool>>>;
    fn texts_of(&mut self, n: usize) -> Result<StrColumn>;
    fn households(&mut self) -> Result<Households>;
    fn persons(&mut self, households: usize) -> Result<Persons>;
}

impl<R: Read> ReadExtract for Reader<R> {
    fn statuses(&mut self, n: usize) -> Result<StatusMatrix> {
        let present = self.u64()?;
        let mut masks = [Vec::new(), Vec::new(), Vec::new()];
        for m in &mut masks {
            // Only indicators the table has a column for.
            *m = self.column(n, "status", |b| Some(u64::from_le_bytes(b)).filter(|m| m & !present == 0))?;
        }
        let [fail, na, missing] = masks;
        Ok(StatusMatrix { present, fail, na, missing })
    }

    fn flags(&mut self, n: usize, what: &str) -> Result<Vec<Option<bool>>> {
        self.column(n, what, |[f]| match f {
            0 => Some(None),
            1 => Some(Some(false)),
            2 => Some(Some(true)),
            _ => None,
        })
    }

    fn texts_of(&mut self, n: usize) -> Result<StrColumn> {
        let t = self.texts(n)?;
        if t.len() != n {
            return Err(self.corrupt("holds columns of other lengths"));
        }
        Ok(t)
    }

    fn households(&mut self) -> Result<Households> {
        let n = self.count(MAX_ROWS)?;
        let id = self.column(n, "household", |b| Some(HouseholdId(u64::from_le_bytes(b))))?;
        let village = self.column(n, "village", |b: [u8; 11]| {
            let len = usize::from(b[0]);
            let text = std::str::from_utf8(b.get(1..=len)?).ok()?;
            AreaCode::parse(text).ok()
        })?;
        let house_id = self.column(n, "house ID", |b| match untagged(b)? {
            None => Some(None),
            Some(v) => HouseId::from_u64(v).map(Some),
        })?;
        let house_no = self.texts_of(n)?;
        let survey_year = self.column(n, "year", |b| Some(u16::from_le_bytes(b)))?;
        let members = self.column(n, "member count", |b| Some(u16::from_le_bytes(b)))?;
        let income_per_member = self.column(n, "income", |b| Some(untagged(b)?.map(f64::from_bits)))?;
        let statuses = self.statuses(n)?;
        let source_row = self.column(n, "row", |b| Some(u64::from_le_bytes(b)))?;
        Ok(Households {
            id,
            village,
            house_id,
            house_no,
            survey_year,
            members,
            income_per_member,
            statuses,
            source_row,
        })
    }

    fn persons(&mut self, households: usize) -> Result<Persons> {
        let n = self.count(MAX_ROWS)?;
        // Each person's household among the part's, in order (an extract's persons are sorted
        // by household).
        let household = self.column(n, "household", |b| Some(u32::from_le_bytes(b)))?;
        if household.iter().any(|&h| h as usize >= households) || !household.is_sorted() {
            return Err(self.corrupt("holds a person of no household"));
        }
        let citizen_id = self.column(n, "citizen ID", |b| match u64::from_le_bytes(b) {
            0 => Some(None),
            v => CitizenId::from_u64(v).ok().map(Some),
        })?;
        let titles = self.texts_of(n)?;
        let mut title = DictColumn::with_capacity(n);
        for t in titles.iter() {
            title.push(t);
        }
        drop(titles);
        let first_name = self.texts_of(n)?;
        let last_name = self.texts_of(n)?;
        let sex = self.column(n, "sex", crate::spill::sex_of_byte)?;
        let birth_date = self.column(n, "birth date", crate::spill::birth_of_bytes)?;
        let age = self.column(n, "age", |[known, a]| match known {
            0 => Some(None),
            1 => Some(Some(a)),
            _ => None,
        })?;
        let relation = self.column(n, "relation", |[r]| Relation::ALL.get(usize::from(r)).copied())?;
        let disabled = self.flags(n, "disability")?;
        let welfare_registered = self.flags(n, "welfare registration")?;
        let welfare_validated = self.flags(n, "welfare validation")?;
        let statuses = self.statuses(n)?;
        let source_row = self.column(n, "row", |b| Some(u64::from_le_bytes(b)))?;
        Ok(Persons {
            household,
            citizen_id,
            title,
            first_name,
            last_name,
            sex,
            birth_date,
            age,
            relation,
            disabled,
            welfare_registered,
            welfare_validated,
            statuses,
            source_row,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{SynthOptions, Synthesizer};

    /// A SYNTHETIC extract with every optional column both given and not.
    fn extract() -> Extract {
        let s = Synthesizer::new(SynthOptions { households: 300, seed: 5, ..Default::default() }).unwrap();
        let c = s.generate();
        let mut x = Extract::new(s.edition().clone(), c.households, c.persons);
        let h = &mut x.households;
        for i in (0..h.len()).step_by(3) {
            h.house_id[i] = HouseId::from_u64(10_010_000_000 + i as u64);
            h.income_per_member[i] = None;
        }
        let p = &mut x.persons;
        for k in (0..p.len()).step_by(4) {
            (p.citizen_id[k], p.birth_date[k], p.age[k], p.disabled[k]) = (None, None, None, None);
            p.welfare_registered[k] = Some(k % 8 == 0);
        }
        x
    }

    fn written(x: &Extract) -> Vec<u8> {
        let mut w = Writer::at(Vec::new(), 0);
        w.households(&x.households).unwrap();
        w.persons(&x.persons).unwrap();
        w.flush_buf().unwrap();
        w.w
    }

    fn read(b: &[u8], edition: &Arc<Edition>) -> Result<Extract> {
        let mut r = Reader::new(b, b.len() as u64, NAME);
        let households = r.households()?;
        let persons = r.persons(households.len())?;
        if r.left != 0 {
            return Err(r.corrupt("holds more"));
        }
        Ok(Extract::new(edition.clone(), households, persons))
    }

    /// Every part back as written, column by column, out of order and twice; every part as one
    /// extract equal to the parts appended; the file emptied by `clear`.
    #[test]
    fn parts_come_back_as_written() {
        let x = extract();
        let e = x.edition.clone();
        let n = x.households.len() as u32;
        assert!(x.households.house_id.iter().any(Option::is_some) && x.persons.citizen_id.iter().any(Option::is_some));
        let parts =
            [x.select(&(0..n / 3).collect::<Vec<_>>()), x.select(&[]), x.select(&(n / 3..n).rev().collect::<Vec<_>>())];
        let mut spill = ExtractSpill::new().unwrap();
        for p in &parts {
            spill.push(p).unwrap();
        }
        assert_eq!((spill.parts(), spill.rows()), (3, (u64::from(n), x.persons.len() as u64)));
        for i in [2, 0, 1, 2] {
            let back = spill.read(i, &e).unwrap();
            assert_eq!(back.households, parts[i].households);
            assert_eq!(back.persons, parts[i].persons);
            assert_eq!(back.member_offsets, parts[i].member_offsets);
        }
        let all = spill.read_all(&e).unwrap();
        let mut want = parts[0].clone();
        want.append(parts[1].clone()).unwrap();
        want.append(parts[2].clone()).unwrap();
        assert_eq!(
            (&all.households, &all.persons, &all.member_offsets),
            (&want.households, &want.persons, &want.member_offsets)
        );
        assert!(spill.read(3, &e).is_err());
        spill.clear().unwrap();
        assert_eq!((spill.parts(), spill.bytes(), spill.rows()), (0, 0, (0, 0)));
        assert!(spill.read_all(&e).unwrap().households.is_empty());
    }

    /// A part cut short or with a byte changed anywhere is an error or another extract, never a
    /// panic; a length is never allocated beyond what the part holds.
    #[test]
    fn damaged_spills_are_errors() {
        let x = extract();
        let x = x.select(&[0, 1, 2, 3, 4]);
        let e = x.edition.clone();
        let b = written(&x);
        let back = read(&b, &e).unwrap();
        assert_eq!((back.households, back.persons), (x.households.clone(), x.persons.clone()));
        for cut in 0..b.len() {
            assert!(read(&b[..cut], &e).is_err(), "cut at {cut}");
        }
        let mut errors = 0;
        for at in 0..b.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut d = b.clone();
                d[at] ^= flip;
                errors += usize::from(read(&d, &e).is_err());
            }
        }
        // Some bytes are free values (household keys, rows, masks within the present ones, text);
        // lengths, codes, flags, IDs' check digits and area codes are checked (69 % of these
        // changes were caught when this was written).
        assert!(errors > b.len(), "changes caught: {errors} of {}", 3 * b.len());
        let mut huge = b.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(read(&huge, &e).is_err());
    }
}
