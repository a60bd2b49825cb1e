"""A provincial officer's run: the whole job on a folder, then one province's plan.

    python python/examples/provincial_officer.py [DIR] [PROVINCE]

DIR defaults to data-samples (SYNTHETIC households, ILLUSTRATIVE catalogue).
"""

import sys
import tempfile
from pathlib import Path

import polars as pl

import tpmap

root = Path(__file__).resolve().parents[2]
folder = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "data-samples"
out = Path(tempfile.mkdtemp(prefix="tpmap-officer-"))

# 1. Everything `tpmap run` does, with report.html, in one call.
report = tpmap.run(folder, out)
print(f"wrote {out}: target poor in the country {report['measure']['country']['target_poor']:.0f}")

# 2. The province with the most target poor (or the one asked for).
m = pl.read_parquet(out / "measures.parquet").filter(pl.col("level") == "province")
province = sys.argv[2] if len(sys.argv) > 2 else m.sort("target_poor", descending=True)["area"][0]
row = m.filter(pl.col("area") == province).row(0, named=True)
print(f"province {province}: {row['population']:.0f} people, {100 * row['H']:.1f}% poor, {row['target_poor']:.0f} target poor")

# 3. Its households' lines of the plan `run` made (and wrote): covered deprivations and gaps.
lines = pl.read_parquet(out / "plan" / "household_plan.parquet")
here = lines.filter(pl.col("village_code").cast(pl.String).str.slice(0, 2) == province)
print(here.group_by("indicator").agg(pl.len().alias("deprivations"), pl.col("covered").sum()).sort("indicator"))
print(here.filter(~pl.col("covered")).select("indicator", "gap").head(5))
provinces = pl.read_csv(out / "plan" / "provinces.csv", comment_prefix="#", infer_schema=False)
print(provinces.filter(pl.col("area_code") == province))
