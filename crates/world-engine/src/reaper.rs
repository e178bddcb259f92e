//! The reaper: releases collapsed worlds in the background.
//!
//! A pull_up makes the losing worlds and the push_down's snapshot vanish at
//! once (`LinuxSubstrate::collapse`: processes killed, records removed);
//! what remains is releasing their cgroups, subvolumes and lineages, which
//! nobody can observe. A long-lived engine (`StoreMode::Held`) hands that
//! to this thread, at background CPU priority, so it leaves the critical
//! path; a one-shot engine finishes it in line. Dropping the last clone of
//! the engine waits for the reaper to finish everything handed to it; a
//! process killed before that leaves a stale journal that `world repair`
//! (which the daemon runs when it starts) completes.

use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;

use world_substrate::snapshot::Collapsing;

/// The reaper thread and its queue.
#[derive(Debug)]
pub(crate) struct Reaper {
    queue: Mutex<Option<Sender<Box<Collapsing>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Reaper {
    /// Starts the thread; `None` if it cannot be started (then callers
    /// release in line).
    pub(crate) fn start() -> Option<Reaper> {
        let (tx, rx) = channel::<Box<Collapsing>>();
        let thread = std::thread::Builder::new()
            .name("world-reaper".into())
            .spawn(move || {
                let _ = world_substrate::set_thread_background(true);
                for c in rx {
                    let what: Vec<String> = c
                        .worlds()
                        .map(|w| w.to_string())
                        .chain(c.snapshot().map(str::to_string))
                        .collect();
                    if let Err(e) = c.finish() {
                        eprintln!(
                            "world: releasing {} failed: {e} (`world repair` finishes it)",
                            what.join(", ")
                        );
                    }
                }
            })
            .ok()?;
        Some(Reaper {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Releases `c` in the background (in line if the thread is gone).
    pub(crate) fn release(&self, c: Collapsing) -> world_substrate::Result<()> {
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        match queue.as_ref().map(|q| q.send(Box::new(c))) {
            Some(Ok(())) => Ok(()),
            Some(Err(failed)) => failed.0.finish(),
            None => Ok(()),
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has released everything.
        drop(self.queue.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}
