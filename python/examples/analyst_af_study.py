"""An analyst's Alkire-Foster study by area, from a notebook.

    python python/examples/analyst_af_study.py [DIR]

Scores the samples by TPMAP's rule, takes the household deprivation matrix, and computes H, A
and M0 by province at several cutoffs with equal dimension weights (exact fractions). The
bundled households are SYNTHETIC: the figures show the method, not Thailand.
"""

import sys
from collections import Counter
from pathlib import Path

import polars as pl

import tpmap

root = Path(__file__).resolve().parents[2]
folder = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "data-samples"
x = tpmap.read_extract(folder / "households.csv", folder / "persons.csv")
d = x.score().deprivations()

# The TPMAP rule's indicators and dimensions; each dimension weighted equally, shared equally by
# its indicators (exact fractions, so no float sum lands just under k).
rule = x.score().spec()
per_dim = Counter(rule["dimension"])
spec = [(dim, ind, f"1/{len(per_dim) * per_dim[dim]}") for dim, ind, _ in rule.rows()]

for k in ["1/10", "1/8", "1/5", "1/4", "1/3"]:
    m = tpmap.mpi(d, spec, k, areas=["province"], weight="members")
    c = m.filter(pl.col("level") == "country").row(0, named=True)
    print(f"k={k:<4} H={c['H']:.4f} A={c['A']:.4f} M0={c['M0']:.4f}")
m = tpmap.mpi(d, spec, "1/10", areas=["province"], weight="members")
print(m.filter(pl.col("level") == "province").sort("M0", descending=True).select("area", "H", "A", "M0").head(5))
