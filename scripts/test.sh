#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit, property and
# integration tests, as root for the world tests (among them the cgroup
# v2-only guest under QEMU, scripts/cgroup-v2-guest.sh, which installs its
# kernel, QEMU and busybox). One cargo profile (release) for everything,
# the same the demo builds; DuckDB's prebuilt library is put in place by
# scripts/duckdb.sh.
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
