//! Snapshot, branch, delete, services and repair on [`LinuxSubstrate`].

use std::fs;
use std::io::{BufReader, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::fork::{Forked, ReadyChild, SessionFds};
use super::record::{stale_journals, Journal, JournalGuard, Service, SnapshotRecord};
use super::{BranchOptions, Branched, RepairReport, SnapshotError, SnapshotInfo, MAX_BRANCH};
use crate::cgroup::WorldCgroup;
use crate::config::UID_COUNT;
use crate::error::{Result, WorldError};
use crate::lineage::{random_id, LineageRecord};
use crate::linux::lineage::{prepare_world, Pending, PoolState};
use crate::linux::record::WorldRecord;
use crate::session::SessionLock;
use crate::supervisor::LaunchSpec;
use crate::types::{ExecRequest, WorldId, WorldState};
use crate::{btrfs, image, proto, seed, sys, LinuxSubstrate, Substrate};

/// Prints phase timings when `WORLD_SUBSTRATE_TRACE` is set.
pub(crate) fn trace(what: &str, t0: Instant) {
    if tracing() {
        eprintln!("[trace] {what}: {:.2} ms", t0.elapsed().as_secs_f64() * 1e3);
    }
}

fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("WORLD_SUBSTRATE_TRACE").is_some())
}

/// Prints a per-child phase timing when `WORLD_SUBSTRATE_TRACE` is set.
pub(super) fn trace_child(i: usize, what: &str, t0: Instant) {
    if tracing() {
        eprintln!(
            "[trace] child {i} {what}: {:.2} ms",
            t0.elapsed().as_secs_f64() * 1e3
        );
    }
}

/// Threads creating branch roots at once (each in its own staging
/// directory; see [`LinuxSubstrate::branch_root`]).
const ROOT_WORKERS: usize = 16;

/// Threads of stage 1 when every root is taken ready (see `ready.rs`).
const READY_ROOT_WORKERS: usize = 1;

/// How old an unowned, empty cgroup must be before repair removes it: a
/// create or branch makes its cgroups a moment before their owner is
/// recorded or joins them.
pub(crate) const ORPHAN_CGROUP_AGE: Duration = Duration::from_secs(60);

/// How old a cgroup holding processes of this store, but named by no
/// record, must be before `repair` kills them: a create or branch in
/// flight records its lineage and worlds well within this.
pub(crate) const ORPHAN_PROCESS_AGE: Duration = Duration::from_secs(5);

/// Whether a record of this store names the cgroup `n` (`snap.<sid>`,
/// `lineage.<id>[.pool]` or a world id).
fn cgroup_has_record(l: &crate::storage::Layout, n: &str) -> bool {
    if let Some(s) = n.strip_prefix("snap.") {
        return l.snapshot_meta(s).exists();
    }
    if let Some(id) = n.strip_prefix("spare.") {
        return LineageRecord::load(l, id).is_some();
    }
    if let Some(id) = n.strip_prefix("lineage.") {
        let id = id.strip_suffix(".pool").unwrap_or(id);
        return LineageRecord::load(l, id).is_some();
    }
    l.world_meta(n).exists()
}

/// Where branch roots are created before they move to `worlds/<id>`.
fn staging_dir(l: &crate::storage::Layout) -> PathBuf {
    l.mount_point().join("staging")
}

/// The cgroup a snapshot's templates wait in: `snap.<id>`, under the
/// limits of the world they were taken from.
pub(crate) fn snap_cgroup(id: &str) -> String {
    format!("snap.{id}")
}

use super::record::{valid_snapshot_id, valid_snapshot_name};

/// Whether a world id claim (see `create`) belongs to a create still in
/// progress: its process is alive, or the claim is too fresh to tell (an
/// empty file written less than 10 s ago).
fn claim_is_live(meta: &std::path::Path) -> bool {
    #[derive(serde::Deserialize)]
    struct Claim {
        claimed_by: u32,
    }
    let Ok(b) = fs::read(meta) else {
        return false;
    };
    match serde_json::from_slice::<Claim>(&b) {
        Ok(c) => std::path::Path::new(&format!("/proc/{}", c.claimed_by)).exists(),
        Err(_) => {
            b.is_empty()
                && fs::metadata(meta)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age < Duration::from_secs(10))
        }
    }
}

/// The children's ids: the caller's ([`BranchOptions::child_ids`]) or
/// random ones.
fn child_ids(opts: &BranchOptions, count: usize) -> Result<Vec<WorldId>> {
    match opts.child_ids.len() {
        0 => Ok((0..count).map(|_| WorldId::random()).collect()),
        n if n == count => Ok(opts.child_ids.clone()),
        n => Err(failed(format!("{n} child ids given for {count} children"))),
    }
}

pub(super) fn failed(m: impl std::fmt::Display) -> crate::Error {
    SnapshotError::Failed(m.to_string()).into()
}

/// How long the host waits, in all, for one reply line of a session or
/// template (a peer trickling bytes cannot hold it longer).
pub(super) const REPLY_WAIT: Duration = Duration::from_secs(30);

/// Reads one bounded reply line from `conn` by `deadline`.
pub(super) fn reply_line(
    conn: &UnixStream,
    deadline: Instant,
) -> std::io::Result<serde_json::Value> {
    let line = proto::read_line_bounded(&mut BufReader::new(proto::ByDeadline {
        inner: conn,
        deadline,
    }))?;
    serde_json::from_str(line.trim()).map_err(std::io::Error::other)
}

/// Asks a session for a template; returns its reply and the connection,
/// which the template keeps (see `snapshot_inner`). Reads one line, not
/// to EOF: the template holds the connection open.
fn snapshot_call(
    sock: &std::path::Path,
    fds: &[std::os::fd::RawFd],
) -> std::io::Result<(serde_json::Value, UnixStream)> {
    let conn = UnixStream::connect(sock)?;
    sys::set_timeouts(conn.as_raw_fd(), 30_000);
    proto::send_msg(conn.as_fd(), &serde_json::json!({"op": "snapshot"}), fds)
        .map_err(std::io::Error::other)?;
    let v = reply_line(&conn, Instant::now() + REPLY_WAIT)?;
    Ok((v, conn))
}

/// The pid a session or template reports for the process it forked.
fn reported_pid(v: &serde_json::Value) -> Option<i32> {
    v.get("pid")?.as_i64()?.try_into().ok()
}

/// The snapshot's cgroup thawed for one branch; frozen again when the
/// last concurrent branch of the snapshot is done with it. Concurrent
/// branches hold a shared `flock` on `<snapshot run dir>/thaw.lock`; the
/// one that can turn it exclusive on the way out freezes.
struct Thawed {
    lock: fs::File,
    cg: WorldCgroup,
}

impl Thawed {
    fn take(lock: &std::path::Path, cg: WorldCgroup) -> Result<Thawed> {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock)
            .map_err(|e| WorldError::Io("open snapshot thaw lock", e))?;
        flock(&f, libc::LOCK_SH).map_err(|e| WorldError::Io("lock snapshot", e))?;
        cg.request_frozen(false)?;
        Ok(Thawed { lock: f, cg })
    }
}

impl Drop for Thawed {
    fn drop(&mut self) {
        if flock(&self.lock, libc::LOCK_EX | libc::LOCK_NB).is_ok() {
            let _ = self.cg.request_frozen(true);
        }
    }
}

fn flock(f: &fs::File, op: libc::c_int) -> std::io::Result<()> {
    loop {
        // SAFETY: flock on a valid fd.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A child's root and cgroup are made, its init request and sessions
/// prepared (stage 1 of a branch).
struct Staged {
    i: usize,
    warnings: Vec<String>,
    spec: LaunchSpec,
    listener: UnixListener,
    cg_fds: Vec<std::os::fd::OwnedFd>,
    sessions: Vec<SessionFds>,
}

/// Branch roots made ahead of their branch (inside a snapshot's commit):
/// writable snapshots at `staging/<op>-<k>/<world id>`, one directory per
/// worker (snapshots into one directory serialize, see
/// [`LinuxSubstrate::branch_root`]). The branch renames each into place;
/// [`Roots::remove`] deletes whatever is left. After a crash,
/// [`LinuxSubstrate::repair`] deletes them (it clears `staging/`).
#[derive(Debug, Default)]
struct Roots {
    made: Vec<(WorldId, PathBuf)>,
    dirs: Vec<PathBuf>,
    /// Keeps cgroup migrations warm until the branch's first one.
    warm: Option<crate::cgroup::MigrationWarmer>,
}

impl Roots {
    /// Snapshots `src` for every id with up to [`ROOT_WORKERS`] threads;
    /// all or nothing.
    fn make(
        l: &crate::storage::Layout,
        src: &std::path::Path,
        ids: &[WorldId],
    ) -> std::io::Result<Roots> {
        let workers = ids.len().min(ROOT_WORKERS);
        let op = random_id("stage");
        let dirs: Vec<PathBuf> = (0..workers)
            .map(|k| staging_dir(l).join(format!("{op}-{k}")))
            .collect();
        let results: Vec<std::io::Result<Vec<(WorldId, PathBuf)>>> = std::thread::scope(|sc| {
            let hs: Vec<_> = dirs
                .iter()
                .enumerate()
                .map(|(k, d)| {
                    sc.spawn(move || {
                        let mut mine: Vec<(WorldId, PathBuf)> = Vec::new();
                        fs::create_dir_all(d)?;
                        for c in ids.iter().skip(k).step_by(workers) {
                            let p = d.join(c.as_str());
                            if let Err(e) = btrfs::snapshot(src, &p, false) {
                                for (_, p) in &mine {
                                    let _ = btrfs::subvol_delete(p);
                                }
                                return Err(e);
                            }
                            mine.push((c.clone(), p));
                        }
                        Ok(mine)
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(std::io::Error::other("panicked")))
                })
                .collect()
        });
        let mut roots = Roots {
            made: Vec::new(),
            dirs,
            warm: None,
        };
        let mut err = None;
        for r in results {
            match r {
                Ok(m) => roots.made.extend(m),
                Err(e) => err = Some(e),
            }
        }
        match err {
            Some(e) => {
                roots.remove();
                Err(e)
            }
            None => Ok(roots),
        }
    }

    /// Claims `ready` roots (see `ready.rs`) for the first of `ids` by
    /// renaming them into one staging directory; a root another branch
    /// took first is skipped. Never fails: what it cannot claim, the
    /// branch makes.
    fn claim(l: &crate::storage::Layout, ready: &[PathBuf], ids: &[WorldId]) -> Roots {
        let mut roots = Roots::default();
        if ready.is_empty() {
            return roots;
        }
        let dir = staging_dir(l).join(random_id("stage"));
        if fs::create_dir_all(&dir).is_err() {
            return roots;
        }
        let mut ids = ids.iter();
        for r in ready {
            let Some(id) = ids.as_slice().first() else {
                break;
            };
            let to = dir.join(id.as_str());
            if fs::rename(r, &to).is_ok() {
                roots.made.push((id.clone(), to));
                ids.next();
            }
        }
        roots.dirs.push(dir);
        roots
    }

    fn get(&self, id: &WorldId) -> Option<&std::path::Path> {
        self.made
            .iter()
            .find(|(c, _)| c == id)
            .map(|(_, p)| p.as_path())
    }

    /// Deletes the roots still staged (not moved into place) and the
    /// staging directories.
    fn remove(&mut self) {
        for (_, p) in self.made.drain(..) {
            if p.exists() {
                let _ = btrfs::subvol_delete(&p);
            }
        }
        for d in self.dirs.drain(..) {
            let _ = fs::remove_dir(d);
        }
    }
}

impl LinuxSubstrate {
    /// Takes a snapshot of a running world: a read-only btrfs snapshot of
    /// its root (O(1) in disk size) plus a frozen fork (template) of every
    /// session, taken while the world's cgroup is frozen. The world keeps
    /// running; nothing it does afterwards shows in the snapshot.
    pub fn snapshot(&self, id: &WorldId, name: Option<&str>) -> Result<SnapshotInfo> {
        self.snapshot_with(id, name, Duration::from_secs(30))
    }

    /// [`LinuxSubstrate::snapshot`] waiting at most `busy_wait` for
    /// sessions that are running code.
    pub fn snapshot_with(
        &self,
        id: &WorldId,
        name: Option<&str>,
        busy_wait: Duration,
    ) -> Result<SnapshotInfo> {
        self.snapshot_full(id, name, None, busy_wait, &[])
            .map(|(s, _)| s)
    }

    /// [`LinuxSubstrate::snapshot_with`] that also makes writable roots
    /// for the worlds `children` (staged, see [`Roots`]) from the world's
    /// root while it is frozen: their btrfs snapshots share the read-only
    /// snapshot's transaction commit, so a snapshot-and-branch costs one
    /// commit instead of two.
    fn snapshot_full(
        &self,
        id: &WorldId,
        name: Option<&str>,
        sid: Option<&str>,
        busy_wait: Duration,
        children: &[WorldId],
    ) -> Result<(SnapshotInfo, Roots)> {
        let t0 = Instant::now();
        let rec = self.running(id)?;
        let lineage = rec
            .lineage
            .clone()
            .ok_or_else(|| failed(format!("world '{id}' has no lineage")))?;
        let sid = match sid {
            Some(s) if valid_snapshot_id(s) => s.to_string(),
            Some(s) => return Err(SnapshotError::InvalidName(s.to_string()).into()),
            None => random_id("s"),
        };
        let name = name.map_or_else(|| sid.clone(), str::to_string);
        if !valid_snapshot_name(&name) {
            return Err(SnapshotError::InvalidName(name).into());
        }
        let all = SnapshotRecord::all(self.layout());
        if all.iter().any(|s| s.name == name) {
            return Err(SnapshotError::NameTaken(name).into());
        }
        let kept = all.iter().filter(|s| s.world == *id).count();
        if kept >= self.config().snapshots_max {
            return Err(SnapshotError::TooMany(id.to_string(), kept).into());
        }
        let journal = JournalGuard::begin(
            self.layout(),
            Journal {
                op: sid.clone(),
                snapshot: Some(sid.clone()),
                worlds: vec![],
                frozen: Some(id.clone()),
            },
        )
        .map_err(|e| WorldError::Io("write journal", e))?;
        let mut roots = Roots::default();
        let res = self.snapshot_inner(
            &rec, &lineage, &sid, &name, busy_wait, children, &mut roots, t0,
        );
        if res.is_err() {
            roots.remove();
            let _ = self.remove_snapshot(&sid);
        }
        journal.finish();
        res.map(|s| (s, roots))
    }

    #[allow(clippy::too_many_arguments)]
    fn snapshot_inner(
        &self,
        rec: &WorldRecord,
        lineage: &str,
        sid: &str,
        name: &str,
        busy_wait: Duration,
        children: &[WorldId],
        roots: &mut Roots,
        t0: Instant,
    ) -> Result<SnapshotInfo> {
        let id = &rec.id;
        let sessions = self.sessions(id)?;
        let mut locks = Vec::new();
        for s in &sessions {
            let p = self.session_paths(id, s);
            match SessionLock::take(&p.lock, Some(busy_wait)) {
                Ok(Some(l)) => locks.push(l),
                Ok(None) => {
                    return Err(SnapshotError::SessionBusy(
                        id.to_string(),
                        s.clone(),
                        busy_wait.as_millis() as u64,
                    )
                    .into())
                }
                Err(e) => return Err(WorldError::Io("lock session", e).into()),
            }
        }
        trace("snapshot: locks", t0);
        // Templates run code of the world (a fork hook, a thread): they
        // wait under the world's own memory, pids and CPU limits, which
        // hold after the world is destroyed too (see `world snapshots`),
        // frozen between branches.
        let (scg, _) =
            WorldCgroup::create(&self.config().cgroup_name, &snap_cgroup(sid), &rec.limits)?;
        let run = self.layout().snapshot_run(sid);
        fs::create_dir_all(&run).map_err(|e| WorldError::Io("create snapshot dir", e))?;
        let mut taken = Vec::new();
        let mut warnings = Vec::new();
        // One connection per template: it stays in the world's cgroups
        // (and is frozen with it) until we have moved it to the snapshot's
        // cgroup and written a byte here; dropping the connection releases
        // it too. With each, the pid its session says it has (a claim:
        // checked before anything is done to that process).
        let mut release = Vec::new();
        for s in &sessions {
            let p = self.session_paths(id, s);
            let tsock = run.join(format!("{s}.sock"));
            let l = UnixListener::bind(&tsock)
                .map_err(|e| WorldError::Io("bind template socket", e))?;
            match snapshot_call(&p.sock, &[l.as_raw_fd()]) {
                Ok((v, c)) if v.get("ok").is_some() => {
                    taken.push(s.clone());
                    release.push((s.clone(), reported_pid(&v), c));
                }
                Ok((v, _)) => return Err(failed(format!("session '{s}': {v}"))),
                Err(e) => {
                    let _ = fs::remove_file(&tsock);
                    warnings.push(format!("session '{s}' is gone ({e}); not in the snapshot"));
                }
            }
        }
        // Quiesce: sessions are idle (we hold their locks); freeze every
        // other process so files and memory agree, then snapshot the root.
        trace("snapshot: templates", t0);
        // A branch's first cgroup migration waits for an RCU grace period
        // unless migrations are warm (see `warm_migrations`). Warming starts
        // only now: while the warmer's first write waits, fork() blocks too
        // (both take the kernel's threadgroup lock), and the templates above
        // are forks. The grace period then passes during the btrfs snapshot.
        let warm = if children.is_empty() && release.is_empty() {
            None
        } else {
            crate::cgroup::warm_migrations()
        };
        let wcg = WorldCgroup::open(&self.config().cgroup_name, id.as_str());
        let frozen = wcg.freeze(Duration::from_secs(10))?;
        trace("snapshot: frozen", t0);
        if !frozen {
            warnings.push("no cgroup freezer here: the world was not quiesced".into());
        }
        let src = self.world_root(id);
        let snap = std::thread::scope(|sc| {
            let made = (!children.is_empty())
                .then(|| sc.spawn(|| Roots::make(self.layout(), &src, children)));
            let snap = btrfs::snapshot(&src, &self.layout().snapshot_root(sid), true);
            match made.map(|h| h.join()) {
                Some(Ok(Ok(r))) => *roots = r,
                Some(Ok(Err(e))) => return snap.and(Err(e)),
                Some(Err(_)) => return snap.and(Err(std::io::Error::other("root maker panicked"))),
                None => {}
            }
            snap
        });
        if frozen {
            wcg.thaw()?;
        }
        roots.warm = warm;
        snap.map_err(|e| WorldError::Io("snapshot world root", e))?;
        // The host moves each template into the snapshot's cgroup, then
        // releases it; then the snapshot's cgroup is frozen (a template
        // runs only while it serves a branch).
        let in_world = wcg.pids();
        let mut template_pids = Vec::new();
        for (s, claimed, c) in &release {
            let parent = self.session_pid(id, s);
            let host = parent.zip(*claimed).and_then(|(parent, claimed)| {
                super::adopt::forked_child(&in_world, parent, claimed)
            });
            let Some(host) = host else {
                return Err(failed(format!(
                    "session '{s}' did not fork a template (it reported {claimed:?})"
                )));
            };
            scg.adopt(host)?;
            template_pids.push((s.clone(), host));
            let _ = (&*c).write_all(b"g");
        }
        drop(release);
        scg.request_frozen(true)?;
        trace("snapshot: btrfs + thaw", t0);
        drop(locks);
        let init = rec.pid;
        let others = wcg
            .pids()
            .into_iter()
            .filter(|p| *p != init)
            .filter(|p| {
                let c = fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                c.trim() != "world-session"
            })
            .count();
        if others > 0 {
            warnings.push(format!(
                "{others} process(es) that are not sessions (background servers, running execs) \
                 are not carried into branches: their files are, their memory is not; \
                 declare services to start them again in every branch"
            ));
        }
        let snapshot_ms = t0.elapsed().as_secs_f64() * 1000.0;
        // What a child starts with: the data this world started with plus
        // what it wrote (simple quotas charge the writer, for as long as
        // the data exists, even when deleted but pinned by a snapshot), or
        // all data the snapshot sees (full qgroups), whichever is more.
        let disk_bytes = (rec.disk_inherited + btrfs::exclusive_bytes(&src).unwrap_or(0))
            .max(btrfs::referenced_bytes(&self.layout().snapshot_root(sid)).unwrap_or(0));
        let sr = SnapshotRecord {
            id: sid.to_string(),
            name: name.to_string(),
            world: id.clone(),
            lineage: lineage.to_string(),
            image: rec.image.clone(),
            limits: rec.limits,
            seed: rec.seed,
            sessions: taken,
            services: rec.services.clone(),
            created_at: crate::linux::now(),
            snapshot_ms,
            template_pids,
            disk_bytes,
        };
        sr.save(self.layout())
            .map_err(|e| WorldError::Io("save snapshot record", e))?;
        Ok(SnapshotInfo::from_record(
            &sr,
            warnings,
            &self.config().cgroup_name,
        ))
    }

    /// Finds a snapshot by id or name.
    pub fn snapshot_info(&self, snap: &str) -> Result<SnapshotInfo> {
        Ok(SnapshotInfo::from_record(
            &self.snapshot_record(snap)?,
            vec![],
            &self.config().cgroup_name,
        ))
    }

    pub(crate) fn snapshot_record(&self, snap: &str) -> Result<SnapshotRecord> {
        // Every way in (CLI, native API, Morph and seed routes) names a
        // snapshot by id or name; anything else (`../x`, a path) is refused
        // before it comes near a path.
        if !valid_snapshot_id(snap) && !valid_snapshot_name(snap) {
            return Err(SnapshotError::InvalidName(snap.to_string()).into());
        }
        if let Some(r) = SnapshotRecord::load(self.layout(), snap) {
            return Ok(r);
        }
        SnapshotRecord::all(self.layout())
            .into_iter()
            .find(|r| r.name == snap)
            .ok_or_else(|| SnapshotError::NotFound(snap.to_string()).into())
    }

    /// All snapshots, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        Ok(SnapshotRecord::all(self.layout())
            .iter()
            .map(|r| SnapshotInfo::from_record(r, vec![], &self.config().cgroup_name))
            .collect())
    }

    /// Deletes a snapshot (by id or name): its templates are killed and its
    /// subvolume deleted. Worlds branched from it are not affected (they
    /// share nothing with it that deleting it could take away).
    pub fn delete_snapshot(&self, snap: &str) -> Result<()> {
        let r = self.snapshot_record(snap)?;
        self.remove_snapshot(&r.id)?;
        self.release_lineage(&r.lineage)
    }

    /// [`Self::remove_snapshot`], for a snapshot that is already unlisted.
    pub(crate) fn remove_snapshot_files(&self, sid: &str) -> Result<()> {
        self.remove_snapshot(sid)
    }

    fn remove_snapshot(&self, sid: &str) -> Result<()> {
        // Held until the root is gone: a refill job makes no root meanwhile.
        let _roots = self.drop_ready_roots(sid)?;
        let cg = WorldCgroup::open(&self.config().cgroup_name, &snap_cgroup(sid));
        if cg.exists() {
            cg.kill_all(Duration::from_secs(10))?;
            cg.remove()?;
        }
        let root = self.layout().snapshot_root(sid);
        if root.exists() {
            btrfs::subvol_delete(&root).map_err(|e| WorldError::Io("delete snapshot", e))?;
        }
        let run = self.layout().snapshot_run(sid);
        // A branch that just started a refill may still be adding its
        // lock files: try again a few times.
        let mut tries = 0;
        while run.exists() {
            match fs::remove_dir_all(&run) {
                Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) && tries < 5 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(WorldError::Io("remove snapshot dir", e).into())
                }
                _ => break,
            }
        }
        let meta = self.layout().snapshot_meta(sid);
        if meta.exists() {
            fs::remove_file(&meta).map_err(|e| WorldError::Io("remove snapshot record", e))?;
        }
        Ok(())
    }

    /// Starts `count` worlds from a snapshot (id or name). Each child has
    /// the snapshot's files and sessions and then diverges on its own.
    /// All or nothing: on any failure every child made so far is removed.
    pub fn branch(&self, snap: &str, count: usize, opts: &BranchOptions) -> Result<Branched> {
        let t0 = Instant::now();
        if count == 0 || count > MAX_BRANCH {
            return Err(SnapshotError::BadCount(count, MAX_BRANCH).into());
        }
        let ids = child_ids(opts, count)?;
        self.branch_ids(snap, &ids, opts, Roots::default(), true, t0)
    }

    /// [`LinuxSubstrate::branch`] to the worlds `ids`, whose roots may be
    /// made already (`premade`, by [`Self::snapshot_full`]); removes the
    /// premade roots it did not use. Without premade roots it takes the
    /// snapshot's ready roots (`ready.rs`); with `refill`, it has them made
    /// again for the next branch.
    fn branch_ids(
        &self,
        snap: &str,
        ids: &[WorldId],
        opts: &BranchOptions,
        mut premade: Roots,
        refill: bool,
        t0: Instant,
    ) -> Result<Branched> {
        let sr = match self.snapshot_record(snap) {
            Ok(r) => r,
            Err(e) => {
                premade.remove();
                return Err(e);
            }
        };
        if !LineageRecord::load(self.layout(), &sr.lineage).is_some_and(|l| l.alive()) {
            premade.remove();
            return Err(SnapshotError::LineageGone(sr.id.clone()).into());
        }
        let ids = ids.to_vec();
        let journal = JournalGuard::begin(
            self.layout(),
            Journal {
                op: random_id("b"),
                snapshot: None,
                worlds: ids.clone(),
                frozen: None,
            },
        )
        .map_err(|e| WorldError::Io("write journal", e))?;
        if premade.made.is_empty() {
            // Claimed now, all at once: the branch then knows how many
            // roots it still has to make (a concurrent branch of the same
            // snapshot may have taken some), and so how many threads.
            let ready = self.ready_roots_for(&sr.id, ids.len());
            premade = Roots::claim(self.layout(), &ready, &ids);
        }
        let res = self.branch_inner(&sr, &ids, opts, &premade, t0);
        if refill && res.is_ok() {
            self.refill_roots(&sr.id, ids.len(), true);
        }
        // Roots that were not moved into place (a failed branch).
        premade.remove();
        if res.is_err() {
            for c in &ids {
                let r = WorldRecord::load(self.layout(), c).ok();
                let _ = self.teardown(c.as_str(), r.as_ref());
            }
        }
        journal.finish();
        res
    }

    /// Snapshot plus branch in one call. The snapshot is deleted afterwards
    /// unless `opts.keep_snapshot`.
    pub fn branch_world(
        &self,
        id: &WorldId,
        count: usize,
        opts: &BranchOptions,
    ) -> Result<Branched> {
        if count == 0 || count > MAX_BRANCH {
            return Err(SnapshotError::BadCount(count, MAX_BRANCH).into());
        }
        let ids = child_ids(opts, count)?;
        // Up to one root per worker is made inside the snapshot's commit;
        // larger branches make theirs from the snapshot as usual.
        let early: &[WorldId] = if count <= ROOT_WORKERS { &ids } else { &[] };
        let t0 = Instant::now();
        let (s, roots) =
            self.snapshot_full(id, None, opts.snapshot_id.as_deref(), opts.busy_wait, early)?;
        trace("branch world: snapshot taken", t0);
        // No ready roots for the snapshot: a kept one (push_down's) is
        // usually collapsed soon; a second `branch` of it asks for them.
        let r = self.branch_ids(&s.id, &ids, opts, roots, false, Instant::now());
        trace("branch world: branched", t0);
        if !opts.keep_snapshot {
            let _ = self.delete_snapshot(&s.id);
        }
        let mut b = r?;
        b.snapshot_ms = Some(s.snapshot_ms);
        b.warnings.extend(s.warnings);
        if !opts.keep_snapshot {
            b.snapshot = None;
        }
        Ok(b)
    }

    fn branch_inner(
        &self,
        sr: &SnapshotRecord,
        ids: &[WorldId],
        opts: &BranchOptions,
        premade: &Roots,
        t0: Instant,
    ) -> Result<Branched> {
        let img = image::get(self.layout(), &sr.image, self.config().uid_base)?;
        let seeds: Vec<u64> = (0..ids.len() as u64)
            .map(|i| seed::child_seed(sr.seed, i))
            .collect();
        let src = self.layout().snapshot_root(&sr.id);
        let conn = self.manager(&sr.lineage)?;
        // The first init's cgroup migration would wait for an RCU grace
        // period; let it pass while the roots are made.
        let _warm = crate::cgroup::warm_migrations();
        // A three-stage pipeline: (1) roots and cgroups, made by up to
        // ROOT_WORKERS threads at once (their btrfs snapshots share
        // transaction commits, see `branch_root`); (2) world inits, asked
        // of the manager (this thread) as soon as a child's root exists;
        // (3) session forks, asked of the templates (one thread) as soon as
        // a child's init is ready. Stage 1 mostly waits on the disk while
        // stages 2 and 3 use the CPUs. Any error stops every stage; the
        // caller removes all children.
        // Stage 1 also binds each child's control and session sockets and
        // opens its cgroup files, so that stage 2 only talks to the manager
        // and stage 3 only to the templates; a fourth thread writes the
        // sessions' pid files as they come up (creating files is not cheap
        // on some hosts' root filesystems).
        let (root_tx, root_rx) = mpsc::channel::<Result<Staged>>();
        let (init_tx, init_rx) = mpsc::channel::<ReadyChild>();
        let (up_tx, up_rx) = mpsc::channel::<Forked>();
        // Templates run only while they serve: thawed until every session
        // of this branch is forked and moved out of the snapshot's cgroup.
        let _thawed = if sr.sessions.is_empty() {
            None
        } else {
            let lock = self.layout().snapshot_run(&sr.id).join("thaw.lock");
            let scg = WorldCgroup::open(&self.config().cgroup_name, &snap_cgroup(&sr.id));
            Some(Thawed::take(&lock, scg)?)
        };
        let mut warnings = Vec::new();
        std::thread::scope(|sc| -> Result<()> {
            let src = &src;
            let (img, seeds) = (&img, &seeds);
            // Roots taken ready need no disk wait: one thread keeps ahead
            // of stage 2, and more would only take CPU from the other
            // stages (measured, branch 100 pooled: 1 thread p50 ~150 ms,
            // 2 ~170, 16 ~175).
            let cap = if premade.made.len() >= ids.len() {
                READY_ROOT_WORKERS
            } else {
                ROOT_WORKERS
            };
            let workers = ids.len().min(cap);
            let op = random_id("stage");
            for k in 0..workers {
                let root_tx = root_tx.clone();
                let stage = staging_dir(self.layout()).join(format!("{op}-{k}"));
                sc.spawn(move || {
                    if let Err(e) = fs::create_dir_all(&stage) {
                        let _ = root_tx.send(Err(WorldError::Io("create staging dir", e).into()));
                        return;
                    }
                    for i in (k..ids.len()).step_by(workers) {
                        let r = self
                            .branch_root(src, &stage, &ids[i], premade.get(&ids[i]), sr, i, t0)
                            .and_then(|(cg, warnings)| {
                                let c = &ids[i];
                                let spec = LaunchSpec {
                                    id: c.to_string(),
                                    root: self.world_root(c),
                                    binds: img.binds.clone(),
                                    sock: self.control_socket(c),
                                    cgroup_procs: cg.procs_files(),
                                    uid_base: self.config().uid_base,
                                    uid_count: UID_COUNT,
                                    env: crate::linux::world_env(c, seeds[i]),
                                };
                                let (listener, cg_fds) = prepare_world(&spec, &cg)?;
                                let sessions = sr
                                    .sessions
                                    .iter()
                                    .map(|s| {
                                        let paths = self.session_paths(c, s);
                                        let l = UnixListener::bind(&paths.sock).map_err(|e| {
                                            WorldError::Io("bind session socket", e)
                                        })?;
                                        Ok((paths.pid, l, cg.clone()))
                                    })
                                    .collect::<Result<Vec<SessionFds>>>()?;
                                trace_child(i, "sockets bound", t0);
                                Ok(Staged {
                                    i,
                                    warnings,
                                    spec,
                                    listener,
                                    cg_fds,
                                    sessions,
                                })
                            });
                        let stop = r.is_err();
                        if root_tx.send(r).is_err() || stop {
                            break;
                        }
                    }
                    let _ = fs::remove_dir(&stage);
                });
            }
            drop(root_tx);
            let forks =
                sc.spawn(move || self.branch_sessions(sr, ids, seeds, opts, init_rx, up_tx, t0));
            let pids = sc.spawn(move || -> Result<()> {
                for f in up_rx {
                    f.adopt()?;
                }
                Ok(())
            });
            let mut inits = Vec::with_capacity(ids.len());
            let staged = (|| -> Result<()> {
                let mut made = 0;
                for r in root_rx.iter().take(ids.len()) {
                    let st = r?;
                    made += 1;
                    let w = st.warnings;
                    if warnings.is_empty() || w.iter().any(|x| x.starts_with("disk")) {
                        warnings.extend(w);
                    }
                    let p = self.send_world(&conn, &st.spec, &st.listener, &st.cg_fds)?;
                    trace_child(st.i, "init forked", t0);
                    // The request's listener and cgroup files are kept until
                    // the init is up, to ask again (see `wait_init`).
                    let again = (st.spec, st.listener, st.cg_fds);
                    inits.push((st.i, p, st.sessions, again));
                    // Hand over every init that is ready by now, without
                    // waiting for the ones that are still starting.
                    while inits.first().is_some_and(|(_, p, _, _)| p.ready_now()) {
                        let (j, p, fds, again) = inits.remove(0);
                        let up = self.wait_init(&conn, p, &again)?;
                        self.branch_init_ready(
                            sr, ids, seeds, &warnings, j, up, fds, &init_tx, t0,
                        )?;
                    }
                }
                for (j, p, fds, again) in inits.drain(..) {
                    let up = self.wait_init(&conn, p, &again)?;
                    self.branch_init_ready(sr, ids, seeds, &warnings, j, up, fds, &init_tx, t0)?;
                }
                if made < ids.len() {
                    return Err(failed("branch roots stopped early"));
                }
                Ok(())
            })();
            drop(init_tx);
            drop(root_rx);
            trace("branch: roots, cgroups and inits ready", t0);
            let forked = forks
                .join()
                .unwrap_or_else(|_| Err(failed("session fork thread panicked")));
            trace("branch: sessions forked", t0);
            let up = pids
                .join()
                .unwrap_or_else(|_| Err(failed("pid file thread panicked")));
            staged?;
            forked?;
            up
        })?;
        trace("branch: sessions ready", t0);
        let branch_ms = t0.elapsed().as_secs_f64() * 1000.0;
        // The next branch of this lineage finds its inits made: ask the
        // manager to keep as many world shells ready (made while it is
        // idle; a manager that predates pools refuses, which costs
        // nothing).
        let want = self.config().pool_max.min(ids.len());
        if want > 0 {
            let _ = self.pool_call(&conn, want, true, &img.binds);
        }
        drop(conn);
        if opts.start_services {
            for c in ids {
                for svc in &sr.services {
                    if let Err(e) = self.start_service(c, svc) {
                        warnings.push(format!("world {c}: service '{}': {e}", svc.name));
                    }
                }
            }
        }
        Ok(Branched {
            snapshot: Some(sr.id.clone()),
            children: ids.to_vec(),
            seeds,
            snapshot_ms: None,
            branch_ms,
            warnings,
        })
    }

    /// Stage 1 of a branch for one child: run dir, writable btrfs snapshot
    /// of the snapshot's root (made ahead when there is one), disk limit,
    /// cgroup with the limits.
    #[allow(clippy::too_many_arguments)]
    fn branch_root(
        &self,
        src: &std::path::Path,
        stage: &std::path::Path,
        c: &WorldId,
        premade: Option<&std::path::Path>,
        sr: &SnapshotRecord,
        i: usize,
        t0: Instant,
    ) -> Result<(WorldCgroup, Vec<String>)> {
        let root = self.world_root(c);
        fs::create_dir_all(self.layout().session_dir(c.as_str()))
            .map_err(|e| WorldError::Io("create run dir", e))?;
        self.make_branch_root(src, stage, c, premade, &root, i, t0)?;
        let mut warnings = Vec::new();
        if let Some(mib) = sr.limits.disk_mib {
            // The child already holds what the snapshot held: it may write
            // only the rest of the limit (at least 64 KiB, so it can still
            // log that it is full).
            let left = (mib << 20).saturating_sub(sr.disk_bytes).max(64 << 10);
            if let Err(e) = btrfs::limit_exclusive(&root, left) {
                warnings.push(format!("disk limit not enforced: {e}"));
            }
            trace_child(i, "disk limit", t0);
        }
        let (cg, w) = WorldCgroup::create(&self.config().cgroup_name, c.as_str(), &sr.limits)?;
        trace_child(i, "cgroup made", t0);
        warnings.extend(w);
        Ok((cg, warnings))
    }

    /// A branch child's root: a writable snapshot of `src` made now, or a
    /// `premade` one, moved into place at `root`.
    #[allow(clippy::too_many_arguments)]
    fn make_branch_root(
        &self,
        src: &std::path::Path,
        stage: &std::path::Path,
        c: &WorldId,
        premade: Option<&std::path::Path>,
        root: &std::path::Path,
        i: usize,
        t0: Instant,
    ) -> Result<()> {
        // Snapshot into this worker's own staging directory, then move the
        // subvolume into place: the ioctl holds its target directory's lock
        // through the transaction commit, so snapshots into one directory
        // serialize, while snapshots into different directories share a
        // commit (measured: 64 roots 550 ms one by one, 80 ms with 16
        // workers).
        let staged = match premade {
            Some(p) => p.to_path_buf(),
            None => {
                let staged = stage.join(c.as_str());
                btrfs::snapshot(src, &staged, false)
                    .map_err(|e| WorldError::Io("branch root", e))?;
                staged
            }
        };
        trace_child(i, "root snapshot", t0);
        if let Err(e) = fs::rename(&staged, root) {
            let _ = btrfs::subvol_delete(&staged);
            return Err(WorldError::Io("move branch root into place", e).into());
        }
        trace_child(i, "root moved", t0);
        Ok(())
    }

    /// Waits for a branch child's init. A pooled shell can die before it
    /// takes the world (killed from outside, e.g. by the OOM killer, just
    /// before the manager handed it out); the world is then asked for
    /// again, up to twice more, with the same listener and cgroup files:
    /// the manager takes another ready shell or makes a fresh init.
    fn wait_init(
        &self,
        conn: &UnixStream,
        mut p: Pending,
        again: &(LaunchSpec, UnixListener, Vec<std::os::fd::OwnedFd>),
    ) -> Result<(i32, u64)> {
        let mut tries = 0;
        loop {
            match p.wait("world init", Duration::from_secs(30)) {
                Err(crate::Error::World(WorldError::Launch(m)))
                    if tries < 2 && m.ends_with("died during setup") =>
                {
                    tries += 1;
                    trace(
                        "branch: an init died before it took its world; asking again",
                        Instant::now(),
                    );
                    p = self.send_world(conn, &again.0, &again.1, &again.2)?;
                }
                r => return r,
            }
        }
    }

    /// Stage 2 of a branch for one child, once its init is up (`up`: its
    /// pid and start time): saves its record and hands its sessions to the
    /// session stage.
    #[allow(clippy::too_many_arguments)]
    fn branch_init_ready(
        &self,
        sr: &SnapshotRecord,
        ids: &[WorldId],
        seeds: &[u64],
        warnings: &[String],
        i: usize,
        up: (i32, u64),
        fds: Vec<SessionFds>,
        init_tx: &mpsc::Sender<ReadyChild>,
        t0: Instant,
    ) -> Result<()> {
        let (pid, st) = up;
        trace_child(i, "init ready", t0);
        WorldRecord {
            id: ids[i].clone(),
            image: sr.image.clone(),
            limits: sr.limits,
            warnings: warnings.to_vec(),
            create_ms: t0.elapsed().as_secs_f64() * 1000.0,
            created_at: crate::linux::now(),
            pid,
            start_time: st,
            lineage: Some(sr.lineage.clone()),
            parent: Some(sr.world.clone()),
            snapshot: Some(sr.id.clone()),
            branch_index: Some(i as u64),
            seed: seeds[i],
            services: sr.services.clone(),
            disk_inherited: sr.disk_bytes,
        }
        .save(self.layout())?;
        // The session stage stops early only when it failed; its error is
        // the one reported.
        let _ = init_tx.send((i, pid, fds));
        Ok(())
    }

    /// The pool of world shells of the lineage that `target` (a world id,
    /// or a snapshot id or name) belongs to; with `set`, first sets how
    /// many shells it keeps (0 empties it). Branches raise it themselves
    /// (see [`crate::SubstrateConfig::pool_max`]).
    pub fn shell_pool(&self, target: &str, set: Option<usize>) -> Result<PoolState> {
        let world = WorldId::new(target).and_then(|w| WorldRecord::load(self.layout(), &w).ok());
        let (lineage, image, snap) = match world {
            Some(r) => {
                let lineage = r.lineage.ok_or_else(|| {
                    failed(format!("world {} predates lineages: it has no pool", r.id))
                })?;
                (lineage, r.image, None)
            }
            None => {
                let sr = self.snapshot_record(target)?;
                (sr.lineage, sr.image, Some(sr.id))
            }
        };
        let img = image::get(self.layout(), &image, self.config().uid_base)?;
        let conn = self.manager(&lineage)?;
        let mut st = match set {
            Some(n) => self.pool_call(&conn, n, false, &img.binds),
            None => self.pool_call(&conn, 0, true, &img.binds),
        }?;
        if let Some(sid) = snap {
            if let Some(n) = set {
                self.set_ready_roots(&sid, n)?;
            }
            st.roots_ready = Some(self.ready_root_count(&sid));
        }
        Ok(st)
    }

    /// Waits until the pool of `target`'s lineage (see [`Self::shell_pool`])
    /// holds `k` ready shells, calling `progress` with each state it sees;
    /// fails after `timeout`.
    pub fn wait_shell_pool(
        &self,
        target: &str,
        k: usize,
        timeout: Duration,
        mut progress: impl FnMut(&PoolState),
    ) -> Result<PoolState> {
        let t = Instant::now();
        loop {
            let st = self.shell_pool(target, None)?;
            progress(&st);
            let roots = k.min(self.config().pool_max);
            let roots_ok = st.roots_ready.is_none_or(|r| r >= roots);
            if st.ready >= k && roots_ok {
                return Ok(st);
            }
            if t.elapsed() > timeout {
                return Err(failed(if roots_ok {
                    format!(
                        "pool of {target}: only {} of {k} shells ready after {:.0} s (a shell that \
                         cannot start says why in its lineage's log, under the run directory's lineages/)",
                        st.ready,
                        timeout.as_secs_f64()
                    )
                } else {
                    format!(
                        "pool of {target}: only {} of {roots} branch roots ready after {:.0} s \
                         (the refill job says why in roots.log, in the snapshot's run directory)",
                        st.roots_ready.unwrap_or(0),
                        timeout.as_secs_f64()
                    )
                }));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Declares a service: a command started now (in the background) and
    /// again in every world branched from this one later. Replaces a
    /// service of the same name.
    pub fn declare_service(&self, id: &WorldId, name: &str, req: &ExecRequest) -> Result<()> {
        if !crate::session::valid_name(name) {
            return Err(SnapshotError::InvalidName(name.into()).into());
        }
        let mut rec = self.running(id)?;
        let svc = Service {
            name: name.to_string(),
            request: req.clone(),
        };
        rec.services.retain(|s| s.name != name);
        rec.services.push(svc.clone());
        rec.save(self.layout())?;
        self.start_service(id, &svc)
    }

    /// Declared services of a world.
    pub fn services(&self, id: &WorldId) -> Result<Vec<Service>> {
        Ok(WorldRecord::load(self.layout(), id)?.services)
    }

    fn start_service(&self, id: &WorldId, svc: &Service) -> Result<()> {
        let script = format!(
            "mkdir -p /var/log/world-services && (\"$0\" \"$@\" >>/var/log/world-services/{}.log 2>&1 </dev/null &)",
            svc.name
        );
        let mut argv = vec!["/bin/sh".to_string(), "-c".into(), script];
        argv.extend(svc.request.argv.iter().cloned());
        let req = ExecRequest {
            argv,
            env: svc.request.env.clone(),
            cwd: svc.request.cwd.clone(),
            timeout: Some(Duration::from_secs(30)),
            tty: false,
        };
        let o = self.exec_output(id, &req, b"")?;
        if o.status.exit_code != 0 {
            return Err(failed(format!(
                "service start exited {}: {}",
                o.status.exit_code,
                String::from_utf8_lossy(&o.stderr)
            )));
        }
        Ok(())
    }

    /// Where a world came from: (lineage, parent world, snapshot, seed).
    pub fn world_origin(&self, id: &WorldId) -> Result<super::Origin> {
        let r = WorldRecord::load(self.layout(), id)?;
        Ok(super::Origin {
            lineage: r.lineage,
            parent: r.parent,
            snapshot: r.snapshot,
            branch_index: r.branch_index,
            seed: r.seed,
        })
    }

    /// The kernel's share of a branch of `k` children and nothing else,
    /// for the floor row of `world bench branch`: one writable btrfs
    /// snapshot of the snapshot's root per child (by as many worker threads
    /// as a branch uses, into their own directories) and, meanwhile, one
    /// process per child cloned into new mount, uts, ipc, network and pid
    /// namespaces, which exits at once. No cgroup, no init, no session.
    /// Returns the wall time in ms; removes what it made afterwards.
    pub fn kernel_floor(&self, snap: &str, k: usize) -> Result<f64> {
        let sr = self.snapshot_record(snap)?;
        let src = self.layout().snapshot_root(&sr.id);
        let ids: Vec<WorldId> = (0..k).map(|_| WorldId::random()).collect();
        let flags = libc::CLONE_NEWNS
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWPID;
        let t = Instant::now();
        let (roots, procs) = std::thread::scope(|sc| {
            let roots = sc.spawn(|| Roots::make(self.layout(), &src, &ids));
            let procs = (0..k).try_for_each(|_| -> std::io::Result<()> {
                let pid = sys::clone_fork(flags)?;
                if pid == 0 {
                    // SAFETY: in the child of a clone of this multithreaded
                    // process only async-signal-safe calls are allowed;
                    // `_exit` is one.
                    unsafe { libc::_exit(0) };
                }
                sys::waitpid(pid, 0).map(drop)
            });
            let roots = roots
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("panicked")));
            (roots, procs)
        });
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let mut roots = roots.map_err(|e| WorldError::Io("floor: btrfs snapshots", e))?;
        roots.remove();
        procs.map_err(|e| WorldError::Io("floor: namespaced processes", e))?;
        Ok(ms)
    }

    /// Removes empty cgroups (under this store's cgroup parent) that are
    /// older than `min_age` and that no world, snapshot or lineage of this
    /// store names. See [`crate::cgroup::sweep_orphans`].
    pub(crate) fn sweep_cgroups(&self, min_age: Duration) -> Vec<String> {
        let l = self.layout();
        let known = |n: &str| cgroup_has_record(l, n);
        crate::cgroup::sweep_orphans(&self.config().cgroup_name, &known, min_age)
    }

    /// Kills what runs in cgroups no record names (see
    /// [`crate::cgroup::kill_orphans`]): a process is this store's when its
    /// command line names a lineage socket under this store's run
    /// directory (lineage managers, their signal guards and world inits
    /// all carry the launch spec).
    fn kill_orphan_processes(&self) -> Vec<String> {
        let l = self.layout();
        let known = |n: &str| cgroup_has_record(l, n);
        let mark = l.run.join("lineages").to_string_lossy().into_owned();
        let ours = |pid: i32| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&format!("\"sock\":\"{mark}/")))
        };
        crate::cgroup::kill_orphans(
            &self.config().cgroup_name,
            &known,
            ORPHAN_PROCESS_AGE,
            &ours,
        )
    }

    /// Repairs what a crash (e.g. `kill -9` during a branch) left behind.
    /// Call it once at startup, before other operations: half-made worlds
    /// and snapshots of dead operations are removed, subvolumes without a
    /// record are deleted, dead lineage managers are cleaned up and unused
    /// ones stopped, empty cgroups nothing owns (older than a minute) are
    /// removed. Worlds whose init died stay listed as dead (destroy
    /// them).
    pub fn repair(&self) -> Result<RepairReport> {
        crate::storage::ensure_mounted(
            self.layout(),
            self.config().storage_size_mib,
            self.config().uid_base,
        )?;
        let l = self.layout().clone();
        // Spares are made again by the next create; stopping them here
        // leaves repair nothing to guess about them.
        let mut rep = RepairReport {
            stopped_spares: self.drop_spares(None),
            ..RepairReport::default()
        };
        for (path, j) in stale_journals(&l) {
            // A snapshot that died between freezing its world and thawing it.
            if let Some(w) = &j.frozen {
                if WorldRecord::load(&l, w).is_ok() {
                    let cg = WorldCgroup::open(&self.config().cgroup_name, w.as_str());
                    if cg.thaw().is_ok() {
                        rep.thawed_worlds.push(w.clone());
                    }
                }
            }
            for w in &j.worlds {
                let r = WorldRecord::load(&l, w).ok();
                if r.is_some() || self.world_root(w).exists() || l.world_run(w.as_str()).exists() {
                    self.teardown(w.as_str(), r.as_ref())?;
                    rep.removed_worlds.push(w.clone());
                }
            }
            if let Some(s) = &j.snapshot {
                if SnapshotRecord::load(&l, s).is_none() || l.snapshot_root(s).exists() {
                    self.remove_snapshot(s)?;
                    rep.removed_snapshots.push(s.clone());
                }
            }
            let _ = fs::remove_file(path);
        }
        // Protected: whatever a live operation is making right now.
        let mut busy: Vec<String> = Vec::new();
        for e in fs::read_dir(l.pending_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(b) = fs::read(e.path()) {
                if let Ok(j) = serde_json::from_slice::<Journal>(&b) {
                    busy.extend(j.worlds.iter().map(|w| w.to_string()));
                    busy.extend(j.snapshot);
                }
            }
        }
        // Ids claimed by a create whose process died before it wrote the
        // world's record (the claim names the creating process).
        for id in WorldRecord::all_ids(&l) {
            if busy.contains(&id.to_string()) || WorldRecord::load(&l, &id).is_ok() {
                continue;
            }
            if claim_is_live(&l.world_meta(id.as_str())) {
                continue;
            }
            self.teardown(id.as_str(), None)?;
            rep.removed_worlds.push(id);
        }
        for e in fs::read_dir(l.mount_point().join("worlds"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let n = e.file_name().to_string_lossy().into_owned();
            if busy.contains(&n) || l.world_meta(&n).exists() {
                continue;
            }
            self.teardown(&n, None)?;
            rep.removed_subvolumes.push(format!("worlds/{n}"));
        }
        // Branch roots a crash left in staging (before their move).
        for d in fs::read_dir(staging_dir(&l))
            .into_iter()
            .flatten()
            .flatten()
        {
            for e in fs::read_dir(d.path()).into_iter().flatten().flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if busy.contains(&n) {
                    continue;
                }
                btrfs::subvol_delete(&e.path())
                    .map_err(|e| WorldError::Io("delete staged branch root", e))?;
                rep.removed_subvolumes.push(format!("staging/{n}"));
            }
            let _ = fs::remove_dir(d.path());
        }
        for e in fs::read_dir(l.mount_point().join("snapshots"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let n = e.file_name().to_string_lossy().into_owned();
            if busy.contains(&n) || l.snapshot_meta(&n).exists() {
                continue;
            }
            self.remove_snapshot(&n)?;
            rep.removed_subvolumes.push(format!("snapshots/{n}"));
        }
        rep.removed_subvolumes
            .extend(self.drop_orphan_ready_roots(&busy)?);
        for lid in LineageRecord::all_ids(&l) {
            if self.is_spare(&lid) {
                continue;
            }
            let alive = LineageRecord::load(&l, &lid).is_some_and(|r| r.alive());
            if !alive {
                self.stop_lineage(&lid)?;
                rep.stopped_lineages.push(lid);
            } else {
                self.release_lineage(&lid)?;
                if LineageRecord::load(&l, &lid).is_none() {
                    rep.stopped_lineages.push(lid);
                }
            }
        }
        rep.killed_orphans = self.kill_orphan_processes();
        rep.removed_cgroups = self.sweep_cgroups(ORPHAN_CGROUP_AGE);
        rep.dead_worlds = self
            .list()?
            .into_iter()
            .filter(|w| w.state == WorldState::Lost)
            .map(|w| w.id)
            .collect();
        Ok(rep)
    }
}
