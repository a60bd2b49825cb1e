"""tpmap.spark in Spark's local mode, against the single-process run on the same rows.

The test command (scripts/test.sh) installs PySpark and sets TPMAP_REQUIRE_SPARK=1, so that these
tests fail rather than skip when Spark or Java is missing there; elsewhere they skip.
"""

import os
import sys
from pathlib import Path

import polars as pl
import pytest

import tpmap

if os.environ.get("TPMAP_REQUIRE_SPARK") != "1":
    pytest.importorskip("pyspark")
import tpmap.spark  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data-samples"


@pytest.fixture(scope="module")
def spark():
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    s = (
        SparkSession.builder.master("local[2]")
        .appName("tpmap-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        # Task results up to 64 MiB come to the driver directly, not through its block manager,
        # which under memory pressure can drop one before it is fetched ("TaskResultLost (result
        # lost from block manager)": the 100 k-household plan test failed so once in CI).
        .config("spark.task.maxDirectResultSize", "64m")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


def read_csv(spark, path):
    # Text columns, the '#' notice line skipped; FAILFAST would stop at a row with the wrong
    # number of fields, which Spark's default (PERMISSIVE) pads or cuts instead.
    return spark.read.option("header", True).option("comment", "#").csv(str(path))


def spark_frame(df):
    return pl.from_arrow(df.toArrow())


def same_types(frame):
    """A single-process frame with the column types tpmap.spark hands to Spark."""
    return pl.from_arrow(tpmap.spark.spark_types(frame.to_arrow()))


def check_equal(run, x):
    """Spark's run against the single-process extract `x`: measures in the same order, the
    households as a set, the rejected rows and the reading report."""
    s = x.score()
    assert spark_frame(run.measures).equals(same_types(s.measures()))
    assert spark_frame(run.households).sort("household_id").equals(same_types(s.households()).sort("household_id"))
    for side in ("households", "persons"):
        want = {k: x.report[side][k] for k in ("input_rows", "accepted", "rejected", "by_reason")}
        got = {k: run.report[side][k] for k in ("input_rows", "accepted", "rejected", "by_reason")}
        assert got == want, side
        assert got["accepted"] + got["rejected"] == got["input_rows"]
    tables = s.tpmap_tables()
    assert (run.tpmap_tables["year"], run.tpmap_tables["mask"]) == (tables["year"], tables["mask"])
    for kind in ("common", "poor"):
        assert set(run.tpmap_tables[kind]) == set(tables[kind])
        for level, want in tables[kind].items():
            got = spark_frame(run.tpmap_tables[kind][level]).sort("area")
            assert got.equals(same_types(want)), (kind, level)
    for got, want in ((run.rejected_households, x.rejected_households()), (run.rejected_persons, x.rejected_persons())):
        g = spark_frame(got).sort("row")
        assert g["row"].to_list() == want["row"].to_list()
        assert g["reasons"].to_list() == want["reasons"].to_list()


def test_samples_from_csv_equal_the_single_process_run(spark):
    hh, pp = read_csv(spark, SAMPLES / "households.csv"), read_csv(spark, SAMPLES / "persons.csv")
    run = tpmap.spark.run(spark, hh, pp, persons_per_part=200)
    assert run.report["parts"] >= 5 and run.report["parts_read_again"] == 0
    # The same rows read by tpmap from the files, and from the text frames Spark read.
    check_equal(run, tpmap.read_extract(SAMPLES / "households.csv", SAMPLES / "persons.csv"))
    check_equal(run, tpmap.read_extract(hh.toArrow(), pp.toArrow()))
    # The households' frame is a Spark DataFrame like any other.
    poor = run.households.where(F.col("poor")).agg(F.sum("members")).first()[0]
    assert poor == spark_frame(run.measures).filter(level="country")["poor"][0] > 0


def test_household_keys_as_spark_decimals(spark):
    # Spark has no unsigned types: a u64 key column arrives as decimal(20,0) (or int64).
    hh, pp = read_csv(spark, SAMPLES / "households.csv"), read_csv(spark, SAMPLES / "persons.csv")
    want = tpmap.spark.run(spark, hh, pp, persons_per_part=300)
    for kind in ("decimal(20,0)", "bigint"):
        h = hh.withColumn("household_id", F.col("household_id").cast(kind))
        p = pp.withColumn("household_id", F.col("household_id").cast(kind))
        got = tpmap.spark.run(spark, h, p, persons_per_part=300)
        assert got.report["parts"] == want.report["parts"], kind
        assert spark_frame(got.measures).equals(spark_frame(want.measures)), kind


def test_dirty_rows_are_rejected_with_their_rows_and_none_lost(spark):
    d = SAMPLES / "dirty"
    hh, pp = read_csv(spark, d / "households.csv"), read_csv(spark, d / "persons.csv")
    run = tpmap.spark.run(spark, hh, pp, persons_per_part=100)
    assert run.report["households"]["rejected"] > 5 and run.report["persons"]["rejected"] > 20
    check_equal(run, tpmap.read_extract(hh.toArrow(), pp.toArrow()))


def test_strict_mode_names_the_input_row_and_column(spark):
    d = SAMPLES / "dirty"
    hh, pp = read_csv(spark, d / "households.csv"), read_csv(spark, d / "persons.csv")
    with pytest.raises(tpmap.InvalidRowError) as one:
        tpmap.read_extract(hh.toArrow(), pp.toArrow(), strict=True)
    with pytest.raises(tpmap.InvalidRowError) as got:
        tpmap.spark.run(spark, hh, pp, strict=True)
    assert (got.value.row, got.value.column) == (one.value.row, one.value.column)
    assert f"row {one.value.row} (from " in str(got.value) and f"column {one.value.column}" in str(got.value)
    assert str(got.value).startswith("the households DataFrame")
    # The row's source file, as Spark read it.
    assert got.value.file.endswith("dirty/households.csv"), got.value.file
    # A missing column is a format error of the DataFrame, as in one process.
    with pytest.raises(tpmap.FormatError, match="village"):
        tpmap.spark.run(spark, hh.drop("village_code"), pp)


def test_100k_synthetic_households_in_any_order(spark, tmp_path):
    tpmap.synth_panel(tmp_path, [2561], households=100_000, seed=17)
    h, p = tmp_path / "2561" / "households.parquet", tmp_path / "2561" / "persons.parquet"
    x = tpmap.read_extract(h, p)
    # Rows dealt to Spark partitions at random: the routing, not the order, decides.
    hh = spark.read.parquet(str(h)).repartition(7)
    pp = spark.read.parquet(str(p)).repartition(5)
    run = tpmap.spark.run(spark, hh, pp)
    s = x.score()
    assert spark_frame(run.measures).equals(same_types(s.measures()))
    assert spark_frame(run.households).sort("household_id").equals(same_types(s.households()).sort("household_id"))
    assert run.report["households"]["accepted"] == x.report["households"]["accepted"] == 100_000
    assert run.report["parts"] == 1  # 280 k persons in one part of 500 k
    # And in parts of 40 k persons.
    small = tpmap.spark.run(spark, hh, pp, persons_per_part=40_000)
    assert small.report["parts"] >= 7
    assert spark_frame(small.measures).equals(spark_frame(run.measures))
    small.unpersist()
    run.unpersist()


def test_bootstrap_standard_errors_are_the_single_process_ones(spark):
    hh, pp = read_csv(spark, SAMPLES / "households.csv"), read_csv(spark, SAMPLES / "persons.csv")
    run = tpmap.spark.run(spark, hh, pp, persons_per_part=150, bootstrap=30, seed=5)
    want = tpmap.read_extract(hh.toArrow(), pp.toArrow()).score().measures(bootstrap=30, seed=5)
    got = spark_frame(run.measures)
    assert got.equals(same_types(want))
    assert got.filter(level="country")["se_M0_bootstrap"][0] > 0


def test_citizen_ids_repeated_across_parts_are_rejected_as_in_one_process(spark):
    # Five persons' citizen IDs copied onto members of other households: the later rows are
    # duplicates wherever the two households' parts are.
    hh = pl.read_csv(SAMPLES / "households.csv", comment_prefix="#", infer_schema=False)
    pp = pl.read_csv(SAMPLES / "persons.csv", comment_prefix="#", infer_schema=False)
    ids = pp["citizen_id"].to_list()
    for i in range(5):
        ids[1000 + 20 * i] = ids[10 + 37 * i]
    pp = pp.with_columns(pl.Series("citizen_id", ids))
    x = tpmap.read_extract(hh, pp)
    assert x.report["persons"]["by_reason"]["duplicate_person"] == 5
    run = tpmap.spark.run(
        spark, spark.createDataFrame(hh.to_arrow()), spark.createDataFrame(pp.to_arrow()), persons_per_part=60
    )
    assert run.report["parts_read_again"] >= 1
    check_equal(run, x)


def test_refusals(spark):
    hh = read_csv(spark, SAMPLES / "households.csv")
    pp = read_csv(spark, SAMPLES / "persons.csv")
    with pytest.raises(tpmap.ConfigError, match="helper column"):
        tpmap.spark.run(spark, hh.withColumn("_tpmap_part", F.lit(1)), pp)
    with pytest.raises(tpmap.TpmapError):
        tpmap.spark.run(spark, hh, pp, catalogue=SAMPLES / "no-such-catalogue.toml")


def test_key_column_follows_the_readers_aliases():
    assert tpmap.key_column(["village_code", "household_id"]) == "household_id"
    assert tpmap.key_column(["รหัสครัวเรือน", "citizen_id"], persons=True) == "รหัสครัวเรือน"
    assert tpmap.key_column(["citizen_id"], persons=True) is None


def test_earlier_citizen_ids_reject_later_rows():
    pp = pl.read_csv(SAMPLES / "persons.csv", comment_prefix="#", infer_schema=False)
    first = tpmap.read_extract(SAMPLES / "households.csv", pp)
    claimed = first.citizen_id_rows()
    assert claimed.height == first.report["persons"]["accepted"]
    x = tpmap.read_extract(SAMPLES / "households.csv", pp, earlier_citizen_ids=claimed["citizen_id"].head(3).to_list())
    assert x.report["persons"]["by_reason"]["duplicate_person"] == 3
    assert x.rejected_persons()["row"].to_list() == claimed["row"].head(3).sort().to_list()


# --- Linkage on Spark: tpmap.spark.link against tpmap.link on the same records -------------------

LINK_SOURCES = ("survey", "welfare", "agency")


@pytest.fixture(scope="module")
def link_bench(tmp_path_factory):
    """A SYNTHETIC labelled linkage benchmark written by tpmap (registries specification)."""
    d = tmp_path_factory.mktemp("link")
    tpmap.link_bench(d, households=1000, seed=7, kind="registries")
    return d


def pair_f1(pairs, truth):
    """Pairwise F1 of the matched pairs against the truth (records of one person in two sources)."""
    t = truth.select("source", "record_id", "person")
    got = {
        tuple(sorted(((r["source_a"], r["record_a"]), (r["source_b"], r["record_b"]))))
        for r in pairs.filter(pl.col("match")).iter_rows(named=True)
    }
    people = {}
    for r in t.iter_rows(named=True):
        people.setdefault(r["person"], []).append((r["source"], r["record_id"]))
    true = {
        tuple(sorted((x, y)))
        for recs in people.values()
        for i, x in enumerate(recs)
        for y in recs[i + 1 :]
        if x[0] != y[0]
    }
    tp = len(got & true)
    precision, recall = tp / max(len(got), 1), tp / max(len(true), 1)
    return 2 * precision * recall / max(precision + recall, 1e-12)


def check_linked(sp, one):
    """Spark's link job against the single-machine one: every pair, probability and match bit for
    bit, every record's entity, the model and the job's figures."""
    pairs = spark_frame(sp.pairs).sort("index")
    want = one.pairs()
    assert pairs.select(want.columns).cast(want.schema).equals(want)
    entities = spark_frame(sp.entities).sort("record")
    assert entities["record"].to_list() == list(range(one.records))
    assert entities.select(one.entities().columns).equals(one.entities())
    assert (sp.records, sp.candidate_pairs, sp.matches) == (one.records, one.candidate_pairs, one.matches)
    assert sp.model_json == one.model_json()
    assert sp.warnings == one.warnings
    return pairs


def test_link_on_spark_equals_the_single_machine_linker(spark, link_bench):
    d = link_bench
    one = tpmap.link([d / f"{s}.csv" for s in LINK_SOURCES])
    dfs = [read_csv(spark, d / f"{s}.csv") for s in LINK_SOURCES]
    sp = tpmap.spark.link(spark, dfs, names=list(LINK_SOURCES))
    pairs = check_linked(sp, one)
    assert sum(sp.rule_pairs) >= sp.candidate_pairs > 0 and sp.matches > 0
    assert len(sp.skipped_blocks) == len(sp.rule_pairs)
    truth = pl.read_csv(d / "truth.csv", comment_prefix="#", schema_overrides={"record_id": pl.String})
    f1 = pair_f1(pairs, truth)
    assert f1 == pair_f1(one.pairs(), truth)
    assert f1 > 0.9, f1
    sp.unpersist()


def test_link_on_spark_with_a_saved_model_in_any_partitioning(spark, link_bench):
    """A saved model, the sources split into many Spark partitions (rows kept in order) and dealt
    to another number of buckets: still the single-machine result."""
    d = link_bench
    first = tpmap.link([d / f"{s}.csv" for s in LINK_SOURCES])
    model = first.model_json()
    one = tpmap.link([d / f"{s}.csv" for s in LINK_SOURCES], model=model, threshold=0.8)
    spark.conf.set("spark.sql.files.maxPartitionBytes", "16k")
    try:
        dfs = [read_csv(spark, d / f"{s}.csv") for s in LINK_SOURCES]
        assert dfs[0].rdd.getNumPartitions() > 1
        sp = tpmap.spark.link(spark, dfs, names=list(LINK_SOURCES), model=model, threshold=0.8, buckets=3)
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    check_linked(sp, one)
    sp.unpersist()


def test_link_on_spark_refusals(spark, link_bench):
    df = read_csv(spark, link_bench / "survey.csv")
    with pytest.raises(tpmap.errors.ConfigError):
        tpmap.spark.link(spark, [df], threshold=1.5)
    with pytest.raises(tpmap.errors.ConfigError):
        tpmap.spark.link(spark, [df], task="merge")
    with pytest.raises(tpmap.errors.ConfigError):
        tpmap.spark.link(spark, [df, df], names=["one"])
    with pytest.raises(tpmap.errors.FormatError, match="first_name"):
        tpmap.spark.link(spark, [df.drop("first_name")], names=["survey"])


# --- Planning on Spark: run(..., catalogue=) against Scores.plan on the same rows ----------------

KEY = b"spark-plan-test-key-32-bytes!!!!"


def check_plan(run, scores, catalogue, ordered=True):
    """Spark's plan against the single-process one: every output frame, and the summary."""
    want = scores.plan(catalogue, key=KEY)
    got = run.plan
    assert got is not None and got.households >= want.summary()["households"]
    for name in ("household_plan", "programs", "declined"):
        g, w = spark_frame(getattr(got, name)), same_types(getattr(want, name)())
        if not ordered:
            g, w = g.sort(g.columns), w.sort(w.columns)
        assert g.equals(w), name
    assert set(got.worklists) == set(want.worklists())
    for agency, frame in want.worklists().items():
        g, w = spark_frame(got.worklists[agency]), same_types(frame)
        if not ordered:
            g, w = g.sort(g.columns), w.sort(w.columns)
        assert g.equals(w), agency
    assert got.local.summary() == want.summary()
    assert got.local.report("amphoe").equals(want.report("amphoe"))
    return want


def test_plan_on_spark_equals_the_single_process_plan(spark):
    hh, pp = read_csv(spark, SAMPLES / "households.csv"), read_csv(spark, SAMPLES / "persons.csv")
    catalogue = tpmap.Catalogue(SAMPLES / "catalogue.toml")
    run = tpmap.spark.run(spark, hh, pp, persons_per_part=150, catalogue=SAMPLES / "catalogue.toml", key=KEY)
    assert run.report["parts"] > 1
    x = tpmap.read_extract(SAMPLES / "households.csv", SAMPLES / "persons.csv")
    want = check_plan(run, x.score(), catalogue)
    assert want.summary()["places"] > 0
    run.unpersist()


def test_plan_on_spark_under_national_caps_in_any_order(spark, tmp_path):
    """100 k SYNTHETIC households in parts of 40 k persons, dealt to Spark partitions at random:
    the sample catalogue's national caps and budgets bind, and the plan is the single process's."""
    tpmap.synth_panel(tmp_path, [2561], households=100_000, seed=23)
    h, p = tmp_path / "2561" / "households.parquet", tmp_path / "2561" / "persons.parquet"
    catalogue = tpmap.Catalogue(SAMPLES / "catalogue.toml")
    hh = spark.read.parquet(str(h)).repartition(7)
    pp = spark.read.parquet(str(p)).repartition(5)
    run = tpmap.spark.run(spark, hh, pp, persons_per_part=40_000, catalogue=catalogue, key=KEY)
    assert run.report["parts"] >= 7
    want = check_plan(run, tpmap.read_extract(h, p).score(), catalogue, ordered=False)
    declined = want.programs()["declined_capacity"].sum() + want.programs()["declined_budget"].sum()
    assert declined > 0, "a national cap or budget binds"
    run.unpersist()


# --- Welfare from a registry on Spark: run(..., welfare_registry=) against Extract.link_welfare ---


def test_welfare_registry_on_spark_equals_link_welfare(spark):
    """Persons without welfare columns: their flags come from the registry alone, linked on Spark
    and in one process; the scores, tables, plan and linkage report agree."""
    hh = read_csv(spark, SAMPLES / "households.csv")
    pp = read_csv(spark, SAMPLES / "persons.csv").drop("welfare_registered", "welfare_validated")
    registry = SAMPLES / "welfare_registry.csv"
    catalogue = SAMPLES / "catalogue.toml"
    run = tpmap.spark.run(spark, hh, pp, persons_per_part=150, welfare_registry=registry, catalogue=catalogue, key=KEY)
    assert run.report["parts"] > 1
    x = tpmap.read_extract(hh.toArrow(), pp.toArrow())
    y, info = x.link_welfare(registry)
    check_equal(run, y)
    got = run.report["welfare"]
    for k in ("persons", "registry_records", "matched", "matched_by_id", "validated", "registry_unmatched"):
        assert got[k] == info[k], k
    assert 0 < got["matched"] < got["persons"]
    # The flags are what makes households target poor here: none without the registry.
    s = y.score()
    assert sum(s.households()["target_poor"]) > 0 == sum(x.score().households()["target_poor"])
    check_plan(run, s, tpmap.Catalogue(catalogue))
    run.unpersist()


def test_driver_tables_reach_spark_in_order(spark):
    """Plan outputs go from the driver to Spark as Arrow cells of 65,536 rows: several cells come
    back whole and in order."""
    import pyarrow as pa

    t = pa.table({"n": pa.array(range(200_003), pa.int64()), "s": pa.array([str(i % 7) for i in range(200_003)])})
    got = tpmap.spark._distributed(spark, t)
    assert pl.from_arrow(got.toArrow()).equals(pl.from_arrow(t))
    empty = tpmap.spark._distributed(spark, t.slice(0, 0))
    assert empty.count() == 0 and empty.columns == ["n", "s"]


def test_plan_on_spark_of_no_rows(spark):
    hh, pp = read_csv(spark, SAMPLES / "households.csv").limit(0), read_csv(spark, SAMPLES / "persons.csv").limit(0)
    run = tpmap.spark.run(spark, hh, pp, catalogue=SAMPLES / "catalogue.toml", key=KEY)
    want = tpmap.read_extract(hh.toArrow(), pp.toArrow()).score().plan(tpmap.Catalogue(SAMPLES / "catalogue.toml"), key=KEY)
    assert run.plan.households == 0 and run.plan.local.summary() == want.summary()
    assert spark_frame(run.plan.programs).equals(same_types(want.programs()))
    assert run.plan.household_plan.count() == 0
