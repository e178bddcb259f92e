//! `world`: the command-line edge of WorldRuntime.
//!
//! Parses arguments, calls the engine, prints a table (or JSON with
//! `--json`), and maps failures to stable exit codes:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | internal error (I/O, database, kernel) |
//! | 2 | bad usage (unknown flag, missing argument) |
//! | 3 | refused: the request breaks a rule (insufficient balance, evaporated verse, bad limits, ...) |
//! | 4 | not found (verse, partition, world, image) |
//! | 5 | busy: the database is held by another process for too long |
//!
//! `world exec` exits with the command's own exit code (128 + N when a
//! signal N killed it, 124 on `--timeout`, 127 when the command is not
//! found in the world, 126 when it is not executable); its own failures
//! use the codes above.
//!
//! When a daemon (`world serve`) serving the same database is running, the
//! commands it has endpoints for are sent to it over its Unix socket and
//! print the same output with the same exit codes; without one they run
//! in-process. `--no-daemon` (`WORLD_NO_DAEMON=1`) forces in-process,
//! `--daemon` (`WORLD_DAEMON=1`) fails when no daemon answers (see
//! [`remote`]).
//!
//! The same binary is the world supervisor: when `argv[1]` is
//! `world_substrate::SUPERVISOR_ARG` it hands over to the substrate before
//! anything else runs (no threads exist yet, as forking requires).

mod args;
mod cmd_bench;
mod cmd_bench_clients;
mod cmd_branch;
mod cmd_demo;
mod cmd_demo_worlds;
mod cmd_doctor;
mod cmd_multiverse;
mod cmd_records;
mod cmd_verse;
mod cmd_world;
mod output;
mod remote;

use world_engine::{Engine, ErrorKind, StoreMode};
use world_substrate::SubstrateConfig;

use crate::args::{Cli, Command};
use crate::output::outln;
use crate::remote::Via;

fn main() {
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if raw
        .get(1)
        .is_some_and(|a| a == world_substrate::SUPERVISOR_ARG)
    {
        world_substrate::supervisor_main(&raw[2..]);
    }
    let cli = parse_args(&raw);
    let db = world_store::path::resolve_db_path(cli.db.clone());
    let mut engine = Engine::new(db).with_substrate(substrate_config());
    if matches!(cli.command, Command::Bench(_) | Command::Demo(_)) {
        // Long runs of many operations keep the database open between them
        // (and hand it back when idle): see world_engine::lease.
        let spool = world_store::SpoolOptions::from_env().unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2);
        });
        engine = engine
            .with_spool_options(spool)
            .with_store_mode(StoreMode::held());
    }
    let makes_worlds = cli.command.makes_worlds();
    let out = output::Out { json: cli.json };
    let daemon = if cli.command.has_endpoint() {
        match find_daemon(&cli, engine.db_path()) {
            Ok(d) => d,
            Err(e) => std::process::exit(report(&e.into())),
        }
    } else {
        None
    };
    let via = match &daemon {
        Some(d) => Via::Daemon(d),
        None => Via::Local(&engine),
    };
    let result = match cli.command {
        Command::Create(a) => cmd_world::create(&via, &out, a),
        Command::List => cmd_world::list(&via, &out),
        Command::Inspect { id } => cmd_world::inspect(&via, &out, &id),
        Command::Exec(a) => match cmd_world::exec(&engine, daemon.as_ref(), a) {
            Ok(code) => std::process::exit(code),
            Err(e) => Err(e),
        },
        Command::Cp { src, dst } => cmd_world::cp(&engine, &out, &src, &dst),
        Command::Destroy { ids } => cmd_world::destroy(&via, &out, &ids),
        Command::Pause { ids } => cmd_world::pause(&via, &out, &ids, true),
        Command::Resume { ids } => cmd_world::pause(&via, &out, &ids, false),
        Command::Image(cmd) => cmd_world::image(&engine, &out, cmd),
        Command::RunCode(a) => match cmd_branch::run_code(&via, &out, a) {
            Ok(code) => std::process::exit(code),
            Err(e) => Err(e),
        },
        Command::Snapshot { id, name } => cmd_branch::snapshot(&via, &out, &id, name.as_deref()),
        Command::Snapshots { cmd } => cmd_branch::snapshots(&via, &out, cmd),
        Command::Branch(a) => cmd_branch::branch(&via, &out, a),
        Command::Service(cmd) => cmd_branch::service(&engine, &out, cmd),
        Command::Repair => cmd_branch::repair(&engine, &out),
        Command::Pool { target, size, wait } => {
            cmd_branch::pool(&engine, &out, &target, size.map(|n| n as usize), wait)
        }
        Command::Spares { drop } => cmd_branch::spares(&engine, &out, drop),
        Command::PushDown {
            world,
            children,
            allow_nonconserving,
        } => cmd_multiverse::push_down(&via, &out, &world, &children, allow_nonconserving),
        Command::RunVerses(a) => match cmd_multiverse::run_verses(&via, &out, a) {
            Ok(code) => std::process::exit(code),
            Err(e) => Err(e),
        },
        Command::PullUp(a) => cmd_multiverse::pull_up(&via, &out, a),
        Command::Verse(cmd) => cmd_verse::run(&engine, &out, cmd),
        Command::Entities(a) => cmd_records::entities(&via, &out, a),
        Command::Branches(a) => cmd_records::branches(&via, &out, a),
        Command::Resolutions(a) => cmd_records::resolutions(&via, &out, a),
        Command::Metrics => cmd_records::metrics(&via, &out),
        Command::Db => cmd_records::db_info(&engine, &out),
        Command::Bench(cmd) => cmd_bench::run(&engine, &out, cmd),
        Command::Serve {
            listen,
            ssh,
            socket,
            no_socket,
            log_requests,
        } => serve(
            engine.db_path(),
            &listen,
            ssh.as_deref(),
            socket,
            no_socket,
            log_requests,
        ),
        Command::Token => world_server::load_or_create_token(&substrate_config().state_dir)
            .map(|t| outln!("{t}"))
            .map_err(anyhow::Error::from),
        Command::Doctor => {
            match cmd_doctor::run(&out, engine.db_path(), &daemon_socket(engine.db_path())) {
                Ok(code) => {
                    drop(engine);
                    std::process::exit(code)
                }
                Err(e) => Err(e),
            }
        }
        Command::Demo(a) => match a.scenario {
            args::Scenario::Wev => cmd_demo_worlds::wev(&engine, &out, a),
            args::Scenario::Chromatic => cmd_demo_worlds::chromatic(&engine, &out, a),
            args::Scenario::Ledger => cmd_demo::ledger(&engine, &out, a),
        },
    };
    // Close the database cleanly before exiting.
    drop(engine);
    if let Err(err) = result {
        let code = report(&err);
        if makes_worlds && code == 1 {
            eprintln!("hint: `world doctor` checks what worlds need on this host");
        }
        std::process::exit(code);
    }
    if output::stdout_failed() {
        std::process::exit(1);
    }
}

/// Parses the command line. `--version` (`-V`) also names the DuckDB
/// library this binary runs, which is only asked for then (it opens an
/// in-memory database).
fn parse_args(raw: &[std::ffi::OsString]) -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let mut cmd = Cli::command();
    let wants_version = raw
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--version" || a == "-V");
    if wants_version {
        let duckdb =
            world_store::storage::library_version().unwrap_or_else(|e| format!("unavailable: {e}"));
        let v = format!("{} (DuckDB {duckdb})", env!("CARGO_PKG_VERSION"));
        cmd = cmd.version(&*v.leak());
    }
    let matches = cmd.get_matches_from(raw);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// `world serve`: runs the daemon until SIGTERM or SIGINT.
fn serve(
    db: &std::path::Path,
    listen: &str,
    ssh: Option<&str>,
    socket: Option<std::path::PathBuf>,
    no_socket: bool,
    log_requests: bool,
) -> anyhow::Result<()> {
    let mut cfg = world_server::ServerConfig::new(db.to_path_buf(), substrate_config());
    cfg.log_requests = log_requests;
    cfg.listen = listen.parse().map_err(|_| {
        world_engine::Error::Invalid(format!(
            "--listen {listen:?} is not an address like 127.0.0.1:7077"
        ))
    })?;
    if let Some(s) = ssh {
        let a: std::net::SocketAddr = s.parse().map_err(|_| {
            world_engine::Error::Invalid(format!(
                "--ssh {s:?} is not an address like 127.0.0.1:2222"
            ))
        })?;
        if !a.ip().is_loopback() {
            return Err(world_engine::Error::Invalid(format!(
                "--ssh {s}: the SSH door listens on loopback only"
            ))
            .into());
        }
        cfg.ssh_listen = Some(a);
    }
    if no_socket {
        cfg.unix_socket = None;
    } else if let Some(s) = socket {
        cfg.unix_socket = Some(s);
    }
    world_server::serve_blocking(cfg).map_err(anyhow::Error::from)
}

/// The daemon to send the command to, if one serves `db` (following
/// `--daemon` / `--no-daemon`). Its socket is where `world serve` binds by
/// default: `<run_dir>/api.sock`.
fn find_daemon(cli: &Cli, db: &std::path::Path) -> Result<Option<remote::Daemon>, remote::Error> {
    let mode = if cli.no_daemon {
        remote::Mode::Off
    } else if cli.daemon {
        remote::Mode::Required
    } else {
        remote::Mode::Auto
    };
    let sub = substrate_config();
    remote::find(mode, &daemon_socket(db), &sub.state_dir, db)
}

/// Where `world serve` for `db` binds its Unix socket by default.
fn daemon_socket(db: &std::path::Path) -> std::path::PathBuf {
    let sub = substrate_config();
    world_server::ServerConfig::new(db.to_path_buf(), sub.clone())
        .unix_socket
        .unwrap_or_else(|| sub.run_dir.join("api.sock"))
}

/// Where worlds live: the system defaults with the environment's
/// overrides (`WORLD_STATE_DIR`, `WORLD_RUN_DIR`, `WORLD_POOL_MAX`; see
/// [`SubstrateConfig::apply_env`]).
fn substrate_config() -> SubstrateConfig {
    let mut cfg = SubstrateConfig::system_default();
    if let Err(e) = cfg.apply_env() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    cfg
}

/// Prints the whole error chain and returns the exit code for it.
fn report(err: &anyhow::Error) -> i32 {
    let mut msg = format!("error: {err}");
    for cause in err.chain().skip(1) {
        msg.push_str(&format!("\n  caused by: {cause}"));
    }
    eprintln!("{msg}");
    if let Some(e) = err.downcast_ref::<remote::Error>() {
        return e.exit_code();
    }
    match err.downcast_ref::<world_engine::Error>().map(|e| e.kind()) {
        Some(ErrorKind::Refused) => 3,
        Some(ErrorKind::NotFound) => 4,
        Some(ErrorKind::Busy) => 5,
        Some(ErrorKind::CommandNotFound) => 127,
        Some(ErrorKind::NotExecutable) => 126,
        Some(ErrorKind::Internal) | None => 1,
    }
}
