#!/usr/bin/env bash
# Puts the DuckDB library the workspace links into $DUCKDB_LIB_DIR, once
# per machine and version.
#
# Default: DuckDB's official prebuilt libduckdb.so (pinned in
# scripts/duckdb.pin), fetched with npm and checked against its sha256;
# the binaries find it through an rpath (crates/build-common.rs), so no
# LD_LIBRARY_PATH is needed. About 10 s.
#
# WORLD_DUCKDB_FROM_SOURCE=1: compile DuckDB's C++ instead (about 50
# minutes on 2 cores) and link it statically; for hosts without npm.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
. scripts/duckdb.pin

if [ "${WORLD_DUCKDB_FROM_SOURCE:-0}" = 1 ]; then
  exec ./scripts/build-duckdb.sh
fi

# The crate pinned in Cargo.toml must be the same DuckDB version.
CRATE="$(sed -n 's/^duckdb = { version = "=\([^"]*\)".*/\1/p' Cargo.toml)"
IFS=. read -r _ packed _ <<<"$CRATE"
CRATE_DUCKDB="$((10#${packed:0:1})).$((10#${packed:1:2})).$((10#${packed:3:2}))"
if [ "$CRATE_DUCKDB" != "$DUCKDB_VERSION" ]; then
  echo "duckdb.sh: crate duckdb $CRATE is DuckDB $CRATE_DUCKDB but scripts/duckdb.pin pins $DUCKDB_VERSION" >&2
  exit 1
fi

SO="$DUCKDB_LIB_DIR/libduckdb.so"
STAMP="$DUCKDB_LIB_DIR/VERSION"
if [ -f "$SO" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$DUCKDB_NPM_VERSION" ]; then
  exit 0
fi

if ! command -v npm >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "duckdb.sh: npm is needed to fetch DuckDB's prebuilt library (run: sudo apt-get install npm), or set WORLD_DUCKDB_FROM_SOURCE=1 to compile it (~50 min)" >&2
    exit 1
  fi
  echo "duckdb.sh: apt-get install npm" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
fi

echo "duckdb.sh: fetching DuckDB $DUCKDB_VERSION ($DUCKDB_NPM_PACKAGE@$DUCKDB_NPM_VERSION, 24 MB)" >&2
mkdir -p "$DUCKDB_LIB_DIR"
TMP="$(mktemp -d "$DUCKDB_LIB_DIR/.fetch.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
( cd "$TMP" && npm pack --silent "$DUCKDB_NPM_PACKAGE@$DUCKDB_NPM_VERSION" >/dev/null )
TGZ="$(ls "$TMP"/*.tgz)"
echo "$DUCKDB_NPM_SHA256  $TGZ" | sha256sum --check --quiet - || {
  echo "duckdb.sh: $DUCKDB_NPM_PACKAGE@$DUCKDB_NPM_VERSION does not match the sha256 pinned in scripts/duckdb.pin; refusing it" >&2
  exit 1
}
tar -xzf "$TGZ" -C "$TMP" package/libduckdb.so package/LICENSE
echo "$DUCKDB_SO_SHA256  $TMP/package/libduckdb.so" | sha256sum --check --quiet - || {
  echo "duckdb.sh: libduckdb.so inside the package does not match scripts/duckdb.pin" >&2
  exit 1
}
chmod 0644 "$TMP/package/libduckdb.so" "$TMP/package/LICENSE"
mv "$TMP/package/LICENSE" "$DUCKDB_LIB_DIR/LICENSE"
mv "$TMP/package/libduckdb.so" "$SO"
echo "$DUCKDB_NPM_VERSION" > "$STAMP"
echo "duckdb.sh: $SO ready" >&2
