//! Where the database file lives by default.
//!
//! Order of precedence: an explicit `--db` path, then `WORLD_DB`, then
//! `/var/lib/world-runtime/world.duckdb` for root, otherwise
//! `$XDG_DATA_HOME/world-runtime/world.duckdb` (`~/.local/share/...` when
//! `XDG_DATA_HOME` is unset).

use std::path::PathBuf;

/// The environment variable that overrides the default database path.
pub const ENV_DB: &str = "WORLD_DB";

/// Resolves the database path from an explicit flag and the environment.
pub fn resolve_db_path(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(p) = explicit {
        return p;
    }
    if let Some(p) = std::env::var_os(ENV_DB).filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    default_db_path(
        is_root(),
        std::env::var_os("XDG_DATA_HOME"),
        std::env::var_os("HOME"),
    )
}

/// The default path for a given identity and environment (pure, for tests).
pub fn default_db_path(
    root: bool,
    xdg_data_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> PathBuf {
    if root {
        return PathBuf::from("/var/lib/world-runtime/world.duckdb");
    }
    let base = match xdg_data_home.filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(home.unwrap_or_else(|| ".".into())).join(".local/share"),
    };
    base.join("world-runtime").join("world.duckdb")
}

fn is_root() -> bool {
    // /proc/self/status is readable without unsafe code; euid is the second
    // number on the Uid: line.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_uses_var_lib() {
        assert_eq!(
            default_db_path(true, Some("/x".into()), Some("/home/a".into())),
            PathBuf::from("/var/lib/world-runtime/world.duckdb")
        );
    }

    #[test]
    fn user_uses_xdg_then_home() {
        assert_eq!(
            default_db_path(false, Some("/x".into()), Some("/home/a".into())),
            PathBuf::from("/x/world-runtime/world.duckdb")
        );
        assert_eq!(
            default_db_path(false, None, Some("/home/a".into())),
            PathBuf::from("/home/a/.local/share/world-runtime/world.duckdb")
        );
    }

    #[test]
    fn explicit_wins() {
        assert_eq!(
            resolve_db_path(Some("/tmp/a.duckdb".into())),
            PathBuf::from("/tmp/a.duckdb")
        );
    }
}
