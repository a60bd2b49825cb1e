//! Households already served: from a `household_id,program` file, and from an agency's
//! beneficiary list linked with the extract. Planning reads these (a household that already
//! receives a program is not given it again, and programs excluded with it are not offered).
//!
//! ```no_run
//! # let got = tpmap::ingest::ingest("data-samples/households.csv".as_ref(), "data-samples/persons.csv".as_ref(), &Default::default())?;
//! let x = &got.extract;
//! let catalogue = tpmap::programs::Catalogue::load("data-samples/catalogue.toml", &x.edition)?;
//! let (served, link) = tpmap::plan::served::gather(x, &catalogue, None, Some("data-samples/served_list.csv".as_ref()))?;
//! println!("{} (household, program) pairs already served; {:?}", served.len(), link);
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use super::Served;
use crate::extract::Extract;
use crate::ids::HouseholdId;
use crate::link::LinkOptions;
use crate::programs::Catalogue;
use crate::{Error, Result};

/// Households already receiving programs: from a `household_id,program` file (`served`), and from
/// an agency's beneficiary list (`served_list`) linked with the extract (with what that linkage
/// found). Sorted, without repeats.
pub fn gather(
    x: &Extract,
    catalogue: &Catalogue,
    served: Option<&Path>,
    served_list: Option<&Path>,
) -> Result<(Served, Option<ServedLink>)> {
    let mut out = match served {
        Some(p) => read(p, x, catalogue)?,
        None => Vec::new(),
    };
    let link = match served_list {
        Some(p) => {
            let (more, rep) = from_list(x, p, catalogue, &LinkOptions::default())?;
            out.extend(more);
            Some(rep)
        }
        None => None,
    };
    out.sort_unstable();
    out.dedup();
    Ok((out, link))
}

/// Reads an "already receives" list: CSV with columns `household_id,program`. Households not in
/// the extract and unknown programs are errors naming the row.
pub fn read(path: &Path, extract: &Extract, catalogue: &Catalogue) -> Result<Served> {
    let by_id: HashMap<HouseholdId, u32> = (0u32..).zip(&extract.households.id).map(|(i, id)| (*id, i)).collect();
    read_by(path, catalogue, &|id| by_id.get(&id).map(|&h| Some(h)))
}

/// [`read`] where `find` says whether a household is in the extract and, when it is one of the
/// households planned over, its row: `None` for a household not in the extract (an error naming
/// the row), `Some(None)` for one that is but is not planned over (its entries are left out: a
/// partitioned run plans over the poor households only), `Some(Some(h))` for row `h`.
pub fn read_by(
    path: &Path,
    catalogue: &Catalogue,
    find: &dyn Fn(HouseholdId) -> Option<Option<u32>>,
) -> Result<Served> {
    let c = catalogue;
    use crate::ingest::source::{CsvText, csv_error, decode_into};
    let file = path.display().to_string();
    let CsvText { mut reader, encoding, mut lines, .. } = CsvText::open(path, crate::ingest::Encoding::Auto)?;
    let mut rec = csv::ByteRecord::new();
    let (mut scratch, mut text) = (String::new(), String::new());
    let mut field = |rec: &csv::ByteRecord, k: usize| -> Option<String> {
        text.clear();
        decode_into(rec.get(k).unwrap_or(b""), encoding, &mut text, &mut scratch).then(|| text.trim().to_string())
    };
    if !reader.read_byte_record(&mut rec).map_err(|e| csv_error(path, e))? {
        return Err(Error::Format { file, message: "the file is empty (need a header household_id,program)".into() });
    }
    let headers: Vec<String> = (0..rec.len()).map(|k| field(&rec, k).unwrap_or_default()).collect();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| Error::Format {
            file: file.clone(),
            message: format!("no '{name}' column (need household_id,program)"),
        })
    };
    let (hc, pc) = (col("household_id")?, col("program")?);
    let mut out = Vec::new();
    let mut row = 0u64;
    while reader.read_byte_record(&mut rec).map_err(|e| csv_error(path, e))? {
        row += 1;
        let line = lines.of(&rec);
        let bad = |column: &str, reason: String| Error::InvalidRow {
            file: file.clone(),
            row,
            line,
            column: column.to_string(),
            reason,
        };
        if rec.len() != headers.len() {
            return Err(bad("*", format!("{} fields, the header has {}", rec.len(), headers.len())));
        }
        let id_text =
            field(&rec, hc).ok_or_else(|| bad("household_id", "not valid text in the file's encoding".into()))?;
        let id: HouseholdId = id_text.parse().map_err(|e: Error| bad("household_id", e.to_string()))?;
        let h = find(id).ok_or_else(|| bad("household_id", "household not in the extract".into()))?;
        let pname = field(&rec, pc).ok_or_else(|| bad("program", "not valid text in the file's encoding".into()))?;
        let p = c.program(&pname).ok_or_else(|| bad("program", format!("no program '{pname}' in the catalogue")))?;
        if let Some(h) = h {
            out.push((h, p as u32));
        }
    }
    Ok(out)
}

/// What linking an agency's beneficiary list with the extract found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServedLink {
    /// Records on the list.
    pub records: usize,
    /// Records matched to a person of the extract.
    pub matched: usize,
    /// Distinct (household, program) pairs marked as already served.
    pub households: usize,
    /// Records that could not be read (text not valid in the file's encoding), not linked.
    pub unreadable: usize,
}

/// Links an agency's beneficiary list (person records with a `program` column naming a program
/// of the catalogue) with the persons of `x`: the households of matched persons already receive
/// that program. Unknown programs are an error naming the record.
pub fn from_list(
    x: &crate::extract::Extract,
    list: &std::path::Path,
    c: &crate::programs::Catalogue,
    o: &LinkOptions,
) -> Result<(Served, ServedLink)> {
    let mut r = crate::link::Records::default();
    r.push_extract("survey", x);
    let n = x.persons.len();
    let (matches, mut report) = list_matches(r, n, list, c, o)?;
    let mut served: Served = matches.iter().map(|&(p, program)| (x.persons.household[p as usize], program)).collect();
    served.sort_unstable();
    served.dedup();
    report.households = served.len();
    Ok((served, report))
}

/// What [`from_list`] links, for persons whose link records are the first `n` of `r` (in the
/// extract's order): `list` is read into `r` and linked, and each matched list record gives its
/// person (an index below `n`) and program, in list order. The report's `households` is left at
/// 0 for the caller, who knows the persons' households. A partitioned run gathers its waves'
/// persons into `r`.
pub fn list_matches(
    mut r: crate::link::Records,
    n: usize,
    list: &std::path::Path,
    c: &crate::programs::Catalogue,
    o: &LinkOptions,
) -> Result<(Vec<(u32, u32)>, ServedLink)> {
    r.push_csv(list)?;
    let program = programs(&r, n, list, c)?;
    let (records, unreadable) = (r.len(), r.unreadable.len());
    let linked = crate::link::run_matches(r, &LinkOptions { task: crate::link::Task::Link, ..o.clone() })?;
    let matches = best_matches(&linked, n, &program);
    // The scored pairs go before the plan is made: given back at once, not kept by the allocator.
    drop((linked, program));
    crate::memory::release();
    let report = ServedLink { records: records - n, matched: matches.len(), households: 0, unreadable };
    Ok((matches, report))
}

/// The program of each list record of `r` (the records from `n` on, read from `list`): an
/// unknown program is an error naming the record.
fn programs(r: &crate::link::Records, n: usize, list: &Path, c: &Catalogue) -> Result<Vec<u32>> {
    (n..r.len())
        .map(|j| {
            c.program(r.tag.get(j)).and_then(|p| u32::try_from(p).ok()).ok_or_else(|| Error::Format {
                file: list.display().to_string(),
                message: format!(
                    "record '{}', column 'program': no program '{}' in the catalogue",
                    r.key.get(j),
                    r.tag.get(j)
                ),
            })
        })
        .collect()
}

/// Each matched list record's person (a record below `n`; the list's records are numbered from
/// `n`, `program[j]` for record `n + j`) and program, in list order: the person of its best
/// match (deterministic first, then the most probable; the first such in the job's order).
fn best_matches(linked: &crate::link::Matched, n: usize, program: &[u32]) -> Vec<(u32, u32)> {
    let mut best: Vec<Option<(bool, f64, usize)>> = vec![None; program.len()];
    for s in linked.matches() {
        let (a, b) = (s.a as usize, s.b as usize);
        let (p, j) = if a < n { (a, b) } else { (b, a) };
        if p >= n || j < n || j - n >= program.len() {
            continue;
        }
        if best[j - n].is_none_or(|(d, pr, _)| (s.deterministic, s.probability) > (d, pr)) {
            best[j - n] = Some((s.deterministic, s.probability, p));
        }
    }
    // Persons are numbered by 32 bits in an extract (and a partitioned run's gathering).
    best.iter()
        .zip(program)
        .filter_map(|(b, &program)| b.map(|(_, _, p)| (u32::try_from(p).unwrap_or(u32::MAX), program)))
        .collect()
}

/// [`list_matches`] for persons who come in parts (a partitioned run's waves within a memory
/// budget, [`crate::link::parts`]): the list read and keyed, the persons counted part by part as
/// they are read ([`ListInParts::counting`]), then linked a part at a time by
/// [`ListInParts::matches`] — the same matches and report as [`list_matches`] over every person
/// in one job, each person numbered by its index among all.
pub struct ListInParts {
    counting: crate::link::parts::Counting,
    program: Vec<u32>,
    unreadable: usize,
}

impl ListInParts {
    /// Reads `list` (an unknown program is an error naming the record) and keys it.
    pub fn new(list: &Path, c: &Catalogue, o: &LinkOptions) -> Result<ListInParts> {
        let mut r = crate::link::Records::default();
        r.push_csv(list)?;
        let program = programs(&r, 0, list, c)?;
        let unreadable = r.unreadable.len();
        Ok(ListInParts { counting: crate::link::parts::Counting::new(r, o)?, program, unreadable })
    }

    /// The linkage's first pass: each part of persons is counted here as it is read.
    pub fn counting(&mut self) -> &mut crate::link::parts::Counting {
        &mut self.counting
    }

    /// Persons counted so far.
    pub fn persons(&self) -> usize {
        self.counting.persons()
    }

    /// Each matched list record's person (its index among all) and program, in list order, and
    /// the report (`households` left at 0, as [`list_matches`] leaves it): `parts` are the parts
    /// counted, read again in that order.
    pub fn matches(self, parts: &mut dyn crate::link::parts::PersonParts) -> Result<(Vec<(u32, u32)>, ServedLink)> {
        let ListInParts { counting, program, unreadable } = self;
        let n = counting.persons();
        let linked = counting.matches(parts)?;
        let matches = best_matches(&linked, n, &program);
        drop(linked);
        crate::memory::release();
        let report = ServedLink { records: program.len(), matched: matches.len(), households: 0, unreadable };
        Ok((matches, report))
    }
}
