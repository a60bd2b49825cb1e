//! The link records' own keys, most of them held as numbers.

use std::fmt;

use crate::extract::StrColumn;

/// Keys in a run of one prefix and consecutive numbers before the run is held as one: a run
/// costs about 40 bytes and saves every key's text and offset (at least 5 bytes each).
const MIN_RUN: usize = 16;
/// Longest prefix of a numbered key (before its digits): a [`Key`] is formatted on the stack.
const MAX_PREFIX: usize = 24;
/// Longest numbered key: its prefix and the 20 digits of a `u64`.
const MAX_NUMBERED: usize = MAX_PREFIX + 20;

/// Each record's key in its source, in record order.
///
/// A source's record ids are most often numbered in file order (`s1`, `s2`, … in the linkage
/// benchmark, or the row numbers a file without `record_id` gets): a run of at least 16 keys that
/// are one prefix and consecutive numbers (written without leading zeros) is held as the prefix,
/// its first number and its length — no bytes a record — and every other key as text, as a
/// [`StrColumn`] would. The national linkage benchmark's 52 M keys took 0.68 GB as text (four
/// bytes of offset and about nine of text a key). A key reads back exactly as it was pushed.
/// Written by hand: no crate keeps a text column whose runs of numbered values are ranges.
///
/// ```
/// use tpmap::link::records::KeyColumn;
/// let mut k = KeyColumn::default();
/// (1..=100).for_each(|i| k.push(&format!("s{i}")));
/// k.push("x-7");
/// assert_eq!((k.len(), &*k.get(0), &*k.get(99), &*k.get(100)), (101, "s1", "s100", "x-7"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct KeyColumn {
    /// Number of keys.
    len: usize,
    /// The keys outside runs, in order.
    text: StrColumn,
    /// Runs of numbered keys, in order.
    runs: Vec<Run>,
    /// Each run's prefix.
    prefixes: StrColumn,
    /// The keys at the end of `text` that could begin a run.
    tail: Tail,
}

/// Keys `start..start + len`: the run's prefix followed by `first`, `first + 1`, ….
#[derive(Clone, Copy, Debug)]
struct Run {
    start: usize,
    len: usize,
    first: u64,
    /// Keys held as text before `start`.
    text_before: usize,
}

/// The last `count` keys pushed (all held as text): `prefix` and consecutive numbers up to
/// `next - 1`.
#[derive(Clone, Debug, Default)]
struct Tail {
    prefix: String,
    next: u64,
    count: usize,
}

/// `key` as a prefix (at most [`MAX_PREFIX`] bytes) and the number its last digits write
/// without leading zeros, if it is one.
fn numbered(key: &str) -> Option<(&str, u64)> {
    let digits = key.bytes().rev().take_while(u8::is_ascii_digit).count();
    // The digits are ASCII: the prefix ends on a character boundary.
    let (prefix, digits) = key.split_at(key.len() - digits);
    let canonical = !digits.is_empty() && (digits.len() == 1 || !digits.starts_with('0'));
    if !canonical || prefix.len() > MAX_PREFIX {
        return None;
    }
    digits.parse::<u64>().ok().map(|n| (prefix, n))
}

impl KeyColumn {
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a key.
    pub fn push(&mut self, key: &str) {
        let parsed = numbered(key);
        if let (Some((prefix, n)), Some(run)) = (parsed, self.runs.last_mut())
            && run.start + run.len == self.len
            && run.first.checked_add(run.len as u64) == Some(n)
            && self.prefixes.get(self.prefixes.len() - 1) == prefix
        {
            run.len += 1;
            self.len += 1;
            return;
        }
        self.text.push(key);
        self.len += 1;
        let tail = &mut self.tail;
        match parsed {
            Some((prefix, n)) if tail.count > 0 && tail.next == n && tail.prefix == prefix => tail.count += 1,
            Some((prefix, _)) => {
                tail.prefix.clear();
                tail.prefix.push_str(prefix);
                tail.count = 1;
            }
            None => tail.count = 0,
        }
        match parsed.and_then(|(_, n)| n.checked_add(1)) {
            Some(next) => tail.next = next,
            // No number follows the largest: no run goes on.
            None => tail.count = 0,
        }
        if tail.count == MIN_RUN {
            let text_before = self.text.len() - MIN_RUN;
            self.text.truncate(text_before);
            let first = tail.next - MIN_RUN as u64;
            self.runs.push(Run { start: self.len - MIN_RUN, len: MIN_RUN, first, text_before });
            self.prefixes.push(&tail.prefix);
            tail.count = 0;
        }
    }

    /// Key `i` (below [`KeyColumn::len`]).
    pub fn get(&self, i: usize) -> Key<'_> {
        let k = self.runs.partition_point(|r| r.start <= i);
        let text = match k.checked_sub(1) {
            Some(k) => {
                let r = &self.runs[k];
                if i < r.start + r.len {
                    return Key::numbered(self.prefixes.get(k), r.first + (i - r.start) as u64);
                }
                r.text_before + (i - r.start - r.len)
            }
            None => i,
        };
        Key(Repr::Text(self.text.get(text)))
    }

    /// Iterates over the keys.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Key<'_>> + '_ {
        (0..self.len).map(move |i| self.get(i))
    }

    /// A new column with the keys at `order`.
    pub fn take(&self, order: &[u32]) -> KeyColumn {
        let mut out = KeyColumn::default();
        for &i in order {
            out.push(&self.get(i as usize));
        }
        out
    }

    /// Bytes held on the heap.
    pub fn heap_bytes(&self) -> u64 {
        [
            self.text.heap_bytes(),
            crate::memory::vec_bytes(&self.runs),
            self.prefixes.heap_bytes(),
            self.tail.prefix.capacity() as u64,
        ]
        .into_iter()
        .fold(0, u64::saturating_add)
    }

    /// Gives back the room made for keys not pushed.
    pub fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.runs.shrink_to_fit();
        self.prefixes.shrink_to_fit();
    }
}

impl PartialEq for KeyColumn {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for KeyColumn {}

impl<S: AsRef<str>> FromIterator<S> for KeyColumn {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut out = KeyColumn::default();
        iter.into_iter().for_each(|k| out.push(k.as_ref()));
        out
    }
}

/// A record's key, as text ([`KeyColumn::get`]): it dereferences to `str`.
#[derive(Clone, Copy)]
pub struct Key<'a>(Repr<'a>);

#[derive(Clone, Copy)]
enum Repr<'a> {
    Text(&'a str),
    /// A numbered key written out: at most [`MAX_NUMBERED`] bytes.
    Numbered {
        bytes: [u8; MAX_NUMBERED],
        len: u8,
    },
}

impl Key<'_> {
    /// The key of `prefix` (at most [`MAX_PREFIX`] bytes) and `n`.
    fn numbered(prefix: &str, n: u64) -> Key<'static> {
        let mut bytes = [0; MAX_NUMBERED];
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(n).as_bytes();
        let len = prefix.len() + digits.len();
        bytes[..prefix.len()].copy_from_slice(prefix.as_bytes());
        bytes[prefix.len()..len].copy_from_slice(digits);
        // `len` is at most MAX_NUMBERED, below 256.
        Key(Repr::Numbered { bytes, len: len as u8 })
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Text(s) => s,
            // A prefix cut from a `str` before ASCII digits, and the digits: always UTF-8.
            Repr::Numbered { bytes, len } => std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default(),
        }
    }
}

impl std::ops::Deref for Key<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Key<'_> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Key<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Key<'_> {}

impl PartialOrd for Key<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for Key<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl serde::Serialize for Key<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<str> for Key<'_> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Key<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbered_keys_are_runs_and_the_rest_text() {
        let mut keys: Vec<String> = (1..=1000).map(|i| format!("s{i}")).collect();
        keys.extend((0..40).map(|i| format!("h{}:{}", 100 + i / 3, i % 3)));
        keys.extend((1..=50).map(|i| i.to_string()));
        keys.extend(["007", "7", "s01", "", "ก12", "x18446744073709551615", "x18446744073709551616"].map(String::from));
        let c: KeyColumn = keys.iter().collect();
        assert_eq!(c.iter().map(|k| k.to_string()).collect::<Vec<_>>(), keys);
        assert_eq!(c.runs.len(), 2, "s1..s1000 and 1..50 are runs; the households' keys are not");
        assert_eq!(c.text.len(), 40 + 7);
        let text = StrColumn::from_iter(keys.iter().map(String::as_str));
        assert!(c.heap_bytes() < text.heap_bytes() / 4, "{} against {}", c.heap_bytes(), text.heap_bytes());
    }

    #[test]
    fn a_run_ends_at_the_largest_number_and_a_long_prefix_is_text() {
        let top = u64::MAX;
        let keys: Vec<String> = (top - 20..=top).map(|n| format!("p{n}")).chain(["p0".into(), "p1".into()]).collect();
        let c: KeyColumn = keys.iter().collect();
        assert_eq!(c.iter().map(|k| k.to_string()).collect::<Vec<_>>(), keys);
        let long = "x".repeat(MAX_PREFIX + 1);
        let keys: Vec<String> = (0..40).map(|i| format!("{long}{i}")).collect();
        let c: KeyColumn = keys.iter().collect();
        assert_eq!((c.runs.len(), c.iter().map(|k| k.to_string()).collect::<Vec<_>>()), (0, keys));
    }

    proptest! {
        /// Any keys read back as pushed, in order, whatever runs they make; `take` and equality
        /// go by the keys' text.
        #[test]
        fn keys_read_back_as_pushed(parts in prop::collection::vec((0u8..4, 0u64..40, 1usize..40), 0..20)) {
            let prefixes = ["s", "", "w-", "9"];
            let keys: Vec<String> = parts
                .iter()
                .flat_map(|&(p, first, len)| (first..first + len as u64).map(move |n| format!("{}{n}", prefixes[usize::from(p)])))
                .collect();
            let c: KeyColumn = keys.iter().collect();
            prop_assert_eq!(c.len(), keys.len());
            prop_assert_eq!(c.iter().map(|k| k.to_string()).collect::<Vec<_>>(), keys.clone());
            let order: Vec<u32> = (0..keys.len() as u32).rev().collect();
            let back = c.take(&order).take(&order);
            prop_assert!(back == c);
        }
    }
}
