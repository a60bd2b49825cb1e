//! Area measures at every level in one pass: headcount ratio H, intensity A, adjusted headcount
//! M0 = H × A, censored and uncensored headcount ratios, contributions, dimension counts,
//! vulnerable and severe bands, target poor, and standard errors.
//!
//! Every measure is a ratio of sums, so one parallel pass over the units fills sums per leaf area
//! (village), and every higher level is the sum of its children. With integer unit weights
//! (households, or household size for people) and not-applicable counted as not deprived, the
//! sums are integers and H, A and M0 are also given as exact fractions.
//!
//! ```
//! use tpmap::aggregate::{measures, AggregateOptions, Hierarchy};
//! use tpmap::score::{score, Cutoff, Profiles, Spec};
//! // Four units in two areas; two indicators of weight 1/2; poor at k = 1/2.
//! let p = Profiles::from_masks(vec![0b11, 0b01, 0b00, 0b10], vec![0; 4], vec![0; 4], vec![1.0; 4], 0b11);
//! let half: tpmap::rational::Rational = "1/2".parse()?;
//! let spec = Spec::from_weights(vec![(0, "d1".into(), "a".into(), half), (1, "d2".into(), "b".into(), half)], Cutoff::K(half))?;
//! let s = score(&p, &spec)?;
//! let areas = vec![vec!["north".to_string(), "north".into(), "south".into(), "south".into()]];
//! let h = Hierarchy::from_keys(vec!["region".into()], areas)?;
//! let m = measures(&p, &spec, &s, &h, &AggregateOptions::default())?;
//! assert_eq!(m.rows[0].poor, 3.0); // the country: three of four units
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use rayon::prelude::*;
use serde::Serialize;

use crate::areas::{AreaCode, AreaLevel};
use crate::error::{Error, Result};
use crate::rational::Rational;
use crate::score::{Profiles, Scores, Spec, UnitScore, UnitScores};

/// A column of keys (areas, breakdown groups), dictionary-encoded: each unit's code and the
/// distinct keys in order of first appearance. Reading 12.9 M households kept five strings per
/// household before; a code is four bytes and groups are found by comparing integers.
///
/// ```
/// use tpmap::aggregate::KeyColumn;
/// let c = KeyColumn::from_keys(["10", "10", "11", "10"])?;
/// assert_eq!(c.codes, vec![0, 0, 1, 0]);
/// assert_eq!(c.key(3), "10");
/// # Ok::<(), tpmap::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct KeyColumn {
    /// Per unit, the index of its key in `names`.
    pub codes: Vec<u32>,
    /// The distinct keys.
    pub names: Vec<String>,
    index: HashMap<String, u32>,
}

impl KeyColumn {
    /// A column of the given keys.
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<KeyColumn> {
        let mut c = KeyColumn::default();
        for k in keys {
            c.push(k)?;
        }
        Ok(c)
    }

    /// Appends a unit's key (without hashing when it repeats the previous unit's). An error when
    /// the column would hold more distinct keys than its `u32` codes number.
    pub fn push(&mut self, key: &str) -> Result<()> {
        if let Some(&last) = self.codes.last()
            && self.names[last as usize] == key
        {
            self.codes.push(last);
            return Ok(());
        }
        let code = self.code_of(key)?;
        self.codes.push(code);
        Ok(())
    }

    /// Appends a text column's values, empty for a null (as [`KeyColumn::push`] of each; a value
    /// whose Arrow view equals the previous one's — the same short text inline, or the same
    /// bytes of the same buffer — takes the previous code without comparing text).
    pub fn push_array(&mut self, a: &polars_arrow::array::Utf8ViewArray) -> Result<()> {
        use polars_arrow::array::Array;
        let views = a.views();
        if a.null_count() == 0 {
            // The common case, without a validity lookup per value.
            self.codes.reserve(a.len());
            let mut last = 0u32;
            for i in 0..a.len() {
                if i == 0 || views[i] != views[i - 1] {
                    self.push(a.value(i))?;
                    last = self.codes[self.codes.len() - 1];
                } else {
                    self.codes.push(last);
                }
            }
            return Ok(());
        }
        for i in 0..a.len() {
            match self.codes.last() {
                Some(&last) if i > 0 && a.is_valid(i) && a.is_valid(i - 1) && views[i] == views[i - 1] => {
                    self.codes.push(last)
                }
                _ => self.push(if a.is_valid(i) { a.value(i) } else { "" })?,
            }
        }
        Ok(())
    }

    /// The code of `key`, a new one when the key is new.
    fn code_of(&mut self, key: &str) -> Result<u32> {
        if let Some(&c) = self.index.get(key) {
            return Ok(c);
        }
        let c = u32::try_from(self.names.len()).map_err(|_| Error::Limit {
            file: String::new(),
            message: format!("more than {} distinct keys in one area or breakdown column", u32::MAX),
        })?;
        self.names.push(key.to_string());
        self.index.insert(key.to_string(), c);
        Ok(c)
    }

    /// Units in the column.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// True when the column has no units.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Unit `i`'s key.
    pub fn key(&self, i: usize) -> &str {
        &self.names[self.codes[i] as usize]
    }

    /// The units at `idx`, in that order (same dictionary).
    pub fn take(&self, idx: &[usize]) -> KeyColumn {
        KeyColumn { codes: idx.iter().map(|&i| self.codes[i]).collect(), ..self.clone_dictionary() }
    }

    /// Appends `other`'s units (its keys re-coded in this column's dictionary).
    pub fn append(&mut self, other: &KeyColumn) -> Result<()> {
        let recode: Vec<u32> = other.names.iter().map(|k| self.code_of(k)).collect::<Result<_>>()?;
        self.codes.extend(other.codes.iter().map(|&c| recode[c as usize]));
        Ok(())
    }

    fn clone_dictionary(&self) -> KeyColumn {
        KeyColumn { codes: Vec::new(), names: self.names.clone(), index: self.index.clone() }
    }
}

/// Area keys of units read in runs: each run of consecutive units with the same key at every
/// level, its first unit and its code at each level. Units sorted by area, as TPMAP extracts
/// are, make one run per village: nationally 84 k runs instead of four codes for each of 12.9 M
/// units (207 MB to fill, then read again to find the runs).
#[derive(Debug, Default)]
pub(crate) struct AreaRuns {
    /// First unit of each run.
    starts: Vec<usize>,
    /// Per level: the distinct keys, and each run's code.
    keys: Vec<KeyColumn>,
    /// Units added.
    units: usize,
    /// The codes of the unit being added.
    scratch: Vec<u32>,
}

impl AreaRuns {
    /// No units yet, keys at `levels` levels.
    pub(crate) fn new(levels: usize) -> AreaRuns {
        AreaRuns { keys: vec![KeyColumn::default(); levels], ..Default::default() }
    }

    /// Units added so far.
    pub(crate) fn units(&self) -> usize {
        self.units
    }

    /// Adds the next unit, with its key at each level.
    pub(crate) fn push<'k>(&mut self, keys: impl IntoIterator<Item = &'k str>) -> Result<()> {
        self.scratch.clear();
        for (col, key) in self.keys.iter_mut().zip(keys) {
            self.scratch.push(col.code_of(key)?);
        }
        self.add_run(self.units);
        self.units += 1;
        Ok(())
    }

    /// Adds the next units, one per row of `columns` (one per level, of equal length, without
    /// nulls; else nothing is added and the answer is false). Only the rows where a key changes
    /// are looked up, found on every core.
    pub(crate) fn push_arrays(&mut self, columns: &[&polars_arrow::array::Utf8ViewArray]) -> Result<bool> {
        use polars_arrow::array::Array;
        let n = columns.first().map_or(0, |c| c.len());
        if columns.len() != self.keys.len() || columns.iter().any(|c| c.len() != n || c.null_count() > 0) {
            return Ok(false);
        }
        // Equal views are equal keys; unequal views may still be equal keys (a key longer than 12
        // bytes is a view into the bytes, which a reader may copy for every row: every Thai
        // province name is), so their text is compared too.
        let changes: Vec<usize> = crate::in_pool(|| {
            (0..n)
                .into_par_iter()
                .with_min_len(1 << 14)
                .filter(|&i| {
                    i == 0
                        || columns.iter().any(|c| {
                            c.views()[i].as_u128() != c.views()[i - 1].as_u128() && c.value(i) != c.value(i - 1)
                        })
                })
                .collect()
        });
        for i in changes {
            self.scratch.clear();
            for (col, c) in self.keys.iter_mut().zip(columns) {
                self.scratch.push(col.code_of(c.value(i))?);
            }
            self.add_run(self.units + i);
        }
        self.units += n;
        Ok(true)
    }

    /// Adds the next `n` units given, per level, as its dictionary `values` and the units where
    /// the index into them changes (`(unit from 0, index)`: the first unit always, units in
    /// increasing order below `n`, indices in range; else nothing is added and the answer is
    /// false). Equal values at different indices (a dictionary may repeat a value) still make
    /// one run.
    pub(crate) fn push_changes(&mut self, values: &[&[String]], changes: &[&[(usize, u32)]], n: usize) -> Result<bool> {
        let valid = |v: &[String], c: &[(usize, u32)]| {
            c.first().map_or(n == 0, |&(first, _)| first == 0)
                && c.windows(2).all(|w| w[0].0 < w[1].0)
                && c.iter().all(|&(u, i)| u < n && (i as usize) < v.len())
        };
        if values.len() != self.keys.len()
            || changes.len() != self.keys.len()
            || values.iter().zip(changes).any(|(v, c)| !valid(v, c))
        {
            return Ok(false);
        }
        // Each level's dictionary index -> code, looked up once per group: a province's key
        // repeats at every change of its villages (nationally three in four lookups).
        let mut memo: Vec<Vec<Option<u32>>> = values.iter().map(|v| vec![None; v.len()]).collect();
        // Merged in unit order: at each unit where some level changes, every level's current key.
        let (mut next, mut current) = (vec![0usize; changes.len()], vec![0u32; changes.len()]);
        while let Some(unit) = changes.iter().zip(&next).filter_map(|(c, &k)| c.get(k).map(|&(u, _)| u)).min() {
            for ((c, k), cur) in changes.iter().zip(next.iter_mut()).zip(current.iter_mut()) {
                if let Some(&(u, i)) = c.get(*k)
                    && u == unit
                {
                    *cur = i;
                    *k += 1;
                }
            }
            self.scratch.clear();
            for (((col, v), &i), memo) in self.keys.iter_mut().zip(values).zip(&current).zip(&mut memo) {
                let code = match memo.get(i as usize) {
                    Some(&Some(code)) => code,
                    _ => {
                        let code = col.code_of(v.get(i as usize).map_or("", String::as_str))?;
                        if let Some(slot) = memo.get_mut(i as usize) {
                            *slot = Some(code);
                        }
                        code
                    }
                };
                self.scratch.push(code);
            }
            self.add_run(self.units + unit);
        }
        self.units += n;
        Ok(true)
    }

    /// Starts a run at `unit` with the codes in `scratch`, unless the last run has the same.
    fn add_run(&mut self, unit: usize) {
        let same =
            !self.starts.is_empty() && self.keys.iter().zip(&self.scratch).all(|(k, c)| k.codes.last() == Some(c));
        if !same {
            self.starts.push(unit);
            self.keys.iter_mut().zip(&self.scratch).for_each(|(k, &c)| k.codes.push(c));
        }
    }
}

/// Areas at several levels: each unit sits in one leaf; each leaf in one group per level.
#[derive(Clone, Debug)]
pub struct Hierarchy {
    /// Level names, coarsest first (the first is usually `country`).
    pub levels: Vec<String>,
    /// Group keys per level (unique within the level: for key columns, the path of keys).
    pub groups: Vec<Vec<String>>,
    /// Each group's own key at its level (a key column's value, or the area code).
    pub labels: Vec<Vec<String>>,
    /// Per level, the group of each leaf.
    pub leaf_group: Vec<Vec<u32>>,
    /// Leaf of each unit.
    pub unit_leaf: Vec<u32>,
}

impl Hierarchy {
    /// TPMAP's levels for units in villages: country, province, amphoe, tambon, village.
    pub fn tpmap(villages: &[AreaCode]) -> Hierarchy {
        // Households usually come sorted by village: then leaves and each unit's leaf come from
        // one linear pass; otherwise sort the distinct villages and search.
        let (leaves, unit_leaf): (Vec<AreaCode>, Vec<u32>) = if villages.is_sorted() {
            let mut leaves: Vec<AreaCode> = Vec::new();
            let unit_leaf = villages
                .iter()
                .map(|v| {
                    if leaves.last() != Some(v) {
                        leaves.push(*v);
                    }
                    leaves.len() as u32 - 1
                })
                .collect();
            (leaves, unit_leaf)
        } else {
            let mut leaves: Vec<AreaCode> = villages.to_vec();
            leaves.par_sort_unstable();
            leaves.dedup();
            let unit_leaf = villages.par_iter().map(|v| leaves.binary_search(v).expect("present") as u32).collect();
            (leaves, unit_leaf)
        };
        let levels = [AreaLevel::Province, AreaLevel::Amphoe, AreaLevel::Tambon];
        let mut names = vec!["country".to_string()];
        let mut groups = vec![vec!["TH".to_string()]];
        let mut leaf_group = vec![vec![0u32; leaves.len()]];
        for level in levels {
            let keys: Vec<AreaCode> = leaves.iter().map(|v| v.at(level).unwrap_or(*v)).collect();
            let mut uniq = keys.clone();
            uniq.dedup();
            leaf_group.push(keys.iter().map(|k| uniq.binary_search(k).expect("present") as u32).collect());
            groups.push(uniq.iter().map(|c| c.to_string()).collect());
            names.push(level.name().to_string());
        }
        names.push("village".to_string());
        groups.push(leaves.iter().map(|c| c.to_string()).collect());
        leaf_group.push((0..leaves.len() as u32).collect());
        Hierarchy { levels: names, labels: groups.clone(), groups, leaf_group, unit_leaf }
    }

    /// One level, the country, over `units` units (for measures without area columns).
    pub fn country(units: usize) -> Hierarchy {
        Hierarchy {
            levels: vec!["country".into()],
            groups: vec![vec!["all".into()]],
            labels: vec![vec!["all".into()]],
            leaf_group: vec![vec![0]],
            unit_leaf: vec![0; units],
        }
    }

    /// Levels from key columns: `keys[l][u]` is unit `u`'s key at level `l` (coarsest first).
    /// A `country` level covering everything is added first. A group is its key within its parent
    /// group, so equal names under different parents stay apart; group names are the key paths
    /// joined with `/`.
    pub fn from_keys(level_names: Vec<String>, keys: Vec<Vec<String>>) -> Result<Hierarchy> {
        let columns = keys.iter().map(|k| KeyColumn::from_keys(k.iter().map(String::as_str))).collect::<Result<_>>()?;
        Hierarchy::from_columns(level_names, columns)
    }

    /// Like [`Hierarchy::from_keys`], from dictionary-encoded key columns: the groups are found
    /// by integer codes, one hash lookup per change of key, not per unit.
    pub fn from_columns(level_names: Vec<String>, keys: Vec<KeyColumn>) -> Result<Hierarchy> {
        let n = keys.first().map_or(0, |k| k.len());
        if level_names.len() != keys.len() || keys.iter().any(|k| k.len() != n) {
            return Err(Error::Config("area key columns must have one value per unit".into()));
        }
        // Runs of units with the same key at every level (units usually come grouped by area):
        // the groups are found over the runs' first units, then each run's units take its leaf.
        let starts: Vec<usize> = crate::in_pool(|| {
            (0..n)
                .into_par_iter()
                .with_min_len(1 << 16)
                .filter(|&u| u == 0 || keys.iter().any(|k| k.codes[u] != k.codes[u - 1]))
                .collect()
        });
        let runs = keys
            .into_iter()
            .map(|k| KeyColumn { codes: starts.iter().map(|&u| k.codes[u]).collect(), names: k.names, index: k.index })
            .collect();
        Hierarchy::from_runs(level_names, AreaRuns { starts, keys: runs, units: n, scratch: Vec::new() })
    }

    /// Groups of units read in runs ([`AreaRuns`]): what [`Hierarchy::from_columns`] makes of
    /// the runs' keys repeated for every unit.
    pub(crate) fn from_runs(level_names: Vec<String>, runs: AreaRuns) -> Result<Hierarchy> {
        let AreaRuns { starts, keys, units: n, .. } = runs;
        let ordered = starts.first().is_none_or(|&s| s == 0)
            && starts.windows(2).all(|w| w[0] < w[1])
            && (n == 0) == starts.is_empty();
        if level_names.len() != keys.len()
            || keys.iter().any(|k| k.codes.len() != starts.len())
            || !ordered
            || starts.last().is_some_and(|&s| s >= n)
        {
            return Err(Error::Config("area key runs must have one key per level and run, in unit order".into()));
        }
        // Group ids and each unit's leaf are u32: at most one group per unit.
        if u32::try_from(n).is_err() {
            return Err(Error::Limit { file: String::new(), message: format!("more than {} units", u32::MAX) });
        }
        let mut levels = vec!["country".to_string()];
        let mut groups = vec![vec!["all".to_string()]];
        let mut labels = vec![vec!["all".to_string()]];
        let mut parents: Vec<Vec<u32>> = vec![vec![]];
        let mut gid = vec![0u32; starts.len()];
        for (l, name) in level_names.into_iter().enumerate() {
            let col = &keys[l];
            // Keys are codes made here, not text from a file: a fast hash is safe. Room for one
            // group per distinct key of the level (usually the level's count of groups).
            let room = col.names.len();
            let mut map: hashbrown::HashMap<(u32, u32), u32> = hashbrown::HashMap::with_capacity(room);
            let (mut names, mut up, mut own) =
                (Vec::with_capacity(room), Vec::with_capacity(room), Vec::with_capacity(room));
            let mut prev: Option<((u32, u32), u32)> = None;
            for (&code, g) in col.codes.iter().zip(gid.iter_mut()) {
                let key = (*g, code);
                // Units usually come grouped by area: skip the hash when the key repeats.
                let id = match prev {
                    Some((k, id)) if k == key => id,
                    _ => *map.entry(key).or_insert_with(|| {
                        let key_name = col.names[key.1 as usize].as_str();
                        names.push(match l {
                            0 => key_name.to_string(),
                            _ => format!("{}/{key_name}", groups[l][key.0 as usize]),
                        });
                        up.push(key.0);
                        own.push(key_name.to_string());
                        names.len() as u32 - 1
                    }),
                };
                prev = Some((key, id));
                *g = id;
            }
            levels.push(name);
            groups.push(names);
            labels.push(own);
            parents.push(up);
        }
        // Leaves are the finest groups; walk up the parents for every level.
        let leaves = groups.last().map_or(0, |g| g.len());
        let depth = levels.len();
        let mut leaf_group = vec![Vec::new(); depth];
        leaf_group[depth - 1] = (0..leaves as u32).collect();
        for l in (0..depth - 1).rev() {
            leaf_group[l] =
                leaf_group[l + 1].iter().map(|&g| if l == 0 { 0 } else { parents[l + 1][g as usize] }).collect();
        }
        // Each run's units take its leaf, the runs filled on every core.
        let mut unit_leaf = vec![0u32; n];
        let mut runs = Vec::with_capacity(starts.len());
        let mut rest = unit_leaf.as_mut_slice();
        for (r, &leaf) in gid.iter().enumerate() {
            let len = starts.get(r + 1).copied().unwrap_or(n) - starts[r];
            let (run, after) = std::mem::take(&mut rest).split_at_mut(len);
            runs.push((run, leaf));
            rest = after;
        }
        crate::in_pool(|| runs.into_par_iter().with_min_len(64).for_each(|(run, leaf)| run.fill(leaf)));
        Ok(Hierarchy { levels, groups, labels, leaf_group, unit_leaf })
    }

    /// Number of leaves.
    pub fn leaves(&self) -> usize {
        self.leaf_group.first().map_or(0, |g| g.len())
    }
}

/// Options for [`measures`].
#[derive(Clone, Debug)]
pub struct AggregateOptions {
    /// Lower bound of the "vulnerable" band: units not poor with a score of at least this (OPHI
    /// uses 20%, with k = 33.3%).
    pub vulnerable: Rational,
    /// Scores at or above this are "severe" (OPHI uses 50%).
    pub severe: Rational,
    /// Poisson-bootstrap replicates (0 = none) and their seed. At most [`MAX_BOOTSTRAP`], and the
    /// replicate sums (24 bytes per replicate and area, per thread) within [`MAX_BOOTSTRAP_BYTES`].
    pub bootstrap: (usize, u64),
    /// Per unit: stratum and primary sampling unit, for design-based standard errors.
    pub design: Option<(Vec<u32>, Vec<u32>)>,
    /// Per unit: the weight of the unit's target poor (e.g. members with a validated welfare
    /// card), counted when the unit is poor.
    pub target: Option<Vec<f64>>,
    /// Per unit: a stable key (a household ID, a hash of a unit-id column) the bootstrap draws
    /// the unit's replicate weights from, with the seed: the same unit gets the same weights
    /// however the data is ordered or split. Without keys, a unit's row position is its key.
    pub unit_keys: Option<Vec<u64>>,
}

impl AggregateOptions {
    /// TPMAP's options for an extract scored per `unit`: the target poor are the members meeting
    /// `welfare`, and bootstrap replicates are keyed by household ID, so that they are the same
    /// whatever the order of the rows or the split into parts (a whole run, a partitioned run and
    /// a Spark run use these).
    pub fn tpmap(
        x: &crate::extract::Extract,
        unit: crate::score::Unit,
        welfare: crate::score::Welfare,
        bootstrap: (usize, u64),
    ) -> AggregateOptions {
        AggregateOptions {
            bootstrap,
            target: Some(crate::score::target_weights(x, unit, welfare)),
            unit_keys: (bootstrap.0 > 0).then(|| x.households.id.iter().map(|h| h.0).collect()),
            ..Default::default()
        }
    }
}

impl Default for AggregateOptions {
    fn default() -> Self {
        AggregateOptions {
            vulnerable: Rational::new(1, 5),
            severe: Rational::new(1, 2),
            bootstrap: (0, 0),
            design: None,
            target: None,
            unit_keys: None,
        }
    }
}

// Fixed slots of the per-area sums.
const UNITS: usize = 0;
const POP: usize = 1;
const DROPPED: usize = 2;
const DROPPED_POP: usize = 3;
const POOR: usize = 4;
const SCORE: usize = 5;
const SCORE_SQ: usize = 6;
const SCORE_NUM: usize = 7;
const VULNERABLE: usize = 8;
const SEVERE: usize = 9;
const POOR_UNITS: usize = 10;
const TARGET: usize = 11;
// Sums of squared weights, for the analytic standard errors: Σw², Σw²·poor, Σw²·c, Σw²·c² (c the
// censored score).
const W2: usize = 12;
const W2_POOR: usize = 13;
const W2_SCORE: usize = 14;
const W2_SCORE_SQ: usize = 15;
// With exact scores (integer numerators over one denominator d) and whole weights, the score
// sums again as integers: Σw·n², Σw²·n, Σw²·n². Published figures are derived from these and
// SCORE_NUM, so they do not depend on the order units were added in (partitions, threads).
const SCORE_SQ_NUM: usize = 16;
const W2_SCORE_NUM: usize = 17;
const W2_SCORE_SQ_NUM: usize = 18;
const FIXED: usize = 19;

/// Names of the fixed per-area sums, in slot order (the columns of a partial result).
pub(crate) const FIXED_NAMES: [&str; FIXED] = [
    "units",
    "population",
    "dropped",
    "dropped_population",
    "poor",
    "score",
    "score_sq",
    "score_num",
    "vulnerable",
    "severe",
    "poor_units",
    "target",
    "w2",
    "w2_poor",
    "w2_score",
    "w2_score_sq",
    "score_sq_num",
    "w2_score_num",
    "w2_score_sq_num",
];

/// Measures of one area.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AreaMeasures {
    /// Level name.
    pub level: String,
    /// Area key.
    pub area: String,
    /// The area's own key at each level from the first below the country down to its own (a
    /// province row has one, a village row four): one column per level in the tables. Not in
    /// `measures.json`, where `area` names the row.
    #[serde(skip)]
    pub path: Vec<Option<String>>,
    /// Units counted (not dropped), unweighted.
    pub units: u64,
    /// Weighted units (population).
    pub population: f64,
    /// Units dropped for missing values.
    pub dropped: u64,
    /// Weighted poor.
    pub poor: f64,
    /// Weighted target poor (poor and meeting the welfare condition).
    pub target_poor: f64,
    /// Headcount ratio.
    pub h: f64,
    /// Intensity among the poor.
    pub a: f64,
    /// Adjusted headcount ratio.
    pub m0: f64,
    /// H, A and M0 as exact fractions, when the sums are integers.
    pub exact: Option<[String; 3]>,
    /// Standard errors of H, A and M0 as Stata's `mean` (and so mpitb) gives them for a sample of
    /// units with probability weights: linearised, with the `n/(n−1)` factor — for unit weights
    /// `√(H(1−H)/(n−1))`, the sample standard deviation over `√n`. A, a ratio (M0/H), by the delta
    /// method over the poor.
    pub se_analytic: [f64; 3],
    /// Bootstrap standard errors of H, A and M0 (Poisson bootstrap), when asked for.
    pub se_bootstrap: Option<[f64; 3]>,
    /// Design-based (linearised, with strata and PSUs) standard errors of H, A and M0, when a
    /// design was given.
    pub se_design: Option<[f64; 3]>,
    /// Per indicator (spec order): uncensored headcount ratio.
    pub uncensored: Vec<f64>,
    /// Per indicator: censored headcount ratio (deprived and poor).
    pub censored: Vec<f64>,
    /// Per indicator: analytic standard error of the censored headcount ratio (the convention of
    /// `se_analytic`: Stata's `mean` with probability weights, n/(n − 1)).
    pub se_censored: Vec<f64>,
    /// Per indicator: percentage contribution to M0.
    pub contribution: Vec<f64>,
    /// Per dimension: percentage contribution to M0.
    pub dimension_contribution: Vec<f64>,
    /// Per dimension: weighted poor deprived in it.
    pub dimension_poor: Vec<f64>,
    /// Per dimension: weighted target poor deprived in it.
    pub dimension_target: Vec<f64>,
    /// Weighted units in the vulnerable band.
    pub vulnerable: f64,
    /// Weighted units with severe deprivation.
    pub severe: f64,
}

/// All levels' measures.
#[derive(Clone, Debug, Serialize)]
pub struct Measures {
    /// The spec measured.
    pub spec: Spec,
    /// Level names, coarsest first.
    pub levels: Vec<String>,
    /// One row per level and area, levels in order.
    pub rows: Vec<AreaMeasures>,
}

pub(crate) struct Layout {
    items: usize,
    dims: usize,
    pub(crate) stride: usize,
}

impl Layout {
    /// Names of the per-area sums, in slot order: the fixed ones, then per indicator (spec
    /// order) the uncensored and censored weights, per dimension the poor and target poor
    /// deprived in it, and per indicator Σw² of the censored.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = FIXED_NAMES.iter().map(|s| s.to_string()).collect();
        v.extend((0..self.items).map(|i| format!("uncensored_{i}")));
        v.extend((0..self.items).map(|i| format!("censored_{i}")));
        v.extend((0..self.dims).map(|d| format!("dimension_poor_{d}")));
        v.extend((0..self.dims).map(|d| format!("dimension_target_{d}")));
        v.extend((0..self.items).map(|i| format!("censored_w2_{i}")));
        v
    }

    fn unc(&self, i: usize) -> usize {
        FIXED + i
    }
    fn cen(&self, i: usize) -> usize {
        FIXED + self.items + i
    }
    fn dim_poor(&self, d: usize) -> usize {
        FIXED + 2 * self.items + d
    }
    fn dim_target(&self, d: usize) -> usize {
        FIXED + 2 * self.items + self.dims + d
    }
    /// Σw² over the units poor and deprived in indicator `i` (its censored headcount's SE).
    fn cen_w2(&self, i: usize) -> usize {
        FIXED + 2 * self.items + 2 * self.dims + i
    }
}

/// Whether bootstrap score sums are integer numerators over `exact_den` (whole-number weights
/// and exact scores) rather than float scores.
fn scaled_boot(integral: bool, exact_den: Option<u64>) -> bool {
    integral && exact_den.is_some()
}

fn poisson1(seed: u64, unit: u64, rep: u64) -> f64 {
    // Poisson(1) by inversion of one hashed uniform: each replicate weight depends only on (seed,
    // unit, replicate), so the bootstrap runs in the same single parallel pass.
    let mut x = seed ^ unit.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ rep.wrapping_mul(0xD1B5_4A32_D192_ED03);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let u = (x >> 11) as f64 / (1u64 << 53) as f64;
    const CDF: [f64; 8] =
        [0.367_879_44, 0.735_758_88, 0.919_698_6, 0.981_011_84, 0.996_340_15, 0.999_405_8, 0.999_916_75, 0.999_989_75];
    CDF.iter().position(|&c| u < c).unwrap_or(8) as f64
}

/// Computes the measures of `spec` for every area of `h` in one pass over the units.
pub fn measures(
    profiles: &Profiles,
    spec: &Spec,
    scores: &Scores,
    hierarchy: &Hierarchy,
    options: &AggregateOptions,
) -> Result<Measures> {
    let (p, s, h, opts) = (profiles, scores, hierarchy, options);
    crate::in_pool(|| measures_in_pool(p, spec, s, h, opts))
}

/// Like [`measures`], reading each unit's identification through `s`: stored scores, or exact
/// ones worked out as the units are added ([`crate::score::ExactScorer`]).
pub(crate) fn measures_of(
    p: &Profiles,
    spec: &Spec,
    s: &impl UnitScores,
    h: &Hierarchy,
    opts: &AggregateOptions,
) -> Result<Measures> {
    crate::in_pool(|| measures_in_pool(p, spec, s, h, opts))
}

fn measures_in_pool(
    p: &Profiles,
    spec: &Spec,
    s: &impl UnitScores,
    h: &Hierarchy,
    opts: &AggregateOptions,
) -> Result<Measures> {
    let mut lap = crate::diagnostics::Lap::start();
    let l = leaf_sums(p, spec, s, h, opts)?;
    lap.lap("leaf sums");
    Ok(measures_of_sums(spec, h, &l))
}

/// Every level's measures from one pass's per-leaf sums ([`leaf_sums`]), computed on the shared
/// pool: the second half of [`measures_of`], for a caller that frees its units in between.
pub(crate) fn measures_of_sums(spec: &Spec, h: &Hierarchy, l: &LeafSums) -> Measures {
    let mut lap = crate::diagnostics::Lap::start();
    let rows = crate::in_pool(|| {
        roll_up(spec, h, &l.layout, &l.sums, &l.boot, l.reps, l.design.as_ref(), l.integral, l.exact_den)
    });
    lap.lap("rolled up");
    Measures { spec: spec.clone(), levels: h.levels.clone(), rows }
}

/// Population, poor and score sums per (leaf, stratum, PSU), for design-based standard errors.
pub(crate) type DesignSums = BTreeMap<(u32, u32, u32), [f64; 3]>;

/// The sums of one pass over the units, per leaf of the hierarchy.
pub(crate) struct LeafSums {
    pub layout: Layout,
    /// `layout.stride` sums per leaf.
    pub sums: Vec<f64>,
    /// Bootstrap replicate sums, `reps * 3` per leaf.
    pub boot: Vec<f64>,
    pub reps: usize,
    /// Design-based sums per (leaf, stratum, PSU).
    pub design: Option<DesignSums>,
    /// Every weight is a whole number (not negative).
    pub integral: bool,
    /// The score numerators' denominator, when scores are exact.
    pub exact_den: Option<u64>,
}

/// The layout of the per-area sums of `spec`.
pub(crate) fn layout(spec: &Spec) -> Layout {
    Layout {
        items: spec.items.len(),
        dims: spec.dimensions.len(),
        stride: FIXED + 3 * spec.items.len() + 2 * spec.dimensions.len(),
    }
}

pub(crate) fn leaf_sums(
    p: &Profiles,
    spec: &Spec,
    s: &impl UnitScores,
    h: &Hierarchy,
    opts: &AggregateOptions,
) -> Result<LeafSums> {
    let n = p.len();
    if s.units() != n || h.unit_leaf.len() != n {
        return Err(Error::Config("profiles, scores and areas must have one entry per unit".into()));
    }
    let lay = layout(spec);
    let leaves = h.leaves();
    let dim_masks: Vec<u64> = (0..lay.dims).map(|d| spec.dimension_mask(d)).collect();
    let mut item_of_bit = [0usize; 64];
    for (i, it) in spec.items.iter().enumerate() {
        item_of_bit[it.bit] = i;
    }
    let exact_den = s.exact_den();
    let den = exact_den.unwrap_or(1) as u128;
    let band = |us: &UnitScore, r: Rational| -> bool {
        match exact_den {
            Some(_) => us.num as u128 * r.den() >= r.num() * den,
            None => us.score >= r.to_f64(),
        }
    };
    let (reps, seed) = opts.bootstrap;
    check_bootstrap(reps, leaves)?;
    if opts.unit_keys.as_ref().is_some_and(|k| k.len() != p.len()) {
        return Err(Error::Config("unit keys must have one entry per unit".into()));
    }
    let key = |u: usize| opts.unit_keys.as_ref().map_or(u as u64, |k| k[u]);
    let integral = all_whole(&p.weight);
    // With whole-number weights and exact scores, the replicates' score sums are kept as integer
    // numerators (over the scores' denominator), like the other exact sums: parts of the data
    // then add up to the whole bit for bit.
    let exact_boot = scaled_boot(integral, exact_den);

    // One pass: one accumulator per thread over a contiguous range of units (units usually come
    // sorted by village, so each thread writes a few leaves at a time), then added together.
    // (`rayon::fold` would make an accumulator per split: hundreds of zeroed leaf tables.)
    let zero = || (sums_table(leaves * lay.stride), sums_table(leaves * reps * 3));
    // The rest of a unit's sums (all but its count, weight and squared weight).
    let add_rest = |u: usize, w: f64, us: &UnitScore, a: &mut [f64], boot: &mut [f64]| {
        let d = us.deprived;
        // Only the set bits: most units are deprived in nothing.
        let mut bits = d;
        while bits != 0 {
            a[lay.unc(item_of_bit[bits.trailing_zeros() as usize])] += w;
            bits &= bits - 1;
        }
        let poor = us.poor;
        let c = if poor { us.score } else { 0.0 };
        if poor {
            let t = opts.target.as_ref().map_or(w, |t| t[u]);
            a[POOR] += w;
            a[POOR_UNITS] += 1.0;
            a[SCORE] += w * c;
            a[SCORE_SQ] += w * c * c;
            a[W2_POOR] += w * w;
            a[W2_SCORE] += w * w * c;
            a[W2_SCORE_SQ] += w * w * c * c;
            a[TARGET] += t;
            if exact_den.is_some() {
                let x = us.num as f64;
                a[SCORE_NUM] += w * x;
                a[SCORE_SQ_NUM] += w * x * x;
                a[W2_SCORE_NUM] += w * w * x;
                a[W2_SCORE_SQ_NUM] += w * w * x * x;
            }
            let mut bits = d;
            while bits != 0 {
                let i = item_of_bit[bits.trailing_zeros() as usize];
                a[lay.cen(i)] += w;
                a[lay.cen_w2(i)] += w * w;
                bits &= bits - 1;
            }
            for (di, m) in dim_masks.iter().enumerate() {
                if d & m != 0 {
                    a[lay.dim_poor(di)] += w;
                    a[lay.dim_target(di)] += t;
                }
            }
        }
        if d != 0 {
            if band(us, opts.severe) {
                a[SEVERE] += w;
            }
            // Vulnerable: not poor, but with a score of at least `vulnerable`.
            if !poor && band(us, opts.vulnerable) {
                a[VULNERABLE] += w;
            }
        }
        let cb = if exact_boot && poor { us.num as f64 } else { c };
        for r in 0..reps {
            let m = poisson1(seed, key(u), r as u64) * w;
            let b = &mut boot[r * 3..r * 3 + 3];
            b[0] += m;
            if poor {
                b[1] += m;
                b[2] += m * cb;
            }
        }
    };
    // Units `units`, all of one leaf, into that leaf's sums `a` and bootstrap sums `boot`.
    // Every unit's count, weight and squared weight are added in unit order, as before, but in
    // registers: most units are deprived in nothing and need nothing else.
    let add_run = |units: Range<usize>, a: &mut [f64], boot: &mut [f64]| {
        let (mut count, mut pop, mut w2) = (a[UNITS], a[POP], a[W2]);
        for u in units {
            let w = p.weight[u];
            let us = s.unit(u);
            if us.dropped {
                a[DROPPED] += 1.0;
                a[DROPPED_POP] += w;
                continue;
            }
            count += 1.0;
            pop += w;
            w2 += w * w;
            if us.deprived != 0 || us.poor || reps > 0 {
                add_rest(u, w, &us, a, boot);
            }
        }
        (a[UNITS], a[POP], a[W2]) = (count, pop, w2);
    };
    let (sums, boot) = if h.unit_leaf.is_sorted() {
        by_leaf_ranges(&h.unit_leaf, leaves, lay.stride, reps * 3, &add_run)
    } else {
        per_thread(n, zero, |u, a, b| {
            let leaf = h.unit_leaf[u] as usize;
            let (st, bst) = (lay.stride, reps * 3);
            add_run(u..u + 1, &mut a[leaf * st..(leaf + 1) * st], &mut b[leaf * bst..(leaf + 1) * bst])
        })
    };

    // Design-based standard errors: sums per (leaf, stratum, PSU).
    // Ordered maps: the sums are then added in one order whatever the run (a hash map's order
    // changed the standard errors' last bits from run to run).
    let design_sums: Option<DesignSums> = opts.design.as_ref().map(|(strata, psu)| {
        let mut m = DesignSums::new();
        for u in 0..n {
            let us = s.unit(u);
            if us.dropped {
                continue;
            }
            let e = m.entry((h.unit_leaf[u], strata[u], psu[u])).or_default();
            let w = p.weight[u];
            e[0] += w;
            if us.poor {
                e[1] += w;
                e[2] += w * us.score;
            }
        }
        m
    });

    Ok(LeafSums { layout: lay, sums, boot, reps, design: design_sums, integral, exact_den })
}

/// Every level's measures from the per-leaf sums (and bootstrap and design sums) of `h`'s
/// leaves. `exact_den`: the common denominator of the score numerators, when scores are exact.
#[allow(clippy::too_many_arguments)]
pub(crate) fn roll_up(
    spec: &Spec,
    h: &Hierarchy,
    lay: &Layout,
    sums: &[f64],
    boot: &[f64],
    reps: usize,
    design_sums: Option<&DesignSums>,
    integral: bool,
    exact_den: Option<u64>,
) -> Vec<AreaMeasures> {
    let leaves = h.leaves();
    let den = exact_den.unwrap_or(1) as u128;
    let mut rows = Vec::with_capacity(h.groups.iter().map(Vec::len).sum());
    for (l, level) in h.levels.iter().enumerate() {
        let g = h.groups[l].len();
        // A leaf of each group, to find its ancestors' keys.
        let mut some_leaf = vec![0usize; g];
        for leaf in (0..leaves).rev() {
            some_leaf[h.leaf_group[l][leaf] as usize] = leaf;
        }
        // The leaves' own level (each group one leaf, in order) is the sums themselves; another
        // level's group adds its leaves' sums, in leaf order (as one pass over the leaves would),
        // each group on its own core: no table of every group to fill.
        let own = g == leaves && h.leaf_group[l].iter().enumerate().all(|(i, &gi)| gi as usize == i);
        let mut offsets = vec![0usize; g + 1];
        for &gi in &h.leaf_group[l] {
            offsets[gi as usize + 1] += 1;
        }
        for i in 0..g {
            offsets[i + 1] += offsets[i];
        }
        let mut members = vec![0usize; leaves];
        let mut next = offsets.clone();
        for (leaf, &gi) in h.leaf_group[l].iter().enumerate() {
            members[next[gi as usize]] = leaf;
            next[gi as usize] += 1;
        }
        let (stride, bstride) = (lay.stride, reps * 3);
        let group_sums = |gi: usize, a: &mut Vec<f64>, b: &mut Vec<f64>| {
            a.clear();
            b.clear();
            if own {
                a.extend_from_slice(&sums[gi * stride..(gi + 1) * stride]);
                b.extend_from_slice(&boot[gi * bstride..(gi + 1) * bstride]);
                return;
            }
            a.resize(stride, 0.0);
            b.resize(bstride, 0.0);
            for &leaf in &members[offsets[gi]..offsets[gi + 1]] {
                a.iter_mut().zip(&sums[leaf * stride..(leaf + 1) * stride]).for_each(|(x, y)| *x += y);
                b.iter_mut().zip(&boot[leaf * bstride..(leaf + 1) * bstride]).for_each(|(x, y)| *x += y);
            }
        };
        let design: Option<Vec<[f64; 3]>> = design_sums.map(|m| {
            let mut per: Vec<BTreeMap<(u32, u32), [f64; 3]>> = vec![BTreeMap::new(); g];
            for (&(leaf, st, psu), v) in m {
                let e = per[h.leaf_group[l][leaf as usize] as usize].entry((st, psu)).or_default();
                (0..3).for_each(|k| e[k] += v[k]);
            }
            per.iter().map(linearized_se).collect()
        });
        // Each group's row on every core (the rows' fractions, strings and vectors were most of
        // the roll-up: 0.12 s of 0.16 s for 92 k areas on one core).
        rows.par_extend((0..g).into_par_iter().with_min_len(256).map_init(
            || (Vec::new(), Vec::new()),
            |(a, bagg): &mut (Vec<f64>, Vec<f64>), gi| {
                // One pair of buffers per worker, not one per row.
                group_sums(gi, a, bagg);
                // Exact score sums (whole weights, integer numerators, all below 2^53, where f64
                // adds integers exactly): the float sums are replaced by the numerators over the
                // denominator, the same whatever order the units came in.
                let exact_sums = integral && exact_den.is_some() && a[SCORE_NUM] < 9.0e15;
                let d = den as f64;
                if exact_sums {
                    a[SCORE] = a[SCORE_NUM] / d;
                }
                if exact_sums && [SCORE_SQ_NUM, W2_SCORE_NUM, W2_SCORE_SQ_NUM].iter().all(|&k| a[k] < 9.0e15) {
                    a[SCORE_SQ] = a[SCORE_SQ_NUM] / (d * d);
                    a[W2_SCORE] = a[W2_SCORE_NUM] / d;
                    a[W2_SCORE_SQ] = a[W2_SCORE_SQ_NUM] / (d * d);
                }
                let a = &a[..];
                let pop = a[POP];
                let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { 0.0 };
                let hh = ratio(a[POOR], pop);
                let m0 = ratio(a[SCORE], pop);
                let aa = ratio(a[SCORE], a[POOR]);
                let exact = (exact_sums && pop > 0.0).then(|| {
                    let (q, pp, sn) = (a[POOR] as u128, pop as u128, a[SCORE_NUM] as u128);
                    let frac =
                        |x: u128, y: u128| if y == 0 { "0".to_string() } else { Rational::new(x, y).to_string() };
                    [frac(q, pp), frac(sn, q * den), frac(sn, pp * den)]
                });
                let units = a[UNITS];
                // From the integer sums where there are any (no cancellation noise), else from
                // the floating-point ones.
                let se_analytic = exact_sums
                    .then(|| exact_se(a, units, den))
                    .flatten()
                    .unwrap_or_else(|| analytic_se(a, units, [hh, aa, m0]));
                let se_bootstrap = (reps > 1).then(|| {
                    let (mut hs, mut as_, mut ms) =
                        (Vec::with_capacity(reps), Vec::with_capacity(reps), Vec::with_capacity(reps));
                    let boot_den = if scaled_boot(integral, exact_den) { den as f64 } else { 1.0 };
                    for r in 0..reps {
                        let b = &bagg[r * 3..r * 3 + 3];
                        hs.push(ratio(b[1], b[0]));
                        as_.push(ratio(b[2], b[1]) / boot_den);
                        ms.push(ratio(b[2], b[0]) / boot_den);
                    }
                    [sd(&hs), sd(&as_), sd(&ms)]
                });
                let contribution: Vec<f64> = spec
                    .items
                    .iter()
                    .enumerate()
                    .map(
                        |(i, it)| {
                            if m0 > 0.0 { 100.0 * it.weight.to_f64() * ratio(a[lay.cen(i)], pop) / m0 } else { 0.0 }
                        },
                    )
                    .collect();
                let dimension_contribution = (0..lay.dims)
                    .map(|d| {
                        spec.items.iter().zip(&contribution).filter(|(it, _)| it.dimension == d).map(|(_, c)| c).sum()
                    })
                    .collect();
                AreaMeasures {
                    level: level.clone(),
                    area: h.groups[l][gi].clone(),
                    path: (1..=l).map(|k| Some(h.labels[k][h.leaf_group[k][some_leaf[gi]] as usize].clone())).collect(),
                    units: units as u64,
                    population: pop,
                    dropped: a[DROPPED] as u64,
                    poor: a[POOR],
                    target_poor: a[TARGET],
                    h: hh,
                    a: aa,
                    m0,
                    exact,
                    se_analytic,
                    se_bootstrap,
                    se_design: design.as_ref().map(|d| d[gi]),
                    uncensored: (0..lay.items).map(|i| ratio(a[lay.unc(i)], pop)).collect(),
                    censored: (0..lay.items).map(|i| ratio(a[lay.cen(i)], pop)).collect(),
                    se_censored: (0..lay.items)
                        .map(|i| {
                            let (x, x2) = (a[lay.cen(i)], a[lay.cen_w2(i)]);
                            integral
                                .then(|| exact_share_se(units, [pop, a[W2], x, x2]))
                                .flatten()
                                .unwrap_or_else(|| share_se(units, pop, a[W2], ratio(x, pop), x2))
                        })
                        .collect(),
                    contribution,
                    dimension_contribution,
                    dimension_poor: (0..lay.dims).map(|d| a[lay.dim_poor(d)]).collect(),
                    dimension_target: (0..lay.dims).map(|d| a[lay.dim_target(d)]).collect(),
                    vulnerable: a[VULNERABLE],
                    severe: a[SEVERE],
                }
            },
        ));
    }
    rows
}

/// A table of `len` zero sums, written as zeros now. `vec![0.0; len]` takes fresh pages from the
/// system unwritten: the first `+=` then reads the shared zero page and its write copies it,
/// which flushes the page from every core's TLB (an interrupt to each). Nationally that doubled
/// the per-village sums (0.09 s to 0.2 s) once no freed memory was at hand to reuse.
pub(crate) fn sums_table(len: usize) -> Vec<f64> {
    let mut v = Vec::with_capacity(len);
    crate::extend_zeroed(&mut v, len, 0.0);
    v
}

/// Per-leaf sums when units come sorted by leaf (as extracts sorted by area do): the units are cut
/// into one contiguous range per thread at leaf boundaries, so each thread adds into its own
/// leaves of the one result, and no thread needs a table of every leaf (two 54 MB tables at
/// 84 k villages, zeroed, faulted in and added together, were most of the pass).
///
/// `add(units, sums, boot)` adds a run of units of one leaf into that leaf's `stride` sums and
/// `bstride` bootstrap sums. (A run at a time: the leaf's slices are found once per run, and the
/// caller can keep its running totals in registers.)
pub(crate) fn by_leaf_ranges<F>(
    unit_leaf: &[u32],
    leaves: usize,
    stride: usize,
    bstride: usize,
    add: &F,
) -> (Vec<f64>, Vec<f64>)
where
    F: Fn(Range<usize>, &mut [f64], &mut [f64]) + Sync,
{
    let n = unit_leaf.len();
    let parts = rayon::current_num_threads().max(1);
    let mut cuts = vec![0usize];
    for t in 1..parts {
        let mut c = (n * t / parts).max(cuts[cuts.len() - 1]);
        while c > 0 && c < n && unit_leaf[c] == unit_leaf[c - 1] {
            c += 1;
        }
        cuts.push(c);
    }
    cuts.push(n);
    let mut sums = sums_table(leaves * stride);
    let mut boot = sums_table(leaves * bstride);
    // Each range's leaves: from its first unit's leaf to the next range's first leaf.
    let mut jobs = Vec::with_capacity(parts);
    let (mut rest, mut brest) = (sums.as_mut_slice(), boot.as_mut_slice());
    let mut base = 0usize;
    for t in 0..parts {
        let (lo, hi) = (cuts[t], cuts[t + 1]);
        let end = if hi < n { unit_leaf[hi] as usize } else { leaves };
        let (mine, more) = std::mem::take(&mut rest).split_at_mut((end - base) * stride);
        let (bmine, bmore) = std::mem::take(&mut brest).split_at_mut((end - base) * bstride);
        jobs.push((lo..hi, mine, bmine, base));
        (rest, brest, base) = (more, bmore, end);
    }
    jobs.into_par_iter().for_each(|(units, acc, b, base)| {
        let mut u = units.start;
        while u < units.end {
            let leaf = unit_leaf[u];
            let run = u + unit_leaf[u..units.end].iter().position(|&l| l != leaf).unwrap_or(units.end - u);
            let l = leaf as usize - base;
            add(u..run, &mut acc[l * stride..(l + 1) * stride], &mut b[l * bstride..(l + 1) * bstride]);
            u = run;
        }
    });
    (sums, boot)
}

/// Runs `add(u, acc, boot)` for every unit, with one pair of accumulators per thread over
/// contiguous ranges, and returns their element-wise sums.
pub(crate) fn per_thread<F>(n: usize, zero: impl Fn() -> (Vec<f64>, Vec<f64>) + Sync, add: F) -> (Vec<f64>, Vec<f64>)
where
    F: Fn(usize, &mut Vec<f64>, &mut Vec<f64>) + Sync,
{
    let parts = rayon::current_num_threads().max(1);
    let chunk = n.div_ceil(parts).max(1);
    let partials: Vec<(Vec<f64>, Vec<f64>)> = (0..parts)
        .into_par_iter()
        .map(|t| {
            let (mut a, mut b) = zero();
            for u in t * chunk..((t + 1) * chunk).min(n) {
                add(u, &mut a, &mut b);
            }
            (a, b)
        })
        .collect();
    let mut it = partials.into_iter();
    let (mut a, mut b) = it.next().unwrap_or_else(zero);
    for (x, y) in it {
        a.par_iter_mut().zip(x.par_iter()).for_each(|(p, q)| *p += q);
        b.par_iter_mut().zip(y.par_iter()).for_each(|(p, q)| *p += q);
    }
    (a, b)
}

/// Stata's linearised standard errors of the means H = Σwp/Σw and M0 = Σwc/Σw and of the ratio
/// A = Σwc/Σwp, for `n` units with probability weights: `Var = n/(n−1) · Σ w²(x − x̄)² / (Σw)²`
/// (for A, over the poor, with Σwp below). From the area's sums, without a second pass.
fn analytic_se(a: &[f64], n: f64, [h, aa, m0]: [f64; 3]) -> [f64; 3] {
    if n < 2.0 || a[POP] <= 0.0 {
        return [0.0; 3];
    }
    let f = n / (n - 1.0);
    let (w, w2, w2p, w2c, w2c2) = (a[POP], a[W2], a[W2_POOR], a[W2_SCORE], a[W2_SCORE_SQ]);
    // Σw²(p−H)² with p ∈ {0, 1}: Σw²p − 2HΣw²p + H²Σw².
    let var_h = f * (w2p - 2.0 * h * w2p + h * h * w2).max(0.0) / (w * w);
    // Σw²(c−M0)²: c is 0 for the non-poor.
    let var_m0 = f * (w2c2 - 2.0 * m0 * w2c + m0 * m0 * w2).max(0.0) / (w * w);
    // A = Σwc/Σwp: z = p(c − A)/Σwp per unit, which sums to 0.
    let var_a =
        if a[POOR] > 0.0 { f * (w2c2 - 2.0 * aa * w2c + aa * aa * w2p).max(0.0) / (a[POOR] * a[POOR]) } else { 0.0 };
    [var_h.sqrt(), var_a.sqrt(), var_m0.sqrt()]
}

/// An f64 that holds a whole number below 2^53, as an `i64` (one instruction; a conversion to
/// `i128` is a library call, four of them for each of the 1.6 M shares' standard errors of a
/// national roll-up).
fn whole(x: f64) -> Option<i64> {
    ((0.0..9.0e15).contains(&x) && is_whole(x)).then_some(x as i64)
}

/// A finite whole number, not negative. (`fract()` is a call into a software `trunc` in this
/// build. Below 2^52, `x + 2^52` lands where floats are one apart, so the addition rounds `x` to
/// a whole number and subtracting 2^52 again gives `x` back exactly when it was whole; from 2^52
/// on every float is whole. Additions and comparisons only, which the compiler vectorises: a
/// round trip through `u64` did not, and checking the country's weights took 24 ms.)
fn is_whole(x: f64) -> bool {
    const TWO_52: f64 = 4_503_599_627_370_496.0;
    x.is_finite() && x >= 0.0 && (x >= TWO_52 || (x + TWO_52) - TWO_52 == x)
}

/// Whether every weight is whole ([`is_whole`]), on every core: blocks checked without stopping
/// at the first miss, so each block is one vectorised loop.
fn all_whole(weights: &[f64]) -> bool {
    weights.par_chunks(1 << 14).all(|c| c.iter().fold(true, |all, &w| all & is_whole(w)))
}

/// `x2·t² − 2·x·t·x1 + x²·t2` in 128 bits: `t² · Σ v²(z − x/t)²` for the sums `t = Σv`,
/// `t2 = Σv²`, `x = Σv·z`, `x1 = Σv²·z`, `x2 = Σv²·z²` (the numerator of a linearised
/// variance), at least 0, as the nearest f64. `None` when a product does not fit.
fn spread(x2: i64, x1: i64, x: i64, t: i64, t2: i64) -> Option<f64> {
    // Most areas' products fit 64 bits, where a checked multiply is one instruction (the 128-bit
    // ones were a fifth of the national roll-up), and so does the result, whose conversion is
    // then one instruction too (an i128's is a library call); the same whole number either way,
    // rounded the same.
    let small = || {
        let a = x2.checked_mul(t)?.checked_mul(t)?;
        let b = x.checked_mul(t)?.checked_mul(x1)?.checked_mul(2)?;
        let c = x.checked_mul(x)?.checked_mul(t2)?;
        a.checked_sub(b)?.checked_add(c)
    };
    if let Some(v) = small() {
        return Some(v.max(0) as f64);
    }
    let [x2, x1, x, t, t2] = [x2, x1, x, t, t2].map(i128::from);
    let a = x2.checked_mul(t)?.checked_mul(t)?;
    let b = x.checked_mul(t)?.checked_mul(x1)?.checked_mul(2)?;
    let c = x.checked_mul(x)?.checked_mul(t2)?;
    Some(a.checked_sub(b)?.checked_add(c)?.max(0) as f64)
}

/// [`analytic_se`] from the integer sums (whole weights, exact scores over `den`): each
/// variance's numerator is exact, so a variance of zero is 0 rather than ±1e-9 left over from
/// cancellation. `None` when a sum is not a whole number or a product does not fit 128 bits.
fn exact_se(a: &[f64], n: f64, den: u128) -> Option<[f64; 3]> {
    if n < 2.0 || a[POP] <= 0.0 {
        return Some([0.0; 3]);
    }
    let (w, w2, p, w2p) = (whole(a[POP])?, whole(a[W2])?, whole(a[POOR])?, whole(a[W2_POOR])?);
    let (s, w2c, w2c2) = (whole(a[SCORE_NUM])?, whole(a[W2_SCORE_NUM])?, whole(a[W2_SCORE_SQ_NUM])?);
    let f = n / (n - 1.0);
    let d2 = (den as f64) * (den as f64);
    let (wf, pf) = (w as f64, p as f64);
    let var = |num: f64, scale: f64| f * num / scale;
    let var_h = var(spread(w2p, w2p, p, w, w2)?, wf * wf * wf * wf);
    let var_m0 = var(spread(w2c2, w2c, s, w, w2)?, d2 * wf * wf * wf * wf);
    let var_a = if p > 0 { var(spread(w2c2, w2c, s, p, w2p)?, d2 * pf * pf * pf * pf) } else { 0.0 };
    Some([var_h.sqrt(), var_a.sqrt(), var_m0.sqrt()])
}

/// [`share_se`] from whole-number sums `[Σw, Σw², Σw·x, Σw²·x]`.
fn exact_share_se(n: f64, [w, w2, x, w2x]: [f64; 4]) -> Option<f64> {
    if n < 2.0 || w <= 0.0 {
        return Some(0.0);
    }
    let (wi, w2i, xi, w2xi) = (whole(w)?, whole(w2)?, whole(x)?, whole(w2x)?);
    let num = spread(w2xi, w2xi, xi, wi, w2i)?;
    Some((n / (n - 1.0) * num / (w * w * w * w)).sqrt())
}

/// The analytic SE of a weighted share `x̄ = Σw·x/Σw` of a 0/1 variable over `n` units, from Σw
/// (`w`), Σw² (`w2`) and Σw² over the units with x = 1 (`w2x`): the convention of [`analytic_se`].
fn share_se(n: f64, w: f64, w2: f64, share: f64, w2x: f64) -> f64 {
    if n < 2.0 || w <= 0.0 {
        return 0.0;
    }
    (n / (n - 1.0) * (w2x - 2.0 * share * w2x + share * share * w2).max(0.0) / (w * w)).sqrt()
}

fn sd(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// Taylor-linearised standard errors of H = poor/pop, A = score/poor and M0 = score/pop from PSU
/// totals `[pop, poor, score]` within strata (with-replacement PSU sampling; a stratum with one
/// PSU contributes nothing).
fn linearized_se(psus: &BTreeMap<(u32, u32), [f64; 3]>) -> [f64; 3] {
    let total: [f64; 3] = psus.values().fold([0.0; 3], |t, v| [t[0] + v[0], t[1] + v[1], t[2] + v[2]]);
    if total[0] <= 0.0 {
        return [0.0; 3];
    }
    let mut by_stratum: BTreeMap<u32, Vec<[f64; 3]>> = BTreeMap::new();
    for (&(st, _), v) in psus {
        by_stratum.entry(st).or_default().push(*v);
    }
    let mut out = [0.0; 3];
    // (numerator, denominator) of each ratio: H = poor/pop, A = score/poor, M0 = score/pop.
    for (k, (y, x)) in [(1usize, 0usize), (2, 1), (2, 0)].into_iter().enumerate() {
        if total[x] <= 0.0 {
            continue;
        }
        let r = total[y] / total[x];
        let mut var = 0.0;
        for list in by_stratum.values() {
            let nh = list.len() as f64;
            if nh < 2.0 {
                continue;
            }
            let z: Vec<f64> = list.iter().map(|v| (v[y] - r * v[x]) / total[x]).collect();
            let mean = z.iter().sum::<f64>() / nh;
            var += nh / (nh - 1.0) * z.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>();
        }
        out[k] = var.sqrt();
    }
    out
}

impl Measures {
    /// One row per level and area: `level, area, units, population, poor, H, A, M0`, then per
    /// indicator `<label>_uncensored`, `<label>_censored`, `<label>_contribution`, then the exact
    /// fractions, dropped units, target poor, standard errors, per-dimension columns and bands.
    pub fn to_frame(&self) -> Result<polars::prelude::DataFrame> {
        use polars::prelude::*;
        // Each column is a recipe, run on every core at the end: gathering a column walks all
        // rows (92,633 nationally, each with vectors of its own), ~110 times.
        type Recipe<'a> = Box<dyn Fn() -> Column + Send + Sync + 'a>;
        let r = &self.rows;
        fn f<'a>(
            r: &'a [AreaMeasures],
            name: String,
            get: impl Fn(&AreaMeasures) -> f64 + Send + Sync + 'a,
        ) -> Recipe<'a> {
            Box::new(move || Column::new(name.as_str().into(), r.iter().map(&get).collect::<Vec<f64>>()))
        }
        let opt = |name: &'static str, get: fn(&AreaMeasures) -> Option<f64>| -> Recipe<'_> {
            Box::new(move || Column::new(name.into(), r.iter().map(get).collect::<Vec<Option<f64>>>()))
        };
        let mut cols: Vec<Recipe<'_>> = vec![
            Box::new(|| Column::new("level".into(), r.iter().map(|x| x.level.as_str()).collect::<Vec<_>>())),
            Box::new(|| Column::new("area".into(), r.iter().map(|x| x.area.as_str()).collect::<Vec<_>>())),
        ];
        // One column per level below the country (`province`, `amphoe`, ...): the row's key at
        // that level, empty below its own. Named `area_<level>` if a level is named like another
        // column.
        let reserved = ["level", "area", "units", "population", "population_share", "poor", "H", "A", "M0"];
        for (k, name) in self.levels.iter().enumerate().skip(1) {
            let name = if reserved.contains(&name.as_str()) { format!("area_{name}") } else { name.clone() };
            cols.push(Box::new(move || {
                Column::new(
                    name.as_str().into(),
                    r.iter().map(|x| x.path.get(k - 1).and_then(|p| p.as_deref())).collect::<Vec<Option<&str>>>(),
                )
            }));
        }
        let total = r.first().map_or(0.0, |x| x.population);
        cols.push(Box::new(|| Column::new("units".into(), r.iter().map(|x| x.units).collect::<Vec<_>>())));
        cols.extend([
            f(r, "population".into(), |x| x.population),
            // The area's share of the population of the whole (mpitb's population share).
            f(r, "population_share".into(), move |x| if total > 0.0 { x.population / total } else { 0.0 }),
            f(r, "poor".into(), |x| x.poor),
            f(r, "H".into(), |x| x.h),
            f(r, "A".into(), |x| x.a),
            f(r, "M0".into(), |x| x.m0),
        ]);
        for (i, it) in self.spec.items.iter().enumerate() {
            let w = it.weight.to_f64();
            cols.push(f(r, format!("{}_uncensored", it.label), move |x| x.uncensored[i]));
            cols.push(f(r, format!("{}_censored", it.label), move |x| x.censored[i]));
            // Percentage contribution to M0 (mpitb's pctb) and the absolute one, w·censored
            // headcount (mpitb's actb), which sum over the indicators to M0.
            cols.push(f(r, format!("{}_contribution", it.label), move |x| x.contribution[i]));
            cols.push(f(r, format!("{}_actb", it.label), move |x| w * x.censored[i]));
        }
        for (k, name) in ["H_exact", "A_exact", "M0_exact"].into_iter().enumerate() {
            cols.push(Box::new(move || {
                Column::new(
                    name.into(),
                    r.iter().map(|x| x.exact.as_ref().map(|e| e[k].as_str())).collect::<Vec<Option<&str>>>(),
                )
            }));
        }
        cols.push(Box::new(|| Column::new("dropped".into(), r.iter().map(|x| x.dropped).collect::<Vec<_>>())));
        cols.push(f(r, "target_poor".into(), |x| x.target_poor));
        cols.push(f(r, "se_H".into(), |x| x.se_analytic[0]));
        cols.push(f(r, "se_A".into(), |x| x.se_analytic[1]));
        cols.push(f(r, "se_M0".into(), |x| x.se_analytic[2]));
        for (i, it) in self.spec.items.iter().enumerate() {
            cols.push(f(r, format!("se_{}_censored", it.label), move |x| x.se_censored[i]));
        }
        if r.iter().any(|x| x.se_bootstrap.is_some()) {
            cols.push(opt("se_H_bootstrap", |x| x.se_bootstrap.map(|s| s[0])));
            cols.push(opt("se_A_bootstrap", |x| x.se_bootstrap.map(|s| s[1])));
            cols.push(opt("se_M0_bootstrap", |x| x.se_bootstrap.map(|s| s[2])));
        }
        if r.iter().any(|x| x.se_design.is_some()) {
            cols.push(opt("se_H_design", |x| x.se_design.map(|s| s[0])));
            cols.push(opt("se_A_design", |x| x.se_design.map(|s| s[1])));
            cols.push(opt("se_M0_design", |x| x.se_design.map(|s| s[2])));
        }
        for (d, name) in self.spec.dimensions.iter().enumerate() {
            // A dimension named like an indicator (a one-indicator dimension, say) would give two
            // columns of one name: its columns then carry a `dimension_` prefix.
            let clash = self.spec.items.iter().any(|it| &it.label == name);
            let name = if clash { format!("dimension_{name}") } else { name.clone() };
            cols.push(f(r, format!("{name}_poor"), move |x| x.dimension_poor[d]));
            cols.push(f(r, format!("{name}_target_poor"), move |x| x.dimension_target[d]));
            cols.push(f(r, format!("{name}_contribution"), move |x| x.dimension_contribution[d]));
        }
        cols.push(f(r, "vulnerable".into(), |x| x.vulnerable));
        cols.push(f(r, "severe".into(), |x| x.severe));
        let cols: Vec<Column> = crate::in_pool(|| cols.par_iter().map(|make| make()).collect());
        Ok(DataFrame::new_infer_height(cols)?)
    }

    /// Writes `measures.csv` and `measures.parquet` (every level and area) and `measures.json`
    /// ([`Measures::summary`]: the spec, the levels, how many areas each has, and the whole's row)
    /// into `dir`. Per-area data lives in the tables: at the national scale a JSON of every area
    /// took 160 MB.
    pub fn write(&self, dir: &std::path::Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut lap = crate::diagnostics::Lap::start();
        let df = self.to_frame()?;
        lap.lap("measures framed");
        // The two tables at once (national: 92,633 areas; the CSV is 78 MB, the kernel's copy of
        // it the largest part of `tpmap mpi`'s writing).
        let (parquet, csv) = crate::in_pool(|| {
            rayon::join(
                || crate::frame::write_parquet(&mut df.clone(), &dir.join("measures.parquet"), &[]),
                || {
                    crate::frame::write_csv(
                        &mut df.clone(),
                        &dir.join("measures.csv"),
                        &[],
                        crate::ingest::Encoding::Utf8,
                    )
                },
            )
        });
        parquet?;
        csv?;
        lap.lap("measures.parquet and measures.csv written");
        let path = dir.join("measures.json");
        std::fs::write(&path, serde_json::to_string_pretty(&self.summary())?).map_err(|e| Error::io(&path, e))?;
        lap.lap("measures.json written");
        Ok(())
    }

    /// A small summary, whatever the number of areas: format name and version, the spec, the
    /// levels with their number of areas, the first row (the whole: country, or the first
    /// level's single group) and the tables holding every area.
    pub fn summary(&self) -> serde_json::Value {
        let areas: Vec<serde_json::Value> = self
            .levels
            .iter()
            .map(|l| serde_json::json!({ "level": l, "areas": self.rows.iter().filter(|r| &r.level == l).count() }))
            .collect();
        serde_json::json!({
            "format": "tpmap-measures-summary",
            "version": 1,
            "spec": self.spec,
            "levels": areas,
            "whole": self.rows.first(),
            "tables": ["measures.parquet", "measures.csv"],
        })
    }
}

/// Most bootstrap replicates (mpitb and Stata users run 100 to 1,000).
pub const MAX_BOOTSTRAP: usize = 10_000;
/// Most memory the bootstrap's replicate sums may take: 4 GiB.
pub const MAX_BOOTSTRAP_BYTES: u64 = 4 << 30;

/// An error when `reps` is more bootstrap replicates than [`MAX_BOOTSTRAP`].
pub(crate) fn check_bootstrap_count(reps: usize) -> Result<()> {
    check_bootstrap(reps, 0)
}

fn check_bootstrap(reps: usize, areas: usize) -> Result<()> {
    if reps > MAX_BOOTSTRAP {
        return Err(Error::Limit {
            file: String::new(),
            message: format!("{reps} bootstrap replicates: at most {MAX_BOOTSTRAP} are allowed"),
        });
    }
    let threads = polars_core::runtime::THREAD_POOL.current_num_threads().max(1) as u64;
    let bytes = (reps as u64).saturating_mul(areas as u64).saturating_mul(24).saturating_mul(threads);
    if bytes > MAX_BOOTSTRAP_BYTES {
        return Err(Error::Limit {
            file: String::new(),
            message: format!(
                "{reps} bootstrap replicates over {areas} areas would take {:.1} GiB of replicate sums (more than {} GiB): use fewer replicates or coarser areas",
                bytes as f64 / (1u64 << 30) as f64,
                MAX_BOOTSTRAP_BYTES >> 30
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::{Cutoff, score};

    #[test]
    fn exact_standard_errors_agree_with_the_float_ones_and_are_zero_when_nothing_varies() {
        // Units with weights 1-5 and varied profiles: the exact and the float forms agree.
        let (_, spec) = af();
        let n = 300;
        let p = varied(n);
        let s = score(&p, &spec).unwrap();
        let h = Hierarchy::country(n);
        let l = leaf_sums(&p, &spec, &s, &h, &AggregateOptions::default()).unwrap();
        let a = &l.sums[..l.layout.stride];
        let exact = exact_se(a, a[UNITS], u128::from(s.denominator)).unwrap();
        let row = &measures(&p, &spec, &s, &h, &AggregateOptions::default()).unwrap().rows[0];
        let float = analytic_se(a, a[UNITS], [row.h, row.a, row.m0]);
        for (e, f) in exact.iter().zip(float) {
            assert!(e > &0.0 && (e - f).abs() <= 1e-12 * f, "{e} {f}");
        }
        assert_eq!(row.se_analytic, exact);
        // Every unit poor with the same score: H, A and M0 do not vary, their SEs are exactly 0.
        let same = Profiles::from_masks(vec![0b0011; 50], vec![0; 50], vec![0; 50], vec![3.0; 50], 0b1111);
        let s = score(&same, &spec).unwrap();
        let row = &measures(&same, &spec, &s, &Hierarchy::country(50), &AggregateOptions::default()).unwrap().rows[0];
        assert_eq!(row.se_analytic, [0.0; 3]);
        assert!(row.se_censored.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn sorted_and_unsorted_units_give_the_same_sums() {
        // Sorted by area, units take the per-leaf-range pass; shuffled, the per-thread tables.
        let (_, spec) = af();
        let n = 300;
        let p = varied(n);
        let keys: Vec<String> = (0..n).map(|u| format!("area{}", u % 7)).collect();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&u| (keys[u].clone(), u));
        let pick = |v: &Vec<u64>| order.iter().map(|&u| v[u]).collect::<Vec<u64>>();
        let sorted = Profiles {
            fail: pick(&p.fail),
            na: pick(&p.na),
            missing: pick(&p.missing),
            present: p.present,
            weight: order.iter().map(|&u| p.weight[u]).collect(),
        };
        let sorted_keys: Vec<String> = order.iter().map(|&u| keys[u].clone()).collect();
        let run = |p: &Profiles, keys: Vec<String>| {
            let h = Hierarchy::from_keys(vec!["area".into()], vec![keys]).unwrap();
            let s = score(p, &spec).unwrap();
            let mut rows = measures(p, &spec, &s, &h, &AggregateOptions::default()).unwrap().rows;
            rows.sort_by(|a, b| a.area.cmp(&b.area));
            rows
        };
        assert!(!keys.is_sorted());
        assert_eq!(run(&p, keys), run(&sorted, sorted_keys));
    }

    #[test]
    fn key_columns_take_and_append_keep_every_units_key() {
        let a = KeyColumn::from_keys(["x", "y", "y", ""]).unwrap();
        let b = KeyColumn::from_keys(["z", "y", "x"]).unwrap();
        let mut all = a.take(&[3, 0, 1]);
        all.append(&b).unwrap();
        let keys: Vec<&str> = (0..all.len()).map(|i| all.key(i)).collect();
        assert_eq!(keys, ["", "x", "y", "z", "y", "x"]);
        // One code per distinct key, whichever column it came from.
        assert_eq!(all.codes[2], all.codes[4]);
        assert_eq!(all.names.len(), 4);
        // Groups from codes are the groups from strings.
        let h = Hierarchy::from_columns(vec!["k".into()], vec![all.clone()]).unwrap();
        let g = Hierarchy::from_keys(vec!["k".into()], vec![keys.iter().map(|k| k.to_string()).collect()]).unwrap();
        assert_eq!((h.groups, h.unit_leaf), (g.groups, g.unit_leaf));
    }

    /// Areas read as runs (whole columns cut into batches anywhere, or unit by unit, the same
    /// village number in two tambons, long keys whose views hold no prefix of the whole) group
    /// the units as their keys repeated per unit do.
    #[test]
    fn area_runs_group_as_columns_do() {
        use polars_arrow::array::Utf8ViewArray;
        let n = 1000;
        let long = "ตำบลที่มีชื่อยาวกว่าสิบสองไบต์";
        let key = |u: usize, l: usize| match l {
            0 => format!("p{}", u / 400),
            1 => format!("{long}{}", u / 90),
            _ => format!("{}", (u / 13) % 5),
        };
        let names: Vec<String> = ["province", "tambon", "village"].map(String::from).to_vec();
        let columns: Vec<KeyColumn> = (0..3)
            .map(|l| {
                KeyColumn::from_keys((0..n).map(|u| key(u, l)).collect::<Vec<_>>().iter().map(String::as_str)).unwrap()
            })
            .collect();
        let whole = Hierarchy::from_columns(names.clone(), columns).unwrap();
        for cut in [1usize, 7, 90, 333, n] {
            let mut runs = AreaRuns::new(3);
            let mut start = 0;
            while start < n {
                let end = (start + cut).min(n);
                if (start / cut) % 3 == 2 {
                    for u in start..end {
                        let keys: Vec<String> = (0..3).map(|l| key(u, l)).collect();
                        runs.push(keys.iter().map(String::as_str)).unwrap();
                    }
                } else if (start / cut) % 3 == 1 {
                    // As dictionaries in which every unit has an index of its own (a change at
                    // every unit): equal values at different indices must still make one run.
                    let values: Vec<Vec<String>> = (0..3).map(|l| (start..end).map(|u| key(u, l)).collect()).collect();
                    let changes: Vec<Vec<(usize, u32)>> =
                        (0..3).map(|_| (0..end - start).map(|u| (u, u as u32)).collect()).collect();
                    let values: Vec<&[String]> = values.iter().map(Vec::as_slice).collect();
                    let changes: Vec<&[(usize, u32)]> = changes.iter().map(Vec::as_slice).collect();
                    assert!(runs.push_changes(&values, &changes, end - start).unwrap());
                } else {
                    let arrays: Vec<Utf8ViewArray> = (0..3)
                        .map(|l| Utf8ViewArray::from_slice_values((start..end).map(|u| key(u, l)).collect::<Vec<_>>()))
                        .collect();
                    assert!(runs.push_arrays(&arrays.iter().collect::<Vec<_>>()).unwrap());
                }
                start = end;
            }
            let h = Hierarchy::from_runs(names.clone(), runs).unwrap();
            assert_eq!(
                (&h.groups, &h.labels, &h.leaf_group, &h.unit_leaf),
                (&whole.groups, &whole.labels, &whole.leaf_group, &whole.unit_leaf),
                "cut {cut}"
            );
        }
        // A column with a null, an index out of its dictionary or columns of unequal lengths are
        // refused whole, touching nothing; runs out of order are an error.
        let mut runs = AreaRuns::new(1);
        let ab = ["a".to_string(), "b".to_string()];
        for bad in [&[(0, 0), (1, 2)][..], &[(1, 0)], &[(0, 0), (0, 1)], &[(0, 0), (2, 1)], &[]] {
            assert!(!runs.push_changes(&[&ab], &[bad], 2).unwrap(), "{bad:?}");
        }
        let mut two = AreaRuns::new(2);
        assert!(!two.push_changes(&[&ab], &[&[(0, 0)]], 1).unwrap());
        assert_eq!((runs.units(), two.units()), (0, 0));
        // Levels changing at different units: one run per distinct pair of keys in a row.
        assert!(two.push_changes(&[&ab, &ab], &[&[(0, 0), (3, 1)], &[(0, 0), (1, 1), (3, 0), (4, 1)]], 6).unwrap());
        assert_eq!((two.starts.as_slice(), two.units()), (&[0, 1, 3, 4][..], 6));
        assert!(!runs.push_arrays(&[&Utf8ViewArray::from_slice([Some("a"), None])]).unwrap());
        assert!(Hierarchy::from_runs(vec!["k".into()], runs).is_ok_and(|h| h.unit_leaf.is_empty()));
        let bad = AreaRuns {
            starts: vec![0, 5, 3],
            keys: vec![KeyColumn::from_keys(["a", "b", "c"]).unwrap()],
            units: 9,
            scratch: Vec::new(),
        };
        assert!(Hierarchy::from_runs(vec!["k".into()], bad).is_err());
    }

    /// The 64-bit shortcut and the 128-bit products give the same numerator; past 128 bits, none.
    #[test]
    fn spread_is_exact_in_64_and_128_bits() {
        let reference = |x2: i128, x1: i128, x: i128, t: i128, t2: i128| x2 * t * t - 2 * x * t * x1 + x * x * t2;
        for v in [
            [3i64, 2, 5, 7, 11],
            [40_000, 40_000, 9_000, 120_000, 900_000],
            [10_000_000_000, 7, 3_000_000, 20_000_000_000, 5],
        ] {
            let [x2, x1, x, t, t2] = v;
            let wide = v.map(i128::from);
            let exact = reference(wide[0], wide[1], wide[2], wide[3], wide[4]);
            assert_eq!(spread(x2, x1, x, t, t2).map(f64::to_bits), Some((exact.max(0) as f64).to_bits()), "{v:?}");
        }
        // Negative (sums that no data gives) is 0; past 128 bits, none.
        assert_eq!(spread(0, 1, 1, 1, 0), Some(0.0));
        assert_eq!(spread(i64::MAX, 1, 1, i64::MAX, 1), None);
    }

    #[test]
    fn whole_weights_are_finite_whole_numbers_not_negative() {
        for x in [0.0, -0.0, 1.0, 7.0, 4_294_967_296.0, 9_007_199_254_740_992.0, 1e300] {
            assert!(is_whole(x), "{x}");
        }
        for x in [0.5, 1.0 + f64::EPSILON, -1.0, 1e15 + 0.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(!is_whole(x), "{x}");
        }
        // Against the definition, on every kind of float: halves and near-halves at each
        // magnitude around 2^52 and 2^53, and bit patterns spread over the whole range.
        let reference = |x: f64| x.is_finite() && x >= 0.0 && x.fract() == 0.0;
        let mut xs = vec![f64::MIN_POSITIVE, f64::MAX, -f64::MAX, 4_503_599_627_370_495.5];
        for e in 0..60 {
            let p = 2f64.powi(e);
            xs.extend([p, p + 0.5, p - 0.5, p + 0.25, p.next_up(), p.next_down(), -p]);
        }
        let mut bits = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..100_000 {
            bits = bits.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            xs.push(f64::from_bits(bits));
            xs.push(f64::from_bits(bits >> 12 | 0x4300_0000_0000_0000)); // within [2^49, 2^54)
        }
        for &x in &xs {
            assert_eq!(is_whole(x), reference(x), "{x:e}");
        }
        assert!(all_whole(&[1.0; 100_000]));
        let mut w = vec![3.0; 100_000];
        w[77_777] = 2.5;
        assert!(!all_whole(&w));
        assert!(all_whole(&[]));
    }

    /// `n` units with weights 1–5 and profiles spread over the four indicators.
    fn varied(n: usize) -> Profiles {
        let fail = (0..n as u64).map(|u| u.wrapping_mul(2_654_435_761) >> 7 & 0b1111).collect();
        Profiles::from_masks(fail, vec![0; n], vec![0; n], (0..n).map(|u| (1 + u % 5) as f64).collect(), 0b1111)
    }

    fn af() -> (Profiles, Spec) {
        let fail = vec![0b0000, 0b1010, 0b1111, 0b0010];
        let p = Profiles::from_masks(fail, vec![0; 4], vec![0; 4], vec![1.0; 4], 0b1111);
        let spec = Spec::from_weights(
            (0..4).map(|i| (i, format!("d{i}"), format!("x{i}"), Rational::new(1, 4))).collect(),
            Cutoff::K(Rational::new(1, 2)),
        )
        .unwrap();
        (p, spec)
    }

    /// Exact scores worked out as the units are added give every area's measures of the scores
    /// stored first, bit for bit (with bootstrap replicates and a design too).
    #[test]
    fn measures_from_scores_worked_out_per_unit_are_the_stored_scores_measures() {
        let n = 5000;
        let p = varied(n);
        let spec = af().1;
        let keys: Vec<String> = (0..n).map(|u| format!("v{}", u / 37)).collect();
        let h = Hierarchy::from_keys(vec!["village".into()], vec![keys]).unwrap();
        let design = Some(((0..n as u32).map(|u| u % 3).collect(), (0..n as u32).map(|u| u % 11).collect()));
        for opts in [AggregateOptions::default(), AggregateOptions { bootstrap: (20, 7), design, ..Default::default() }]
        {
            let stored = measures(&p, &spec, &score(&p, &spec).unwrap(), &h, &opts).unwrap();
            let scorer = crate::score::ExactScorer::new(&p, &spec).unwrap().unwrap();
            let lazy = measures_of(&p, &spec, &scorer, &h, &opts).unwrap();
            assert_eq!(stored.rows, lazy.rows);
            assert!(stored.rows[0].exact.is_some() && stored.rows.len() > 100);
        }
    }

    #[test]
    fn alkire_foster_worked_example() {
        let (p, spec) = af();
        let s = score(&p, &spec).unwrap();
        let h = Hierarchy::from_keys(vec!["group".into()], vec![vec!["a".into(), "a".into(), "b".into(), "b".into()]])
            .unwrap();
        let m = measures(&p, &spec, &s, &h, &AggregateOptions::default()).unwrap();
        let all = &m.rows[0];
        assert_eq!(all.exact.as_ref().unwrap(), &["1/2".to_string(), "3/4".to_string(), "3/8".to_string()]);
        assert_eq!((all.h, all.a, all.m0), (0.5, 0.75, 0.375));
        // Censored headcounts: dimension 0 only person 3; dimension 1 persons 2 and 3.
        assert_eq!(all.censored, [0.25, 0.5, 0.25, 0.5]);
        assert_eq!(all.uncensored, [0.25, 0.75, 0.25, 0.5]);
        let total: f64 = all.contribution.iter().sum();
        assert!((total - 100.0).abs() < 1e-9);
        // Subgroups: a = persons 1, 2 (M0 = 2/8), b = persons 3, 4 (M0 = 4/8); 1/2·2/8 + 1/2·4/8 = 3/8.
        assert_eq!(m.rows[1].exact.as_ref().unwrap()[2], "1/4");
        assert_eq!(m.rows[2].exact.as_ref().unwrap()[2], "1/2");
    }

    #[test]
    fn tables_have_a_column_per_level_population_shares_and_absolute_contributions() {
        let (p, spec) = af();
        let s = score(&p, &spec).unwrap();
        let keys = vec![
            vec!["A".to_string(), "A".into(), "B".into(), "B".into()],
            vec!["x/1".to_string(), "y".into(), "x/1".into(), "x/1".into()],
        ];
        let h = Hierarchy::from_keys(vec!["region".into(), "poor".into()], keys).unwrap();
        let m = measures(&p, &spec, &s, &h, &AggregateOptions::default()).unwrap();
        let df = m.to_frame().unwrap();
        let col = |name: &str| df.column(name).unwrap().as_materialized_series().clone();
        // Levels as columns (a level named like a column gets `area_`); keys kept whole even with
        // a '/' inside, which the path key `area` cannot show apart.
        let region: Vec<Option<String>> = col("region").str().unwrap().iter().map(|v| v.map(String::from)).collect();
        let area_poor: Vec<Option<String>> =
            col("area_poor").str().unwrap().iter().map(|v| v.map(String::from)).collect();
        let areas: Vec<String> = col("area").str().unwrap().iter().map(|v| v.unwrap().to_string()).collect();
        let i = areas.iter().position(|a| a == "B/x/1").unwrap();
        assert_eq!((region[i].as_deref(), area_poor[i].as_deref()), (Some("B"), Some("x/1")));
        assert_eq!((region[0].as_deref(), area_poor[0].as_deref()), (None, None)); // the country
        let share: Vec<f64> = col("population_share").f64().unwrap().iter().map(|v| v.unwrap()).collect();
        assert_eq!(share[0], 1.0);
        assert_eq!(share[1] + share[2], 1.0); // the regions
        // Absolute contributions add up to M0 in every row.
        let m0: Vec<f64> = col("M0").f64().unwrap().iter().map(|v| v.unwrap()).collect();
        for (r, want) in m0.iter().enumerate() {
            let got: f64 = (0..4).map(|i| col(&format!("x{i}_actb")).f64().unwrap().get(r).unwrap()).sum();
            assert!((got - want).abs() < 1e-12, "row {r}: {got} vs {want}");
        }
    }

    #[test]
    fn tpmap_hierarchy_levels() {
        let v: Vec<AreaCode> = ["1101100101", "1101100201", "1102100101"].iter().map(|s| s.parse().unwrap()).collect();
        let h = Hierarchy::tpmap(&v);
        assert_eq!(h.levels, ["country", "province", "amphoe", "tambon", "village"]);
        assert_eq!(h.groups[1], ["11"]);
        assert_eq!(h.groups[2], ["1101", "1102"]);
        assert_eq!(h.groups[3], ["110110", "110210"]);
        assert_eq!(h.groups[4].len(), 3);
    }

    #[test]
    fn unsorted_villages_and_repeated_names() {
        let v: Vec<AreaCode> =
            ["1102100101", "1101100101", "1102100101", "1101100201"].iter().map(|s| s.parse().unwrap()).collect();
        let h = Hierarchy::tpmap(&v);
        assert_eq!(h.groups[4], ["1101100101", "1101100201", "1102100101"]);
        assert_eq!(h.unit_leaf, [2, 0, 2, 1]);
        assert_eq!(h.leaf_group[2], [0, 0, 1]);
        // "Muang" under two provinces is two amphoe; a province's units need not be contiguous.
        let keys = vec![
            vec!["A".to_string(), "B".into(), "A".into(), "B".into()],
            vec!["Muang".to_string(), "Muang".into(), "Muang".into(), "Other".into()],
        ];
        let h = Hierarchy::from_keys(vec!["province".into(), "amphoe".into()], keys).unwrap();
        assert_eq!(h.groups[2], ["A/Muang", "B/Muang", "B/Other"]);
        assert_eq!(h.unit_leaf, [0, 1, 0, 2]);
        assert_eq!(h.leaf_group[1], [0, 1, 1]);
        assert!(Hierarchy::from_keys(vec!["x".into()], vec![vec!["a".into()], vec!["b".into()]]).is_err());
    }

    #[test]
    fn no_units_gives_zero_rows_not_a_panic() {
        let (_, spec) = af();
        let p = Profiles::from_masks(vec![], vec![], vec![], vec![], 0b1111);
        let s = score(&p, &spec).unwrap();
        let h = Hierarchy::from_keys(vec!["g".into()], vec![vec![]]).unwrap();
        let m = measures(&p, &spec, &s, &h, &AggregateOptions::default()).unwrap();
        assert_eq!(m.rows.len(), 1);
        assert_eq!((m.rows[0].units, m.rows[0].h, m.rows[0].m0), (0, 0.0, 0.0));
    }

    #[test]
    fn analytic_se_is_statas_mean_with_n_minus_1() {
        // 24 units, unit weights, 6 poor: Stata's `mean poor` gives sd/√n = √(H(1−H)/(n−1)).
        let n = 24usize;
        let fail: Vec<u64> = (0..n)
            .map(|u| {
                if u < 6 {
                    0b11
                } else if u < 10 {
                    0b01
                } else {
                    0
                }
            })
            .collect();
        let p = Profiles::from_masks(fail, vec![0; n], vec![0; n], vec![1.0; n], 0b11);
        let half = Rational::new(1, 2);
        let spec = Spec::from_weights(
            vec![(0, "d1".into(), "a".into(), half), (1, "d2".into(), "b".into(), half)],
            crate::score::Cutoff::K(Rational::ONE),
        )
        .unwrap();
        let s = score(&p, &spec).unwrap();
        let m = measures(&p, &spec, &s, &Hierarchy::country(n), &AggregateOptions::default()).unwrap();
        let all = &m.rows[0];
        let h: f64 = 6.0 / 24.0;
        assert!((all.se_analytic[0] - (h * (1.0 - h) / 23.0).sqrt()).abs() < 1e-12);
        // M0: c = 1 for the 6 poor, 0 otherwise: the same as H here.
        assert!((all.se_analytic[2] - all.se_analytic[0]).abs() < 1e-12);
        // A: every poor unit has c = 1, so A = 1 with no spread.
        assert!(all.se_analytic[1].abs() < 1e-12);

        // Weighted: Stata's `mean x [pw=w]` = √(n/(n−1) Σ w²(x−x̄)²) / Σw, computed by hand.
        let w: Vec<f64> = (0..n).map(|u| 1.0 + (u % 5) as f64).collect();
        let fail: Vec<u64> = (0..n)
            .map(|u| {
                if u % 3 == 0 {
                    0b11
                } else if u % 4 == 0 {
                    0b10
                } else {
                    0
                }
            })
            .collect();
        let p = Profiles::from_masks(fail.clone(), vec![0; n], vec![0; n], w.clone(), 0b11);
        let spec = Spec::from_weights(
            vec![(0, "d1".into(), "a".into(), half), (1, "d2".into(), "b".into(), half)],
            crate::score::Cutoff::K(half),
        )
        .unwrap();
        let s = score(&p, &spec).unwrap();
        let m = measures(&p, &spec, &s, &Hierarchy::country(n), &AggregateOptions::default()).unwrap();
        let all = &m.rows[0];
        let poor: Vec<f64> = fail.iter().map(|&f| (f != 0) as u8 as f64).collect();
        let c: Vec<f64> = fail.iter().map(|&f| f.count_ones() as f64 / 2.0).collect();
        let sw: f64 = w.iter().sum();
        let mean = |x: &[f64]| x.iter().zip(&w).map(|(x, w)| x * w).sum::<f64>() / sw;
        let se = |x: &[f64]| {
            let m = mean(x);
            let ss: f64 = x.iter().zip(&w).map(|(x, w)| w * w * (x - m) * (x - m)).sum();
            (n as f64 / (n as f64 - 1.0) * ss).sqrt() / sw
        };
        assert!((all.se_analytic[0] - se(&poor)).abs() < 1e-12, "{} {}", all.se_analytic[0], se(&poor));
        assert!((all.se_analytic[2] - se(&c)).abs() < 1e-12);
        // A = M0/H linearised over all n units (as Stata's `svy` subpopulation estimates are): the
        // factor is n/(n−1) and the sum runs over the poor: √(n/(n−1) Σ_poor w²(c−A)²) / Σ_poor w.
        let (swp, a) = {
            let swp: f64 = poor.iter().zip(&w).map(|(p, w)| p * w).sum();
            (swp, c.iter().zip(&w).map(|(c, w)| c * w).sum::<f64>() / swp)
        };
        let ss_a: f64 = (0..n).filter(|&u| poor[u] > 0.0).map(|u| w[u] * w[u] * (c[u] - a) * (c[u] - a)).sum();
        let se_a = (n as f64 / (n as f64 - 1.0) * ss_a).sqrt() / swp;
        assert!((all.se_analytic[1] - se_a).abs() < 1e-12);
        // Censored headcounts: the same mean of "poor and deprived in the indicator".
        for (i, bit) in [0b01u64, 0b10].iter().enumerate() {
            let x: Vec<f64> = fail.iter().map(|&f| ((f != 0) && f & bit != 0) as u8 as f64).collect();
            assert!((all.censored[i] - mean(&x)).abs() < 1e-12);
            assert!((all.se_censored[i] - se(&x)).abs() < 1e-12, "{} {}", all.se_censored[i], se(&x));
        }
    }

    #[test]
    fn design_se_matches_a_hand_computation() {
        // Two strata with two PSUs each; ratio of poor to population.
        let mut m = BTreeMap::new();
        m.insert((0, 0), [10.0, 2.0, 0.5]);
        m.insert((0, 1), [10.0, 4.0, 1.0]);
        m.insert((1, 2), [20.0, 4.0, 1.0]);
        m.insert((1, 3), [20.0, 6.0, 2.0]);
        let se = linearized_se(&m);
        let r: f64 = 16.0 / 60.0;
        let z = |y: f64, x: f64| (y - r * x) / 60.0;
        let s0 = [z(2.0, 10.0), z(4.0, 10.0)];
        let s1 = [z(4.0, 20.0), z(6.0, 20.0)];
        let v = |s: [f64; 2]| 2.0 * ((s[0] - (s[0] + s[1]) / 2.0).powi(2) + (s[1] - (s[0] + s[1]) / 2.0).powi(2));
        assert!((se[0] - (v(s0) + v(s1)).sqrt()).abs() < 1e-12);
        // A = score/poor, linearised over the poor's totals.
        let ra: f64 = 4.5 / 16.0;
        let za = |y: f64, x: f64| (y - ra * x) / 16.0;
        let (a0, a1) = ([za(0.5, 2.0), za(1.0, 4.0)], [za(1.0, 4.0), za(2.0, 6.0)]);
        assert!((se[1] - (v(a0) + v(a1)).sqrt()).abs() < 1e-12);
    }
}
