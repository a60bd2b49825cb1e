//! The main job province by province ([`run_partitioned`], `tpmap run --partition province`):
//! peak memory is bounded by the largest wave of provinces instead of the whole country, and the
//! outputs are the whole run's (docs/partitioned.md).
//!
//! Every published figure is a sum over villages, and a village lies in one province: each wave
//! is read, validated and scored on its own, its area measures kept as exact per-village sums
//! ([`crate::partial`]) and its TPMAP village tables as rows, and both are merged at the end,
//! the same additions in the same order as a whole run makes them. Accepted rows, scores and the
//! deprivation matrix are appended to their Parquet files wave after wave; rejected rows are
//! written in row order at the end.
//!
//! A plan depends on the households of its population alone, all of them poor: each wave
//! writes its poor households whole ([`crate::extract::Extract::select`]) to a temporary file
//! (not held across the waves), and after the last wave they are read back, put in input order,
//! scored again and planned as a whole run plans them — national caps, budgets and quotas
//! included. Within a budget their share is checked as the waves count them (the budget's room
//! for them is reported before any work, `plan_room`): a run whose poor households do not fit
//! stops at the wave that shows it, with no output written.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::{LoadedPlan, Progress, RunOptions, RunReport, RunSeconds, data_notices, measure_report, write_html};
use crate::aggregate::{AggregateOptions, Hierarchy, Measures};
use crate::frame::{self, ParquetAppender};
use crate::ingest::partition::{PartitionedReader, Split, Wave};
use crate::ingest::rejects::Rejection;
use crate::ingest::{IngestReport, rejects};
use crate::partial::Partial;
use crate::published::{Published, TableLevel};
use crate::score::{Profiles, Spec, Unit};
use crate::summary::Summary;
use crate::{Error, Result};

/// How a partitioned run read the extract (`partition` in `report.json`).
#[derive(Clone, Debug, Serialize)]
pub struct PartitionReport {
    /// The memory budget given, in bytes.
    pub max_memory: Option<u64>,
    /// The waves, in the order read: their provinces (`00` for rows naming no readable village
    /// or household) and rows.
    pub waves: Vec<WaveReport>,
    /// The largest wave's estimated peak memory, in bytes.
    pub largest_wave_estimate: u64,
    /// Waves in memory at once: 2 when one is written while the next is read (when two of the
    /// largest fit the budget), else 1.
    pub waves_in_flight: u8,
    /// Readings of the waves: 2 when the waves do not take the persons file in file order and a
    /// citizen ID's first holder in the file was met after another of its holders (the first
    /// reading kept the later one; the second keeps the first, as a whole run does), else 1.
    pub passes: u8,
    /// Within a budget, with a plan: how many persons of poor households the budget holds for
    /// the plan once the waves are read ([`crate::ingest::partition::BYTES_PLANNED_PER_POOR_PERSON`]
    /// each, twice when the waves take the households out of file order), before the plan's
    /// decisions, which take what is left ([`crate::ingest::partition::BYTES_PER_PLAN_DECISION`]
    /// each). A run whose poor households' persons are more fails as the waves count them, with
    /// no output written.
    pub plan_room: Option<u64>,
}

/// One wave of a partitioned run.
#[derive(Clone, Debug, Serialize)]
pub struct WaveReport {
    /// Province codes.
    pub provinces: Vec<String>,
    /// Household data rows.
    pub household_rows: u64,
    /// Person data rows.
    pub person_rows: u64,
}

/// What [`run_partitioned`] computed: the merged measures and the report (the extract itself
/// was never whole in memory).
pub struct PartitionedOutput {
    /// Area measures at every level, as a whole run computes them.
    pub measures: Measures,
    /// The content of `report.json`.
    pub report: RunReport,
}

/// Person rows from which `tpmap run` reads a Parquet extract province by province unless told
/// otherwise (`--partition auto`): a whole run of 10 M persons peaks near 4 GB.
pub const AUTO_PERSON_ROWS: usize = 10_000_000;

/// Bytes of a CSV persons file from which `tpmap run` reads it province by province unless told
/// otherwise: [`AUTO_PERSON_ROWS`] rows of 160 bytes (the SYNTHETIC national persons file holds
/// 167 bytes a row).
pub const AUTO_CSV_PERSON_BYTES: u64 = AUTO_PERSON_ROWS as u64 * 160;

/// Whether `--partition auto` reads `o`'s extract province by province: when both files are
/// Parquet or CSV, the persons file is large — a Parquet footer claiming at least
/// [`AUTO_PERSON_ROWS`] rows, or a CSV file of at least [`AUTO_CSV_PERSON_BYTES`]. Earlier
/// rounds do not keep a large extract whole since the twenty-sixth session (their comparison
/// reads the latest round again, a wave of provinces at a time: two national rounds in 4.2 GiB
/// beside the run's results, against the whole extract held). A CSV file's waves read only the
/// runs of rows holding theirs, found by the routing's reading of the whole file; Excel
/// workbooks stay whole (every wave would read them again).
pub fn partition_by_default(o: &RunOptions) -> bool {
    large_extract(&o.households, &o.persons)
}

/// Whether an extract is read province by province by default (by `tpmap run` and
/// `tpmap panel`): both files Parquet or CSV, the persons file a Parquet file whose footer claims
/// at least [`AUTO_PERSON_ROWS`] rows or a CSV file of at least [`AUTO_CSV_PERSON_BYTES`].
pub fn large_extract(households: &Path, persons: &Path) -> bool {
    use crate::ingest::source::Format;
    let format = |p: &Path| Format::from_path(p).ok();
    let large = match format(persons) {
        Some(Format::Parquet) => {
            crate::ingest::source::parquet_shape(persons).is_ok_and(|s| s.rows >= AUTO_PERSON_ROWS)
        }
        Some(Format::Csv) => std::fs::metadata(persons).is_ok_and(|m| m.is_file() && m.len() >= AUTO_CSV_PERSON_BYTES),
        _ => false,
    };
    large && matches!(format(households), Some(Format::Parquet | Format::Csv))
}

/// Runs the main job province by province in waves that fit `max_memory` bytes (each province
/// on its own without a budget) and writes the outputs of [`super::run`] to `out`, all or
/// nothing. Plans are made over the waves' poor households (kept in a temporary file), after
/// the last wave; earlier rounds are compared before the first, within what the split and a
/// welfare registry leave of the budget ([`crate::panel::rounds::need`], checked before any
/// work; the split's row buckets wait in a temporary file). A welfare registry is linked before any
/// wave is scored, a wave at a time ([`crate::link::parts`]; the whole job's pairs and matches):
/// the first reading counts the persons ([`crate::link::parts::Counting`]) and keeps their link
/// records in a temporary file ([`crate::link::records::RecordSpill`]), from which they are
/// compared; the second reads the waves again and marks them (`partition.passes` counts the
/// readings). A beneficiary list is linked after the last wave with every wave's persons, for
/// the plan, a wave at a time from the link records the scoring pass keeps (or the registry's
/// first reading spilled: [`crate::plan::served::ListInParts`]). Without a budget such a run
/// groups provinces into waves as large as its largest province. A linkage's share of the
/// budget (the registry's records and keys measured once it is read, before the waves are
/// planned; a list's estimated, [`BYTES_BOUNDED_LINK_PER_REGISTRY_BYTE`]; and
/// [`BYTES_BOUNDED_LINK_PER_PERSON_ROW`]) is set aside in the reading it runs in, and the
/// waves are planned for the reading that leaves them less; its kept pairs and clustering get
/// what the budget leaves once the waves are read. Bootstrap standard errors are the whole
/// run's (replicates keyed by household).
pub fn run_partitioned(
    options: &RunOptions,
    max_memory: Option<u64>,
    out: &Path,
    progress: &dyn Progress,
) -> Result<PartitionedOutput> {
    let o = options;
    o.validate()?;
    // The catalogues are read before any output exists, as in a whole run, and a served file
    // checked as far as it can be without the households (header, IDs, programs).
    let loaded = match &o.plan {
        Some(p) => Some(LoadedPlan::catalogues(p, &o.ingest.edition, &o.ingest.limits)?),
        None => None,
    };
    let served_file = o.plan.as_ref().and_then(|p| p.served.as_deref());
    let served_list = o.plan.as_ref().and_then(|p| p.served_list.as_deref());
    if let (Some(l), Some(path)) = (&loaded, served_file) {
        crate::plan::served::read_by(path, &l.catalogue, &|_| Some(None))?;
    }
    let t0 = Instant::now();
    let traced = crate::diagnostics::Traced::new(progress);
    let progress: &dyn Progress = &traced;
    progress.step("routing rows to provinces");
    let mut split = Split::read(&o.households, &o.persons, &o.ingest)?;
    // What the waves share the budget with, in each reading: bytes held per person row across
    // the waves, and a bounded linkage's share set aside whole. A plan's poor households go to
    // a temporary file wave by wave (`ExtractSpill`), read back after the last wave; with a
    // served file the accepted household IDs (8 bytes a household; households do not outnumber
    // persons in a BMN extract) are held in the last reading (the scoring pass).
    let plan_held = match (&loaded, served_file) {
        (Some(_), Some(_)) => 8,
        _ => 0,
    };
    // Linking a welfare registry reads the waves twice, the same rows each time. When the waves
    // take the persons in file order the reader keeps no holder by row: it forgets the citizen
    // IDs between the readings (`PartitionedReader::decide`) and meets the same first holders
    // first again; out of order it keeps them by row (the waves planned again below).
    // A welfare registry and a beneficiary list are linked a wave at a time
    // (`crate::link::parts`; since the twenty-fourth session without a budget too), each holding its records and keys whole during its reading — the
    // registry's in the first, which ends (its memory given back) before the last, the list's
    // and the plan's — and each person's citizen ID and household row
    // (`BYTES_BOUNDED_LINK_PER_PERSON_ROW`; a list's, each person's household ID too). The
    // registry is read and keyed before the waves are planned, and what it holds measured
    // (`Counting::registry_bytes`); a list's is estimated from its file's bytes
    // (`BYTES_BOUNDED_LINK_PER_REGISTRY_BYTE`). Once the waves are read, a linkage's kept pairs
    // and clustering get what the budget leaves beside what is held across the waves
    // (`Counting::limit_kept`).
    let with_registry = o.welfare_registry.is_some();
    let with_list = served_list.is_some() && loaded.is_some();
    let persons = split.persons.len() as u64;
    // The registry read and keyed (an error reading it is the run's after the extract's own,
    // a strict run's first bad row, as in a whole run).
    let counting = match &o.welfare_registry {
        Some(registry) => {
            progress.step("reading and keying the welfare registry");
            Some(crate::link::parts::Counting::of_registry(registry, &Default::default()))
        }
        _ => None,
    };
    let registry_share = match &counting {
        Some(Ok(c)) => c.registry_bytes(),
        _ => 0,
    };
    let list_share = match (with_list, served_list) {
        (true, Some(f)) => {
            std::fs::metadata(f).map_or(0, |f| f.len()).saturating_mul(BYTES_BOUNDED_LINK_PER_REGISTRY_BYTE)
        }
        _ => 0,
    };
    // (set aside whole, held per person row, what sets it aside)
    let first = match with_registry {
        true => (registry_share, BYTES_BOUNDED_LINK_PER_PERSON_ROW, "linking the welfare registry"),
        false => (0, 0, ""),
    };
    // The scoring pass (the last reading) holds the merged results too, a row of each village
    // so far (`BYTES_MERGED_PER_VILLAGE`), and merging them after the last wave takes more.
    let reps = o.bootstrap.0 as u64;
    let (merged, merging) = (split.merged_bytes(reps), split.merging_bytes(reps));
    let last = match with_list {
        true => (
            list_share.saturating_add(merged),
            plan_held + BYTES_BOUNDED_LINK_PER_PERSON_ROW + 8,
            "linking the beneficiary list beside the merged results",
        ),
        false => (merged, plan_held, "the merged results"),
    };
    // Earlier rounds are compared before the first wave, while the run holds only its split
    // (its row buckets on disk meanwhile: `Split::spill_rows`) and, when the budget holds them
    // beside the comparison, a welfare registry's records and keys; else those are given back
    // and the registry keyed again after (the same file: checked to hold the same bytes), which
    // costs its keying once more (17 s nationally in the twenty-fourth session) — always so
    // without a budget. Estimated before any work. (Until the twenty-eighth session the rounds
    // were compared after the last wave, beside the merged results, estimated at 330.6 MiB
    // nationally: two national rounds were refused below about 4.3 GiB.)
    // The estimate reads every earlier round's routing and takes a copy of this round's (the
    // run's own, when the comparison reads the same files), kept for the comparison's reading
    // (each one's row buckets on disk meanwhile, its village codes held).
    let (compare_within, rekey) = match (&o.earlier, max_memory) {
        (Some(e), Some(m)) => {
            let (folders, rounds) = super::earlier_rounds(o, e, None);
            // This round's routing is the run's own when the comparison reads the files the run
            // reads (a folder's, as `tpmap run` picks them), read with the same options.
            let this = folders.last().filter(|d| {
                let picked = |stem| crate::pipeline::pick(d, stem).ok();
                picked("households").as_deref() == Some(o.households.as_path())
                    && picked("persons").as_deref() == Some(o.persons.as_path())
            });
            let (need, routed) =
                crate::panel::rounds::need_routed(&folders, &rounds, None, true, this.map(|_| &split))?;
            let beside = routed.iter().flatten().map(|(s, _)| s.bytes_beside_rows()).fold(0, u64::saturating_add);
            let room = m.saturating_sub(split.bytes_beside_rows()).saturating_sub(beside);
            if need.bytes > room {
                return Err(Error::Config(format!(
                    "--max-memory {} is below what comparing the {} rounds needs: about {} ({}); give at least that",
                    crate::limits::format_bytes(m),
                    folders.len(),
                    crate::limits::format_bytes(need.bytes.saturating_add(m - room)),
                    need.what,
                )));
            }
            let beside_registry = room.saturating_sub(registry_share);
            match need.bytes <= beside_registry {
                true => (Some((beside_registry, routed)), false),
                false => (Some((room, routed)), with_registry),
            }
        }
        (Some(_), None) => (None, with_registry),
        _ => (None, false),
    };
    if let Some(m) = max_memory
        && let Some((aside, _, what)) = [first, last].into_iter().find(|p| p.0 > 0 && p.0 >= m)
    {
        return Err(Error::Config(format!(
            "--max-memory {} is below what {what} takes: about {}; give more",
            crate::limits::format_bytes(m),
            crate::limits::format_bytes(aside),
        )));
    }
    // The waves are planned for the reading that leaves them less.
    let left = |(aside, held, _): (u64, u64, &str)| {
        max_memory.unwrap_or(u64::MAX).saturating_sub(aside).saturating_sub(persons.saturating_mul(held))
    };
    let (aside, held, what) = if left(first) < left(last) { first } else { last };
    let budget = max_memory.map(|m| m.saturating_sub(aside));
    // Without a budget, a run that links a wave at a time groups consecutive provinces into
    // waves no larger than its largest province: the peak stays the largest province's, and
    // each wave's comparison costs time of its own (nationally, comparing 76 waves of one
    // province took 112.8 s, 23 waves 75.4 s).
    let largest = match (max_memory, with_registry || with_list) {
        (None, true) => split.waves(None)?.iter().map(Wave::estimated_bytes).max(),
        _ => None,
    };
    // Two waves in flight when they fit (one written while the next is read, each on a core of
    // its own); else one at a time, in waves as large as the budget allows.
    let waves_within = |budget: Option<u64>, held| match split.waves_in_flight(budget, held, 2) {
        Ok(w) => Ok((w, 2)),
        Err(_) => split.waves_holding(budget, held).map(|w| (w, 1)).map_err(|e| match (e, max_memory, budget) {
            (Error::Config(e), Some(m), Some(b)) if b < m => Error::Config(format!(
                "{e}: that is what --max-memory {} leaves after about {} for {what}",
                crate::limits::format_bytes(m),
                crate::limits::format_bytes(m - b)
            )),
            (e, ..) => e,
        }),
    };
    let waves_for = |held| {
        let budget = match largest {
            Some(l) => Some(split.held_across(held).saturating_add(l.saturating_mul(2))),
            None => budget,
        };
        waves_within(budget, held)
    };
    let (mut waves, mut in_flight) = waves_for(held)?;
    // Out of file order, each citizen ID's holder is kept by row across the waves.
    let holders = match split.persons_in_order_of(&waves) {
        true => 0,
        false => crate::ingest::partition::BYTES_HOLDER_ROWS_PER_PERSON_ROW,
    };
    if holders > 0 {
        (waves, in_flight) = waves_for(held + holders)?;
    }
    // What a linkage's kept pairs and clustering may take once the waves are read (`limit`: the
    // budget less what is held then — across the waves for the registry's, linked between the
    // readings; after the last wave for the list's); refused now when its clustering's arrays
    // alone do not fit.
    let kept_limit = |limit: u64, records: u64, linking: &str| -> Result<Option<u64>> {
        let Some(m) = max_memory else { return Ok(None) };
        let clustering =
            persons.saturating_add(records).saturating_mul(crate::link::parts::BYTES_CLUSTERING_PER_RECORD);
        if clustering > limit {
            return Err(Error::Config(format!(
                "--max-memory {} is below what linking {linking} takes once the waves are read: about {} to cluster \
                 its records, beside {} held then; give more",
                crate::limits::format_bytes(m),
                crate::limits::format_bytes(clustering),
                crate::limits::format_bytes(m.saturating_sub(limit)),
            )));
        }
        Ok(Some(limit))
    };
    // Merging the results after the last wave: what is held across the waves then, and the
    // merge's own.
    if let Some(m) = max_memory {
        let held = split.held_across(plan_held + holders);
        if held.saturating_add(merging) > m {
            return Err(Error::Config(format!(
                "--max-memory {} is below what merging the provinces takes once the waves are read: about {} more for \
                 {} villages' results{}, beside {} held across the waves; give more",
                crate::limits::format_bytes(m),
                crate::limits::format_bytes(merging),
                split.villages,
                if reps > 0 { format!(" with {reps} bootstrap replicates") } else { String::new() },
                crate::limits::format_bytes(held),
            )));
        }
    }
    let registry_limit = match &counting {
        Some(Ok(c)) => {
            let limit = max_memory.unwrap_or(0).saturating_sub(split.held_across(holders));
            kept_limit(limit, c.registry_len() as u64, "the welfare registry")?
        }
        _ => None,
    };
    // Once the waves are read (their reader gone): the accepted household IDs of a served file,
    // the merged results and what is fixed. The list is linked then, beside each person's
    // household ID and index (`BYTES_BOUNDED_LINK_PER_PERSON_ROW` + 8) and its records and keys;
    // once it is linked, the poor households are read back for the plan
    // (`BYTES_PLANNED_PER_POOR_PERSON` a person of theirs, checked as the waves count them), with
    // a copy of them for a moment when the waves take the households out of file order (the
    // plan goes in input order).
    let after_waves =
        persons.saturating_mul(plan_held).saturating_add(crate::ingest::partition::BYTES_FIXED).saturating_add(merged);
    let list_limit = match (with_list, max_memory) {
        (true, Some(m)) => {
            let beside = after_waves
                .saturating_add(persons.saturating_mul(BYTES_BOUNDED_LINK_PER_PERSON_ROW + 8))
                .saturating_add(list_share);
            kept_limit(m.saturating_sub(beside), 0, "the beneficiary list")?
        }
        _ => None,
    };
    let poor_copies = if split.households_in_order_of(&waves) { 1 } else { 2 };
    let per_poor_person = planned_bytes_per_poor_person(o);
    // How many persons of poor households the budget holds once the waves are read (before the
    // plan's decisions, which take what is left: `BYTES_PER_PLAN_DECISION` each). Their
    // count is known only as the waves score them: none is assumed here (until the
    // twenty-fifth session a quarter of the persons were, which refused budgets that fitted);
    // the waves check the count as they make it, and the plan once more after the last.
    let plan_room = match (max_memory, &loaded) {
        (Some(m), Some(_)) => {
            let room = m.saturating_sub(after_waves) / per_poor_person.saturating_mul(poor_copies).max(1);
            if room == 0 {
                return Err(Error::Config(format!(
                    "--max-memory {} leaves no room to plan once the waves are read: {} held then, about {} a person of the poor \
                     households; give more",
                    crate::limits::format_bytes(m),
                    crate::limits::format_bytes(after_waves),
                    crate::limits::format_bytes(per_poor_person.saturating_mul(poor_copies)),
                )));
            }
            progress.step(&format!(
                "the budget holds up to about {room} persons of poor households ({:.1} % of the {persons} persons), \
                 fewer the more places and declines the plan decides on",
                100.0 * room as f64 / persons.max(1) as f64
            ));
            Some(room)
        }
        _ => None,
    };
    let mut partition = PartitionReport {
        max_memory,
        largest_wave_estimate: waves.iter().map(Wave::estimated_bytes).max().unwrap_or(0),
        waves_in_flight: in_flight,
        waves: waves
            .iter()
            .map(|w| WaveReport {
                provinces: w.buckets.iter().map(|b| format!("{b:02}")).collect(),
                household_rows: w.household_rows,
                person_rows: w.person_rows,
            })
            .collect(),
        passes: 1,
        plan_room,
    };
    let mut spec = Spec::tpmap(&o.ingest.edition, o.mask)?;
    spec.na = o.na;
    spec.missing = o.missing;
    let stage = crate::output::Staging::new(out)?;
    let out = stage.path();
    // The earlier rounds compared first (see `compare_within`), the split's row buckets on disk
    // meanwhile, and a welfare registry's records and keys given back when `rekey`; what the
    // comparison freed goes back before the waves.
    let (compared, counting) = match &o.earlier {
        Some(e) => {
            progress.step("comparing with the earlier rounds");
            let rows = split.spill_rows()?;
            let kept = match counting {
                Some(Ok(c)) if rekey => Err(c.registry_bytes()),
                c => Ok(c),
            };
            crate::memory::release();
            let compared = super::compare_earlier(o, e, out, None, compare_within)?;
            crate::memory::release();
            split.restore_rows(rows)?;
            let counting = match (kept, &o.welfare_registry) {
                (Ok(c), _) => c,
                (Err(bytes), Some(registry)) => {
                    progress.step("reading and keying the welfare registry again");
                    let c = crate::link::parts::Counting::of_registry(registry, &Default::default());
                    if c.as_ref().is_ok_and(|c| c.registry_bytes() != bytes) {
                        return Err(Error::Config(
                            "the welfare registry changed while the run read it: its records take other memory than \
                             when the budget was planned; run again"
                                .into(),
                        ));
                    }
                    Some(c)
                }
                (Err(_), None) => return Err(Error::Config("internal: a welfare registry without its file".into())),
            };
            (Some(compared), counting)
        }
        None => (None, counting),
    };
    // Room for every person's citizen ID, counted by the registry's linkage in the first
    // reading, and what its kept pairs and clustering may take.
    let counting = match counting {
        Some(Ok(mut c)) => {
            c.reserve(split.persons.len());
            c.limit_kept(registry_limit);
            Some(Ok(c))
        }
        c => c,
    };
    let mut reader = PartitionedReader::new(split, &waves);
    let mut merged = Merged::default();
    let mut seconds = RunSeconds::default();
    // The whole run's order when there are no rows at all: the (empty) first wave still runs.
    let waves =
        if waves.is_empty() { vec![Wave { buckets: Vec::new(), household_rows: 0, person_rows: 0 }] } else { waves };
    let spec_ref = &spec;
    // A strict run reads its waves leniently and fails with the whole run's first bad row.
    let (strict, read_opts) = crate::ingest::partition::wave_options(&o.ingest);
    let read_opts = &*read_opts;
    let households_in_order = reader.split().households_in_order_of(&waves);
    let (marks, welfare_link, registry_spill) = match counting {
        Some(counting) => {
            let (marks, link, spill) =
                link_welfare(&mut reader, &waves, o, read_opts, counting, &mut partition, &mut seconds, progress)?;
            (Some(marks), Some(link), Some(spill))
        }
        None => (None, None, None),
    };
    // (0 for the households file, 1 for the persons file; data row; the error).
    let mut first_bad: Option<(u8, u64, Error)>;
    // With a beneficiary list, each person's household row and ID: the list's linkage counts the
    // persons as they are read and keeps their link records in a temporary file, a wave a part
    // (read first: an error reading it is the run's after the extract's own, as in a whole run).
    let mut gathered: Option<Gathered>;
    let mut list_in_parts = match (with_list, served_list, &loaded) {
        (true, Some(list), Some(l)) => {
            let mut p = crate::plan::served::ListInParts::new(list, &l.catalogue, &crate::link::LinkOptions::default());
            if let Ok(p) = &mut p {
                p.counting().reserve(reader.split().persons.len());
                p.counting().limit_kept(list_limit);
            }
            Some(p)
        }
        _ => None,
    };
    // The welfare registry's first reading spilled the same persons' link records, a wave a
    // part (the same rows, kept by the same checks, made by the same code: `push_extract`
    // takes no mark), so the list's linkage reads them from there instead of making and
    // spilling them again (checked wave by wave against the citizen IDs read).
    let registry_spill = registry_spill.filter(|s| list_in_parts.is_some() && s.parts() == waves.len());
    let list_reuses = registry_spill.is_some();
    let mut list_spill = match registry_spill {
        Some(spill) => Some(spill),
        None => list_in_parts.is_some().then(crate::link::records::RecordSpill::new).transpose()?,
    };
    // Where each wave's persons begin in wave order for the list's linkage (and the end).
    let mut list_starts = vec![0usize];
    // Each wave's poor households, for the plan after the last wave.
    let mut poor_spill = loaded.is_some().then(crate::extract::ExtractSpill::new).transpose()?;
    loop {
        first_bad = None;
        if let Some(s) = &mut poor_spill {
            s.clear()?;
        }
        gathered = served_list.map(|_| {
            // Each person's household row and ID, 16 bytes a person row (a budget's share).
            let mut g = Gathered::new(true);
            let n = reader.split().persons.len();
            g.rows.reserve_exact(n);
            if let Some(h) = &mut g.households {
                h.reserve_exact(n);
            }
            g
        });
        if let Some(Ok(l)) = &mut list_in_parts {
            l.counting().restart();
        }
        if let Some(s) = &mut list_spill
            && !list_reuses
        {
            s.clear()?;
        }
        list_starts.truncate(1);
        // Persons marked so far by the welfare registry's linkage (in wave order).
        let mut marked = 0usize;
        let mut each_wave = |write: &mut dyn FnMut(WaveRows) -> Result<()>| -> Result<()> {
            for (i, wave) in waves.iter().enumerate() {
                let names: Vec<String> = wave.buckets.iter().map(|b| format!("{b:02}")).collect();
                progress.step(&format!("wave {} of {} (provinces {})", i + 1, waves.len(), names.join(" ")));
                let mut lap = crate::diagnostics::Lap::start();
                let t = Instant::now();
                let mut got = reader.read(&o.households, &o.persons, read_opts, wave)?;
                seconds.ingest_and_validate += t.elapsed().as_secs_f64();
                lap.lap("wave: read");
                if strict && crate::ingest::partition::strict_skips(&got, &mut first_bad, households_in_order)? {
                    continue;
                }
                if let Some(marks) = &marks {
                    let p = &mut got.extract.persons;
                    let Some(these) = marks.get(marked..marked + p.len()) else {
                        return Err(Error::Config("internal: a wave read again has more persons".into()));
                    };
                    for (k, m) in these.iter().enumerate() {
                        p.welfare_registered[k] = Some(m.is_some());
                        p.welfare_validated[k] = Some(m.unwrap_or(false));
                    }
                    marked += these.len();
                }
                let x = &got.extract;
                let t = Instant::now();
                let profiles = Profiles::of_households(x, o.unit);
                let scores = crate::score::score(&profiles, spec_ref)?;
                let hierarchy = Hierarchy::tpmap(&x.households.village);
                // Replicates keyed by household, as in a whole run: the waves' sums add up to the whole's.
                let agg = AggregateOptions::tpmap(x, o.unit, o.welfare, o.bootstrap);
                merged.partials.push(Partial::of(&profiles, spec_ref, &scores, &hierarchy, &agg)?);
                seconds.score_and_measures += t.elapsed().as_secs_f64();
                lap.lap("wave: scored, partial measures");
                let t = Instant::now();
                let tables =
                    crate::published::tables_from_scores(x, o.tpmap_year, spec_ref, &profiles, &scores, o.welfare)?;
                merged.add_tables(tables);
                seconds.tpmap_tables += t.elapsed().as_secs_f64();
                lap.lap("wave: TPMAP tables");
                let household_target = crate::score::target_weights(x, Unit::People, o.welfare);
                merged.dropped += scores.dropped_count();
                merged.summaries.push(Summary::of(x));
                if let Some(spill) = &mut poor_spill {
                    let poor: Vec<u32> = (0u32..).zip(&scores.poor).filter_map(|(h, &p)| p.then_some(h)).collect();
                    spill.push(&x.select(&poor))?;
                    // Checked as they are counted: a run whose poor households do not fit stops
                    // at the wave that shows it (a pass to be read again counts afresh).
                    if !reader.crossed() {
                        plan_fits(
                            max_memory,
                            after_waves,
                            spill,
                            per_poor_person,
                            poor_copies,
                            Some((i, waves.len())),
                        )?;
                    }
                    if served_file.is_some() {
                        merged.household_ids.extend_from_slice(&x.households.id);
                    }
                }
                if let Some(g) = &mut gathered {
                    g.push(&got.extract);
                    list_starts.push(g.rows.len());
                }
                if let (Some(Ok(l)), Some(spill)) = (&mut list_in_parts, &mut list_spill) {
                    if list_reuses {
                        // The IDs alone are checked: the same rows read twice give the same
                        // persons, and a file rewritten between the readings with the same IDs
                        // is linked as the first reading saw it (as the registry's marks are).
                        let r = spill.read(i)?;
                        if r.citizen_id != got.extract.persons.citizen_id {
                            return Err(Error::Config(
                                "internal: the registry's spilled link records are not the wave's persons".into(),
                            ));
                        }
                        l.counting().count(&r)?;
                    } else {
                        let mut r = crate::link::Records::default();
                        r.push_extract("survey", &got.extract);
                        l.counting().count(&r)?;
                        spill.push(&r)?;
                    }
                    lap.lap("wave: counted for the beneficiary list");
                }
                merged.add_ingest(&mut got);
                lap.lap("wave: summary, merged");
                write(WaveRows { extract: got.extract, profiles, scores, household_target })?;
            }
            Ok(())
        };
        let written = if in_flight == 2 {
            // The writer takes a wave only once it has written the last (a rendezvous channel):
            // the wave being written and the wave being read are the two in flight.
            let (tx, rx) = std::sync::mpsc::sync_channel::<WaveRows>(0);
            std::thread::scope(|s| {
                let writer = s.spawn(move || -> Result<()> {
                    let mut files = Appenders::new(out);
                    for rows in rx {
                        files.write(&rows, spec_ref)?;
                    }
                    files.finish()
                });
                let read = each_wave(&mut |rows| {
                    // A closed channel means the writer stopped on an error, returned below.
                    tx.send(rows).map_err(|_| Error::Config("internal: the partitioned writer stopped".into()))
                });
                drop(tx);
                let wrote = writer
                    .join()
                    .unwrap_or_else(|_| Err(Error::Config("internal: the partitioned writer panicked".into())));
                // The writer's error comes from an earlier wave than the reader's.
                wrote.and(read)
            })
        } else {
            let mut files = Appenders::new(out);
            each_wave(&mut |rows| files.write(&rows, spec_ref)).and_then(|()| files.finish())
        };
        written?;
        if marks.as_ref().is_some_and(|m| m.len() != marked) && first_bad.is_none() {
            return Err(Error::Config("internal: a wave read again has fewer persons".into()));
        }
        if !reader.crossed() {
            break;
        }
        // A citizen ID's first holder in the file was met after another holder (a file out of
        // province order): the waves kept the later one. Every wave again, keeping the first; the
        // outputs of the first reading are written over.
        progress.step("reading the waves again: a citizen ID held in two waves, the first holder in the later");
        reader.decide();
        merged = Merged::default();
        partition.passes += 1;
    }
    if let Some((_, _, e)) = first_bad {
        return Err(e);
    }
    // The reader's routing and citizen-ID set (0.9 GB nationally) and the waves' freed memory go
    // before the plan and a beneficiary list's linkage.
    drop(reader);
    crate::memory::release();
    progress.step("merging the provinces");
    let t = Instant::now();
    let mut lap = crate::diagnostics::Lap::start();
    // TPMAP's hierarchy again, over the merged villages (a leaf's last key is its village code).
    let mut measures = crate::partial::merge_tpmap(&merged.partials)?;
    lap.lap("merge: partial measures merged");
    // The partial format numbers indicators in spec order; the run's spec keeps the edition's.
    measures.spec = spec.clone();
    seconds.score_and_measures += t.elapsed().as_secs_f64();
    // The measures and TPMAP's tables are written at once, each of them on every core it can use.
    let village_rows = merged.tables.take();
    let (wrote_measures, wrote_tables) = crate::in_pool(|| {
        rayon::join(
            || measures.write(out),
            || village_rows.map(|t| t.roll_up()).unwrap_or_default().write_dir(&out.join("tpmap")),
        )
    });
    wrote_measures?;
    wrote_tables?;
    lap.lap("merge: measures and TPMAP tables written");
    let spec_path = out.join("spec.csv");
    std::fs::write(&spec_path, frame::spec_csv(&spec)).map_err(|e| Error::io(&spec_path, e))?;
    let (mut hh_rejects, mut p_rejects) = (merged.household_rejects, merged.person_rejects);
    // Each wave's rejections are in row order; the waves interleave.
    hh_rejects.sort_by_key(|r| r.row);
    p_rejects.sort_by_key(|r| r.row);
    let (hh_header, p_header) = merged.headers;
    rejects::write_rejects(&out.join("rejected_households.csv"), &hh_header, &hh_rejects)?;
    rejects::write_rejects(&out.join("rejected_persons.csv"), &p_header, &p_rejects)?;
    lap.lap("merge: rejected rows written");
    let planned = match (&o.plan, loaded, poor_spill) {
        (Some(p), Some(mut loaded), Some(mut spill)) => {
            progress.step("planning");
            // A served file checked against every accepted household first (an error naming its
            // row, as in a whole run, before the list is linked); read again below for the poor
            // ones (no other household is a candidate of any program).
            let mut all = std::mem::take(&mut merged.household_ids);
            all.sort_unstable();
            let accepted = |id| all.binary_search(&id).ok().map(|_| None);
            if let Some(path) = served_file {
                crate::plan::served::read_by(path, &loaded.catalogue, &accepted)?;
            }
            // The beneficiary list linked with every person, as a whole run links it, before
            // the poor households are read back (the two never share the budget): the matched
            // households counted over all of them, kept for the poor ones.
            let listed = match (served_list, gathered.take()) {
                (Some(_), Some(g)) => {
                    progress.step("linking the beneficiary list");
                    let (Some(l), Some(spill)) = (list_in_parts.take(), list_spill.take()) else {
                        return Err(Error::Config("internal: the beneficiary list was not counted".into()));
                    };
                    // A wave at a time, from the records the scoring pass kept.
                    let l = l?;
                    let Gathered { rows, households, .. } = g;
                    let (mut parts, order) =
                        WaveParts::new(spill, &rows, list_starts, "linking the beneficiary list", progress)?;
                    drop(rows);
                    if l.persons() != parts.rank.len() {
                        return Err(Error::Config("internal: the list's linkage counted other persons".into()));
                    }
                    let (matches, mut report) = l.matches(&mut parts)?;
                    let ids = households.unwrap_or_default();
                    let wave_index = |k: u32| order.as_ref().map_or(k, |o| o[k as usize]) as usize;
                    let mut pairs: Vec<(crate::ids::HouseholdId, u32)> =
                        matches.iter().map(|&(p, program)| (ids[wave_index(p)], program)).collect();
                    pairs.sort_unstable();
                    pairs.dedup();
                    report.households = pairs.len();
                    Some((pairs, report))
                }
                _ => None,
            };
            crate::memory::release();
            lap.lap("planning: served households read");
            // The poor households' need, now that they are all counted, beside what is held;
            // what is left is the plan's decisions' (a what-if's two plans half each).
            let left = plan_fits(max_memory, after_waves, &spill, per_poor_person, poor_copies, None)?;
            let plans = if p.compare.is_some() { 2 } else { 1 };
            let inputs = p.limited(
                o.ingest.limits.plan_decisions,
                max_memory.map(|_| left / crate::ingest::partition::BYTES_PER_PLAN_DECISION / plans),
            );
            let poor = spill.read_all(&o.ingest.edition)?;
            drop(spill);
            lap.lap("planning: poor households read back");
            // Input order, as in a whole run (the waves went province by province).
            let x = match poor.households.source_row.is_sorted() {
                true => poor,
                false => {
                    let mut order: Vec<u32> = (0u32..).take(poor.households.len()).collect();
                    order.sort_by_key(|&h| poor.households.source_row[h as usize]);
                    let x = poor.select(&order);
                    drop(poor);
                    x
                }
            };
            let profiles = Profiles::of_households(&x, o.unit);
            let scores = crate::score::score(&profiles, &spec)?;
            if scores.poor.iter().any(|&p| !p) {
                return Err(Error::Config("internal: a household poor in its province is not poor alone".into()));
            }
            // The poor households planned over, by ID.
            let by_id: std::collections::HashMap<crate::ids::HouseholdId, u32> =
                (0u32..).zip(&x.households.id).map(|(h, id)| (*id, h)).collect();
            if let Some(path) = served_file {
                let find = |id| match by_id.get(&id) {
                    Some(&h) => Some(Some(h)),
                    None => accepted(id),
                };
                loaded.served = crate::plan::served::read_by(path, &loaded.catalogue, &find)?;
            }
            drop(all);
            if let Some((pairs, report)) = listed {
                loaded.served.extend(pairs.iter().filter_map(|(id, program)| by_id.get(id).map(|&h| (h, *program))));
                loaded.served_link = Some(report);
            }
            loaded.served.sort_unstable();
            loaded.served.dedup();
            let dirs = (out.join("plan"), stage.target().join("plan"));
            let (report, figures, _) =
                super::plan(&x, &spec, &profiles, &scores, o.welfare, &inputs, loaded, &dirs, progress)?;
            Some((report, figures))
        }
        _ => None,
    };
    let mut report = RunReport {
        ingest: merged.ingest.unwrap_or_default(),
        welfare_link,
        summary: Summary::merge(&merged.summaries),
        notices: data_notices(&o.households),
        measure: measure_report(o, &measures, merged.dropped),
        plan: planned.as_ref().map(|(r, _)| r.clone()),
        seconds,
        partition: Some(partition),
        panel: compared,
    };
    if o.html {
        progress.step("writing the HTML report");
        write_html(o, &spec, &report, &measures, planned.as_ref().map(|(_, f)| f), out)?;
    }
    report.seconds.total = t0.elapsed().as_secs_f64();
    let path = out.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?).map_err(|e| Error::io(&path, e))?;
    stage.commit()?;
    Ok(PartitionedOutput { measures, report })
}

/// Whether the poor households counted in `spill` fit `max_memory` for the plan, beside
/// `after_waves` held then: `per_poor_person` bytes a person, and with `copies` > 1 (the waves
/// take the households out of file order) the households once more while they are put in input
/// order. `wave`: counted so far, by wave `.0` of `.1` (else all of them). Returns what the
/// budget leaves beside them for the plan's decisions (the copy freed by then; `u64::MAX`
/// without a budget).
fn plan_fits(
    max_memory: Option<u64>,
    after_waves: u64,
    spill: &crate::extract::ExtractSpill,
    per_poor_person: u64,
    copies: u64,
    wave: Option<(usize, usize)>,
) -> Result<u64> {
    let Some(m) = max_memory else { return Ok(u64::MAX) };
    let (households, persons) = spill.rows();
    let held = persons.saturating_mul(per_poor_person);
    let need = held.saturating_add(if copies > 1 { spill.bytes() } else { 0 });
    if after_waves.saturating_add(need) <= m {
        return Ok(m - after_waves.saturating_add(held));
    }
    Err(Error::Config(format!(
        "--max-memory {} is below what planning takes: about {} for the {households} poor households' {persons} \
         persons{}, beside {} held then; give more",
        crate::limits::format_bytes(m),
        crate::limits::format_bytes(need),
        wave.map(|(i, n)| format!(" counted by wave {} of {n}", i + 1)).unwrap_or_default(),
        crate::limits::format_bytes(after_waves),
    )))
}

/// Bytes a plan takes after the last wave per person of the poor households
/// ([`crate::ingest::partition::BYTES_PLANNED_PER_POOR_PERSON`]; times
/// [`crate::ingest::partition::PLANNED_WIDE_FACTOR`] for a plan over every poor household, a
/// what-if or the optimiser).
fn planned_bytes_per_poor_person(o: &RunOptions) -> u64 {
    use crate::ingest::partition::{BYTES_PLANNED_PER_POOR_PERSON, PLANNED_WIDE_FACTOR};
    let wide = o.plan.as_ref().is_some_and(|p| {
        p.options.population == crate::plan::Population::Poor
            || o.welfare == crate::score::Welfare::None
            || p.compare.is_some()
            || p.optimize.is_some()
    });
    BYTES_PLANNED_PER_POOR_PERSON * if wide { PLANNED_WIDE_FACTOR } else { 1 }
}

/// Each wave's persons' household rows (and IDs, when asked for), in wave order: what a
/// partitioned run keeps of them across the waves to link a welfare registry or a beneficiary
/// list a wave at a time (the link records themselves are spilled).
struct Gathered {
    rows: Vec<u64>,
    households: Option<Vec<crate::ids::HouseholdId>>,
}

impl Gathered {
    fn new(with_households: bool) -> Gathered {
        Gathered { rows: Vec::new(), households: with_households.then(Vec::new) }
    }

    /// Appends a wave's persons.
    fn push(&mut self, x: &crate::extract::Extract) {
        let p = &x.persons;
        self.rows.extend(p.household.iter().map(|&h| x.households.source_row[h as usize]));
        if let Some(ids) = &mut self.households {
            ids.extend(p.household.iter().map(|&h| x.households.id[h as usize]));
        }
    }
}

/// The whole extract's order of persons given by their household rows in wave order —
/// households in file order, each one's persons in file order (a stable sort: one wave holds a
/// household's persons) — as each person's index in wave order; `None` when wave order is it.
/// (Fewer than 2^32 persons: checked by the callers.)
fn whole_order(rows: &[u64]) -> Option<Vec<u32>> {
    (!rows.is_sorted()).then(|| {
        let mut order: Vec<u32> = (0u32..).take(rows.len()).collect();
        order.sort_by_key(|&k| rows[k as usize]);
        order
    })
}

/// Links a welfare registry with every wave's persons before any wave is scored, a wave at a
/// time ([`crate::link::parts`]): the waves are read once (a strict run fails here with the
/// whole run's first bad row), each wave's persons counted (`counting`: the registry already
/// read and keyed, or the error reading it, returned after the extract's own) and their link
/// records spilled, a wave a part, for [`link_welfare_in_waves`] — the whole job's pairs and
/// matches. Returns each person's mark in wave order (`Some(validated)` when matched) for the
/// second reading, which keeps the same rows ([`PartitionedReader::decide`]), and the spill (a
/// beneficiary list's linkage in the scoring pass reads the same records from it).
#[allow(clippy::too_many_arguments)]
fn link_welfare(
    reader: &mut PartitionedReader,
    waves: &[Wave],
    o: &RunOptions,
    read_opts: &crate::ingest::IngestOptions,
    mut counting: Result<crate::link::parts::Counting>,
    partition: &mut PartitionReport,
    seconds: &mut RunSeconds,
    progress: &dyn Progress,
) -> Result<(Vec<Option<bool>>, crate::link::WelfareLink, crate::link::records::RecordSpill)> {
    let strict = o.ingest.mode == crate::ingest::Mode::Strict;
    // Each wave's link records kept for the comparison (a temporary file): the waves are not
    // read and normalised again.
    let mut spill = crate::link::records::RecordSpill::new()?;
    loop {
        // Each person's household row, 8 bytes a person row (a budget's share).
        let mut gathered = Gathered::new(false);
        gathered.rows.reserve_exact(reader.split().persons.len());
        // Where each wave's persons begin in wave order, and the end.
        let mut starts = vec![0usize];
        let mut first_bad = None;
        let (mut reading, mut counting_seconds) = (0.0, 0.0);
        if let Ok(c) = &mut counting {
            c.restart();
        }
        spill.clear()?;
        for (i, wave) in waves.iter().enumerate() {
            progress.step(&format!("linking with the welfare registry: reading wave {} of {}", i + 1, waves.len()));
            let t = Instant::now();
            let got = reader.read(&o.households, &o.persons, read_opts, wave)?;
            reading += t.elapsed().as_secs_f64();
            if strict {
                crate::ingest::partition::note_first_bad(&got, &mut first_bad);
            }
            gathered.push(&got.extract);
            starts.push(gathered.rows.len());
            if let Ok(c) = &mut counting {
                let t = Instant::now();
                let mut r = crate::link::Records::default();
                r.push_extract("survey", &got.extract);
                c.count(&r)?;
                spill.push(&r)?;
                counting_seconds += t.elapsed().as_secs_f64();
            }
        }
        seconds.ingest_and_validate += reading;
        partition.passes += 1;
        let crossed = reader.crossed();
        // The next reading keeps each ID's first holder in the file: this one did unless crossed.
        reader.decide();
        if crossed {
            progress.step("reading the waves again: a citizen ID held in two waves, the first holder in the later");
            continue;
        }
        if let Some((_, _, e)) = first_bad {
            return Err(e);
        }
        let (marks, mut link, spill) = link_welfare_in_waves(counting?, spill, gathered.rows, starts, progress)?;
        link.seconds += counting_seconds;
        return Ok((marks, link, spill));
    }
}

/// Bytes a bounded linkage holds per person row across the waves of its reading: each
/// person's valid citizen ID (8) and household row (8), each in a vector of the person rows'
/// length made before the reading. A beneficiary list's holds each person's household ID too
/// (8 more). Once the waves are read, each person's index in the whole order and the
/// clustering's arrays take their place
/// ([`crate::link::parts::BYTES_CLUSTERING_PER_RECORD`]).
pub const BYTES_BOUNDED_LINK_PER_PERSON_ROW: u64 = 16;

/// Bytes a beneficiary list's bounded linkage is estimated to hold per byte of its file, set
/// aside before the list is read (a welfare registry's is measured instead: it is read and
/// keyed before the waves are planned, [`crate::link::parts::Counting::registry_bytes`]). On
/// the national SYNTHETIC set a registry record took 126 bytes of its file and, keyed, with
/// its records' columns at their length, about 130 (1.4 GiB for 11.6 M records, 1.03 a byte:
/// the nationwide keys 63 bytes a record, the records about as much); 3 leaves room for lists
/// of shorter lines. The kept pairs are not in it: they
/// are counted once scored and held within what the budget leaves once the waves are read
/// ([`crate::link::parts::Counting::limit_kept`]).
pub const BYTES_BOUNDED_LINK_PER_REGISTRY_BYTE: u64 = 3;

/// The waves as [`crate::link::parts::PersonParts`]: each wave's persons' link records as a
/// reading made them (spilled, a wave a part), numbered by their index in the whole extract's
/// order.
struct WaveParts<'a> {
    spill: crate::link::records::RecordSpill,
    /// Each person's index in the whole order, by position in wave order.
    rank: Vec<u32>,
    /// Each wave's first position in wave order (and the end).
    starts: Vec<usize>,
    /// What the parts are compared for (the progress's words).
    what: &'static str,
    progress: &'a dyn Progress,
}

impl<'a> WaveParts<'a> {
    /// The parts of `spill`, whose waves' persons begin at `starts` (with the end) in wave
    /// order, numbered from each one's household row in wave order (`rows`); and the whole order
    /// as positions in wave order (`None` when wave order is it).
    fn new(
        spill: crate::link::records::RecordSpill,
        rows: &[u64],
        starts: Vec<usize>,
        what: &'static str,
        progress: &'a dyn Progress,
    ) -> Result<(WaveParts<'a>, Option<Vec<u32>>)> {
        let n = rows.len();
        let Ok(n32) = u32::try_from(n) else {
            return Err(Error::Config("internal: more persons than a 32-bit index numbers".into()));
        };
        if spill.parts() + 1 != starts.len() || starts.last() != Some(&n) {
            return Err(Error::Config("internal: the waves spilled hold other persons".into()));
        }
        // Each person's index in the whole order (`Gathered::in_whole_order`'s).
        let order = whole_order(rows);
        let rank: Vec<u32> = match &order {
            None => (0..n32).collect(),
            Some(order) => {
                let mut rank = vec![0u32; n];
                for (k, &w) in (0u32..).zip(order) {
                    rank[w as usize] = k;
                }
                rank
            }
        };
        Ok((WaveParts { spill, rank, starts, what, progress }, order))
    }
}

impl crate::link::parts::PersonParts for WaveParts<'_> {
    fn parts(&self) -> usize {
        self.spill.parts()
    }

    fn read(&mut self, i: usize) -> Result<(crate::link::Records, Vec<u32>)> {
        self.progress.step(&format!("{}: comparing wave {} of {}", self.what, i + 1, self.spill.parts()));
        let (Some(&start), Some(&end)) = (self.starts.get(i), self.starts.get(i + 1)) else {
            return Err(Error::Config("internal: a wave beyond the waves".into()));
        };
        let r = self.spill.read(i)?;
        if r.len() != end.saturating_sub(start) {
            return Err(Error::Config("internal: a wave's spilled records are other persons".into()));
        }
        Ok((r, self.rank[start..end].to_vec()))
    }
}

/// [`link_welfare`] within a memory budget: the persons `counting` counted in the first reading
/// ([`crate::link::parts::Counting`]), their link records as that reading made them (`spill`,
/// a wave a part), linked as one job would link them, numbered from each person's household
/// row in wave order (`rows`, from the first reading) and where each wave's persons begin in it
/// (`starts`, with the end). Returns the spill with the marks.
fn link_welfare_in_waves(
    counting: crate::link::parts::Counting,
    spill: crate::link::records::RecordSpill,
    rows: Vec<u64>,
    starts: Vec<usize>,
    progress: &dyn Progress,
) -> Result<(Vec<Option<bool>>, crate::link::WelfareLink, crate::link::records::RecordSpill)> {
    let t = Instant::now();
    let (mut parts, order) = WaveParts::new(spill, &rows, starts, "linking with the welfare registry", progress)?;
    drop((rows, order));
    if counting.persons() != parts.rank.len() {
        return Err(Error::Config("internal: the linkage counted other persons".into()));
    }
    let (in_order, mut link) = counting.welfare_marks(&mut parts)?;
    // Back to wave order.
    let marks: Vec<Option<bool>> = parts.rank.iter().map(|&k| in_order[k as usize]).collect();
    link.seconds = t.elapsed().as_secs_f64();
    Ok((marks, link, parts.spill))
}

/// The Parquet outputs, appended wave after wave.
struct Appenders {
    households: ParquetAppender,
    persons: ParquetAppender,
    scores: ParquetAppender,
    deprivations: ParquetAppender,
}

impl Appenders {
    fn new(out: &Path) -> Appenders {
        let at = |name: &str| ParquetAppender::new(&out.join(name), &[]);
        Appenders {
            households: at("households.parquet"),
            persons: at("persons.parquet"),
            scores: at("household_scores.parquet"),
            deprivations: at("deprivations.parquet"),
        }
    }

    /// Appends a wave's accepted rows, scores and deprivation matrix.
    fn write(&mut self, w: &WaveRows, spec: &Spec) -> Result<()> {
        let mut lap = crate::diagnostics::Lap::start();
        let x = &w.extract;
        frame::append_households(&mut self.households, &x.households, &x.edition)?;
        frame::append_persons(&mut self.persons, &x.persons, &x.households.id, &x.edition)?;
        frame::append_household_scores(&mut self.scores, &x.households, spec, &w.scores, &w.household_target)?;
        frame::append_deprivations(&mut self.deprivations, &x.households, spec, &w.profiles)?;
        lap.lap("wave: written");
        Ok(())
    }

    fn finish(self) -> Result<()> {
        self.households.finish()?;
        self.persons.finish()?;
        self.scores.finish()?;
        self.deprivations.finish()
    }
}

/// What a wave leaves to be written.
struct WaveRows {
    extract: crate::extract::Extract,
    profiles: Profiles,
    scores: crate::score::Scores,
    household_target: Vec<f64>,
}

/// What the waves add up to.
#[derive(Default)]
struct Merged {
    partials: Vec<Partial>,
    /// Village rows of TPMAP's tables, all waves so far.
    tables: Option<Published>,
    summaries: Vec<Summary>,
    ingest: Option<IngestReport>,
    household_rejects: Vec<Rejection>,
    person_rejects: Vec<Rejection>,
    headers: (Vec<String>, Vec<String>),
    dropped: usize,
    /// Every accepted household ID so far, when a served file is read.
    household_ids: Vec<crate::ids::HouseholdId>,
}

impl Merged {
    /// Keeps a wave's village rows (its higher levels are rolled up again at the end).
    fn add_tables(&mut self, wave: Published) {
        let keep = |mut t: std::collections::BTreeMap<TableLevel, crate::published::Table>| {
            t.retain(|level, _| *level == TableLevel::Village);
            t
        };
        let wave = Published { year: wave.year, mask: wave.mask, common: keep(wave.common), poor: keep(wave.poor) };
        match &mut self.tables {
            None => self.tables = Some(wave),
            Some(all) => {
                for (into, from) in [(&mut all.common, wave.common), (&mut all.poor, wave.poor)] {
                    for (level, table) in from {
                        match into.get_mut(&level) {
                            Some(t) => t.rows.extend(table.rows),
                            None => {
                                into.insert(level, table);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds a wave's reading report and keeps its rejected rows.
    fn add_ingest(&mut self, got: &mut crate::ingest::Ingested) {
        self.household_rejects.append(&mut got.household_rejects);
        self.person_rejects.append(&mut got.person_rejects);
        let r = std::mem::take(&mut got.report);
        let Some(all) = &mut self.ingest else {
            self.headers = (std::mem::take(&mut got.household_header), std::mem::take(&mut got.person_header));
            self.ingest = Some(r);
            return;
        };
        all.absorb(r);
    }
}
