//! The run directory on a tmpfs of its own.
//!
//! The run directory (`/run/world-runtime` by default) holds what lives
//! only as long as its processes: control and session sockets, pid files,
//! a world's run dir, spare markers, the daemon's socket. A branch of 100
//! children creates ~600 of these entries and removes them again on
//! destroy. On a usual host `/run` is a tmpfs and that costs nothing; on
//! hosts whose `/run` is on the disk (some VM images, ours included) each
//! create is an inode allocation of the disk filesystem (ext4 scans for
//! recently deleted inodes), which measured here as a third of a branch of
//! 100 (pooled: 217 ms on ext4, 154 ms on a tmpfs, same run).
//!
//! So when the store is mounted (the start of everything: no world and no
//! snapshot can be made without it) and the run directory is not on a
//! tmpfs and nothing alive uses it, a tmpfs named [`SOURCE`] is mounted
//! on it (`nosuid,nodev,noexec`, mode 0755, at most [`SIZE`]): the run
//! directory then also forgets everything at a reboot, as it does on
//! other hosts. "Nothing alive" means no lineage of the store has a live
//! manager (every world, template and spare belongs to one) and no daemon
//! answers on `api.sock`; what a previous boot left there is hidden under
//! the tmpfs, not deleted. A run directory in use is left as it is.
//! Unmounting the store unmounts this tmpfs too, unless something holds
//! it (a daemon's bound socket).

use std::fs;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::lineage::LineageRecord;
use crate::storage::Layout;
use crate::sys;

/// The mount source that names our tmpfs in `/proc/self/mountinfo`.
pub const SOURCE: &str = "world-run";

/// The tmpfs's size limit: entries are sockets, pid files and small
/// records (a world takes a few KiB).
const SIZE: &str = "64m";

/// Mounts the tmpfs on the run directory when it is needed and safe (see
/// the module docs). Returns whether it mounted one. The caller holds the
/// store's lock.
pub fn ensure(l: &Layout) -> io::Result<bool> {
    let run = &l.run;
    fs::create_dir_all(run)?;
    if sys::is_tmpfs(run)? || in_use(l) {
        return Ok(false);
    }
    sys::mount(
        Some(Path::new(SOURCE)),
        run,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Some(&format!("mode=0755,size={SIZE}")),
    )?;
    Ok(true)
}

/// Whether anything alive uses the run directory: a lineage's manager (a
/// world, a template or a spare) or a daemon.
fn in_use(l: &Layout) -> bool {
    UnixStream::connect(l.run.join("api.sock")).is_ok()
        || LineageRecord::all_ids(l)
            .iter()
            .any(|id| LineageRecord::load(l, id).is_some_and(|r| r.alive()))
}

/// Whether our tmpfs is mounted on `run` (in this mount namespace).
pub fn is_ours(run: &Path) -> bool {
    crate::storage::mounts_at(run)
        .iter()
        .any(|(t, src)| t == "tmpfs" && src == SOURCE)
}

/// Unmounts our tmpfs from `run`. A refill job that is finishing (its
/// log and lock files are open there until it exits) keeps it busy for a
/// moment: it is tried again for up to [`RELEASE_WAIT`]. Something that
/// holds it longer (a daemon's bound socket) keeps it mounted, to be used
/// again.
pub fn release(run: &Path) {
    let t0 = std::time::Instant::now();
    while is_ours(run) {
        match sys::umount2(run, 0) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && t0.elapsed() < RELEASE_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            _ => return,
        }
    }
}

/// How long [`release`] waits for a busy tmpfs.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
