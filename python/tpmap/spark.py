"""tpmap on Apache Spark: a thin adapter, exact to the last household.

Spark is the engine where government data lives (Hadoop clusters, managed Spark); tpmap plugs into
it instead of growing a cluster of its own. This module only moves rows: every rule (parsing keys,
validating, scoring, the measures, TPMAP's tables and their merge) is tpmap's own Rust code,
called per part inside Spark and once on the driver.

>>> from pyspark.sql import SparkSession                              # doctest: +SKIP
>>> import tpmap.spark                                                # doctest: +SKIP
>>> spark = SparkSession.builder.master("local[2]").getOrCreate()     # doctest: +SKIP
>>> hh = spark.read.parquet("households.parquet")                     # doctest: +SKIP
>>> pp = spark.read.parquet("persons.parquet")                        # doctest: +SKIP
>>> r = tpmap.spark.run(spark, hh, pp)                                # doctest: +SKIP
>>> r.measures.where("level = 'province'").show()                     # doctest: +SKIP

How it works (docs/spark.md):

1. **Parts.** Households and persons are co-grouped (`cogroup(...).applyInArrow`) by a hash of
   their household key's digits, so that every row of a household key — its household rows,
   duplicates included, and its members — lands in the same part, and parts hold about
   `persons_per_part` persons whatever the provinces' sizes. The hash only groups; each part is
   read, validated and scored by `tpmap.read_extract(...).score(...)` in the worker, with tpmap's
   own parsing of every value.
2. **Exact sums.** Each part returns its household scores, rejected rows and reading report, its
   partial result (every village's sums, docs/partial.md) and its village rows of TPMAP's tables.
   Spark adds the parts' village sums (`groupBy(...).sum`): they are whole numbers below 2^53, so
   the order of the additions does not matter; the driver merges the villages with
   `tpmap.merge(..., tpmap_areas=True)` and rolls the tables up with `tpmap.roll_up_tables`. The
   measures are the single-process run's, byte for byte.
3. **Citizen IDs across parts.** An ID accepted in two parts is rejected on the later row, as one
   process rejects it: the parts holding a later row are read again with the IDs claimed earlier
   (`read_extract(..., earlier_citizen_ids=...)`).

Rows are numbered 1, 2, ... in the input DataFrames' order (for a DataFrame read from one file,
its data rows in file order), so a rejected row names the row a user can find.

Also here: `link` (record linkage on Spark, `tpmap.link`'s result), `run(..., catalogue=)` (the
plan, made on the driver over the poor households) and `run(..., welfare_registry=)` (welfare
flags from a registry linked on Spark, as `Extract.link_welfare` sets them).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ._tpmap import LINK_RECORD_COLUMNS, Catalogue, key_column, merge, read_extract, roll_up_tables
from .errors import ConfigError, InvalidRowError, LimitError, TpmapError
from ._spark_link import SparkLinked, link

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = ["SparkRun", "SparkPlan", "SparkLinked", "link", "run", "spark_types", "PYSPARK_TESTED"]

#: Versions the test command runs this module with (Spark's local mode).
PYSPARK_TESTED = {"pyspark": "4.3.0", "pyarrow": ">=16", "pandas": ">=2.2,<3", "java": "17"}

# Helper columns the adapter adds; an input column of the same name is refused.
_ROW = "_tpmap_row"
_PART = "_tpmap_part"
_WREG, _WVAL = "_tpmap_wreg", "_tpmap_wval"
_HELPERS = (_ROW, _PART, "_tpmap_mid", _WREG, _WVAL)

# Most persons repeating a citizen ID accepted in another part (their parts are read again with
# the IDs claimed elsewhere, which the driver collects).
MAX_REPEATED_IDS = 1_000_000

# Rows of the household scores per Arrow IPC payload (a binary cell stays far below Spark's 2 GB).
_CHUNK = 65_536


@dataclass
class SparkPlan:
    """The plan of `run(..., catalogue=...)`: `Scores.plan`'s outputs as Spark DataFrames, and the
    plan itself (`local`, a `tpmap.Plan` on the driver: `write`, `explain`, `report`, `summary`)."""

    #: `Plan.household_plan()`: one row per deprived indicator of each household of the population.
    household_plan: "DataFrame"
    #: `Plan.programs()`: per program, candidates, eligible, selected, declined by reason, budget.
    programs: "DataFrame"
    #: `Plan.declined()`: eligible units left out, with the reason.
    declined: "DataFrame"
    #: `Plan.worklists()`: agency id → its work list.
    worklists: dict[str, "DataFrame"]
    #: The plan on the driver.
    local: Any
    #: Households of the population's superset (the poor) the driver planned over.
    households: int


@dataclass
class SparkRun:
    """What `run` returns: Spark DataFrames, and the merged reading report."""

    #: One row per accepted household: score (also exact), poor, target poor, deprived dimensions
    #: (the columns of `Scores.households()`).
    households: "DataFrame"
    #: Area measures at every level (country, province, amphoe, tambon, village), the columns of
    #: `Scores.measures()`, equal to the single-process run's.
    measures: "DataFrame"
    #: Rejected household rows: `row` (1-based, input order), `line` (null: a DataFrame has no
    #: lines), `reasons`.
    rejected_households: "DataFrame"
    #: Rejected person rows, like `rejected_households`.
    rejected_persons: "DataFrame"
    #: TPMAP's public tables (`tpmap run`'s `tpmap/` folder): `{"year", "mask", "common": {level:
    #: DataFrame}, "poor": {level: DataFrame}}`, levels `country` to `village`; the parts' village
    #: counts summed by Spark and rolled up by tpmap, equal to `Scores.tpmap_tables()`.
    tpmap_tables: dict[str, Any] = field(default_factory=dict)
    #: The reading report summed over the parts: for `households` and `persons`, `input_rows`,
    #: `accepted`, `rejected` and `by_reason`; `parts` (province numbers, 0 for unreadable rows);
    #: with a welfare registry, `welfare` (`Extract.link_welfare`'s report).
    report: dict[str, Any] = field(default_factory=dict)
    #: With a catalogue: the plan, equal to `read_extract(...).score(...).plan(catalogue, ...)`.
    plan: SparkPlan | None = None
    #: The parts' outputs, cached by Spark while the DataFrames above are in use.
    _cached: list["DataFrame"] = field(default_factory=list, repr=False)

    def unpersist(self) -> None:
        """Frees the parts' outputs Spark keeps cached (the DataFrames above recompute after)."""
        for df in self._cached:
            df.unpersist()


def spark_types(table: "pa.Table") -> "pa.Table":
    """Types Spark takes: text and bytes as plain `string`/`binary` (no views), unsigned
    integers as the next signed type (Spark has none; a UInt64 becomes Int64, and the cast is a
    checked one: household IDs, at most 18 digits, always fit)."""
    import pyarrow as pa

    signed = {pa.uint8(): pa.int16(), pa.uint16(): pa.int32(), pa.uint32(): pa.int64(), pa.uint64(): pa.int64()}
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_large_string(t) or t == pa.string_view():
            t = pa.string()
        elif pa.types.is_large_binary(t) or t == pa.binary_view():
            t = pa.binary()
        elif t in signed:
            t = signed[t]
        fields.append(pa.field(f.name, t, f.nullable))
    return table.cast(pa.schema(fields))


def _numbered(df: "DataFrame") -> tuple["DataFrame", int]:
    """`df` with `_tpmap_row`: 1, 2, ... in the DataFrame's order (partition offsets plus the
    position inside each partition, both from `monotonically_increasing_id`), and its row count."""
    from pyspark.sql import functions as F

    with_id = df.withColumn("_tpmap_mid", F.monotonically_increasing_id())
    # The id's upper 31 bits are the partition index, the lower 33 the position in it.
    pid = F.shiftright(F.col("_tpmap_mid"), 33)
    counts = with_id.groupBy(pid.alias("pid")).count().collect()
    offsets: dict[int, int] = {}
    total = 0
    for r in sorted(counts, key=lambda r: r["pid"]):
        offsets[r["pid"]] = total
        total += r["count"]
    if not offsets:
        return df.withColumn(_ROW, F.lit(0).cast("long")).limit(0), 0
    offset = F.create_map(*[x for p, o in offsets.items() for x in (F.lit(p), F.lit(o))])
    pos = F.col("_tpmap_mid").bitwiseAND(F.lit((1 << 33) - 1))
    return with_id.withColumn(_ROW, offset[pid] + pos + F.lit(1)).drop("_tpmap_mid"), total


def _part_of(df: "DataFrame", column: str | None, parts: int) -> "Column":
    """A part number in 0..parts from a hash of the household key's digits (Thai digits read as
    digits, leading zeros dropped) but the last four: two cells tpmap parses to the same key have
    the same digits, so they land in the same part. Only a grouping: tpmap parses the keys in
    the part."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    if column is None:
        return F.lit(0)
    c = F.col(f"`{column}`")
    if not isinstance(df.schema[column].dataType, StringType):
        # Integers and decimal(20,0) (Spark has no unsigned types) as their digits.
        c = c.cast("decimal(38,0)").cast("string")
    digits = F.regexp_replace(F.translate(c, "๐๑๒๓๔๕๖๗๘๙", "0123456789"), "[^0-9]", "")
    key = F.coalesce(F.regexp_replace(digits, "^0+", ""), F.lit(""))
    # Blocks of 10,000 consecutive keys go together: TPMAP's keys begin with the area code, so a
    # block shares villages, and each village's sums come from few parts.
    block = F.when(F.length(key) > 4, F.left(key, F.length(key) - F.lit(4))).otherwise(F.lit(""))
    return F.pmod(F.xxhash64(block), F.lit(parts)).cast("int")


def _ipc(table: "pa.Table") -> bytes:
    import pyarrow as pa

    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


def _unipc(data: bytes) -> "pa.Table":
    import pyarrow as pa

    return pa.ipc.open_stream(data).read_all()


_PARTS_SCHEMA = "part int, kind string, seq int, payload binary"


def _table(rows: list[tuple[int, str, int, bytes]]) -> "pa.Table":
    """A part's output rows: (part, kind, seq, payload)."""
    import pyarrow as pa

    schema = pa.schema([("part", pa.int32()), ("kind", pa.string()), ("seq", pa.int32()), ("payload", pa.binary())])
    return pa.Table.from_pylist([dict(part=n, kind=k, seq=q, payload=b) for n, k, q, b in rows], schema=schema)


def _source_file(df: "DataFrame", row: int) -> str:
    """The file input row `row` of `df` was read from (empty when not read from files): looked up
    again only when an error names the row."""
    from pyspark.sql import functions as F

    numbered, _ = _numbered(df.withColumn("_tpmap_file", F.input_file_name()))
    got = numbered.where(F.col(_ROW) == row).select("_tpmap_file").first()
    return got[0] if got and got[0] else ""


def _raise(errors: list[dict[str, Any]], inputs: dict[str, "DataFrame"]) -> None:
    """Raises the first error of the parts (the earliest row, households before persons) as the
    exception tpmap raises in one process, naming the input DataFrame's row, its source file and
    the column."""
    from . import errors as E

    rowed = sorted((e for e in errors if e.get("row") is not None), key=lambda e: (e["side"] != "households", e["row"]))
    if rowed:
        e = rowed[0]
        # The reason without the part's own row numbers.
        reason = e["message"].split(f"column {e['column']}: ", 1)[-1]
        source = _source_file(inputs[e["side"]], e["row"])
        where = f" (from {source})" if source else ""
        message = f"the {e['side']} DataFrame, row {e['row']}{where}, column {e['column']}: {reason}"
        raise E.InvalidRowError(message, source or f"{e['side']} DataFrame", e["row"], None, e["column"])
    e = errors[0]
    kind = getattr(E, e["class"], E.TpmapError)
    if kind in (E.FormatError, E.LimitError):
        raise kind(e["message"], "DataFrame")
    if kind is E.ConfigError:
        raise E.ConfigError(e["message"])
    raise E.TpmapError(e["message"])


def run(
    spark: "SparkSession",
    households: "DataFrame",
    persons: "DataFrame",
    *,
    mask: str = "11111",
    welfare: str = "validated",
    unit: str = "people",
    na: str = "not-deprived",
    missing: str = "drop",
    strict: bool = False,
    edition: str = "bmn-2560",
    allow_new_villages: bool = False,
    one_means_pass: bool = False,
    survey_year: int | None = None,
    persons_per_part: int = 500_000,
    bootstrap: int = 0,
    seed: int = 1,
    tpmap_year: int = 2561,
    catalogue: Any = None,
    welfare_registry: Any = None,
    population: str = "target",
    plan_date: str | None = None,
    key: bytes | None = None,
) -> SparkRun:
    """Reads, validates and scores a households and a persons DataFrame on Spark, in parts of
    about `persons_per_part` persons, and merges the measures exactly; the other options are
    `read_extract`'s and `score`'s. Outputs equal the single-process run's on the same rows:
    measures byte for byte, household scores and rejected rows as sets, the reading report.
    With `bootstrap` replicates (drawn per household from its ID and `seed`, so the same however
    the rows are split) the measures carry `measures(bootstrap=, seed=)`'s standard errors.

    With a `catalogue` (a `tpmap.Catalogue` or its path), the households are also matched to its
    programs: `SparkRun.plan`, equal to `Scores.plan(catalogue, population=, date=plan_date,
    key=)` in one process. A plan depends on the households of its population alone (candidates,
    eligibility, need, pseudonyms, and the fill under national, province and amphoe caps and
    budgets), so each part sends its poor households (a superset of the target poor) to the
    driver, which plans them with tpmap, centrally (docs/spark.md, "Planning").

    With a `welfare_registry` (a Spark DataFrame of registry records, or a CSV path), every
    accepted person's welfare flags come from linking the persons with it, as
    `Extract.link_welfare` sets them: the persons (in the whole extract's order) and the registry
    are linked on Spark by `tpmap.spark.link`, each person takes its best match, and every part is
    read and scored again with the flags; `report["welfare"]` says what the linkage found.
    """
    from pyspark.sql import functions as F

    if persons_per_part < 1:
        raise ConfigError(f"persons_per_part is {persons_per_part}: give at least 1")
    registry = registry_name = None
    if welfare_registry is not None:
        if isinstance(welfare_registry, (str, os.PathLike)):
            registry_name = os.path.splitext(os.path.basename(os.fspath(welfare_registry)))[0]
            registry = spark.read.option("header", True).option("comment", "#").csv(os.fspath(welfare_registry))
        else:
            registry, registry_name = welfare_registry, "welfare_registry"
    if catalogue is not None and not isinstance(catalogue, Catalogue):
        catalogue = Catalogue(catalogue, edition=edition)
    for df, name in ((households, "households"), (persons, "persons")):
        clash = [c for c in df.columns if c in _HELPERS]
        if clash:
            raise ConfigError(f"the {name} DataFrame has tpmap.spark's helper column {clash[0]!r}: rename it")
    read_opts = dict(
        strict=strict,
        edition=edition,
        allow_new_villages=allow_new_villages,
        one_means_pass=one_means_pass,
        survey_year=survey_year,
    )
    score_opts = dict(mask=mask, welfare=welfare, unit=unit, na=na, missing=missing)
    boot = dict(bootstrap=bootstrap, seed=seed)
    h_cols, p_cols = list(households.columns), list(persons.columns)

    # 1. Rows numbered in input order, and dealt to parts by household key.
    hk, h_total = _numbered(households)
    pk, p_total = _numbered(persons)
    n_parts = max(1, -(-p_total // persons_per_part), -(-h_total // persons_per_part))
    hk = hk.withColumn(_PART, _part_of(hk, key_column(h_cols, edition=edition), n_parts))
    pk = pk.withColumn(_PART, _part_of(pk, key_column(p_cols, persons=True, edition=edition), n_parts))

    # 2. Each part read, validated and scored by tpmap in the worker (which gets no catalogue:
    # the plan is made on the driver).
    planning = catalogue is not None
    linking = registry is not None
    def worker(earlier: dict[int, list[int]], link: bool) -> Callable[[tuple, "pa.Table", "pa.Table"], "pa.Table"]:
        def part(key: tuple, h: "pa.Table", p: "pa.Table") -> "pa.Table":
            return _part(
                int(key[0]),
                h,
                p,
                h_cols,
                p_cols,
                read_opts,
                score_opts,
                boot,
                tpmap_year,
                earlier.get(int(key[0])),
                # A run that links a welfare registry reads every part again with the flags:
                # only that reading plans.
                planning and not link,
                link,
            )

        return part

    first = hk.groupBy(_PART).cogroup(pk.groupBy(_PART)).applyInArrow(worker({}, linking), schema=_PARTS_SCHEMA).persist()
    inputs = {"households": households, "persons": persons}
    _check_errors(first, inputs)

    # Citizen IDs accepted in two parts: the single-process run keeps the earliest row and
    # rejects the later ones as `duplicate_person`. Parts holding a later one are read again,
    # told the IDs claimed on earlier rows elsewhere (usually none are).
    ids = (
        first.where(F.col("kind") == "citizen_ids")
        .select("payload")
        .mapInArrow(_decode_ipc, "part int, citizen_id long, row long")
    )
    claims = ids.groupBy("citizen_id").agg(F.min("row").alias("first"), F.count("*").alias("n")).where("n > 1")
    later = ids.join(claims, "citizen_id").where(F.col("row") > F.col("first")).select("part", "citizen_id")
    repeated = later.limit(MAX_REPEATED_IDS + 1).collect()
    if len(repeated) > MAX_REPEATED_IDS:
        raise LimitError(
            f"more than {MAX_REPEATED_IDS} persons repeat a citizen ID accepted in another part: "
            "remove the duplicates first",
            "persons DataFrame",
        )
    earlier: dict[int, list[int]] = {}
    for r in repeated:
        earlier.setdefault(r["part"], []).append(r["citizen_id"])
    parts = first
    if earlier:
        again = list(earlier)
        second = (
            hk.where(F.col(_PART).isin(again))
            .groupBy(_PART)
            .cogroup(pk.where(F.col(_PART).isin(again)).groupBy(_PART))
            .applyInArrow(worker(earlier, linking), schema=_PARTS_SCHEMA)
        )
        parts = first.where(~F.col("part").isin(again)).unionByName(second).persist()
        _check_errors(parts, inputs)

    # 3. The reading reports, summed; nothing lost.
    reports = {r["part"]: json.loads(bytes(r["payload"])) for r in parts.where(F.col("kind") == "report").collect()}
    numbers = sorted(reports)
    report: dict[str, Any] = {"parts": len(numbers), "parts_read_again": len(earlier)}
    for side, total_rows in (("households", h_total), ("persons", p_total)):
        total: dict[str, Any] = {"input_rows": 0, "accepted": 0, "rejected": 0, "by_reason": {}}
        for n in numbers:
            got = reports[n][side]
            for k in ("input_rows", "accepted", "rejected"):
                total[k] += got[k]
            for reason, c in got["by_reason"].items():
                total["by_reason"][reason] = total["by_reason"].get(reason, 0) + c
        total["by_reason"] = dict(sorted(total["by_reason"].items()))
        report[side] = total
        if total["input_rows"] != total_rows or total["accepted"] + total["rejected"] != total_rows:
            raise TpmapError(
                f"tpmap.spark read {total['input_rows']} of the {total_rows} {side} rows "
                f"({total['accepted']} accepted, {total['rejected']} rejected): rows were lost on the way"
            )

    # 3b. Welfare from a registry: the parts' persons linked with it on Spark (tpmap.spark.link,
    # as Extract.link_welfare links them), and every part read and scored again with the flags.
    if registry is not None:
        flags, report["welfare"] = _welfare(spark, parts, registry, registry_name)
        flagged = pk.join(flags, pk[_ROW] == flags["_tpmap_prow"], "left").drop("_tpmap_prow")
        welfare_parts = (
            hk.groupBy(_PART).cogroup(flagged.groupBy(_PART)).applyInArrow(worker(earlier, False), schema=_PARTS_SCHEMA)
        ).persist()
        _check_errors(welfare_parts, inputs)
        parts.unpersist()
        parts = first = welfare_parts

    # 4. The villages' sums added by Spark (whole numbers: exact in any order), merged by tpmap.
    with tempfile.TemporaryDirectory() as d:
        no_rows = (spark_types(households.limit(0).toArrow()), spark_types(persons.limit(0).toArrow()))
        empty = read_extract(*no_rows, **read_opts)
        empty_scores = empty.score(**score_opts)
        empty_scores.write_partial(d, **boot)
        import pyarrow.parquet as pq

        leaves_schema = pq.read_schema(os.path.join(d, "leaves.parquet")).remove_metadata()
        keys = [n for n in leaves_schema.names if n.startswith("key_")]
        sums = [n for n in leaves_schema.names if not n.startswith("key_")]
        headers = [json.loads(bytes(r["payload"])) for r in parts.where(F.col("kind") == "partial.json").collect()]
        leaves = (
            parts.where(F.col("kind") == "leaves.parquet")
            .select("payload")
            .mapInArrow(_decode_parquet, spark.createDataFrame(leaves_schema.empty_table()).schema)
            .groupBy(*keys)
            .agg(*[F.sum(F.col(f"`{n}`")).alias(n) for n in sums])
            .toArrow()
        )
        if headers:
            header = headers[0]
        else:
            with open(os.path.join(d, "partial.json")) as f:
                header = json.load(f)
        header["leaves"] = leaves.num_rows
        header["integral_weights"] = all(h["integral_weights"] for h in headers)
        at = os.path.join(d, "all")
        os.makedirs(at)
        pq.write_table(leaves.select(leaves_schema.names).cast(leaves_schema), os.path.join(at, "leaves.parquet"))
        with open(os.path.join(at, "partial.json"), "w") as f:
            json.dump(header, f)
        measures = spark_types(merge([at], tpmap_areas=True).to_arrow())

    # 5. TPMAP's tables: the parts' village counts summed by Spark, rolled up by tpmap.
    empty_tables = empty_scores.tpmap_tables(year=tpmap_year)
    villages = {}
    for kind in ("common", "poor"):
        schema = spark_types(empty_tables[kind]["village"].to_arrow()).schema
        values = [n for n in schema.names if n != "area"]
        villages[kind] = (
            parts.where(F.col("kind") == f"villages_{kind}")
            .select("payload")
            .mapInArrow(_decode_ipc, spark.createDataFrame(schema.empty_table()).schema)
            .groupBy("area")
            .agg(*[F.sum(F.col(f"`{n}`")).alias(n) for n in values])
            .toArrow()
        )
    rolled = roll_up_tables(
        villages["common"], villages["poor"], year=empty_tables["year"], mask=empty_tables["mask"]
    )
    tpmap_tables: dict[str, Any] = {"year": rolled["year"], "mask": rolled["mask"]}
    for kind in ("common", "poor"):
        tpmap_tables[kind] = {
            level: spark.createDataFrame(spark_types(frame.to_arrow())) for level, frame in rolled[kind].items()
        }

    # The other outputs' columns, from a run of the same code on no rows.
    import pyarrow as pa

    rejected = spark_types(empty.rejected_households().to_arrow()).schema
    rejected = rejected.set(rejected.get_field_index("row"), pa.field("row", pa.int64()))
    schemas = {
        "households": spark_types(empty_scores.households().to_arrow()).schema,
        "rejected_households": rejected,
        "rejected_persons": rejected,
    }

    def frames(kind: str) -> "DataFrame":
        schema = spark.createDataFrame(schemas[kind].empty_table()).schema
        return parts.where(F.col("kind") == kind).select("payload").mapInArrow(_decode_ipc, schema)

    plan = _plan(spark, parts, empty, catalogue, score_opts, read_opts, population, plan_date, key) if catalogue else None
    return SparkRun(
        plan=plan,
        households=frames("households"),
        measures=spark.createDataFrame(measures),
        rejected_households=frames("rejected_households"),
        rejected_persons=frames("rejected_persons"),
        tpmap_tables=tpmap_tables,
        report=report,
        _cached=[first, parts] if parts is not first else [first],
    )


def _part(
    number: int,
    h: "pa.Table",
    p: "pa.Table",
    h_cols: list[str],
    p_cols: list[str],
    read_opts: dict[str, Any],
    score_opts: dict[str, Any],
    boot: dict[str, int],
    tpmap_year: int,
    earlier: list[int] | None,
    plan: bool = False,
    link: bool = False,
) -> "pa.Table":
    """One part, in the worker: read, validated and scored by tpmap; its outputs as rows of
    `_PARTS_SCHEMA` (Arrow IPC, JSON or the partial result's files as bytes)."""
    import pyarrow as pa

    import pyarrow.compute as pc

    h = h.sort_by(_ROW)
    p = p.sort_by(_ROW)
    h_rows = h.column(_ROW).combine_chunks()
    p_rows = p.column(_ROW).combine_chunks()
    try:
        x = read_extract(h.select(h_cols), p.select(p_cols), earlier_citizen_ids=earlier, **read_opts)
        if _WREG in p.column_names:
            x = _with_welfare(x, p)
        s = x.score(**score_opts)
    except TpmapError as e:
        # Sent to the driver as data, which raises it with the input DataFrame's row.
        error: dict[str, Any] = {"class": type(e).__name__, "message": str(e)}
        if isinstance(e, InvalidRowError):
            side = "persons" if e.file.startswith("persons") else "households"
            rows = p_rows if side == "persons" else h_rows
            error.update(side=side, row=rows[e.row - 1].as_py() if 0 < e.row <= len(rows) else None, column=e.column)
        return _table([(number, "error", 0, json.dumps(error).encode())])

    def input_rows(rows: "pa.Array", at: "pa.ChunkedArray") -> "pa.Array":
        """Rows of the part (1-based) back to rows of the input DataFrame."""
        return pc.take(rows, pc.subtract(at.cast(pa.int64()), 1)).cast(pa.int64())

    out: list[tuple[int, str, int, bytes]] = []
    scores = spark_types(s.households().to_arrow())
    for i, at in enumerate(range(0, max(scores.num_rows, 1), _CHUNK)):
        out.append((number, "households", i, _ipc(scores.slice(at, _CHUNK))))
    for kind, frame, rows in (
        ("rejected_households", x.rejected_households(), h_rows),
        ("rejected_persons", x.rejected_persons(), p_rows),
    ):
        t = spark_types(frame.to_arrow())
        t = t.set_column(t.schema.get_field_index("row"), "row", input_rows(rows, t.column("row")))
        out.append((number, kind, 0, _ipc(t)))
    ids = x.citizen_id_rows().to_arrow()
    ids = pa.table(
        {
            "part": pa.array([number] * ids.num_rows, pa.int32()),
            "citizen_id": ids.column("citizen_id").cast(pa.int64()),
            "row": input_rows(p_rows, ids.column("row")),
        }
    )
    out.append((number, "citizen_ids", 0, _ipc(ids)))
    out.append((number, "report", 0, json.dumps(x.report).encode()))
    tables = s.tpmap_tables(year=tpmap_year)
    for kind in ("common", "poor"):
        out.append((number, f"villages_{kind}", 0, _ipc(spark_types(tables[kind]["village"].to_arrow()))))
    if plan:
        out.extend(_plan_rows(number, x, s, h_rows))
    if link:
        out.append((number, "link_records", 0, _ipc(_link_rows(number, x, h_rows, p_rows))))
    with tempfile.TemporaryDirectory() as d:
        s.write_partial(d, **boot)
        for name in ("partial.json", "leaves.parquet"):
            with open(os.path.join(d, name), "rb") as f:
                out.append((number, name, 0, f.read()))
    return _table(out)


def _decode_ipc(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
    """Payload cells (Arrow IPC streams) back to rows."""
    for b in batches:
        for data in b.column(0).to_pylist():
            yield from _unipc(data).to_batches()


def _decode_parquet(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
    """Payload cells (a partial result's leaves.parquet) back to rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for b in batches:
        for data in b.column(0).to_pylist():
            yield from pq.read_table(pa.BufferReader(data)).to_batches()


def _check_errors(parts: "DataFrame", inputs: dict[str, "DataFrame"]) -> None:
    """Raises the parts' first error, if any."""
    from pyspark.sql import functions as F

    errors = [json.loads(bytes(r["payload"])) for r in parts.where(F.col("kind") == "error").collect()]
    if errors:
        parts.unpersist()
        _raise(errors, inputs)


def _plan_rows(number: int, x: Any, s: Any, h_rows: "pa.Array") -> list[tuple[int, str, int, bytes]]:
    """A part's poor households and their members, as tpmap accepted them (`Extract.households()`,
    `.persons()`), each household with its input row: what the driver plans over."""
    import polars as pl

    hh = x.households()
    rows = _accepted_rows(number, x, h_rows)
    poor = s.households().filter(pl.col("poor"))["household_id"].implode()
    households = hh.with_columns(pl.Series(_ROW, rows)).filter(pl.col("household_id").is_in(poor))
    persons = x.persons().filter(pl.col("household_id").is_in(poor))
    return [
        (number, "plan_households", 0, _ipc(households.to_arrow())),
        (number, "plan_persons", 0, _ipc(persons.to_arrow())),
    ]


def _plan(
    spark: "SparkSession",
    parts: "DataFrame",
    empty: Any,
    catalogue: Any,
    score_opts: dict[str, Any],
    read_opts: dict[str, Any],
    population: str,
    plan_date: str | None,
    key: bytes | None,
) -> SparkPlan:
    """The plan, on the driver, over the parts' poor households in input order."""
    import pyarrow as pa
    from pyspark.sql import functions as F

    got: dict[str, list["pa.Table"]] = {"plan_households": [], "plan_persons": []}
    # A partition at a time (`toLocalIterator`): the national poor households and their members are
    # hundreds of MB, more than one `collect` may bring back (spark.driver.maxResultSize).
    # One part's cells per partition, not the cogroup's several parts: a partition's result is
    # held whole in the driver's heap while it is fetched.
    rows = parts.where(F.col("kind").isin(list(got))).select("part", "kind", "seq", "payload")
    rows = rows.repartition(max(1, parts.select("part").distinct().count()), "part", "kind")
    for r in sorted(rows.toLocalIterator(), key=lambda r: (r["part"], r["seq"])):
        got[r["kind"]].append(_unipc(bytes(r["payload"])))
    if not got["plan_households"]:
        # No part (no input rows): the plan of an empty extract, as one process makes it.
        got = {"plan_households": [empty.households().to_arrow().append_column(_ROW, pa.array([], pa.int64()))],
               "plan_persons": [empty.persons().to_arrow()]}
    households = pa.concat_tables(got["plan_households"]).sort_by(_ROW).drop_columns([_ROW])
    persons = pa.concat_tables(got["plan_persons"])
    # The households as tpmap accepted them, read again: nothing is rejected twice.
    x = read_extract(
        households,
        persons,
        edition=read_opts["edition"],
        allow_new_villages=read_opts["allow_new_villages"],
    )
    for side, table in (("households", households), ("persons", persons)):
        if x.report[side]["accepted"] != table.num_rows:
            raise TpmapError(f"the driver accepted {x.report[side]['accepted']} of the {table.num_rows} planned {side}")
    p = x.score(**score_opts).plan(catalogue, population=population, date=plan_date, key=key)

    def df(frame: Any) -> "DataFrame":
        return _distributed(spark, spark_types(frame.to_arrow()))

    return SparkPlan(
        household_plan=df(p.household_plan()),
        programs=df(p.programs()),
        declined=df(p.declined()),
        worklists={agency: df(frame) for agency, frame in p.worklists().items()},
        local=p,
        households=households.num_rows,
    )


def _distributed(spark: "SparkSession", table: "pa.Table") -> "DataFrame":
    """A driver-side table as a Spark DataFrame without rows in the driver's JVM: Arrow IPC cells
    of 65,536 rows each (compact bytes), decoded by the executors. `createDataFrame` of the table
    itself keeps every row as a JVM object on the driver (the national household plan ran a 4 GB
    driver heap out of memory that way)."""
    cells = [(i, _ipc(table.slice(at, _CHUNK))) for i, at in enumerate(range(0, max(table.num_rows, 1), _CHUNK))]
    # Local data is sliced into partitions in order: the rows keep the table's order.
    payloads = spark.createDataFrame(cells, "seq int, payload binary")
    schema = spark.createDataFrame(table.schema.empty_table()).schema
    return payloads.select("payload").mapInArrow(_decode_ipc, schema)


def _accepted_rows(number: int, x: Any, h_rows: "pa.Array") -> "pa.Array":
    """The input rows of the part's accepted households, in extract order (the rows not
    rejected, in order)."""
    import pyarrow as pa

    rejected = set(x.rejected_households()["row"].to_list())
    accepted = [i for i in range(len(h_rows)) if i + 1 not in rejected]
    if len(accepted) != x.households().height:
        raise TpmapError(f"part {number}: {x.households().height} households accepted, {len(accepted)} rows not rejected")
    return h_rows.take(pa.array(accepted, pa.int64())).cast(pa.int64())


def _link_rows(number: int, x: Any, h_rows: "pa.Array", p_rows: "pa.Array") -> "pa.Table":
    """The part's persons as link records (`Extract.link_records()`), with what orders them as
    the whole extract orders them (their household's input row, their position in it) and their
    own input row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    r = x.link_records()
    t = spark_types(r.drop(["household", "member", "row"]).to_arrow())
    hh_rows = _accepted_rows(number, x, h_rows)
    t = t.append_column("_tpmap_hrow", hh_rows.take(pa.array(r["household"].to_list(), pa.int64())))
    t = t.append_column("_tpmap_member", pa.array(r["member"].to_list(), pa.int64()))
    local = pa.array(r["row"].to_list(), pa.int64())
    return t.append_column("_tpmap_prow", p_rows.take(pc.subtract(local, 1)).cast(pa.int64()))


def _with_welfare(x: Any, p: "pa.Table") -> Any:
    """The part's extract with the welfare flags the registry linkage gave its persons (the
    columns `_tpmap_wreg`, `_tpmap_wval` of the part's person rows, in input order)."""
    reg, val = p.column(_WREG).to_pylist(), p.column(_WVAL).to_pylist()
    rows = x.link_records()["row"].to_list()
    if any(r is None or reg[r - 1] is None or val[r - 1] is None for r in rows):
        raise TpmapError("a person of the extract has no welfare flag from the registry linkage")
    return x.with_welfare([reg[r - 1] for r in rows], [val[r - 1] for r in rows])


def _welfare(
    spark: "SparkSession", parts: "DataFrame", registry: "DataFrame", registry_name: str
) -> tuple["DataFrame", dict[str, Any]]:
    """The welfare flags of every accepted person (`_tpmap_prow`: its input row, `_tpmap_wreg`,
    `_tpmap_wval`) from linking the parts' persons with the registry as `Extract.link_welfare`
    does — the persons in the whole extract's order, then the registry — and what it found."""
    import time

    import pyarrow as pa
    from pyspark.sql import functions as F

    from ._tpmap import link_best_registry

    t0 = time.perf_counter()
    cols = list(LINK_RECORD_COLUMNS)
    schema = ", ".join(f"{c} string" for c in cols) + ", _tpmap_hrow long, _tpmap_member long, _tpmap_prow long"
    survey = (
        parts.where(F.col("kind") == "link_records")
        .select("payload")
        .mapInArrow(_decode_ipc, schema)
        .orderBy("_tpmap_hrow", "_tpmap_member")
        .localCheckpoint()
    )
    linked = link(spark, [survey.select(*cols), registry], names=["survey", registry_name], task="link")
    numbered, persons = _numbered(survey)
    pairs = linked._matched.where((F.col("a") < persons) & (F.col("b") >= persons))
    pairs = pairs.join(linked._records.withColumnRenamed("rec", "b"), "b").select(
        F.col("a").alias("person"), F.col("b").alias("record"), "probability", "deterministic", "index", "flag"
    )

    def best(key: tuple, t: "pa.Table") -> "pa.Table":
        return spark_types(link_best_registry(t).to_arrow()).cast(
            pa.schema([("person", pa.int64()), ("deterministic", pa.bool_()), ("validated", pa.bool_())])
        )

    chosen = (
        pairs.groupBy(F.pmod(F.col("person"), F.lit(64)).alias("bucket"))
        .applyInArrow(best, "person long, deterministic boolean, validated boolean")
        .persist()
    )
    flags = (
        numbered.select((F.col(_ROW) - 1).alias("person"), "_tpmap_prow")
        .join(chosen, "person", "left")
        .select(
            "_tpmap_prow",
            F.col("deterministic").isNotNull().alias(_WREG),
            F.coalesce(F.col("validated"), F.lit(False)).alias(_WVAL),
        )
        .localCheckpoint()
    )
    counts = chosen.agg(
        F.count("*").alias("matched"),
        F.sum(F.col("deterministic").cast("long")).alias("by_id"),
        F.sum(F.col("validated").cast("long")).alias("validated"),
    ).first()
    registry_records = linked.records - persons
    found = pairs.select("record").distinct().count()
    chosen.unpersist()
    linked.unpersist()
    report = {
        "persons": persons,
        "registry_records": registry_records,
        "matched": int(counts["matched"] or 0),
        "matched_by_id": int(counts["by_id"] or 0),
        "validated": int(counts["validated"] or 0),
        "registry_unmatched": registry_records - found,
        "registry_unreadable": 0,
        "seconds": time.perf_counter() - t0,
    }
    return flags, report
