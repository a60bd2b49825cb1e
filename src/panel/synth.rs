//! SYNTHETIC survey rounds for several years (`tpmap synth --years 2561,2562,2563`): the first
//! round is `tpmap synth`'s; each later one follows from the one before with household and
//! person dynamics and indicator statuses that persist with drift, and households served by a
//! program in one round leave the addressed deprivation in the next with a known extra
//! probability — the truth the follow-up estimator ([`super::effects`]) is tested against.
//!
//! Dynamics per year (defaults in [`Dynamics`]): households vanish, move (within the tambon, to
//! another province: a new house, so a new household key), split (an adult child founds a
//! household in the same house, household number 02), or are new; people die (by age), are
//! born, age, and women of 20–35 may change family name at marriage. Citizen IDs stay with the
//! person. Statuses: a household deprived in an indicator leaves it with probability `exit`
//! (plus `served_effect` when served for it), and one that is not enters with a probability
//! that keeps each indicator's share where the first round had it. By default each year's exit
//! chance is then calibrated (on the same random draws) so that the round's target poor follow
//! TPMAP's published national series scaled to the first round — 2561 1,032,987; 2562 983,316;
//! 2565 1,025,782; 2566 655,365, years between interpolated ([`TPMAP_TARGET_POOR`]); served
//! households keep their extra `served_effect`, so the effect the follow-up should find is
//! unchanged. `follow_tpmap: false` (`--stationary`) keeps `exit` every year instead.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::areas::{AreaCode, AreaLevel};
use crate::extract::{Extract, Households, Persons, Relation, Sex};
use crate::ids::{CitizenId, HouseId, HouseholdId};
use crate::indicators::{RecordedFor, Scope};
use crate::score::{DimensionMask, Profiles, Spec, Unit};
use crate::synth::{SynthOptions, Synthesizer, splitmix};
use crate::thai::PartialDate;
use crate::{Error, Result};

/// Yearly rates of the synthetic dynamics.
#[derive(Clone, Debug, Serialize)]
pub struct Dynamics {
    /// Households that vanish (leave the survey).
    pub vanish: f64,
    /// Households that move to another village of their tambon.
    pub move_tambon: f64,
    /// Households that move to another province.
    pub move_province: f64,
    /// Households of three or more where an adult child founds a household.
    pub split: f64,
    /// New households, as a share of the year's households.
    pub new: f64,
    /// Households with a woman of 18–45 that have a baby.
    pub birth: f64,
    /// Women of 20–35 who take another family name (marriage).
    pub name_change: f64,
    /// A deprived household leaves a deprivation.
    pub exit: f64,
    /// Households deprived in a TPMAP indicator that a program serves for it.
    pub served_share: f64,
    /// The program's extra probability of leaving the addressed deprivation: the true effect.
    pub served_effect: f64,
    /// Calibrate each year's exit probability so that the target poor (people in poor
    /// households with a validated welfare card) follow TPMAP's published national series,
    /// scaled to the first round ([`TPMAP_TARGET_POOR`]); `false` keeps `exit` every year
    /// (totals near the first round's).
    pub follow_tpmap: bool,
}

/// TPMAP's published national target poor (people), by TPMAP year: 2561 and 2562, 2565 and 2566
/// (`../shared/docs/domain.md`). Years between are interpolated linearly; years outside keep the
/// nearest published value.
pub const TPMAP_TARGET_POOR: [(u16, f64); 4] =
    [(2561, 1_032_987.0), (2562, 983_316.0), (2565, 1_025_782.0), (2566, 655_365.0)];

/// [`TPMAP_TARGET_POOR`] at `year`: published, interpolated between published years, or the
/// nearest published value outside them.
pub fn tpmap_target_poor(year: u16) -> f64 {
    let s = &TPMAP_TARGET_POOR;
    if year <= s[0].0 {
        return s[0].1;
    }
    for w in s.windows(2) {
        let ((y0, v0), (y1, v1)) = (w[0], w[1]);
        if year <= y1 {
            return v0 + (v1 - v0) * f64::from(year - y0) / f64::from(y1 - y0);
        }
    }
    s[s.len() - 1].1
}

impl Default for Dynamics {
    fn default() -> Self {
        Dynamics {
            vanish: 0.02,
            move_tambon: 0.015,
            move_province: 0.005,
            split: 0.02,
            new: 0.025,
            birth: 0.02,
            name_change: 0.03,
            exit: 0.35,
            served_share: 0.3,
            served_effect: 0.25,
            follow_tpmap: true,
        }
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct PanelSynthOptions {
    /// Households of the first round.
    pub households: u64,
    /// Seed.
    pub seed: u64,
    /// Only these provinces (all when empty).
    pub provinces: Vec<u8>,
    /// TPMAP years (BE), ascending and consecutive; each round's BMN survey year is one less.
    pub years: Vec<u16>,
    /// The dynamics.
    pub dynamics: Dynamics,
}

/// One served household of a round: the program and the indicator (edition position).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedRow {
    /// Household ID.
    pub household_id: u64,
    /// Program.
    pub program: String,
    /// Indicator (edition position).
    pub indicator: usize,
}

/// What the generator knows about one year's follow-up: the effect the estimator should find.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Truth {
    /// The earlier round's TPMAP year.
    pub year: u16,
    /// Served (household, indicator) pairs whose household continues.
    pub followed: u64,
    /// ... still deprived in the indicator when the year's statuses changed (after births,
    /// deaths and ageing): the pairs the program's extra probability applies to.
    pub eligible: u64,
    /// `served_effect × eligible / followed`: the expected difference in the share resolved
    /// between served and comparable unserved households.
    pub expected_effect: f64,
    /// The year's chance that a deprived household leaves a deprivation (`exit`, or the
    /// calibrated one; served households add `served_effect` to it, which keeps the effect).
    pub exit: f64,
    /// The later round's target poor (people) that calibration aimed at (0 without it) ...
    pub target_poor_goal: f64,
    /// ... and the number generated, as `tpmap panel` and `tpmap run` count them.
    pub target_poor: f64,
}

/// One generated round.
pub struct PanelRound {
    /// TPMAP year (BE).
    pub year: u16,
    /// The round's extract.
    pub extract: Extract,
    /// Households served in this round (empty for the last).
    pub served: Vec<ServedRow>,
}

/// Generates the rounds and the follow-up truth of each consecutive pair.
pub fn generate(opts: &PanelSynthOptions) -> Result<(Vec<PanelRound>, Vec<Truth>)> {
    let years = &opts.years;
    if years.is_empty() || years.len() > 20 || years.windows(2).any(|w| w[1] != w[0] + 1) {
        return Err(Error::Config("--years must be 1 to 20 consecutive TPMAP years, like 2561,2562,2563".into()));
    }
    let d = &opts.dynamics;
    for (name, p) in [
        ("vanish", d.vanish),
        ("move_tambon", d.move_tambon),
        ("move_province", d.move_province),
        ("split", d.split),
        ("new", d.new),
        ("birth", d.birth),
        ("name_change", d.name_change),
        ("exit", d.exit),
        ("served_share", d.served_share),
        ("served_effect", d.served_effect),
    ] {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::Config(format!("{name} must be a probability (0 to 1), not {p}")));
        }
    }
    if d.exit + d.served_effect > 1.0 || d.vanish + d.move_tambon + d.move_province > 1.0 {
        return Err(Error::Config("exit + served_effect and vanish + moves must be at most 1".into()));
    }
    let base = |households: u64, seed: u64, year: u16| {
        Synthesizer::new(SynthOptions { households, seed, survey_year: year - 1, provinces: opts.provinces.clone() })
    };
    let s = base(opts.households, opts.seed, years[0])?;
    let edition = s.edition().clone();
    let chunk = s.generate();
    let mut x = Extract::new(edition.clone(), chunk.households, chunk.persons);
    let spec = Spec::tpmap(&edition, DimensionMask::ALL)?;
    // Each indicator's share of deprived households among those it applies to: kept over time.
    let profiles = Profiles::of_households(&x, Unit::Households);
    let entry: Vec<f64> = (0..edition.len())
        .map(|i| {
            let bit = 1u64 << i;
            let applicable = profiles.na.iter().zip(&profiles.missing).filter(|(n, m)| (**n | **m) & bit == 0).count();
            let fail = profiles.fail.iter().filter(|f| **f & bit != 0).count();
            let p = fail as f64 / applicable.max(1) as f64;
            (d.exit * p / (1.0 - p).max(1e-9)).min(0.5)
        })
        .collect();
    // The first round's target poor, which the published series is scaled to.
    let first_target = target_poor(&x, &spec);
    let mut ids: HashSet<u64> = x.persons.citizen_id.iter().flatten().map(|c| c.as_u64()).collect();
    let mut rounds = Vec::new();
    let mut truths = Vec::new();
    let names = crate::synth::names();
    for (n, &year) in years.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(splitmix(opts.seed ^ splitmix(year as u64)));
        let served = if n + 1 < years.len() { choose_served(&x, &spec, d, &mut rng) } else { Vec::new() };
        if n + 1 < years.len() {
            let n_new = ((x.households.len() as f64) * d.new).round() as u64;
            let fresh = match n_new {
                0 => None,
                n => Some(base(n, splitmix(opts.seed ^ year as u64), year + 1)?.generate()),
            };
            let goal = d.follow_tpmap.then(|| first_target * tpmap_target_poor(year + 1) / tpmap_target_poor(years[0]));
            let mut step = Step {
                x: &x,
                d,
                entry: &entry,
                rng: &mut rng,
                ids: &mut ids,
                names: &names,
                year: year + 1,
                spec: &spec,
                goal,
            };
            let (next, truth) = step.evolve(&served, fresh)?;
            rounds.push(PanelRound { year, extract: std::mem::replace(&mut x, next), served });
            truths.push(Truth { year, ..truth });
        } else {
            rounds.push(PanelRound { year, extract: x.clone(), served });
        }
    }
    Ok((rounds, truths))
}

/// Households deprived in a TPMAP indicator are served for it with probability `served_share`,
/// by a program named after the indicator's dimension.
fn choose_served(x: &Extract, spec: &Spec, d: &Dynamics, rng: &mut ChaCha8Rng) -> Vec<ServedRow> {
    let profiles = Profiles::of_households(x, Unit::Households);
    let mut out = Vec::new();
    for h in 0..x.households.len() {
        for it in &spec.items {
            if profiles.fail[h] >> it.bit & 1 == 1 && rng.random_bool(d.served_share) {
                let dim = &spec.dimensions[it.dimension];
                out.push(ServedRow {
                    household_id: x.households.id[h].0,
                    program: format!("SYN-{dim}"),
                    indicator: it.bit,
                });
            }
        }
    }
    out
}

struct Step<'a> {
    x: &'a Extract,
    d: &'a Dynamics,
    entry: &'a [f64],
    rng: &'a mut ChaCha8Rng,
    ids: &'a mut HashSet<u64>,
    names: &'a crate::synth::Names,
    /// The next round's TPMAP year.
    year: u16,
    /// TPMAP's rule, for the target poor.
    spec: &'a Spec,
    /// The next round's target poor to calibrate to, if any.
    goal: Option<f64>,
}

/// Target poor (people) of `x`: members with a validated welfare card of households poor by
/// `spec` — what `tpmap panel` and `tpmap run` count as target poor.
fn target_poor(x: &Extract, spec: &Spec) -> f64 {
    let profiles = Profiles::of_households(x, Unit::Households);
    let w = crate::score::target_weights(x, Unit::People, crate::score::Welfare::Validated);
    let counting = spec.items.iter().fold(0u64, |m, it| m | 1 << it.bit);
    (0..x.households.len()).filter(|&h| profiles.fail[h] & counting != 0).map(|h| w[h]).sum()
}

/// The error of a round with more household rows than a `u32` (persons' household rows) holds.
fn too_many() -> Error {
    Error::Limit { file: String::new(), message: format!("a synthetic round of more than {} households", u32::MAX) }
}

/// The row the next household appended to `hh` gets, as persons refer to it.
fn next_row(hh: &Households) -> Result<u32> {
    u32::try_from(hh.id.len()).map_err(|_| too_many())
}

/// Appends household `i` of `src` to `dst` with a new key, village and house.
fn push_household(
    dst: &mut Households,
    src: &Households,
    i: usize,
    key: (HouseholdId, AreaCode, Option<HouseId>),
    year: u16,
) {
    dst.id.push(key.0);
    dst.village.push(key.1);
    dst.house_id.push(key.2);
    dst.house_no.push(src.house_no.get(i));
    dst.survey_year.push(year - 1);
    dst.members.push(0);
    dst.income_per_member.push(src.income_per_member[i]);
    dst.statuses.present = src.statuses.present;
    dst.statuses.push(src.statuses.fail[i], src.statuses.na[i], src.statuses.missing[i]);
}

fn push_person(dst: &mut Persons, src: &Persons, k: usize, household: u32) {
    dst.household.push(household);
    dst.citizen_id.push(src.citizen_id[k]);
    dst.title.push(src.title.get(k));
    dst.first_name.push(src.first_name.get(k));
    dst.last_name.push(src.last_name.get(k));
    dst.sex.push(src.sex[k]);
    dst.birth_date.push(src.birth_date[k]);
    dst.age.push(src.age[k]);
    dst.relation.push(src.relation[k]);
    dst.disabled.push(src.disabled[k]);
    dst.welfare_registered.push(src.welfare_registered[k]);
    dst.welfare_validated.push(src.welfare_validated[k]);
    dst.statuses.present = src.statuses.present;
    dst.statuses.push(src.statuses.fail[k], src.statuses.na[k], src.statuses.missing[k]);
}

impl Step<'_> {
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.random_bool(p.min(1.0))
    }

    /// A new house in `village`'s amphoe: serials from 9,000,000 up, by year (49,000 a year
    /// and amphoe; beyond that they repeat, and the reading rejects the repeated key).
    fn new_house(&mut self, village: &AreaCode, serials: &mut HashMap<u64, u64>) -> Result<(HouseId, HouseholdId)> {
        let amphoe: u64 = village.at(AreaLevel::Amphoe).map_or(0, |a| a.as_str().parse().unwrap_or(0));
        // Counted per amphoe: one counter for the whole round repeated keys at the national
        // scale (3,365 of 13 M households rejected), an amphoe's moves and new households are
        // about 700 a year.
        let serial = serials.entry(amphoe).or_default();
        *serial += 1;
        let house = amphoe * 10_000_000 + 9_000_000 + (self.year as u64 % 20) * 49_000 + *serial % 49_000;
        let id = HouseholdId(house * 100 + 1);
        let house = format!("{house:011}").parse::<HouseId>()?;
        Ok((house, id))
    }

    /// A citizen ID not used before, registered in `village`'s amphoe.
    fn new_citizen_id(&mut self, village: &AreaCode, born: u16) -> Option<CitizenId> {
        let amphoe: u64 = village.at(AreaLevel::Amphoe).map_or(0, |a| a.as_str().parse().unwrap_or(0));
        let kind = if born >= 1984 { 1 } else { 3 };
        for _ in 0..64 {
            let serial = self.rng.random_range(0..10_000_000u64);
            let mut body = kind * 100_000_000_000 + amphoe * 10_000_000 + serial;
            let mut d = [0u8; 12];
            for slot in d.iter_mut().rev() {
                *slot = (body % 10) as u8;
                body /= 10;
            }
            let id = CitizenId::with_check_digit(&d);
            if self.ids.insert(id.as_u64()) {
                return Some(id);
            }
        }
        None
    }

    /// The next round from this one, with the served list's effect applied.
    #[allow(clippy::needless_range_loop)] // `i` indexes a dozen columns of the earlier round
    fn evolve(&mut self, served: &[ServedRow], fresh: Option<crate::synth::SynthChunk>) -> Result<(Extract, Truth)> {
        let x = self.x;
        let e = x.edition.clone();
        let (h0, p0) = (&x.households, &x.persons);
        let reference = PartialDate { year: self.year - 1 - 543, month: 3, day: 31 };
        // Villages by tambon, and all villages, for moves.
        let mut villages: Vec<AreaCode> = h0.village.clone();
        villages.sort_unstable();
        villages.dedup();
        let mut by_tambon: BTreeMap<AreaCode, Vec<AreaCode>> = BTreeMap::new();
        for v in &villages {
            by_tambon.entry(v.at(AreaLevel::Tambon).unwrap_or(*v)).or_default().push(*v);
        }
        let mut hh = Households::default();
        let mut ps = Persons::default();
        let mut successor: Vec<Option<u32>> = vec![None; h0.len()];
        let mut serial: HashMap<u64, u64> = HashMap::new();
        let d = self.d.clone();
        for i in 0..h0.len() {
            if self.chance(d.vanish) {
                continue;
            }
            // Who lives on.
            let mut keep: Vec<usize> = Vec::new();
            for k in x.members(i) {
                let age = p0.birth_date[k].map_or(p0.age[k].unwrap_or(30) as i32, |b| b.age_on(reference));
                let q = match age {
                    ..60 => 0.002,
                    60..80 => 0.02,
                    _ => 0.08,
                };
                if !self.chance(q) {
                    keep.push(k);
                }
            }
            if keep.is_empty() {
                continue;
            }
            let roll: f64 = self.rng.random();
            let v = h0.village[i];
            let (village, house, id) = if roll < d.move_province {
                let others: Vec<&AreaCode> = villages.iter().filter(|w| w.province() != v.province()).collect();
                let w = if others.is_empty() { v } else { *others[self.rng.random_range(0..others.len())] };
                let (house, id) = self.new_house(&w, &mut serial)?;
                (w, Some(house), id)
            } else if roll < d.move_province + d.move_tambon {
                let list = &by_tambon[&v.at(AreaLevel::Tambon).unwrap_or(v)];
                let w = list[self.rng.random_range(0..list.len())];
                let (house, id) = self.new_house(&w, &mut serial)?;
                (w, Some(house), id)
            } else {
                (v, h0.house_id[i], h0.id[i])
            };
            // An adult child founding a household.
            let child = if keep.len() >= 3 && self.chance(d.split) {
                keep.iter().position(|&k| {
                    p0.relation[k] == Relation::Child
                        && p0.birth_date[k].is_some_and(|b| (18..=45).contains(&b.age_on(reference)))
                })
            } else {
                None
            };
            let child = child.map(|pos| keep.remove(pos));
            let row = next_row(&hh)?;
            push_household(&mut hh, h0, i, (id, village, house), self.year);
            successor[i] = Some(row);
            for &k in &keep {
                push_person(&mut ps, p0, k, row);
                let age = p0.birth_date[k].map_or(0, |b| b.age_on(reference));
                if p0.sex[k] == Sex::Female && (20..=35).contains(&age) && self.chance(d.name_change) {
                    let family = self.names.family[self.rng.random_range(0..self.names.family.len())];
                    ps.last_name.replace_last(family);
                }
            }
            // A baby, to a household with a woman of 18-45.
            let mother = keep.iter().any(|&k| {
                p0.sex[k] == Sex::Female && p0.birth_date[k].is_some_and(|b| (18..=45).contains(&b.age_on(reference)))
            });
            if mother && self.chance(d.birth) {
                let born_day = reference.days_since_epoch() - self.rng.random_range(1..360);
                let born = PartialDate::from_days_since_epoch(born_day).unwrap_or(reference);
                if let Some(cid) = self.new_citizen_id(&village, born.year) {
                    let male = self.rng.random_bool(0.51);
                    let given = if male { &self.names.male } else { &self.names.female };
                    let given = given[self.rng.random_range(0..given.len())];
                    ps.household.push(row);
                    ps.citizen_id.push(Some(cid));
                    ps.title.push(if male { "ด.ช." } else { "ด.ญ." });
                    ps.first_name.push(given);
                    ps.last_name.push(p0.last_name.get(keep[0]));
                    ps.sex.push(if male { Sex::Male } else { Sex::Female });
                    ps.birth_date.push(Some(born));
                    ps.age.push(Some(0));
                    ps.relation.push(if p0.relation[keep[0]] == Relation::Head {
                        Relation::Child
                    } else {
                        Relation::Grandchild
                    });
                    ps.disabled.push(Some(false));
                    ps.welfare_registered.push(Some(false));
                    ps.welfare_validated.push(Some(false));
                    ps.statuses.push(0, 0, 0);
                }
            }
            if let Some(k) = child {
                let number = id.0 % 100 + 1;
                let child_id = HouseholdId(id.0 - id.0 % 100 + number.min(99));
                let crow = next_row(&hh)?;
                push_household(&mut hh, h0, i, (child_id, village, house), self.year);
                push_person(&mut ps, p0, k, crow);
                let last = ps.relation.len() - 1;
                ps.relation[last] = Relation::Head;
            }
        }
        // New households from a fresh synthetic set: new houses and citizen IDs.
        if let Some(f) = fresh {
            let offset = next_row(&hh)?;
            let (fh, fp) = (f.households, f.persons);
            for i in 0..fh.len() {
                let (house, id) = self.new_house(&fh.village[i], &mut serial)?;
                push_household(&mut hh, &fh, i, (id, fh.village[i], Some(house)), self.year);
            }
            for k in 0..fp.len() {
                let row = fp.household[k].checked_add(offset).ok_or_else(too_many)?;
                push_person(&mut ps, &fp, k, row);
                let v = hh.village[row as usize];
                let born = fp.birth_date[k].map_or(1980, |b| b.year);
                let last = ps.citizen_id.len() - 1;
                ps.citizen_id[last] = self.new_citizen_id(&v, born);
            }
        }
        // Ages on the new reference date, names at marriage, and each status's scope.
        for k in 0..ps.len() {
            if let Some(b) = ps.birth_date[k] {
                ps.age[k] = Some(b.age_on(reference).clamp(0, 120) as u8);
            }
            for i in 0..e.len() {
                let ind = e.indicator(i);
                if ind.level != RecordedFor::Person || ps.statuses.present >> i & 1 == 0 {
                    continue;
                }
                let bit = 1u64 << i;
                if matches!(ind.scope, Scope::M3Leaver | Scope::Reported) {
                    continue;
                }
                match ind.scope.applies_to(ps.age[k], ps.disabled[k]) {
                    Some(true) if ps.statuses.na[k] & bit != 0 => ps.statuses.na[k] &= !bit,
                    Some(false) => {
                        ps.statuses.na[k] |= bit;
                        ps.statuses.fail[k] &= !bit;
                        ps.statuses.missing[k] &= !bit;
                    }
                    _ => {}
                }
            }
        }
        let mut next = Extract::new(e.clone(), hh, ps);
        for h in 0..next.households.len() {
            next.households.members[h] = u16::try_from(next.members(h).len()).unwrap_or(u16::MAX);
        }
        // Statuses: persistence and drift, and the program's effect.
        let row_of: std::collections::HashMap<u64, usize> = h0.id.iter().enumerate().map(|(i, id)| (id.0, i)).collect();
        let mut boosted: HashSet<(u32, usize)> = HashSet::new();
        let mut followed = 0u64;
        for s in served {
            if let Some(j) = row_of.get(&s.household_id).and_then(|&i| successor[i]) {
                followed += 1;
                boosted.insert((j, s.indicator));
            }
        }
        let profiles = Profiles::of_households(&next, Unit::Households);
        // One uniform draw per (household, applicable indicator): the outcome under any exit
        // chance follows from it, so calibration can try exit chances on the same draws.
        struct Pair {
            household: u32,
            indicator: u8,
            deprived: bool,
            served: bool,
            u: f64,
        }
        let mut pairs: Vec<Pair> = Vec::new();
        let mut eligible = 0u64;
        let rows = u32::try_from(next.households.len()).map_err(|_| too_many())?;
        for row in 0..rows {
            let j = row as usize;
            // Indicators number at most 64 (edition positions are profile bits).
            for (i, indicator) in (0..e.len()).zip(0u8..64) {
                let bit = 1u64 << i;
                if profiles.present & bit == 0 || (profiles.na[j] | profiles.missing[j]) & bit != 0 {
                    continue;
                }
                let deprived = profiles.fail[j] & bit != 0;
                let served = deprived && boosted.contains(&(row, i));
                eligible += served as u64;
                let u = self.rng.random::<f64>();
                pairs.push(Pair { household: row, indicator, deprived, served, u });
            }
        }
        let after = |p: &Pair, exit: f64| -> bool {
            if p.deprived {
                p.u >= exit + if p.served { d.served_effect } else { 0.0 }
            } else {
                p.u < self.entry[p.indicator as usize]
            }
        };
        // Exit chances from 0 to 1 − served_effect (so that served households keep their extra
        // chance): θ in [−1, 1], `exit` at θ = 0. The target poor fall as θ rises.
        let exit_at =
            |t: f64| if t >= 0.0 { d.exit + t * (1.0 - d.served_effect - d.exit) } else { d.exit * (1.0 + t) };
        let weights = crate::score::target_weights(&next, Unit::People, crate::score::Welfare::Validated);
        let counting = self.spec.items.iter().fold(0u64, |m, it| m | 1 << it.bit);
        let target_at = |exit: f64| -> f64 {
            let mut poor = vec![false; next.households.len()];
            for p in pairs.iter().filter(|p| counting >> p.indicator & 1 == 1) {
                if after(p, exit) {
                    poor[p.household as usize] = true;
                }
            }
            poor.iter().zip(&weights).filter(|(p, _)| **p).map(|(_, w)| w).sum()
        };
        let exit = match self.goal {
            None => d.exit,
            Some(goal) => {
                // Bisection on θ (the count is monotone in it: the same draws, a larger exit).
                let (mut lo, mut hi) = (-1.0f64, 1.0f64);
                if target_at(exit_at(lo)) <= goal {
                    hi = lo;
                } else if target_at(exit_at(hi)) >= goal {
                    lo = hi;
                }
                for _ in 0..40 {
                    if hi - lo < 1e-9 {
                        break;
                    }
                    let mid = (lo + hi) / 2.0;
                    if target_at(exit_at(mid)) > goal { lo = mid } else { hi = mid }
                }
                let (a, b) = (exit_at(lo), exit_at(hi));
                if (target_at(a) - goal).abs() <= (target_at(b) - goal).abs() { a } else { b }
            }
        };
        for p in &pairs {
            let now = after(p, exit);
            if now != p.deprived {
                set_deprived(&mut next, p.household as usize, p.indicator as usize, now, self.rng);
            }
        }
        let truth = Truth {
            year: 0,
            followed,
            eligible,
            expected_effect: if followed > 0 { d.served_effect * eligible as f64 / followed as f64 } else { 0.0 },
            exit,
            target_poor_goal: self.goal.unwrap_or(0.0),
            target_poor: target_poor(&next, self.spec),
        };
        Ok((next, truth))
    }
}

/// Makes household `h` deprived in indicator `i` or not: the household's own status, or its
/// members' (one member in scope fails; all pass). An income indicator moves the household's
/// income per member across the threshold, so that reading the round derives the same status.
fn set_deprived(x: &mut Extract, h: usize, i: usize, deprived: bool, rng: &mut ChaCha8Rng) {
    let bit = 1u64 << i;
    let ind = x.edition.indicator(i);
    let hs = &mut x.households.statuses;
    if hs.present & bit != 0 {
        if (hs.na[h] | hs.missing[h]) & bit != 0 {
            return;
        }
        if deprived {
            hs.fail[h] |= bit;
        } else {
            hs.fail[h] &= !bit;
        }
        if let (Some(t), Some(_)) = (ind.income_threshold, x.households.income_per_member[h]) {
            let f = if deprived { rng.random_range(0.5..0.95) } else { rng.random_range(1.05..2.0) };
            x.households.income_per_member[h] = Some((t * f).round());
        }
        return;
    }
    let members = x.members(h);
    let ps = &mut x.persons.statuses;
    if deprived {
        if let Some(k) = members.clone().find(|&k| (ps.na[k] | ps.missing[k] | ps.fail[k]) & bit == 0) {
            ps.fail[k] |= bit;
        }
    } else {
        for k in members {
            ps.fail[k] &= !bit;
        }
    }
}

/// Households of the first round up to which [`generate_into`] makes all provinces together;
/// above, it makes them a group of provinces at a time (groups of at most this many households),
/// holding two rounds of one group in memory instead of two national rounds (about 24 GB).
pub const GROUP_HOUSEHOLDS: u64 = 2_000_000;

/// What [`generate_into`] wrote.
#[derive(Clone, Debug, Serialize)]
pub struct Written {
    /// TPMAP years.
    pub years: Vec<u16>,
    /// Households of each round.
    pub households: Vec<u64>,
    /// The follow-up truth of each consecutive pair.
    pub truths: Vec<Truth>,
    /// The groups of provinces made one after the other (one empty group: all provinces
    /// together).
    pub groups: Vec<Vec<u8>>,
}

/// Generates the rounds and writes them to `dir` as [`write`] does. Up to
/// [`GROUP_HOUSEHOLDS`] households all provinces are made together; above, a group of
/// consecutive provinces at a time (each with its share of the households, as a national set
/// would give them), so that a national panel fits an office machine: a household that moves
/// to another province then moves to one of its group's. The truth adds up over the groups
/// (followed and eligible pairs, target poor; the exit chance is the groups' mean weighted by
/// their followed pairs).
pub fn generate_into(opts: &PanelSynthOptions, dir: &Path) -> Result<Written> {
    generate_in_groups(opts, dir, GROUP_HOUSEHOLDS)
}

/// [`generate_into`] with groups of at most `group_households` households (a province larger
/// than that is a group of its own).
pub fn generate_in_groups(opts: &PanelSynthOptions, dir: &Path, group_households: u64) -> Result<Written> {
    let groups: Vec<(Vec<u8>, u64)> = if opts.households <= group_households {
        vec![(opts.provinces.clone(), opts.households)]
    } else {
        let year = opts.years.first().copied().unwrap_or(2561);
        let plan = Synthesizer::new(SynthOptions {
            households: opts.households,
            seed: opts.seed,
            survey_year: year.saturating_sub(1),
            provinces: opts.provinces.clone(),
        })?;
        let mut groups: Vec<(Vec<u8>, u64)> = Vec::new();
        for (province, n) in plan.households_by_province() {
            match groups.last_mut() {
                Some((ps, total)) if *total + n <= group_households => {
                    ps.push(province);
                    *total += n;
                }
                _ => groups.push((vec![province], n)),
            }
        }
        groups
    };
    let mut w = Writer::new(dir)?;
    let mut truths: Vec<Truth> = Vec::new();
    let mut weights: Vec<f64> = Vec::new();
    for (provinces, households) in &groups {
        let sub = PanelSynthOptions { households: *households, provinces: provinces.clone(), ..opts.clone() };
        let (rounds, group_truths) = generate(&sub)?;
        w.push(&rounds)?;
        drop(rounds);
        if truths.is_empty() {
            weights = group_truths.iter().map(|t| t.followed as f64 * t.exit).collect();
            truths = group_truths;
            continue;
        }
        for ((all, t), wt) in truths.iter_mut().zip(group_truths).zip(weights.iter_mut()) {
            all.followed += t.followed;
            all.eligible += t.eligible;
            all.target_poor_goal += t.target_poor_goal;
            all.target_poor += t.target_poor;
            *wt += t.followed as f64 * t.exit;
        }
    }
    for (t, wt) in truths.iter_mut().zip(&weights) {
        let followed = t.followed as f64;
        t.expected_effect =
            if t.followed > 0 { opts.dynamics.served_effect * t.eligible as f64 / followed } else { 0.0 };
        if t.followed > 0 {
            t.exit = wt / followed;
        }
    }
    let households = w.households.clone();
    w.finish(&truths, &opts.dynamics)?;
    Ok(Written { years: opts.years.clone(), households, truths, groups: groups.into_iter().map(|g| g.0).collect() })
}

/// Writes each round to `dir/<year>/` (`households.parquet`, `persons.parquet`, and
/// `served.csv` but for the last round) and `dir/truth.json`, every file marked SYNTHETIC.
/// Households are written in village order (as TPMAP's extracts are), their members with them.
pub fn write(rounds: &[PanelRound], truths: &[Truth], dynamics: &Dynamics, dir: &Path) -> Result<()> {
    let mut w = Writer::new(dir)?;
    w.push(rounds)?;
    w.finish(truths, dynamics)
}

/// Rounds written as they come, a group of provinces after another, into a staging folder.
struct Writer {
    stage: crate::output::Staging,
    years: Vec<u16>,
    households: Vec<u64>,
    files:
        Vec<(crate::frame::ParquetAppender, crate::frame::ParquetAppender, Option<std::io::BufWriter<std::fs::File>>)>,
    meta: Vec<(String, String)>,
}

impl Writer {
    fn new(dir: &Path) -> Result<Writer> {
        let stage = crate::output::Staging::new(dir)?;
        let meta = crate::frame::synthetic_metadata(crate::synth::SYNTHETIC_NOTICE);
        Ok(Writer { stage, years: Vec::new(), households: Vec::new(), files: Vec::new(), meta })
    }

    /// Appends one group's rounds (the same years each time).
    fn push(&mut self, rounds: &[PanelRound]) -> Result<()> {
        use std::io::Write;
        let years: Vec<u16> = rounds.iter().map(|r| r.year).collect();
        if self.files.is_empty() {
            for (i, r) in rounds.iter().enumerate() {
                let d = self.stage.path().join(r.year.to_string());
                std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
                let served = if i + 1 == rounds.len() {
                    None
                } else {
                    let p = d.join("served.csv");
                    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).map_err(|e| Error::io(&p, e))?);
                    write!(f, "# {}\nhousehold_id,program,indicator\n", crate::synth::SYNTHETIC_NOTICE)
                        .map_err(|e| Error::io(&p, e))?;
                    Some(f)
                };
                self.files.push((
                    crate::frame::ParquetAppender::new(&d.join("households.parquet"), &self.meta),
                    crate::frame::ParquetAppender::new(&d.join("persons.parquet"), &self.meta),
                    served,
                ));
            }
            self.households = vec![0; rounds.len()];
            self.years = years;
        } else if years != self.years {
            return Err(Error::Config("internal: the groups of a synthetic panel have different years".into()));
        }
        for ((r, (hh, ps, served)), n) in rounds.iter().zip(&mut self.files).zip(&mut self.households) {
            // Village order (stable: the generator's order within a village).
            let x = &r.extract;
            let sorted;
            let x = if x.households.village.is_sorted() {
                x
            } else {
                let mut order: Vec<u32> = (0u32..).take(x.households.len()).collect();
                order.sort_by_key(|&h| x.households.village[h as usize]);
                sorted = x.select(&order);
                &sorted
            };
            crate::frame::append_households(hh, &x.households, &x.edition)?;
            crate::frame::append_persons(ps, &x.persons, &x.households.id, &x.edition)?;
            *n += x.households.len() as u64;
            if let Some(f) = served {
                for s in &r.served {
                    writeln!(f, "{},{},{}", s.household_id, s.program, x.edition.indicator(s.indicator).label())
                        .map_err(|e| Error::io(Path::new("served.csv"), e))?;
                }
            }
        }
        Ok(())
    }

    fn finish(self, truths: &[Truth], dynamics: &Dynamics) -> Result<()> {
        use std::io::Write;
        for (hh, ps, served) in self.files {
            hh.finish()?;
            ps.finish()?;
            if let Some(mut f) = served {
                f.flush().map_err(|e| Error::io(Path::new("served.csv"), e))?;
            }
        }
        let truth = serde_json::json!({
            "notice": crate::synth::SYNTHETIC_NOTICE,
            "years": self.years,
            "households": self.households,
            "dynamics": dynamics,
            "follow_up": truths,
        });
        let p = self.stage.path().join("truth.json");
        std::fs::write(&p, serde_json::to_string_pretty(&truth)?).map_err(|e| Error::io(&p, e))?;
        self.stage.commit()
    }
}
