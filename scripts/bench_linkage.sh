#!/usr/bin/env bash
# tpmap link against Splink 5 (DuckDB) on both SYNTHETIC labelled Thai linkage benchmarks
# (`tpmap link-bench --kind tpmap` and `--kind registries`, the independent specification in
# docs/linkage.md), at ~100 k and ~1 M records, 2 cores, side by side in one run. Splink is fed
# the records as tpmap normalises them (`tpmap link-normalise`, not timed). Installs Splink from
# PyPI into a virtual environment. Each tool runs REPEATS times (default 3), alternately; writes
# docs/bench/linkage-<kind>-<records>.json (median and every run's wall time) and prints a table.
#
#   scripts/bench_linkage.sh                      # both benchmarks, both sizes
#   scripts/bench_linkage.sh registries 24000     # one benchmark, one size (households)
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
if [ $# -ge 2 ]; then
  runs=("$1:$2")
else
  # tpmap's benchmark: ~4 records per household; the registries one: ~4.3.
  runs=("tpmap:27000" "registries:24000" "tpmap:270000" "registries:240000")
fi
for run in "${runs[@]}"; do
  kind="${run%%:*}"
  hh="${run##*:}"
  task=link
  [ "$kind" = registries ] && task=link-and-dedupe   # its agency list holds duplicates
  d="$WORK/$kind-$hh"
  "$TPMAP" link-bench --kind "$kind" --households "$hh" --out "$d"
  "$TPMAP" link-normalise "$d/survey.csv" "$d/welfare.csv" "$d/agency.csv" --out "$d/normalised.csv"
  # The machine's speed drifts by tens of percent over minutes (a shared VM): the two tools run
  # alternately, REPEATS times each, and the summary takes each tool's median wall time.
  rm -f "$d"/tpmap.*.time "$d"/splink.*.time
  for rep in $(seq 1 "${REPEATS:-3}"); do
    /usr/bin/time -v "$TPMAP" link "$d/survey.csv" "$d/welfare.csv" "$d/agency.csv" --task "$task" \
      --truth "$d/truth.csv" --out "$d/tpmap" --quiet 2> "$d/tpmap.$rep.time"
    /usr/bin/time -v "$VENV/bin/python" benches/splink_compare.py "$d/normalised.csv" "$d/truth.csv" \
      "$d/splink.json" "$task" > "$d/splink.log" 2> "$d/splink.$rep.time"
  done
  python3 benches/linkage_summary.py "$d" "$kind" "$hh"
done
