//! Runs the Python SDK's tests (`python/tests`: the sync and asyncio
//! SDK, the original design's example, and the real `morphcloud` SDK,
//! its SSH calls included, and the real `e2b` SDK)
//! against a daemon in temporary directories. Needs root and the venv's
//! pytest (`scripts/requirements-dev.txt`); skips with a message
//! otherwise.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Daemon;

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("WORLD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/world-runtime/venv/bin/python3"));
    let ok = Command::new(&p)
        .args(["-c", "import pytest"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(p)
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn python_sdk_and_morph_sdk_tests_pass() {
    let Some(py) = python() else {
        eprintln!(
            "skipping: no Python with pytest (install scripts/requirements-dev.txt into the venv)"
        );
        return;
    };
    let Some(d) = Daemon::start() else { return };
    // The package's directory at run time (a binary built from another
    // clone sharing the target directory keeps that clone's path in `env!`).
    let dir = PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
    )
    .join("../../python");
    let mut cmd = Command::new(py);
    cmd.args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
        .current_dir(&dir)
        .env("WORLD_API_URL", format!("http://{}", d.addr))
        .env("WORLD_API_TOKEN", &d.token)
        .env("E2B_API_URL", format!("http://{}", d.addr))
        .env("E2B_SANDBOX_URL", format!("http://{}", d.addr))
        .env("E2B_API_KEY", &d.token)
        .env(
            "WORLD_SSH_PORT",
            d.ssh_addr.rsplit(':').next().unwrap_or_default(),
        )
        .env("PYTHONPATH", &dir)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env_remove("MORPH_API_KEY")
        .env_remove("MORPH_BASE_URL")
        .env_remove("E2B_DOMAIN")
        .env_remove("E2B_ACCESS_TOKEN");
    if let Ok(k) = std::env::var("PYTEST_K") {
        cmd.args(["-k", &k]);
    }
    let st = cmd.status().unwrap();
    assert!(st.success(), "python tests failed: {st:?}");
}
