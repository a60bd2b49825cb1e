//! The in-memory model of a TPMAP / BMN extract: plain columnar Rust data.
//!
//! Households and persons are kept column by column (struct of vectors), and indicator statuses
//! as 64-bit masks, one bit per indicator of the [`Edition`]: scoring then works on integers and
//! bit operations rather than rows of objects. Persons are sorted by household, and
//! [`Extract::members`] gives each household's persons as a range (compressed sparse rows).
//!
//! ```no_run
//! use tpmap::ingest::{ingest, IngestOptions};
//! let got = ingest("data-samples/households.csv".as_ref(), "data-samples/persons.csv".as_ref(), &IngestOptions::default())?;
//! let x = &got.extract;
//! for h in 0..3 {
//!     println!("household {} in village {}: {} members", x.households.id[h], x.households.village[h], x.members(h).len());
//! }
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::areas::AreaCode;
use crate::ids::{CitizenId, HouseId, HouseholdId};
use crate::indicators::{Edition, IndicatorStatus};
use crate::thai::PartialDate;

mod spill;
pub(crate) use spill::ExtractSpill;

/// A column of strings in one buffer with offsets (no allocation per row).
///
/// Two columns are equal when they hold the same values, however their offsets are stored.
#[derive(Clone, Debug, Default)]
pub struct StrColumn {
    offsets: Offsets,
    bytes: String,
}

impl PartialEq for StrColumn {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for StrColumn {}

/// Where each value of a [`StrColumn`] ends: four bytes a value while its text is under 4 GiB,
/// eight after. The national persons' three name columns hold 2.1 GB of text and 110 M offsets;
/// u64 offsets were 0.44 GB more to write (every page of it fresh, zeroed by the kernel first),
/// and Arrow's `Utf8` arrays make the same choice. Written by hand: no crate keeps a growing
/// offset buffer that widens itself.
#[derive(Clone, Debug)]
enum Offsets {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

impl Default for Offsets {
    fn default() -> Self {
        Offsets::Narrow(Vec::new())
    }
}

impl Offsets {
    /// The largest end a narrow offset holds.
    const NARROW_MAX: usize = u32::MAX as usize;

    fn with_capacity(n: usize) -> Self {
        Offsets::Narrow(Vec::with_capacity(n))
    }
    fn len(&self) -> usize {
        match self {
            Offsets::Narrow(v) => v.len(),
            Offsets::Wide(v) => v.len(),
        }
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    #[cfg(test)]
    fn capacity(&self) -> usize {
        match self {
            Offsets::Narrow(v) => v.capacity(),
            Offsets::Wide(v) => v.capacity(),
        }
    }
    fn reserve(&mut self, n: usize) {
        match self {
            Offsets::Narrow(v) => v.reserve(n),
            Offsets::Wide(v) => v.reserve(n),
        }
    }
    #[inline]
    fn get(&self, i: usize) -> usize {
        match self {
            Offsets::Narrow(v) => v[i] as usize,
            Offsets::Wide(v) => v[i] as usize,
        }
    }
    fn last(&self) -> Option<usize> {
        self.len().checked_sub(1).map(|i| self.get(i))
    }
    fn truncate(&mut self, len: usize) {
        match self {
            Offsets::Narrow(v) => v.truncate(len),
            Offsets::Wide(v) => v.truncate(len),
        }
    }
    fn pop(&mut self) {
        match self {
            Offsets::Narrow(v) => {
                v.pop();
            }
            Offsets::Wide(v) => {
                v.pop();
            }
        }
    }
    /// Widens to eight bytes an offset when an end past `max` is to come.
    fn make_wide_for(&mut self, end: usize, max: usize) {
        if let Offsets::Narrow(v) = self
            && end > max
        {
            let mut wide = Vec::with_capacity(v.capacity().max(v.len() + 1));
            wide.extend(v.iter().map(|&o| u64::from(o)));
            *self = Offsets::Wide(wide);
        }
    }
    #[inline]
    fn push_within(&mut self, end: usize, max: usize) {
        self.make_wide_for(end, max);
        match self {
            // `make_wide_for` left it narrow: the end fits.
            Offsets::Narrow(v) => v.push(end as u32),
            Offsets::Wide(v) => v.push(end as u64),
        }
    }
    fn push(&mut self, end: usize) {
        self.push_within(end, Self::NARROW_MAX);
    }
    /// Appends `other`'s ends but its first, each moved on by `base`.
    fn extend_moved_within(&mut self, other: &Offsets, base: usize, max: usize) {
        let Some(last) = other.last() else { return };
        self.make_wide_for(base + last, max);
        match (self, other) {
            // `make_wide_for` left it narrow: every end moved, at most `base + last`, fits.
            (Offsets::Narrow(v), Offsets::Narrow(o)) => v.extend(o.iter().skip(1).map(|&e| e + base as u32)),
            (Offsets::Narrow(v), Offsets::Wide(o)) => v.extend(o.iter().skip(1).map(|&e| (e as usize + base) as u32)),
            (Offsets::Wide(v), Offsets::Narrow(o)) => v.extend(o.iter().skip(1).map(|&e| u64::from(e) + base as u64)),
            (Offsets::Wide(v), Offsets::Wide(o)) => v.extend(o.iter().skip(1).map(|&e| e + base as u64)),
        }
    }
    fn extend_moved(&mut self, other: &Offsets, base: usize) {
        self.extend_moved_within(other, base, Self::NARROW_MAX);
    }
}

/// Appends column `col` of each of `parts` to `to`, in order (a task of an `append_all`).
fn each<P, T: Copy>(to: &mut Vec<T>, parts: &[P], col: impl Fn(&P) -> &[T]) {
    for p in parts {
        to.extend_from_slice(col(p));
    }
}

/// [`each`] for a text column.
fn text<P>(to: &mut StrColumn, parts: &[P], col: impl Fn(&P) -> &StrColumn) {
    for p in parts {
        to.extend_from(col(p));
    }
}

impl StatusMatrix {
    /// Appends the statuses of each of `parts` (`of(part)`), in order; their indicators join
    /// [`StatusMatrix::present`] (a task of an `append_all`).
    fn extend_from_all<P>(&mut self, parts: &[P], of: impl Fn(&P) -> &StatusMatrix) {
        for p in parts {
            self.present |= of(p).present;
        }
        each(&mut self.fail, parts, |p| &of(p).fail);
        each(&mut self.na, parts, |p| &of(p).na);
        each(&mut self.missing, parts, |p| &of(p).missing);
    }
}

/// Bytes a row of text that [`StrColumn::reserve`] reserves for on the strength of an average alone
/// (21 Thai letters of three bytes each). Reservations are address space until written, and the
/// rows reserved for are bounded by the caller (`ingest`: 2^24 rows or four times those held).
pub const TRUSTED_TEXT_PER_ROW: usize = 64;

impl StrColumn {
    /// Bytes the column holds on the heap: its offsets' and text's capacities.
    pub fn heap_bytes(&self) -> u64 {
        let offsets = match &self.offsets {
            Offsets::Narrow(v) => crate::memory::vec_bytes(v),
            Offsets::Wide(v) => crate::memory::vec_bytes(v),
        };
        offsets.saturating_add(self.bytes.capacity() as u64)
    }

    /// Gives back the room made for rows and text not written.
    pub fn shrink_to_fit(&mut self) {
        match &mut self.offsets {
            Offsets::Narrow(v) => v.shrink_to_fit(),
            Offsets::Wide(v) => v.shrink_to_fit(),
        }
        self.bytes.shrink_to_fit();
    }

    /// The column of `text` cut at each of `lengths` in turn (the text's bytes moved in, not
    /// copied); `None` unless the lengths add up to the text's and every cut falls between
    /// characters.
    pub(crate) fn from_lengths(text: String, lengths: impl ExactSizeIterator<Item = usize>) -> Option<Self> {
        let mut offsets = Offsets::with_capacity(lengths.len() + 1);
        if text.len() > Offsets::NARROW_MAX {
            offsets = Offsets::Wide(Vec::with_capacity(lengths.len() + 1));
        }
        offsets.push(0);
        let mut at = 0usize;
        for len in lengths {
            at = at.checked_add(len).filter(|&end| text.is_char_boundary(end))?;
            offsets.push(at);
        }
        (at == text.len()).then_some(StrColumn { offsets, bytes: text })
    }

    /// An empty column with room for `rows` rows of about `avg_len` bytes.
    pub fn with_capacity(rows: usize, avg_len: usize) -> Self {
        let mut offsets = Offsets::with_capacity(rows + 1);
        offsets.push(0);
        StrColumn { offsets, bytes: String::with_capacity(rows * avg_len) }
    }

    /// Appends a value.
    pub fn push(&mut self, s: &str) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.bytes.push_str(s);
        self.offsets.push(self.bytes.len());
    }

    /// Replaces the last value (nothing when the column is empty).
    pub fn replace_last(&mut self, s: &str) {
        if self.is_empty() {
            return;
        }
        self.offsets.pop();
        let start = self.offsets.last().unwrap_or(0);
        self.bytes.truncate(start);
        self.push(s);
    }

    /// Keeps the first `rows` values (all of them when there are no more).
    pub fn truncate(&mut self, rows: usize) {
        if rows < self.len() {
            self.offsets.truncate(rows + 1);
            self.bytes.truncate(self.offsets.last().unwrap_or(0));
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at `i` (empty string for a missing value).
    pub fn get(&self, i: usize) -> &str {
        &self.bytes[self.offsets.get(i)..self.offsets.get(i + 1)]
    }

    /// Iterates over the values.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Appends all values of `other`.
    pub fn extend_from(&mut self, other: &StrColumn) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        let base = self.bytes.len();
        self.bytes.push_str(&other.bytes);
        self.offsets.extend_moved(&other.offsets, base);
    }

    /// A new column with the rows at `order`.
    pub fn take(&self, order: &[u32]) -> StrColumn {
        let mut out = StrColumn::with_capacity(order.len(), self.bytes.len() / self.len().max(1));
        for &i in order {
            out.push(self.get(i as usize));
        }
        out
    }

    /// Total bytes of text.
    pub fn text_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Makes room for `incoming`'s text when it does not fit in the room left: for `rows` more
    /// values (`incoming`'s among them) of the average length of the values held and incoming,
    /// bounded as in [`StrColumn::reserve`]. Row reservations made before any text was seen
    /// reserve no text; this is what sizes a growing column's text once, from real values.
    pub(crate) fn make_room(&mut self, incoming: &StrColumn, rows: usize) {
        let need = incoming.bytes.len();
        if self.bytes.capacity() - self.bytes.len() >= need {
            return;
        }
        let held = self.bytes.len().saturating_add(need);
        let avg = held.div_ceil(self.len().saturating_add(incoming.len()).max(1));
        let predicted = rows.saturating_mul(avg);
        let bound = rows.saturating_mul(TRUSTED_TEXT_PER_ROW).max(held.saturating_mul(4));
        self.bytes.reserve(predicted.saturating_add(predicted / 8).min(bound).max(need));
    }

    /// Makes room for `bytes` more bytes of text (as they are known, not predicted).
    pub(crate) fn reserve_text(&mut self, bytes: usize) {
        self.bytes.reserve(bytes);
    }

    /// Makes room for `rows` more values of the average length so far plus an eighth (only
    /// offsets while the column is empty). The text reserved is at most [`TRUSTED_TEXT_PER_ROW`]
    /// bytes a row or four times the text held, whichever is more: one long value among few rows
    /// cannot make a huge reservation, and ordinary names are reserved for in one step (a column
    /// doubled later copies all its text into fresh pages: 5 s for the national persons' names).
    pub fn reserve(&mut self, rows: usize) {
        self.offsets.reserve(rows.saturating_add(usize::from(self.offsets.is_empty())));
        let avg = self.bytes.len().div_ceil(self.len().max(1));
        let predicted = rows.saturating_mul(avg);
        let bound = rows.saturating_mul(TRUSTED_TEXT_PER_ROW).max(self.bytes.len().saturating_mul(4));
        self.bytes.reserve(predicted.saturating_add(predicted / 8).min(bound));
    }
}

impl<'a> FromIterator<&'a str> for StrColumn {
    fn from_iter<T: IntoIterator<Item = &'a str>>(iter: T) -> Self {
        let mut c = StrColumn::with_capacity(0, 0);
        for s in iter {
            c.push(s);
        }
        c
    }
}

/// A text column of few distinct values, such as titles (นาย, นาง, นางสาว, ด.ช., ด.ญ.): a byte per
/// row and the distinct values once. The national persons' titles take 37 MB so instead of the
/// 0.53 GB of a [`StrColumn`] (their text and offsets), every page of which the kernel clears
/// before it is first written. Past [`DictColumn::MAX_VALUES`] distinct values the column keeps
/// its text as a [`StrColumn`] instead, so a file of free-text titles loses nothing. Written by
/// hand: the extract's columns are plain Rust, grown a row at a time, independent of polars.
///
/// Two columns are equal when they hold the same values, however they are stored.
///
/// ```
/// use tpmap::extract::DictColumn;
/// let mut titles = DictColumn::default();
/// for t in ["นาย", "นาง", "นาย", ""] {
///     titles.push(t);
/// }
/// assert_eq!((titles.len(), titles.get(2), titles.get(3)), (4, "นาย", ""));
/// assert_eq!(titles.dictionary().map(|(codes, values)| (codes.len(), values.len())), Some((4, 3)));
/// ```
#[derive(Clone, Debug, Default)]
pub struct DictColumn(Dict);

#[derive(Clone, Debug)]
enum Dict {
    /// Each row's value as `values[codes[row]]`; `index` finds a value's code once there are
    /// more values than a scan is quick for.
    Coded { codes: Vec<u8>, values: Vec<Box<str>>, index: hashbrown::HashMap<Box<str>, u8> },
    /// More distinct values than a code holds.
    Text(StrColumn),
}

impl Default for Dict {
    fn default() -> Self {
        Dict::Coded { codes: Vec::new(), values: Vec::new(), index: hashbrown::HashMap::new() }
    }
}

impl PartialEq for DictColumn {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for DictColumn {}

/// Values a [`DictColumn`] scans for a value's code before it keeps an index of them.
const DICT_SCAN: usize = 8;

impl DictColumn {
    /// The most distinct values kept as codes (one byte a row).
    pub const MAX_VALUES: usize = 256;

    /// An empty column with room for `rows` rows.
    pub fn with_capacity(rows: usize) -> Self {
        DictColumn(Dict::Coded {
            codes: Vec::with_capacity(rows),
            values: Vec::new(),
            index: hashbrown::HashMap::new(),
        })
    }

    /// The code of `s`, made when it is new; `None` when a new value would not fit in a code.
    fn code_for(values: &mut Vec<Box<str>>, index: &mut hashbrown::HashMap<Box<str>, u8>, s: &str) -> Option<u8> {
        let found = if values.len() <= DICT_SCAN {
            values.iter().zip(0u8..=u8::MAX).find(|(v, _)| ***v == *s).map(|(_, c)| c)
        } else {
            index.get(s).copied()
        };
        if found.is_some() {
            return found;
        }
        let code = u8::try_from(values.len()).ok()?;
        values.push(s.into());
        if values.len() > DICT_SCAN {
            if index.is_empty() {
                index.extend(values.iter().cloned().zip(0u8..=u8::MAX));
            } else {
                index.insert(s.into(), code);
            }
        }
        Some(code)
    }

    /// Keeps the values as text from now on (more distinct values than codes hold).
    fn make_text(&mut self) -> &mut StrColumn {
        if let Dict::Coded { codes, values, .. } = &self.0 {
            let longest = values.iter().map(|v| v.len()).max().unwrap_or(0);
            let mut text = StrColumn::with_capacity(codes.len(), longest);
            for &c in codes {
                text.push(&values[c as usize]);
            }
            self.0 = Dict::Text(text);
        }
        match &mut self.0 {
            Dict::Text(text) => text,
            // Made text just above: no input reaches this arm.
            Dict::Coded { .. } => unreachable!("made text above"),
        }
    }

    /// Appends a value.
    pub fn push(&mut self, s: &str) {
        if let Dict::Coded { codes, values, index } = &mut self.0 {
            // A run of one value (a household's children) is found without a scan.
            if let Some(&last) = codes.last()
                && *values[last as usize] == *s
            {
                codes.push(last);
                return;
            }
            if let Some(code) = Self::code_for(values, index, s) {
                codes.push(code);
                return;
            }
        }
        self.make_text().push(s);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match &self.0 {
            Dict::Coded { codes, .. } => codes.len(),
            Dict::Text(text) => text.len(),
        }
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at `i` (empty string for a missing value).
    pub fn get(&self, i: usize) -> &str {
        match &self.0 {
            Dict::Coded { codes, values, .. } => &values[codes[i] as usize],
            Dict::Text(text) => text.get(i),
        }
    }

    /// Iterates over the values.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Each row's code and the values they stand for (`values[codes[row]]`, numbered as they
    /// first appeared), while the column is kept as codes.
    pub fn dictionary(&self) -> Option<(&[u8], &[Box<str>])> {
        match &self.0 {
            Dict::Coded { codes, values, .. } => Some((codes, values)),
            Dict::Text(_) => None,
        }
    }

    /// Appends all values of `other`.
    pub fn extend_from(&mut self, other: &DictColumn) {
        if let (Dict::Coded { codes, values, index }, Dict::Coded { codes: theirs, values: their_values, .. }) =
            (&mut self.0, &other.0)
        {
            let mut ours = [0u8; DictColumn::MAX_VALUES];
            let mut fits = true;
            for (c, v) in their_values.iter().enumerate() {
                match Self::code_for(values, index, v) {
                    Some(code) => ours[c] = code,
                    None => {
                        fits = false;
                        break;
                    }
                }
            }
            if fits {
                codes.extend(theirs.iter().map(|&c| ours[c as usize]));
                return;
            }
        }
        let text = self.make_text();
        match &other.0 {
            Dict::Text(theirs) => text.extend_from(theirs),
            Dict::Coded { .. } => other.iter().for_each(|v| text.push(v)),
        }
    }

    /// A new column with the rows at `order`.
    pub fn take(&self, order: &[u32]) -> DictColumn {
        match &self.0 {
            Dict::Coded { codes, values, index } => DictColumn(Dict::Coded {
                codes: order.iter().map(|&i| codes[i as usize]).collect(),
                values: values.clone(),
                index: index.clone(),
            }),
            Dict::Text(text) => DictColumn(Dict::Text(text.take(order))),
        }
    }

    /// Makes room for `incoming`'s rows, for `rows` more in all, when they do not fit (text as
    /// [`StrColumn::make_room`] makes room for it, once the column is text).
    pub(crate) fn make_room(&mut self, incoming: &DictColumn, rows: usize) {
        match (&mut self.0, &incoming.0) {
            (Dict::Coded { codes, .. }, _) => {
                if codes.capacity() - codes.len() < incoming.len() {
                    codes.reserve(rows.max(incoming.len()));
                }
            }
            (Dict::Text(text), Dict::Text(theirs)) => text.make_room(theirs, rows),
            (Dict::Text(text), Dict::Coded { .. }) => text.reserve(rows.max(incoming.len())),
        }
    }

    /// Makes room for `bytes` more bytes of text once the column is text (codes need none).
    pub(crate) fn reserve_text(&mut self, bytes: usize) {
        if let Dict::Text(text) = &mut self.0 {
            text.reserve_text(bytes);
        }
    }

    /// Makes room for `rows` more values.
    pub fn reserve(&mut self, rows: usize) {
        match &mut self.0 {
            Dict::Coded { codes, .. } => codes.reserve(rows),
            Dict::Text(text) => text.reserve(rows),
        }
    }
}

impl<'a> FromIterator<&'a str> for DictColumn {
    fn from_iter<T: IntoIterator<Item = &'a str>>(iter: T) -> Self {
        let mut c = DictColumn::default();
        for s in iter {
            c.push(s);
        }
        c
    }
}

/// Indicator statuses of many rows, as bit masks (bit `i` = indicator `i` of the edition).
///
/// A status is read as: not reported (the table has no column for it, see [`Self::present`]),
/// else [`IndicatorStatus::Missing`] if its `missing` bit is set, else
/// [`IndicatorStatus::NotApplicable`] if its `na` bit is set, else [`IndicatorStatus::Fail`] if
/// its `fail` bit is set, else [`IndicatorStatus::Pass`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusMatrix {
    /// Indicators this table has a column for.
    pub present: u64,
    /// Failing (deprived) indicators per row.
    pub fail: Vec<u64>,
    /// Not-applicable indicators per row.
    pub na: Vec<u64>,
    /// Missing indicators per row.
    pub missing: Vec<u64>,
}

impl StatusMatrix {
    /// An empty matrix for the indicators in `present`.
    pub fn new(present: u64, capacity: usize) -> Self {
        StatusMatrix {
            present,
            fail: Vec::with_capacity(capacity),
            na: Vec::with_capacity(capacity),
            missing: Vec::with_capacity(capacity),
        }
    }

    /// Appends one row's masks.
    pub fn push(&mut self, fail: u64, na: u64, missing: u64) {
        self.fail.push(fail);
        self.na.push(na);
        self.missing.push(missing);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.fail.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.fail.is_empty()
    }

    /// The status of indicator `i` in row `row`, or `None` when the table does not report it.
    pub fn get(&self, row: usize, i: usize) -> Option<IndicatorStatus> {
        let bit = 1u64 << i;
        if self.present & bit == 0 {
            None
        } else if self.missing[row] & bit != 0 {
            Some(IndicatorStatus::Missing)
        } else if self.na[row] & bit != 0 {
            Some(IndicatorStatus::NotApplicable)
        } else if self.fail[row] & bit != 0 {
            Some(IndicatorStatus::Fail)
        } else {
            Some(IndicatorStatus::Pass)
        }
    }

    /// Rows at `order`.
    pub fn take(&self, order: &[u32]) -> StatusMatrix {
        let pick = |v: &Vec<u64>| order.iter().map(|&i| v[i as usize]).collect();
        StatusMatrix { present: self.present, fail: pick(&self.fail), na: pick(&self.na), missing: pick(&self.missing) }
    }
}

/// Sex as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Sex {
    /// Not recorded.
    #[default]
    Unknown = 0,
    /// ชาย
    Male = 1,
    /// หญิง
    Female = 2,
}

/// Relation to the head of household (BMN categories).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Relation {
    /// Not recorded.
    #[default]
    Unknown = 0,
    /// หัวหน้าครัวเรือน
    Head = 1,
    /// คู่สมรส
    Spouse = 2,
    /// บุตร
    Child = 3,
    /// บิดา / มารดา
    Parent = 4,
    /// หลาน
    Grandchild = 5,
    /// พี่น้อง
    Sibling = 6,
    /// ญาติอื่น
    OtherRelative = 7,
    /// ผู้อาศัย (not related)
    NonRelative = 8,
}

impl Relation {
    /// All values with their code (the enum discriminant), in code order.
    pub const ALL: [Relation; 9] = [
        Relation::Unknown,
        Relation::Head,
        Relation::Spouse,
        Relation::Child,
        Relation::Parent,
        Relation::Grandchild,
        Relation::Sibling,
        Relation::OtherRelative,
        Relation::NonRelative,
    ];

    /// Thai label.
    pub fn name_th(self) -> &'static str {
        match self {
            Relation::Unknown => "",
            Relation::Head => "หัวหน้าครัวเรือน",
            Relation::Spouse => "คู่สมรส",
            Relation::Child => "บุตร",
            Relation::Parent => "บิดามารดา",
            Relation::Grandchild => "หลาน",
            Relation::Sibling => "พี่น้อง",
            Relation::OtherRelative => "ญาติ",
            Relation::NonRelative => "ผู้อาศัย",
        }
    }
}

/// Households of an extract, column by column (equal when every column holds the same values).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Households {
    /// Household key.
    pub id: Vec<HouseholdId>,
    /// Village: the 8-digit DOPA code or TPMAP's 10-digit id.
    pub village: Vec<AreaCode>,
    /// House ID (รหัสประจำบ้าน), when given.
    pub house_id: Vec<Option<HouseId>>,
    /// House number as written (`12/3`), with Thai digits folded.
    pub house_no: StrColumn,
    /// BMN survey year (BE).
    pub survey_year: Vec<u16>,
    /// Members as declared by the household row (or counted from the persons when absent).
    pub members: Vec<u16>,
    /// Income per member per year (baht), when given.
    pub income_per_member: Vec<Option<f64>>,
    /// Household-level indicator statuses.
    pub statuses: StatusMatrix,
    /// 1-based data row in the source file.
    pub source_row: Vec<u64>,
}

impl Households {
    /// Number of households.
    pub fn len(&self) -> usize {
        self.id.len()
    }

    /// Makes room for `n` more households in every column (text columns: `n` values of their
    /// average length so far).
    pub fn reserve(&mut self, n: usize) {
        self.id.reserve(n);
        self.village.reserve(n);
        self.house_id.reserve(n);
        self.house_no.reserve(n);
        self.survey_year.reserve(n);
        self.members.reserve(n);
        self.income_per_member.reserve(n);
        self.statuses.fail.reserve(n);
        self.statuses.na.reserve(n);
        self.statuses.missing.reserve(n);
        self.source_row.reserve(n);
    }

    /// Appends `other`'s households after these, column by column (their indicators join
    /// `statuses.present`). Columns `other` leaves empty (`members` before it is counted,
    /// `source_row` of data made in memory) stay as they are.
    pub fn append(&mut self, other: Households) {
        self.id.extend(other.id);
        self.village.extend(other.village);
        self.house_id.extend(other.house_id);
        self.house_no.extend_from(&other.house_no);
        self.survey_year.extend(other.survey_year);
        self.members.extend(other.members);
        self.income_per_member.extend(other.income_per_member);
        self.statuses.present |= other.statuses.present;
        self.statuses.fail.extend(other.statuses.fail);
        self.statuses.na.extend(other.statuses.na);
        self.statuses.missing.extend(other.statuses.missing);
        self.source_row.extend(other.source_row);
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    /// Appends each of `parts` after these, in order, a column per task on the rayon pool: the
    /// same result as [`Households::append`] of each in turn.
    pub fn append_all(&mut self, parts: Vec<Households>) {
        let Households {
            id,
            village,
            house_id,
            house_no,
            survey_year,
            members,
            income_per_member,
            statuses,
            source_row,
        } = self;
        let parts = &parts;
        rayon::scope(|s| {
            s.spawn(|_| statuses.extend_from_all(parts, |p| &p.statuses));
            s.spawn(|_| text(house_no, parts, |p| &p.house_no));
            s.spawn(|_| each(id, parts, |p| &p.id));
            s.spawn(|_| each(house_id, parts, |p| &p.house_id));
            s.spawn(|_| each(income_per_member, parts, |p| &p.income_per_member));
            each(source_row, parts, |p| &p.source_row);
            each(village, parts, |p| &p.village);
            each(survey_year, parts, |p| &p.survey_year);
            each(members, parts, |p| &p.members);
        });
    }

    /// The households at `order`, in that order (every index below [`Households::len`]).
    /// Columns left empty (`members` before it is counted, `source_row` of data made in
    /// memory) stay empty.
    pub fn take(&self, order: &[u32]) -> Households {
        let maybe = |v: &[u16]| if v.is_empty() { Vec::new() } else { pick(v, order) };
        Households {
            id: pick(&self.id, order),
            village: pick(&self.village, order),
            house_id: pick(&self.house_id, order),
            house_no: self.house_no.take(order),
            survey_year: pick(&self.survey_year, order),
            members: maybe(&self.members),
            income_per_member: pick(&self.income_per_member, order),
            statuses: self.statuses.take(order),
            source_row: if self.source_row.is_empty() { Vec::new() } else { pick(&self.source_row, order) },
        }
    }
}

/// `v`'s values at `order`.
fn pick<T: Copy>(v: &[T], order: &[u32]) -> Vec<T> {
    order.iter().map(|&i| v[i as usize]).collect()
}

/// Persons of an extract, column by column, sorted by household (equal when every column holds
/// the same values).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Persons {
    /// Row index of the person's household in [`Households`].
    pub household: Vec<u32>,
    /// Citizen ID, when given (always valid: invalid ones are rejected).
    pub citizen_id: Vec<Option<CitizenId>>,
    /// Title as written (นาย, นาง, ด.ช., ...).
    pub title: DictColumn,
    /// Given name.
    pub first_name: StrColumn,
    /// Family name.
    pub last_name: StrColumn,
    /// Sex.
    pub sex: Vec<Sex>,
    /// Birth date (CE), possibly partial.
    pub birth_date: Vec<Option<PartialDate>>,
    /// Age in completed years on the survey's reference date: given, or derived from the birth date.
    pub age: Vec<Option<u8>>,
    /// Relation to the head of household.
    pub relation: Vec<Relation>,
    /// Has a disability.
    pub disabled: Vec<Option<bool>>,
    /// Registered for the state welfare card.
    pub welfare_registered: Vec<Option<bool>>,
    /// Registration validated by the Ministry of Finance.
    pub welfare_validated: Vec<Option<bool>>,
    /// Person-level indicator statuses.
    pub statuses: StatusMatrix,
    /// 1-based data row in the source file.
    pub source_row: Vec<u64>,
}

impl Persons {
    /// Number of persons.
    pub fn len(&self) -> usize {
        self.household.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.household.is_empty()
    }

    /// Makes room for `n` more persons in every column (text columns: `n` values of their
    /// average length so far).
    pub fn reserve(&mut self, n: usize) {
        self.household.reserve(n);
        self.citizen_id.reserve(n);
        self.title.reserve(n);
        self.first_name.reserve(n);
        self.last_name.reserve(n);
        self.sex.reserve(n);
        self.birth_date.reserve(n);
        self.age.reserve(n);
        self.relation.reserve(n);
        self.disabled.reserve(n);
        self.welfare_registered.reserve(n);
        self.welfare_validated.reserve(n);
        self.statuses.fail.reserve(n);
        self.statuses.na.reserve(n);
        self.statuses.missing.reserve(n);
        self.source_row.reserve(n);
    }

    /// Appends `other`'s persons after these; their household rows are shifted by
    /// `household_offset` (the households that came before theirs).
    pub fn append(&mut self, other: Persons, household_offset: u32) {
        if household_offset == 0 {
            self.household.extend(other.household);
        } else {
            self.household.extend(other.household.iter().map(|&h| h + household_offset));
        }
        self.citizen_id.extend(other.citizen_id);
        self.title.extend_from(&other.title);
        self.first_name.extend_from(&other.first_name);
        self.last_name.extend_from(&other.last_name);
        self.sex.extend(other.sex);
        self.birth_date.extend(other.birth_date);
        self.age.extend(other.age);
        self.relation.extend(other.relation);
        self.disabled.extend(other.disabled);
        self.welfare_registered.extend(other.welfare_registered);
        self.welfare_validated.extend(other.welfare_validated);
        self.statuses.present |= other.statuses.present;
        self.statuses.fail.extend(other.statuses.fail);
        self.statuses.na.extend(other.statuses.na);
        self.statuses.missing.extend(other.statuses.missing);
        self.source_row.extend(other.source_row);
    }

    /// Appends each of `parts` after these, in order (household rows unshifted), a column per
    /// task on the rayon pool: the same result as [`Persons::append`] of each in turn. Appending
    /// a national extract's parts writes ~5 GB of fresh pages; one thread doing all columns was
    /// a third of reading the persons.
    pub fn append_all(&mut self, parts: Vec<Persons>) {
        let Persons {
            household,
            citizen_id,
            title,
            first_name,
            last_name,
            sex,
            birth_date,
            age,
            relation,
            disabled,
            welfare_registered,
            welfare_validated,
            statuses,
            source_row,
        } = self;
        let parts = &parts;
        rayon::scope(|s| {
            s.spawn(|_| statuses.extend_from_all(parts, |p| &p.statuses));
            s.spawn(|_| text(first_name, parts, |p| &p.first_name));
            s.spawn(|_| text(last_name, parts, |p| &p.last_name));
            s.spawn(|_| parts.iter().for_each(|p| title.extend_from(&p.title)));
            s.spawn(|_| each(citizen_id, parts, |p| &p.citizen_id));
            s.spawn(|_| each(source_row, parts, |p| &p.source_row));
            s.spawn(|_| {
                each(household, parts, |p| &p.household);
                each(birth_date, parts, |p| &p.birth_date);
                each(age, parts, |p| &p.age);
            });
            each(sex, parts, |p| &p.sex);
            each(relation, parts, |p| &p.relation);
            each(disabled, parts, |p| &p.disabled);
            each(welfare_registered, parts, |p| &p.welfare_registered);
            each(welfare_validated, parts, |p| &p.welfare_validated);
        });
    }

    /// The persons at `order`, in that order (every index below [`Persons::len`]).
    pub fn take(&self, order: &[u32]) -> Persons {
        Persons {
            household: pick(&self.household, order),
            citizen_id: pick(&self.citizen_id, order),
            title: self.title.take(order),
            first_name: self.first_name.take(order),
            last_name: self.last_name.take(order),
            sex: pick(&self.sex, order),
            birth_date: pick(&self.birth_date, order),
            age: pick(&self.age, order),
            relation: pick(&self.relation, order),
            disabled: pick(&self.disabled, order),
            welfare_registered: pick(&self.welfare_registered, order),
            welfare_validated: pick(&self.welfare_validated, order),
            statuses: self.statuses.take(order),
            // Persons made in memory have no source rows: the column stays empty.
            source_row: if self.source_row.is_empty() { Vec::new() } else { pick(&self.source_row, order) },
        }
    }
}

/// A validated extract: households, their persons, and the edition their statuses refer to.
#[derive(Clone, Debug)]
pub struct Extract {
    /// The indicator edition.
    pub edition: Arc<Edition>,
    /// Households.
    pub households: Households,
    /// Persons, sorted by household.
    pub persons: Persons,
    /// `member_offsets[h]..member_offsets[h+1]` are household `h`'s persons.
    pub member_offsets: Vec<u32>,
}

impl Extract {
    /// Assembles an extract, sorting persons by household (stable, so file order is kept within
    /// a household) and building the member offsets.
    pub fn new(edition: Arc<Edition>, households: Households, mut persons: Persons) -> Extract {
        if !persons.household.is_sorted() {
            let mut order: Vec<u32> = (0..persons.len() as u32).collect();
            order.sort_by_key(|&i| persons.household[i as usize]);
            persons = persons.take(&order);
        }
        let mut member_offsets = vec![0u32; households.len() + 1];
        for &h in &persons.household {
            member_offsets[h as usize + 1] += 1;
        }
        for i in 0..households.len() {
            member_offsets[i + 1] += member_offsets[i];
        }
        Extract { edition, households, persons, member_offsets }
    }

    /// The persons of household `h`.
    pub fn members(&self, h: usize) -> Range<usize> {
        self.member_offsets[h] as usize..self.member_offsets[h + 1] as usize
    }

    /// The households at `order` (each index below the number of households, each at most
    /// once), in that order, with their members in their order: an extract of its own, every
    /// household as it was (a household's profile and score depend on it and its members
    /// alone). A partitioned run keeps its waves' poor households this way, to plan over them.
    pub fn select(&self, order: &[u32]) -> Extract {
        let mut persons_at = Vec::with_capacity(order.iter().map(|&h| self.members(h as usize).len()).sum());
        let mut household = Vec::with_capacity(persons_at.capacity());
        for (new, &h) in (0u32..).zip(order) {
            let h = h as usize;
            for k in self.member_offsets[h]..self.member_offsets[h + 1] {
                persons_at.push(k);
                household.push(new);
            }
        }
        let mut persons = self.persons.take(&persons_at);
        persons.household = household;
        Extract::new(self.edition.clone(), self.households.take(order), persons)
    }

    /// Appends `other`'s households and persons after these (both of one edition). Refused when
    /// the households or persons would no longer be numbered by 32 bits.
    pub fn append(&mut self, other: Extract) -> crate::Result<()> {
        let fits = |a: usize, b: usize| a.checked_add(b).is_some_and(|n| u32::try_from(n).is_ok());
        let offset = u32::try_from(self.households.len()).ok().filter(|_| {
            fits(self.households.len(), other.households.len()) && fits(self.persons.len(), other.persons.len())
        });
        let Some(offset) = offset else {
            return Err(crate::Error::Limit {
                file: String::new(),
                message: format!("more than {} households or persons in one extract", u32::MAX),
            });
        };
        self.households.append(other.households);
        self.persons.append(other.persons, offset);
        let base = self.member_offsets.pop().unwrap_or(0);
        self.member_offsets.extend(other.member_offsets.iter().map(|o| o + base));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_reservations_are_bounded_by_the_text_held() {
        let mut c = StrColumn::default();
        c.reserve(1 << 20);
        assert_eq!(c.bytes.capacity(), 0, "nothing to average yet");
        c.push(&"ก".repeat(400));
        c.reserve(1 << 20);
        // 1 M rows of 1,200 bytes would be 1.2 GB: 64 bytes a row instead.
        assert!(c.bytes.capacity() <= 1200 + (TRUSTED_TEXT_PER_ROW << 20), "{}", c.bytes.capacity());
        // Few rows to come: four times the text held, not 10 x 1,200 bytes.
        let mut d = StrColumn::default();
        d.push(&"ก".repeat(400));
        d.reserve(10);
        assert!((5 * 1200..10 * 1200).contains(&d.bytes.capacity()), "{}", d.bytes.capacity());
        // Ordinary names: the average times the rows to come, and an eighth more, in one step.
        let mut names: StrColumn = ["สมชาย", "สมหญิง"].into_iter().collect();
        let avg = names.text_bytes().div_ceil(2);
        names.reserve(1000);
        assert!(names.bytes.capacity() >= names.text_bytes() + 1000 * avg * 9 / 8);
        assert!(names.offsets.capacity() >= 1003);
    }

    #[test]
    fn text_room_is_made_once_from_the_first_real_values() {
        let part: StrColumn = ["สมชาย", "สมหญิง"].into_iter().collect();
        let avg = part.text_bytes().div_ceil(2);
        let mut col = StrColumn::default();
        col.reserve(1000);
        assert_eq!(col.bytes.capacity(), 0, "rows reserved before any text: no text");
        col.make_room(&part, 1000);
        let cap = col.bytes.capacity();
        assert!(cap >= 1000 * avg * 9 / 8, "{cap}");
        // Later parts fit: no new reservation, no copy.
        for _ in 0..400 {
            col.make_room(&part, 1000);
            col.extend_from(&part);
        }
        assert_eq!(col.bytes.capacity(), cap);
        // Hostile: one long value does not reserve its length for every row to come.
        let long: StrColumn = [&*"ก".repeat(4000)].into_iter().collect();
        let mut col = StrColumn::default();
        col.make_room(&long, 1 << 20);
        assert!(col.bytes.capacity() <= TRUSTED_TEXT_PER_ROW << 20, "{}", col.bytes.capacity());
        assert!(col.bytes.capacity() >= long.text_bytes());
    }

    #[test]
    fn str_column() {
        let mut c: StrColumn = ["ก", "", "สมชาย"].into_iter().collect();
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(2), "สมชาย");
        assert_eq!(c.take(&[2, 0]).iter().collect::<Vec<_>>(), ["สมชาย", "ก"]);
        let d: StrColumn = ["x"].into_iter().collect();
        c.extend_from(&d);
        assert_eq!(c.iter().collect::<Vec<_>>(), ["ก", "", "สมชาย", "x"]);
        c.replace_last("ยาวกว่า");
        c.push("y");
        assert_eq!(c.iter().collect::<Vec<_>>(), ["ก", "", "สมชาย", "ยาวกว่า", "y"]);
    }

    /// A column whose offsets are wide from the start reads, grows, shrinks and compares as a
    /// narrow one does (a real column widens only past 4 GiB of text).
    #[test]
    fn a_wide_column_is_the_narrow_one() {
        let values = ["ก", "", "สมชาย", "x", "ยาวกว่า"];
        let narrow: StrColumn = values.into_iter().collect();
        let mut wide = StrColumn::default();
        wide.offsets.push(0);
        wide.offsets.make_wide_for(usize::MAX, 0);
        assert!(matches!(wide.offsets, Offsets::Wide(_)));
        for v in values {
            wide.push(v);
        }
        assert_eq!(wide, narrow);
        assert_eq!(wide.take(&[4, 0, 1]), narrow.take(&[4, 0, 1]));
        let (mut a, mut b) = (narrow.clone(), wide.clone());
        a.extend_from(&wide);
        b.extend_from(&narrow);
        assert_eq!(a, b);
        assert!(matches!(a.offsets, Offsets::Narrow(_)) && matches!(b.offsets, Offsets::Wide(_)));
        a.replace_last("ข");
        b.replace_last("ข");
        assert_eq!(a.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());
        assert_eq!(a.iter().last(), Some("ข"));
        assert_ne!(a, narrow);
    }

    proptest::proptest! {
        /// Offsets pushed and appended across the narrow bound (`max`, small here) are the ends
        /// written, and widen exactly when an end passes the bound.
        #[test]
        fn offsets_widen_when_an_end_passes_the_bound(
            max in 0usize..64,
            steps in proptest::collection::vec(proptest::collection::vec(0usize..9, 0..5), 0..24),
        ) {
            let (mut offsets, mut ends) = (Offsets::default(), vec![0usize]);
            offsets.push_within(0, max);
            for (k, lens) in steps.iter().enumerate() {
                let end = *ends.last().unwrap();
                if k % 2 == 0 || lens.is_empty() {
                    // Values pushed one by one.
                    for &l in lens {
                        let e = ends.last().unwrap() + l;
                        offsets.push_within(e, max);
                        ends.push(e);
                    }
                } else {
                    // Another column's values appended at once (it narrow or wide).
                    let mut other = Offsets::default();
                    other.push_within(0, max);
                    let mut e = 0;
                    for &l in lens {
                        e += l;
                        other.push_within(e, if k % 4 == 1 { max } else { 0 });
                        ends.push(end + e);
                    }
                    offsets.extend_moved_within(&other, end, max);
                }
                let read: Vec<usize> = (0..offsets.len()).map(|i| offsets.get(i)).collect();
                proptest::prop_assert_eq!(&read, &ends);
                let widest = *ends.last().unwrap();
                proptest::prop_assert_eq!(matches!(offsets, Offsets::Wide(_)), widest > max);
            }
        }
    }

    /// A dictionary column's value `k`: ASCII, Thai, and the empty string.
    fn dict_value(k: usize) -> String {
        match k % 3 {
            0 if k == 0 => String::new(),
            0 => format!("v{k}"),
            1 => format!("นาย{k}"),
            _ => format!("ด.ญ.{k}"),
        }
    }

    proptest::proptest! {
        /// A dictionary column holds what was pushed, appended and taken, as a list of strings
        /// does; it stays codes while few values were ever seen and is text once it holds more
        /// distinct values than codes do.
        #[test]
        fn a_dictionary_column_holds_what_a_list_of_strings_holds(
            steps in proptest::collection::vec((0u8..4, proptest::collection::vec(0usize..300, 0..40), 0usize..2), 1..16),
        ) {
            let (mut col, mut model) = (DictColumn::default(), Vec::<String>::new());
            let mut seen = std::collections::HashSet::new();
            for (kind, keys, wide) in steps {
                // Mostly a handful of values; now and then hundreds.
                let keys: Vec<usize> = keys.iter().map(|&k| if wide == 1 { k } else { k % 6 }).collect();
                if kind < 3 {
                    seen.extend(keys.iter().copied());
                }
                match kind {
                    0 | 1 => keys.iter().for_each(|&k| {
                        col.push(&dict_value(k));
                        model.push(dict_value(k));
                    }),
                    2 => {
                        let other: DictColumn = keys.iter().map(|&k| dict_value(k)).collect::<Vec<_>>().iter().map(String::as_str).collect();
                        col.extend_from(&other);
                        model.extend(keys.iter().map(|&k| dict_value(k)));
                    }
                    _ => {
                        let order: Vec<u32> = keys.iter().filter(|_| !model.is_empty()).map(|&k| (k % model.len()) as u32).collect();
                        col = col.take(&order);
                        model = order.iter().map(|&i| model[i as usize].clone()).collect();
                    }
                }
                proptest::prop_assert_eq!(col.len(), model.len());
                proptest::prop_assert!(col.iter().eq(model.iter().map(String::as_str)));
                let distinct: std::collections::HashSet<&String> = model.iter().collect();
                match col.dictionary() {
                    Some((codes, values)) => {
                        proptest::prop_assert!(values.len() <= DictColumn::MAX_VALUES);
                        proptest::prop_assert!(codes.iter().all(|&c| (c as usize) < values.len()));
                        let unique: std::collections::HashSet<&Box<str>> = values.iter().collect();
                        proptest::prop_assert_eq!(unique.len(), values.len());
                    }
                    None => proptest::prop_assert!(seen.len() > DictColumn::MAX_VALUES, "text with {} values seen", seen.len()),
                }
                if distinct.len() > DictColumn::MAX_VALUES {
                    proptest::prop_assert!(col.dictionary().is_none());
                }
                let same: DictColumn = model.iter().map(String::as_str).collect();
                proptest::prop_assert_eq!(&col, &same);
            }
        }
    }

    /// Titles past the codes' room turn to text in every way values arrive, and a column of text
    /// appended to one of codes (or the reverse) holds both in order.
    #[test]
    fn a_dictionary_column_turns_to_text_past_its_codes() {
        let many: Vec<String> = (0..300).map(dict_value).collect();
        let mut pushed = DictColumn::with_capacity(4);
        for v in &many[..DictColumn::MAX_VALUES] {
            pushed.push(v);
        }
        assert!(pushed.dictionary().is_some_and(|(_, values)| values.len() == DictColumn::MAX_VALUES));
        pushed.push(&many[DictColumn::MAX_VALUES]);
        assert!(pushed.dictionary().is_none());
        assert!(pushed.iter().eq(many[..=DictColumn::MAX_VALUES].iter().map(String::as_str)));
        let text: DictColumn = many.iter().map(String::as_str).collect();
        let mut few: DictColumn = ["นาย", "นาง"].into_iter().collect();
        few.extend_from(&text);
        assert!(few.dictionary().is_none());
        assert_eq!((few.len(), few.get(1), few.get(2), few.get(301)), (302, "นาง", "", "ด.ญ.299"));
        let mut text_first = text.clone();
        text_first.extend_from(&["นาย", "นาง"].into_iter().collect());
        assert_eq!((text_first.len(), text_first.get(300), text_first.get(301)), (302, "นาย", "นาง"));
        // Two dictionaries that fit apart but not together.
        let (a, b): (DictColumn, DictColumn) =
            (many[..200].iter().map(String::as_str).collect(), many[100..].iter().map(String::as_str).collect());
        let mut joined = a.clone();
        joined.extend_from(&b);
        assert!(a.dictionary().is_some() && b.dictionary().is_some() && joined.dictionary().is_none());
        assert!(joined.iter().eq(many[..200].iter().chain(&many[100..]).map(String::as_str)));
        // Room made for rows of either kind keeps every value.
        let mut room = DictColumn::default();
        room.make_room(&text, 1000);
        room.reserve_text(10);
        room.extend_from(&text);
        assert_eq!(room, text);
    }

    /// Persons with only a household and a given name, no source rows.
    fn persons_made_in_memory(rows: &[(u32, &str)]) -> Persons {
        let mut p = Persons::default();
        for &(h, name) in rows {
            p.household.push(h);
            p.citizen_id.push(None);
            p.title.push("");
            p.first_name.push(name);
            p.last_name.push("");
            p.sex.push(Sex::Unknown);
            p.birth_date.push(None);
            p.age.push(None);
            p.relation.push(Relation::Unknown);
            p.disabled.push(None);
            p.welfare_registered.push(None);
            p.welfare_validated.push(None);
            p.statuses.push(0, 0, 0);
        }
        p
    }

    #[test]
    fn persons_made_in_memory_sort_by_household() {
        // No source rows (data made in memory): sorting by household keeps that column empty.
        let p = persons_made_in_memory(&[(1, "b"), (0, "a")]);
        let h = Households { id: vec![crate::ids::HouseholdId(1), crate::ids::HouseholdId(2)], ..Default::default() };
        let x = Extract::new(Arc::new(Edition::bmn_2560()), h, p);
        assert_eq!(x.persons.first_name.iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(x.persons.source_row.is_empty());
        assert_eq!(x.members(1), 1..2);
    }

    #[test]
    fn select_and_append_keep_households_whole() {
        // Households 0, 1, 2 with 2, 0 and 1 members.
        let mut p = persons_made_in_memory(&[(0, "a0"), (0, "a1"), (2, "c0")]);
        p.source_row = vec![1, 2, 3];
        let h = Households {
            id: (1..=3).map(crate::ids::HouseholdId).collect(),
            village: ["10010101", "10010102", "10010103"].map(|v| v.parse().unwrap()).to_vec(),
            house_id: vec![None; 3],
            house_no: ["1", "2", "3"].into_iter().collect(),
            survey_year: vec![2561; 3],
            members: Vec::new(),
            income_per_member: vec![None; 3],
            statuses: StatusMatrix { present: 0, fail: vec![0; 3], na: vec![0; 3], missing: vec![0; 3] },
            source_row: vec![10, 20, 30],
        };
        let x = Extract::new(Arc::new(Edition::bmn_2560()), h, p);
        let names =
            |x: &Extract, h: usize| x.members(h).map(|k| x.persons.first_name.get(k).to_string()).collect::<Vec<_>>();
        let s = x.select(&[2, 1, 0]);
        assert_eq!(s.households.source_row, [30, 20, 10]);
        assert_eq!(s.households.house_no.iter().collect::<Vec<_>>(), ["3", "2", "1"]);
        assert_eq!(
            (names(&s, 0), names(&s, 1), names(&s, 2)),
            (vec!["c0".to_string()], vec![], vec!["a0".into(), "a1".into()])
        );
        assert_eq!(s.persons.household, [0, 2, 2]);
        // Two selections appended: the households of both, members still their own.
        let mut a = x.select(&[0]);
        a.append(x.select(&[2])).unwrap();
        assert_eq!(a.households.source_row, [10, 30]);
        assert_eq!(a.member_offsets, [0, 2, 3]);
        assert_eq!(names(&a, 1), ["c0"]);
        assert_eq!(a.persons.household, [0, 0, 1]);
        let none = x.select(&[]);
        assert!(none.households.is_empty() && none.persons.is_empty());
        assert_eq!(none.member_offsets, [0]);
    }

    #[test]
    fn status_decoding() {
        let mut m = StatusMatrix::new(0b1111, 1);
        m.push(0b0010, 0b0100, 0b1000);
        let got: Vec<_> = (0..5).map(|i| m.get(0, i)).collect();
        use IndicatorStatus::*;
        assert_eq!(got, [Some(Pass), Some(Fail), Some(NotApplicable), Some(Missing), None]);
    }
}
