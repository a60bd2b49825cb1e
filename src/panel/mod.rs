//! Year over year: households matched across two survey rounds, the flows into and out of
//! poverty at every area level, per dimension and indicator, and whether households served by a
//! program left the addressed deprivation more often than comparable ones that were not
//! (`tpmap panel`, docs/panel.md).
//!
//! ```no_run
//! use tpmap::panel::{Panel, PanelOptions};
//! let t = tpmap::ingest::ingest("y2561/households.parquet".as_ref(), "y2561/persons.parquet".as_ref(), &Default::default())?;
//! let t1 = tpmap::ingest::ingest("y2562/households.parquet".as_ref(), "y2562/persons.parquet".as_ref(), &Default::default())?;
//! let p = Panel::build(&t.extract, &t1.extract, &PanelOptions::default())?;
//! let country = &p.transitions[0].poor;
//! assert!(country.balances()); // poor_t1 = poor_t - exits + entries + moved_in - moved_out + new_poor - gone_poor
//! println!("{} households left poverty, {} fell in", country.exits, country.entries);
//! # Ok::<(), tpmap::Error>(())
//! ```

pub mod editions;
pub mod effects;
pub mod output;
pub mod round;
pub mod rounds;
pub mod synth;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

pub use round::{PersonText, Round};

use crate::areas::{AreaCode, AreaLevel};
use crate::extract::Extract;
use crate::score::{DimensionMask, Welfare};
use crate::{Error, Result};

/// How two rounds are compared.
#[derive(Clone, Debug)]
pub struct PanelOptions {
    /// TPMAP's dimension switches for "poor".
    pub mask: DimensionMask,
    /// Welfare condition for target poor.
    pub welfare: Welfare,
    /// Corresponding indicators when the rounds use different editions (required then; the
    /// same edition maps each indicator to itself).
    pub editions: Option<editions::EditionMap>,
}

impl Default for PanelOptions {
    fn default() -> Self {
        PanelOptions { mask: DimensionMask::ALL, welfare: Welfare::Validated, editions: None }
    }
}

/// An indicator of the earlier round's spec and its counterpart in the later round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndicatorPair {
    /// The earlier edition's label.
    pub label: String,
    /// Profile bit in the earlier round.
    pub earlier: usize,
    /// Profile bit in the later round.
    pub later: usize,
}

/// How a household of the later round was found in the earlier one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// The same household number and house ID (or the same household number, where a round has
    /// no house ID).
    SameHousehold,
    /// Not by its keys, but most of its members' citizen IDs were in one earlier household (a
    /// household that moved, or was renumbered).
    Members,
    /// Not by keys or citizen IDs (members without one): most of its members were linked by
    /// name, birth date, sex and address to the members of one earlier household (the linker
    /// of `tpmap link`, at its default threshold).
    Linked,
    /// Members from an earlier household that continues elsewhere: a household split off (a
    /// child founding a household). One earlier household, several later ones.
    Split,
    /// No member or key in common with the earlier round.
    New,
}

impl Route {
    /// The name in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::SameHousehold => "same_household",
            Route::Members => "members",
            Route::Linked => "linked",
            Route::Split => "split",
            Route::New => "new",
        }
    }
}

/// What became of a household of the earlier round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// It continues as one later household (see its [`Route`]).
    Continues,
    /// It has no successor, but members of it live in a later household that continues another
    /// earlier one: it merged into that household.
    Merged,
    /// No successor and no member in the later round.
    Vanished,
}

impl Fate {
    /// The name in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Continues => "continues",
            Fate::Merged => "merged",
            Fate::Vanished => "vanished",
        }
    }
}

/// One household's match across the rounds.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// Row of the earlier household (`None` for a new one).
    pub t: Option<u32>,
    /// Row of the later household (`None` for a vanished or merged one).
    pub t1: Option<u32>,
    /// How the later household was found (`None` for earlier households without a successor).
    pub route: Option<Route>,
    /// What became of the earlier household (`None` for new ones).
    pub fate: Option<Fate>,
    /// Members in common: by citizen ID, or linked (route `linked`).
    pub members_in_common: u32,
}

/// Counts of one area's transitions between the rounds (households; `target` the same for target
/// poor). For households that continue, transitions are counted in the later round's area; a
/// household that moved counts in `moved_out` of its earlier area and `moved_in` of its later one
/// (with its earlier status), so that for every area
/// `poor_t1 = poor_t − exits + entries + moved_in − moved_out + new_poor − gone_poor`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Flows {
    /// Poor households in the earlier round.
    pub poor_t: u64,
    /// Poor households in the later round.
    pub poor_t1: u64,
    /// Continuing households poor in both rounds.
    pub stayed: u64,
    /// Continuing households poor then, not now.
    pub exits: u64,
    /// Continuing households not poor then, poor now.
    pub entries: u64,
    /// Continuing households poor in neither round.
    pub never: u64,
    /// Continuing households that moved in, poor in the earlier round.
    pub moved_in: u64,
    /// Continuing households that moved out, poor in the earlier round.
    pub moved_out: u64,
    /// New and split-off households that are poor.
    pub new_poor: u64,
    /// Vanished and merged households that were poor.
    pub gone_poor: u64,
}

impl Flows {
    /// True when the identity `poor_t1 = poor_t − exits + entries + moved_in − moved_out +
    /// new_poor − gone_poor` holds.
    pub fn balances(&self) -> bool {
        (self.poor_t + self.entries + self.moved_in + self.new_poor) as i128
            - (self.exits + self.moved_out + self.gone_poor) as i128
            == self.poor_t1 as i128
    }
}

/// One area's transitions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AreaTransitions {
    /// `country`, `province`, `amphoe`, `tambon` or `village`.
    pub level: &'static str,
    /// The area code (`TH` for the country).
    pub area: String,
    /// Poor households.
    #[serde(flatten)]
    pub poor: Flows,
    /// Target poor households (poor, meeting the welfare condition).
    pub target: Flows,
    /// People in poor households, matched by citizen ID: continuing people are in both rounds
    /// (counted in their later household's area); people only in the later round (born, moved
    /// in, or without an ID) count as new, those only in the earlier one as gone.
    pub people: Flows,
    /// Per dimension of the spec: continuing households deprived in it then, not now.
    pub dimension_exits: Vec<u64>,
    /// Per dimension: continuing households not deprived in it then, deprived now.
    pub dimension_entries: Vec<u64>,
    /// Per indicator of the spec: continuing households deprived then, not now.
    pub indicator_exits: Vec<u64>,
    /// Per indicator: continuing households not deprived then, deprived now.
    pub indicator_entries: Vec<u64>,
    /// Deprivations gained by continuing households (sum of increases in their counts).
    pub deprivations_gained: u64,
    /// Deprivations lost by continuing households.
    pub deprivations_lost: u64,
}

/// How many households and people were matched, and how.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MatchSummary {
    /// Households of the earlier round.
    pub households_t: u64,
    /// Households of the later round.
    pub households_t1: u64,
    /// Later households per route.
    pub by_route: BTreeMap<Route, u64>,
    /// Earlier households per fate.
    pub by_fate: BTreeMap<Fate, u64>,
    /// Persons with a citizen ID in both rounds.
    pub persons_in_both: u64,
    /// Persons (with an ID) only in the earlier round: died, moved away or not surveyed.
    pub persons_only_t: u64,
    /// Persons (with an ID) only in the later round: born, moved in or newly surveyed.
    pub persons_only_t1: u64,
    /// Persons without a citizen ID, earlier and later (not matched as persons).
    pub persons_without_id: (u64, u64),
    /// Persons in both rounds, poor in the earlier round, by the later round: still poor.
    pub persons_stayed_poor: u64,
    /// ... no longer poor.
    pub persons_left_poverty: u64,
    /// Persons in both rounds not poor earlier and poor later.
    pub persons_fell_into_poverty: u64,
}

/// Two rounds matched and compared.
pub struct Panel {
    /// The earlier round.
    pub t: Arc<Round>,
    /// The later round.
    pub t1: Arc<Round>,
    /// Every household of both rounds: continuing pairs, splits, new, merged and vanished.
    pub matches: Vec<Match>,
    /// Per later household, its predecessor (for `SameHousehold`, `Members` and `Split`).
    pub predecessor: Vec<Option<u32>>,
    /// Per earlier household, its continuing successor.
    pub successor: Vec<Option<u32>>,
    /// Transitions at every level: the country first, then provinces, amphoes, tambons and
    /// villages, each in code order.
    pub transitions: Vec<AreaTransitions>,
    /// Counts of the matching.
    pub summary: MatchSummary,
    /// The earlier spec's indicators that have a counterpart, in spec order (the columns of
    /// the per-indicator flows).
    pub indicators: Vec<IndicatorPair>,
    /// Which indicators of the two editions correspond.
    pub editions: editions::EditionMap,
}

impl Panel {
    /// Bytes the comparison holds on the heap beyond its rounds: its matches, each later
    /// household's predecessor and earlier household's successor, and the areas' transitions.
    pub(crate) fn heap_bytes(&self) -> u64 {
        use crate::memory::vec_bytes;
        let areas = self.transitions.iter().map(|a| {
            [&a.dimension_exits, &a.dimension_entries, &a.indicator_exits, &a.indicator_entries]
                .into_iter()
                .map(vec_bytes)
                .fold(a.area.capacity() as u64, u64::saturating_add)
        });
        [
            vec_bytes(&self.matches),
            vec_bytes(&self.predecessor),
            vec_bytes(&self.successor),
            vec_bytes(&self.transitions),
        ]
        .into_iter()
        .chain(areas)
        .fold(0u64, u64::saturating_add)
    }

    /// Matches the households of `t1` to those of `t` and counts the transitions.
    pub fn build(t: &Extract, t1: &Extract, opts: &PanelOptions) -> Result<Panel> {
        let (rt, rt1) = (Round::of(t, opts)?, Round::of(t1, opts)?);
        let (text, text1) = (PersonText::of(t, None), PersonText::of(t1, None));
        Panel::of_rounds(Arc::new(rt), Arc::new(rt1), (&text, &text1), opts)
    }

    /// Matches the households of round `t1` to those of round `t` and counts the transitions;
    /// `text`: the rounds' names and birth dates for matching by linkage — of every person of
    /// `t`, and of `t1`'s persons in households neither keys nor citizen IDs match and in the
    /// linkage's training sample ([`names_needed`]), or more (persons without text are not
    /// linked).
    pub fn of_rounds(
        t: Arc<Round>,
        t1: Arc<Round>,
        text: (&PersonText, &PersonText),
        opts: &PanelOptions,
    ) -> Result<Panel> {
        Ok(Panel::matched(t, t1, text, opts)?.counted())
    }

    /// The first half of [`Panel::of_rounds`]: the households matched, nothing counted yet — so
    /// that a caller can free the names before the flows are counted.
    pub(crate) fn matched(
        t: Arc<Round>,
        t1: Arc<Round>,
        text: (&PersonText, &PersonText),
        opts: &PanelOptions,
    ) -> Result<Matched> {
        let map = match &opts.editions {
            Some(m) => m.clone(),
            None if t.edition.id == t1.edition.id && t.edition == t1.edition => {
                editions::EditionMap { pairs: (0..t.edition.len()).map(|i| (i, i)).collect(), ..Default::default() }
            }
            None => {
                return Err(Error::Config(format!(
                    "the rounds use editions {} and {}: give a mapping of their indicators (--edition-map, docs/panel.md)",
                    t.edition.id, t1.edition.id
                )));
            }
        };
        // Household and person rows are `u32` in the matches, counted beside the indices
        // (`(0u32..).zip(...)`), which needs every row below u32::MAX.
        t.check_rows()?;
        t1.check_rows()?;
        let indicators: Vec<IndicatorPair> = t
            .spec
            .items
            .iter()
            .filter_map(|it| {
                map.later_of(it.bit).map(|later| IndicatorPair { label: it.label.clone(), earlier: it.bit, later })
            })
            .collect();
        let mut lap = crate::diagnostics::Lap::start();
        let matcher = match_households(&t, &t1, text)?;
        lap.lap("panel: households matched");
        Ok(Matched { t, t1, matcher, indicators, editions: map })
    }
}

/// Two rounds' households matched ([`Panel::matched`]), their matches not yet listed nor their
/// flows counted: a caller frees the names matching used first (the list of matches is the
/// largest structure a panel makes, 0.6 GB for two national rounds at most).
pub(crate) struct Matched {
    t: Arc<Round>,
    t1: Arc<Round>,
    matcher: Matcher,
    indicators: Vec<IndicatorPair>,
    editions: editions::EditionMap,
}

impl Matched {
    /// Lists the matches, counts the matching's routes and fates, the persons and the flows of
    /// every area.
    pub(crate) fn counted(self) -> Panel {
        let Matched { t, t1, matcher, indicators, editions: map } = self;
        let mut lap = crate::diagnostics::Lap::start();
        let mut summary = MatchSummary {
            households_t: t.households.len() as u64,
            households_t1: t1.households.len() as u64,
            ..Default::default()
        };
        persons_summary(&t, &t1, &mut summary);
        lap.lap("panel: persons counted");
        // The flows before the list of matches: the two largest structures of the comparison's
        // end are never held together.
        let transitions = transitions(&t, &t1, &matcher.predecessor, &matcher.successor, &indicators);
        lap.lap("panel: flows counted");
        // What counting them freed goes back before the list is made.
        crate::memory::release();
        let (matches, predecessor, successor) = matcher.listed(&t, &t1);
        for m in &matches {
            if let Some(r) = m.route {
                *summary.by_route.entry(r).or_default() += 1;
            }
            if let Some(f) = m.fate {
                *summary.by_fate.entry(f).or_default() += 1;
            }
        }
        lap.lap("panel: matches listed");
        Panel { t, t1, matches, predecessor, successor, transitions, summary, indicators, editions: map }
    }
}

/// One household in this many (by a hash of its key), in both rounds, is linked with its
/// members whatever its route: persons known by their IDs to be the same, from which the
/// linker's model learns what a match looks like (as it would from both rounds whole). Without
/// them the model learnt from the unmatched persons alone, and at 300,000 households a round with
/// 2 % of IDs blanked made 6 new households split-offs that linking both rounds whole did not.
/// Only the unmatched later households' votes count.
pub const LINKAGE_TRAINING_SHARE: u64 = 50;

/// Whether household key `id` is in the linkage's training sample ([`LINKAGE_TRAINING_SHARE`]).
fn in_training_sample(id: crate::ids::HouseholdId) -> bool {
    round::mix(id.0).is_multiple_of(LINKAGE_TRAINING_SHARE)
}

/// Whether the names of the members of household `j` of `x` (a part of the later round) are
/// kept for matching by linkage ([`PersonText::of`]'s `keep`): when neither keys nor citizen
/// IDs can match it to a household of `t`, or it is in the linkage's training sample.
pub fn names_needed(t: &Round, x: &Extract, j: usize) -> bool {
    let h = &x.households;
    needs_names(t, (h.id[j], h.house_id[j]), x.members(j).map(|k| x.persons.citizen_id[k]))
}

/// [`names_needed`] for household `j` of the later round `t1` as kept.
pub(super) fn later_names_needed(t: &Round, t1: &Round, j: usize) -> bool {
    let h = &t1.households;
    needs_names(t, (h.id[j], h.house_id[j]), t1.members(j).map(|k| t1.persons.citizen_id[k]))
}

/// Whether a later household, of key `id`, house ID `house` and members' citizen IDs `ids`, has
/// its members' names kept: in the training sample, or matched to no household of `t` by keys
/// or citizen IDs.
fn needs_names(
    t: &Round,
    (id, house): (crate::ids::HouseholdId, Option<crate::ids::HouseId>),
    mut ids: impl Iterator<Item = Option<crate::ids::CitizenId>>,
) -> bool {
    if in_training_sample(id) {
        return true;
    }
    let by_key = t.household_of_key(id).is_some_and(|i| match (t.households.house_id[i as usize], house) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    });
    !by_key && !ids.any(|c| c.is_some_and(|c| t.household_of_person(c).is_some()))
}

/// Whether person `k` of the earlier round `t` may be linked by name to a person of `t1`:
/// without a citizen ID, or with one `t1` lacks, or of a household in the training sample.
pub(super) fn earlier_names_needed(t: &Round, t1: &Round, k: usize) -> bool {
    t.persons.citizen_id[k].is_none_or(|c| t1.household_of_person(c).is_none())
        || in_training_sample(t.households.id[t.persons.household[k] as usize])
}

type Matching = (Vec<Match>, Vec<Option<u32>>, Vec<Option<u32>>);

/// The matching as it is built: each later household's predecessor, route and members in
/// common, each earlier household's continuing successor.
struct Matcher {
    predecessor: Vec<Option<u32>>,
    route: Vec<Option<Route>>,
    common: Vec<u32>,
    successor: Vec<Option<u32>>,
}

impl Matcher {
    /// Each still unmatched later household votes, member by member, for the earlier household
    /// `earlier_of(member)` names; the most members in common continue an earlier household
    /// (ties to the lower earlier household key, then the lower later one: the same whatever
    /// order the rounds were read in), the others split from it.
    fn vote(&mut self, t: &Round, t1: &Round, route: Route, earlier_of: impl Fn(usize) -> Option<u32>) {
        let mut votes: HashMap<u32, u32> = HashMap::new();
        let mut candidates: Vec<(u32, u32, u32)> = Vec::new(); // (members in common, later, earlier)
        // Rows counted as `u32` beside the index (Round::check_rows): no narrowing.
        for (j, r) in (0u32..).zip(&self.route) {
            if r.is_some() {
                continue;
            }
            votes.clear();
            for i in t1.members(j as usize).filter_map(&earlier_of) {
                *votes.entry(i).or_default() += 1;
            }
            let key = |i: u32| t.households.id[i as usize];
            if let Some((&i, &n)) = votes.iter().max_by_key(|(i, n)| (**n, std::cmp::Reverse(key(**i)))) {
                candidates.push((n, j, i));
            }
        }
        candidates.sort_by_key(|&(n, j, _)| (std::cmp::Reverse(n), t1.households.id[j as usize]));
        for (n, j, i) in candidates {
            let (ju, iu) = (j as usize, i as usize);
            self.predecessor[ju] = Some(i);
            self.common[ju] = n;
            if self.successor[iu].is_none() {
                self.successor[iu] = Some(j);
                self.route[ju] = Some(route);
            } else {
                self.route[ju] = Some(Route::Split);
            }
        }
    }
}

/// Matches households: by keys, then by members' citizen IDs, then by members linked by name,
/// birth date, sex and address; splits where an earlier household already continues; earlier
/// households left without a successor are merged (their members live on elsewhere) or
/// vanished.
fn match_households(t: &Round, t1: &Round, (text, text1): (&PersonText, &PersonText)) -> Result<Matcher> {
    let (h0, h1) = (&t.households, &t1.households);
    let mut m = Matcher {
        predecessor: vec![None; h1.len()],
        route: vec![None; h1.len()],
        common: vec![0; h1.len()],
        successor: vec![None; h0.len()],
    };
    // Route 1: the same household number and house ID.
    // Household rows as `u32` counted beside the index (Round::check_rows).
    for (j, id) in (0u32..).zip(&h1.id) {
        let ju = j as usize;
        if let Some(i) = t.household_of_key(*id) {
            let same_house = match (h0.house_id[i as usize], h1.house_id[ju]) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            };
            if same_house && m.successor[i as usize].is_none() {
                m.successor[i as usize] = Some(j);
                m.predecessor[ju] = Some(i);
                m.route[ju] = Some(Route::SameHousehold);
                // Members in common, for the record (a count: saturates).
                let n = t1
                    .members(ju)
                    .filter(|&k| t1.persons.citizen_id[k].is_some_and(|c| t.household_of_person(c) == Some(i)));
                m.common[ju] = u32::try_from(n.count()).unwrap_or(u32::MAX);
            }
        }
    }
    // Route 2: members' citizen IDs.
    m.vote(t, t1, Route::Members, |k| t1.persons.citizen_id[k].and_then(|c| t.household_of_person(c)));
    // Route 3: the members of later households still unmatched, linked by name, birth date, sex
    // and address to the earlier round's persons that citizen IDs did not find in the later
    // round (without an ID, or with one the later round lacks). A pair of records with two
    // different IDs is never a match, so linking runs only when one side has persons without.
    let unmatched: Vec<usize> = (0..h1.len()).filter(|&j| m.route[j].is_none()).flat_map(|j| t1.members(j)).collect();
    let needs_linking = !unmatched.is_empty()
        && (unmatched.iter().any(|&k| t1.persons.citizen_id[k].is_none())
            || t.persons.citizen_id.iter().any(Option::is_none));
    if needs_linking {
        crate::diagnostics::Lap::start().lap("panel: matched by keys and IDs, linking");
        // With the training sample of both rounds ([`LINKAGE_TRAINING_SHARE`]).
        let later: Vec<usize> = (0..h1.len())
            .filter(|&j| m.route[j].is_none() || in_training_sample(h1.id[j]))
            .flat_map(|j| t1.members(j))
            .collect();
        let earlier: Vec<usize> = (0..t.persons.len()).filter(|&k| earlier_names_needed(t, t1, k)).collect();
        // Made a slice of persons at a time, as `Records::push_extract_to` does: a record, its
        // owned text and its normalised form take about 500 bytes while they are made (2.3 GB
        // for the 4.7 M records of two national rounds with 2 % of IDs blanked, made at once).
        const SLICE: usize = 1 << 18;
        let mut records = crate::link::Records::default();
        let (mut slots, mut who0, mut who1) = (Vec::new(), Vec::new(), Vec::new());
        for (name, text, round, persons, who) in
            [("earlier", text, t, &earlier, &mut who0), ("later", text1, t1, &later, &mut who1)]
        {
            let src = records.add_source(name);
            for slice in persons.chunks(SLICE) {
                let (owned, kept) = text.records(round, slice);
                records.push_rows(src, &text.raw(round, &owned));
                slots.extend(owned.iter().map(|o| o.slot));
                who.extend(kept);
            }
        }
        let options = crate::link::LinkOptions::default();
        // The job refuses more than u32::MAX records: record indices below fit in a `u32`.
        let linked = crate::link::run_matches(records, &options)?;
        let n0 = who0.len();
        let mut to_earlier: HashMap<usize, u32> = HashMap::new();
        for s in linked.matches() {
            let (a, b) = (s.a.min(s.b) as usize, s.a.max(s.b) as usize);
            // A linked pair counts for the household only when sex, a name and the birth year
            // agree (`PersonText::agrees`): nationally, with 2 % of IDs blanked, pairs agreeing on
            // birth date and amphoe alone, or on a full name alone decades and provinces apart,
            // made 13,692 new households split-offs.
            if a < n0 && b >= n0 && text.agrees(slots[a], text1, slots[b]) {
                to_earlier.insert(who1[b - n0], t.persons.household[who0[a]]);
            }
        }
        // The scored pairs go before the households are matched: given back at once.
        drop(linked);
        crate::memory::release();
        m.vote(t, t1, Route::Linked, |k| to_earlier.get(&k).copied());
    }
    Ok(m)
}

impl Matcher {
    /// Every household of both rounds as a [`Match`]: each later household with its route, then
    /// each earlier household without a successor, merged when a member lives on in a later
    /// household, else vanished. With each later household's predecessor and each earlier
    /// household's successor.
    fn listed(self, t: &Round, t1: &Round) -> Matching {
        let Matcher { predecessor, route, common, successor } = self;
        let ended = successor.iter().filter(|s| s.is_none()).count();
        let mut matches = Vec::with_capacity(route.len().saturating_add(ended));
        for ((r, (&pred, &common)), row) in route.iter().zip(predecessor.iter().zip(&common)).zip(0u32..) {
            let r = r.unwrap_or(Route::New);
            let fate = pred.filter(|_| r != Route::Split).map(|_| Fate::Continues);
            matches.push(Match { t: pred, t1: Some(row), route: Some(r), fate, members_in_common: common });
        }
        // The later households' routes and counts are in their matches now.
        drop((route, common));
        for ((i, s), row) in successor.iter().enumerate().zip(0u32..) {
            if s.is_some() {
                continue;
            }
            let lives_on =
                t.members(i).filter(|&k| t.persons.citizen_id[k].is_some_and(|c| t1.household_of_person(c).is_some()));
            let n = u32::try_from(lives_on.count()).unwrap_or(u32::MAX);
            let fate = if n > 0 { Fate::Merged } else { Fate::Vanished };
            matches.push(Match { t: Some(row), t1: None, route: None, fate: Some(fate), members_in_common: n });
        }
        (matches, predecessor, successor)
    }
}

fn persons_summary(t: &Round, t1: &Round, s: &mut MatchSummary) {
    let without = |r: &Round| r.persons.citizen_id.iter().filter(|c| c.is_none()).count() as u64;
    s.persons_without_id = (without(t), without(t1));
    for (k, id) in t.persons.citizen_id.iter().enumerate() {
        let Some(id) = id else { continue };
        let h0 = t.persons.household[k];
        match t1.household_of_person(*id) {
            Some(h1) => {
                s.persons_in_both += 1;
                match (t.households.poor[h0 as usize], t1.households.poor[h1 as usize]) {
                    (true, true) => s.persons_stayed_poor += 1,
                    (true, false) => s.persons_left_poverty += 1,
                    (false, true) => s.persons_fell_into_poverty += 1,
                    (false, false) => {}
                }
            }
            None => s.persons_only_t += 1,
        }
    }
    s.persons_only_t1 =
        t1.persons.citizen_id.iter().flatten().filter(|&&id| t.household_of_person(id).is_none()).count() as u64;
}

/// The areas a village counts in below the country: its province, amphoe, tambon and itself.
fn areas_of(v: &AreaCode) -> [AreaCode; 4] {
    let at = |l: AreaLevel| v.at(l).unwrap_or(*v);
    [at(AreaLevel::Province), at(AreaLevel::Amphoe), at(AreaLevel::Tambon), *v]
}

/// The transitions of every area, built up as households are counted: per village by a dense
/// index (a household's village looked up once), rolled up to the tambons, amphoes, provinces
/// and the country at the end — except moves, which count at each level where the two villages'
/// areas differ and go to that level's areas directly (a few households in a hundred move).
struct Areas {
    country: AreaTransitions,
    by: Vec<BTreeMap<AreaCode, AreaTransitions>>,
    /// Village of each dense index, and its counts (moves aside).
    codes: Vec<AreaCode>,
    villages: Vec<AreaTransitions>,
    dims: usize,
    items: usize,
}

const LEVEL_NAMES: [&str; 5] = ["country", "province", "amphoe", "tambon", "village"];

fn blank_area(level: &'static str, area: String, dims: usize, items: usize) -> AreaTransitions {
    AreaTransitions {
        level,
        area,
        poor: Flows::default(),
        target: Flows::default(),
        people: Flows::default(),
        dimension_exits: vec![0; dims],
        dimension_entries: vec![0; dims],
        indicator_exits: vec![0; items],
        indicator_entries: vec![0; items],
        deprivations_gained: 0,
        deprivations_lost: 0,
    }
}

impl Flows {
    /// Adds `o`'s counts.
    fn add(&mut self, o: &Flows) {
        self.poor_t += o.poor_t;
        self.poor_t1 += o.poor_t1;
        self.stayed += o.stayed;
        self.exits += o.exits;
        self.entries += o.entries;
        self.never += o.never;
        self.moved_in += o.moved_in;
        self.moved_out += o.moved_out;
        self.new_poor += o.new_poor;
        self.gone_poor += o.gone_poor;
    }
}

impl AreaTransitions {
    /// Adds `o`'s counts.
    fn add(&mut self, o: &AreaTransitions) {
        self.poor.add(&o.poor);
        self.target.add(&o.target);
        self.people.add(&o.people);
        for (a, b) in [
            (&mut self.dimension_exits, &o.dimension_exits),
            (&mut self.dimension_entries, &o.dimension_entries),
            (&mut self.indicator_exits, &o.indicator_exits),
            (&mut self.indicator_entries, &o.indicator_entries),
        ] {
            a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        }
        self.deprivations_gained += o.deprivations_gained;
        self.deprivations_lost += o.deprivations_lost;
    }
}

impl Areas {
    /// Areas over the villages `codes` (distinct; households refer to them by position).
    fn new(codes: Vec<AreaCode>, dims: usize, items: usize) -> Areas {
        let villages = codes.iter().map(|_| blank_area(LEVEL_NAMES[4], String::new(), dims, items)).collect();
        Areas {
            country: blank_area("country", "TH".into(), dims, items),
            by: vec![BTreeMap::new(); 4],
            codes,
            villages,
            dims,
            items,
        }
    }

    /// Area `code` of level `lvl` (1 = province ... 4 = village).
    fn at(&mut self, lvl: usize, code: AreaCode) -> &mut AreaTransitions {
        let (dims, items) = (self.dims, self.items);
        self.by[lvl - 1].entry(code).or_insert_with(|| blank_area(LEVEL_NAMES[lvl], code.to_string(), dims, items))
    }

    /// The counts of the village of dense index `v` (they count in its areas above too).
    fn village(&mut self, v: u32) -> &mut AreaTransitions {
        &mut self.villages[v as usize]
    }

    /// The country, then each level's areas in the order of their codes as text.
    fn into_rows(mut self) -> Vec<AreaTransitions> {
        let villages = std::mem::take(&mut self.villages);
        for (code, v) in std::mem::take(&mut self.codes).into_iter().zip(&villages) {
            self.country.add(v);
            for (k, area) in areas_of(&code).into_iter().enumerate() {
                self.at(k + 1, area).add(v);
            }
        }
        drop(villages);
        let mut out = vec![self.country];
        for m in self.by {
            let mut level: Vec<AreaTransitions> = m.into_values().collect();
            level.sort_by(|a, b| a.area.cmp(&b.area));
            out.extend(level);
        }
        out
    }

    /// Counts continuing units that moved between `from` and `to`, with `f` applied to the
    /// earlier area's flows as moved out and the later one's as moved in.
    fn moved(&mut self, from: &AreaCode, to: &AreaCode, f: &dyn Fn(&mut AreaTransitions, bool)) {
        let (a, b) = (areas_of(from), areas_of(to));
        for k in 0..4 {
            if a[k] != b[k] {
                f(self.at(k + 1, a[k]), false);
                f(self.at(k + 1, b[k]), true);
            }
        }
    }
}

/// The distinct villages of both rounds and each household's position among them.
/// The distinct villages of `villages`, ascending (households come village by village: each
/// run of one village is looked up once).
pub(super) fn village_codes<'a>(villages: impl IntoIterator<Item = &'a AreaCode>) -> Vec<AreaCode> {
    let mut seen: std::collections::HashSet<AreaCode> = std::collections::HashSet::new();
    let mut last: Option<&AreaCode> = None;
    for v in villages {
        if last != Some(v) {
            seen.insert(*v);
            last = Some(v);
        }
    }
    let mut codes: Vec<AreaCode> = seen.into_iter().collect();
    codes.sort_unstable();
    codes
}

fn village_index(t: &Round, t1: &Round) -> (Vec<AreaCode>, Vec<u32>, Vec<u32>) {
    use rayon::prelude::*;
    // Gathered in a set (a round's households come village by village, so each run of one
    // village is looked up once), not a column of every household's village sorted and
    // deduplicated: that took 11 bytes a household of both rounds (0.29 GB nationally) while
    // the flows were counted.
    let codes = village_codes(t.households.village.iter().chain(&t1.households.village));
    // Villages number far below u32::MAX (at most the households, checked by Round::check_rows).
    let at: HashMap<AreaCode, u32> = codes.iter().zip(0u32..).map(|(c, i)| (*c, i)).collect();
    let of = |r: &Round| -> Vec<u32> {
        crate::in_pool(|| r.households.village.par_iter().map(|v| at.get(v).copied().unwrap_or(0)).collect())
    };
    let (v0, v1) = (of(t), of(t1));
    (codes, v0, v1)
}

fn transitions(
    t: &Round,
    t1: &Round,
    pred: &[Option<u32>],
    succ: &[Option<u32>],
    pairs: &[IndicatorPair],
) -> Vec<AreaTransitions> {
    let dims = t.spec.dimensions.len();
    // Per indicator and dimension: the masks in each round (a dimension by its name).
    let items: Vec<(u64, u64)> = pairs.iter().map(|p| (1u64 << p.earlier, 1u64 << p.later)).collect();
    let dim_masks: Vec<(u64, u64)> = (0..dims)
        .map(|d| {
            let later = t1.spec.dimensions.iter().position(|n| *n == t.spec.dimensions[d]);
            (t.spec.dimension_mask(d), later.map_or(0, |l| t1.spec.dimension_mask(l)))
        })
        .collect();
    let (codes, vi0, vi1) = village_index(t, t1);
    let mut areas = Areas::new(codes, dims, items.len());
    let (x0, x1) = (t, t1);
    for (i, next) in succ.iter().enumerate() {
        let (poor, target) = (t.households.poor[i] as u64, t.households.target[i] as u64);
        let v = x0.households.village[i];
        let gone = next.is_none() as u64;
        let a = areas.village(vi0[i]);
        a.poor.poor_t += poor;
        a.target.poor_t += target;
        a.poor.gone_poor += poor * gone;
        a.target.gone_poor += target * gone;
        // Moved: out of the earlier area and into the later one, at every level where they differ.
        if let Some(j) = *next {
            areas.moved(&v, &x1.households.village[j as usize], &|a, into| {
                let (p, t) = if into {
                    (&mut a.poor.moved_in, &mut a.target.moved_in)
                } else {
                    (&mut a.poor.moved_out, &mut a.target.moved_out)
                };
                *p += poor;
                *t += target;
            });
        }
    }
    for ((j, before), row) in pred.iter().enumerate().zip(0u32..) {
        let (poor, target) = (t1.households.poor[j], t1.households.target[j]);
        let continuing = before.filter(|&i| succ[i as usize] == Some(row)).map(|i| i as usize);
        (|a: &mut AreaTransitions| {
            a.poor.poor_t1 += poor as u64;
            a.target.poor_t1 += target as u64;
            let Some(i) = continuing else {
                a.poor.new_poor += poor as u64;
                a.target.new_poor += target as u64;
                return;
            };
            for (f, was, now) in
                [(&mut a.poor, t.households.poor[i], poor), (&mut a.target, t.households.target[i], target)]
            {
                match (was, now) {
                    (true, true) => f.stayed += 1,
                    (true, false) => f.exits += 1,
                    (false, true) => f.entries += 1,
                    (false, false) => f.never += 1,
                }
            }
            let (d0, d1) = (t.deprived(i), t1.deprived(j));
            for (d, (m0, m1)) in dim_masks.iter().enumerate() {
                match (d0 & m0 != 0, d1 & m1 != 0) {
                    (true, false) => a.dimension_exits[d] += 1,
                    (false, true) => a.dimension_entries[d] += 1,
                    _ => {}
                }
            }
            for (k, (m0, m1)) in items.iter().enumerate() {
                match (d0 & m0 != 0, d1 & m1 != 0) {
                    (true, false) => a.indicator_exits[k] += 1,
                    (false, true) => a.indicator_entries[k] += 1,
                    _ => {}
                }
            }
            let (n0, n1) = (d0.count_ones() as u64, d1.count_ones() as u64);
            a.deprivations_gained += n1.saturating_sub(n0);
            a.deprivations_lost += n0.saturating_sub(n1);
        })(areas.village(vi1[j]));
    }
    // People, by citizen ID: the same flows, counted per household (and per pair of households
    // for people who moved) rather than per person.
    let (p0, p1) = (&t.persons, &t1.persons);
    // Only pairs in different villages count (as moves).
    let mut pairs: HashMap<(u32, u32), u64> = HashMap::new();
    for (i, row) in (0..x0.households.len()).zip(0u32..) {
        let poor = t.households.poor[i] as u64;
        let (mut all, mut gone) = (0u64, 0u64);
        for k in x0.members(i) {
            all += 1;
            match p0.citizen_id[k].and_then(|c| t1.household_of_person(c)) {
                Some(j) if vi1[j as usize] != vi0[i] => *pairs.entry((row, j)).or_default() += 1,
                Some(_) => {}
                None => gone += 1,
            }
        }
        let a = &mut areas.village(vi0[i]).people;
        a.poor_t += poor * all;
        a.gone_poor += poor * gone;
    }
    for (&(i, j), &n) in &pairs {
        let poor = t.households.poor[i as usize] as u64 * n;
        areas.moved(&x0.households.village[i as usize], &x1.households.village[j as usize], &|a, into| {
            if into {
                a.people.moved_in += poor;
            } else {
                a.people.moved_out += poor;
            }
        });
    }
    for (j, &v) in vi1.iter().enumerate() {
        let now = t1.households.poor[j];
        // People of the household by their earlier status: unknown (new), poor, not poor.
        let mut by = [0u64; 3];
        for k in x1.members(j) {
            let before = p1.citizen_id[k].and_then(|c| t.household_of_person(c)).map(|i| t.households.poor[i as usize]);
            by[match before {
                None => 0,
                Some(true) => 1,
                Some(false) => 2,
            }] += 1;
        }
        let n = by.iter().sum::<u64>();
        let f = &mut areas.village(v).people;
        f.poor_t1 += now as u64 * n;
        if now {
            f.new_poor += by[0];
            f.stayed += by[1];
            f.entries += by[2];
        } else {
            f.exits += by[1];
            f.never += by[2];
        }
    }
    areas.into_rows()
}
