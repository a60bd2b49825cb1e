//! A first summary of a validated extract: sizes, provinces, welfare registration, and how many
//! households fail each indicator (a household fails when its own status fails or any member's
//! does). Scoring proper — TPMAP's rule and Alkire–Foster — is built on the same extract.
//!
//! ```no_run
//! let got = tpmap::ingest::ingest("data-samples/households.csv".as_ref(), "data-samples/persons.csv".as_ref(), &Default::default())?;
//! let s = tpmap::summary::Summary::of(&got.extract);
//! println!("{} households, {} persons, {} welfare-card validated", s.households, s.persons, s.welfare_validated);
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::areas::{AreaCode, AreaRegistry};
use crate::extract::Extract;

/// Counts for one indicator.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct IndicatorCount {
    /// BMN number.
    pub no: u16,
    /// TPMAP code or `bmn<no>`.
    pub label: String,
    /// Dimension name, if any.
    pub dimension: Option<String>,
    /// Households where the indicator was reported and applies.
    pub households_applicable: u64,
    /// Households failing it.
    pub households_failing: u64,
    /// Households where it is missing.
    pub households_missing: u64,
}

/// Counts for one province.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ProvinceCount {
    /// Province code.
    pub province: String,
    /// English name, where known.
    pub name: String,
    /// Accepted households in the province.
    pub households: u64,
    /// Accepted persons in the province.
    pub persons: u64,
}

/// What an accepted extract holds: households and persons, welfare-card counts, and the
/// households failing each indicator, per province and for the country.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    /// Accepted households.
    pub households: u64,
    /// Accepted persons.
    pub persons: u64,
    /// Persons registered for the welfare card.
    pub welfare_registered: u64,
    /// Persons whose registration was validated.
    pub welfare_validated: u64,
    /// Per province.
    pub provinces: Vec<ProvinceCount>,
    /// Per indicator of the edition (only those reported).
    pub indicators: Vec<IndicatorCount>,
}

impl Summary {
    /// Summarises an extract.
    pub fn of(x: &Extract) -> Summary {
        let e = &x.edition;
        let h = &x.households;
        let p = &x.persons;
        let n = e.len();
        // Households counted in parallel ranges (integer sums: the order of merging does not
        // matter); in each, only the set bits of a household's masks are visited. A sequential
        // loop over every indicator of every household took 2-3 s nationally (docs/bench/).
        let edition_bits = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
        let (app, fail, miss) = (0..h.len())
            .into_par_iter()
            .with_min_len(1 << 14)
            .fold(
                || (vec![0u64; n], vec![0u64; n], vec![0u64; n]),
                |(mut app, mut fail, mut miss), hh| {
                    // Household-level masks, then each member's.
                    let hs = &h.statuses;
                    let mut f = hs.fail[hh] & !hs.na[hh] & !hs.missing[hh];
                    let mut a = hs.present & !hs.na[hh] & !hs.missing[hh];
                    let mut m = hs.missing[hh];
                    let ps = &p.statuses;
                    for k in x.members(hh) {
                        f |= ps.fail[k] & !ps.na[k] & !ps.missing[k];
                        a |= ps.present & !ps.na[k] & !ps.missing[k];
                        m |= ps.missing[k];
                    }
                    for (counts, bits) in [(&mut fail, f), (&mut app, a | f), (&mut miss, m & !(a | f))] {
                        let mut bits = bits & edition_bits;
                        while bits != 0 {
                            counts[bits.trailing_zeros() as usize] += 1;
                            bits &= bits - 1;
                        }
                    }
                    (app, fail, miss)
                },
            )
            .reduce(
                || (vec![0u64; n], vec![0u64; n], vec![0u64; n]),
                |(mut a1, mut f1, mut m1), (a2, f2, m2)| {
                    for (x, y) in a1.iter_mut().zip(a2).chain(f1.iter_mut().zip(f2)).chain(m1.iter_mut().zip(m2)) {
                        *x += y;
                    }
                    (a1, f1, m1)
                },
            );
        let present = h.statuses.present | p.statuses.present;
        let indicators = (0..n)
            .filter(|&i| present & (1u64 << i) != 0)
            .map(|i| {
                let ind = e.indicator(i);
                IndicatorCount {
                    no: ind.no,
                    label: ind.label(),
                    dimension: ind.dimension.map(|d| d.name().to_string()),
                    households_applicable: app[i],
                    households_failing: fail[i],
                    households_missing: miss[i],
                }
            })
            .collect();
        // Households and persons by province: households come in runs of one province, so the
        // map is touched once a run, not once a household.
        let mut by: BTreeMap<AreaCode, (u64, u64)> = BTreeMap::new();
        let mut run: Option<(AreaCode, u64, u64)> = None;
        for (hh, v) in h.village.iter().enumerate() {
            let (code, people) = (v.province(), x.members(hh).len() as u64);
            match &mut run {
                Some((c, households, persons)) if *c == code => {
                    *households += 1;
                    *persons += people;
                }
                _ => {
                    if let Some((c, households, persons)) = run.replace((code, 1, people)) {
                        let e = by.entry(c).or_default();
                        e.0 += households;
                        e.1 += persons;
                    }
                }
            }
        }
        if let Some((c, households, persons)) = run {
            let e = by.entry(c).or_default();
            e.0 += households;
            e.1 += persons;
        }
        let reg = AreaRegistry::embedded();
        let provinces = by
            .into_iter()
            .map(|(code, (hh, pp))| ProvinceCount {
                province: code.to_string(),
                name: reg.names(&code).map(|n| n.en.clone()).unwrap_or_default(),
                households: hh,
                persons: pp,
            })
            .collect();
        Summary {
            households: h.len() as u64,
            persons: p.len() as u64,
            welfare_registered: p.welfare_registered.iter().filter(|v| **v == Some(true)).count() as u64,
            welfare_validated: p.welfare_validated.iter().filter(|v| **v == Some(true)).count() as u64,
            provinces,
            indicators,
        }
    }
}

impl Summary {
    /// The summary of an extract from its parts' summaries (parts that share no household, such
    /// as the province waves of a partitioned run): counts are added; provinces and indicators
    /// come in the order [`Summary::of`] gives them (province code; the order of first
    /// appearance across the parts, which is the edition's).
    pub fn merge(parts: &[Summary]) -> Summary {
        let mut out = Summary {
            households: 0,
            persons: 0,
            welfare_registered: 0,
            welfare_validated: 0,
            provinces: Vec::new(),
            indicators: Vec::new(),
        };
        let mut provinces: BTreeMap<String, ProvinceCount> = BTreeMap::new();
        for s in parts {
            out.households += s.households;
            out.persons += s.persons;
            out.welfare_registered += s.welfare_registered;
            out.welfare_validated += s.welfare_validated;
            for p in &s.provinces {
                let e = provinces.entry(p.province.clone()).or_insert_with(|| ProvinceCount {
                    households: 0,
                    persons: 0,
                    ..p.clone()
                });
                e.households += p.households;
                e.persons += p.persons;
            }
            for i in &s.indicators {
                match out.indicators.iter_mut().find(|o| o.no == i.no) {
                    Some(o) => {
                        o.households_applicable += i.households_applicable;
                        o.households_failing += i.households_failing;
                        o.households_missing += i.households_missing;
                    }
                    None => out.indicators.push(i.clone()),
                }
            }
        }
        out.provinces = provinces.into_values().collect();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{SynthOptions, Synthesizer};

    /// The parallel count gives what counting every indicator of every household one by one
    /// gives, on a synthetic set large enough to be split among threads.
    #[test]
    fn counts_match_a_household_by_household_reference() {
        let syn =
            Synthesizer::new(SynthOptions { households: 60_000, seed: 7, ..Default::default() }).expect("synthesizer");
        let chunk = syn.generate();
        let x = Extract::new(syn.edition().clone(), chunk.households, chunk.persons);
        let s = Summary::of(&x);
        let (h, p) = (&x.households, &x.persons);
        let mut fail_seen = 0u64;
        for c in &s.indicators {
            let i = x.edition.indicators().iter().position(|ind| ind.no == c.no).expect("indicator");
            let bit = 1u64 << i;
            let (mut app, mut fail, mut miss) = (0u64, 0u64, 0u64);
            for hh in 0..h.len() {
                let rows = std::iter::once((&h.statuses, hh)).chain(x.members(hh).map(|k| (&p.statuses, k)));
                let (mut f, mut a, mut m) = (false, false, false);
                for (st, r) in rows {
                    let stated = st.present & bit != 0 && st.na[r] & bit == 0 && st.missing[r] & bit == 0;
                    f |= stated && st.fail[r] & bit != 0;
                    a |= stated;
                    m |= st.missing[r] & bit != 0;
                }
                fail += u64::from(f);
                app += u64::from(a);
                miss += u64::from(!a && m);
            }
            assert_eq!(
                (c.households_applicable, c.households_failing, c.households_missing),
                (app, fail, miss),
                "{}",
                c.no
            );
            fail_seen += fail;
        }
        assert!(fail_seen > 0, "the set has deprived households");
        let mut by: BTreeMap<AreaCode, (u64, u64)> = BTreeMap::new();
        for hh in 0..h.len() {
            let e = by.entry(h.village[hh].province()).or_default();
            e.0 += 1;
            e.1 += x.members(hh).len() as u64;
        }
        let got: Vec<(String, u64, u64)> =
            s.provinces.iter().map(|c| (c.province.clone(), c.households, c.persons)).collect();
        let want: Vec<(String, u64, u64)> = by.into_iter().map(|(c, (a, b))| (c.to_string(), a, b)).collect();
        assert!(want.len() > 10, "households in many provinces");
        assert_eq!(got, want);
    }
}
