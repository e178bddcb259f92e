# Shared settings for the project's scripts; sourced, not run.
# CARGO_TARGET_DIR lives outside the clone so the bundled DuckDB build
# (~50 min cold on 2 cores) is paid once per machine.
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
# The static DuckDB library, built once per machine by build-duckdb.sh.
export DUCKDB_LIB_DIR="${DUCKDB_LIB_DIR:-$(dirname "$CARGO_TARGET_DIR")/duckdb/lib}"
export DUCKDB_INCLUDE_DIR="${DUCKDB_INCLUDE_DIR:-$DUCKDB_LIB_DIR}"
export DUCKDB_STATIC=1
