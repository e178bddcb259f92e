//! `world create | list | inspect | exec | cp | destroy | image`.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use world_engine::world::world_id;
use world_engine::{Engine, Error};
use world_substrate::{CreateOptions, ExecRequest, ExecStdio, Limits, WorldInfo};

use crate::args::{CreateArgs, ExecArgs, ImageCmd};
use crate::output::{opt, table, Out};

/// `world create`.
pub fn create(engine: &Engine, out: &Out, a: CreateArgs) -> Result<()> {
    let opts = CreateOptions {
        id: a.id.as_deref().map(world_id).transpose()?,
        image: Some(a.image.clone()),
        limits: Limits {
            vcpu_count: a.vcpus,
            mem_size_mib: a.memory,
            pids_max: a.pids,
            disk_mib: (a.disk > 0).then_some(a.disk),
        },
    };
    let c = engine.world_create(&opts)?;
    for w in &c.warnings {
        eprintln!("warning: {w}");
    }
    out.emit(&c, || println!("{}", c.id))
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
pub fn list(engine: &Engine, out: &Out) -> Result<()> {
    let worlds = engine.world_list()?;
    out.emit(&worlds, || {
        let rows: Vec<_> = worlds.iter().map(info_row).collect();
        print!("{}", table(&INFO_HEADERS, &rows));
    })
}

/// `world inspect`.
pub fn inspect(engine: &Engine, out: &Out, id: &str) -> Result<()> {
    let w = engine.world_inspect(&world_id(id)?)?;
    out.emit(&w, || {
        print!("{}", table(&INFO_HEADERS, &[info_row(&w)]));
        for warn in &w.warnings {
            println!("warning: {warn}");
        }
    })
}

/// `world exec`: returns the exit code to leave with.
pub fn exec(engine: &Engine, a: ExecArgs) -> Result<i32> {
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
    if let Some(t) = a.timeout {
        if !(t.is_finite() && t > 0.0) {
            return Err(Error::Invalid(format!(
                "--timeout {t} must be a positive number of seconds"
            ))
            .into());
        }
        req.timeout = Some(Duration::from_secs_f64(t));
    }
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let stdio = ExecStdio {
        stdin: Some(stdin.as_fd()),
        stdout: Some(stdout.as_fd()),
        stderr: Some(stderr.as_fd()),
    };
    let status = engine.world_exec(&id, &req, stdio)?;
    if status.timed_out {
        eprintln!(
            "world exec: timed out after {:?}; the command and everything it started were killed",
            req.timeout.unwrap_or_default()
        );
        return Ok(124);
    }
    Ok(match status.signal {
        Some(sig) => 128 + sig,
        None => status.exit_code,
    })
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
pub fn destroy(engine: &Engine, out: &Out, ids: &[String]) -> Result<()> {
    let ids = ids
        .iter()
        .map(|i| world_id(i))
        .collect::<Result<Vec<_>, _>>()?;
    for id in &ids {
        engine.world_destroy(id)?;
        if !out.json {
            println!("destroyed {id}");
        }
    }
    if out.json {
        println!(
            "{}",
            json!({"destroyed": ids.iter().map(|i| i.to_string()).collect::<Vec<_>>()})
        );
    }
    Ok(())
}

/// `world image ...`.
pub fn image(engine: &Engine, out: &Out, cmd: ImageCmd) -> Result<()> {
    match cmd {
        ImageCmd::Import { name, src } => {
            let info = engine.image_import(&name, &src)?;
            out.emit(&info, || println!("{name}"))
        }
        ImageCmd::List => {
            let images = engine.image_list()?;
            out.emit(&images, || {
                let rows: Vec<Vec<String>> = images
                    .iter()
                    .map(|i| vec![i.name.clone(), format!("{:?}", i.kind).to_lowercase()])
                    .collect();
                print!("{}", table(&["image", "kind"], &rows));
            })
        }
        ImageCmd::Rm { name } => {
            engine.image_rm(&name)?;
            out.emit(&json!({"removed": name}), || println!("removed {name}"))
        }
    }
}
