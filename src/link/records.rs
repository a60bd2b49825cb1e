//! Records to link: one columnar table per job, any number of sources (registries), each row
//! normalised once.
//!
//! ```
//! use tpmap::link::records::{RawRecord, Records};
//! let mut r = Records::default();
//! let raw = RawRecord { key: "r1".into(), first: "สมชาย", last: "ใจดี", birth: "15/03/2530", ..Default::default() };
//! r.push_source("welfare", &[raw]);
//! assert_eq!(r.len(), 1);
//! assert_eq!(r.birth[0].map(|d| d.to_string()), Some("1987-03-15".to_string())); // BE read as CE
//! ```

use std::hash::BuildHasher;
use std::path::Path;

use rayon::prelude::*;

use super::normalize::{self, HouseNumber};
use super::phonetic;
use crate::areas::AreaCode;
use crate::extract::{Extract, Sex, StrColumn};
use crate::ids::CitizenId;
use crate::thai::PartialDate;
use crate::{Error, Result};

mod codes;
mod keys;
mod spill;
pub use keys::{Key, KeyColumn};
pub use spill::RecordSpill;

/// Most records a link job takes: records are indexed by `u32` in pairs and clusters.
pub const MAX_RECORDS: usize = u32::MAX as usize;
/// Most sources a link job takes: each record's source is a `u16`.
pub const MAX_SOURCES: usize = u16::MAX as usize + 1;

/// Person records from one or more sources, normalised for comparison.
#[derive(Clone, Debug, Default)]
pub struct Records {
    /// Source names (file stems or registry names).
    pub sources: Vec<String>,
    /// Source of each record (index into `sources`).
    pub source: Vec<u16>,
    /// Each record's own key in its source (row number or the source's record id).
    pub key: KeyColumn,
    /// Valid citizen ID, if any.
    pub citizen_id: Vec<Option<CitizenId>>,
    /// Digits of an ID that failed its check digit (kept for near matches), if any.
    pub raw_id: RawIds,
    /// Canonical title, empty if none.
    pub title: InternedColumn,
    /// Given name (clean, marks canonical).
    pub first: InternedColumn,
    /// Family name.
    pub last: InternedColumn,
    /// LK82 of the given name.
    pub first_lk: InternedColumn,
    /// LK82 of the family name.
    pub last_lk: InternedColumn,
    /// Birth date (CE; partial dates kept partial).
    pub birth: Vec<Option<PartialDate>>,
    /// Sex.
    pub sex: Vec<Sex>,
    /// Village (or coarser area) of the address.
    pub area: InternedValues<Option<AreaCode>>,
    /// House number.
    pub house: InternedValues<Option<HouseNumber>>,
    /// A registry's yes/no flag (the welfare registry's `validated` column), if any.
    pub flag: Vec<Option<bool>>,
    /// A free tag (an agency list's `program` column), empty if none.
    pub tag: InternedColumn,
    /// Input records that could not be read (and are not among the records).
    pub unreadable: Vec<Unreadable>,
}

/// A registry record that was not linked because it could not be read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Unreadable {
    /// Its source.
    pub source: u16,
    /// 1-based data row in its file.
    pub row: u64,
    /// Physical line, where known.
    pub line: Option<u64>,
    /// Why (`bad_encoding`).
    pub reason: &'static str,
}

/// One raw record, before normalisation.
#[derive(Clone, Debug, Default)]
pub struct RawRecord<'a> {
    /// Key in its source.
    pub key: String,
    /// Citizen ID as written.
    pub citizen_id: &'a str,
    /// Title as written (may be empty; titles inside names are found too).
    pub title: &'a str,
    /// Given name (may hold the whole name).
    pub first: &'a str,
    /// Family name.
    pub last: &'a str,
    /// Birth date as written (BE or CE, Thai or ASCII digits, partial allowed).
    pub birth: &'a str,
    /// Sex as written.
    pub sex: &'a str,
    /// Area code.
    pub area: &'a str,
    /// House number as written.
    pub house: &'a str,
    /// Yes/no flag as written (`validated` column of a welfare registry).
    pub flag: &'a str,
    /// Tag (`program` column of an agency list).
    pub tag: &'a str,
}

impl Records {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.source.len()
    }

    /// Gives back the room every column made for records not read (a column grown by
    /// doubling may hold up to twice what it needs): for records held a long time, as a
    /// bounded linkage holds its registry.
    pub fn shrink_to_fit(&mut self) {
        // Every field named, as in `heap_bytes`.
        let Records {
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
            unreadable,
        } = self;
        sources.shrink_to_fit();
        source.shrink_to_fit();
        key.shrink_to_fit();
        citizen_id.shrink_to_fit();
        raw_id.rows.shrink_to_fit();
        for c in [title, first, last, first_lk, last_lk, tag] {
            c.shrink_to_fit();
        }
        birth.shrink_to_fit();
        sex.shrink_to_fit();
        area.shrink_to_fit();
        house.shrink_to_fit();
        flag.shrink_to_fit();
        unreadable.shrink_to_fit();
    }

    /// Bytes the records hold on the heap (every column's capacity, the interned columns'
    /// tables and distinct values): what a bounded linkage sets aside for a registry it holds.
    pub fn heap_bytes(&self) -> u64 {
        use crate::memory::vec_bytes;
        // Every field named: a new column cannot be left out of the count.
        let Records {
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
            unreadable,
        } = self;
        let names = sources.iter().fold(vec_bytes(sources), |b, s| b.saturating_add(s.capacity() as u64));
        [
            names,
            vec_bytes(source),
            key.heap_bytes(),
            vec_bytes(citizen_id),
            raw_id.heap_bytes(),
            title.heap_bytes(),
            first.heap_bytes(),
            last.heap_bytes(),
            first_lk.heap_bytes(),
            last_lk.heap_bytes(),
            vec_bytes(birth),
            vec_bytes(sex),
            area.heap_bytes(),
            house.heap_bytes(),
            vec_bytes(flag),
            tag.heap_bytes(),
            vec_bytes(unreadable),
        ]
        .into_iter()
        .fold(0, u64::saturating_add)
    }

    /// Checks that the records fit a link job's indices ([`MAX_RECORDS`], [`MAX_SOURCES`]).
    pub fn check_limits(&self) -> Result<()> {
        if self.len() > MAX_RECORDS || self.sources.len() > MAX_SOURCES {
            return Err(Error::Config(format!(
                "a link job takes at most {MAX_RECORDS} records from {MAX_SOURCES} sources, not {} from {}",
                self.len(),
                self.sources.len()
            )));
        }
        Ok(())
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.source.is_empty()
    }

    /// Adds a source's raw records, normalising them in parallel. Returns the source's index.
    pub fn push_source(&mut self, name: &str, raw: &[RawRecord<'_>]) -> u16 {
        let src = self.add_source(name);
        self.push_rows(src, raw);
        src
    }

    /// Registers a source and returns its index (records come with [`Records::push_rows`]).
    pub fn add_source(&mut self, name: &str) -> u16 {
        self.sources.push(name.to_string());
        (self.sources.len() - 1) as u16
    }

    /// Appends raw records of source `src`, normalising them in parallel.
    pub fn push_rows(&mut self, src: u16, raw: &[RawRecord<'_>]) {
        let hashers = self.hashers();
        let rows: Vec<Norm> = crate::in_pool(|| {
            raw.par_iter().map_init(NameCache::default, |cache, r| normalise(r, &hashers, cache)).collect()
        });
        self.push_normalised(src, &|k| raw.get(k).map_or("", |r| r.key.as_str()), rows);
    }

    /// The hashers of the interned columns, for [`normalise`] to hash their values in parallel.
    fn hashers(&self) -> [InternHasher; 6] {
        [&self.first, &self.last, &self.first_lk, &self.last_lk, &self.tag, &self.title].map(|c| c.codes.hasher)
    }

    /// Appends records of source `src` already normalised, `rows[i]` with key `key(i)`.
    fn push_normalised<'k>(&mut self, src: u16, key_of: &(dyn Fn(usize) -> &'k str + Sync), rows: Vec<Norm>) {
        // Interning probes a table per column (a cache miss or two a value): the name columns
        // are appended beside the others, so that a worker done parsing can take a share.
        let Records { first, last, first_lk, last_lk, tag, title, .. } = self;
        let rows = &rows;
        let names = || {
            rayon::join(
                || {
                    for n in rows {
                        first.push_hashed(&n.name.first, n.hashes[0]);
                        first_lk.push_hashed(&n.first_lk, n.hashes[2]);
                    }
                },
                || {
                    for n in rows {
                        last.push_hashed(&n.name.last, n.hashes[1]);
                        last_lk.push_hashed(&n.last_lk, n.hashes[3]);
                        tag.push_hashed(&n.tag, n.hashes[4]);
                        title.push_hashed(n.name.title.unwrap_or(""), n.hashes[5]);
                    }
                },
            )
        };
        let Records { source, key, citizen_id, raw_id, birth, sex, area, house, flag, .. } = self;
        let rest = || {
            for (i, n) in rows.iter().enumerate() {
                if let Some(digits) = n.raw_id {
                    raw_id.push(source.len(), digits);
                }
                source.push(src);
                key.push(key_of(i));
                citizen_id.push(n.id);
                birth.push(n.birth);
                sex.push(n.sex);
                area.push(n.area);
                house.push(n.house);
                flag.push(n.flag);
            }
        };
        crate::in_pool(|| rayon::join(names, rest));
    }

    /// The persons of an extract as a source (key: household ID and member position).
    pub fn push_extract(&mut self, name: &str, x: &Extract) -> u16 {
        let src = self.add_source(name);
        self.push_extract_to(src, x);
        src
    }

    /// Appends the persons of `x` to source `src`, as [`Records::push_extract`] makes them: a
    /// partitioned run gathers its waves' persons into one source.
    pub fn push_extract_to(&mut self, src: u16, x: &Extract) {
        // A slice of persons at a time: a record and its normalised form take a hundred bytes
        // or more while they are made.
        const SLICE: usize = 1 << 18;
        let n = x.persons.len();
        let hashers = self.hashers();
        for start in (0..n).step_by(SLICE) {
            let rows = start..n.min(start + SLICE);
            let (keys, norms): (Vec<String>, Vec<Norm>) = crate::in_pool(|| {
                rows.into_par_iter().map_init(NameCache::default, |cache, i| person(x, i, &hashers, cache)).unzip()
            });
            self.push_normalised(src, &|k| keys.get(k).map_or("", String::as_str), norms);
        }
    }

    /// The records at `order`, in that order (each index below [`Records::len`], each at most
    /// once): the records that pushing them in that order gives, every interned value numbered
    /// by its first row as there. A partitioned run whose waves do not take the households in
    /// file order puts its persons' records in the whole extract's order with this.
    pub fn take(&self, order: &[u32]) -> Records {
        let mut out =
            Records { sources: self.sources.clone(), unreadable: self.unreadable.clone(), ..Default::default() };
        out.append_from(self, order);
        out
    }

    /// Appends the records of `from` at `order` (each index below `from.len()`), in that order,
    /// as pushing them after these records would: their sources keep their numbers (`from`'s
    /// sources must be this one's, or begin with them). The bounded linkage
    /// ([`super::parts`]) puts the registry records a wave of persons needs after its persons.
    pub fn append_from(&mut self, from: &Records, order: &[u32]) {
        let at = |k: usize| order[k] as usize;
        let start = self.len();
        let Records {
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
            ..
        } = self;
        let interned =
            |to: &mut InternedColumn, from: &InternedColumn| (0..order.len()).for_each(|k| to.push(from.get(at(k))));
        crate::in_pool(|| {
            rayon::scope(|s| {
                s.spawn(|_| interned(first, &from.first));
                s.spawn(|_| interned(last, &from.last));
                s.spawn(|_| interned(first_lk, &from.first_lk));
                s.spawn(|_| interned(last_lk, &from.last_lk));
                s.spawn(|_| {
                    interned(title, &from.title);
                    interned(tag, &from.tag);
                });
                s.spawn(|_| (0..order.len()).for_each(|k| key.push(&from.key.get(at(k)))));
                s.spawn(|_| {
                    (0..order.len()).for_each(|k| area.push(from.area.get(at(k))));
                    (0..order.len()).for_each(|k| house.push(from.house.get(at(k))));
                });
                source.extend(order.iter().map(|&i| from.source[i as usize]));
                citizen_id.extend(order.iter().map(|&i| from.citizen_id[i as usize]));
                birth.extend(order.iter().map(|&i| from.birth[i as usize]));
                sex.extend(order.iter().map(|&i| from.sex[i as usize]));
                flag.extend(order.iter().map(|&i| from.flag[i as usize]));
                for k in 0..order.len() {
                    if let Some(digits) = from.raw_id.get(at(k)) {
                        raw_id.push(start + k, digits);
                    }
                }
            })
        });
    }

    /// Reads a registry CSV (UTF-8 or TIS-620, decided on the evidence of every line) with
    /// columns named like the extract format (`record_id`, `citizen_id`, `title`, `first_name`,
    /// `last_name`, `birth_date`, `sex`, `village_code`, `house_no`; Thai names accepted; all
    /// optional but a name). The record key is `record_id`, else the data row number. Only
    /// leading `#` lines are a preamble: a record whose id starts with `#` is a record. A record
    /// whose text is not valid in the file's encoding is not linked; it is listed in
    /// [`Records::unreadable`].
    pub fn push_csv(&mut self, path: &Path) -> Result<u16> {
        self.push_csv_with(path, &mut |_| Ok(()))
    }

    /// [`Records::push_csv`], handing these records to `after` once each chunk of the file (up
    /// to 100,000 records) is appended: a caller that routes the records elsewhere takes them
    /// there (leaving the sources), so that the file is never held whole. The unreadable records
    /// are added after the last chunk.
    pub fn push_csv_with(&mut self, path: &Path, after: &mut dyn FnMut(&mut Records) -> Result<()>) -> Result<u16> {
        use crate::ingest::source::{CsvText, csv_error, decode_into};
        let file = path.display().to_string();
        let CsvText { mut reader, encoding, mut lines, .. } = CsvText::open(path, crate::ingest::Encoding::Auto)?;
        let mut rec = csv::ByteRecord::new();
        if !reader.read_byte_record(&mut rec).map_err(|e| csv_error(path, e))? {
            return Err(Error::Format { file, message: "the file is empty (no header)".into() });
        }
        let (mut scratch, mut cell) = (String::new(), String::new());
        let headers: Vec<String> = rec
            .iter()
            .map(|h| {
                cell.clear();
                decode_into(h, encoding, &mut cell, &mut scratch);
                cell.trim_start_matches('\u{feff}').trim().to_lowercase()
            })
            .collect();
        let c = record_columns(&headers);
        if c[3].is_none() {
            return Err(Error::Format { file, message: "no first_name (ชื่อ) column".into() });
        }
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or(file);
        let src = self.add_source(&stem);
        // Chunks of up to 100,000 records: memory stays bounded whatever the file's size. Each
        // record's eleven fields are decoded into one string with end offsets. The next chunk is
        // parsed (sequentially: one CSV stream) while this one is normalised and appended on the
        // other worker; the parsing worker joins the normalising when it is done
        // (`rayon::join`). Reading then normalising took 0.6 s + 1.0 s at 1.1 M records. The
        // first chunk is small (8,192, doubling) so that the pipeline fills at once: a first
        // chunk of 100,000 was parsed with the other core idle, 0.05 s per file.
        type Text = (String, [u32; 11], u64);
        const CHUNK: usize = 100_000;
        let mut chunk = 8_192usize;
        let mut row = 0u64;
        let mut unreadable: Vec<Unreadable> = Vec::new();
        let mut parse = |unreadable: &mut Vec<Unreadable>| -> Result<(Vec<Text>, bool)> {
            let mut texts: Vec<Text> = Vec::with_capacity(chunk);
            let limit = chunk;
            chunk = (chunk * 2).min(CHUNK);
            while texts.len() < limit {
                if !reader.read_byte_record(&mut rec).map_err(|e| csv_error(path, e))? {
                    lines.check_quotes_closed(path, Some(0))?;
                    return Ok((texts, true));
                }
                row += 1;
                let line = lines.of(&rec);
                let mut text = String::new();
                let mut ends = [0u32; 11];
                let mut ok = true;
                for (k, col) in c.iter().enumerate() {
                    if let Some(f) = col.and_then(|i| rec.get(i)) {
                        ok &= decode_into(f, encoding, &mut text, &mut scratch);
                    }
                    ends[k] = text.len().min(u32::MAX as usize) as u32;
                }
                if !ok || text.len() > u32::MAX as usize {
                    unreadable.push(Unreadable { source: src, row, line, reason: "bad_encoding" });
                    continue;
                }
                texts.push((text, ends, row));
            }
            Ok((texts, false))
        };
        fn raw_of(texts: &[Text]) -> Vec<RawRecord<'_>> {
            let field = |t: &Text, k: usize| -> std::ops::Range<usize> {
                let start = if k == 0 { 0 } else { t.1[k - 1] as usize };
                start..t.1[k] as usize
            };
            texts
                .iter()
                .map(|t| {
                    let f = |k: usize| &t.0[field(t, k)];
                    RawRecord {
                        key: match f(0) {
                            "" => t.2.to_string(),
                            k => k.to_string(),
                        },
                        citizen_id: f(1),
                        title: f(2),
                        first: f(3),
                        last: f(4),
                        birth: f(5),
                        sex: f(6),
                        area: f(7),
                        house: f(8),
                        flag: f(9),
                        tag: f(10),
                    }
                })
                .collect()
        }
        let mut lap = crate::diagnostics::Lap::start();
        let (mut texts, mut done) = parse(&mut unreadable)?;
        loop {
            let raw = raw_of(&texts);
            let n = raw.len();
            let this = &mut *self;
            let hashers = this.hashers();
            let normalise_and_append = move || {
                let rows = raw
                    .par_iter()
                    .map_init(NameCache::default, |cache, r| normalise(r, &hashers, cache))
                    .collect::<Vec<Norm>>();
                this.push_normalised(src, &|k| raw.get(k).map_or("", |r| r.key.as_str()), rows);
            };
            let next = if done {
                crate::in_pool(normalise_and_append);
                None
            } else {
                Some(crate::in_pool(|| rayon::join(|| parse(&mut unreadable), normalise_and_append).0))
            };
            lap.lap(&format!("{stem}: {n} records read and normalised"));
            after(self)?;
            match next {
                None => break,
                Some(next) => (texts, done) = next?,
            }
        }
        self.unreadable.extend(unreadable);
        Ok(src)
    }

    /// Reads a registry from a polars frame with the columns of [`Records::push_csv`] (any
    /// type; values are read as text). The record key is `record_id`, else the row number.
    pub fn push_frame(&mut self, name: &str, df: &polars::prelude::DataFrame) -> Result<u16> {
        self.push_frame_rows(name, df, None)
    }

    /// [`Records::push_frame`] for a slice of a larger table: `rows[i]` is row i's 1-based row
    /// number in the whole table, the key of a record without a `record_id` (a distributed
    /// engine hands tpmap a table in batches). `rows` must have one number per row.
    pub fn push_frame_rows(
        &mut self,
        name: &str,
        df: &polars::prelude::DataFrame,
        rows: Option<&[u64]>,
    ) -> Result<u16> {
        use polars::prelude::*;
        if rows.is_some_and(|r| r.len() != df.height()) {
            return Err(Error::Format { file: name.to_string(), message: "one row number per row is needed".into() });
        }
        let headers: Vec<String> = df.get_column_names().iter().map(|h| h.trim().to_lowercase()).collect();
        let c = record_columns(&headers);
        if c[3].is_none() {
            return Err(Error::Format {
                file: name.to_string(), message: "no first_name (ชื่อ) column".into()
            });
        }
        let err = |e: PolarsError| Error::Format { file: name.to_string(), message: e.to_string() };
        let mut text: Vec<Option<StringChunked>> = Vec::with_capacity(c.len());
        for k in c {
            text.push(match k {
                Some(i) => Some(df.columns()[i].cast(&DataType::String).map_err(err)?.str().map_err(err)?.clone()),
                None => None,
            });
        }
        let src = self.add_source(name);
        let get = |k: usize, i: usize| -> &str { text[k].as_ref().and_then(|s| s.get(i)).unwrap_or("") };
        for start in (0..df.height()).step_by(500_000) {
            let end = (start + 500_000).min(df.height());
            let raw: Vec<RawRecord<'_>> = (start..end)
                .map(|i| RawRecord {
                    key: match get(0, i) {
                        "" => rows.and_then(|r| r.get(i).copied()).unwrap_or(i as u64 + 1).to_string(),
                        k => k.to_string(),
                    },
                    citizen_id: get(1, i),
                    title: get(2, i),
                    first: get(3, i),
                    last: get(4, i),
                    birth: get(5, i),
                    sex: get(6, i),
                    area: get(7, i),
                    house: get(8, i),
                    flag: get(9, i),
                    tag: get(10, i),
                })
                .collect();
            self.push_rows(src, &raw);
        }
        Ok(src)
    }
}

/// The text of an extract's persons as link records: what [`Records::push_extract`] links.
struct ExtractText {
    ids: Vec<String>,
    births: Vec<String>,
}

impl ExtractText {
    /// The text of persons `rows`.
    fn of(x: &Extract, rows: std::ops::Range<usize>) -> Self {
        let p = &x.persons;
        ExtractText {
            ids: p.citizen_id[rows.clone()]
                .iter()
                .map(|c| c.map(|c| c.expose().to_string()).unwrap_or_default())
                .collect(),
            births: p.birth_date[rows].iter().map(|d| d.map(|d| d.to_string()).unwrap_or_default()).collect(),
        }
    }

    /// The records of persons `rows` (the ones this text was made of).
    fn raw<'a>(&'a self, x: &'a Extract, rows: std::ops::Range<usize>) -> Vec<RawRecord<'a>> {
        let p = &x.persons;
        let start = rows.start;
        rows.map(|i| {
            let h = p.household[i] as usize;
            RawRecord {
                key: format!("{}:{}", x.households.id[h].0, i - x.members(h).start),
                citizen_id: &self.ids[i - start],
                title: p.title.get(i),
                first: p.first_name.get(i),
                last: p.last_name.get(i),
                birth: &self.births[i - start],
                sex: match p.sex[i] {
                    Sex::Male => "m",
                    Sex::Female => "f",
                    Sex::Unknown => "",
                },
                area: x.households.village[h].as_str(),
                house: x.households.house_no.get(h),
                flag: "",
                tag: "",
            }
        })
        .collect()
    }
}

/// An extract's persons as a table of every record column ([`RECORD_COLUMNS`]; `record_id` is the
/// household ID and member position), in extract order, with each person's household index
/// (`household`) and position among its members (`member`): [`Records::push_frame`] of it gives
/// the records [`Records::push_extract`] gives. For engines that link an extract split in parts.
pub fn extract_frame(x: &Extract) -> Result<polars::prelude::DataFrame> {
    use polars::prelude::{Column, DataFrame};
    let text = ExtractText::of(x, 0..x.persons.len());
    let raw = text.raw(x, 0..x.persons.len());
    let p = &x.persons;
    let col = |name: &str, f: &dyn Fn(&RawRecord<'_>) -> String| {
        Column::new(name.into(), raw.iter().map(f).collect::<Vec<String>>())
    };
    let members: Vec<u32> = (0..p.len())
        .map(|i| {
            let h = p.household[i] as usize;
            u32::try_from(i - x.members(h).start).unwrap_or(u32::MAX)
        })
        .collect();
    Ok(DataFrame::new(
        raw.len(),
        vec![
            col("record_id", &|r| r.key.clone()),
            col("citizen_id", &|r| r.citizen_id.to_string()),
            col("title", &|r| r.title.to_string()),
            col("first_name", &|r| r.first.to_string()),
            col("last_name", &|r| r.last.to_string()),
            col("birth_date", &|r| r.birth.to_string()),
            col("sex", &|r| r.sex.to_string()),
            col("village_code", &|r| r.area.to_string()),
            col("house_no", &|r| r.house.to_string()),
            col("validated", &|r| r.flag.to_string()),
            col("program", &|r| r.tag.to_string()),
            Column::new("household".into(), p.household.clone()),
            Column::new("member".into(), members),
        ],
    )?)
}

/// The record columns' canonical names, in [`record_columns`]'s order.
pub const RECORD_COLUMNS: [&str; 11] = [
    "record_id",
    "citizen_id",
    "title",
    "first_name",
    "last_name",
    "birth_date",
    "sex",
    "village_code",
    "house_no",
    "validated",
    "program",
];

/// Positions of the record columns in a (trimmed, lower-cased) header: record id, citizen id,
/// title, first name, last name, birth date, sex, village code, house number, validated, program
/// ([`RECORD_COLUMNS`]); each accepts its Thai and English aliases.
pub fn record_columns(headers: &[String]) -> [Option<usize>; 11] {
    let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
    [
        col(&["record_id", "id", "รหัส"]),
        col(&["citizen_id", "pid", "เลขประจำตัวประชาชน", "เลขบัตรประชาชน"]),
        col(&["title", "prefix", "คำนำหน้า", "คำนำหน้าชื่อ"]),
        col(&["first_name", "name", "given_name", "ชื่อ"]),
        col(&["last_name", "surname", "family_name", "นามสกุล"]),
        col(&["birth_date", "dob", "วันเกิด", "วันเดือนปีเกิด"]),
        col(&["sex", "gender", "เพศ"]),
        col(&["village_code", "area", "area_code", "รหัสหมู่บ้าน"]),
        col(&["house_no", "บ้านเลขที่"]),
        col(&["validated", "welfare_validated", "ผ่านการตรวจสอบ"]),
        col(&["program", "โครงการ"]),
    ]
}

struct Norm {
    flag: Option<bool>,
    tag: String,
    id: Option<CitizenId>,
    raw_id: Option<u64>,
    name: normalize::Name,
    first_lk: String,
    last_lk: String,
    birth: Option<PartialDate>,
    sex: Sex,
    area: Option<AreaCode>,
    house: Option<HouseNumber>,
    /// Hashes of the given and family names, their LK82 codes, the tag and the title, for their
    /// [`InternedColumn`]s (computed here, in parallel, so that appending only probes).
    hashes: [u64; 6],
}

/// Person `i` of `x` as a link record: its key and [`normalise`] of its text as
/// [`ExtractText`] writes it, made from the typed values instead. The citizen ID (valid, so its
/// digits read back to it), the sex and the absent flag and tag are taken as they are; names,
/// birth date, village and house number go through the same functions as that text (names and
/// dates through the cache). Writing each person's ID and date as text to parse them back was
/// most of the time of gathering the national persons' records that was not reading names.
fn person<'a>(x: &'a Extract, i: usize, hashers: &[InternHasher; 6], cache: &mut NameCache<'a>) -> (String, Norm) {
    let p = &x.persons;
    let h = p.household[i] as usize;
    let mut key = String::with_capacity(24);
    key.push_str(itoa::Buffer::new().format(x.households.id[h].0));
    key.push(':');
    key.push_str(itoa::Buffer::new().format(i - x.members(h).start));
    let (name, first_lk, last_lk, [h_first, h_last, h_first_lk, h_last_lk]) =
        cache.name(p.title.get(i), p.first_name.get(i), p.last_name.get(i), hashers);
    let hashes = [
        h_first,
        h_last,
        h_first_lk,
        h_last_lk,
        hashers[4].hash_one(""),
        hashers[5].hash_one(name.title.unwrap_or("")),
    ];
    let norm = Norm {
        flag: None,
        tag: String::new(),
        id: p.citizen_id[i],
        raw_id: None,
        first_lk,
        last_lk,
        name,
        birth: cache.birth(p.birth_date[i]),
        sex: p.sex[i],
        area: AreaCode::parse(x.households.village[h].as_str()).ok(),
        house: normalize::house_number(x.households.house_no.get(h)),
        hashes,
    };
    (key, norm)
}

/// A short code field (sex, a yes/no flag) cleaned and lower-cased; plain values (the usual case)
/// without allocating.
fn code(s: &str) -> std::borrow::Cow<'_, str> {
    let t = s.trim();
    if t.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        || t.chars().all(|c| ('\u{0E01}'..='\u{0E4F}').contains(&c))
    {
        std::borrow::Cow::Borrowed(t)
    } else {
        std::borrow::Cow::Owned(normalize::clean(t).to_lowercase())
    }
}

/// Names already normalised by one worker, by the text written: a name repeats across a
/// household and a country (the national persons' given names are a few thousand), and cleaning
/// it, finding a glued title, making its marks canonical and its LK82 code took most of the
/// time of making the national persons' link records (twenty-first session's profile). Each
/// name's result is [`normalize::name`]'s and [`phonetic::lk82`]'s for it alone. A table is
/// emptied when it holds [`NameCache::MAX`] values, and the names' tables when the names they
/// keep reach [`NameCache::MAX_BYTES`] (a file of long distinct names costs a worker no more).
/// (A map per worker, not a crate's concurrent cache: the workers never wait on each other.)
#[derive(Default)]
struct NameCache<'a> {
    titles: hashbrown::HashMap<&'a str, Option<&'static str>>,
    given: hashbrown::HashMap<&'a str, Given>,
    family: hashbrown::HashMap<&'a str, Family>,
    births: hashbrown::HashMap<Option<PartialDate>, Option<PartialDate>>,
    /// Bytes of the names and codes `given` and `family` keep.
    bytes: usize,
}

/// A given-name field normalised: its glued title, the name and its LK82 code, with their hashes
/// for the interned columns.
struct Given {
    title: Option<&'static str>,
    name: String,
    lk: String,
    hashes: [u64; 2],
}

/// A family-name field normalised: the name and its LK82 code, with their hashes.
struct Family {
    name: String,
    lk: String,
    hashes: [u64; 2],
}

impl<'a> NameCache<'a> {
    /// Values a table holds before it is emptied.
    const MAX: usize = 1 << 16;
    /// Bytes of names and codes the names' tables keep before they are emptied.
    const MAX_BYTES: usize = 16 << 20;

    /// Room for a name: the names' tables emptied when either is full or their names reach
    /// [`NameCache::MAX_BYTES`].
    fn room_for_a_name(&mut self) {
        if self.given.len() >= Self::MAX || self.family.len() >= Self::MAX || self.bytes >= Self::MAX_BYTES {
            self.given.clear();
            self.family.clear();
            self.bytes = 0;
        }
    }

    /// [`normalize::name`] and each name's LK82 code, with the hashes of the given name, the
    /// family name and their codes: the fields are normalised alone (or found in the cache),
    /// then joined as `name` joins them (a family name found in the given-name field is moved,
    /// and both codes made again).
    fn name(
        &mut self,
        title: &'a str,
        first: &'a str,
        last: &'a str,
        hashers: &[InternHasher; 6],
    ) -> (normalize::Name, String, String, [u64; 4]) {
        let title = self.title(title);
        let f = self.given(first, hashers);
        let (glued, first, first_lk, [h_first, h_first_lk]) = (f.title, f.name.clone(), f.lk.clone(), f.hashes);
        let l = self.family(last, hashers);
        let (last, last_lk, [h_last, h_last_lk]) = (l.name.clone(), l.lk.clone(), l.hashes);
        let moved = last.is_empty() && first.contains(' ');
        let name = normalize::joined(title, glued, first, last);
        if !moved {
            return (name, first_lk, last_lk, [h_first, h_last, h_first_lk, h_last_lk]);
        }
        let (a, b) = (phonetic::lk82(&name.first), phonetic::lk82(&name.last));
        let h = [
            hashers[0].hash_one(name.first.as_str()),
            hashers[1].hash_one(name.last.as_str()),
            hashers[2].hash_one(a.as_str()),
            hashers[3].hash_one(b.as_str()),
        ];
        (name, a, b, h)
    }

    /// A birth date as [`normalize::birth_date`] reads its text (`PartialDate`'s display; empty
    /// when there is none).
    fn birth(&mut self, d: Option<PartialDate>) -> Option<PartialDate> {
        if self.births.len() >= Self::MAX {
            self.births.clear();
        }
        *self.births.entry(d).or_insert_with(|| normalize::birth_date(&d.map(|d| d.to_string()).unwrap_or_default()))
    }

    /// The title of a title field.
    fn title(&mut self, t: &'a str) -> Option<&'static str> {
        if self.titles.len() >= Self::MAX {
            self.titles.clear();
        }
        *self.titles.entry(t).or_insert_with(|| normalize::title_field(t))
    }

    /// A given-name field normalised.
    fn given(&mut self, f: &'a str, hashers: &[InternHasher; 6]) -> &Given {
        self.room_for_a_name();
        let bytes = &mut self.bytes;
        self.given.entry(f).or_insert_with(|| {
            let (title, name) = normalize::given_name(f);
            let lk = phonetic::lk82(&name);
            *bytes += name.len() + lk.len();
            let hashes = [hashers[0].hash_one(name.as_str()), hashers[2].hash_one(lk.as_str())];
            Given { title, name, lk, hashes }
        })
    }

    /// A family-name field normalised.
    fn family(&mut self, l: &'a str, hashers: &[InternHasher; 6]) -> &Family {
        self.room_for_a_name();
        let bytes = &mut self.bytes;
        self.family.entry(l).or_insert_with(|| {
            let name = normalize::family_name(l);
            let lk = phonetic::lk82(&name);
            *bytes += name.len() + lk.len();
            let hashes = [hashers[1].hash_one(name.as_str()), hashers[3].hash_one(lk.as_str())];
            Family { name, lk, hashes }
        })
    }
}

fn normalise<'a>(r: &RawRecord<'a>, hashers: &[InternHasher; 6], cache: &mut NameCache<'a>) -> Norm {
    // The ID's digits (Thai digits folded, separators dropped) on the stack.
    let mut buf = [0u8; 13];
    let mut len = 0usize;
    for c in r.citizen_id.chars() {
        let d = match c {
            '0'..='9' => c as u8,
            '\u{0E50}'..='\u{0E59}' => b'0' + (c as u32 - 0x0E50) as u8,
            _ => continue,
        };
        if len < 13 {
            buf[len] = d;
        }
        len += 1;
    }
    let digits = if len == 13 { std::str::from_utf8(&buf).unwrap_or("") } else { "" };
    let id: Option<CitizenId> = digits.parse().ok();
    let raw_id = if id.is_none() && !digits.is_empty() { digits.parse().ok() } else { None };
    let sex = match code(r.sex).as_ref() {
        "m" | "male" | "ชาย" | "1" | "ช" => Sex::Male,
        "f" | "female" | "หญิง" | "2" | "ญ" => Sex::Female,
        _ => Sex::Unknown,
    };
    let (name, first_lk, last_lk, [h_first, h_last, h_first_lk, h_last_lk]) =
        cache.name(r.title, r.first, r.last, hashers);
    let tag = if r.tag.is_empty() { String::new() } else { normalize::clean(r.tag) };
    let hashes = [
        h_first,
        h_last,
        h_first_lk,
        h_last_lk,
        hashers[4].hash_one(tag.as_str()),
        hashers[5].hash_one(name.title.unwrap_or("")),
    ];
    Norm {
        flag: match code(r.flag).as_ref() {
            "1" | "true" | "yes" | "y" | "ใช่" | "ผ่าน" => Some(true),
            "0" | "false" | "no" | "n" | "ไม่ใช่" | "ไม่ผ่าน" => Some(false),
            _ => None,
        },
        tag,
        id,
        raw_id,
        first_lk,
        last_lk,
        name,
        birth: normalize::birth_date(r.birth),
        sex,
        area: AreaCode::parse(r.area.trim()).ok(),
        house: normalize::house_number(r.house),
        hashes,
    }
}

/// A column of small values that repeat — areas, house numbers: each row holds a code into the
/// distinct values, in one, two or four bytes as their number needs (at most 4 bytes a row
/// instead of 12 for an area or a house number: 0.8 GB less for the national job's 52 M records).
///
/// ```
/// use tpmap::link::records::InternedValues;
/// let mut c = InternedValues::default();
/// for v in [Some(12u32), None, Some(12)] {
///     c.push(v);
/// }
/// assert_eq!((c.len(), c.distinct()), (3, 2));
/// assert_eq!(c.get(2), Some(12));
/// ```
#[derive(Clone)]
pub struct InternedValues<T> {
    codes: Codes,
    values: Vec<T>,
}

impl<T> Default for InternedValues<T> {
    fn default() -> Self {
        InternedValues { codes: Codes::default(), values: Vec::new() }
    }
}

impl<T> std::fmt::Debug for InternedValues<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternedValues")
            .field("len", &self.codes.rows.len())
            .field("distinct", &self.values.len())
            .finish()
    }
}

impl<T: Copy + Eq + std::hash::Hash> InternedValues<T> {
    /// Bytes held on the heap: each row's code, the table and the distinct values.
    pub fn heap_bytes(&self) -> u64 {
        self.codes.heap_bytes().saturating_add(crate::memory::vec_bytes(&self.values))
    }

    /// Gives back the room made for rows and values not written.
    pub fn shrink_to_fit(&mut self) {
        self.codes.shrink_to_fit();
        self.values.shrink_to_fit();
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.codes.rows.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.codes.rows.is_empty()
    }

    /// Number of distinct values.
    pub fn distinct(&self) -> usize {
        self.values.len()
    }

    /// Row `i`'s value.
    pub fn get(&self, i: usize) -> T {
        self.values[self.codes.rows.get(i) as usize]
    }

    /// Every row's value, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = T> + '_ {
        self.codes.rows.iter().map(|c| self.values[c as usize])
    }

    /// Appends a row.
    pub fn push(&mut self, v: T) {
        let h = self.codes.hasher.hash_one(v);
        let values = &self.values;
        if self.codes.push(h, values.len(), |c| values[c as usize] == v, |hs, c| hs.hash_one(values[c as usize])) {
            self.values.push(v);
        }
    }
}

/// Digits of citizen IDs that failed their check digit, by record. Few records have one: they
/// are kept as (record, digits) in record order, not as 16 bytes for every record (0.8 GB for the
/// national job's 52 M records).
#[derive(Clone, Debug, Default)]
pub struct RawIds {
    rows: Vec<(usize, u64)>,
}

impl RawIds {
    /// Bytes held on the heap.
    fn heap_bytes(&self) -> u64 {
        crate::memory::vec_bytes(&self.rows)
    }

    /// Record `i`'s digits, if it has any.
    pub fn get(&self, i: usize) -> Option<u64> {
        self.rows.binary_search_by_key(&i, |e| e.0).ok().map(|k| self.rows[k].1)
    }

    /// Number of records with digits.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no record has any.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Records record `i`'s digits; records come in order (an earlier or repeated `i` is ignored).
    fn push(&mut self, i: usize, digits: u64) {
        if self.rows.last().is_none_or(|e| e.0 < i) {
            self.rows.push((i, digits));
        }
    }
}

/// The hasher of the interned columns: keyed at random per column (a file cannot choose values
/// that collide), the same for every value of one column.
type InternHasher = hashbrown::DefaultHashBuilder;

/// What [`InternedColumn`] and [`InternedValues`] share: each row's code, and a table from a
/// value's hash to its code.
#[derive(Clone, Default)]
struct Codes {
    rows: codes::CodeRows,
    table: hashbrown::HashTable<u32>,
    hasher: InternHasher,
}

impl Codes {
    /// Gives back the room made for rows not written (the table keeps its size).
    fn shrink_to_fit(&mut self) {
        self.rows.shrink_to_fit();
    }

    /// Bytes held on the heap: the rows' codes and the table.
    fn heap_bytes(&self) -> u64 {
        self.rows.heap_bytes().saturating_add(self.table.allocation_size() as u64)
    }

    /// Appends the row of a value whose hash is `h`: the code `eq` recognises, else the next one
    /// (`distinct`, the number of values so far), and then returns true: the caller appends the
    /// value. `hash_of` hashes an earlier code's value when the table grows.
    fn push(
        &mut self,
        h: u64,
        distinct: usize,
        eq: impl Fn(u32) -> bool,
        hash_of: impl Fn(&InternHasher, u32) -> u64,
    ) -> bool {
        let Codes { rows, table, hasher } = self;
        let (code, new) = match table.find(h, |&c| eq(c)) {
            Some(&c) => (c, false),
            None => {
                // Distinct values never outnumber rows, and a job of more than `MAX_RECORDS`
                // rows is refused before linking ([`Records::check_limits`]).
                let c = u32::try_from(distinct).unwrap_or(u32::MAX);
                table.insert_unique(h, c, |&c| hash_of(hasher, c));
                (c, true)
            }
        };
        rows.push(code);
        new
    }

    /// The codes of `rows` (each below `distinct`) over values already distinct, their table
    /// rebuilt from them (a column read back, [`spill`]): `hash` hashes a code's value, `eq`
    /// compares two codes' values. `None` when two values are equal.
    fn of_values(
        rows: Vec<u32>,
        distinct: usize,
        hash: impl Fn(&InternHasher, u32) -> u64,
        eq: impl Fn(u32, u32) -> bool,
    ) -> Option<Codes> {
        let mut codes = Codes { rows: codes::CodeRows::of(&rows), ..Codes::default() };
        let Codes { table, hasher, .. } = &mut codes;
        for c in (0u32..).take(distinct) {
            let h = hash(hasher, c);
            if table.find(h, |&d| eq(d, c)).is_some() {
                return None;
            }
            table.insert_unique(h, c, |&d| hash(hasher, d));
        }
        Some(codes)
    }
}

/// A text column whose values repeat — given and family names, their sound codes, tags: each
/// row holds a code into one list of the distinct values, in one, two or four bytes as their
/// number needs. At the national scale (52 M records) the four name columns took 96 bytes a
/// record as plain text columns, 16 as 4-byte codes.
/// Written here rather than taken from polars: its categorical type lives in frames, and the link
/// kernels read a row's text (and compare codes) by record index.
///
/// ```
/// use tpmap::link::records::InternedColumn;
/// let mut c = InternedColumn::default();
/// for s in ["สมชาย", "สมหญิง", "สมชาย"] {
///     c.push(s);
/// }
/// assert_eq!((c.len(), c.distinct()), (3, 2));
/// assert_eq!(c.get(2), "สมชาย");
/// assert_eq!(c.code(0), c.code(2));
/// ```
#[derive(Clone, Default)]
pub struct InternedColumn {
    codes: Codes,
    values: StrColumn,
}

impl std::fmt::Debug for InternedColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternedColumn").field("len", &self.len()).field("distinct", &self.distinct()).finish()
    }
}

impl InternedColumn {
    /// Bytes held on the heap: each row's code, the table and the distinct values.
    pub fn heap_bytes(&self) -> u64 {
        self.codes.heap_bytes().saturating_add(self.values.heap_bytes())
    }

    /// Gives back the room made for rows and values not written.
    pub fn shrink_to_fit(&mut self) {
        self.codes.shrink_to_fit();
        self.values.shrink_to_fit();
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.codes.rows.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.codes.rows.is_empty()
    }

    /// Number of distinct values.
    pub fn distinct(&self) -> usize {
        self.values.len()
    }

    /// Row `i`'s text.
    pub fn get(&self, i: usize) -> &str {
        self.values.get(self.codes.rows.get(i) as usize)
    }

    /// Row `i`'s code: equal codes, equal text.
    pub fn code(&self, i: usize) -> u32 {
        self.codes.rows.get(i)
    }

    /// Every row's code, in order.
    pub fn codes(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.codes.rows.iter()
    }

    /// The text of a code.
    pub fn value(&self, code: u32) -> &str {
        self.values.get(code as usize)
    }

    /// The distinct values, in code order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.values.iter()
    }

    /// Every row's text, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.codes.rows.iter().map(|c| self.values.get(c as usize))
    }

    /// Makes room for the codes of `rows` more rows, exactly (the distinct values grow as
    /// they come).
    pub fn reserve(&mut self, rows: usize) {
        self.codes.rows.reserve_exact(rows);
    }

    /// Takes every row's code out, leaving the distinct values and their table (the codes go
    /// to a spill, [`crate::panel::PersonText`]).
    pub(crate) fn take_codes(&mut self) -> codes::CodeRows {
        std::mem::take(&mut self.codes.rows)
    }

    /// The same distinct values without any row.
    pub(crate) fn without_rows(&self) -> InternedColumn {
        InternedColumn {
            codes: Codes {
                rows: codes::CodeRows::default(),
                table: self.codes.table.clone(),
                hasher: self.codes.hasher,
            },
            values: self.values.clone(),
        }
    }

    /// Appends a row of an existing code; false (nothing appended) when `code` is none of the
    /// values'.
    pub(crate) fn push_code(&mut self, code: u32) -> bool {
        let known = (code as usize) < self.values.len();
        if known {
            self.codes.rows.push(code);
        }
        known
    }

    /// Appends a row.
    pub fn push(&mut self, s: &str) {
        let h = self.codes.hasher.hash_one(s);
        self.push_hashed(s, h);
    }

    /// Appends a row whose text's hash (by this column's hasher) is `h`.
    fn push_hashed(&mut self, s: &str, h: u64) {
        let values = &self.values;
        if self.codes.push(
            h,
            values.len(),
            |c| values.get(c as usize) == s,
            |hs, c| hs.hash_one(values.get(c as usize)),
        ) {
            self.values.push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of `n` records: names, titles, areas and houses that repeat, IDs valid, missing
    /// or failing their check digit, partial birth dates, flags and tags.
    pub(super) fn texts(n: usize) -> Vec<[String; 11]> {
        let first = ["สมชาย", "สมหญิง", "นาย มานะ", "วิไล", "ปิติ"];
        let last = ["ใจดี", "รักไทย", "ศรีสุข"];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % m).unwrap()
        };
        (0..n)
            .map(|i| {
                let mut d = [0u8; 12];
                d.iter_mut().for_each(|x| *x = next(10) as u8);
                d[0] = 1 + next(8) as u8;
                let id = crate::ids::CitizenId::with_check_digit(&d).expose();
                let id = match next(4) {
                    0 => String::new(),
                    // The last digit changed: fails its check, kept as raw digits.
                    1 => format!("{}{}", &id[..12], (id.as_bytes()[12] - b'0' + 1) % 10),
                    _ => id,
                };
                [
                    format!("k{i}"),
                    id,
                    ["", "นาย", "นาง"][next(3)].into(),
                    first[next(first.len() as u64)].into(),
                    last[next(last.len() as u64)].into(),
                    ["15/03/2530", "2530", "", "1987-03-15"][next(4)].into(),
                    ["m", "f", ""][next(3)].into(),
                    ["10010101", "10010102", "1001", ""][next(4)].into(),
                    ["12/3", "4", ""][next(3)].into(),
                    ["1", "0", ""][next(3)].into(),
                    ["", "a", "b"][next(3)].into(),
                ]
            })
            .collect()
    }

    pub(super) fn pushed(texts: &[&[String; 11]]) -> Records {
        let raw: Vec<RawRecord<'_>> = texts
            .iter()
            .map(|t| RawRecord {
                key: t[0].clone(),
                citizen_id: &t[1],
                title: &t[2],
                first: &t[3],
                last: &t[4],
                birth: &t[5],
                sex: &t[6],
                area: &t[7],
                house: &t[8],
                flag: &t[9],
                tag: &t[10],
            })
            .collect();
        let mut r = Records::default();
        r.push_source("survey", &raw);
        r
    }

    /// Every column, interned codes included.
    pub(super) fn columns(r: &Records) -> String {
        let interned =
            |c: &InternedColumn| format!("{:?} {:?}", c.codes().collect::<Vec<_>>(), c.values().collect::<Vec<_>>());
        let values = |c: &Codes| format!("{:?}", c.rows.iter().collect::<Vec<_>>());
        format!(
            "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{}\n{}\n{}\n{}\n{}\n{}\n{:?}\n{:?}\n{} {:?}\n{} {:?}\n{:?}",
            r.sources,
            r.source,
            r.key.iter().collect::<Vec<_>>(),
            r.citizen_id,
            r.raw_id.rows,
            interned(&r.title),
            interned(&r.first),
            interned(&r.last),
            interned(&r.first_lk),
            interned(&r.last_lk),
            interned(&r.tag),
            r.birth,
            r.sex,
            values(&r.area.codes),
            r.area.values,
            values(&r.house.codes),
            r.house.values,
            r.flag,
        )
    }

    /// The names of records pushed together (each worker's cache of names normalised, emptied
    /// when full) are each record's names normalised alone: `normalize::name` and LK82 codes,
    /// for titles in either field or none, glued titles, marks written in any order, spaces, a
    /// family name left in the given-name field, names repeated and names each new.
    #[test]
    fn names_normalised_together_are_each_normalised_alone() {
        let titles = ["", "นาย", "น.ส.", " นาง ", "Mr."];
        let firsts = ["สมชาย", "นายสมชาย", "ด.ช.มานะ", "สม ชาย", "มานะ ใจดี", "ก้่", "ก่้", "  วิไล", ""];
        let lasts = ["ใจดี", "", "  รักไทย ", "ศรี สุข", "น้ำ่"];
        let mut texts: Vec<[String; 11]> = Vec::new();
        for (i, ((t, f), l)) in
            titles.iter().cycle().zip(firsts.iter().cycle()).zip(lasts.iter().cycle()).take(400).enumerate()
        {
            texts.push([
                format!("k{i}"),
                String::new(),
                t.to_string(),
                f.to_string(),
                l.to_string(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        // Long distinct names, more bytes than a worker's cache keeps.
        for i in 0..48 {
            let mut t = texts[i].clone();
            t[3] = format!("{}{i}", "สมชาย".repeat(25_000));
            texts.push(t);
        }
        // More distinct names than a worker's cache holds, then the first ones again.
        let fresh = NameCache::MAX + 100;
        for i in 0..fresh + 300 {
            let n = i % fresh;
            let mut t = texts[i % 400].clone();
            t[3] = format!("สม{n}");
            t[4] = if n.is_multiple_of(3) { String::new() } else { format!("ใจ{}", n / 2) };
            texts.push(t);
        }
        let all: Vec<&[String; 11]> = texts.iter().collect();
        let r = pushed(&all);
        assert_eq!(r.len(), texts.len());
        for (i, t) in texts.iter().enumerate() {
            let name = normalize::name(&t[2], &t[3], &t[4]);
            assert_eq!(r.first.get(i), name.first, "record {i}");
            assert_eq!(r.last.get(i), name.last, "record {i}");
            assert_eq!(r.title.get(i), name.title.unwrap_or(""), "record {i}");
            assert_eq!(r.first_lk.get(i), phonetic::lk82(&name.first), "record {i}");
            assert_eq!(r.last_lk.get(i), phonetic::lk82(&name.last), "record {i}");
        }
        // Equal names intern to one code, as without the caches.
        let again = pushed(&all);
        assert_eq!(columns(&again), columns(&r));
        assert!(r.first.distinct() > NameCache::MAX && r.first.distinct() < texts.len());
    }

    /// An extract's persons made into records from their typed values are the records their
    /// text gives (`ExtractText`, what an engine linking an extract in parts reads), every
    /// column and interned code: with and without IDs, with full, partial and no birth dates,
    /// with glued titles, names with spaces and family names missing.
    #[test]
    fn extract_persons_are_the_records_their_text_gives() {
        use crate::synth::{SynthOptions, Synthesizer};
        let syn = Synthesizer::new(SynthOptions { households: 2_000, seed: 5, ..Default::default() }).unwrap();
        let chunk = syn.generate();
        let mut x = Extract::new(syn.edition().clone(), chunk.households, chunk.persons);
        let n = x.persons.len();
        let p = &mut x.persons;
        let (mut first, mut last) = (StrColumn::with_capacity(n, 16), StrColumn::with_capacity(n, 16));
        for i in 0..n {
            match i % 7 {
                0 => p.citizen_id[i] = None,
                1 => p.birth_date[i] = p.birth_date[i].map(|d| PartialDate { day: 0, ..d }),
                2 => p.birth_date[i] = p.birth_date[i].map(|d| PartialDate { month: 0, day: 0, ..d }),
                3 => p.birth_date[i] = None,
                _ => {}
            }
            let (f, l) = (p.first_name.get(i).to_string(), p.last_name.get(i).to_string());
            match i % 5 {
                0 => (first.push(&format!("นาย{f}")), last.push(&l)),
                1 => (first.push(&format!("{f} {l}")), last.push("")),
                2 => (first.push(&f), last.push("")),
                _ => (first.push(&f), last.push(&l)),
            };
        }
        (p.first_name, p.last_name) = (first, last);
        assert!(n > 4_000);
        let mut typed = Records::default();
        typed.push_extract("survey", &x);
        let text = ExtractText::of(&x, 0..n);
        let mut by_text = Records::default();
        by_text.push_source("survey", &text.raw(&x, 0..n));
        assert_eq!(columns(&typed), columns(&by_text));
        assert!(typed.citizen_id.iter().filter(|c| c.is_some()).count() > n / 2);
        assert!(typed.birth.iter().any(|d| d.is_some_and(|d| d.day == 0)));
    }

    /// An interned column's rows take one byte each while it has at most 256 values, two while
    /// at most 65,536, four beyond; values read back whatever the width.
    #[test]
    fn interned_codes_take_the_width_their_values_need() {
        let mut c = InternedColumn::default();
        let titles = ["นาย", "นาง", "นางสาว"];
        (0..1000).for_each(|i| c.push(titles[i % 3]));
        assert!(matches!(c.codes.rows, codes::CodeRows::U8(_)));
        assert!(c.codes.rows.heap_bytes() < 2000, "{}", c.codes.rows.heap_bytes());
        (0..70_000).for_each(|i| c.push(&i.to_string()));
        assert!(matches!(c.codes.rows, codes::CodeRows::U32(_)));
        assert_eq!((c.get(998), c.get(999), c.get(1000), c.get(70_999)), ("นางสาว", "นาย", "0", "69999"));
        let mut v = InternedValues::default();
        (0..300u32).for_each(|i| v.push(Some(i)));
        assert!(matches!(v.codes.rows, codes::CodeRows::U16(_)));
        assert_eq!(v.iter().collect::<Vec<_>>(), (0..300).map(Some).collect::<Vec<_>>());
    }

    /// Taking records in an order gives what pushing them in that order gives, to the interned
    /// codes: a partitioned run's records put in the whole extract's order are the whole run's.
    #[test]
    fn take_is_pushing_in_that_order() {
        let t = texts(3000);
        let all: Vec<&[String; 11]> = t.iter().collect();
        let records = pushed(&all);
        assert!(records.raw_id.len() > 100 && records.first.distinct() >= 4);
        // Reversed, then interleaved from both ends.
        let n = u32::try_from(t.len()).unwrap();
        let reversed: Vec<u32> = (0..n).rev().collect();
        let woven: Vec<u32> = (0..n / 2).flat_map(|i| [n - 1 - i, i]).collect();
        for order in [reversed, woven] {
            let again: Vec<&[String; 11]> = order.iter().map(|&i| &t[i as usize]).collect();
            let taken = records.take(&order);
            assert_eq!(columns(&taken), columns(&pushed(&again)));
            assert_ne!(columns(&taken), columns(&records));
            // Records pushed after still intern into the same codes.
            let mut a = taken;
            let mut b = pushed(&again);
            for r in [&mut a, &mut b] {
                r.push_source(
                    "registry",
                    &[RawRecord { key: "x".into(), first: "ปิติ", last: "ใหม่", ..Default::default() }],
                );
            }
            assert_eq!(columns(&a), columns(&b));
        }
    }
}
