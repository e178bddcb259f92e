//! The daemon's SSH front door (`world serve --ssh ADDR`): OpenSSH's
//! `ssh`, `scp` and `sftp`, and the `morphcloud` SDK's `instance.ssh()`,
//! `upload` and `download`, into a world.
//!
//! * Login: `WORLD_ID` with the API token as password, or `WORLD_ID:TOKEN`
//!   with any key or none (Morph's convention) — see [`login`]. A wrong
//!   token is refused as any SSH server refuses a login; a right token for
//!   a world that does not exist gets an error on stderr and exit status
//!   255 when it asks for a program.
//! * Programs: `exec` runs `sh -c LINE`, `shell` a login shell, both with
//!   or without a pty; the `sftp` subsystem runs the world's own
//!   `sftp-server` ([`program`]). Everything runs through the engine's
//!   exec, inside the world, under its limits and seccomp policy: the SSH
//!   door adds no way for a world to reach the host. Port forwarding, agent
//!   and X11 forwarding are refused.
//! * The host key is an Ed25519 key made at first start,
//!   `<state_dir>/server/ssh_host_ed25519_key` (mode 0600).
//!
//! The door holds no state of its own beyond one connection: what a
//! channel runs is decided by [`channel`] from the client's requests.

pub mod channel;
pub mod login;
pub mod program;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::LineEnding;
use russh::keys::PrivateKey;
use russh::server::{Auth, Msg, Session};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use world_substrate::WorldId;

use self::login::Login;
use crate::state::AppState;
use crate::Error;

/// Where the host key lives.
pub fn host_key_path(state_dir: &Path) -> PathBuf {
    state_dir.join("server").join("ssh_host_ed25519_key")
}

/// Loads the host key, making it on first use (mode 0600, written to a
/// temporary file and renamed, so a crash never leaves half a key).
pub fn load_or_create_host_key(state_dir: &Path) -> Result<PrivateKey, Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = host_key_path(state_dir);
    let io = |what: &str, p: &Path| {
        let what = format!("{what} {}", p.display());
        move |e| Error::Io(what, e)
    };
    match std::fs::read_to_string(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        // Never replace a key that is there but unreadable.
        Err(e) => {
            return Err(Error::Io(
                format!("read the SSH host key {}", path.display()),
                e,
            ))
        }
        Ok(text) => {
            return PrivateKey::from_openssh(&text).map_err(|e| {
                Error::Io(
                    format!("read the SSH host key {}", path.display()),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
                )
            })
        }
    }
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))
        .map_err(io("read", Path::new("/dev/urandom")))?;
    let key = PrivateKey::new(
        KeypairData::Ed25519(Ed25519Keypair::from_seed(&seed)),
        "world-serve host key",
    )
    .map_err(|e| {
        Error::Io(
            "make the SSH host key".into(),
            std::io::Error::other(e.to_string()),
        )
    })?;
    let text = key.to_openssh(LineEnding::LF).map_err(|e| {
        Error::Io(
            "encode the SSH host key".into(),
            std::io::Error::other(e.to_string()),
        )
    })?;
    let dir = path.parent().unwrap_or(state_dir);
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(io("write", &tmp))?;
    // Linked, not renamed: a key another daemon made meanwhile stays, and
    // that one is used.
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            load_or_create_host_key(state_dir)
        }
        Err(e) => Err(Error::Io(format!("create {}", path.display()), e)),
    }
}

/// Serves SSH on `listener` until `stop` turns true.
pub async fn serve(
    st: Arc<AppState>,
    listener: tokio::net::TcpListener,
    key: PrivateKey,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    use russh::server::Server as _;
    let mut methods = MethodSet::empty();
    methods.push(MethodKind::Password);
    methods.push(MethodKind::PublicKey);
    let config = Arc::new(russh::server::Config {
        server_id: russh::SshId::Standard("SSH-2.0-WorldRuntime".into()),
        methods,
        keys: vec![key],
        auth_rejection_time: Duration::from_millis(300),
        // OpenSSH probes with "none" first: answer that at once.
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 3,
        nodelay: true,
        max_auth_attempts: 6,
        ..Default::default()
    });
    let mut server = Door { st };
    let running = server.run_on_socket(config, &listener);
    let handle = running.handle();
    tokio::select! {
        r = running => r,
        _ = stop.wait_for(|s| *s) => {
            handle.shutdown("the daemon is stopping".into());
            Ok(())
        }
    }
}

struct Door {
    st: Arc<AppState>,
}

impl russh::server::Server for Door {
    type Handler = Conn;
    fn new_client(&mut self, _peer: Option<SocketAddr>) -> Conn {
        Conn {
            st: self.st.clone(),
            world: None,
        }
    }
}

/// One connection: which world it logged in to.
struct Conn {
    st: Arc<AppState>,
    /// After a successful login: the world, or why the name is not one.
    world: Option<Result<WorldId, String>>,
}

impl Conn {
    fn accept(&mut self, l: &Login) -> Auth {
        self.world = Some(world_engine::world::world_id(&l.world).map_err(|e| e.to_string()));
        Auth::Accept
    }

    fn reject() -> Auth {
        let mut m = MethodSet::empty();
        m.push(MethodKind::Password);
        m.push(MethodKind::PublicKey);
        Auth::Reject {
            proceed_with_methods: Some(m),
            partial_success: false,
        }
    }
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_none(&mut self, user: &str) -> Result<Auth, Self::Error> {
        Ok(match Login::parse(user) {
            Some(l) if l.token_in_name(&self.st.token) => self.accept(&l),
            _ => Self::reject(),
        })
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        Ok(match Login::parse(user) {
            Some(l) if l.password_ok(password, &self.st.token) => self.accept(&l),
            _ => Self::reject(),
        })
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        _offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(match Login::parse(user) {
            Some(l) if l.token_in_name(&self.st.token) => Auth::Accept,
            _ => Self::reject(),
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        _key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(match Login::parse(user) {
            Some(l) if l.token_in_name(&self.st.token) => self.accept(&l),
            _ => Self::reject(),
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(world) = self.world.clone() else {
            return Ok(()); // dropping `reply` refuses the channel
        };
        reply.accept().await;
        tokio::spawn(channel::run(self.st.clone(), world, channel));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _cols: u32,
        _rows: u32,
        _pw: u32,
        _ph: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if program::accepted_env(name, value) {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if program::Program::subsystem(name).is_some() {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }
}
