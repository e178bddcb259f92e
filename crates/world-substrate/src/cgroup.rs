//! Per-world cgroups: CPU quota, memory, pids (and the freezer for issue 4),
//! on cgroup v2 or on the v1 controllers of a v1/v2 hybrid host. A limit
//! whose controller is missing becomes a warning, never a silent no-op.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::types::Limits;

/// Errors of cgroup setup and teardown.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Writing a cgroup file or directory failed.
    #[error("cgroup {0}: {1}")]
    Io(PathBuf, #[source] io::Error),
    /// Processes did not leave before the deadline.
    #[error("cgroup {0}: processes still alive after kill")]
    Busy(PathBuf),
}

/// Which hierarchy is in use.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Unified hierarchy at this mount point.
    V2(PathBuf),
    /// v1 controller name -> mount point.
    V1(Vec<(&'static str, PathBuf)>),
}

/// The cgroups of one world (one dir in v2, one per controller in v1).
#[derive(Debug, Clone)]
pub struct WorldCgroup {
    /// Directories, first one is the reference for procs/memory.
    dirs: Vec<(&'static str, PathBuf)>,
    v2: bool,
}

fn mounts() -> Vec<(String, String, String)> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            Some((
                f.get(4)?.to_string(),
                f.get(sep + 1)?.to_string(),
                f.get(sep + 3)?.to_string(),
            ))
        })
        .collect()
}

/// The hierarchy in use, read from mountinfo once per process (every
/// world create, open and destroy asks; the answer does not change).
fn detect() -> Mode {
    static MODE: std::sync::OnceLock<Mode> = std::sync::OnceLock::new();
    MODE.get_or_init(detect_now).clone()
}

fn detect_now() -> Mode {
    let m = mounts();
    let mut v1 = Vec::new();
    for ctl in ["memory", "pids", "cpu", "freezer"] {
        if let Some((mp, _, _)) = m
            .iter()
            .find(|(_, t, o)| t == "cgroup" && o.split(',').any(|x| x == ctl))
        {
            v1.push((ctl, PathBuf::from(mp)));
        }
    }
    if !v1.is_empty() {
        return Mode::V1(v1);
    }
    let v2 = m
        .iter()
        .find(|(_, t, _)| t == "cgroup2")
        .map_or_else(|| PathBuf::from("/sys/fs/cgroup"), |(mp, _, _)| mp.into());
    Mode::V2(v2)
}

/// What `world doctor` reports of the cgroup hierarchy this host runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hierarchy {
    /// Which hierarchy worlds use.
    pub kind: HierarchyKind,
    /// Controllers worlds can use (`memory`, `pids`, `cpu`, `freezer`).
    pub controllers: Vec<String>,
    /// Controllers worlds need that are missing (their limits would be
    /// warnings only).
    pub missing: Vec<String>,
}

/// The cgroup hierarchy kinds WorldRuntime handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HierarchyKind {
    /// The unified hierarchy only (current Debian, Ubuntu, Fedora).
    V2,
    /// v1 controllers, no cgroup2 mount.
    V1,
    /// v1 controllers beside a cgroup2 mount; worlds use the v1 ones.
    Hybrid,
}

/// The hierarchy worlds use on this host and its controllers.
pub fn hierarchy() -> Hierarchy {
    let need = ["memory", "pids", "cpu", "freezer"];
    let has_v2 = mounts().iter().any(|(_, t, _)| t == "cgroup2");
    let (kind, controllers) = match detect() {
        Mode::V1(v1) => {
            let kind = if has_v2 {
                HierarchyKind::Hybrid
            } else {
                HierarchyKind::V1
            };
            (
                kind,
                v1.iter().map(|(c, _)| c.to_string()).collect::<Vec<_>>(),
            )
        }
        Mode::V2(root) => {
            let listed = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            let mut c: Vec<String> = listed
                .split_whitespace()
                .filter(|c| need.contains(c))
                .map(str::to_string)
                .collect();
            // The v2 freezer is part of the core (cgroup.freeze), not a
            // controller; it exists wherever the hierarchy is mounted.
            if root.join("cgroup.controllers").exists() {
                c.push("freezer".into());
            }
            (HierarchyKind::V2, c)
        }
    };
    let missing = need
        .iter()
        .filter(|n| !controllers.iter().any(|c| c == *n))
        .map(|n| n.to_string())
        .collect();
    Hierarchy {
        kind,
        controllers,
        missing,
    }
}

fn write(p: &Path, v: &str) -> Result<(), CgroupError> {
    fs::write(p, v).map_err(|e| CgroupError::Io(p.into(), e))
}

fn mkdir(p: &Path) -> Result<(), CgroupError> {
    match fs::create_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) => Err(CgroupError::Io(p.into(), e)),
    }
}

impl WorldCgroup {
    /// Creates the world's cgroups and applies `limits`; returns the cgroup
    /// and warnings for limits that cannot be enforced here.
    pub fn create(
        parent: &str,
        id: &str,
        limits: &Limits,
    ) -> Result<(WorldCgroup, Vec<String>), CgroupError> {
        let mut warnings = Vec::new();
        let cg = match detect() {
            Mode::V2(root) => {
                let top = root.join(parent);
                mkdir(&top)?;
                let avail = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
                let want: Vec<&str> = ["memory", "pids", "cpu"]
                    .into_iter()
                    .filter(|c| avail.split_whitespace().any(|a| a == *c))
                    .collect();
                let ctl: String = want.iter().map(|c| format!("+{c} ")).collect();
                if !ctl.is_empty() {
                    let _ = write(&root.join("cgroup.subtree_control"), ctl.trim());
                    let _ = write(&top.join("cgroup.subtree_control"), ctl.trim());
                }
                let dir = top.join(id);
                mkdir(&dir)?;
                WorldCgroup {
                    dirs: vec![("unified", dir)],
                    v2: true,
                }
            }
            Mode::V1(ctls) => {
                let mut dirs = Vec::new();
                for (c, mp) in ctls {
                    let dir = mp.join(parent).join(id);
                    mkdir(&dir)?;
                    dirs.push((c, dir));
                }
                WorldCgroup { dirs, v2: false }
            }
        };
        if let Err(e) = cg.apply(limits, &mut warnings) {
            let _ = cg.remove();
            return Err(e);
        }
        Ok((cg, warnings))
    }

    /// Renames cgroup `from` (under `parent`) to `to` and applies
    /// `limits`: how a spare's cgroup, its world shell already inside,
    /// becomes a world's without moving a process. (A move takes the
    /// kernel's cgroup migration lock for writing, which waits for an RCU
    /// grace period when no move happened recently: ~10 ms here.) Only
    /// cgroup v1 renames cgroups; on v2, or when any step fails, nothing
    /// is left renamed and the caller makes a new cgroup instead.
    pub fn rename_into(
        parent: &str,
        from: &str,
        to: &str,
        limits: &Limits,
    ) -> Result<(WorldCgroup, Vec<String>), CgroupError> {
        let old = WorldCgroup::open(parent, from);
        if old.v2 {
            return Err(CgroupError::Io(
                old.dirs[0].1.clone(),
                io::Error::new(io::ErrorKind::Unsupported, "cgroup v2 cannot rename"),
            ));
        }
        let new = WorldCgroup::open(parent, to);
        let undo = |n: usize| {
            for ((_, a), (_, b)) in old.dirs.iter().zip(&new.dirs).take(n) {
                let _ = fs::rename(b, a);
            }
        };
        for (i, ((_, a), (_, b))) in old.dirs.iter().zip(&new.dirs).enumerate() {
            if let Err(e) = fs::rename(a, b) {
                undo(i);
                return Err(CgroupError::Io(a.clone(), e));
            }
        }
        let mut warnings = Vec::new();
        if let Err(e) = new.apply(limits, &mut warnings) {
            undo(new.dirs.len());
            return Err(e);
        }
        new.set_idle_to(false);
        Ok((new, warnings))
    }

    /// Whether host process `pid` is in this cgroup in every hierarchy.
    pub fn holds(&self, pid: i32) -> bool {
        let p = pid.to_string();
        self.procs_files()
            .iter()
            .all(|f| fs::read_to_string(f).is_ok_and(|s| s.lines().any(|l| l.trim() == p)))
    }

    /// Reopens the cgroup of an existing world.
    pub fn open(parent: &str, id: &str) -> WorldCgroup {
        match detect() {
            Mode::V2(root) => WorldCgroup {
                dirs: vec![("unified", root.join(parent).join(id))],
                v2: true,
            },
            Mode::V1(ctls) => WorldCgroup {
                dirs: ctls
                    .into_iter()
                    .map(|(c, mp)| (c, mp.join(parent).join(id)))
                    .collect(),
                v2: false,
            },
        }
    }

    fn dir(&self, ctl: &str) -> Option<&Path> {
        if self.v2 {
            let d = &self.dirs[0].1;
            let avail = fs::read_to_string(d.join("cgroup.controllers")).unwrap_or_default();
            return avail
                .split_whitespace()
                .any(|a| a == ctl)
                .then_some(d.as_path());
        }
        self.dirs
            .iter()
            .find(|(c, _)| *c == ctl)
            .map(|(_, d)| d.as_path())
    }

    fn apply(&self, l: &Limits, warn: &mut Vec<String>) -> Result<(), CgroupError> {
        let mem = l.mem_size_mib << 20;
        match (self.dir("memory"), self.v2) {
            (Some(d), true) => {
                write(&d.join("memory.max"), &mem.to_string())?;
                let _ = write(&d.join("memory.swap.max"), "0");
            }
            (Some(d), false) => {
                write(&d.join("memory.limit_in_bytes"), &mem.to_string())?;
                let sw = d.join("memory.memsw.limit_in_bytes");
                if sw.exists() {
                    let _ = write(&sw, &mem.to_string());
                }
            }
            (None, _) => warn.push("memory limit not enforced: no memory cgroup controller".into()),
        }
        match self.dir("pids") {
            Some(d) => write(&d.join("pids.max"), &l.pids_max.to_string())?,
            None => warn.push("pids limit not enforced: no pids cgroup controller".into()),
        }
        let quota = u64::from(l.vcpu_count) * 100_000;
        match (self.dir("cpu"), self.v2) {
            (Some(d), true) => write(&d.join("cpu.max"), &format!("{quota} 100000"))?,
            (Some(d), false) => {
                write(&d.join("cpu.cfs_period_us"), "100000")?;
                write(&d.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
            (None, _) => warn.push("cpu quota not enforced: no cpu cgroup controller".into()),
        }
        Ok(())
    }

    /// Files a process writes its pid into to join every world cgroup.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|(_, d)| d.join("cgroup.procs"))
            .collect()
    }

    /// Pids currently in the world (any controller's view; all agree).
    pub fn pids(&self) -> Vec<i32> {
        let Some((_, d)) = self.dirs.first() else {
            return vec![];
        };
        fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Whether the cgroup is frozen or freezing (`pause`); false where
    /// there is no freezer.
    pub fn is_frozen(&self) -> bool {
        if self.v2 {
            let Some((_, d)) = self.dirs.first() else {
                return false;
            };
            return fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1");
        }
        self.dir("freezer").is_some_and(|d| {
            fs::read_to_string(d.join("freezer.state"))
                .is_ok_and(|s| matches!(s.trim(), "FROZEN" | "FREEZING"))
        })
    }

    /// Memory in use, bytes.
    pub fn memory_bytes(&self) -> Option<u64> {
        let d = self.dir("memory")?;
        let f = if self.v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        };
        fs::read_to_string(d.join(f)).ok()?.trim().parse().ok()
    }

    /// Tasks in use.
    pub fn pids_current(&self) -> Option<u64> {
        let d = self.dir("pids")?;
        fs::read_to_string(d.join("pids.current"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// SIGKILLs every process and waits up to `wait` for them to go.
    pub fn kill_all(&self, wait: Duration) -> Result<(), CgroupError> {
        let deadline = Instant::now() + wait;
        if self.v2 {
            let _ = fs::write(self.dirs[0].1.join("cgroup.kill"), "1");
        }
        // Frozen tasks only die once thawed.
        if let Some(d) = self.dir("freezer") {
            let _ = fs::write(d.join("freezer.state"), "THAWED");
        }
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                return Ok(());
            }
            for p in pids {
                // SAFETY: kill with a pid read from the cgroup; a stale pid
                // that was reused would not be in this cgroup any more.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            if Instant::now() > deadline {
                return Err(CgroupError::Busy(self.dirs[0].1.clone()));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Removes the (empty) cgroup directories; missing ones are fine.
    pub fn remove(&self) -> Result<(), CgroupError> {
        for (_, d) in &self.dirs {
            let mut tries = 0;
            loop {
                match fs::remove_dir(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 500 => {
                        tries += 1;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(e) => return Err(CgroupError::Io(d.clone(), e)),
                }
            }
        }
        Ok(())
    }

    /// Whether the cgroup directories exist.
    pub fn exists(&self) -> bool {
        self.dirs.iter().any(|(_, d)| d.exists())
    }

    /// Creates cgroups without limits (lineage managers and snapshot
    /// templates live in these), or reopens them if they exist.
    pub fn create_plain(parent: &str, id: &str) -> Result<WorldCgroup, CgroupError> {
        let cg = WorldCgroup::open(parent, id);
        if cg.v2 {
            if let Some(top) = cg.dirs[0].1.parent() {
                mkdir(top)?;
            }
        }
        for (_, d) in &cg.dirs {
            mkdir(d)?;
        }
        Ok(cg)
    }

    /// Gives the cgroup the `SCHED_IDLE` class (`cpu.idle = 1`, Linux >=
    /// 5.15): its processes run only when no other task wants the CPU.
    /// Returns whether the kernel took it.
    pub fn set_idle(&self) -> bool {
        self.set_idle_to(true)
    }

    /// Sets (`true`) or clears `cpu.idle`; see [`Self::set_idle`].
    pub fn set_idle_to(&self, idle: bool) -> bool {
        let v = if idle { "1" } else { "0" };
        self.dir("cpu")
            .is_some_and(|d| fs::write(d.join("cpu.idle"), v).is_ok())
    }

    /// Opens every `cgroup.procs` file for writing. A process that was
    /// handed these fds joins the cgroup by writing `0` to each, even
    /// without permission on the files themselves (the opener's
    /// credentials count).
    pub fn open_procs(&self) -> Result<Vec<std::os::fd::OwnedFd>, CgroupError> {
        self.procs_files()
            .into_iter()
            .map(|p| {
                fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .map(Into::into)
                    .map_err(|e| CgroupError::Io(p, e))
            })
            .collect()
    }

    /// Moves process `pid` (a host pid) into this cgroup, in every
    /// hierarchy, as the caller (root). This is how world code changes
    /// cgroup: it is never handed a `cgroup.procs` file, through which it
    /// could move any process of its user instead of itself.
    pub fn adopt(&self, pid: i32) -> Result<(), CgroupError> {
        let v = pid.to_string();
        for f in self.procs_files() {
            write(&f, &v)?;
        }
        Ok(())
    }

    /// Asks the kernel to freeze (`true`) or thaw the cgroup, without
    /// waiting until every process has stopped. Returns `Ok(false)` when
    /// no freezer is available here.
    pub fn request_frozen(&self, on: bool) -> Result<bool, CgroupError> {
        if self.v2 {
            write(
                &self.dirs[0].1.join("cgroup.freeze"),
                if on { "1" } else { "0" },
            )?;
            return Ok(true);
        }
        let Some(d) = self.dir("freezer") else {
            return Ok(false);
        };
        write(
            &d.join("freezer.state"),
            if on { "FROZEN" } else { "THAWED" },
        )?;
        Ok(true)
    }

    /// Freezes every process (v1 freezer or v2 `cgroup.freeze`) and waits
    /// until the kernel reports the cgroup frozen. Returns `Ok(false)` when
    /// no freezer is available here.
    pub fn freeze(&self, wait: Duration) -> Result<bool, CgroupError> {
        self.set_frozen(true, wait)
    }

    /// Thaws a frozen cgroup.
    pub fn thaw(&self) -> Result<bool, CgroupError> {
        self.set_frozen(false, Duration::from_secs(5))
    }

    fn set_frozen(&self, on: bool, wait: Duration) -> Result<bool, CgroupError> {
        let deadline = Instant::now() + wait;
        if self.v2 {
            let d = &self.dirs[0].1;
            write(&d.join("cgroup.freeze"), if on { "1" } else { "0" })?;
            let ev = d.join("cgroup.events");
            let want = if on { "frozen 1" } else { "frozen 0" };
            loop {
                let s = fs::read_to_string(&ev).map_err(|e| CgroupError::Io(ev.clone(), e))?;
                if s.lines().any(|l| l == want) {
                    return Ok(true);
                }
                if Instant::now() > deadline {
                    return Err(CgroupError::Busy(d.clone()));
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        let Some(d) = self.dir("freezer") else {
            return Ok(false);
        };
        let f = d.join("freezer.state");
        let want = if on { "FROZEN" } else { "THAWED" };
        write(&f, want)?;
        loop {
            let s = fs::read_to_string(&f).map_err(|e| CgroupError::Io(f.clone(), e))?;
            if s.trim() == want {
                return Ok(true);
            }
            if Instant::now() > deadline {
                return Err(CgroupError::Busy(d.to_path_buf()));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// Keeps cgroup migrations cheap while it lives and for [`WARM_LINGER`]
/// after (see [`warm_migrations`]).
#[derive(Debug)]
pub(crate) struct MigrationWarmer {
    _guard: (),
}

/// How long the warmer keeps going after the last guard dropped: long
/// enough that back-to-back operations (a verse cycle, an agent's loop of
/// branches, the benchmark's rounds) find migrations warm, short enough
/// that an idle process costs nothing.
pub(crate) const WARM_LINGER: Duration = Duration::from_secs(2);

/// Shared by every guard of this process: one warmer thread at most.
#[derive(Debug)]
struct WarmState {
    active: usize,
    until: Option<Instant>,
    running: bool,
}

static WARM: std::sync::Mutex<WarmState> = std::sync::Mutex::new(WarmState {
    active: 0,
    until: None,
    running: false,
});

fn warm_state() -> std::sync::MutexGuard<'static, WarmState> {
    WARM.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for MigrationWarmer {
    fn drop(&mut self) {
        let mut st = warm_state();
        st.active -= 1;
        st.until = Some(Instant::now() + WARM_LINGER);
    }
}

/// The file through which the calling thread moves itself into the
/// cgroup it is already in (first hierarchy found): `tasks` on v1,
/// `cgroup.threads` on v2.
fn own_thread_file() -> Option<PathBuf> {
    let own = fs::read_to_string("/proc/thread-self/cgroup").ok()?;
    let (mount, path, file) = match detect() {
        Mode::V2(root) => (
            root,
            own.lines().find_map(|l| l.strip_prefix("0::"))?,
            "cgroup.threads",
        ),
        Mode::V1(ctls) => {
            let (c, mp) = ctls.into_iter().next()?;
            let path = own.lines().find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, ctl, path) = (f.next()?, f.next()?, f.next()?);
                ctl.split(',').any(|x| x == c).then_some(path)
            })?;
            (mp, path, "tasks")
        }
    };
    Some(mount.join(path.trim_start_matches('/')).join(file))
}

/// Removes cgroups under `parent` that no world, snapshot or lineage owns
/// any more: directories named like one of ours (`w-*`, `snap.*`,
/// `lineage.*`, which includes a lineage's `lineage.<id>.pool`) that
/// `known` does not claim, that hold no process and no
/// child cgroup, and that are older than `min_age` (a create in progress
/// makes its cgroup a moment before its init joins it). A crash or a
/// `kill -9` between making a cgroup and recording its owner leaves such
/// directories, and so does a store deleted while worlds were running.
/// Returns the names removed (one entry per name, however many v1
/// controllers held it).
pub fn sweep_orphans(parent: &str, known: &dyn Fn(&str) -> bool, min_age: Duration) -> Vec<String> {
    let tops: Vec<PathBuf> = match detect() {
        Mode::V2(root) => vec![root.join(parent)],
        Mode::V1(ctls) => ctls.into_iter().map(|(_, mp)| mp.join(parent)).collect(),
    };
    let mut removed: Vec<String> = Vec::new();
    for top in tops {
        for (n, e, old) in unknown_of_ours(&top, known, min_age) {
            let empty = fs::read_to_string(e.path().join("cgroup.procs"))
                .is_ok_and(|p| p.trim().is_empty());
            // rmdir itself refuses a cgroup with processes or children.
            if old && empty && fs::remove_dir(e.path()).is_ok() && !removed.contains(&n) {
                removed.push(n);
            }
        }
    }
    removed
}

/// The cgroups directly under `top` that are ours by name (`w-*`,
/// `snap.*`, `lineage.*`) and that `known` does not name, each with
/// whether it is at least `min_age` old.
fn unknown_of_ours(
    top: &Path,
    known: &dyn Fn(&str) -> bool,
    min_age: Duration,
) -> Vec<(String, fs::DirEntry, bool)> {
    let ours = |n: &str| n.starts_with("w-") || n.starts_with("snap.") || n.starts_with("lineage.");
    fs::read_dir(top)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            if !ours(&n) || known(&n) {
                return None;
            }
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age);
            Some((n, e, old))
        })
        .collect()
}

/// Our cgroups under `parent` (`w-*`, `snap.*`, `lineage.*`) that
/// `known` does not name, are at least `min_age` old and hold processes
/// for which `ours` is true: every process in them is SIGKILLed and the
/// cgroup removed. For what a crash left running with no record (a
/// lineage manager launched just before its creator was killed); `ours`
/// must prove a process belongs to this store (several stores may share
/// one cgroup parent). Returns the names removed.
pub fn kill_orphans(
    parent: &str,
    known: &dyn Fn(&str) -> bool,
    min_age: Duration,
    ours: &dyn Fn(i32) -> bool,
) -> Vec<String> {
    let top = match detect() {
        Mode::V2(root) => root.join(parent),
        Mode::V1(ctls) => match ctls.first() {
            Some((_, mp)) => mp.join(parent),
            None => return Vec::new(),
        },
    };
    let mut killed = Vec::new();
    for (n, _, old) in unknown_of_ours(&top, known, min_age) {
        if !old {
            continue;
        }
        let cg = WorldCgroup::open(parent, &n);
        let pids = cg.pids();
        if pids.is_empty() || !pids.iter().any(|p| ours(*p)) {
            continue;
        }
        if cg.kill_all(Duration::from_secs(2)).is_ok() {
            let _ = cg.remove();
            killed.push(n);
        }
    }
    killed
}

/// Makes the cgroup migrations of the next moments cheap. Every write to
/// `cgroup.procs` takes the kernel's global `cgroup_threadgroup_rwsem`
/// for writing; when no writer was active for about one RCU grace period
/// that first waits a full grace period (~5-10 ms measured here), and a
/// writer within a grace period of the last one does not. A branch moves
/// one init and one session per child into their cgroups, the first of
/// them right after the first child's root exists: a helper thread moves
/// itself (only itself) into the cgroup it is already in, a no-op
/// migration that takes the same lock, now and every 3 ms until
/// [`WARM_LINGER`] after the last guard dropped, so the grace period passes
/// while the roots are made, and the next operation of this process (a
/// daemon's, a benchmark's, a verse cycle's) finds migrations warm.
/// Best effort: the helper stops at the first failed write.
pub(crate) fn warm_migrations() -> Option<MigrationWarmer> {
    let mut st = warm_state();
    if !st.running {
        std::thread::Builder::new()
            .name("cgroup-warm".into())
            .spawn(warm_loop)
            .ok()?;
        st.running = true;
    }
    st.active += 1;
    Some(MigrationWarmer { _guard: () })
}

/// The warmer thread: a no-op migration of itself every 3 ms while a guard
/// lives or lingers.
fn warm_loop() {
    use std::io::Write;
    let f = own_thread_file().and_then(|p| fs::OpenOptions::new().write(true).open(p).ok());
    // SAFETY: gettid has no arguments and cannot fail.
    let tid = unsafe { libc::gettid() }.to_string();
    if let Some(mut f) = f {
        loop {
            {
                // Deciding to stop and saying so under one lock: a guard
                // taken meanwhile either sees this thread running (and it
                // keeps going) or starts a new one.
                let mut st = warm_state();
                if st.active == 0 && st.until.is_none_or(|u| Instant::now() >= u) {
                    st.running = false;
                    return;
                }
            }
            if f.write_all(tid.as_bytes()).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(3));
        }
    }
    warm_state().running = false;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The warmer outlives its guard by [`WARM_LINGER`], then stops on its
    /// own; a later guard starts it again.
    #[test]
    fn the_migration_warmer_lingers_then_stops() {
        // SAFETY: geteuid has no side effects.
        if unsafe { libc::geteuid() } != 0 || own_thread_file().is_none() {
            return; // moving a thread between cgroups needs root
        }
        let g = warm_migrations().expect("warmer starts");
        assert!(warm_state().running);
        drop(g);
        std::thread::sleep(Duration::from_millis(200));
        assert!(warm_state().running, "still warm right after the guard");
        let t = Instant::now();
        while warm_state().running && t.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!warm_state().running, "stopped after the linger");
        let g = warm_migrations().expect("warmer starts again");
        assert!(warm_state().running);
        drop(g);
    }
}
