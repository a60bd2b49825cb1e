//! Several survey rounds read from their folders, matched pair by pair and written: what
//! `tpmap panel R1 R2 ...` does, and what `tpmap run R1 R2 ...` adds to the latest round's run
//! (its `panel/` folder and the report's "Year over year" section).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::effects::Effect;
use super::{AreaTransitions, MatchSummary, Panel, PanelOptions, PersonText, Round};
use crate::extract::Extract;
use crate::indicators::Edition;
use crate::ingest::{IngestOptions, IngestReport};
use crate::score::{DimensionMask, Welfare};
use crate::spill::SpillFile;
use crate::{Error, Result};

/// Options of [`write_rounds`].
#[derive(Clone, Debug)]
pub struct RoundsOptions {
    /// Served list of the earlier of two rounds (default: the earlier folder's `served.csv`).
    pub served: Option<PathBuf>,
    /// TPMAP dimension switches for "poor".
    pub mask: DimensionMask,
    /// Welfare condition for target poor.
    pub welfare: Welfare,
    /// One edition (built-in id or TOML file) for all rounds, or one per round; none: every
    /// round is read with `ingest`'s edition.
    pub editions: Vec<String>,
    /// Mapping files saying which indicators of two editions correspond.
    pub edition_maps: Vec<PathBuf>,
    /// How every round is read (strictness, encoding, area check ...); its edition is replaced
    /// by the round's from `editions`.
    pub ingest: IngestOptions,
    /// Whole, or a wave of provinces at a time.
    pub reading: Reading,
    /// A memory budget in bytes (`--max-memory`): the comparison is refused before any round is
    /// read when its estimate ([`need`]) passes it, and every round is read a wave of provinces
    /// at a time (whatever `reading` says) in waves that fit what the rounds kept so far leave
    /// of it; the names kept for matching by name are checked before each pair is matched.
    pub max_memory: Option<u64>,
}

/// How each round's files are read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reading {
    /// A wave of provinces at a time when both files are Parquet and the persons file has at
    /// least 10 M rows (as `tpmap run` partitions), else whole.
    #[default]
    Auto,
    /// All at once.
    Whole,
    /// One province at a time, whatever the files.
    Provinces,
}

impl Default for RoundsOptions {
    fn default() -> Self {
        RoundsOptions {
            served: None,
            mask: DimensionMask::ALL,
            welfare: Welfare::Validated,
            editions: vec!["bmn-2560".into()],
            edition_maps: Vec::new(),
            ingest: IngestOptions::default(),
            reading: Reading::Auto,
            max_memory: None,
        }
    }
}

/// One consecutive pair of rounds, as written.
#[derive(Clone, Debug, Serialize)]
pub struct PairOutcome {
    /// The earlier round's name (its folder's).
    pub earlier: String,
    /// The later round's name.
    pub later: String,
    /// Households matched by each route, and their fates.
    pub summary: MatchSummary,
    /// Indicators of the earlier edition without a counterpart in the later one.
    pub only_earlier: Vec<String>,
    /// ... and of the later without one in the earlier.
    pub only_later: Vec<String>,
    /// The country's transitions.
    pub country: Option<AreaTransitions>,
    /// The provinces' transitions, in code order.
    pub provinces: Vec<AreaTransitions>,
    /// The follow-up of the programs of the earlier round's served list.
    pub effects: Vec<Effect>,
    /// The pair's folder below the output folder (empty: the output folder itself).
    pub folder: String,
}

/// What [`write_rounds`] read and wrote.
#[derive(Clone, Debug, Serialize)]
pub struct RoundsOutcome {
    /// The rounds' names (their folders', numbered when two are alike).
    pub names: Vec<String>,
    /// Each round's reading report.
    pub reports: Vec<IngestReport>,
    /// Each consecutive pair.
    pub pairs: Vec<PairOutcome>,
}

/// Reads `rounds` (folders with `households.*` and `persons.*`, oldest first), matches each
/// consecutive pair and writes, into the existing folder `out`: for two rounds `matches.parquet`,
/// `transitions.{csv,parquet}`, `effects.csv`, `panel.json` and `panel.html`; for more, those of
/// each pair in `out/<earlier>-<later>/`; and `trajectories.parquet` through all of them.
/// `latest`: the last round already read (by `tpmap run`, whose job it is), not read again.
pub fn write_rounds(
    rounds: &[PathBuf],
    o: &RoundsOptions,
    out: &Path,
    latest: Option<&crate::ingest::Ingested>,
) -> Result<RoundsOutcome> {
    write_rounds_checked(rounds, o, out, latest, None)
}

/// [`write_rounds`]; `checked`: the estimate already checked against `o.max_memory` by the
/// caller (a partitioned run, before any work), not made again (it reads every round's
/// routing: about 3 s a national round), with the routing it read ([`need_routed`]).
pub(crate) fn write_rounds_checked(
    rounds: &[PathBuf],
    o: &RoundsOptions,
    out: &Path,
    latest: Option<&crate::ingest::Ingested>,
    checked: Option<Vec<Routed>>,
) -> Result<RoundsOutcome> {
    if rounds.len() < 2 || rounds.len() > 20 {
        return Err(Error::Config("a panel compares 2 to 20 rounds, oldest first".into()));
    }
    if o.served.is_some() && rounds.len() > 2 {
        return Err(Error::Config(
            "--served goes with two rounds; with more, each round's folder gives its served.csv".into(),
        ));
    }
    let editions = &o.editions;
    if editions.len() > 1 && editions.len() != rounds.len() {
        return Err(Error::Config(format!(
            "--edition gives one edition for all rounds or one per round ({} rounds, {} editions)",
            rounds.len(),
            editions.len()
        )));
    }
    let ingest_options = |r: usize| -> Result<IngestOptions> {
        let mut opts = o.ingest.clone();
        if let Some(e) = editions.get(r.min(editions.len().saturating_sub(1))) {
            opts.edition = Arc::new(Edition::from_id_or_file(e)?);
        }
        Ok(opts)
    };
    // The routing the estimate read, kept for the reading (its row buckets on disk meanwhile).
    let checked_already = checked.is_some();
    let mut routed: Vec<Routed> = checked.unwrap_or_default();
    if let Some(budget) = o.max_memory.filter(|_| !checked_already) {
        let need;
        (need, routed) = need_routed(rounds, o, latest, true, None)?;
        // The routing kept holds each round's village codes until the round is read.
        let kept = routed.iter().flatten().map(|(s, _)| s.bytes_beside_rows()).fold(0, u64::saturating_add);
        let needed = need.bytes.saturating_add(kept);
        if needed > budget {
            return Err(Error::Config(format!(
                "--max-memory {} is below what comparing these {} rounds needs: about {} ({}); give at least that",
                crate::limits::format_bytes(budget),
                rounds.len(),
                crate::limits::format_bytes(needed),
                need.what
            )));
        }
    }
    let popts = PanelOptions { mask: o.mask, welfare: o.welfare, editions: None };
    // Every round read in waves spills its persons' names to disk, and matching reads back
    // those it may link. A round read whole keeps them in memory: every person's, but the last
    // round's only for the households its predecessor cannot match by keys or IDs.
    let mut lap = crate::diagnostics::Lap::start();
    let mut got: Vec<ReadRound> = Vec::with_capacity(rounds.len());
    let to_read = rounds.len() - usize::from(latest.is_some());
    for (r, dir) in rounds.iter().enumerate().take(to_read) {
        let (h, p) = (crate::pipeline::pick(dir, "households")?, crate::pipeline::pick(dir, "persons")?);
        let earlier = if r + 1 == rounds.len() { got.last().map(|g| &*g.round) } else { None };
        // Within a budget: what the rounds kept so far leave of it, for this round's own columns
        // and names, and its reading.
        let room = o
            .max_memory
            .map(|b| (b, got.iter().map(ReadRound::heap_bytes).fold(PANEL_BYTES_FIXED, u64::saturating_add)));
        let split = routed.get_mut(r).and_then(Option::take);
        let read = read_round((&h, &p, split), (o.reading, room), &ingest_options(r)?, &popts, earlier)?;
        // What the reading freed goes back before the next round is read beside this one.
        crate::memory::release();
        lap.lap(&format!(
            "panel: round {} read (round {} MiB, names {} MiB)",
            r + 1,
            read.round.heap_bytes() >> 20,
            read.text.heap_bytes() >> 20
        ));
        got.push(read);
    }
    if let Some(l) = latest {
        let earlier = got.last().map(|g| &*g.round);
        got.push(ReadRound::of(l, &popts, earlier)?);
    }
    let maps = &o.edition_maps;
    let ids: Vec<(String, String)> =
        maps.iter().map(|m| super::editions::EditionMap::ids_of(m)).collect::<Result<_>>()?;
    let mut names: Vec<String> = rounds
        .iter()
        .enumerate()
        .map(|(i, d)| d.file_name().map_or(format!("round{}", i + 1), |n| n.to_string_lossy().into_owned()))
        .collect();
    // Folder names name the rounds' columns and folders: when two are alike, number them all.
    let mut sorted = names.clone();
    sorted.sort();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        names = names.iter().enumerate().map(|(i, n)| format!("round{}_{n}", i + 1)).collect();
    }
    let mut panels: Vec<Panel> = Vec::with_capacity(got.len().saturating_sub(1));
    for r in 0..got.len().saturating_sub(1) {
        let (w0, w1) = (&got[r], &got[r + 1]);
        let (a, b) = (&w0.round.edition, &w1.round.edition);
        let file = ids.iter().position(|(x, y)| *x == a.id && *y == b.id).map(|k| &maps[k]);
        let editions = match file {
            Some(f) => Some(super::editions::EditionMap::load(f, a, b)?),
            None => None,
        };
        let opts = PanelOptions { editions, ..popts.clone() };
        let (t, t1) = (w0.round.clone(), w1.round.clone());
        // Names on disk are read back for the persons matching may link: the earlier round's
        // without a citizen ID the later round has, the later round's in households neither
        // keys nor IDs match (and the training sample's).
        let ReadRound { text, spill, .. } = &mut got[r];
        let flags = |n: usize, f: &(dyn Fn(usize) -> bool + Sync)| -> Vec<bool> {
            use rayon::prelude::*;
            crate::in_pool(|| (0..n).into_par_iter().map(f).collect())
        };
        let earlier_text = match spill {
            Some((file, _)) => {
                let needed = flags(t.persons.len(), &|k| super::earlier_names_needed(&t, &t1, k));
                Some(text.subset(file, |k| needed[k])?)
            }
            None => None,
        };
        // The names read back are all round r's names serve from now on (it was the later
        // round of the pair before): freed before matching (a national round's distinct names
        // and house numbers are about 0.1 GB).
        if earlier_text.is_some() {
            (got[r].text, got[r].spill) = (PersonText::default(), None);
        }
        let ReadRound { text: text1, spill: spill1, .. } = &mut got[r + 1];
        let later_text = match spill1 {
            Some((file, _)) => {
                let needed = flags(t1.households.len(), &|j| super::later_names_needed(&t, &t1, j));
                Some(text1.subset(file, |k| needed[t1.persons.household[k] as usize])?)
            }
            None => None,
        };
        // ... and the last round's, which no later pair reads back.
        if later_text.is_some() && r + 2 == got.len() {
            (got[r + 1].text, got[r + 1].spill) = (PersonText::default(), None);
        }
        crate::memory::release();
        let (w0, w1) = (&got[r], &got[r + 1]);
        if let Some(budget) = o.max_memory {
            // The names kept for matching by name are known only now (the later round's
            // households that neither keys nor citizen IDs match), and with them the records
            // linked when a person of either round has no citizen ID: checked before matching.
            let kept = got.iter().map(ReadRound::heap_bytes).fold(PANEL_BYTES_FIXED, u64::saturating_add);
            let name_bytes =
                [&earlier_text, &later_text].iter().filter_map(|t| t.as_ref()).map(PersonText::heap_bytes).sum::<u64>();
            let rows = |g: &ReadRound| (g.round.households.len() as u64, g.round.persons.len() as u64);
            // The rounds before the pair keep their indices, and the pairs before it their
            // matches and flows.
            let before = got[..r]
                .iter()
                .map(|g| indices_bytes(rows(g)))
                .chain(panels.iter().map(Panel::heap_bytes))
                .fold(0u64, u64::saturating_add);
            let without_id = |round: &Round| round.persons.citizen_id.iter().any(Option::is_none);
            let records = match without_id(&w0.round) || without_id(&w1.round) {
                true => {
                    let kept_of =
                        |sub: &Option<PersonText>, all: &PersonText| sub.as_ref().unwrap_or(all).kept() as u64;
                    kept_of(&earlier_text, &w0.text).saturating_add(kept_of(&later_text, &w1.text))
                }
                false => 0,
            };
            let linking = records.saturating_mul(LINK_BYTES_PER_RECORD);
            let held = kept.saturating_add(name_bytes);
            let pair = before.saturating_add(pair_bytes(rows(w0), rows(w1)));
            // The flows and the list of matches come once the names are freed: those of the
            // rounds after the pair and a middle round's stay.
            let n = got.len();
            let v = villages_of_either(
                &super::village_codes(&w0.round.households.village),
                &super::village_codes(&w1.round.households.village),
            );
            let ending = got
                .iter()
                .enumerate()
                .map(|(k, g)| {
                    g.round.column_bytes().saturating_add(g.text.heap_bytes().saturating_mul(names_held(k, r, n, true)))
                })
                .fold(PANEL_BYTES_FIXED, u64::saturating_add)
                .saturating_add(pair)
                .saturating_add(ending_bytes(rows(w0).0, rows(w1).0, v));
            let needed = held.saturating_add(pair).saturating_add(linking).max(ending);
            if needed > budget {
                return Err(Error::Config(format!(
                    "--max-memory {} is below what matching {} to {} needs: about {} (the rounds and the names kept for \
                     matching by name {}, of which names {}; linking {records} persons by name {}); give at least that",
                    crate::limits::format_bytes(budget),
                    names[r],
                    names[r + 1],
                    crate::limits::format_bytes(needed),
                    crate::limits::format_bytes(held),
                    crate::limits::format_bytes(name_bytes),
                    crate::limits::format_bytes(linking)
                )));
            }
        }
        let texts = (earlier_text.as_ref().unwrap_or(&w0.text), later_text.as_ref().unwrap_or(&w1.text));
        let matched = Panel::matched(t, t1, texts, &opts)?;
        drop((earlier_text, later_text));
        // Round r's names serve no later pair, nor the last round's once it is matched: freed
        // before the flows are counted (a national round's are about 0.8 GB).
        (got[r].text, got[r].spill) = (PersonText::default(), None);
        if r + 2 == got.len() {
            (got[r + 1].text, got[r + 1].spill) = (PersonText::default(), None);
        }
        crate::memory::release();
        panels.push(matched.counted());
    }
    // The names were for matching: freed before the outputs are made.
    let reports: Vec<IngestReport> = got.into_iter().map(|g| g.report).collect();
    // Nothing looks a person up once the flows are counted: a round no other pair shares (two
    // rounds: both) frees its persons' index before the outputs are made.
    for p in &mut panels {
        for round in [&mut p.t, &mut p.t1] {
            if let Some(round) = Arc::get_mut(round) {
                round.forget_person_index();
            }
        }
    }
    crate::memory::release();
    lap.lap("panel: matched, flows counted");
    let mut served_lists = Vec::new();
    for (r, dir) in rounds.iter().enumerate().take(rounds.len() - 1) {
        let file = if r == 0 { o.served.clone() } else { None }
            .or_else(|| Some(dir.join("served.csv")).filter(|f| f.exists()));
        served_lists.push(match &file {
            Some(f) => super::effects::read_served(f, &round_of(&panels, r).edition)?,
            None => Vec::new(),
        });
    }
    let mut notices: Vec<String> =
        reports.iter().flat_map(|g| crate::pipeline::data_notices(Path::new(&g.households.file))).collect();
    notices.dedup();
    let mut pairs = Vec::with_capacity(panels.len());
    for (r, p) in panels.iter().enumerate() {
        let (effects, unknown) = super::effects::effects(p, &served_lists[r]);
        let folder = if panels.len() == 1 { String::new() } else { format!("{}-{}", names[r], names[r + 1]) };
        let dir = out.join(&folder);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        lap.lap("panel: follow-up");
        super::output::write_into(p, &served_lists[r], &effects, unknown, &notices, &dir)?;
        lap.lap("panel: written");
        pairs.push(PairOutcome {
            earlier: names[r].clone(),
            later: names[r + 1].clone(),
            summary: p.summary.clone(),
            only_earlier: p.editions.only_earlier.clone(),
            only_later: p.editions.only_later.clone(),
            country: p.transitions.first().cloned(),
            provinces: p.transitions.iter().filter(|a| a.level == "province").cloned().collect(),
            effects,
            folder,
        });
    }
    super::output::write_trajectories(&panels, &names, &served_lists, &out.join("trajectories.parquet"))?;
    lap.lap("panel: trajectories written");
    Ok(RoundsOutcome { names, reports, pairs })
}

/// What comparing rounds within a memory budget needs, estimated before any round is read
/// ([`need`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanelNeed {
    /// The estimated peak, in bytes.
    pub bytes: u64,
    /// Where the peak is, in words ("reading round 2", "matching 2561 to 2562").
    pub what: String,
}

/// Bytes a household of a round takes as the panel keeps it: key, village, house ID, failing
/// and counting indicators, score, the two statuses and its members' offset — the columns
/// [`Round::reserve`] sizes exactly (57 bytes).
pub const ROUND_BYTES_PER_HOUSEHOLD: u64 = (std::mem::size_of::<crate::ids::HouseholdId>()
    + std::mem::size_of::<crate::areas::AreaCode>()
    + std::mem::size_of::<Option<crate::ids::HouseId>>()
    + 3 * 8
    + 2
    + 4) as u64;

/// Bytes a person of a round takes as the panel keeps it: household row and citizen ID.
pub const ROUND_BYTES_PER_PERSON: u64 = (4 + std::mem::size_of::<Option<crate::ids::CitizenId>>()) as u64;

/// Bytes a round's names keep in memory a household while their per-person columns are on disk
/// (a round read in waves): its house number and a share of the distinct names (113 MiB
/// measured for the 12.9 M households of a SYNTHETIC national round, 9.2 bytes each, rounded
/// up). The names matching reads back from disk are counted when they are known, before
/// matching.
pub const NAMES_BYTES_PER_HOUSEHOLD: u64 = 16;

/// Bytes a panel holds whatever its rounds: the program, the editions, the area registry, the
/// worker threads. About 40 MB measured (the RSS once the first SYNTHETIC national round was
/// read, less its columns and names: docs/bench/panel-national.txt), rounded up. A run's
/// [`BYTES_FIXED`](crate::ingest::partition::BYTES_FIXED) also holds merged results, which a
/// panel has none of.
pub const PANEL_BYTES_FIXED: u64 = 64 << 20;

/// Bytes reading a wave of a round takes beyond what the panel keeps of it, a person row read
/// (its households' share included) and a wave ([`READING_BYTES_PER_WAVE`]): the wave's extract,
/// its validation and its households' scores. Measured wave by wave on the two SYNTHETIC
/// national rounds, read a province at a time with freed memory given back before each wave
/// (the rise of the peak over the RSS before it): 255 bytes a person row and 69 MB a wave
/// fitted over 150 waves; 340 bytes and 64 MiB bound every one (the 1.71 M-row province took
/// 312 bytes a row). Each round's first wave rose more by what it made room for (the citizen
/// IDs' set, [`Split::reader_bytes`]; the earlier round's indices), counted apart.
///
/// [`Split::reader_bytes`]: crate::ingest::partition::Split::reader_bytes
pub const READING_BYTES_PER_PERSON_ROW: u64 = 340;

/// See [`READING_BYTES_PER_PERSON_ROW`].
pub const READING_BYTES_PER_WAVE: u64 = 64 << 20;

/// Bytes a record takes while the persons without a matching citizen ID are linked by name:
/// the link job's compact record, its blocking keys, candidate pairs and scores, and the
/// panel's note of whose record it is. Measured on two SYNTHETIC national rounds with 2 % of
/// IDs blanked: 4.74 M records raised the peak 972 MB over the RSS before they were made, 205
/// bytes a record (docs/bench/panel-national.txt); rounded up. Counted for every person whose
/// names are read back for matching (the records are among them).
pub const LINK_BYTES_PER_RECORD: u64 = 256;

/// Bytes reading `wave` takes beyond what the panel keeps ([`READING_BYTES_PER_PERSON_ROW`]).
fn reading_bytes(wave: &crate::ingest::partition::Wave) -> u64 {
    wave.person_rows.saturating_mul(READING_BYTES_PER_PERSON_ROW).saturating_add(READING_BYTES_PER_WAVE)
}

/// Bytes a round kept by the panel takes ([`ROUND_BYTES_PER_HOUSEHOLD`],
/// [`ROUND_BYTES_PER_PERSON`]).
pub fn round_bytes(households: u64, persons: u64) -> u64 {
    households.saturating_mul(ROUND_BYTES_PER_HOUSEHOLD).saturating_add(persons.saturating_mul(ROUND_BYTES_PER_PERSON))
}

/// Bytes a table of `n` rows by key takes ([`Round`]'s indices: a `u32` and a control byte a
/// bucket, buckets a power of two at least 8/7 of the entries).
fn table_bytes(n: u64) -> u64 {
    n.saturating_mul(8).div_ceil(7).max(4).checked_next_power_of_two().unwrap_or(u64::MAX).saturating_mul(5)
}

/// Bytes a round's indices take (households by key, persons by citizen ID), built when it is the
/// earlier round of a pair and kept until the outputs.
fn indices_bytes((h, p): (u64, u64)) -> u64 {
    table_bytes(h).saturating_add(table_bytes(p))
}

/// Bytes matching a later round of `(h1, p1)` households and persons to an earlier one of
/// `(h0, p0)` holds beyond the rounds and the names: the earlier round's indices and the later
/// round's persons by citizen ID ([`table_bytes`]), and the matching's state (each later
/// household's predecessor, route and members in common, each earlier household's successor).
/// The list of matches comes once the names are freed ([`matches_bytes`]); the linkage of
/// persons without an ID is counted once the names it links are known
/// ([`LINK_BYTES_PER_RECORD`]).
pub fn pair_bytes((h0, p0): (u64, u64), (h1, p1): (u64, u64)) -> u64 {
    let size = |b: usize| b as u64;
    let opt_row = size(std::mem::size_of::<Option<u32>>());
    let matching = (opt_row + size(std::mem::size_of::<Option<super::Route>>()) + 4)
        .saturating_mul(h1)
        .saturating_add(opt_row.saturating_mul(h0));
    [matching, indices_bytes((h0, p0)), table_bytes(p1)].into_iter().fold(0u64, u64::saturating_add)
}

/// Bytes the list of matches of an earlier round of `h0` households and a later one of `h1`
/// adds at most to the matching's state ([`pair_bytes`]): a match a household of either round
/// (every earlier household ended), less the later households' routes and counts, freed once
/// their matches are listed.
pub fn matches_bytes(h0: u64, h1: u64) -> u64 {
    let one = std::mem::size_of::<super::Match>() as u64;
    let freed = (std::mem::size_of::<Option<super::Route>>() + 4) as u64;
    one.saturating_mul(h1).max(one.saturating_mul(h0.saturating_add(h1)).saturating_sub(freed.saturating_mul(h1)))
}

/// Bytes counting the flows of a village takes, its share of the areas above it included: its
/// transitions in every area (flows, and each dimension's and indicator's exits and entries)
/// while they are counted and as kept. About 1.85 kB measured for the 84 k villages of two
/// SYNTHETIC national rounds in the `bmn-2560` edition (the RSS's rise while the flows were
/// counted, less each household's village index: docs/bench/panel-national.txt), rounded up.
pub const FLOWS_BYTES_PER_VILLAGE: u64 = 3 << 10;

/// Bytes counting the flows of two rounds of `h0` and `h1` households in `villages` villages
/// takes: each household's village index (4 bytes) and [`FLOWS_BYTES_PER_VILLAGE`].
pub fn flows_bytes(h0: u64, h1: u64, villages: u64) -> u64 {
    h0.saturating_add(h1).saturating_mul(4).saturating_add(villages.saturating_mul(FLOWS_BYTES_PER_VILLAGE))
}

/// Bytes the end of a pair's comparison adds to the matching's state, once the names are
/// freed: the flows while they are counted ([`flows_bytes`]), or the list of matches
/// ([`matches_bytes`]) beside the flows counted.
pub fn ending_bytes(h0: u64, h1: u64, villages: u64) -> u64 {
    flows_bytes(h0, h1, villages)
        .max(matches_bytes(h0, h1).saturating_add(villages.saturating_mul(FLOWS_BYTES_PER_VILLAGE)))
}

/// Distinct villages of `codes` (ascending) and `others` (ascending).
fn villages_of_either(codes: &[crate::areas::AreaCode], others: &[crate::areas::AreaCode]) -> u64 {
    let (mut i, mut j, mut n) = (0usize, 0usize, 0u64);
    while i < codes.len() || j < others.len() {
        match (codes.get(i), others.get(j)) {
            (Some(a), Some(b)) if a == b => (i, j) = (i + 1, j + 1),
            (Some(a), Some(b)) if a < b => i += 1,
            (Some(_), None) => i += 1,
            _ => j += 1,
        }
        n += 1;
    }
    n
}

/// How many copies of round `r`'s names the pair `(k, k + 1)` of `n` rounds holds while its
/// households are matched (`listing` false: the rounds it has not yet left, the pair's own
/// names read back for matching, and a middle round's kept for the next pair) or while its
/// matches are listed (`listing` true: the names read back freed).
fn names_held(r: usize, k: usize, n: usize, listing: bool) -> u64 {
    let middle = k + 2 < n && r == k + 1;
    match listing {
        false => u64::from(r >= k) + u64::from(middle),
        true => u64::from(r > k + 1) + u64::from(middle),
    }
}

/// Estimates what comparing `rounds` with `o` needs at its peak, from the rows of each round's
/// files (read for their provinces, as a partitioned run reads them first), with
/// [`PANEL_BYTES_FIXED`]:
/// - reading each round a province at a time beside the rounds before it: their columns
///   ([`round_bytes`]) and names ([`NAMES_BYTES_PER_HOUSEHOLD`]), this round's, what its reader
///   holds across its waves ([`Split::reader_bytes`]) and its largest province
///   ([`READING_BYTES_PER_PERSON_ROW`]);
/// - matching each pair beside every round ([`pair_bytes`], and the indices of the rounds
///   before the pair).
///
/// `latest`: the last round already read (not read again; its rows are its extract's). The
/// names matching reads back, and the linkage of persons without a matching ID, are counted
/// when they are known, before matching (`write_rounds` then checks again).
///
/// [`Split::reader_bytes`]: crate::ingest::partition::Split::reader_bytes
pub fn need(rounds: &[PathBuf], o: &RoundsOptions, latest: Option<&crate::ingest::Ingested>) -> Result<PanelNeed> {
    need_routed(rounds, o, latest, false, None).map(|(need, _)| need)
}

/// A round's routing ([`Split`](crate::ingest::partition::Split)) read by [`need_routed`], its row
/// buckets in a temporary file until the round is read (`None`: not read).
pub(crate) type Routed = Option<(crate::ingest::partition::Split, crate::ingest::partition::SpilledRows)>;

/// [`need`], and with `keep_routing` each round's routing it read (else nothing), for the reading: a
/// national round's takes about 2-3 s to read. `this`: the last round's routing when the caller
/// already holds it (a partitioned run's own, of the files the round's folder gives and with the
/// rounds' reading options), used instead of reading it again.
pub(crate) fn need_routed(
    rounds: &[PathBuf],
    o: &RoundsOptions,
    latest: Option<&crate::ingest::Ingested>,
    keep_routing: bool,
    this: Option<&crate::ingest::partition::Split>,
) -> Result<(PanelNeed, Vec<Routed>)> {
    use crate::ingest::partition::Split;
    let mut routed: Vec<Routed> = Vec::with_capacity(rounds.len());
    let mut rows: Vec<(u64, u64)> = Vec::with_capacity(rounds.len());
    let mut villages: Vec<Vec<crate::areas::AreaCode>> = Vec::with_capacity(rounds.len());
    let mut best = PanelNeed { bytes: PANEL_BYTES_FIXED, what: "nothing".into() };
    let mut keep = PANEL_BYTES_FIXED;
    let to_read = rounds.len() - usize::from(latest.is_some());
    let names = |h: u64| h.saturating_mul(NAMES_BYTES_PER_HOUSEHOLD);
    for (r, dir) in rounds.iter().enumerate() {
        let (h, p) = if r < to_read {
            let (hf, pf) = (crate::pipeline::pick(dir, "households")?, crate::pipeline::pick(dir, "persons")?);
            let mut opts = o.ingest.clone();
            if let Some(e) = o.editions.get(r.min(o.editions.len().saturating_sub(1))) {
                opts.edition = Arc::new(Edition::from_id_or_file(e)?);
            }
            let mut split = match this.filter(|_| r + 1 == rounds.len()) {
                Some(s) => s.clone(),
                None => Split::read(&hf, &pf, &opts)?,
            };
            let (h, p) = (split.households.len() as u64, split.persons.len() as u64);
            let largest = split.waves(None)?.iter().map(reading_bytes).max().unwrap_or(0);
            let reading = keep
                .saturating_add(round_bytes(h, p))
                .saturating_add(names(h))
                .saturating_add(split.reader_bytes())
                .saturating_add(largest);
            if reading > best.bytes {
                best = PanelNeed { bytes: reading, what: format!("reading round {}", r + 1) };
            }
            villages.push(split.village_codes.clone());
            routed.push(match keep_routing {
                true => split.spill_rows().map(|rows| Some((split, rows)))?,
                false => None,
            });
            (h, p)
        } else {
            routed.push(None);
            villages.push(latest.map(|l| super::village_codes(&l.extract.households.village)).unwrap_or_default());
            latest.map_or((0, 0), |l| (l.extract.households.len() as u64, l.extract.persons.len() as u64))
        };
        keep = keep.saturating_add(round_bytes(h, p)).saturating_add(names(h));
        rows.push((h, p));
    }
    let columns = rows.iter().map(|&(h, p)| round_bytes(h, p)).fold(PANEL_BYTES_FIXED, u64::saturating_add);
    let n = rows.len();
    for k in 0..n.saturating_sub(1) {
        // The rounds before the pair keep their indices, and the pairs before it their matches
        // (24 bytes a household of either round at most), each later household's predecessor
        // and each earlier one's successor (8 bytes each) and their flows.
        let before: u64 = rows[..k]
            .iter()
            .map(|&x| indices_bytes(x))
            .chain((0..k).map(|j| {
                let (h0, h1) = (rows[j].0, rows[j + 1].0);
                let v = villages_of_either(&villages[j], &villages[j + 1]);
                (std::mem::size_of::<super::Match>() as u64 + 8)
                    .saturating_mul(h0.saturating_add(h1))
                    .saturating_add(v.saturating_mul(FLOWS_BYTES_PER_VILLAGE))
            }))
            .fold(0, u64::saturating_add);
        let held = columns.saturating_add(before).saturating_add(pair_bytes(rows[k], rows[k + 1]));
        let names_of = |listing: bool| {
            rows.iter()
                .enumerate()
                .map(|(r, &(h, _))| names(h).saturating_mul(names_held(r, k, n, listing)))
                .fold(0u64, u64::saturating_add)
        };
        let matching = held.saturating_add(names_of(false));
        let v = villages_of_either(&villages[k], &villages[k + 1]);
        let ending = held.saturating_add(names_of(true)).saturating_add(ending_bytes(rows[k].0, rows[k + 1].0, v));
        for (bytes, what) in [(matching, "matching"), (ending, "counting the flows and listing the matches of")] {
            if bytes > best.bytes {
                best = PanelNeed { bytes, what: format!("{what} round {} to round {}", k + 1, k + 2) };
            }
        }
    }
    Ok((best, routed))
}

/// Round `r` of the panels' rounds.
fn round_of(panels: &[Panel], r: usize) -> &Round {
    if r < panels.len() { &panels[r].t } else { &panels[r - 1].t1 }
}

/// Memory a wave of provinces may take, with what is held across waves (the reading's own
/// estimate, [`crate::ingest::partition::Wave::estimated_bytes`]): 1.5 GiB, so that a national
/// round read beside a national earlier round stays within 4 GiB (3.89 GiB measured, against
/// 4.36 GiB with 3 GiB waves, 2.5 s faster; docs/bench/panel-national.txt).
const WAVE_BUDGET: u64 = 3 << 29;

/// One round as read: what the panel keeps, the names for linkage, the reading's report.
struct ReadRound {
    round: Arc<Round>,
    /// The names kept; with `spill`, their per-person columns are on disk
    /// ([`PersonText::spill`]).
    text: PersonText,
    /// The file holding the names' per-person columns and the persons in it: a round read in
    /// waves.
    spill: Option<(SpillFile, usize)>,
    report: IngestReport,
}

impl ReadRound {
    /// Bytes the round's columns and its names hold in memory (its indices, once built, are
    /// counted apart: [`pair_bytes`]).
    fn heap_bytes(&self) -> u64 {
        self.round.column_bytes().saturating_add(self.text.heap_bytes())
    }

    /// Keeps what the panel needs of `got`; `earlier`: the round before, when this is the last
    /// (names kept only for the households it cannot match by keys or IDs).
    fn of(got: &crate::ingest::Ingested, popts: &PanelOptions, earlier: Option<&Round>) -> Result<ReadRound> {
        let mut text = PersonText::default();
        push_names(&mut text, &got.extract, earlier);
        Ok(ReadRound {
            round: Arc::new(Round::of(&got.extract, popts)?),
            text,
            spill: None,
            report: got.report.clone(),
        })
    }
}

/// Appends the names of `x` (a whole round, or its next wave) to `text`: every person's, or with
/// `earlier` those of the households [`super::names_needed`] names.
fn push_names(text: &mut PersonText, x: &Extract, earlier: Option<&Round>) {
    let keep = |j: usize| earlier.is_some_and(|t| super::names_needed(t, x, j));
    text.push(x, earlier.map(|_| &keep as &(dyn Fn(usize) -> bool + Sync)));
}

/// Reads one round: whole (`earlier`: the round before, when this is the last: names kept only
/// for the households [`super::names_needed`] names), or (as `reading` says; by default a large
/// extract, [`crate::pipeline::large_extract`], as `tpmap run` partitions) a wave of provinces
/// at a time, keeping only what the panel needs of each wave, every person's names on disk. A
/// round read in waves has its households in wave order (provinces in code order, the file's
/// order within each), and a citizen ID found in two provinces is kept in the first in that
/// order, as in a partitioned run (docs/partitioned.md); matching does not depend on the order.
fn read_round(
    (h, p, routed): (&Path, &Path, Routed),
    (reading, room): (Reading, Option<(u64, u64)>),
    opts: &IngestOptions,
    popts: &PanelOptions,
    earlier: Option<&Round>,
) -> Result<ReadRound> {
    use crate::ingest::partition::{PartitionedReader, Split};
    // Within a budget (`room`: the budget and what the rounds read before hold of it), always
    // in waves.
    let waves = match reading {
        _ if room.is_some() => true,
        Reading::Whole => false,
        Reading::Provinces => true,
        Reading::Auto => crate::pipeline::large_extract(h, p),
    };
    if !waves {
        return ReadRound::of(&crate::ingest::ingest(h, p, opts)?, popts, earlier);
    }
    let split = match routed {
        Some((mut split, rows)) => {
            split.restore_rows(rows)?;
            split
        }
        None => Split::read(h, p, opts)?,
    };
    // Provinces together within the budget (a province above it still reads, on its own), or
    // each on its own when asked.
    let waves = match room {
        // The round's own columns (reserved whole after its first wave) and names in memory
        // (its house numbers and distinct names), and what its reader holds across the waves,
        // beside the waves.
        Some((budget, kept)) => {
            let (rh, rp) = (split.households.len() as u64, split.persons.len() as u64);
            let own = round_bytes(rh, rp).saturating_add(rh.saturating_mul(NAMES_BYTES_PER_HOUSEHOLD));
            let across = split.reader_bytes();
            split.waves_costing(Some(budget.saturating_sub(kept.saturating_add(own))), across, &reading_bytes).map_err(
                |_| {
                    // The estimate made before reading found room: the rounds read before hold
                    // more than it counted (their names: as many distinct ones as persons, at
                    // worst).
                    let one = split.waves(None).ok().and_then(|w| w.iter().map(reading_bytes).max()).unwrap_or(0);
                    let needed = kept.saturating_add(own).saturating_add(one).saturating_add(across);
                    Error::Config(format!(
                        "--max-memory {} is below what reading {} needs beside the rounds read before it: about {} \
                         (those rounds and their names {}, this round's columns and names {}); give at least that",
                        crate::limits::format_bytes(budget),
                        h.parent().map_or_else(|| h.display().to_string(), |d| d.display().to_string()),
                        crate::limits::format_bytes(needed),
                        crate::limits::format_bytes(kept),
                        crate::limits::format_bytes(own)
                    ))
                },
            )?
        }
        None => {
            let budget = Some(WAVE_BUDGET).filter(|_| reading == Reading::Auto);
            split.waves(budget).or_else(|_| split.waves(None))?
        }
    };
    if waves.is_empty() {
        return ReadRound::of(&crate::ingest::ingest(h, p, opts)?, popts, earlier);
    }
    // A strict reading reads its waves leniently and fails with the files' first bad row, as a
    // partitioned run reads its waves.
    let (strict, read_opts) = crate::ingest::partition::wave_options(opts);
    let read_opts = &*read_opts;
    let households_in_order = split.households_in_order_of(&waves);
    let mut reader = PartitionedReader::new(split, &waves);
    // Rows of the whole round (accepted or not: at least what is kept), reserved at once.
    let rows = |w: &crate::ingest::partition::Wave| {
        (usize::try_from(w.household_rows).unwrap_or(usize::MAX), usize::try_from(w.person_rows).unwrap_or(usize::MAX))
    };
    let (all_h, all_p) =
        waves.iter().map(rows).fold((0usize, 0usize), |(a, b), (h, p)| (a.saturating_add(h), b.saturating_add(p)));
    let (read, text, spill) = loop {
        let mut read: Option<(Round, IngestReport)> = None;
        let mut text = PersonText::default();
        // Every person's names, on disk: in memory they would take about 20 bytes a person
        // while the later round is read and matched (0.8 GB nationally). The last round's,
        // which only the households its predecessor cannot match by keys or IDs need, are
        // chosen once it is read: choosing them wave by wave needed the earlier round's
        // indices (0.42 GB nationally) beside the reading.
        let (mut file, mut spilled) = (SpillFile::new("the names' temporary file")?, 0usize);
        // The house numbers, kept in memory, for the whole round at once.
        text.reserve(0, all_h);
        let mut lap = crate::diagnostics::Lap::start();
        let mut first_bad: Option<(u8, u64, Error)> = None;
        for wave in &waves {
            let got = reader.read(h, p, read_opts, wave)?;
            if strict && crate::ingest::partition::strict_skips(&got, &mut first_bad, households_in_order)? {
                continue;
            }
            let mut round = Round::of(&got.extract, popts)?;
            push_names(&mut text, &got.extract, None);
            text.spill(&mut file, &mut spilled)?;
            match &mut read {
                None => {
                    let (wh, wp) = rows(wave);
                    round.reserve(all_h.saturating_sub(wh), all_p.saturating_sub(wp));
                    read = Some((round, got.report));
                }
                Some((all, all_report)) => {
                    all.append(round)?;
                    all_report.absorb(got.report);
                }
            }
            lap.lap(&format!("panel: a wave of {} person rows read", wave.person_rows));
        }
        if !reader.crossed() {
            if let Some((_, _, e)) = first_bad {
                return Err(e);
            }
            break (read, text, Some((file, spilled)));
        }
        // A citizen ID's first holder in the file was met after another (a round out of
        // province order): every wave again, keeping the first, as a whole read does.
        reader.decide();
    };
    let Some((round, report)) = read else {
        return Err(Error::Config("internal: a round read in waves without a wave".into()));
    };
    Ok(ReadRound { round: Arc::new(round), text, spill, report })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::areas::AreaCode;

    #[test]
    fn villages_of_either_rounds_are_counted_once() {
        let code = |s: &str| AreaCode::parse(s).unwrap();
        let (a, b, c, d) = (code("1001010101"), code("1001010102"), code("1001010201"), code("9001010101"));
        assert_eq!(villages_of_either(&[], &[]), 0);
        assert_eq!(villages_of_either(&[a, b], &[]), 2);
        assert_eq!(villages_of_either(&[], &[a, b]), 2);
        assert_eq!(villages_of_either(&[a, b, c], &[b, c, d]), 4);
        assert_eq!(villages_of_either(&[a, d], &[b, c]), 4);
        // A round's households come village by village, a village in several runs.
        assert_eq!(crate::panel::village_codes(&[c, c, a, a, c, b]), vec![a, b, c]);
    }

    #[test]
    fn the_end_of_a_comparison_lists_the_matches_or_counts_the_flows() {
        // Every earlier household may end: a match for each household of both rounds, less the
        // later households' routes and counts freed once listed.
        assert_eq!(matches_bytes(10, 4), 24 * 14 - 5 * 4);
        assert_eq!(matches_bytes(0, 4), 24 * 4);
        assert_eq!(flows_bytes(10, 4, 2), 4 * 14 + 2 * FLOWS_BYTES_PER_VILLAGE);
        assert_eq!(ending_bytes(10, 4, 2), matches_bytes(10, 4) + 2 * FLOWS_BYTES_PER_VILLAGE);
        // Two rounds of one household each with their names held: matching holds both rounds'
        // names, the end neither.
        assert_eq!((0..2).map(|r| names_held(r, 0, 2, false)).sum::<u64>(), 2);
        assert_eq!((0..2).map(|r| names_held(r, 0, 2, true)).sum::<u64>(), 0);
        // Three rounds: the middle round's names are read back for the first pair and kept for
        // the second.
        assert_eq!([0, 1, 2].map(|r| names_held(r, 0, 3, false)), [1, 2, 1]);
        assert_eq!([0, 1, 2].map(|r| names_held(r, 0, 3, true)), [0, 1, 1]);
        assert_eq!([0, 1, 2].map(|r| names_held(r, 1, 3, false)), [0, 1, 1]);
        assert_eq!([0, 1, 2].map(|r| names_held(r, 1, 3, true)), [0, 0, 0]);
    }
}
