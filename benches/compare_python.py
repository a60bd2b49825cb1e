"""Side-by-side: tpmap's area measures against an idiomatic Python-polars implementation of the
same Alkire-Foster measures, and against PyPI `mpitb` (pandas, per area) on a subset.

Input is what `tpmap run` writes: `deprivations.parquet` (one row per household: area codes,
members, one 0/1/null column per indicator) and `spec.csv` (dimension,indicator,weight), plus
tpmap's own `measures.parquet` from `tpmap mpi` on the same matrix, to check the results agree.
The unit of analysis is people (households weighted by members); the cutoff is TPMAP's union
rule unless --k is given. All data here is SYNTHETIC.

    python benches/compare_python.py OUT_DIR [--k 1/3] [--mpitb-villages 200] [--tpmap-runs DIR ...]

Each tool is timed the same way: every run is recorded and the best (least) time compared with
the best, the first with the first. tpmap's times are its own (`timing.json` of each `tpmap mpi`
run given by --tpmap-runs, default OUT_DIR/mpi: one process a run), the scripts' are three runs
each in this process.
"""
import argparse
import json
import time
from fractions import Fraction

import polars as pl

LEVELS = ["province", "amphoe", "tambon", "village"]


def python_polars(df: pl.DataFrame, spec: pl.DataFrame, k: Fraction | None) -> pl.DataFrame:
    """H, A, M0 and censored headcount ratios per area at every level, the polars way."""
    inds = spec["indicator"].to_list()
    weights = [float(Fraction(w)) for w in spec["weight"].to_list()]
    score = pl.sum_horizontal([pl.col(c).fill_null(0).cast(pl.Float64) * w for c, w in zip(inds, weights)])
    poor = (score > 0) if k is None else (score >= float(k) - 1e-12)
    w = pl.col("members").cast(pl.Float64)
    scored = df.with_columns(score.alias("score")).with_columns(poor.alias("poor"))
    scored = scored.with_columns(
        (w * pl.col("poor")).alias("w_poor"),
        (w * pl.col("poor") * pl.col("score")).alias("w_c"),
        *[(w * pl.col("poor") * pl.col(c).fill_null(0)).alias(f"cen_{c}") for c in inds],
        *[(w * pl.col(c).fill_null(0)).alias(f"unc_{c}") for c in inds],
        pl.lit("TH").alias("country"),
    )
    sums = [pl.col("members").sum().alias("population"), pl.col("w_poor").sum().alias("poor"), pl.col("w_c").sum().alias("c")]
    sums += [pl.col(f"cen_{c}").sum() for c in inds] + [pl.col(f"unc_{c}").sum() for c in inds]
    out = []
    for level in ["country"] + LEVELS:
        g = scored.group_by(level).agg(sums).rename({level: "area"}).with_columns(pl.lit(level).alias("level"))
        out.append(g)
    res = pl.concat(out, how="vertical_relaxed")
    return res.with_columns(
        (pl.col("poor") / pl.col("population")).alias("H"),
        (pl.col("c") / pl.col("poor")).fill_nan(0.0).alias("A"),
        (pl.col("c") / pl.col("population")).alias("M0"),
        *[(pl.col(f"cen_{c}") / pl.col("population")).alias(f"{c}_censored") for c in inds],
    )


def python_polars_expert(df: pl.DataFrame, spec: pl.DataFrame, k: Fraction | None) -> pl.DataFrame:
    """The same measures as a polars expert writes them: every measure is a sum, so one lazy
    `group_by` over the four area columns with the weighted sums, then the 84 k village rows
    rolled up to tambon, amphoe, province and country (no second pass over the households)."""
    inds = spec["indicator"].to_list()
    weights = [float(Fraction(w)) for w in spec["weight"].to_list()]
    dep = {c: pl.col(c).fill_null(0).cast(pl.Float64) for c in inds}
    score = pl.sum_horizontal([dep[c] * w for c, w in zip(inds, weights)])
    poor = (score > 0) if k is None else (score >= float(k) - 1e-12)
    w = pl.col("members").cast(pl.Float64)
    wp = w * poor.cast(pl.Float64)
    sums = [w.sum().alias("population"), wp.sum().alias("poor"), (wp * score).sum().alias("c")]
    sums += [(wp * dep[c]).sum().alias(f"cen_{c}") for c in inds] + [(w * dep[c]).sum().alias(f"unc_{c}") for c in inds]
    village = df.lazy().group_by(LEVELS).agg(sums).collect()
    values = [c for c in village.columns if c not in LEVELS]
    out = [village.select(pl.lit("village").alias("level"), pl.col("village").alias("area"), *values)]
    for level in ["tambon", "amphoe", "province"]:
        g = village.group_by(level).agg(pl.col(values).sum())
        out.append(g.select(pl.lit(level).alias("level"), pl.col(level).alias("area"), *values))
    out.append(village.select(pl.lit("country").alias("level"), pl.lit("TH").alias("area"), *[pl.col(c).sum() for c in values]))
    res = pl.concat(out, how="vertical_relaxed")
    return res.with_columns(
        (pl.col("poor") / pl.col("population")).alias("H"),
        (pl.col("c") / pl.col("poor")).fill_nan(0.0).alias("A"),
        (pl.col("c") / pl.col("population")).alias("M0"),
        *[(pl.col(f"cen_{c}") / pl.col("population")).alias(f"{c}_censored") for c in inds],
    )


def run_mpitb(df: pl.DataFrame, spec: pl.DataFrame, villages: int, k_percent: float) -> tuple[float, int]:
    """mpitb on the first `villages` villages, one estimate per village; returns (seconds, areas)."""
    from mpitb.core import MPIToolbox

    keep = df["village"].unique().sort().head(villages)
    sub = df.filter(pl.col("village").is_in(keep.implode())).to_pandas()
    inds = spec["indicator"].to_list()
    for c in inds:
        sub[c] = sub[c].fillna(0).astype(float)
    dims = {}
    for d, i in zip(spec["dimension"].to_list(), inds):
        dims.setdefault(d, []).append(i)
    mpi = MPIToolbox()
    mpi.set(name="tpmap", dimensions=[(v, d) for d, v in dims.items()], replace=True)
    mpi.svyset(weight="members")
    t = time.perf_counter()
    mpi.est(df=sub, name="tpmap", klist=[k_percent], svy=True, over=["village"], lframe="r", replace=True)
    return time.perf_counter() - t, len(keep)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", help="folder written by `tpmap run` (deprivations.parquet, spec.csv) with mpi/measures.parquet")
    ap.add_argument("--k", default=None, help="cutoff as a fraction; default: union (TPMAP's rule)")
    ap.add_argument("--mpitb-villages", type=int, default=200)
    ap.add_argument("--tpmap-runs", nargs="+", default=None,
                    help="folders of `tpmap mpi` runs on the same matrix (their timing.json); default OUT/mpi")
    a = ap.parse_args()
    k = Fraction(a.k) if a.k else None
    read_times = []
    for _ in range(3):  # as tpmap's runs each read the file
        t = time.perf_counter()
        df = pl.read_parquet(f"{a.out}/deprivations.parquet")
        read_times.append(time.perf_counter() - t)
    read_seconds = min(read_times)
    spec = pl.read_csv(f"{a.out}/spec.csv")
    # Three runs of each script (the data in memory); the end-to-end figures add the reading.
    def runs(f):
        times = []
        for _ in range(3):
            t = time.perf_counter()
            r = f(df, spec, k)
            times.append(time.perf_counter() - t)
        return r, times
    expert, expert_times = runs(python_polars_expert)
    py, py_times = runs(python_polars)
    expert_seconds, py_seconds = min(expert_times), min(py_times)

    ours = pl.read_parquet(f"{a.out}/mpi/measures.parquet")
    timings = [json.load(open(f"{d}/timing.json")) for d in (a.tpmap_runs or [f"{a.out}/mpi"])]
    tpmap_times = [t["measure_seconds"] for t in timings]
    tpmap_end_to_end = [t["read_seconds"] + t["measure_seconds"] for t in timings]
    timing = min(timings, key=lambda t: t["measure_seconds"])
    # tpmap names an area by its path (40/4001/...): compare on the last part.
    ours = ours.with_columns(pl.col("area").str.split("/").list.last().alias("area"))
    ours = ours.with_columns(pl.when(pl.col("level") == "country").then(pl.lit("TH")).otherwise(pl.col("area")).alias("area"))
    inds = spec["indicator"].to_list()
    cols = ["H", "A", "M0"] + [f"{c}_censored" for c in inds]
    def agree(other):
        j = ours.select(["level", "area"] + cols).join(other.select(["level", "area"] + cols), on=["level", "area"], suffix="_py")
        return j.height, max(j.select((pl.col(c) - pl.col(f"{c}_py")).abs().max()).item() for c in cols)
    matched, worst = agree(py)
    matched_expert, worst_expert = agree(expert)
    result = {
        "units": df.height,
        "areas": ours.height,
        "areas_matched": matched,
        "areas_matched_expert": matched_expert,
        "max_abs_difference": max(worst, worst_expert),
        "tpmap_read_seconds": timing["read_seconds"],
        "tpmap_seconds": timing["measure_seconds"],
        "tpmap_runs_seconds": tpmap_times,
        "python_polars_read_seconds": read_seconds,
        "python_polars_read_runs_seconds": read_times,
        "python_polars_expert_seconds": expert_seconds,
        "python_polars_expert_runs_seconds": expert_times,
        "python_polars_naive_seconds": py_seconds,
        "python_polars_naive_runs_seconds": py_times,
        "speedup_vs_python_polars_expert": expert_seconds / timing["measure_seconds"],
        "speedup_vs_python_polars_expert_first_runs": expert_times[0] / tpmap_times[0],
        "speedup_vs_python_polars_naive": py_seconds / timing["measure_seconds"],
        "end_to_end_tpmap_seconds": min(tpmap_end_to_end),
        # polars' best read plus its best measures (each the least of its own three, which can
        # only favour polars); tpmap's best run of both, read and measures in one process.
        "end_to_end_python_polars_expert_seconds": read_seconds + expert_seconds,
        "end_to_end_speedup_vs_python_polars_expert": (read_seconds + expert_seconds) / min(tpmap_end_to_end),
    }
    if a.mpitb_villages > 0:
        # union = any deprivation: k below the smallest weight (1%).
        kp = float(k) * 100 if k else 1.0
        secs, n = run_mpitb(df, spec, a.mpitb_villages, kp)
        per_area = secs / n
        result |= {
            "mpitb_villages": n,
            "mpitb_seconds": secs,
            "mpitb_seconds_per_area": per_area,
            "mpitb_extrapolated_all_areas_seconds": per_area * ours.height,
            "speedup_vs_mpitb_extrapolated": per_area * ours.height / timing["measure_seconds"],
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
