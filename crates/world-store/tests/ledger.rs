//! The ledger through the store: a lifecycle round-trips, a refused batch
//! writes nothing, and a writer killed with SIGKILL mid-stream leaves a
//! database whose journal, balances and conservation invariant agree.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{o, seed_children, t};
use world_core::ids::{PartitionId, VerseId};
use world_core::ledger::{Ledger, Op};
use world_core::seed::SplitMix64;
use world_store::Store;

fn setup() -> Vec<Op> {
    common::setup(&["a", "b", "c"])
}

/// A random (possibly refused) operation on the setup above.
fn random_op(rng: &mut SplitMix64) -> Op {
    let owners = ["a", "b", "c"];
    common::random_op(rng, &|r| o(owners[(r % 3) as usize]), false)
}

fn total_per_leaf(l: &Ledger) -> Vec<u128> {
    l.outcome_totals(&t("usd")).values().copied().collect()
}

#[test]
fn lifecycle_round_trips_through_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.duckdb");
    let store = Store::open(&path).unwrap();
    store.apply(&setup()).unwrap();
    let mut rng = SplitMix64::new(7);
    let mut committed = 0;
    for _ in 0..200 {
        if store.apply(&[random_op(&mut rng)]).is_ok() {
            committed += 1;
        }
    }
    assert!(committed > 50, "enough operations committed ({committed})");
    store
        .apply(&[Op::Resolve {
            partition: PartitionId(1),
            winner: VerseId(3),
            oracle_source: "explicit".into(),
        }])
        .unwrap();
    let before = store.load_ledger().unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    let after = store.load_ledger().unwrap();
    assert_eq!(before, after, "state survives close and reopen");
    assert_eq!(
        after,
        store.replay_journal().unwrap(),
        "journal replays to the state"
    );
    // Evaporated verses are collapsed entities; the resolution is recorded.
    let collapsed: i64 = store
        .connection()
        .query_row(
            "SELECT count(*) FROM world_runtime_entities WHERE state = 'collapsed' AND resolved_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(collapsed, 2);
    let res = store.resolutions(10).unwrap();
    assert_eq!(res.len(), 1);
    assert_eq!(res[0].winning_verse.as_deref(), Some("v3"));
    assert_eq!(res[0].verses, ["v2", "v3", "v4"]);
}

#[test]
fn a_refused_batch_writes_nothing() {
    let store = Store::open_in_memory().unwrap();
    store.apply(&setup()).unwrap();
    let state = store.load_ledger().unwrap();
    let rows = store.journal_len().unwrap();
    let err = store
        .apply(&[
            Op::PushDown {
                token: t("usd"),
                owner: o("a"),
                parent: VerseId(1),
                amount: 10,
            },
            Op::PushDown {
                token: t("usd"),
                owner: o("a"),
                parent: VerseId(1),
                amount: 5000,
            },
        ])
        .unwrap_err();
    assert!(
        matches!(err, world_store::Error::BatchOp { index: 1, .. }),
        "{err}"
    );
    assert_eq!(store.load_ledger().unwrap(), state);
    assert_eq!(store.journal_len().unwrap(), rows);
}

/// Child half of the kill -9 test: writes forever until killed.
#[test]
#[ignore = "run by kill9_mid_batch_leaves_a_consistent_database"]
fn writer_child() {
    let Ok(path) = std::env::var("WORLD_STORE_WRITER_DB") else {
        return;
    };
    let store = Store::open(std::path::Path::new(&path)).unwrap();
    // Refused (whole) in later rounds: v1 is already partitioned.
    let _ = store.apply(&setup());
    drop(store);
    let mut rng = SplitMix64::new(99);
    loop {
        // Short-lived connections, batches of 25 all-or-nothing operations.
        let store = Store::open(std::path::Path::new(&path)).unwrap();
        for _ in 0..20 {
            let batch: Vec<Op> = (0..25).map(|_| random_op(&mut rng)).collect();
            let _ = store.apply(&batch);
            let _ = store.apply(&[random_op(&mut rng)]);
        }
    }
}

#[test]
fn kill9_mid_batch_leaves_a_consistent_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.duckdb");
    let me = std::env::current_exe().unwrap();
    for round in 0..3 {
        let mut child = Command::new(&me)
            .args([
                "--exact",
                "writer_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("WORLD_STORE_WRITER_DB", &path)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(800 + 300 * round));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let store = Store::open(&path).unwrap();
        let stored = store.load_ledger().unwrap();
        let replayed = store.replay_journal().unwrap();
        assert_eq!(stored, replayed, "round {round}: journal and state agree");
        // Conservation: every live leaf still totals the 3000 deposited.
        for total in total_per_leaf(&stored) {
            assert_eq!(total, 3000, "round {round}: value conserved");
        }
        assert!(
            store.journal_len().unwrap() > 5,
            "the writer committed something"
        );
    }
}

/// The ledger cache: with random operations (some refused) through two
/// connections of one database, the cached ledger always equals the tables.
#[test]
fn the_ledger_cache_always_equals_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.duckdb");
    let a = Store::open(&path).unwrap();
    let b = a.try_clone().unwrap();
    a.apply(&setup()).unwrap();
    let mut rng = SplitMix64::new(11);
    for i in 0..150 {
        let s = if i % 2 == 0 { &a } else { &b };
        let batch: Vec<Op> = (0..1 + rng.next_u64() % 3)
            .map(|_| random_op(&mut rng))
            .collect();
        let _ = s.apply(&batch);
        if i % 10 == 0 {
            let cached = b.load_ledger().unwrap();
            assert_eq!(cached, a.load_ledger_uncached().unwrap(), "step {i}");
        }
    }
    assert_eq!(a.load_ledger().unwrap(), a.replay_journal().unwrap());
}

/// A cache kept across openings is used while the journal has not moved and
/// dropped as soon as someone else commits.
#[test]
fn a_kept_ledger_cache_misses_after_another_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.duckdb");
    let cache = world_store::LedgerCache::default();
    let opts = world_store::OpenOptions {
        ledger_cache: Some(cache.clone()),
        ..Default::default()
    };
    let store = Store::open_with(&path, &opts).unwrap();
    store.apply(&setup()).unwrap();
    store
        .apply(&[Op::PushDown {
            token: t("usd"),
            owner: o("a"),
            parent: VerseId(1),
            amount: 100,
        }])
        .unwrap();
    // Change a balance behind the ledger's back without moving the journal:
    // a cache hit still returns the state as of the journal position.
    store
        .connection()
        .execute_batch("UPDATE balances SET amount = amount + 1")
        .unwrap();
    let hit = store.load_ledger().unwrap();
    assert_ne!(
        hit,
        store.load_ledger_uncached().unwrap(),
        "served from the cache"
    );
    drop(store);
    // Another writer (no shared cache) commits: the journal moves.
    let other = Store::open(&path).unwrap();
    other
        .connection()
        .execute_batch("UPDATE balances SET amount = amount - 1")
        .unwrap();
    other
        .apply(&[Op::Transfer {
            token: t("usd"),
            verse: VerseId(2),
            from: o("a"),
            to: o("d"),
            amount: 5,
        }])
        .unwrap();
    let expected = other.load_ledger_uncached().unwrap();
    drop(other);
    let store = Store::open_with(&path, &opts).unwrap();
    assert_eq!(
        store.load_ledger().unwrap(),
        expected,
        "a moved journal misses"
    );
}

/// A push_down commit overlapped with its branch: the branch's result comes
/// back in every case; a failed branch records nothing; a refused batch
/// never starts the branch.
#[test]
fn a_push_down_commits_only_when_its_branch_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("w.duckdb")).unwrap();
    let root = store.commit_world_root("w-000000000001", 7).unwrap();
    let part = || {
        vec![Op::Partition {
            parent: root,
            children: seed_children(),
            allow_nonconserving: false,
        }]
    };
    let worlds: Vec<String> = (2..5).map(|i| format!("w-00000000000{i}")).collect();
    let entity = |w: &String| world_store::NewEntity {
        entity_id: w.clone(),
        entity_type: "sandbox".into(),
        state: world_core::lifecycle::State::Running,
        ..Default::default()
    };
    let entities: Vec<_> = worlds.iter().map(entity).collect();
    let before = store.journal_len().unwrap();
    // The branch fails: nothing is recorded, its error comes back.
    let (t, r) = store.commit_push_down(
        &part(),
        "w-000000000001",
        &worlds,
        &entities,
        Some("s-000000000009"),
        || Err::<(), String>("no space".into()),
        |b| b.clone().map(|_| (Some(1.0), Some(2.0))),
    );
    assert_eq!(t, Some(Err("no space".into())));
    assert!(matches!(r, Err(world_store::Error::Aborted(_))), "{r:?}");
    assert_eq!(store.journal_len().unwrap(), before);
    assert!(store.verse_links(&[VerseId(2)]).unwrap().is_empty());
    // A partition the ledger refuses (an unknown parent) never branches.
    let bad = vec![Op::Partition {
        parent: VerseId(99),
        children: seed_children(),
        allow_nonconserving: false,
    }];
    let (t, r) = store.commit_push_down(
        &bad,
        "w-000000000001",
        &worlds,
        &entities,
        None,
        || panic!("must not branch"),
        |_: &()| Ok((None, None)),
    );
    assert!(t.is_none() && r.is_err());
    // The branch succeeds: everything is recorded, with its timings.
    let (t, r) = store.commit_push_down(
        &part(),
        "w-000000000001",
        &worlds,
        &entities,
        Some("s-000000000009"),
        || Ok::<(), String>(()),
        |_| Ok((Some(1.5), Some(2.5))),
    );
    assert_eq!(t, Some(Ok(())));
    r.unwrap();
    let links = store
        .verse_links(&[VerseId(2), VerseId(3), VerseId(4)])
        .unwrap();
    assert_eq!(links.len(), 3);
    assert_eq!(links[&VerseId(2)].1.as_deref(), Some("s-000000000009"));
    let snap_ms: f64 = store
        .connection()
        .query_row(
            "SELECT snapshot_time_ms FROM world_branches WHERE branch_type = 'push_down'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(snap_ms, 1.5);
    let metrics: i64 = store
        .connection()
        .query_row(
            "SELECT count(*) FROM runtime_metrics WHERE branch_time_ms = 2.5",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(metrics, 3);
}
