//! `world bench peers`: the same work on every local sandbox that is
//! installed, interleaved in one run, beside ours: create a sandbox, run
//! `true`, tear it down (bwrap, unshare, crun and runc with and without a
//! user namespace, systemd-nspawn, podman, gVisor's runsc); exec of
//! `true` into a kept sandbox (ours, `crun exec`, `runc exec`, `podman
//! exec`); and a memory
//! snapshot of a live Python process holding 100 MB with three copies
//! (ours; CRIU through runc where CRIU works on the host: where it fails,
//! the row says how). Peers come from `scripts/peers.sh`, which installs
//! them from Debian's packages and builds the shared OCI bundles (an
//! empty root plus the host's /usr read-only). A table, never a test.
//!
//! Host quirks handled here: crun refuses a hybrid cgroup v1/v2 layout, so
//! its runs happen in a private mount namespace without the cgroup2 mount
//! (`unshare` + lazy unmount in the child, before crun starts, inside the
//! timed window); podman runs its containers with runc for the same
//! reason, and gets its rlimits pinned to the hard limits (root here lacks
//! CAP_SYS_RESOURCE).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::snapshot::BranchOptions;
use crate::types::{CreateOptions, ExecRequest};
use crate::{LinuxSubstrate, Substrate, SubstrateConfig};

/// One row of the table.
#[derive(Debug, Clone)]
pub struct PeerRow {
    /// What was measured.
    pub name: String,
    /// Samples.
    pub n: usize,
    /// Median, ms (NaN when it could not run).
    pub p50: f64,
    /// 90th percentile, ms.
    pub p90: f64,
    /// p50 of this row over p50 of our row of the same work.
    pub ratio: Option<f64>,
    /// Why a peer has no numbers, or what to know about them.
    pub note: Option<String>,
}

/// A peer's create + `true` + teardown: a command line, `{id}` replaced
/// by a fresh container name per sample.
#[derive(Debug, Clone)]
struct Peer {
    name: &'static str,
    argv: Vec<String>,
    /// Run in a private mount namespace without the cgroup2 mount (crun
    /// on hybrid hosts).
    hide_cgroup2: bool,
}

fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p)
            .any(|d| std::fs::metadata(d.join(prog)).is_ok_and(|m| m.is_file()))
    })
}

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The peers of the create/run/teardown rows, and a note for each one
/// that is missing.
fn peers(dir: &Path) -> (Vec<Peer>, Vec<PeerRow>) {
    let (mut have, mut missing) = (Vec::new(), Vec::new());
    let mut want = |name: &'static str, prog: &str, argv: Vec<String>, hide: bool, fix: &str| {
        if on_path(prog) {
            have.push(Peer {
                name,
                argv,
                hide_cgroup2: hide,
            });
        } else {
            missing.push(unmeasured(name, format!("{prog} not installed ({fix})")));
        }
    };
    let peers_sh = "run ./scripts/peers.sh";
    let rootfs = dir.join("rootfs").display().to_string();
    let bundle = dir.join("bundle").display().to_string();
    let userns = dir.join("bundle-userns").display().to_string();
    let bundles = dir.join("bundle/config.json").exists();
    want(
        "bwrap --unshare-all",
        "bwrap",
        owned(crate::bench::BWRAP_TRUE),
        false,
        peers_sh,
    );
    want(
        "unshare (user, pid, mount, uts, ipc, net)",
        "unshare",
        owned(&[
            "unshare",
            "--user",
            "--map-root-user",
            "--pid",
            "--fork",
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--mount-proc",
            "/usr/bin/true",
        ]),
        false,
        peers_sh,
    );
    if !bundles {
        missing.push(unmeasured(
            "crun, runc, systemd-nspawn, podman",
            format!("no OCI bundles in {} ({peers_sh})", dir.display()),
        ));
    } else {
        for (name, b) in [("crun", &bundle), ("crun, user namespace", &userns)] {
            want(
                name,
                "crun",
                owned(&["crun", "run", "--bundle", b, "{id}"]),
                true,
                peers_sh,
            );
        }
        for (name, b) in [("runc", &bundle), ("runc, user namespace", &userns)] {
            want(
                name,
                "runc",
                owned(&["runc", "run", "--bundle", b, "{id}"]),
                false,
                peers_sh,
            );
        }
        want(
            "systemd-nspawn",
            "systemd-nspawn",
            owned(&[
                "systemd-nspawn",
                "-q",
                "--register=no",
                "--keep-unit",
                "-D",
                &rootfs,
                "--bind-ro=/usr",
                "--pipe",
                "/usr/bin/true",
            ]),
            false,
            peers_sh,
        );
        let hard = hard_nofile();
        want(
            "podman (runc, no network)",
            "podman",
            owned(&[
                "podman",
                "--runtime",
                "runc",
                "run",
                "--rm",
                "--network=none",
                "--ulimit",
                &format!("nofile={hard}:{hard}"),
                "--ulimit",
                "nproc=32768:32768",
                "-v",
                "/usr:/usr:ro",
                "--rootfs",
                &rootfs,
                "/usr/bin/true",
            ]),
            false,
            peers_sh,
        );
        want(
            "gVisor runsc (ptrace, no network)",
            "runsc",
            owned(&[
                "runsc",
                "--network=none",
                "--platform=ptrace",
                "run",
                "--bundle",
                &bundle,
                "{id}",
            ]),
            false,
            "not packaged by Debian: install it from gVisor's apt repository",
        );
    }
    (have, missing)
}

fn hard_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    r.rlim_max
}

fn unmeasured(name: &str, note: String) -> PeerRow {
    PeerRow {
        name: name.into(),
        n: 0,
        p50: f64::NAN,
        p90: f64::NAN,
        ratio: None,
        note: Some(note),
    }
}

/// One sample of a peer: ms, or the first line of what it printed.
fn sample(p: &Peer, i: usize) -> std::result::Result<f64, String> {
    let id = format!("world-bench-{}-{i}", std::process::id());
    let argv: Vec<String> = p.argv.iter().map(|a| a.replace("{id}", &id)).collect();
    run_timed(&argv, p.hide_cgroup2)
}

/// Runs `argv` (errors to a file, not a pipe: a detached container keeps
/// its stdio open); returns ms, or the first line it printed on failure.
fn run_timed(argv: &[String], hide_cgroup2: bool) -> std::result::Result<f64, String> {
    let errf = std::env::temp_dir().join(format!("world-bench-peers-{}.err", std::process::id()));
    let err = std::fs::File::create(&errf).map_err(|e| e.to_string())?;
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    if hide_cgroup2 {
        // SAFETY: runs in the forked child before exec and only makes
        // async-signal-safe system calls (unshare, mount, umount2) on
        // static C strings.
        unsafe {
            c.pre_exec(|| {
                if libc::unshare(libc::CLONE_NEWNS) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                );
                // Absent on a cgroup v2-only host: nothing to hide there.
                libc::umount2(c"/sys/fs/cgroup/unified".as_ptr(), libc::MNT_DETACH);
                Ok(())
            })
        };
    }
    let t = Instant::now();
    let status = c.status().map_err(|e| e.to_string())?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let stderr = std::fs::read(&errf).unwrap_or_default();
    let _ = std::fs::remove_file(&errf);
    if status.success() {
        Ok(ms)
    } else {
        let err = String::from_utf8_lossy(&stderr);
        Err(err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("failed without a message")
            .to_string())
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn measured(name: &str, mut v: Vec<f64>, base: Option<f64>) -> PeerRow {
    let p50 = pct(&mut v, 0.5);
    PeerRow {
        name: name.into(),
        n: v.len(),
        p50,
        p90: pct(&mut v, 0.9),
        ratio: base.map(|b| p50 / b),
        note: None,
    }
}

/// Runs the peers benchmark: `n` interleaved rounds of create + `true` +
/// teardown on us and every installed peer, then `snapshots` rounds of a
/// 100 MB Python snapshot with three copies. `dir` holds the bundles of
/// `scripts/peers.sh`. Destroys everything it made.
pub fn bench_peers(
    sub: &LinuxSubstrate,
    n: usize,
    snapshots: usize,
    dir: &Path,
) -> Result<Vec<PeerRow>> {
    let (mut peers, mut notes) = peers(dir);
    let mut ours_create = Vec::new();
    let mut ours_cold = Vec::new();
    let (mut ours_exec, mut ours_destroy) = (Vec::new(), Vec::new());
    let mut ours_cycle = Vec::new();
    // The same store without spares: what a create costs when none is
    // ready (the first of an image, or faster than refills).
    let cold = LinuxSubstrate::new(SubstrateConfig {
        spares: 0,
        ..sub.config().clone()
    });
    let mut theirs: Vec<Vec<f64>> = vec![Vec::new(); peers.len()];
    let mut failed: Vec<Option<String>> = vec![None; peers.len()];
    for i in 0..n {
        let t = Instant::now();
        let w = sub.create(&CreateOptions::default())?;
        ours_create.push(t.elapsed().as_secs_f64() * 1e3);
        let te = Instant::now();
        let r = sub.exec_output(&w.id, &ExecRequest::new(&["true"]), b"");
        ours_exec.push(te.elapsed().as_secs_f64() * 1e3);
        let td = Instant::now();
        let d = sub.destroy(&w.id);
        ours_destroy.push(td.elapsed().as_secs_f64() * 1e3);
        r?;
        d?;
        ours_cycle.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let w = cold.create(&CreateOptions::default())?;
        ours_cold.push(t.elapsed().as_secs_f64() * 1e3);
        cold.destroy(&w.id)?;
        for (k, p) in peers.iter().enumerate() {
            if failed[k].is_some() {
                continue;
            }
            match sample(p, i) {
                Ok(ms) => theirs[k].push(ms),
                Err(e) => failed[k] = Some(e),
            }
        }
    }
    let cycle = pct(&mut ours_cycle.clone(), 0.5);
    let mut rows = vec![
        measured(
            &format!(
                "world: create (ready to exec; {} spares)",
                sub.config().spares
            ),
            ours_create,
            Some(cycle),
        ),
        measured("world: create, no spare (cold)", ours_cold, Some(cycle)),
        measured("world: first exec true", ours_exec, Some(cycle)),
        measured("world: destroy", ours_destroy, Some(cycle)),
        measured(
            "world: create + exec true + destroy",
            ours_cycle,
            Some(cycle),
        ),
    ];
    for (k, p) in peers.drain(..).enumerate() {
        match failed[k].take() {
            Some(e) => rows.push(unmeasured(p.name, format!("fails here: {e}"))),
            None => rows.push(measured(
                p.name,
                std::mem::take(&mut theirs[k]),
                Some(cycle),
            )),
        }
    }
    rows.append(&mut notes);
    rows.extend(exec_rows(sub, n, dir)?);
    rows.extend(snapshot_rows(sub, snapshots, dir)?);
    Ok(rows)
}

/// A kept sandbox of a peer, exec'd into repeatedly.
struct Kept {
    name: &'static str,
    start: Vec<String>,
    exec: Vec<String>,
    stop: Vec<String>,
    hide_cgroup2: bool,
}

/// Exec of `true` into a kept sandbox, `n` interleaved rounds: ours (a
/// world kept for the whole run) beside `crun exec`, `runc exec` and
/// `podman exec` into a container running `sleep`.
fn exec_rows(sub: &LinuxSubstrate, n: usize, dir: &Path) -> Result<Vec<PeerRow>> {
    let pid = std::process::id();
    let work = WorkDir(dir.join(format!("exec-{pid}")));
    let sleeper = work.0.join("bundle");
    let made = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(&sleeper)?;
        let cfg = std::fs::read_to_string(dir.join("bundle/config.json"))?;
        let mut c: serde_json::Value = serde_json::from_str(&cfg).map_err(std::io::Error::other)?;
        c["process"]["args"] = serde_json::json!(["/usr/bin/sleep", "3600"]);
        std::fs::write(sleeper.join("config.json"), c.to_string())
    })();
    let b = sleeper.display().to_string();
    let rootfs = dir.join("rootfs").display().to_string();
    let hard = hard_nofile();
    let mut kept = Vec::new();
    if made.is_ok() {
        for (name, prog, hide) in [("crun exec", "crun", true), ("runc exec", "runc", false)] {
            let id = format!("world-bench-exec-{prog}-{pid}");
            kept.push(Kept {
                name,
                start: owned(&[prog, "run", "-d", "--bundle", &b, &id]),
                exec: owned(&[prog, "exec", &id, "/usr/bin/true"]),
                stop: owned(&[prog, "delete", "-f", &id]),
                hide_cgroup2: hide,
            });
        }
        let id = format!("world-bench-exec-podman-{pid}");
        kept.push(Kept {
            name: "podman exec",
            start: owned(&[
                "podman",
                "--runtime",
                "runc",
                "run",
                "-d",
                "--name",
                &id,
                "--network=none",
                "--ulimit",
                &format!("nofile={hard}:{hard}"),
                "--ulimit",
                "nproc=32768:32768",
                "-v",
                "/usr:/usr:ro",
                "--rootfs",
                &rootfs,
                "/usr/bin/sleep",
                "3600",
            ]),
            exec: owned(&["podman", "exec", &id, "/usr/bin/true"]),
            stop: owned(&["podman", "rm", "-f", "-t", "0", &id]),
            hide_cgroup2: false,
        });
    }
    let mut rows = Vec::new();
    let mut live = Vec::new();
    for k in kept {
        if !on_path(&k.start[0]) {
            rows.push(unmeasured(k.name, format!("{} not installed", k.start[0])));
            continue;
        }
        match run_timed(&k.start, k.hide_cgroup2) {
            Ok(_) => live.push((k, Vec::new(), None::<String>)),
            Err(e) => rows.push(unmeasured(k.name, format!("fails here: {e}"))),
        }
    }
    let w = sub.create(&CreateOptions::default())?;
    let mut ours = Vec::new();
    let res = (|| -> Result<()> {
        for _ in 0..n {
            let t = Instant::now();
            sub.exec_output(&w.id, &ExecRequest::new(&["true"]), b"")?;
            ours.push(t.elapsed().as_secs_f64() * 1e3);
            for (k, v, failed) in live.iter_mut() {
                if failed.is_none() {
                    match run_timed(&k.exec, k.hide_cgroup2) {
                        Ok(ms) => v.push(ms),
                        Err(e) => *failed = Some(e),
                    }
                }
            }
        }
        Ok(())
    })();
    let _ = sub.destroy(&w.id);
    for (k, _, _) in &live {
        let _ = run_timed(&k.stop, k.hide_cgroup2);
    }
    res?;
    let base = pct(&mut ours.clone(), 0.5);
    let mut out = vec![measured(
        "world: exec true into a kept world",
        ours,
        Some(base),
    )];
    for (k, v, failed) in live {
        out.push(match failed {
            Some(e) => unmeasured(k.name, format!("fails here: {e}")),
            None => measured(k.name, v, Some(base)),
        });
    }
    out.extend(rows);
    Ok(out)
}

/// Python holding 100 MB, then waiting: the process every snapshot row
/// copies.
const HOLD_100MB: &str = "import time\nb = bytearray(100 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('ready', flush=True)\ntime.sleep(3600)";

/// Our snapshot + branch of three children of a live 100 MB session, and
/// CRIU's checkpoint of the same process in a runc container where CRIU
/// is installed (its failure, when it fails, is the row's note).
fn snapshot_rows(sub: &LinuxSubstrate, n: usize, dir: &Path) -> Result<Vec<PeerRow>> {
    let mut rows = Vec::new();
    if n == 0 {
        return Ok(rows);
    }
    let w = sub.create(&CreateOptions::default())?;
    let run = sub.run_code(
        &w.id,
        "default",
        "b = bytearray(100 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1",
        None,
    );
    let mut v = Vec::new();
    let res = run.map(drop).and_then(|()| {
        for _ in 0..n {
            let t = Instant::now();
            let b = sub.branch_world(
                &w.id,
                3,
                &BranchOptions {
                    keep_snapshot: true,
                    ..Default::default()
                },
            )?;
            v.push(t.elapsed().as_secs_f64() * 1e3);
            for c in &b.children {
                sub.destroy(c)?;
            }
            if let Some(s) = &b.snapshot {
                sub.delete_snapshot(s)?;
            }
        }
        Ok(())
    });
    let _ = sub.destroy(&w.id);
    res?;
    let ours = pct(&mut v.clone(), 0.5);
    rows.push(measured(
        "world: snapshot + branch 3 of a live 100 MB Python",
        v,
        Some(ours),
    ));
    rows.push(criu_row(dir, ours));
    if !on_path("runsc") {
        rows.push(unmeasured(
            "gVisor runsc checkpoint + 3 restores (100 MB)",
            "runsc not installed (not packaged by Debian: install it from gVisor's apt repository)"
                .into(),
        ));
    }
    Ok(rows)
}

/// `runc checkpoint` (CRIU) of a container running [`HOLD_100MB`], then
/// three `runc restore`s: one sample, or the reason it cannot run here.
fn criu_row(dir: &Path, ours: f64) -> PeerRow {
    let name = "runc + CRIU: checkpoint + 3 restores (100 MB)";
    if !on_path("criu") || !on_path("runc") {
        return unmeasured(
            name,
            "criu or runc not installed (run ./scripts/peers.sh)".into(),
        );
    }
    let work = WorkDir(dir.join(format!("criu-{}", std::process::id())));
    let bundle = work.0.join("bundle");
    let made = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(&bundle)?;
        let cfg = std::fs::read_to_string(dir.join("bundle/config.json"))?;
        let mut c: serde_json::Value = serde_json::from_str(&cfg).map_err(std::io::Error::other)?;
        c["process"]["args"] = serde_json::json!(["/usr/bin/python3", "-c", HOLD_100MB]);
        std::fs::write(bundle.join("config.json"), c.to_string())
    })();
    if let Err(e) = made {
        return unmeasured(name, format!("bundle: {e} (run ./scripts/peers.sh)"));
    }
    let id = format!("world-bench-criu-{}", std::process::id());
    // Errors go to a file, not a pipe: a detached container keeps its
    // stdio open, so reading a pipe to its end would wait for it to exit.
    let log = work.0.join("runc.log");
    let runc = |args: &[&str]| -> std::io::Result<std::process::Output> {
        let err = std::fs::File::create(&log)?;
        let status = Command::new("runc")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .status()?;
        Ok(std::process::Output {
            status,
            stdout: Vec::new(),
            stderr: std::fs::read(&log).unwrap_or_default(),
        })
    };
    let b = bundle.display().to_string();
    let started = runc(&["run", "-d", "--bundle", &b, &id]);
    std::thread::sleep(Duration::from_millis(1500));
    let images = work.0.join("images").display().to_string();
    let t = Instant::now();
    let ck = runc(&["checkpoint", "--image-path", &images, &id]);
    let ck_ms = t.elapsed().as_secs_f64() * 1e3;
    let _ = runc(&["delete", "-f", &id]);
    let fail = |o: &std::io::Result<std::process::Output>| match o {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("failed")
                .to_string(),
        ),
        Err(e) => Some(e.to_string()),
    };
    if let Some(e) = fail(&started) {
        return unmeasured(name, format!("runc run fails here: {e}"));
    }
    if let Some(e) = fail(&ck) {
        let log = std::fs::read_to_string(work.0.join("images/dump.log")).unwrap_or_default();
        let why = log
            .lines()
            .find(|l| l.contains("Error"))
            .map(|l| l.trim().to_string())
            .unwrap_or(e);
        return unmeasured(name, format!("CRIU fails on this host: {why}"));
    }
    let t = Instant::now();
    for k in 0..3 {
        let rid = format!("{id}-r{k}");
        let r = runc(&[
            "restore",
            "-d",
            "--image-path",
            &images,
            "--bundle",
            &b,
            &rid,
        ]);
        if let Some(e) = fail(&r) {
            return unmeasured(name, format!("runc restore fails here: {e}"));
        }
    }
    let ms = ck_ms + t.elapsed().as_secs_f64() * 1e3;
    for k in 0..3 {
        let _ = runc(&["delete", "-f", &format!("{id}-r{k}")]);
    }
    measured(name, vec![ms], Some(ours))
}

/// A scratch directory removed when dropped.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where `scripts/peers.sh` puts the bundles: `$WORLD_PEERS_DIR`, else
/// `/var/cache/world-runtime/peers`.
pub fn peers_dir() -> PathBuf {
    std::env::var_os("WORLD_PEERS_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || PathBuf::from("/var/cache/world-runtime/peers"),
            PathBuf::from,
        )
}
