//! Where the substrate keeps things and how it starts supervisors: one
//! [`SubstrateConfig`] value, so tests can point everything at temp dirs.

use std::ffi::OsString;
use std::path::PathBuf;

/// Host uid/gid that world root maps to. All worlds share this one range
/// (worlds of one lineage will share files after branching); it is never
/// host root and lies far above any real user.
pub const DEFAULT_UID_BASE: u32 = 1_000_000_000;
/// Number of uids/gids mapped into every world (0..65536 inside).
pub const UID_COUNT: u32 = 65_536;

/// Paths and knobs of a substrate instance.
#[derive(Debug, Clone)]
pub struct SubstrateConfig {
    /// Persistent state: the btrfs image file, its mount, world and image
    /// records. Default `/var/lib/world-runtime`.
    pub state_dir: PathBuf,
    /// Runtime files: per-world control sockets and logs. Default
    /// `/run/world-runtime`.
    pub run_dir: PathBuf,
    /// Program and leading arguments that start a supervisor, e.g.
    /// `["/usr/bin/world", "__world-supervisor"]`. The launch spec is appended
    /// as one more argument; the program must call
    /// [`crate::supervisor_main`] with it.
    pub supervisor_cmd: Vec<OsString>,
    /// Size of the sparse btrfs image created on first use, in MiB.
    pub storage_size_mib: u64,
    /// First host uid/gid of the range world ids map to.
    pub uid_base: u32,
    /// Name of the cgroup directory that holds all worlds.
    pub cgroup_name: String,
    /// Most world shells a lineage keeps ready for its next branch (a
    /// branch of N asks for min(N, this) after it); 0 turns the pool off.
    /// Default [`DEFAULT_POOL_MAX`].
    pub pool_max: usize,
    /// Most snapshots one world may keep at once (each pins a subvolume
    /// and its sessions' templates); the next is refused until one is
    /// deleted. Default [`DEFAULT_SNAPSHOTS_MAX`].
    pub snapshots_max: usize,
    /// How long a command (`exec`) or a cell of code (`run-code`) may run
    /// when its caller gives no timeout; then it is killed (exec) or
    /// interrupted (run-code). A caller may ask for any longer time, but
    /// never for none: every host-side read from a world ends. Default
    /// [`DEFAULT_EXEC_TIMEOUT`].
    pub exec_timeout: std::time::Duration,
    /// Spare worlds kept ready per image that `create` was asked for
    /// (see `linux/spare.rs`); 0 turns them off. Default
    /// [`DEFAULT_SPARES`].
    pub spares: usize,
}

/// The program that runs lineage supervisors for the executable `exe`:
/// `world-supervisor` beside it or in `../lib/world-runtime/`, else `exe`.
pub fn supervisor_program(exe: &std::path::Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let Some(dir) = exe.parent() else {
        return exe.to_path_buf();
    };
    [
        dir.join("world-supervisor"),
        dir.join("../lib/world-runtime/world-supervisor"),
    ]
    .into_iter()
    .find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
    .unwrap_or_else(|| exe.to_path_buf())
}

/// Parses the value `v` of variable `name` as a number from `min` to
/// `max`; the error names the variable and what it counts.
fn env_number(
    name: &str,
    v: &std::ffi::OsStr,
    min: usize,
    max: usize,
    what: &str,
) -> Result<usize, String> {
    let v = v.to_string_lossy();
    v.trim()
        .parse()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("{name}={v}: expected a number of {what} from {min} to {max}"))
}

/// Default of [`SubstrateConfig::snapshots_max`].
pub const DEFAULT_SNAPSHOTS_MAX: usize = 256;

/// Default of [`SubstrateConfig::exec_timeout`]: ten minutes, enough for a
/// build or a test run, short enough that a forgotten `sleep infinity`
/// does not hold a daemon request for good.
pub const DEFAULT_EXEC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Longest timeout a caller may ask for: a week.
pub const MAX_EXEC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Default of [`SubstrateConfig::spares`]: two, so back-to-back creates
/// find one while the other is being refilled. A spare costs a lineage
/// manager, its signal guard and one world shell (PSS measured by `world
/// bench substrate`) plus an empty root subvolume.
pub const DEFAULT_SPARES: usize = 2;

/// Default of [`SubstrateConfig::pool_max`]: enough for a branch of 128
/// children. An idle shell costs about 0.1 MB (PSS, measured by `world
/// bench branch`) plus its namespaces.
pub const DEFAULT_POOL_MAX: usize = 128;

impl SubstrateConfig {
    /// Defaults for a root-run host install. `supervisor_cmd` is the lean
    /// `world-supervisor` program (this crate's binary) when it sits beside
    /// the current executable or in `../lib/world-runtime/` (an install),
    /// else the current executable itself; either way with the hidden
    /// `__world-supervisor` argument.
    ///
    /// Why a separate program: every lineage launch executes the
    /// supervisor, and the `world` CLI links DuckDB's 70 MB shared library,
    /// whose ~27,000 relocations cost ~7 ms at every start (measured: `world
    /// --help` 8 ms, `world-supervisor` 1 ms); the supervisor needs none of
    /// it.
    pub fn system_default() -> Self {
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
        Self::with_dirs(
            "/var/lib/world-runtime".into(),
            "/run/world-runtime".into(),
            vec![
                supervisor_program(&exe).into(),
                crate::SUPERVISOR_ARG.into(),
            ],
        )
    }

    /// Defaults with explicit directories and supervisor command.
    pub fn with_dirs(state_dir: PathBuf, run_dir: PathBuf, supervisor_cmd: Vec<OsString>) -> Self {
        SubstrateConfig {
            state_dir,
            run_dir,
            supervisor_cmd,
            storage_size_mib: 32 * 1024,
            uid_base: DEFAULT_UID_BASE,
            cgroup_name: "world-runtime".into(),
            pool_max: DEFAULT_POOL_MAX,
            snapshots_max: DEFAULT_SNAPSHOTS_MAX,
            exec_timeout: DEFAULT_EXEC_TIMEOUT,
            spares: DEFAULT_SPARES,
        }
    }

    /// Applies the environment's overrides, for the programs at the edge
    /// (CLI, daemon): `WORLD_STATE_DIR`, `WORLD_RUN_DIR` (tests and
    /// unprivileged experiments), `WORLD_POOL_MAX` (see [`Self::pool_max`])
    /// `WORLD_SNAPSHOTS_MAX` (see [`Self::snapshots_max`]), `WORLD_SPARES`
    /// (see [`Self::spares`]) and
    /// `WORLD_EXEC_TIMEOUT` (seconds, see [`Self::exec_timeout`]). Empty
    /// values are ignored; a bad number is an error that names the
    /// variable.
    pub fn apply_env(&mut self) -> Result<(), String> {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        if let Some(d) = var("WORLD_STATE_DIR") {
            self.state_dir = d.into();
        }
        if let Some(d) = var("WORLD_RUN_DIR") {
            self.run_dir = d.into();
        }
        if let Some(v) = var("WORLD_POOL_MAX") {
            self.pool_max = env_number("WORLD_POOL_MAX", &v, 0, 1024, "world shells")?;
        }
        if let Some(v) = var("WORLD_SNAPSHOTS_MAX") {
            self.snapshots_max =
                env_number("WORLD_SNAPSHOTS_MAX", &v, 1, 100_000, "snapshots per world")?;
        }
        if let Some(v) = var("WORLD_SPARES") {
            self.spares = env_number("WORLD_SPARES", &v, 0, 64, "spare worlds per image")?;
        }
        if let Some(v) = var("WORLD_EXEC_TIMEOUT") {
            let max = MAX_EXEC_TIMEOUT.as_secs() as usize;
            let s = env_number("WORLD_EXEC_TIMEOUT", &v, 1, max, "seconds")?;
            self.exec_timeout = std::time::Duration::from_secs(s as u64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lean_supervisor_is_preferred_where_it_is_installed() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        let lib = d.path().join("lib/world-runtime");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&lib).unwrap();
        let exe = bin.join("world");
        std::fs::write(&exe, "").unwrap();
        assert_eq!(supervisor_program(&exe), exe);
        let installed = lib.join("world-supervisor");
        std::fs::write(&installed, "").unwrap();
        // Not executable: not taken.
        assert_eq!(supervisor_program(&exe), exe);
        std::fs::set_permissions(&installed, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            supervisor_program(&exe),
            bin.join("../lib/world-runtime/world-supervisor")
        );
        let beside = bin.join("world-supervisor");
        std::fs::write(&beside, "").unwrap();
        std::fs::set_permissions(&beside, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(supervisor_program(&exe), beside);
    }
}
