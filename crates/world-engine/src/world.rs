//! World lifecycle: create, list, inspect, exec, copy, destroy, images.
//!
//! The substrate does the work; the engine records it. Every world is a
//! `world_runtime_entities` row (`entity_type = 'sandbox'`, limits,
//! `boot_time_ms` = the measured create time, `state`) with a
//! `runtime_metrics` row. If recording fails after a world was created,
//! the world is destroyed again, so a failed `create` leaves nothing.
//! Destroyed worlds keep their entity row with `state = 'destroyed'`.
//! Execs are not written to the database: opening it would cost more than
//! the exec itself.

use std::path::Path;

use world_core::lifecycle::State;
use world_store::NewEntity;
use world_substrate::{
    CreateOptions, Created, ExecRequest, ExecStatus, ExecStdio, ImageInfo, Substrate, WorldId,
    WorldInfo,
};

use crate::{Engine, Error, Result};

/// Parses a world id with a clear error.
pub fn world_id(s: &str) -> Result<WorldId> {
    WorldId::new(s).ok_or_else(|| {
        Error::Invalid(format!(
            "{s:?} is not a world id (1-32 characters of a-z, 0-9 and '-')"
        ))
    })
}

impl Engine {
    /// Creates a world and records it.
    pub fn world_create(&self, opts: &CreateOptions) -> Result<Created> {
        let sub = self.substrate()?;
        let created = sub.create(opts)?;
        let record = || -> Result<()> {
            let store = self.store()?;
            store.insert_entity(&NewEntity {
                entity_id: created.id.as_str().to_string(),
                entity_type: "sandbox".into(),
                state: State::Running,
                memory_mib: i32::try_from(opts.limits.mem_size_mib).ok(),
                vcpu_count: i32::try_from(opts.limits.vcpu_count).ok(),
                boot_time_ms: Some(created.create_ms),
                ..NewEntity::default()
            })?;
            store.insert_metric(
                created.id.as_str(),
                Some(created.create_ms),
                None,
                None,
                None,
            )?;
            Ok(())
        };
        if let Err(e) = record() {
            // Leave nothing half-made: a world that is not recorded is removed.
            let _ = sub.destroy(&created.id);
            return Err(e);
        }
        Ok(created)
    }

    /// All worlds the substrate knows.
    pub fn world_list(&self) -> Result<Vec<WorldInfo>> {
        Ok(self.substrate()?.list()?)
    }

    /// One world with its current usage.
    pub fn world_inspect(&self, id: &WorldId) -> Result<WorldInfo> {
        Ok(self.substrate()?.inspect(id)?)
    }

    /// Runs a command in a world feeding `stdin` and capturing its output
    /// (each stream bounded, see `world_substrate::capture`).
    pub fn world_exec_output(
        &self,
        id: &WorldId,
        req: &ExecRequest,
        stdin: &[u8],
    ) -> Result<world_substrate::ExecOutput> {
        if req.argv.is_empty() {
            return Err(Error::Invalid("no command given".into()));
        }
        Ok(self.substrate()?.exec_output(id, req, stdin)?)
    }

    /// Runs a command in a world with the caller's stdio.
    pub fn world_exec(
        &self,
        id: &WorldId,
        req: &ExecRequest,
        stdio: ExecStdio<'_>,
    ) -> Result<ExecStatus> {
        if req.argv.is_empty() {
            return Err(Error::Invalid(
                "no command given (world exec ID -- CMD ARGS)".into(),
            ));
        }
        Ok(self.substrate()?.exec(id, req, stdio)?)
    }

    /// Copies a host path into directory `world_dir` of a world.
    pub fn world_copy_in(&self, id: &WorldId, host_src: &Path, world_dir: &str) -> Result<()> {
        Ok(self.substrate()?.copy_in(id, host_src, world_dir)?)
    }

    /// Copies a world path into host directory `host_dir`.
    pub fn world_copy_out(&self, id: &WorldId, world_src: &str, host_dir: &Path) -> Result<()> {
        Ok(self.substrate()?.copy_out(id, world_src, host_dir)?)
    }

    /// Destroys a world (paused or not) and marks its entity `destroyed`.
    pub fn world_destroy(&self, id: &WorldId) -> Result<()> {
        self.substrate()?.destroy(id)?;
        self.record_state(id, State::Destroyed, true)
    }

    /// Pauses a running world (every process frozen, memory kept) and
    /// records it `paused`; it then refuses exec, code, snapshot and
    /// branch until [`Engine::world_resume`]. A paused world stays as it
    /// is; any other state is refused by the lifecycle.
    pub fn world_pause(&self, id: &WorldId) -> Result<()> {
        let sub = self.substrate()?;
        if sub.inspect(id)?.state == State::Paused {
            return Ok(());
        }
        sub.pause(id)?;
        self.record_state(id, State::Paused, false)
    }

    /// Resumes a paused world and records it `running` again; a running
    /// world stays as it is.
    pub fn world_resume(&self, id: &WorldId) -> Result<()> {
        let sub = self.substrate()?;
        if sub.inspect(id)?.state == State::Running {
            return Ok(());
        }
        sub.resume(id)?;
        self.record_state(id, State::Running, false)
    }

    fn record_state(&self, id: &WorldId, state: State, resolved: bool) -> Result<()> {
        match self.store()?.set_entity_state(id.as_str(), state, resolved) {
            // A world created by an older build may have no row: not an error.
            Ok(()) | Err(world_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Imports a root filesystem (directory or tar) as an image.
    pub fn image_import(&self, name: &str, src: &Path) -> Result<ImageInfo> {
        Ok(self.substrate()?.image_import(name, src)?)
    }

    /// Lists images.
    pub fn image_list(&self) -> Result<Vec<ImageInfo>> {
        Ok(self.substrate()?.image_list()?)
    }

    /// Removes an image (refused while a world uses it).
    pub fn image_rm(&self, name: &str) -> Result<()> {
        Ok(self.substrate()?.image_rm(name)?)
    }
}
