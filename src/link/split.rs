//! `tpmap link` of two files in parts: the first file's records read once and routed by
//! province into pieces in a temporary file, then linked with the second file's records a part
//! (a group of whole provinces) at a time ([`super::parts`], which reads the parts twice) — the
//! same five files as the whole job ([`super::run_and_write`]), holding the second file's
//! records and keys whole but only one part of the first's. What `tpmap link --max-memory`
//! does when the whole job would pass its budget, and what `tpmap link --split` asks for
//! (issue 15, item 3).
//!
//! Put the larger file first: it is the one held a part at a time. The records are numbered
//! as the whole job numbers them (the first file's, then the second's), so every pair, score,
//! entity and tie is the whole job's.
//!
//! ```no_run
//! use tpmap::link::{LinkOptions, split};
//! let report = split::link_files(
//!     "link-out".as_ref(),
//!     ("survey.csv".as_ref(), "welfare.csv".as_ref()),
//!     &LinkOptions { max_memory: Some(3 << 30), ..LinkOptions::default() },
//!     20,
//!     std::time::Instant::now(),
//! )?;
//! println!("{} matches in {} parts", report.matches, report.parts.unwrap_or(0));
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use super::budget::{self, Budget};
use super::output::{self, LinkReport, RecordKeys};
use super::parts::{self, Counting, PersonParts};
use super::records::{KeyColumn, MAX_RECORDS, RecordSpill, Records};
use super::{LinkOptions, Task, model};
use crate::limits::format_bytes;
use crate::memory::vec_bytes;
use crate::{Error, Result};

/// Bytes a part is estimated to hold per person of the first file while it is compared, beyond
/// [`PART_BYTES_PER_SECOND_RECORD`]: its persons' link records (about 60 bytes), the second
/// file's records of its provinces beside them, its candidate pairs (about two a person
/// nationally) numbered three ways with their patterns and what is spilled of them, and
/// blocking's keys of its provincial rules. On the SYNTHETIC national link benchmark a part's peak rose 0.92 GB above
/// what was held across the parts with parts of at most 2.1 M persons, 1.15 GB with 3.06 M:
/// about 240 bytes a person and 0.42 GB besides, 27 bytes a record of the second file
/// (docs/linkage.md, "In parts"); these leave room.
pub const BYTES_PER_PART_PERSON: u64 = 320;

/// Bytes a part is estimated to hold per record of the second file, whatever the part's size
/// (see [`BYTES_PER_PART_PERSON`]): the second file's records its nationwide pairs need, the
/// lists of the second file's records it takes, the allocator's slack between parts.
pub const PART_BYTES_PER_SECOND_RECORD: u64 = 32;

/// Persons in a part when no budget decides it (or the largest province's, when larger).
pub const DEFAULT_PART_PERSONS: usize = 1 << 21;

/// Bytes the whole job is estimated to hold per byte of its two files, to decide under a budget
/// whether it is split: the national link benchmark's whole job peaked at 4.1 GB for 6.3 GB of
/// files (0.65); 0.75 leaves room for files of shorter lines.
pub const WHOLE_JOB_BYTES_PER_FILE_BYTE: f64 = 0.75;

/// Bytes of the second file per byte its records and keys take at the least, to refuse a budget
/// before any reading: the national welfare registry's took 1.1 bytes a byte of its file; a file
/// with as many unused columns as used ones would take half that. The exact sum is checked once
/// they are keyed.
const SECOND_FILE_BYTES_PER_LEAST_BYTE: u64 = 2;

/// Records routed (buffered a province at a time) before the buffers are written out as
/// pieces: fewer, larger pieces read faster; about 100 bytes a record buffered.
const FLUSH_RECORDS: usize = 1 << 21;

/// Bytes a routed record takes buffered, to fit the buffers in a small budget.
const BYTES_PER_ROUTED_RECORD: u64 = 128;

/// Records of the second file in a piece of its temporary copy, read back for the few pairs
/// explained.
const REGISTRY_PIECE: usize = 1 << 20;

/// Whether the whole job over files of `file_bytes` bytes together is estimated to hold more
/// than `budget`: [`WHOLE_JOB_BYTES_PER_FILE_BYTE`] a byte, and the program
/// ([`budget::PROGRAM_BYTES`], as every budget's sum counts it).
pub fn whole_job_exceeds(file_bytes: u64, budget: u64) -> bool {
    budget::PROGRAM_BYTES as f64 + file_bytes as f64 * WHOLE_JOB_BYTES_PER_FILE_BYTE > budget as f64
}

/// The first file's records, routed by province into pieces of a temporary file, and the
/// parts they are read in: [`PersonParts`] for [`Counting`].
pub struct FileParts {
    source: String,
    spill: RecordSpill,
    /// Each piece's province and its records' indices among all the file's records.
    pieces: Vec<(u16, Vec<u32>)>,
    /// The pieces of each part, in order.
    parts: Vec<Vec<usize>>,
}

/// What routing the first file gives besides its pieces: every record's key (in file order),
/// its unreadable records, and its records' count.
pub struct Routed {
    /// The pieces, not yet grouped into parts ([`FileParts::group`]).
    pub parts: FileParts,
    /// Each record's key, in file order.
    pub keys: KeyColumn,
    /// Records that could not be read.
    pub unreadable: usize,
    /// Records routed.
    pub records: usize,
}

impl FileParts {
    /// Reads `path` (as [`Records::push_csv`] reads it) once, routing its records by province
    /// (the first two digits of their area; records without one are a group of their own) into
    /// per-province buffers written out as pieces once `flush_at` records are buffered.
    pub fn route(path: &Path, flush_at: usize) -> Result<Routed> {
        let mut r = Records::default();
        let mut spill = RecordSpill::new()?;
        let mut buffers: BTreeMap<u16, (Records, Vec<u32>)> = BTreeMap::new();
        let (mut keys, mut n, mut buffered) = (KeyColumn::default(), 0usize, 0usize);
        let mut pieces: Vec<(u16, Vec<u32>)> = Vec::new();
        fn flush(
            buffers: &mut BTreeMap<u16, (Records, Vec<u32>)>,
            spill: &mut RecordSpill,
            pieces: &mut Vec<(u16, Vec<u32>)>,
        ) -> Result<()> {
            for (p, (records, global)) in std::mem::take(buffers) {
                spill.push(&records)?;
                pieces.push((p, global));
            }
            Ok(())
        }
        let file = path.display().to_string();
        r.push_csv_with(path, &mut |chunk| {
            let len = chunk.len();
            if n.saturating_add(len) > MAX_RECORDS {
                let message = format!("more than {MAX_RECORDS} records: a link job numbers them in 32 bits");
                return Err(Error::Format { file: file.clone(), message });
            }
            let mut by: BTreeMap<u16, Vec<u32>> = BTreeMap::new();
            for i in 0..len {
                by.entry(parts::province(chunk, i)).or_default().push(i as u32);
                keys.push(&chunk.key.get(i));
            }
            for (p, order) in by {
                let (records, global) = buffers
                    .entry(p)
                    .or_insert_with(|| (Records { sources: chunk.sources.clone(), ..Default::default() }, Vec::new()));
                records.append_from(chunk, &order);
                // Below MAX_RECORDS (checked above): fits a u32.
                global.extend(order.iter().map(|&k| (n + k as usize) as u32));
            }
            n += len;
            buffered += len;
            *chunk = Records { sources: std::mem::take(&mut chunk.sources), ..Default::default() };
            if buffered >= flush_at {
                flush(&mut buffers, &mut spill, &mut pieces)?;
                buffered = 0;
            }
            Ok(())
        })?;
        flush(&mut buffers, &mut spill, &mut pieces)?;
        let source = r.sources.first().cloned().unwrap_or_default();
        let parts = FileParts { source, spill, pieces, parts: Vec::new() };
        Ok(Routed { parts, keys, unreadable: r.unreadable.len(), records: n })
    }

    /// Records of each province (or group without one), in province order.
    pub fn provinces(&self) -> BTreeMap<u16, usize> {
        let mut sizes = BTreeMap::new();
        for (p, global) in &self.pieces {
            *sizes.entry(*p).or_insert(0usize) += global.len();
        }
        sizes
    }

    /// Groups the provinces into parts of at most `max_part` records, in province order (a
    /// part ends where the next province would take it past `max_part`); returns the number of
    /// parts. A province of more records than `max_part` is refused.
    pub fn group(&mut self, max_part: usize) -> Result<usize> {
        let mut part_of: BTreeMap<u16, usize> = BTreeMap::new();
        let (mut parts, mut size) = (0usize, 0usize);
        for (p, n) in self.provinces() {
            if n > max_part {
                let what =
                    if p == parts::NO_PROVINCE { "records without an area".to_string() } else { province_name(p) };
                return Err(Error::Config(format!(
                    "{} holds {n} records of {}, more than a part of {max_part} records",
                    what, self.source
                )));
            }
            if parts == 0 || size + n > max_part {
                (parts, size) = (parts + 1, 0);
            }
            size += n;
            part_of.insert(p, parts - 1);
        }
        self.parts = vec![Vec::new(); parts];
        for (k, (p, _)) in self.pieces.iter().enumerate() {
            if let Some(&i) = part_of.get(p) {
                self.parts[i].push(k);
            }
        }
        Ok(parts)
    }

    /// Bytes held across the parts: every piece's record indices.
    pub fn heap_bytes(&self) -> u64 {
        let global = self.pieces.iter().map(|(_, g)| vec_bytes(g)).fold(0, u64::saturating_add);
        budget::sum([global, vec_bytes(&self.pieces), self.parts.iter().map(vec_bytes).fold(0, u64::saturating_add)])
    }

    /// The records (and their indices) of the pieces `which`, appended in that order.
    fn read_pieces(&mut self, which: &[usize]) -> Result<(Records, Vec<u32>)> {
        let mut piece = |k: usize| -> Result<(Records, &[u32])> {
            let Some((_, global)) = self.pieces.get(k) else {
                return Err(Error::Config("internal: a piece of the first file's records is missing".into()));
            };
            // The temporary file's own error (it names the file) if it cannot be read back.
            let records = self.spill.read(k)?;
            if records.len() != global.len() {
                return Err(Error::Config("internal: a piece of the first file's records read back short".into()));
            }
            Ok((records, global))
        };
        if let [one] = which {
            let (records, global) = piece(*one)?;
            return Ok((records, global.to_vec()));
        }
        let mut out = Records { sources: vec![self.source.clone()], ..Default::default() };
        let mut all = Vec::new();
        for &k in which {
            let (records, global) = piece(k)?;
            // A piece holds at most MAX_RECORDS records (checked as they were routed).
            let order: Vec<u32> = (0..records.len() as u32).collect();
            out.append_from(&records, &order);
            all.extend_from_slice(global);
        }
        Ok((out, all))
    }
}

impl PersonParts for FileParts {
    fn parts(&self) -> usize {
        self.parts.len()
    }

    fn read(&mut self, i: usize) -> Result<(Records, Vec<u32>)> {
        let which = self.parts.get(i).cloned().ok_or_else(|| Error::Config("internal: no such part".into()))?;
        self.read_pieces(&which)
    }
}

/// A province's name in messages: its two-digit code.
fn province_name(p: u16) -> String {
    let [a, b] = p.to_le_bytes();
    format!("province {}{}", char::from(a), char::from(b))
}

/// Links the records of `first` (read once, routed into parts) with those of `second` (held
/// whole) and writes the job's five files into `dir`, as [`super::run_and_write`] writes them
/// for the two files' records: the same pairs, entities, model, explanations and report (its
/// seconds apart). `o` must be a link task, with the default blocking rules or a model
/// ([`Counting::new`]); within `o.max_memory` the parts are as large as the budget leaves room
/// for beside the second file's records and keys, and a job that cannot fit fails before it
/// compares anything, naming what needs the memory. Returns the report written.
pub fn link_files(
    dir: &Path,
    (first, second): (&Path, &Path),
    o: &LinkOptions,
    explain: usize,
    started: Instant,
) -> Result<LinkReport> {
    if o.task != Task::Link {
        return Err(Error::Config("a link job in parts is a link task between two files (--task link)".into()));
    }
    o.validate()?;
    let mut lap = crate::diagnostics::Lap::start();
    let limit = o.max_memory;
    // Refused before any reading when the second file alone, at the least its records and keys
    // take a byte of it, passes the budget; the exact check comes once it is keyed.
    if let Some(m) = limit {
        let io = |e| Error::io(second, e);
        let least = std::fs::metadata(second).map_err(io)?.len() / SECOND_FILE_BYTES_PER_LEAST_BYTE;
        if budget::sum([budget::PROGRAM_BYTES, least]) > m {
            return Err(Error::Config(format!(
                "--max-memory {} is below what a link in parts holds of {}: at least {} (its records and keys, \
                 held whole, and the program); give more memory, or put the larger file first",
                format_bytes(m),
                second.display(),
                format_bytes(budget::sum([budget::PROGRAM_BYTES, least])),
            )));
        }
    }
    // Routing holds its buffers, the keys and the pieces' indices (a small share of the budget).
    let flush_at = match limit {
        Some(m) => usize::try_from(m / 8 / BYTES_PER_ROUTED_RECORD).unwrap_or(usize::MAX).clamp(1 << 14, FLUSH_RECORDS),
        None => FLUSH_RECORDS,
    };
    let Routed { parts: mut file_parts, mut keys, unreadable: first_unreadable, records: n } =
        FileParts::route(first, flush_at)?;
    lap.lap(&format!("link in parts: {n} records of the first file routed"));
    let mut reg = Records::default();
    reg.push_csv(second)?;
    reg.shrink_to_fit();
    let read_seconds = started.elapsed().as_secs_f64();
    let r = reg.len();
    let total = n
        .checked_add(r)
        .filter(|&t| t <= MAX_RECORDS)
        .ok_or_else(|| Error::Config(format!("a link job takes at most {MAX_RECORDS} records")))?;
    let sources = vec![file_parts.source.clone(), reg.sources.first().cloned().unwrap_or_default()];
    let unreadable: Vec<(String, usize)> = [first_unreadable, reg.unreadable.len()]
        .into_iter()
        .zip(&sources)
        .filter(|(k, _)| *k > 0)
        .map(|(k, s)| (s.clone(), k))
        .collect();
    // The second file's records kept on disk in pieces, for the pairs explained.
    let mut reg_spill = RecordSpill::new()?;
    if explain > 0 {
        for start in (0..r).step_by(REGISTRY_PIECE) {
            let end = (start + REGISTRY_PIECE).min(r);
            let mut piece = Records { sources: reg.sources.clone(), ..Default::default() };
            // Below MAX_RECORDS (checked above): fits a u32.
            piece.append_from(&reg, &(start as u32..end as u32).collect::<Vec<u32>>());
            reg_spill.push(&piece)?;
        }
    }
    for j in 0..r {
        keys.push(&reg.key.get(j));
    }
    lap.lap("link in parts: the second file read");
    let mut counting = Counting::new(reg, o)?;
    // Held across the parts: the program (as every budget's sum counts it), the second file's
    // records and keys, every key, the pieces' indices, each person's citizen ID as counted.
    let held = budget::sum([
        budget::PROGRAM_BYTES,
        counting.registry_bytes(),
        keys.heap_bytes(),
        file_parts.heap_bytes(),
        budget::times(n, 8),
    ]);
    let part_least = budget::times(r, PART_BYTES_PER_SECOND_RECORD);
    let largest = file_parts.provinces().into_values().max().unwrap_or(0);
    let max_part = part_persons(limit, (held, part_least), (largest, first))?;
    let count = file_parts.group(max_part)?;
    lap.lap(&format!("link in parts: {count} parts of at most {max_part} records (the largest province {largest})"));
    counting.reserve(n);
    // The kept pairs and the clustering get what the budget leaves beside the keys, the
    // records' sources and the program.
    let keys_held = budget::sum([keys.heap_bytes(), file_parts.heap_bytes(), budget::times(total, 2)]);
    counting.limit_kept(limit.map(|m| m.saturating_sub(budget::sum([budget::PROGRAM_BYTES, keys_held]))));
    for i in 0..file_parts.parts() {
        counting.count(&file_parts.read(i)?.0)?;
    }
    if counting.persons() != n {
        return Err(Error::Config("internal: the parts hold another number of records than routed".into()));
    }
    lap.lap("link in parts: counted");
    let mut l = counting.linked(&mut file_parts)?;
    lap.lap("link in parts: linked");
    let mut source = vec![0u16; n];
    source.resize(total, 1);
    let record_keys = RecordKeys { sources: &sources, source: &source, key: &keys };
    let within = Budget::of(o, total);
    // (The budget's own sum adds the program.)
    within.check_entity_ids(total, || budget::sum([keys_held, l.heap_bytes()]))?;
    l.entity_id = model::entity_ids_by(&l.entity, |i| record_keys.source_of(i), |i| keys.get(i));
    lap.lap("link in parts: entity ids");
    let near = output::nearest(&l.scored, o.threshold, explain);
    let ex = {
        let (records, at) = gather(&near, n, (&mut file_parts, &mut reg_spill), &sources)?;
        // Every record named is in `at` (checked by `gather`).
        output::explanations_of(&near, record_keys, &l, (&records, |i| at.get(&i).copied().unwrap_or_default()))
    };
    drop((file_parts, reg_spill));
    let mut report = LinkReport::with(total, sources.clone(), unreadable, &l, o.threshold, (read_seconds, started));
    report.parts = Some(count);
    output::write_files(dir, record_keys, &l, &report, &ex)?;
    lap.lap("outputs written");
    Ok(report)
}

/// Persons a part may take: as many as `limit` leaves room for beside what is `held` across the
/// parts and a part's least share ([`BYTES_PER_PART_PERSON`] each); without a budget
/// [`DEFAULT_PART_PERSONS`], or the `largest` province's persons when more. A budget that leaves
/// no room, or less than the largest province of `first` needs, is refused, naming what it
/// would take.
fn part_persons(limit: Option<u64>, (held, part_least): (u64, u64), (largest, first): (usize, &Path)) -> Result<usize> {
    let Some(m) = limit else { return Ok(DEFAULT_PART_PERSONS.max(largest)) };
    let fixed = budget::sum([held, part_least]);
    let room = m.checked_sub(fixed).filter(|&room| room >= BYTES_PER_PART_PERSON).ok_or_else(|| {
        Error::Config(format!(
            "--max-memory {} is below what a link in parts holds across its parts: about {} (the program, the \
             second file's records and keys, every record's key, the first file's citizen IDs and a part's least \
             share); give more memory, or put the larger file first",
            format_bytes(m),
            format_bytes(fixed),
        ))
    })?;
    let max_part = usize::try_from(room / BYTES_PER_PART_PERSON).unwrap_or(usize::MAX);
    if largest > max_part {
        return Err(Error::Config(format!(
            "--max-memory {} is below what a link in parts needs for the largest province of {} ({largest} \
             records): about {}; give at least that",
            format_bytes(m),
            first.display(),
            format_bytes(budget::sum([fixed, budget::times(largest, BYTES_PER_PART_PERSON)])),
        )));
    }
    Ok(max_part)
}

/// The records the pairs `near` name, gathered from the first file's pieces and the second
/// file's copy on disk into one set of records (the first file's source, then the second's),
/// and where each of the job's records named is among them.
fn gather(
    near: &[&model::Scored],
    n: usize,
    (file_parts, reg_spill): (&mut FileParts, &mut RecordSpill),
    sources: &[String],
) -> Result<(Records, std::collections::HashMap<u32, usize>)> {
    use std::collections::{BTreeSet, HashMap};
    let named: BTreeSet<u32> = near.iter().flat_map(|s| [s.a, s.b]).collect();
    let mut out = Records { sources: vec![sources[0].clone()], ..Default::default() };
    let mut at: HashMap<u32, usize> = HashMap::new();
    let persons: BTreeSet<u32> = named.iter().copied().filter(|&g| (g as usize) < n).collect();
    for k in 0..file_parts.pieces.len() {
        // A piece's indices rise (its records were routed in file order): each person named is
        // searched for in it, not every index of the file looked up among the named.
        let global = &file_parts.pieces[k].1;
        // Positions in a piece of at most MAX_RECORDS records (checked as they were routed), so
        // each fits a u32; one that did not would be an error, not a record left out.
        let order = persons
            .iter()
            .filter_map(|g| global.binary_search(g).ok())
            .map(|i| {
                u32::try_from(i).map_err(|_| Error::Config(format!("a part holds more than {MAX_RECORDS} records")))
            })
            .collect::<Result<Vec<u32>>>()?;
        if order.is_empty() {
            continue;
        }
        let (piece, global) = file_parts.read_pieces(&[k])?;
        for &i in &order {
            at.insert(global[i as usize], out.len());
            out.append_from(&piece, &[i]);
        }
    }
    let src = out.add_source(&sources[1]);
    let mut by_piece: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    for g in named.iter().copied().filter(|&g| (g as usize) >= n) {
        let j = g as usize - n;
        by_piece.entry(j / REGISTRY_PIECE).or_default().push(g);
    }
    for (k, gs) in by_piece {
        let piece = reg_spill.read(k)?;
        for g in gs {
            let i = (g as usize - n) % REGISTRY_PIECE;
            if i >= piece.len() {
                return Err(Error::Config("internal: a piece of the second file's records read back short".into()));
            }
            at.insert(g, out.len());
            out.append_from(&piece, &[i as u32]);
            if let Some(last) = out.source.last_mut() {
                *last = src;
            }
        }
    }
    if named.iter().any(|g| !at.contains_key(g)) {
        return Err(Error::Config("internal: a pair explained names a record in no piece".into()));
    }
    Ok((out, at))
}
