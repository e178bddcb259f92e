#!/usr/bin/env bash
# Builds WorldRuntime (release) and runs `world demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build-duckdb.sh
. scripts/env.sh
cargo build --release --bin world
exec "$CARGO_TARGET_DIR/release/world" demo "$@"
