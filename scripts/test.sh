#!/usr/bin/env bash
# The README's test command: installs what the tests need and runs every test.
# Uses one cargo profile (`ci`) and one feature set (--all-features) for everything, so polars is
# compiled once; set CARGO_TARGET_DIR to a persistent folder to keep builds warm between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tpmap/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
rustup component add rustfmt >/dev/null 2>&1 || true

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== Rust tests (unit, integration, doc) with profile ci, all features"
cargo test --profile ci --all-features --locked

echo "== the main command on data-samples/"
out=$(mktemp -d)
cargo run --profile ci --all-features --locked -q -- run data-samples --out "$out" --quiet
test -s "$out/report.json"
test -s "$out/plan/household_plan.csv" && test -s "$out/plan/provinces.csv" && test -d "$out/plan/worklists"
grep -q '"welfare_link"' "$out/report.json"
test -s "$out/report.html"
rm -rf "$out"

echo "== Python: build the wheel for manylinux2014 (glibc 2.17: CentOS 7 and RHEL 8 cluster nodes), linked by zig"
command -v python3 >/dev/null || { echo "python3 (>= 3.10) not found" >&2; exit 1; }
tools="${TPMAP_PY_TOOLS:-$HOME/.cache/tpmap/py-tools}"
[ -x "$tools/bin/maturin" ] || { python3 -m venv "$tools" && "$tools/bin/pip" install -q "maturin==1.16.0"; }
"$tools/bin/python" -c "import ziglang" 2>/dev/null || "$tools/bin/pip" install -q "ziglang==0.17.1"
wheels=$(mktemp -d)
# Same profile and features; its own target folder, since linking with zig rebuilds the C parts.
(cd python && PATH="$tools/bin:$PATH" CARGO_TARGET_DIR="$CARGO_TARGET_DIR-zig" "$tools/bin/maturin" build \
    --profile ci --locked --zig --compatibility manylinux2014 --out "$wheels" 2>&1 | grep -v "^ *Compiling\|^ *Fresh" || true)
ls "$wheels"/tpmap-*manylinux_2_17_x86_64.whl >/dev/null

echo "== Python: install the wheel into a fresh virtual environment and run pytest"
if ! command -v chromium >/dev/null; then
    # The HTML report's render test needs headless Chromium (and Thai fonts for the screenshot).
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-thai-tlwg >/dev/null
    else
        echo "install Chromium (Debian: sudo apt-get install chromium fonts-thai-tlwg) for the report test" >&2
        exit 1
    fi
fi
if ! command -v java >/dev/null; then
    # tpmap.spark's tests run Spark in local mode, which needs a Java runtime (17 or 21).
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless >/dev/null
    else
        echo "install Java 17 (Debian: sudo apt-get install openjdk-17-jre-headless) for the Spark tests" >&2
        exit 1
    fi
fi
venv="$(mktemp -d)/venv"
python3 -m venv "$venv"
# PySpark pinned to the version tpmap.spark is tested with (tpmap.spark.PYSPARK_TESTED); it does
# not support pandas 3 yet.
"$venv/bin/pip" install -q "$wheels"/tpmap-*.whl "pytest>=8" "pyarrow>=16" "pandas>=2.2,<3" "mypy==2.4.1" \
    "pyspark==4.3.0"
echo "== Python: the stubs against the extension (mypy.stubtest)"
"$venv/bin/python" -m mypy.stubtest tpmap._tpmap tpmap.errors
# The Spark tests fail, not skip, when Spark cannot start here.
TPMAP_REQUIRE_SPARK=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests
rm -rf "$wheels" "$(dirname "$venv")"
echo "all tests passed"
