//! Repeated keys across an extract: the first occurrence of a household ID or a citizen ID is
//! kept, later ones are rejected. Sets of tens of millions of 64-bit keys, so the hasher is a
//! plain integer mix (no need for SipHash's defence against crafted keys: a key is at most a
//! 64-bit number from the file, and a flooded bucket costs time, never memory or correctness).

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

/// Keys seen so far, in row order across batches.
#[derive(Default)]
pub(super) struct Seen(HashSet<u64, IdHash>);

impl Seen {
    /// Makes room for `incoming` more keys in one step when they would not fit (see
    /// `ingest::room_for`): a set of 36.6 M citizen IDs is rehashed once, not at every doubling.
    pub(super) fn make_room(&mut self, incoming: usize, claimed: Option<usize>) {
        let room = super::room_for(self.0.len(), self.0.capacity(), incoming, claimed);
        if room > 0 {
            self.0.reserve(room);
        }
    }

    /// Positions (within `keys`) of the keys seen before: on an earlier row of this batch or in an
    /// earlier batch. Rows without a key are never repeats.
    pub(super) fn repeats(&mut self, keys: impl Iterator<Item = Option<u64>>) -> Vec<usize> {
        keys.enumerate().filter_map(|(i, k)| k.filter(|&k| !self.0.insert(k)).map(|_| i)).collect()
    }
}
