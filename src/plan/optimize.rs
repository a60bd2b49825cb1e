//! The exact optimiser: the allocation that maximises weighted deprivations covered under the
//! same rules as rank-and-fill (eligibility, capacity, province and amphoe quotas, budget,
//! exclusions, already-served households), as a mixed-integer program solved with `microlp`
//! (pure Rust branch and bound).
//!
//! The model, over the eligible units of the running programs:
//!
//! - `x[p,u] ∈ {0,1}`: unit `u` (a household, or a person) gets a place in program `p`;
//! - `y[h,i] ∈ [0,1]`: deprivation `i` of household `h` is covered, with objective weight
//!   `w_i` (the scoring rule's integer weight numerator); `y[h,i] ≤ Σ x` over the places that
//!   cover it. For a person-level indicator met only by person programs, every failing member
//!   must have such a place (`z[h,i] ≤ Σ_p x[p,m]` for each failing member `m`) — the same
//!   definition of "covered" as the household plan's;
//! - `Σ x[p,·] ≤ min(total, ⌊budget / unit cost⌋)`, per province and per amphoe quotas;
//! - `x[p,u] + x[q,v] ≤ 1` within a household for programs that cannot be combined.
//!
//! A tiny cost per place (less than one weight unit in all) makes the optimiser prefer fewer
//! places, and among equal covers, the units ranked first by need. The rank-and-fill result is
//! the warm start, so the optimiser never returns less than the greedy cover, and a time limit
//! returns the best found with `proven_optimal = false`.
//!
//! ```no_run
//! # use tpmap::plan::{allocate, PlanOptions, Subjects};
//! # use tpmap::score::{score, DimensionMask, Profiles, Spec, Unit, Welfare};
//! # let got = tpmap::ingest::ingest("data-samples/households.csv".as_ref(), "data-samples/persons.csv".as_ref(), &Default::default())?;
//! # let x = &got.extract;
//! # let spec = Spec::tpmap(&x.edition, DimensionMask::ALL)?;
//! # let profiles = Profiles::of_households(x, Unit::Households);
//! # let scores = score(&profiles, &spec)?;
//! # let subjects = Subjects::new(x, &spec, &profiles, &scores, Welfare::Validated)?;
//! let catalogue = tpmap::programs::Catalogue::load("data-samples/catalogue.toml", &x.edition)?;
//! let greedy = allocate(&subjects, &catalogue, &Vec::new(), &PlanOptions::default())?;
//! let opts = tpmap::plan::optimize::OptimizeOptions::default();
//! let best = tpmap::plan::optimize::optimize(&subjects, &catalogue, &Vec::new(), &PlanOptions::default(), &greedy, &opts)?;
//! println!("proven optimal: {}", best.proven_optimal);
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use microlp::{ComparisonOp, OptimizationDirection, Problem, SolveOptions, SolveOutcome, Variable};
use serde::Serialize;

use super::{
    Allocation, Assignment, Candidate, Decline, Declined, PlanLine, PlanOptions, ProgramOutcome, Served, Subjects,
    amphoe_of, decline_key, eligible_units, finish, prepare,
};
use crate::indicators::IndicatorStatus;
use crate::programs::Catalogue;
use crate::{Error, Result};

/// Options of the optimiser.
#[derive(Clone, Debug)]
pub struct OptimizeOptions {
    /// Stop after this long with the best allocation found (`None`: run to proven optimality).
    pub time_limit: Option<Duration>,
}

impl Default for OptimizeOptions {
    fn default() -> Self {
        OptimizeOptions { time_limit: Some(Duration::from_secs(60)) }
    }
}

/// The optimiser's result.
#[derive(Clone, Debug)]
pub struct Optimized {
    /// The allocation (eligible units left out are declined as [`Decline::NotChosen`] unless
    /// another reason applies).
    pub allocation: Allocation,
    /// Optimality was proven (not stopped by the time limit).
    pub proven_optimal: bool,
    /// Size of the model.
    pub variables: usize,
    /// Constraints of the model.
    pub constraints: usize,
    /// Wall time of building and solving.
    pub seconds: f64,
    /// Independent parts solved (1, or one per province when no program has a national cap).
    pub parts: usize,
    /// Parts proven optimal.
    pub parts_proven: usize,
    /// Parts where the time limit came before the solver had an allocation, so rank-and-fill's
    /// was kept.
    pub parts_fallback: usize,
}

/// Weighted deprivations covered by a plan (integer weights of the scoring rule).
pub fn covered_weight(s: &Subjects, lines: &[PlanLine]) -> u64 {
    lines.iter().filter(|l| l.covered).map(|l| s.bit_weight()[l.indicator]).sum()
}

/// Greedy against optimiser, for reports.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Weighted deprivations covered: greedy, optimiser.
    pub covered_weight: [u64; 2],
    /// Deprivations covered: greedy, optimiser.
    pub covered: [u64; 2],
    /// Places given.
    pub places: [u64; 2],
    /// Budget used (baht).
    pub spent: [u64; 2],
    /// The optimiser proved optimality.
    pub proven_optimal: bool,
    /// Seconds: greedy, optimiser.
    pub seconds: [f64; 2],
}

struct Unit1 {
    program: usize,
    household: u32,
    person: Option<u32>,
    rank: u32,
    /// Position among the program's eligible units and their number, for the rank cost.
    pos: (usize, usize),
}

/// One independent part of the model: all units, or one province's when no program has a
/// national cap (total places or budget).
struct Part {
    units: Vec<usize>,
}

struct Solved {
    chosen: Vec<(usize, bool)>,
    proven: bool,
    fallback: bool,
    variables: usize,
    constraints: usize,
}

/// Runs the optimiser. `greedy` (the rank-and-fill allocation for the same inputs) is the warm
/// start.
pub fn optimize(
    s: &Subjects,
    c: &Catalogue,
    served: &Served,
    opts: &PlanOptions,
    greedy: &Allocation,
    o: &OptimizeOptions,
) -> Result<Optimized> {
    let t0 = Instant::now();
    crate::in_pool(|| -> Result<Optimized> {
        let pre = prepare(s, c, opts)?;
        let words = c.programs.len().div_ceil(64).max(1);
        let mut receives: HashMap<u32, Vec<u64>> = HashMap::new();
        for &(h, p) in served {
            receives.entry(h).or_insert_with(|| vec![0; words])[p as usize / 64] |= 1 << (p % 64);
        }
        let recv = |h: u32, p: usize| receives.get(&h).is_some_and(|v| v[p / 64] & (1 << (p % 64)) != 0);
        let mut outcomes: Vec<ProgramOutcome> =
            c.programs.iter().map(|p| ProgramOutcome { id: p.id.clone(), ..Default::default() }).collect();
        let mut declined = Vec::new();
        // Eligible units per running program.
        let mut eligible: Vec<(usize, Vec<Candidate>)> = Vec::new();
        let mut total_units = 0usize;
        for (pi, prog) in c.programs.iter().enumerate() {
            let out = &mut outcomes[pi];
            out.active = prog.active_on(pre.date);
            if !out.active {
                continue;
            }
            let (el, [candidates, ineligible, unknown]) = eligible_units(s, c, pi, &pre);
            (out.candidates, out.ineligible, out.unknown, out.eligible) =
                (candidates, ineligible, unknown, el.len() as u64);
            total_units += el.len();
            eligible.push((pi, el));
        }
        let mut units: Vec<Unit1> = Vec::with_capacity(total_units);
        for (pi, el) in &eligible {
            let prog = &c.programs[*pi];
            for (r, cand) in el.iter().enumerate() {
                let rank = r as u32 + 1;
                let h = cand.household;
                if let Some(q) = std::iter::once(pi).chain(prog.excludes.iter()).find(|&&q| recv(h, q)) {
                    let reason = Decline::AlreadyReceives(*q as u32);
                    *outcomes[*pi].declined.entry(decline_key(&reason)).or_default() += 1;
                    declined.push(Declined { program: *pi as u32, household: h, person: cand.person, rank, reason });
                    continue;
                }
                units.push(Unit1 { program: *pi, household: h, person: cand.person, rank, pos: (r, el.len()) });
            }
        }
        // Without national caps the provinces are independent: solve them apart, in parallel.
        let national = eligible.iter().any(|(pi, _)| {
            let p = &c.programs[*pi];
            p.capacity.total.is_some() || p.affordable().is_some()
        });
        let parts: Vec<Part> = if national {
            vec![Part { units: (0..units.len()).collect() }]
        } else {
            let mut by: HashMap<usize, Vec<usize>> = HashMap::new();
            for (k, u) in units.iter().enumerate() {
                by.entry(amphoe_of(s, u.household as usize) / 100).or_default().push(k);
            }
            let mut v: Vec<(usize, Vec<usize>)> = by.into_iter().collect();
            v.sort_unstable_by_key(|(p, _)| *p);
            v.into_iter().map(|(_, units)| Part { units }).collect()
        };
        let given: std::collections::HashSet<(usize, u32, Option<u32>)> =
            greedy.assignments.iter().map(|g| (g.program as usize, g.household, g.person)).collect();
        let greedy_lines = super::household_plan(s, c, greedy);
        let covered: std::collections::HashSet<(u32, usize)> =
            greedy_lines.iter().filter(|l| l.covered).map(|l| (l.household, l.indicator)).collect();
        use rayon::prelude::*;
        let solved: Vec<Result<Solved>> = parts
            .par_iter()
            .map(|part| solve_part(s, c, &units, part, total_units, &given, &covered, o.time_limit))
            .collect();
        let mut chosen = vec![false; units.len()];
        let (mut proven, mut variables, mut constraints) = (true, 0, 0);
        let (parts_n, mut parts_proven, mut parts_fallback) = (solved.len(), 0, 0);
        for r in solved {
            let r = r?;
            proven &= r.proven;
            parts_proven += r.proven as usize;
            parts_fallback += r.fallback as usize;
            variables += r.variables;
            constraints += r.constraints;
            for (k, b) in r.chosen {
                chosen[k] = b;
            }
        }
        let mut assignments = Vec::new();
        for (k, u) in units.iter().enumerate() {
            if chosen[k] {
                let out = &mut outcomes[u.program];
                out.selected += 1;
                out.spent = out.spent.saturating_add(c.programs[u.program].unit_cost);
                assignments.push(Assignment {
                    program: u.program as u32,
                    household: u.household,
                    person: u.person,
                    rank: u.rank,
                    covers: s.needs(u.household as usize) & c.programs[u.program].addresses,
                });
            } else {
                *outcomes[u.program].declined.entry(decline_key(&Decline::NotChosen)).or_default() += 1;
                declined.push(Declined {
                    program: u.program as u32,
                    household: u.household,
                    person: u.person,
                    rank: u.rank,
                    reason: Decline::NotChosen,
                });
            }
        }
        assignments.sort_by_key(|a| (a.program, a.rank));
        declined.sort_by_key(|d| (d.program, d.rank));
        let order: Vec<usize> = (0..c.programs.len()).collect();
        let allocation = finish(pre, assignments, declined, outcomes, order)?;
        Ok(Optimized {
            allocation,
            proven_optimal: proven,
            variables,
            constraints,
            seconds: t0.elapsed().as_secs_f64(),
            parts: parts_n,
            parts_proven,
            parts_fallback,
        })
    })
}

/// Builds and solves the model of one part. `units` holds every unit; the part names its own.
#[allow(clippy::too_many_arguments)]
fn solve_part(
    s: &Subjects,
    c: &Catalogue,
    all: &[Unit1],
    part: &Part,
    total_units: usize,
    given: &std::collections::HashSet<(usize, u32, Option<u32>)>,
    covered: &std::collections::HashSet<(u32, usize)>,
    time_limit: Option<Duration>,
) -> Result<Solved> {
    let x = s.x;
    let mut lp = Problem::new(OptimizationDirection::Maximize);
    let eps = 0.5 / (total_units as f64 + 1.0);
    let mut constraints = 0usize;
    // Cost grows with rank: equal covers go to the neediest.
    let vars: Vec<Variable> = part
        .units
        .iter()
        .map(|&k| {
            let (r, n) = all[k].pos;
            lp.add_binary_var(-eps * (1.0 + r as f64 / (n as f64 + 1.0)) / 2.0)
        })
        .collect();
    let unit = |j: usize| &all[part.units[j]];
    // Capacity, budget and quotas.
    let mut by_program: HashMap<usize, Vec<usize>> = HashMap::new();
    for j in 0..vars.len() {
        by_program.entry(unit(j).program).or_default().push(j);
    }
    for (&pi, js) in &by_program {
        let prog = &c.programs[pi];
        let cap = [prog.capacity.total.map(|t| t as u64), prog.affordable()].into_iter().flatten().min();
        if let Some(cap) = cap
            && js.len() as u64 > cap
        {
            lp.add_constraint(js.iter().map(|&j| (vars[j], 1.0)).collect::<Vec<_>>(), ComparisonOp::Le, cap as f64);
            constraints += 1;
        }
        for (q, div) in [(prog.capacity.per_province, 100), (prog.capacity.per_amphoe, 1)] {
            let Some(q) = q else { continue };
            let mut groups: HashMap<usize, Vec<(Variable, f64)>> = HashMap::new();
            for &j in js {
                groups.entry(amphoe_of(s, unit(j).household as usize) / div).or_default().push((vars[j], 1.0));
            }
            for (_, g) in groups {
                if g.len() as u64 > q as u64 {
                    lp.add_constraint(g, ComparisonOp::Le, q as f64);
                    constraints += 1;
                }
            }
        }
    }
    // Per household: exclusions and coverage.
    let mut by_household: HashMap<u32, Vec<usize>> = HashMap::new();
    for j in 0..vars.len() {
        by_household.entry(unit(j).household).or_default().push(j);
    }
    let mut households: Vec<u32> = by_household.keys().copied().collect();
    households.sort_unstable();
    let weights = s.bit_weight();
    let mut warm: Vec<(Variable, f64)> = (0..vars.len())
        .map(|j| {
            let u = unit(j);
            (vars[j], given.contains(&(u.program, u.household, u.person)) as u8 as f64)
        })
        .collect();
    let mut variables = vars.len();
    for &h in &households {
        let js = &by_household[&h];
        for (a, &ja) in js.iter().enumerate() {
            for &jb in &js[a + 1..] {
                let (pa, pb) = (unit(ja).program, unit(jb).program);
                if pa != pb && c.programs[pa].excludes.contains(&pb) {
                    lp.add_constraint([(vars[ja], 1.0), (vars[jb], 1.0)], ComparisonOp::Le, 1.0);
                    constraints += 1;
                }
            }
        }
        let hu = h as usize;
        let need = s.needs(hu);
        for i in (0..64).filter(|i| need & (1u64 << i) != 0) {
            let covering: Vec<usize> =
                js.iter().copied().filter(|&j| c.programs[unit(j).program].addresses & (1 << i) != 0).collect();
            if covering.is_empty() || weights[i] == 0 {
                continue;
            }
            let y = lp.add_var(weights[i] as f64, (0.0, 1.0));
            variables += 1;
            warm.push((y, covered.contains(&(h, i)) as u8 as f64));
            let mut row: Vec<(Variable, f64)> = vec![(y, 1.0)];
            let person_level = s.person_level & (1 << i) != 0;
            let failing: Vec<usize> = if person_level {
                x.members(hu).filter(|&m| x.persons.statuses.get(m, i) == Some(IndicatorStatus::Fail)).collect()
            } else {
                Vec::new()
            };
            let person_units: Vec<usize> = covering.iter().copied().filter(|&j| unit(j).person.is_some()).collect();
            for &j in &covering {
                if unit(j).person.is_none() || !person_level || failing.is_empty() {
                    row.push((vars[j], -1.0));
                }
            }
            if person_level && !failing.is_empty() && !person_units.is_empty() {
                // z: every failing member has a place.
                let z = lp.add_var(0.0, (0.0, 1.0));
                variables += 1;
                let all_helped = failing.iter().all(|&m| {
                    person_units.iter().any(|&j| {
                        unit(j).person == Some(m as u32) && given.contains(&(unit(j).program, h, unit(j).person))
                    })
                });
                warm.push((z, all_helped as u8 as f64));
                row.push((z, -1.0));
                for m in failing {
                    let mut zr: Vec<(Variable, f64)> = vec![(z, 1.0)];
                    zr.extend(
                        person_units.iter().filter(|&&j| unit(j).person == Some(m as u32)).map(|&j| (vars[j], -1.0)),
                    );
                    lp.add_constraint(zr, ComparisonOp::Le, 0.0);
                    constraints += 1;
                }
            }
            lp.add_constraint(row, ComparisonOp::Le, 0.0);
            constraints += 1;
        }
    }
    // microlp's options are non-exhaustive: set the fields one by one.
    let mut options = SolveOptions::default();
    options.time_limit = time_limit;
    options.warm_start = Some(warm);
    let outcome = lp.solve_with(options).map_err(|e| Error::Config(format!("optimiser: {e}")))?;
    let (solution, proven) = match outcome {
        SolveOutcome::Solution(sol) => {
            let proven = sol.status() == microlp::SolutionStatus::Optimal;
            (sol, proven)
        }
        SolveOutcome::Interrupted(_) => {
            // Stopped before the solver had an allocation of its own: keep rank-and-fill's
            // (the warm start), which satisfies every constraint.
            let chosen = part
                .units
                .iter()
                .map(|&k| (k, given.contains(&(all[k].program, all[k].household, all[k].person))))
                .collect();
            return Ok(Solved { chosen, proven: false, fallback: true, variables, constraints });
        }
    };
    let chosen = part.units.iter().zip(&vars).map(|(&k, &v)| (k, solution.var_value(v) > 0.5)).collect();
    Ok(Solved { chosen, proven, fallback: false, variables, constraints })
}
