//! Province partitions of an extract: which province each input row belongs to, and waves of
//! provinces that fit a memory budget, so a national extract can be read, validated and scored a
//! few provinces at a time (`tpmap run --partition province`, docs/partitioned.md).
//!
//! The routing reads only the household key and village columns (households) and the household
//! key (persons), so it costs a fraction of a full read. A household row goes to the province of
//! its village code; a row repeating an earlier household key goes where the first one went (so
//! the duplicate check of its wave sees both, in row order, and keeps the same one as a
//! whole-country run); a person row goes where its household key went. Rows that name no
//! readable village or household go to bucket 0, read in the first wave: they can only be
//! rejected, with the same reasons as in a whole-country run.

use std::path::Path;

use rayon::prelude::*;

use super::columns::{self, HouseholdField as HF, PersonField as PF};
use super::duplicates::ShardedTable;
use super::source::{self, Cell, Layout, Table};
use super::{IngestOptions, TableInput};
use crate::areas::AreaCode;
use crate::error::{Error, Result};

/// Bucket of the rows that name no readable village or household key.
pub const UNPLACED: u8 = 0;

/// Memory a wave needs per person row and per household row read (bytes): the accepted
/// extract, its frames while written, scores and the ID sets. Measured on the synthetic 1 M
/// household set (`TPMAP_TRACE=1 tpmap ingest`, peak 1.43 GB for 2.83 M person and 1 M
/// household rows, docs/partitioned.md), rounded up.
pub const BYTES_PER_PERSON_ROW: u64 = 420;
/// See [`BYTES_PER_PERSON_ROW`].
pub const BYTES_PER_HOUSEHOLD_ROW: u64 = 260;
/// Memory held across waves per person row (the accepted citizen IDs, the row buckets) and
/// fixed (the program, the area registry, the merged results), in bytes.
pub const BYTES_ACROSS_WAVES_PER_PERSON_ROW: u64 = 24;
/// See [`BYTES_ACROSS_WAVES_PER_PERSON_ROW`].
pub const BYTES_FIXED: u64 = 256 << 20;
/// Memory the merged results hold per village across the scoring pass's waves (each village's
/// partial measures, its key at every level and its rows of TPMAP's two tables), and
/// [`BYTES_MERGING_PER_VILLAGE`] while they are merged after the last wave (measures merged,
/// framed and written), in bytes; 24 and 48 more per bootstrap replicate. Measured on a
/// SYNTHETIC set of 200,000 households in 81,928 villages (`tpmap synth --households 200000
/// --seed 11`, `TPMAP_TRACE=1 tpmap run D --partition province`): RSS grew 0.39 GB over the
/// waves and 0.34 GB more in the merge, up to 0.83 GB — about what a 2 M-household set in
/// 83,996 villages took (0.81 GB), so villages, not persons, decide it; rounded up. The first
/// [`VILLAGES_IN_FIXED`] villages' are within [`BYTES_FIXED`].
pub const BYTES_MERGED_PER_VILLAGE: u64 = 5 << 10;
/// See [`BYTES_MERGED_PER_VILLAGE`].
pub const BYTES_MERGING_PER_VILLAGE: u64 = 10 << 10;
/// Villages whose merged results (without bootstrap replicates) [`BYTES_FIXED`] holds: it was
/// set for the program, the area registry and the merged results; the program and the area
/// registry took about 80-100 MB at the routing's end in the runs that measured
/// [`BYTES_MERGED_PER_VILLAGE`], which leaves 160 MiB, 16,384 villages at
/// [`BYTES_MERGING_PER_VILLAGE`].
pub const VILLAGES_IN_FIXED: u64 = 16_384;
/// Memory held across waves per person row more when the waves do not take the persons file's
/// rows in file order: each citizen ID's holder kept by data row (8 bytes a slot of the ID set,
/// which holds up to 2.9 slots a key just after it grows), see [`PartitionedReader`].
pub const BYTES_HOLDER_ROWS_PER_PERSON_ROW: u64 = 24;
/// Memory a plan takes after the last wave per person of its poor households, beside its
/// decisions ([`BYTES_PER_PLAN_DECISION`]): the households read back from the temporary file the
/// waves wrote them to (whole, names included; about 110 bytes a person), their profiles and
/// scores, the household plan's lines. Measured with the peak reset as planning began
/// (`TPMAP_TRACE=1 tpmap run D --max-memory 4GiB` nationally, `--partition province` on the 2 M
/// set; the SYNTHETIC sets' 52 generated programs, target-poor population): 247 bytes a person
/// with its decisions on the national set (1.13 GB for 4,589,518 persons and 1,565,236
/// decisions), 365 on a 2 M-household set it was not tuned on (257 MB for 703,389 persons and
/// 241,241 decisions): 131 and at most 256 bytes a person without the decisions; rounded up
/// (384 with the decisions until the twenty-fifth session, when a catalogue of 2,080 programs
/// took 3.5 times a budget it was given). Their count is known only as the waves score them:
/// the budget's room for them is reported before any work (`partition.plan_room`), and the
/// count checked wave by wave and after the last (until the twenty-fifth session a quarter of
/// the persons were assumed poor before any work, which refused budgets that fitted; TPMAP
/// 2561 had 12 %, the SYNTHETIC sets 12.4-12.5 %).
pub const BYTES_PLANNED_PER_POOR_PERSON: u64 = 288;
/// Memory a plan takes per eligible unit it decides on (a place given or declined, over all
/// programs; [`crate::plan::PlanOptions::max_decisions`]): the decision, its row in the
/// household plan's grouping, the work lists, the declined list and their files. Measured on
/// the 2 M-household SYNTHETIC set with its 52 generated programs copied 10 and 40 times (2.41 M
/// and 9.65 M decisions for 703,389 persons of poor households; `TPMAP_TRACE=1 tpmap run D
/// --partition province`, RSS before the households are read back to the peak): 353 and 321
/// bytes a decision beyond the 52 programs' plan; rounded up. A partitioned run within a budget
/// gives its plan what the budget leaves once the poor households are held, a what-if's two
/// plans half each.
pub const BYTES_PER_PLAN_DECISION: u64 = 384;
/// How many times [`BYTES_PLANNED_PER_POOR_PERSON`] a plan takes that plans over every poor
/// household (`--population poor`, or no welfare condition), or adds a what-if or the exact
/// optimiser: 530, 569 and 448 bytes a person with their decisions on the same 2 M-household
/// set (410,935, 652,176 over both plans and 241,241 decisions): at most 316 bytes a person
/// beside them at [`BYTES_PER_PLAN_DECISION`].
pub const PLANNED_WIDE_FACTOR: u64 = 2;

/// The province bucket (province number, or [`UNPLACED`]) of every data row of both files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// Per household data row (row `r` at index `r - 1`).
    pub households: Vec<u8>,
    /// Per person data row.
    pub persons: Vec<u8>,
    /// The households file's size, time of change and rows as the routing read it (a wave
    /// refuses it changed since), and for a CSV file where every 2^14th row begins: a wave
    /// reads only the runs of rows holding its own.
    pub(crate) household_layout: Option<Layout>,
    /// The same for the persons file.
    pub(crate) person_layout: Option<Layout>,
    /// A household key's first row names no readable village and a later row of it does: the
    /// later row (in bucket [`UNPLACED`], with the key's persons) may be accepted.
    pub(crate) placed_after_unplaced: bool,
    /// Distinct readable area codes in the households' village column: the villages the
    /// merged results can hold, at most ([`BYTES_MERGED_PER_VILLAGE`]).
    pub villages: u64,
    /// Those codes, ascending (a panel counts the villages two rounds share).
    pub(crate) village_codes: Vec<AreaCode>,
}

/// Rows of one wave: the buckets it reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wave {
    /// Buckets in the wave, ascending.
    pub buckets: Vec<u8>,
    /// Household data rows in the wave.
    pub household_rows: u64,
    /// Person data rows in the wave.
    pub person_rows: u64,
}

impl Wave {
    /// Estimated peak memory of reading and scoring this wave, in bytes.
    pub fn estimated_bytes(&self) -> u64 {
        self.person_rows.saturating_mul(BYTES_PER_PERSON_ROW)
            + self.household_rows.saturating_mul(BYTES_PER_HOUSEHOLD_ROW)
    }
}

impl Split {
    /// Routes every row of the two files to a province bucket (see the module documentation).
    pub fn read(households: &Path, persons: &Path, opts: &IngestOptions) -> Result<Split> {
        // A CSV file's encoding decided on its start and checked against all its lines at its
        // end, as a whole ingest does (one read of the file, not two); read again deciding
        // first when that fails for any reason.
        crate::in_pool(|| {
            Split::read_in_pool(households, persons, opts, Some(super::source::DECIDE_ON_BYTES))
                .or_else(|_| Split::read_in_pool(households, persons, opts, None))
        })
    }

    fn read_in_pool(households: &Path, persons: &Path, opts: &IngestOptions, decide_on: Option<u64>) -> Result<Split> {
        opts.validate()?;
        // The persons file's keys are read on one core while the households are routed on the
        // other (a CSV file is parsed on one core; each file alone kept about 1.3 of the two
        // busy), and looked up once every household key has its province.
        let (routed, runs) = rayon::join(
            || Split::route_households(households, opts, decide_on),
            || PersonRuns::read(persons, opts, decide_on),
        );
        // A households file without its key or village: the full read names the missing column.
        let Some((mut split, first)) = routed? else { return Ok(Split::default()) };
        let Some(runs) = runs? else { return Ok(split) };
        // Each run's province at once, in parallel chunks (the table is only read here), the
        // chunk's keys together so that the table's slots are fetched ahead of their lookups.
        const CHUNK: usize = 16_384;
        let chunks: Vec<Vec<u8>> = runs
            .keys
            .par_chunks(CHUNK)
            .zip(runs.lens.par_chunks(CHUNK))
            .map(|(keys, lens)| {
                let present: Vec<u64> = keys.iter().copied().filter(|&k| k != PersonRuns::NO_KEY).collect();
                let mut found = Vec::new();
                first.get_all(&present, &mut found);
                let mut found = found.into_iter();
                let mut buckets = Vec::new();
                for (&key, &n) in keys.iter().zip(lens) {
                    let bucket = match key {
                        PersonRuns::NO_KEY => UNPLACED,
                        _ => found.next().flatten().unwrap_or(UNPLACED),
                    };
                    buckets.resize(buckets.len() + n as usize, bucket);
                }
                buckets
            })
            .collect();
        split.persons.reserve_exact(chunks.iter().map(Vec::len).sum());
        chunks.iter().for_each(|c| split.persons.extend_from_slice(c));
        split.person_layout = runs.layout;
        Ok(split)
    }

    /// The households' buckets and each household key's first province; `None` when the file
    /// has no household key or village column.
    fn route_households(
        households: &Path,
        opts: &IngestOptions,
        decide_on: Option<u64>,
    ) -> Result<Option<(Split, ShardedTable<u8>)>> {
        let mut hh = Table::open_deciding(TableInput::File(households), opts, decide_on)?;
        let header = hh.header().to_vec();
        let map = columns::map_households(&header, &opts.edition)
            .map_err(|m| Error::Format { file: hh.name(), message: m })?;
        let (Some(id_col), Some(v_col)) = (map.get(HF::HouseholdId), map.get(HF::Village)) else {
            // The full read names the missing column.
            return Ok(None);
        };
        hh.check_types(&[id_col, v_col])?;
        hh.only(&[id_col, v_col]);
        hh.lay_out()?;
        // Each key's first province (a repeated key goes where its first went), in a table whose
        // inserts fetch the next keys' slots ahead (a hash map's one miss at a time was a third
        // of the routing of the national households), sharded by key and filled on every core.
        // Room for the rows the file claims, at most 2^24 (a lying footer costs at most 300 MB
        // of slots for the routing's moment).
        let mut first: ShardedTable<u8> = ShardedTable::new();
        first.reserve(hh.rows_hint());
        let mut split = Split::default();
        // The distinct area codes of the households' village column (what the merged results
        // hold a row of each for, at most).
        let mut villages: std::collections::HashSet<AreaCode> = std::collections::HashSet::new();
        hh.for_each(&mut |b, _| {
            // Villages and keys parsed in parallel chunks; keys claimed in row order.
            const CHUNK: usize = 16_384;
            // Each row's (province bucket, household key, village code).
            type Routed = (u8, Option<u64>, Option<AreaCode>);
            let parsed: Vec<Vec<Routed>> = (0..b.len().div_ceil(CHUNK))
                .into_par_iter()
                .map(|c| {
                    let mut text = String::new();
                    (c * CHUNK..((c + 1) * CHUNK).min(b.len()))
                        .map(|r| {
                            let code = match b.cell(r, v_col) {
                                Cell::Null => None,
                                c => {
                                    text.clear();
                                    c.write_text(&mut text);
                                    AreaCode::parse(&text).ok()
                                }
                            };
                            let province = code.map_or(UNPLACED, |code| code.province_number());
                            (province, household_key(b.cell(r, id_col)), code)
                        })
                        .collect()
                })
                .collect();
            let start = split.households.len();
            split.households.extend(parsed.iter().flatten().map(|&(province, ..)| province));
            // Rows of one village come together: a code is looked up when it changes.
            let mut last = None;
            for &(.., code) in parsed.iter().flatten() {
                if let Some(c) = code.filter(|_| code != last) {
                    villages.insert(c);
                }
                last = code;
            }
            let keyed: Vec<(u64, u8, usize)> = parsed
                .iter()
                .flatten()
                .enumerate()
                .filter_map(|(i, &(p, key, _))| key.map(|k| (k, p, start + i)))
                .collect();
            for (i, p) in first.insert_all(&keyed) {
                // A key first on a row of no village, again on a row with one: that row may be
                // accepted, in bucket 00 with its persons (see `persons_in_order_of`).
                split.placed_after_unplaced |= p == UNPLACED && split.households[i] != UNPLACED;
                split.households[i] = p;
            }
            Ok(())
        })?;
        split.household_layout = hh.layout();
        split.villages = villages.len() as u64;
        split.village_codes = villages.into_iter().collect();
        split.village_codes.sort_unstable();
        Ok(Some((split, first)))
    }
}

/// The persons file's household keys, a run of rows with one key at a time (persons come
/// grouped by household: about one run per household), and the file's layout. 12 bytes a run:
/// a file in no order at all costs 12 bytes a person row for the routing's moment, within the
/// [`BYTES_ACROSS_WAVES_PER_PERSON_ROW`] every wave's estimate already holds.
#[derive(Default)]
struct PersonRuns {
    /// Each run's key, or [`PersonRuns::NO_KEY`].
    keys: Vec<u64>,
    /// Each run's rows.
    lens: Vec<u32>,
    layout: Option<Layout>,
}

impl PersonRuns {
    /// A run of rows without a readable household key (keys are at most 18 digits or an
    /// `i64`, never this).
    const NO_KEY: u64 = u64::MAX;

    /// Reads the persons file's household keys; `None` when it has no household key column.
    fn read(persons: &Path, opts: &IngestOptions, decide_on: Option<u64>) -> Result<Option<PersonRuns>> {
        Self::read_cutting_from(persons, opts, decide_on, CUT_FROM_BYTES)
    }

    /// As [`PersonRuns::read`]; a CSV file of at least `cut_from` bytes is read in parts of
    /// about [`PART_BYTES`] at once ([`source::csv_cuts`]): csv-core parses a file on one core,
    /// and the persons file (six sevenths of a national extract's bytes) parsed on one core was
    /// the routing's bound. Several parts, not two, so that the cores share them evenly beside
    /// the households file. Read whole as before when a cut is not between two records or a
    /// part fails: then what the reading says (an error, its row and line) is the whole file's.
    fn read_cutting_from(
        persons: &Path,
        opts: &IngestOptions,
        decide_on: Option<u64>,
        cut_from: u64,
    ) -> Result<Option<PersonRuns>> {
        let cuts = source::csv_cuts(persons, cut_from, PART_BYTES)?;
        if !cuts.is_empty()
            && let Ok(Some(runs)) = Self::read_in_parts(persons, opts, decide_on, &cuts)
        {
            return Ok(runs);
        }
        let mut p = Table::open_deciding(TableInput::File(persons), opts, decide_on)?;
        let Some(hh_col) = Self::key_column(&mut p, opts)? else { return Ok(None) };
        p.lay_out()?;
        let mut runs = PersonRuns::default();
        runs.read_table(&mut p, hh_col)?;
        runs.layout = p.layout();
        Ok(Some(runs))
    }

    /// The parts of a CSV file cut at `cuts`, read at once and joined; `Ok(None)` when the
    /// parts are not the file's rows.
    fn read_in_parts(
        persons: &Path,
        opts: &IngestOptions,
        decide_on: Option<u64>,
        cuts: &[u64],
    ) -> Result<Option<Option<PersonRuns>>> {
        let Some(&cut) = cuts.first() else { return Ok(None) };
        let mut first = Table::open_part(persons, opts, decide_on, cut)?;
        let Some(hh_col) = Self::key_column(&mut first, opts)? else { return Ok(Some(None)) };
        first.lay_out()?;
        let mut tables = vec![first];
        for (k, &start) in cuts.iter().enumerate() {
            let Some(part) = tables[0].part_from(start, cuts.get(k + 1).copied())? else { return Ok(None) };
            tables.push(part);
        }
        // One task a part; the pool's workers take them as they come free.
        let read: Vec<PersonRuns> = tables
            .par_iter_mut()
            .with_max_len(1)
            .map(|t| {
                let mut runs = PersonRuns::default();
                runs.read_table(t, hh_col).map(|_| runs)
            })
            .collect::<Result<_>>()?;
        let mut first = tables.remove(0);
        if !first.join_parts(tables)? {
            return Ok(None);
        }
        let mut read = read.into_iter();
        let mut runs = read.next().unwrap_or_default();
        for more in read {
            for (key, n) in more.keys.into_iter().zip(more.lens) {
                runs.push(key, n);
            }
        }
        runs.layout = first.layout();
        Ok(Some(Some(runs)))
    }

    /// The household key's column of the persons table, its text alone kept; `None` without one.
    fn key_column(p: &mut Table<'_>, opts: &IngestOptions) -> Result<Option<usize>> {
        let header = p.header().to_vec();
        let map =
            columns::map_persons(&header, &opts.edition).map_err(|m| Error::Format { file: p.name(), message: m })?;
        let Some(hh_col) = map.get(PF::HouseholdId) else {
            return Ok(None);
        };
        p.check_types(&[hh_col])?;
        p.only(&[hh_col]);
        Ok(Some(hh_col))
    }

    /// Appends the runs of `p`'s rows, read to its end.
    fn read_table(&mut self, p: &mut Table<'_>, hh_col: usize) -> Result<()> {
        p.for_each(&mut |b, _| {
            // Keys parsed in parallel chunks, their runs joined in row order.
            const CHUNK: usize = 16_384;
            let chunks: Vec<Vec<(u64, u32)>> = (0..b.len().div_ceil(CHUNK))
                .into_par_iter()
                .map(|c| {
                    let mut chunk: Vec<(u64, u32)> = Vec::new();
                    for r in c * CHUNK..((c + 1) * CHUNK).min(b.len()) {
                        let key = household_key(b.cell(r, hh_col)).unwrap_or(PersonRuns::NO_KEY);
                        match chunk.last_mut() {
                            Some((k, n)) if *k == key => *n += 1,
                            _ => chunk.push((key, 1)),
                        }
                    }
                    chunk
                })
                .collect();
            for &(key, n) in chunks.iter().flatten() {
                self.push(key, n);
            }
            Ok(())
        })
    }

    /// Appends `n` rows of `key`: to the last run when it is the same key and stays countable.
    fn push(&mut self, key: u64, n: u32) {
        match (self.keys.last(), self.lens.last_mut()) {
            (Some(&k), Some(len)) if k == key && len.checked_add(n).is_some() => *len += n,
            _ => {
                self.keys.push(key);
                self.lens.push(n);
            }
        }
    }
}

/// Smallest CSV persons file the routing reads in parts at once ([`PersonRuns::read`]):
/// 64 MiB, about 370,000 rows; below it one core parses it in well under a second.
const CUT_FROM_BYTES: u64 = 64 << 20;

/// About how large a part of a persons CSV file is ([`PersonRuns::read`]): a national file
/// (6.1 GB) is read in 11 parts (its bytes over 512 MiB, rounded down).
const PART_BYTES: u64 = 512 << 20;

/// A split's row buckets kept in a temporary file ([`Split::spill_rows`]).
#[derive(Debug)]
pub(crate) struct SpilledRows {
    file: crate::spill::SpillFile,
    households: usize,
    persons: usize,
}

impl Split {
    /// Writes the row buckets (a byte a data row: 49.6 MB for a national round) to a temporary
    /// file and frees them, until [`Split::restore_rows`] reads them back: a partitioned run
    /// holds no more of its split while it compares earlier rounds before its waves.
    pub(crate) fn spill_rows(&mut self) -> Result<SpilledRows> {
        let mut file = crate::spill::SpillFile::new("the routing's temporary file")?;
        for rows in [&self.households, &self.persons] {
            file.push_with(|w| w.bytes(rows))?;
        }
        let spilled = SpilledRows { file, households: self.households.len(), persons: self.persons.len() };
        (self.households, self.persons) = (Vec::new(), Vec::new());
        Ok(spilled)
    }

    /// Reads back the row buckets [`Split::spill_rows`] wrote (checked: as many as it wrote).
    pub(crate) fn restore_rows(&mut self, spilled: SpilledRows) -> Result<()> {
        let SpilledRows { mut file, households, persons } = spilled;
        self.households = file.read_with(0, |r| r.bytes_of(households))?;
        self.persons = file.read_with(1, |r| r.bytes_of(persons))?;
        Ok(())
    }

    /// Bytes the split holds beside its row buckets: its village codes and its CSV files'
    /// layouts (what it holds while they are spilled, [`Split::spill_rows`]).
    pub(crate) fn bytes_beside_rows(&self) -> u64 {
        use crate::memory::vec_bytes;
        let layout = |l: &Option<Layout>| l.as_ref().map_or(0, |l| vec_bytes(&l.marks));
        vec_bytes(&self.village_codes)
            .saturating_add(layout(&self.household_layout))
            .saturating_add(layout(&self.person_layout))
    }
}

/// The options a reading in waves reads each wave with, and whether it is strict: a strict
/// reading reads its waves leniently and fails with the first rejected row of the files as a
/// whole reading meets it ([`strict_skips`]; the first bad row of the first wave that has one
/// may come after another wave's).
pub(crate) fn wave_options(opts: &IngestOptions) -> (bool, std::borrow::Cow<'_, IngestOptions>) {
    use std::borrow::Cow;
    match opts.mode {
        super::Mode::Strict => (true, Cow::Owned(IngestOptions { mode: super::Mode::Lenient, ..opts.clone() })),
        _ => (false, Cow::Borrowed(opts)),
    }
}

/// A strict reading's check of a wave read leniently ([`note_first_bad`]): the error at once
/// when it is the files' first for sure — a household row's, the waves taking the households
/// in file order (every earlier household row was read, and a household row comes before every
/// person row); else whether the wave is to be skipped (a bad row met so far: the rest of the
/// waves are read for an earlier error only, which the reading fails with at its end).
pub(crate) fn strict_skips(
    got: &super::Ingested,
    first_bad: &mut Option<(u8, u64, Error)>,
    households_in_order: bool,
) -> Result<bool> {
    note_first_bad(got, first_bad);
    if households_in_order
        && matches!(first_bad, Some((0, _, _)))
        && let Some((_, _, e)) = first_bad.take()
    {
        return Err(e);
    }
    Ok(first_bad.is_some())
}

/// Keeps in `first_bad` the first rejected row of the files as a whole reading meets it (0 for
/// the households file, 1 for the persons file; data row; the error a strict reading fails
/// with), after a wave's reading `got`: a strict reading in waves reads them leniently and fails
/// with it, as a whole reading would (every household row before any person row, each file in
/// row order).
pub(crate) fn note_first_bad(got: &super::Ingested, first_bad: &mut Option<(u8, u64, Error)>) {
    let households = got.household_rejects.first().map(|r| (0u8, r.row, &got.report.households.file, r));
    let persons = got.person_rejects.first().map(|r| (1u8, r.row, &got.report.persons.file, r));
    for (file, row, name, r) in [households, persons].into_iter().flatten() {
        if first_bad.as_ref().is_none_or(|&(f, at, _)| (file, row) < (f, at)) {
            *first_bad = Some((file, row, super::strict_error(name, r)));
        }
    }
}

impl Split {
    /// Groups consecutive buckets (ascending, [`UNPLACED`] first) into waves whose estimated
    /// memory stays within `budget` bytes; `None` puts each province in a wave of its own.
    /// Refuses, before any work, a budget below what the largest province needs.
    pub fn waves(&self, budget: Option<u64>) -> Result<Vec<Wave>> {
        self.waves_holding(budget, 0)
    }

    /// [`Split::waves`] when `held_per_person_row` more bytes per person row read are held
    /// across the waves (a bounded linkage's, a served file's household IDs).
    pub fn waves_holding(&self, budget: Option<u64>, held_per_person_row: u64) -> Result<Vec<Wave>> {
        self.waves_in_flight(budget, held_per_person_row, 1)
    }

    /// Bytes the merged results hold by the end of the scoring pass, beyond [`BYTES_FIXED`]:
    /// [`BYTES_MERGED_PER_VILLAGE`] a village past [`VILLAGES_IN_FIXED`], and 24 bytes a
    /// village and bootstrap replicate (`reps`).
    pub fn merged_bytes(&self, reps: u64) -> u64 {
        self.villages
            .saturating_sub(VILLAGES_IN_FIXED)
            .saturating_mul(BYTES_MERGED_PER_VILLAGE)
            .saturating_add(self.villages.saturating_mul(reps).saturating_mul(24))
    }

    /// Bytes merging the results after the last wave takes, beyond [`BYTES_FIXED`]:
    /// [`BYTES_MERGING_PER_VILLAGE`] a village past [`VILLAGES_IN_FIXED`], and 48 bytes a
    /// village and bootstrap replicate (`reps`).
    pub fn merging_bytes(&self, reps: u64) -> u64 {
        self.villages
            .saturating_sub(VILLAGES_IN_FIXED)
            .saturating_mul(BYTES_MERGING_PER_VILLAGE)
            .saturating_add(self.villages.saturating_mul(reps).saturating_mul(48))
    }

    /// Bytes held across the waves, whatever they are: [`BYTES_ACROSS_WAVES_PER_PERSON_ROW`]
    /// and `held_per_person_row` more a person row, the row buckets and [`BYTES_FIXED`].
    pub fn held_across(&self, held_per_person_row: u64) -> u64 {
        let per_person = BYTES_ACROSS_WAVES_PER_PERSON_ROW.saturating_add(held_per_person_row);
        (self.persons.len() as u64)
            .saturating_mul(per_person)
            .saturating_add((self.households.len() as u64).saturating_add(self.persons.len() as u64))
            .saturating_add(BYTES_FIXED)
    }

    /// [`Split::waves_holding`] when `in_flight` waves are in memory at once (one written while
    /// the next is read): each wave gets that share of the budget left after what is held.
    pub fn waves_in_flight(&self, budget: Option<u64>, held_per_person_row: u64, in_flight: u64) -> Result<Vec<Wave>> {
        let in_flight = in_flight.max(1);
        let across = self.held_across(held_per_person_row);
        self.waves_costing(budget, across, &|w| w.estimated_bytes().saturating_mul(in_flight))
    }

    /// Bytes a [`PartitionedReader`] of this split holds across its waves, exactly: its citizen
    /// IDs' set, made room for every person row at the first batch (with each ID's holder by
    /// row when one-province waves do not take the persons in file order), and each row's
    /// province bucket.
    pub fn reader_bytes(&self) -> u64 {
        let holding = self.waves(None).is_ok_and(|w| !self.persons_in_order_of(&w));
        super::duplicates::reserved_bytes(self.persons.len(), holding)
            .saturating_add((self.households.len() as u64).saturating_add(self.persons.len() as u64))
    }

    /// The provinces in code order, grouped into waves, each costing `cost` bytes beside
    /// `across` held across them, as many together as `budget` allows (without one: a province
    /// a wave); a province that alone passes the budget is refused, naming what it needs.
    pub fn waves_costing(&self, budget: Option<u64>, across: u64, cost: &dyn Fn(&Wave) -> u64) -> Result<Vec<Wave>> {
        let mut rows = [(0u64, 0u64); 256];
        for &b in &self.households {
            rows[b as usize].0 += 1;
        }
        for &b in &self.persons {
            rows[b as usize].1 += 1;
        }
        let mut waves: Vec<Wave> = Vec::new();
        for (b, &(h, p)) in rows.iter().enumerate() {
            if h == 0 && p == 0 {
                continue;
            }
            let one = Wave { buckets: vec![b as u8], household_rows: h, person_rows: p };
            if let Some(budget) = budget {
                let need = cost(&one).saturating_add(across);
                if need > budget {
                    return Err(Error::Config(format!(
                        "--max-memory {} is below what province {b:02} needs: about {} ({h} household and {p} person rows, \
                         plus {} held across provinces); give at least that",
                        crate::limits::format_bytes(budget),
                        crate::limits::format_bytes(need),
                        crate::limits::format_bytes(across),
                    )));
                }
                if let Some(last) = waves.last_mut() {
                    let joined = Wave {
                        buckets: Vec::new(),
                        household_rows: last.household_rows + h,
                        person_rows: last.person_rows + p,
                    };
                    if cost(&joined).saturating_add(across) <= budget {
                        last.buckets.push(b as u8);
                        (last.household_rows, last.person_rows) = (joined.household_rows, joined.person_rows);
                        continue;
                    }
                }
            }
            waves.push(one);
        }
        Ok(waves)
    }

    /// True when `waves`, read in order, take the persons file's rows in file order: every row
    /// of a wave comes before every row of the waves after it. Rows without a province
    /// ([`UNPLACED`]) do not count unless a household key's first row names no readable village
    /// and a later row of it does: otherwise such a person names no household of the file, or a
    /// rejected one, and is rejected, never holding a citizen ID another row could repeat; with
    /// such a key, the later row may be accepted and its persons with it (in bucket 00).
    pub fn persons_in_order_of(&self, waves: &[Wave]) -> bool {
        in_order_of(&self.persons, waves, !self.placed_after_unplaced)
    }

    /// True when `waves`, read in order, take the households file's rows in file order (rows
    /// without a province count, in the first wave).
    pub fn households_in_order_of(&self, waves: &[Wave]) -> bool {
        in_order_of(&self.households, waves, false)
    }

    /// Which household and person rows (1-based) `wave` reads.
    pub fn rows_of(&self, wave: &Wave) -> (RowSet, RowSet) {
        let mut inside = [false; 256];
        for &b in &wave.buckets {
            inside[b as usize] = true;
        }
        (RowSet::of(&self.households, &inside), RowSet::of(&self.persons, &inside))
    }
}

/// Reads an extract wave by wave: each wave's rows are validated as a whole-country read would
/// validate them, and of the rows holding one citizen ID the first in the file is kept, as a
/// whole-country read keeps it, wherever the others are.
///
/// When the waves take the persons file's rows in file order (a file in province order, as
/// TPMAP's extracts are), the first holder met is the first in the file. When they do not, the
/// reader keeps each ID's holder by data row (8 bytes more a key: [`BYTES_HOLDER_ROWS_PER_PERSON_ROW`]);
/// a holder met in a later wave on an earlier row than the one kept makes the read
/// [`crossed`](PartitionedReader::crossed): the waves read so far kept a later holder, so the
/// caller reads them all again after [`PartitionedReader::decide`], which keeps each ID's first
/// holder in the file (a second pass, needed only for such files).
pub struct PartitionedReader {
    split: Split,
    seen: super::duplicates::Seen,
}

impl PartitionedReader {
    /// A reader over the rows `split` routes, to be read in `waves`, in that order.
    pub fn new(split: Split, waves: &[Wave]) -> PartitionedReader {
        let mut seen = super::duplicates::Seen::default();
        if !split.persons_in_order_of(waves) {
            seen.holding_rows();
        }
        PartitionedReader { split, seen }
    }

    /// True when the waves read so far kept a citizen ID's holder while an earlier row of the
    /// file holds it too (met in a later wave; only when the waves do not take the rows in file
    /// order): read every wave again, after [`PartitionedReader::decide`].
    pub fn crossed(&self) -> bool {
        self.seen.crossed()
    }

    /// After every wave was read once: the next reading of the waves keeps each citizen ID's
    /// first holder in the file among the rows that pass every other check. A reader holding
    /// no rows (the waves take the rows in file order) forgets the IDs, giving their memory back
    /// until the next reading, which meets the same first holders first again.
    pub fn decide(&mut self) {
        self.seen.decide();
    }

    /// The routing.
    pub fn split(&self) -> &Split {
        &self.split
    }

    /// Reads and validates the rows of `wave` (the files must be the ones split).
    pub fn read(
        &mut self,
        households: &Path,
        persons: &Path,
        opts: &IngestOptions,
        wave: &Wave,
    ) -> Result<super::Ingested> {
        let (h, p) = self.split.rows_of(wave);
        let scope = super::WaveScope {
            households: &h,
            persons: &p,
            seen_ids: &mut self.seen,
            persons_file_rows: self.split.persons.len() as u64,
            household_layout: self.split.household_layout.as_ref(),
            person_layout: self.split.person_layout.as_ref(),
        };
        crate::in_pool(|| {
            super::ingest_in_pool(TableInput::File(households), TableInput::File(persons), opts, Some(scope), None)
        })
    }
}

/// True when `waves` take the rows of `buckets` (one a data row) in row order, the rows of
/// [`UNPLACED`] left out when `skip_unplaced`.
fn in_order_of(buckets: &[u8], waves: &[Wave], skip_unplaced: bool) -> bool {
    let mut wave_of = [u16::MAX; 256];
    for (i, w) in waves.iter().enumerate() {
        for &b in &w.buckets {
            wave_of[b as usize] = u16::try_from(i).unwrap_or(u16::MAX);
        }
    }
    let mut at = 0u16;
    for &b in buckets {
        if skip_unplaced && b == UNPLACED {
            continue;
        }
        let w = wave_of[b as usize];
        if w < at {
            return false;
        }
        at = w;
    }
    true
}

/// A household key as the readers parse it (a non-negative integer, or text of one).
fn household_key(cell: Cell<'_>) -> Option<u64> {
    match cell {
        Cell::Null => None,
        Cell::Int(i) if i >= 0 => Some(i as u64),
        c => c.as_text().parse::<crate::ids::HouseholdId>().ok().map(|h| h.0),
    }
}

/// Eight bytes of a `chunks_exact(8)` window as an array.
fn eight(w: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(w);
    a
}

/// A set of 1-based data rows, one bit each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowSet {
    bits: Vec<u64>,
    len: u64,
}

impl RowSet {
    fn of(buckets: &[u8], inside: &[bool; 256]) -> RowSet {
        // A word at a time without branches: every wave of a national run looks at all 50 M
        // row buckets. 64 rows of one bucket (a file in province order, nearly everywhere) are
        // recognised by eight 8-byte comparisons and take one lookup instead of 64.
        let bits: Vec<u64> = buckets
            .chunks(64)
            .map(|chunk| {
                let first = chunk[0];
                let splat = u64::from_ne_bytes([first; 8]);
                let same = chunk.len() == 64
                    && chunk.chunks_exact(8).fold(0u64, |d, w| d | (u64::from_ne_bytes(eight(w)) ^ splat)) == 0;
                if same {
                    if inside[first as usize] { u64::MAX } else { 0 }
                } else {
                    chunk.iter().enumerate().fold(0u64, |w, (k, &b)| w | (inside[b as usize] as u64) << k)
                }
            })
            .collect();
        let len = bits.iter().map(|w| w.count_ones() as u64).sum();
        RowSet { bits, len }
    }

    /// True when data row `row` (1-based) is in the set.
    pub fn contains(&self, row: u64) -> bool {
        let Some(i) = row.checked_sub(1) else { return false };
        self.bits.get((i / 64) as usize).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    /// True when one of the `len` rows from `first` (1-based) is in the set.
    pub fn any_in(&self, first: u64, len: u64) -> bool {
        // Row 0 does not exist: a window from it starts at row 1.
        let (start, len) = if first == 0 { (0, len.saturating_sub(1)) } else { (first - 1, len) };
        let end = start.saturating_add(len).min(self.bits.len() as u64 * 64);
        let mut i = start;
        while i < end {
            let word = self.bits[(i / 64) as usize] >> (i % 64);
            let span = (64 - i % 64).min(end - i);
            let mask = if span == 64 { u64::MAX } else { (1u64 << span) - 1 };
            if word & mask != 0 {
                return true;
            }
            i += span;
        }
        false
    }

    /// The set as ranges `(first, rows)` of 1-based rows, ascending: runs of rows in the set,
    /// a run joined to the next when fewer than `gap` rows lie between them (so those rows are in
    /// a range too). A file in province order gives one range per wave.
    pub fn ranges(&self, gap: u64) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        // Bit index of the next row not yet looked at.
        let mut i = 0u64;
        let end = self.bits.len() as u64 * 64;
        while i < end {
            let word = self.bits[(i / 64) as usize] >> (i % 64);
            if word == 0 {
                i += 64 - i % 64;
                continue;
            }
            let start = i + word.trailing_zeros() as u64;
            // The run of set bits from `start`.
            let mut j = start;
            while j < end {
                let w = !(self.bits[(j / 64) as usize] >> (j % 64));
                let ones = w.trailing_zeros() as u64;
                let left = 64 - j % 64;
                if ones < left {
                    j += ones;
                    break;
                }
                j += left;
            }
            match out.last_mut() {
                Some((first, rows)) if start + 1 - (*first + *rows) < gap => *rows = j + 1 - *first,
                _ => out.push((start + 1, j - start)),
            }
            i = j;
        }
        out
    }

    /// Rows in the set.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of a CSV table read whole: (row, line, cells).
    type Rows = Vec<(u64, Option<u64>, Vec<String>)>;

    fn rows_of(t: &mut Table<'_>, wanted: Option<&RowSet>) -> Rows {
        let mut rows = Vec::new();
        t.for_each_wanted(wanted, &mut |b, first| {
            for r in 0..b.len() {
                let cells = (0..3).map(|c| b.cell(r, c).to_text()).collect();
                rows.push((first + r as u64, b.line(r), cells));
            }
            Ok(())
        })
        .unwrap();
        rows
    }

    /// A CSV file laid out by a whole reading is read again a few rows at a time: any set of
    /// rows comes with the row numbers, line numbers and cells the whole reading gave them,
    /// through a byte-order mark, a `#` preamble, CRLF and lone CR line ends, blank lines and
    /// quoted fields holding line ends, across many marks; a file changed since is refused.
    #[test]
    fn a_laid_out_csv_file_reads_any_rows_as_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let n = 3 * super::super::source::MARK_ROWS as usize + 777;
        let mut text = String::from("\u{feff}# SYNTHETIC\r\n#second line\rid,name,note\r\n");
        for i in 0..n {
            let note = match i % 7 {
                0 => format!("\"line\r\nend {i}\""),
                1 => format!("\"quote \"\"{i}\"\" , comma\""),
                2 => "สมชาย".to_string(),
                _ => String::new(),
            };
            text.push_str(&format!("{i},name{i},{note}"));
            text.push_str(match i % 5 {
                0 => "\n",
                1 => "\r",
                2 => "\r\n\r\n",
                _ => "\r\n",
            });
        }
        std::fs::write(&path, &text).unwrap();
        let opts = IngestOptions::default();
        let mut whole = Table::open(TableInput::File(&path), &opts).unwrap();
        whole.lay_out().unwrap();
        let all = rows_of(&mut whole, None);
        assert_eq!(all.len(), n);
        assert_eq!(all[1].2[2], "quote \"1\" , comma");
        let layout = whole.layout().unwrap();
        assert_eq!(layout.marks.len(), 4);
        // Sets of rows: the first, the last, each side of every mark, a run across two marks,
        // every 1000th row, none.
        let m = super::super::source::MARK_ROWS as usize;
        let sets: Vec<Vec<usize>> = vec![
            vec![0],
            vec![n - 1],
            vec![m - 1, m, 2 * m - 1, 2 * m, 3 * m - 1, 3 * m],
            (m - 10..2 * m + 10).collect(),
            (0..n).step_by(1000).collect(),
            (2 * m + 5..n).collect(),
            vec![],
        ];
        for rows in sets {
            let mut buckets = vec![0u8; n];
            rows.iter().for_each(|&r| buckets[r] = 1);
            let mut inside = [false; 256];
            inside[1] = true;
            let wanted = RowSet::of(&buckets, &inside);
            let mut t = Table::open_laid_out(TableInput::File(&path), &opts, None, Some(&layout)).unwrap();
            let got = rows_of(&mut t, Some(&wanted));
            let want: Rows = rows.iter().map(|&r| all[r].clone()).collect();
            let got: Rows = got.into_iter().filter(|(row, ..)| wanted.contains(*row)).collect();
            assert_eq!(got, want, "rows {:?}..", rows.first());
            assert_eq!(t.encoding_name(), whole.encoding_name());
        }
        // A file changed since it was laid out.
        std::fs::write(&path, text.replacen("name5,", "name5x,", 1)).unwrap();
        let e = Table::open_laid_out(TableInput::File(&path), &opts, None, Some(&layout)).err().unwrap();
        assert!(e.to_string().contains("changed"), "{e}");
    }

    /// A Parquet or Excel extract routed, then changed before a wave reads it, is refused, as a
    /// CSV file is: rewritten with a row more (its rows past the routing's would be in no wave),
    /// with the same rows in another order (the waves would read other provinces' rows), or
    /// only touched (its time of change is all a reading can go by), either file.
    #[test]
    fn an_extract_changed_after_its_routing_is_refused() {
        use polars::prelude::{ParquetReader, ParquetWriter, SerReader};
        let dir = tempfile::tempdir().unwrap();
        let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("data-samples");
        let opts = IngestOptions::default();
        let cases = [
            ("households.parquet", "a row more"),
            ("households.parquet", "reversed"),
            ("persons.parquet", "a row more"),
            ("persons.parquet", "reversed"),
            ("persons.parquet", "touched"),
            ("households.xlsx", "touched"),
            ("persons.xlsx", "touched"),
        ];
        for (name, change) in cases {
            let ext = if name.ends_with("xlsx") { "xlsx" } else { "parquet" };
            let from = if ext == "xlsx" { samples.join("xlsx") } else { samples.clone() };
            let (hh, p) = (dir.path().join(format!("households.{ext}")), dir.path().join(format!("persons.{ext}")));
            std::fs::copy(from.join(format!("households.{ext}")), &hh).unwrap();
            std::fs::copy(from.join(format!("persons.{ext}")), &p).unwrap();
            let split = Split::read(&hh, &p, &opts).unwrap();
            assert!(split.household_layout.is_some() && split.person_layout.is_some(), "{name}");
            let waves = split.waves(None).unwrap();
            let mut reader = PartitionedReader::new(split, &waves);
            // Unchanged, every wave reads.
            for wave in &waves {
                reader.read(&hh, &p, &opts, wave).unwrap();
            }
            let path = dir.path().join(name);
            match change {
                "touched" => {
                    let file = std::fs::File::options().write(true).open(&path).unwrap();
                    let then = file.metadata().unwrap().modified().unwrap();
                    file.set_modified(then + std::time::Duration::from_secs(1)).unwrap();
                }
                _ => {
                    let df = ParquetReader::new(std::fs::File::open(&path).unwrap()).finish().unwrap();
                    let mut changed =
                        if change == "reversed" { df.reverse() } else { df.vstack(&df.slice(0, 1)).unwrap() };
                    ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut changed).unwrap();
                }
            }
            for wave in &waves {
                let e = reader.read(&hh, &p, &opts, wave).err();
                let e = e.unwrap_or_else(|| panic!("{name}, {change}: a wave read the changed file"));
                assert!(e.to_string().contains("changed while it was read"), "{name}, {change}: {e}");
                assert!(e.to_string().contains(name), "{name}, {change}: {e}");
            }
        }
    }

    /// A persons file read in two parts at once, cut after any of its line ends, gives the
    /// household keys' runs, rows and evidence a reading of the whole file gives, and a layout
    /// whose every mark (the cut's too) reads the rows, lines and cells of the whole reading;
    /// a cut inside a quoted field is found out (the file is then read whole). Through a
    /// byte-order mark, a preamble, every line end, blank lines, quoted line ends, a quote
    /// inside a field and lines in TIS-620 (the encoding decided on the start, checked on the
    /// parts' evidence added up).
    #[test]
    fn a_persons_file_read_in_two_parts_is_read_as_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("persons.csv");
        let mark = super::super::source::MARK_ROWS as usize;
        let n = mark + 300;
        let mut text = b"\xEF\xBB\xBF# SYNTHETIC\r\nhousehold_id,name,note\r\n".to_vec();
        // Where a record's bytes end outside quotes (a cut there is between two records) and
        // where a line ends inside a quoted field.
        let (mut between, mut inside) = (Vec::new(), Vec::new());
        for i in 0..n {
            let key = if i % 13 == 12 { "x".to_string() } else { (100 + i / 3).to_string() };
            text.extend_from_slice(format!("{key},name{i},").as_bytes());
            match i % 6 {
                0 => {
                    text.extend_from_slice(b"\"line\n");
                    inside.push(text.len());
                    text.extend_from_slice(b"end\"");
                }
                1 => text.extend_from_slice(b"12\"A"),
                2 => text.extend_from_slice("สมชาย".as_bytes()),
                3 if i % 500 == 3 => text.extend_from_slice(b"\xCA\xC1\xAA\xD2\xC2"),
                _ => {}
            }
            text.extend_from_slice([&b"\n"[..], b"\r\n", b"\r\n\n", b"\r"][i % 4]);
            between.push(text.len());
        }
        std::fs::write(&path, &text).unwrap();
        let opts = IngestOptions::default();
        for decide_on in [None, Some(4096)] {
            let whole = PersonRuns::read_cutting_from(&path, &opts, decide_on, u64::MAX).unwrap().unwrap();
            let layout = whole.layout.clone().unwrap();
            let mut t = Table::open(TableInput::File(&path), &opts).unwrap();
            let all = rows_of(&mut t, None);
            assert_eq!(all.len(), n);
            // Cuts after line ends (not after a lone \r: a cut is past a \n): one near the
            // start, the middle, the mark or the end, and several at once.
            let ok = |i: &usize| text[between[*i] - 1] == b'\n';
            let picks: Vec<usize> = [0, 1, 2, 3, 5, 8, n / 2, n / 2 + 1, n / 2 + 2, n / 2 + 3, mark - 1, n - 2, n - 1]
                .into_iter()
                .filter(ok)
                .collect();
            let mut cut_sets: Vec<Vec<usize>> = picks.iter().map(|&i| vec![i]).collect();
            cut_sets.push(picks.clone());
            cut_sets.push(picks.iter().copied().step_by(3).collect());
            for after in cut_sets {
                let cuts: Vec<u64> = after.iter().map(|&i| between[i] as u64).collect();
                let parts = PersonRuns::read_in_parts(&path, &opts, decide_on, &cuts).unwrap().unwrap().unwrap();
                assert_eq!((&parts.keys, &parts.lens), (&whole.keys, &whole.lens), "cuts after rows {after:?}");
                let got = parts.layout.unwrap();
                assert_eq!((got.rows, got.encoding, got.evidence), (layout.rows, layout.encoding, layout.evidence));
                // The parts' marks: the first part's, then each other part's from its cut on.
                assert_eq!(got.marks[0], layout.marks[0]);
                assert!(got.marks.len() <= layout.marks.len() + cuts.len(), "cuts after rows {after:?}");
                assert!(got.marks.windows(2).all(|w| w[0].row < w[1].row && w[1].row - w[0].row <= mark as u64));
                // Through the parts' layout: every row; for each cut, the rows after it and
                // after its first (read from the cut's mark) and the rows each side of it.
                let mut sets = vec![(0..n).collect::<Vec<_>>()];
                for &i in &after {
                    sets.extend([(i + 1..n).collect(), (i + 2..n).collect(), vec![i, i + 1]]);
                }
                for rows in sets {
                    let mut buckets = vec![0u8; n];
                    rows.iter().filter(|&&r| r < n).for_each(|&r| buckets[r] = 1);
                    let mut inside = [false; 256];
                    inside[1] = true;
                    let wanted = RowSet::of(&buckets, &inside);
                    let mut t = Table::open_laid_out(TableInput::File(&path), &opts, None, Some(&got)).unwrap();
                    let got: Rows =
                        rows_of(&mut t, Some(&wanted)).into_iter().filter(|(row, ..)| wanted.contains(*row)).collect();
                    let want: Rows = rows.iter().filter(|&&r| r < n).map(|&r| all[r].clone()).collect();
                    assert_eq!(got, want, "cuts after rows {after:?}, rows from {:?}", rows.first());
                }
            }
            // A cut inside a quoted field, alone or among others, is found out.
            for &cut in inside.iter().step_by(inside.len() / 5) {
                assert!(PersonRuns::read_in_parts(&path, &opts, decide_on, &[cut as u64]).unwrap().is_none());
                let mut cuts = vec![between[1] as u64, cut as u64, between[n - 2] as u64];
                cuts.sort_unstable();
                assert!(PersonRuns::read_in_parts(&path, &opts, decide_on, &cuts).unwrap().is_none());
            }
            // The file's own cuts into parts of a fifth (read whole if one falls inside quotes).
            let cuts = source::csv_cuts(&path, 0, text.len() as u64 / 5).unwrap();
            assert_eq!(cuts.len(), 4);
            if let Some(runs) = PersonRuns::read_in_parts(&path, &opts, decide_on, &cuts).unwrap() {
                let runs = runs.unwrap();
                assert_eq!((&runs.keys, &runs.lens), (&whole.keys, &whole.lens));
            }
            // The routing's own cut, at the middle (read whole if it falls inside quotes).
            let runs = PersonRuns::read_cutting_from(&path, &opts, decide_on, 0).unwrap().unwrap();
            assert_eq!((&runs.keys, &runs.lens), (&whole.keys, &whole.lens));
        }
    }

    /// A CSV table keeping some columns' text gives those cells as a full reading does, the
    /// others empty, and a row is of a bad encoding only for a bad cell kept.
    #[test]
    fn a_csv_table_keeps_the_cells_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let mut bytes = b"a,b,c\n".to_vec();
        for i in 0..300u32 {
            bytes.extend_from_slice(format!("a{i},\"b,{i}\",").as_bytes());
            // Invalid UTF-8 in column c of every third row, in column b of row 100.
            bytes.extend_from_slice(if i % 3 == 0 { b"\xff\xfe" } else { "ค".as_bytes() });
            bytes.push(b'\n');
        }
        let row100 = bytes.windows(6).position(|w| w == b"a100,\"").unwrap();
        bytes[row100 + 7] = 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let opts = IngestOptions { encoding: super::super::Encoding::Utf8, ..Default::default() };
        let read = |keep: Option<&[usize]>| {
            let mut t = Table::open(TableInput::File(&path), &opts).unwrap();
            if let Some(k) = keep {
                t.only(k);
            }
            let mut out = Vec::new();
            t.for_each(&mut |b, _| {
                for r in 0..b.len() {
                    out.push(((0..3).map(|c| b.cell(r, c).to_text()).collect::<Vec<_>>(), b.bad_encoding(r)));
                }
                Ok(())
            })
            .unwrap();
            out
        };
        let (all, kept) = (read(None), read(Some(&[1])));
        assert_eq!(all.len(), 300);
        assert_eq!(kept.len(), 300);
        for (i, ((a, bad_a), (k, bad_k))) in all.iter().zip(&kept).enumerate() {
            assert_eq!(k[1], a[1], "row {i}");
            assert!(k[0].is_empty() && k[2].is_empty(), "row {i}: {k:?}");
            assert_eq!(*bad_a, i % 3 == 0 || i == 100, "row {i}");
            assert_eq!(*bad_k, i == 100, "row {i}");
        }
        assert_eq!(kept[7].0[1], "b,7");
    }

    fn split(households: &[u8], persons: &[u8]) -> Split {
        Split { households: households.to_vec(), persons: persons.to_vec(), ..Default::default() }
    }

    #[test]
    fn a_splits_rows_spilled_come_back_as_they_were() {
        let mut s = split(&[10, 10, 11, 12, 12, 10, 0], &[10, 10, 10, 11, 12, 12, 0, 95]);
        s.village_codes = ["1001010101", "1101010101", "1201010101"].map(|c| AreaCode::parse(c).unwrap()).to_vec();
        s.villages = 3;
        let before = s.clone();
        let spilled = s.spill_rows().unwrap();
        // Only what is beside the rows stays in memory.
        assert!(s.households.capacity() == 0 && s.persons.capacity() == 0);
        assert_eq!(s.bytes_beside_rows(), crate::memory::vec_bytes(&before.village_codes));
        s.restore_rows(spilled).unwrap();
        assert_eq!(s, before);
        // A part that does not hold as many rows as written is refused, not read short.
        let mut spilled = s.spill_rows().unwrap();
        spilled.persons += 1;
        let e = s.restore_rows(spilled).unwrap_err().to_string();
        assert!(e.contains("routing's temporary file"), "{e}");
    }

    #[test]
    fn waves_pack_consecutive_provinces_within_the_budget() {
        // 3 rows of province 10, 1 of 11, 2 of 12; persons likewise.
        let s = split(&[10, 10, 11, 12, 12, 10], &[10, 10, 10, 11, 12, 12]);
        let each = s.waves(None).unwrap();
        assert_eq!(each.iter().map(|w| w.buckets.clone()).collect::<Vec<_>>(), vec![vec![10], vec![11], vec![12]]);
        let across = 6 * BYTES_ACROSS_WAVES_PER_PERSON_ROW + 12 + BYTES_FIXED;
        let w10 = 3 * BYTES_PER_PERSON_ROW + 3 * BYTES_PER_HOUSEHOLD_ROW;
        let w11 = BYTES_PER_PERSON_ROW + BYTES_PER_HOUSEHOLD_ROW;
        // Room for 10 and 11 together, not 12 as well.
        let waves = s.waves(Some(across + w10 + w11)).unwrap();
        assert_eq!(waves.iter().map(|w| w.buckets.clone()).collect::<Vec<_>>(), vec![vec![10, 11], vec![12]]);
        assert_eq!(waves.iter().map(|w| w.person_rows).sum::<u64>(), 6);
        // Everything in one wave when it fits.
        assert_eq!(s.waves(Some(u64::MAX)).unwrap().len(), 1);
        // What is held across the waves (here 40 bytes a person row) leaves less for them.
        let held = 6 * 40;
        let buckets = |budget: u64| -> Vec<Vec<u8>> {
            let waves = s.waves_holding(Some(budget), 40).unwrap();
            waves.into_iter().map(|w| w.buckets).collect()
        };
        assert_eq!(buckets(across + w10 + w11), vec![vec![10], vec![11, 12]]);
        assert_eq!(buckets(across + held + w10 + w11), vec![vec![10, 11], vec![12]]);
        // Below the largest province: an error naming it, before any work.
        let e = s.waves(Some(across + w10 - 1)).unwrap_err().to_string();
        assert!(e.contains("province 10") && e.contains("--max-memory"), "{e}");
    }

    /// Persons go to their household key's first province, across the chunks their lookups are
    /// made in: runs of one key, keys with no household, empty and unreadable cells, the key 0
    /// (held apart in the table), a key repeated in another province, a village that names none.
    #[test]
    fn persons_go_where_their_households_first_went() {
        let dir = tempfile::tempdir().unwrap();
        let (hh, pp) = (dir.path().join("households.csv"), dir.path().join("persons.csv"));
        let empty = |n: usize| ",".repeat(n);
        let provinces = [10u8, 11, 12, 20, 30, 40, 50, 90];
        // Household rows: (key cell, village cell); the first province of each key.
        let mut households: Vec<(String, String)> = Vec::new();
        let mut first: std::collections::HashMap<u64, u8> = std::collections::HashMap::new();
        for i in 0..600u64 {
            let key = match i {
                7 => 0,        // the key 0
                40 | 41 => 12, // repeats of an earlier key, elsewhere
                _ => 1000 + i,
            };
            let p = provinces[(i * 7 % 8) as usize];
            let village = if i == 3 { "ninety".to_string() } else { format!("{p:02}01010101") };
            let bucket = if i == 3 { UNPLACED } else { p };
            first.entry(key).or_insert(bucket);
            let cell = if i == 9 { String::new() } else { key.to_string() };
            if i == 9 {
                first.remove(&key);
            }
            households.push((cell, village));
        }
        let mut text = String::from(
            "household_id,village_code,house_id,house_no,survey_year,members,income_per_member,ind_4,ind_5,ind_8,ind_9,ind_10,ind_11,ind_12,ind_13,ind_14,ind_22,ind_23,ind_24,ind_25,ind_30,ind_31\n",
        );
        for (k, v) in &households {
            text.push_str(&format!("{k},{v}{}\n", empty(20)));
        }
        std::fs::write(&hh, text).unwrap();
        // 40,000 persons (two chunk boundaries) in runs of 1 to 5 rows of one cell.
        let mut text = String::from(
            "household_id,citizen_id,title,first_name,last_name,sex,birth_date,age,relation,disabled,welfare_registered,welfare_validated,ind_1,ind_2,ind_3,ind_6,ind_7,ind_15,ind_16,ind_17,ind_18,ind_19,ind_20,ind_21,ind_26,ind_27,ind_28,ind_29\n",
        );
        let mut want = Vec::new();
        let mut x = 12345u64;
        while want.len() < 40_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let pick = (x >> 33) % 100;
            let (cell, bucket) = match pick {
                0..=2 => (String::new(), UNPLACED),
                3 => ("x1".to_string(), UNPLACED),
                4 => ("999999".to_string(), UNPLACED),
                5 => ("0".to_string(), first[&0]),
                6 => ("12".to_string(), first[&12]),
                7 => ("1009".to_string(), UNPLACED), // its household's key cell is empty
                _ => {
                    let k = 1000 + (x >> 40) % 600;
                    (k.to_string(), first.get(&k).copied().unwrap_or(UNPLACED))
                }
            };
            for _ in 0..1 + (x >> 20) % 5 {
                text.push_str(&format!("{cell}{}\n", empty(27)));
                want.push(bucket);
            }
        }
        std::fs::write(&pp, text).unwrap();
        let split = Split::read(&hh, &pp, &IngestOptions::default()).unwrap();
        assert_eq!(split.persons.len(), want.len());
        let wrong = split.persons.iter().zip(&want).position(|(got, want)| got != want);
        assert_eq!(wrong, None, "first person routed elsewhere");
        assert_eq!(split.households[3], UNPLACED);
        // Row 41 names province 90; its key's first row (40) province 10.
        assert_eq!((split.households[40], split.households[41], first[&12]), (10, 10, 10));
    }

    #[test]
    fn row_sets_hold_the_rows_of_their_buckets() {
        let s = split(&[10, 11, 10, UNPLACED], &[11; 70]);
        let waves = s.waves(None).unwrap();
        assert_eq!(waves[0].buckets, vec![UNPLACED]);
        let (h, p) = s.rows_of(&waves[1]);
        assert_eq!((h.contains(1), h.contains(2), h.contains(3), h.contains(4)), (true, false, true, false));
        assert!(!h.contains(0) && !h.contains(5) && h.len() == 2 && p.is_empty());
        let (_, p) = s.rows_of(&waves[2]);
        assert!((1..=70).all(|r| p.contains(r)) && !p.contains(71) && p.len() == 70);
        assert!(p.any_in(70, 5) && !p.any_in(71, 100) && p.any_in(1, 1) && !p.any_in(1, 0));
        assert_eq!(p.ranges(1), vec![(1, 70)]);
        // Against a row-by-row check, for every window of a set with gaps.
        let gaps: Vec<u8> = (0..200u32).map(|i| if i % 37 == 5 || (90..100).contains(&i) { 11 } else { 12 }).collect();
        let s = split(&gaps, &[]);
        let (h, _) = s.rows_of(&s.waves(None).unwrap()[0]);
        assert!(!h.any_in(0, 1) && h.any_in(0, 2) == h.contains(1));
        for first in 1..=201u64 {
            for len in 0..140u64 {
                assert_eq!(h.any_in(first, len), (first..first + len).any(|r| h.contains(r)), "{first} {len}");
            }
        }
        // Ranges against a row-by-row reading, for every gap: runs of rows in the set, joined
        // across fewer than `gap` rows outside it.
        for gap in 0..70u64 {
            let mut want: Vec<(u64, u64)> = Vec::new();
            for r in (1..=200u64).filter(|&r| h.contains(r)) {
                match want.last_mut() {
                    Some((first, rows)) if r - (*first + *rows) < gap.max(1) => *rows = r + 1 - *first,
                    _ => want.push((r, 1)),
                }
            }
            assert_eq!(h.ranges(gap), want, "gap {gap}");
        }
        assert_eq!(h.ranges(1).len(), 7);
        assert_eq!(h.ranges(1_000), vec![(6, 186)]);
        // Runs across word boundaries and reaching the last bit of the last word.
        let edges: Vec<u8> = (0..256u32).map(|i| if (60..130).contains(&i) || i >= 250 { 11 } else { 12 }).collect();
        let s = split(&edges, &[]);
        let (h, _) = s.rows_of(&s.waves(None).unwrap()[0]);
        assert_eq!(h.ranges(1), vec![(61, 70), (251, 6)]);
        // Long runs of one bucket (whole words read at once) and short ones, against the
        // buckets row by row, for every wave.
        let runs: Vec<u8> = (0..1_000u32).map(|i| [11, 12, 13][((i / 150 + i / 640) % 3) as usize]).collect();
        let mut mixed = runs.clone();
        mixed[300] = 12;
        mixed[999] = 11;
        for buckets in [runs, mixed] {
            let s = split(&buckets, &[]);
            for wave in s.waves(None).unwrap() {
                let (h, _) = s.rows_of(&wave);
                for (i, b) in buckets.iter().enumerate() {
                    assert_eq!(h.contains(i as u64 + 1), wave.buckets.contains(b), "row {}", i + 1);
                }
                assert_eq!(h.len(), buckets.iter().filter(|b| wave.buckets.contains(b)).count() as u64);
            }
        }
        assert_eq!(RowSet::default().ranges(1), vec![]);
    }
}
