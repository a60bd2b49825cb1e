"""tpmap.spark.link on Spark's local mode against tpmap.link in one process, on the same files.

The data is SYNTHETIC: tpmap's labelled linkage benchmark (`tpmap.link_bench(..., kind=
"registries")`: a survey, a welfare-card registry and an agency list of the same people, with the
errors of docs/linkage.md), written to DATA_DIR when it is not there. Each side runs in its own
child process, one after the other, measured as `benches/spark_local.py` measures (time to
outputs written, peak resident memory of the process tree, Spark's shuffle bytes); the script
checks that both wrote the same pairs (every column, bit for bit) and the same entities.

    python benches/spark_link.py DATA_DIR [--households 100000] [--master local[2]] [--driver-memory 8g]
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spark_local import SESSION, SHUFFLE, measured  # noqa: E402


ONE = r"""
import json, sys, time
import tpmap
d, out = sys.argv[1], sys.argv[2]
t = time.perf_counter()
l = tpmap.link([f"{d}/{s}.csv" for s in ("survey", "welfare", "agency")])
l.pairs().write_parquet(f"{out}/pairs.parquet")
l.entities().write_parquet(f"{out}/entities.parquet")
print(json.dumps({"seconds": time.perf_counter() - t, "records": l.records, "candidates": l.candidate_pairs,
                  "matches": l.matches}))
"""

SPARK = SESSION + r"""
names = ["survey", "welfare", "agency"]
dfs = [spark.read.option("header", True).option("comment", "#").csv(f"{d}/{s}.csv") for s in names]
l = tpmap.spark.link(spark, dfs, names=names)
pl.from_arrow(l.pairs.toArrow()).sort("index").write_parquet(f"{out}/pairs.parquet")
pl.from_arrow(l.entities.toArrow()).sort("record").write_parquet(f"{out}/entities.parquet")
seconds = time.perf_counter() - t0
""" + SHUFFLE + r"""
print(json.dumps({"seconds": seconds, "records": l.records, "candidates": l.candidate_pairs, "matches": l.matches,
                  "shuffle_write": shuffle_write, "shuffle_read": shuffle_read}))
spark.stop()
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--households", type=int, default=100_000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="8g")
    a = ap.parse_args()
    import polars as pl

    import tpmap

    if not os.path.exists(os.path.join(a.data, "truth.csv")):
        tpmap.link_bench(a.data, households=a.households, seed=11, kind="registries")
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as spark:
        r1, m1 = measured([sys.executable, "-c", ONE, a.data, one])
        r2, m2 = measured([sys.executable, "-c", SPARK, a.data, spark, a.master, a.driver_memory])
        p1 = pl.read_parquet(f"{one}/pairs.parquet")
        pairs = pl.read_parquet(f"{spark}/pairs.parquet").select(p1.columns).cast(p1.schema).equals(p1)
        e1 = pl.read_parquet(f"{one}/entities.parquet")
        entities = pl.read_parquet(f"{spark}/entities.parquet").select(e1.columns).equals(e1)
    print(f"pairs identical: {pairs}; entities identical: {entities}")
    print("side\trecords\tcandidates\tmatches\tseconds\tpeak_GB\tshuffle_write_MB\tshuffle_read_MB")
    for name, r, m in (("tpmap.link one process", r1, m1), (f"tpmap.spark.link {a.master}", r2, m2)):
        shuffle = f"{r['shuffle_write'] / 1e6:.0f}\t{r['shuffle_read'] / 1e6:.0f}" if "shuffle_write" in r else "\t"
        print(f"{name}\t{r['records']}\t{r['candidates']}\t{r['matches']}\t{r['seconds']:.1f}\t{m / 1e9:.2f}\t{shuffle}")


if __name__ == "__main__":
    main()
