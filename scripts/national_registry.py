"""A SYNTHETIC welfare-card registry for a SYNTHETIC extract (`tpmap synth`): every person the
extract marks registered, as a registry record (its `validated` flag the extract's), with 5 % of
citizen IDs left blank and 2 % of given names missing their last character, so that part of the
linkage runs on names, birth dates and addresses. No row describes a real person.

    python scripts/national_registry.py DATA_DIR OUT.csv

DATA_DIR holds the extract's households.parquet and persons.parquet. Used by the national runs of
`tpmap run` with a welfare registry (docs/bench/national-welfare.txt).
"""

import sys

import polars as pl

data, out = sys.argv[1], sys.argv[2]
households = pl.scan_parquet(f"{data}/households.parquet").select("household_id", "village_code", "house_no")
persons = pl.scan_parquet(f"{data}/persons.parquet").select(
    "household_id", "citizen_id", "title", "first_name", "last_name", "sex", "birth_date",
    "welfare_registered", "welfare_validated",
)
# A fixed pseudo-random draw per record (its position): the same registry every time.
draw = (pl.int_range(pl.len(), dtype=pl.UInt64).hash(2561) % 10_000).alias("draw")
registry = (
    persons.filter(pl.col("welfare_registered"))
    .join(households, on="household_id", how="left", maintain_order="left")
    .with_columns(draw)
    .select(
        pl.format("w{}", pl.int_range(1, pl.len() + 1)).alias("record_id"),
        pl.when(pl.col("draw") < 500).then(pl.lit("")).otherwise(pl.col("citizen_id").cast(pl.String)).alias("citizen_id"),
        "title",
        pl.when(pl.col("draw").is_between(500, 699))
        .then(pl.col("first_name").str.slice(0, pl.col("first_name").str.len_chars() - 1))
        .otherwise(pl.col("first_name"))
        .alias("first_name"),
        "last_name",
        pl.col("birth_date").cast(pl.String),
        pl.col("sex").replace_strict({1: "ชาย", 2: "หญิง"}, default="", return_dtype=pl.String),
        "village_code",
        "house_no",
        pl.col("welfare_validated").cast(pl.String).str.to_lowercase().alias("validated"),
    )
)
with open(out, "w", encoding="utf-8") as f:
    f.write("# SYNTHETIC welfare-card registry made by scripts/national_registry.py: no row describes a real person.\n")
frame = registry.collect()
with open(out, "a", encoding="utf-8") as f:
    frame.write_csv(f)
print(f"{frame.height} registry records -> {out}")
