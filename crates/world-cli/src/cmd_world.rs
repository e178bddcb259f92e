//! `world create | list | inspect | exec | cp | destroy | image`.
//!
//! create, list, inspect, exec and destroy go through a running daemon
//! ([`Via::Daemon`]); cp and image always run in-process.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};
use world_engine::actions;
use world_engine::world::world_id;
use world_engine::{Engine, Error};
use world_substrate::{Created, ExecRequest, ExecStdio, WorldId, WorldInfo};

use crate::args::{CreateArgs, ExecArgs, ImageCmd};
use crate::output::{opt, table, Out};
use crate::output::{out, outln};
use crate::remote::{enc, Daemon, Via};

/// `world create`.
pub fn create(via: &Via, out: &Out, a: CreateArgs) -> Result<()> {
    // The daemon's route reads the same request and checks it the same way.
    let req = actions::CreateRequest {
        id: a.id,
        image: Some(a.image),
        vcpus: Some(a.vcpus),
        memory_mib: Some(a.memory),
        pids_max: Some(a.pids),
        disk_mib: Some(a.disk),
        ..actions::CreateRequest::default()
    };
    let actions::CreateFrom::Image(opts) = req.checked()?.0 else {
        unreachable!("a create without snapshot_id is from an image")
    };
    let c = match via {
        Via::Local(engine) => engine.world_create(&opts)?,
        Via::Daemon(d) => {
            let w: WorldInfo = d.post("/v1/worlds", &req)?;
            Created {
                id: w.id,
                create_ms: w.create_ms,
                warnings: w.warnings,
            }
        }
    };
    for w in &c.warnings {
        eprintln!("warning: {w}");
    }
    out.emit(&c, || outln!("{}", c.id))
}

fn mib(v: Option<u64>) -> String {
    v.map_or("-".into(), |b| format!("{:.1}", b as f64 / 1048576.0))
}

fn info_row(w: &WorldInfo) -> Vec<String> {
    vec![
        w.id.to_string(),
        w.image.clone(),
        w.state.to_string(),
        w.limits.vcpu_count.to_string(),
        w.limits.mem_size_mib.to_string(),
        mib(w.memory_bytes),
        opt(&w.pids),
        mib(w.disk_bytes),
        format!("{:.1}", w.create_ms),
    ]
}

const INFO_HEADERS: [&str; 9] = [
    "world",
    "image",
    "state",
    "vcpus",
    "mem_mib",
    "mem_used_mib",
    "pids",
    "disk_used_mib",
    "create_ms",
];

/// `world list`.
pub fn list(via: &Via, out: &Out) -> Result<()> {
    let worlds: Vec<WorldInfo> = match via {
        Via::Local(engine) => engine.world_list()?,
        Via::Daemon(d) => d.call_as("GET", "/v1/worlds", None)?,
    };
    out.emit(&worlds, || {
        let rows: Vec<_> = worlds.iter().map(info_row).collect();
        out!("{}", table(&INFO_HEADERS, &rows));
    })
}

/// `world inspect`.
pub fn inspect(via: &Via, out: &Out, id: &str) -> Result<()> {
    let id = world_id(id)?;
    let w: WorldInfo = match via {
        Via::Local(engine) => engine.world_inspect(&id)?,
        Via::Daemon(d) => d.call_as("GET", &format!("/v1/worlds/{}", enc(id.as_str())), None)?,
    };
    out.emit(&w, || {
        out!("{}", table(&INFO_HEADERS, &[info_row(&w)]));
        for warn in &w.warnings {
            outln!("warning: {warn}");
        }
    })
}

/// `world exec`: returns the exit code to leave with.
/// With a daemon it goes through it (see [`exec_remote`]).
pub fn exec(engine: &Engine, daemon: Option<&Daemon>, a: ExecArgs) -> Result<i32> {
    let id = world_id(&a.id)?;
    let mut req = ExecRequest::new(&a.argv);
    for kv in &a.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Error::Invalid(format!("--env {kv:?} must be KEY=VALUE")))?;
        if k.is_empty() {
            return Err(Error::Invalid(format!("--env {kv:?}: empty name")).into());
        }
        req.env.push((k.to_string(), v.to_string()));
    }
    req.cwd = a.cwd;
    req.timeout = crate::cmd_branch::secs(a.timeout, "--timeout")?;
    if let Some(d) = daemon {
        return exec_remote(engine, d, &id, &req);
    }
    exec_local(engine, &id, &req, std::io::stdin().as_fd())
}

/// Runs the command in-process with `stdin`, our stdout and stderr.
fn exec_local(engine: &Engine, id: &WorldId, req: &ExecRequest, stdin: BorrowedFd) -> Result<i32> {
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    let stdio = ExecStdio {
        stdin: Some(stdin),
        stdout: Some(stdout.as_fd()),
        stderr: Some(stderr.as_fd()),
        cancel: None,
    };
    let status = engine.world_exec(id, req, stdio)?;
    if status.timed_out {
        timed_out(req);
    }
    Ok(status.shell_code())
}

fn timed_out(req: &ExecRequest) {
    let after = match req.timeout {
        Some(t) => format!("{:?}", t),
        None => "the default timeout (WORLD_EXEC_TIMEOUT, 600 s unless set; \
                 pass --timeout for longer)"
            .to_string(),
    };
    eprintln!(
        "world exec: timed out after {after}; the command and everything it started were killed"
    );
}

/// Largest standard input sent to the daemon with the command (its body
/// limit is 4 MiB of JSON).
const DAEMON_STDIN_MAX: usize = 3 << 20;

/// `world exec` through the daemon. A terminal on stdin is not forwarded:
/// the output streams (`/exec/stream`) while the command reads nothing.
/// Other stdin is read to its end first; when empty the output streams,
/// else it goes with the command to `/exec` and the output is printed when
/// the command ends. Stdin that the daemon cannot take (not UTF-8, over
/// 3 MiB) runs the command in-process instead, fed from a pipe.
fn exec_remote(engine: &Engine, d: &Daemon, id: &WorldId, req: &ExecRequest) -> Result<i32> {
    let mut body = actions::ExecRequest {
        argv: Some(req.argv.clone()),
        env: Some(req.env.iter().cloned().collect()),
        cwd: req.cwd.clone(),
        timeout: req.timeout.map(|t| t.as_secs_f64()),
        ..actions::ExecRequest::default()
    };
    let mut input = Vec::new();
    if !std::io::stdin().is_terminal() {
        std::io::stdin().read_to_end(&mut input)?;
    }
    let path = format!("/v1/worlds/{}/exec", enc(id.as_str()));
    if input.is_empty() {
        let mut code = None;
        let mut e = std::io::stderr();
        d.stream(&format!("{path}/stream"), &body, |data| {
            let ev: Value = serde_json::from_str(data).unwrap_or(Value::Null);
            let content = ev["content"].as_str().unwrap_or("");
            match ev["type"].as_str() {
                Some("stdout") => {
                    crate::output::write_out(content.as_bytes());
                    Ok(())
                }
                Some("stderr") => e.write_all(content.as_bytes()).and_then(|_| e.flush()),
                Some("exit_code") => {
                    code = content.parse::<i32>().ok();
                    Ok(())
                }
                _ => Ok(()),
            }
        })?;
        let code = code.ok_or_else(|| {
            anyhow::anyhow!(
                "the daemon at {} ended the exec stream without an exit code",
                d.socket().display()
            )
        })?;
        // The stream carries no timeout flag: with --timeout, 124 is ours.
        if code == world_substrate::types::TIMEOUT_EXIT_CODE && req.timeout.is_some() {
            timed_out(req);
        }
        return Ok(code);
    }
    match String::from_utf8(input) {
        Ok(text) if text.len() <= DAEMON_STDIN_MAX => {
            body.stdin = Some(text);
            let r: actions::ExecResponse = d.post(&path, &body)?;
            out!("{}", r.stdout);
            eprint!("{}", r.stderr);
            if r.timed_out {
                timed_out(req);
            }
            Ok(r.exit_code)
        }
        other => {
            let input = other.map_or_else(|e| e.into_bytes(), String::into_bytes);
            let (r, mut w) = std::io::pipe()?;
            let feeder = std::thread::spawn(move || {
                // The command may stop reading early: a broken pipe is fine.
                let _ = w.write_all(&input);
            });
            let code = exec_local(engine, id, req, r.as_fd());
            drop(r);
            let _ = feeder.join();
            code
        }
    }
}

/// A `cp` operand: a world path (`ID:/path`) or a host path.
enum Place<'a> {
    World(&'a str, &'a str),
    Host(&'a Path),
}

fn place(s: &str) -> Place<'_> {
    match s.split_once(':') {
        Some((id, path)) if !id.is_empty() && !id.contains('/') && path.starts_with('/') => {
            Place::World(id, path)
        }
        _ => Place::Host(Path::new(s)),
    }
}

/// `world cp`.
pub fn cp(engine: &Engine, out: &Out, src: &str, dst: &str) -> Result<()> {
    match (place(src), place(dst)) {
        (Place::Host(h), Place::World(id, dir)) => {
            if !h.exists() {
                return Err(Error::Invalid(format!("{} does not exist on the host", h.display())).into());
            }
            engine.world_copy_in(&world_id(id)?, h, dir)?;
        }
        (Place::World(id, path), Place::Host(h)) => {
            if !h.is_dir() {
                return Err(Error::Invalid(format!("{} is not a host directory", h.display())).into());
            }
            engine.world_copy_out(&world_id(id)?, path, h)?;
        }
        _ => {
            return Err(Error::Invalid(
                "world cp copies between the host and a world: `world cp SRC ID:/dir` or `world cp ID:/path DIR`".into(),
            )
            .into())
        }
    }
    out.emit(&json!({"ok": true, "src": src, "dst": dst}), || {})
}

/// `world destroy`.
pub fn destroy(via: &Via, out: &Out, ids: &[String]) -> Result<()> {
    let ids = ids
        .iter()
        .map(|i| world_id(i))
        .collect::<Result<Vec<_>, _>>()?;
    for id in &ids {
        match via {
            Via::Local(engine) => engine.world_destroy(id)?,
            Via::Daemon(d) => {
                d.call("DELETE", &format!("/v1/worlds/{}", enc(id.as_str())), None)?;
            }
        }
        if !out.json {
            outln!("destroyed {id}");
        }
    }
    if out.json {
        outln!(
            "{}",
            json!({"destroyed": ids.iter().map(|i| i.to_string()).collect::<Vec<_>>()})
        );
    }
    Ok(())
}

/// `world pause` (`paused`) and `world resume`: each world is frozen or
/// thawed in turn (one already in that state stays as it is); the first
/// refusal stops with its error.
pub fn pause(via: &Via, out: &Out, ids: &[String], paused: bool) -> Result<()> {
    let ids = ids
        .iter()
        .map(|i| world_id(i))
        .collect::<Result<Vec<_>, _>>()?;
    let verb = if paused { "pause" } else { "resume" };
    let mut done = Vec::new();
    for id in &ids {
        match via {
            Via::Local(engine) if paused => engine.world_pause(id)?,
            Via::Local(engine) => engine.world_resume(id)?,
            Via::Daemon(d) => {
                let path = format!("/v1/worlds/{}/{verb}", enc(id.as_str()));
                d.call("POST", &path, None)?;
            }
        }
        done.push(id.to_string());
        if !out.json {
            outln!("{verb}d {id}");
        }
    }
    if out.json {
        outln!("{}", json!({ format!("{verb}d"): done }));
    }
    Ok(())
}

/// `world image ...`.
pub fn image(engine: &Engine, out: &Out, cmd: ImageCmd) -> Result<()> {
    match cmd {
        ImageCmd::Import { name, src } => {
            let info = engine.image_import(&name, &src)?;
            out.emit(&info, || outln!("{name}"))
        }
        ImageCmd::List => {
            let images = engine.image_list()?;
            out.emit(&images, || {
                let rows: Vec<Vec<String>> = images
                    .iter()
                    .map(|i| vec![i.name.clone(), format!("{:?}", i.kind).to_lowercase()])
                    .collect();
                out!("{}", table(&["image", "kind"], &rows));
            })
        }
        ImageCmd::Rm { name } => {
            engine.image_rm(&name)?;
            out.emit(&json!({"removed": name}), || outln!("removed {name}"))
        }
    }
}
