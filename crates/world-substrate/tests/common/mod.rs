//! Shared test harness: a substrate on temp dirs (own btrfs loop image),
//! root check, and a guard that destroys every world and unmounts the store.

#![allow(dead_code)]

use std::path::PathBuf;

use world_substrate::{
    CreateOptions, ExecOutput, ExecRequest, LinuxSubstrate, Substrate, SubstrateConfig, WorldId,
};

/// Whether we can run root-only tests; prints why not.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no side effects.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipping: world-substrate integration tests need root");
    }
    root
}

/// A substrate on private temp dirs, torn down on drop.
pub struct Env {
    pub sub: LinuxSubstrate,
    _dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env::new_with(|_| {})
    }

    /// [`Env::new`] with the configuration changed by `f`.
    pub fn new_with(f: impl FnOnce(&mut SubstrateConfig)) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("world-substrate-test")
            .tempdir_in("/var/tmp")
            .unwrap();
        let state = dir.path().join("state");
        let run = dir.path().join("run");
        let exe = PathBuf::from(env!("CARGO_BIN_EXE_world-supervisor"));
        let mut cfg = SubstrateConfig::with_dirs(
            state,
            run,
            vec![exe.into(), world_substrate::SUPERVISOR_ARG.into()],
        );
        cfg.storage_size_mib = 4096;
        cfg.cgroup_name = format!("world-runtime-test-{}", std::process::id());
        f(&mut cfg);
        Env {
            sub: LinuxSubstrate::new(cfg),
            _dir: dir,
        }
    }

    pub fn create(&self) -> WorldId {
        self.create_with(CreateOptions::default())
    }

    pub fn create_with(&self, o: CreateOptions) -> WorldId {
        let c = self.sub.create(&o).expect("create world");
        c.id
    }

    pub fn sh(&self, id: &WorldId, script: &str) -> ExecOutput {
        self.sub
            .exec_output(id, &ExecRequest::new(&["/bin/sh", "-c", script]), b"")
            .expect("exec")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(ss) = self.sub.snapshots() {
            for s in ss {
                let _ = self.sub.delete_snapshot(&s.id);
            }
        }
        if let Ok(ws) = self.sub.list() {
            for w in ws {
                let _ = self.sub.destroy(&w.id);
            }
        }
        let _ = self.sub.repair();
        if let Err(e) = self.sub.unmount_storage() {
            eprintln!("test cleanup: {e}");
        }
        let cg = &self.sub.config().cgroup_name;
        for c in ["memory", "pids", "cpu", "freezer"] {
            let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{c}/{cg}"));
        }
        let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{cg}"));
    }
}

pub fn out(o: &ExecOutput) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A source tree a host user keeps changing: `src/` holds 40 padding
/// files and `src/f`, which a thread flips between a plain file and a
/// symlink to `secret` (a root-only file holding `TOPSECRET`) until the
/// value is dropped. Tests copy `src` as root and check that no copy of
/// `f` is a plain file holding the secret.
pub struct Flipper {
    pub dir: tempfile::TempDir,
    pub src: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flipper {
    pub fn start() -> Flipper {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "TOPSECRET").unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        for i in 0..40 {
            std::fs::write(src.join(format!("pad{i}")), "x").unwrap();
        }
        let f = src.join("f");
        std::fs::write(&f, "harmless").unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (s, d) = (stop.clone(), dir.path().to_path_buf());
        let thread = std::thread::spawn(move || {
            let (tl, tf) = (d.join("tmp-link"), d.join("tmp-file"));
            while !s.load(Ordering::Relaxed) {
                let _ = std::fs::remove_file(&tl);
                let _ = std::os::unix::fs::symlink(&secret, &tl);
                let _ = std::fs::rename(&tl, &f);
                let _ = std::fs::write(&tf, "harmless");
                let _ = std::fs::rename(&tf, &f);
            }
        });
        Flipper {
            dir,
            src,
            stop,
            thread: Some(thread),
        }
    }

    /// Whether `copy` (a copy of `src/f`) is a plain file with the secret.
    pub fn leaked(copy: &std::path::Path) -> bool {
        let plain = std::fs::symlink_metadata(copy).is_ok_and(|m| m.is_file());
        plain
            && std::fs::read_to_string(copy)
                .unwrap_or_default()
                .contains("TOPSECRET")
    }
}

impl Drop for Flipper {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
