"""A service that imports tpmap: tables in (from a request, a database, pandas), JSON out.

    python python/examples/service.py

Frames go in through the Arrow PyCapsule interface: polars, pyarrow and pandas all work.
"""

import json
from pathlib import Path

import pandas as pd

import tpmap

root = Path(__file__).resolve().parents[2]


def handle(households: pd.DataFrame, persons: pd.DataFrame) -> dict:
    """Validates, scores and answers with province figures; bad rows are counted, never lost."""
    x = tpmap.read_extract(households, persons)
    m = x.score().measures()
    provinces = m.filter(m["level"] == "province").select("area", "population", "poor", "target_poor", "H")
    return {
        "accepted": {t: x.report[t]["accepted"] for t in ("households", "persons")},
        "rejected": {t: x.report[t]["rejected"] for t in ("households", "persons")},
        "provinces": provinces.to_dicts(),
    }


if __name__ == "__main__":
    read = lambda name: pd.read_csv(root / "data-samples" / name, comment="#", dtype=str, keep_default_na=False)
    answer = handle(read("households.csv"), read("persons.csv"))
    print(json.dumps({k: answer[k] for k in ("accepted", "rejected")}, indent=2))
    print(f"{len(answer['provinces'])} provinces answered")
