//! Enforces TTLs: once a second, worlds whose TTL expired are destroyed
//! (`ttl_action` `stop`, the default) or paused (`pause`), and expired
//! snapshots are deleted.

use std::sync::Arc;
use std::time::Duration;

use world_substrate::{WorldId, WorldState};

use crate::meta::{now, Ttl, TtlAction};
use crate::state::AppState;

/// Runs until `stop` turns true.
pub async fn run(st: Arc<AppState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let st2 = st.clone();
        let _ = tokio::task::spawn_blocking(move || sweep(&st2)).await;
    }
}

fn expired(t: &Ttl, now: u64) -> bool {
    t.ttl_expire_at.is_some_and(|e| e <= now)
}

/// The sweep goes on after a failed write; the next one tries again.
fn logged<T>(r: world_engine::Result<T>) {
    if let Err(e) = r {
        eprintln!("world-serve: TTL sweep: {e}");
    }
}

fn sweep(st: &AppState) {
    let t = now();
    let m = match st.engine.meta_all() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("world-serve: TTL sweep: {e}");
            return;
        }
    };
    for (id, w) in &m.worlds {
        if !expired(&w.ttl, t) {
            continue;
        }
        let Some(wid) = WorldId::new(id) else {
            continue;
        };
        if w.ttl.ttl_action == Some(TtlAction::Pause) {
            // Paused (now or already): the TTL is spent either way.
            let paused = match st.engine.world_pause(&wid) {
                Ok(()) => true,
                Err(e) => {
                    st.engine
                        .world_inspect(&wid)
                        .is_ok_and(|i| i.state == WorldState::Paused)
                        || {
                            eprintln!("world-serve: TTL pause of {id}: {e}");
                            false
                        }
                }
            };
            if paused {
                logged(
                    st.engine.meta_update(|f| {
                        f.worlds.entry(id.clone()).or_default().ttl = Ttl::default()
                    }),
                );
            }
        } else if let Err(e) = st.destroy_world(&wid) {
            if e.status == axum::http::StatusCode::NOT_FOUND {
                logged(st.engine.meta_update(|f| f.worlds.remove(id)));
            } else {
                eprintln!("world-serve: TTL of {id}: {e}");
            }
        }
    }
    for (id, s) in &m.snapshots {
        if !expired(&s.ttl, t) {
            continue;
        }
        let r = st.engine.snapshot_delete(id);
        match r {
            Ok(()) => {
                logged(st.engine.meta_update(|f| f.snapshots.remove(id)));
            }
            Err(e) if e.kind() == world_engine::ErrorKind::NotFound => {
                logged(st.engine.meta_update(|f| f.snapshots.remove(id)));
            }
            Err(e) => eprintln!("world-serve: TTL of snapshot {id}: {e}"),
        }
    }
}
