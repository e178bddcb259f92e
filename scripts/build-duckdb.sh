#!/usr/bin/env bash
# Opt-in (WORLD_DUCKDB_FROM_SOURCE=1, called by scripts/duckdb.sh): builds
# DuckDB's static library from source once per machine into
# $DUCKDB_LIB_DIR, for hosts that cannot fetch the prebuilt library.
#
# The `duckdb` crate compiles DuckDB's C++ itself (feature `bundled`,
# about 50 minutes on 2 cores); inside our workspace that build would be
# keyed by the features of every other dependency. So we build it here, in
# a tiny project of its own whose dependencies never change, copy out
# libduckdb.a, and link the workspace against it (DUCKDB_LIB_DIR +
# DUCKDB_STATIC=1, set by scripts/env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

VERSION="$(sed -n 's/^duckdb = { version = "=\([^"]*\)".*/\1/p' Cargo.toml)"
[ -n "$VERSION" ] || { echo "build-duckdb: no pinned duckdb version in Cargo.toml" >&2; exit 1; }
STAMP="$DUCKDB_LIB_DIR/VERSION"
if [ -f "$DUCKDB_LIB_DIR/libduckdb_static.a" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$VERSION" ]; then
  exit 0
fi

echo "build-duckdb: compiling DuckDB $VERSION (C++, about 50 minutes on 2 cores; once per machine)" >&2
PROJ="$(dirname "$DUCKDB_LIB_DIR")/build-project"
mkdir -p "$PROJ/src" "$DUCKDB_LIB_DIR"
cat > "$PROJ/Cargo.toml" <<TOML
[package]
name = "duckdb-static-build"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
duckdb = { version = "=$VERSION", default-features = false, features = ["bundled"] }

[workspace]
TOML
echo 'fn main() { let _ = duckdb::Connection::open_in_memory(); }' > "$PROJ/src/main.rs"
# Its own target dir, its own lock file: nothing in our workspace can
# invalidate this build. The bundled build ignores DUCKDB_LIB_DIR.
( cd "$PROJ" && env -u DUCKDB_LIB_DIR -u DUCKDB_STATIC -u DUCKDB_INCLUDE_DIR \
    CARGO_TARGET_DIR="$PROJ/target" cargo build --release )
OUT="$(dirname "$(ls -t "$PROJ"/target/release/build/libduckdb-sys-*/out/libduckdb.a | head -1)")"
cp "$OUT/libduckdb.a" "$DUCKDB_LIB_DIR/libduckdb_static.a.tmp"
cp "$OUT/libduckdb_static_extension_autoregister.a" "$DUCKDB_LIB_DIR/"
INC="$(sed -n 's/^cargo:include=//p' "$OUT/../output" | head -1)"
[ -n "$INC" ] && cp "$INC/duckdb.h" "$DUCKDB_LIB_DIR/"
mv "$DUCKDB_LIB_DIR/libduckdb_static.a.tmp" "$DUCKDB_LIB_DIR/libduckdb_static.a"
echo "$VERSION" > "$STAMP"
echo "build-duckdb: $DUCKDB_LIB_DIR/libduckdb_static.a ready" >&2
