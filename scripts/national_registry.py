"""SYNTHETIC person lists for a SYNTHETIC extract (`tpmap synth`), for the national runs of
`tpmap run` that link them (docs/bench/national-welfare.txt). No row describes a real person.

    python scripts/national_registry.py DATA_DIR REGISTRY.csv [LIST.csv CATALOGUE.toml]

REGISTRY.csv, a welfare-card registry: every person the extract marks registered, its
`validated` flag the extract's, with 5 % of citizen IDs left blank and 2 % of given names missing
their last character, so that part of the linkage runs on names, birth dates and addresses.

LIST.csv, an agency's beneficiary list (when asked for): 1 % of the persons, 5 % of those without
their citizen ID, their programs the catalogue's first ten in turn.

DATA_DIR holds the extract's households.parquet and persons.parquet.
"""

import sys
import tomllib

import polars as pl

data, out = sys.argv[1], sys.argv[2]
households = pl.scan_parquet(f"{data}/households.parquet").select("household_id", "village_code", "house_no")
persons = pl.scan_parquet(f"{data}/persons.parquet").select(
    "household_id", "citizen_id", "title", "first_name", "last_name", "sex", "birth_date",
    "welfare_registered", "welfare_validated",
)


def draw(seed):
    """A fixed pseudo-random draw per row (its position), 0 to 9,999: the same lists every time."""
    return (pl.int_range(pl.len(), dtype=pl.UInt64).hash(seed) % 10_000).alias("draw")


def records(frame, prefix, blank_ids_below, extra):
    """Person records of `frame` (with a `draw` column) in the registries' columns, IDs blank where
    the draw is below `blank_ids_below`, then `extra` columns."""
    return frame.join(households, on="household_id", how="left", maintain_order="left").select(
        pl.format(prefix + "{}", pl.int_range(1, pl.len() + 1)).alias("record_id"),
        pl.when(pl.col("draw") < blank_ids_below)
        .then(pl.lit(""))
        .otherwise(pl.col("citizen_id").cast(pl.String))
        .alias("citizen_id"),
        "title",
        *extra[:1],
        "last_name",
        pl.col("birth_date").cast(pl.String),
        pl.col("sex").replace_strict({1: "ชาย", 2: "หญิง"}, default="", return_dtype=pl.String),
        "village_code",
        "house_no",
        *extra[1:],
    )


def write(frame, path, what):
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"# SYNTHETIC {what} made by scripts/national_registry.py: no row describes a real person.\n")
        frame.write_csv(f)
    print(f"{frame.height} records -> {path}")


registry = records(
    persons.filter(pl.col("welfare_registered")).with_columns(draw(2561)),
    "w",
    500,
    [
        pl.when(pl.col("draw").is_between(500, 699))
        .then(pl.col("first_name").str.slice(0, pl.col("first_name").str.len_chars() - 1))
        .otherwise(pl.col("first_name"))
        .alias("first_name"),
        pl.col("welfare_validated").cast(pl.String).str.to_lowercase().alias("validated"),
    ],
)
write(registry.collect(), out, "welfare-card registry")

if len(sys.argv) > 4:
    with open(sys.argv[4], "rb") as f:
        programs = [p["id"] for p in tomllib.load(f)["program"]][:10]
    listed = records(persons.with_columns(draw(7)).filter(pl.col("draw") < 100), "b", 5, ["first_name"]).collect()
    listed = listed.with_columns(
        pl.Series("program", [programs[i % len(programs)] for i in range(listed.height)], dtype=pl.String)
    )
    write(listed, sys.argv[3], "agency beneficiary list (1 % of the persons)")
