#!/usr/bin/env bash
# National-scale runs on SYNTHETIC data (12,935,866 households, ~36.6 M persons, shaped by the
# TPMAP 2561 tables): generate once, then time each step of the national-scale table under
# /usr/bin/time (wall time and peak memory) and print one markdown table. Needs ~12 GB of disk
# (~51 GB with the linkage, the registry runs and the panel, and about 65 minutes on 2 cores, as
# measured on 2026-12-08).
#
#   cargo build --release --all-features && scripts/national.sh [OUT_DIR]
#
# The plan step runs `cargo run --release --all-features --example plan_national`: give the script
# the cargo settings the binary was built with (CARGO_TARGET_DIR, any CARGO_PROFILE_RELEASE_*), or
# cargo compiles polars again for the example (about 20 minutes on 2 cores).
#
# Steps: ingest from Parquet (whole, one province a wave, --max-memory 4GiB; a national Parquet
# extract is partitioned by default, so the whole run says --partition whole), ingest from CSV
# (whole, and one province a wave: the default for a CSV persons file of 1.6 GB or more),
# `tpmap mpi` on the national deprivation matrix, and the Python-polars scripts of
# benches/compare_python.py in the same run (skipped when python3 has no polars), and `tpmap run`
# with a plan against the generated 52-program catalogue of examples/plan_national.rs (whole, one
# province a wave, --max-memory 4GiB; the partitioned plans checked against the whole run's).
# Then `tpmap run` with a SYNTHETIC welfare registry made from the extract's persons
# (scripts/national_registry.py, ~1.5 GB of CSV), partitioned, within --max-memory 4GiB (linked a
# wave at a time, its outputs checked against the partitioned run's), then again with the plan's catalogue
# and a SYNTHETIC beneficiary list of 1 % of the persons, partitioned and within --max-memory 4GiB
# (both linked a wave at a time, the outputs checked against the partitioned run's). Then the national linkage: a SYNTHETIC labelled benchmark of the national survey's persons and
# a welfare registry of half as many (`tpmap link-bench`, generated once, ~7.7 GB of CSV more),
# linked and scored against its truth (the quality line is printed with the table), then linked without
# the truth, within --max-memory 4GiB, and in parts within --max-memory 3500MiB (the same files).
# Then year over year: two SYNTHETIC national rounds (`tpmap synth --years 2561,2562`, made a
# group of provinces at a time, ~1.3 GB of Parquet) compared household by household by
# `tpmap panel` (each round read a wave of provinces at a time), again within --max-memory 4GiB (the
# same outputs), and `tpmap run` on both rounds within --max-memory 4GiB.
# SKIP_CSV=1 leaves out the CSV ingest (the slowest step); SKIP_PLAN=1 the plans; SKIP_LINK=1 the
# linkage; SKIP_PANEL=1 the panel; ONLY_PANEL=1 runs the panel alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TPMAP_BIN:-${CARGO_TARGET_DIR:-target}/release/tpmap}
py=${PYTHON:-python3}
out=${1:-/tmp/tpmap-national}
mkdir -p "$out"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
table="$out/timings.tsv"
: > "$table"
measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$out/.time" "$@" > "$out/.log" 2>&1 || { cat "$out/.log" >&2; exit 1; }
  read -r secs kib < "$out/.time"
  printf '%s\t%s\t%s\n' "$label" "$secs" "$kib" | tee -a "$table"
}
if [ -z "${ONLY_PANEL:-}" ]; then
  if [ ! -s "$out/data/persons.csv" ]; then
    measure "synth (parquet + csv)" "$bin" synth --households 12935866 --seed 2561 --out "$out/data" --format both --quiet
  fi
  d="$out/data"
  measure "ingest, Parquet, whole" "$bin" ingest --households "$d/households.parquet" --persons "$d/persons.parquet" \
    --out "$out/ingest-parquet" --partition whole --quiet
  measure "ingest, Parquet, --partition province" "$bin" ingest --households "$d/households.parquet" \
    --persons "$d/persons.parquet" --out "$out/ingest-partitioned" --partition province --quiet
  measure "ingest, Parquet, --max-memory 4GiB" "$bin" ingest --households "$d/households.parquet" \
    --persons "$d/persons.parquet" --out "$out/ingest-4gib" --max-memory 4GiB --quiet
  # The partitioned runs must write what the whole run writes (mpi*/ are `tpmap mpi`'s, below, from an
  # earlier run of this script).
  for run in ingest-partitioned ingest-4gib; do
    (cd "$out/ingest-parquet" && find . -type f ! -name '*.parquet' ! -name report.json ! -path './mpi*') | while read -r f; do
      cmp -s "$out/ingest-parquet/$f" "$out/$run/$f" || { echo "$run: $f differs from the whole run" >&2; exit 1; }
    done
  done
  if [ -z "${SKIP_CSV:-}" ]; then
    measure "ingest, CSV UTF-8, whole" "$bin" ingest --households "$d/households.csv" --persons "$d/persons.csv" \
      --out "$out/ingest-csv" --partition whole --quiet
    measure "ingest, CSV UTF-8, --partition province" "$bin" ingest --households "$d/households.csv" \
      --persons "$d/persons.csv" --out "$out/ingest-csv-partitioned" --partition province --quiet
    (cd "$out/ingest-csv" && find . -type f ! -name '*.parquet' ! -name report.json) | while read -r f; do
      cmp -s "$out/ingest-csv/$f" "$out/ingest-csv-partitioned/$f" || { echo "CSV partitioned: $f differs from the whole run" >&2; exit 1; }
    done
  fi
  # `tpmap mpi` on the whole run's deprivation matrix: timed here, run twice more for the comparison below.
  mpi_run=("$bin" mpi --data "$out/ingest-parquet/deprivations.parquet" --spec "$out/ingest-parquet/spec.csv" --k union
    --areas province,amphoe,tambon,village --weight members --quiet)
  measure "mpi on the deprivation matrix, end to end" "${mpi_run[@]}" --out "$out/ingest-parquet/mpi"
  if [ -z "${SKIP_PLAN:-}" ]; then
    p="$out/plan-input"
    mkdir -p "$p"
    ln -sf "$d/households.parquet" "$d/persons.parquet" "$p/"
    cargo run --quiet --release --all-features --example plan_national -- --catalogue-out "$p/catalogue.toml"
    export TPMAP_PSEUDONYM_KEY=${TPMAP_PSEUDONYM_KEY:-national-bench-key-not-secret}
    measure "run with a plan, Parquet, whole" "$bin" run "$p" --out "$out/plan-whole" --partition whole --quiet
    measure "run with a plan, Parquet, --partition province" "$bin" run "$p" --out "$out/plan-partitioned" \
      --partition province --quiet
    measure "run with a plan, Parquet, --max-memory 4GiB" "$bin" run "$p" --out "$out/plan-4gib" --max-memory 4GiB --quiet
    # The same plan (report.xlsx differs only in its creation time).
    for run in plan-partitioned plan-4gib; do
      (cd "$out/plan-whole/plan" && find . -type f ! -name report.xlsx) | while read -r f; do
        cmp -s "$out/plan-whole/plan/$f" "$out/$run/plan/$f" || { echo "$run: plan/$f differs from the whole run" >&2; exit 1; }
      done
    done
  fi
  if "$py" -c 'import polars' 2>/dev/null; then
    # Two more runs of `tpmap mpi`, so that tpmap's times are three runs too, as each script's.
    for i in 2 3; do
      "${mpi_run[@]}" --out "$out/ingest-parquet/mpi-$i"
    done
    measure "Python-polars scripts (benches/compare_python.py)" "$py" benches/compare_python.py "$out/ingest-parquet" \
      --mpitb-villages 0 --tpmap-runs "$out/ingest-parquet/mpi" "$out/ingest-parquet/mpi-2" "$out/ingest-parquet/mpi-3"
    cp "$out/.log" "$out/compare_python.txt"
  fi
  if [ -z "${SKIP_LINK:-}" ] && "$py" -c 'import polars' 2>/dev/null; then
    # TPMAP's join: the extract's persons with a SYNTHETIC welfare registry made from them
    # (scripts/national_registry.py: every person marked registered, 5 % of IDs blank, 2 % of
    # given names cut short), linked by `tpmap run` a province at a time (the default for this
    # extract; the whole run needs more than 24 GiB).
    w="$out/welfare-input"
    mkdir -p "$w"
    ln -sf "$d/households.parquet" "$d/persons.parquet" "$w/"
    [ -s "$w/welfare_registry.csv" ] || "$py" scripts/national_registry.py "$d" "$w/welfare_registry.csv"
    measure "run with a welfare registry, Parquet, partitioned (the default)" "$bin" run "$w" \
      --out "$out/welfare-partitioned" --quiet
    # Within a budget: linked a wave at a time (link::parts), the same outputs.
    measure "run with a welfare registry, --max-memory 4GiB" "$bin" run "$w" --max-memory 4GiB \
      --out "$out/welfare-4gib" --quiet
    (cd "$out/welfare-partitioned" && find . -type f ! -name '*.parquet' ! -name report.json) | while read -r f; do
      cmp -s "$out/welfare-partitioned/$f" "$out/welfare-4gib/$f" \
        || { echo "welfare within a budget: $f differs from the partitioned run" >&2; exit 1; }
    done
    if [ -z "${SKIP_PLAN:-}" ]; then
      # The same with the plan's catalogue and a SYNTHETIC beneficiary list (1 % of the persons,
      # 5 % of them without their citizen ID), linked with every person after the last wave.
      wp="$out/welfare-plan-input"
      mkdir -p "$wp"
      ln -sf "$d/households.parquet" "$d/persons.parquet" "$p/catalogue.toml" "$wp/"
      [ -s "$wp/served_list.csv" ] || "$py" scripts/national_registry.py "$d" "$wp/welfare_registry.csv" \
        "$wp/served_list.csv" "$wp/catalogue.toml"
      measure "run with a welfare registry, a plan and a beneficiary list, partitioned" "$bin" run "$wp" \
        --out "$out/welfare-plan-partitioned" --quiet
      # Within a budget: the registry and the list linked a wave at a time, the plan's poor
      # households in a temporary file, the same outputs.
      measure "run with a welfare registry, a plan and a beneficiary list, --max-memory 4GiB" "$bin" run "$wp" \
        --max-memory 4GiB --out "$out/welfare-plan-4gib" --quiet
      (cd "$out/welfare-plan-partitioned" && find . -type f ! -name '*.parquet' ! -name report.json ! -name '*.xlsx') | while read -r f; do
        cmp -s "$out/welfare-plan-partitioned/$f" "$out/welfare-plan-4gib/$f" \
          || { echo "plan and list within a budget: $f differs from the partitioned run" >&2; exit 1; }
      done
    fi
  fi
  if [ -z "${SKIP_LINK:-}" ]; then
    l="$out/link"
    if [ ! -s "$l/truth.csv" ]; then
      measure "link-bench, national (survey x welfare registry)" "$bin" link-bench --households 12935866 \
        --welfare-share 0.5 --agency-share 0 --out "$l"
    fi
    measure "link survey x welfare registry, national, with --truth" "$bin" link "$l/survey.csv" "$l/welfare.csv" \
      --truth "$l/truth.csv" --out "$out/link-out" --quiet
    # Without the truth (what a user runs), within a 4 GiB budget, and in parts within 3500 MiB
    # (the whole job is refused there: the survey linked a group of provinces at a time beside the
    # registry held whole). The same files each time; link.json differs in its seconds and parts.
    measure "link survey x welfare registry, national" "$bin" link "$l/survey.csv" "$l/welfare.csv" \
      --out "$out/link-plain" --quiet
    measure "link survey x welfare registry, national, --max-memory 4GiB" "$bin" link "$l/survey.csv" \
      "$l/welfare.csv" --max-memory 4GiB --out "$out/link-4gib" --quiet
    measure "link survey x welfare registry, national, in parts, --max-memory 3500MiB" "$bin" link "$l/survey.csv" \
      "$l/welfare.csv" --max-memory 3500MiB --out "$out/link-3500mib" --quiet
    for run in link-4gib link-3500mib; do
      for f in pairs.csv entities.csv explanations.json model.json; do
        cmp -s "$out/link-plain/$f" "$out/$run/$f" || { echo "$run: $f differs from the link without a budget" >&2; exit 1; }
      done
    done
  fi

fi
if [ -z "${SKIP_PANEL:-}" ]; then
  r="$out/panel-rounds"
  if [ ! -s "$r/truth.json" ]; then
    measure "synth two national rounds (--years 2561,2562)" "$bin" synth --households 12935866 --seed 2561 \
      --years 2561,2562 --out "$r" --quiet
  fi
  rm -rf "$out/panel-out"
  measure "panel, two national rounds (match, flows, follow-up, write)" "$bin" panel "$r/2561" "$r/2562" \
    --out "$out/panel-out" --quiet
  rm -rf "$out/panel-4gib" "$out/rounds-4gib"
  measure "panel, two national rounds, --max-memory 4GiB" "$bin" panel "$r/2561" "$r/2562" --max-memory 4GiB \
    --out "$out/panel-4gib" --quiet
  (cd "$out/panel-out" && find . -type f ! -name panel.json) | while read -r f; do
    cmp -s "$out/panel-out/$f" "$out/panel-4gib/$f" || { echo "panel within a budget: $f differs" >&2; exit 1; }
  done
  # The main job on the later round a wave of provinces at a time, and the two rounds compared.
  measure "run on two rounds (the later one's main job and the panel), --max-memory 4GiB" "$bin" run "$r/2561" \
    "$r/2562" --max-memory 4GiB --out "$out/rounds-4gib" --quiet
fi
echo
echo "| step | wall | peak memory |"
echo "|---|---|---|"
while IFS=$'\t' read -r label secs kib; do
  printf '| %s | %s s | %.1f GB |\n' "$label" "$secs" "$(echo "$kib" | awk '{print $1 * 1024 / 1e9}')"
done < "$table"
for fmt in parquet csv; do
  [ -z "${ONLY_PANEL:-}" ] && [ -f "$out/ingest-$fmt/report.json" ] || continue
  "$py" - "$out/ingest-$fmt/report.json" "$fmt" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); i = r["ingest"]; s = r["seconds"]
rows = i["households"]["input_rows"] + i["persons"]["input_rows"]
print(f'{sys.argv[2]}: ingest+validate {s["ingest_and_validate"]:.1f} s = '
      f'{i["persons"]["input_rows"]/s["ingest_and_validate"]/1e6:.2f} M person rows/s '
      f'({rows/s["ingest_and_validate"]/1e6:.2f} M rows/s all tables); rejected '
      f'{i["households"]["rejected"] + i["persons"]["rejected"]}')
PY
done
if [ -z "${SKIP_PANEL:-}" ] && [ -f "$out/panel-out/panel.json" ]; then
  "$py" - "$out/panel-out/panel.json" "$out/panel-rounds/truth.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1])); t = json.load(open(sys.argv[2]))["follow_up"][0]; s = p["summary"]
e = next(x for x in p["effects"] if x["program"] == "all")
print(f'panel: {s["households_t"]} -> {s["households_t1"]} households; routes {s["by_route"]}; fates {s["by_fate"]}; '
      f'pooled effect {e["effect"]:.3f} (95 % CI {e["ci_low"]:.3f} to {e["ci_high"]:.3f}), truth {t["expected_effect"]:.3f}')
PY
fi
if [ -z "${ONLY_PANEL:-}" ] && [ -f "$out/link-out/link.json" ]; then
  "$py" - "$out/link-out/link.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); q = r["quality"]; s = r["seconds"]
print(f'link: {r["records"]} records, {r["candidate_pairs"]} candidate pairs, {r["matches"]} matches; '
      f'precision {q["precision"]:.4f}, recall {q["recall"]:.4f}, F1 {q["f1"]:.4f}, B-cubed F1 {q["cluster_f1"]:.4f}; '
      f'reading {s["read_and_normalise"]:.1f} s, phases {", ".join(f"{k} {v:.1f} s" for k, v in s["phases"].items())}')
PY
fi
