#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit, property and
# integration tests, as root for the world tests. One cargo profile
# (release) for everything; DuckDB is a static library built once per
# machine by build-duckdb.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/duckdb.sh
. scripts/env.sh
echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy (release)" >&2
cargo clippy --release --workspace --all-targets -- -D warnings
echo "== cargo test (release)" >&2
cargo test --release --workspace
