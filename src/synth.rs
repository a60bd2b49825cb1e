//! Synthetic national data shaped by TPMAP's real 2561 village tables.
//!
//! **Everything this module makes is synthetic: no row describes a real person.** Household-level
//! TPMAP data is not public, so tests and benchmarks run on households generated here: they sit in
//! the real villages of the TPMAP 2561 tables (`data/tpmap-2561/villages.csv.gz`, derived from the
//! public files by `scripts/build_embedded_data.py`) in proportion to their household counts, with
//! each village's members, elderly, disabled and welfare-card counts, and indicator failures drawn
//! at the village's published rates. Names come from the Thai names corpus of Korkeat Wannapat
//! (CC BY-SA 4.0, `data/names/`).
//!
//! How failures are drawn, per village: a household is poor (fails at least one TPMAP indicator)
//! with the village's published share of poor households `q`; a poor household fails each
//! applicable TPMAP indicator `i` with probability `min(1, pᵢ / q)`, where `pᵢ` is the village's
//! failure rate for `i` (`indicatorN.CNT / indicatorN.ALL`), and one indicator (chosen by `pᵢ`) if
//! it drew none; a household that is not poor fails none. Marginal failure rates are then `pᵢ`
//! wherever `pᵢ ≤ q` and the share of poor households is `q`. Indicators outside TPMAP's selection
//! fail independently at `pᵢ`. Welfare-card registration and validation are drawn for adults at
//! the village's rates among poor and non-poor people.
//!
//! Output is deterministic for a seed: each village draws from its own ChaCha8 stream, so the
//! villages can be generated in parallel.
//!
//! ```
//! use tpmap::synth::{SynthOptions, Synthesizer};
//! let s = Synthesizer::new(SynthOptions { households: 200, provinces: vec![40], ..Default::default() })?;
//! let chunk = s.generate();
//! assert_eq!(chunk.households.len(), 200);
//! assert!(chunk.households.village.iter().all(|v| v.as_str().starts_with("40"))); // Khon Kaen
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::io::Read;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::areas::{AreaCode, AreaLevel};
use crate::error::{Error, Result};
use crate::extract::{DictColumn, Households, Persons, Relation, Sex, StatusMatrix, StrColumn};
use crate::ids::{CitizenId, HouseId, HouseholdId};
use crate::indicators::{Edition, RecordedFor, Scope};
use crate::thai::PartialDate;

/// BMN indicators in the TPMAP 2561 tables.
pub const TABLE_INDICATORS: usize = 31;

/// One village of the TPMAP 2561 tables: the counts synthesis draws on.
#[derive(Clone, Debug, PartialEq)]
pub struct VillageProfile {
    /// TPMAP's 10-digit village id.
    pub id: AreaCode,
    /// `household.CNT`
    pub households: u32,
    /// `HOUSEMEMBER_CNT`
    pub members: u32,
    /// `MOF_REG_CNT`: members registered for the welfare card.
    pub mof_reg: u32,
    /// `MOF_VAL_CNT`: members whose registration was validated.
    pub mof_val: u32,
    /// `ELDERLY_CNT`
    pub elderly: u32,
    /// `DISABLED_CNT`
    pub disabled: u32,
    /// `indicatorN.ALL`: people in households where indicator N applies.
    pub ind_all: [u32; TABLE_INDICATORS],
    /// `indicatorN.CNT`: people in households failing indicator N.
    pub ind_cnt: [u32; TABLE_INDICATORS],
    /// `poor.household.CNT`
    pub poor_households: u32,
    /// `poor.JPT.CNT`: people poor by MPI.
    pub poor_people: u32,
    /// `poor.JPT.MOFreg.CNT`
    pub poor_reg: u32,
    /// `poor.JPT.MOFval.CNT`: target poor.
    pub poor_val: u32,
}

/// Loads the village profiles bundled with the crate (TPMAP 2561, 84,090 villages).
pub fn village_profiles_2561() -> Result<Vec<VillageProfile>> {
    let gz: &[u8] = include_bytes!("../data/tpmap-2561/villages.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz).read_to_string(&mut text).map_err(|e| Error::io("villages.csv.gz", e))?;
    parse_profiles(&text)
}

/// Parses profiles from the joined village table (`_common` columns then `_11111` columns).
pub fn parse_profiles(text: &str) -> Result<Vec<VillageProfile>> {
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header = rdr.headers()?.clone();
    let col = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| Error::Config(format!("village table lacks '{name}'")))
    };
    let c_id = col("village_ID")?;
    let fixed = [
        col("household.CNT")?,
        col("HOUSEMEMBER_CNT")?,
        col("MOF_REG_CNT")?,
        col("MOF_VAL_CNT")?,
        col("ELDERLY_CNT")?,
        col("DISABLED_CNT")?,
        col("poor.household.CNT")?,
        col("poor.JPT.CNT")?,
        col("poor.JPT.MOFreg.CNT")?,
        col("poor.JPT.MOFval.CNT")?,
    ];
    let mut all = [0usize; TABLE_INDICATORS];
    let mut cnt = [0usize; TABLE_INDICATORS];
    for i in 0..TABLE_INDICATORS {
        all[i] = col(&format!("indicator{}.ALL", i + 1))?;
        cnt[i] = col(&format!("indicator{}.CNT", i + 1))?;
    }
    let mut out = Vec::new();
    for (n, rec) in rdr.records().enumerate() {
        let rec = rec?;
        let num = |c: usize| -> Result<u32> {
            rec[c]
                .trim()
                .parse::<f64>()
                .map(|v| v as u32)
                .map_err(|_| Error::Config(format!("village table row {}: bad number in column {c}", n + 1)))
        };
        let f: Vec<u32> = fixed.iter().map(|&c| num(c)).collect::<Result<_>>()?;
        let mut p = VillageProfile {
            id: AreaCode::parse(&rec[c_id])?,
            households: f[0],
            members: f[1],
            mof_reg: f[2],
            mof_val: f[3],
            elderly: f[4],
            disabled: f[5],
            ind_all: [0; TABLE_INDICATORS],
            ind_cnt: [0; TABLE_INDICATORS],
            poor_households: f[6],
            poor_people: f[7],
            poor_reg: f[8],
            poor_val: f[9],
        };
        for i in 0..TABLE_INDICATORS {
            p.ind_all[i] = num(all[i])?;
            p.ind_cnt[i] = num(cnt[i])?;
        }
        out.push(p);
    }
    Ok(out)
}

/// Options for [`Synthesizer`].
#[derive(Clone, Debug)]
pub struct SynthOptions {
    /// Households to generate (the national set is 12,935,866).
    pub households: u64,
    /// Seed: the same seed gives the same data.
    pub seed: u64,
    /// BMN survey year (BE) written on every household (TPMAP 2561 used BMN 2560).
    pub survey_year: u16,
    /// Only these provinces (2-digit codes), or all when empty.
    pub provinces: Vec<u8>,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions { households: 10_000, seed: 2561, survey_year: 2560, provinces: Vec::new() }
    }
}

/// One generated chunk: households and their persons (person → household indices are local to
/// the chunk).
pub struct SynthChunk {
    /// The chunk's households (rows numbered across the whole set).
    pub households: Households,
    /// Persons, in household order.
    pub persons: Persons,
}

pub(crate) struct Names {
    pub(crate) male: Vec<&'static str>,
    pub(crate) female: Vec<&'static str>,
    pub(crate) family: Vec<&'static str>,
}

pub(crate) fn names() -> Names {
    let list = |s: &'static str| s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>();
    Names {
        male: list(include_str!("../data/names/person_names_male_th.txt")),
        female: list(include_str!("../data/names/person_names_female_th.txt")),
        family: list(include_str!("../data/names/family_names_th.txt")),
    }
}

struct Plan {
    village: usize,
    households: u32,
    members: u32,
    /// First household and person serial within the village's amphoe.
    hh_serial: u32,
    person_serial: u32,
}

/// Generates synthetic households and persons, village by village.
pub struct Synthesizer {
    edition: Arc<Edition>,
    profiles: Vec<VillageProfile>,
    plans: Vec<Plan>,
    opts: SynthOptions,
    names: Names,
    tpmap: Vec<usize>,
}

/// The file formats [`write_dir`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SynthFormat {
    /// `households.parquet` and `persons.parquet`.
    #[default]
    Parquet,
    /// `households.csv` and `persons.csv` (with a `#` notice line).
    Csv,
    /// Parquet and CSV.
    Both,
}

text_forms!(SynthFormat, "the format", { Parquet => "parquet", Csv => "csv", Both => "both" });

/// Writes a synthetic set into `dir` (created if missing; all or nothing), one chunk of about a
/// million persons at a time: households and persons as Parquet and/or CSV, each marked SYNTHETIC
/// (Parquet key/value metadata, a CSV `#` line), and a `README.txt`. `progress` is called with
/// the persons written so far.
pub fn write_dir(
    synthesizer: &Synthesizer,
    dir: &std::path::Path,
    format: SynthFormat,
    progress: &dyn Fn(u64),
) -> Result<()> {
    let s = synthesizer;
    use std::io::Write;
    let stage = crate::output::Staging::new(dir)?;
    let out = stage.path();
    let meta = crate::frame::synthetic_metadata(SYNTHETIC_NOTICE);
    let edition = s.edition().clone();
    let (parquet, csv) = (format != SynthFormat::Csv, format != SynthFormat::Parquet);
    let mut pq: Option<(crate::frame::ParquetBatches, crate::frame::ParquetBatches)> = None;
    // Each CSV file's stream and path (named in errors).
    type Csv = (std::io::BufWriter<std::fs::File>, std::path::PathBuf);
    let mut cw: Option<(Csv, Csv)> = None;
    let mut written = 0u64;
    for chunk in s.chunks(1 << 20) {
        let mut hh = crate::frame::households_frame(&chunk.households, &edition)?;
        let mut pp = crate::frame::persons_frame(&chunk.persons, &chunk.households.id, &edition)?;
        if parquet {
            if pq.is_none() {
                pq = Some((
                    crate::frame::ParquetBatches::create(&out.join("households.parquet"), hh.schema(), &meta)?,
                    crate::frame::ParquetBatches::create(&out.join("persons.parquet"), pp.schema(), &meta)?,
                ));
            }
            if let Some((a, b)) = pq.as_mut() {
                a.write(&hh)?;
                b.write(&pp)?;
            }
        }
        if csv {
            let first = cw.is_none();
            if first {
                let open = |name: &str| -> Result<Csv> {
                    let p = out.join(name);
                    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).map_err(|e| Error::io(&p, e))?);
                    writeln!(f, "# {SYNTHETIC_NOTICE}").map_err(|e| Error::io(&p, e))?;
                    Ok((f, p))
                };
                cw = Some((open("households.csv")?, open("persons.csv")?));
            }
            if let Some(((a, pa), (b, pb))) = cw.as_mut() {
                crate::frame::append_csv(&mut hh, a, first).map_err(|e| e.writing(pa))?;
                crate::frame::append_csv(&mut pp, b, first).map_err(|e| e.writing(pb))?;
            }
        }
        written += chunk.persons.len() as u64;
        progress(written);
    }
    if let Some((a, b)) = pq {
        a.finish()?;
        b.finish()?;
    }
    if let Some(((mut a, pa), (mut b, pb))) = cw {
        a.flush().map_err(|e| Error::io(&pa, e))?;
        b.flush().map_err(|e| Error::io(&pb, e))?;
    }
    let readme = out.join("README.txt");
    std::fs::write(
        &readme,
        format!("{SYNTHETIC_NOTICE}\n\nhouseholds: {}\npersons: {}\n", s.households(), s.persons()),
    )
    .map_err(|e| Error::io(&readme, e))?;
    stage.commit()
}

/// Most households one synthetic set may have: eight times the national survey.
pub const MAX_HOUSEHOLDS: u64 = 100_000_000;

impl Synthesizer {
    /// Plans `opts.households` households over the bundled 2561 villages.
    pub fn new(opts: SynthOptions) -> Result<Synthesizer> {
        Self::with_profiles(opts, village_profiles_2561()?)
    }

    /// Plans over given village profiles.
    pub fn with_profiles(opts: SynthOptions, mut profiles: Vec<VillageProfile>) -> Result<Synthesizer> {
        if opts.households > MAX_HOUSEHOLDS {
            return Err(Error::Config(format!(
                "{} households: at most {MAX_HOUSEHOLDS} (eight times the national survey) are generated",
                opts.households
            )));
        }
        if !(2400..=2700).contains(&opts.survey_year) {
            return Err(Error::Config(format!(
                "survey year {} is not a Buddhist-Era year (2400-2700)",
                opts.survey_year
            )));
        }
        let edition = Arc::new(Edition::bmn_2560());
        if !opts.provinces.is_empty() {
            profiles.retain(|p| opts.provinces.contains(&p.id.province_number()));
        }
        profiles.retain(|p| p.households > 0);
        if let Some(p) = profiles.iter().find(|p| p.id.level() < AreaLevel::Village) {
            return Err(Error::Config(format!("village profile {} is not a village code (8 or 10 characters)", p.id)));
        }
        profiles.sort_by_key(|p| p.id);
        if profiles.is_empty() {
            return Err(Error::Config("no villages to generate into".into()));
        }
        // Largest-remainder allocation of households to villages, proportional to their counts.
        let total: u64 = profiles.iter().map(|p| p.households as u64).sum();
        let n = opts.households;
        let mut alloc: Vec<(u64, u64, usize)> = profiles
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let exact = n as u128 * p.households as u128;
                ((exact / total as u128) as u64, (exact % total as u128) as u64, i)
            })
            .collect();
        let assigned: u64 = alloc.iter().map(|a| a.0).sum();
        let mut order: Vec<usize> = (0..alloc.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(alloc[i].1), i));
        for &i in order.iter().take((n - assigned) as usize) {
            alloc[i].0 += 1;
        }
        let mut plans = Vec::new();
        let mut current_amphoe = None;
        let (mut hh_serial, mut person_serial) = (0u32, 0u32);
        for (i, p) in profiles.iter().enumerate() {
            let k = alloc[i].0 as u32;
            if k == 0 {
                continue;
            }
            let amphoe = p.id.at(AreaLevel::Amphoe);
            if amphoe != current_amphoe {
                current_amphoe = amphoe;
                hh_serial = 0;
                person_serial = 0;
            }
            let members = ((p.members.max(p.households) as u64 * k as u64 + p.households as u64 / 2)
                / p.households as u64) as u32;
            let members = members.max(k);
            plans.push(Plan { village: i, households: k, members, hh_serial, person_serial });
            hh_serial += k;
            person_serial += members;
            if hh_serial >= 10_000_000 || person_serial >= 10_000_000 {
                return Err(Error::Config(
                    "more than 10 million synthetic people in one amphoe: IDs would repeat".into(),
                ));
            }
        }
        let tpmap = edition.selection("tpmap").expect("built-in selection").to_vec();
        Ok(Synthesizer { edition, profiles, plans, opts, names: names(), tpmap })
    }

    /// The edition whose indicators the statuses refer to.
    pub fn edition(&self) -> &Arc<Edition> {
        &self.edition
    }

    /// Number of households planned.
    pub fn households(&self) -> u64 {
        self.plans.iter().map(|p| p.households as u64).sum()
    }

    /// Households planned per province (2-digit code), in code order.
    pub fn households_by_province(&self) -> Vec<(u8, u64)> {
        let mut by: std::collections::BTreeMap<u8, u64> = std::collections::BTreeMap::new();
        for p in &self.plans {
            *by.entry(self.profiles[p.village].id.province_number()).or_default() += p.households as u64;
        }
        by.into_iter().collect()
    }

    /// Number of persons planned.
    pub fn persons(&self) -> u64 {
        self.plans.iter().map(|p| p.members as u64).sum()
    }

    /// Generates chunks of about `persons_per_chunk` persons each, in village order.
    pub fn chunks(&self, persons_per_chunk: u64) -> impl Iterator<Item = SynthChunk> + '_ {
        let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
        let (mut start, mut acc) = (0usize, 0u64);
        for (i, p) in self.plans.iter().enumerate() {
            acc += p.members as u64;
            if acc >= persons_per_chunk {
                groups.push(start..i + 1);
                start = i + 1;
                acc = 0;
            }
        }
        if start < self.plans.len() {
            groups.push(start..self.plans.len());
        }
        // Source rows are the rows of the files `write_dir` writes: numbered across chunks.
        let (mut households_before, mut persons_before) = (0u64, 0u64);
        groups.into_iter().map(move |g| {
            let parts: Vec<SynthChunk> =
                crate::in_pool(|| self.plans[g].par_iter().map(|plan| self.village(plan)).collect());
            let mut chunk = concat(parts);
            let (nh, np) = (chunk.households.len() as u64, chunk.persons.len() as u64);
            chunk.households.source_row = (households_before + 1..=households_before + nh).collect();
            chunk.persons.source_row = (persons_before + 1..=persons_before + np).collect();
            (households_before, persons_before) = (households_before + nh, persons_before + np);
            chunk
        })
    }

    /// Generates everything in one chunk (for small sets).
    pub fn generate(&self) -> SynthChunk {
        concat(self.chunks(u64::MAX).collect())
    }

    fn village(&self, plan: &Plan) -> SynthChunk {
        let v = &self.profiles[plan.village];
        let mut rng = ChaCha8Rng::seed_from_u64(splitmix(self.opts.seed ^ splitmix(plan.village as u64 + 1)));
        let e = &self.edition;
        let k = plan.households as usize;
        let rate = |num: u32, den: u32| {
            if den == 0 { 0.0 } else { (num as f64 / den as f64).clamp(0.0, 1.0) }
        };
        let q = rate(v.poor_households, v.households);
        let p_fail: Vec<f64> = (0..e.len())
            .map(|i| rate(v.ind_cnt[e.indicator(i).no as usize - 1], v.ind_all[e.indicator(i).no as usize - 1]))
            .collect();
        let p_apply: Vec<f64> =
            (0..e.len()).map(|i| rate(v.ind_all[e.indicator(i).no as usize - 1], v.members)).collect();
        let elderly_share = rate(v.elderly, v.members);
        let disabled_share = rate(v.disabled, v.members);
        // Welfare rates among adults (about 78% of members), for poor and non-poor people.
        let adult = 0.78;
        let val_poor = (rate(v.poor_val, v.poor_people) / adult).min(1.0);
        let reg_poor = (rate(v.poor_reg, v.poor_people) / adult).min(1.0).max(val_poor);
        let rest = v.members.saturating_sub(v.poor_people);
        let val_rest = (rate(v.mof_val.saturating_sub(v.poor_val), rest) / adult).min(1.0);
        let reg_rest = (rate(v.mof_reg.saturating_sub(v.poor_reg), rest) / adult).min(1.0).max(val_rest);

        // Household sizes: one member each, the rest spread at random.
        let mut sizes = vec![1u16; k];
        for _ in 0..plan.members as usize - k {
            let h = rng.random_range(0..k);
            sizes[h] = sizes[h].saturating_add(1);
        }
        let survey_ce = self.opts.survey_year - 543;
        let reference = PartialDate { year: survey_ce, month: 3, day: 31 };
        let amphoe = v.id.at(AreaLevel::Amphoe).expect("village codes have an amphoe");
        let amphoe_num: u64 = amphoe.as_str().parse().expect("digits");

        let present_h =
            (0..e.len()).filter(|&i| e.indicator(i).level == RecordedFor::Household).fold(0u64, |m, i| m | 1 << i);
        let present_p =
            (0..e.len()).filter(|&i| e.indicator(i).level == RecordedFor::Person).fold(0u64, |m, i| m | 1 << i);
        let mut hh = Households {
            id: Vec::with_capacity(k),
            village: vec![v.id; k],
            house_id: Vec::with_capacity(k),
            house_no: StrColumn::with_capacity(k, 6),
            survey_year: vec![self.opts.survey_year; k],
            members: sizes.clone(),
            income_per_member: Vec::with_capacity(k),
            statuses: StatusMatrix::new(present_h, k),
            source_row: Vec::new(),
        };
        let m = plan.members as usize;
        let mut ps = Persons {
            household: Vec::with_capacity(m),
            citizen_id: Vec::with_capacity(m),
            title: DictColumn::with_capacity(m),
            first_name: StrColumn::with_capacity(m, 21),
            last_name: StrColumn::with_capacity(m, 24),
            sex: Vec::with_capacity(m),
            birth_date: Vec::with_capacity(m),
            age: Vec::with_capacity(m),
            relation: Vec::with_capacity(m),
            disabled: Vec::with_capacity(m),
            welfare_registered: Vec::with_capacity(m),
            welfare_validated: Vec::with_capacity(m),
            statuses: StatusMatrix::new(present_p, m),
            source_row: Vec::new(),
        };
        let mut person_serial = plan.person_serial as u64;
        let tpmap_mask = Edition::mask(&self.tpmap);
        let mut scope: Vec<u64> = vec![0; m];
        let mut applicable_of: Vec<u64> = Vec::with_capacity(k);
        let mut member_start: Vec<usize> = Vec::with_capacity(k);
        let mut ages: Vec<u8> = Vec::with_capacity(16);
        let mut house_no = String::new();
        for (h, &size) in sizes.iter().enumerate() {
            // The household's members.
            ages.clear();
            let draw_age = |rng: &mut ChaCha8Rng| -> u8 {
                if rng.random_bool(elderly_share) {
                    (60.0 - 9.0 * (1.0 - rng.random::<f64>()).ln()).min(100.0) as u8
                } else if rng.random_bool(0.22) {
                    rng.random_range(0..15)
                } else {
                    rng.random_range(15..60)
                }
            };
            let mut head_age = draw_age(&mut rng);
            while head_age < 20 {
                head_age = draw_age(&mut rng);
            }
            ages.push(head_age);
            for _ in 1..size {
                ages.push(draw_age(&mut rng));
            }
            let family = self.names.family[rng.random_range(0..self.names.family.len())];
            let head_male = rng.random_bool(0.6);
            let first_person = ps.household.len();
            member_start.push(first_person);
            let disabled: Vec<bool> = ages.iter().map(|_| rng.random_bool(disabled_share)).collect();
            for (j, &age) in ages.iter().enumerate() {
                let relation = match j {
                    0 => Relation::Head,
                    1 if age >= 18 && rng.random_bool(0.7) => Relation::Spouse,
                    _ if age + 35 <= head_age => Relation::Grandchild,
                    _ if age + 15 <= head_age => Relation::Child,
                    _ if age >= head_age + 15 => Relation::Parent,
                    _ => {
                        if rng.random_bool(0.5) {
                            Relation::Sibling
                        } else {
                            Relation::OtherRelative
                        }
                    }
                };
                let male = match relation {
                    Relation::Head => head_male,
                    Relation::Spouse => !head_male,
                    _ => rng.random_bool(0.49),
                };
                let title = match (male, age) {
                    (true, 0..15) => "ด.ช.",
                    (false, 0..15) => "ด.ญ.",
                    (true, _) => "นาย",
                    (false, _) if relation == Relation::Spouse || (age >= 30 && rng.random_bool(0.6)) => "นาง",
                    (false, _) => "นางสาว",
                };
                let given = if male {
                    self.names.male[rng.random_range(0..self.names.male.len())]
                } else {
                    self.names.female[rng.random_range(0..self.names.female.len())]
                };
                let surname = if relation == Relation::Spouse && rng.random_bool(0.3) {
                    self.names.family[rng.random_range(0..self.names.family.len())]
                } else {
                    family
                };
                let born =
                    reference.days_since_epoch() - age as i32 * 365 - (age as i32 / 4) - rng.random_range(0..365);
                // Ages are at most 120 years before a reference year of the 21st century: always in range.
                let birth = PartialDate::from_days_since_epoch(born).unwrap_or(reference);
                let age = birth.age_on(reference).clamp(0, 120) as u8;
                // Citizen ID: type digit, the amphoe as registering office, a 7-digit serial
                // scrambled by a bijection mod 10⁷ (unique within the amphoe), the check digit.
                let serial = (person_serial * 3_467_891 + 1_234_567) % 10_000_000;
                person_serial += 1;
                let kind = if birth.year >= 1984 { 1 } else { 3 };
                let body = kind * 100_000_000_000 + amphoe_num * 10_000_000 + serial;
                let mut d = [0u8; 12];
                let mut x = body;
                for slot in d.iter_mut().rev() {
                    *slot = (x % 10) as u8;
                    x /= 10;
                }
                ps.household.push(h as u32);
                ps.citizen_id.push(Some(CitizenId::with_check_digit(&d)));
                ps.title.push(title);
                ps.first_name.push(given);
                ps.last_name.push(surname);
                ps.sex.push(if male { Sex::Male } else { Sex::Female });
                ps.birth_date.push(Some(birth));
                ps.age.push(Some(age));
                ps.relation.push(relation);
                ps.disabled.push(Some(disabled[j]));
            }
            let members = first_person..ps.household.len();

            // Applicability of each indicator to this household, and the members in scope.
            let in_scope = |i: usize, p: usize, rng: &mut ChaCha8Rng| -> bool {
                match e.indicator(i).scope {
                    Scope::Household => true,
                    s @ (Scope::Age { .. } | Scope::Newborn | Scope::Elderly | Scope::Disabled) => {
                        s.applies_to(ps.age[p], ps.disabled[p]) == Some(true)
                    }
                    Scope::M3Leaver | Scope::Reported => rng.random_bool((p_apply[i] / size as f64).min(1.0)),
                }
            };
            let mut applicable = 0u64;
            for i in 0..e.len() {
                if e.indicator(i).level == RecordedFor::Household {
                    applicable |= 1 << i;
                    continue;
                }
                for p in members.clone() {
                    if in_scope(i, p, &mut rng) {
                        scope[p] |= 1 << i;
                        applicable |= 1 << i;
                    }
                }
            }
            applicable_of.push(applicable);
            // Keys: house ID = amphoe + 7-digit serial; household = house ID and household no. 01.
            let house = amphoe_num * 10_000_000 + plan.hh_serial as u64 + h as u64;
            hh.house_id.push(Some(format!("{house:011}").parse::<HouseId>().expect("11 digits")));
            hh.id.push(HouseholdId(house * 100 + 1));
            house_no.clear();
            let n: u32 = rng.random_range(1..400);
            if rng.random_bool(0.25) {
                house_no.push_str(&format!("{n}/{}", rng.random_range(1..20)));
            } else {
                house_no.push_str(&n.to_string());
            }
            hh.house_no.push(&house_no);
        }
        // Poor households: the village's share of households, drawn without replacement with
        // probability proportional to a weight (Efraimidis-Spirakis keys). TPMAP's poor live in
        // larger households (3.5 members against 2.8 nationally).
        // Stochastic rounding keeps the expected count right in villages with few households.
        let expected = q * k as f64;
        let n_poor = ((expected.floor() + rng.random_bool(expected.fract()) as u8 as f64) as usize).min(k);
        // Weight: size × the village's failure rates summed over the TPMAP indicators that can
        // apply to the household, so that households with, say, school-age children are poor as
        // often as indicator 3.2's published rate requires.
        let weight = |h: usize| {
            let rates: f64 = self.tpmap.iter().filter(|&&i| applicable_of[h] & (1 << i) != 0).map(|&i| p_fail[i]).sum();
            sizes[h] as f64 * (rates + 1e-6)
        };
        let mut keyed: Vec<(f64, usize)> = (0..k).map(|h| (rng.random::<f64>().powf(1.0 / weight(h)), h)).collect();
        keyed.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut poor = vec![false; k];
        for &(_, h) in keyed.iter().take(n_poor) {
            poor[h] = true;
        }
        // TPMAP indicators: among applicable households, poor ones fail in random order until the
        // failing people reach the village's rate (people-weighted, as published).
        let mut fail = vec![0u64; k];
        let mut order: Vec<usize> = Vec::with_capacity(k);
        for &i in &self.tpmap {
            let bit = 1u64 << i;
            let people: u64 = (0..k).filter(|&h| applicable_of[h] & bit != 0).map(|h| sizes[h] as u64).sum();
            let target = p_fail[i] * people as f64;
            order.clear();
            order.extend((0..k).filter(|&h| poor[h] && applicable_of[h] & bit != 0));
            // Fill to the target; the last household fails with the probability of the remainder,
            // so small villages still get the right expected count.
            let mut remaining = target;
            for j in 0..order.len() {
                if remaining <= 0.0 {
                    break;
                }
                let pick = rng.random_range(j..order.len());
                order.swap(j, pick);
                let size = sizes[order[j]] as f64;
                if size <= remaining || rng.random_bool(remaining / size) {
                    fail[order[j]] |= bit;
                }
                remaining -= size;
            }
        }
        for h in 0..k {
            // A poor household fails at least one TPMAP indicator (chosen by the village's rates).
            if poor[h] && fail[h] & tpmap_mask == 0 {
                let cands: Vec<usize> =
                    self.tpmap.iter().copied().filter(|&i| applicable_of[h] & (1 << i) != 0).collect();
                let total: f64 = cands.iter().map(|&i| p_fail[i]).sum();
                let pick = if total > 0.0 {
                    let mut u = rng.random::<f64>() * total;
                    *cands
                        .iter()
                        .find(|&&i| {
                            u -= p_fail[i];
                            u <= 0.0
                        })
                        .unwrap_or(&cands[cands.len() - 1])
                } else {
                    cands[rng.random_range(0..cands.len())]
                };
                fail[h] |= 1 << pick;
            }
            // Other indicators fail independently at the village's rates.
            #[allow(clippy::needless_range_loop)] // bit i and rate i go together
            for i in 0..e.len() {
                if tpmap_mask & (1 << i) == 0 && applicable_of[h] & (1 << i) != 0 && rng.random_bool(p_fail[i]) {
                    fail[h] |= 1 << i;
                }
            }
        }
        for h in 0..k {
            let members = member_start[h]..member_start[h] + sizes[h] as usize;
            let applicable = applicable_of[h];
            let fail = fail[h];
            let poor = poor[h];
            // Household-level statuses; person-level ones on one member in scope.
            hh.statuses.push(fail & present_h, present_h & !applicable, 0);
            let mut person_fail = vec![0u64; members.len()];
            for i in 0..e.len() {
                let bit = 1u64 << i;
                if present_p & bit != 0 && fail & bit != 0 {
                    let candidates: Vec<usize> =
                        (0..members.len()).filter(|&j| scope[members.start + j] & bit != 0).collect();
                    person_fail[candidates[rng.random_range(0..candidates.len())]] |= bit;
                }
            }
            for (j, pf) in person_fail.iter().enumerate() {
                ps.statuses.push(*pf, present_p & !scope[members.start + j], 0);
            }
            // Welfare card, for adults.
            for p in members.clone() {
                let (reg, val) = if poor { (reg_poor, val_poor) } else { (reg_rest, val_rest) };
                let adult = ps.age[p].is_some_and(|a| a >= 18);
                let u: f64 = rng.random();
                ps.welfare_registered.push(Some(adult && u < reg));
                ps.welfare_validated.push(Some(adult && u < val));
            }
            // Income per member, consistent with the income indicator.
            let income_fail =
                e.indicators().iter().position(|i| i.income_threshold.is_some()).map(|i| (fail >> i) & 1 == 1);
            let threshold = e.indicators().iter().find_map(|i| i.income_threshold).unwrap_or(38_000.0);
            let income = match income_fail {
                Some(true) => rng.random_range(4_000.0..threshold - 1.0), // stays below the threshold once rounded
                _ => threshold + 100.0 - 60_000.0 * (1.0 - rng.random::<f64>()).ln(),
            };
            hh.income_per_member.push(Some(income.round()));
        }
        SynthChunk { households: hh, persons: ps }
    }
}

pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn concat(parts: Vec<SynthChunk>) -> SynthChunk {
    let mut it = parts.into_iter();
    let mut acc = it.next().unwrap_or(SynthChunk { households: Households::default(), persons: Persons::default() });
    for p in it {
        let offset = acc.households.len() as u32;
        acc.households.append(p.households);
        acc.persons.append(p.persons, offset);
    }
    acc
}

/// The note written into every synthetic file.
pub const SYNTHETIC_NOTICE: &str = "SYNTHETIC DATA generated by tpmap synth: no row describes a real person. Shaped by the public TPMAP 2561 village tables (NESDC and NECTEC); names from the Thai names corpus by Korkeat Wannapat (CC BY-SA 4.0).";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_load_and_sum_to_the_national_figures() {
        let p = village_profiles_2561().unwrap();
        assert_eq!(p.len(), 84_090);
        assert_eq!(p.iter().map(|v| v.households as u64).sum::<u64>(), 12_935_866);
        assert_eq!(p.iter().map(|v| v.members as u64).sum::<u64>(), 36_647_817);
        assert_eq!(p.iter().map(|v| v.poor_val as u64).sum::<u64>(), 1_032_987);
    }

    #[test]
    fn deterministic_and_exact_counts() {
        let opts = SynthOptions { households: 3_000, seed: 7, provinces: vec![11, 57], ..Default::default() };
        let a = Synthesizer::new(opts.clone()).unwrap().generate();
        let b = Synthesizer::new(opts).unwrap().generate();
        assert_eq!(a.households.len(), 3_000);
        assert_eq!(a.households.id, b.households.id);
        assert_eq!(a.persons.citizen_id, b.persons.citizen_id);
        assert_eq!(a.persons.statuses, b.persons.statuses);
        assert!(a.households.village.iter().all(|v| [11, 57].contains(&v.province_number())));
        let sum: u64 = a.households.members.iter().map(|&m| m as u64).sum();
        assert_eq!(sum, a.persons.len() as u64);
    }

    #[test]
    fn non_village_profiles_are_an_error_not_a_panic() {
        let mut p = village_profiles_2561().unwrap().into_iter().take(3).collect::<Vec<_>>();
        p[1].id = "1101".parse().unwrap();
        let err = Synthesizer::with_profiles(SynthOptions { households: 10, ..Default::default() }, p).err().unwrap();
        assert!(err.to_string().contains("not a village code"), "{err}");
    }

    #[test]
    fn ids_are_valid_and_unique() {
        let s =
            Synthesizer::new(SynthOptions { households: 20_000, seed: 1, ..Default::default() }).unwrap().generate();
        let mut ids: Vec<u64> = s.persons.citizen_id.iter().map(|c| c.unwrap().as_u64()).collect();
        for id in &ids {
            assert!(CitizenId::from_u64(*id).is_ok());
        }
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
        let mut hh: Vec<u64> = s.households.id.iter().map(|h| h.0).collect();
        hh.sort_unstable();
        hh.dedup();
        assert_eq!(hh.len(), s.households.len());
    }
}
