//! Plain data of the substrate API: world ids, limits, create options,
//! world info, exec requests and results. No behaviour beyond validation.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A world's id: 1-32 chars of `[a-z0-9-]`, starting with a letter or digit.
/// It is also the world's hostname. Ids read back from records (JSON) are
/// validated like any other: a record naming `../x` fails to load.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct WorldId(String);

impl TryFrom<String> for WorldId {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        WorldId::new(&s).ok_or_else(|| format!("invalid world id {s:?}"))
    }
}

impl WorldId {
    /// Validates and wraps an id.
    pub fn new(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-');
        ok.then(|| WorldId(s.to_string()))
    }

    /// A fresh random id such as `w-3f9a0c12d4e5`.
    pub fn random() -> Self {
        let mut b = [0u8; 6];
        // SAFETY: getrandom writes at most b.len() bytes into b.
        let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
        if n != b.len() as isize {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
                ^ u128::from(std::process::id());
            b.copy_from_slice(&t.to_le_bytes()[..6]);
        }
        WorldId(format!(
            "w-{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl schemars::JsonSchema for WorldId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "WorldId".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9-]{0,31}$",
            "description": "A world's id (also its hostname)."
        })
    }
}

impl fmt::Display for WorldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Resource limits of a world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Limits {
    /// CPU quota in whole CPUs (1..=host CPUs x 4).
    pub vcpu_count: u32,
    /// Memory limit in MiB (>= 16); the OOM killer acts inside the world.
    pub mem_size_mib: u64,
    /// Maximum number of processes/threads (>= 8).
    pub pids_max: u32,
    /// Limit on what the world writes to its filesystem, in MiB (>= 16);
    /// `None` for no limit.
    pub disk_mib: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            vcpu_count: 1,
            mem_size_mib: 512,
            pids_max: 1024,
            disk_mib: Some(4096),
        }
    }
}

impl Limits {
    /// Checks ranges; returns a message naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        if self.vcpu_count == 0 || self.vcpu_count > cpus * 4 {
            return Err(format!(
                "vcpu_count {} out of range 1..={}",
                self.vcpu_count,
                cpus * 4
            ));
        }
        if self.mem_size_mib < 16 || self.mem_size_mib > 1 << 30 {
            return Err(format!("mem_size_mib {} must be >= 16", self.mem_size_mib));
        }
        if self.pids_max < 8 {
            return Err(format!("pids_max {} must be >= 8", self.pids_max));
        }
        if let Some(d) = self.disk_mib {
            if d < 16 {
                return Err(format!("disk_mib {d} must be >= 16"));
            }
        }
        Ok(())
    }
}

/// Options of [`crate::Substrate::create`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Id to use; a random one when `None`.
    pub id: Option<WorldId>,
    /// Image name; `host` when `None`.
    pub image: Option<String>,
    /// Resource limits.
    pub limits: Limits,
}

/// Result of a successful create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Created {
    /// The new world's id.
    pub id: WorldId,
    /// Measured time from the call to a world ready for exec, in ms
    /// (record it as `boot_time_ms`).
    pub create_ms: f64,
    /// Limits that could not be enforced on this host, one message each.
    pub warnings: Vec<String>,
}

/// A world's state: the one lifecycle enum of `world-core` (a live
/// supervisor is `running`, or `paused` while the world's cgroup is
/// frozen; a dead one is `lost`).
pub use world_core::lifecycle::State as WorldState;

/// What `inspect` and `list` report about a world.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorldInfo {
    /// Id (= hostname).
    pub id: WorldId,
    /// Image it was created from.
    pub image: String,
    /// Current state.
    pub state: WorldState,
    /// Requested limits.
    pub limits: Limits,
    /// Limits not enforced on this host.
    pub warnings: Vec<String>,
    /// Measured create time, ms.
    pub create_ms: f64,
    /// Creation time, seconds since the epoch.
    pub created_at: u64,
    /// Supervisor pid on the host.
    pub supervisor_pid: i32,
    /// Memory in use now (cgroup), bytes.
    pub memory_bytes: Option<u64>,
    /// Processes in use now (cgroup).
    pub pids: Option<u64>,
    /// Bytes of the world's filesystem counted against its disk limit: the
    /// data it started with (from its snapshot) plus what it wrote.
    pub disk_bytes: Option<u64>,
}

/// A command to run in a world.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExecRequest {
    /// Program and arguments; the program is searched in `PATH`.
    pub argv: Vec<String>,
    /// Extra environment, applied over the defaults (PATH, HOME, TERM,
    /// HOSTNAME, LANG).
    pub env: Vec<(String, String)>,
    /// Working directory inside the world; `/root` when `None`.
    pub cwd: Option<String>,
    /// Kill the whole process tree of this exec after this long.
    pub timeout: Option<Duration>,
    /// Standard input is a terminal (the slave of a [`crate::pty::Pty`]):
    /// the command's new session takes it as its controlling terminal, so
    /// job control, `^C` and hang-up work as under `sshd`.
    #[serde(default)]
    pub tty: bool,
}

impl ExecRequest {
    /// A request for `argv` with defaults.
    pub fn new<S: AsRef<str>>(argv: &[S]) -> Self {
        ExecRequest {
            argv: argv.iter().map(|s| s.as_ref().to_string()).collect(),
            ..Default::default()
        }
    }
}

/// How an exec ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExecStatus {
    /// Shell-style exit code: the exit status, or 128 + signal.
    pub exit_code: i32,
    /// The signal that killed the command, if any.
    pub signal: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
}

/// The exit code of a command killed by its timeout, as `timeout(1)`.
pub const TIMEOUT_EXIT_CODE: i32 = 124;

impl ExecStatus {
    /// The shell-style exit code every front door reports (CLI exit code,
    /// HTTP `exit_code`): [`TIMEOUT_EXIT_CODE`] when the timeout killed
    /// the command, 128 + N when signal N did, else its own exit status.
    /// Never overflows, whatever a status read from a world says.
    pub fn shell_code(&self) -> i32 {
        if self.timed_out {
            TIMEOUT_EXIT_CODE
        } else if let Some(s) = self.signal {
            128i32.saturating_add(s)
        } else {
            self.exit_code
        }
    }
}

/// Captured result of [`crate::Substrate::exec_output`].
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// How it ended.
    pub status: ExecStatus,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn shell_codes_follow_the_one_rule(code in any::<i32>(), sig in proptest::option::of(any::<i32>()), timed_out in any::<bool>()) {
            let s = ExecStatus { exit_code: code, signal: sig, timed_out };
            let got = s.shell_code();
            if timed_out {
                prop_assert_eq!(got, TIMEOUT_EXIT_CODE);
            } else if let Some(n) = sig {
                prop_assert_eq!(got as i64, (128i64 + n as i64).min(i32::MAX as i64));
            } else {
                prop_assert_eq!(got, code);
            }
        }
    }

    #[test]
    fn world_ids_are_validated_when_read_from_json() {
        let ok: WorldId = serde_json::from_str("\"w-0123abcd\"").unwrap();
        assert_eq!(ok.as_str(), "w-0123abcd");
        for bad in ["\"../x\"", "\"\"", "\"W\"", "\"-a\"", "\"a/b\""] {
            assert!(serde_json::from_str::<WorldId>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn world_ids_are_validated() {
        assert!(WorldId::new("w-1a2b").is_some());
        for bad in ["", "-x", "A", "a/b", "a b", &"x".repeat(33)] {
            assert!(WorldId::new(bad).is_none(), "{bad:?}");
        }
        let r = WorldId::random();
        assert!(WorldId::new(r.as_str()).is_some());
        assert_ne!(r, WorldId::random());
    }

    #[test]
    fn limits_are_validated() {
        assert!(Limits::default().validate().is_ok());
        let bad = [
            Limits {
                vcpu_count: 0,
                ..Default::default()
            },
            Limits {
                mem_size_mib: 8,
                ..Default::default()
            },
            Limits {
                pids_max: 2,
                ..Default::default()
            },
            Limits {
                disk_mib: Some(0),
                ..Default::default()
            },
        ];
        for l in bad {
            assert!(l.validate().is_err(), "{l:?}");
        }
    }
}
