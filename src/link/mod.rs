//! Record linkage across registries: the survey, the welfare-card registry, agencies' lists.
//!
//! A link job: normalise ([`normalize`], [`phonetic`]) → block ([`model::block`]) → compare
//! ([`compare`]) → train a Fellegi–Sunter model (u by random sampling, m by EM) or load one →
//! score, with a deterministic pass for citizen IDs → cluster into entities with stable ids →
//! explain any pair. One job covers dedupe within records, link across sources, or both.
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
pub mod compare;
pub mod model;
pub mod normalize;
pub mod phonetic;
pub mod records;

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
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            task: Task::Link,
            blocking: Blocking::default(),
            threshold: 0.9,
            model: None,
            train: model::TrainOptions::default(),
        }
    }
}

/// Seconds per phase.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timing {
    /// Blocking.
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

/// The result of a link job.
#[derive(Clone, Debug)]
pub struct Linked {
    /// The model used.
    pub model: Model,
    /// Name term frequencies.
    pub tf: TermFrequencies,
    /// Candidate pairs.
    pub pairs: Vec<(u32, u32)>,
    /// Blocks skipped for size, per rule.
    pub skipped_blocks: Vec<usize>,
    /// Scored pairs (same order as `pairs`).
    pub scored: Vec<Scored>,
    /// Entity (dense index) of each record.
    pub entity: Vec<u32>,
    /// Stable entity id of each record.
    pub entity_id: Vec<String>,
    /// Time per phase.
    pub timing: Timing,
}

impl Linked {
    /// Accepted pairs (deterministic, or probability at or above the threshold).
    pub fn matches(&self, threshold: f64) -> impl Iterator<Item = &Scored> {
        self.scored.iter().filter(move |s| s.deterministic || s.probability >= threshold)
    }
}

/// Runs a link job over `r`.
pub fn run(r: &Records, o: &LinkOptions) -> Result<Linked> {
    let mut timing = Timing::default();
    let t = Instant::now();
    let blocking = o.model.as_ref().map(|m| m.blocking.clone()).unwrap_or_else(|| o.blocking.clone());
    let cand = model::block(r, o.task, &blocking);
    timing.block = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let pats = model::patterns(r, &cand.pairs);
    timing.compare = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let m = match &o.model {
        Some(m) => m.clone(),
        None => model::train(r, o.task, &blocking, &pats, &o.train)?,
    };
    let tf = TermFrequencies::of(r);
    timing.train = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let scored = model::score_pairs(r, &m, m.tf.then_some(&tf), &cand.pairs, &pats);
    timing.score = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let entity = model::cluster(r, &scored, o.threshold);
    let entity_id = model::entity_ids(r, &entity);
    timing.cluster = t.elapsed().as_secs_f64();
    Ok(Linked {
        model: m,
        tf,
        pairs: cand.pairs,
        skipped_blocks: cand.skipped_blocks,
        scored,
        entity,
        entity_id,
        timing,
    })
}
