//! `world-serve`: the daemon as a program of its own (the `world serve`
//! subcommand calls the same [`world_server::serve_blocking`]).
//!
//! ```text
//! world-serve [--listen 127.0.0.1:7077] [--ssh 127.0.0.1:PORT] [--socket PATH | --no-socket] [--db PATH] [--log-requests]
//! world-serve token          # print the token (created if missing)
//! ```
//! `WORLD_STATE_DIR`, `WORLD_RUN_DIR` and `WORLD_DB` override the
//! defaults, as for `world`. Like `world`, this binary is also the world
//! supervisor: `argv[1] == __world-supervisor` hands over to the substrate
//! before anything else runs.

use std::path::PathBuf;

fn main() {
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if raw
        .get(1)
        .is_some_and(|a| a == world_substrate::SUPERVISOR_ARG)
    {
        world_substrate::supervisor_main(&raw[2..]);
    }
    let args: Vec<String> = raw
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut sub = world_substrate::SubstrateConfig::system_default();
    if let Err(e) = sub.apply_env() {
        eprintln!("world-serve: {e}");
        std::process::exit(2);
    }
    let mut db: Option<PathBuf> = None;
    let mut listen = None;
    let mut ssh = None;
    let mut socket: Option<Option<PathBuf>> = None;
    let mut token = false;
    let mut log_requests = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| -> String {
            it.next()
                .cloned()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match a.as_str() {
            "token" => token = true,
            "--db" => db = Some(val("--db").into()),
            "--listen" => listen = Some(val("--listen")),
            "--ssh" => ssh = Some(val("--ssh")),
            "--socket" => socket = Some(Some(val("--socket").into())),
            "--no-socket" => socket = Some(None),
            "--log-requests" => log_requests = true,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if token {
        match world_server::load_or_create_token(&sub.state_dir) {
            Ok(t) => {
                println!("{t}");
                return;
            }
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    }
    let db = db.unwrap_or_else(|| world_store::path::resolve_db_path(None));
    let mut cfg = world_server::ServerConfig::new(db, sub);
    if let Some(l) = listen {
        cfg.listen = l.parse().unwrap_or_else(|_| {
            usage(&format!(
                "--listen {l:?} is not an address like 127.0.0.1:7077"
            ))
        });
        if !cfg.listen.ip().is_loopback() {
            usage("--listen must be a loopback address");
        }
    }
    if let Some(s) = ssh {
        let a: std::net::SocketAddr = s.parse().unwrap_or_else(|_| {
            usage(&format!(
                "--ssh {s:?} is not an address like 127.0.0.1:2222"
            ))
        });
        if !a.ip().is_loopback() {
            usage("--ssh must be a loopback address");
        }
        cfg.ssh_listen = Some(a);
    }
    if let Some(s) = socket {
        cfg.unix_socket = s;
    }
    cfg.log_requests = log_requests;
    if let Err(e) = world_server::serve_blocking(cfg) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("error: {msg}");
    }
    eprintln!("usage: world-serve [--listen ADDR] [--ssh ADDR] [--socket PATH | --no-socket] [--db PATH] [--log-requests]\n       world-serve token");
    std::process::exit(2);
}
