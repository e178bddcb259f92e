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

/// The run directory's parent, when the test can say something: `None`
/// (reported as skipped) when it is on a tmpfs already.
fn disk_parent(e: &Env) -> Option<std::path::PathBuf> {
    let parent = e.sub.config().run_dir.parent().unwrap().to_path_buf();
    if fs_type(&parent) == "tmpfs" {
        eprintln!("skipping: the test directory is on a tmpfs, so no tmpfs is mounted");
        return None;
    }
    Some(parent)
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn run_dir_gets_a_tmpfs_with_the_store_and_loses_it_at_unmount() {
    if !is_root() {
        return;
    }
    let e = Env::new();
    if disk_parent(&e).is_none() {
        return;
    }
    let run = e.sub.config().run_dir.clone();
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
    if !is_root() {
        return;
    }
    let e = Env::new();
    if disk_parent(&e).is_none() {
        return;
    }
    let run = e.sub.config().run_dir.clone();
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
