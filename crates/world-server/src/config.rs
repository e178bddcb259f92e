//! The daemon's configuration: where the database and worlds live, where
//! it listens.

use std::net::SocketAddr;
use std::path::PathBuf;

use world_substrate::SubstrateConfig;

/// Default TCP address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7077";

/// Everything [`crate::serve`] needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The DuckDB file.
    pub db: PathBuf,
    /// The world substrate (state and run directories, supervisor command).
    pub substrate: SubstrateConfig,
    /// TCP address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Unix socket to listen on as well (`None`: TCP only).
    pub unix_socket: Option<PathBuf>,
    /// TCP address of the SSH door (`None`: no SSH; port 0 picks one).
    pub ssh_listen: Option<SocketAddr>,
    /// Largest accepted request body, bytes.
    pub body_limit: usize,
    /// Print one line per request on stderr (method, path, status, time).
    pub log_requests: bool,
}

impl ServerConfig {
    /// Defaults over a database and a substrate: `127.0.0.1:7077` and
    /// `<run_dir>/api.sock`.
    pub fn new(db: PathBuf, substrate: SubstrateConfig) -> Self {
        let unix_socket = Some(substrate.run_dir.join("api.sock"));
        ServerConfig {
            db,
            substrate,
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            unix_socket,
            ssh_listen: None,
            body_limit: 4 << 20,
            log_requests: false,
        }
    }
}
