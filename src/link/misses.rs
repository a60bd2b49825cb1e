//! Why a link job erred, against a ground truth: every missed true pair and every false match
//! with the comparison level of each field, and the same grouped by pattern — so a user sees
//! which kinds of disagreement the blocking or the model does not survive.
//!
//! A missed true pair is *not a candidate* (no blocking rule brought the records together),
//! *below the threshold* (scored, probability under it), or *kept apart* (at or above the
//! threshold but the clustering did not join the records: two known different IDs, or a second
//! record of one source in a link task), or *contradicted* (at or above the threshold, but both
//! names and the birth date disagree, which no match may).
//!
//! ```no_run
//! use tpmap::link::{misses, run, LinkOptions, Records};
//! let mut r = Records::default();
//! r.push_csv("survey.csv".as_ref())?;
//! r.push_csv("welfare.csv".as_ref())?;
//! let linked = run(&r, &LinkOptions::default())?;
//! let truth = tpmap::link::bench::read_truth("truth.csv".as_ref(), &r)?;
//! let errors = misses::find(&r, &linked, &truth, 0.9, tpmap::link::Task::Link);
//! println!("{} errors, commonest pattern {:?}", errors.len(), misses::patterns(&errors).first());
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;
use rayon::prelude::*;

use super::compare::{Field, compare};
use super::model::{Pattern, Task};
use super::{Linked, Records};
use crate::Result;

/// What went wrong with one pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A true pair no blocking rule produced.
    NotCandidate,
    /// A true pair scored below the threshold.
    BelowThreshold,
    /// A true pair at or above the threshold whose names and birth date all disagree.
    Contradicted,
    /// A true pair at or above the threshold that the clustering kept apart.
    KeptApart,
    /// A matched pair of two different people.
    FalseMatch,
}

impl Kind {
    /// The label written in the files.
    pub fn label(self) -> &'static str {
        match self {
            Kind::NotCandidate => "missed: not a candidate",
            Kind::BelowThreshold => "missed: below the threshold",
            Kind::Contradicted => "missed: names and birth date all disagree",
            Kind::KeptApart => "missed: kept apart by clustering",
            Kind::FalseMatch => "false match",
        }
    }
}

/// One erring pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairError {
    /// What went wrong.
    pub kind: Kind,
    /// First record.
    pub a: u32,
    /// Second record.
    pub b: u32,
    /// Match probability, when the pair was scored and kept (see [`super::SCORE_FLOOR`]).
    pub probability: Option<f64>,
    /// Comparison level of each field ([`Field::ALL`] order; `u8::MAX` when a side is missing).
    pub levels: Pattern,
}

/// Every missed true pair and false match of `linked` against `truth` (a person label per record).
pub fn find(r: &Records, linked: &Linked, truth: &[u64], threshold: f64, task: Task) -> Vec<PairError> {
    let comparable = |a: usize, b: usize| task != Task::Link || r.source[a] != r.source[b];
    // Scored pairs are in candidate order (sorted): binary search finds a pair's score.
    let scored_of =
        |a: u32, b: u32| linked.scored.binary_search_by(|s| (s.a, s.b).cmp(&(a, b))).ok().map(|k| &linked.scored[k]);
    let by_truth = super::model::by_truth(truth);
    let levels = |a: u32, b: u32| {
        let mut p = [u8::MAX; 6];
        for (k, f) in Field::ALL.iter().enumerate() {
            p[k] = compare(r, a as usize, b as usize, *f).unwrap_or(u8::MAX);
        }
        p
    };
    let mut out: Vec<PairError> = crate::in_pool(|| {
        // The persons' groups found in parallel, not listed: a list of the national job's 36 M
        // persons took 0.6 GB at the peak of the whole job.
        by_truth
            .par_chunk_by(|&a, &b| truth[a as usize] == truth[b as usize])
            .flat_map_iter(|g| {
                let mut v = Vec::new();
                for (x, &i) in g.iter().enumerate() {
                    for &j in &g[x + 1..] {
                        let (a, b) = (i.min(j), i.max(j));
                        if !comparable(a as usize, b as usize) {
                            continue;
                        }
                        let candidate = linked.pairs.binary_search(&(a, b)).is_ok();
                        let s = scored_of(a, b);
                        let kind = match s {
                            Some(s) if linked.is_match(s, threshold) => continue,
                            Some(s) if s.probability >= threshold && s.contradicted => Kind::Contradicted,
                            Some(s) if s.probability >= threshold => Kind::KeptApart,
                            _ if candidate => Kind::BelowThreshold,
                            _ => Kind::NotCandidate,
                        };
                        v.push(PairError { kind, a, b, probability: s.map(|s| s.probability), levels: levels(a, b) });
                    }
                }
                v
            })
            .collect()
    });
    out.extend(linked.matches(threshold).filter(|s| truth[s.a as usize] != truth[s.b as usize]).map(|s| PairError {
        kind: Kind::FalseMatch,
        a: s.a,
        b: s.b,
        probability: Some(s.probability),
        levels: levels(s.a, s.b),
    }));
    out.sort_by_key(|e| (e.kind, e.a, e.b));
    out
}

/// The errors grouped by kind and comparison pattern, commonest first: (kind, levels, count).
pub fn patterns(errors: &[PairError]) -> Vec<(Kind, Pattern, usize)> {
    let mut m: HashMap<(Kind, Pattern), usize> = HashMap::new();
    for e in errors {
        *m.entry((e.kind, e.levels)).or_default() += 1;
    }
    let mut v: Vec<(Kind, Pattern, usize)> = m.into_iter().map(|((k, p), n)| (k, p, n)).collect();
    v.sort_by(|x, y| y.2.cmp(&x.2).then(x.0.cmp(&y.0)).then(x.1.cmp(&y.1)));
    v
}

fn level_label(f: Field, l: u8) -> &'static str {
    f.levels().get(l as usize).copied().unwrap_or("missing")
}

fn field_name(f: Field) -> &'static str {
    match f {
        Field::CitizenId => "citizen_id",
        Field::FirstName => "first_name",
        Field::LastName => "last_name",
        Field::BirthDate => "birth_date",
        Field::Sex => "sex",
        Field::Address => "address",
    }
}

/// The errors as a frame: kind, both records' source and key, probability, one level per field.
pub fn errors_frame(r: &Records, errors: &[PairError]) -> Result<DataFrame> {
    let src = |i: u32| r.sources[r.source[i as usize] as usize].as_str();
    let mut cols = vec![
        Column::new("kind".into(), errors.iter().map(|e| e.kind.label()).collect::<Vec<_>>()),
        Column::new("source_a".into(), errors.iter().map(|e| src(e.a)).collect::<Vec<_>>()),
        super::output::key_column("record_a", errors.len(), errors.iter().map(|e| r.key.get(e.a as usize))),
        Column::new("source_b".into(), errors.iter().map(|e| src(e.b)).collect::<Vec<_>>()),
        super::output::key_column("record_b", errors.len(), errors.iter().map(|e| r.key.get(e.b as usize))),
        Column::new("probability".into(), errors.iter().map(|e| e.probability).collect::<Vec<_>>()),
    ];
    for (k, f) in Field::ALL.iter().enumerate() {
        cols.push(Column::new(
            field_name(*f).into(),
            errors.iter().map(|e| level_label(*f, e.levels[k])).collect::<Vec<_>>(),
        ));
    }
    Ok(DataFrame::new(errors.len(), cols)?)
}

/// The patterns of [`patterns`] as a frame: kind, one level per field, pairs, and their share of
/// that kind's errors.
pub fn patterns_frame(errors: &[PairError]) -> Result<DataFrame> {
    let p = patterns(errors);
    let mut per_kind: HashMap<Kind, usize> = HashMap::new();
    for e in errors {
        *per_kind.entry(e.kind).or_default() += 1;
    }
    let mut cols = vec![Column::new("kind".into(), p.iter().map(|x| x.0.label()).collect::<Vec<_>>())];
    for (k, f) in Field::ALL.iter().enumerate() {
        cols.push(Column::new(field_name(*f).into(), p.iter().map(|x| level_label(*f, x.1[k])).collect::<Vec<_>>()));
    }
    cols.push(Column::new("pairs".into(), p.iter().map(|x| x.2 as u64).collect::<Vec<_>>()));
    cols.push(Column::new(
        "share_of_kind".into(),
        p.iter().map(|x| x.2 as f64 / per_kind.get(&x.0).copied().unwrap_or(1).max(1) as f64).collect::<Vec<_>>(),
    ));
    Ok(DataFrame::new(p.len(), cols)?)
}

/// Writes `errors.csv` (every erring pair, at most `limit` rows: the commonest patterns are
/// complete in `error_patterns.csv` whatever the limit) and `error_patterns.csv` into `dir`.
pub fn write(dir: &Path, r: &Records, errors: &[PairError], limit: usize) -> Result<()> {
    let enc = crate::ingest::Encoding::Utf8;
    let mut e = errors_frame(r, &errors[..errors.len().min(limit)])?;
    crate::frame::write_csv(&mut e, &dir.join("errors.csv"), &[], enc)?;
    crate::frame::write_csv(&mut patterns_frame(errors)?, &dir.join("error_patterns.csv"), &[], enc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::records::RawRecord;
    use crate::link::{LinkOptions, run};

    #[test]
    fn every_error_is_found_and_counted_once() {
        // Two people listed in two sources; person 1's second record shares nothing blockable.
        let rows = [
            ("s", "1", "สมชาย", "ใจดี", "1980-01-02", "4001020101"),
            ("s", "2", "มานี", "มีนา", "1975-05-06", "4001020101"),
            ("s", "3", "ปิติ", "ชูใจ", "1990-07-08", "4001020101"),
            ("w", "1", "สมชาย", "ใจดี", "1980-01-02", "4001020101"),
            ("w", "2", "วีระ", "กล้าหาญ", "1960-12-30", "5001020101"),
            ("w", "3", "ปิติ", "ชูใจ", "1990-07-08", "4001020101"),
        ];
        let mut r = Records::default();
        for src in ["s", "w"] {
            let raw: Vec<RawRecord<'_>> = rows
                .iter()
                .filter(|x| x.0 == src)
                .map(|x| RawRecord {
                    key: x.1.into(),
                    first: x.2,
                    last: x.3,
                    birth: x.4,
                    area: x.5,
                    ..Default::default()
                })
                .collect();
            r.push_source(src, &raw);
        }
        // Truth: s2 and w2 are one person (not blockable); s3 and w3 are two namesakes born the
        // same day (a false match if joined).
        let truth = [0u64, 1, 2, 0, 1, 3];
        let linked = run(&r, &LinkOptions { threshold: 0.5, ..Default::default() }).unwrap();
        let errors = find(&r, &linked, &truth, 0.5, Task::Link);
        let missed: Vec<_> = errors.iter().filter(|e| e.kind == Kind::NotCandidate).collect();
        assert_eq!(missed.len(), 1);
        assert_eq!((missed[0].a, missed[0].b), (1, 4));
        assert_eq!(missed[0].levels[1], 7, "given names disagree");
        let joined = linked.matches(0.5).any(|s| (s.a, s.b) == (2, 5));
        assert_eq!(errors.iter().any(|e| e.kind == Kind::FalseMatch && (e.a, e.b) == (2, 5)), joined);
        let p = patterns(&errors);
        assert_eq!(p.iter().map(|x| x.2).sum::<usize>(), errors.len(), "every error in one pattern");
        let f = patterns_frame(&errors).unwrap();
        assert_eq!(f.height(), p.len());
        assert_eq!(errors_frame(&r, &errors).unwrap().height(), errors.len());
    }
}
