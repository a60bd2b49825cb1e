//! The files of a link job — `pairs.csv`, `entities.csv`, `model.json`, `explanations.json` and
//! `link.json` — written once, here, for the command line and Python alike. A pair's `match`
//! column is [`Linked::is_match`]: the rule `link.json`'s count and every other use of a link
//! job apply. [`super::run_and_write`] links and writes in one, holding less (what `tpmap link`
//! does without a truth file).
//!
//! ```no_run
//! use tpmap::link::output::{write, LinkReport};
//! use tpmap::link::{run, LinkOptions, Records};
//! let t0 = std::time::Instant::now();
//! let mut r = Records::default();
//! r.push_csv("welfare.csv".as_ref())?;
//! r.push_csv("agency.csv".as_ref())?;
//! let linked = run(&r, &LinkOptions::default())?;
//! let report = LinkReport::of(&r, &linked, 0.9, 0.0, t0);
//! write("link-out".as_ref(), &r, &linked, &report, 20)?;
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::path::Path;
use std::time::Instant;

use polars::prelude::*;
use serde::Serialize;

use super::model::Quality;
use super::{Linked, Records, Scored, Timing};
use crate::{Error, Result};

/// Pairs written by default: matches, deterministic pairs, and scored pairs at or above this.
pub const PAIRS_FLOOR: f64 = super::SCORE_FLOOR;

/// Scored pairs at or above `min_probability` (and every deterministic one) with their keys,
/// weight, probability and whether they are a match; `index` is the pair's position in
/// [`Linked::scored`] (what [`super::model::Model::explain`] takes).
pub fn pairs_frame(records: &Records, linked: &Linked, threshold: f64, min_probability: f64) -> Result<DataFrame> {
    pairs_frame_of(RecordKeys::of(records), linked, threshold, min_probability, 0..linked.scored.len())
}

/// Who each record of a job is, as its files name it: its source's name and its key — all a
/// job's `pairs.csv` and `entities.csv` read of the records.
#[derive(Clone, Copy)]
pub struct RecordKeys<'a> {
    /// Source names.
    pub sources: &'a [String],
    /// Source of each record (index into `sources`).
    pub source: &'a [u16],
    /// Each record's key in its source.
    pub key: &'a super::records::KeyColumn,
}

impl<'a> RecordKeys<'a> {
    /// The keys of `records`.
    pub fn of(records: &'a Records) -> RecordKeys<'a> {
        RecordKeys { sources: &records.sources, source: &records.source, key: &records.key }
    }

    /// Record `i`'s source name.
    pub(crate) fn source_of(&self, i: usize) -> &'a str {
        self.sources[self.source[i] as usize].as_str()
    }
}

/// [`pairs_frame`] of the scored pairs in `range` (positions in [`Linked::scored`]): a writer
/// goes through a national job's tens of millions of pairs a range at a time.
fn pairs_frame_of(
    records: RecordKeys<'_>,
    linked: &Linked,
    threshold: f64,
    min_probability: f64,
    range: std::ops::Range<usize>,
) -> Result<DataFrame> {
    let (r, l) = (records, linked);
    let start = range.start;
    let keep: Vec<(usize, &Scored)> = l.scored[range]
        .iter()
        .enumerate()
        .map(|(i, s)| (start + i, s))
        .filter(|(_, s)| s.deterministic || s.probability >= min_probability)
        .collect();
    let src = |i: u32| r.source_of(i as usize);
    let key = |i: u32| r.key.get(i as usize);
    Ok(DataFrame::new(
        keep.len(),
        vec![
            Column::new("index".into(), keep.iter().map(|(i, _)| *i as u64).collect::<Vec<_>>()),
            Column::new("source_a".into(), keep.iter().map(|(_, s)| src(s.a)).collect::<Vec<_>>()),
            key_column("record_a", keep.len(), keep.iter().map(|(_, s)| key(s.a))),
            Column::new("source_b".into(), keep.iter().map(|(_, s)| src(s.b)).collect::<Vec<_>>()),
            key_column("record_b", keep.len(), keep.iter().map(|(_, s)| key(s.b))),
            Column::new("match_weight".into(), keep.iter().map(|(_, s)| s.weight).collect::<Vec<_>>()),
            Column::new("probability".into(), keep.iter().map(|(_, s)| s.probability).collect::<Vec<_>>()),
            Column::new("deterministic".into(), keep.iter().map(|(_, s)| s.deterministic).collect::<Vec<_>>()),
            Column::new("match".into(), keep.iter().map(|(_, s)| l.is_match(s, threshold)).collect::<Vec<_>>()),
        ],
    )?)
}

/// A text column of `n` record keys, each written once into the column (no owned string a
/// key).
pub fn key_column<'a>(name: &str, n: usize, keys: impl Iterator<Item = super::records::Key<'a>>) -> Column {
    let mut b = StringChunkedBuilder::new(name.into(), n);
    keys.for_each(|k| b.append_value(k));
    b.finish().into_column()
}

/// Every record with its source, key and stable entity id (16 hex digits).
pub fn entities_frame(records: &Records, linked: &Linked) -> Result<DataFrame> {
    let (r, l) = (records, linked);
    let n = r.len();
    Ok(DataFrame::new(
        n,
        vec![
            Column::new("source".into(), (0..n).map(|i| r.sources[r.source[i] as usize].as_str()).collect::<Vec<_>>()),
            key_column("record_id", n, r.key.iter()),
            Column::new("entity".into(), l.entity_id.iter().map(|e| format!("{e:016x}")).collect::<Vec<_>>()),
        ],
    )?)
}

/// Every record as tpmap normalised it, for a peer tool to link the same cleaned inputs (the
/// Splink comparison feeds Splink this): `unique_id` (`source:record_id`), `source`,
/// `record_id`, `citizen_id` (a token, [`IdTokens`]: never the ID itself), `title` (canonical),
/// `first_name` and `last_name` (titles split off, zero-width characters removed, marks in
/// canonical order), their LK82 soundex codes, `birth_date` (ISO, CE, complete dates only),
/// `birth_year`, `birth_month`, `birth_day` (what is known of partial dates; a year no era
/// explains kept as written), `sex` (`m`/`f`), `village_code` (when the address names a
/// village), `tambon`, `amphoe`, `province` and `house_no` (`12/3`). Treat the file like its
/// inputs: names, dates and addresses are personal data.
pub fn normalised_frame(records: &Records, ids: &IdTokens) -> Result<DataFrame> {
    let r = records;
    let n = r.len();
    let src = |i: usize| r.sources[r.source[i] as usize].as_str();
    let area = |i: usize, len: usize| r.area.get(i).and_then(|a| a.as_str().get(..len).map(str::to_string));
    let id = |i: usize| r.citizen_id[i].map(|c| c.as_u64()).or_else(|| r.raw_id.get(i)).map(|v| ids.token(v));
    let complete = |i: usize| r.birth[i].filter(|d| d.is_complete() && (1800..=2200).contains(&d.year));
    let part = |i: usize, f: fn(&crate::thai::PartialDate) -> u16| r.birth[i].map(|d| f(&d)).filter(|v| *v != 0);
    Ok(DataFrame::new(
        n,
        vec![
            Column::new("unique_id".into(), (0..n).map(|i| format!("{}:{}", src(i), r.key.get(i))).collect::<Vec<_>>()),
            Column::new("source".into(), (0..n).map(src).collect::<Vec<_>>()),
            key_column("record_id", n, r.key.iter()),
            Column::new("citizen_id".into(), (0..n).map(id).collect::<Vec<_>>()),
            Column::new(
                "title".into(),
                (0..n).map(|i| Some(r.title.get(i)).filter(|s| !s.is_empty())).collect::<Vec<_>>(),
            ),
            Column::new(
                "first_name".into(),
                (0..n).map(|i| Some(r.first.get(i)).filter(|s| !s.is_empty())).collect::<Vec<_>>(),
            ),
            Column::new(
                "last_name".into(),
                (0..n).map(|i| Some(r.last.get(i)).filter(|s| !s.is_empty())).collect::<Vec<_>>(),
            ),
            Column::new(
                "first_soundex".into(),
                (0..n).map(|i| Some(r.first_lk.get(i)).filter(|s| !s.is_empty())).collect::<Vec<_>>(),
            ),
            Column::new(
                "last_soundex".into(),
                (0..n).map(|i| Some(r.last_lk.get(i)).filter(|s| !s.is_empty())).collect::<Vec<_>>(),
            ),
            Column::new("birth_date".into(), (0..n).map(|i| complete(i).map(|d| d.to_string())).collect::<Vec<_>>()),
            Column::new("birth_year".into(), (0..n).map(|i| part(i, |d| d.year)).collect::<Vec<_>>()),
            Column::new("birth_month".into(), (0..n).map(|i| part(i, |d| d.month as u16)).collect::<Vec<_>>()),
            Column::new("birth_day".into(), (0..n).map(|i| part(i, |d| d.day as u16)).collect::<Vec<_>>()),
            Column::new(
                "sex".into(),
                r.sex
                    .iter()
                    .map(|s| match s {
                        crate::extract::Sex::Male => Some("m"),
                        crate::extract::Sex::Female => Some("f"),
                        crate::extract::Sex::Unknown => None,
                    })
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "village_code".into(),
                (0..n).map(|i| area(i, 8).and(r.area.get(i).map(|a| a.as_str().to_string()))).collect::<Vec<_>>(),
            ),
            Column::new("tambon".into(), (0..n).map(|i| area(i, 6)).collect::<Vec<_>>()),
            Column::new("amphoe".into(), (0..n).map(|i| area(i, 4)).collect::<Vec<_>>()),
            Column::new("province".into(), (0..n).map(|i| area(i, 2)).collect::<Vec<_>>()),
            Column::new(
                "house_no".into(),
                r.house
                    .iter()
                    .map(|h| {
                        h.map(|h| match h.sub {
                            Some(s) => format!("{}/{s}", h.main),
                            None => h.main.to_string(),
                        })
                    })
                    .collect::<Vec<_>>(),
            ),
        ],
    )?)
}

/// Citizen IDs as tokens for a peer tool: each of the 13 digits replaced by a letter through a
/// permutation of its own, drawn from the pseudonym key (HMAC-SHA256). Equal IDs give equal
/// tokens and an ID one digit mistyped gives a token one letter off, so a peer tool's exact and
/// Levenshtein comparisons work as on the digits; the digits themselves never leave. It is not
/// encryption: whoever holds enough (ID, token) pairs can read the permutations back, so the file
/// stays as confidential as its inputs, and the key should be a secret one
/// ([`crate::ids::PseudonymKey::resolve`]), not the public default.
#[derive(Clone, Debug)]
pub struct IdTokens {
    perms: [[u8; 10]; 13],
}

impl IdTokens {
    /// The permutations of `key`.
    pub fn new(key: &crate::ids::Pseudonymizer) -> IdTokens {
        let mut perms = [[0u8; 10]; 13];
        for (p, perm) in perms.iter_mut().enumerate() {
            let seed = key.pseudonym_bytes(format!("tpmap link-normalise digit {p}").as_bytes()).0;
            let mut letters: [u8; 10] = *b"abcdefghij";
            // Fisher–Yates with the keyed bytes (a byte's bias modulo ≤ 10 does not matter here).
            for k in (1..10).rev() {
                letters.swap(k, seed[k] as usize % (k + 1));
            }
            *perm = letters;
        }
        IdTokens { perms }
    }

    /// The token of a 13-digit number.
    pub fn token(&self, id: u64) -> String {
        let mut digits = [0u8; 13];
        let mut v = id;
        for d in digits.iter_mut().rev() {
            *d = (v % 10) as u8;
            v /= 10;
        }
        digits.iter().enumerate().map(|(p, &d)| self.perms[p][d as usize] as char).collect()
    }
}

/// Writes [`entities_frame`]'s rows as CSV straight from the records, formula-like text
/// neutralised as by [`crate::frame::write_csv`] (a frame of a million owned hex strings took four
/// times as long).
fn write_entities_csv(path: &Path, r: RecordKeys<'_>, l: &Linked) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 20, file));
    let csv_err = |e| crate::ingest::source::csv_error(path, e);
    w.write_record(["source", "record_id", "entity"]).map_err(csv_err)?;
    let mut hex = String::with_capacity(16);
    for (i, id) in l.entity_id.iter().enumerate().take(r.source.len()) {
        use std::fmt::Write as _;
        hex.clear();
        let _ = write!(hex, "{id:016x}");
        // Text from the registries is neutralised as every CSV tpmap writes: no live formulas.
        let (source, key) = (r.source_of(i), r.key.get(i));
        w.write_record([&*crate::frame::neutralize(source), &*crate::frame::neutralize(&key), hex.as_str()])
            .map_err(csv_err)?;
    }
    let inner = w.into_inner().map_err(|e| Error::io(path, e.into_error()))?;
    std::io::Write::flush(&mut { inner }).map_err(|e| Error::io(path, e))
}

/// Writes [`pairs_frame`]'s rows (without `index`, from [`PAIRS_FLOOR`]) as CSV, a million
/// scored pairs at a time: the national job's 40 M rows as one frame and one buffer took 4.3 GB
/// at the peak of the whole job; each range is the same polars CSV writer's, so the bytes are the
/// same.
fn write_pairs_csv(path: &Path, r: RecordKeys<'_>, l: &Linked, threshold: f64) -> Result<()> {
    const RANGE: usize = 1 << 20;
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut start = 0;
    loop {
        let end = (start + RANGE).min(l.scored.len());
        let mut pairs = pairs_frame_of(r, l, threshold, PAIRS_FLOOR, start..end)?.drop("index")?;
        crate::frame::append_csv(&mut pairs, &mut w, start == 0).map_err(|e| e.writing(path))?;
        if end == l.scored.len() {
            break;
        }
        start = end;
    }
    std::io::Write::flush(&mut w).map_err(|e| Error::io(path, e))
}

/// Seconds a link job took.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LinkSeconds {
    /// Reading and normalising the registries.
    pub read_and_normalise: f64,
    /// The phases of [`super::run`].
    pub phases: Timing,
    /// Everything, writing included.
    pub total: f64,
}

/// The content of `link.json`.
#[derive(Clone, Debug, Serialize)]
pub struct LinkReport {
    /// Records linked.
    pub records: usize,
    /// Source names.
    pub sources: Vec<String>,
    /// Input records that could not be read, per source name (not linked).
    pub unreadable: Vec<(String, usize)>,
    /// Candidate pairs after blocking.
    pub candidate_pairs: usize,
    /// Blocks skipped for size, per rule (of a link task, blocks holding two sources: a block of
    /// one source gives no pair).
    pub skipped_blocks: Vec<usize>,
    /// Pairs per blocking rule.
    pub rule_pairs: Vec<usize>,
    /// Matches ([`Linked::matches`]).
    pub matches: usize,
    /// Entities (clusters).
    pub entities: u64,
    /// Match threshold.
    pub threshold: f64,
    /// EM iterations.
    pub em_iterations: usize,
    /// The model's prior.
    pub lambda: f64,
    /// Timing.
    pub seconds: LinkSeconds,
    /// Quality against a truth file, when one was given.
    pub quality: Option<Quality>,
    /// What looked implausible about the model ([`super::Linked::warnings`]).
    pub warnings: Vec<String>,
    /// Parts the first file was linked in ([`super::split`]); absent for a whole job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<usize>,
}

impl LinkReport {
    /// The report of `l` over `r` (seconds: reading, and the start of the whole job).
    pub fn of(r: &Records, l: &Linked, threshold: f64, read_seconds: f64, started: Instant) -> LinkReport {
        LinkReport::with(r.len(), r.sources.clone(), unreadable_of(r), l, threshold, (read_seconds, started))
    }

    /// [`LinkReport::of`] from what it reads of the records: their count, the source names and
    /// each source's unreadable records.
    pub(crate) fn with(
        records: usize,
        sources: Vec<String>,
        unreadable: Vec<(String, usize)>,
        l: &Linked,
        threshold: f64,
        (read_seconds, started): (f64, Instant),
    ) -> LinkReport {
        LinkReport {
            records,
            sources,
            unreadable,
            candidate_pairs: l.candidates,
            skipped_blocks: l.skipped_blocks.clone(),
            rule_pairs: l.rule_pairs.clone(),
            matches: l.matches(threshold).count(),
            entities: l.entity.iter().max().map(|m| *m as u64 + 1).unwrap_or(0),
            threshold,
            em_iterations: l.model.iterations,
            lambda: l.model.lambda,
            seconds: LinkSeconds {
                read_and_normalise: read_seconds,
                phases: l.timing.clone(),
                total: started.elapsed().as_secs_f64(),
            },
            quality: None,
            warnings: l.warnings.clone(),
            parts: None,
        }
    }
}

/// Writes the files of a link job into `dir` (created if missing): `pairs.csv` (pairs at or above
/// [`PAIRS_FLOOR`], `match` as [`Linked::is_match`]), `entities.csv`, `model.json`,
/// `explanations.json` (the `explain` pairs nearest the threshold) and `link.json` (`report`).
pub fn write(dir: &Path, records: &Records, linked: &Linked, report: &LinkReport, explain: usize) -> Result<()> {
    let ex = explanations(records, linked, report.threshold, explain);
    write_files(dir, RecordKeys::of(records), linked, report, &ex)
}

/// [`write`] with the explanations made ([`explanations`]).
pub(crate) fn write_files(
    dir: &Path,
    r: RecordKeys<'_>,
    l: &Linked,
    report: &LinkReport,
    ex: &[serde_json::Value],
) -> Result<()> {
    let mut lap = crate::diagnostics::Lap::start();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // The two big files side by side (the entities writer is one thread).
    let (pairs, entities) = crate::in_pool(|| {
        rayon::join(
            || write_pairs_csv(&dir.join("pairs.csv"), r, l, report.threshold),
            || write_entities_csv(&dir.join("entities.csv"), r, l),
        )
    });
    pairs?;
    entities?;
    lap.lap("pairs.csv and entities.csv written");
    write_json(&dir.join("model.json"), &l.model)?;
    write_json(&dir.join("explanations.json"), &ex)?;
    write_json(&dir.join("link.json"), report)
}

/// Explanations of the `explain` scored pairs nearest `threshold` (`explanations.json`): what a
/// reviewer looks at first.
pub(crate) fn explanations(r: &Records, l: &Linked, threshold: f64, explain: usize) -> Vec<serde_json::Value> {
    let near = nearest(&l.scored, threshold, explain);
    explanations_of(&near, RecordKeys::of(r), l, (r, |i| i as usize))
}

/// The explanations of the pairs `near` ([`nearest`]'s) as `explanations.json` writes them:
/// each side named by `keys`, the explanation made on `records`, where the job's record `i` is
/// `at(i)` (a job that does not hold all its records gathers those the pairs name).
pub(crate) fn explanations_of(
    near: &[&Scored],
    keys: RecordKeys<'_>,
    l: &Linked,
    (records, at): (&Records, impl Fn(u32) -> usize),
) -> Vec<serde_json::Value> {
    let tf = l.model.tf.then_some(&l.tf);
    let side = |i: u32| serde_json::json!({ "source": keys.source_of(i as usize), "record_id": keys.key.get(i as usize).as_str() });
    near.iter()
        .map(|s| {
            let explanation = l.model.explain(records, tf, at(s.a), at(s.b));
            serde_json::json!({ "a": side(s.a), "b": side(s.b), "explanation": explanation })
        })
        .collect()
}

/// Each source's records that could not be read, for the sources that have any.
pub(crate) fn unreadable_of(r: &Records) -> Vec<(String, usize)> {
    r.sources
        .iter()
        .enumerate()
        .map(|(s, name)| (name.clone(), r.unreadable.iter().filter(|u| u.source as usize == s).count()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The `k` scored pairs nearest `threshold` (by the distance of their probability), nearest
/// first; ties in pair order, so the choice does not depend on the algorithm. Kept in a heap of
/// `k` as the pairs go by: a list of every pair to select from (39.6 M references, 0.32 GB) was
/// the national job's peak while it wrote its outputs.
pub(crate) fn nearest(scored: &[Scored], threshold: f64, k: usize) -> Vec<&Scored> {
    /// A pair's place in the order: distance, then the pair; its index in `scored`.
    struct Near(f64, (u32, u32), usize);
    impl Ord for Near {
        fn cmp(&self, o: &Self) -> std::cmp::Ordering {
            self.0.total_cmp(&o.0).then(self.1.cmp(&o.1))
        }
    }
    impl PartialOrd for Near {
        fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(o))
        }
    }
    impl PartialEq for Near {
        fn eq(&self, o: &Self) -> bool {
            self.cmp(o).is_eq()
        }
    }
    impl Eq for Near {}
    // The farthest of those kept on top, replaced by any nearer pair.
    let mut heap = std::collections::BinaryHeap::with_capacity(k.min(scored.len()));
    for (i, s) in scored.iter().enumerate() {
        let near = Near((s.probability - threshold).abs(), (s.a, s.b), i);
        if heap.len() < k {
            heap.push(near);
        } else if heap.peek().is_some_and(|top| near < *top) {
            heap.pop();
            heap.push(near);
        }
    }
    heap.into_sorted_vec().into_iter().map(|n| &scored[n.2]).collect()
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)?).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The heap's choice is a sort's: every pair ordered by distance to the threshold, then
        /// pair, and the first `k` taken (probabilities from a few values, so that distances
        /// tie, on both sides of the threshold).
        #[test]
        fn nearest_pairs_are_a_sorts_first(
            pairs in proptest::collection::vec((0u32..30, 0u32..30, 0usize..6), 0..80),
            k in 0usize..100,
        ) {
            let probabilities = [0.0, 0.5, 0.8, 0.9, 1.0, f64::NAN];
            // Pairs are distinct in a job (their order is a total order).
            let mut pairs = pairs;
            pairs.sort_unstable_by_key(|p| (p.0, p.1));
            pairs.dedup_by_key(|p| (p.0, p.1));
            let scored: Vec<Scored> = pairs
                .iter()
                .map(|&(a, b, p)| Scored {
                    a,
                    b,
                    weight: 0.0,
                    probability: probabilities[p],
                    deterministic: false,
                    contradicted: false,
                })
                .collect();
            let mut want: Vec<&Scored> = scored.iter().collect();
            let d = |s: &Scored| (s.probability - 0.85).abs();
            want.sort_by(|x, y| d(x).total_cmp(&d(y)).then((x.a, x.b).cmp(&(y.a, y.b))));
            want.truncate(k);
            let got = nearest(&scored, 0.85, k);
            let key = |v: &[&Scored]| v.iter().map(|s| (s.a, s.b, s.probability.to_bits())).collect::<Vec<_>>();
            prop_assert_eq!(key(&got), key(&want));
        }
    }
}
