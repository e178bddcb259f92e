# Shared settings for the project's scripts; sourced, not run.
# CARGO_TARGET_DIR lives outside the clone so a build is paid once per
# machine, not once per clone.
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  if [ "$(id -u)" = 0 ]; then
    export CARGO_TARGET_DIR=/var/cache/world-runtime/target
  else
    export CARGO_TARGET_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/world-runtime/target"
  fi
fi
# Python tools the tests use (duckdb to read our database the way a user
# would, `just` for the recipes) live in a venv beside the build cache.
export WORLD_VENV="${WORLD_VENV:-$(dirname "$CARGO_TARGET_DIR")/venv}"
export WORLD_PYTHON="$WORLD_VENV/bin/python3"
export PATH="$CARGO_TARGET_DIR/release:$WORLD_VENV/bin:$PATH"
# The DuckDB library the workspace links (scripts/duckdb.sh): by default
# DuckDB's prebuilt libduckdb.so, linked dynamically and found at run time
# through an rpath; with WORLD_DUCKDB_FROM_SOURCE=1 a static library
# compiled from source once per machine.
if [ "${WORLD_DUCKDB_FROM_SOURCE:-0}" = 1 ]; then
  export DUCKDB_LIB_DIR="${DUCKDB_LIB_DIR:-$(dirname "$CARGO_TARGET_DIR")/duckdb-src/lib}"
  export DUCKDB_STATIC=1
else
  export DUCKDB_LIB_DIR="${DUCKDB_LIB_DIR:-$(dirname "$CARGO_TARGET_DIR")/duckdb/lib}"
  export DUCKDB_STATIC=0
fi
export DUCKDB_INCLUDE_DIR="${DUCKDB_INCLUDE_DIR:-$DUCKDB_LIB_DIR}"
