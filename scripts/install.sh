#!/usr/bin/env bash
# Installs the built `world` (and the DuckDB library it runs) so that it
# is on the user's PATH, plus the `duckdb` command-line tool the demo's
# closing line names. Run by scripts/demo.sh after the build.
#
#   as root:   /usr/local/bin/world, /usr/local/lib/world-runtime/{libduckdb.so,world-supervisor}
#   otherwise: ~/.local/bin/world,   ~/.local/lib/world-runtime/libduckdb.so
#   WORLD_PREFIX=/opt/world overrides the prefix.
#
# The binary finds the library through its rpath ($ORIGIN/../lib/world-runtime),
# so no LD_LIBRARY_PATH is needed. `duckdb` is linked to the venv's copy
# (PyPI duckdb-cli, the version scripts/requirements-dev.txt pins) unless
# the prefix already has another one.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

if [ -n "${WORLD_PREFIX:-}" ]; then
  PREFIX="$WORLD_PREFIX"
elif [ "$(id -u)" = 0 ]; then
  PREFIX=/usr/local
else
  PREFIX="$HOME/.local"
fi
BIN="$CARGO_TARGET_DIR/release/world"
[ -x "$BIN" ] || { echo "install: $BIN is not built (run ./scripts/demo.sh)" >&2; exit 1; }

mkdir -p "$PREFIX/bin" "$PREFIX/lib/world-runtime"
# Copy then rename, so a running `world` is never overwritten in place.
put() { # SRC DEST MODE
  if ! cmp -s "$1" "$2"; then
    install -m "$3" "$1" "$2.new"
    mv -f "$2.new" "$2"
  fi
}
if [ "${DUCKDB_STATIC:-0}" = 0 ]; then
  put "$DUCKDB_LIB_DIR/libduckdb.so" "$PREFIX/lib/world-runtime/libduckdb.so" 0644
  put "$DUCKDB_LIB_DIR/LICENSE" "$PREFIX/lib/world-runtime/LICENSE.duckdb" 0644
fi
put "$BIN" "$PREFIX/bin/world" 0755
# The lean program that runs lineage supervisors (no DuckDB to load).
if [ -x "$CARGO_TARGET_DIR/release/world-supervisor" ]; then
  put "$CARGO_TARGET_DIR/release/world-supervisor" "$PREFIX/lib/world-runtime/world-supervisor" 0755
fi

CLI="$WORLD_VENV/bin/duckdb"
if [ -x "$CLI" ]; then
  if [ ! -e "$PREFIX/bin/duckdb" ] || [ "$(readlink "$PREFIX/bin/duckdb")" = "$CLI" ]; then
    ln -sfn "$CLI" "$PREFIX/bin/duckdb"
  fi
fi

echo "install: $("$PREFIX/bin/world" --version) at $PREFIX/bin/world" >&2
case ":$PATH:" in
  *":$PREFIX/bin:"*) ;;
  *) echo "install: add $PREFIX/bin to your PATH (e.g. in ~/.profile: export PATH=\"$PREFIX/bin:\$PATH\")" >&2 ;;
esac
