#!/usr/bin/env bash
# National-scale run on SYNTHETIC data (12,935,866 households, ~36.6 M persons, shaped by the
# TPMAP 2561 tables): generate once, then ingest and validate from Parquet and from CSV, timing
# each run and its peak memory with /usr/bin/time. Needs ~12 GB of disk.
#
#   cargo build --release --all-features && scripts/national.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TPMAP_BIN:-${CARGO_TARGET_DIR:-target}/release/tpmap}
out=${1:-/tmp/tpmap-national}
mkdir -p "$out"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "$label: %e s wall, %M KiB peak RSS" "$@" 2>&1 >/dev/null | tail -1 | tee -a "$out/timings.txt"
}
: > "$out/timings.txt"
if [ ! -s "$out/data/persons.csv" ]; then
  measure "synth (parquet + csv)" "$bin" synth --households 12935866 --seed 2561 --out "$out/data" --format both --quiet
fi
for fmt in parquet csv; do
  measure "ingest $fmt" "$bin" ingest --households "$out/data/households.$fmt" --persons "$out/data/persons.$fmt" \
    --out "$out/ingest-$fmt" --quiet
  python3 - "$out/ingest-$fmt/report.json" "$fmt" <<'PY' | tee -a "$out/timings.txt"
import json, sys
r = json.load(open(sys.argv[1])); i = r["ingest"]; s = r["seconds"]
rows = i["households"]["input_rows"] + i["persons"]["input_rows"]
print(f'  {sys.argv[2]}: {i["persons"]["input_rows"]:,} person + {i["households"]["input_rows"]:,} household rows, '
      f'ingest+validate {s["ingest_and_validate"]:.1f} s = {i["persons"]["input_rows"]/s["ingest_and_validate"]/1e6:.2f} M person rows/s '
      f'({rows/s["ingest_and_validate"]/1e6:.2f} M rows/s all tables); with writing outputs {s["total"]:.1f} s; '
      f'rejected {i["households"]["rejected"] + i["persons"]["rejected"]}')
PY
done
