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
rm -rf "$out"
echo "all tests passed"
