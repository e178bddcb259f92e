//! `world bench substrate`: create-to-ready, exec round trip of `true`,
//! destroy and memory per idle world, beside the `unshare` and `bwrap`
//! baselines measured in the same run. Returns a table; not a timed test.

use std::fmt;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::cgroup::WorldCgroup;
use crate::error::Result;
use crate::types::{CreateOptions, ExecRequest, Limits, WorldId};
use crate::{ExecStdio, LinuxSubstrate, Substrate};

/// One measured operation.
#[derive(Debug, Clone)]
pub struct BenchRow {
    /// What was measured.
    pub name: String,
    /// Samples taken.
    pub n: usize,
    /// Median, ms (or MB for memory rows).
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Unit of p50/p90.
    pub unit: &'static str,
}

/// The benchmark table.
#[derive(Debug, Clone, Default)]
pub struct BenchReport {
    /// Rows in order.
    pub rows: Vec<BenchRow>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<44} {:>5} {:>10} {:>10}",
            "operation", "n", "p50", "p90"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<44} {:>5} {:>7.2} {:<2} {:>7.2} {:<2}",
                r.name, r.n, r.p50, r.unit, r.p90, r.unit
            )?;
        }
        Ok(())
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn row(name: &str, mut v: Vec<f64>, unit: &'static str) -> BenchRow {
    BenchRow {
        name: name.into(),
        n: v.len(),
        p50: pct(&mut v, 0.5),
        p90: pct(&mut v, 0.9),
        unit,
    }
}

fn time_cmd(n: usize, prog: &str, args: &[&str]) -> Option<Vec<f64>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let ok = Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Some(v)
}

/// PSS of every process of a world, in kB.
pub fn world_pss_kb(sub: &LinuxSubstrate, id: &WorldId) -> u64 {
    let cg = WorldCgroup::open(&sub.config().cgroup_name, id.as_str());
    smaps_kb(&cg.pids(), "Pss:")
}

/// A field of `/proc/PID/smaps_rollup` (e.g. `"Pss:"`, `"AnonHugePages:"`)
/// in kB, summed over `pids` (processes that are gone count 0).
pub fn smaps_kb(pids: &[i32], field: &str) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")).ok())
        .filter_map(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .sum()
}

fn mem_available_kb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// `bwrap --unshare-all` around `true` with the host's /usr: the sandbox
/// every world benchmark is compared with (argv, program first).
pub(crate) const BWRAP_TRUE: &[&str] = &[
    "bwrap",
    "--unshare-all",
    "--ro-bind",
    "/usr",
    "/usr",
    "--symlink",
    "usr/bin",
    "/bin",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",
    "/usr/bin/true",
];

/// `bwrap --unshare-all` create + exec of `true`, `n` times: the baseline
/// every world benchmark is compared with in the same run.
fn bwrap_baseline(n: usize) -> Option<BenchRow> {
    let bw = &BWRAP_TRUE[1..];
    time_cmd(n, "bwrap", bw).map(|v| row("baseline: bwrap --unshare-all ... true", v, "ms"))
}

/// Runs the benchmark: `n` samples per timed row, `idle` worlds alive at
/// once for the memory rows. Destroys every world it made.
pub fn bench_substrate(sub: &LinuxSubstrate, n: usize, idle: usize) -> Result<BenchReport> {
    let opts = CreateOptions {
        limits: Limits::default(),
        ..Default::default()
    };
    // Warm up: builds the host image and mounts the store.
    let w = sub.create(&opts)?;
    sub.destroy(&w.id)?;

    let mut rep = BenchReport::default();
    // Create from a spare (see `linux/spare.rs`): wait, untimed, until one
    // is ready, then create and destroy.
    let mut from_spare = Vec::new();
    if sub.config().spares > 0 {
        for _ in 0..n {
            let t0 = Instant::now();
            while sub.spares_ready(crate::image::HOST_IMAGE) == 0
                && t0.elapsed() < std::time::Duration::from_secs(5)
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let t = Instant::now();
            let c = sub.create(&opts)?;
            from_spare.push(t.elapsed().as_secs_f64() * 1e3);
            sub.destroy(&c.id)?;
        }
    }
    // Back to back: the first creates take the spares, the rest are cold
    // (refills start 50 ms after a create).
    let (mut create, mut wall, mut destroy) = (Vec::new(), Vec::new(), Vec::new());
    let mut ids = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let c = sub.create(&opts)?;
        wall.push(t.elapsed().as_secs_f64() * 1e3);
        create.push(c.create_ms);
        ids.push(c.id);
    }
    let mut rtt = Vec::new();
    let t_req = ExecRequest::new(&["true"]);
    for _ in 0..n {
        let t = Instant::now();
        sub.exec(&ids[0], &t_req, ExecStdio::default())?;
        rtt.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut first = Vec::new();
    for id in ids.iter().skip(1) {
        let t = Instant::now();
        sub.exec(id, &t_req, ExecStdio::default())?;
        first.push(t.elapsed().as_secs_f64() * 1e3);
    }
    for id in &ids {
        let t = Instant::now();
        sub.destroy(id)?;
        destroy.push(t.elapsed().as_secs_f64() * 1e3);
    }
    if !from_spare.is_empty() {
        rep.rows.push(row(
            "world create from a ready spare (caller wall clock)",
            from_spare,
            "ms",
        ));
    }
    rep.rows.push(row(
        "world create back to back, inside (spares run out)",
        create,
        "ms",
    ));
    rep.rows.push(row(
        "world create back to back (caller wall clock)",
        wall,
        "ms",
    ));
    rep.rows
        .push(row("world exec `true` round trip", rtt, "ms"));
    rep.rows
        .push(row("world first exec after create", first, "ms"));
    rep.rows.push(row("world destroy", destroy, "ms"));

    if let Some(v) = time_cmd(n, "unshare", &["-Umpniu", "--fork", "true"]) {
        rep.rows
            .push(row("baseline: unshare -Umpniu --fork true", v, "ms"));
    }
    if let Some(r) = bwrap_baseline(n) {
        rep.rows.push(r);
    }
    let t = Instant::now();
    if let Some(v) = time_cmd(n, "true", &[]) {
        let _ = t;
        rep.rows.push(row("baseline: spawn `true`", v, "ms"));
    }

    let before = mem_available_kb();
    let mut idle_ids = Vec::new();
    let t = Instant::now();
    for _ in 0..idle {
        idle_ids.push(sub.create(&opts)?.id);
    }
    let spawn_all = t.elapsed().as_secs_f64() * 1e3;
    std::thread::sleep(std::time::Duration::from_millis(200));
    let after = mem_available_kb();
    let pss: Vec<f64> = idle_ids
        .iter()
        .map(|id| world_pss_kb(sub, id) as f64 / 1024.0)
        .collect();
    let per_world_host = before.saturating_sub(after) as f64 / 1024.0 / idle.max(1) as f64;
    rep.rows.push(row(
        &format!("PSS per idle world ({idle} alive)"),
        pss,
        "MB",
    ));
    rep.rows.push(BenchRow {
        name: format!("host memory per idle world ({idle} alive)"),
        n: idle,
        p50: per_world_host,
        p90: per_world_host,
        unit: "MB",
    });
    rep.rows.push(BenchRow {
        name: format!("create {idle} idle worlds, total"),
        n: 1,
        p50: spawn_all,
        p90: spawn_all,
        unit: "ms",
    });
    for id in &idle_ids {
        sub.destroy(id)?;
    }
    Ok(rep)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Raw `os.fork()` (+ child exit + wait) of a host Python process holding
/// `mb` MB, `n` times; the baseline for branching a session. With `thp`
/// its malloc uses the sessions' huge-page tunable
/// ([`crate::session::MALLOC_TUNABLES`]); without, glibc's default.
pub fn python_fork_baseline(n: usize, mb: usize, thp: bool) -> Option<Vec<f64>> {
    let code = format!(
        "import os,time\nb=b'x'*({mb}<<20)\nfor _ in range({n}):\n t=time.perf_counter();p=os.fork()\n if p==0: os._exit(0)\n os.waitpid(p,0);print((time.perf_counter()-t)*1e3)"
    );
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-c", &code]).env_remove("GLIBC_TUNABLES");
    if thp {
        cmd.env("GLIBC_TUNABLES", crate::session::MALLOC_TUNABLES);
    }
    let out = cmd.output().ok()?;
    let v: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    (!v.is_empty()).then_some(v)
}

/// Sets the pool of world shells of `snap`'s lineage and the ready roots
/// of `snap` to `k` and waits (up to 60 s) until all are ready, or fails;
/// with 0, empties both and lets the killed shells' namespaces go.
pub fn fill_pool(sub: &LinuxSubstrate, snap: &str, k: usize) -> Result<()> {
    sub.shell_pool(snap, Some(k))?;
    if k == 0 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        return Ok(());
    }
    sub.wait_shell_pool(snap, k, std::time::Duration::from_secs(60), |_| {})
        .map(drop)
}

/// Memory of one pooled shell: the PSS of the lineage's cgroups (manager,
/// pool of shells) with `k` ready shells minus that with none, over k; and the
/// host's MemAvailable drop (kernel memory: namespaces, mounts) over k.
fn pool_cost_rows(sub: &LinuxSubstrate, snap: &str, k: usize) -> Result<[BenchRow; 2]> {
    let lineage = sub.snapshot_record(snap)?.lineage;
    let cgs = [
        crate::lineage::cgroup_id(&lineage),
        crate::lineage::pool_cgroup_id(&lineage),
    ]
    .map(|n| WorldCgroup::open(&sub.config().cgroup_name, &n));
    let pss = |cgs: &[WorldCgroup]| -> f64 {
        let pids: Vec<i32> = cgs.iter().flat_map(|cg| cg.pids()).collect();
        smaps_kb(&pids, "Pss:") as f64
    };
    fill_pool(sub, snap, 0)?;
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (p0, m0) = (pss(&cgs), mem_available_kb() as f64);
    fill_pool(sub, snap, k)?;
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (p1, m1) = (pss(&cgs), mem_available_kb() as f64);
    let kf = k.max(1) as f64;
    Ok([
        row(
            &format!("memory per pooled shell ({k} shells): PSS"),
            vec![(p1 - p0) / kf / 1024.0],
            "MB",
        ),
        row(
            &format!("memory per pooled shell ({k} shells): host MemAvailable drop"),
            vec![(m0 - m1) / kf / 1024.0],
            "MB",
        ),
    ])
}

/// The session a branch benchmark's world holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// A Python session holding almost nothing.
    Idle,
    /// A Python session holding 100 MB.
    Mb100,
}

/// `world bench branch`: snapshot p50/p90; branch of 1, 3, 10 and 100
/// children from a world whose session holds 100 MB and from an idle one;
/// time from the branch call to the first run-code result in a child; PSS
/// per child; beside a raw `os.fork()` of a Python process of the same
/// size and `bwrap` create, measured in the same run. `n` samples for the
/// repeated rows; a floor row per size gives the kernel's share alone
/// ([`LinuxSubstrate::kernel_floor`]); `counts` are the branch sizes, `sessions` the worlds branched. Destroys what it made.
pub fn bench_branch(
    sub: &LinuxSubstrate,
    n: usize,
    counts: &[usize],
    sessions: &[Session],
) -> Result<BenchReport> {
    use crate::snapshot::BranchOptions;
    let mut rep = BenchReport::default();
    let opts = BranchOptions::default();
    let mut worlds = Vec::new();
    for s in sessions {
        let (label, code) = match s {
            Session::Idle => ("idle", "x = 1"),
            Session::Mb100 => ("100MB", "blob = b'x' * (100 << 20)\nx = 1"),
        };
        let id = sub.create(&CreateOptions::default())?.id;
        let r = sub.run_code(&id, "default", code, None)?;
        if let Some(e) = r.error {
            return Err(crate::error::ExecError::Failed(e).into());
        }
        worlds.push((label, id));
    }
    for (w, (label, id)) in worlds.iter().enumerate() {
        let first = w == 0;
        let mut snap = Vec::new();
        for _ in 0..n {
            let s = sub.snapshot(id, None)?;
            snap.push(s.snapshot_ms);
            sub.delete_snapshot(&s.id)?;
        }
        rep.rows
            .push(row(&format!("snapshot, session {label}"), snap, "ms"));
        let s = sub.snapshot(id, None)?;
        for &k in counts {
            // Several rounds per size (fewer for big branches), so that the
            // rows are p50/p90 over runs, not one sample.
            let rounds = if k <= 10 {
                n.clamp(1, 10)
            } else {
                n.clamp(1, 3)
            };
            // Pooled and unpooled rounds alternate, so that the machine's
            // noise hits both alike: before a pooled round the lineage's
            // pool holds k ready shells and the snapshot k ready roots;
            // before an unpooled one both are empty (a branch's own
            // requests refill them afterwards).
            let mut rows: [(Vec<f64>, Vec<f64>); 2] = Default::default();
            let mut firsts = Vec::new();
            for round in 0..rounds {
                for (pooled, (totals, per_child)) in rows.iter_mut().enumerate() {
                    let pooled = pooled == 0;
                    fill_pool(sub, &s.id, if pooled { k } else { 0 })?;
                    let t = Instant::now();
                    let b = sub.branch(&s.id, k, &opts)?;
                    let total = ms(t);
                    let r = sub.run_code(&b.children[0], "default", "x", None)?;
                    if pooled {
                        firsts.push(ms(t));
                    }
                    assert_eq!(r.value_repr.as_deref(), Some("1"));
                    totals.push(total);
                    per_child.push(total / k as f64);
                    if pooled && k >= 3 && round + 1 == rounds {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        let pss: Vec<f64> = b
                            .children
                            .iter()
                            .map(|c| world_pss_kb(sub, c) as f64 / 1024.0)
                            .collect();
                        rep.rows.push(row(
                            &format!("PSS per child world (branch {k}, session {label})"),
                            pss,
                            "MB",
                        ));
                    }
                    for c in &b.children {
                        sub.destroy(c)?;
                    }
                }
            }
            let [(pt, pc), (ut, uc)] = rows;
            for (what, v) in [
                ("total, pooled (shells + roots ready)", pt),
                ("per child, pooled (shells + roots ready)", pc),
                ("total, no pool", ut),
                ("per child, no pool", uc),
            ] {
                rep.rows.push(row(
                    &format!("branch {k} children, session {label}: {what}"),
                    v,
                    "ms",
                ));
            }
            rep.rows.push(row(
                &format!("branch {k}, session {label}: call to first run-code result (pooled)"),
                firsts,
                "ms",
            ));
            if first && k == counts.iter().copied().max().unwrap_or(k) {
                rep.rows.extend(pool_cost_rows(sub, &s.id, k)?);
            }
            // The kernel's share alone (btrfs roots and namespaced
            // processes, see `kernel_floor`), once per size: the floor
            // this branch's own cost sits on.
            if first {
                let mut floor = Vec::new();
                for _ in 0..rounds {
                    floor.push(sub.kernel_floor(&s.id, k)?);
                }
                rep.rows.push(row(
                    &format!("floor: {k} btrfs roots + namespaced processes, no world"),
                    floor,
                    "ms",
                ));
            }
        }
        // Snapshot and branch in one call, from the running world (what
        // `world branch WORLD` and push_down do).
        let mut live = Vec::new();
        for _ in 0..n.clamp(1, 10) {
            let t = Instant::now();
            let b = sub.branch_world(id, 3, &opts)?;
            live.push(ms(t));
            for c in &b.children {
                sub.destroy(c)?;
            }
        }
        rep.rows.push(row(
            &format!("snapshot + branch 3 from the live world, session {label}"),
            live,
            "ms",
        ));
        sub.delete_snapshot(&s.id)?;
    }
    for (_, id) in &worlds {
        sub.destroy(id)?;
    }
    for (mb, thp, label) in [
        (0, false, "idle"),
        (100, false, "100 MB, default malloc"),
        (100, true, "100 MB, huge-page malloc as in sessions"),
    ] {
        if let Some(v) = python_fork_baseline(n.max(5), mb, thp) {
            rep.rows.push(row(
                &format!("baseline: python os.fork() {label} (+exit+wait)"),
                v,
                "ms",
            ));
        }
    }
    if let Some(r) = bwrap_baseline(n) {
        rep.rows.push(r);
    }
    Ok(rep)
}
