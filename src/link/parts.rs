//! A welfare registry linked with persons who come in parts (a partitioned run's waves of
//! provinces), holding one part at a time instead of every person's link record: the bounded
//! linkage of `tpmap run --max-memory` (issue 15, item 3).
//!
//! The result is [`super::welfare_marks`]'s for all the persons in one job, mark for mark (and
//! [`linked_in_parts`] gives [`super::run_without_ids`]'s [`Linked`], what `tpmap link` writes):
//! the same candidate pairs, model, scores and clustering, because each is a sum or a union over
//! parts that a part can give exactly:
//!
//! - **Provincial rules** (a rule with a tambon, amphoe or province key: every key's value begins
//!   with the province's code) have blocks inside one province. Each province's persons are in
//!   one part (checked), so a part's persons beside the registry records of its provinces hold
//!   every block they are in, whole. (Keys are hashed to 64 bits, as in the whole job: only a
//!   collision between two provinces' keys, which the whole job would put in one block, could
//!   differ.)
//! - **Nationwide rules** (citizen ID, names and birth year) have blocks across the country. The
//!   registry's keys under each are held sorted (16 bytes a registry record and rule, with the
//!   count); a first pass over the parts ([`Counting::count`]) counts the persons of each key,
//!   so that a block's size — and whether it is skipped as too large — is the whole job's
//!   (64-bit key hashes, as the whole job's: a collision would join keys there too). A later
//!   pass pairs each part's persons with
//!   the registry records of their keys (a link task pairs only records of two sources, so a
//!   block without a registry record gives nothing).
//! - The pairs of a part (every rule's, each pair once) are the job's pairs of its persons;
//!   patterns are compared on the part's records; their counts, summed over parts, train the
//!   model; name frequencies are counts summed over parts; the random pairs of u are the job's
//!   ([`model::u_sample`] over the same record numbers), each compared in its person's part.
//! - The kept scores (matches and deterministic pairs; for [`linked_in_parts`] every pair at or
//!   above [`super::SCORE_FLOOR`]) are gathered compactly and clustered once, in the job's pair
//!   order, by the job's own clustering. Each rule's pairs are counted part by part; the blocks
//!   skipped for size are counted in each part under a provincial rule and once, from the
//!   persons counted, under a nationwide one.
//!
//! Two passes over the parts: counts (a partitioned run makes them while it reads its waves for
//! the whole order, and keeps each wave's records in a [`super::records::RecordSpill`] for the
//! second pass); then candidate pairs and patterns, counted for training and spilled (32
//! bytes a pair) to an anonymous temporary file (in `TMPDIR`), from which the pairs are scored
//! once the model is trained. What is held throughout:
//! the registry's records and nationwide keys ([`Counting::registry_bytes`] measures them), each
//! person's valid citizen ID (for clustering), the name counts; once scored, the kept pairs
//! (counted first, then held in vectors of their exact length: [`BYTES_PER_KEPT_PAIR`], within
//! [`Counting::limit_kept`]) after the registry's records and keys are given back.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;

use super::model::{self, Blocking, Key, Model, Pattern, Scored, Task, TermFrequencies};
use super::records::Records;
use super::{LinkOptions, Linked, Matched, Timing, WelfareLink};
use crate::{Error, Result};

/// Persons who come in parts, each part read again on every pass of [`welfare_marks_in_parts`]
/// (from their source, or from a [`super::records::RecordSpill`] of the first reading).
pub trait PersonParts {
    /// Number of parts.
    fn parts(&self) -> usize;

    /// Part `i`'s persons as link records of one source (as [`Records::push_extract`] makes
    /// them), and each one's index among all the persons: the index it has in the whole job's
    /// records, whose order decides ties. Every reading of a part gives the same records.
    fn read(&mut self, i: usize) -> Result<(Records, Vec<u32>)>;
}

/// Whether a blocking rule's blocks stay inside one province: it has a tambon, amphoe or
/// province key, whose value begins with the province's code.
pub fn provincial(rule: &[Key]) -> bool {
    rule.iter().any(|k| matches!(k, Key::Tambon | Key::Amphoe | Key::Province))
}

/// No province: a record without an area.
pub(crate) const NO_PROVINCE: u16 = u16::MAX;

/// The province of record `i` (its area's first two characters as a number), or
/// [`NO_PROVINCE`].
pub(crate) fn province(r: &Records, i: usize) -> u16 {
    r.area
        .get(i)
        .and_then(|a| a.as_str().as_bytes().get(..2).map(|b| u16::from_le_bytes([b[0], b[1]])))
        .filter(|&p| p != NO_PROVINCE)
        .unwrap_or(NO_PROVINCE)
}

/// The registry's records under one nationwide rule, sorted by key, with the number of persons
/// of each key (at the first position of its run).
struct Nationwide {
    keys: Vec<u64>,
    members: Vec<u32>,
    persons: Vec<u32>,
}

impl Nationwide {
    fn of(reg: &Records, rule: &[Key]) -> Nationwide {
        let mut keyed = model::rule_keys(reg, rule);
        keyed.par_sort_unstable();
        let (keys, members): (Vec<u64>, Vec<u32>) = keyed.into_iter().unzip();
        let persons = vec![0; keys.len()];
        Nationwide { keys, members, persons }
    }

    /// For each of `keyed` (a part's (key, record), sorted by key) whose key a registry record
    /// has: `each(run of the key's registry positions, person record)`.
    fn each_run(&self, keyed: &[(u64, u32)], mut each: impl FnMut(std::ops::Range<usize>, u32)) {
        // A part holds a few of the registry's keys (a wave of 1.5 M persons against 11.6 M
        // registry records): each key's run is found by galloping from the last one's end, not
        // by walking every registry run (which took a third of the national comparing pass).
        let keys = &self.keys;
        let (mut from, mut run, mut last) = (0usize, 0..0, None);
        for &(k, rec) in keyed {
            if last != Some(k) {
                let start = gallop(keys, from, |x| x < k);
                from = gallop(keys, start, |x| x <= k);
                (run, last) = (start..from, Some(k));
            }
            if !run.is_empty() {
                each(run.clone(), rec);
            }
        }
    }
}

/// The first position at or after `from` in `keys` (sorted) whose key is not `below` (true for
/// every key up to some position, false after): probes 1, 2, 4, ... positions on, then a binary
/// search between the last two probes — a few probes when the answer is near.
fn gallop(keys: &[u64], from: usize, below: impl Fn(u64) -> bool) -> usize {
    let (mut lo, mut step) = (from.min(keys.len()), 1usize);
    loop {
        let probe = lo.saturating_add(step - 1);
        match keys.get(probe) {
            Some(&x) if below(x) => {
                lo = probe + 1;
                step = step.saturating_mul(2);
            }
            _ => {
                let hi = probe.min(keys.len());
                return lo + keys[lo..hi].partition_point(|&x| below(x));
            }
        }
    }
}

/// A part's candidate pairs with the records they need.
struct PartPairs {
    /// The part's persons, then the registry records its pairs (and samples) need.
    wave: Records,
    /// Pairs as (person, registry record) in `wave`, in the order of `job`.
    local: Vec<(u32, u32)>,
    /// The same pairs as the job numbers them: (person's index among all, registry record).
    job: Vec<(u32, u32)>,
    /// The registry records in `wave`, in order (the wave's record `persons + k` is `needed[k]`).
    needed: Vec<u32>,
    /// Persons in the part.
    persons: usize,
    /// Pairs each rule (of the job's, in its order) gave the part's persons, a pair found by
    /// several rules counted under each: summed over the parts, the whole job's
    /// [`model::Candidates::rule_pairs`].
    rule_pairs: Vec<usize>,
    /// Blocks skipped for size under each provincial rule (each such block lies in one part);
    /// zero under the nationwide ones, counted once for the job ([`Job::skipped_nationwide`]).
    skipped: Vec<usize>,
}

impl PartPairs {
    /// Index in `wave` of registry record `j`, if the wave holds it.
    fn registry_at(&self, j: u32) -> Option<u32> {
        let k = self.needed.binary_search(&j).ok()?;
        u32::try_from(self.persons + k).ok()
    }
}

/// What every pass shares.
struct Job {
    reg: Records,
    reg_province: Vec<u16>,
    nationwide: Vec<(Vec<Key>, Nationwide)>,
    provincial: Blocking,
    max_block: usize,
    /// Where each nationwide rule, then each provincial rule, stands among the job's rules.
    nationwide_at: Vec<usize>,
    provincial_at: Vec<usize>,
}

impl Job {
    /// The candidate pairs of a part (every rule's, each pair once), `extra` registry records
    /// added to its records.
    fn pairs(&self, part: Records, global: &[u32], extra: &[u32]) -> Result<PartPairs> {
        let persons = part.len();
        let mut in_part = vec![false; usize::from(u16::MAX) + 1];
        for i in 0..persons {
            in_part[usize::from(province(&part, i))] = true;
        }
        in_part[usize::from(NO_PROVINCE)] = false;
        let mut needed: Vec<u32> =
            (0u32..).zip(&self.reg_province).filter(|&(_, &p)| in_part[usize::from(p)]).map(|(j, _)| j).collect();
        let rules = self.nationwide_at.len() + self.provincial_at.len();
        let (mut rule_pairs, skipped) = (vec![0usize; rules], vec![0usize; rules]);
        // Nationwide pairs as (person in the part, registry record).
        let mut across: Vec<(u32, u32)> = Vec::new();
        for ((rule, nw), &at) in self.nationwide.iter().zip(&self.nationwide_at) {
            let mut keyed = model::rule_keys(&part, rule);
            keyed.par_sort_unstable();
            let before = across.len();
            nw.each_run(&keyed, |run, person| {
                let size = nw.persons[run.start] as usize + run.len();
                if size <= self.max_block {
                    across.extend(nw.members[run].iter().map(|&j| (person, j)));
                }
            });
            rule_pairs[at] = across.len() - before;
        }
        needed.extend(across.iter().map(|&(_, j)| j));
        needed.extend_from_slice(extra);
        needed.par_sort_unstable();
        needed.dedup();
        let mut wave = part;
        let registry_name = self.reg.sources.first().cloned().unwrap_or_default();
        let src = wave.add_source(&registry_name);
        wave.append_from(&self.reg, &needed);
        wave.source[persons..].fill(src);
        let mut pp = PartPairs { wave, local: Vec::new(), job: Vec::new(), needed, persons, rule_pairs, skipped };
        // (person's job index, registry record, person in the wave, record in the wave).
        let mut all: Vec<(u32, u32, u32, u32)> = Vec::with_capacity(across.len());
        for (person, j) in across {
            let at = pp.registry_at(j).ok_or_else(|| internal("a nationwide pair's registry record"))?;
            all.push((global[person as usize], j, person, at));
        }
        if !self.provincial.rules.is_empty() {
            let c = model::block(&pp.wave, Task::Link, &self.provincial);
            for (k, &at) in self.provincial_at.iter().enumerate() {
                pp.rule_pairs[at] = c.rule_pairs.get(k).copied().unwrap_or(0);
                pp.skipped[at] = c.skipped_blocks.get(k).copied().unwrap_or(0);
            }
            for (a, b) in c.pairs {
                // Persons come first: a link pair is a person and a registry record.
                let (Some(&g), Some(&j)) = (global.get(a as usize), pp.needed.get((b as usize).wrapping_sub(persons)))
                else {
                    return Err(internal("a provincial pair not of a person and a registry record"));
                };
                all.push((g, j, a, b));
            }
        }
        all.par_sort_unstable();
        all.dedup_by_key(|p| (p.0, p.1));
        pp.local = all.iter().map(|p| (p.2, p.3)).collect();
        pp.job = all.iter().map(|p| (p.0, p.1)).collect();
        Ok(pp)
    }

    /// Blocks skipped for size under each nationwide rule, in the job's rule order (zero under
    /// the provincial ones): a key with persons and registry records, more than `max_block` of
    /// them together — the whole job's count, once every part's persons are counted.
    fn skipped_nationwide(&self, rules: usize) -> Vec<usize> {
        let mut skipped = vec![0usize; rules];
        for ((_, nw), &at) in self.nationwide.iter().zip(&self.nationwide_at) {
            // Each key's persons are counted at the first position of its run.
            let mut start = 0;
            for run in nw.keys.chunk_by(|a, b| a == b) {
                let persons = nw.persons[start] as usize;
                if persons > 0 && persons + run.len() > self.max_block {
                    skipped[at] += 1;
                }
                start += run.len();
            }
        }
        skipped
    }
}

fn internal(what: &str) -> Error {
    Error::Config(format!("internal: bounded linkage: {what}"))
}

/// A part as read, checked: one source, an index among `n` persons for each record, no index
/// met twice across parts (`seen`).
fn checked(got: (Records, Vec<u32>), n: usize, seen: Option<&mut Vec<bool>>) -> Result<(Records, Vec<u32>)> {
    let (part, global) = got;
    if part.len() != global.len() || part.sources.len() != 1 {
        return Err(internal("a part must give one source's records and an index for each"));
    }
    if global.iter().any(|&g| g as usize >= n) {
        return Err(internal("a person's index beyond the persons counted"));
    }
    if let Some(seen) = seen {
        for &g in &global {
            if std::mem::replace(&mut seen[g as usize], true) {
                return Err(internal("a person given twice"));
            }
        }
    }
    Ok((part, global))
}

/// What scoring needs of a candidate pair, as spilled between the passes: the person's index
/// among all (`g`), the registry record (`j`), the pattern, whether the person has a valid
/// citizen ID, and the term frequencies of the person's names (`None` spilled as NaN, which no
/// frequency is).
struct Spilled {
    g: u32,
    j: u32,
    pattern: Pattern,
    a_has_id: bool,
    first: Option<f64>,
    last: Option<f64>,
}

impl Spilled {
    const BYTES: usize = 32;

    fn bytes(&self) -> [u8; Self::BYTES] {
        let mut b = [0u8; Self::BYTES];
        b[0..4].copy_from_slice(&self.g.to_le_bytes());
        b[4..8].copy_from_slice(&self.j.to_le_bytes());
        b[8..14].copy_from_slice(&self.pattern);
        b[14] = u8::from(self.a_has_id);
        b[16..24].copy_from_slice(&self.first.unwrap_or(f64::NAN).to_le_bytes());
        b[24..32].copy_from_slice(&self.last.unwrap_or(f64::NAN).to_le_bytes());
        b
    }

    /// Reads back what [`Spilled::bytes`] wrote (`b` holds [`Spilled::BYTES`] bytes).
    fn of(b: &[u8]) -> Spilled {
        let mut w = [0u8; Self::BYTES];
        let k = b.len().min(Self::BYTES);
        w[..k].copy_from_slice(&b[..k]);
        let f = |at: usize| {
            let v = f64::from_le_bytes([
                w[at],
                w[at + 1],
                w[at + 2],
                w[at + 3],
                w[at + 4],
                w[at + 5],
                w[at + 6],
                w[at + 7],
            ]);
            (!v.is_nan()).then_some(v)
        };
        Spilled {
            g: u32::from_le_bytes([w[0], w[1], w[2], w[3]]),
            j: u32::from_le_bytes([w[4], w[5], w[6], w[7]]),
            pattern: [w[8], w[9], w[10], w[11], w[12], w[13]],
            a_has_id: w[14] == 1,
            first: f(16),
            last: f(24),
        }
    }
}

/// Kept scores, compactly: (person, registry record) packed, weight, and flags.
#[derive(Default)]
struct Kept {
    pairs: Vec<u64>,
    weights: Vec<f64>,
    flags: Vec<u8>,
}

/// [`super::welfare_marks`] for `n` persons that come in `parts`, linked with the registry
/// file `registry`: the same marks and report, holding one part's link records at a time
/// instead of all of them (see the module's documentation for how each step is kept exact).
/// Each province's persons must be in one part.
pub fn welfare_marks_in_parts(
    parts: &mut dyn PersonParts,
    n: usize,
    registry: &Path,
    o: &LinkOptions,
) -> Result<(Vec<Option<bool>>, WelfareLink)> {
    Counting::of_registry(registry, o)?.count_all(parts, n)?.welfare_marks(parts)
}

/// [`super::run_matches`] of a link task over `n` persons that come in `parts` and the records
/// of `registry` (one source), numbered as one job numbers them — the persons by their index
/// among all, then the registry's records in order: the same scored pairs, in the same order,
/// and the same entities, holding one part's link records at a time. Each province's persons
/// must be in one part. A job that would train a model for its own blocking rules (no model
/// given, rules not the default ones) is refused: it trains on other candidates than it
/// predicts with, which this path does not make.
pub fn matches_in_parts(parts: &mut dyn PersonParts, n: usize, reg: Records, o: &LinkOptions) -> Result<Matched> {
    Counting::new(reg, o)?.count_all(parts, n)?.matches(parts)
}

/// [`super::run_without_ids`] of a link task over `n` persons that come in `parts` and the
/// records of `reg` (one source), numbered as [`matches_in_parts`] numbers them: the same
/// [`Linked`] — model, name frequencies, every scored pair at or above [`super::SCORE_FLOOR`]
/// (or the threshold, if lower) in the same order, entities, and the counts of candidate pairs,
/// of each rule's pairs and of the blocks skipped — without the candidate pairs themselves
/// (`pairs` empty, as without [`LinkOptions::keep_candidates`]), holding one part's link
/// records at a time. Each province's persons must be in one part; the same refusal as
/// [`matches_in_parts`].
pub fn linked_in_parts(parts: &mut dyn PersonParts, n: usize, reg: Records, o: &LinkOptions) -> Result<Linked> {
    Counting::new(reg, o)?.count_all(parts, n)?.linked(parts)
}

/// A bounded linkage under way: the registry keyed, and the persons counted part by part as
/// they are read a first time ([`Counting::count`]: persons per nationwide key, name counts,
/// citizen IDs, each province in one part); then [`Counting::matches`] (or
/// [`Counting::welfare_marks`]) reads the same parts again, in the same order, to compare and
/// score them. A partitioned run counts its waves as it reads them for the whole order.
pub struct Counting {
    o: LinkOptions,
    blocking: Blocking,
    job: Job,
    first: HashMap<String, u64>,
    last: HashMap<String, u64>,
    /// The persons' valid citizen IDs, in the order counted.
    ids: Vec<Option<NonZeroU64>>,
    /// Persons of each part counted.
    sizes: Vec<usize>,
    /// The part each province's persons are in.
    owner: Vec<usize>,
    /// The registry's `validated` flags and its unreadable records.
    reg_flag: Vec<Option<bool>>,
    unreadable: usize,
    timing: Timing,
    /// Bytes the kept pairs and the clustering may take at most ([`Counting::limit_kept`]).
    kept_limit: Option<u64>,
}

/// Bytes a bounded linkage holds per record (person or registry record) while it clusters its
/// kept pairs, once no part is held: each record's valid citizen ID (8), its clustering parent
/// (4), entity (4), group sources (1) and source (2), and each person's index in the whole order
/// (4) that the parts are read with, rounded up.
pub const BYTES_CLUSTERING_PER_RECORD: u64 = 24;

/// Bytes a kept pair takes at most: 17 while scored (pair, weight, flags); 38 while put in the
/// job's order (an index, and the three columns again, when the parts were not in it); then 17
/// with its probability (8) and its place among the accepted edges (4): 29.
pub const BYTES_PER_KEPT_PAIR: u64 = 38;

impl Counting {
    /// Reads the registry file (as [`Records::push_csv`] reads it) and keys it.
    pub fn of_registry(registry: &Path, o: &LinkOptions) -> Result<Counting> {
        let mut reg = Records::default();
        reg.push_csv(registry)?;
        Counting::new(reg, o)
    }

    /// Keys the registry's records (one source) for a link job with options `o`. A job that
    /// would train a model for its own blocking rules is refused (see [`matches_in_parts`]).
    pub fn new(mut reg: Records, o: &LinkOptions) -> Result<Counting> {
        let o = LinkOptions { task: Task::Link, ..o.clone() };
        o.validate()?;
        if reg.sources.len() != 1 {
            return Err(Error::Config("a bounded linkage takes one registry source".into()));
        }
        let blocking = o.blocking_used();
        if o.model.is_none() && blocking != Blocking::default() {
            return Err(Error::Config(
                "a bounded linkage (--max-memory) trains on the default blocking rules only; give a model for other rules"
                    .into(),
            ));
        }
        let t = Instant::now();
        let mut lap = crate::diagnostics::Lap::start();
        // Held until the persons are compared: no room for records that never came.
        reg.shrink_to_fit();
        let r = reg.len();
        let (provincial_at, nationwide_at): (Vec<usize>, Vec<usize>) =
            (0..blocking.rules.len()).partition(|&k| provincial(&blocking.rules[k]));
        let nationwide = nationwide_at
            .iter()
            .map(|&k| (blocking.rules[k].clone(), Nationwide::of(&reg, &blocking.rules[k])))
            .collect();
        let (first, last) = TermFrequencies::counts(&reg);
        let (reg_flag, unreadable) = (reg.flag.clone(), reg.unreadable.len());
        let job = Job {
            reg_province: (0..r).map(|j| province(&reg, j)).collect(),
            reg,
            nationwide,
            provincial: Blocking {
                rules: provincial_at.iter().map(|&k| blocking.rules[k].clone()).collect(),
                max_block: blocking.max_block,
            },
            max_block: blocking.max_block,
            nationwide_at,
            provincial_at,
        };
        let timing = Timing { block: t.elapsed().as_secs_f64(), ..Timing::default() };
        lap.lap("bounded link: registry keyed");
        Ok(Counting {
            o,
            blocking,
            job,
            first,
            last,
            ids: Vec::new(),
            sizes: Vec::new(),
            owner: vec![usize::MAX; usize::from(u16::MAX) + 1],
            reg_flag,
            unreadable,
            timing,
            kept_limit: None,
        })
    }

    /// Bytes held for the registry: its records (capacities, [`Records::heap_bytes`]), its keys
    /// under the nationwide rules with their persons' counts, each record's province and flag,
    /// and its name counts. Measured once it is keyed, before any person is counted; what the
    /// persons add is [`Counting::reserve`]'s and the name counts of names the registry has not.
    pub fn registry_bytes(&self) -> u64 {
        use crate::memory::{string_map_bytes, vec_bytes};
        let job = &self.job;
        let keys = job.nationwide.iter().fold(0u64, |b, (rule, nw)| {
            b.saturating_add(vec_bytes(rule))
                .saturating_add(vec_bytes(&nw.keys))
                .saturating_add(vec_bytes(&nw.members))
                .saturating_add(vec_bytes(&nw.persons))
        });
        [
            job.reg.heap_bytes(),
            vec_bytes(&job.reg_province),
            keys,
            vec_bytes(&self.reg_flag),
            vec_bytes(&self.owner),
            string_map_bytes(&self.first),
            string_map_bytes(&self.last),
        ]
        .into_iter()
        .fold(0, u64::saturating_add)
    }

    /// Registry records keyed.
    pub fn registry_len(&self) -> usize {
        self.job.reg.len()
    }

    /// Makes room for `persons` persons' citizen IDs (8 bytes each), so that counting them
    /// takes exactly that (a vector grown by doubling may hold twice what it needs).
    pub fn reserve(&mut self, persons: usize) {
        self.ids.reserve_exact(persons.saturating_sub(self.ids.len()));
    }

    /// Sets the bytes the kept pairs ([`BYTES_PER_KEPT_PAIR`] each) and the clustering
    /// ([`BYTES_CLUSTERING_PER_RECORD`] a record) may take together: a job that keeps more pairs
    /// than fit fails, naming the count, before it clusters them (the number kept is known only
    /// once the pairs are scored).
    pub fn limit_kept(&mut self, bytes: Option<u64>) {
        self.kept_limit = bytes;
    }

    /// Counts every part of `parts` (a first reading), which must hold `n` persons.
    fn count_all(mut self, parts: &mut dyn PersonParts, n: usize) -> Result<Counting> {
        for i in 0..parts.parts() {
            self.count(&parts.read(i)?.0)?;
        }
        if self.persons() != n {
            return Err(internal("the parts hold another number of persons"));
        }
        Ok(self)
    }

    /// Persons counted so far.
    pub fn persons(&self) -> usize {
        self.ids.len()
    }

    /// Forgets the persons counted (the parts are to be read again from the first: a
    /// partitioned run whose first reading crossed a citizen ID's holders).
    pub fn restart(&mut self) {
        for (_, nw) in &mut self.job.nationwide {
            nw.persons.fill(0);
        }
        (self.first, self.last) = TermFrequencies::counts(&self.job.reg);
        self.ids.clear();
        self.sizes.clear();
        self.owner.fill(usize::MAX);
    }

    /// Counts the next part's persons: link records of one source, as
    /// [`PersonParts::read`] gives them.
    pub fn count(&mut self, part: &Records) -> Result<()> {
        let t = Instant::now();
        if part.sources.len() != 1 {
            return Err(internal("a part must give one source's records"));
        }
        let i = self.sizes.len();
        for (rule, nw) in self.job.nationwide.iter_mut() {
            let mut keyed = model::rule_keys(part, rule);
            keyed.par_sort_unstable();
            let mut bumps = Vec::new();
            nw.each_run(&keyed, |run, _| bumps.push(run.start));
            for s in bumps {
                nw.persons[s] = nw.persons[s].saturating_add(1);
            }
        }
        let (f, l) = TermFrequencies::counts(part);
        add_counts(&mut self.first, f);
        add_counts(&mut self.last, l);
        for k in 0..part.len() {
            self.ids.push(part.citizen_id[k].map(|c| c.as_nonzero()));
            let p = province(part, k);
            if p != NO_PROVINCE {
                match self.owner[usize::from(p)] {
                    o if o == usize::MAX => self.owner[usize::from(p)] = i,
                    o if o == i => {}
                    _ => return Err(internal("a province's persons in two parts")),
                }
            }
        }
        self.sizes.push(part.len());
        self.timing.block += t.elapsed().as_secs_f64();
        Ok(())
    }

    /// [`super::welfare_marks`]'s marks and report for the persons counted, reading `parts`
    /// again (the parts counted, in that order, each person with its index among all).
    pub fn welfare_marks(mut self, parts: &mut dyn PersonParts) -> Result<(Vec<Option<bool>>, WelfareLink)> {
        let t = Instant::now();
        let n = self.persons();
        let (reg_flag, unreadable) = (std::mem::take(&mut self.reg_flag), self.unreadable);
        let floor = self.o.threshold;
        let Pass { kept, entity, .. } = self.pass(parts, floor)?;
        let matches = (0..kept.len()).map(|k| kept.scored(k)).filter(|s| super::is_match(s, kept.threshold, &entity));
        let (marks, mut out) = super::marks_of(matches, n, &reg_flag);
        out.registry_unreadable = unreadable;
        drop((kept, entity));
        crate::memory::release();
        out.seconds = t.elapsed().as_secs_f64();
        Ok((marks, out))
    }

    /// [`matches_in_parts`] for the persons counted, reading `parts` again (the parts counted,
    /// in that order, each person with its index among all).
    pub fn matches(self, parts: &mut dyn PersonParts) -> Result<Matched> {
        let threshold = self.o.threshold;
        let Pass { kept, entity, timing, warnings, .. } = self.pass(parts, threshold)?;
        let scored = (0..kept.len()).map(|k| kept.scored(k)).collect();
        Ok(Matched { threshold, scored, entity, timing, warnings })
    }

    /// [`linked_in_parts`] for the persons counted, reading `parts` again (the parts counted,
    /// in that order, each person with its index among all).
    pub fn linked(self, parts: &mut dyn PersonParts) -> Result<Linked> {
        let floor = super::SCORE_FLOOR.min(self.o.threshold);
        let Pass { kept, entity, model, tf, candidates, skipped_blocks, rule_pairs, timing, warnings } =
            self.pass(parts, floor)?;
        let scored = (0..kept.len()).map(|k| kept.scored(k)).collect();
        drop(kept);
        Ok(Linked {
            model,
            tf,
            pairs: Vec::new(),
            candidates,
            skipped_blocks,
            rule_pairs,
            scored,
            entity,
            entity_id: Vec::new(),
            timing,
            warnings,
        })
    }

    /// The second pass: every part compared, the model trained, the pairs scored and those
    /// deterministic or at or above `floor` kept, compactly, and clustered.
    fn pass(self, parts: &mut dyn PersonParts, floor: f64) -> Result<Pass> {
        let Counting { o, blocking, job, first, last, ids: counted, sizes, mut timing, kept_limit, .. } = self;
        let mut lap = crate::diagnostics::Lap::start();
        let n = counted.len();
        let r = job.reg.len();
        let total = n.checked_add(r).filter(|&t| t <= super::records::MAX_RECORDS).ok_or_else(|| {
            Error::Config(format!("a link job takes at most {} records", super::records::MAX_RECORDS))
        })?;
        // Every kept pair's registry record is numbered after the persons: n + j < total fits a u32.
        if parts.parts() != sizes.len() {
            return Err(internal("another number of parts than counted"));
        }
        let tf = TermFrequencies::from_counts(first, last, total as u64);
        // IDs by each person's index among all, read with the parts' indices below.
        let mut ids: Vec<Option<NonZeroU64>> = vec![None; total];
        for (j, id) in job.reg.citizen_id.iter().enumerate() {
            ids[n + j] = id.map(|c| c.as_nonzero());
        }
        let mut seen = vec![false; n];
        let mut at = 0usize;
        // Pass 2: candidate patterns (and the random pairs') counted, the model trained; what
        // scoring needs of each pair spilled to a temporary file (32 bytes a pair), not compared
        // again from a third reading of the parts.
        let t2 = Instant::now();
        let train_needed = o.model.is_none();
        let sample = if train_needed {
            model::u_sample(total, |i| u16::from(i >= n), Task::Link, &o.train)?
        } else {
            Vec::new()
        };
        let mut groups: HashMap<Pattern, u64> = HashMap::new();
        let mut random: HashMap<Pattern, u64> = HashMap::new();
        let spill_path = std::env::temp_dir();
        let io = |e: std::io::Error| Error::io(&spill_path, e);
        let mut spill = std::io::BufWriter::with_capacity(1 << 20, tempfile::tempfile().map_err(io)?);
        let mut spilled: u64 = 0;
        let mut rule_pairs = vec![0usize; blocking.rules.len()];
        let mut skipped_blocks = job.skipped_nationwide(blocking.rules.len());
        for (i, &size) in sizes.iter().enumerate() {
            let (part, global) = checked(parts.read(i)?, n, Some(&mut seen))?;
            let Some(counted) = counted.get(at..at + part.len()).filter(|_| size == part.len()) else {
                return Err(internal("a part read again holds other persons"));
            };
            for (&g, &id) in global.iter().zip(counted) {
                ids[g as usize] = id;
            }
            at += part.len();
            // This part's sampled pairs: (person in the part, registry record).
            let mut by_global: Vec<(u32, u32)> = (0u32..).zip(global.iter()).map(|(l, &g)| (g, l)).collect();
            by_global.par_sort_unstable();
            let mut mine: Vec<(u32, u32)> = Vec::new();
            for &(x, y) in &sample {
                if let Ok(k) = by_global.binary_search_by_key(&x, |e| e.0) {
                    let j = u32::try_from(n)
                        .ok()
                        .and_then(|n| y.checked_sub(n))
                        .ok_or_else(|| internal("a random pair of two persons"))?;
                    mine.push((by_global[k].1, j));
                }
            }
            let extra: Vec<u32> = mine.iter().map(|&(_, j)| j).collect();
            let pp = job.pairs(part, &global, &extra)?;
            for (k, (p, b)) in pp.rule_pairs.iter().zip(&pp.skipped).enumerate() {
                rule_pairs[k] += p;
                skipped_blocks[k] += b;
            }
            let pats = model::patterns(&pp.wave, &pp.local);
            for p in &pats {
                *groups.entry(*p).or_default() += 1;
            }
            let bytes: Vec<u8> = crate::in_pool(|| {
                pp.local
                    .par_iter()
                    .zip(pp.job.par_iter())
                    .zip(pats.par_iter())
                    .flat_map_iter(|((&(a, _), &(g, j)), p)| {
                        let (first, last) = tf.of_record(&pp.wave, a as usize);
                        Spilled { g, j, pattern: *p, a_has_id: pp.wave.citizen_id[a as usize].is_some(), first, last }
                            .bytes()
                    })
                    .collect()
            });
            std::io::Write::write_all(&mut spill, &bytes).map_err(io)?;
            spilled += pats.len() as u64;
            let mut upairs = Vec::with_capacity(mine.len());
            for (l, j) in mine {
                upairs.push((l, pp.registry_at(j).ok_or_else(|| internal("a random pair's registry record"))?));
            }
            for p in model::patterns(&pp.wave, &upairs) {
                *random.entry(p).or_default() += 1;
            }
        }
        if seen.iter().any(|s| !s) {
            return Err(internal("a person in no part"));
        }
        drop((seen, counted));
        let groups = model::group_counts(groups);
        let random = model::group_counts(random);
        timing.compare += t2.elapsed().as_secs_f64();
        lap.lap(&format!("bounded link: {spilled} pairs compared"));
        let t3 = Instant::now();
        let mut warnings = Vec::new();
        let m = o
            .given_model(&blocking, &groups)
            .unwrap_or_else(|| model::train_grouped(&random, &groups, &blocking, &o.train));
        warnings.extend(model::plausibility(&m, &groups));
        timing.train = t3.elapsed().as_secs_f64();
        lap.lap("bounded link: trained");

        // The registry's records and keys (1.7 GB nationally) go before the kept pairs grow.
        drop(job);
        crate::memory::release();
        // Scored from the spill; deterministic pairs and those at or above the threshold kept:
        // counted first, so that they are held in vectors of their exact length (grown by
        // doubling, three times their bytes while one moves), checked against the limit
        // before they are held.
        let t4 = Instant::now();
        let mut file = spill.into_inner().map_err(|e| io(e.into_error()))?;
        let score = |b: &[u8]| {
            let x = Spilled::of(b);
            let w = if m.tf { m.weight_of(&x.pattern, x.first, x.last) } else { m.weight_of(&x.pattern, None, None) };
            let s = Scored::of(x.g, 0, &x.pattern, w, x.a_has_id);
            (s.deterministic || s.probability >= floor).then_some((
                u64::from(x.g) << 32 | u64::from(x.j),
                w,
                u8::from(s.deterministic) | u8::from(s.contradicted) << 1,
            ))
        };
        // Each batch of the spill, read in order from its start.
        let mut batches = |each: &mut dyn FnMut(&[u8])| -> Result<()> {
            std::io::Seek::rewind(&mut file).map_err(io)?;
            let mut reader = std::io::BufReader::with_capacity(1 << 20, &mut file);
            let (mut left, mut buf) = (spilled, Vec::new());
            while left > 0 {
                let batch = left.min(1 << 20);
                let bytes = usize::try_from(batch).map_err(|_| internal("a batch beyond memory"))?;
                buf.resize(bytes * Spilled::BYTES, 0);
                std::io::Read::read_exact(&mut reader, &mut buf).map_err(io)?;
                left -= batch;
                each(&buf);
            }
            Ok(())
        };
        let mut count = 0usize;
        batches(&mut |buf| {
            count += crate::in_pool(|| buf.par_chunks_exact(Spilled::BYTES).filter(|b| score(b).is_some()).count());
        })?;
        // What the kept pairs may take beside the clustering's arrays: checked for the pairs
        // held, and again for the order they come in.
        let clustering = (total as u64).saturating_mul(BYTES_CLUSTERING_PER_RECORD);
        let too_many = |kept: usize, per_pair: u64| {
            let need = (kept as u64).saturating_mul(per_pair).saturating_add(clustering);
            kept_limit.filter(|&l| need > l).map(|l| {
                Error::Config(format!(
                    "a bounded linkage keeps {kept} pairs at or above {floor}: about {} with their clustering, \
                     more than the {} its memory budget leaves it; give more memory",
                    crate::limits::format_bytes(need),
                    crate::limits::format_bytes(l),
                ))
            })
        };
        if let Some(e) = too_many(count, 17) {
            return Err(e);
        }
        let mut kept = Kept {
            pairs: Vec::with_capacity(count),
            weights: Vec::with_capacity(count),
            flags: Vec::with_capacity(count),
        };
        batches(&mut |buf| {
            let scored: Vec<(u64, f64, u8)> =
                crate::in_pool(|| buf.par_chunks_exact(Spilled::BYTES).filter_map(score).collect());
            for (p, w, f) in scored {
                kept.pairs.push(p);
                kept.weights.push(w);
                kept.flags.push(f);
            }
        })?;
        if kept.pairs.len() != count {
            return Err(internal("the spilled pairs scored twice differ"));
        }
        drop(file);
        timing.score = t4.elapsed().as_secs_f64();
        lap.lap(&format!("bounded link: {} pairs kept", kept.pairs.len()));

        crate::memory::release();
        let t5 = Instant::now();
        // In the job's pair order (parts in the whole order already give it), each pair checked:
        // the spill is this job's own file, read back, its indices checked all the same.
        let sorted = kept.pairs.is_sorted();
        if let Some(e) = too_many(kept.pairs.len(), if sorted { 29 } else { BYTES_PER_KEPT_PAIR }) {
            return Err(e);
        }
        if !sorted {
            let mut order: Vec<u32> = (0u32..).take(kept.pairs.len()).collect();
            order.par_sort_unstable_by_key(|&k| kept.pairs[k as usize]);
            let at = |k: &u32| *k as usize;
            kept = Kept {
                pairs: order.iter().map(|k| kept.pairs[at(k)]).collect(),
                weights: order.iter().map(|k| kept.weights[at(k)]).collect(),
                flags: order.iter().map(|k| kept.flags[at(k)]).collect(),
            };
        }
        if kept.pairs.iter().any(|&p| {
            let (a, j) = model::unpack(p);
            a as usize >= n || j as usize >= r
        }) {
            return Err(internal("a spilled pair beyond the records"));
        }
        let probability: Vec<f64> = kept.weights.par_iter().map(|&w| Model::probability(w)).collect();
        let persons = u32::try_from(n).map_err(|_| internal("more persons than a u32 numbers"))?;
        let kept = KeptMatches { kept, probability, persons, threshold: o.threshold };
        let mut source = vec![0u16; total];
        source[n..].fill(1);
        let n_ids = ids.len();
        let entity = model::cluster_edges(move |i| ids[i], n_ids, &source, 2, kept.len(), |k| kept.edge(k), Task::Link);
        drop(source);
        timing.cluster = t5.elapsed().as_secs_f64();
        lap.lap("bounded link: clustered");
        let candidates = usize::try_from(spilled).map_err(|_| internal("more pairs than memory numbers"))?;
        Ok(Pass { kept, entity, model: m, tf, candidates, skipped_blocks, rule_pairs, timing, warnings })
    }
}

/// What the second pass of a bounded linkage gives: the kept pairs and each record's entity,
/// the model and name frequencies, and what the job's report counts of its blocking.
struct Pass {
    kept: KeptMatches,
    entity: Vec<u32>,
    model: Model,
    tf: TermFrequencies,
    /// Candidate pairs (distinct), as [`Linked::candidates`].
    candidates: usize,
    skipped_blocks: Vec<usize>,
    rule_pairs: Vec<usize>,
    timing: Timing,
    warnings: Vec<String>,
}

/// The kept pairs of a bounded linkage in the job's pair order, compactly (25 bytes a pair; the
/// whole job's [`Scored`] take 32, and clustering them 8 more).
struct KeptMatches {
    kept: Kept,
    probability: Vec<f64>,
    persons: u32,
    threshold: f64,
}

impl KeptMatches {
    fn len(&self) -> usize {
        self.kept.pairs.len()
    }

    /// Pair `k` as the whole job scores it: the person, then the registry record numbered
    /// after every person (checked to fit when kept).
    fn scored(&self, k: usize) -> Scored {
        let (a, j) = model::unpack(self.kept.pairs[k]);
        let f = self.kept.flags[k];
        Scored {
            a,
            // Every kept pair's j is below the registry's records, and persons + records fit a
            // u32 (`MAX_RECORDS`, checked before the pairs were made and again when read back).
            b: self.persons + j,
            weight: self.kept.weights[k],
            probability: self.probability[k],
            deterministic: f & 1 == 1,
            contradicted: f & 2 == 2,
        }
    }

    fn edge(&self, k: usize) -> model::Edge {
        let s = self.scored(k);
        model::Edge {
            a: s.a,
            b: s.b,
            deterministic: s.deterministic,
            probability: s.probability,
            accepted: s.accepted(self.threshold),
        }
    }
}

/// Adds counts of names into `to`.
fn add_counts(to: &mut HashMap<String, u64>, from: HashMap<String, u64>) {
    for (k, v) in from {
        *to.entry(k).or_default() += v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every person's run of registry positions is the run of its key, found by galloping
        /// as by searching the whole registry.
        #[test]
        fn each_run_finds_every_keys_run(mut reg in proptest::collection::vec(0u64..60, 0..300),
                                         mut part in proptest::collection::vec(0u64..70, 0..200)) {
            reg.sort_unstable();
            part.sort_unstable();
            let nw = Nationwide { members: (0u32..).take(reg.len()).collect(), persons: vec![0; reg.len()], keys: reg.clone() };
            let keyed: Vec<(u64, u32)> = part.iter().zip(0u32..).map(|(&k, r)| (k, r)).collect();
            let mut got = Vec::new();
            nw.each_run(&keyed, |run, rec| got.push((run, rec)));
            let want: Vec<_> = keyed
                .iter()
                .map(|&(k, rec)| (reg.partition_point(|&x| x < k)..reg.partition_point(|&x| x <= k), rec))
                .filter(|(run, _)| !run.is_empty())
                .collect();
            prop_assert_eq!(got, want);
            for from in 0..=reg.len() + 2 {
                let k = part.first().copied().unwrap_or(30);
                let lo = from.min(reg.len());
                prop_assert_eq!(gallop(&reg, from, |x| x < k), lo + reg[lo..].partition_point(|&x| x < k));
            }
        }
    }
}
