//! `world run-code | snapshot | snapshots | branch | service | repair`.
//!
//! run-code, snapshot, snapshots and branch go through a running daemon
//! ([`Via::Daemon`]); service and repair always run in-process.

use std::io::Read;
use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use world_engine::actions;
use world_engine::world::world_id;
use world_engine::{Engine, Error};
use world_substrate::snapshot::{Branched, SnapshotInfo};
use world_substrate::ExecRequest;

use crate::args::{BranchArgs, RunCodeArgs, ServiceCmd, SnapshotsCmd};
use crate::output::{out, outln};
use crate::output::{table, Out};
use crate::remote::{enc, Via};

/// What a run of code did (the daemon's answer to run-code, or the
/// engine's result).
#[derive(serde::Deserialize)]
struct CodeRun {
    stdout: String,
    stderr: String,
    value: Option<String>,
    error: Option<String>,
    timed_out: bool,
    duration_ms: f64,
}

/// A timeout flag, checked as every door checks one
/// ([`actions::seconds`]).
pub(crate) fn secs(t: Option<f64>, what: &str) -> Result<Option<Duration>> {
    Ok(actions::seconds(t, what)?)
}

/// `world run-code`: returns the exit code (0 ok, 1 exception, 124 timeout).
pub fn run_code(via: &Via, out: &Out, a: RunCodeArgs) -> Result<i32> {
    let id = world_id(&a.id)?;
    let code = match (&a.code, &a.file) {
        (Some(c), None) => c.clone(),
        (None, Some(f)) if f.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        }
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", f.display())))?,
        _ => return Err(Error::Invalid("give the code or -f FILE".into()).into()),
    };
    let timeout = secs(a.timeout, "--timeout")?;
    let r = match via {
        Via::Local(engine) => {
            let r = if out.json {
                engine.run_code(&id, &a.session, &code, timeout)?
            } else {
                let (o, e) = (std::io::stdout(), std::io::stderr());
                engine.run_code_stream(&id, &a.session, &code, timeout, o.as_fd(), e.as_fd())?
            };
            CodeRun {
                stdout: String::from_utf8_lossy(&r.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&r.stderr).into_owned(),
                value: r.value_repr,
                error: r.error,
                timed_out: r.timed_out,
                duration_ms: r.duration_ms,
            }
        }
        Via::Daemon(d) => {
            let body = actions::RunCodeRequest {
                code,
                session: Some(a.session),
                timeout: a.timeout,
            };
            let path = format!("/v1/worlds/{}/run-code", enc(id.as_str()));
            let r: CodeRun = d.post(&path, &body)?;
            if !out.json {
                // The daemon answers when the code is done: print its output now.
                out!("{}", r.stdout);
                eprint!("{}", r.stderr);
            }
            r
        }
    };
    if out.json {
        outln!(
            "{}",
            json!({
                "stdout": r.stdout,
                "stderr": r.stderr,
                "value": r.value, "error": r.error, "timed_out": r.timed_out,
                "duration_ms": r.duration_ms,
            })
        );
    } else {
        if let Some(v) = &r.value {
            outln!("{v}");
        }
        if let Some(e) = &r.error {
            eprint!("{e}");
            if !e.ends_with('\n') {
                eprintln!();
            }
        }
    }
    Ok(world_substrate::session::cell_exit_code(
        r.timed_out,
        r.error.is_some(),
    ))
}

/// `world snapshot`.
pub fn snapshot(via: &Via, out: &Out, id: &str, name: Option<&str>) -> Result<()> {
    let id = world_id(id)?;
    let info: SnapshotInfo = match via {
        Via::Local(engine) => engine.snapshot(&id, name)?,
        Via::Daemon(d) => d.post(
            &format!("/v1/worlds/{}/snapshot", enc(id.as_str())),
            &actions::SnapshotRequest {
                name: name.map(str::to_string),
                ..actions::SnapshotRequest::default()
            },
        )?,
    };
    for w in &info.warnings {
        eprintln!("warning: {w}");
    }
    out.emit(&info, || outln!("{}", info.id))
}

/// `world snapshots [rm SNAP]`.
pub fn snapshots(via: &Via, out: &Out, cmd: Option<SnapshotsCmd>) -> Result<()> {
    match cmd {
        Some(SnapshotsCmd::Rm { snapshot }) => {
            match via {
                Via::Local(engine) => engine.snapshot_delete(&snapshot)?,
                Via::Daemon(d) => {
                    d.call("DELETE", &format!("/v1/snapshots/{}", enc(&snapshot)), None)?;
                }
            }
            out.emit(&json!({"deleted": snapshot}), || {
                outln!("deleted {snapshot}")
            })
        }
        None => {
            let snaps: Vec<SnapshotInfo> = match via {
                Via::Local(engine) => engine.snapshots()?,
                Via::Daemon(d) => d.call_as("GET", "/v1/snapshots", None)?,
            };
            out.emit(&snaps, || {
                let rows: Vec<Vec<String>> = snaps
                    .iter()
                    .map(|s| {
                        vec![
                            s.id.clone(),
                            s.name.clone(),
                            s.world.to_string(),
                            s.sessions.join(","),
                            format!("{:.2}", s.snapshot_ms),
                            s.template_memory_bytes
                                .map_or("-".into(), |b| format!("{:.1}", b as f64 / 1048576.0)),
                            s.template_pids.map_or("-".into(), |p| p.to_string()),
                        ]
                    })
                    .collect();
                out!(
                    "{}",
                    table(
                        &[
                            "snapshot",
                            "name",
                            "world",
                            "sessions",
                            "snapshot_ms",
                            "templates_mib",
                            "template_pids",
                        ],
                        &rows
                    )
                );
            })
        }
    }
}

/// `world branch`.
pub fn branch(via: &Via, out: &Out, a: BranchArgs) -> Result<()> {
    let body = actions::BranchRequest {
        count: a.count,
        apply_seeds: Some(!a.no_seed),
        start_services: Some(!a.no_services),
        keep_snapshot: Some(a.keep_snapshot),
        metadata: None,
    };
    let opts = body.options()?;
    let b: Branched = match via {
        Via::Local(engine) => engine.branch(&a.source, a.count, &opts)?,
        Via::Daemon(d) => {
            // The engine looks for a snapshot first, then a world: so does
            // the world route; a source that cannot be a world id can
            // only be a snapshot.
            let path = match world_id(&a.source) {
                Ok(w) => format!("/v1/worlds/{}/branch", enc(w.as_str())),
                Err(_) => format!("/v1/snapshots/{}/branch", enc(&a.source)),
            };
            d.post(&path, &body)?
        }
    };
    for w in &b.warnings {
        eprintln!("warning: {w}");
    }
    out.emit(&b, || {
        for c in &b.children {
            outln!("{c}");
        }
        eprintln!(
            "{} world(s) in {:.1} ms{}",
            b.children.len(),
            b.branch_ms,
            b.snapshot_ms
                .map_or(String::new(), |s| format!(" (snapshot {s:.1} ms)"))
        );
    })
}

/// `world service ...`.
pub fn service(engine: &Engine, out: &Out, cmd: ServiceCmd) -> Result<()> {
    let sub = engine.substrate()?;
    match cmd {
        ServiceCmd::Add { id, name, argv } => {
            let id = world_id(&id)?;
            sub.declare_service(&id, &name, &ExecRequest::new(&argv))
                .map_err(Error::from)?;
            out.emit(&json!({"world": id.to_string(), "service": name}), || {
                outln!("service {name} declared and started in {id}")
            })
        }
        ServiceCmd::List { id } => {
            let svcs = sub.services(&world_id(&id)?).map_err(Error::from)?;
            out.emit(&svcs, || {
                let rows: Vec<Vec<String>> = svcs
                    .iter()
                    .map(|s| vec![s.name.clone(), s.request.argv.join(" ")])
                    .collect();
                out!("{}", table(&["service", "command"], &rows));
            })
        }
    }
}

/// `world pool TARGET [--size N [--wait]]`: a lineage's pool of world
/// shells (local: it talks to the lineage manager, not the daemon).
pub fn pool(
    engine: &Engine,
    out: &Out,
    target: &str,
    size: Option<usize>,
    wait: bool,
) -> Result<()> {
    let sub = engine.substrate()?;
    let mut st = sub
        .shell_pool(target, size)
        .map_err(world_engine::Error::from)?;
    if let (true, Some(n)) = (wait, size) {
        let mut shown = usize::MAX;
        st = sub
            .wait_shell_pool(target, n, std::time::Duration::from_secs(60), |s| {
                let now = s.ready + s.roots_ready.unwrap_or(0);
                if now != shown && !out.json {
                    match s.roots_ready {
                        Some(r) => eprint!(
                            "\rshells ready: {}/{n}, branch roots ready: {}/{n}",
                            s.ready.min(n),
                            r.min(n)
                        ),
                        None => eprint!("\rshells ready: {}/{n}", s.ready.min(n)),
                    }
                    shown = now;
                }
            })
            .map_err(world_engine::Error::from)?;
        if shown != usize::MAX && !out.json {
            eprintln!();
        }
    }
    out.emit(&st, || {
        let roots = st
            .roots_ready
            .map(|r| format!("; {r} branch roots of the snapshot ready"))
            .unwrap_or_default();
        outln!(
            "pool of {target}: {} shells ready, {} preparing, keeps {}{roots}",
            st.ready,
            st.preparing,
            st.want
        )
    })
}

/// `world spares [--drop]`: the spare worlds of this host (local, like
/// `world pool`).
pub fn spares(engine: &Engine, out: &Out, drop: bool) -> Result<()> {
    let sub = engine.substrate()?;
    if drop {
        let n = sub.drop_spares(None);
        let v = serde_json::json!({ "stopped": n });
        return out.emit(&v, || outln!("stopped {n} spare world(s)"));
    }
    let v = sub.spares();
    out.emit(&v, || {
        if v.is_empty() {
            outln!("no spare worlds (the first create of an image makes them)");
        }
        for s in &v {
            outln!("{}: {} ready", s.image, s.ready);
        }
    })
}

pub fn repair(engine: &Engine, out: &Out) -> Result<()> {
    let r = engine.repair()?;
    out.emit(&r, || {
        let s = &r.substrate;
        outln!(
            "removed {} half-made world(s), {} snapshot(s), {} orphaned subvolume(s), {} orphaned cgroup(s); killed the processes of {} cgroup(s) no record names; thawed {} world(s); stopped {} lineage(s) and {} spare world(s); {} dead world(s); {} record(s) marked lost",
            s.removed_worlds.len(),
            s.removed_snapshots.len(),
            s.removed_subvolumes.len(),
            s.removed_cgroups.len(),
            s.killed_orphans.len(),
            s.thawed_worlds.len(),
            s.stopped_lineages.len(),
            s.stopped_spares,
            s.dead_worlds.len(),
            r.lost.len()
        );
        for w in &s.dead_worlds {
            outln!("dead: {w} (destroy it)");
        }
    })
}
