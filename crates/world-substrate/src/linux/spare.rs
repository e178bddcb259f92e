//! Spare worlds: `create` served from lineages made ahead of time.
//!
//! Most of a cold `create` is spent on what no request changes: starting a
//! lineage (a supervisor process, the user and pid namespaces, the manager,
//! ~15-20 ms), cloning a world init with its namespaces and staged mounts,
//! and snapshotting the image into a root. A *spare* is all of that, made
//! before anyone asks, for one image:
//!
//! * a lineage whose manager keeps one pooled world shell for the image's
//!   binds (`docs/snapshots.md`, "pool"), in cgroups with `cpu.idle = 1`;
//! * a root subvolume snapshot of the image, `fs/spares/<lineage>`;
//! * a marker `run/spares/<image>/<lineage>`, written last, when the shell
//!   is ready: only a marked spare is ever taken.
//!
//! `create` takes a spare by unlinking its marker (exactly one caller
//! wins), renames its root to `fs/worlds/<id>`, gives its lineage normal
//! CPU weight again and asks its manager for the world, which the shell
//! becomes (pivot into the root, hostname, cgroup with the request's
//! limits). What a request decides (id, limits, environment, seed) is
//! applied then, so a world from a spare is the same as a cold one; a
//! spare has never run anything but our own code, so nothing passes from
//! one world to another through it.
//!
//! **Refill.** After each `create` of an image, when fewer than
//! [`crate::SubstrateConfig::spares`] of its spares are ready and no refill
//! runs, a detached job ([`super::job`]) makes spares until there are
//! enough. It runs in the `spares` cgroup with `cpu.idle = 1`, and the
//! lineages it starts stay idle until taken, so refilling only uses CPU
//! that nothing else wants; it starts 50 ms after the create, out of the
//! way of the caller's next steps. One job per image at a time: it holds
//! an `flock` on `run/spares/<image>.lock` from its start.
//!
//! **Lifetime.** Spares live until taken, until `world spares --drop`,
//! `repair` or `unmount_storage` (which stop them all, after a running
//! job is done), or until `image rm` of their image. A spare whose manager
//! died (a reboot) is discarded by the next refill or when found. A shell idle for 5 minutes is
//! trimmed by its manager; the spare then still saves the lineage launch
//! and the root snapshot, and its manager clones the init on request.
//! `WORLD_SPARES=0` turns spares off.

use std::fs;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::job::{try_lock, Work, REFILL_DELAY};
use super::LinuxSubstrate;
use crate::cgroup::WorldCgroup;
use crate::error::{Result, WorldError};
use crate::lineage::{self, LineageRecord};
use crate::{btrfs, image, storage};

/// How long a refill waits for a new spare's shell to be ready.
const SHELL_READY_WAIT: Duration = Duration::from_secs(30);

/// A spare taken by `create`: its lineage (manager running, CPU weight
/// restored) and its root subvolume, still at its spare path.
#[derive(Debug)]
pub(crate) struct Spare {
    pub lineage: LineageRecord,
    pub root: PathBuf,
}

/// Ready spares of one image (`world spares`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpareCount {
    /// Image name.
    pub image: String,
    /// Spares ready to be taken.
    pub ready: usize,
}

/// The directory of an image's spare markers.
fn marker_dir(l: &storage::Layout, image: &str) -> PathBuf {
    l.run.join("spares").join(image)
}

/// Where a spare's root waits.
fn spare_root(l: &storage::Layout, lineage: &str) -> PathBuf {
    l.mount_point().join("spares").join(lineage)
}

/// The lock a refill job of `image` holds while it runs.
fn lock_path(l: &storage::Layout, image: &str) -> PathBuf {
    l.run.join("spares").join(format!("{image}.lock"))
}

/// Lineage ids of the marked spares of `image`.
fn marked(l: &storage::Layout, image: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(marker_dir(l, image))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("l-") && !n.contains('.'))
        .collect();
    v.sort();
    v
}

impl LinuxSubstrate {
    /// Takes a ready spare of `image`, if one is there. Spares whose
    /// manager died are discarded on the way.
    pub(crate) fn take_spare(&self, image: &str) -> Option<Spare> {
        if self.cfg.spares == 0 {
            return None;
        }
        for lid in marked(&self.layout, image) {
            // Unlinking the marker is the claim: one caller wins.
            if fs::remove_file(marker_dir(&self.layout, image).join(&lid)).is_err() {
                continue;
            }
            let root = spare_root(&self.layout, &lid);
            match LineageRecord::load(&self.layout, &lid).filter(LineageRecord::alive) {
                Some(rec) if root.exists() => {
                    let cg = WorldCgroup::open(&self.cfg.cgroup_name, &lineage::cgroup_id(&lid));
                    cg.set_idle_to(false);
                    return Some(Spare { lineage: rec, root });
                }
                _ => self.discard_spare(&lid),
            }
        }
        None
    }

    /// Discards spares whose manager is gone (a reboot empties the run
    /// directory, markers included, and leaves roots and records). Safe
    /// beside jobs of other images: a spare's root is made only after its
    /// lineage runs.
    fn discard_dead_spares(&self) {
        for e in fs::read_dir(self.layout.mount_point().join("spares"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let lid = e.file_name().to_string_lossy().into_owned();
            let alive = LineageRecord::load(&self.layout, &lid).is_some_and(|r| r.alive());
            if lid.starts_with("l-") && !alive {
                for d in fs::read_dir(self.layout.run.join("spares"))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let _ = fs::remove_file(d.path().join(&lid));
                }
                self.discard_spare(&lid);
            }
        }
    }

    /// Turns the cgroup of taken spare `lid`, its shell inside, into world
    /// `id`'s with `limits` (see [`WorldCgroup::rename_into`]); `None`
    /// where the kernel cannot rename it (then the caller makes one and
    /// the shell moves).
    pub(crate) fn spare_cgroup_into(
        &self,
        lid: &str,
        id: &str,
        limits: &crate::types::Limits,
    ) -> Option<(WorldCgroup, Vec<String>)> {
        WorldCgroup::rename_into(
            &self.cfg.cgroup_name,
            &lineage::spare_cgroup_id(lid),
            id,
            limits,
        )
        .ok()
    }

    /// Stops a spare's lineage (its cgroups included) and deletes its root.
    pub(crate) fn discard_spare(&self, lid: &str) {
        let _ = self.stop_lineage(lid);
        let root = spare_root(&self.layout, lid);
        if root.exists() {
            let _ = btrfs::subvol_delete(&root);
        }
    }

    /// Starts a refill job for `image` unless enough spares are ready or a
    /// job already runs. Never waits for the job; never fails the caller.
    pub(crate) fn refill_spares(&self, image: &str) {
        if self.cfg.spares == 0 || marked(&self.layout, image).len() >= self.cfg.spares {
            return;
        }
        let dir = marker_dir(&self.layout, image);
        if fs::create_dir_all(&dir).is_err() {
            return;
        }
        if let Some(p) = dir.parent() {
            let _ = crate::access::private_dir(p);
        }
        // Held by a running job: it makes spares until there are enough,
        // counting the one just taken. Released at once otherwise.
        if try_lock(&lock_path(&self.layout, image)).is_none() {
            return;
        }
        self.start_job(
            Work::Spares {
                image: image.to_string(),
            },
            &self.layout.run.join("spares").join("log"),
        );
    }

    /// Makes spares of `image` until [`SubstrateConfig::spares`] are
    /// ready. The body of the refill job, which holds the image's lock.
    fn fill_spares(&self, image: &str) -> Result<usize> {
        self.discard_dead_spares();
        let mut made = 0;
        while marked(&self.layout, image).len() < self.cfg.spares {
            self.make_spare(image)?;
            made += 1;
        }
        Ok(made)
    }

    /// Makes one spare of `image` and marks it ready.
    fn make_spare(&self, image: &str) -> Result<()> {
        let img = image::get(&self.layout, image, self.cfg.uid_base)?;
        let lin = self.launch_lineage_as(true)?;
        let lid = lin.id.clone();
        let made = (|| {
            let spares = self.layout.mount_point().join("spares");
            fs::create_dir_all(&spares).map_err(|e| WorldError::Io("create spares dir", e))?;
            crate::access::private_dir(&spares)
                .map_err(|e| WorldError::Io("restrict spares dir", e))?;
            btrfs::snapshot(
                &self.layout.image_root(&img.name),
                &spare_root(&self.layout, &lid),
                false,
            )
            .map_err(|e| WorldError::Io("snapshot image for a spare", e))?;
            let t0 = Instant::now();
            loop {
                // A connection per call: the manager serves one connection
                // until it closes, and makes shells only between them.
                let st = self.pool_call(&self.manager(&lid)?, 1, false, &img.binds)?;
                if st.ready >= 1 {
                    break;
                }
                if st.want == 0 || t0.elapsed() > SHELL_READY_WAIT {
                    return Err(WorldError::Launch(
                        "the spare's world shell did not get ready".into(),
                    )
                    .into());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let dir = marker_dir(&self.layout, image);
            let tmp = dir.join(format!("{lid}.tmp"));
            let mut f = fs::File::create(&tmp).map_err(|e| WorldError::Io("mark spare", e))?;
            writeln!(f, "{}", img.name).map_err(|e| WorldError::Io("mark spare", e))?;
            fs::rename(&tmp, dir.join(&lid)).map_err(|e| WorldError::Io("mark spare", e))?;
            Ok(())
        })();
        if made.is_err() {
            self.discard_spare(&lid);
        }
        made
    }

    /// Stops the spares of `image` (every image: `None`), after waiting
    /// for a refill job that is running. Returns how many were stopped.
    pub fn drop_spares(&self, image: Option<&str>) -> usize {
        let base = self.layout.run.join("spares");
        let images: Vec<String> = match image {
            Some(i) => vec![i.to_string()],
            None => fs::read_dir(&base)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
        };
        let mut n = 0;
        for img in images {
            // A running job holds the lock until it is done.
            let _lock = storage::Lock::take(&lock_path(&self.layout, &img)).ok();
            for lid in marked(&self.layout, &img) {
                if fs::remove_file(marker_dir(&self.layout, &img).join(&lid)).is_ok() {
                    self.discard_spare(&lid);
                    n += 1;
                }
            }
        }
        // Roots no marker names (a job killed half-way).
        for e in fs::read_dir(self.layout.mount_point().join("spares"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let lid = e.file_name().to_string_lossy().into_owned();
            if !lid.starts_with("l-") {
                continue;
            }
            let marked_somewhere = fs::read_dir(&base)
                .into_iter()
                .flatten()
                .flatten()
                .any(|d| d.path().join(&lid).exists());
            if !marked_somewhere {
                self.discard_spare(&lid);
            }
        }
        // The jobs' cgroup, once their last process is gone.
        let jobs = WorldCgroup::open(&self.cfg.cgroup_name, super::job::JOBS_CGROUP);
        for _ in 0..100 {
            if !jobs.exists() || jobs.remove().is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        n
    }

    /// Whether lineage `lid` is a spare nobody has taken (repair leaves
    /// those to [`Self::drop_spares`]).
    pub(crate) fn is_spare(&self, lid: &str) -> bool {
        spare_root(&self.layout, lid).exists()
    }

    /// Ready spares per image, by image name.
    pub fn spares(&self) -> Vec<SpareCount> {
        let mut v: Vec<SpareCount> = fs::read_dir(self.layout.run.join("spares"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| {
                let image = e.file_name().to_string_lossy().into_owned();
                SpareCount {
                    ready: marked(&self.layout, &image).len(),
                    image,
                }
            })
            .collect();
        v.sort_by(|a, b| a.image.cmp(&b.image));
        v
    }

    /// Number of ready spares of `image`.
    pub fn spares_ready(&self, image: &str) -> usize {
        marked(&self.layout, image).len()
    }
}

impl LinuxSubstrate {
    /// The refill job of `image` (see [`super::job`]): holds the image's
    /// lock from its start, so that `drop_spares` (repair, unmount) waits
    /// for it; a job that gets it after a drop finds the store unmounted
    /// (it never mounts it) and stops.
    pub(crate) fn spares_job(&self, image: &str) -> Result<()> {
        let Some(_lock) = try_lock(&lock_path(&self.layout, image)) else {
            return Ok(());
        };
        if !self.store_mounted() {
            return Ok(());
        }
        std::thread::sleep(REFILL_DELAY);
        if !self.store_mounted() {
            return Ok(());
        }
        self.join_idle_cgroup();
        self.fill_spares(image).map(drop)
    }
}
