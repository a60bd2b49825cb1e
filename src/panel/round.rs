//! One survey round as the panel keeps it: per household its keys, village, deprivations and
//! status, per person its household and citizen ID — not the whole extract (a national round is
//! about 1.4 GB this way, against several GB of extract), so that two national rounds are
//! compared in bounded memory. The names, birth dates and house numbers that matching by
//! linkage needs are kept apart ([`PersonText`]), for the persons it may need them for.
//!
//! A round is built from an extract ([`Round::of`]) or from its parts read a wave of provinces
//! at a time, appended in wave order ([`Round::append`]).

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use super::PanelOptions;
use crate::areas::AreaCode;
use crate::extract::{Extract, Sex, StrColumn};
use crate::ids::{CitizenId, HouseId, HouseholdId};
use crate::indicators::Edition;
use crate::link::records::{InternedColumn, RawRecord};
use crate::score::{Profiles, Spec, Unit};
use crate::spill::SpillFile;
use crate::thai::PartialDate;
use crate::{Error, Result};

/// What the panel keeps of each household of a round (one entry per household, in the round's
/// order).
#[derive(Clone, Debug, Default)]
pub struct RoundHouseholds {
    /// Household key.
    pub id: Vec<HouseholdId>,
    /// Village.
    pub village: Vec<AreaCode>,
    /// House ID, when the round has one.
    pub house_id: Vec<Option<HouseId>>,
    /// Deprived (failing) indicators, as edition bits.
    pub fail: Vec<u64>,
    /// Deprived indicators that count in TPMAP's rule, as edition bits.
    pub deprived: Vec<u64>,
    /// Deprivation score.
    pub score: Vec<f64>,
    /// Poor by TPMAP's rule, decided exactly.
    pub poor: Vec<bool>,
    /// Target poor: poor and meeting the welfare condition.
    pub target: Vec<bool>,
}

impl RoundHouseholds {
    /// Number of households.
    pub fn len(&self) -> usize {
        self.id.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }
}

/// What the panel keeps of each person: household row and citizen ID, grouped by household.
#[derive(Clone, Debug, Default)]
pub struct RoundPersons {
    /// Household row of each person.
    pub household: Vec<u32>,
    /// Citizen ID, when the person has a valid one.
    pub citizen_id: Vec<Option<CitizenId>>,
}

impl RoundPersons {
    /// Number of persons.
    pub fn len(&self) -> usize {
        self.household.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.household.is_empty()
    }
}

/// One round, scored by TPMAP's rule with the panel's dimensions and welfare condition.
#[derive(Debug)]
pub struct Round {
    /// The indicator edition of the round.
    pub edition: Arc<Edition>,
    /// The spec scored with.
    pub spec: Spec,
    /// Households.
    pub households: RoundHouseholds,
    /// Persons, grouped by household.
    pub persons: RoundPersons,
    /// `member_offsets[h]..member_offsets[h + 1]` are household `h`'s persons.
    member_offsets: Vec<u32>,
    /// Households by key, built on first use.
    household_index: OnceLock<hashbrown::HashTable<u32>>,
    /// Persons by citizen ID, built on first use ([`Round::forget_person_index`]).
    person_index: OnceLock<hashbrown::HashTable<u32>>,
}

/// The integer mix of the ingest's duplicate check.
pub(super) fn mix(key: u64) -> u64 {
    use std::hash::BuildHasher;
    crate::ingest::IdHash::default().hash_one(key)
}

impl Round {
    /// Scores `x` by TPMAP's rule with `opts`' dimensions and welfare condition and keeps what
    /// the panel needs of it.
    pub fn of(x: &Extract, opts: &PanelOptions) -> Result<Round> {
        let spec = Spec::tpmap(&x.edition, opts.mask)?;
        let profiles = Profiles::of_households(x, Unit::Households);
        let scores = crate::score::score(&profiles, &spec)?;
        let w = crate::score::target_weights(x, Unit::Households, opts.welfare);
        let target = scores.poor.iter().zip(&w).map(|(&p, &w)| p && w > 0.0).collect();
        let h = &x.households;
        Ok(Round {
            edition: x.edition.clone(),
            spec,
            households: RoundHouseholds {
                id: h.id.clone(),
                village: h.village.clone(),
                house_id: h.house_id.clone(),
                fail: profiles.fail,
                deprived: scores.deprived,
                score: scores.score,
                poor: scores.poor,
                target,
            },
            persons: RoundPersons { household: x.persons.household.clone(), citizen_id: x.persons.citizen_id.clone() },
            member_offsets: x.member_offsets.clone(),
            household_index: OnceLock::new(),
            person_index: OnceLock::new(),
        })
    }

    /// Appends `other`'s households and persons after these (a later wave of the same round:
    /// the same edition and spec). Refused when the rows would no longer be numbered by 32 bits.
    pub fn append(&mut self, other: Round) -> Result<()> {
        if self.edition.id != other.edition.id || self.spec.mask() != other.spec.mask() {
            return Err(Error::Config("internal: the waves of one round were scored differently".into()));
        }
        // Both totals below u32::MAX, so that these counts and every shifted row fit a u32.
        let total = |a: usize, b: usize| a.checked_add(b).filter(|&n| n < u32::MAX as usize);
        let fits = total(self.households.len(), other.households.len()).is_some()
            && total(self.persons.len(), other.persons.len()).is_some();
        let (Ok(h0), Ok(p0), true) = (u32::try_from(self.households.len()), u32::try_from(self.persons.len()), fits)
        else {
            return Err(Error::Limit { file: String::new(), message: format!("a round of {} rows or more", u32::MAX) });
        };
        let (a, b) = (&mut self.households, other.households);
        a.id.extend(b.id);
        a.village.extend(b.village);
        a.house_id.extend(b.house_id);
        a.fail.extend(b.fail);
        a.deprived.extend(b.deprived);
        a.score.extend(b.score);
        a.poor.extend(b.poor);
        a.target.extend(b.target);
        self.persons.household.extend(other.persons.household.iter().map(|&h| h + h0));
        self.persons.citizen_id.extend(other.persons.citizen_id);
        self.member_offsets.pop();
        self.member_offsets.extend(other.member_offsets.iter().map(|&o| o + p0));
        (self.household_index, self.person_index) = (OnceLock::new(), OnceLock::new());
        Ok(())
    }

    /// Makes room for `households` and `persons` more rows, exactly: a round read a wave at a
    /// time reserves its whole size after the first wave, so that its columns are not doubled
    /// and copied as the waves are appended (a national round held 2.0 GiB of columns grown by
    /// doubling against 1.2 GiB of rows; docs/bench/panel-national.txt).
    pub fn reserve(&mut self, households: usize, persons: usize) {
        let h = &mut self.households;
        h.id.reserve_exact(households);
        h.village.reserve_exact(households);
        h.house_id.reserve_exact(households);
        h.fail.reserve_exact(households);
        h.deprived.reserve_exact(households);
        h.score.reserve_exact(households);
        h.poor.reserve_exact(households);
        h.target.reserve_exact(households);
        self.member_offsets.reserve_exact(households);
        self.persons.household.reserve_exact(persons);
        self.persons.citizen_id.reserve_exact(persons);
    }

    /// Bytes held on the heap: every column's allocation and the indices, once built.
    pub fn heap_bytes(&self) -> u64 {
        let index = [&self.household_index, &self.person_index]
            .iter()
            .map(|i| i.get().map_or(0, |t| t.allocation_size() as u64))
            .fold(0u64, u64::saturating_add);
        self.column_bytes().saturating_add(index)
    }

    /// Bytes the columns hold on the heap, without the indices (which a memory budget counts
    /// apart, [`crate::panel::rounds::pair_bytes`]).
    pub fn column_bytes(&self) -> u64 {
        use crate::memory::vec_bytes;
        let h = &self.households;
        [
            vec_bytes(&h.id),
            vec_bytes(&h.village),
            vec_bytes(&h.house_id),
            vec_bytes(&h.fail),
            vec_bytes(&h.deprived),
            vec_bytes(&h.score),
            vec_bytes(&h.poor),
            vec_bytes(&h.target),
            vec_bytes(&self.persons.household),
            vec_bytes(&self.persons.citizen_id),
            vec_bytes(&self.member_offsets),
        ]
        .into_iter()
        .fold(0u64, u64::saturating_add)
    }

    /// The persons of household `h`.
    pub fn members(&self, h: usize) -> Range<usize> {
        self.member_offsets[h] as usize..self.member_offsets[h + 1] as usize
    }

    /// Deprived (counting) indicators of household `h`, as edition bits.
    pub fn deprived(&self, h: usize) -> u64 {
        self.households.deprived[h]
    }

    /// The households by key: a table of row numbers (4 bytes a slot; the keys are read from
    /// the round's own columns), hashed with the integer mix of the ingest's duplicate check.
    fn household_index(&self) -> &hashbrown::HashTable<u32> {
        self.household_index.get_or_init(|| {
            let h = &self.households;
            let mut index = hashbrown::HashTable::with_capacity(h.len());
            // Rows are below u32::MAX (checked where rounds are built and appended).
            for (row, id) in (0u32..).zip(&h.id) {
                let key = mix(id.0);
                if index.find(key, |&r| h.id[r as usize] == *id).is_none() {
                    index.insert_unique(key, row, |&r| mix(h.id[r as usize].0));
                }
            }
            index
        })
    }

    /// The persons by citizen ID, as [`Round::household_index`].
    fn person_index(&self) -> &hashbrown::HashTable<u32> {
        self.person_index.get_or_init(|| {
            let p = &self.persons;
            let mut index = hashbrown::HashTable::with_capacity(p.citizen_id.iter().flatten().count());
            for (row, id) in (0u32..).zip(&p.citizen_id) {
                if let Some(id) = id {
                    let key = mix(id.as_u64());
                    if index.find(key, |&r| p.citizen_id[r as usize] == Some(*id)).is_none() {
                        index.insert_unique(key, row, |&r| mix(p.citizen_id[r as usize].map_or(0, |c| c.as_u64())));
                    }
                }
            }
            index
        })
    }

    /// Frees the persons' index (rebuilt should it be needed again): once the flows are counted
    /// nothing looks a person up (a national round's takes about 0.33 GB).
    pub(super) fn forget_person_index(&mut self) {
        self.person_index = OnceLock::new();
    }

    /// The household row with key `id` (the first, should a key repeat).
    pub fn household_of_key(&self, id: HouseholdId) -> Option<u32> {
        let h = &self.households.id;
        self.household_index().find(mix(id.0), |&r| h[r as usize] == id).copied()
    }

    /// The household row of the person with citizen ID `id` (IDs are unique within a round:
    /// the reading rejects repeats).
    pub fn household_of_person(&self, id: CitizenId) -> Option<u32> {
        let c = &self.persons.citizen_id;
        self.person_index()
            .find(mix(id.as_u64()), |&r| c[r as usize] == Some(id))
            .map(|&r| self.persons.household[r as usize])
    }

    /// Checks that the rows fit the panel's 32-bit numbering.
    pub(super) fn check_rows(&self) -> Result<()> {
        if self.households.len() >= u32::MAX as usize || self.persons.len() >= u32::MAX as usize {
            return Err(Error::Limit {
                file: String::new(),
                message: format!("a round of {} households or persons or more", u32::MAX),
            });
        }
        Ok(())
    }
}

/// The names, birth dates and sexes of some of a round's persons and the house numbers of its
/// households: what matching households by linkage needs (the panel's third route). Names are
/// interned (a `u32` a name), so keeping every person of a national round costs about 20 bytes
/// a person.
#[derive(Debug, Default)]
pub struct PersonText {
    /// Person rows (of the round) kept, ascending; `None`: every person.
    rows: Option<Vec<usize>>,
    title: InternedColumn,
    first: InternedColumn,
    last: InternedColumn,
    birth: Vec<Option<PartialDate>>,
    sex: Vec<Sex>,
    /// Per household of the round (shared with the texts [`PersonText::subset`] makes).
    house_no: Arc<StrColumn>,
    persons: usize,
}

impl PersonText {
    /// The text of `x`'s persons: every person with `keep` `None`, else the members of the
    /// households `keep` accepts (household rows of `x`).
    pub fn of(x: &Extract, keep: Option<&(dyn Fn(usize) -> bool + Sync)>) -> PersonText {
        let mut t = PersonText::default();
        t.push(x, keep);
        t
    }

    /// Appends the text of `x`, a later wave of the round, whose persons follow those pushed so
    /// far (house numbers likewise); `keep` as in [`PersonText::of`] (`None` keeps every person
    /// of this wave).
    pub fn push(&mut self, x: &Extract, keep: Option<&(dyn Fn(usize) -> bool + Sync)>) {
        let p = &x.persons;
        let offset = self.persons;
        // A wave that keeps some after waves that kept all: the rows so far are listed.
        if keep.is_some() && self.rows.is_none() {
            self.rows = Some((0..offset).collect());
        }
        let picked: Option<Vec<usize>> = keep.map(|keep| {
            use rayon::prelude::*;
            let households: Vec<usize> =
                crate::in_pool(|| (0..x.households.len()).into_par_iter().filter(|&h| keep(h)).collect());
            households.into_iter().flat_map(|h| x.members(h)).collect()
        });
        let at = |i: usize| picked.as_ref().map_or(i, |r| r[i]);
        let n = picked.as_ref().map_or(p.len(), Vec::len);
        let (title, first, last) = (&mut self.title, &mut self.first, &mut self.last);
        // Interning probes a table a value: the three columns side by side.
        crate::in_pool(|| {
            rayon::join(
                || (0..n).for_each(|i| title.push(p.title.get(at(i)))),
                || {
                    rayon::join(
                        || (0..n).for_each(|i| first.push(p.first_name.get(at(i)))),
                        || (0..n).for_each(|i| last.push(p.last_name.get(at(i)))),
                    )
                },
            )
        });
        self.birth.extend((0..n).map(|i| p.birth_date[at(i)]));
        self.sex.extend((0..n).map(|i| p.sex[at(i)]));
        Arc::make_mut(&mut self.house_no).extend_from(&x.households.house_no);
        match (&mut self.rows, &picked) {
            (Some(rows), Some(picked)) => rows.extend(picked.iter().map(|&k| offset + k)),
            // Every person of this wave, after waves that kept some.
            (Some(rows), None) => rows.extend(offset..offset + p.len()),
            (None, _) => {}
        }
        self.persons += p.len();
    }

    /// Makes room for the text of `persons` more persons, exactly (every person of the waves to
    /// come: an earlier round's), and the house numbers of `households` more households.
    pub fn reserve(&mut self, persons: usize, households: usize) {
        self.title.reserve(persons);
        self.first.reserve(persons);
        self.last.reserve(persons);
        self.birth.reserve_exact(persons);
        self.sex.reserve_exact(persons);
        Arc::make_mut(&mut self.house_no).reserve(households);
    }

    /// Persons whose names are kept (every person of the round when none was left out).
    pub fn kept(&self) -> usize {
        self.rows.as_ref().map_or(self.persons, Vec::len)
    }

    /// Bytes held on the heap: the names' codes and values, birth dates, sexes, house numbers
    /// and the rows kept.
    pub fn heap_bytes(&self) -> u64 {
        use crate::memory::vec_bytes;
        [
            self.rows.as_ref().map_or(0, vec_bytes),
            self.title.heap_bytes(),
            self.first.heap_bytes(),
            self.last.heap_bytes(),
            vec_bytes(&self.birth),
            vec_bytes(&self.sex),
            self.house_no.heap_bytes(),
        ]
        .into_iter()
        .fold(0u64, u64::saturating_add)
    }

    /// Moves the per-person columns held (the three names' codes, birth dates and sexes) to
    /// `file` as its next part, leaving the distinct names, the house numbers and the count of
    /// persons: an earlier round's text waits on disk while the later round is read, and only
    /// the persons matching needs are read back ([`PersonText::subset`]). A national round's
    /// text is about 0.8 GB in memory, of which 0.7 GB per person. Only a text of every person
    /// is spilled; `spilled` counts the persons in `file` so far.
    pub(super) fn spill(&mut self, file: &mut SpillFile, spilled: &mut usize) -> Result<()> {
        if self.rows.is_some() || *spilled + self.birth.len() != self.persons {
            return Err(Error::Config("internal: a partial text of a round spilled".into()));
        }
        let (title, first, last) = (self.title.take_codes(), self.first.take_codes(), self.last.take_codes());
        let (birth, sex) = (std::mem::take(&mut self.birth), std::mem::take(&mut self.sex));
        file.push_with(|w| {
            w.u64(sex.len() as u64);
            for codes in [&title, &first, &last] {
                w.column_of(codes.iter(), u32::to_le_bytes)?;
            }
            w.column(&sex, crate::spill::sex_byte)?;
            w.column(&birth, crate::spill::birth_bytes)
        })?;
        *spilled += sex.len();
        Ok(())
    }

    /// The text of the persons `keep` accepts (rows of the round) read back from `file`, where
    /// [`PersonText::spill`] put every person of this text, in order.
    pub(super) fn subset(&self, file: &mut SpillFile, keep: impl Fn(usize) -> bool) -> Result<PersonText> {
        let mut out = PersonText {
            rows: Some(Vec::new()),
            title: self.title.without_rows(),
            first: self.first.without_rows(),
            last: self.last.without_rows(),
            birth: Vec::new(),
            sex: Vec::new(),
            house_no: self.house_no.clone(),
            persons: self.persons,
        };
        let mut at = 0usize;
        for part in 0..file.parts() {
            let kept = file.read_with(part, |r| {
                let n = r.count(self.persons.saturating_sub(at))?;
                let code = |b: [u8; 4]| Some(u32::from_le_bytes(b));
                let (title, first, last) =
                    (r.column(n, "code", code)?, r.column(n, "code", code)?, r.column(n, "code", code)?);
                let sex = r.column(n, "sex", crate::spill::sex_of_byte)?;
                let birth = r.column(n, "birth date", crate::spill::birth_of_bytes)?;
                for i in (0..n).filter(|&i| keep(at + i)) {
                    let known =
                        out.title.push_code(title[i]) & out.first.push_code(first[i]) & out.last.push_code(last[i]);
                    if !known {
                        return Err(r.corrupt("holds an unknown name"));
                    }
                    out.birth.push(birth[i]);
                    out.sex.push(sex[i]);
                    if let Some(rows) = &mut out.rows {
                        rows.push(at + i);
                    }
                }
                Ok(n)
            })?;
            at += kept;
        }
        if at != self.persons {
            return Err(Error::Config("internal: a round's spilled text holds other persons".into()));
        }
        Ok(out)
    }

    /// Where person `k`'s text is, if kept.
    fn slot(&self, k: usize) -> Option<usize> {
        match &self.rows {
            None => (k < self.persons).then_some(k),
            Some(rows) => rows.binary_search(&k).ok(),
        }
    }

    /// Link records of persons `ks` of `round` (those with text kept; the others are left out):
    /// the records and the persons they are, in order.
    pub(super) fn records(&self, round: &Round, ks: &[usize]) -> (Vec<Owned>, Vec<usize>) {
        let mut out = Vec::with_capacity(ks.len());
        let mut who = Vec::with_capacity(ks.len());
        for &k in ks {
            let Some(s) = self.slot(k) else { continue };
            let h = round.persons.household[k] as usize;
            out.push(Owned {
                citizen_id: round.persons.citizen_id[k].map(|c| c.expose().to_string()).unwrap_or_default(),
                birth: self.birth[s].map(|d| d.to_string()).unwrap_or_default(),
                slot: s,
                household: h,
            });
            who.push(k);
        }
        (out, who)
    }

    /// Whether the person at text slot `a` and the one at slot `b` of `other` have the same sex,
    /// the same given or family name as written, and birth years at most one apart (when both
    /// are known): what a linked member must show to count for its household (a family name
    /// changes at marriage; a typo rarely hits both names, or moves a birth year by more than
    /// one).
    pub(super) fn agrees(&self, a: usize, other: &PersonText, b: usize) -> bool {
        let years = match (self.birth[a], other.birth[b]) {
            (Some(x), Some(y)) => x.year.abs_diff(y.year) <= 1,
            _ => true,
        };
        years
            && self.sex[a] == other.sex[b]
            && (self.first.get(a) == other.first.get(b) || self.last.get(a) == other.last.get(b))
    }

    /// Borrowed link records over `owned` (see [`PersonText::records`]).
    pub(super) fn raw<'a>(&'a self, round: &'a Round, owned: &'a [Owned]) -> Vec<RawRecord<'a>> {
        owned
            .iter()
            .map(|o| RawRecord {
                key: String::new(),
                citizen_id: &o.citizen_id,
                title: self.title.get(o.slot),
                first: self.first.get(o.slot),
                last: self.last.get(o.slot),
                birth: &o.birth,
                sex: match self.sex[o.slot] {
                    Sex::Male => "m",
                    Sex::Female => "f",
                    Sex::Unknown => "",
                },
                area: round.households.village[o.household].as_str(),
                house: self.house_no.get(o.household),
                flag: "",
                tag: "",
            })
            .collect()
    }
}

/// The owned text of one link record ([`PersonText::records`]).
pub(super) struct Owned {
    citizen_id: String,
    birth: String,
    /// Where the person's text is.
    pub(super) slot: usize,
    household: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{SynthOptions, Synthesizer};

    fn extract() -> Extract {
        let s = Synthesizer::new(SynthOptions { households: 20, provinces: vec![40], ..Default::default() }).unwrap();
        let c = s.generate();
        Extract::new(s.edition().clone(), c.households, c.persons)
    }

    #[test]
    fn a_linked_member_counts_only_with_its_sex_a_name_and_its_birth_year() {
        let x = extract();
        let k = (0..x.persons.len()).find(|&k| x.persons.birth_date[k].is_some()).unwrap();
        let a = PersonText::of(&x, None);
        let changed = |f: &dyn Fn(&mut Extract)| {
            let mut y = x.clone();
            f(&mut y);
            PersonText::of(&y, None)
        };
        assert!(a.agrees(k, &a, k));
        // A new family name (marriage) with the same given name: still the person.
        let married = changed(&|y| {
            let mut last = StrColumn::default();
            (0..y.persons.len())
                .for_each(|i| last.push(if i == k { "ใหม่" } else { y.persons.last_name.get(i) }));
            y.persons.last_name = last;
        });
        assert!(a.agrees(k, &married, k));
        // Both names different, another sex, or born seven years apart: not.
        let renamed = changed(&|y| {
            let (mut first, mut last) = (StrColumn::default(), StrColumn::default());
            for i in 0..y.persons.len() {
                first.push(if i == k { "อื่น" } else { y.persons.first_name.get(i) });
                last.push(if i == k { "อื่น" } else { y.persons.last_name.get(i) });
            }
            (y.persons.first_name, y.persons.last_name) = (first, last);
        });
        assert!(!a.agrees(k, &renamed, k));
        let other_sex = changed(&|y| {
            y.persons.sex[k] = if y.persons.sex[k] == Sex::Male { Sex::Female } else { Sex::Male };
        });
        assert!(!a.agrees(k, &other_sex, k));
        let older = changed(&|y| {
            if let Some(b) = &mut y.persons.birth_date[k] {
                b.year -= 7;
            }
        });
        assert!(!a.agrees(k, &older, k));
        // Kept for some households only: the others' members have no text.
        let keep = |h: usize| h == 1;
        let some = PersonText::of(&x, Some(&keep));
        let r = Round::of(&x, &PanelOptions::default()).unwrap();
        let all: Vec<usize> = (0..x.persons.len()).collect();
        let (_, who) = some.records(&r, &all);
        assert_eq!(who, x.members(1).collect::<Vec<_>>());
        // Waves kept some, then all, then some: the rows line up with the round's persons.
        let mut waves = PersonText::of(&x, Some(&keep));
        waves.push(&x, None);
        waves.push(&x, Some(&keep));
        let n = x.persons.len();
        let mut expect: Vec<usize> = x.members(1).collect();
        expect.extend(n..2 * n);
        expect.extend(x.members(1).map(|k| k + 2 * n));
        let mut r3 = Round::of(&x, &PanelOptions::default()).unwrap();
        r3.append(Round::of(&x, &PanelOptions::default()).unwrap()).unwrap();
        r3.append(Round::of(&x, &PanelOptions::default()).unwrap()).unwrap();
        let (owned, who) = waves.records(&r3, &(0..3 * n).collect::<Vec<_>>());
        assert_eq!(who, expect);
        let raw = waves.raw(&r3, &owned);
        for (rec, &k) in raw.iter().zip(&who) {
            assert_eq!(rec.first, x.persons.first_name.get(k % n));
        }
    }

    #[test]
    fn names_spilled_in_parts_read_back_as_held() {
        // Two waves spilled (the extract twice), then the odd persons read back: each the text
        // it had in memory, the others without text.
        let x = extract();
        let n = x.persons.len();
        let held = {
            let mut t = PersonText::of(&x, None);
            t.push(&x, None);
            t
        };
        let mut file = SpillFile::new("test names").unwrap();
        let (mut spilled, mut t) = (0, PersonText::default());
        for _ in 0..2 {
            t.push(&x, None);
            t.spill(&mut file, &mut spilled).unwrap();
        }
        assert_eq!((spilled, file.parts()), (2 * n, 2));
        assert!(t.birth.is_empty() && t.title.is_empty(), "the per-person columns left memory");
        let odd = t.subset(&mut file, |k| k % 2 == 1).unwrap();
        let r = {
            let mut r = Round::of(&x, &PanelOptions::default()).unwrap();
            r.append(Round::of(&x, &PanelOptions::default()).unwrap()).unwrap();
            r
        };
        let all: Vec<usize> = (0..2 * n).collect();
        let (owned, who) = odd.records(&r, &all);
        assert_eq!(who, all.iter().copied().filter(|k| k % 2 == 1).collect::<Vec<_>>());
        let (held_owned, _) = held.records(&r, &who);
        let (a, b) = (odd.raw(&r, &owned), held.raw(&r, &held_owned));
        for ((a, b), &k) in a.iter().zip(&b).zip(&who) {
            assert_eq!(
                (a.title, a.first, a.last, a.birth, a.sex, a.house),
                (b.title, b.first, b.last, b.birth, b.sex, b.house)
            );
            assert!(odd.agrees(odd.slot(k).unwrap(), &held, k));
        }
        // A text that keeps only some persons is never spilled.
        let keep = |h: usize| h == 1;
        let mut some = PersonText::of(&x, Some(&keep));
        assert!(some.spill(&mut SpillFile::new("test names").unwrap(), &mut 0).is_err());
    }

    #[test]
    fn waves_appended_are_the_round_read_whole() {
        let x = extract();
        let opts = PanelOptions::default();
        let whole = Round::of(&x, &opts).unwrap();
        let (first, second): (Vec<u32>, Vec<u32>) = (0u32..x.households.len() as u32).partition(|&h| h < 7);
        let mut waves = Round::of(&x.select(&first), &opts).unwrap();
        waves.append(Round::of(&x.select(&second), &opts).unwrap()).unwrap();
        assert_eq!(waves.households.id, whole.households.id);
        assert_eq!(waves.persons.household, whole.persons.household);
        assert_eq!(waves.persons.citizen_id, whole.persons.citizen_id);
        assert_eq!(waves.households.poor, whole.households.poor);
        for h in 0..x.households.len() {
            assert_eq!(waves.members(h), whole.members(h));
            assert_eq!(waves.household_of_key(x.households.id[h]), Some(h as u32));
        }
        for (k, id) in x.persons.citizen_id.iter().enumerate() {
            if let Some(id) = id {
                assert_eq!(waves.household_of_person(*id), Some(x.persons.household[k]));
            }
        }
    }
}
