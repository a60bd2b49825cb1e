#!/usr/bin/env bash
# Scoring benchmark on SYNTHETIC data: tpmap against Python-polars and PyPI mpitb, side by side.
#   1. a virtual environment with polars, pandas, numpy, scipy and mpitb (PyPI);
#   2. `tpmap run` on the extract (default: the national set made by scripts/national.sh), which
#      writes the household deprivation matrix and the TPMAP spec;
#   3. `tpmap mpi` on that matrix at all five levels (timed with the data in memory);
#   4. benches/compare_python.py: the same measures in Python-polars and, on a subset of villages,
#      mpitb; checks the numbers agree and prints the times.
#   cargo build --release --all-features && scripts/bench_scoring.sh [DATA_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TPMAP_BIN:-${CARGO_TARGET_DIR:-target}/release/tpmap}
data=${1:-/tmp/tpmap-national/data}
out=${2:-/tmp/tpmap-bench-scoring}
venv=${TPMAP_BENCH_VENV:-$HOME/.cache/tpmap/bench-venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q polars pyarrow pandas numpy scipy mpitb
[ -s "$out/deprivations.parquet" ] || "$bin" run "$data" --out "$out" --quiet
"$bin" mpi --data "$out/deprivations.parquet" --spec "$out/spec.csv" --k union \
  --areas province,amphoe,tambon,village --weight members --out "$out/mpi"
"$venv/bin/python" benches/compare_python.py "$out" | tee "$out/comparison.json"
