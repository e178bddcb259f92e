//! `world`: the command-line edge of WorldRuntime.
//!
//! Parses arguments, calls the engine, prints a table (or JSON with
//! `--json`), and maps failures to stable exit codes:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | internal error (I/O, database) |
//! | 2 | bad usage (unknown flag, missing argument) |
//! | 3 | refused: the request breaks a rule (insufficient balance, evaporated verse, ...) |
//! | 4 | not found |
//! | 5 | busy: the database is held by another process for too long |

mod args;
mod cmd_bench;
mod cmd_demo;
mod cmd_records;
mod cmd_verse;
mod output;

use clap::Parser;
use world_engine::{Engine, ErrorKind};

use crate::args::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let db = world_store::path::resolve_db_path(cli.db.clone());
    let engine = Engine::new(db);
    let out = output::Out { json: cli.json };
    let result = match cli.command {
        Command::Verse(cmd) => cmd_verse::run(&engine, &out, cmd),
        Command::Entities(a) => cmd_records::entities(&engine, &out, a),
        Command::Branches(a) => cmd_records::branches(&engine, &out, a),
        Command::Resolutions(a) => cmd_records::resolutions(&engine, &out, a),
        Command::Metrics => cmd_records::metrics(&engine, &out),
        Command::Db => cmd_records::db_info(&engine, &out),
        Command::Bench(cmd) => cmd_bench::run(&out, cmd),
        Command::Demo(a) => cmd_demo::run(&engine, &out, a),
    };
    if let Err(err) = result {
        std::process::exit(report(&err));
    }
}

/// Prints the whole error chain and returns the exit code for it.
fn report(err: &anyhow::Error) -> i32 {
    let mut msg = format!("error: {err}");
    for cause in err.chain().skip(1) {
        msg.push_str(&format!("\n  caused by: {cause}"));
    }
    eprintln!("{msg}");
    match err.downcast_ref::<world_engine::Error>().map(|e| e.kind()) {
        Some(ErrorKind::Refused) => 3,
        Some(ErrorKind::NotFound) => 4,
        Some(ErrorKind::Busy) => 5,
        Some(ErrorKind::Internal) | None => 1,
    }
}
