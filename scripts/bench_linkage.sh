#!/usr/bin/env bash
# tpmap link against Splink 5 (DuckDB) on the SYNTHETIC labelled Thai linkage benchmark, at
# ~100 k and ~1 M records, 2 cores. Installs Splink from PyPI into a virtual environment.
# Writes docs/bench/linkage-<size>.json and prints a table.
#
#   scripts/bench_linkage.sh            # both sizes
#   scripts/bench_linkage.sh 27000      # one size, in households (records ≈ 3.7 × households)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tpmap/target-release}"
cargo build --release --all-features --bin tpmap -q
TPMAP="$CARGO_TARGET_DIR/release/tpmap"
VENV="${SPLINK_VENV:-$HOME/.cache/tpmap/splink-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q "splink==5.0.0" pandas
WORK="${BENCH_DIR:-/tmp/tpmap-linkage-bench}"
mkdir -p "$WORK" docs/bench
sizes=("${@:-27000 270000}")
for hh in ${sizes[@]}; do
  d="$WORK/$hh"
  "$TPMAP" link-bench --households "$hh" --out "$d"
  /usr/bin/time -v "$TPMAP" link "$d/survey.csv" "$d/welfare.csv" "$d/agency.csv" --truth "$d/truth.csv" \
    --out "$d/tpmap" --quiet 2> "$d/tpmap.time"
  /usr/bin/time -v "$VENV/bin/python" benches/splink_compare.py "$d" "$d/splink.json" > "$d/splink.log" 2> "$d/splink.time"
  python3 benches/linkage_summary.py "$d" "$hh"
done
