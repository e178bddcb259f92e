//! Detached background jobs: work a call leaves to be done after it has
//! returned, at idle CPU priority.
//!
//! Two kinds today, both refills: spare worlds of an image
//! ([`super::spare`]) and ready roots of a snapshot
//! ([`crate::snapshot`]'s `ready` module). A job is the supervisor program
//! started with [`JOB_ARG`] and one JSON argument (everything it needs to
//! rebuild the substrate, and its [`Work`]). Its first process forks and
//! exits at once, so the caller reaps it at once and the job goes on as
//! an orphan in its own session. It then waits [`REFILL_DELAY`], joins the
//! `spares` cgroup (`cpu.idle = 1`: it only uses CPU that nothing else
//! wants) and does its work. It never mounts the store: a job that finds
//! the store unmounted (unmounted after it was started) stops. Each kind
//! takes its own locks, so that what stops or deletes the things it makes
//! waits for it.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::LinuxSubstrate;
use crate::cgroup::WorldCgroup;
use crate::config::SubstrateConfig;
use crate::storage;

/// The argument (after the supervisor marker) that starts a job.
pub(crate) const JOB_ARG: &str = "--job";

/// The cgroup jobs run in (`cpu.idle = 1`).
pub(crate) const JOBS_CGROUP: &str = "spares";

/// How long a job waits before it does anything. Its first steps move
/// processes between cgroups, and the kernel holds its global cgroup
/// lock through such a move, for an RCU grace period when no move
/// happened recently (~10 ms here): every cgroup operation on the host
/// waits meanwhile, the caller's next steps included (a destroy right
/// after a create measured p50 6.8 ms instead of 1.8 ms). A caller's
/// next steps usually follow at once; the job comes after.
pub(crate) const REFILL_DELAY: Duration = Duration::from_millis(50);

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Work {
    /// Make spare worlds of an image until enough are ready.
    Spares { image: String },
    /// Make ready roots of a snapshot until as many as it wants are there.
    Roots { snapshot: String },
}

/// What a job needs to rebuild the substrate, and its work.
#[derive(Debug, Serialize, Deserialize)]
struct Job {
    state_dir: PathBuf,
    run_dir: PathBuf,
    supervisor_cmd: Vec<std::ffi::OsString>,
    storage_size_mib: u64,
    uid_base: u32,
    cgroup_name: String,
    spares: usize,
    work: Work,
}

/// Tries an exclusive `flock` without waiting; `None` when another holds it.
pub(crate) fn try_lock(path: &Path) -> Option<fs::File> {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ok()?;
    // SAFETY: flock on a valid fd.
    (unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0).then_some(f)
}

/// An exclusive `flock` on the existing file `path` (never created: a job
/// must not write into a directory that is being deleted), waiting for it
/// with `wait`; `None` when the file is gone or, without `wait`, another
/// holds the lock.
pub(crate) fn lock_existing(path: &Path, wait: bool) -> Option<fs::File> {
    let f = fs::OpenOptions::new().write(true).open(path).ok()?;
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: flock on a valid fd.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Some(f);
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return None;
        }
    }
}

impl LinuxSubstrate {
    /// Starts a job doing `work`, its stderr appended to `log`. Never
    /// waits for it; never fails the caller (a job that cannot start is
    /// work left undone, which the next call asks for again).
    pub(crate) fn start_job(&self, work: Work, log: &Path) {
        let job = Job {
            state_dir: self.cfg.state_dir.clone(),
            run_dir: self.cfg.run_dir.clone(),
            supervisor_cmd: self.cfg.supervisor_cmd.clone(),
            storage_size_mib: self.cfg.storage_size_mib,
            uid_base: self.cfg.uid_base,
            cgroup_name: self.cfg.cgroup_name.clone(),
            spares: self.cfg.spares,
            work,
        };
        let Some((prog, args)) = self.cfg.supervisor_cmd.split_first() else {
            return;
        };
        let Ok(json) = serde_json::to_string(&job) else {
            return;
        };
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map(std::process::Stdio::from)
            .unwrap_or_else(|_| std::process::Stdio::null());
        let child = std::process::Command::new(prog)
            .args(args)
            .arg(JOB_ARG)
            .arg(json)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn();
        // Its first process exits at once; reap it on a thread, so a
        // long-lived caller keeps no zombie (a one-shot CLI that exits
        // first leaves it to init).
        if let Ok(mut c) = child {
            let _ = std::thread::Builder::new()
                .name("job-reaper".into())
                .spawn(move || c.wait());
        }
    }

    /// Whether the store is mounted (a job stops when it is not).
    pub(crate) fn store_mounted(&self) -> bool {
        storage::is_mounted(&self.layout.mount_point())
    }

    /// Moves the calling process into the jobs' idle cgroup; best effort.
    pub(crate) fn join_idle_cgroup(&self) {
        if let Ok(cg) = WorldCgroup::create_plain(&self.cfg.cgroup_name, JOBS_CGROUP) {
            cg.set_idle();
            let me = std::process::id().to_string();
            for f in cg.procs_files() {
                let _ = fs::write(f, &me);
            }
        }
    }
}

/// Body of the job process. Never returns.
pub(crate) fn job_main(args: &[std::ffi::OsString]) -> ! {
    let Some(job) = args
        .first()
        .and_then(|a| serde_json::from_slice::<Job>(a.as_encoded_bytes()).ok())
    else {
        eprintln!("job: usage: {JOB_ARG} <job-json>");
        crate::sys::exit_now(2)
    };
    // Detach: the caller reaps this process at once.
    match crate::sys::fork() {
        Ok(0) => {}
        Ok(_) => crate::sys::exit_now(0),
        Err(e) => {
            eprintln!("job: fork: {e}");
            crate::sys::exit_now(1)
        }
    }
    // SAFETY: setsid has no memory effects.
    unsafe { libc::setsid() };
    let mut cfg = SubstrateConfig::with_dirs(job.state_dir, job.run_dir, job.supervisor_cmd);
    cfg.storage_size_mib = job.storage_size_mib;
    cfg.uid_base = job.uid_base;
    cfg.cgroup_name = job.cgroup_name;
    cfg.spares = job.spares;
    let sub = LinuxSubstrate::new(cfg);
    let res = match &job.work {
        Work::Spares { image } => sub.spares_job(image),
        Work::Roots { snapshot } => sub.roots_job(snapshot),
    };
    match res {
        Ok(()) => crate::sys::exit_now(0),
        Err(e) => {
            eprintln!("job {:?}: {e}", job.work);
            crate::sys::exit_now(1)
        }
    }
}
