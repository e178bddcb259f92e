//! Destroy leaves nothing: 100 create/exec/destroy cycles, then no mounts,
//! processes, cgroups, network namespaces, subvolumes, loop devices or files
//! remain (as root).

mod common;

use std::collections::BTreeSet;

use common::{is_root, Env};
use world_substrate::{Substrate, DEFAULT_UID_BASE as BASE};

fn mount_count() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

fn loop_devices() -> usize {
    std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("loop/backing_file").exists())
        .count()
}

fn net_namespaces() -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(l) = std::fs::read_link(e.path().join("ns/net")) {
            s.insert(l.to_string_lossy().into_owned());
        }
    }
    s
}

/// Processes with a uid in the worlds' range: (live, zombies). A destroyed
/// world's init is reparented to the host's PID 1, which reaps it on its
/// own schedule, so zombies may linger briefly.
fn world_processes() -> (Vec<String>, Vec<String>) {
    let (mut live, mut zombies) = (Vec::new(), Vec::new());
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(st) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let uid: u32 = st
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0);
        if (BASE..BASE + 65536).contains(&uid) {
            let z = st
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'));
            let pid = e.file_name().to_string_lossy().into_owned();
            if z {
                zombies.push(pid)
            } else {
                live.push(pid)
            }
        }
    }
    (live, zombies)
}

fn dir_entries(p: &std::path::Path) -> usize {
    std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0)
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn hundred_cycles_leave_nothing() {
    if !is_root() {
        return;
    }
    let loops0 = loop_devices();
    let mounts0 = mount_count();
    // Worlds' processes that were there before (another store's worlds or
    // spares on this machine) are not this test's.
    let before: Vec<String> = {
        let (live, zombies) = world_processes();
        live.into_iter().chain(zombies).collect()
    };
    let ours =
        |v: Vec<String>| -> Vec<String> { v.into_iter().filter(|p| !before.contains(p)).collect() };
    let env = Env::new();
    // Warm up: mounts the store (one mount) and builds the host image.
    let id = env.create();
    env.sub.destroy(&id).unwrap();
    let mounts1 = mount_count();
    // The store, and the run directory's tmpfs where it gets one.
    let mine = 1 + usize::from(world_substrate::run_fs::is_ours(&env.sub.config().run_dir));
    assert_eq!(mounts1, mounts0 + mine);
    let netns1 = net_namespaces();
    for i in 0..100 {
        let id = env.create();
        let o = env.sh(&id, &format!("echo {i}; sleep 100 & echo bg"));
        assert_eq!(common::out(&o), format!("{i}\nbg\n"));
        env.sub.destroy(&id).unwrap();
    }
    // Spares are kept on purpose, at most the configured number; stopped,
    // they leave nothing either.
    let spares = env.sub.spares_ready("host");
    assert!(spares <= env.sub.config().spares, "{spares} spares kept");
    env.sub.drop_spares(None);
    assert_eq!(mount_count(), mounts1, "mounts leaked");
    // Namespaces are freed asynchronously after their last process is
    // reaped; and only namespaces that appeared during the cycles count
    // (others on the machine may come and go meanwhile).
    let t = std::time::Instant::now();
    let leaked = loop {
        let leaked: Vec<_> = net_namespaces().difference(&netns1).cloned().collect();
        if leaked.is_empty() || t.elapsed().as_secs() >= 10 {
            break leaked;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(leaked.is_empty(), "network namespaces leaked: {leaked:?}");
    let live = ours(world_processes().0);
    assert!(live.is_empty(), "processes leaked: {live:?}");
    let t = std::time::Instant::now();
    while !ours(world_processes().1).is_empty() && t.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let z = ours(world_processes().1);
    if !z.is_empty() {
        eprintln!(
            "note: {} zombie world inits not yet reaped by host PID 1",
            z.len()
        );
    }
    let cg = &env.sub.config().cgroup_name;
    for c in ["memory", "pids", "cpu", "freezer"] {
        let p = std::path::PathBuf::from(format!("/sys/fs/cgroup/{c}/{cg}"));
        let kids = std::fs::read_dir(&p)
            .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
            .unwrap_or(0);
        assert_eq!(kids, 0, "cgroups leaked under {}", p.display());
    }
    let l = env.sub.layout();
    assert_eq!(
        dir_entries(&l.mount_point().join("worlds")),
        0,
        "subvolumes leaked"
    );
    assert_eq!(dir_entries(&l.run.join("worlds")), 0, "run files leaked");
    assert_eq!(
        dir_entries(&l.state.join("meta/worlds")),
        0,
        "records leaked"
    );
    drop(env);
    assert_eq!(mount_count(), mounts0, "store mount leaked");
    assert_eq!(loop_devices(), loops0, "loop device leaked");
}
