//! Deprivation profiles and identification: TPMAP's rule exactly, and the Alkire–Foster counting
//! approach with exact weights and cutoff.
//!
//! ```
//! use tpmap::rational::Rational;
//! use tpmap::score::{Cutoff, Profiles, Spec, score};
//! // Alkire & Foster (2011), 4 people × 4 equally weighted dimensions; k = 2 of 4.
//! let fail = vec![0b0000, 0b1010, 0b1111, 0b0010]; // deprivations in dimensions 0..4
//! let p = Profiles::from_masks(fail.clone(), vec![0; 4], vec![0; 4], vec![1.0; 4], 0b1111);
//! let spec = Spec::from_weights(
//!     (0..4).map(|i| (i, format!("d{i}"), format!("x{i}"), Rational::new(1, 4))).collect(),
//!     Cutoff::K(Rational::new(1, 2)),
//! ).unwrap();
//! let s = score(&p, &spec).unwrap();
//! assert_eq!(s.poor, [false, true, true, false]);
//! ```

use serde::Serialize;

use crate::error::{Error, Result};
use crate::extract::Extract;
use crate::indicators::{Dimension, Edition};
use crate::rational::{Rational, lcm};

/// Units (households, or people carrying their household's profile) × indicators, as masks over
/// the edition's indicator bits, with a weight per unit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profiles {
    /// Deprived (failing) indicators per unit.
    pub fail: Vec<u64>,
    /// Not-applicable indicators per unit.
    pub na: Vec<u64>,
    /// Missing indicators per unit.
    pub missing: Vec<u64>,
    /// Indicators reported at all.
    pub present: u64,
    /// Weight of each unit: 1 per household, household size for people, or a sampling weight.
    pub weight: Vec<f64>,
}

/// What each unit stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Households, each counted once.
    #[default]
    Households,
    /// People: each household counts with its members, who all carry its profile.
    People,
}

text_forms!(Unit, "the unit", { Households => "households" | "household", People => "people" | "persons" | "person" });
text_forms!(NaPolicy, "the not-applicable policy", {
    NotDeprived => "not-deprived",
    Reweight => "reweight-within-dimension" | "reweight",
    ReweightAll => "reweight-all",
});
text_forms!(MissingPolicy, "the missing-value policy", {
    Drop => "drop",
    Deprived => "deprived",
    NotDeprived => "not-deprived",
});

impl Profiles {
    /// Profiles from masks (for callers with their own deprivation matrix).
    pub fn from_masks(fail: Vec<u64>, na: Vec<u64>, missing: Vec<u64>, weight: Vec<f64>, present: u64) -> Profiles {
        Profiles { fail, na, missing, present, weight }
    }

    /// Number of units.
    pub fn len(&self) -> usize {
        self.fail.len()
    }

    /// True when there are no units.
    pub fn is_empty(&self) -> bool {
        self.fail.is_empty()
    }

    /// Household profiles of an extract: each indicator's status rolled up from the household's
    /// own status and its members'.
    ///
    /// Per indicator: **fail** if the household or any member fails; else **missing** if any
    /// status is missing; else **pass** if any member (or the household) passes; else **not
    /// applicable** (no member in scope). Indicators in neither table are not `present`.
    pub fn of_households(x: &Extract, unit: Unit) -> Profiles {
        crate::in_pool(|| Self::of_households_in_pool(x, unit))
    }

    fn of_households_in_pool(x: &Extract, unit: Unit) -> Profiles {
        let h = &x.households;
        let (hs, ps) = (&h.statuses, &x.persons.statuses);
        let present = hs.present | ps.present;
        let n = h.len();
        let (mut fail, mut na, mut missing) = (vec![0u64; n], vec![0u64; n], vec![0u64; n]);
        use rayon::prelude::*;
        fail.par_iter_mut().zip(na.par_iter_mut()).zip(missing.par_iter_mut()).enumerate().with_min_len(4096).for_each(
            |(i, ((f, a), m))| {
                let (mut mf, mut mm, mut mp) = (0u64, 0u64, 0u64);
                for k in x.members(i) {
                    mf |= ps.fail[k] & !ps.na[k] & !ps.missing[k];
                    mm |= ps.missing[k];
                    mp |= ps.present & !ps.fail[k] & !ps.na[k] & !ps.missing[k];
                }
                let hf = hs.fail[i] & !hs.na[i] & !hs.missing[i];
                let hm = hs.missing[i];
                let hp = hs.present & !hs.fail[i] & !hs.na[i] & !hs.missing[i];
                let ff = mf | hf;
                let mi = (mm | hm) & !ff;
                let pa = (mp | hp) & !ff & !mi;
                *f = ff;
                *m = mi;
                *a = present & !(ff | mi | pa);
            },
        );
        let weight = match unit {
            Unit::Households => vec![1.0; n],
            Unit::People => h.members.iter().map(|&m| m as f64).collect(),
        };
        Profiles { fail, na, missing, present, weight }
    }
}

/// Poverty cutoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Cutoff {
    /// Poor when deprived in any indicator (TPMAP's rule; AF with k at the smallest weight).
    #[default]
    Union,
    /// Poor when deprived in every indicator (AF with k = 1).
    Intersection,
    /// Poor when the deprivation score is at least `k` (0 < k ≤ 1), compared exactly.
    K(Rational),
}

impl std::fmt::Display for Cutoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cutoff::Union => f.write_str("union"),
            Cutoff::Intersection => f.write_str("intersection"),
            Cutoff::K(k) => write!(f, "{k}"),
        }
    }
}

impl std::str::FromStr for Cutoff {
    type Err = Error;
    /// `union`, `intersection`, or `k` as a fraction (`1/3`), a decimal (`0.333`) or a percent
    /// (`33.3%`), read exactly. A whole number from 2 to 100 is a percent, as mpitb and Stata
    /// users write it (`33` is 33 %); `1` is k = 1 (every indicator).
    ///
    /// ```
    /// use tpmap::score::Cutoff;
    /// assert_eq!("33".parse::<Cutoff>()?, "33%".parse::<Cutoff>()?);
    /// assert_eq!("1/3".parse::<Cutoff>()?.to_string(), "1/3");
    /// # Ok::<(), tpmap::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Cutoff> {
        let t = s.trim().to_ascii_lowercase();
        if let Ok(percent) = t.parse::<u8>()
            && (2..=100).contains(&percent)
        {
            return Ok(Cutoff::K(Rational::new(percent as u128, 100)));
        }
        match t.as_str() {
            "union" => Ok(Cutoff::Union),
            "intersection" => Ok(Cutoff::Intersection),
            other => other.parse::<Rational>().map(Cutoff::K).map_err(|_| {
                Error::Parse(format!(
                    "the cutoff k must be union, intersection, a fraction (1/3), a decimal or a percent, not '{s}'"
                ))
            }),
        }
    }
}

/// TPMAP's dimension switches: which of the five dimensions (health, living, education, income,
/// access) count, written as TPMAP writes them in file names (`11111`, `10000`).
///
/// ```
/// use tpmap::score::DimensionMask;
/// use tpmap::indicators::Dimension;
/// let m: DimensionMask = "10010".parse()?;
/// assert!(m.contains(Dimension::Health) && m.contains(Dimension::Income) && !m.contains(Dimension::Living));
/// assert_eq!(m.to_string(), "10010");
/// assert!("00000".parse::<DimensionMask>().is_err()); // at least one dimension
/// # Ok::<(), tpmap::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DimensionMask([bool; 5]);

impl DimensionMask {
    /// Every dimension (TPMAP's `11111`).
    pub const ALL: DimensionMask = DimensionMask([true; 5]);

    /// A mask from five switches in [`Dimension::ALL`](crate::indicators::Dimension::ALL) order;
    /// at least one must be on.
    pub fn new(on: [bool; 5]) -> Result<DimensionMask> {
        if on.contains(&true) {
            Ok(DimensionMask(on))
        } else {
            Err(Error::Parse("a dimension mask needs at least one dimension".into()))
        }
    }

    /// Whether dimension `d` counts.
    pub fn contains(self, d: crate::indicators::Dimension) -> bool {
        self.0[d.index()]
    }

    /// The five switches.
    pub fn switches(self) -> [bool; 5] {
        self.0
    }
}

impl Default for DimensionMask {
    fn default() -> Self {
        DimensionMask::ALL
    }
}

impl std::fmt::Display for DimensionMask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|&b| f.write_str(if b { "1" } else { "0" }))
    }
}

impl std::str::FromStr for DimensionMask {
    type Err = Error;
    fn from_str(m: &str) -> Result<DimensionMask> {
        let b = m.trim().as_bytes();
        if b.len() != 5 || !b.iter().all(|c| *c == b'0' || *c == b'1') || !b.contains(&b'1') {
            return Err(Error::Parse(format!(
                "mask must be five 0/1 digits (health, living, education, income, access) with at least one 1, not '{m}'"
            )));
        }
        Ok(DimensionMask(std::array::from_fn(|i| b[i] == b'1')))
    }
}

impl Serialize for DimensionMask {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Who counts as target poor, besides being poor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Welfare {
    /// Welfare-card registration validated by the Ministry of Finance (TPMAP 2561–2566).
    #[default]
    Validated,
    /// Registered for the welfare card.
    Registered,
    /// No welfare condition (TPMAP 2567 onward).
    None,
}

text_forms!(Welfare, "the welfare condition", { Validated => "validated", Registered => "registered", None => "none" });

/// Per household: the weight of its target poor if it is poor — for people, its members meeting
/// `welfare`; for households, 1 when any member does.
pub fn target_weights(x: &Extract, unit: Unit, welfare: Welfare) -> Vec<f64> {
    let p = &x.persons;
    (0..x.households.len())
        .map(|h| {
            let n = match welfare {
                Welfare::Validated => x.members(h).filter(|&k| p.welfare_validated[k] == Some(true)).count(),
                Welfare::Registered => x.members(h).filter(|&k| p.welfare_registered[k] == Some(true)).count(),
                Welfare::None => x.households.members[h] as usize,
            } as f64;
            match unit {
                Unit::People => n,
                Unit::Households => (n > 0.0) as u8 as f64,
            }
        })
        .collect()
}

/// How not-applicable indicators count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NaPolicy {
    /// Not deprived (OPHI's convention).
    #[default]
    NotDeprived,
    /// `reweight-within-dimension`: the indicator's weight moves to the applicable indicators of
    /// its dimension; a dimension with no applicable indicator contributes nothing (the unit's
    /// greatest possible score falls below 1).
    Reweight,
    /// `reweight-all`: the weights of the applicable indicators are scaled to sum to 1 (the
    /// practice of many national MPIs): a unit's score is its failing weight over its applicable
    /// weight.
    ///
    /// A unit deprived in `a` of dimensions {a, b} and {c, d} (each indicator 1/4) with `c` and
    /// `d` not applicable scores 1/4 within its dimensions (the second contributes nothing) and
    /// 1/2 over all (1/4 failing of 1/2 applicable).
    ReweightAll,
}

/// How missing values count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    /// The unit is left out of every measure (and counted as dropped).
    #[default]
    Drop,
    /// Missing counts as deprived.
    Deprived,
    /// Missing counts as not deprived.
    NotDeprived,
}

/// One indicator of a measure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpecItem {
    /// Bit of the indicator in the profiles' masks.
    pub bit: usize,
    /// Position of its dimension in [`Spec::dimensions`].
    pub dimension: usize,
    /// Label for outputs.
    pub label: String,
    /// Weight (the weights of a spec sum to 1).
    pub weight: Rational,
}

/// A measure: indicators with dimensions and exact weights, a cutoff, and the policies.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Spec {
    /// Dimension names, in order.
    pub dimensions: Vec<String>,
    /// Indicators.
    pub items: Vec<SpecItem>,
    /// The cutoff.
    pub cutoff: Cutoff,
    /// Not-applicable policy.
    pub na: NaPolicy,
    /// Missing policy.
    pub missing: MissingPolicy,
    /// True when the given weights did not sum to 1 and were divided by their sum.
    pub normalized: bool,
}

impl Spec {
    /// A spec from `(bit, dimension, label, weight)`; weights that do not sum to 1 are divided by
    /// their sum (exactly), and `normalized` says so.
    pub fn from_weights(items: Vec<(usize, String, String, Rational)>, cutoff: Cutoff) -> Result<Spec> {
        if items.is_empty() {
            return Err(Error::Config("a measure needs at least one indicator".into()));
        }
        if let Cutoff::K(k) = cutoff
            && (k == Rational::ZERO || k > Rational::ONE)
        {
            return Err(Error::Config(format!("k must be above 0 and at most 1, not {k}")));
        }
        let mut dims: Vec<String> = Vec::new();
        let mut total = Rational::ZERO;
        for (bit, _, label, w) in &items {
            if *bit >= 64 {
                return Err(Error::Config(format!("indicator {label}: bit {bit} out of range")));
            }
            total = total.checked_add(*w).ok_or_else(|| Error::Config("weights overflow".into()))?;
        }
        if total == Rational::ZERO {
            return Err(Error::Config("weights sum to zero".into()));
        }
        let mut out = Vec::with_capacity(items.len());
        for (bit, dim, label, w) in items {
            if out.iter().any(|i: &SpecItem| i.bit == bit) {
                return Err(Error::Config(format!("indicator {label} listed twice")));
            }
            let d = dims.iter().position(|x| *x == dim).unwrap_or_else(|| {
                dims.push(dim.clone());
                dims.len() - 1
            });
            let weight = w.checked_div(total).ok_or_else(|| Error::Config("weights overflow".into()))?;
            out.push(SpecItem { bit, dimension: d, label, weight });
        }
        Ok(Spec {
            dimensions: dims,
            items: out,
            cutoff,
            na: NaPolicy::default(),
            missing: MissingPolicy::default(),
            normalized: total != Rational::ONE,
        })
    }

    /// Nested equal weights: each dimension gets an equal share, split equally among its
    /// indicators (the indicators at `selection`, grouped by their edition dimension).
    pub fn nested_equal(edition: &Edition, selection: &[usize], cutoff: Cutoff) -> Result<Spec> {
        let dims: Vec<Dimension> = {
            let mut d: Vec<Dimension> = selection.iter().filter_map(|&i| edition.indicator(i).dimension).collect();
            d.sort();
            d.dedup();
            d
        };
        let mut items = Vec::new();
        for &i in selection {
            let ind = edition.indicator(i);
            let d =
                ind.dimension.ok_or_else(|| Error::Config(format!("indicator {} has no dimension", ind.label())))?;
            let in_dim = selection.iter().filter(|&&j| edition.indicator(j).dimension == Some(d)).count() as u128;
            items.push((i, d.name().to_string(), ind.label(), Rational::new(1, dims.len() as u128 * in_dim)));
        }
        // Keep dimensions in TPMAP's order.
        items.sort_by_key(|(i, d, _, _)| (d.parse::<Dimension>().map(|d| d.index()).unwrap_or(9), *i));
        Spec::from_weights(items, cutoff)
    }

    /// TPMAP's rule: poor when deprived in any TPMAP indicator of the dimensions switched on in
    /// `mask` (health, living, education, income, access — TPMAP's `11111`).
    pub fn tpmap(edition: &Edition, mask: DimensionMask) -> Result<Spec> {
        let sel = edition
            .selection("tpmap")
            .ok_or_else(|| Error::Config(format!("edition {} has no 'tpmap' selection", edition.id)))?;
        let chosen: Vec<usize> =
            sel.iter().copied().filter(|&i| edition.indicator(i).dimension.is_some_and(|d| mask.contains(d))).collect();
        Spec::nested_equal(edition, &chosen, Cutoff::Union)
    }

    /// Bit mask of the spec's indicators.
    pub fn mask(&self) -> u64 {
        self.items.iter().fold(0, |m, i| m | (1u64 << i.bit))
    }

    /// Bit mask of the indicators of dimension `d`.
    pub fn dimension_mask(&self, d: usize) -> u64 {
        self.items.iter().filter(|i| i.dimension == d).fold(0, |m, i| m | (1u64 << i.bit))
    }

    /// The common denominator of the weights, and each weight as an integer over it.
    pub fn integer_weights(&self) -> Option<(u64, Vec<u64>)> {
        let mut d = 1u128;
        for i in &self.items {
            d = lcm(d, i.weight.den())?;
        }
        let d64 = u64::try_from(d).ok()?;
        let w = self
            .items
            .iter()
            .map(|i| u64::try_from(i.weight.num() * (d / i.weight.den())).ok())
            .collect::<Option<Vec<_>>>()?;
        Some((d64, w))
    }
}

/// Identification results, one entry per unit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scores {
    /// Deprivation score (as a float, for sums and standard errors).
    pub score: Vec<f64>,
    /// Score numerator over [`Self::denominator`], when scores are integers over one denominator
    /// (not-applicable counted as not deprived): the exact score.
    pub score_num: Option<Vec<u64>>,
    /// The common denominator of `score_num`.
    pub denominator: u64,
    /// Poor, decided exactly.
    pub poor: Vec<bool>,
    /// Left out under [`MissingPolicy::Drop`].
    pub dropped: Vec<bool>,
    /// Deprived indicators that count (after the missing policy), per unit.
    pub deprived: Vec<u64>,
}

impl Scores {
    /// Number of dropped units.
    pub fn dropped_count(&self) -> usize {
        self.dropped.iter().filter(|&&d| d).count()
    }
}

/// Scores every unit and decides who is poor, exactly.
pub fn score(p: &Profiles, spec: &Spec) -> Result<Scores> {
    crate::in_pool(|| score_in_pool(p, spec))
}

fn score_in_pool(p: &Profiles, spec: &Spec) -> Result<Scores> {
    if let Some(exact) = ExactScorer::new(p, spec)? {
        return Ok(exact.scores());
    }
    let mask = spec.mask();
    let n = p.len();
    let mut out = Scores {
        score: vec![0.0; n],
        score_num: None,
        denominator: 1,
        poor: vec![false; n],
        dropped: vec![false; n],
        deprived: vec![0; n],
    };
    use rayon::prelude::*;
    // Rational scores: NA weight moves within its dimension (or the weights do not fit a
    // 64-bit common denominator).
    let dims = spec.dimensions.len();
    let dim_items: Vec<Vec<&SpecItem>> =
        (0..dims).map(|d| spec.items.iter().filter(|i| i.dimension == d).collect()).collect();
    let dim_weight: Vec<Rational> = dim_items
        .iter()
        .map(|items| items.iter().try_fold(Rational::ZERO, |a, i| a.checked_add(i.weight)).ok_or_else(overflow))
        .collect::<Result<_>>()?;
    let results: Vec<Result<(f64, bool, bool, u64)>> = (0..n)
        .into_par_iter()
        .with_min_len(4096)
        .map(|u| {
            let (d, drop) = deprived_of(p, mask, spec.missing, u);
            let na = p.na[u] & mask;
            let mut s = Rational::ZERO;
            let mut all = true;
            if spec.na == NaPolicy::ReweightAll {
                let (applicable, failing) = tally(&spec.items, d, na, true, &mut all)?;
                if applicable != Rational::ZERO {
                    s = failing.checked_div(applicable).ok_or_else(overflow)?;
                }
            } else {
                let skip_na = spec.na != NaPolicy::NotDeprived;
                for (di, items) in dim_items.iter().enumerate() {
                    let (applicable, failing) = tally(items.iter().copied(), d, na, skip_na, &mut all)?;
                    if applicable != Rational::ZERO {
                        let share = dim_weight[di]
                            .checked_mul(failing)
                            .and_then(|x| x.checked_div(applicable))
                            .ok_or_else(overflow)?;
                        s = s.checked_add(share).ok_or_else(overflow)?;
                    }
                }
            }
            let poor = !drop
                && match spec.cutoff {
                    Cutoff::Union => s > Rational::ZERO,
                    Cutoff::Intersection => all && s > Rational::ZERO,
                    Cutoff::K(k) => s >= k,
                };
            Ok((s.to_f64(), poor, drop, d))
        })
        .collect();
    for (u, r) in results.into_iter().enumerate() {
        let (s, poor, drop, d) = r?;
        out.score[u] = s;
        out.poor[u] = poor;
        out.dropped[u] = drop;
        out.deprived[u] = d;
    }
    Ok(out)
}

/// Whether every indicator of `spec` is in the data.
fn check_present(p: &Profiles, spec: &Spec) -> Result<()> {
    let mask = spec.mask();
    if p.present & mask != mask {
        let absent: Vec<&str> =
            spec.items.iter().filter(|i| p.present & (1 << i.bit) == 0).map(|i| i.label.as_str()).collect();
        return Err(Error::Config(format!("indicators not in the data: {}", absent.join(", "))));
    }
    Ok(())
}

/// Unit `u`'s deprivations that count under the missing-value policy, and whether it is dropped.
fn deprived_of(p: &Profiles, mask: u64, missing: MissingPolicy, u: usize) -> (u64, bool) {
    let miss = p.missing[u] & mask;
    match missing {
        MissingPolicy::Drop if miss != 0 => (0, true),
        MissingPolicy::Deprived => ((p.fail[u] | miss) & mask, false),
        _ => (p.fail[u] & mask & !miss, false),
    }
}

/// One unit's identification, as [`Scores`] holds it for every unit.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct UnitScore {
    /// Deprivation score.
    pub(crate) score: f64,
    /// The score's numerator over the common denominator, when scores are exact (else 0).
    pub(crate) num: u64,
    /// Poor, decided exactly.
    pub(crate) poor: bool,
    /// Left out under [`MissingPolicy::Drop`].
    pub(crate) dropped: bool,
    /// Deprived indicators that count.
    pub(crate) deprived: u64,
}

/// Identification of each unit: stored ([`Scores`]) or worked out when asked for
/// ([`ExactScorer`]). The sums over areas read units through it.
pub(crate) trait UnitScores: Sync {
    /// Units scored.
    fn units(&self) -> usize;
    /// Unit `u`'s identification.
    fn unit(&self, u: usize) -> UnitScore;
    /// The common denominator, when scores are whole numbers over one (exact).
    fn exact_den(&self) -> Option<u64>;
}

impl UnitScores for Scores {
    fn units(&self) -> usize {
        self.poor.len()
    }
    fn unit(&self, u: usize) -> UnitScore {
        UnitScore {
            score: self.score[u],
            num: self.score_num.as_ref().map_or(0, |n| n[u]),
            poor: self.poor[u],
            dropped: self.dropped[u],
            deprived: self.deprived[u],
        }
    }
    fn exact_den(&self) -> Option<u64> {
        self.score_num.is_some().then_some(self.denominator)
    }
}

/// Exact scores, worked out per unit when read: for weights that are whole numbers over one
/// 64-bit denominator with not-applicable counted as not deprived (TPMAP's rule, and most
/// Alkire–Foster specs). A numerator is the sum of the weights of the unit's deprivations, a few
/// additions, so a pass over the units needs no stored scores: nationally those were 335 MB of
/// pages to fill, a third of `tpmap mpi`'s memory.
pub(crate) struct ExactScorer<'a> {
    p: &'a Profiles,
    mask: u64,
    missing: MissingPolicy,
    cutoff: Cutoff,
    den: u64,
    /// Each indicator bit's weight over `den`.
    weight_of_bit: [u64; 64],
    /// Whether the missing masks are read (false: known to be all zero).
    read_missing: bool,
}

impl<'a> ExactScorer<'a> {
    /// The scorer of `spec` over `p`; `None` when scores are not whole numbers over one
    /// denominator (not-applicable weight moves, or the weights need a larger one). An error
    /// when an indicator of the spec is not in the data.
    pub(crate) fn new(p: &'a Profiles, spec: &Spec) -> Result<Option<ExactScorer<'a>>> {
        check_present(p, spec)?;
        let (NaPolicy::NotDeprived, Some((den, w))) = (spec.na, spec.integer_weights()) else {
            return Ok(None);
        };
        let mut weight_of_bit = [0u64; 64];
        for (it, w) in spec.items.iter().zip(w) {
            weight_of_bit[it.bit] = w;
        }
        Ok(Some(ExactScorer {
            p,
            mask: spec.mask(),
            missing: spec.missing,
            cutoff: spec.cutoff,
            den,
            weight_of_bit,
            read_missing: true,
        }))
    }

    /// For profiles whose reader saw no missing cell: their missing masks, all zero, are not
    /// read (nationally 103 MB of zero pages, a sixth of the per-village pass).
    pub(crate) fn with_no_missing_cells(self) -> ExactScorer<'a> {
        ExactScorer { read_missing: false, ..self }
    }

    /// Every unit's identification, stored.
    pub(crate) fn scores(&self) -> Scores {
        use rayon::prelude::*;
        let n = self.p.len();
        let mut out = Scores {
            score: vec![0.0; n],
            score_num: Some(vec![0; n]),
            denominator: self.den,
            poor: vec![false; n],
            dropped: vec![false; n],
            deprived: vec![0; n],
        };
        let nums = out.score_num.as_mut().map_or(&mut [][..], |v| v.as_mut_slice());
        (
            nums.par_iter_mut(),
            out.poor.par_iter_mut(),
            out.dropped.par_iter_mut(),
            out.deprived.par_iter_mut(),
            out.score.par_iter_mut(),
        )
            .into_par_iter()
            .enumerate()
            .with_min_len(4096)
            .for_each(|(u, (num, poor, dropped, dep, sc))| {
                let x = self.unit(u);
                (*num, *poor, *dropped, *dep, *sc) = (x.num, x.poor, x.dropped, x.deprived, x.score);
            });
        out
    }
}

impl UnitScores for ExactScorer<'_> {
    fn units(&self) -> usize {
        self.p.len()
    }
    #[inline]
    fn unit(&self, u: usize) -> UnitScore {
        let (d, dropped) = match self.read_missing {
            true => deprived_of(self.p, self.mask, self.missing, u),
            // What `deprived_of` gives for a missing mask of zero, under every policy.
            false => (self.p.fail[u] & self.mask, false),
        };
        let mut bits = d;
        let mut num = 0u64;
        while bits != 0 {
            num += self.weight_of_bit[bits.trailing_zeros() as usize];
            bits &= bits - 1;
        }
        let poor = !dropped
            && match self.cutoff {
                Cutoff::Union => num > 0,
                Cutoff::Intersection => num == self.den,
                Cutoff::K(k) => num as u128 * k.den() >= k.num() * self.den as u128,
            };
        // Most units are deprived in nothing: no division for them (its latency was half of
        // this function's time nationally). 0/den is 0.0 either way.
        let score = if num == 0 { 0.0 } else { num as f64 / self.den as f64 };
        UnitScore { score, num, poor, dropped, deprived: d }
    }
    fn exact_den(&self) -> Option<u64> {
        Some(self.den)
    }
}

/// Applicable and failing weight of `items` for a unit deprived in `d` and not applicable in
/// `na`: not-applicable items are left out when `skip_na`; `all` is cleared by any applicable item
/// the unit is not deprived in.
fn tally<'a>(
    items: impl IntoIterator<Item = &'a SpecItem>,
    d: u64,
    na: u64,
    skip_na: bool,
    all: &mut bool,
) -> Result<(Rational, Rational)> {
    let (mut applicable, mut failing) = (Rational::ZERO, Rational::ZERO);
    for it in items {
        let bit = 1u64 << it.bit;
        if skip_na && na & bit != 0 {
            continue;
        }
        applicable = applicable.checked_add(it.weight).ok_or_else(overflow)?;
        if d & bit != 0 {
            failing = failing.checked_add(it.weight).ok_or_else(overflow)?;
        } else {
            *all = false;
        }
    }
    Ok((applicable, failing))
}

fn overflow() -> Error {
    Error::Config("exact score arithmetic overflowed: use weights with smaller denominators".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn af_example() -> Profiles {
        // Alkire & Foster (2011): achievements (13.1, 14, 4, 1), (15.2, 7, 5, 0), (12.5, 10, 1, 0),
        // (20, 11, 3, 1) with cutoffs (13, 12, 3, 1); deprived when below the cutoff.
        let x = [[13.1, 14.0, 4.0, 1.0], [15.2, 7.0, 5.0, 0.0], [12.5, 10.0, 1.0, 0.0], [20.0, 11.0, 3.0, 1.0]];
        let z = [13.0, 12.0, 3.0, 1.0];
        let fail = x.iter().map(|r| (0..4).filter(|&j| r[j] < z[j]).fold(0u64, |m, j| m | 1 << j)).collect();
        Profiles::from_masks(fail, vec![0; 4], vec![0; 4], vec![1.0; 4], 0b1111)
    }

    fn equal4(cutoff: Cutoff) -> Spec {
        Spec::from_weights((0..4).map(|i| (i, format!("d{i}"), format!("x{i}"), Rational::new(1, 4))).collect(), cutoff)
            .unwrap()
    }

    #[test]
    fn alkire_foster_identification() {
        let s = score(&af_example(), &equal4(Cutoff::K(Rational::new(1, 2)))).unwrap();
        assert_eq!(s.poor, [false, true, true, false]);
        assert_eq!(s.score_num.as_ref().unwrap(), &[0, 2, 4, 1]);
        assert_eq!(s.denominator, 4);
        let union = score(&af_example(), &equal4(Cutoff::Union)).unwrap();
        assert_eq!(union.poor, [false, true, true, true]);
        let inter = score(&af_example(), &equal4(Cutoff::Intersection)).unwrap();
        assert_eq!(inter.poor, [false, false, true, false]);
    }

    /// The exact scores (whole numbers over one denominator, worked out per unit) agree with the
    /// rational ones on profiles where not-applicable cells would make no difference, under every
    /// missing-value policy and cutoff.
    #[test]
    fn exact_scores_agree_with_rational_ones() {
        let e = Edition::bmn_2560();
        let spec = Spec::tpmap(&e, DimensionMask::ALL).unwrap();
        let mask = spec.mask();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let n = 2000;
        let fail: Vec<u64> = (0..n).map(|_| next() & next() & mask).collect();
        let missing: Vec<u64> = (0..n).map(|_| if next() % 8 == 0 { 1 << (next() % 17) } else { 0 } & mask).collect();
        let p = Profiles::from_masks(fail, vec![0; n], missing, vec![1.0; n], u64::MAX);
        for missing in [MissingPolicy::Drop, MissingPolicy::Deprived, MissingPolicy::NotDeprived] {
            for cutoff in
                [Cutoff::Union, Cutoff::Intersection, Cutoff::K(Rational::new(1, 3)), Cutoff::K(Rational::ONE)]
            {
                let mut exact = spec.clone();
                (exact.missing, exact.cutoff) = (missing, cutoff);
                let mut rational = exact.clone();
                // No cell is not applicable: reweighting moves nothing, but takes the rational path.
                rational.na = NaPolicy::Reweight;
                let (a, b) = (score(&p, &exact).unwrap(), score(&p, &rational).unwrap());
                assert!(a.score_num.is_some() && b.score_num.is_none());
                let scorer = ExactScorer::new(&p, &exact).unwrap().unwrap();
                for u in 0..n {
                    let lazy = scorer.unit(u);
                    assert_eq!(
                        (a.poor[u], a.dropped[u], a.deprived[u]),
                        (b.poor[u], b.dropped[u], b.deprived[u]),
                        "{u}"
                    );
                    assert_eq!(
                        (lazy.poor, lazy.dropped, lazy.deprived, lazy.score),
                        (a.poor[u], a.dropped[u], a.deprived[u], a.score[u])
                    );
                    assert!((a.score[u] - b.score[u]).abs() < 1e-12, "{u}");
                }
                // Without missing cells, not reading the (zero) missing masks changes nothing.
                let none = Profiles { missing: vec![0; n], ..p.clone() };
                let read = ExactScorer::new(&none, &exact).unwrap().unwrap();
                let skipped = ExactScorer::new(&none, &exact).unwrap().unwrap().with_no_missing_cells();
                assert!((0..n).all(|u| read.unit(u) == skipped.unit(u)));
            }
        }
    }

    #[test]
    fn score_exactly_at_k_is_poor() {
        let e = Edition::bmn_2560();
        let spec = Spec::tpmap(&e, DimensionMask::ALL).unwrap();
        let all = spec.mask();
        // Deprived in all 17 nested-weight indicators: the score is exactly 1, while the float sum
        // of the weights is 0.9999999999999999 and would miss k = 1.
        let float: f64 = spec.items.iter().map(|i| i.weight.to_f64()).sum();
        assert!(float < 1.0, "{float}");
        let mut at_one = spec.clone();
        at_one.cutoff = Cutoff::K(Rational::ONE);
        let p = Profiles::from_masks(vec![all, all & !1], vec![0; 2], vec![0; 2], vec![1.0; 2], u64::MAX);
        assert_eq!(score(&p, &at_one).unwrap().poor, [true, false]);
        // Health (4 × 1/20) plus one access indicator (1/10) is exactly 3/10.
        let mut k = spec.clone();
        k.cutoff = Cutoff::K(Rational::new(3, 10));
        let health = spec.dimension_mask(0);
        let access_one = 1u64 << e.by_code("5.1").unwrap();
        let p = Profiles::from_masks(vec![health | access_one, health], vec![0; 2], vec![0; 2], vec![1.0; 2], u64::MAX);
        let s = score(&p, &k).unwrap();
        assert_eq!(s.poor, [true, false]);
        assert_eq!((s.score_num.as_ref().unwrap()[0], s.denominator), (18, 60));
    }

    #[test]
    fn policies() {
        let p = Profiles::from_masks(
            vec![0b0001, 0b0001, 0b0000],
            vec![0b0010, 0, 0],
            vec![0, 0b0100, 0],
            vec![1.0; 3],
            0b1111,
        );
        // Two dimensions: {0,1} and {2,3}, equal weights 1/4.
        let items = vec![
            (0, "a".into(), "x0".into(), Rational::new(1, 4)),
            (1, "a".into(), "x1".into(), Rational::new(1, 4)),
            (2, "b".into(), "x2".into(), Rational::new(1, 4)),
            (3, "b".into(), "x3".into(), Rational::new(1, 4)),
        ];
        let mut spec = Spec::from_weights(items, Cutoff::K(Rational::new(1, 2))).unwrap();
        let s = score(&p, &spec).unwrap();
        assert_eq!(s.dropped, [false, true, false]);
        assert_eq!(s.poor, [false, false, false]);
        spec.na = NaPolicy::Reweight;
        let s = score(&p, &spec).unwrap();
        // Unit 0: x1 not applicable, so x0 carries dimension a's full 1/2: poor at k = 1/2.
        assert_eq!(s.poor, [true, false, false]);
        assert_eq!(s.score[0], 0.5);
        spec.missing = MissingPolicy::Deprived;
        spec.na = NaPolicy::NotDeprived;
        let s = score(&p, &spec).unwrap();
        assert_eq!(s.poor, [false, true, false]);
        assert!(s.dropped.iter().all(|d| !d));
    }

    #[test]
    fn reweighting_conventions_on_a_dimension_not_applicable() {
        // Dimensions {a, b} and {c, d}, each indicator 1/4. Unit 0 is deprived in a, with c and d
        // not applicable; unit 1 is deprived in a and c, nothing not applicable.
        let p = Profiles::from_masks(vec![0b0001, 0b0101], vec![0b1100, 0], vec![0, 0], vec![1.0; 2], 0b1111);
        let items = vec![
            (0, "one".into(), "a".into(), Rational::new(1, 4)),
            (1, "one".into(), "b".into(), Rational::new(1, 4)),
            (2, "two".into(), "c".into(), Rational::new(1, 4)),
            (3, "two".into(), "d".into(), Rational::new(1, 4)),
        ];
        let mut spec = Spec::from_weights(items, Cutoff::K(Rational::new(1, 2))).unwrap();
        spec.na = "reweight-within-dimension".parse().unwrap();
        let s = score(&p, &spec).unwrap();
        // Within dimensions: the second contributes nothing, a carries 1/4 of 1/2 applicable in
        // its own: 1/2 · (1/4)/(1/2) = 1/4. Not poor at k = 1/2.
        assert_eq!((s.score[0], s.poor[0]), (0.25, false));
        spec.na = "reweight-all".parse().unwrap();
        let s = score(&p, &spec).unwrap();
        // Over all: 1/4 failing of 1/2 applicable = 1/2: poor at k = 1/2, exactly.
        assert_eq!((s.score[0], s.poor[0]), (0.5, true));
        // Nothing not applicable: both conventions give the plain score, 1/2.
        assert_eq!((s.score[1], s.poor[1]), (0.5, true));
        assert_eq!("reweight".parse::<NaPolicy>().unwrap(), NaPolicy::Reweight);
    }

    #[test]
    fn weights_are_normalised_and_checked() {
        let items =
            vec![(0, "a".into(), "x".into(), Rational::new(1, 1)), (1, "b".into(), "y".into(), Rational::new(3, 1))];
        let s = Spec::from_weights(items, Cutoff::Union).unwrap();
        assert!(s.normalized);
        assert_eq!(s.items[1].weight, Rational::new(3, 4));
        assert!(Spec::from_weights(vec![], Cutoff::Union).is_err());
        let one = vec![(0, "a".into(), "x".into(), Rational::ONE)];
        assert!(Spec::from_weights(one.clone(), Cutoff::K(Rational::ZERO)).is_err());
        assert!(Spec::from_weights(one, Cutoff::K(Rational::new(3, 2))).is_err());
    }

    #[test]
    fn tpmap_spec_has_17_indicators_in_five_dimensions() {
        let e = Edition::bmn_2560();
        let s = Spec::tpmap(&e, DimensionMask::ALL).unwrap();
        assert_eq!(s.items.len(), 17);
        assert_eq!(s.dimensions, ["health", "living", "education", "income", "access"]);
        assert_eq!(s.integer_weights().unwrap().0, 60);
        let only_income = Spec::tpmap(&e, "00010".parse().unwrap()).unwrap();
        assert_eq!(only_income.items.len(), 3);
    }
}
