//! # world-server: the WorldRuntime HTTP/JSON daemon
//!
//! `world serve` runs [`serve`]: an axum server on a loopback TCP address
//! and on a Unix socket, over one [`world_engine::Engine`]. Every request
//! needs `Authorization: Bearer <token>`; the token is generated at first
//! start into `<state_dir>/api-token` (mode 0600) and printed by
//! `world token` ([`load_or_create_token`]).
//!
//! Three API surfaces share the engine (see `docs/api.md`):
//! * `/v1/...`: WorldRuntime's own API (worlds, exec, run-code, snapshots,
//!   branches, verses, records) and the original design's
//!   `/v1/sandboxes` endpoints;
//! * `/api/...`: the subset of the Morph Cloud REST API that the
//!   `morphcloud` Python SDK uses (instance = world);
//! * `/openapi.json`: the OpenAPI document of all of it.
//!
//! Errors are JSON `{"error_code", "detail", "status"}` with stable codes
//! (see [`ApiError`]). The engine is synchronous: handlers run it with
//! `spawn_blocking`, and calls that open the DuckDB file are serialised
//! inside the process (DuckDB allows one writer instance per file).
//!
//! At start the daemon runs the engine's repair (half-made branches go,
//! dead worlds are marked lost), then serves every world and snapshot
//! that still exists; a background task enforces Morph TTLs.
#![deny(missing_docs)]

mod auth;
mod config;
pub mod e2b;
mod error;
mod extract;
mod meta;
mod openapi;
mod reaper;
mod routes;
pub mod ssh;
mod state;
mod token;

use std::sync::Arc;

pub use config::ServerConfig;
pub use error::{ApiError, Error};
pub use token::{load_or_create_token, token_path};

use std::future::IntoFuture;

use tokio::net::{TcpListener, UnixListener};

/// Builds the complete router (all routes, auth, error mapping) over a
/// prepared engine; [`serve`] uses it, tests may drive it directly.
pub fn router(config: &ServerConfig) -> Result<axum::Router, Error> {
    let state = state::AppState::new(config)?;
    Ok(routes::router(Arc::new(state)))
}

/// Runs the daemon until SIGINT or SIGTERM, then stops accepting, lets
/// running requests finish and returns. Worlds keep running: the next
/// start serves them again.
///
/// Prints `world-serve listening on http://ADDR` (and the Unix socket) on
/// stdout once it accepts connections.
pub async fn serve(config: ServerConfig) -> Result<(), Error> {
    let state = Arc::new(state::AppState::new(&config)?);
    // Recover: repair what a crash left, forget metadata of vanished worlds.
    state.recover().await;
    let app = routes::router(state.clone());
    let tcp = TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::Io(format!("bind {}", config.listen), e))?;
    let addr = tcp
        .local_addr()
        .map_err(|e| Error::Io("local_addr".into(), e))?;
    state.set_public_url(format!("http://{addr}"));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let reaper = tokio::spawn(reaper::run(state.clone(), stop_rx.clone()));
    let mut servers = Vec::new();
    let mut rx = stop_rx.clone();
    // No Nagle: a stream's small frames (a command's start event, then its
    // output) would otherwise wait for the client's delayed ACK, 40 ms.
    let tcp = axum::serve::ListenerExt::tap_io(tcp, |s: &mut tokio::net::TcpStream| {
        let _ = s.set_nodelay(true);
    });
    servers.push(tokio::spawn(
        axum::serve(tcp, app.clone())
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .into_future(),
    ));
    if let Some(path) = &config.unix_socket {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Io(format!("create {}", dir.display()), e))?;
        }
        let unix = bind_private(path)?;
        let mut rx = stop_rx.clone();
        servers.push(tokio::spawn(
            axum::serve(unix, app.clone())
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .into_future(),
        ));
        println!("world-serve listening on unix:{}", path.display());
    }
    if let Some(ssh_addr) = config.ssh_listen {
        let key = ssh::load_or_create_host_key(&config.substrate.state_dir)?;
        let l = TcpListener::bind(ssh_addr)
            .await
            .map_err(|e| Error::Io(format!("bind ssh {ssh_addr}"), e))?;
        let bound = l
            .local_addr()
            .map_err(|e| Error::Io("local_addr".into(), e))?;
        let st = state.clone();
        let rx = stop_rx.clone();
        servers.push(tokio::spawn(ssh::serve(st, l, key, rx)));
        println!("world-serve listening on ssh://{bound}");
    }
    println!("world-serve listening on http://{addr}");
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    for s in servers {
        match s.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Io("serve".into(), e)),
            Err(e) => return Err(Error::Io("serve task".into(), std::io::Error::other(e))),
        }
    }
    let _ = reaper.await;
    if let Some(path) = &config.unix_socket {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Runs [`serve`] on a fresh multi-threaded tokio runtime: the entry point
/// for a synchronous `main` (the `world serve` subcommand).
pub fn serve_blocking(config: ServerConfig) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(256)
        .build()
        .map_err(|e| Error::Io("tokio runtime".into(), e))?;
    rt.block_on(serve(config))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Binds the API's Unix socket at `path` so that only the daemon's user
/// can ever connect: it is bound inside a fresh 0700 directory beside
/// `path`, made 0600 there, and only then renamed into place (a socket
/// bound at `path` directly would be open to everyone between `bind` and
/// `chmod`).
fn bind_private(path: &std::path::Path) -> Result<UnixListener, Error> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let io = |what: &str, p: &std::path::Path| {
        let what = format!("{what} {}", p.display());
        move |e| Error::Io(what, e)
    };
    let dir = path.with_extension(format!("bind.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(io("create", &dir))?;
    let tmp = dir.join("api.sock");
    let bound = (|| {
        let unix = UnixListener::bind(&tmp).map_err(io("bind", &tmp))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .map_err(io("chmod", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io("move the socket to", path))?;
        Ok(unix)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    bound
}
