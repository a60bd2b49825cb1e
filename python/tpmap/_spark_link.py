"""Record linkage on Spark (`tpmap.spark.link`): the steps of tpmap's link job
(`tpmap::link::steps`) with Spark moving the rows between them. Every rule — normalising names,
dates and addresses, the blocking keys, the pairs of a block, the comparisons, the model, the
scores, the clustering — is tpmap's Rust code; Spark shuffles, joins and counts. The result is
`tpmap.link`'s on the same records: the same candidate pairs, model, scores bit for bit, matches
and entity ids (docs/spark.md, "Linkage").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from . import _tpmap as T
from .errors import ConfigError, FormatError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

# The record columns tpmap reads (`tpmap::link::records::RECORD_COLUMNS`), in its order.
_COLUMNS = tuple(T.LINK_RECORD_COLUMNS)
# Most rounds of label propagation when finding connected components: each round halves no
# distance, so a chain of n matched records needs n rounds; linkage components are people (a
# handful of records), far below this.
MAX_COMPONENT_ROUNDS = 200


@dataclass
class SparkLinked:
    """What `link` returns: Spark DataFrames of `tpmap.link`'s outputs and the job's figures."""

    #: Scored pairs at or above probability 0.01, and every deterministic one: the columns of
    #: `Linked.pairs()` (`index` is the pair's position among the scored pairs, as there).
    pairs: "DataFrame"
    #: Every record: `record` (its index in the job: sources in order, rows in order), `source`,
    #: `record_id`, `entity` (stable id, 16 hex digits) — `Linked.entities()` with the index.
    entities: "DataFrame"
    #: The model (JSON), trained as `tpmap.link` trains it, or the one given.
    model_json: str
    #: `Linked.warnings`.
    warnings: list[str]
    #: Records read.
    records: int
    #: Candidate pairs compared.
    candidate_pairs: int
    #: Pairs accepted as matches.
    matches: int
    #: Pairs each blocking rule produced, and blocks each skipped for size.
    rule_pairs: list[int] = field(default_factory=list)
    skipped_blocks: list[int] = field(default_factory=list)
    #: The matches by record index (`a`, `b`, `index`, `probability`, `deterministic`) and the
    #: records' flags (`rec`, `flag`): what marking welfare from a registry reads.
    _matched: Any = field(default=None, repr=False)
    _records: Any = field(default=None, repr=False)
    _cached: list["DataFrame"] = field(default_factory=list, repr=False)

    def unpersist(self) -> None:
        """Frees what Spark keeps cached for the DataFrames above."""
        for df in self._cached:
            df.unpersist()


def _arrow(frame: Any) -> "pa.Table":
    from .spark import spark_types

    return spark_types(frame.to_arrow())


def link(
    spark: "SparkSession",
    sources: Sequence["DataFrame"],
    *,
    names: Sequence[str] | None = None,
    task: str = "link",
    threshold: float = 0.9,
    model: str | None = None,
    buckets: int | None = None,
) -> SparkLinked:
    """Links person registries held as Spark DataFrames, as `tpmap.link` links them on one
    machine: same options (`names` of the sources, `task`, `threshold`, a saved `model` as JSON),
    same pairs, probabilities, matches and entity ids. Each DataFrame has a registry's columns
    (`record_id`, `citizen_id`, `first_name`, ... and their Thai aliases; values read as text);
    records are numbered sources first, rows in each DataFrame's order. `buckets`: groups the
    blocks and the components are dealt to (default: Spark's parallelism, at least one per
    250,000 records).
    """
    from pyspark.sql import functions as F

    from .spark import _numbered

    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"the match threshold must be a probability strictly between 0 and 1, not {threshold}")
    names = list(names) if names is not None else [f"frame{i}" for i in range(len(sources))]
    if len(names) != len(sources):
        raise ConfigError("names must name every source")
    if len(sources) == 0:
        raise ConfigError("linkage needs at least one source")
    # The options checked on the driver before any Spark job: the task and the model, by the same
    # calls the workers make.
    import pyarrow as pa

    empty = pa.table({c: pa.array([], pa.string()) for c in _COLUMNS})
    key_names = T.link_record_keys(empty, source="", rows=[], model=model).columns
    rules = sum(1 for c in key_names if c[:1] == "k" and c[1:].isdigit())
    T.link_block_pairs(
        pa.table({"rule": pa.array([], pa.int32()), "key": pa.array([], pa.int64()), "rec": pa.array([], pa.int64()),
                  "src": pa.array([], pa.int32())}),
        task=task,
        model=model,
    )

    # 1. Every source's rows in the record columns, numbered as the job numbers them.
    raws = []
    sizes: list[int] = []
    for i, (df, name) in enumerate(zip(sources, names)):
        present = dict(T.link_columns(list(df.columns)))
        if "first_name" not in present:
            raise FormatError(f"{name}: no first_name (ชื่อ) column", name)
        cols = [
            (F.col(f"`{present[c]}`").cast("string") if c in present else F.lit(None).cast("string")).alias(c)
            for c in _COLUMNS
        ]
        numbered, total = _numbered(df.select(*cols))
        offset = sum(sizes)
        sizes.append(total)
        raws.append(
            numbered.select(
                *_COLUMNS,
                F.col("_tpmap_row").alias("row"),
                (F.col("_tpmap_row") - 1 + F.lit(offset)).alias("rec"),
                F.lit(i).cast("int").alias("src"),
            )
        )
    n = sum(sizes)
    raw = raws[0]
    for r in raws[1:]:
        raw = raw.unionByName(r)
    raw = raw.persist()
    buckets = buckets or max(spark.sparkContext.defaultParallelism, n // 250_000, 1)

    # 2. Each record's normalised names, ID, entity alone and blocking keys (Rust, per batch).
    key_cols = [f"k{r}" for r in range(rules)]
    rec_schema = "rec long, src int, key string, first string, last string, citizen_id long, flag boolean, entity string, " + ", ".join(
        f"{k} long" for k in key_cols
    )

    def record_keys(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa
        import pyarrow.compute as pc

        for b in batches:
            t = pa.Table.from_batches([b])
            for s in pc.unique(t.column("src")).to_pylist():
                part = t.filter(pc.equal(t.column("src"), s))
                got = _arrow(
                    T.link_record_keys(
                        part.select(list(_COLUMNS)), source=names[s], rows=part.column("row").to_pylist(), model=model
                    )
                )
                got = got.add_column(0, "rec", part.column("rec").cast(pa.int64()))
                got = got.add_column(1, "src", part.column("src").cast(pa.int32()))
                yield from got.to_batches()

    recs = raw.mapInArrow(record_keys, rec_schema).persist()

    # 3. Blocks: (rule, key, record) rows shuffled by key, each bucket paired by tpmap.
    keyed = recs.select(
        "rec",
        "src",
        F.explode(F.array(*[F.struct(F.lit(r).alias("rule"), F.col(k).alias("key")) for r, k in enumerate(key_cols)])).alias(
            "rk"
        ),
    ).select(F.col("rk.rule").alias("rule"), F.col("rk.key").alias("key"), "rec", "src").where(F.col("key").isNotNull())

    def block(key: tuple, t: "pa.Table") -> "pa.Table":
        import pyarrow as pa

        pairs, skipped = T.link_block_pairs(t, task=task, model=model)
        out = _arrow(pairs).cast(pa.schema([("rule", pa.int32()), ("a", pa.int64()), ("b", pa.int64())]))
        # Blocks skipped for size travel as rows with a = -1 (b = how many).
        extra = [(r, -1, c) for r, c in enumerate(skipped) if c]
        if extra:
            out = pa.concat_tables(
                [out, pa.table({"rule": pa.array([e[0] for e in extra], pa.int32()), "a": [e[1] for e in extra],
                                "b": [e[2] for e in extra]}, schema=out.schema)]
            )
        return out

    bucket = F.pmod(F.xxhash64("rule", "key"), F.lit(buckets))
    blocked = keyed.groupBy(bucket.alias("bucket")).applyInArrow(block, "rule int, a long, b long").persist()
    rule_pairs = [0] * rules
    skipped = [0] * rules
    for r in blocked.groupBy("rule", (F.col("a") < 0).alias("skip")).agg(F.count("*").alias("n"), F.sum("b").alias("s")).collect():
        if r["skip"]:
            skipped[r["rule"]] = int(r["s"])
        else:
            rule_pairs[r["rule"]] = int(r["n"])
    cand = blocked.where(F.col("a") >= 0).select("a", "b").distinct()

    # 4. Each pair's two records joined and compared by tpmap.
    pats = _patterns(cand, raw).persist()
    counts = _counts(pats)
    if model is None:
        u = spark.createDataFrame(_arrow(T.link_u_sample(sizes, task=task)))
        model_json, warnings = T.link_train(_counts(_patterns(u, raw)), counts)
    else:
        model_json, warnings = T.link_model_warnings(model, counts)

    # 5. Scores, with the first record's name counts (term frequencies) joined in.
    firsts = recs.where(F.col("first").isNotNull()).groupBy("first").agg(F.count("*").alias("first_count"))
    lasts = recs.where(F.col("last").isNotNull()).groupBy("last").agg(F.count("*").alias("last_count"))
    a_side = recs.select(F.col("rec").alias("a"), F.col("citizen_id").isNotNull().alias("has_id"), "first", "last")
    to_score = (
        pats.join(a_side, "a")
        .join(firsts, "first", "left")
        .join(lasts, "last", "left")
        .select("a", "b", *[f"p{k}" for k in range(6)], "has_id", "first_count", "last_count")
    )
    floor = min(0.01, threshold)

    def score(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa

        for b in batches:
            t = pa.Table.from_batches([b])
            yield from _arrow(T.link_score(t, model=model_json, records=n, floor=floor, threshold=threshold)).to_batches()

    scored = to_score.mapInArrow(
        score,
        "a long, b long, weight double, probability double, deterministic boolean, contradicted boolean, "
        "accepted boolean",
    ).persist()

    # 6. Connected components of the accepted pairs (label propagation), each clustered by tpmap.
    edges = scored.where("accepted").persist()
    labels = _components(edges)
    comp_recs = labels.join(recs.select(F.col("rec").alias("v"), "src", "citizen_id", "key"), "v").select(
        F.col("v").alias("rec"),
        "src",
        "citizen_id",
        F.element_at(F.array(*[F.lit(x) for x in names]), F.col("src") + 1).alias("source_name"),
        "key",
        F.pmod(F.col("label"), F.lit(buckets)).alias("bucket"),
    )
    comp_edges = edges.join(labels.select(F.col("v").alias("a"), "label"), "a").withColumn(
        "bucket", F.pmod(F.col("label"), F.lit(buckets))
    )

    def cluster(key: tuple, r: "pa.Table", e: "pa.Table") -> "pa.Table":
        import pyarrow as pa

        got = T.link_cluster(r, e, sources=len(names), threshold=threshold, task=task)
        return _arrow(got).cast(pa.schema([("rec", pa.int64()), ("rep", pa.int64()), ("entity", pa.string())]))

    clustered = (
        comp_recs.groupBy("bucket")
        .cogroup(comp_edges.groupBy("bucket"))
        .applyInArrow(cluster, "rec long, rep long, entity string")
        .persist()
    )

    # Outputs in tpmap.link's columns.
    ent = recs.select("rec", "src", "key", F.col("entity").alias("alone")).join(clustered, "rec", "left")
    source_name = F.element_at(F.array(*[F.lit(x) for x in names]), F.col("src") + 1)
    entities = ent.select(
        F.col("rec").alias("record"),
        source_name.alias("source"),
        F.col("key").alias("record_id"),
        F.coalesce(F.col("entity"), F.col("alone")).alias("entity"),
    )
    rep = ent.select("rec", "src", "key", F.coalesce(F.col("rep"), F.col("rec")).alias("rep"))
    side = lambda s: rep.select(  # noqa: E731
        F.col("rec").alias(s),
        source_name.alias(f"source_{s}"),
        F.col("key").alias(f"record_{s}"),
        F.col("rep").alias(f"rep_{s}"),
    )
    # The pairs in the job's order, numbered. Materialised first: numbering counts each Spark
    # partition's rows in one pass and uses them in another, and a sort's partitions may differ
    # between two runs of it (adaptive execution coalesces them as it finds them).
    ordered = scored.orderBy("a", "b").localCheckpoint()
    numbered, _ = _numbered(ordered)
    # A match: deterministic, or accepted with both records in one entity (Linked.is_match).
    joined = (
        numbered.withColumn("index", F.col("_tpmap_row") - 1)
        .join(side("a"), "a")
        .join(side("b"), "b")
        .withColumn("match", F.col("deterministic") | (F.col("accepted") & (F.col("rep_a") == F.col("rep_b"))))
    )
    pairs = joined.where(F.col("deterministic") | (F.col("probability") >= F.lit(0.01))).select(
        "index",
        "source_a",
        "record_a",
        "source_b",
        "record_b",
        F.col("weight").alias("match_weight"),
        "probability",
        "deterministic",
        "match",
    )
    matched = joined.where("match").select("a", "b", "index", "probability", "deterministic").persist()
    matches = matched.count()
    return SparkLinked(
        pairs=pairs,
        entities=entities,
        model_json=model_json,
        warnings=list(warnings),
        records=n,
        candidate_pairs=pats.count(),
        matches=matches,
        rule_pairs=rule_pairs,
        skipped_blocks=skipped,
        _matched=matched,
        _records=recs.select("rec", "flag"),
        _cached=[raw, recs, blocked, pats, scored, edges, clustered, matched],
    )


def _patterns(pairs: "DataFrame", raw: "DataFrame") -> "DataFrame":
    """Pairs (`a`, `b`) with their comparison pattern (`p0` … `p5`): both records joined in and
    compared by tpmap, batch by batch."""
    from pyspark.sql import functions as F

    side = lambda s: raw.select(F.col("rec").alias(s), *[F.col(c).alias(f"{s}_{c}") for c in _COLUMNS])  # noqa: E731
    joined = pairs.join(side("a"), "a").join(side("b"), "b").select(
        "a", "b", *[f"a_{c}" for c in _COLUMNS], *[f"b_{c}" for c in _COLUMNS]
    )

    def compare(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa

        for b in batches:
            t = pa.Table.from_batches([b])
            first = t.select([f"a_{c}" for c in _COLUMNS]).rename_columns(list(_COLUMNS))
            second = t.select([f"b_{c}" for c in _COLUMNS]).rename_columns(list(_COLUMNS))
            got = _arrow(T.link_patterns(first, second))
            got = got.add_column(0, "a", t.column("a")).add_column(1, "b", t.column("b"))
            yield from got.to_batches()

    schema = "a long, b long, " + ", ".join(f"p{k} smallint" for k in range(6))
    return joined.mapInArrow(compare, schema)


def _counts(pats: "DataFrame") -> "pa.Table":
    """Patterns counted by Spark, as the table the model is trained from."""
    import pyarrow as pa

    cols = [f"p{k}" for k in range(6)]
    rows = pats.groupBy(*cols).count().collect()
    return pa.table({**{c: pa.array([r[c] for r in rows], pa.int16()) for c in cols},
                     "count": pa.array([r["count"] for r in rows], pa.int64())})


def _components(edges: "DataFrame") -> "DataFrame":
    """Connected components of the pairs in `edges` (`a`, `b`): `v`, `label` (the component's
    smallest record), by label propagation until nothing changes."""
    from pyspark.sql import functions as F

    both = edges.select(F.col("a").alias("s"), F.col("b").alias("d")).unionByName(
        edges.select(F.col("b").alias("s"), F.col("a").alias("d"))
    )
    labels = both.select(F.col("s").alias("v")).distinct().withColumn("label", F.col("v")).localCheckpoint()
    for _ in range(MAX_COMPONENT_ROUNDS):
        sent = both.join(labels.withColumnRenamed("v", "s"), "s").select(F.col("d").alias("v"), "label")
        new = labels.unionByName(sent).groupBy("v").agg(F.min("label").alias("label")).localCheckpoint()
        changed = new.join(labels.withColumnRenamed("label", "old"), "v").where(F.col("label") != F.col("old")).count()
        labels = new
        if changed == 0:
            return labels
    raise ConfigError(
        f"the matched pairs form a chain longer than {MAX_COMPONENT_ROUNDS} records: "
        "check the threshold and the blocking (a component that large is not one person)"
    )
