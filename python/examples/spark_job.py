"""A data-platform job: TPMAP's rule on Apache Spark, with the single-process run as a check.

    python python/examples/spark_job.py [DIR]

Reads the households and persons with Spark (as a cluster job would read them from HDFS or a
lake), scores them with tpmap.spark in parts, and prints the provinces' measures, TPMAP's
province table and the reading report. Spark runs in local mode here (Java 17 or 21 needed);
on a cluster, ship the wheel in a packed environment (docs/spark.md). The bundled households are
SYNTHETIC: the figures show the method, not Thailand.
"""

import os
import sys
from pathlib import Path

import polars as pl
from pyspark.sql import SparkSession

import tpmap
import tpmap.spark

root = Path(__file__).resolve().parents[2]
folder = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "data-samples"
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
spark = (
    SparkSession.builder.master("local[2]")
    .appName("tpmap-example")
    .config("spark.sql.shuffle.partitions", "4")
    .config("spark.ui.enabled", "false")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")

# Text columns, the files' '#' notice line skipped; FAILFAST stops at a row with the wrong number
# of fields (Spark's default would pad it, where tpmap rejects it).
read = spark.read.option("header", True).option("comment", "#").option("mode", "FAILFAST")
hh, pp = read.csv(str(folder / "households.csv")), read.csv(str(folder / "persons.csv"))
run = tpmap.spark.run(spark, hh, pp, persons_per_part=1_000)

print("parts:", run.report["parts"], "| households", run.report["households"], "| persons", run.report["persons"])
provinces = run.measures.where("level = 'province'").select("area", "population", "poor", "H", "A", "M0")
provinces.orderBy("area").show()
table = run.tpmap_tables["poor"]["province"]  # TPMAP's public province table, as tpmap run writes it
table.select(*[f"`{c}`" for c in table.columns[:6]]).orderBy("area").show()

# The same rows in one process: the measures are the same, to the last bit.
one = tpmap.read_extract(hh.toArrow(), pp.toArrow()).score().measures()
same = pl.from_arrow(run.measures.toArrow()).equals(pl.from_arrow(tpmap.spark.spark_types(one.to_arrow())))
print("measures identical to the single-process run:", same)
run.unpersist()
spark.stop()
if not same:
    sys.exit(1)
