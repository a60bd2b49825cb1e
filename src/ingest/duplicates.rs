//! Repeated keys across an extract: the first occurrence of a household ID or a citizen ID is
//! kept, later ones are rejected. Sets of tens of millions of 64-bit keys, so the hasher is a
//! plain integer mix (no need for SipHash's defence against crafted keys: a key is at most a
//! 64-bit number from the file, and a flooded bucket costs time, never memory or correctness).

use rayon::prelude::*;
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
    shards: Vec<IdSet>,
    /// With the rows of the holders (a partitioned read out of file order), instead of `shards`.
    holders: Option<Holders>,
}

/// The slot of hash `h` in a table of `mask + 1` slots (a power of two): the hash's low bits,
/// masked as 64 bits before they become an index, so the index is never a truncated hash.
fn slot_of(h: u64, mask: usize) -> usize {
    // At most `mask`, which is a usize: the fallback is never taken.
    usize::try_from(h & mask as u64).unwrap_or(0)
}

/// The murmur finaliser of [`IdHasher`], for [`IdSet`]'s slots.
fn mix(key: u64) -> u64 {
    let mut h = IdHasher(key);
    h.write_u64(key);
    h.finish()
}

/// A map from 64-bit keys to small values (a set with `V = ()`) in one array of slots (open
/// addressing, linear probing, 0 marks an empty slot and the key 0 is held on its own), filled
/// at most to 7/10.
///
/// Written by hand because a table of tens of millions of keys misses the cache on every insert
/// (about 90 ns each: most of the duplicate check of the national persons), and no hash-table
/// crate offers inserts that fetch the slots of the next keys while this one is placed:
/// [`IdTable::insert_all`] does, so a dozen misses are in flight at once instead of one.
pub(crate) struct IdTable<V> {
    slots: Vec<u64>,
    values: Vec<V>,
    len: usize,
    zero: Option<V>,
}

/// A set of 64-bit keys (see [`IdTable`]).
pub(crate) type IdSet = IdTable<()>;

impl<V> Default for IdTable<V> {
    fn default() -> Self {
        IdTable { slots: Vec::new(), values: Vec::new(), len: 0, zero: None }
    }
}

/// Keys whose slots are fetched ahead of their insert.
const AHEAD: usize = 16;

impl<V: Copy + Default> IdTable<V> {
    /// Keys held.
    pub(crate) fn len(&self) -> usize {
        self.len + usize::from(self.zero.is_some())
    }

    /// Keys the table holds before it grows.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len() / 10 * 7
    }

    /// Makes room for `additional` more keys (one rehash at most).
    #[allow(clippy::slow_vector_initialization)] // the zeros are written on purpose (below)
    pub(crate) fn reserve(&mut self, additional: usize) {
        let want = self.len.saturating_add(additional);
        if want <= self.capacity() {
            return;
        }
        let slots = slots_for(want);
        // Zeros written, not `vec![0; n]`: calloc's pages are the kernel's shared zero page
        // until written, so each slot page cost a read fault, then a copy-on-write fault with a
        // TLB flush on every core (3 s of system time in a national run).
        let mut fresh = Vec::with_capacity(slots);
        fresh.resize(slots, 0u64);
        let mut values = Vec::with_capacity(if std::mem::size_of::<V>() == 0 { 0 } else { slots });
        values.resize(slots, V::default());
        let old = std::mem::replace(&mut self.slots, fresh);
        let old_values = std::mem::replace(&mut self.values, values);
        self.len = 0;
        for (key, value) in old.into_iter().zip(old_values).filter(|&(k, _)| k != 0) {
            self.place(key, mix(key), value);
        }
    }

    /// Inserts a key known not to be 0 whose hash is `h`, with room made: `None` when it is
    /// new, else the value held (which stays).
    fn place(&mut self, key: u64, h: u64, value: V) -> Option<V> {
        let mask = self.slots.len() - 1;
        let mut i = slot_of(h, mask);
        loop {
            match self.slots[i] {
                0 => {
                    self.slots[i] = key;
                    self.values[i] = value;
                    self.len += 1;
                    return None;
                }
                k if k == key => return Some(self.values[i]),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// The value held for `key`.
    pub(crate) fn get(&self, key: u64) -> Option<V> {
        if key == 0 {
            return self.zero;
        }
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = slot_of(mix(key), mask);
        loop {
            match self.slots[i] {
                0 => return None,
                k if k == key => return Some(self.values[i]),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Sets `key`'s value to `value` when it is held with a larger one (a key not held stays
    /// out).
    fn lower(&mut self, key: u64, value: V)
    where
        V: Ord,
    {
        if key == 0 {
            self.zero = self.zero.map(|v| v.min(value));
            return;
        }
        if self.slots.is_empty() {
            return;
        }
        let mask = self.slots.len() - 1;
        let mut i = slot_of(mix(key), mask);
        loop {
            match self.slots[i] {
                0 => return,
                k if k == key => {
                    self.values[i] = self.values[i].min(value);
                    return;
                }
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Asks the processor to bring the slot of hash `h` into its cache.
    fn prefetch(&self, h: u64) {
        let i = slot_of(h, self.slots.len() - 1);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint: it never faults or changes memory, whatever the address
        // (and this one is inside the slots).
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(self.slots.as_ptr().wrapping_add(i).cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }

    /// Inserts `key` with `value` unless it is held: `None` when it was new, else the value held
    /// (which stays).
    pub(crate) fn insert(&mut self, key: u64, value: V) -> Option<V> {
        if key == 0 {
            let held = self.zero;
            self.zero = held.or(Some(value));
            return held;
        }
        self.reserve(1);
        self.place(key, mix(key), value)
    }

    /// [`IdTable::insert`] of each `(key, value, tag)` in order, calling `placed(tag, held)`
    /// with the value held before (`None` for a new key), with the slots of the next [`AHEAD`]
    /// keys fetched ahead. A key's occurrences are placed in order, so its first value is the
    /// one kept; the calls come in no particular order.
    pub(crate) fn insert_all<T: Copy>(
        &mut self,
        keys: impl Iterator<Item = (u64, V, T)>,
        mut placed: impl FnMut(T, Option<V>),
    ) {
        let mut ring: [Option<(u64, u64, V, T)>; AHEAD] = [None; AHEAD];
        let mut n = 0usize;
        for (key, value, tag) in keys {
            if key == 0 {
                placed(tag, self.insert(0, value));
                continue;
            }
            // Room for the keys in the ring too, so that the fetched slots stay where they are.
            if self.len + AHEAD >= self.capacity() {
                self.drain(&mut ring, &mut n, &mut placed);
                self.reserve(self.len.max(1024));
            }
            let h = mix(key);
            self.prefetch(h);
            let slot = n % AHEAD;
            if let Some((k, kh, v, t)) = ring[slot] {
                placed(t, self.place(k, kh, v));
            }
            ring[slot] = Some((key, h, value, tag));
            n += 1;
        }
        self.drain(&mut ring, &mut n, &mut placed);
    }

    /// Places the keys left in the ring, oldest first.
    fn drain<T: Copy>(
        &mut self,
        ring: &mut [Option<(u64, u64, V, T)>; AHEAD],
        n: &mut usize,
        placed: &mut impl FnMut(T, Option<V>),
    ) {
        for j in *n..*n + AHEAD {
            if let Some((k, kh, v, t)) = ring[j % AHEAD].take() {
                placed(t, self.place(k, kh, v));
            }
        }
        *n = 0;
    }
}

/// An [`IdTable`] split into shards by key, filled on every core: each shard places its own keys
/// in row order, so a key keeps its first value as in one table. Routing's table of the national
/// households' provinces: one table filled on one core left the other idle for most of the
/// households' routing (docs/bench/national-reading.txt, ninth session).
pub(crate) struct ShardedTable<V> {
    shards: Vec<IdTable<V>>,
}

impl<V: Copy + Default + Send + Sync> ShardedTable<V> {
    /// A table of one shard per thread of the pool (a power of two, at most 64).
    pub(crate) fn new() -> Self {
        ShardedTable { shards: (0..shard_count()).map(|_| IdTable::default()).collect() }
    }

    /// Makes room for `additional` more keys, shared evenly (a sixteenth more each): a shard
    /// that gets more grows as any table does.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let n = self.shards.len();
        let share = additional / n + additional / n / 16 + 64;
        self.shards.par_iter_mut().for_each(|t| t.reserve(share));
    }

    /// [`IdTable::insert_all`] of `keys` (`(key, value, tag)` in row order), the shards on every
    /// core: the `(tag, value held)` of every key held before, in no particular order.
    pub(crate) fn insert_all<T: Copy + Send + Sync>(&mut self, keys: &[(u64, V, T)]) -> Vec<(T, V)> {
        insert_sharded(&mut self.shards, || keys.iter().copied())
    }

    /// [`IdTable::get`] of each of `keys`, in order, into `out` (cleared first), with the slots
    /// of the next [`AHEAD`] keys fetched ahead. A lookup in a table of millions of keys misses
    /// the cache; one at a time, those misses were most of routing the national persons to
    /// their provinces (docs/bench/national-reading.txt, ninth session).
    pub(crate) fn get_all(&self, keys: &[u64], out: &mut Vec<Option<V>>) {
        let n = self.shards.len();
        out.clear();
        out.reserve(keys.len());
        for (i, &key) in keys.iter().enumerate() {
            if let Some(&next) = keys.get(i + AHEAD)
                && next != 0
            {
                let t = &self.shards[shard_of(next, n)];
                if !t.slots.is_empty() {
                    t.prefetch(mix(next));
                }
            }
            out.push(self.shards[shard_of(key, n)].get(key));
        }
    }
}

/// Shards of a sharded table or set: one per thread of the pool (a power of two, at most 64).
fn shard_count() -> usize {
    rayon::current_num_threads().clamp(1, 64).next_power_of_two()
}

/// Each of `shards` places its own keys of `keys()` (every key, in row order; a key's shard by
/// [`shard_of`]) with [`IdTable::insert_all`], all shards at once on the pool: the `(tag, value
/// held)` of every key held before, in no particular order. A key always falls in the same
/// shard, so its first occurrence in row order is the one kept, whatever the number of shards.
fn insert_sharded<V, T, I>(shards: &mut [IdTable<V>], keys: impl Fn() -> I + Sync) -> Vec<(T, V)>
where
    V: Copy + Default + Send,
    T: Copy + Send,
    I: Iterator<Item = (u64, V, T)>,
{
    let n = shards.len();
    let held: Vec<Vec<(T, V)>> = shards
        .par_iter_mut()
        .enumerate()
        .map(|(s, table)| {
            let mut held = Vec::new();
            table.insert_all(keys().filter(|&(k, _, _)| shard_of(k, n) == s), |tag, was| {
                if let Some(v) = was {
                    held.push((tag, v));
                }
            });
            held
        })
        .collect();
    held.into_iter().flatten().collect()
}

/// Slots of an [`IdTable`] made room for `want` keys: a power of two, filled at most to 7/10.
fn slots_for(want: usize) -> usize {
    (want.saturating_mul(10) / 7 + 1).next_power_of_two().max(64)
}

/// A shard's share of `keys` keys spread over `n` shards, and a sixteenth more (keys spread
/// evenly; a shard that gets more grows as any set does).
fn share_of(keys: usize, n: usize) -> usize {
    keys / n + keys / n / 16 + 64
}

/// Bytes the citizen IDs' set of a reading takes once its first batch made room for the file's
/// `keys` rows ([`Seen::make_room`] with the rows the file claims, which a reading trusts up to
/// `TRUSTED_TABLE_ROWS`): every shard's slots, 8 bytes each and 8 more when the set keeps each
/// key's holder by row ([`Seen::holding_rows`]). Past the trusted rows the set grows as it
/// fills, holding its old slots beside the new ones while it does: then the partitioned
/// reading's allowance a person row is counted instead
/// ([`super::partition::BYTES_ACROSS_WAVES_PER_PERSON_ROW`], and
/// [`super::partition::BYTES_HOLDER_ROWS_PER_PERSON_ROW`] more holding rows).
pub(crate) fn reserved_bytes(keys: usize, holding_rows: bool) -> u64 {
    use super::partition::{BYTES_ACROSS_WAVES_PER_PERSON_ROW, BYTES_HOLDER_ROWS_PER_PERSON_ROW};
    if keys > super::TRUSTED_TABLE_ROWS {
        let per_key =
            BYTES_ACROSS_WAVES_PER_PERSON_ROW + if holding_rows { BYTES_HOLDER_ROWS_PER_PERSON_ROW } else { 0 };
        return (keys as u64).saturating_mul(per_key);
    }
    let slot = if holding_rows { 16u64 } else { 8 };
    let n = shard_count();
    (slots_for(share_of(keys, n)) as u64).saturating_mul(n as u64).saturating_mul(slot)
}

/// [`Seen::make_room`] in `shards`: the room is the whole set's, bounded as one set's would be,
/// then shared (a sixteenth more a shard).
fn make_room_in<V: Copy + Default + Send>(shards: &mut [IdTable<V>], incoming: usize, claimed: Option<usize>) {
    let n = shards.len();
    let share = |x: usize| share_of(x, n);
    let len = shards.iter().map(|s| s.len()).sum();
    let to_come = super::room_for(len, len, incoming, claimed);
    // On every core: a national set's slots are half a gigabyte of zeros to write.
    shards.par_iter_mut().for_each(|set| {
        if set.capacity().saturating_sub(set.len()) < share(incoming) {
            set.reserve(share(to_come).max(share(incoming)));
        }
    });
}

/// The shard of `key` among `n` (a power of two): a multiplicative hash's middle bits, unrelated
/// to the bits the set's own hash uses to place a key (those stay spread in a shard).
fn shard_of(key: u64, n: usize) -> usize {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 29) as usize & (n - 1)
}

impl Default for Seen {
    fn default() -> Self {
        Seen { shards: (0..shard_count()).map(|_| IdSet::default()).collect(), holders: None }
    }
}

/// Each key's first holder, by data row, for a partitioned read of a file whose rows are not in
/// wave order ([`Seen::holding_rows`]): there the first holder met, wave after wave, need not be
/// the first in the file, as a whole read keeps.
pub(super) struct Holders {
    shards: Vec<IdTable<u64>>,
    /// The rows are the first holders of a complete read (see [`Seen::decide`]): a row is a
    /// repeat unless it is its key's.
    decided: bool,
    /// A key was met on a row before its holder's (in a later wave): the keys kept so far are
    /// not all the first in the file.
    crossed: bool,
}

impl Seen {
    /// Makes room for `incoming` more keys in one step when they would not fit (see
    /// `ingest::room_for`): a set of 36.6 M citizen IDs is rehashed once, not at every doubling.
    /// The room is the whole set's, bounded as one set's would be, then shared: each shard
    /// whose share of `incoming` does not fit makes room for its share of the keys to come and
    /// a sixteenth more (keys spread evenly; a shard that gets more grows as any set does).
    pub(super) fn make_room(&mut self, incoming: usize, claimed: Option<usize>) {
        match &mut self.holders {
            None => make_room_in(&mut self.shards, incoming, claimed),
            // A decided read adds no key.
            Some(h) if h.decided => {}
            Some(h) => make_room_in(&mut h.shards, incoming, claimed),
        }
    }

    /// Keeps each key's holder by data row from now on (an empty set only): for a partitioned
    /// read whose waves do not take the rows in file order. The first holder met is kept, as
    /// before, but a holder met later on an earlier row takes its place and marks the read as
    /// crossed ([`Seen::crossed`]).
    pub(super) fn holding_rows(&mut self) {
        if self.holders.is_none() && self.shards.iter().all(|s| s.len() == 0) {
            self.holders = Some(Holders {
                shards: (0..self.shards.len()).map(|_| IdTable::default()).collect(),
                decided: false,
                crossed: false,
            });
        }
    }

    /// True when a read holding rows met a key on a row before its holder's: a row it kept is
    /// not the first in the file. Read everything again after [`Seen::decide`].
    pub(super) fn crossed(&self) -> bool {
        self.holders.as_ref().is_some_and(|h| h.crossed && !h.decided)
    }

    /// After a complete read holding rows: each key's holder is now the first row in the file
    /// that reached the check (rows rejected for another reason never do), and the next read
    /// keeps exactly those rows. After a complete read holding no rows (one that took the rows
    /// in file order, so the first holder met was the file's): the keys are forgotten, their
    /// memory given back, and the next read, taking the same rows in the same order, keeps the
    /// same holders by meeting them first again.
    pub(super) fn decide(&mut self) {
        match &mut self.holders {
            Some(h) => h.decided = true,
            None => self.shards.iter_mut().for_each(|s| *s = IdSet::default()),
        }
    }

    /// [`Seen::repeats`] of keys claimed before the file's first row (row 0).
    pub(super) fn claim_before_the_file(&mut self, keys: impl Iterator<Item = u64>) {
        match &mut self.holders {
            None => {
                self.repeats(keys.map(Some));
            }
            Some(h) if h.decided => {}
            Some(h) => {
                let n = h.shards.len();
                for k in keys {
                    h.shards[shard_of(k, n)].insert(k, 0);
                }
            }
        }
    }

    /// [`Seen::repeats_in_parts`] with each key's data row (`(key, row)` in row order within a
    /// part, parts in row order): the same positions, and with holders kept by row, a key held
    /// by a later row is taken over (the read is then crossed) and a decided read keeps each
    /// key's holder alone.
    pub(super) fn repeats_in_parts_at<'a, P, I>(
        &mut self,
        parts: &'a [P],
        keys: impl Fn(&'a P) -> I + Sync,
    ) -> Vec<Vec<usize>>
    where
        P: Sync,
        I: Iterator<Item = (Option<u64>, u64)>,
    {
        let Some(h) = &mut self.holders else {
            return self.repeats_in_parts(parts, |p| keys(p).map(|(k, _)| k));
        };
        let mut out = vec![Vec::new(); parts.len()];
        if h.decided {
            let n = h.shards.len();
            for (p, part) in parts.iter().enumerate() {
                for (i, (k, row)) in keys(part).enumerate() {
                    let Some(k) = k else { continue };
                    let shard = &mut h.shards[shard_of(k, n)];
                    // A key the complete read never met (the files changed since): the first
                    // row met holds it, as in a read of its own.
                    let first = shard.get(k).unwrap_or_else(|| {
                        shard.insert(k, row);
                        row
                    });
                    if first != row {
                        out[p].push(i);
                    }
                }
            }
            return out;
        }
        let all = || {
            parts.iter().enumerate().flat_map(|(p, part)| {
                keys(part).enumerate().filter_map(move |(i, (k, row))| k.map(|k| (k, row, (p, i, k, row))))
            })
        };
        let found = insert_sharded(&mut h.shards, all);
        let n = h.shards.len();
        for ((p, i, k, row), held) in found {
            if held > row {
                // An earlier row than the holder kept: it holds the key now, and the reading is
                // done again. Not a repeat in this one (a strict read names no first holder as a
                // repeat; the second reading rejects the later one).
                h.crossed = true;
                h.shards[shard_of(k, n)].lower(k, row);
            } else {
                out[p].push(i);
            }
        }
        for positions in &mut out {
            positions.sort_unstable();
        }
        out
    }

    /// Positions (within `keys`) of the keys seen before: on an earlier row of this batch or in an
    /// earlier batch. Rows without a key are never repeats.
    pub(super) fn repeats(&mut self, keys: impl Iterator<Item = Option<u64>>) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, k) in keys.enumerate() {
            if let Some(k) = k {
                let s = shard_of(k, self.shards.len());
                if self.shards[s].insert(k, ()).is_some() {
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
        let all = || {
            parts
                .iter()
                .enumerate()
                .flat_map(|(p, part)| keys(part).enumerate().filter_map(move |(i, k)| k.map(|k| (k, (), (p, i)))))
        };
        let found = insert_sharded(&mut self.shards, all);
        let mut out = vec![Vec::new(); parts.len()];
        for ((p, i), ()) in found {
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
        Seen { shards: (0..n).map(|_| IdSet::default()).collect(), holders: None }
    }

    #[test]
    fn reserved_bytes_are_the_slots_a_first_batch_reserves() {
        // A reading's first batch makes room for the rows the file claims (every shard at once).
        let slot_bytes = |seen: &Seen| -> u64 {
            let plain: usize = seen.shards.iter().map(|s| s.slots.len()).sum();
            let held: usize = seen.holders.as_ref().map_or(0, |h| h.shards.iter().map(|s| s.slots.len() * 2).sum());
            (plain + held) as u64 * 8
        };
        for keys in [0usize, 1, 63, 1000, 44_800, 44_801, 1 << 20, 3_000_017] {
            for holding in [false, true] {
                let mut seen = Seen::default();
                if holding {
                    seen.holding_rows();
                }
                seen.make_room(keys.min(4096), Some(keys));
                assert_eq!(reserved_bytes(keys, holding), slot_bytes(&seen), "{keys} keys, holding rows: {holding}");
            }
        }
        // Past the rows a reading trusts, the allowance a person row.
        let many = super::super::TRUSTED_TABLE_ROWS + 1;
        assert_eq!(reserved_bytes(many, false), many as u64 * 24);
        assert_eq!(reserved_bytes(many, true), many as u64 * 48);
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

    /// Rows read in waves in any order, each wave's rows in file order and in batches of parts:
    /// with holders kept by row, and a second reading after [`Seen::decide`] when the first was
    /// crossed, the rows rejected as repeats are exactly those of a reading in file order
    /// (the first holder of each key kept), whatever the waves, shards and keys claimed before
    /// the file. Rows of a wave in file order alone never cross, and read without holders they
    /// keep the same rows in each of two readings with [`Seen::decide`] between them.
    #[test]
    fn holders_kept_by_row_keep_the_first_in_the_file_whatever_the_wave_order() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut crossed, mut straight, mut ordered) = (0, 0, 0);
        for round in 0..200 {
            let rows = 1 + (next() % 400) as usize;
            let range = 2 + next() % 300;
            // Row r (1-based) holds key[r - 1] (0 is a key too), or none.
            let keys: Vec<Option<u64>> = (0..rows).map(|_| Some(next() % range).filter(|k| k % 11 != 3)).collect();
            let before: Vec<u64> = (0..next() % 3).map(|_| next() % range).collect();
            // The whole file in order: the first holder of each key kept.
            let mut whole = with_shards(1);
            whole.repeats(before.iter().map(|&k| Some(k)));
            let want: std::collections::BTreeSet<u64> =
                whole.repeats(keys.iter().copied()).into_iter().map(|i| i as u64 + 1).collect();
            // Waves: each row's wave at random (every wave in file order when there is one wave).
            let n_waves = 1 + next() % 4;
            let wave_of: Vec<u64> = (0..rows).map(|_| next() % n_waves).collect();
            let in_order = wave_of.windows(2).all(|w| w[0] <= w[1]);
            let shards = [1usize, 2, 8][round % 3];
            let mut seen = with_shards(shards);
            seen.holding_rows();
            let read = |seen: &mut Seen| -> std::collections::BTreeSet<u64> {
                let mut rejected = std::collections::BTreeSet::new();
                for w in 0..n_waves {
                    seen.claim_before_the_file(before.iter().copied());
                    let mine: Vec<(Option<u64>, u64)> =
                        (0..rows).filter(|&r| wave_of[r] == w).map(|r| (keys[r], r as u64 + 1)).collect();
                    // Batches of up to three parts of up to 7 rows.
                    for batch in mine.chunks(21) {
                        let parts: Vec<Vec<(Option<u64>, u64)>> = batch.chunks(7).map(<[_]>::to_vec).collect();
                        seen.make_room(batch.len(), Some(rows));
                        let repeats = seen.repeats_in_parts_at(&parts, |p| p.iter().copied());
                        for (part, positions) in parts.iter().zip(repeats) {
                            rejected.extend(positions.into_iter().map(|i| part[i].1));
                        }
                    }
                }
                rejected
            };
            if in_order {
                // Without holders: the first reading keeps the file's first holders, and after
                // `decide` the set is empty (its memory given back) and the same reading again
                // keeps the same.
                ordered += 1;
                let mut plain = with_shards(shards);
                assert_eq!(read(&mut plain), want, "round {round}: in order, no holders");
                plain.decide();
                assert!(plain.shards.iter().all(|s| s.len() == 0 && s.capacity() == 0), "round {round}: forgotten");
                assert_eq!(read(&mut plain), want, "round {round}: in order, read again");
            }
            let first = read(&mut seen);
            if seen.crossed() {
                assert!(!in_order, "round {round}: rows in file order crossed");
                crossed += 1;
                seen.decide();
                assert!(!seen.crossed());
                assert_eq!(read(&mut seen), want, "round {round}: second reading");
            } else {
                straight += 1;
                assert_eq!(first, want, "round {round}: one reading");
            }
        }
        assert!(
            crossed > 20 && straight > 20 && ordered > 20,
            "{crossed} crossed, {straight} straight, {ordered} in order"
        );
    }

    /// The prefetching set agrees with a `HashSet` on every insert, through growth from empty,
    /// with the key 0, repeats within one call, and keys one slot apart (long probe runs).
    #[test]
    fn id_set_agrees_with_a_hash_set() {
        let mut x = 0x853c_49e6_748f_ea9bu64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut set = IdSet::default();
        let mut want = std::collections::HashSet::new();
        for round in 0..6 {
            let keys: Vec<u64> = (0..5000)
                .map(|i| match i % 5 {
                    0 => next() % 3000,
                    1 => 0,
                    2 => (i as u64) << 32,
                    _ => next(),
                })
                .collect();
            let mut got = Vec::new();
            if round % 2 == 0 {
                set.insert_all(keys.iter().enumerate().map(|(i, &k)| (k, (), i)), |i, held| {
                    if held.is_some() {
                        got.push(i)
                    }
                });
                got.sort_unstable();
            } else {
                got = keys.iter().enumerate().filter(|&(_, &k)| set.insert(k, ()).is_some()).map(|(i, _)| i).collect();
            }
            let expected: Vec<usize> =
                keys.iter().enumerate().filter(|&(_, &k)| !want.insert(k)).map(|(i, _)| i).collect();
            assert_eq!(got, expected, "round {round}");
            assert_eq!(set.len(), want.len());
            assert!(set.len() <= set.capacity() + 1);
        }
    }

    proptest::proptest! {
        /// The sharded table is one table: the same repeats told (with the value held),
        /// inserted in batches of any size, and the same values found by lookups fetched ahead
        /// as one at a time (keys held, 0 among them, and absent; into an output not empty).
        #[test]
        fn a_sharded_table_is_one_table(
            rows in proptest::collection::vec((0u64..300, proptest::prelude::any::<u8>()), 0..600),
            cut in 1usize..200,
            asked in proptest::collection::vec(0u64..320, 0..200),
        ) {
            let mut one: IdTable<u8> = IdTable::default();
            let mut sharded: ShardedTable<u8> = ShardedTable { shards: (0..4).map(|_| IdTable::default()).collect() };
            sharded.reserve(rows.len() / 2);
            let mut want = Vec::new();
            let mut got = Vec::new();
            for (b, batch) in rows.chunks(cut).enumerate() {
                let keyed: Vec<(u64, u8, usize)> =
                    batch.iter().enumerate().map(|(i, &(k, v))| (k, v, b * cut + i)).collect();
                for &(k, v, at) in &keyed {
                    if let Some(held) = one.insert(k, v) {
                        want.push((at, held));
                    }
                }
                got.extend(sharded.insert_all(&keyed));
            }
            got.sort_unstable();
            proptest::prop_assert_eq!(got, want);
            let mut found = vec![Some(7)];
            sharded.get_all(&asked, &mut found);
            proptest::prop_assert_eq!(found, asked.iter().map(|&k| one.get(k)).collect::<Vec<_>>());
        }
    }

    /// As a map, the table keeps each key's first value, tells each insert the value held, and
    /// finds every key (0 too) and no other, as `HashMap::entry(..).or_insert` would.
    #[test]
    fn id_table_keeps_the_first_value() {
        let keys: Vec<(u64, u8)> =
            (0..20_000u64).map(|i| ((i * 7919) % 6007, u8::try_from(i % 251).expect("below 251"))).collect();
        let mut table: IdTable<u8> = IdTable::default();
        let mut held = vec![None; keys.len()];
        table.insert_all(keys.iter().enumerate().map(|(i, &(k, v))| (k, v, i)), |i, h| held[i] = h);
        let mut want = std::collections::HashMap::new();
        for (i, &(k, v)) in keys.iter().enumerate() {
            assert_eq!(held[i], want.get(&k).copied(), "insert {i}");
            want.entry(k).or_insert(v);
        }
        assert_eq!(table.len(), want.len());
        for k in 0..7000u64 {
            assert_eq!(table.get(k), want.get(&k).copied(), "key {k}");
        }
        assert_eq!(IdTable::<u8>::default().get(5), None);
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
