//! Matching households to programs: eligibility, deterministic rank-and-fill allocation under
//! capacities, area quotas, budgets and exclusions, and the household assistance plan.
//!
//! The allocation, program by program (higher `priority` first, then catalogue order):
//!
//! 1. **Candidates** are the households of the population (target poor by default) deprived in
//!    at least one indicator the program addresses — counted by the scoring rule. For a person
//!    program, the candidates are the members who themselves fail an addressed person-level
//!    indicator, or all members when an addressed household-level indicator is deprived.
//! 2. The eligibility rule gives pass, fail or unknown. Only *pass* is eligible; unknown
//!    (missing data) is reported for verification, never allocated.
//! 3. The eligible are **ranked by need**: deprivation score (exactly), then intensity in the
//!    program's dimensions (weighted deprivations there), then a keyed pseudonym of the household
//!    (HMAC-SHA256) — never the raw ID or the file order, so the result does not depend on either.
//! 4. **Fill** in rank order. A unit is declined, with its reason, when the household already
//!    receives this program or one it excludes, was given a program this one excludes, or when
//!    the total places, the province's or the amphoe's quota, or the budget would be exceeded. A
//!    unit that does not fit its area's quota does not stop the fill: later units in other areas
//!    may still fit.
//!
//! Exclusions bind within a household: a household given program A has no member given a
//! program that cannot be combined with A.
//!
//! ```no_run
//! use tpmap::plan::{allocate, household_plan, PlanOptions, Subjects};
//! use tpmap::programs::Catalogue;
//! use tpmap::score::{score, DimensionMask, Profiles, Spec, Unit, Welfare};
//! let got = tpmap::ingest::ingest("data-samples/households.csv".as_ref(), "data-samples/persons.csv".as_ref(), &Default::default())?;
//! let x = &got.extract;
//! let spec = Spec::tpmap(&x.edition, DimensionMask::ALL)?;
//! let profiles = Profiles::of_households(x, Unit::Households);
//! let scores = score(&profiles, &spec)?;
//! let catalogue = Catalogue::load("data-samples/catalogue.toml", &x.edition)?;
//! let subjects = Subjects::new(x, &spec, &profiles, &scores, Welfare::Validated)?;
//! let allocation = allocate(&subjects, &catalogue, &Vec::new(), &PlanOptions::default())?;
//! let gaps = household_plan(&subjects, &catalogue, &allocation).iter().filter(|l| !l.covered).count();
//! println!("{} places, {gaps} deprivations left uncovered", allocation.assignments.len());
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::collections::HashMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::areas::AreaCode;
use crate::extract::{Extract, Sex};
use crate::ids::Pseudonymizer;
use crate::indicators::{Dimension, IndicatorStatus, RecordedFor};
use crate::programs::rule::Facts;
use crate::programs::{Catalogue, Outcome, RuleStep};
use crate::score::Welfare;
use crate::score::{Profiles, Scores, Spec, Unit};
use crate::thai::PartialDate;
use crate::{Error, Result};

#[cfg(feature = "optimize")]
pub mod optimize;
pub mod served;

/// Who the plan is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Population {
    /// Target poor: poor and meeting the welfare condition (TPMAP's target).
    #[default]
    Target,
    /// Every poor household, whatever its welfare status.
    Poor,
}

text_forms!(Population, "the population", { Target => "target", Poor => "poor" });

/// Options of a plan.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// Population served. (The welfare condition that makes a poor household a target one is
    /// part of [`Subjects`].)
    pub population: Population,
    /// Date programs must be effective on (default: the catalogue's `as_of`).
    pub date: Option<PartialDate>,
    /// Key for the pseudonyms used to break ties and in work lists. Keep it secret and fixed
    /// across runs that must agree ([`PseudonymKey::resolve`] applies tpmap's policy).
    pub key: crate::ids::PseudonymKey,
    /// Most eligible units the plan decides on — places given and declined, over all programs —
    /// before it stops with an error; `None`: no limit. The plan's memory grows with them
    /// (about [`crate::ingest::partition::BYTES_PER_PLAN_DECISION`] each in a run that writes
    /// the plan), and a catalogue of many programs reaching every household makes millions: a
    /// partitioned run within `--max-memory` sets what its budget leaves for them.
    pub max_decisions: Option<u64>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            population: Population::Target,
            date: None,
            key: crate::ids::PseudonymKey::public_default(),
            max_decisions: None,
        }
    }
}

/// Everything the rules and the ranking read about households: the extract and its scores.
pub struct Subjects<'a> {
    /// The extract.
    pub x: &'a Extract,
    /// The scoring rule.
    pub spec: &'a Spec,
    /// Household profiles (statuses rolled up over members).
    pub profiles: &'a Profiles,
    /// Scores of the households.
    pub scores: &'a Scores,
    /// Target poor, per household.
    pub target: Vec<bool>,
    dims: [u64; 5],
    person_level: u64,
    /// Weight numerator per indicator bit (over `spec` weights' common denominator).
    bit_weight: [u64; 64],
}

impl<'a> Subjects<'a> {
    /// Builds the facts for `x` scored with `spec` (`profiles`, `scores` at household level).
    pub fn new(
        x: &'a Extract,
        spec: &'a Spec,
        profiles: &'a Profiles,
        scores: &'a Scores,
        welfare: Welfare,
    ) -> Result<Self> {
        if profiles.len() != x.households.len() || scores.poor.len() != x.households.len() {
            return Err(Error::Config("profiles and scores must have one entry per household".into()));
        }
        let p = &x.persons;
        let target = (0..x.households.len())
            .into_par_iter()
            .map(|h| {
                scores.poor[h]
                    && match welfare {
                        Welfare::Validated => x.members(h).any(|k| p.welfare_validated[k] == Some(true)),
                        Welfare::Registered => x.members(h).any(|k| p.welfare_registered[k] == Some(true)),
                        Welfare::None => true,
                    }
            })
            .collect();
        let mut dims = [0u64; 5];
        for it in &spec.items {
            if let Some(d) = x.edition.indicator(it.bit).dimension {
                dims[d.index()] |= 1 << it.bit;
            }
        }
        let person_level = (0..x.edition.len())
            .filter(|&i| x.edition.indicator(i).level == RecordedFor::Person)
            .fold(0u64, |m, i| m | (1 << i));
        let mut bit_weight = [0u64; 64];
        match spec.integer_weights() {
            Some((_, w)) => spec.items.iter().zip(w).for_each(|(it, w)| bit_weight[it.bit] = w),
            None => spec.items.iter().for_each(|it| bit_weight[it.bit] = 1),
        }
        Ok(Subjects { x, spec, profiles, scores, target, dims, person_level, bit_weight })
    }

    /// Deprivations that need help: counted by the scoring rule (mask), none for dropped households.
    pub fn needs(&self, h: usize) -> u64 {
        if self.scores.dropped[h] { 0 } else { self.scores.deprived[h] & self.spec.mask() }
    }

    /// Weighted deprivations of household `h` within `mask` (integer, over the spec's common
    /// denominator).
    pub fn weighted(&self, h: usize, mask: u64) -> u64 {
        let mut m = self.needs(h) & mask;
        let mut s = 0;
        while m != 0 {
            s += self.bit_weight[m.trailing_zeros() as usize];
            m &= m - 1;
        }
        s
    }

    /// Indicator weight numerators by bit.
    pub fn bit_weight(&self) -> &[u64; 64] {
        &self.bit_weight
    }

    fn score_key(&self, h: usize) -> u64 {
        match &self.scores.score_num {
            Some(n) => n[h],
            None => self.scores.score[h].to_bits(), // non-negative floats order as their bits
        }
    }

    fn in_population(&self, h: usize, pop: Population) -> bool {
        !self.scores.dropped[h]
            && match pop {
                Population::Target => self.target[h],
                Population::Poor => self.scores.poor[h],
            }
    }
}

impl Facts for Subjects<'_> {
    fn members(&self, h: usize) -> std::ops::Range<usize> {
        self.x.members(h)
    }
    fn age(&self, p: usize) -> Option<u8> {
        self.x.persons.age[p]
    }
    fn sex(&self, p: usize) -> Sex {
        self.x.persons.sex[p]
    }
    fn disabled(&self, p: usize) -> Option<bool> {
        self.x.persons.disabled[p]
    }
    fn welfare(&self, p: usize) -> (Option<bool>, Option<bool>) {
        (self.x.persons.welfare_registered[p], self.x.persons.welfare_validated[p])
    }
    fn household_size(&self, h: usize) -> u32 {
        self.x.households.members[h] as u32
    }
    fn income(&self, h: usize) -> Option<f64> {
        self.x.households.income_per_member[h]
    }
    fn score(&self, h: usize) -> Option<(u64, u64)> {
        if self.scores.dropped[h] {
            return None;
        }
        match &self.scores.score_num {
            Some(n) => Some((n[h], self.scores.denominator)),
            None => Some(((self.scores.score[h] * 1e9).round() as u64, 1_000_000_000)),
        }
    }
    fn counted(&self, h: usize) -> Option<u64> {
        (!self.scores.dropped[h]).then(|| self.needs(h))
    }
    fn dimension_mask(&self, d: Dimension) -> u64 {
        self.dims[d.index()]
    }
    fn household_status(&self, h: usize, i: usize) -> Option<IndicatorStatus> {
        let (p, bit) = (self.profiles, 1u64 << i);
        if p.present & bit == 0 {
            None
        } else if p.fail[h] & bit != 0 {
            Some(IndicatorStatus::Fail)
        } else if p.missing[h] & bit != 0 {
            Some(IndicatorStatus::Missing)
        } else if p.na[h] & bit != 0 {
            Some(IndicatorStatus::NotApplicable)
        } else {
            Some(IndicatorStatus::Pass)
        }
    }
    fn person_status(&self, p: usize, i: usize) -> Option<IndicatorStatus> {
        self.x.persons.statuses.get(p, i)
    }
    fn poor(&self, h: usize) -> bool {
        self.scores.poor[h]
    }
    fn target(&self, h: usize) -> bool {
        self.target[h]
    }
    fn village(&self, h: usize) -> &AreaCode {
        &self.x.households.village[h]
    }
    fn person_level(&self, i: usize) -> bool {
        self.person_level & (1 << i) != 0
    }
}

/// Why an eligible unit was not given a place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "program")]
pub enum Decline {
    /// The program's places were all given.
    Capacity,
    /// The province's places were all given.
    ProvinceQuota,
    /// The amphoe's places were all given.
    AmphoeQuota,
    /// The budget would be exceeded.
    Budget,
    /// The household was given a program (index) this one cannot be combined with.
    Excluded(u32),
    /// The household already receives this program or one (index) it cannot be combined with.
    AlreadyReceives(u32),
    /// Eligible, but the optimiser covered more deprivations without this unit.
    NotChosen,
}

impl Decline {
    /// A short English description.
    pub fn describe(&self, c: &Catalogue) -> String {
        match self {
            Decline::Capacity => "all places given".into(),
            Decline::ProvinceQuota => "province quota full".into(),
            Decline::AmphoeQuota => "amphoe quota full".into(),
            Decline::Budget => "budget spent".into(),
            Decline::Excluded(q) => format!("cannot be combined with {}, given first", c.programs[*q as usize].id),
            Decline::AlreadyReceives(q) => format!("already receives {}", c.programs[*q as usize].id),
            Decline::NotChosen => "not chosen: the optimiser covers more deprivations with the places elsewhere".into(),
        }
    }
}

/// A place given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Assignment {
    /// Program index.
    pub program: u32,
    /// Household row.
    pub household: u32,
    /// Person row for person programs.
    pub person: Option<u32>,
    /// 1-based rank among the program's eligible units.
    pub rank: u32,
    /// Deprivations of the household the program addresses (mask).
    pub covers: u64,
}

/// An eligible unit left without a place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Declined {
    /// Program index.
    pub program: u32,
    /// Household row.
    pub household: u32,
    /// Person row for person programs.
    pub person: Option<u32>,
    /// 1-based rank among the program's eligible units.
    pub rank: u32,
    /// Why the eligible unit got no place.
    pub reason: Decline,
}

/// What happened in one program.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProgramOutcome {
    /// Program id.
    pub id: String,
    /// Effective on the plan date.
    pub active: bool,
    /// Units in need of what it addresses.
    pub candidates: u64,
    /// Units passing the rule.
    pub eligible: u64,
    /// Units failing the rule.
    pub ineligible: u64,
    /// Units whose eligibility is unknown (missing data).
    pub unknown: u64,
    /// Units given a place.
    pub selected: u64,
    /// Eligible units declined, by reason (capacity, province_quota, amphoe_quota, budget,
    /// excluded, already_receives).
    pub declined: HashMap<&'static str, u64>,
    /// Budget used (baht).
    pub spent: u64,
    /// Distinct households reached.
    pub households: u64,
}

/// The result of an allocation.
#[derive(Clone, Debug)]
pub struct Allocation {
    /// Population served.
    pub population: Population,
    /// Date programs were checked against.
    pub date: PartialDate,
    /// Households in the population (rows).
    pub population_rows: Vec<u32>,
    /// Places given, by program (fill order) then rank.
    pub assignments: Vec<Assignment>,
    /// Eligible units left without a place.
    pub declined: Vec<Declined>,
    /// Per program, in catalogue order.
    pub programs: Vec<ProgramOutcome>,
    /// Programs in the order they were filled.
    pub fill_order: Vec<u32>,
}

impl Allocation {
    /// Budget used by all programs.
    pub fn spent(&self) -> u64 {
        self.programs.iter().fold(0u64, |a, p| a.saturating_add(p.spent))
    }
}

/// Households already receiving programs (from agencies' beneficiary lists, linked to the
/// extract): `(household row, program index)` pairs.
pub type Served = Vec<(u32, u32)>;

pub(crate) struct Candidate {
    pub household: u32,
    pub person: Option<u32>,
    pub key: (std::cmp::Reverse<u64>, std::cmp::Reverse<u64>, u128),
}

/// Runs the allocation. Deterministic: the same households, scores, catalogue, options and
/// served list give the same result whatever the order of rows in the input files.
pub fn allocate(
    subjects: &Subjects,
    catalogue: &Catalogue,
    served: &Served,
    options: &PlanOptions,
) -> Result<Allocation> {
    let (s, c, opts) = (subjects, catalogue, options);
    allocate_with_progress(s, c, served, opts, &|_, _| {})
}

/// [`allocate`], calling `progress(done, total)` after each program.
pub fn allocate_with_progress(
    s: &Subjects,
    c: &Catalogue,
    served: &Served,
    opts: &PlanOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Allocation> {
    crate::in_pool(|| allocate_in_pool(s, c, served, opts, progress))
}

/// What both allocators share: the date, the population, the tie-breaking pseudonyms.
pub(crate) struct Prepared {
    pub date: PartialDate,
    pub population: Population,
    pub population_rows: Vec<u32>,
    hh_key: HashMap<u32, u128>,
    ps: Pseudonymizer,
}

pub(crate) fn prepare(s: &Subjects, c: &Catalogue, opts: &PlanOptions) -> Result<Prepared> {
    let x = s.x;
    let wanted = c.programs.iter().fold(0u64, |m, p| m | p.rule.indicators());
    let present = s.profiles.present;
    if wanted & !present != 0 {
        let miss: Vec<String> =
            (0..64).filter(|i| wanted & !present & (1 << i) != 0).map(|i| x.edition.indicator(i).label()).collect();
        return Err(Error::Config(format!("eligibility rules read indicators not in the data: {}", miss.join(", "))));
    }
    let population_rows: Vec<u32> = (0..x.households.len() as u32)
        .into_par_iter()
        .filter(|&h| s.in_population(h as usize, opts.population))
        .collect();
    // Pseudonyms for ranking ties: HMAC of the household ID, and of the citizen ID (or household
    // ID and birth order within it when a member has none) for persons.
    let ps = opts.key.pseudonymizer();
    let hh_key: HashMap<u32, u128> = population_rows
        .par_iter()
        .map(|&h| (h, p128(ps.pseudonym_bytes(x.households.id[h as usize].0.to_string().as_bytes()))))
        .collect();
    Ok(Prepared { date: opts.date.unwrap_or(c.as_of), population: opts.population, population_rows, hh_key, ps })
}

fn p128(p: crate::ids::Pseudonym) -> u128 {
    u128::from_be_bytes(p.0[..16].try_into().expect("16 bytes"))
}

/// A program's eligible units in rank order, and the counts of candidates, ineligible and unknown.
pub(crate) fn eligible_units(s: &Subjects, c: &Catalogue, pi: usize, pre: &Prepared) -> (Vec<Candidate>, [u64; 3]) {
    let x = s.x;
    let prog = &c.programs[pi];
    let dim_mask = prog.dimensions(&x.edition).iter().fold(0u64, |m, d| m | s.dims[d.index()]);
    // Candidates and eligibility, in parallel over the population.
    let evaluated: Vec<(Candidate, Outcome)> = pre
        .population_rows
        .par_iter()
        .flat_map_iter(|&h| {
            let hu = h as usize;
            let need = s.needs(hu) & prog.addresses;
            let key_of =
                |pk: u128| (std::cmp::Reverse(s.score_key(hu)), std::cmp::Reverse(s.weighted(hu, dim_mask)), pk);
            let mut v: Vec<(Candidate, Outcome)> = Vec::new();
            if need == 0 {
                return v;
            }
            match prog.unit {
                Unit::Households => {
                    let o = prog.rule.eval(s, hu, None);
                    v.push((Candidate { household: h, person: None, key: key_of(pre.hh_key[&h]) }, o));
                }
                Unit::People => {
                    let household_need = need & !s.person_level != 0;
                    for (k, p) in x.members(hu).enumerate() {
                        let own = (0..64)
                            .filter(|i| need & s.person_level & (1 << i) != 0)
                            .any(|i| x.persons.statuses.get(p, i) == Some(IndicatorStatus::Fail));
                        if !(household_need || own) {
                            continue;
                        }
                        let o = prog.rule.eval(s, hu, Some(p));
                        let pk = match x.persons.citizen_id[p] {
                            Some(id) => p128(pre.ps.pseudonym(&id)),
                            None => p128(pre.ps.pseudonym_bytes(format!("{}/{}", x.households.id[hu].0, k).as_bytes())),
                        };
                        v.push((Candidate { household: h, person: Some(p as u32), key: key_of(pk) }, o));
                    }
                }
            }
            v
        })
        .collect();
    let candidates = evaluated.len() as u64;
    let (mut ineligible, mut unknown) = (0, 0);
    let mut eligible: Vec<Candidate> = Vec::with_capacity(evaluated.len());
    for (cand, o) in evaluated {
        match o {
            Outcome::Pass => eligible.push(cand),
            Outcome::Fail => ineligible += 1,
            Outcome::Unknown => unknown += 1,
        }
    }
    eligible.par_sort_unstable_by_key(|c| c.key);
    (eligible, [candidates, ineligible, unknown])
}

/// Amphoe number (4 digits as an integer) of household `h`.
pub(crate) fn amphoe_of(s: &Subjects, h: usize) -> usize {
    let v = s.x.households.village[h].as_str().as_bytes();
    let d = |i: usize| (v[i] - b'0') as usize;
    d(0) * 1000 + d(1) * 100 + d(2) * 10 + d(3)
}

fn allocate_in_pool(
    s: &Subjects,
    c: &Catalogue,
    served: &Served,
    opts: &PlanOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Allocation> {
    let pre = prepare(s, c, opts)?;
    // The (household, program) pairs given so far and already received, as sets of
    // `household << 32 | program`: they grow with the places and the served file, not with
    // households times programs (a bit per program of every household took 16 bytes a household
    // per 64 programs: 62 KB a household for a catalogue of 250,000 programs).
    let pair = |h: usize, p: usize| (h as u64) << 32 | p as u64;
    let mut given: hashbrown::HashSet<u64> = hashbrown::HashSet::new();
    let receives: hashbrown::HashSet<u64> = served.iter().map(|&(h, p)| pair(h as usize, p as usize)).collect();
    let bit = |v: &hashbrown::HashSet<u64>, h: usize, p: usize| v.contains(&pair(h, p));
    let mut order: Vec<usize> = (0..c.programs.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(c.programs[i].priority), i));
    let mut outcomes: Vec<ProgramOutcome> =
        c.programs.iter().map(|p| ProgramOutcome { id: p.id.clone(), ..Default::default() }).collect();
    let mut assignments = Vec::new();
    let mut declined = Vec::new();
    for (done, &pi) in order.iter().enumerate() {
        let prog = &c.programs[pi];
        let out = &mut outcomes[pi];
        out.active = prog.active_on(pre.date);
        if !out.active {
            progress(done + 1, order.len());
            continue;
        }
        let (eligible, [candidates, ineligible, unknown]) = eligible_units(s, c, pi, &pre);
        (out.candidates, out.ineligible, out.unknown, out.eligible) =
            (candidates, ineligible, unknown, eligible.len() as u64);
        // Every eligible unit is given a place or declined: a decision each, kept.
        let decided = (assignments.len() + declined.len() + eligible.len()) as u64;
        if let Some(max) = opts.max_decisions.filter(|&m| decided > m) {
            return Err(Error::Config(format!(
                "the plan's programs decide on {decided} eligible units (places given and declined) by program '{}' \
                 ({} of {} in fill order), more than the {max} it may hold (--max-plan-decisions, and within --max-memory what the \
                 budget leaves once the poor households are held, about {} bytes each): give more, or a catalogue \
                 whose programs reach fewer households",
                prog.id,
                done + 1,
                order.len(),
                crate::ingest::partition::BYTES_PER_PLAN_DECISION,
            )));
        }
        // Fill.
        let cap = prog.capacity;
        let afford = prog.affordable();
        let mut used = 0u64;
        let mut per_province = [0u32; 100];
        let mut per_amphoe: HashMap<usize, u32> = HashMap::new();
        for (r, cand) in eligible.iter().enumerate() {
            let h = cand.household as usize;
            let rank = r as u32 + 1;
            let am = amphoe_of(s, h);
            let decline =
                if let Some(q) = std::iter::once(&pi).chain(prog.excludes.iter()).find(|&&q| bit(&receives, h, q)) {
                    Some(Decline::AlreadyReceives(*q as u32))
                } else if let Some(q) = prog.excludes.iter().find(|&&q| bit(&given, h, q)) {
                    Some(Decline::Excluded(*q as u32))
                } else if cap.total.is_some_and(|t| used >= t as u64) {
                    Some(Decline::Capacity)
                } else if afford.is_some_and(|a| used >= a) {
                    Some(Decline::Budget)
                } else if cap.per_province.is_some_and(|t| per_province[am / 100] >= t) {
                    Some(Decline::ProvinceQuota)
                } else if cap.per_amphoe.is_some_and(|t| per_amphoe.get(&am).copied().unwrap_or(0) >= t) {
                    Some(Decline::AmphoeQuota)
                } else {
                    None
                };
            match decline {
                Some(reason) => {
                    *out.declined.entry(decline_key(&reason)).or_default() += 1;
                    declined.push(Declined {
                        program: pi as u32,
                        household: cand.household,
                        person: cand.person,
                        rank,
                        reason,
                    });
                }
                None => {
                    used += 1;
                    per_province[am / 100] += 1;
                    if cap.per_amphoe.is_some() {
                        *per_amphoe.entry(am).or_default() += 1;
                    }
                    given.insert(pair(h, pi));
                    assignments.push(Assignment {
                        program: pi as u32,
                        household: cand.household,
                        person: cand.person,
                        rank,
                        covers: s.needs(h) & prog.addresses,
                    });
                }
            }
        }
        out.selected = used;
        // Saturating: costs are at most MAX_BAHT, but a count of places has no bound of its own.
        out.spent = used.saturating_mul(prog.unit_cost);
        progress(done + 1, order.len());
    }
    finish(pre, assignments, declined, outcomes, order)
}

pub(crate) fn finish(
    pre: Prepared,
    assignments: Vec<Assignment>,
    declined: Vec<Declined>,
    mut outcomes: Vec<ProgramOutcome>,
    order: Vec<usize>,
) -> Result<Allocation> {
    // Distinct households per program (persons of one household are not adjacent in rank order).
    let mut seen: Vec<(u32, u32)> = assignments.iter().map(|a| (a.program, a.household)).collect();
    seen.sort_unstable();
    seen.dedup();
    for (p, _) in seen {
        outcomes[p as usize].households += 1;
    }
    Ok(Allocation {
        population: pre.population,
        date: pre.date,
        population_rows: pre.population_rows,
        assignments,
        declined,
        programs: outcomes,
        fill_order: order.iter().map(|&i| i as u32).collect(),
    })
}

pub(crate) fn decline_key(d: &Decline) -> &'static str {
    match d {
        Decline::Capacity => "capacity",
        Decline::ProvinceQuota => "province_quota",
        Decline::AmphoeQuota => "amphoe_quota",
        Decline::Budget => "budget",
        Decline::Excluded(_) => "excluded",
        Decline::AlreadyReceives(_) => "already_receives",
        Decline::NotChosen => "not_chosen",
    }
}

/// Coverage of one deprived indicator of one household.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanLine {
    /// Household row.
    pub household: u32,
    /// Indicator (edition bit).
    pub indicator: usize,
    /// Programs assigned that address it (indices).
    pub programs: Vec<u32>,
    /// Covered: a household program addressing it was given, or every member failing a
    /// person-level indicator was given a person program addressing it.
    pub covered: bool,
    /// For gaps: why, program by program ("no program covers this" when none addresses it).
    pub gap: String,
}

/// The household assistance plan: for each deprived indicator of each household of the
/// population, the programs assigned or an explicit gap with its reasons. Rows come in household
/// order, then indicator order.
pub fn household_plan(subjects: &Subjects, catalogue: &Catalogue, allocation: &Allocation) -> Vec<PlanLine> {
    let (s, c, a) = (subjects, catalogue, allocation);
    crate::in_pool(|| household_plan_in_pool(s, c, a))
}

fn household_plan_in_pool(s: &Subjects, c: &Catalogue, a: &Allocation) -> Vec<PlanLine> {
    let x = s.x;
    // Assignments and declines grouped by household.
    let mut by_h: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, asg) in a.assignments.iter().enumerate() {
        by_h.entry(asg.household).or_default().push(i);
    }
    let mut dec_h: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, d) in a.declined.iter().enumerate() {
        dec_h.entry(d.household).or_default().push(i);
    }
    // The programs addressing each indicator, once (not for every gap line): the first
    // `GAP_PROGRAMS_NAMED` of them, which a gap names, and how many there are.
    let addressing: Vec<(Vec<usize>, usize)> = (0..64)
        .map(|i| {
            let mut all = (0..c.programs.len()).filter(|&p| c.programs[p].addresses & (1 << i) != 0);
            let named: Vec<usize> = all.by_ref().take(GAP_PROGRAMS_NAMED).collect();
            let more = all.count();
            (named, more)
        })
        .collect();
    let addressing = &addressing;
    let mut rows: Vec<u32> = a.population_rows.clone();
    rows.sort_unstable();
    rows.par_iter()
        .flat_map_iter(|&h| {
            let hu = h as usize;
            let mine: &[usize] = by_h.get(&h).map(|v| v.as_slice()).unwrap_or(&[]);
            let declines: &[usize] = dec_h.get(&h).map(|v| v.as_slice()).unwrap_or(&[]);
            let need = s.needs(hu);
            (0..64usize)
                .filter(move |i| need & (1 << i) != 0)
                .map(|i| {
                    let bit = 1u64 << i;
                    let asg: Vec<&Assignment> =
                        mine.iter().map(|&k| &a.assignments[k]).filter(|g| g.covers & bit != 0).collect();
                    let mut programs: Vec<u32> = asg.iter().map(|g| g.program).collect();
                    programs.sort_unstable();
                    programs.dedup();
                    let by_household = asg.iter().any(|g| g.person.is_none());
                    let by_person = asg.iter().any(|g| g.person.is_some());
                    let covered = by_household
                        || by_person
                            && (s.person_level & bit == 0
                                || x.members(hu)
                                    .filter(|&p| x.persons.statuses.get(p, i) == Some(IndicatorStatus::Fail))
                                    .all(|p| asg.iter().any(|g| g.person == Some(p as u32))));
                    let gap = if covered { String::new() } else { gap_reason(s, c, a, hu, &addressing[i], declines) };
                    PlanLine { household: h, indicator: i, programs, covered, gap }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Programs a gap's reason names, at most (the rest are counted: "and 12 more programs address
/// it"); a catalogue may hold thousands of programs addressing one indicator, and each gap line
/// named every one of them with its rule.
pub const GAP_PROGRAMS_NAMED: usize = 16;

/// Characters of a rule's text a gap's reason quotes, at most (then "…").
pub const GAP_RULE_CHARS: usize = 200;

/// `text` cut after [`GAP_RULE_CHARS`] characters, marked "…" when cut.
fn quoted_rule(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(GAP_RULE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]).into(),
        None => text.into(),
    }
}

/// Why household `h`'s indicator is a gap, program by program over `addressing`: the first
/// programs addressing it in catalogue order (at most [`GAP_PROGRAMS_NAMED`]) and how many more
/// do.
fn gap_reason(
    s: &Subjects,
    c: &Catalogue,
    a: &Allocation,
    h: usize,
    (named, more): &(Vec<usize>, usize),
    declines: &[usize],
) -> String {
    let mut parts = Vec::new();
    for &p in named {
        let prog = &c.programs[p];
        if !a.programs[p].active {
            parts.push(format!("{}: not running on {}", prog.id, fmt_date(a.date)));
            continue;
        }
        if let Some(d) = declines.iter().map(|&k| &a.declined[k]).find(|d| d.program as usize == p) {
            parts.push(format!("{}: eligible, rank {}, {}", prog.id, d.rank, d.reason.describe(c)));
            continue;
        }
        let outcome = match prog.unit {
            Unit::Households => prog.rule.eval(s, h, None),
            Unit::People => s.x.members(h).map(|m| prog.rule.eval(s, h, Some(m))).fold(Outcome::Fail, Outcome::or),
        };
        parts.push(match outcome {
            Outcome::Fail => format!("{}: not eligible ({})", prog.id, quoted_rule(prog.rule.source.trim())),
            Outcome::Unknown => format!("{}: eligibility unknown, missing data — verify", prog.id),
            Outcome::Pass => format!("{}: some members given places, not all who fail", prog.id),
        });
    }
    if parts.is_empty() {
        return "no program covers this".into();
    }
    match more {
        0 => {}
        1 => parts.push("and 1 more program addresses it".into()),
        more => parts.push(format!("and {more} more programs address it")),
    }
    parts.join("; ")
}

fn fmt_date(d: PartialDate) -> String {
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

/// Explains the rule of `catalogue.programs[program]` for the household at row `household` (or
/// for the person at row `person` of it): every condition with its outcome and the facts it was
/// decided on — what a district officer reads.
pub fn explain(
    subjects: &Subjects,
    catalogue: &Catalogue,
    program: usize,
    household: usize,
    person: Option<usize>,
) -> (Outcome, Vec<RuleStep>) {
    catalogue.programs[program].rule.explain(subjects, household, person)
}
