//! Blocking, the Fellegi–Sunter model (m by EM, u by random sampling, term-frequency adjustment),
//! scoring, explanations and clustering.
//!
//! ```no_run
//! use tpmap::link::{run, LinkOptions, Model, Records};
//! let mut r = Records::default();
//! r.push_csv("welfare.csv".as_ref())?;
//! r.push_csv("agency.csv".as_ref())?;
//! let linked = run(&r, &LinkOptions::default())?;
//! let saved = serde_json::to_string(&linked.model)?;
//! let again = Model::from_json(&saved)?; // validated before use
//! # let _ = again;
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::collections::{HashMap, HashSet};

use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::budget::Budget;
use super::compare::{Agreement, Field, compare};
use super::records::Records;
use crate::{Error, Result};

/// What a link job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Pairs within the records (all sources together).
    Dedupe,
    /// Pairs across sources only.
    Link,
    /// Pairs across sources and within each source.
    LinkAndDedupe,
}

text_forms!(Task, "the link task", { Dedupe => "dedupe", Link => "link", LinkAndDedupe => "link-and-dedupe" });

/// A blocking key part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Key {
    /// Citizen ID (valid ones).
    CitizenId,
    /// LK82 of the given name.
    FirstSoundex,
    /// LK82 of the family name.
    LastSoundex,
    /// Given name.
    First,
    /// Family name.
    Last,
    /// Full birth date.
    BirthDate,
    /// Birth year.
    BirthYear,
    /// Birth month and day (survives BE/CE confusion).
    BirthMonthDay,
    /// Both names' LK82 codes, in sorted order (survives swapped given and family names).
    NameSoundexSet,
    /// Tambon (first 6 characters of the area).
    Tambon,
    /// Amphoe.
    Amphoe,
    /// Province.
    Province,
    /// House number (`12/3` as 12 and 3).
    House,
}

impl Key {
    /// Appends this key's value for record `i` to `out` (only hashed, never shown: numbers go in
    /// as fixed-width bytes, without formatting or allocating); false when the record has none.
    fn value(self, r: &Records, i: usize, out: &mut Vec<u8>) -> bool {
        use std::io::Write;
        // The first `n` digits of the record's area code (none when it is shorter).
        let area_prefix = |n: usize, out: &mut Vec<u8>| {
            r.area.get(i).and_then(|a| a.as_bytes().get(..n).map(|p| out.write_all(p).is_ok())).unwrap_or(false)
        };
        let date = |d: crate::thai::PartialDate, out: &mut Vec<u8>| {
            out.extend_from_slice(&d.year.to_le_bytes());
            out.extend_from_slice(&[d.month, d.day]);
            true
        };
        let ok = match self {
            Key::CitizenId => {
                r.citizen_id[i].map(|c| out.write_all(&c.as_u64().to_le_bytes()).is_ok()).unwrap_or(false)
            }
            Key::FirstSoundex => !r.first_lk.get(i).is_empty() && out.write_all(r.first_lk.get(i).as_bytes()).is_ok(),
            Key::LastSoundex => !r.last_lk.get(i).is_empty() && out.write_all(r.last_lk.get(i).as_bytes()).is_ok(),
            Key::First => !r.first.get(i).is_empty() && out.write_all(r.first.get(i).as_bytes()).is_ok(),
            Key::Last => !r.last.get(i).is_empty() && out.write_all(r.last.get(i).as_bytes()).is_ok(),
            Key::BirthDate => r.birth[i].filter(|d| d.is_complete()).map(|d| date(d, out)).unwrap_or(false),
            Key::BirthYear => r.birth[i].map(|d| out.write_all(&d.year.to_le_bytes()).is_ok()).unwrap_or(false),
            Key::BirthMonthDay => r.birth[i]
                .filter(|d| d.is_complete())
                .map(|d| out.write_all(&[d.month, d.day]).is_ok())
                .unwrap_or(false),
            Key::NameSoundexSet => {
                let (a, b) = (r.first_lk.get(i), r.last_lk.get(i));
                let (x, y) = if a <= b { (a, b) } else { (b, a) };
                !x.is_empty() && out.write_all(x.as_bytes()).is_ok() && out.write_all(y.as_bytes()).is_ok()
            }
            Key::Tambon => area_prefix(6, out),
            Key::Province => area_prefix(2, out),
            Key::House => r
                .house
                .get(i)
                .map(|h| {
                    out.extend_from_slice(&h.main.to_le_bytes());
                    out.extend_from_slice(&h.sub.map_or(u64::MAX, u64::from).to_le_bytes());
                    true
                })
                .unwrap_or(false),
            Key::Amphoe => area_prefix(4, out),
        };
        out.push(0x1f);
        ok
    }
}

/// Blocking rules: a pair is a candidate when all keys of at least one rule agree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocking {
    /// Rules, each a conjunction of keys.
    pub rules: Vec<Vec<Key>>,
    /// Blocks larger than this are skipped (and counted): a common surname in a big tambon must
    /// not explode the pair count.
    pub max_block: usize,
}

impl Default for Blocking {
    /// Exact ID; family-name soundex in the same tambon; birth date and given-name soundex in the
    /// same province; birth month-day and family name in the same province (catches BE/CE year
    /// confusion); both names anywhere (people who moved); birth date in the same tambon; and
    /// both names' soundex in any order with the birth year and province (swapped given and
    /// family names). Then, for records without an ID that differ in one name or carry only a
    /// birth year: given name, birth year and tambon (family name changed at marriage or
    /// mistyped); given name, house number and tambon (the same house, whatever the birth date
    /// says); given name and birth date, and family name and birth date, in the province; and
    /// across the country each name with the other's soundex and the birth year (people who moved
    /// and changed or mistyped one name). Only the ID, full-name and these last two rules span the
    /// country: a nationwide rule's blocks grow with the country, and its pairs with the square of
    /// it (the first national run, with birth-date rules nationwide, compared 213 M pairs for
    /// 15.7 M registry records; given name and birth date nationwide made 62 k false matches in the
    /// national run of 52 M records, namesakes born the same day).
    fn default() -> Self {
        Blocking {
            rules: vec![
                vec![Key::CitizenId],
                vec![Key::LastSoundex, Key::Tambon],
                vec![Key::BirthDate, Key::FirstSoundex, Key::Province],
                vec![Key::BirthMonthDay, Key::Last, Key::Province],
                vec![Key::First, Key::Last],
                vec![Key::BirthDate, Key::Tambon],
                vec![Key::NameSoundexSet, Key::BirthYear, Key::Province],
                vec![Key::First, Key::BirthYear, Key::Tambon],
                vec![Key::First, Key::House, Key::Tambon],
                vec![Key::First, Key::BirthDate, Key::Province],
                vec![Key::Last, Key::BirthDate, Key::Province],
                vec![Key::First, Key::LastSoundex, Key::BirthYear],
                vec![Key::Last, Key::FirstSoundex, Key::BirthYear],
            ],
            max_block: 2000,
        }
    }
}

text_forms!(Key, "a blocking key", {
    CitizenId => "citizen-id",
    FirstSoundex => "first-soundex",
    LastSoundex => "last-soundex",
    First => "first",
    Last => "last",
    BirthDate => "birth-date",
    BirthYear => "birth-year",
    BirthMonthDay => "birth-month-day",
    NameSoundexSet => "name-soundex-set",
    Tambon => "tambon",
    Amphoe => "amphoe",
    Province => "province",
    House => "house",
});

/// One blocking rule as the command line writes it: keys joined by `+`
/// (`last_soundex+tambon`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRule(pub Vec<Key>);

impl std::str::FromStr for BlockRule {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<BlockRule> {
        s.split('+').map(|k| k.parse::<Key>()).collect::<Result<Vec<_>>>().map(BlockRule)
    }
}

/// Most blocking rules, keys per rule, and records per block that a job (or a saved model) may set.
pub const MAX_RULES: usize = 32;
/// Most keys in one blocking rule.
pub const MAX_KEYS_PER_RULE: usize = 8;
/// Largest `max_block` accepted: a block of n records gives n(n-1)/2 pairs.
pub const MAX_BLOCK_LIMIT: usize = 100_000;

impl Blocking {
    /// Checks the rules: 1 to [`MAX_RULES`] rules of 1 to [`MAX_KEYS_PER_RULE`] keys, and a block
    /// limit from 2 to [`MAX_BLOCK_LIMIT`] (pairs grow with its square).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| crate::Error::Config(format!("blocking: {m}"));
        if self.rules.is_empty() || self.rules.len() > MAX_RULES {
            return Err(bad(format!("{} rules; give 1 to {MAX_RULES}", self.rules.len())));
        }
        if let Some(r) = self.rules.iter().find(|r| r.is_empty() || r.len() > MAX_KEYS_PER_RULE) {
            return Err(bad(format!("a rule has {} keys; give 1 to {MAX_KEYS_PER_RULE}", r.len())));
        }
        if !(2..=MAX_BLOCK_LIMIT).contains(&self.max_block) {
            return Err(bad(format!("max_block {} is outside 2..={MAX_BLOCK_LIMIT}", self.max_block)));
        }
        Ok(())
    }
}

/// Candidate pairs and what blocking did.
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    /// Record index pairs (a < b), sorted, distinct.
    pub pairs: Vec<(u32, u32)>,
    /// Blocks skipped for size, per rule (of a link task, blocks holding two sources: a block of
    /// one source gives no pair).
    pub skipped_blocks: Vec<usize>,
    /// Pairs each rule produced (a pair found by several rules counts under each).
    pub rule_pairs: Vec<usize>,
}

/// A link between two sources is blocked from the smaller one's keys when it holds at most this
/// share of the records (1 / `SMALL_SIDE`; see [`keys_shared_with`]). A welfare registry against
/// the national persons (a third of them) is not: there most persons share a key with a record,
/// and looking every key up cost more than the sort it saved (blocking 139.5 s against 53.0 s
/// in a national run, twenty-first session); a beneficiary list (1 % of them) is.
const SMALL_SIDE: usize = 16;

/// Generates candidate pairs.
pub fn block(r: &Records, task: Task, b: &Blocking) -> Candidates {
    // Without a budget nothing is refused: the error case cannot happen.
    block_within(r, task, b, &Budget::new(None, r.len()), 0).unwrap_or_default()
}

/// [`block`] within `budget`, beside `held` bytes (the records, what the caller holds): each
/// rule's keys checked once made, its pairs once counted (before they are made) and their
/// merge with the pairs so far before it is made.
pub(crate) fn block_within(r: &Records, task: Task, b: &Blocking, budget: &Budget, held: u64) -> Result<Candidates> {
    block_from(r, task, b, smaller_of_two_sources(r, task, SMALL_SIDE), budget, held)
}

/// [`block_within`], keyed from the records of source `smaller` first ([`keys_shared_with`])
/// when given.
fn block_from(
    r: &Records,
    task: Task,
    b: &Blocking,
    smaller: Option<u16>,
    budget: &Budget,
    held: u64,
) -> Result<Candidates> {
    use super::budget::{KEY_BYTES, PAIR_BYTES, sum, times};
    let rules = b.rules.len();
    let phase = |k: usize, what: &str, so_far: usize| {
        format!(
            "blocking by rule {} of {rules} ({what}, beside the {so_far} candidate pairs of the rules before)",
            k + 1
        )
    };
    crate::in_pool(|| {
        // Rule by rule, each rule's pairs sorted and merged into the pairs so far: the national
        // job's 211 M rule pairs (75 M distinct) were 1.7 GB as pieces plus 1.7 GB as one vector
        // to sort, 4.6 GB above the records at the peak; now the peak is the distinct pairs so
        // far, one rule's pairs and their merge.
        let mut lap = crate::diagnostics::Lap::start();
        let mut all: Vec<(u32, u32)> = Vec::new();
        let mut skipped = Vec::new();
        let mut rule_pairs = Vec::new();
        for (k, rule) in b.rules.iter().enumerate() {
            // Key of every record under this rule (hashed to 64 bits; collisions only add pairs
            // that scoring then rejects) — of a link from a small source, only the records whose
            // block holds one of its records.
            let mut keyed = match smaller {
                Some(s) => keys_shared_with(r, rule, s),
                None => rule_keys(r, rule),
            };
            // By key alone: the order inside a block does not matter (pairs are ordered below).
            keyed.par_sort_unstable_by_key(|k| k.0);
            skipped.push(
                keyed
                    .chunk_by(|a, b| a.0 == b.0)
                    .filter(|g| {
                        g.len() > b.max_block
                            && gives_pairs(
                                g.iter().map(|m| r.source.get(m.1 as usize).copied().unwrap_or(u16::MAX)),
                                task,
                            )
                    })
                    .count(),
            );
            let all_bytes = times(all.capacity(), PAIR_BYTES);
            let keys_bytes = times(keyed.capacity(), KEY_BYTES);
            budget.check(|| phase(k, "its keys", all.len()), sum([held, all_bytes, keys_bytes]))?;
            let room = |pairs: usize| {
                let what = || phase(k, &format!("its {pairs} pairs"), all.len());
                budget.check(what, sum([held, all_bytes, keys_bytes, times(pairs, PAIR_BYTES)]))
            };
            let mut packed = rule_pairs_of(r, &keyed, task, b.max_block, room)?;
            // The keys (16 bytes a record: 0.84 GB of the national job) given back before the
            // merge is made: held by the allocator until the release after the rule, they were
            // resident beside the merge (blocking's national peak 4.15-4.33 GiB, where the
            // structures alive summed 3.6-3.7 GiB; 3.73-3.78 GiB since).
            drop(keyed);
            crate::memory::release();
            rule_pairs.push(packed.len());
            packed.par_sort_unstable();
            packed.dedup();
            // The merge is made beside both.
            let merged = times(all.len() + packed.len(), PAIR_BYTES);
            let what = || phase(k, &format!("merging its {} distinct pairs", packed.len()), all.len());
            budget.check(what, sum([held, all_bytes, times(packed.capacity(), PAIR_BYTES), merged]))?;
            all = merge_pairs(&all, &packed);
            drop(packed);
            lap.lap(&format!("link: blocking rule {} of {}", k + 1, b.rules.len()));
            // This rule's keys, pairs and the previous union are freed: given back at once
            // (`memory::release`), the next rule's take their place instead of adding to them.
            crate::memory::release();
        }
        Ok(Candidates { pairs: all, skipped_blocks: skipped, rule_pairs })
    })
}

/// The pairs of the blocks of `keyed` (sorted by key) of 2 to `max_block` records, packed as
/// [`block_pairs`] packs them, into one vector of exactly their number: the blocks are cut into
/// runs, each run's pairs counted, then each run fills its own part of the vector, all on the
/// pool. (Each worker's pairs gathered in growing vectors, then copied into one, held the rule's
/// pairs up to three times over at the national peak of blocking.) `room(count)` is asked
/// before the vector is made.
fn rule_pairs_of(
    r: &Records,
    keyed: &[(u64, u32)],
    task: Task,
    max_block: usize,
    room: impl FnOnce(usize) -> Result<()>,
) -> Result<Vec<u64>> {
    // Run bounds fall where the key changes, so that no block is cut.
    let pieces = rayon::current_num_threads().max(1) * 64;
    let mut bounds = vec![0];
    for p in 1..pieces {
        let mut at = keyed.len() * p / pieces;
        let last = bounds.last().copied().unwrap_or(0);
        if at <= last {
            continue;
        }
        while at < keyed.len() && keyed[at].0 == keyed[at - 1].0 {
            at += 1;
        }
        if at < keyed.len() {
            bounds.push(at);
        }
    }
    bounds.push(keyed.len());
    bounds.dedup();
    let counts: Vec<usize> = bounds
        .par_windows(2)
        .map(|w| {
            let mut n = 0usize;
            run_pairs(r, &keyed[w[0]..w[1]], task, max_block, &mut |_| n += 1);
            n
        })
        .collect();
    let total = counts.iter().sum();
    room(total)?;
    let mut packed = vec![0u64; total];
    let mut parts = Vec::with_capacity(counts.len());
    let mut rest = packed.as_mut_slice();
    for &n in &counts {
        let (part, after) = rest.split_at_mut(n);
        parts.push(part);
        rest = after;
    }
    parts.into_par_iter().zip(bounds.par_windows(2)).for_each(|(part, w)| {
        // The same enumeration as the count: each pair has its slot.
        let mut slots = part.iter_mut();
        run_pairs(r, &keyed[w[0]..w[1]], task, max_block, &mut |p| {
            if let Some(slot) = slots.next() {
                *slot = p;
            }
        });
    });
    Ok(packed)
}

/// Each pair of the blocks of `run` (whole blocks, sorted by key) of 2 to `max_block` records.
fn run_pairs(r: &Records, run: &[(u64, u32)], task: Task, max_block: usize, emit: &mut impl FnMut(u64)) {
    for g in run.chunk_by(|a, b| a.0 == b.0).filter(|g| g.len() > 1 && g.len() <= max_block) {
        each_block_pair(g.iter().map(|&(_, i)| (i, r.source[i as usize])), task, emit);
    }
}

/// The union of sorted distinct pairs `so_far` and sorted distinct packed pairs `new`
/// ([`block_pairs`]' packing keeps the order), sorted and distinct.
fn merge_pairs(so_far: &[(u32, u32)], new: &[u64]) -> Vec<(u32, u32)> {
    let mut out = Vec::with_capacity(so_far.len() + new.len());
    let (mut i, mut j) = (0, 0);
    while i < so_far.len() && j < new.len() {
        let p = unpack(new[j]);
        match so_far[i].cmp(&p) {
            std::cmp::Ordering::Less => {
                out.push(so_far[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(p);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(p);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&so_far[i..]);
    out.extend(new[j..].iter().map(|&p| unpack(p)));
    out
}

/// Of a link task between exactly two sources, the one with fewer records (the second on a tie)
/// when it holds at most 1 / `ratio` of them: every pair of such a link holds one of its records.
fn smaller_of_two_sources(r: &Records, task: Task, ratio: usize) -> Option<u16> {
    if task != Task::Link || r.sources.len() != 2 {
        return None;
    }
    let first = r.source.iter().filter(|&&s| s == 0).count();
    let (smaller, n) = if first < r.len() - first { (0, first) } else { (1, r.len() - first) };
    (n.saturating_mul(ratio) <= r.len()).then_some(smaller)
}

/// Whether a block whose members come from these sources would give the task a pair were it
/// small enough: for a link, only a block holding records of two sources does. A link's block of
/// one source is never compared, so it is not counted as skipped for its size either (nothing is
/// lost there). [`block`] and Spark's [`super::steps::pairs_in_blocks`] both count by it.
pub(crate) fn gives_pairs(mut sources: impl Iterator<Item = u16>, task: Task) -> bool {
    match task {
        Task::Dedupe | Task::LinkAndDedupe => true,
        Task::Link => {
            let first = sources.next();
            sources.any(|s| Some(s) != first)
        }
    }
}

/// [`rule_keys`] of a link between two sources, kept where the key is one a record of source
/// `smaller` has: its records, then the others whose block holds one of them. Every block that
/// can give a pair keeps all its members, so the pairs, each rule's count of them and the blocks
/// skipped for size are [`rule_keys`]' exactly; the blocks of one source — most of the national
/// persons against a beneficiary list — are neither sorted nor walked (their sorting was half of
/// the list's blocking, twenty-first session's profile). A key is looked up in a bitmap of the
/// smaller source's keys first (16 bits a key: one in sixteen keys passes it for nothing), so
/// that only those it passes are looked up in the set (a cache-sized first check: not measured
/// against the set alone).
fn keys_shared_with(r: &Records, rule: &[Key], smaller: u16) -> Vec<(u64, u32)> {
    const RANGE: usize = 1 << 16;
    let mut keyed = rule_keys_where(r, rule, RANGE, |i| r.source.get(i) == Some(&smaller), |_| true);
    // 2^16 to 2^30 bits, indexed by a key's top bits (XXH3's bits are all mixed).
    let bits = keyed.len().saturating_mul(16).clamp(1 << 16, 1 << 30).next_power_of_two();
    let shift = 64 - bits.trailing_zeros();
    let mut bitmap = vec![0u64; bits / 64];
    let bit = |k: u64| usize::try_from(k >> shift).unwrap_or(0);
    for &(k, _) in &keyed {
        if let Some(word) = bitmap.get_mut(bit(k) / 64) {
            *word |= 1 << (bit(k) % 64);
        }
    }
    let mut set: HashSet<u64, crate::ingest::IdHash> = HashSet::default();
    set.reserve(keyed.len());
    set.extend(keyed.iter().map(|k| k.0));
    let passes = |k: u64| bitmap.get(bit(k) / 64).is_some_and(|w| w >> (bit(k) % 64) & 1 == 1) && set.contains(&k);
    let others = rule_keys_where(r, rule, RANGE, |i| r.source.get(i) != Some(&smaller), passes);
    keyed.extend_from_slice(&others);
    keyed
}

/// Key (hashed to 64 bits) of every record that has one under `rule`, with its index, in record
/// order. Collisions only add pairs that scoring then rejects.
pub(crate) fn rule_keys(r: &Records, rule: &[Key]) -> Vec<(u64, u32)> {
    rule_keys_by(r, rule, 1 << 16)
}

/// [`rule_keys`], the records taken `range` at a time.
fn rule_keys_by(r: &Records, rule: &[Key], range: usize) -> Vec<(u64, u32)> {
    rule_keys_where(r, rule, range, |_| true, |_| true)
}

/// [`rule_keys_by`] of the records `record(i)` takes, each kept when `key(its key)` is true.
fn rule_keys_where(
    r: &Records,
    rule: &[Key],
    range: usize,
    record: impl Fn(usize) -> bool + Sync,
    key: impl Fn(u64) -> bool + Sync,
) -> Vec<(u64, u32)> {
    // One vector of a slot per record (zeroed, so untouched pages cost nothing): each range of
    // records keeps its keyed ones at the front of its own slots, on the pool, then the ranges
    // are moved together. Collecting the keyed records in parallel built pieces and then their
    // concatenation: twice the national job's 0.8 GB of keys at the peak of blocking.
    let range = range.max(1);
    let mut keyed = vec![(0u64, 0u32); r.len()];
    let kept: Vec<usize> = keyed
        .par_chunks_mut(range)
        .enumerate()
        .map_init(
            || Vec::with_capacity(64),
            |buf, (c, slots)| {
                let mut k = 0;
                for j in 0..slots.len() {
                    let i = c * range + j;
                    buf.clear();
                    // `i` < `r.len()` ≤ `MAX_RECORDS` (checked by the job): it fits a u32.
                    let Ok(i32) = u32::try_from(i) else { continue };
                    if record(i) && rule.iter().all(|part| part.value(r, i, buf)) {
                        let h = key_hash(buf);
                        if key(h) {
                            // k ≤ j < slots.len(): the range's own slots, front first.
                            slots[k] = (h, i32);
                            k += 1;
                        }
                    }
                }
                k
            },
        )
        .collect();
    let mut to = 0;
    for (c, &k) in kept.iter().enumerate() {
        keyed.copy_within(c * range..c * range + k, to);
        to += k;
    }
    keyed.truncate(to);
    keyed
}

/// The pairs of one block (its records given as (index, source)) that the task compares,
/// appended to `out` as (smaller, larger) packed so that u64 order is pair order. The one
/// definition of a block's pairs ([`each_block_pair`]), shared by [`block`] and the distributed
/// steps ([`super::steps`]).
pub(crate) fn block_pairs(members: impl Iterator<Item = (u32, u16)> + Clone, task: Task, out: &mut Vec<u64>) {
    each_block_pair(members, task, &mut |p| out.push(p));
}

/// Each pair of one block that the task compares, packed as [`block_pairs`] packs them, given
/// to `emit` in the same order every time.
fn each_block_pair(members: impl Iterator<Item = (u32, u16)> + Clone, task: Task, emit: &mut impl FnMut(u64)) {
    let mut rest = members.clone();
    for (i, si) in members {
        rest.next();
        for (j, sj) in rest.clone() {
            let keep = match task {
                Task::Dedupe | Task::LinkAndDedupe => true,
                Task::Link => si != sj,
            };
            if keep {
                emit(u64::from(i.min(j)) << 32 | u64::from(i.max(j)));
            }
        }
    }
}

/// A pair packed by [`block_pairs`] back to (smaller, larger): the high and the low half.
pub(crate) fn unpack(p: u64) -> (u32, u32) {
    let b = p.to_be_bytes();
    (u32::from_be_bytes([b[0], b[1], b[2], b[3]]), u32::from_be_bytes([b[4], b[5], b[6], b[7]]))
}

fn hash(b: &[u8]) -> u64 {
    crate::stable_hash(b)
}

/// The hash of a blocking key's bytes: XXH3 (64 bits), which takes eight bytes a step, where
/// [`hash`] (FNV-1a, kept for the entity IDs it makes) takes one with a multiply's latency each —
/// most of the time of keying the national persons, whose keys are 20 to 70 bytes of Thai text.
/// Blocks, pairs and their order do not depend on which hash it is (collisions only add pairs
/// that scoring rejects, for either); nothing keeps these keys beyond a job.
fn key_hash(b: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(b)
}

/// Comparison levels of a pair, one per field of the model (`u8::MAX` = missing).
pub type Pattern = [u8; 6];

/// Levels of every candidate pair.
pub fn patterns(r: &Records, pairs: &[(u32, u32)]) -> Vec<Pattern> {
    crate::in_pool(|| {
        pairs
            .par_iter()
            .map(|&(a, b)| {
                let mut p = [u8::MAX; 6];
                for (k, f) in Field::ALL.iter().enumerate() {
                    p[k] = compare(r, a as usize, b as usize, *f).unwrap_or(u8::MAX);
                }
                p
            })
            .collect()
    })
}

/// Candidate pairs (the records' numbers), in pair order.
pub(crate) type Pairs = Vec<(u32, u32)>;

/// The candidate pairs `pairs` in pieces of `range` pairs (the last one shorter), each in a
/// vector of its own and exactly its length, so that [`score_pieces_above`] gives each piece
/// back once it is scored: held whole, the national job's 75 M pairs (0.56 GiB) stayed beside
/// its kept pairs to the end of scoring, at the job's peak. The pieces are copied before the
/// whole is freed: twice the pairs for a moment, after blocking and below its peak.
pub(crate) fn pair_pieces(pairs: Pairs, range: usize) -> Vec<Pairs> {
    let pieces = pairs.chunks(range.max(1)).map(<[(u32, u32)]>::to_vec).collect();
    drop(pairs);
    pieces
}

/// [`patterns`] of pairs in pieces ([`pair_pieces`]): one piece of patterns a piece of pairs.
/// [`score_pieces_above`] gives each piece back once it is scored, so that the national job's
/// 0.45 GB of patterns are not held beside the whole of its kept pairs (1.27 GB) as they are
/// written.
pub(crate) fn pattern_pieces(r: &Records, pairs: &[Pairs]) -> Vec<Vec<Pattern>> {
    pairs.iter().map(|piece| patterns(r, piece)).collect()
}

/// A trained Fellegi–Sunter model. Serialise it (serde JSON) to reuse it in another province.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Prior probability that a candidate pair is a match.
    pub lambda: f64,
    /// m probabilities per field and level (P(level | match)).
    pub m: Vec<Vec<f64>>,
    /// u probabilities per field and level among candidate pairs (P(level | non-match, candidate)).
    pub u: Vec<Vec<f64>>,
    /// u probabilities from random record pairs (for term-frequency adjustment).
    pub u_random: Vec<Vec<f64>>,
    /// Term-frequency adjustment on exact given- and family-name agreement.
    pub tf: bool,
    /// EM iterations run.
    pub iterations: usize,
    /// Blocking whose candidates the prior `lambda` was fitted to (m and u are trained on the
    /// fixed training blocks, [`Blocking::default`], whatever rules predict).
    pub blocking: Blocking,
}

impl Model {
    /// Reads a saved model (JSON, as [`Model`] serialises) and checks it with [`Model::validate`].
    pub fn from_json(text: &str) -> Result<Model> {
        let m: Model = serde_json::from_str(text)?;
        m.validate()?;
        Ok(m)
    }

    /// Checks that a model (perhaps loaded from a file) fits this version's comparisons: a prior
    /// strictly between 0 and 1; m, u and random-pair u tables with one row per field and one
    /// probability per level, each finite and in (0, 1]; valid blocking rules. Scoring indexes
    /// these tables by level, so a model that passes cannot make it fail.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| crate::Error::Config(format!("link model: {m}"));
        if !(self.lambda > 0.0 && self.lambda < 1.0) {
            return Err(bad(format!("the prior lambda must be strictly between 0 and 1, not {}", self.lambda)));
        }
        for (name, table) in [("m", &self.m), ("u", &self.u), ("u_random", &self.u_random)] {
            if table.len() != Field::ALL.len() {
                return Err(bad(format!(
                    "table {name} has {} rows; this version compares {} fields",
                    table.len(),
                    Field::ALL.len()
                )));
            }
            for (f, row) in Field::ALL.iter().zip(table) {
                let want = f.levels().len();
                if row.len() != want {
                    return Err(bad(format!("table {name}, field {f:?}: {} levels, expected {want}", row.len())));
                }
                if let Some(p) = row.iter().find(|p| !(p.is_finite() && **p > 0.0 && **p <= 1.0)) {
                    return Err(bad(format!("table {name}, field {f:?}: probability {p} is not in (0, 1]")));
                }
            }
        }
        self.blocking.validate().map_err(|e| bad(e.to_string()))
    }
}

/// Training options.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Random pairs sampled for u, at most (jobs sample 3 pairs per record, at least 100,000).
    pub u_samples: usize,
    /// Maximum EM iterations.
    pub max_iterations: usize,
    /// Seed for sampling.
    pub seed: u64,
    /// Term-frequency adjustment for names.
    pub tf: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions { u_samples: 200_000, max_iterations: 50, seed: 1, tf: true }
    }
}

const FLOOR: f64 = 1e-6;

/// Estimates u from random record pairs (nearly all non-matches) and m by EM over the candidate
/// pairs' level patterns with u fixed. Identical patterns are grouped, so EM costs the number of
/// distinct patterns per iteration, not the number of pairs.
pub fn train(r: &Records, task: Task, blocking: &Blocking, pats: &[Pattern], o: &TrainOptions) -> Result<Model> {
    let sample = u_sample(r.len(), |i| r.source[i], task, o)?;
    let mut lap = crate::diagnostics::Lap::start();
    let upats = patterns(r, &sample);
    lap.lap(&format!("{} random pairs compared", sample.len()));
    Ok(train_grouped(&group(&upats), &group(pats), blocking, o))
}

/// The random record pairs u is estimated from: up to 3 per record, at least 100,000, at most
/// `o.u_samples`, drawn with `o.seed` from `n` records (`source(i)` is record i's source; a link
/// task draws pairs of two sources), in record order. The same pairs whoever asks: the distributed
/// steps draw them here and compare them where the records are.
pub fn u_sample(n: usize, source: impl Fn(usize) -> u16, task: Task, o: &TrainOptions) -> Result<Vec<(u32, u32)>> {
    if n < 2 {
        return Err(Error::Config("linkage needs at least two records".into()));
    }
    if n > super::records::MAX_RECORDS {
        return Err(Error::Config(format!("a link job takes at most {} records", super::records::MAX_RECORDS)));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(o.seed);
    // Small jobs need fewer pairs: 3 per record, at least 100,000, at most `u_samples` (u only
    // seeds EM, and exact name agreement — the rarest level — still shows up hundreds of times).
    let want = o.u_samples.min(n.saturating_mul(3).max(100_000));
    let mut sample: Vec<(u32, u32)> = Vec::with_capacity(want);
    let mut tries = 0;
    while sample.len() < want && tries < want * 4 {
        tries += 1;
        let (a, b) = (rng.random_range(0..n), rng.random_range(0..n));
        if a == b || (task == Task::Link && source(a) == source(b)) {
            continue;
        }
        // Both below n ≤ MAX_RECORDS = u32::MAX (checked above).
        let (Ok(x), Ok(y)) = (u32::try_from(a.min(b)), u32::try_from(a.max(b))) else { continue };
        sample.push((x, y));
    }
    // In record order: random pairs otherwise miss the cache on every field of every record
    // (they took 4.6 times as long per pair as the blocked candidates).
    sample.sort_unstable();
    Ok(sample)
}

/// Trains a model from grouped patterns ([`group_counts`]): `random` of the random pairs of
/// [`u_sample`] (u's starting point), `candidates` of the candidate pairs (EM). Every sum runs over
/// the patterns in their sorted order, so the model is the same bit for bit however the pairs were
/// compared and counted.
pub fn train_grouped(
    random: &[(Pattern, f64)],
    groups: &[(Pattern, f64)],
    blocking: &Blocking,
    o: &TrainOptions,
) -> Model {
    let nl: Vec<usize> = Field::ALL.iter().map(|f| f.levels().len()).collect();
    let mut u: Vec<Vec<f64>> = nl.iter().map(|&k| vec![0.0; k]).collect();
    // Counts are whole numbers: their sums are exact in any order.
    for (p, c) in random {
        for (f, &l) in p.iter().enumerate() {
            if let Some(x) = u[f].get_mut(l as usize) {
                *x += c;
            }
        }
    }
    for row in &mut u {
        let s: f64 = row.iter().sum::<f64>().max(1.0);
        row.iter_mut().for_each(|x| *x = (*x / s).max(FLOOR));
    }
    // m starts high on the strongest levels.
    let mut m: Vec<Vec<f64>> = nl
        .iter()
        .map(|&k| {
            let mut v: Vec<f64> = (0..k).map(|l| 0.5f64.powi(l as i32 + 1)).collect();
            v[k - 1] = 0.05;
            let s: f64 = v.iter().sum();
            v.iter().map(|x| x / s).collect()
        })
        .collect();
    // EM over the candidate pairs, m and u both free, u starting from the random-pair estimate.
    // Blocking makes non-matches among candidates agree on the blocked fields far more often
    // than random pairs do, so a u fixed at its random-pair value would call every candidate a
    // match; fitted within the candidates, the mixture gives P(match | pattern, candidate).
    // (Splink instead fixes the blocked comparisons' parameters in each training session.)
    let u_random = u.clone();
    let mut lambda: f64 = 0.1;
    let mut iterations = 0;
    for _ in 0..o.max_iterations {
        iterations += 1;
        let mut mm: Vec<Vec<f64>> = nl.iter().map(|&k| vec![0.0; k]).collect();
        let mut uu: Vec<Vec<f64>> = nl.iter().map(|&k| vec![0.0; k]).collect();
        let (mut sp, mut st) = (0.0, 0.0);
        for (p, c) in groups {
            let (mut lm, mut lu) = (lambda.ln(), (1.0 - lambda).ln());
            for (f, &l) in p.iter().enumerate() {
                if l != u8::MAX {
                    lm += m[f][l as usize].ln();
                    lu += u[f][l as usize].ln();
                }
            }
            let post = 1.0 / (1.0 + (lu - lm).exp());
            sp += post * c;
            st += c;
            for (f, &l) in p.iter().enumerate() {
                if l != u8::MAX {
                    mm[f][l as usize] += post * c;
                    uu[f][l as usize] += (1.0 - post) * c;
                }
            }
        }
        let new_lambda = (sp / st.max(1.0)).clamp(FLOOR, 1.0 - FLOOR);
        let mut delta = (new_lambda - lambda).abs();
        for (f, (mrow, urow)) in mm.iter_mut().zip(uu.iter_mut()).enumerate() {
            let (sm, su): (f64, f64) = (mrow.iter().sum::<f64>().max(FLOOR), urow.iter().sum::<f64>().max(FLOOR));
            for l in 0..mrow.len() {
                mrow[l] = (mrow[l] / sm).max(FLOOR);
                urow[l] = (urow[l] / su).max(FLOOR);
                delta = delta.max((mrow[l] - m[f][l]).abs()).max((urow[l] - u[f][l]).abs());
            }
        }
        m = mm;
        u = uu;
        lambda = new_lambda;
        if delta < 1e-6 {
            break;
        }
    }
    Model { lambda, m, u, u_random, tf: o.tf, iterations, blocking: blocking.clone() }
}

/// The prior for another candidate set: EM on λ alone over `pats` (the candidates of other
/// blocking rules), m and u fixed as trained. m and u describe what a match and a non-match
/// look like; only how many of the candidates are matches changes with the blocking.
pub fn refit_prior(model: &Model, groups: &[(Pattern, f64)], max_iterations: usize) -> f64 {
    // Log Bayes factor of each distinct pattern.
    let lbf: Vec<(f64, f64)> = groups
        .iter()
        .map(|(p, c)| {
            let mut l = 0.0;
            for (f, &lv) in p.iter().enumerate() {
                if lv != u8::MAX {
                    l += (model.m[f][lv as usize] / model.u[f][lv as usize]).ln();
                }
            }
            (l, *c)
        })
        .collect();
    let total: f64 = lbf.iter().map(|x| x.1).sum::<f64>().max(1.0);
    let mut lambda = model.lambda;
    for _ in 0..max_iterations.max(1) {
        let prior = (lambda / (1.0 - lambda)).ln();
        let matches: f64 = lbf.iter().map(|(l, c)| c / (1.0 + (-(prior + l)).exp())).sum();
        let next = (matches / total).clamp(FLOOR, 1.0 - FLOOR);
        let done = (next - lambda).abs() < 1e-9;
        lambda = next;
        if done {
            break;
        }
    }
    lambda
}

/// Warnings about a fitted model that looks implausible on its candidates `pats`: a prior far
/// (more than twice or less than half) from what the citizen IDs alone say among the candidates
/// that carry two IDs (equal or one typo apart: a match; else not), or a field whose strongest
/// agreement is likelier among random pairs than among matches.
pub fn plausibility(model: &Model, groups: &[(Pattern, f64)]) -> Vec<String> {
    let mut out = Vec::new();
    let prior = (model.lambda / (1.0 - model.lambda)).ln();
    let (mut with_ids, mut id_matches, mut fitted) = (0.0f64, 0.0f64, 0.0f64);
    for &(p, c) in groups {
        if p[0] == u8::MAX {
            continue;
        }
        let mut l = prior;
        for (f, &lv) in p.iter().enumerate() {
            if lv != u8::MAX {
                l += (model.m[f][lv as usize] / model.u[f][lv as usize]).ln();
            }
        }
        with_ids += c;
        id_matches += if p[0] <= 1 { c } else { 0.0 };
        fitted += c / (1.0 + (-l).exp());
    }
    if with_ids >= 100.0 && id_matches >= 10.0 {
        let ratio = fitted / id_matches;
        if !(0.5..=2.0).contains(&ratio) {
            out.push(format!(
                "the fitted model calls {:.0} of the {:.0} candidate pairs with two citizen IDs matches; the IDs say {:.0} \
                 ({ratio:.2} times): the model may have learned something other than people (households?); check the blocking rules and the pairs near the threshold",
                fitted, with_ids, id_matches
            ));
        }
    }
    for (f, field) in Field::ALL.iter().enumerate() {
        if model.m[f][0] < model.u_random[f][0] {
            out.push(format!(
                "{field:?}: exact agreement is fitted as likelier among random pairs (u {:.3}) than among matches (m {:.3})",
                model.u_random[f][0], model.m[f][0]
            ));
        }
    }
    out
}

/// Distinct patterns with their counts, in pattern order: what training, [`refit_prior`] and
/// [`plausibility`] take.
pub fn group(pats: &[Pattern]) -> Vec<(Pattern, f64)> {
    group_pieces(std::slice::from_ref(&pats))
}

/// [`group`] of patterns held in pieces ([`pattern_pieces`]): the same counts (whole numbers,
/// exact in `f64`) as of the pieces' concatenation.
pub(crate) fn group_pieces<P: AsRef<[Pattern]>>(pieces: &[P]) -> Vec<(Pattern, f64)> {
    let mut counts: HashMap<Pattern, f64> = HashMap::new();
    for p in pieces.iter().flat_map(|piece| piece.as_ref()) {
        *counts.entry(*p).or_default() += 1.0;
    }
    let mut v: Vec<(Pattern, f64)> = counts.into_iter().collect();
    // A fixed order: sums over patterns must not depend on the hash map's.
    v.sort_unstable_by_key(|a| a.0);
    v
}

/// [`group`] for patterns counted elsewhere (a distributed engine's `count` per pattern): counts of
/// one pattern are added, and the result is in pattern order. Counts are whole numbers below 2^53,
/// so the result is [`group`]'s for the same pairs.
pub fn group_counts(counts: impl IntoIterator<Item = (Pattern, u64)>) -> Vec<(Pattern, f64)> {
    let mut v: Vec<(Pattern, u64)> = counts.into_iter().collect();
    v.sort_unstable_by_key(|a| a.0);
    let mut out: Vec<(Pattern, f64)> = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let p = v[i].0;
        let mut c: u64 = 0;
        while i < v.len() && v[i].0 == p {
            c = c.saturating_add(v[i].1);
            i += 1;
        }
        // Exact below 2^53 (a count of pairs).
        out.push((p, c as f64));
    }
    out
}

/// Term frequencies of given and family names (share of records carrying each value).
#[derive(Clone, Debug, Default)]
pub struct TermFrequencies {
    first: HashMap<String, f64>,
    last: HashMap<String, f64>,
}

impl TermFrequencies {
    /// Bytes the name counts take (their tables and texts).
    pub fn heap_bytes(&self) -> u64 {
        crate::memory::string_map_bytes(&self.first).saturating_add(crate::memory::string_map_bytes(&self.last))
    }

    /// Counts the records' names.
    pub fn of(r: &Records) -> Self {
        let (first, last) = Self::counts(r);
        Self::from_counts(first, last, r.len() as u64)
    }

    /// How many of the records carry each non-empty given name and each family name: what
    /// [`TermFrequencies::of`] divides, for records that come in parts (add the parts' counts).
    pub fn counts(r: &Records) -> (HashMap<String, u64>, HashMap<String, u64>) {
        // Counted by code, then one entry per distinct name.
        let count = |v: &super::records::InternedColumn| {
            let mut counts = vec![0u64; v.distinct()];
            for c in v.codes() {
                counts[c as usize] += 1;
            }
            v.values()
                .zip(&counts)
                .filter(|&(s, &k)| k > 0 && !s.is_empty())
                .map(|(s, &k)| (s.to_string(), k))
                .collect::<HashMap<String, u64>>()
        };
        crate::in_pool(|| rayon::join(|| count(&r.first), || count(&r.last)))
    }

    /// Frequencies from names counted elsewhere ([`TermFrequencies::counts`], added over the
    /// parts of `records` records): [`TermFrequencies::of`]'s values for the same records.
    pub fn from_counts(first: HashMap<String, u64>, last: HashMap<String, u64>, records: u64) -> Self {
        let share = |m: HashMap<String, u64>| {
            m.into_iter()
                .filter(|(s, k)| *k > 0 && !s.is_empty())
                .map(|(s, k)| (s, Self::frequency(k, records)))
                .collect::<HashMap<String, f64>>()
        };
        TermFrequencies { first: share(first), last: share(last) }
    }

    /// The frequencies of record `a`'s given and family names (`None` for an empty name).
    pub fn of_record(&self, r: &Records, a: usize) -> (Option<f64>, Option<f64>) {
        (self.first.get(r.first.get(a)).copied(), self.last.get(r.last.get(a)).copied())
    }

    /// A name's frequency from its count among `records` records: [`TermFrequencies::of`]'s
    /// value for a name counted elsewhere (the count is a whole number, so it is the same value).
    pub fn frequency(count: u64, records: u64) -> f64 {
        // Exact below 2^53 (counts of records).
        count as f64 / records.max(1) as f64
    }
}

/// One comparison's part in a pair's score.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Term {
    /// The field.
    pub field: Field,
    /// The level's label ("missing" when a side is empty).
    pub level: &'static str,
    /// Bayes factor m/u (1 when missing); term-frequency adjusted where it applies.
    pub bayes_factor: f64,
    /// log2 of it.
    pub weight: f64,
}

/// A scored pair with its explanation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    /// Prior log2 odds (from λ).
    pub prior_weight: f64,
    /// Each comparison.
    pub terms: Vec<Term>,
    /// Total match weight (log2 odds).
    pub match_weight: f64,
    /// Match probability.
    pub probability: f64,
}

impl Model {
    /// Match weight (log2 odds) of a pattern for records `a`, `b`.
    pub fn weight(&self, r: &Records, tf: Option<&TermFrequencies>, a: usize, p: &Pattern) -> f64 {
        let (first, last) = tf.map_or((None, None), |t| t.of_record(r, a));
        self.weight_of(p, first, last)
    }

    /// Match weight (log2 odds) of a pattern whose first record's given and family names have
    /// the term frequencies `first` and `last` (share of records; `None`: no adjustment).
    pub fn weight_of(&self, p: &Pattern, first: Option<f64>, last: Option<f64>) -> f64 {
        let mut w = (self.lambda / (1.0 - self.lambda)).log2();
        for (f, &l) in p.iter().enumerate() {
            if l != u8::MAX {
                w += self.factor(f, l, first, last).log2();
            }
        }
        w
    }

    fn factor(&self, f: usize, l: u8, first: Option<f64>, last: Option<f64>) -> f64 {
        let (m, u) = (self.m[f][l as usize], self.u[f][l as usize]);
        // Exact agreement on a name: a rare name says more than a common one.
        // The factor scales the level's Bayes factor by how much rarer this value is than the
        // average exact agreement among random pairs (Splink's form of the adjustment).
        if self.tf
            && l == 0
            && (f == 1 || f == 2)
            && let Some(freq) = if f == 1 { first } else { last }
        {
            let adj = (self.u_random[f][0] / freq.max(FLOOR)).clamp(1.0 / 64.0, 64.0);
            return m / u * adj;
        }
        m / u
    }

    /// Probability from a match weight.
    pub fn probability(weight: f64) -> f64 {
        let o = 2f64.powf(weight);
        o / (1.0 + o)
    }

    /// Scores and explains one pair.
    pub fn explain(&self, r: &Records, tf: Option<&TermFrequencies>, a: usize, b: usize) -> Explanation {
        let prior_weight = (self.lambda / (1.0 - self.lambda)).log2();
        let mut terms = Vec::new();
        let mut w = prior_weight;
        for (f, field) in Field::ALL.iter().enumerate() {
            let lvl: Agreement = compare(r, a, b, *field);
            let (level, bf) = match lvl {
                None => ("missing", 1.0),
                Some(l) => {
                    let (first, last) = tf.map_or((None, None), |t| t.of_record(r, a));
                    (field.levels()[l as usize], self.factor(f, l, first, last))
                }
            };
            w += bf.log2();
            terms.push(Term { field: *field, level, bayes_factor: bf, weight: bf.log2() });
        }
        Explanation { prior_weight, terms, match_weight: w, probability: Self::probability(w) }
    }
}

/// A scored candidate pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// First record.
    pub a: u32,
    /// Second record.
    pub b: u32,
    /// Match weight (log2 odds).
    pub weight: f64,
    /// Match probability.
    pub probability: f64,
    /// Accepted by the deterministic pass (exact valid ID, or near ID with name and birth date
    /// agreeing).
    pub deterministic: bool,
    /// Both names and the birth date disagree: never a match, whatever the probability (an ID
    /// mistyped into another person's valid ID scores high on the ID alone).
    pub contradicted: bool,
}

impl Scored {
    /// Pair (`a`, `b`) with pattern `p` and match weight `w`; `a_has_id`: record `a` carries a
    /// valid citizen ID. The deterministic pass and the contradiction rule, defined once.
    pub fn of(a: u32, b: u32, p: &Pattern, w: f64, a_has_id: bool) -> Scored {
        // p[0] is the ID level; 1 and 2 are names, 3 birth date. An equal valid ID
        // settles the pair unless both names and the birth date all disagree: a digit
        // mistyped where the check digit cannot see it (the third, weight 11) can give
        // another person's valid ID; such a pair is left to the model.
        let differ = |f: usize| p[f] as usize == Field::ALL[f].levels().len() - 1;
        let contradicted = differ(1) && differ(2) && differ(3);
        let exact_id = p[0] == 0 && a_has_id && !contradicted;
        let near_id = p[0] == 1 && p[1] <= 2 && p[2] <= 2 && p[3] <= 2;
        Scored { a, b, weight: w, probability: Model::probability(w), deterministic: exact_id || near_id, contradicted }
    }

    /// Whether clustering takes the pair as an edge: deterministic, or at or above `threshold`
    /// and not contradicted. (A match is an accepted pair whose records the clustering joined,
    /// or a deterministic one: [`super::Linked::is_match`].)
    pub fn accepted(&self, threshold: f64) -> bool {
        self.deterministic || (!self.contradicted && self.probability >= threshold)
    }
}

/// Scores candidate pairs; the deterministic pass decides pairs that IDs settle.
pub fn score_pairs(
    r: &Records,
    model: &Model,
    tf: Option<&TermFrequencies>,
    pairs: &[(u32, u32)],
    pats: &[Pattern],
) -> Vec<Scored> {
    score_pairs_above(r, model, tf, pairs, pats, f64::NEG_INFINITY)
}

/// Like [`score_pairs`], keeping only deterministic pairs and pairs with a probability of at
/// least `floor`: at national scale most candidates are clear non-matches, and keeping them all
/// costs gigabytes.
pub fn score_pairs_above(
    r: &Records,
    model: &Model,
    tf: Option<&TermFrequencies>,
    pairs: &[(u32, u32)],
    pats: &[Pattern],
    floor: f64,
) -> Vec<Scored> {
    // Scored a range at a time into one vector reserved for every pair (address space only: a
    // page is resident once written): collecting the filtered pairs in parallel built pieces and
    // then their concatenation, twice the 1.3 GB of the national job's kept pairs.
    let mut out: Vec<Scored> = Vec::with_capacity(pairs.len());
    for (pairs, pats) in pairs.chunks(SCORE_RANGE).zip(pats.chunks(SCORE_RANGE)) {
        score_range(r, model, tf, pairs, pats, floor, &mut out);
    }
    out
}

/// Pairs scored at a time by [`score_pairs_above`]: the pieces of [`pattern_pieces`] in a link
/// job.
pub(crate) const SCORE_RANGE: usize = 1 << 22;

/// [`score_pairs_above`] of candidate pairs in pieces ([`pair_pieces`]) and their patterns
/// ([`pattern_pieces`]), each piece of both freed once it is scored: the same pairs in the same
/// order. (No forced release after each piece: the allocator gives a freed piece back within
/// its purge delay, a second, while the next pieces are scored; the national peak was no higher
/// without.) `keep_pairs`: the candidate pairs are also returned, whole and in order (moved
/// into one vector as their pieces go); otherwise an empty vector. Each piece is checked
/// against `budget` beside `held` bytes before it is scored: the pairs and patterns not yet
/// scored (every pair, kept), the pairs kept so far and the piece's kept pairs at most.
pub(crate) fn score_pieces_above(
    r: &Records,
    (model, tf): (&Model, Option<&TermFrequencies>),
    (pairs, pieces): (Vec<Pairs>, Vec<Vec<Pattern>>),
    floor: f64,
    keep_pairs: bool,
    (budget, held): (&Budget, u64),
) -> Result<(Vec<Scored>, Pairs)> {
    use super::budget::{PAIR_BYTES, PATTERN_BYTES, SCORED_BYTES, sum, times};
    if pairs.len() != pieces.len() || pairs.iter().zip(&pieces).any(|(p, q)| p.len() != q.len()) {
        return Err(crate::Error::Config("internal: candidate pairs and patterns in other pieces".into()));
    }
    let total: usize = pairs.iter().map(Vec::len).sum();
    let mut out: Vec<Scored> = Vec::with_capacity(total);
    let mut all: Pairs = if keep_pairs { Vec::with_capacity(total) } else { Vec::new() };
    let mut left_pats: usize = pieces.iter().map(Vec::capacity).sum();
    let mut left_pairs: usize = pairs.iter().map(Vec::capacity).sum();
    let n_pieces = pieces.len();
    for (k, (pairs, pats)) in pairs.into_iter().zip(pieces).enumerate() {
        if budget.is_set() {
            let what = || format!("scoring piece {} of {n_pieces} (beside the {} pairs kept before)", k + 1, out.len());
            // The piece's kept pairs, at most every pair, in the workers' pieces and then
            // appended: twice.
            let kept = times(out.len() + 2 * pats.len(), SCORED_BYTES);
            let pairs_held = if keep_pairs { times(total, PAIR_BYTES) } else { times(left_pairs, PAIR_BYTES) };
            budget.check(what, sum([held, pairs_held, times(left_pats, PATTERN_BYTES), kept]))?;
        }
        score_range(r, model, tf, &pairs, &pats, floor, &mut out);
        left_pats = left_pats.saturating_sub(pats.capacity());
        left_pairs = left_pairs.saturating_sub(pairs.capacity());
        drop(pats);
        if keep_pairs {
            all.extend_from_slice(&pairs);
        }
    }
    Ok((out, all))
}

/// Scores `pairs` (whose levels are `pats`, one each) on the pool and appends those kept (as
/// [`score_pairs_above`] keeps them) to `out`, in pair order.
fn score_range(
    r: &Records,
    model: &Model,
    tf: Option<&TermFrequencies>,
    pairs: &[(u32, u32)],
    pats: &[Pattern],
    floor: f64,
    out: &mut Vec<Scored>,
) {
    // Extended in place, in pair order: the workers' pieces are appended to `out` (reserved for
    // every pair) once all are made, not collected into a vector of their own first (which held
    // the kept pairs a third time).
    crate::in_pool(|| {
        out.par_extend(pairs.par_iter().zip(pats.par_iter()).filter_map(|(&(a, b), p)| {
            let w = model.weight(r, tf, a as usize, p);
            let s = Scored::of(a, b, p, w, r.citizen_id[a as usize].is_some());
            (s.deterministic || s.probability >= floor).then_some(s)
        }))
    });
}

/// Clusters matched pairs into entities: union in descending probability, never joining two
/// groups that carry different valid citizen IDs (so a chain of weak links cannot join two
/// different people whose IDs are known) and, in a link task, never adding a second record of one
/// source to an entity by a probabilistic pair (a record takes its best match and a look-alike
/// that scores lower is left out; duplicates within a registry still join through their citizen
/// ID, by the deterministic pass). Returns the entity of each record (a dense index).
pub fn cluster(records: &Records, scored: &[Scored], threshold: f64, task: Task) -> Vec<u32> {
    let id = |i: usize| records.citizen_id[i].map(|c| c.as_nonzero());
    let (n, sources) = (records.citizen_id.len(), records.sources.len());
    cluster_edges(id, n, &records.source, sources, scored.len(), |k| Edge::of(&scored[k], threshold), task)
}

/// The records' valid citizen IDs (`Records::citizen_id`) as [`cluster_ids`] takes them.
pub(crate) fn valid_ids(citizen_id: &[Option<crate::ids::CitizenId>]) -> Vec<Option<std::num::NonZeroU64>> {
    citizen_id.iter().map(|c| c.map(|c| c.as_nonzero())).collect()
}

/// [`cluster`] over records given by their valid citizen IDs (`ids`) and sources (`source`, of
/// `n_sources` in the job); `scored` in pair order. Records are numbered 0..ids.len(); a subset of a
/// job's records numbered in the same order (a connected component of its matched pairs, as the
/// distributed steps cluster them) gets the entities the whole job gives it.
pub fn cluster_with(
    ids: &[Option<u64>],
    source: &[u16],
    n_sources: usize,
    scored: &[Scored],
    threshold: f64,
    task: Task,
) -> Vec<u32> {
    // A valid citizen ID is never all zeros (its check digit fails), so 0 is no ID.
    let id = |i: usize| ids[i].and_then(std::num::NonZeroU64::new);
    cluster_edges(id, ids.len(), source, n_sources, scored.len(), |k| Edge::of(&scored[k], threshold), task)
}

/// [`cluster_with`] over the records' IDs as the union takes them (8 bytes a record: the national
/// job's 52 M records took 0.8 GB for `Option<u64>`s, twice).
pub(crate) fn cluster_ids(
    id: Vec<Option<std::num::NonZeroU64>>,
    source: &[u16],
    n_sources: usize,
    scored: &[Scored],
    threshold: f64,
    task: Task,
) -> Vec<u32> {
    let n = id.len();
    // The closure owns the IDs: they go once the union is made.
    cluster_edges(move |i| id[i], n, source, n_sources, scored.len(), |k| Edge::of(&scored[k], threshold), task)
}

/// What clustering reads of a scored pair.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Edge {
    /// The pair's records.
    pub a: u32,
    pub b: u32,
    /// Settled by citizen ID.
    pub deterministic: bool,
    /// Match probability.
    pub probability: f64,
    /// [`Scored::accepted`] at the job's threshold.
    pub accepted: bool,
}

impl Edge {
    fn of(s: &Scored, threshold: f64) -> Edge {
        Edge {
            a: s.a,
            b: s.b,
            deterministic: s.deterministic,
            probability: s.probability,
            accepted: s.accepted(threshold),
        }
    }
}

/// [`cluster_ids`] over records `0..n` whose valid citizen IDs `id(i)` gives and `n_edges` scored
/// pairs given by `edge` (in pair order): the bounded linkage clusters its kept pairs in their
/// compact form with this. The IDs are read where they are: a group's ID, if it has one, is its
/// root's own (the union keeps as root a group's that carries an ID), so no copy of them is made
/// to be updated (the national job's 52 M records took 0.42 GB for it while the union was made).
/// A closure that owns its IDs (`move`) has them dropped once the union is made.
pub(crate) fn cluster_edges(
    id: impl Fn(usize) -> Option<std::num::NonZeroU64>,
    n: usize,
    source: &[u16],
    n_sources: usize,
    n_edges: usize,
    edge: impl Fn(usize) -> Edge + Sync,
    task: Task,
) -> Vec<u32> {
    let n = n.min(source.len());
    // Below MAX_RECORDS (checked by the job), so every index fits a u32.
    let mut parent: Vec<u32> = (0u32..).take(n).collect();
    // Sources of each group as a bit set (a link job has a handful of sources): a byte each when
    // there are at most 8 (0.4 GB less for the national job's 52 M records).
    let one_per_source = task == Task::Link && n_sources <= 64;
    let mut sources = if !one_per_source {
        SourceSets::Wide(Vec::new())
    } else if n_sources <= 8 {
        SourceSets::Narrow(source[..n].iter().map(|&s| 1u8 << (s % 8)).collect())
    } else {
        SourceSets::Wide(source[..n].iter().map(|&s| 1u64 << (s % 64)).collect())
    };
    fn find(p: &mut [u32], mut x: u32) -> u32 {
        while p[x as usize] != x {
            p[x as usize] = p[p[x as usize] as usize];
            x = p[x as usize];
        }
        x
    }
    // The accepted edges by index, in pair order, then sorted by decreasing (deterministic,
    // probability): stable, so ties keep the pair order; in parallel (the national registry's
    // linkage sorts 49 M edges here). 4 bytes an edge (references took 8) unless there are more
    // than a u32 numbers.
    let accepted = |k: usize| {
        let e = edge(k);
        (e.a as usize) < n && (e.b as usize) < n && e.accepted
    };
    let before = |x: usize, y: usize| {
        let (x, y) = (edge(x), edge(y));
        (y.deterministic, y.probability)
            .partial_cmp(&(x.deterministic, x.probability))
            .unwrap_or(std::cmp::Ordering::Equal)
    };
    let sorted: Box<dyn Iterator<Item = usize>> = if u32::try_from(n_edges).is_ok() {
        let mut v: Vec<u32> = (0u32..).take(n_edges).filter(|&k| accepted(k as usize)).collect();
        crate::in_pool(|| v.par_sort_by(|&x, &y| before(x as usize, y as usize)));
        Box::new(v.into_iter().map(|k| k as usize))
    } else {
        let mut v: Vec<usize> = (0..n_edges).filter(|&k| accepted(k)).collect();
        crate::in_pool(|| v.par_sort_by(|&x, &y| before(x, y)));
        Box::new(v.into_iter())
    };
    for e in sorted.map(&edge) {
        let (ra, rb) = (find(&mut parent, e.a), find(&mut parent, e.b));
        if ra == rb {
            continue;
        }
        let (ia, ib) = (id(ra as usize), id(rb as usize));
        // Two valid IDs one digit or one transposition apart are one ID mistyped (the check digit
        // misses some transpositions), not two people.
        if let (Some(x), Some(y)) = (ia, ib)
            && x != y
            && !super::compare::id_near(x.get(), y.get())
        {
            continue;
        }
        if one_per_source && !e.deterministic && sources.overlap(ra as usize, rb as usize) {
            continue;
        }
        // The merged group carries `ia.or(ib)`: its root is `ra` when `ra` has an ID, else `rb`
        // when it has one (which root is kept changes no entity: they are numbered by their first
        // record).
        let (keep, gone) = match (ia, ib) {
            (Some(_), _) => (ra, rb),
            (None, Some(_)) => (rb, ra),
            (None, None) => (ra.min(rb), ra.max(rb)),
        };
        parent[gone as usize] = keep;
        if one_per_source {
            sources.join(keep as usize, gone as usize);
        }
    }
    // IDs the closure owns go before the entities are numbered.
    drop(id);
    drop(sources);
    number_groups(parent)
}

/// Each record's group (its root in `parent`, a union-find forest) numbered in order of the
/// group's first record, written in `parent`'s own room: a separate numbering by root and the
/// result beside the forest took 12 bytes a record, the end of the national clustering's peak.
///
/// Paths are flattened first (every record's slot its root). Then, record by record in order,
/// a slot before the current record holds that record's number, and a root's slot after it holds
/// the root itself until its group is numbered, then the group's first record (smaller than the
/// root), whose slot holds the number. (No bit is free to mark a number: a job may number every
/// `u32`.)
fn number_groups(mut parent: Vec<u32>) -> Vec<u32> {
    let n = parent.len();
    for i in 0..n {
        let mut r = parent[i];
        while parent[r as usize] != r {
            r = parent[r as usize];
        }
        // Every slot on the way points to the root, so later walks are short.
        let mut x = i;
        while parent[x] != r {
            let next = parent[x] as usize;
            parent[x] = r;
            x = next;
        }
    }
    let mut next = 0u32;
    for i in 0..n {
        let r = parent[i] as usize;
        parent[i] = if r < i {
            // The root is numbered already: its slot holds its number.
            parent[r]
        } else if parent[r] as usize != r {
            // The group's first record (before `i`) holds its number.
            parent[parent[r] as usize]
        } else {
            // The group's first record: a new number, and the root told where it is.
            let d = next;
            next += 1;
            if r != i {
                // `i` < `parent.len()` ≤ `MAX_RECORDS` = `u32::MAX`: it fits.
                parent[r] = i as u32;
            }
            d
        };
    }
    parent
}

/// The sources of each group of [`cluster_ids`], as bit sets.
enum SourceSets {
    /// At most 8 sources.
    Narrow(Vec<u8>),
    /// At most 64.
    Wide(Vec<u64>),
}

impl SourceSets {
    /// Whether groups `a` and `b` hold records of a source in common.
    fn overlap(&self, a: usize, b: usize) -> bool {
        match self {
            SourceSets::Narrow(v) => v[a] & v[b] != 0,
            SourceSets::Wide(v) => v[a] & v[b] != 0,
        }
    }

    /// Adds group `gone`'s sources to group `keep`'s.
    fn join(&mut self, keep: usize, gone: usize) {
        match self {
            SourceSets::Narrow(v) => v[keep] |= v[gone],
            SourceSets::Wide(v) => v[keep] |= v[gone],
        }
    }
}

/// Stable entity ids: a hash of the smallest `source:record_id` of each entity's records, so
/// adding records elsewhere does not change an entity's id. Written as 16 hex digits.
pub fn entity_ids(r: &Records, entity: &[u32]) -> Vec<u64> {
    entity_ids_by(entity, |i| r.sources[r.source[i] as usize].as_str(), |i| r.key.get(i))
}

/// [`entity_ids`] for records whose source name `source(i)` and record key `key(i)` give.
pub fn entity_ids_by<S: AsRef<str>, K: AsRef<str>>(
    entity: &[u32],
    source: impl Fn(usize) -> S,
    key: impl Fn(usize) -> K,
) -> Vec<u64> {
    // Compared as text (`s10` comes before `s9`), the keys only when the sources are the same:
    // most records of a national job's entities are of two sources, and a key held as a number
    // is written out to be compared.
    let less = |i: usize, j: usize| match source(i).as_ref().cmp(source(j).as_ref()) {
        std::cmp::Ordering::Equal => key(i).as_ref() < key(j).as_ref(),
        o => o.is_lt(),
    };
    let n_entities = entity.iter().max().map(|m| *m as usize + 1).unwrap_or(0);
    // Each entity's smallest record; `NONE` while it has none. Then, in the same vector, each
    // entity's id: the national job's 36.7 M entities' smallest records (0.29 GB) were held
    // beside their ids and the records' ids, at the peak of `tpmap link`.
    const NONE: u64 = u64::MAX;
    let record = |j: u64| usize::try_from(j).ok().filter(|_| j != NONE);
    let mut ids: Vec<u64> = vec![NONE; n_entities];
    for (i, &e) in entity.iter().enumerate() {
        let slot = &mut ids[e as usize];
        if record(*slot).is_none_or(|j| less(i, j)) {
            *slot = i as u64;
        }
    }
    for slot in &mut ids {
        // Entities with no record (a caller's sparse numbering) get an id nobody uses.
        *slot = record(*slot).map_or(0, |j| entity_id(source(j).as_ref(), key(j).as_ref()));
    }
    entity.iter().map(|&e| ids[e as usize]).collect()
}

/// The stable id of an entity whose smallest record is `record` of `source`.
pub fn entity_id(source: &str, record: &str) -> u64 {
    hash(format!("{source}:{record}").as_bytes())
}

/// Quality against a ground truth (an entity label per record).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Quality {
    /// True matching pairs (of the task) in the data.
    pub true_pairs: u64,
    /// Candidate pairs after blocking.
    pub candidates: u64,
    /// Share of true pairs among the candidates (blocking recall).
    pub pairs_completeness: f64,
    /// 1 − candidates / all comparable pairs.
    pub reduction_ratio: f64,
    /// Pairwise precision of the accepted pairs.
    pub precision: f64,
    /// Pairwise recall.
    pub recall: f64,
    /// Pairwise F1.
    pub f1: f64,
    /// B-cubed precision of the clusters.
    pub cluster_precision: f64,
    /// B-cubed recall of the clusters.
    pub cluster_recall: f64,
    /// B-cubed F1.
    pub cluster_f1: f64,
}

/// Record indices ordered by their truth label, so each true group is one run (`chunk_by`).
/// Records are indexed by `u32` in a link job ([`super::records::MAX_RECORDS`]).
pub(crate) fn by_truth(truth: &[u64]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..truth.len().min(super::records::MAX_RECORDS) as u32).collect();
    crate::in_pool(|| order.par_sort_unstable_by_key(|&i| truth[i as usize]));
    order
}

/// Evaluates pairs and clusters against `truth`.
pub fn evaluate(
    r: &Records,
    task: Task,
    truth: &[u64],
    pairs: &[(u32, u32)],
    scored: &[Scored],
    threshold: f64,
    entity: &[u32],
) -> Quality {
    let comparable = |a: usize, b: usize| task != Task::Link || r.source[a] != r.source[b];
    // Sorting instead of hash maps of vectors: at national scale (50 M records) those took
    // gigabytes. Records in truth-group order, then the true pairs of each (small) group.
    let n_rec = r.len();
    let by_truth = by_truth(truth);
    let mut truth_size = vec![0u32; n_rec];
    let mut true_pairs = 0u64;
    for g in by_truth.chunk_by(|&a, &b| truth[a as usize] == truth[b as usize]) {
        for (x, &a) in g.iter().enumerate() {
            truth_size[a as usize] = g.len() as u32;
            for &b in &g[x + 1..] {
                true_pairs += comparable(a as usize, b as usize) as u64;
            }
        }
    }
    let found = pairs.iter().filter(|&&(a, b)| truth[a as usize] == truth[b as usize]).count() as u64;
    let n = r.len() as f64;
    let all_pairs = match task {
        Task::Link => {
            let mut per: HashMap<u16, f64> = HashMap::new();
            for &s in &r.source {
                *per.entry(s).or_default() += 1.0;
            }
            let tot: f64 = per.values().sum();
            (tot * tot - per.values().map(|c| c * c).sum::<f64>()) / 2.0
        }
        _ => n * (n - 1.0) / 2.0,
    };
    // Counted, not listed (16 M matches nationally).
    let (mut accepted, mut tp) = (0u64, 0u64);
    for s in scored.iter().filter(|s| super::is_match(s, threshold, entity)) {
        accepted += 1;
        tp += u64::from(truth[s.a as usize] == truth[s.b as usize]);
    }
    // Exact below 2^53 (counts of pairs).
    let tp = tp as f64;
    let precision = if accepted == 0 { 1.0 } else { tp / accepted as f64 };
    let recall = if true_pairs == 0 { 1.0 } else { tp / true_pairs as f64 };
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    // B-cubed over records: for each record, its cluster's size, its truth group's size and how
    // many records share both (runs of equal (entity, truth) after sorting).
    let mut entity_size = vec![0u32; entity.iter().max().map_or(0, |&m| m as usize + 1)];
    for &e in entity {
        entity_size[e as usize] += 1;
    }
    // In the truth order's room (the national job's 52 M records: 0.21 GB not taken again).
    let mut by_both = by_truth;
    by_both.clear();
    by_both.extend(0..n_rec as u32);
    crate::in_pool(|| by_both.par_sort_unstable_by_key(|&i| (entity[i as usize], truth[i as usize])));
    let (mut bp, mut br) = (0.0, 0.0);
    for g in
        by_both.chunk_by(|&a, &b| (entity[a as usize], truth[a as usize]) == (entity[b as usize], truth[b as usize]))
    {
        let both = g.len() as f64;
        for &i in g {
            bp += both / entity_size[entity[i as usize] as usize] as f64;
            br += both / truth_size[i as usize] as f64;
        }
    }
    let (bp, br) = (bp / n, br / n);
    Quality {
        true_pairs,
        candidates: pairs.len() as u64,
        pairs_completeness: if true_pairs == 0 { 1.0 } else { found as f64 / true_pairs as f64 },
        reduction_ratio: 1.0 - pairs.len() as f64 / all_pairs.max(1.0),
        precision,
        recall,
        f1,
        cluster_precision: bp,
        cluster_recall: br,
        cluster_f1: if bp + br > 0.0 { 2.0 * bp * br / (bp + br) } else { 0.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::RawRecord;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Groups numbered in the forest's room are numbered as with a separate table by root:
        /// in order of each group's first record, whichever member is the root (roots before and
        /// after their members, chains of any length).
        #[test]
        fn groups_numbered_in_place_as_by_a_table(links in proptest::collection::vec((0u32..60, 0u32..60), 0..80), n in 1usize..60) {
            let mut parent: Vec<u32> = (0u32..).take(n).collect();
            fn root(p: &[u32], mut x: u32) -> u32 {
                while p[x as usize] != x {
                    x = p[x as usize];
                }
                x
            }
            for &(a, b) in &links {
                let (a, b) = (a % n as u32, b % n as u32);
                let (ra, rb) = (root(&parent, a), root(&parent, b));
                if ra != rb {
                    parent[rb as usize] = ra; // any root kept, early or late
                }
            }
            let mut dense = vec![u32::MAX; n];
            let mut next = 0;
            let want: Vec<u32> = (0..n as u32)
                .map(|i| {
                    let r = root(&parent, i) as usize;
                    if dense[r] == u32::MAX {
                        dense[r] = next;
                        next += 1;
                    }
                    dense[r]
                })
                .collect();
            prop_assert_eq!(number_groups(parent), want);
        }
    }

    /// Patterns in pieces, counted and scored a piece at a time (each freed once scored), give
    /// the counts and the kept pairs of the patterns whole: pieces of 1, 7 and 1000 pairs and
    /// one piece of all, the last piece shorter, at the job's floor and at none.
    #[test]
    fn patterns_in_pieces_score_as_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let o = super::super::bench::BenchOptions { households: 1500, agency_share: 0.0, ..Default::default() };
        super::super::bench::write(dir.path(), &o).unwrap();
        let mut r = Records::default();
        for f in ["survey.csv", "welfare.csv"] {
            r.push_csv(&dir.path().join(f)).unwrap();
        }
        let linked = super::super::run(&r, &super::super::LinkOptions::default()).unwrap();
        let pairs = block(&r, Task::Link, &Blocking::default()).pairs;
        assert!(pairs.len() > 1000, "{} pairs", pairs.len());
        let whole = patterns(&r, &pairs);
        let tf = TermFrequencies::of(&r);
        for floor in [super::super::SCORE_FLOOR, f64::NEG_INFINITY] {
            let want = score_pairs_above(&r, &linked.model, Some(&tf), &pairs, &whole, floor);
            for range in [1, 7, 1000, pairs.len()] {
                let in_pieces = pair_pieces(pairs.clone(), range);
                assert_eq!(in_pieces.len(), pairs.len().div_ceil(range));
                assert!(in_pieces.iter().all(|p| p.len() == p.capacity() && p.len() <= range));
                assert_eq!(in_pieces.concat(), pairs);
                let pieces = pattern_pieces(&r, &in_pieces);
                assert_eq!(pieces.len(), pairs.len().div_ceil(range));
                assert_eq!(group_pieces(&pieces), group(&whole), "range {range}");
                let unlimited = (&Budget::new(None, r.len()), 0);
                let keep = range % 2 == 1;
                let (got, kept_pairs) =
                    score_pieces_above(&r, (&linked.model, Some(&tf)), (in_pieces, pieces), floor, keep, unlimited)
                        .unwrap();
                assert_eq!(kept_pairs, if keep { pairs.clone() } else { Vec::new() }, "range {range}");
                assert_eq!(got.len(), want.len(), "range {range}");
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(g, w)| (g.a, g.b, g.weight.to_bits()) == (w.a, w.b, w.weight.to_bits()))
                );
            }
        }
    }

    proptest! {
        /// Merging rule by rule gives the sorted distinct union, whatever overlaps.
        #[test]
        fn merge_is_the_sorted_union(a in proptest::collection::vec((0u32..40, 0u32..40), 0..60),
                                     b in proptest::collection::vec((0u32..40, 0u32..40), 0..60)) {
            let mut so_far = a.clone();
            so_far.sort_unstable();
            so_far.dedup();
            let mut new: Vec<u64> = b.iter().map(|&(x, y)| u64::from(x) << 32 | u64::from(y)).collect();
            new.sort_unstable();
            new.dedup();
            let mut want: Vec<(u32, u32)> = a.iter().chain(&b).copied().collect();
            want.sort_unstable();
            want.dedup();
            prop_assert_eq!(merge_pairs(&so_far, &new), want);
        }

        /// Blocking gives, rule by rule, the pairs of every block of 2 to `max_block` records
        /// that the task compares, and their sorted distinct union: checked against a plain
        /// grouping of each rule's keys (small alphabets make large and skipped blocks), and the
        /// keys against a plain pass over the records.
        #[test]
        fn blocking_gives_every_pair_of_each_rules_blocks(
            people in proptest::collection::vec((0usize..3, 0usize..3, 0usize..4, 0usize..2, 0u16..2), 0..40),
            max_block in 2usize..8,
            link in any::<bool>(),
        ) {
            let (firsts, lasts, births, areas) =
                (["สมชาย", "สมหญิง", "มานี"], ["ใจดี", "รักไทย", "ศรีสุข"], ["1980-01-02", "1980-01-03", "1975-05-05", ""], ["10010101", "10010102"]);
            let mut r = Records::default();
            for src in 0..2u16 {
                let keys: Vec<String> = (0..people.len()).map(|i| format!("r{i}")).collect();
                let raw: Vec<RawRecord<'_>> = people
                    .iter()
                    .zip(&keys)
                    .filter(|(p, _)| p.4 == src)
                    .map(|(p, key)| RawRecord {
                        key: key.clone(),
                        citizen_id: "",
                        title: "",
                        first: firsts[p.0],
                        last: lasts[p.1],
                        birth: births[p.2],
                        sex: "",
                        area: areas[p.3],
                        house: "",
                        flag: "",
                        tag: "",
                    })
                    .collect();
                r.push_source(if src == 0 { "a" } else { "b" }, &raw);
            }
            let task = if link { Task::Link } else { Task::Dedupe };
            let b = Blocking {
                rules: vec![vec![Key::Last, Key::Tambon], vec![Key::First], vec![Key::BirthDate, Key::Province]],
                max_block,
            };
            let got = block(&r, task, &b);
            // Keyed from the smaller source first whatever its size (a link only): the same.
            let unlimited = Budget::new(None, r.len());
            let from_smaller = block_from(&r, task, &b, smaller_of_two_sources(&r, task, 1), &unlimited, 0).unwrap();
            prop_assert_eq!(&from_smaller.pairs, &got.pairs);
            prop_assert_eq!(&from_smaller.rule_pairs, &got.rule_pairs);
            prop_assert_eq!(&from_smaller.skipped_blocks, &got.skipped_blocks);
            prop_assert_eq!(smaller_of_two_sources(&r, task, 1).is_some(), link);
            let mut want: Vec<(u32, u32)> = Vec::new();
            for (k, rule) in b.rules.iter().enumerate() {
                let mut blocks: HashMap<u64, Vec<u32>> = HashMap::new();
                for (key, i) in rule_keys(&r, rule) {
                    blocks.entry(key).or_default().push(i);
                }
                let (mut pairs, mut skipped) = (0, 0);
                for members in blocks.values() {
                    if members.len() > max_block {
                        // A link's block of one source gives no pair: not counted as skipped.
                        let sources: std::collections::HashSet<u16> =
                            members.iter().map(|&i| r.source[i as usize]).collect();
                        if task == Task::Dedupe || sources.len() > 1 {
                            skipped += 1;
                        }
                        continue;
                    }
                    for (x, &i) in members.iter().enumerate() {
                        for &j in &members[x + 1..] {
                            if task == Task::Dedupe || r.source[i as usize] != r.source[j as usize] {
                                want.push((i.min(j), i.max(j)));
                                pairs += 1;
                            }
                        }
                    }
                }
                prop_assert_eq!(got.rule_pairs[k], pairs);
                prop_assert_eq!(got.skipped_blocks[k], skipped);
            }
            want.sort_unstable();
            want.dedup();
            prop_assert_eq!(got.pairs, want);
            // Each rule's keys, whatever the ranges they are made in: every keyed record once,
            // in record order, as a plain pass finds them.
            for rule in &b.rules {
                let mut buf = Vec::new();
                let plain: Vec<(u64, u32)> = (0..r.len())
                    .filter_map(|i| {
                        buf.clear();
                        rule.iter().all(|k| k.value(&r, i, &mut buf)).then(|| (key_hash(&buf), i as u32))
                    })
                    .collect();
                for range in [1, 3, 7, 64] {
                    prop_assert_eq!(&rule_keys_by(&r, rule, range), &plain);
                }
            }
        }

        /// Clustering keeps one record per source in an entity whether the source sets are
        /// bytes (up to 8 sources) or words: the same entities either way.
        #[test]
        fn narrow_and_wide_source_sets_agree(
            source in proptest::collection::vec(0u16..3, 2..30),
            edges in proptest::collection::vec((0u32..30, 0u32..30, 0.5f64..1.0, any::<bool>()), 0..60),
        ) {
            let n = source.len() as u32;
            let mut scored: Vec<Scored> = edges
                .iter()
                .filter(|e| e.0 % n != e.1 % n)
                .map(|&(a, b, probability, deterministic)| {
                    let (a, b) = ((a % n).min(b % n), (a % n).max(b % n));
                    Scored { a, b, weight: 0.0, probability, deterministic, contradicted: false }
                })
                .collect();
            scored.sort_by_key(|s| (s.a, s.b));
            scored.dedup_by_key(|s| (s.a, s.b));
            let ids = vec![None; source.len()];
            let narrow = cluster_with(&ids, &source, 3, &scored, 0.9, Task::Link);
            let wide = cluster_with(&ids, &source, 9, &scored, 0.9, Task::Link);
            prop_assert_eq!(narrow, wide);
        }
    }
}
