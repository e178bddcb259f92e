//! The run directory's own tmpfs (`run_fs.rs`): mounted with the store
//! when the run directory is on a disk filesystem and nothing alive uses
//! it, never over a live daemon's socket, and unmounted with the store.
//! Needs root, and a test directory that is not on a tmpfs.

mod common;

use std::path::Path;

use common::{is_root, Env};
use world_substrate::{run_fs, Substrate};

/// The filesystem type of the mount holding `p`, by `stat -f`.
fn fs_type(p: &Path) -> String {
    let o = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A store whose run directory is on a disk filesystem, and that
/// directory; `None` (reported as skipped) without root or when the test
/// directory is on a tmpfs already (then no tmpfs is mounted).
fn env_on_disk() -> Option<(Env, std::path::PathBuf)> {
    if !is_root() {
        return None;
    }
    let e = Env::new();
    let run = e.sub.config().run_dir.clone();
    if fs_type(run.parent().unwrap()) == "tmpfs" {
        eprintln!("skipping: the test directory is on a tmpfs, so no tmpfs is mounted");
        return None;
    }
    Some((e, run))
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn run_dir_gets_a_tmpfs_with_the_store_and_loses_it_at_unmount() {
    let Some((e, run)) = env_on_disk() else {
        return;
    };
    assert!(!run_fs::is_ours(&run));
    let w = e.create();
    assert!(run_fs::is_ours(&run), "no tmpfs on the run directory");
    assert_eq!(fs_type(&run), "tmpfs");
    assert!(run.join("worlds").join(w.as_str()).exists());
    e.sub.destroy(&w).unwrap();
    e.sub.unmount_storage().unwrap();
    assert!(!run_fs::is_ours(&run), "the tmpfs outlived the store");
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn a_live_daemon_socket_keeps_the_run_dir_as_it_is() {
    let Some((e, run)) = env_on_disk() else {
        return;
    };
    std::fs::create_dir_all(&run).unwrap();
    // A daemon that started first (its store unmounted since): hiding its
    // socket under a new tmpfs would cut every client off.
    let sock = run.join("api.sock");
    let _daemon = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let w = e.create();
    assert!(!run_fs::is_ours(&run), "a tmpfs hid the daemon's socket");
    assert!(std::os::unix::net::UnixStream::connect(&sock).is_ok());
    e.sub.destroy(&w).unwrap();
}
