//! How close do SYNTHETIC households come to TPMAP's published 2561 tables?
//!
//! Generates `--households N` (default: the national 12,935,866) in memory and compares, per
//! province and nationally, the share of people poor by MPI (TPMAP's union rule over its 17
//! indicators: a household is poor when it, or any member, fails one), the share of target poor
//! (poor and welfare-validated) and each indicator's failure rate among people where it applies,
//! against the published village tables summed up.
//!
//! ```text
//! cargo run --release --all-features --example synth_closeness -- [N] [SEED]
//! ```

use std::collections::BTreeMap;

use tpmap::synth::{SynthOptions, Synthesizer, village_profiles_2561};

#[derive(Default, Clone, Copy)]
struct Acc {
    members: f64,
    poor: f64,
    target: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(12_935_866);
    let seed: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(2561);
    let t0 = std::time::Instant::now();
    let s = Synthesizer::new(SynthOptions { households: n, seed, ..Default::default() })?;
    let e = s.edition().clone();
    let tpmap = tpmap::indicators::Edition::mask(e.selection("tpmap").expect("selection"));
    let nind = 31;
    let mut synth: BTreeMap<u8, Acc> = BTreeMap::new();
    let (mut all_s, mut cnt_s) = (vec![0f64; nind], vec![0f64; nind]);
    for chunk in s.chunks(1 << 21) {
        let (h, p) = (&chunk.households, &chunk.persons);
        let mut start = 0usize;
        for hh in 0..h.len() {
            let size = h.members[hh] as usize;
            let members = start..start + size;
            start += size;
            let mut fail = h.statuses.fail[hh];
            let mut applies = h.statuses.present & !h.statuses.na[hh];
            for k in members.clone() {
                fail |= p.statuses.fail[k];
                applies |= p.statuses.present & !p.statuses.na[k];
            }
            let poor = fail & tpmap != 0;
            let a = synth.entry(h.village[hh].province_number()).or_default();
            a.members += size as f64;
            if poor {
                a.poor += size as f64;
                a.target += members.filter(|&k| p.welfare_validated[k] == Some(true)).count() as f64;
            }
            for i in 0..nind {
                if applies >> i & 1 == 1 {
                    all_s[i] += size as f64;
                }
                if fail >> i & 1 == 1 {
                    cnt_s[i] += size as f64;
                }
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    // Published figures: the village tables summed by province.
    let mut real: BTreeMap<u8, Acc> = BTreeMap::new();
    let (mut all_r, mut cnt_r) = (vec![0f64; nind], vec![0f64; nind]);
    for v in village_profiles_2561()? {
        let a = real.entry(v.id.province_number()).or_default();
        a.members += v.members as f64;
        a.poor += v.poor_people as f64;
        a.target += v.poor_val as f64;
        for i in 0..nind {
            all_r[i] += v.ind_all[i] as f64;
            cnt_r[i] += v.ind_cnt[i] as f64;
        }
    }
    let pct = |x: f64, d: f64| if d > 0.0 { 100.0 * x / d } else { 0.0 };
    let total = |m: &BTreeMap<u8, Acc>| {
        m.values().fold(Acc::default(), |t, a| Acc {
            members: t.members + a.members,
            poor: t.poor + a.poor,
            target: t.target + a.target,
        })
    };
    let (ts, tr) = (total(&synth), total(&real));
    println!("SYNTHETIC vs published TPMAP 2561 ({n} households, seed {seed}, generated in {secs:.1} s)\n");
    println!("| measure | published | synthetic |\n|---|---|---|");
    println!("| people | {:.0} | {:.0} |", tr.members, ts.members);
    println!("| poor by MPI, % of people | {:.3} | {:.3} |", pct(tr.poor, tr.members), pct(ts.poor, ts.members));
    println!("| target poor, % of people | {:.3} | {:.3} |", pct(tr.target, tr.members), pct(ts.target, ts.members));
    let (mut d_poor, mut d_target, mut max_poor, mut max_target) = (0.0f64, 0.0f64, (0.0f64, 0u8), (0.0f64, 0u8));
    for (prov, r) in &real {
        let Some(s) = synth.get(prov) else { continue };
        let dp = (pct(s.poor, s.members) - pct(r.poor, r.members)).abs();
        let dt = (pct(s.target, s.members) - pct(r.target, r.members)).abs();
        d_poor += dp;
        d_target += dt;
        if dp > max_poor.0 {
            max_poor = (dp, *prov);
        }
        if dt > max_target.0 {
            max_target = (dt, *prov);
        }
    }
    let np = real.len() as f64;
    println!(
        "\nper province ({} provinces), absolute difference in percentage points:\n- poor by MPI: mean {:.3}, largest {:.3} (province {})\n- target poor: mean {:.3}, largest {:.3} (province {})",
        real.len(),
        d_poor / np,
        max_poor.0,
        max_poor.1,
        d_target / np,
        max_target.0,
        max_target.1
    );
    println!(
        "\nfailure rate among people where the indicator applies, %:\n\n| indicator | published | synthetic |\n|---|---|---|"
    );
    for i in 0..nind {
        let ind = e.indicator(e.by_no(i as u16 + 1).expect("31 indicators"));
        println!(
            "| {} {} | {:.3} | {:.3} |",
            ind.no,
            ind.code.as_deref().unwrap_or(""),
            pct(cnt_r[i], all_r[i]),
            pct(cnt_s[i], all_s[i])
        );
    }
    Ok(())
}
