//! The Linux backend: [`LinuxSubstrate`] owns world records and lifecycle
//! (create, list, inspect, destroy, images) on the host side; the namespace
//! work happens in the supervisor processes it starts. Exec and copy
//! clients are in `client`.

mod client;
pub(crate) mod job;
pub(crate) mod lineage;
pub use lineage::PoolState;
pub mod record;
pub(crate) mod spare;
pub use spare::SpareCount;

use std::fs;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cgroup::WorldCgroup;
use crate::config::{SubstrateConfig, UID_COUNT};
use crate::error::{Error, Result, WorldError};
use crate::image::{self, ImageInfo, HOST_IMAGE};
use crate::storage::{self, Layout};
use crate::supervisor::LaunchSpec;
use crate::types::{CreateOptions, Created, WorldId, WorldInfo, WorldState};
use crate::{btrfs, sys, ExecOutput, ExecRequest, ExecStatus, ExecStdio, Substrate};
use record::WorldRecord;
use world_core::lifecycle::Event;

/// Worlds on this Linux host.
#[derive(Debug, Clone)]
pub struct LinuxSubstrate {
    cfg: SubstrateConfig,
    layout: Layout,
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl LinuxSubstrate {
    /// A substrate using `cfg`. Nothing is touched until first use.
    pub fn new(cfg: SubstrateConfig) -> Self {
        let layout = Layout::new(&cfg);
        LinuxSubstrate { cfg, layout }
    }

    /// The configuration.
    pub fn config(&self) -> &SubstrateConfig {
        &self.cfg
    }

    /// How long a command or a cell of code may run: the caller's
    /// `timeout` (at most [`crate::config::MAX_EXEC_TIMEOUT`]) or, without
    /// one, [`SubstrateConfig::exec_timeout`]. Never unbounded.
    pub fn run_limit(&self, timeout: Option<std::time::Duration>) -> std::time::Duration {
        timeout
            .unwrap_or(self.cfg.exec_timeout)
            .min(crate::config::MAX_EXEC_TIMEOUT)
    }

    fn ensure_storage(&self) -> Result<()> {
        storage::ensure_mounted(&self.layout, self.cfg.storage_size_mib, self.cfg.uid_base)?;
        Ok(())
    }

    /// Imports a root filesystem (directory or tar file) as image `name`.
    pub fn image_import(&self, name: &str, src: &Path) -> Result<ImageInfo> {
        self.ensure_storage()?;
        Ok(image::import(&self.layout, name, src, self.cfg.uid_base)?)
    }

    /// Lists images (creating the built-in `host` image if needed).
    pub fn image_list(&self) -> Result<Vec<ImageInfo>> {
        self.ensure_storage()?;
        image::get(&self.layout, HOST_IMAGE, self.cfg.uid_base)?;
        Ok(image::list(&self.layout)?)
    }

    /// Removes an image; refuses while any world uses it.
    pub fn image_rm(&self, name: &str) -> Result<()> {
        self.ensure_storage()?;
        let users = WorldRecord::all_ids(&self.layout)
            .iter()
            .filter_map(|id| WorldRecord::load(&self.layout, id).ok())
            .filter(|r| r.image == name)
            .count();
        image::remove(&self.layout, name, users)?;
        // Their roots are snapshots of the old image.
        self.drop_spares(Some(name));
        Ok(())
    }

    /// Unmounts the btrfs store (its loop device detaches). Refuses while
    /// worlds exist. Tests call it to leave nothing behind.
    pub fn unmount_storage(&self) -> Result<()> {
        if !WorldRecord::all_ids(&self.layout).is_empty() {
            return Err(storage::StorageError::Busy.into());
        }
        self.drop_spares(None);
        // No ready-roots job inside the store while it is unmounted; the
        // locks go before the run directory's tmpfs, which a job waiting
        // on one keeps busy until it has seen the store gone and exited.
        let roots = self.hold_all_roots_locks();
        let r = storage::unmount(&self.layout);
        drop(roots);
        r?;
        crate::run_fs::release(&self.layout.run);
        Ok(())
    }

    /// A world's live state: `lost` when its supervisor is gone, `paused`
    /// while its cgroup is frozen, else `running`.
    fn state_of(&self, r: &WorldRecord) -> WorldState {
        match r.state() {
            WorldState::Running
                if WorldCgroup::open(&self.cfg.cgroup_name, r.id.as_str()).is_frozen() =>
            {
                WorldState::Paused
            }
            s => s,
        }
    }

    fn info(&self, r: &WorldRecord) -> WorldInfo {
        let cg = WorldCgroup::open(&self.cfg.cgroup_name, r.id.as_str());
        let state = self.state_of(r);
        let live = matches!(state, WorldState::Running | WorldState::Paused);
        WorldInfo {
            id: r.id.clone(),
            image: r.image.clone(),
            state,
            limits: r.limits,
            warnings: r.warnings.clone(),
            create_ms: r.create_ms,
            created_at: r.created_at,
            supervisor_pid: r.pid,
            memory_bytes: live.then(|| cg.memory_bytes()).flatten(),
            pids: live.then(|| cg.pids_current()).flatten(),
            disk_bytes: btrfs::exclusive_bytes(&self.layout.world_root(r.id.as_str()))
                .map(|b| b + r.disk_inherited),
        }
    }

    pub(crate) fn running(&self, id: &WorldId) -> Result<WorldRecord> {
        let r = WorldRecord::load(&self.layout, id)?;
        match self.state_of(&r) {
            WorldState::Running => Ok(r),
            s => Err(WorldError::NotRunning(id.to_string(), s).into()),
        }
    }

    /// Freezes (`pause`) or thaws (`resume`) every process of a world, as
    /// the lifecycle allows.
    fn set_paused(&self, id: &WorldId, paused: bool) -> Result<()> {
        let r = WorldRecord::load(&self.layout, id)?;
        let event = if paused { Event::Pause } else { Event::Resume };
        self.state_of(&r)
            .apply(event)
            .map_err(|e| WorldError::Transition(id.to_string(), e))?;
        let cg = WorldCgroup::open(&self.cfg.cgroup_name, id.as_str());
        let done = if paused {
            cg.freeze(Duration::from_secs(5))?
        } else {
            cg.thaw()?
        };
        if !done {
            return Err(WorldError::Unsupported(
                "pause needs a cgroup freezer, which this host does not have",
            )
            .into());
        }
        Ok(())
    }

    /// Removes everything of a world; tolerant of half-made worlds.
    /// Kills a world's init (and so, with its pid namespace, every process
    /// of the world) and waits until it has exited.
    pub(crate) fn kill_init(&self, r: &WorldRecord) {
        if r.state() == WorldState::Running {
            if let Ok(pfd) = sys::pidfd_open(r.pid) {
                if sys::process_start_time(r.pid) == Some(r.start_time) {
                    let _ = sys::pidfd_kill(&pfd, libc::SIGKILL);
                    let _ = sys::poll_readable(pfd.as_raw_fd(), 5000);
                }
            }
        }
    }

    pub(crate) fn teardown(&self, id: &str, rec: Option<&WorldRecord>) -> Result<()> {
        let t0 = Instant::now();
        // A paused world's processes take no signal until thawed (v1
        // freezer): thaw before the kill.
        let cg = WorldCgroup::open(&self.cfg.cgroup_name, id);
        if cg.is_frozen() {
            let _ = cg.request_frozen(false);
        }
        if let Some(r) = rec {
            self.kill_init(r);
        }
        crate::snapshot::trace("teardown: init killed", t0);
        let cg = WorldCgroup::open(&self.cfg.cgroup_name, id);
        if cg.exists() {
            cg.kill_all(Duration::from_secs(10))?;
            crate::snapshot::trace("teardown: cgroup emptied", t0);
            cg.remove()?;
        }
        crate::snapshot::trace("teardown: cgroup removed", t0);
        let root = self.layout.world_root(id);
        if root.exists() {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match btrfs::subvol_delete(&root) {
                    Ok(()) => break,
                    Err(e)
                        if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => return Err(WorldError::Io("delete world root", e).into()),
                }
            }
        }
        crate::snapshot::trace("teardown: root deleted", t0);
        let run = self.layout.world_run(id);
        if run.exists() {
            fs::remove_dir_all(&run).map_err(|e| WorldError::Io("remove run dir", e))?;
        }
        let meta = self.layout.world_meta(id);
        if meta.exists() {
            fs::remove_file(&meta).map_err(|e| WorldError::Io("remove world record", e))?;
        }
        crate::snapshot::trace("teardown: done", t0);
        Ok(())
    }

    fn create_inner(&self, id: &WorldId, opts: &CreateOptions, t0: Instant) -> Result<Created> {
        let image_name = opts.image.as_deref().unwrap_or(HOST_IMAGE);
        let img = image::get(&self.layout, image_name, self.cfg.uid_base)?;
        let root = self.layout.world_root(id.as_str());
        fs::create_dir_all(self.layout.world_run(id.as_str()))
            .map_err(|e| WorldError::Io("create run dir", e))?;
        let spare = self.take_spare(&img.name);
        crate::snapshot::trace("create: spare taken", t0);
        match &spare {
            Some(s) => {
                if let Err(e) = fs::rename(&s.root, &root) {
                    self.discard_spare(&s.lineage.id);
                    return Err(WorldError::Io("move the spare's root", e).into());
                }
            }
            None => btrfs::snapshot(&self.layout.image_root(&img.name), &root, false)
                .map_err(|e| WorldError::Io("snapshot image", e))?,
        }
        crate::snapshot::trace("create: root", t0);
        let mut warnings = Vec::new();
        if let Some(mib) = opts.limits.disk_mib {
            if let Err(e) = btrfs::limit_exclusive(&root, mib << 20) {
                warnings.push(format!("disk limit not enforced: {e}"));
            }
        }
        let from_spare = spare.is_some();
        let lin = match spare {
            Some(s) => s.lineage,
            None => self.launch_lineage()?,
        };
        crate::snapshot::trace("create: lineage", t0);
        // A spare's cgroup, its shell inside, becomes the world's where
        // the kernel can rename it; then nothing has to move.
        let renamed = from_spare
            .then(|| self.spare_cgroup_into(&lin.id, id.as_str(), &opts.limits))
            .flatten();
        let in_place = renamed.is_some();
        let made = match renamed {
            Some(x) => Ok(x),
            None => WorldCgroup::create(&self.cfg.cgroup_name, id.as_str(), &opts.limits),
        };
        let (cg, w) = match made {
            Ok(x) => x,
            Err(e) => {
                let _ = self.stop_lineage(&lin.id);
                return Err(e.into());
            }
        };
        warnings.extend(w);
        crate::snapshot::trace("create: cgroup", t0);
        let seed = crate::seed::random_seed();
        let spec = LaunchSpec {
            id: id.to_string(),
            root,
            binds: img.binds.clone(),
            sock: self.layout.world_sock(id.as_str()),
            cgroup_procs: cg.procs_files(),
            uid_base: self.cfg.uid_base,
            uid_count: UID_COUNT,
            env: world_env(id, seed),
        };
        let started = (|| {
            let conn = self.manager(&lin.id)?;
            let p = if in_place {
                // No cgroup files: the shell is in the world's cgroup
                // already. An init the manager had to clone instead (the
                // shell was gone) is moved below, before any world code
                // can run in it.
                let l = lineage::bind_world_sock(&spec)?;
                self.send_world(&conn, &spec, &l, &[])?
            } else {
                self.request_world(&conn, &spec, &cg)?
            };
            let r = p.wait("world init", Duration::from_secs(30))?;
            if in_place && !cg.holds(r.0) {
                cg.adopt(r.0)?;
            }
            crate::snapshot::trace("create: init ready", t0);
            if from_spare {
                // The spare's manager kept a shell for this world; keep
                // none now (a branch asks for its own).
                let _ = self.pool_call(&conn, 0, false, &img.binds);
            }
            let create_ms = t0.elapsed().as_secs_f64() * 1000.0;
            let rec = WorldRecord {
                id: id.clone(),
                image: img.name.clone(),
                limits: opts.limits,
                warnings: warnings.clone(),
                create_ms,
                created_at: now(),
                pid: r.0,
                start_time: r.1,
                lineage: Some(lin.id.clone()),
                parent: None,
                snapshot: None,
                branch_index: None,
                seed,
                services: Vec::new(),
                disk_inherited: 0,
            };
            rec.save(&self.layout)?;
            Ok::<f64, Error>(create_ms)
        })();
        let create_ms = match started {
            Ok(ms) => ms,
            Err(e) => {
                let _ = self.stop_lineage(&lin.id);
                return Err(e);
            }
        };
        self.refill_spares(&img.name);
        Ok(Created {
            id: id.clone(),
            create_ms,
            warnings,
        })
    }
}

impl Substrate for LinuxSubstrate {
    fn create(&self, opts: &CreateOptions) -> Result<Created> {
        let t0 = Instant::now();
        opts.limits.validate().map_err(WorldError::InvalidLimits)?;
        self.ensure_storage()?;
        let id = opts.id.clone().unwrap_or_else(WorldId::random);
        let meta = self.layout.world_meta(id.as_str());
        if meta.exists() || self.layout.world_root(id.as_str()).exists() {
            return Err(WorldError::Exists(id.to_string()).into());
        }
        // Claim the id before doing anything (O_EXCL), so racing creates
        // fail. The claim names this process until the record replaces it,
        // so that `repair` can tell a create in progress from a dead one.
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&meta)
            .and_then(|mut f| {
                use std::io::Write as _;
                write!(f, "{{\"claimed_by\": {}}}", std::process::id())
            })
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => WorldError::Exists(id.to_string()),
                std::io::ErrorKind::PermissionDenied => WorldError::Io(
                    "claim the world id (worlds need root: namespaces, btrfs, cgroups)",
                    e,
                ),
                _ => WorldError::Io("claim the world id", e),
            })?;
        match self.create_inner(&id, opts, t0) {
            Ok(c) => Ok(c),
            Err(e) => {
                if let Err(te) = self.teardown(id.as_str(), None) {
                    eprintln!("world {id}: cleanup after failed create: {te}");
                }
                Err(e)
            }
        }
    }

    fn list(&self) -> Result<Vec<WorldInfo>> {
        Ok(WorldRecord::all_ids(&self.layout)
            .iter()
            .filter_map(|id| WorldRecord::load(&self.layout, id).ok())
            .map(|r| self.info(&r))
            .collect())
    }

    fn inspect(&self, id: &WorldId) -> Result<WorldInfo> {
        Ok(self.info(&WorldRecord::load(&self.layout, id)?))
    }

    fn pause(&self, id: &WorldId) -> Result<()> {
        self.set_paused(id, true)
    }

    fn resume(&self, id: &WorldId) -> Result<()> {
        self.set_paused(id, false)
    }

    fn exec(&self, id: &WorldId, req: &ExecRequest, stdio: ExecStdio<'_>) -> Result<ExecStatus> {
        client::exec(self, id, req, stdio)
    }

    fn exec_output(&self, id: &WorldId, req: &ExecRequest, stdin: &[u8]) -> Result<ExecOutput> {
        client::exec_output(self, id, req, stdin)
    }

    fn copy_in(&self, id: &WorldId, host_src: &Path, world_dir: &str) -> Result<()> {
        client::copy_in(self, id, host_src, world_dir)
    }

    fn copy_out(&self, id: &WorldId, world_src: &str, host_dir: &Path) -> Result<()> {
        // No more than the world can hold: its disk limit (sparse files
        // could claim far more), or 4 GiB for a world without one.
        let rec = WorldRecord::load(&self.layout, id)?;
        let max = rec
            .limits
            .disk_mib
            .filter(|m| *m > 0)
            .unwrap_or(4096)
            .saturating_mul(1 << 20);
        client::copy_out(self, id, world_src, host_dir, max)
    }

    fn destroy(&self, id: &WorldId) -> Result<()> {
        let t0 = Instant::now();
        let rec = WorldRecord::load(&self.layout, id)?;
        self.teardown(id.as_str(), Some(&rec))?;
        if let Some(l) = &rec.lineage {
            self.release_lineage(l)?;
        }
        crate::snapshot::trace("destroy: lineage released", t0);
        Ok(())
    }
}

impl LinuxSubstrate {
    /// Path of a world's control socket (for tools and the lead's engine).
    pub fn control_socket(&self, id: &WorldId) -> std::path::PathBuf {
        self.layout.world_sock(id.as_str())
    }

    /// Host path of a world's root subvolume (issue 4 snapshots it).
    pub fn world_root(&self, id: &WorldId) -> std::path::PathBuf {
        self.layout.world_root(id.as_str())
    }

    /// Checks the world answers on its control socket.
    pub fn ping(&self, id: &WorldId) -> Result<()> {
        client::ping(self, id)
    }

    #[doc(hidden)]
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
}

/// Environment every process of a world gets: its id and seed.
pub(crate) fn world_env(id: &WorldId, seed: u64) -> Vec<(String, String)> {
    vec![
        ("WORLD_ID".into(), id.to_string()),
        ("WORLD_SEED".into(), seed.to_string()),
    ]
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::World(WorldError::Io("io", e))
    }
}
