//! Record linkage across registries: the survey, the welfare-card registry, agencies' lists.
//!
//! A link job: normalise ([`normalize`], [`phonetic`]) → block ([`model::block`]) → compare
//! ([`compare`]) → train a Fellegi–Sunter model (u by random sampling, m by EM) or load one →
//! score, with a deterministic pass for citizen IDs → cluster into entities with stable ids →
//! explain any pair. One job covers dedupe within records, link across sources, or both.
//! [`run`] keeps the whole job; [`run_matches`] only what matches need; [`run_and_write`] writes
//! the job's files holding less (what `tpmap link` does); [`split::link_files`] writes the same
//! files for two files with the first read a group of provinces at a time (`tpmap link
//! --split`).
//!
//! ```no_run
//! use tpmap::link::{LinkOptions, Records, run};
//! let mut r = Records::default();
//! r.push_csv("survey.csv".as_ref())?;
//! r.push_csv("welfare.csv".as_ref())?;
//! let out = run(&r, &LinkOptions::default())?;
//! let best = out.scored.iter().max_by(|a, b| a.weight.total_cmp(&b.weight)).unwrap();
//! let why = out.model.explain(&r, Some(&out.tf), best.a as usize, best.b as usize);
//! println!("{:.3} {:?}", why.probability, why.terms);
//! # Ok::<(), tpmap::Error>(())
//! ```

pub mod bench;
pub mod budget;
pub mod compare;
pub mod misses;
pub mod model;
pub mod normalize;
pub mod output;
pub mod parts;
pub mod phonetic;
pub mod records;
pub mod registries;
pub mod split;
pub mod steps;

use std::time::Instant;

use serde::Serialize;

pub use model::{Blocking, Model, Scored, Task, TermFrequencies};
pub use records::Records;

use crate::Result;

/// Options of a link job.
#[derive(Clone, Debug)]
pub struct LinkOptions {
    /// Dedupe, link, or both.
    pub task: Task,
    /// Blocking rules.
    pub blocking: Blocking,
    /// Probability at or above which a pair is a match.
    pub threshold: f64,
    /// A trained model to use instead of training one.
    pub model: Option<Model>,
    /// Training options.
    pub train: model::TrainOptions,
    /// Keep every candidate pair in [`Linked::pairs`] (what an evaluation against a truth and
    /// its error list read); `false` keeps their count alone ([`Linked::candidates`]), and the
    /// pairs go once scored: 8 bytes a pair, 0.6 GB at the peak of the national job (75 M pairs),
    /// what `tpmap link` without `--truth` does. Default `true`.
    pub keep_candidates: bool,
    /// Bytes the job may hold at most (`tpmap link --max-memory`): checked at every phase
    /// against what the phase holds and is about to make ([`budget`]); a job that would pass it
    /// stops with [`crate::Error::Config`] naming the phase. `None` (the default): no budget.
    pub max_memory: Option<u64>,
    /// Bytes the caller holds beside the job while it runs (`tpmap link` reads a truth file on
    /// another thread), counted in every sum against [`LinkOptions::max_memory`]. Default 0.
    pub held_beside: u64,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            task: Task::Link,
            blocking: Blocking::default(),
            threshold: 0.9,
            model: None,
            train: model::TrainOptions::default(),
            keep_candidates: true,
            max_memory: None,
            held_beside: 0,
        }
    }
}

/// Seconds per phase.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timing {
    /// Seconds generating candidate pairs.
    pub block: f64,
    /// Comparing candidate pairs.
    pub compare: f64,
    /// Training (u sampling and EM).
    pub train: f64,
    /// Scoring.
    pub score: f64,
    /// Clustering.
    pub cluster: f64,
}

/// Scored pairs below this probability (and not settled by ID) are dropped after scoring.
pub const SCORE_FLOOR: f64 = 0.01;

/// The result of a link job.
#[derive(Clone, Debug)]
pub struct Linked {
    /// The model used.
    pub model: Model,
    /// Name term frequencies.
    pub tf: TermFrequencies,
    /// Candidate pairs, sorted; empty when the job did not keep them
    /// ([`LinkOptions::keep_candidates`]).
    pub pairs: Vec<(u32, u32)>,
    /// How many candidate pairs blocking found (`pairs.len()` when they were kept).
    pub candidates: usize,
    /// Blocks skipped for size, per rule (of a link task, blocks holding two sources: a block of
    /// one source gives no pair).
    pub skipped_blocks: Vec<usize>,
    /// Pairs each blocking rule produced (before pairs found by several rules were merged).
    pub rule_pairs: Vec<usize>,
    /// Scored pairs, in the order of `pairs`: deterministic ones and those with a probability of
    /// at least [`SCORE_FLOOR`] (or the threshold, if lower); clear non-matches are not kept.
    pub scored: Vec<Scored>,
    /// Entity (dense index) of each record.
    pub entity: Vec<u32>,
    /// Stable entity id of each record (write it as `{:016x}`).
    pub entity_id: Vec<u64>,
    /// Time per phase.
    pub timing: Timing,
    /// What looked implausible about the model ([`model::plausibility`]); empty when nothing did.
    pub warnings: Vec<String>,
}

impl Linked {
    /// Bytes the job's results take (their vectors' capacities and the name counts; the model
    /// is small): what a caller holds of them against a memory budget.
    pub fn heap_bytes(&self) -> u64 {
        use crate::memory::vec_bytes;
        budget::sum([
            self.tf.heap_bytes(),
            vec_bytes(&self.pairs),
            // Scored into a vector reserved for every candidate pair: the room past the kept
            // pairs is address space never written, not memory.
            budget::times(self.scored.len(), budget::SCORED_BYTES),
            vec_bytes(&self.entity),
            vec_bytes(&self.entity_id),
        ])
    }

    /// Makes the entities' stable ids (`entity_id`) from `entity` and the records' sources and
    /// keys ([`model::entity_ids`]), the seconds added to `timing.cluster`; returns them.
    /// `records` are the job's ([`run_without_ids`]).
    pub fn make_entity_ids(&mut self, records: &Records) -> f64 {
        let (mut lap, t) = (crate::diagnostics::Lap::start(), Instant::now());
        self.entity_id = model::entity_ids(records, &self.entity);
        crate::memory::release();
        let seconds = t.elapsed().as_secs_f64();
        self.timing.cluster += seconds;
        lap.lap("link: entity ids");
        seconds
    }

    /// Matches: deterministic pairs (settled by citizen ID), and pairs at or above `threshold`,
    /// not contradicted by both names and the birth date, whose records the clustering joined — a probabilistic pair it kept apart (two known
    /// different IDs, or in a link task a second record of one source) is not a match.
    pub fn matches(&self, threshold: f64) -> impl Iterator<Item = &Scored> {
        self.scored.iter().filter(move |s| self.is_match(s, threshold))
    }

    /// Whether one scored pair is a match (the rule of [`Linked::matches`]).
    pub fn is_match(&self, s: &Scored, threshold: f64) -> bool {
        is_match(s, threshold, &self.entity)
    }
}

/// The one definition of a match: a deterministic pair, or a pair at or above `threshold` that
/// is not contradicted (both names and the birth date disagreeing) and whose records the
/// clustering put in one entity.
pub(crate) fn is_match(s: &Scored, threshold: f64, entity: &[u32]) -> bool {
    s.deterministic || (s.accepted(threshold) && entity[s.a as usize] == entity[s.b as usize])
}

impl LinkOptions {
    /// The blocking rules the job predicts with: a loaded model brings the blocking its prior
    /// was fitted on, unless the job names its own.
    pub(crate) fn blocking_used(&self) -> Blocking {
        match &self.model {
            Some(m) if self.blocking == Blocking::default() => m.blocking.clone(),
            _ => self.blocking.clone(),
        }
    }

    /// The loaded model for candidates blocked by `blocking` with pattern counts `groups`: as
    /// loaded when fitted on those rules, else with its prior refitted to these candidates;
    /// `None` when the job trains its own.
    pub(crate) fn given_model(&self, blocking: &Blocking, groups: &[(model::Pattern, f64)]) -> Option<Model> {
        self.model.as_ref().map(|m| {
            if m.blocking == *blocking {
                m.clone()
            } else {
                Model {
                    lambda: model::refit_prior(m, groups, self.train.max_iterations),
                    blocking: blocking.clone(),
                    ..m.clone()
                }
            }
        })
    }

    /// Checks the options: a threshold strictly between 0 and 1 (not NaN), and a loaded model
    /// that fits this version's comparisons ([`Model::validate`]).
    pub fn validate(&self) -> Result<()> {
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(crate::Error::Config(format!(
                "the match threshold must be a probability strictly between 0 and 1, not {}",
                self.threshold
            )));
        }
        if let Some(m) = &self.model {
            m.validate()?;
        }
        self.blocking.validate()
    }
}

/// Runs a link job over `r`.
pub fn run(records: &Records, options: &LinkOptions) -> Result<Linked> {
    let mut l = run_without_ids(records, options)?;
    let budget = budget::Budget::of(options, records.len());
    budget.check_entity_ids(records.len(), || records.heap_bytes().saturating_add(l.heap_bytes()))?;
    l.make_entity_ids(records);
    Ok(l)
}

/// [`run`] without the entities' stable ids (`entity_id` left empty): a caller that reads the
/// job before writing it (an evaluation against a truth, which needs the entities only) makes
/// them afterwards with [`Linked::make_entity_ids`], and does not hold their 8 bytes a record
/// through its own work (0.42 GB for the national job, at the peak of `tpmap link --truth`).
pub fn run_without_ids(records: &Records, options: &LinkOptions) -> Result<Linked> {
    let mut l = scored_job(records, options, Keep::Everything)?;
    let budget = budget::Budget::of(options, records.len());
    let held = || records.heap_bytes().saturating_add(l.heap_bytes());
    budget.check_clustering((&l.scored, options.threshold), (records.len(), records.sources.len()), held)?;
    let (mut lap, t) = (crate::diagnostics::Lap::start(), Instant::now());
    l.entity = model::cluster(records, &l.scored, options.threshold, options.task);
    // The clustering's union given back before the ids are made and before what the caller
    // does next (an evaluation against a truth built on top of it).
    crate::memory::release();
    l.timing.cluster = t.elapsed().as_secs_f64();
    lap.lap("link: clustered");
    Ok(l)
}

/// [`run`], [`output::LinkReport::of`] and [`output::write`] in one, holding less (what `tpmap link`
/// does without a truth file): once the pairs are scored and the explanations made, the records
/// give up all but their sources, keys and citizen IDs — their names, dates and addresses, about
/// two thirds of them (1.5 GiB of the national job's 2.2) — before the pairs are clustered, the
/// entities' ids made and the files written; the IDs go once clustered, the name counts once
/// the explanations are made. The same files as [`output::write`] after [`run`]; returns
/// the report written (`link.json`). `read_seconds` and `started`: as
/// [`output::LinkReport::of`] takes them.
pub fn run_and_write(
    dir: &std::path::Path,
    mut records: Records,
    options: &LinkOptions,
    explain: usize,
    read_seconds: f64,
    started: Instant,
) -> Result<output::LinkReport> {
    use crate::memory::vec_bytes;
    use budget::Budget;
    use output::{LinkReport, RecordKeys};
    let o = options;
    let mut l = scored_job(&records, o, Keep::Everything)?;
    let ex = output::explanations(&records, &l, o.threshold, explain);
    l.tf = TermFrequencies::default();
    let (n, unreadable) = (records.len(), output::unreadable_of(&records));
    // Taken, and the rest dropped here (a pattern that moved these fields out would leave the
    // others to the end of the function).
    let sources = std::mem::take(&mut records.sources);
    let source = std::mem::take(&mut records.source);
    let key = std::mem::take(&mut records.key);
    let citizen_id = std::mem::take(&mut records.citizen_id);
    drop(records);
    crate::memory::release();
    let (mut lap, t) = (crate::diagnostics::Lap::start(), Instant::now());
    // In place (the same 8 bytes a record).
    let ids: Vec<_> = citizen_id.into_iter().map(|c| c.map(|c| c.as_nonzero())).collect();
    let budget = Budget::of(o, n);
    let keys_bytes = budget::sum([vec_bytes(&sources), vec_bytes(&source), key.heap_bytes()]);
    let held = || budget::sum([keys_bytes, vec_bytes(&ids), l.heap_bytes()]);
    budget.check_clustering((&l.scored, o.threshold), (n, sources.len()), held)?;
    l.entity = model::cluster_ids(ids, &source, sources.len(), &l.scored, o.threshold, o.task);
    crate::memory::release();
    l.timing.cluster = t.elapsed().as_secs_f64();
    lap.lap("link: clustered");
    let keys = RecordKeys { sources: &sources, source: &source, key: &key };
    budget.check_entity_ids(n, || keys_bytes.saturating_add(l.heap_bytes()))?;
    let t = Instant::now();
    l.entity_id = model::entity_ids_by(&l.entity, |i| keys.source_of(i), |i| key.get(i));
    crate::memory::release();
    l.timing.cluster += t.elapsed().as_secs_f64();
    lap.lap("link: entity ids");
    let report = LinkReport::with(n, sources.clone(), unreadable, &l, o.threshold, (read_seconds, started));
    output::write_files(dir, keys, &l, &report, &ex)?;
    lap.lap("outputs written");
    Ok(report)
}

/// What a job keeps beyond its matches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Everything [`Linked`] holds: [`run`].
    Everything,
    /// What [`Matched`] holds: [`run_matches`].
    Matches,
}

/// A link job's matches and what they need, without the candidate pairs, the scored pairs below
/// the threshold or the entities' stable ids: what [`run_matches`] keeps for callers that read
/// the matches only (a welfare registry's marks, a beneficiary list, the panel's linkage).
#[derive(Clone, Debug)]
pub struct Matched {
    /// The threshold the job was run with.
    pub threshold: f64,
    /// The scored pairs at or above the threshold and the deterministic ones, in the order of
    /// the job's candidate pairs: every pair [`Matched::matches`] can give.
    pub scored: Vec<Scored>,
    /// Entity (dense index) of each record, as [`Linked::entity`].
    pub entity: Vec<u32>,
    /// Time per phase.
    pub timing: Timing,
    /// What looked implausible about the model ([`model::plausibility`]).
    pub warnings: Vec<String>,
}

impl Matched {
    /// The job's matches: the pairs [`Linked::matches`] gives at the job's threshold, in the
    /// same order.
    pub fn matches(&self) -> impl Iterator<Item = &Scored> {
        self.scored.iter().filter(move |s| is_match(s, self.threshold, &self.entity))
    }
}

/// Runs a link job over `records` for its matches alone: the same matches and entities as
/// [`run`] (the same blocking, model, scores and clustering), with less held at once. The
/// records are taken so that they go before clustering, which reads only each one's valid
/// citizen ID and source; the candidate pairs go once scored, pairs below the threshold are not
/// kept (clustering and matching never read them) and no stable entity ids are made. A caller
/// that needs the records' count or flags afterwards takes them first.
pub fn run_matches(mut records: Records, options: &LinkOptions) -> Result<Matched> {
    let Linked { scored, mut timing, warnings, .. } = scored_job(&records, options, Keep::Matches)?;
    let (mut lap, t) = (crate::diagnostics::Lap::start(), Instant::now());
    let (citizen_id, source) = (std::mem::take(&mut records.citizen_id), std::mem::take(&mut records.source));
    let n_sources = records.sources.len();
    drop(records);
    let ids = model::valid_ids(&citizen_id);
    drop(citizen_id);
    crate::memory::release();
    let budget = budget::Budget::of(options, ids.len());
    let held = || {
        let scored = budget::times(scored.len(), budget::SCORED_BYTES);
        budget::sum([scored, crate::memory::vec_bytes(&ids), crate::memory::vec_bytes(&source)])
    };
    budget.check_clustering((&scored, options.threshold), (ids.len(), n_sources), held)?;
    let entity = model::cluster_ids(ids, &source, n_sources, &scored, options.threshold, options.task);
    timing.cluster = t.elapsed().as_secs_f64();
    lap.lap("link: clustered");
    Ok(Matched { threshold: options.threshold, scored, entity, timing, warnings })
}

/// A link job up to its scores: the [`Linked`] of [`run`] without entities (`entity` and
/// `entity_id` empty); with [`Keep::Matches`], without candidate pairs either and with only
/// the scored pairs a match can be among.
fn scored_job(records: &Records, options: &LinkOptions, keep: Keep) -> Result<Linked> {
    let (r, o) = (records, options);
    o.validate()?;
    r.check_limits()?;
    // What the caller freed before the job (a vector of records copied as it grew, the waves of
    // a partitioned run) is given back before blocking builds on top of it.
    crate::memory::release();
    let mut timing = Timing::default();
    let mut lap = crate::diagnostics::Lap::start();
    let t = Instant::now();
    let blocking = o.blocking_used();
    // Within a budget, what the job holds is added up at every phase (`budget`).
    let budget = budget::Budget::of(o, r.len());
    let records_bytes = if budget.is_set() { r.heap_bytes() } else { 0 };
    budget.check(|| "once the records are read".into(), records_bytes)?;
    let cand = model::block_within(r, o.task, &blocking, &budget, records_bytes)?;
    timing.block = t.elapsed().as_secs_f64();
    lap.lap(&format!("link: {} candidate pairs", cand.pairs.len()));
    let t = Instant::now();
    let candidates = cand.pairs.len();
    let pairs_bytes = budget::times(candidates, budget::PAIR_BYTES);
    let what = || format!("putting the {candidates} candidate pairs in pieces");
    budget.check(what, budget::sum([records_bytes, crate::memory::vec_bytes(&cand.pairs), pairs_bytes]))?;
    // The pairs and their patterns in pieces, each given back once scored (below).
    let pair_pieces = model::pair_pieces(cand.pairs, model::SCORE_RANGE);
    crate::memory::release();
    let patterns_bytes = budget::times(candidates, budget::PATTERN_BYTES);
    let what = || format!("comparing the {candidates} candidate pairs");
    budget.check(what, budget::sum([records_bytes, pairs_bytes, patterns_bytes]))?;
    let pats = model::pattern_pieces(r, &pair_pieces);
    let groups = model::group_pieces(&pats);
    timing.compare = t.elapsed().as_secs_f64();
    lap.lap("link: compared");
    let t = Instant::now();
    let mut warnings = Vec::new();
    let m = match o.given_model(&blocking, &groups) {
        Some(m) => m,
        None => {
            // m and u are trained on the fixed training blocks whatever rules predict (Splink's
            // practice): rules that bring in, say, whole households would otherwise teach the
            // model households instead of people. Only the prior is refitted to the prediction
            // candidates.
            let training = Blocking::default();
            let sample = model::u_sample(r.len(), |i| r.source[i], o.task, &o.train)?;
            let random = model::group(&model::patterns(r, &sample));
            if blocking == training {
                model::train_grouped(&random, &groups, &training, &o.train)
            } else {
                let held = budget::sum([records_bytes, pairs_bytes, patterns_bytes]);
                let tc = model::block_within(r, o.task, &training, &budget, held)?;
                let tp = model::group(&model::patterns(r, &tc.pairs));
                let trained = model::train_grouped(&random, &tp, &training, &o.train);
                warnings.extend(model::plausibility(&trained, &tp));
                Model {
                    lambda: model::refit_prior(&trained, &groups, o.train.max_iterations),
                    blocking: blocking.clone(),
                    ..trained
                }
            }
        }
    };
    warnings.extend(model::plausibility(&m, &groups));
    let tf = TermFrequencies::of(r);
    let tf_bytes = if budget.is_set() { tf.heap_bytes() } else { 0 };
    let held = budget::sum([records_bytes, tf_bytes]);
    budget.check(|| "counting the names".into(), budget::sum([held, pairs_bytes, patterns_bytes]))?;
    timing.train = t.elapsed().as_secs_f64();
    lap.lap("link: trained");
    let t = Instant::now();
    // A match is deterministic or at or above the threshold (`is_match`): a job for its matches
    // keeps nothing below.
    let floor = if keep == Keep::Matches { o.threshold } else { SCORE_FLOOR.min(o.threshold) };
    // The candidate pairs are kept whole only when asked for (an evaluation against a truth);
    // otherwise each piece goes once scored, before the release below.
    let keep_pairs = keep == Keep::Everything && o.keep_candidates;
    let (scored, pairs) = model::score_pieces_above(
        r,
        (&m, m.tf.then_some(&tf)),
        (pair_pieces, pats),
        floor,
        keep_pairs,
        (&budget, held),
    )?;
    crate::memory::release();
    timing.score = t.elapsed().as_secs_f64();
    lap.lap(&format!("link: {} pairs scored", scored.len()));
    Ok(Linked {
        model: m,
        tf,
        pairs,
        candidates,
        skipped_blocks: cand.skipped_blocks,
        rule_pairs: cand.rule_pairs,
        scored,
        entity: Vec::new(),
        entity_id: Vec::new(),
        timing,
        warnings,
    })
}

/// What linking a survey extract with a welfare registry found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WelfareLink {
    /// Persons of the extract.
    pub persons: usize,
    /// Records of the registry.
    pub registry_records: usize,
    /// Persons matched to a registry record.
    pub matched: usize,
    /// Of those, matched by the deterministic citizen-ID pass.
    pub matched_by_id: usize,
    /// Persons marked validated (the matched record's `validated` flag; registered when the
    /// registry has no such column).
    pub validated: usize,
    /// Registry records matched to no person of the extract.
    pub registry_unmatched: usize,
    /// Registry records that could not be read (text not valid in the file's encoding), not linked.
    pub registry_unreadable: usize,
    /// Seconds the whole linkage took, reading included.
    pub seconds: f64,
}

/// A person's best registry match so far, as [`mark_welfare`] chooses it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BestMatch {
    /// The pair's match probability.
    pub probability: f64,
    /// Settled by citizen ID.
    pub deterministic: bool,
    /// The registry record.
    pub record: usize,
}

impl BestMatch {
    /// Offers a match (in scored-pair order): it replaces the one in `slot` when it is
    /// deterministic and that one is not, or equally so with a higher probability; on a tie the
    /// earlier pair stays.
    pub fn offer(slot: &mut Option<BestMatch>, cand: BestMatch) {
        if slot.is_none_or(|b| (cand.deterministic, cand.probability) > (b.deterministic, b.probability)) {
            *slot = Some(cand);
        }
    }

    /// Whether a matched person counts as validated: the registry record's `validated` flag, and
    /// validated when the registry has none.
    pub fn validated(flag: Option<bool>) -> bool {
        flag.unwrap_or(true)
    }
}

/// Links the persons of `x` with a welfare-card registry file and sets every person's
/// `welfare_registered` (matched or not) and `welfare_validated` (the matched record's
/// `validated` column; `true` when the registry has none) — replacing what the extract said.
/// Each person takes the registry record with the highest match probability.
pub fn mark_welfare(
    x: &mut crate::extract::Extract,
    registry: &std::path::Path,
    o: &LinkOptions,
) -> Result<WelfareLink> {
    let t = Instant::now();
    let mut r = Records::default();
    r.push_extract("survey", x);
    let n = x.persons.len();
    let (marks, mut out) = welfare_marks(r, n, registry, o)?;
    for (p, m) in marks.iter().enumerate() {
        x.persons.welfare_registered[p] = Some(m.is_some());
        x.persons.welfare_validated[p] = Some(m.unwrap_or(false));
    }
    out.seconds = t.elapsed().as_secs_f64();
    Ok(out)
}

/// What [`mark_welfare`] sets, for persons whose link records are the first `n` of `r` (in the
/// extract's order, as [`Records::push_extract`] gives them): `registry` is read into `r` and
/// linked, and each person gets `Some(validated)` when matched to a registry record, else
/// `None`. A partitioned run gathers its waves' persons into `r` and marks each wave with
/// these. The report's `seconds` are the linkage's (reading the registry included).
pub fn welfare_marks(
    mut r: Records,
    n: usize,
    registry: &std::path::Path,
    o: &LinkOptions,
) -> Result<(Vec<Option<bool>>, WelfareLink)> {
    let t = Instant::now();
    r.push_csv(registry)?;
    // Only the matches and the registry's flags are read after linking: the records (about 75
    // bytes each) go before clustering.
    let (unreadable, flag) = (r.unreadable.len(), std::mem::take(&mut r.flag));
    let linked = run_matches(r, &LinkOptions { task: Task::Link, ..o.clone() })?;
    let (marks, mut out) = marks_of(linked.matches().copied(), n, flag.get(n..).unwrap_or_default());
    out.registry_unreadable = unreadable;
    // The scored pairs (2.5 GB nationally with each person's best match) go before the waves
    // that follow: given back at once, not kept by the allocator beside them.
    drop(linked);
    crate::memory::release();
    out.seconds = t.elapsed().as_secs_f64();
    Ok((marks, out))
}

/// Each person's mark from a welfare linkage's matches (in pair order): the first `n` records are the persons,
/// the others the registry's, whose `validated` flags are `registry_flag` (in registry order).
/// Each person takes its best match ([`BestMatch::offer`], in the matches' order); the report
/// counts all but the unreadable records and the seconds.
pub(crate) fn marks_of(
    matches: impl Iterator<Item = Scored>,
    n: usize,
    registry_flag: &[Option<bool>],
) -> (Vec<Option<bool>>, WelfareLink) {
    let registry = registry_flag.len();
    let mut best: Vec<Option<BestMatch>> = vec![None; n];
    let mut reg_matched = vec![false; registry];
    for s in matches {
        let (a, b) = (s.a as usize, s.b as usize);
        let (p, j) = if a < n { (a, b) } else { (b, a) };
        if p >= n || j < n || j - n >= registry {
            continue;
        }
        reg_matched[j - n] = true;
        BestMatch::offer(
            &mut best[p],
            BestMatch { probability: s.probability, deterministic: s.deterministic, record: j },
        );
    }
    let mut out = WelfareLink { persons: n, registry_records: registry, ..Default::default() };
    let marks: Vec<Option<bool>> = best
        .iter()
        .map(|b| {
            b.map(|BestMatch { deterministic, record, .. }| {
                out.matched += 1;
                out.matched_by_id += deterministic as usize;
                let validated = BestMatch::validated(registry_flag[record - n]);
                out.validated += validated as usize;
                validated
            })
        })
        .collect();
    out.registry_unmatched = reg_matched.iter().filter(|m| !**m).count();
    (marks, out)
}
