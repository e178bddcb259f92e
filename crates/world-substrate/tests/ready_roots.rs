//! Ready roots (`snapshot/ready.rs`): a snapshot that was branched keeps
//! branch roots made ahead, the next branch takes them, and a child from
//! a ready root is the same as one from a fresh root: the snapshot's
//! files, nothing another world wrote, its own subvolume. Needs root.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{is_root, Env};
use world_substrate::snapshot::BranchOptions;
use world_substrate::{btrfs, Substrate, WorldId};

/// Waits until `n` roots of `sid` are ready.
fn wait_ready(e: &Env, sid: &str, n: usize) {
    let t0 = Instant::now();
    while e.sub.ready_root_count(sid) < n {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "only {} of {n} ready roots after 60 s",
            e.sub.ready_root_count(sid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A store with a snapshot of a world whose `/work/f` holds "base";
/// `None` (skipped) without root.
fn based_snapshot() -> Option<(Env, world_substrate::snapshot::SnapshotInfo)> {
    if !is_root() {
        return None;
    }
    let e = Env::new();
    let w = e.create();
    e.sh(&w, "echo base > /work/f");
    let s = e.sub.snapshot(&w, None).unwrap();
    Some((e, s))
}

fn ready_dir(e: &Env, sid: &str) -> PathBuf {
    e.sub.config().state_dir.join("fs/ready").join(sid)
}

/// Subvolume ids of the ready roots of `sid`.
fn ready_ids(e: &Env, sid: &str) -> HashSet<u64> {
    std::fs::read_dir(ready_dir(e, sid))
        .unwrap()
        .flatten()
        .map(|d| btrfs::subvol_id(&d.path()).unwrap())
        .collect()
}

fn root_id(e: &Env, w: &WorldId) -> u64 {
    btrfs::subvol_id(&e.sub.config().state_dir.join("fs/worlds").join(w.as_str())).unwrap()
}

fn cat(e: &Env, w: &WorldId, path: &str) -> String {
    let o = e.sh(w, &format!("cat {path} 2>/dev/null || echo missing"));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn branches_take_ready_roots_and_nothing_passes_between_children() {
    let Some((e, s)) = based_snapshot() else {
        return;
    };
    assert_eq!(
        e.sub.ready_root_count(&s.id),
        0,
        "ready roots before any branch"
    );
    let first = e.sub.branch(&s.id, 3, &BranchOptions::default()).unwrap();
    // The branch asks for as many roots as it used.
    wait_ready(&e, &s.id, 3);
    // Children of the first branch write what the attacker hopes the next
    // branch will see, through every path a root could be shared by.
    for c in &first.children {
        e.sh(
            c,
            "echo tainted > /work/f; echo planted > /work/new; echo x > /etc/planted",
        );
        e.sub.destroy(c).unwrap();
    }
    let ready = ready_ids(&e, &s.id);
    assert_eq!(ready.len(), 3);
    let second = e.sub.branch(&s.id, 3, &BranchOptions::default()).unwrap();
    let mut seen = HashSet::new();
    for c in &second.children {
        let id = root_id(&e, c);
        assert!(ready.contains(&id), "child {c} did not get a ready root");
        assert!(seen.insert(id), "two children share root subvolume {id}");
        assert_eq!(cat(&e, c, "/work/f"), "base");
        assert_eq!(cat(&e, c, "/work/new"), "missing");
        assert_eq!(cat(&e, c, "/etc/planted"), "missing");
    }
    // Children from ready roots are apart from each other.
    let (a, b) = (&second.children[0], &second.children[1]);
    e.sh(a, "echo mine > /work/f");
    assert_eq!(cat(&e, b, "/work/f"), "base");
    // And the refill made new ones, not the ones just taken.
    wait_ready(&e, &s.id, 3);
    assert!(ready_ids(&e, &s.id).is_disjoint(&ready));
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn pool_size_and_deleting_the_snapshot_drop_ready_roots() {
    if !is_root() {
        return;
    }
    let e = Env::new();
    let w = e.create();
    e.sub.run_code(&w, "default", "x = 1", None).unwrap();
    let s = e.sub.snapshot(&w, None).unwrap();
    let st = e.sub.shell_pool(&s.id, Some(4)).unwrap();
    assert!(
        st.roots_ready.is_some(),
        "a snapshot's pool reports its roots"
    );
    let st = e
        .sub
        .wait_shell_pool(&s.id, 4, Duration::from_secs(60), |_| {})
        .unwrap();
    assert_eq!(st.roots_ready, Some(4));
    // Through a world, the pool is the lineage's: no roots.
    assert_eq!(
        e.sub.shell_pool(w.as_str(), None).unwrap().roots_ready,
        None
    );
    e.sub.shell_pool(&s.id, Some(0)).unwrap();
    assert_eq!(e.sub.ready_root_count(&s.id), 0);
    assert!(!ready_dir(&e, &s.id).exists());
    // A big refill is stopped by the deletion: nothing is made after it.
    e.sub.shell_pool(&s.id, Some(64)).unwrap();
    wait_ready(&e, &s.id, 1);
    e.sub.delete_snapshot(&s.id).unwrap();
    assert!(!ready_dir(&e, &s.id).exists());
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !ready_dir(&e, &s.id).exists(),
        "a refill job made roots for a deleted snapshot"
    );
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn concurrent_branches_share_ready_roots_without_clashing() {
    let Some((e, s)) = based_snapshot() else {
        return;
    };
    e.sub.shell_pool(&s.id, Some(4)).unwrap();
    wait_ready(&e, &s.id, 4);
    let kids: Vec<WorldId> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..2)
            .map(|_| sc.spawn(|| e.sub.branch(&s.id, 4, &BranchOptions::default())))
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().unwrap().unwrap().children)
            .collect()
    });
    assert_eq!(kids.len(), 8);
    let roots: HashSet<u64> = kids.iter().map(|c| root_id(&e, c)).collect();
    assert_eq!(roots.len(), 8, "two children got the same root");
    for c in &kids {
        assert_eq!(cat(&e, c, "/work/f"), "base");
    }
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn repair_deletes_ready_roots_of_snapshots_that_are_gone() {
    if !is_root() {
        return;
    }
    let e = Env::new();
    let w = e.create();
    let s = e.sub.snapshot(&w, None).unwrap();
    // What a crash between a snapshot's record and its roots leaves: roots
    // of a snapshot no record names.
    let fs = e.sub.config().state_dir.join("fs");
    let orphan = fs.join("ready/s-000000000000");
    std::fs::create_dir_all(&orphan).unwrap();
    btrfs::snapshot(
        &fs.join("snapshots").join(&s.id),
        &orphan.join("r-1"),
        false,
    )
    .unwrap();
    e.sub.shell_pool(&s.id, Some(2)).unwrap();
    wait_ready(&e, &s.id, 2);
    let rep = e.sub.repair().unwrap();
    assert!(
        rep.removed_subvolumes
            .contains(&"ready/s-000000000000".to_string()),
        "{rep:?}"
    );
    assert!(!orphan.exists());
    // The live snapshot's roots stay.
    assert_eq!(e.sub.ready_root_count(&s.id), 2);
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn snapshot_and_branch_in_one_call_makes_no_ready_roots() {
    if !is_root() {
        return;
    }
    let e = Env::new();
    let w = e.create();
    // What push_down does: its snapshot is kept, and usually collapsed soon.
    let opts = BranchOptions {
        keep_snapshot: true,
        ..BranchOptions::default()
    };
    let b = e.sub.branch_world(&w, 3, &opts).unwrap();
    let sid = b.snapshot.expect("the snapshot is kept");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(e.sub.ready_root_count(&sid), 0);
    // A second use of the snapshot asks for them.
    e.sub.branch(&sid, 2, &BranchOptions::default()).unwrap();
    wait_ready(&e, &sid, 2);
}
