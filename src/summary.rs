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
        let (mut app, mut fail, mut miss) = (vec![0u64; n], vec![0u64; n], vec![0u64; n]);
        for hh in 0..h.len() {
            // Household-level masks, then each member's.
            let (mut f, mut a, mut m) = (0u64, 0u64, 0u64);
            let hs = &h.statuses;
            f |= hs.fail[hh] & !hs.na[hh] & !hs.missing[hh];
            a |= hs.present & !hs.na[hh] & !hs.missing[hh];
            m |= hs.missing[hh];
            let ps = &p.statuses;
            for k in x.members(hh) {
                f |= ps.fail[k] & !ps.na[k] & !ps.missing[k];
                a |= ps.present & !ps.na[k] & !ps.missing[k];
                m |= ps.missing[k];
            }
            for i in 0..n {
                let bit = 1u64 << i;
                if f & bit != 0 {
                    fail[i] += 1;
                }
                if (a | f) & bit != 0 {
                    app[i] += 1;
                } else if m & bit != 0 {
                    miss[i] += 1;
                }
            }
        }
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
        let mut by: BTreeMap<AreaCode, (u64, u64)> = BTreeMap::new();
        for hh in 0..h.len() {
            let e = by.entry(h.village[hh].province()).or_default();
            e.0 += 1;
            e.1 += x.members(hh).len() as u64;
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
