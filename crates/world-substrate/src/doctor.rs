//! Host checks for `world doctor`: what worlds need from this machine.
//!
//! Each check reads the host as it is (files under `/proc` and `/sys`, the
//! `PATH`, free disk) and changes nothing. A check that fails means worlds
//! cannot be created here; a warning means they can, with something less
//! (a missing limit, slower session forks). Each result carries what to do.
//! The CLI adds the checks that are not the substrate's (the DuckDB
//! library, the database file, the daemon's socket).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cgroup::{self, HierarchyKind};
use crate::config::SubstrateConfig;

/// Oldest kernel the substrate is tested on and relies on (`close_range`,
/// `pidfd_open`, `clone3`, cgroup v2's `cgroup.kill` and freezer).
pub const MIN_KERNEL: (u32, u32) = (5, 14);

/// Free space below which the store refuses to be useful: the btrfs image
/// is sparse, but images, world files and snapshots all land in it.
pub const MIN_FREE_BYTES: u64 = 1 << 30;
/// Free space below which `doctor` warns.
pub const LOW_FREE_BYTES: u64 = 4 << 30;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Worlds run, with something less.
    Warn,
    /// Worlds cannot run until this is fixed.
    Fail,
}

/// One line of `world doctor`.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Short name (`kernel`, `cgroups`, ...).
    pub name: &'static str,
    /// Outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do, when it is not fine.
    pub fix: Option<String>,
}

impl Check {
    /// A check that passed.
    pub fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A check that found something less or missing.
    pub fn bad(
        name: &'static str,
        status: Status,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name,
            status,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every host check of the substrate, in the order `world doctor` prints
/// them.
pub fn host_checks(cfg: &SubstrateConfig) -> Vec<Check> {
    vec![
        root(),
        kernel(&read("/proc/sys/kernel/osrelease")),
        user_namespaces(&read("/proc/sys/user/max_user_namespaces")),
        cgroups(&cgroup::hierarchy()),
        btrfs(
            &read("/proc/filesystems"),
            module_available("btrfs"),
            on_path("mkfs.btrfs"),
        ),
        loop_devices(
            Path::new("/dev/loop-control").exists(),
            module_available("loop"),
        ),
        seccomp(&read("/proc/self/status")),
        huge_pages(&read("/sys/kernel/mm/transparent_hugepage/enabled")),
        python(on_path("python3")),
        disk(&cfg.state_dir),
    ]
}

fn read(p: &str) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn root() -> Check {
    // SAFETY: geteuid has no side effects and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        Check::ok("root", "running as root")
    } else {
        Check::bad(
            "root",
            Status::Fail,
            format!("running as uid {euid}; worlds need root (namespaces, mounts, cgroups)"),
            "run world as root (sudo world ...); `world demo ledger` and the `world verse` commands run without",
        )
    }
}

/// Parses `major.minor` from a kernel release such as `6.1.0-18-cloud-amd64`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.trim().split(['.', '-']);
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

fn kernel(release: &str) -> Check {
    let release = release.trim();
    match kernel_version(release) {
        Some(v) if v >= MIN_KERNEL => Check::ok("kernel", format!("Linux {release}")),
        Some(_) => Check::bad(
            "kernel",
            Status::Fail,
            format!(
                "Linux {release} is older than {}.{}",
                MIN_KERNEL.0, MIN_KERNEL.1
            ),
            "upgrade the kernel (Debian 12 ships 6.1, Ubuntu 22.04 ships 5.15)",
        ),
        None => Check::bad(
            "kernel",
            Status::Warn,
            format!("cannot read the kernel version ({release:?})"),
            "check /proc/sys/kernel/osrelease",
        ),
    }
}

fn user_namespaces(max: &str) -> Check {
    match max.trim().parse::<u64>() {
        Ok(0) => Check::bad(
            "user namespaces",
            Status::Fail,
            "user.max_user_namespaces is 0",
            "sysctl -w user.max_user_namespaces=15000 (and in /etc/sysctl.d to keep it)",
        ),
        Ok(n) => Check::ok("user namespaces", format!("up to {n}")),
        Err(_) => Check::bad(
            "user namespaces",
            Status::Fail,
            "the kernel has no user namespaces (/proc/sys/user/max_user_namespaces missing)",
            "use a kernel built with CONFIG_USER_NS",
        ),
    }
}

fn cgroups(h: &cgroup::Hierarchy) -> Check {
    let kind = match h.kind {
        HierarchyKind::V2 => "v2 (unified)",
        HierarchyKind::V1 => "v1",
        HierarchyKind::Hybrid => "hybrid v1/v2 (worlds use v1)",
    };
    let detail = format!("{kind}; controllers: {}", h.controllers.join(" "));
    let essential: Vec<&String> = h
        .missing
        .iter()
        .filter(|c| *c == "memory" || *c == "pids")
        .collect();
    if !essential.is_empty() {
        Check::bad(
            "cgroups",
            Status::Fail,
            format!("{detail}; missing {}", h.missing.join(" ")),
            "enable the memory and pids controllers (v2: echo '+memory +pids +cpu' > /sys/fs/cgroup/cgroup.subtree_control; or boot with cgroup_enable=memory)",
        )
    } else if !h.missing.is_empty() {
        Check::bad(
            "cgroups",
            Status::Warn,
            format!("{detail}; missing {}", h.missing.join(" ")),
            "without cpu, --vcpus is not enforced; without freezer, pause and snapshot cannot stop a world's processes",
        )
    } else {
        Check::ok("cgroups", detail)
    }
}

/// Whether the running kernel has `name` as a loadable module.
fn module_available(name: &str) -> bool {
    let release = read("/proc/sys/kernel/osrelease");
    let dir = PathBuf::from("/lib/modules").join(release.trim());
    let listed = std::fs::read_to_string(dir.join("modules.dep")).unwrap_or_default();
    let file = format!("/{name}.ko");
    listed.lines().any(|l| {
        l.split(':').next().is_some_and(|m| {
            m.contains(&file)
                && m.rsplit('/')
                    .next()
                    .is_some_and(|f| f.starts_with(&format!("{name}.ko")))
        })
    })
}

fn on_path(cmd: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .any(|d| d.join(cmd).is_file())
    })
}

fn btrfs(filesystems: &str, module: bool, mkfs: bool) -> Check {
    let built_in = filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some("btrfs"));
    if !built_in && !module {
        return Check::bad(
            "btrfs",
            Status::Fail,
            "the kernel has no btrfs (not in /proc/filesystems, no module)",
            "install your distribution's kernel modules (Debian: linux-image-amd64), or use a kernel with CONFIG_BTRFS_FS",
        );
    }
    if !mkfs {
        return Check::bad(
            "btrfs",
            Status::Fail,
            "mkfs.btrfs is not installed",
            "apt-get install btrfs-progs",
        );
    }
    let how = if built_in {
        "loaded"
    } else {
        "module, loaded on first use"
    };
    Check::ok("btrfs", format!("kernel btrfs {how}; mkfs.btrfs present"))
}

fn loop_devices(control: bool, module: bool) -> Check {
    if control {
        Check::ok("loop devices", "/dev/loop-control present")
    } else if module {
        Check::bad(
            "loop devices",
            Status::Warn,
            "/dev/loop-control is missing but the loop module exists",
            "modprobe loop",
        )
    } else {
        Check::bad(
            "loop devices",
            Status::Fail,
            "no /dev/loop-control and no loop module (in a container: it needs loop devices passed in)",
            "modprobe loop, or run on a host (or privileged container) with loop devices",
        )
    }
}

fn seccomp(status: &str) -> Check {
    let field = status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .map(str::trim);
    match field {
        Some("0") => Check::ok("seccomp", "available (this process is not filtered)"),
        Some(mode) => Check::ok(
            "seccomp",
            format!("available (this process already runs under filter mode {mode}; worlds stack theirs)"),
        ),
        None => Check::bad(
            "seccomp",
            Status::Fail,
            "the kernel has no seccomp (no Seccomp: line in /proc/self/status)",
            "use a kernel built with CONFIG_SECCOMP_FILTER",
        ),
    }
}

fn huge_pages(enabled: &str) -> Check {
    if enabled.trim().is_empty() {
        Check::bad(
            "huge pages",
            Status::Warn,
            "no /sys/kernel/mm/transparent_hugepage",
            "sessions still run; forking a large session is ~2-4x slower without transparent huge pages",
        )
    } else {
        Check::ok(
            "huge pages",
            format!("transparent huge pages: {}", enabled.trim()),
        )
    }
}

fn python(present: bool) -> Check {
    if present {
        Check::ok("python3", "present (persistent code sessions)")
    } else {
        Check::bad(
            "python3",
            Status::Warn,
            "python3 is not on PATH",
            "apt-get install python3 (worlds run without it; run-code and sessions need it)",
        )
    }
}

/// The nearest existing directory at or above `p`.
fn existing_ancestor(p: &Path) -> &Path {
    p.ancestors().find(|a| a.exists()).unwrap_or(Path::new("/"))
}

fn free_bytes(p: &Path) -> std::io::Result<u64> {
    let c = crate::sys::cpath(p.as_os_str())?;
    // SAFETY: statvfs is plain old data; zeroed is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid out pointer.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

fn disk(state_dir: &Path) -> Check {
    let at = existing_ancestor(state_dir);
    match free_bytes(at) {
        Ok(free) => disk_verdict(state_dir, at, free),
        Err(e) => Check::bad(
            "disk",
            Status::Warn,
            format!("cannot read free space at {}: {e}", at.display()),
            "check the file system that holds the state directory",
        ),
    }
}

fn disk_verdict(state_dir: &Path, at: &Path, free: u64) -> Check {
    let gib = free as f64 / (1u64 << 30) as f64;
    let detail = format!(
        "{gib:.1} GiB free for {} (on {})",
        state_dir.display(),
        at.display()
    );
    if free < MIN_FREE_BYTES {
        Check::bad(
            "disk",
            Status::Fail,
            detail,
            "free space on that file system, or point WORLD_STATE_DIR elsewhere",
        )
    } else if free < LOW_FREE_BYTES {
        Check::bad(
            "disk",
            Status::Warn,
            detail,
            "worlds, images and snapshots share this space; a few GiB more is wise",
        )
    } else {
        Check::ok("disk", detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kernel_versions_are_read_and_compared() {
        assert_eq!(kernel_version("6.1.0-18-cloud-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("5.15.0\n"), Some((5, 15)));
        assert_eq!(kernel("6.1.0-18-cloud-amd64").status, Status::Ok);
        assert_eq!(kernel("5.4.0-100-generic").status, Status::Fail);
        assert_eq!(kernel("").status, Status::Warn);
    }

    #[test]
    fn user_namespaces_off_or_missing_fail() {
        assert_eq!(user_namespaces("0\n").status, Status::Fail);
        assert_eq!(user_namespaces("").status, Status::Fail);
        assert_eq!(user_namespaces("63457\n").status, Status::Ok);
    }

    #[test]
    fn cgroups_without_memory_fail_and_without_cpu_warn() {
        let h = |c: &[&str], m: &[&str]| cgroup::Hierarchy {
            kind: HierarchyKind::V2,
            controllers: c.iter().map(|s| s.to_string()).collect(),
            missing: m.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            cgroups(&h(&["pids", "cpu", "freezer"], &["memory"])).status,
            Status::Fail
        );
        assert_eq!(
            cgroups(&h(&["memory", "pids", "freezer"], &["cpu"])).status,
            Status::Warn
        );
        assert_eq!(
            cgroups(&h(&["memory", "pids", "cpu", "freezer"], &[])).status,
            Status::Ok
        );
    }

    #[test]
    fn btrfs_needs_the_kernel_and_the_tools() {
        let fs = "nodev\tsysfs\n\tbtrfs\n";
        assert_eq!(btrfs(fs, false, true).status, Status::Ok);
        assert_eq!(btrfs("nodev\tsysfs\n", true, true).status, Status::Ok);
        assert_eq!(btrfs("nodev\tsysfs\n", false, true).status, Status::Fail);
        assert_eq!(btrfs(fs, false, false).status, Status::Fail);
    }

    #[test]
    fn seccomp_and_loop_and_disk() {
        assert_eq!(seccomp("Name:\tx\nSeccomp:\t0\n").status, Status::Ok);
        assert_eq!(seccomp("Seccomp:\t2\n").status, Status::Ok);
        assert_eq!(seccomp("Name:\tx\n").status, Status::Fail);
        assert_eq!(loop_devices(true, false).status, Status::Ok);
        assert_eq!(loop_devices(false, true).status, Status::Warn);
        assert_eq!(loop_devices(false, false).status, Status::Fail);
        let p = Path::new("/var/lib/world-runtime");
        assert_eq!(disk_verdict(p, p, 0).status, Status::Fail);
        assert_eq!(disk_verdict(p, p, 2 << 30).status, Status::Warn);
        assert_eq!(disk_verdict(p, p, 40 << 30).status, Status::Ok);
    }

    #[test]
    fn every_bad_check_says_what_to_do() {
        let cfg = SubstrateConfig::with_dirs("/nonexistent/x".into(), "/run/x".into(), vec![]);
        for c in host_checks(&cfg) {
            assert_eq!(c.status == Status::Ok, c.fix.is_none(), "{c:?}");
            assert!(!c.detail.is_empty(), "{c:?}");
        }
    }

    proptest! {
        /// Any text from /proc: never a panic, and a status for each.
        #[test]
        fn any_proc_text_gets_a_verdict(s in ".{0,64}") {
            let _ = kernel(&s);
            let _ = user_namespaces(&s);
            let _ = seccomp(&s);
            let _ = btrfs(&s, false, true);
            let _ = huge_pages(&s);
        }
    }
}
