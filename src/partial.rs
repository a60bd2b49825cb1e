//! Partial results: the per-area sums every published Alkire–Foster measure is made of, from a
//! run over part of the data (a province, a Spark partition), merged exactly into the measures
//! of the whole.
//!
//! Every measure tpmap publishes is a ratio of sums over units (population, poor, score
//! numerators, per-indicator counts, Σw² for the standard errors), so a part's sums per leaf area
//! (village) are all a merge needs. With whole-number weights and exact scores every sum is an
//! integer that `f64` holds exactly (below 2^53), so the merged measures are the same bits as the
//! whole run's, whatever the partitioning (`tests/partial.rs`).
//!
//! On disk (format `tpmap-partial`, version 1; `docs/partial.md`): a directory with
//! `partial.json` (format, version, levels, the spec, bands, whether every weight was whole, the
//! leaf count and the sum columns' names) and `leaves.parquet` (one row per leaf: its key at each
//! level below the country as `key_1` … `key_L` text, then one `Float64` column per sum, plain
//! Parquet types any engine reads).
//!
//! Version 1 carries no bootstrap replicates and no survey-design sums: a run asking for either
//! is refused rather than merged without them.
//!
//! ```
//! use polars::prelude::*;
//! use tpmap::ingest::TableInput;
//! use tpmap::mpi::{measure, partial, MpiOptions};
//! let units = df!("area" => ["a", "a", "b"], "water" => [1, 0, 1], "school" => [1, 0, 0])?;
//! let spec = || vec![
//!     ("living".to_string(), "water".to_string(), "1/2".parse().unwrap()),
//!     ("education".to_string(), "school".to_string(), "1/2".parse().unwrap()),
//! ];
//! let opts = MpiOptions { k: "1/2".parse()?, areas: vec!["area".into()], ..Default::default() };
//! let (whole, _) = measure(TableInput::Frame(&units, "units"), spec(), &opts)?;
//! let parts = [units.slice(0, 2), units.slice(2, 1)];
//! let partials = parts
//!     .iter()
//!     .map(|p| partial(TableInput::Frame(p, "part"), spec(), &opts))
//!     .collect::<Result<Vec<_>, _>>()?;
//! let merged = tpmap::partial::merge(&partials)?;
//! assert_eq!(merged.rows, whole.rows);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::aggregate::{AggregateOptions, Hierarchy, KeyColumn, Measures, layout, leaf_sums, roll_up};
use crate::error::{Error, Result};
use crate::rational::Rational;
use crate::score::{Cutoff, MissingPolicy, NaPolicy, Profiles, Scores, Spec};

/// The format's name in `partial.json`.
pub const FORMAT: &str = "tpmap-partial";
/// The format version this build writes and reads.
pub const VERSION: u32 = 2;
/// Most leaves a partial may hold: twelve times the 84,090 villages of TPMAP 2561's tables. With
/// at most 64 indicators a leaf has at most 339 sums, so this bounds what a hostile file (a few
/// run-length-encoded bytes can stand for millions of rows) can make a read allocate to 2.7 GB.
pub const MAX_LEAVES: usize = 1_000_000;
/// Most area levels below the country.
pub const MAX_LEVELS: usize = 16;

/// The per-leaf sums of a run over part of the data.
#[derive(Clone, Debug, PartialEq)]
pub struct Partial {
    /// The spec measured (the same in every part to be merged).
    pub spec: Spec,
    /// Level names, coarsest first (`country` first).
    pub levels: Vec<String>,
    /// Lower bound of the vulnerable band.
    pub vulnerable: Rational,
    /// Lower bound of severe deprivation.
    pub severe: Rational,
    /// Every weight of the part was a whole number (not negative).
    pub integral: bool,
    /// Per leaf, its own key at each level below the country.
    pub leaves: Vec<Vec<String>>,
    /// Per leaf, the sums named by [`Partial::columns`], leaf after leaf.
    pub sums: Vec<f64>,
    /// Bootstrap replicates (0: none). Written as version 2 of the format; a partial without
    /// replicates is written as version 1, as before.
    pub reps: usize,
    /// The bootstrap's seed (0 without replicates): parts merge only with the same seed.
    pub seed: u64,
    /// Per leaf, `reps × 3` replicate sums (population, poor, score), keyed by unit so that parts
    /// add up to the whole.
    pub boot: Vec<f64>,
}

/// `partial.json`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    levels: Vec<String>,
    spec: SpecRecord,
    vulnerable: String,
    severe: String,
    integral_weights: bool,
    leaves: usize,
    columns: Vec<String>,
    /// Version 2: bootstrap replicates (their sums follow the sum columns, see
    /// [`replicate_columns`]) and their seed.
    #[serde(default, skip_serializing_if = "is_zero")]
    replicates: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    seed: u64,
}

fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Names of the replicate sums' columns in `leaves.parquet` (version 2): for replicate
/// r = 1..=reps, `boot_r_population`, `boot_r_poor`, `boot_r_score`.
pub fn replicate_columns(reps: usize) -> Vec<String> {
    (1..=reps).flat_map(|r| ["population", "poor", "score"].map(|j| format!("boot_{r}_{j}"))).collect()
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecRecord {
    /// `(dimension, indicator, weight)` in spec order, weights as exact fractions.
    indicators: Vec<(String, String, String)>,
    cutoff: String,
    na: NaPolicy,
    missing: MissingPolicy,
    normalized: bool,
}

impl Partial {
    /// The per-leaf sums of `profiles` scored as `scores` over `hierarchy`'s leaves.
    pub fn of(
        profiles: &Profiles,
        spec: &Spec,
        scores: &Scores,
        hierarchy: &Hierarchy,
        options: &AggregateOptions,
    ) -> Result<Partial> {
        Partial::of_units(profiles, spec, scores, hierarchy, options)
    }

    /// Like [`Partial::of`], reading each unit's identification through `scores` (stored, or
    /// exact scores worked out as the units are added).
    pub(crate) fn of_units(
        profiles: &Profiles,
        spec: &Spec,
        scores: &impl crate::score::UnitScores,
        hierarchy: &Hierarchy,
        options: &AggregateOptions,
    ) -> Result<Partial> {
        if options.design.is_some() {
            return Err(Error::Config("partial results carry no survey design: measure without it".into()));
        }
        if options.bootstrap.0 > 0 && options.unit_keys.is_none() {
            return Err(Error::Config(
                "a partial result's bootstrap needs unit keys (AggregateOptions::unit_keys): by row position, the parts' replicates would not be the whole's"
                    .into(),
            ));
        }
        let h = hierarchy;
        let l = crate::in_pool(|| leaf_sums(profiles, spec, scores, h, options))?;
        // Indicators are numbered in spec order in the file (the bits were only the profiles').
        let mut spec = spec.clone();
        spec.items.iter_mut().enumerate().for_each(|(i, it)| it.bit = i);
        let leaves = (0..h.leaves())
            .map(|leaf| (1..h.levels.len()).map(|k| h.labels[k][h.leaf_group[k][leaf] as usize].clone()).collect())
            .collect();
        Ok(Partial {
            spec,
            levels: h.levels.clone(),
            vulnerable: options.vulnerable,
            severe: options.severe,
            integral: l.integral,
            leaves,
            sums: l.sums,
            reps: l.reps,
            seed: if l.reps > 0 { options.bootstrap.1 } else { 0 },
            boot: l.boot,
        })
    }

    /// Names of the sums, in column order.
    pub fn columns(&self) -> Vec<String> {
        layout(&self.spec).names()
    }

    /// Writes `partial.json` and `leaves.parquet` into `dir` (created if missing).
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let columns = self.columns();
        let stride = columns.len();
        let header = Header {
            format: FORMAT.into(),
            // Without replicates, the file is version 1's (older readers take it).
            version: if self.reps > 0 { VERSION } else { 1 },
            levels: self.levels.clone(),
            spec: SpecRecord {
                indicators: self
                    .spec
                    .items
                    .iter()
                    .map(|i| (self.spec.dimensions[i.dimension].clone(), i.label.clone(), i.weight.to_string()))
                    .collect(),
                cutoff: self.spec.cutoff.to_string(),
                na: self.spec.na,
                missing: self.spec.missing,
                normalized: self.spec.normalized,
            },
            vulnerable: self.vulnerable.to_string(),
            severe: self.severe.to_string(),
            integral_weights: self.integral,
            leaves: self.leaves.len(),
            columns: columns.clone(),
            replicates: self.reps,
            seed: self.seed,
        };
        let mut cols: Vec<Column> = Vec::with_capacity(self.levels.len() + stride);
        for k in 1..self.levels.len() {
            let keys: Vec<&str> = self.leaves.iter().map(|p| p[k - 1].as_str()).collect();
            cols.push(Column::new(format!("key_{k}").into(), keys));
        }
        for (j, name) in columns.iter().enumerate() {
            let v: Vec<f64> = (0..self.leaves.len()).map(|leaf| self.sums[leaf * stride + j]).collect();
            cols.push(Column::new(name.as_str().into(), v));
        }
        let bs = self.reps * 3;
        for (k, name) in replicate_columns(self.reps).iter().enumerate() {
            let v: Vec<f64> = (0..self.leaves.len()).map(|leaf| self.boot[leaf * bs + k]).collect();
            cols.push(Column::new(name.as_str().into(), v));
        }
        let mut df = DataFrame::new_infer_height(cols)?;
        crate::frame::write_parquet(&mut df, &dir.join("leaves.parquet"), &[])?;
        let path = dir.join("partial.json");
        std::fs::write(&path, serde_json::to_string_pretty(&header)?).map_err(|e| Error::io(&path, e))
    }

    /// Reads a partial written by [`Partial::write`], checking everything a merge relies on.
    pub fn read(dir: &Path) -> Result<Partial> {
        let path = dir.join("partial.json");
        let file = path.display().to_string();
        let bad = |message: String| Error::Format { file: file.clone(), message };
        let text = crate::limits::read_config(&path, crate::limits::DEFAULT_CONFIG_BYTES)?;
        let h: Header = serde_json::from_str(&text).map_err(|e| bad(format!("not a tpmap partial result ({e})")))?;
        if h.format != FORMAT {
            return Err(bad(format!("not a tpmap partial result (format '{}')", crate::frame::neutralize(&h.format))));
        }
        if !(1..=VERSION).contains(&h.version) {
            return Err(bad(format!(
                "partial result version {} (this tpmap reads versions 1 to {VERSION}): use the tpmap that wrote it",
                h.version
            )));
        }
        if h.version == 1 && (h.replicates > 0 || h.seed > 0) {
            return Err(bad("version 1 carries no bootstrap replicates".into()));
        }
        if h.replicates > crate::aggregate::MAX_BOOTSTRAP
            || (h.leaves as u64).saturating_mul((h.replicates as u64).saturating_mul(24))
                > crate::aggregate::MAX_BOOTSTRAP_BYTES
        {
            return Err(Error::Limit {
                file: file.clone(),
                message: format!(
                    "{} bootstrap replicates over {} leaves (at most {} replicates and {} bytes of their sums)",
                    h.replicates,
                    h.leaves,
                    crate::aggregate::MAX_BOOTSTRAP,
                    crate::aggregate::MAX_BOOTSTRAP_BYTES
                ),
            });
        }
        if h.levels.first().map(String::as_str) != Some("country") || h.levels.len() > MAX_LEVELS + 1 {
            return Err(bad(format!("levels must start with 'country' and number at most {}", MAX_LEVELS + 1)));
        }
        if h.leaves > MAX_LEAVES || (h.levels.len() == 1 && h.leaves != 1) {
            return Err(bad(format!("{} leaves (at most {MAX_LEAVES}; one without area levels)", h.leaves)));
        }
        let parse = |s: &str, what: &str| -> Result<Rational> {
            s.parse().map_err(|_| bad(format!("{what} is not an exact fraction")))
        };
        let items = h
            .spec
            .indicators
            .iter()
            .enumerate()
            .map(|(i, (d, ind, w))| Ok((i, d.clone(), ind.clone(), parse(w, "an indicator weight")?)))
            .collect::<Result<Vec<_>>>()?;
        if items.len() > 64 {
            return Err(bad("more than 64 indicators".into()));
        }
        let cutoff: Cutoff =
            h.spec.cutoff.parse().map_err(|_| bad("the cutoff is not union, intersection or k".into()))?;
        let mut spec = Spec::from_weights(items, cutoff).map_err(|e| bad(format!("the spec: {e}")))?;
        if spec.normalized {
            return Err(bad("the spec's weights do not sum to 1".into()));
        }
        spec.na = h.spec.na;
        spec.missing = h.spec.missing;
        spec.normalized = h.spec.normalized;
        let mut p = Partial {
            levels: h.levels,
            vulnerable: parse(&h.vulnerable, "the vulnerable band")?,
            severe: parse(&h.severe, "the severe band")?,
            integral: h.integral_weights,
            leaves: Vec::new(),
            sums: Vec::new(),
            reps: h.replicates,
            seed: h.seed,
            boot: Vec::new(),
            spec,
        };
        let columns = p.columns();
        if h.columns != columns {
            return Err(bad("the sum columns are not the ones of this spec (another tpmap version?)".into()));
        }
        let stride = columns.len();
        let depth = p.levels.len() - 1;

        let lpath = dir.join("leaves.parquet");
        let lfile = lpath.display().to_string();
        let lbad = |message: String| Error::Format { file: lfile.clone(), message };
        let shape = crate::ingest::source::parquet_shape(&lpath)?;
        if shape.rows != h.leaves {
            return Err(lbad(format!("{} rows where partial.json says {} leaves", shape.rows, h.leaves)));
        }
        let boot_names = replicate_columns(p.reps);
        let expected: Vec<String> =
            (1..=depth).map(|k| format!("key_{k}")).chain(columns).chain(boot_names.iter().cloned()).collect();
        if shape.names != expected {
            return Err(lbad(
                "its columns are not key_1 … key_L, the sums partial.json lists and its replicates' sums".into(),
            ));
        }
        let df = crate::ingest::source::read_parquet_slice(&lpath, &shape, 0, shape.rows)?;
        if df.height() != h.leaves {
            return Err(lbad(format!(
                "{} rows could be read where partial.json says {} leaves",
                df.height(),
                h.leaves
            )));
        }
        let mut leaves: Vec<Vec<String>> = vec![Vec::with_capacity(depth); h.leaves];
        for k in 1..=depth {
            let name = format!("key_{k}");
            let col = df.column(&name)?;
            let s = col.str().map_err(|_| lbad(format!("column {name} is not text")))?;
            for (row, leaf) in leaves.iter_mut().enumerate() {
                let v = s.get(row).ok_or_else(|| lbad(format!("column {name}, row {}: empty key", row + 1)))?;
                leaf.push(v.to_string());
            }
        }
        let mut sums = crate::aggregate::sums_table(h.leaves * stride);
        // The sums, then the replicates' sums (leaf-major, as in memory).
        let bs = p.reps * 3;
        let mut boot = crate::aggregate::sums_table(h.leaves * bs);
        for (j, name) in expected[depth..].iter().enumerate() {
            let col = df.column(name)?;
            let s = col.f64().map_err(|_| lbad(format!("column {name} is not Float64")))?;
            for row in 0..h.leaves {
                let at = if j < stride { &mut sums[row * stride + j] } else { &mut boot[row * bs + j - stride] };
                match s.get(row) {
                    Some(x) if x.is_finite() => *at = x,
                    _ => return Err(lbad(format!("column {name}, row {}: not a finite number", row + 1))),
                }
            }
        }
        p.leaves = leaves;
        p.sums = sums;
        p.boot = boot;
        Ok(p)
    }
}

/// The measures of the whole from its parts' partial results: leaves with the same keys are
/// added together, and rows come in the order the areas first appear across the parts, in the
/// order given (the whole run's order when the parts are consecutive pieces of its input).
pub fn merge(parts: &[Partial]) -> Result<Measures> {
    merge_over(parts, |levels, leaves| {
        let columns = (0..levels.len())
            .map(|k| KeyColumn::from_keys(leaves.iter().map(|p| p[k].as_str())))
            .collect::<Result<_>>()?;
        Hierarchy::from_columns(levels.to_vec(), columns)
    })
}

/// Like [`merge`], for parts whose leaves are TPMAP villages (the last key of each leaf is its
/// village code, as in [`Partial::of`] over [`Hierarchy::tpmap`]): the areas are TPMAP's
/// hierarchy rebuilt over the merged villages, so the measures are labelled and ordered as a
/// whole run's (`tpmap run --partition province`, `tpmap.spark`).
pub fn merge_tpmap(parts: &[Partial]) -> Result<Measures> {
    merge_over(parts, |_, leaves| {
        let villages = leaves
            .iter()
            .map(|path| path.last().and_then(|v| v.parse::<crate::areas::AreaCode>().ok()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::Config("a partial result's leaf is not a village code".into()))?;
        Ok(Hierarchy::tpmap(&villages))
    })
}

/// Like [`merge`], with the areas built by `hierarchy` from the level names below the country
/// and the merged leaves' key paths: it must return a hierarchy with one unit per merged leaf,
/// in the order given (a partitioned `tpmap run` rebuilds TPMAP's village hierarchy, so the
/// measures are labelled and ordered as a whole run's).
pub fn merge_over(
    parts: &[Partial],
    hierarchy: impl FnOnce(&[String], &[&[String]]) -> Result<Hierarchy>,
) -> Result<Measures> {
    let first = parts.first().ok_or_else(|| Error::Config("nothing to merge".into()))?;
    for p in &parts[1..] {
        if p.spec != first.spec
            || p.levels != first.levels
            || p.vulnerable != first.vulnerable
            || p.severe != first.severe
            || p.reps != first.reps
            || p.seed != first.seed
        {
            return Err(Error::Config(
                "partial results to merge must share the spec, levels, bands and bootstrap replicates and seed of the first"
                    .into(),
            ));
        }
    }
    let lay = layout(&first.spec);
    let stride = lay.stride;
    let depth = first.levels.len() - 1;
    let reps = first.reps;
    for p in parts {
        if p.sums.len() != p.leaves.len() * stride
            || p.boot.len() != p.leaves.len() * reps * 3
            || p.leaves.iter().any(|l| l.len() != depth)
        {
            return Err(Error::Config("a partial result's sums or keys do not match its leaves".into()));
        }
    }
    // Leaves by key path, in order of first appearance.
    let mut index: HashMap<&[String], usize> = HashMap::new();
    let mut order: Vec<&[String]> = Vec::new();
    let mut sums: Vec<f64> = Vec::new();
    let mut boot: Vec<f64> = Vec::new();
    let bs = reps * 3;
    for p in parts {
        for (leaf, path) in p.leaves.iter().enumerate() {
            let at = *index.entry(path.as_slice()).or_insert_with(|| {
                order.push(path.as_slice());
                sums.resize(sums.len() + stride, 0.0);
                boot.resize(boot.len() + bs, 0.0);
                order.len() - 1
            });
            for (t, x) in
                sums[at * stride..(at + 1) * stride].iter_mut().zip(&p.sums[leaf * stride..(leaf + 1) * stride])
            {
                *t += x;
            }
            for (t, x) in boot[at * bs..(at + 1) * bs].iter_mut().zip(&p.boot[leaf * bs..(leaf + 1) * bs]) {
                *t += x;
            }
        }
    }
    let h = if depth == 0 { Hierarchy::country(order.len()) } else { hierarchy(&first.levels[1..], &order)? };
    if h.unit_leaf.len() != order.len() || h.unit_leaf.iter().any(|&l| l as usize >= h.leaves()) {
        return Err(Error::Config("the merged areas must have one unit per merged leaf".into()));
    }
    // Each merged leaf is one unit of `h`: its leaves are the merged leaves, in the same order.
    let mut merged = crate::aggregate::sums_table(h.leaves() * stride);
    let mut merged_boot = crate::aggregate::sums_table(h.leaves() * bs);
    for (u, &leaf) in h.unit_leaf.iter().enumerate() {
        let leaf = leaf as usize;
        for (t, x) in merged[leaf * stride..(leaf + 1) * stride].iter_mut().zip(&sums[u * stride..(u + 1) * stride]) {
            *t += x;
        }
        for (t, x) in merged_boot[leaf * bs..(leaf + 1) * bs].iter_mut().zip(&boot[u * bs..(u + 1) * bs]) {
            *t += x;
        }
    }
    let integral = parts.iter().all(|p| p.integral);
    let exact_den = match (first.spec.na, first.spec.integer_weights()) {
        (NaPolicy::NotDeprived, Some((den, _))) => Some(den),
        _ => None,
    };
    let rows =
        crate::in_pool(|| roll_up(&first.spec, &h, &lay, &merged, &merged_boot, reps, None, integral, exact_den));
    Ok(Measures { spec: first.spec.clone(), levels: h.levels.clone(), rows })
}
