#!/usr/bin/env bash
# The README's first command: installs what WorldRuntime needs, builds it
# (release, the one profile the tests use too), installs `world` on the
# PATH (scripts/install.sh), checks the host (`world doctor`) and runs
# `world demo`. Arguments go to `world demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/duckdb.sh
. scripts/env.sh
echo "demo: cargo build --release --bin world --bin world-supervisor (about 4 minutes the first time on 2 cores)" >&2
cargo build --release --bin world --bin world-supervisor
./scripts/install.sh
"$CARGO_TARGET_DIR/release/world" doctor
exec "$CARGO_TARGET_DIR/release/world" demo "$@"
