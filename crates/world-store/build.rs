//! Links what the static DuckDB library needs beyond itself: the C++
//! standard library and DuckDB's statically registered extensions (core
//! functions such as `quantile_cont`), from `DUCKDB_LIB_DIR` (see
//! scripts/build-duckdb.sh).

fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    let dir = std::env::var("DUCKDB_LIB_DIR")
        .unwrap_or_else(|_| "/var/cache/world-runtime/duckdb/lib".to_string());
    println!("cargo:rustc-link-search=native={dir}");
    println!("cargo:rustc-link-lib=static:+whole-archive=duckdb_static_extension_autoregister");
    println!("cargo:rustc-link-lib=stdc++");
}
