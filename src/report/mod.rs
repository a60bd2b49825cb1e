//! What a plan means for agencies and provinces: per-agency work lists, the provincial report
//! (province and amphoe) with small cells suppressed for publication, and what-if comparisons of
//! two plans.
//!
//! ```no_run
//! # use tpmap::plan::{allocate, household_plan, PlanOptions, Subjects};
//! # use tpmap::score::{score, DimensionMask, Profiles, Spec, Unit, Welfare};
//! # let got = tpmap::ingest::ingest("data-samples/households.csv".as_ref(), "data-samples/persons.csv".as_ref(), &Default::default())?;
//! # let x = &got.extract;
//! # let spec = Spec::tpmap(&x.edition, DimensionMask::ALL)?;
//! # let profiles = Profiles::of_households(x, Unit::Households);
//! # let scores = score(&profiles, &spec)?;
//! # let subjects = Subjects::new(x, &spec, &profiles, &scores, Welfare::Validated)?;
//! # let catalogue = tpmap::programs::Catalogue::load("data-samples/catalogue.toml", &x.edition)?;
//! let allocation = allocate(&subjects, &catalogue, &Vec::new(), &PlanOptions::default())?;
//! let lines = household_plan(&subjects, &catalogue, &allocation);
//! let key = tpmap::ids::PseudonymKey::resolve(None)?;
//! let options = tpmap::report::WriteOptions { key_warning: key.warning(), ..Default::default() };
//! let summary = tpmap::report::write_plan("plan".as_ref(), &subjects, &catalogue, &allocation, &lines, &key.pseudonymizer(), &options)?;
//! println!("{} of {} deprivations covered", summary.covered, summary.deprivations);
//! # Ok::<(), tpmap::Error>(())
//! ```

pub mod html;

use std::collections::{BTreeMap, HashMap, HashSet};

use polars::prelude::*;
use serde::Serialize;

use crate::Result;
use crate::areas::{AreaCode, AreaRegistry};
use crate::ids::Pseudonymizer;
use crate::indicators::Dimension;
use crate::plan::{Allocation, PlanLine, Subjects};
use crate::programs::rule::Facts;
use crate::programs::{BenefitKind, Catalogue};
use crate::score::Unit;

/// One area's line of the provincial report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AreaLine {
    /// `country`, `province` or `amphoe`.
    pub level: &'static str,
    /// Area code (`TH` for the country).
    pub code: String,
    /// Thai name.
    pub name_th: String,
    /// English name.
    pub name_en: String,
    /// Households of the plan's population.
    pub households: u64,
    /// People in them.
    pub people: u64,
    /// Households deprived in each dimension (TPMAP order).
    pub deprived_households: [u64; 5],
    /// Deprivations (household × indicator) in each dimension.
    pub deprivations: [u64; 5],
    /// Of those, covered by the plan.
    pub covered: [u64; 5],
    /// Programs with at least one place here.
    pub programs: u64,
    /// Agencies with at least one place here.
    pub agencies: u64,
    /// Places given here.
    pub places: u64,
    /// Budget used here (baht).
    pub spent: u64,
}

impl AreaLine {
    /// All deprivations.
    pub fn deprivations_total(&self) -> u64 {
        self.deprivations.iter().sum()
    }
    /// All covered deprivations.
    pub fn covered_total(&self) -> u64 {
        self.covered.iter().sum()
    }
}

/// The provincial report: the country, then every province and amphoe with households in the
/// plan's population, by code.
pub fn provincial_report(
    subjects: &Subjects,
    catalogue: &Catalogue,
    allocation: &Allocation,
    lines: &[PlanLine],
) -> Vec<AreaLine> {
    let (s, c, a) = (subjects, catalogue, allocation);
    let x = s.x;
    let reg = AreaRegistry::embedded();
    // Per area: its line, the programs and the agencies with places there.
    type Acc = (AreaLine, HashSet<u32>, HashSet<usize>);
    let mut areas: BTreeMap<String, Acc> = BTreeMap::new();
    let keys = |h: usize| -> [String; 3] {
        let v = x.households.village[h].as_str();
        ["TH".to_string(), v[..2].to_string(), v[..4].to_string()]
    };
    let mut entry = |k: &str, f: &mut dyn FnMut(&mut Acc)| {
        if let Some(e) = areas.get_mut(k) {
            f(e);
        } else {
            let level = match k.len() {
                2 if k == "TH" => "country",
                2 => "province",
                _ => "amphoe",
            };
            let (th, en) = if level == "country" {
                ("ประเทศไทย".to_string(), "Thailand".to_string())
            } else {
                AreaCode::parse(k)
                    .ok()
                    .and_then(|code| reg.names(&code))
                    .map(|n| (n.th.clone(), n.en.clone()))
                    .unwrap_or_default()
            };
            let mut e = (
                AreaLine { level, code: k.to_string(), name_th: th, name_en: en, ..Default::default() },
                HashSet::new(),
                HashSet::new(),
            );
            f(&mut e);
            areas.insert(k.to_string(), e);
        }
    };
    let dim_of: Vec<Option<usize>> =
        (0..x.edition.len()).map(|i| x.edition.indicator(i).dimension.map(|d| d.index())).collect();
    for &h in &a.population_rows {
        let hu = h as usize;
        let need = s.needs(hu);
        for k in keys(hu) {
            entry(&k, &mut |e| {
                e.0.households += 1;
                e.0.people += x.households.members[hu] as u64;
                for d in Dimension::ALL {
                    if need & s.dimension_mask(d) != 0 {
                        e.0.deprived_households[d.index()] += 1;
                    }
                }
            });
        }
    }
    for l in lines {
        let Some(d) = dim_of[l.indicator] else { continue };
        for k in keys(l.household as usize) {
            entry(&k, &mut |e| {
                e.0.deprivations[d] += 1;
                e.0.covered[d] += l.covered as u64;
            });
        }
    }
    for g in &a.assignments {
        let p = &c.programs[g.program as usize];
        for k in keys(g.household as usize) {
            entry(&k, &mut |e| {
                e.0.places += 1;
                e.0.spent = e.0.spent.saturating_add(p.unit_cost);
                e.1.insert(g.program);
                e.2.insert(p.agency);
            });
        }
    }
    let mut v: Vec<AreaLine> = areas
        .into_values()
        .map(|(mut l, progs, agencies)| {
            l.programs = progs.len() as u64;
            l.agencies = agencies.len() as u64;
            l
        })
        .collect();
    // Country first, then each province followed by its amphoe ("10" < "1001" < "11").
    v.sort_by(|a, b| (a.level != "country", &a.code).cmp(&(b.level != "country", &b.code)));
    v
}

/// The report lines of one level as a frame. With `suppress = Some(n)`, every count from 1 to
/// n−1 (and any coverage rate computed over fewer than n deprivations) is written as `"<n"`,
/// and counts become text columns: the form for publication.
pub fn report_frame(lines: &[AreaLine], level: &str, suppress: Option<u64>) -> Result<DataFrame> {
    let rows: Vec<&AreaLine> = lines.iter().filter(|l| l.level == level).collect();
    let mut cols = vec![
        Column::new("area_code".into(), rows.iter().map(|l| l.code.as_str()).collect::<Vec<_>>()),
        Column::new("name_th".into(), rows.iter().map(|l| l.name_th.as_str()).collect::<Vec<_>>()),
        Column::new("name_en".into(), rows.iter().map(|l| l.name_en.as_str()).collect::<Vec<_>>()),
    ];
    let count = |name: String, v: Vec<u64>| -> Column {
        match suppress {
            Some(n) => Column::new(
                name.into(),
                v.iter().map(|&x| if x > 0 && x < n { format!("<{n}") } else { x.to_string() }).collect::<Vec<_>>(),
            ),
            None => Column::new(name.into(), v),
        }
    };
    // Covered out of a total, the rest (gaps) and the rate. For publication, a covered or gap
    // count from 1 to n-1 shows as "<n"; the other of the two then shows as "s" (it would
    // reveal the small one by subtraction), and so does the rate.
    let split = |total: &[u64], part: &[u64], names: [String; 3], with_rest: bool| -> Vec<Column> {
        let rate: Vec<Option<f64>> = part
            .iter()
            .zip(total)
            .map(|(&a, &b)| (b > 0).then(|| (1000.0 * a as f64 / b as f64).round() / 10.0))
            .collect();
        let [pn, rn, restn] = names;
        let Some(n) = suppress else {
            let mut v = vec![Column::new(pn.into(), part.to_vec())];
            if with_rest {
                v.push(Column::new(restn.into(), total.iter().zip(part).map(|(t, p)| t - p).collect::<Vec<u64>>()));
            }
            v.push(Column::new(rn.into(), rate));
            return v;
        };
        let small = |v: u64| v > 0 && v < n;
        let (mut pc, mut rc, mut xc) = (Vec::new(), Vec::new(), Vec::new());
        for ((&t, &p), r) in total.iter().zip(part).zip(&rate) {
            let rest = t - p;
            let (ps, xs) = (small(p), small(rest));
            pc.push(if ps {
                format!("<{n}")
            } else if xs {
                "s".into()
            } else {
                p.to_string()
            });
            xc.push(if xs {
                format!("<{n}")
            } else if ps {
                "s".into()
            } else {
                rest.to_string()
            });
            rc.push(match r {
                None => String::new(),
                Some(_) if small(t) => format!("<{n}"),
                Some(_) if ps || xs => "s".into(),
                Some(x) => format!("{x:.1}"),
            });
        }
        let mut v = vec![Column::new(pn.into(), pc)];
        if with_rest {
            v.push(Column::new(restn.into(), xc));
        }
        v.push(Column::new(rn.into(), rc));
        v
    };
    cols.push(count("target_households".into(), rows.iter().map(|l| l.households).collect()));
    cols.push(count("target_people".into(), rows.iter().map(|l| l.people).collect()));
    for d in Dimension::ALL {
        cols.push(count(
            format!("deprived_households_{}", d.name()),
            rows.iter().map(|l| l.deprived_households[d.index()]).collect(),
        ));
    }
    for d in Dimension::ALL {
        let i = d.index();
        let total: Vec<u64> = rows.iter().map(|l| l.deprivations[i]).collect();
        let part: Vec<u64> = rows.iter().map(|l| l.covered[i]).collect();
        cols.push(count(format!("deprivations_{}", d.name()), total.clone()));
        let names = [format!("covered_{}", d.name()), format!("coverage_pct_{}", d.name()), String::new()];
        cols.extend(split(&total, &part, names, false));
    }
    let total: Vec<u64> = rows.iter().map(|l| l.deprivations_total()).collect();
    let part: Vec<u64> = rows.iter().map(|l| l.covered_total()).collect();
    cols.push(count("deprivations".into(), total.clone()));
    cols.extend(split(&total, &part, ["covered".into(), "coverage_pct".into(), "gaps".into()], true));
    cols.push(Column::new("programs".into(), rows.iter().map(|l| l.programs).collect::<Vec<_>>()));
    cols.push(Column::new("agencies".into(), rows.iter().map(|l| l.agencies).collect::<Vec<_>>()));
    cols.push(count("places".into(), rows.iter().map(|l| l.places).collect()));
    // The budget of an area with few places would reveal their number: suppressed with them.
    cols.push(match suppress {
        Some(n) => Column::new(
            "budget_baht".into(),
            rows.iter()
                .map(|l| if l.places > 0 && l.places < n { format!("<{n} places") } else { l.spent.to_string() })
                .collect::<Vec<_>>(),
        ),
        None => Column::new("budget_baht".into(), rows.iter().map(|l| l.spent).collect::<Vec<_>>()),
    });
    Ok(DataFrame::new_infer_height(cols)?)
}

/// The household assistance plan as a frame: one row per deprived indicator of each household,
/// with the programs and agencies assigned, or the gap and its reasons. Households are keyed by
/// pseudonym unless `reveal_ids`.
pub fn household_plan_frame(
    subjects: &Subjects,
    catalogue: &Catalogue,
    lines: &[PlanLine],
    pseudonyms: &Pseudonymizer,
    reveal_ids: bool,
) -> Result<DataFrame> {
    let (s, c, ps) = (subjects, catalogue, pseudonyms);
    let x = s.x;
    let e = &x.edition;
    let mut cols = Vec::new();
    let hh: Vec<usize> = lines.iter().map(|l| l.household as usize).collect();
    if reveal_ids {
        cols.push(Column::new("household_id".into(), hh.iter().map(|&h| x.households.id[h].0).collect::<Vec<u64>>()));
    }
    let refs = household_refs(s, ps, &hh);
    cols.push(Column::new("household_ref".into(), refs));
    cols.push(Column::new(
        "village_code".into(),
        hh.iter().map(|&h| x.households.village[h].as_str()).collect::<Vec<_>>(),
    ));
    cols.push(Column::new("house_no".into(), hh.iter().map(|&h| x.households.house_no.get(h)).collect::<Vec<_>>()));
    cols.push(Column::new(
        "indicator".into(),
        lines.iter().map(|l| e.indicator(l.indicator).label()).collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "dimension".into(),
        lines.iter().map(|l| e.indicator(l.indicator).dimension.map(|d| d.name()).unwrap_or("")).collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "indicator_th".into(),
        lines.iter().map(|l| e.indicator(l.indicator).name_th.as_str()).collect::<Vec<_>>(),
    ));
    cols.push(Column::new("covered".into(), lines.iter().map(|l| l.covered).collect::<Vec<_>>()));
    cols.push(Column::new(
        "programs".into(),
        lines.iter().map(|l| join(l.programs.iter().map(|&p| c.programs[p as usize].id.as_str()))).collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "agencies".into(),
        lines
            .iter()
            .map(|l| {
                let mut a: Vec<&str> =
                    l.programs.iter().map(|&p| c.agencies[c.programs[p as usize].agency].id.as_str()).collect();
                a.dedup();
                join(a.into_iter())
            })
            .collect::<Vec<_>>(),
    ));
    cols.push(Column::new("gap".into(), lines.iter().map(|l| l.gap.as_str()).collect::<Vec<_>>()));
    Ok(DataFrame::new_infer_height(cols)?)
}

fn join<'a>(it: impl Iterator<Item = &'a str>) -> String {
    it.collect::<Vec<_>>().join(";")
}

fn household_refs(s: &Subjects, ps: &Pseudonymizer, rows: &[usize]) -> Vec<String> {
    use rayon::prelude::*;
    crate::in_pool(|| {
        rows.par_iter()
            .map(|&h| {
                let full = ps.pseudonym_bytes(s.x.households.id[h].0.to_string().as_bytes()).to_hex();
                full[..REFERENCE_HEX_DIGITS].to_string()
            })
            .collect()
    })
}

/// Per-agency work lists: for each agency with places, one frame of its assignments in program
/// then rank order, with only what the agency needs to act — program, area and house number,
/// the deprivations addressed, the benefit — and pseudonymised household and person references.
/// `reveal_ids` adds household IDs, and for person programs the citizen ID and name.
pub fn worklists(
    subjects: &Subjects,
    catalogue: &Catalogue,
    allocation: &Allocation,
    pseudonyms: &Pseudonymizer,
    reveal_ids: bool,
) -> Result<Vec<(String, DataFrame)>> {
    let mut out = Vec::new();
    worklists_each(subjects, catalogue, allocation, pseudonyms, reveal_ids, &mut |agency, df| {
        out.push((agency, df));
        Ok(())
    })?;
    Ok(out)
}

/// [`worklists`] one agency at a time: `each(agency id, its frame)`, in agency order, each
/// frame made after the last is handed over (a plan's files write each as it is made, not all
/// of them at once).
pub fn worklists_each(
    subjects: &Subjects,
    catalogue: &Catalogue,
    allocation: &Allocation,
    pseudonyms: &Pseudonymizer,
    reveal_ids: bool,
    each: &mut dyn FnMut(String, DataFrame) -> Result<()>,
) -> Result<()> {
    let (s, c, a, ps) = (subjects, catalogue, allocation, pseudonyms);
    let x = s.x;
    let e = &x.edition;
    let reg = AreaRegistry::embedded();
    let mut by_agency: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, g) in a.assignments.iter().enumerate() {
        by_agency.entry(c.programs[g.program as usize].agency).or_default().push(i);
    }
    for (ag, idx) in by_agency {
        let gs: Vec<&crate::plan::Assignment> = idx.iter().map(|&i| &a.assignments[i]).collect();
        let hh: Vec<usize> = gs.iter().map(|g| g.household as usize).collect();
        let prog = |g: &crate::plan::Assignment| &c.programs[g.program as usize];
        let name = |code: &AreaCode| reg.names(code).map(|n| n.th.as_str()).unwrap_or("");
        let mut cols = vec![
            Column::new("program".into(), gs.iter().map(|g| prog(g).id.as_str()).collect::<Vec<_>>()),
            Column::new("program_th".into(), gs.iter().map(|g| prog(g).name_th.as_str()).collect::<Vec<_>>()),
            Column::new("department".into(), gs.iter().map(|g| prog(g).department.as_str()).collect::<Vec<_>>()),
            Column::new("rank".into(), gs.iter().map(|g| g.rank).collect::<Vec<_>>()),
        ];
        if reveal_ids {
            cols.push(Column::new(
                "household_id".into(),
                hh.iter().map(|&h| x.households.id[h].0).collect::<Vec<u64>>(),
            ));
        }
        cols.push(Column::new("household_ref".into(), household_refs(s, ps, &hh)));
        cols.push(Column::new(
            "person_ref".into(),
            gs.iter()
                .map(|g| {
                    g.person.map(|p| match x.persons.citizen_id[p as usize] {
                        Some(id) => ps.pseudonym(&id).to_hex()[..REFERENCE_HEX_DIGITS].to_string(),
                        None => String::new(),
                    })
                })
                .collect::<Vec<Option<String>>>(),
        ));
        if reveal_ids {
            let person = |g: &crate::plan::Assignment, f: &dyn Fn(usize) -> String| g.person.map(|p| f(p as usize));
            cols.push(Column::new(
                "citizen_id".into(),
                gs.iter()
                    .map(|g| {
                        person(g, &|p| x.persons.citizen_id[p].map(|id| id.expose().to_string()).unwrap_or_default())
                    })
                    .collect::<Vec<_>>(),
            ));
            cols.push(Column::new(
                "name".into(),
                gs.iter()
                    .map(|g| {
                        person(g, &|p| {
                            format!(
                                "{}{} {}",
                                x.persons.title.get(p),
                                x.persons.first_name.get(p),
                                x.persons.last_name.get(p)
                            )
                        })
                    })
                    .collect::<Vec<_>>(),
            ));
        }
        let v = |h: usize| &x.households.village[h];
        let at =
            |h: usize, lvl: crate::areas::AreaLevel| v(h).at(lvl).map(|c| name(&c).to_string()).unwrap_or_default();
        use crate::areas::AreaLevel as L;
        cols.push(Column::new("province".into(), hh.iter().map(|&h| at(h, L::Province)).collect::<Vec<_>>()));
        cols.push(Column::new("amphoe".into(), hh.iter().map(|&h| at(h, L::Amphoe)).collect::<Vec<_>>()));
        cols.push(Column::new("tambon".into(), hh.iter().map(|&h| at(h, L::Tambon)).collect::<Vec<_>>()));
        cols.push(Column::new("village_code".into(), hh.iter().map(|&h| v(h).as_str()).collect::<Vec<_>>()));
        cols.push(Column::new("house_no".into(), hh.iter().map(|&h| x.households.house_no.get(h)).collect::<Vec<_>>()));
        cols.push(Column::new(
            "addresses".into(),
            gs.iter()
                .map(|g| join_owned((0..64).filter(|i| g.covers & (1u64 << i) != 0).map(|i| e.indicator(i).label())))
                .collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            "benefit".into(),
            gs.iter()
                .map(|g| match prog(g).benefit.kind {
                    BenefitKind::Cash => "cash",
                    BenefitKind::InKind => "in_kind",
                    BenefitKind::Training => "training",
                    BenefitKind::Service => "service",
                })
                .collect::<Vec<_>>(),
        ));
        cols.push(Column::new("amount_baht".into(), gs.iter().map(|g| prog(g).benefit.amount).collect::<Vec<_>>()));
        cols.push(Column::new(
            "unit".into(),
            gs.iter().map(|g| if prog(g).unit == Unit::People { "person" } else { "household" }).collect::<Vec<_>>(),
        ));
        each(c.agencies[ag].id.clone(), DataFrame::new_infer_height(cols)?)?;
    }
    Ok(())
}

fn join_owned(it: impl Iterator<Item = String>) -> String {
    it.collect::<Vec<_>>().join(";")
}

/// Per-program outcomes as a frame.
pub fn programs_frame(catalogue: &Catalogue, allocation: &Allocation) -> Result<DataFrame> {
    let (c, a) = (catalogue, allocation);
    let ps = &a.programs;
    let d = |k: &str| ps.iter().map(|p| p.declined.get(k).copied().unwrap_or(0)).collect::<Vec<u64>>();
    Ok(DataFrame::new_infer_height(vec![
        Column::new("program".into(), ps.iter().map(|p| p.id.as_str()).collect::<Vec<_>>()),
        Column::new("agency".into(), c.programs.iter().map(|p| c.agencies[p.agency].id.as_str()).collect::<Vec<_>>()),
        Column::new(
            "unit".into(),
            c.programs.iter().map(|p| if p.unit == Unit::People { "person" } else { "household" }).collect::<Vec<_>>(),
        ),
        Column::new("active".into(), ps.iter().map(|p| p.active).collect::<Vec<_>>()),
        Column::new("candidates".into(), ps.iter().map(|p| p.candidates).collect::<Vec<_>>()),
        Column::new("eligible".into(), ps.iter().map(|p| p.eligible).collect::<Vec<_>>()),
        Column::new("ineligible".into(), ps.iter().map(|p| p.ineligible).collect::<Vec<_>>()),
        Column::new("unknown".into(), ps.iter().map(|p| p.unknown).collect::<Vec<_>>()),
        Column::new("selected".into(), ps.iter().map(|p| p.selected).collect::<Vec<_>>()),
        Column::new("households".into(), ps.iter().map(|p| p.households).collect::<Vec<_>>()),
        Column::new("declined_capacity".into(), d("capacity")),
        Column::new("declined_province_quota".into(), d("province_quota")),
        Column::new("declined_amphoe_quota".into(), d("amphoe_quota")),
        Column::new("declined_budget".into(), d("budget")),
        Column::new("declined_excluded".into(), d("excluded")),
        Column::new("declined_already_receives".into(), d("already_receives")),
        Column::new(
            "capacity".into(),
            c.programs.iter().map(|p| p.capacity.total.map(|t| t as u64)).collect::<Vec<_>>(),
        ),
        Column::new("budget_baht".into(), c.programs.iter().map(|p| p.budget).collect::<Vec<_>>()),
        Column::new("spent_baht".into(), ps.iter().map(|p| p.spent).collect::<Vec<_>>()),
    ])?)
}

/// Who enters and who leaves between two plans over the same extract (two catalogues, two
/// cutoffs, two welfare conditions), and what it costs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WhatIf {
    /// Households in the population of A / of B.
    pub population: [u64; 2],
    /// Households in B's population and not in A's.
    pub population_entered: u64,
    /// Households in A's population and not in B's.
    pub population_left: u64,
    /// Households given at least one place in A / in B.
    pub helped: [u64; 2],
    /// Helped in B, not in A (household rows of the extract; `whatif.json` gives their number,
    /// `households.csv` who they are).
    #[serde(serialize_with = "count")]
    pub entered: Vec<u32>,
    /// Helped in A, not in B (as [`Self::entered`]).
    #[serde(serialize_with = "count")]
    pub left: Vec<u32>,
    /// Places given in A / B.
    pub places: [u64; 2],
    /// Budget used in A / B (baht).
    pub spent: [u64; 2],
    /// Deprivations covered in A / B.
    pub covered: [u64; 2],
    /// Deprivations of the population in A / B.
    pub deprivations: [u64; 2],
    /// Per program id: places in A and B (absent programs count 0).
    pub by_program: BTreeMap<String, [u64; 2]>,
}

/// Household rows are positions in one process's extract, not something to publish: their
/// number is.
fn count<S: serde::Serializer>(rows: &[u32], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(rows.len() as u64)
}

/// Compares plan A with plan B. Both must be over the same extract (same household rows).
pub fn what_if(
    plan_a: (&Catalogue, &Allocation, &[PlanLine]),
    plan_b: (&Catalogue, &Allocation, &[PlanLine]),
) -> Result<WhatIf> {
    let (a, b) = (plan_a, plan_b);
    let helped = |al: &Allocation| -> HashSet<u32> { al.assignments.iter().map(|g| g.household).collect() };
    let (ha, hb) = (helped(a.1), helped(b.1));
    let (pa, pb): (HashSet<u32>, HashSet<u32>) =
        (a.1.population_rows.iter().copied().collect(), b.1.population_rows.iter().copied().collect());
    let mut entered: Vec<u32> = hb.difference(&ha).copied().collect();
    let mut left: Vec<u32> = ha.difference(&hb).copied().collect();
    entered.sort_unstable();
    left.sort_unstable();
    let mut by_program: BTreeMap<String, [u64; 2]> = BTreeMap::new();
    for (k, (c, al)) in [(a.0, a.1), (b.0, b.1)].into_iter().enumerate() {
        for (p, o) in c.programs.iter().zip(&al.programs) {
            by_program.entry(p.id.clone()).or_default()[k] = o.selected;
        }
    }
    let covered = |l: &[PlanLine]| l.iter().filter(|x| x.covered).count() as u64;
    Ok(WhatIf {
        population: [pa.len() as u64, pb.len() as u64],
        population_entered: pb.difference(&pa).count() as u64,
        population_left: pa.difference(&pb).count() as u64,
        helped: [ha.len() as u64, hb.len() as u64],
        entered,
        left,
        places: [a.1.assignments.len() as u64, b.1.assignments.len() as u64],
        spent: [a.1.spent(), b.1.spent()],
        covered: [covered(a.2), covered(b.2)],
        deprivations: [a.2.len() as u64, b.2.len() as u64],
        by_program,
    })
}

/// Summary numbers of a plan, for the terminal and `plan.json`.
#[derive(Clone, Debug, Serialize)]
pub struct PlanSummary {
    /// Catalogue id and version.
    pub catalogue: String,
    /// Marked illustrative.
    pub illustrative: bool,
    /// Households of the population.
    pub households: u64,
    /// Their deprivations.
    pub deprivations: u64,
    /// Covered by the plan.
    pub covered: u64,
    /// Deprivations no program addresses.
    pub no_program: u64,
    /// Places given.
    pub places: u64,
    /// Budget used (baht).
    pub spent: u64,
    /// Programs running on the plan date.
    pub active_programs: u64,
    /// Coverage by dimension: (deprivations, covered).
    pub by_dimension: BTreeMap<&'static str, [u64; 2]>,
    /// Places by agency id.
    pub places_by_agency: BTreeMap<String, u64>,
}

/// Summarises a plan.
pub fn plan_summary(
    subjects: &Subjects,
    catalogue: &Catalogue,
    allocation: &Allocation,
    lines: &[PlanLine],
) -> PlanSummary {
    let (s, c, a) = (subjects, catalogue, allocation);
    let e = &s.x.edition;
    let mut by_dimension: BTreeMap<&'static str, [u64; 2]> = BTreeMap::new();
    for l in lines {
        if let Some(d) = e.indicator(l.indicator).dimension {
            let v = by_dimension.entry(d.name()).or_default();
            v[0] += 1;
            v[1] += l.covered as u64;
        }
    }
    let mut places_by_agency: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_program: HashMap<u32, u64> = HashMap::new();
    for g in &a.assignments {
        *per_program.entry(g.program).or_default() += 1;
    }
    for (p, n) in per_program {
        *places_by_agency.entry(c.agencies[c.programs[p as usize].agency].id.clone()).or_default() += n;
    }
    PlanSummary {
        catalogue: format!("{} v{}", c.id, c.version),
        illustrative: c.illustrative,
        households: a.population_rows.len() as u64,
        deprivations: lines.len() as u64,
        covered: lines.iter().filter(|l| l.covered).count() as u64,
        no_program: lines.iter().filter(|l| l.gap == "no program covers this").count() as u64,
        places: a.assignments.len() as u64,
        spent: a.spent(),
        active_programs: a.programs.iter().filter(|p| p.active).count() as u64,
        by_dimension,
        places_by_agency,
    }
}

/// How [`write_plan`] writes.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Counts below this are suppressed in the publication files (`provinces.csv`,
    /// `amphoes.csv`, `report.xlsx`); 0 or 1 suppresses nothing.
    pub suppress: u64,
    /// Put household IDs (and citizen IDs and names in person work lists) in the outputs.
    pub reveal_ids: bool,
    /// A warning every file with pseudonyms repeats in its preamble (the key is the public
    /// default: [`crate::ids::PseudonymKey::warning`]).
    pub key_warning: Option<&'static str>,
}

/// Hex digits of a pseudonym kept as a household or person reference in work lists and plans: 64 bits,
/// so two of the country's 13 M households share one with a chance of about 1 in 200,000 million.
pub const REFERENCE_HEX_DIGITS: usize = 16;

/// Counts below this are suppressed in publication files by default (1 to 4 shown as `<5`).
pub const DEFAULT_SUPPRESS: u64 = 5;

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { suppress: DEFAULT_SUPPRESS, reveal_ids: false, key_warning: None }
    }
}

/// Writes every output of a plan into `dir` (created if missing):
///
/// - `household_plan.parquet` / `.csv`: one row per deprived indicator of each household of the
///   population, with programs and agencies, or the gap and why;
/// - `programs.csv`: per program, candidates, eligible, unknown, selected, declined by reason,
///   places and budget;
/// - `declined.csv`: every eligible unit left without a place, with its rank and reason;
/// - `worklists/<agency>.csv`: each agency's places, pseudonymised;
/// - `provinces.csv`, `amphoes.csv`, `report.xlsx`: the provincial report, small cells
///   suppressed; `areas_unsuppressed.parquet` for internal use;
/// - `plan.json`: the summary.
pub fn write_plan(
    dir: &std::path::Path,
    subjects: &Subjects,
    catalogue: &Catalogue,
    allocation: &Allocation,
    lines: &[PlanLine],
    pseudonyms: &Pseudonymizer,
    options: &WriteOptions,
) -> Result<PlanSummary> {
    let (s, c, a, ps, w) = (subjects, catalogue, allocation, pseudonyms, options);
    use crate::frame::{write_csv, write_parquet};
    use crate::ingest::Encoding;
    let mk = |d: &std::path::Path| std::fs::create_dir_all(d).map_err(|e| crate::Error::io(d, e));
    mk(dir)?;
    let mut preamble = vec![format!("tpmap plan, catalogue {} v{} ({})", c.id, c.version, c.title)];
    if c.illustrative {
        preamble.push("ILLUSTRATIVE catalogue: invented programs, not real ones.".into());
    }
    if let Some(warning) = w.key_warning {
        preamble.push(warning.into());
    }
    let mut hp = household_plan_frame(s, c, lines, ps, w.reveal_ids)?;
    write_parquet(&mut hp, &dir.join("household_plan.parquet"), &[])?;
    write_csv(&mut hp, &dir.join("household_plan.csv"), &preamble, Encoding::Utf8)?;
    drop(hp);
    write_csv(&mut programs_frame(c, a)?, &dir.join("programs.csv"), &preamble, Encoding::Utf8)?;
    let mut dec = declined_frame(s, c, a, ps, w.reveal_ids)?;
    write_csv(&mut dec, &dir.join("declined.csv"), &preamble, Encoding::Utf8)?;
    drop(dec);
    let wl = dir.join("worklists");
    mk(&wl)?;
    worklists_each(s, c, a, ps, w.reveal_ids, &mut |agency, mut df| {
        write_csv(&mut df, &wl.join(format!("{agency}.csv")), &preamble, Encoding::Utf8)
    })?;
    let areas = provincial_report(s, c, a, lines);
    let sup = (w.suppress > 1).then_some(w.suppress);
    let mut pub_pre = preamble.clone();
    if let Some(n) = sup {
        pub_pre.push(format!(
            "Counts from 1 to {} are suppressed (shown as <{n}); a count or rate that would reveal one by subtraction shows as s.",
            n - 1
        ));
    }
    let mut prov = report_frame(&areas, "province", sup)?;
    let mut amph = report_frame(&areas, "amphoe", sup)?;
    let country = report_frame(&areas, "country", sup)?;
    write_csv(&mut prov, &dir.join("provinces.csv"), &pub_pre, Encoding::Utf8)?;
    write_csv(&mut amph, &dir.join("amphoes.csv"), &pub_pre, Encoding::Utf8)?;
    #[cfg(feature = "xlsx")]
    crate::frame::write_xlsx_sheets(
        &[("country", &country), ("provinces", &prov), ("amphoes", &amph)],
        &dir.join("report.xlsx"),
        &pub_pre,
    )?;
    #[cfg(not(feature = "xlsx"))]
    let _ = country;
    let mut full = DataFrame::new_infer_height(vec![Column::new(
        "level".into(),
        areas.iter().map(|l| l.level).collect::<Vec<_>>(),
    )])?
    .hstack(report_frame_all(&areas)?.columns())?;
    write_parquet(&mut full, &dir.join("areas_unsuppressed.parquet"), &[])?;
    let summary = plan_summary(s, c, a, lines);
    let path = dir.join("plan.json");
    let json = serde_json::json!({ "summary": &summary, "programs": &a.programs, "date": format!("{:04}-{:02}-{:02}", a.date.year, a.date.month, a.date.day), "population": a.population, "notes": preamble });
    std::fs::write(&path, serde_json::to_string_pretty(&json)?).map_err(|e| crate::Error::io(&path, e))?;
    Ok(summary)
}

fn report_frame_all(lines: &[AreaLine]) -> Result<DataFrame> {
    // All levels in one unsuppressed frame: reuse the per-level builder on a relabelled copy.
    let all: Vec<AreaLine> = lines
        .iter()
        .cloned()
        .map(|mut l| {
            l.level = "any";
            l
        })
        .collect();
    report_frame(&all, "any", None)
}

/// Eligible units left without a place, with rank and reason.
pub fn declined_frame(
    subjects: &Subjects,
    catalogue: &Catalogue,
    allocation: &Allocation,
    pseudonyms: &Pseudonymizer,
    reveal_ids: bool,
) -> Result<DataFrame> {
    let (s, c, a, ps) = (subjects, catalogue, allocation, pseudonyms);
    let x = s.x;
    let hh: Vec<usize> = a.declined.iter().map(|d| d.household as usize).collect();
    let mut cols = vec![
        Column::new(
            "program".into(),
            a.declined.iter().map(|d| c.programs[d.program as usize].id.as_str()).collect::<Vec<_>>(),
        ),
        Column::new("rank".into(), a.declined.iter().map(|d| d.rank).collect::<Vec<_>>()),
    ];
    if reveal_ids {
        cols.push(Column::new("household_id".into(), hh.iter().map(|&h| x.households.id[h].0).collect::<Vec<u64>>()));
    }
    cols.push(Column::new("household_ref".into(), household_refs(s, ps, &hh)));
    cols.push(Column::new(
        "village_code".into(),
        hh.iter().map(|&h| x.households.village[h].as_str()).collect::<Vec<_>>(),
    ));
    cols.push(Column::new("person".into(), a.declined.iter().map(|d| d.person.is_some()).collect::<Vec<_>>()));
    cols.push(Column::new("reason".into(), a.declined.iter().map(|d| d.reason.describe(c)).collect::<Vec<_>>()));
    Ok(DataFrame::new_infer_height(cols)?)
}

/// Writes a what-if comparison into `dir`: `whatif.json` (the numbers), `households.csv` (who
/// enters and who leaves, pseudonymised unless `reveal_ids`) and `programs.csv` (places per
/// program in A and B).
pub fn write_what_if(
    dir: &std::path::Path,
    subjects: &Subjects,
    what_if: &WhatIf,
    pseudonyms: &Pseudonymizer,
    options: &WriteOptions,
) -> Result<()> {
    let (s, w, ps) = (subjects, what_if, pseudonyms);
    let reveal_ids = options.reveal_ids;
    let preamble: Vec<String> = options.key_warning.iter().map(|w| w.to_string()).collect();
    use crate::frame::write_csv;
    use crate::ingest::Encoding;
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
    let path = dir.join("whatif.json");
    std::fs::write(&path, serde_json::to_string_pretty(w)?).map_err(|e| crate::Error::io(&path, e))?;
    let rows: Vec<usize> = w.entered.iter().chain(&w.left).map(|&h| h as usize).collect();
    let mut cols = vec![Column::new(
        "change".into(),
        w.entered.iter().map(|_| "enters").chain(w.left.iter().map(|_| "leaves")).collect::<Vec<_>>(),
    )];
    if reveal_ids {
        cols.push(Column::new(
            "household_id".into(),
            rows.iter().map(|&h| s.x.households.id[h].0).collect::<Vec<u64>>(),
        ));
    }
    cols.push(Column::new("household_ref".into(), household_refs(s, ps, &rows)));
    cols.push(Column::new(
        "village_code".into(),
        rows.iter().map(|&h| s.x.households.village[h].as_str()).collect::<Vec<_>>(),
    ));
    write_csv(&mut DataFrame::new_infer_height(cols)?, &dir.join("households.csv"), &preamble, Encoding::Utf8)?;
    let mut progs = DataFrame::new_infer_height(vec![
        Column::new("program".into(), w.by_program.keys().map(|k| k.as_str()).collect::<Vec<_>>()),
        Column::new("places_a".into(), w.by_program.values().map(|v| v[0]).collect::<Vec<_>>()),
        Column::new("places_b".into(), w.by_program.values().map(|v| v[1]).collect::<Vec<_>>()),
    ])?;
    write_csv(&mut progs, &dir.join("programs.csv"), &[], Encoding::Utf8)?;
    Ok(())
}

/// Plan figures for the HTML report.
#[derive(Clone, Debug, Serialize)]
pub struct PlanFigures {
    /// The plan's summary.
    pub summary: PlanSummary,
    /// Country, province and amphoe lines of the provincial report (unsuppressed).
    pub areas: Vec<AreaLine>,
    /// Per indicator: label, dimension, deprivations, covered, with no program addressing it.
    pub indicators: Vec<(String, String, u64, u64, u64)>,
    /// Per agency: Thai name, English name, places, programs.
    pub agencies: Vec<(String, String, u64, u64)>,
}

/// Coverage by indicator and places by agency, for the report.
pub fn plan_figures(
    subjects: &Subjects,
    catalogue: &Catalogue,
    allocation: &Allocation,
    lines: &[PlanLine],
    summary: PlanSummary,
) -> PlanFigures {
    let (s, c, a) = (subjects, catalogue, allocation);
    let e = &s.x.edition;
    let mut per = vec![(0u64, 0u64, 0u64); e.len()];
    // The indicators some program addresses, once (not a scan of the catalogue a line).
    let addressed = c.programs.iter().fold(0u64, |m, p| m | p.addresses);
    for l in lines {
        let v = &mut per[l.indicator];
        v.0 += 1;
        v.1 += l.covered as u64;
        v.2 += (!l.covered && addressed & (1 << l.indicator) == 0) as u64;
    }
    let indicators = per
        .iter()
        .enumerate()
        .filter(|(_, v)| v.0 > 0)
        .map(|(i, v)| {
            let ind = e.indicator(i);
            (ind.label(), ind.dimension.map(|d| d.name().to_string()).unwrap_or_default(), v.0, v.1, v.2)
        })
        .collect();
    // Places and programs per agency, in one pass each (each agency's programs were searched for
    // every place: places times programs for a large catalogue).
    let mut by_agency = vec![(0u64, 0u64); c.agencies.len()];
    for p in &c.programs {
        if let Some(v) = by_agency.get_mut(p.agency) {
            v.1 += 1;
        }
    }
    for g in &a.assignments {
        if let Some(v) = c.programs.get(g.program as usize).and_then(|p| by_agency.get_mut(p.agency)) {
            v.0 += 1;
        }
    }
    let mut agencies: Vec<(String, String, u64, u64)> = c
        .agencies
        .iter()
        .zip(&by_agency)
        .map(|(ag, &(places, programs))| (ag.name_th.clone(), ag.name_en.clone(), places, programs))
        .collect();
    agencies.sort_by(|x, y| y.2.cmp(&x.2).then_with(|| x.1.cmp(&y.1)));
    let areas = provincial_report(s, c, a, lines);
    PlanFigures { summary, areas, indicators, agencies }
}
