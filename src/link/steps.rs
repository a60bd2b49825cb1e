//! The link job as steps over parts of its records, for engines that move data between machines
//! (`tpmap.spark.link`, docs/spark.md). Each step is the single-machine job's own code applied to
//! a subset; composed, they give [`super::run`]'s candidate pairs, model, scores and entities
//! exactly:
//!
//! 1. [`record_keys`]: each record's blocking key under every rule, hashed as [`model::block`]
//!    hashes it. The engine also counts the records' normalised names (term frequencies).
//! 2. The engine shuffles (rule, key, record) rows so that every block is whole in one place;
//!    [`pairs_in_blocks`] pairs the blocks as [`model::block`] does (oversized blocks skipped and
//!    counted); the engine drops pairs that several rules found.
//! 3. The engine joins each pair's two records; [`aligned_patterns`] compares them.
//! 4. The engine counts patterns; [`model::u_sample`] names the random pairs u is estimated
//!    from (compared as in 3); [`model::group_counts`] and [`model::train_grouped`] fit the model
//!    on the driver from counts alone.
//! 5. [`score_pair`]: weight and deterministic pass from the pattern and the first record's
//!    name counts ([`Model::weight_of`], [`Scored::of`]).
//! 6. The engine finds the connected components of the matched pairs; [`cluster_components`]
//!    clusters whole components with [`model::cluster_with`] (the greedy union never crosses a
//!    component) and names entities with [`model::entity_ids_by`].

use super::model::{self, Blocking, Model, Pattern, Scored, Task, TermFrequencies};
use super::records::Records;
use crate::{Error, Result};

/// Each record's blocking key under every rule of `b` (`keys[rule][record]`; `None` when the
/// record has no key under the rule), as [`model::block`] hashes them.
pub fn record_keys(r: &Records, b: &Blocking) -> Vec<Vec<Option<u64>>> {
    b.rules
        .iter()
        .map(|rule| {
            let mut keys = vec![None; r.len()];
            for (k, i) in model::rule_keys(r, rule) {
                if let Some(slot) = keys.get_mut(i as usize) {
                    *slot = Some(k);
                }
            }
            keys
        })
        .collect()
}

/// One record under one blocking rule: the input of [`pairs_in_blocks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlockRow {
    /// The rule's index.
    pub rule: u16,
    /// The record's key under the rule.
    pub key: u64,
    /// The record's index in the job.
    pub record: u32,
    /// The record's source.
    pub source: u16,
}

/// What [`pairs_in_blocks`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlockPairs {
    /// (rule, a, b) with a < b: every pair each rule makes (a pair several rules make appears
    /// under each, as [`model::Candidates::rule_pairs`] counts them).
    pub pairs: Vec<(u16, u32, u32)>,
    /// Blocks skipped for size, per rule (of a link task, blocks holding two sources).
    pub skipped: Vec<usize>,
}

/// The pairs of whole blocks: `rows` must hold every record of each (rule, key) it holds any of
/// (the engine's shuffle by key guarantees it). Blocks larger than `max_block` are skipped and
/// counted, as [`model::block`] does; a record given twice under one key counts once.
pub fn pairs_in_blocks(rows: &mut [BlockRow], rules: usize, task: Task, max_block: usize) -> Result<BlockPairs> {
    if let Some(r) = rows.iter().find(|r| usize::from(r.rule) >= rules) {
        return Err(Error::Config(format!("blocking rule {} of {rules}", r.rule)));
    }
    rows.sort_unstable();
    let mut out = BlockPairs { pairs: Vec::new(), skipped: vec![0; rules] };
    let mut packed = Vec::new();
    for g in rows.chunk_by(|x, y| (x.rule, x.key) == (y.rule, y.key)) {
        let mut members: Vec<(u32, u16)> = g.iter().map(|r| (r.record, r.source)).collect();
        members.dedup_by_key(|m| m.0);
        if members.len() < 2 {
            continue;
        }
        let rule = g[0].rule;
        if members.len() > max_block {
            // As `model::block` counts them: a link's block of one source gives no pair, and is
            // not counted as skipped.
            if model::gives_pairs(members.iter().map(|m| m.1), task) {
                out.skipped[usize::from(rule)] += 1;
            }
            continue;
        }
        packed.clear();
        model::block_pairs(members.iter().copied(), task, &mut packed);
        // Unpacked as model::block unpacks them.
        out.pairs.extend(packed.iter().map(|&p| {
            let (a, b) = model::unpack(p);
            (rule, a, b)
        }));
    }
    Ok(out)
}

/// Comparison patterns of aligned pairs: `r` holds 2n records, and pair i is record i against
/// record n + i (the engine joined each pair's first record into the first half, its second into
/// the second half).
pub fn aligned_patterns(r: &Records) -> Result<Vec<Pattern>> {
    let n = r.len() / 2;
    if r.len() != 2 * n {
        return Err(Error::Config("aligned patterns need as many second records as first".into()));
    }
    let n32 = u32::try_from(n).map_err(|_| Error::Config("too many pairs in one batch".into()))?;
    let pairs: Vec<(u32, u32)> = (0..n32).map(|i| (i, n32 + i)).collect();
    Ok(model::patterns(r, &pairs))
}

/// Scores one pair from its pattern: `a_has_id` when its first record carries a valid citizen ID,
/// `first` and `last` the counts of the first record's given and family names among the job's
/// `records` records (`None` for an empty name). The score [`model::score_pairs`] gives it.
#[allow(clippy::too_many_arguments)]
pub fn score_pair(
    m: &Model,
    a: u32,
    b: u32,
    p: &Pattern,
    a_has_id: bool,
    first: Option<u64>,
    last: Option<u64>,
    records: u64,
) -> Scored {
    let freq = |c: u64| TermFrequencies::frequency(c, records);
    let w = if m.tf { m.weight_of(p, first.map(freq), last.map(freq)) } else { m.weight_of(p, None, None) };
    Scored::of(a, b, p, w, a_has_id)
}

/// A record as [`cluster_components`] needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterRecord {
    /// Index in the job.
    pub record: u32,
    /// Source index.
    pub source: u16,
    /// Valid citizen ID, if any.
    pub citizen_id: Option<u64>,
    /// Source name.
    pub source_name: String,
    /// Key in its source.
    pub key: String,
}

/// A record's entity: the smallest record index of its entity and the entity's stable id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assigned {
    /// Index in the job.
    pub record: u32,
    /// The entity's smallest record index (records share it exactly when they share the entity).
    pub representative: u32,
    /// Stable entity id ([`model::entity_ids`]).
    pub entity: u64,
}

/// Clusters whole connected components of the matched pairs: `records` every record of the
/// components, `edges` every scored pair among them (global indices). Gives each record the
/// entity the whole job gives it: the greedy union of [`model::cluster`] only ever joins records
/// of one component, and a subset numbered in the job's order keeps its pair order and ties.
pub fn cluster_components(
    records: &mut Vec<ClusterRecord>,
    edges: &[Scored],
    n_sources: usize,
    threshold: f64,
    task: Task,
) -> Result<Vec<Assigned>> {
    if let Some(r) = records.iter().find(|r| usize::from(r.source) >= n_sources) {
        return Err(Error::Config(format!("a record of source {} in a job of {n_sources} sources", r.source)));
    }
    records.sort_unstable_by_key(|r| r.record);
    records.dedup_by_key(|r| r.record);
    let local = |g: u32| records.binary_search_by_key(&g, |r| r.record).ok().and_then(|i| u32::try_from(i).ok());
    let mut scored: Vec<Scored> = Vec::with_capacity(edges.len());
    for e in edges {
        let (Some(a), Some(b)) = (local(e.a), local(e.b)) else {
            return Err(Error::Config("a matched pair whose records are not in its component".into()));
        };
        scored.push(Scored { a, b, ..*e });
    }
    // The job's pair order (local numbering keeps it): ties in probability are taken in it.
    scored.sort_by_key(|s| (s.a, s.b));
    let ids: Vec<Option<u64>> = records.iter().map(|r| r.citizen_id).collect();
    let source: Vec<u16> = records.iter().map(|r| r.source).collect();
    let entity = model::cluster_with(&ids, &source, n_sources, &scored, threshold, task);
    let stable = model::entity_ids_by(&entity, |i| records[i].source_name.as_str(), |i| records[i].key.as_str());
    let mut rep: Vec<u32> = vec![u32::MAX; entity.iter().max().map_or(0, |m| *m as usize + 1)];
    for (r, &e) in records.iter().zip(&entity) {
        rep[e as usize] = rep[e as usize].min(r.record);
    }
    Ok(records
        .iter()
        .zip(entity.iter().zip(&stable))
        .map(|(r, (&e, &id))| Assigned { record: r.record, representative: rep[e as usize], entity: id })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::records::RawRecord;
    use crate::link::{LinkOptions, run};

    fn sample() -> Records {
        let mut r = Records::default();
        let raw = |k: &str, id: &'static str, f: &'static str, l: &'static str, b: &'static str| RawRecord {
            key: k.into(),
            citizen_id: id,
            first: f,
            last: l,
            birth: b,
            area: "10010101",
            sex: "m",
            ..Default::default()
        };
        r.push_source(
            "survey",
            &[
                raw("s1", "1101700203451", "สมชาย", "ใจดี", "15/03/2530"),
                raw("s2", "", "สมหญิง", "ใจดี", "01/01/2532"),
                raw("s3", "", "มานะ", "รักไทย", "02/02/2500"),
            ],
        );
        r.push_source(
            "welfare",
            &[
                raw("w1", "1101700203451", "สมชาย", "ใจดี", "15/03/2530"),
                raw("w2", "", "สมหญิง", "ใจดีย์", "01/01/2532"),
                raw("w3", "", "มานี", "รักไทย", "02/02/2500"),
            ],
        );
        r
    }

    #[test]
    fn steps_give_the_jobs_pairs_and_entities() {
        let r = sample();
        let o = LinkOptions::default();
        let whole = run(&r, &o).unwrap();
        let b = Blocking::default();
        let keys = record_keys(&r, &b);
        let mut rows: Vec<BlockRow> = Vec::new();
        for (rule, ks) in keys.iter().enumerate() {
            for (i, k) in ks.iter().enumerate() {
                if let Some(k) = k {
                    rows.push(BlockRow { rule: rule as u16, key: *k, record: i as u32, source: r.source[i] });
                }
            }
        }
        let bp = pairs_in_blocks(&mut rows, b.rules.len(), o.task, b.max_block).unwrap();
        let mut pairs: Vec<(u32, u32)> = bp.pairs.iter().map(|p| (p.1, p.2)).collect();
        pairs.sort_unstable();
        pairs.dedup();
        assert_eq!(pairs, whole.pairs);
        assert_eq!(bp.pairs.len(), whole.rule_pairs.iter().sum::<usize>());
        // Scores from patterns and name counts, with the job's model.
        let pats = model::patterns(&r, &pairs);
        let count = |s: &str, col: &crate::link::records::InternedColumn| {
            (!s.is_empty()).then(|| col.iter().filter(|x| *x == s).count() as u64)
        };
        let scored: Vec<Scored> = pairs
            .iter()
            .zip(&pats)
            .map(|(&(a, b2), p)| {
                let i = a as usize;
                score_pair(
                    &whole.model,
                    a,
                    b2,
                    p,
                    r.citizen_id[i].is_some(),
                    count(r.first.get(i), &r.first),
                    count(r.last.get(i), &r.last),
                    r.len() as u64,
                )
            })
            .filter(|s| s.deterministic || s.probability >= crate::link::SCORE_FLOOR)
            .collect();
        assert_eq!(scored, whole.scored);
        // Clustering the records in reverse order, with the edges shuffled, changes nothing.
        let mut recs: Vec<ClusterRecord> = (0..r.len())
            .rev()
            .map(|i| ClusterRecord {
                record: i as u32,
                source: r.source[i],
                citizen_id: r.citizen_id[i].map(|c| c.as_u64()),
                source_name: r.sources[r.source[i] as usize].clone(),
                key: r.key.get(i).to_string(),
            })
            .collect();
        let mut edges = scored.clone();
        edges.reverse();
        let got = cluster_components(&mut recs, &edges, r.sources.len(), o.threshold, o.task).unwrap();
        for a in &got {
            assert_eq!(a.entity, whole.entity_id[a.record as usize]);
        }
        let rep_of = |i: u32| got.iter().find(|a| a.record == i).unwrap().representative;
        for s in &whole.scored {
            let same = whole.entity[s.a as usize] == whole.entity[s.b as usize];
            assert_eq!(rep_of(s.a) == rep_of(s.b), same);
        }
        assert!(whole.matches(o.threshold).count() >= 1, "the sample links something");
    }

    #[test]
    fn a_saved_model_reads_back_bit_for_bit() {
        let whole = run(&sample(), &LinkOptions::default()).unwrap();
        let text = serde_json::to_string(&whole.model).unwrap();
        assert_eq!(Model::from_json(&text).unwrap(), whole.model);
    }

    #[test]
    fn oversized_blocks_are_skipped_and_counted_and_rules_checked() {
        let mut rows: Vec<BlockRow> =
            (0..5).map(|i| BlockRow { rule: 1, key: 7, record: i, source: (i % 2) as u16 }).collect();
        let got = pairs_in_blocks(&mut rows, 2, Task::Dedupe, 4).unwrap();
        assert_eq!(got.skipped, vec![0, 1]);
        assert!(got.pairs.is_empty());
        let got = pairs_in_blocks(&mut rows, 2, Task::Link, 5).unwrap();
        // Sources 0,1,0,1,0: 3 × 2 pairs across sources.
        assert_eq!(got.pairs.len(), 6);
        assert!(pairs_in_blocks(&mut rows, 1, Task::Link, 5).is_err());
        // Too large for a link: skipped when it holds two sources, not when it holds one (it
        // would give no pair), as `model::block` counts them.
        assert_eq!(pairs_in_blocks(&mut rows, 2, Task::Link, 4).unwrap().skipped, vec![0, 1]);
        let mut one: Vec<BlockRow> = (0..5).map(|i| BlockRow { rule: 0, key: 7, record: i, source: 1 }).collect();
        assert_eq!(pairs_in_blocks(&mut one, 2, Task::Link, 4).unwrap().skipped, vec![0, 0]);
        assert_eq!(pairs_in_blocks(&mut one, 2, Task::Dedupe, 4).unwrap().skipped, vec![1, 0]);
    }

    #[test]
    fn cluster_components_refuses_what_does_not_fit() {
        let rec = |i: u32, s: u16| ClusterRecord {
            record: i,
            source: s,
            citizen_id: None,
            source_name: "a".into(),
            key: i.to_string(),
        };
        let e = Scored { a: 0, b: 5, weight: 0.0, probability: 0.99, deterministic: false, contradicted: false };
        // Record 5 missing from its component; a source beyond the job's.
        assert!(cluster_components(&mut vec![rec(0, 0), rec(1, 1)], &[e], 2, 0.9, Task::Link).is_err());
        assert!(cluster_components(&mut vec![rec(0, 0), rec(5, 2)], &[e], 2, 0.9, Task::Link).is_err());
        let ok = cluster_components(&mut vec![rec(5, 1), rec(0, 0)], &[e], 2, 0.9, Task::Link).unwrap();
        assert_eq!(ok.iter().map(|a| (a.record, a.representative)).collect::<Vec<_>>(), vec![(0, 0), (5, 0)]);
        assert_eq!(ok[0].entity, ok[1].entity);
    }

    #[test]
    fn packed_pairs_unpack_to_their_halves() {
        let mut v = Vec::new();
        model::block_pairs([(9u32, 0u16), (u32::MAX, 1), (7, 1)].into_iter(), Task::Link, &mut v);
        let got: Vec<(u32, u32)> = v.iter().map(|&p| model::unpack(p)).collect();
        assert_eq!(got, vec![(9, u32::MAX), (7, 9)]);
    }

    #[test]
    fn u_sample_is_the_same_for_equal_sizes() {
        let r = sample();
        let o = model::TrainOptions::default();
        let a = model::u_sample(r.len(), |i| r.source[i], Task::Link, &o).unwrap();
        let b = model::u_sample(6, |i| u16::from(i >= 3), Task::Link, &o).unwrap();
        assert_eq!(a, b);
        assert!(a.iter().all(|&(x, y)| x < 3 && y >= 3));
        assert!(model::u_sample(1, |_| 0, Task::Link, &o).is_err());
    }
}
