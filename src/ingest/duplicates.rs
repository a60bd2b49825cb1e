//! Repeated keys across an extract: the first occurrence of a household ID or a citizen ID is
//! kept, later ones are rejected. Sets of tens of millions of 64-bit keys, so the hasher is a
//! plain integer mix (no need for SipHash's defence against crafted keys: a key is at most a
//! 64-bit number from the file, and a flooded bucket costs time, never memory or correctness).

use rayon::prelude::*;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// A fast hasher for integer keys (MurmurHash3's 64-bit finaliser): the ID sets hold tens of
/// millions of keys, and SipHash's DoS resistance buys nothing for trusted local files.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(crate) type IdHash = BuildHasherDefault<IdHasher>;

/// Keys seen so far, in row order across batches: one set per shard of the keys, so that a
/// batch's keys are checked on every core at once (each thread reads all the keys and inserts
/// those of its shard; a key always falls in the same shard, so the first occurrence in row
/// order is still the one kept, whatever the number of shards).
pub(super) struct Seen {
    shards: Vec<HashSet<u64, IdHash>>,
}

/// The shard of `key` among `n` (a power of two): a multiplicative hash's middle bits, unrelated
/// to the bits the set's own hasher uses to place and tag a key (those stay spread in a shard).
fn shard_of(key: u64, n: usize) -> usize {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 29) as usize & (n - 1)
}

impl Default for Seen {
    fn default() -> Self {
        let n = rayon::current_num_threads().clamp(1, 64).next_power_of_two();
        Seen { shards: (0..n).map(|_| HashSet::default()).collect() }
    }
}

impl Seen {
    /// Makes room for `incoming` more keys in one step when they would not fit (see
    /// `ingest::room_for`): a set of 36.6 M citizen IDs is rehashed once, not at every doubling.
    /// The room is the whole set's, bounded as one set's would be, then shared: each shard
    /// whose share of `incoming` does not fit makes room for its share of the keys to come and
    /// a sixteenth more (keys spread evenly; a shard that gets more grows as any set does).
    pub(super) fn make_room(&mut self, incoming: usize, claimed: Option<usize>) {
        let n = self.shards.len();
        let share = |x: usize| x / n + x / n / 16 + 64;
        let len = self.shards.iter().map(|s| s.len()).sum();
        let to_come = super::room_for(len, len, incoming, claimed);
        for set in &mut self.shards {
            if set.capacity() - set.len() < share(incoming) {
                set.reserve(share(to_come).max(share(incoming)));
            }
        }
    }

    /// Positions (within `keys`) of the keys seen before: on an earlier row of this batch or in an
    /// earlier batch. Rows without a key are never repeats.
    pub(super) fn repeats(&mut self, keys: impl Iterator<Item = Option<u64>>) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, k) in keys.enumerate() {
            if let Some(k) = k {
                let s = shard_of(k, self.shards.len());
                if !self.shards[s].insert(k) {
                    out.push(i);
                }
            }
        }
        out
    }

    /// [`Seen::repeats`] of each part's keys in turn (`keys(part)`), the shards on every core:
    /// for each part, the positions of its keys seen before (in an earlier part or batch too).
    pub(super) fn repeats_in_parts<'a, P, I>(
        &mut self,
        parts: &'a [P],
        keys: impl Fn(&'a P) -> I + Sync,
    ) -> Vec<Vec<usize>>
    where
        P: Sync,
        I: Iterator<Item = Option<u64>>,
    {
        let n = self.shards.len();
        let found: Vec<Vec<(usize, usize)>> = self
            .shards
            .par_iter_mut()
            .enumerate()
            .map(|(s, set)| {
                let mut found = Vec::new();
                for (p, part) in parts.iter().enumerate() {
                    for (i, k) in keys(part).enumerate() {
                        if let Some(k) = k
                            && shard_of(k, n) == s
                            && !set.insert(k)
                        {
                            found.push((p, i));
                        }
                    }
                }
                found
            })
            .collect();
        let mut out = vec![Vec::new(); parts.len()];
        for (p, i) in found.into_iter().flatten() {
            out[p].push(i);
        }
        for positions in &mut out {
            positions.sort_unstable();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_shards(n: usize) -> Seen {
        Seen { shards: (0..n).map(|_| HashSet::default()).collect() }
    }

    #[test]
    fn sharded_repeats_are_the_ones_found_in_row_order() {
        // Keys from a small range (many repeats within and across parts), some rows without one.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let batch = |next: &mut dyn FnMut() -> u64| -> Vec<Vec<Option<u64>>> {
            (0..5).map(|_| (0..300).map(|_| Some(next() % 500).filter(|k| k % 7 != 0)).collect()).collect()
        };
        let batches = [batch(&mut next), batch(&mut next)];
        let mut one = with_shards(1);
        let want: Vec<Vec<Vec<usize>>> =
            batches.iter().map(|b| b.iter().map(|p| one.repeats(p.iter().copied())).collect()).collect();
        assert!(want[0][0].len() > 10 && !want[1][4].is_empty(), "repeats within and across batches");
        for n in [1, 2, 8, 64] {
            let mut seen = with_shards(n);
            seen.make_room(1500, Some(3000));
            let got: Vec<Vec<Vec<usize>>> =
                batches.iter().map(|b| seen.repeats_in_parts(b, |p| p.iter().copied())).collect();
            assert_eq!(got, want, "{n} shards");
        }
    }

    #[test]
    fn shards_share_one_sets_room() {
        // An honest claim: every shard has room for its share of the keys in one step.
        let mut seen = with_shards(4);
        seen.make_room(1000, Some(100_000));
        assert!(seen.shards.iter().all(|s| s.capacity() >= 100_000 / 4));
        // A claim of 2^40 keys over a few: the whole set's room, not a bound's worth per shard.
        let mut seen = with_shards(64);
        seen.make_room(8192, Some(1 << 40));
        let total: usize = seen.shards.iter().map(|s| s.capacity()).sum();
        assert!(total <= 2 * (super::super::TRUSTED_TABLE_ROWS + 64 * 64) * 17 / 16, "{total}");
    }
}
