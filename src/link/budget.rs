//! What a link job may hold: [`super::LinkOptions::max_memory`], checked phase by phase.
//!
//! A job's large structures have sizes that follow from counts: the records (their capacities,
//! [`super::Records::heap_bytes`]), [`KEY_BYTES`] a blocking key, 8 bytes a candidate pair, 6 a
//! pair's comparison pattern, [`SCORED_BYTES`] a scored pair, a few bytes a record while the
//! clustering runs and the entities' ids are made. At each phase the job adds up what it holds
//! and what the phase is about to make, and stops with an error naming the phase when the sum
//! passes the budget: before the memory is taken where its size is known first (a blocking
//! rule's pairs are counted before they are made, a scoring piece's pairs are known), right after
//! where it is not (a rule's keys, the name counts). Nothing is written by then, so a caller that
//! writes after the job (`tpmap link`) leaves no output behind.
//!
//! The sums leave out the program itself, the allocator's slack and the small structures (the
//! random pairs u is trained on, the pattern counts): [`PROGRAM_BYTES`] stands for them. The
//! sums are an estimate of what the job holds, not a cap on the process's resident memory: on
//! the SYNTHETIC national benchmark the largest sum and the process's peak agreed within 0.1 GiB
//! (docs/linkage.md, "Within a budget").

use crate::limits::format_bytes;
use crate::{Error, Result};

/// Bytes a record's key under one blocking rule takes while the rule is blocked: the key's hash
/// and the record's number.
pub const KEY_BYTES: u64 = std::mem::size_of::<(u64, u32)>() as u64;

/// Bytes a candidate pair takes.
pub const PAIR_BYTES: u64 = std::mem::size_of::<(u32, u32)>() as u64;

/// Bytes a candidate pair's comparison pattern takes.
pub const PATTERN_BYTES: u64 = std::mem::size_of::<super::model::Pattern>() as u64;

/// Bytes a scored pair takes.
pub const SCORED_BYTES: u64 = std::mem::size_of::<super::Scored>() as u64;

/// What the sums leave out: the program, its threads, the allocator's slack, the small
/// structures of training.
pub const PROGRAM_BYTES: u64 = 96 << 20;

/// A link job's budget, and what its caller holds beside the job's own structures.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    limit: Option<u64>,
    records: usize,
    beside: u64,
}

impl Budget {
    /// The budget of a job over `records` records: `limit` bytes, or none.
    pub fn new(limit: Option<u64>, records: usize) -> Budget {
        Budget { limit, records, beside: 0 }
    }

    /// The budget of a job with options `o` over `records` records: `o.max_memory`, with
    /// `o.held_beside` counted in every sum.
    pub fn of(o: &super::LinkOptions, records: usize) -> Budget {
        Budget { limit: o.max_memory, records, beside: o.held_beside }
    }

    /// Whether there is a budget at all (the sums need not be made without one).
    pub fn is_set(&self) -> bool {
        self.limit.is_some()
    }

    /// Refuses when holding `bytes` (with [`PROGRAM_BYTES`] and what is held beside the job)
    /// passes the budget; `phase` names what the job was about to do (called only then, or to
    /// trace the sum beside the process's resident memory when `TPMAP_TRACE` is set).
    ///
    /// ```
    /// use tpmap::link::budget::Budget;
    /// let b = Budget::new(Some(1 << 30), 1000);
    /// assert!(b.check(|| "blocking".into(), 512 << 20).is_ok());
    /// let e = b.check(|| "blocking by rule 1 of 5".into(), 2 << 30).unwrap_err().to_string();
    /// assert!(e.contains("--max-memory 1.0 GiB") && e.contains("blocking by rule 1 of 5"), "{e}");
    /// assert!(Budget::new(None, 1000).check(|| unreachable!(), u64::MAX).is_ok());
    /// ```
    pub fn check(&self, phase: impl FnOnce() -> String, bytes: u64) -> Result<()> {
        let Some(limit) = self.limit else { return Ok(()) };
        let need = sum([bytes, PROGRAM_BYTES, self.beside]);
        if need <= limit {
            if crate::diagnostics::enabled() {
                eprintln!("trace: budget: about {} {}, {}", format_bytes(need), phase(), crate::diagnostics::memory());
            }
            return Ok(());
        }
        Err(Error::Config(format!(
            "--max-memory {} is below what linking {} records takes: about {} {}{}; give more, or link fewer \
             records at a time (nothing was written)",
            format_bytes(limit),
            self.records,
            format_bytes(need),
            phase(),
            if self.beside > 0 {
                format!(" (with {} held beside the job)", format_bytes(self.beside))
            } else {
                String::new()
            }
        )))
    }

    /// [`Budget::check`] before the clustering of `scored`'s pairs accepted at `threshold` over
    /// `records` records of `sources` sources ([`clustering_bytes`]), beside what `held` adds up
    /// (called only within a budget).
    pub fn check_clustering(
        &self,
        (scored, threshold): (&[super::Scored], f64),
        (records, sources): (usize, usize),
        held: impl FnOnce() -> u64,
    ) -> Result<()> {
        if !self.is_set() {
            return Ok(());
        }
        let accepted = scored.iter().filter(|s| s.accepted(threshold)).count();
        let made = clustering_bytes(records, sources, accepted);
        self.check(|| format!("clustering the {accepted} pairs accepted"), held().saturating_add(made))
    }

    /// [`Budget::check`] before the entities' stable ids of `records` records are made
    /// ([`entity_ids_bytes`]), beside what `held` adds up (called only within a budget).
    pub fn check_entity_ids(&self, records: usize, held: impl FnOnce() -> u64) -> Result<()> {
        if !self.is_set() {
            return Ok(());
        }
        self.check(|| "making the entities' ids".into(), held().saturating_add(entity_ids_bytes(records)))
    }
}

/// `count` items of `bytes` each, saturating.
pub fn times(count: usize, bytes: u64) -> u64 {
    (count as u64).saturating_mul(bytes)
}

/// The sum of byte counts, saturating.
pub fn sum<const N: usize>(parts: [u64; N]) -> u64 {
    parts.into_iter().fold(0, u64::saturating_add)
}

/// Bytes the clustering of `records` records of `sources` sources with `accepted` pairs
/// accepted at the threshold makes ([`super::model::cluster`]): each record's parent (4 bytes,
/// the entities numbered in its room), the sources of its group in a link task (a byte, or 8
/// past 8 sources), and the accepted pairs' numbers (4 bytes, in a vector grown by doubling, then
/// sorted with a buffer of as many: 12 at most).
pub fn clustering_bytes(records: usize, sources: usize, accepted: usize) -> u64 {
    let group_sources = if sources > 8 { 8 } else { 1 };
    sum([times(records, 4 + group_sources), times(accepted, 12)])
}

/// Bytes the entities' stable ids of `records` records take while they are made
/// ([`super::model::entity_ids`]): one 8-byte slot an entity (at most one a record), then one a
/// record.
pub fn entity_ids_bytes(records: usize) -> u64 {
    times(records, 16)
}

/// Bytes a truth file takes per record of the job while it is read
/// ([`super::bench::read_truth`]: the records' sorted keys and each one's label, 8 each) and,
/// once read, its labels (8).
pub const TRUTH_BYTES_PER_RECORD: u64 = 16;

/// Bytes an evaluation against a truth makes per record beside the truth's labels
/// ([`super::model::evaluate`]: records in truth order, each truth group's size, each entity's
/// size; 4 each).
pub const EVALUATION_BYTES_PER_RECORD: u64 = 12;
