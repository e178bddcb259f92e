//! `world bench clients`: the same work through the clients people use
//! (E2B's SDK, OpenSSH) and through our native HTTP API, interleaved in
//! one run against a running daemon (`world serve`, with `--ssh` for the
//! SSH row). The measuring runs in Python (`bench_clients.py`, with the
//! venv's `e2b`), so both sides pay the same client costs; ratios are to
//! the native row of the same work.

use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::output::Out;
use crate::output::{out, outln};

const SCRIPT: &str = include_str!("bench_clients.py");

#[derive(Debug, Deserialize)]
struct Rows {
    rows: Vec<RawRow>,
}

#[derive(Debug, Deserialize)]
struct RawRow {
    name: String,
    baseline: Option<String>,
    ms: Vec<f64>,
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs the measurement and prints the table (or `--json`).
pub fn run(out: &Out, n: usize, url: &str, ssh_port: Option<u16>, python: &str) -> Result<()> {
    let token = world_server::load_or_create_token(&crate::substrate_config().state_dir)?;
    let mut cmd = Command::new(python);
    cmd.arg("-c")
        .arg(SCRIPT)
        .arg(n.to_string())
        .env("WORLD_API_URL", url)
        .env("WORLD_API_TOKEN", &token)
        .env("NO_PROXY", "127.0.0.1,localhost");
    if let Some(p) = ssh_port {
        cmd.env("WORLD_SSH_PORT", p.to_string());
    }
    eprintln!("bench clients: {n} samples per row against {url} (a minute or so)");
    let o = cmd.output().with_context(|| {
        format!("cannot run {python} (install the venv: scripts/install-deps.sh)")
    })?;
    if !o.status.success() {
        bail!(
            "the measuring script failed (is `world serve` running at {url}?): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    let rows: Rows = serde_json::from_slice(&o.stdout).context("the script's output")?;
    let p50 = |name: &str| {
        rows.rows
            .iter()
            .find(|r| r.name == name)
            .map(|r| pct(&r.ms, 0.5))
    };
    let table: Vec<serde_json::Value> = rows
        .rows
        .iter()
        .map(|r| {
            let (a, b) = (pct(&r.ms, 0.5), pct(&r.ms, 0.9));
            let ratio = r.baseline.as_deref().and_then(p50).map(|base| a / base);
            serde_json::json!({"name": r.name, "n": r.ms.len(), "p50_ms": a, "p90_ms": b,
                "baseline": r.baseline, "ratio_p50": ratio})
        })
        .collect();
    out.emit(&table, || {
        outln!(
            "{:<36} {:>4} {:>10} {:>10} {:>8}",
            "row",
            "n",
            "p50 ms",
            "p90 ms",
            "ratio"
        );
        for r in &table {
            let ratio = r["ratio_p50"]
                .as_f64()
                .map_or("-".to_string(), |x| format!("{x:.2}x"));
            out!(
                "{:<36} {:>4} {:>10.2} {:>10.2} {:>8}\n",
                r["name"].as_str().unwrap_or(""),
                r["n"],
                r["p50_ms"].as_f64().unwrap_or(0.0),
                r["p90_ms"].as_f64().unwrap_or(0.0),
                ratio
            );
        }
    })
}
