//! Several survey rounds read from their folders, matched pair by pair and written: what
//! `tpmap panel R1 R2 ...` does, and what `tpmap run R1 R2 ...` adds to the latest round's run
//! (its `panel/` folder and the report's "Year over year" section).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::effects::Effect;
use super::{AreaTransitions, MatchSummary, Panel, PanelOptions};
use crate::indicators::Edition;
use crate::ingest::{IngestOptions, IngestReport};
use crate::score::{DimensionMask, Welfare};
use crate::{Error, Result};

/// Options of [`write_rounds`].
#[derive(Clone, Debug)]
pub struct RoundsOptions {
    /// Served list of the earlier of two rounds (default: the earlier folder's `served.csv`).
    pub served: Option<PathBuf>,
    /// TPMAP dimension switches for "poor".
    pub mask: DimensionMask,
    /// Welfare condition for target poor.
    pub welfare: Welfare,
    /// One edition (built-in id or TOML file) for all rounds, or one per round; none: every
    /// round is read with `ingest`'s edition.
    pub editions: Vec<String>,
    /// Mapping files saying which indicators of two editions correspond.
    pub edition_maps: Vec<PathBuf>,
    /// How every round is read (strictness, encoding, area check ...); its edition is replaced
    /// by the round's from `editions`.
    pub ingest: IngestOptions,
}

impl Default for RoundsOptions {
    fn default() -> Self {
        RoundsOptions {
            served: None,
            mask: DimensionMask::ALL,
            welfare: Welfare::Validated,
            editions: vec!["bmn-2560".into()],
            edition_maps: Vec::new(),
            ingest: IngestOptions::default(),
        }
    }
}

/// One consecutive pair of rounds, as written.
#[derive(Clone, Debug, Serialize)]
pub struct PairOutcome {
    /// The earlier round's name (its folder's).
    pub earlier: String,
    /// The later round's name.
    pub later: String,
    /// Households matched by each route, and their fates.
    pub summary: MatchSummary,
    /// Indicators of the earlier edition without a counterpart in the later one.
    pub only_earlier: Vec<String>,
    /// ... and of the later without one in the earlier.
    pub only_later: Vec<String>,
    /// The country's transitions.
    pub country: Option<AreaTransitions>,
    /// The provinces' transitions, in code order.
    pub provinces: Vec<AreaTransitions>,
    /// The follow-up of the programs of the earlier round's served list.
    pub effects: Vec<Effect>,
    /// The pair's folder below the output folder (empty: the output folder itself).
    pub folder: String,
}

/// What [`write_rounds`] read and wrote.
#[derive(Clone, Debug, Serialize)]
pub struct RoundsOutcome {
    /// The rounds' names (their folders', numbered when two are alike).
    pub names: Vec<String>,
    /// Each round's reading report.
    pub reports: Vec<IngestReport>,
    /// Each consecutive pair.
    pub pairs: Vec<PairOutcome>,
}

/// Reads `rounds` (folders with `households.*` and `persons.*`, oldest first), matches each
/// consecutive pair and writes, into the existing folder `out`: for two rounds `matches.parquet`,
/// `transitions.{csv,parquet}`, `effects.csv`, `panel.json` and `panel.html`; for more, those of
/// each pair in `out/<earlier>-<later>/`; and `trajectories.parquet` through all of them.
/// `latest`: the last round already read (by `tpmap run`, whose job it is), not read again.
pub fn write_rounds(
    rounds: &[PathBuf],
    o: &RoundsOptions,
    out: &Path,
    latest: Option<&crate::ingest::Ingested>,
) -> Result<RoundsOutcome> {
    if rounds.len() < 2 || rounds.len() > 20 {
        return Err(Error::Config("a panel compares 2 to 20 rounds, oldest first".into()));
    }
    if o.served.is_some() && rounds.len() > 2 {
        return Err(Error::Config(
            "--served goes with two rounds; with more, each round's folder gives its served.csv".into(),
        ));
    }
    let editions = &o.editions;
    if editions.len() > 1 && editions.len() != rounds.len() {
        return Err(Error::Config(format!(
            "--edition gives one edition for all rounds or one per round ({} rounds, {} editions)",
            rounds.len(),
            editions.len()
        )));
    }
    let read = |(r, dir): (usize, &PathBuf)| -> Result<crate::ingest::Ingested> {
        let (h, p) = (crate::pipeline::pick(dir, "households")?, crate::pipeline::pick(dir, "persons")?);
        let mut opts = o.ingest.clone();
        if let Some(e) = editions.get(r.min(editions.len().saturating_sub(1))) {
            opts.edition = Arc::new(Edition::from_id_or_file(e)?);
        }
        crate::ingest::ingest(&h, &p, &opts)
    };
    let to_read = rounds.len() - usize::from(latest.is_some());
    let read_here: Vec<crate::ingest::Ingested> =
        rounds.iter().take(to_read).enumerate().map(read).collect::<Result<_>>()?;
    let got: Vec<&crate::ingest::Ingested> = read_here.iter().chain(latest).collect();
    let maps = &o.edition_maps;
    let ids: Vec<(String, String)> =
        maps.iter().map(|m| super::editions::EditionMap::ids_of(m)).collect::<Result<_>>()?;
    let mut names: Vec<String> = rounds
        .iter()
        .enumerate()
        .map(|(i, d)| d.file_name().map_or(format!("round{}", i + 1), |n| n.to_string_lossy().into_owned()))
        .collect();
    // Folder names name the rounds' columns and folders: when two are alike, number them all.
    let mut sorted = names.clone();
    sorted.sort();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        names = names.iter().enumerate().map(|(i, n)| format!("round{}_{n}", i + 1)).collect();
    }
    let panels: Vec<Panel<'_>> = got
        .windows(2)
        .map(|w| {
            let (a, b) = (&w[0].extract.edition, &w[1].extract.edition);
            let file = ids.iter().position(|(x, y)| *x == a.id && *y == b.id).map(|k| &maps[k]);
            let editions = match file {
                Some(f) => Some(super::editions::EditionMap::load(f, a, b)?),
                None => None,
            };
            let opts = PanelOptions { mask: o.mask, welfare: o.welfare, editions };
            Panel::build(&w[0].extract, &w[1].extract, &opts)
        })
        .collect::<Result<_>>()?;
    let mut served_lists = Vec::new();
    for (r, dir) in rounds.iter().enumerate().take(rounds.len() - 1) {
        let file = if r == 0 { o.served.clone() } else { None }
            .or_else(|| Some(dir.join("served.csv")).filter(|f| f.exists()));
        served_lists.push(match &file {
            Some(f) => super::effects::read_served(f, &got[r].extract.edition)?,
            None => Vec::new(),
        });
    }
    let mut notices: Vec<String> =
        got.iter().flat_map(|g| crate::pipeline::data_notices(Path::new(&g.report.households.file))).collect();
    notices.dedup();
    let mut pairs = Vec::with_capacity(panels.len());
    for (r, p) in panels.iter().enumerate() {
        let (effects, unknown) = super::effects::effects(p, &served_lists[r]);
        let folder = if panels.len() == 1 { String::new() } else { format!("{}-{}", names[r], names[r + 1]) };
        let dir = out.join(&folder);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        super::output::write_into(p, &served_lists[r], &effects, unknown, &notices, &dir)?;
        pairs.push(PairOutcome {
            earlier: names[r].clone(),
            later: names[r + 1].clone(),
            summary: p.summary.clone(),
            only_earlier: p.editions.only_earlier.clone(),
            only_later: p.editions.only_later.clone(),
            country: p.transitions.first().cloned(),
            provinces: p.transitions.iter().filter(|a| a.level == "province").cloned().collect(),
            effects,
            folder,
        });
    }
    let mut traj = super::output::trajectories_frame(&panels, &names, &served_lists)?;
    crate::frame::write_parquet(&mut traj, &out.join("trajectories.parquet"), &[])?;
    Ok(RoundsOutcome { names, reports: got.iter().map(|g| g.report.clone()).collect(), pairs })
}
