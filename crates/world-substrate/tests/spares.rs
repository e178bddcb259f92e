//! Spare worlds (`linux/spare.rs`): `create` takes a lineage made ahead of
//! time, and the world it gets is the same as a cold one: its own id,
//! limits and files, and nothing of another world. Needs root.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{is_root, out, Env};
use world_substrate::{CreateOptions, Limits, Substrate, WorldId};

fn env(spares: usize) -> Env {
    Env::new_with(|c| c.spares = spares)
}

/// Waits until `n` spares of the host image are ready.
fn wait_spares(e: &Env, n: usize) {
    let t0 = Instant::now();
    while e.sub.spares_ready("host") < n {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "only {} of {n} spares ready after 60 s",
            e.sub.spares_ready("host")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lineage ids of the ready spares.
fn spare_ids(e: &Env) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(e.sub.config().run_dir.join("spares/host"))
        .map(|d| {
            d.flatten()
                .map(|x| x.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.contains('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The lineage a world's record names.
fn lineage_of(e: &Env, id: &WorldId) -> String {
    let p = e
        .sub
        .config()
        .state_dir
        .join(format!("meta/worlds/{id}.json"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    v["lineage"].as_str().unwrap().to_string()
}

/// The cgroup v1 memory directory of `name`, when the host has one.
fn memory_cgroup(e: &Env, name: &str) -> Option<PathBuf> {
    let d = PathBuf::from("/sys/fs/cgroup/memory")
        .join(&e.sub.config().cgroup_name)
        .join(name);
    d.exists().then_some(d)
}

fn procs(dir: &std::path::Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// A world made with `limited(64)` cannot allocate 200 MiB: the OOM
/// killer ends the program (exit 137).
fn assert_held_to_64_mib(e: &Env, w: &WorldId) {
    let o = e.sh(
        w,
        "python3 -c 'x = bytearray(200 << 20); print(len(x))' >/dev/null 2>&1; echo $?",
    );
    assert_eq!(out(&o).trim(), "137", "a 64 MiB world allocated 200 MiB");
}

fn limited(mib: u64) -> CreateOptions {
    CreateOptions {
        limits: Limits {
            mem_size_mib: mib,
            ..Limits::default()
        },
        ..CreateOptions::default()
    }
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root")]
fn create_takes_a_ready_spare_and_the_world_is_its_own() {
    assert!(is_root());
    let e = env(1);
    // A cold create; it leaves a spare behind.
    let first = e.create();
    let o = e.sh(
        &first,
        "echo secret > /work/mine; sleep 300 >/dev/null 2>&1 &",
    );
    assert_eq!(o.status.exit_code, 0, "{o:?}");
    wait_spares(&e, 1);
    let spare = spare_ids(&e).remove(0);
    let w = e.create_with(limited(64));
    assert_eq!(
        lineage_of(&e, &w),
        spare,
        "the world did not come from the spare"
    );
    assert_ne!(lineage_of(&e, &first), spare);
    // Its own name, environment and root; nothing of the other world.
    let o = e.sh(
        &w,
        "hostname; echo $WORLD_ID; ls /work; ps -e -o comm= | grep -c sleep",
    );
    let got: Vec<String> = out(&o).lines().map(str::to_string).collect();
    assert_eq!(got[0], w.as_str());
    assert_eq!(got[1], w.as_str());
    assert_eq!(got.get(2).map(String::as_str), Some("0"), "{got:?}");
    // Its limits hold.
    assert_held_to_64_mib(&e, &w);
    if let Some(d) = memory_cgroup(&e, w.as_str()) {
        let info = e.sub.inspect(&w).unwrap();
        assert!(procs(&d).contains(&info.supervisor_pid));
        let cpu = PathBuf::from("/sys/fs/cgroup/cpu")
            .join(&e.sub.config().cgroup_name)
            .join(w.as_str());
        assert_eq!(
            std::fs::read_to_string(cpu.join("cpu.idle"))
                .unwrap()
                .trim(),
            "0",
            "a world from a spare kept the idle CPU class"
        );
        assert!(memory_cgroup(&e, &format!("spare.{spare}")).is_none());
    }
    // Taken means gone: the next spare is another lineage.
    wait_spares(&e, 1);
    assert_ne!(spare_ids(&e), vec![spare]);
}

/// A spare whose shell died (the manager trims idle shells; anything may
/// kill one) still yields a limited world: the init its manager clones
/// instead is moved into the world's cgroup before the world is handed
/// out.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root")]
fn a_spare_without_its_shell_still_gives_a_limited_world() {
    assert!(is_root());
    let e = env(1);
    let first = e.create();
    wait_spares(&e, 1);
    let spare = spare_ids(&e).remove(0);
    let Some(d) = memory_cgroup(&e, &format!("spare.{spare}")) else {
        eprintln!("not checked: no cgroup v1 memory hierarchy here");
        return;
    };
    let shells = procs(&d);
    assert!(!shells.is_empty(), "the spare's shell is not in its cgroup");
    for p in shells {
        // SAFETY: kill of a test-owned process.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    std::thread::sleep(Duration::from_millis(100));
    let w = e.create_with(limited(64));
    assert_eq!(lineage_of(&e, &w), spare);
    let info = e.sub.inspect(&w).unwrap();
    let wd = memory_cgroup(&e, w.as_str()).expect("world cgroup");
    assert!(
        procs(&wd).contains(&info.supervisor_pid),
        "the world's init is outside its cgroup"
    );
    assert_held_to_64_mib(&e, &w);
    e.sub.destroy(&first).unwrap();
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root")]
fn concurrent_creates_never_share_a_spare() {
    assert!(is_root());
    let e = env(3);
    let first = e.create();
    wait_spares(&e, 3);
    let ids: Vec<WorldId> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6).map(|_| s.spawn(|| e.create())).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut lineages: Vec<String> = ids.iter().map(|w| lineage_of(&e, w)).collect();
    lineages.push(lineage_of(&e, &first));
    let n = lineages.len();
    lineages.sort();
    lineages.dedup();
    assert_eq!(lineages.len(), n, "two worlds share a lineage");
    for w in &ids {
        assert_eq!(out(&e.sh(w, "hostname")).trim(), w.as_str());
    }
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root")]
fn repair_stops_every_spare_and_its_processes() {
    assert!(is_root());
    let e = env(2);
    let w = e.create();
    wait_spares(&e, 2);
    e.sub.destroy(&w).unwrap();
    let rep = e.sub.repair().unwrap();
    assert_eq!(rep.stopped_spares, 2);
    assert_eq!(e.sub.spares_ready("host"), 0);
    let run = e.sub.config().run_dir.display().to_string();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| {
            p.file_name().to_string_lossy().parse::<u32>().is_ok()
                && std::fs::read(p.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&run))
        })
        .map(|p| p.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "processes of spares left: {left:?}");
    assert!(!e
        .sub
        .config()
        .state_dir
        .join("fs/spares")
        .read_dir()
        .unwrap()
        .any(|_| true));
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root")]
fn no_spares_when_turned_off() {
    assert!(is_root());
    let e = env(0);
    let w = e.create();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(e.sub.spares_ready("host"), 0);
    e.sub.destroy(&w).unwrap();
}

/// What a reboot leaves (records and roots, no markers, no processes) is
/// cleaned up by the next refill.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root")]
fn a_refill_discards_spares_whose_manager_is_gone() {
    assert!(is_root());
    let e = env(1);
    let w = e.create();
    wait_spares(&e, 1);
    let dead = spare_ids(&e).remove(0);
    let rec = e
        .sub
        .config()
        .state_dir
        .join(format!("meta/lineages/{dead}.json"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&rec).unwrap()).unwrap();
    let pid = v["pid"].as_i64().unwrap() as i32;
    // SAFETY: kill of the test's own lineage manager.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    std::fs::remove_file(e.sub.config().run_dir.join("spares/host").join(&dead)).unwrap();
    let root = e.sub.config().state_dir.join("fs/spares").join(&dead);
    assert!(root.exists());
    let w2 = e.create();
    let t0 = Instant::now();
    while root.exists() && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!root.exists(), "the dead spare's root is still there");
    assert!(
        !rec.exists(),
        "the dead spare's lineage record is still there"
    );
    wait_spares(&e, 1);
    e.sub.destroy(&w).unwrap();
    e.sub.destroy(&w2).unwrap();
}
