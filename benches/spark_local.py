"""tpmap.spark on Spark's local mode against tpmap in one process, on the same Parquet extract.

Each side runs in its own child process, one after the other, so that a peak memory is its own:
the peak is the largest sum of the resident sets of the child and all its descendants (the JVM,
Spark's Python workers), sampled every 0.2 s from /proc. Both sides produce the same outputs —
the measures at every level, TPMAP's public tables and the household scores, written to Parquet —
and the script checks that they are identical (the household scores as sets). All data here is
SYNTHETIC (`tpmap synth`).

    python benches/spark_local.py DATA_DIR [--master local[2]] [--driver-memory 8g] [--catalogue TOML]

With `--catalogue`, both sides also plan (`Scores.plan` / `run(..., catalogue=)`, one fixed
pseudonym key) and write the household plan, checked identical too.

DATA_DIR holds households.parquet and persons.parquet. Prints one TSV row per side, with the
bytes Spark's stages wrote to and read from the shuffle (its status API on localhost).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ONE = r"""
import json, sys, time
import tpmap
d, out = sys.argv[1], sys.argv[2]
t = time.perf_counter()
x = tpmap.read_extract(f"{d}/households.parquet", f"{d}/persons.parquet")
s = x.score()
m = s.measures()
s.households().write_parquet(f"{out}/households.parquet")
m.write_parquet(f"{out}/measures.parquet")
tables = s.tpmap_tables()
for kind in ("common", "poor"):
    for level, frame in tables[kind].items():
        frame.write_parquet(f"{out}/tables_{kind}_{level}.parquet")
if len(sys.argv) > 3:
    plan = s.plan(tpmap.Catalogue(sys.argv[3]), key=b"bench-key-bench-key-bench-key-32")
    plan.household_plan().write_parquet(f"{out}/household_plan.parquet")
print(json.dumps({"seconds": time.perf_counter() - t, "households": x.report["households"]["accepted"]}))
"""

# The Spark side's session (argv: data, out, master, driver memory), shared with spark_link.py.
SESSION = r"""
import json, os, sys, time
import polars as pl
from pyspark.sql import SparkSession
import tpmap.spark
d, out, master, mem = sys.argv[1:5]
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
spark = (SparkSession.builder.master(master).config("spark.driver.memory", mem)
         .config("spark.sql.shuffle.partitions", "8").config("spark.ui.port", "4057")
         .config("spark.port.maxRetries", "50").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
t0 = time.perf_counter()
"""

# Bytes Spark's stages wrote to and read from the shuffle, from its status API (the UI's REST
# endpoint on localhost).
SHUFFLE = r"""
import urllib.request
sc = spark.sparkContext
url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/stages"
stages = json.load(urllib.request.urlopen(url))
shuffle_write = sum(s.get("shuffleWriteBytes", 0) for s in stages)
shuffle_read = sum(s.get("shuffleReadBytes", 0) for s in stages)
"""

SPARK = SESSION + r"""
hh = spark.read.parquet(f"{d}/households.parquet")
pp = spark.read.parquet(f"{d}/persons.parquet")
catalogue = sys.argv[5] if len(sys.argv) > 5 else None
r = tpmap.spark.run(spark, hh, pp, catalogue=catalogue, key=b"bench-key-bench-key-bench-key-32")
if catalogue:
    pl.from_arrow(r.plan.household_plan.toArrow()).write_parquet(f"{out}/household_plan.parquet")
r.households.write.mode("overwrite").parquet(f"{out}/households_spark")
pl.from_arrow(r.measures.toArrow()).write_parquet(f"{out}/measures.parquet")
for kind in ("common", "poor"):
    for level, frame in r.tpmap_tables[kind].items():
        pl.from_arrow(frame.toArrow()).write_parquet(f"{out}/tables_{kind}_{level}.parquet")
seconds = time.perf_counter() - t0
""" + SHUFFLE + r"""
print(json.dumps({"seconds": seconds, "households": r.report["households"]["accepted"], "parts": r.report["parts"],
                  "shuffle_write": shuffle_write, "shuffle_read": shuffle_read}))
spark.stop()
"""


def tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def measured(args: list[str]) -> tuple[dict, int]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(0.2)

    th = threading.Thread(target=sample)
    th.start()
    stdout, _ = proc.communicate()
    done.set()
    th.join()
    if proc.returncode != 0:
        sys.exit(f"{args[:3]} failed ({proc.returncode})")
    return json.loads(stdout.strip().splitlines()[-1]), peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="8g")
    ap.add_argument("--catalogue")
    a = ap.parse_args()
    import polars as pl

    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as spark:
        plan = [a.catalogue] if a.catalogue else []
        r1, m1 = measured([sys.executable, "-c", ONE, a.data, one, *plan])
        r2, m2 = measured([sys.executable, "-c", SPARK, a.data, spark, a.master, a.driver_memory, *plan])
        import tpmap.spark

        def typed(path: str) -> pl.DataFrame:
            return pl.from_arrow(tpmap.spark.spark_types(pl.read_parquet(path).to_arrow()))

        same = pl.read_parquet(f"{spark}/measures.parquet").equals(typed(f"{one}/measures.parquet"))
        # The household scores as sets (Spark writes its parts in any order), TPMAP's tables by area.
        key = "household_id"
        households = pl.read_parquet(f"{spark}/households_spark/*.parquet").sort(key).equals(
            typed(f"{one}/households.parquet").sort(key)
        )
        tables = all(
            pl.read_parquet(f"{spark}/{f}").sort("area").equals(typed(f"{one}/{f}").sort("area"))
            for f in os.listdir(one)
            if f.startswith("tables_")
        )
        if a.catalogue:
            # In the input's order on both sides.
            same_plan = pl.read_parquet(f"{spark}/household_plan.parquet").equals(
                typed(f"{one}/household_plan.parquet")
            )
            print(f"household plan identical: {same_plan}")
    print(f"household scores identical: {households}; TPMAP's tables identical: {tables}")
    print("side\thouseholds\tseconds\tpeak_GB\tshuffle_write_MB\tshuffle_read_MB\tmeasures_identical")
    print(f"one process\t{r1['households']}\t{r1['seconds']:.1f}\t{m1 / 1e9:.2f}\t\t\t")
    print(
        f"tpmap.spark {a.master} ({r2['parts']} parts)\t{r2['households']}\t{r2['seconds']:.1f}\t{m2 / 1e9:.2f}\t"
        f"{r2['shuffle_write'] / 1e6:.0f}\t{r2['shuffle_read'] / 1e6:.0f}\t{same}"
    )


if __name__ == "__main__":
    main()
