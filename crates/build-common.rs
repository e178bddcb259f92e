//! Build script shared by the crates with tests that need root and by
//! every crate whose binaries or tests link DuckDB (`build =
//! "../build-common.rs"` in their `Cargo.toml`).
//!
//! **Root tests.** When the build runs as root it sets `cfg(world_root)`.
//! Tests that need root carry
//! `#[cfg_attr(not(world_root), ignore = "needs root: ...")]`, so a suite
//! built by another user reports them as ignored, never as passed (they
//! also still check at run time and say "skipped" if run without root).
//! The README's test command and CI build and run as root.
//!
//! **DuckDB.**
//! By default the workspace links DuckDB's prebuilt `libduckdb.so` (see
//! `scripts/duckdb.sh`). A binary finds it at run time through two rpath
//! entries: `$DUCKDB_LIB_DIR` itself (the build tree, tests) and
//! `$ORIGIN/../lib/world-runtime` (an installed `world` in `PREFIX/bin`
//! with the library in `PREFIX/lib/world-runtime`, see
//! `scripts/install.sh`). Link arguments do not pass from a library to the
//! crates that use it, so each such crate runs this script.
//!
//! With `DUCKDB_STATIC=1` (built from source, `WORLD_DUCKDB_FROM_SOURCE=1`)
//! no rpath is needed; `world-store` then also links what the static
//! library needs beyond itself: the C++ standard library and DuckDB's
//! statically registered extensions.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(world_root)");
    // The owner of /proc/self is this process's effective uid.
    let euid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    if euid.is_ok_and(|u| u == 0) {
        println!("cargo:rustc-cfg=world_root");
    }
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    println!("cargo:rerun-if-env-changed=DUCKDB_STATIC");
    let dir = std::env::var("DUCKDB_LIB_DIR")
        .unwrap_or_else(|_| "/var/cache/world-runtime/duckdb/lib".to_string());
    let is_static = std::env::var("DUCKDB_STATIC").is_ok_and(|v| v != "0");
    if is_static {
        if std::env::var("CARGO_PKG_NAME").as_deref() == Ok("world-store") {
            println!("cargo:rustc-link-search=native={dir}");
            println!(
                "cargo:rustc-link-lib=static:+whole-archive=duckdb_static_extension_autoregister"
            );
            println!("cargo:rustc-link-lib=stdc++");
        }
    } else {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../lib/world-runtime");
    }
}
