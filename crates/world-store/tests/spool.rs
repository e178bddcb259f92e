//! The record spool (write-behind): spooled batches give the same tables as
//! in-line commits, a holder killed with SIGKILL before its writer ran loses
//! nothing, replay never writes a batch twice, and a batch that cannot be
//! written keeps the database closed with a clear error.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::o;
use proptest::prelude::*;
use world_core::ids::VerseId;
use world_core::ledger::Op;
use world_core::seed::SplitMix64;
use world_store::verse_worlds::VerseRun;
use world_store::{spool_path, OpenOptions, SpoolOptions, Store};

fn spooled(delay_ms: u64) -> OpenOptions {
    OpenOptions {
        spool: Some(SpoolOptions {
            writer_delay: Duration::from_millis(delay_ms),
            ..SpoolOptions::default()
        }),
        ..OpenOptions::default()
    }
}

/// Root v1 with 1000 usd for each of `owners` owners, partitioned into three.
fn setup(owners: usize) -> Vec<Op> {
    common::setup(&(0..owners).map(|i| format!("o{i}")).collect::<Vec<_>>())
}

/// A random operation (resolutions included) among `owners` owners.
fn random_op(rng: &mut SplitMix64, owners: usize) -> Op {
    common::random_op(rng, &|r| o(&format!("o{}", r % owners as u64)), true)
}

/// A recorded run of `verse` in `world` that reported `score`.
fn run(id: &str, verse: VerseId, world: &str, score: Option<f64>) -> VerseRun {
    VerseRun {
        run_id: id.into(),
        verse_id: verse.to_string(),
        world_id: world.into(),
        code: "1".into(),
        stdout: String::new(),
        stderr: String::new(),
        error: None,
        timed_out: false,
        duration_ms: 1.0,
        score,
    }
}

/// Everything the ledger tables hold, as text, in a stable order.
fn tables(s: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for q in [
        "SELECT seq || op || op_json || effect_json FROM ledger_journal ORDER BY seq",
        "SELECT token || verse_id || owner || amount FROM balances ORDER BY ALL",
        "SELECT verse_id || status FROM verses ORDER BY num",
        "SELECT partition_id || status || coalesce(winner, '-') FROM partitions ORDER BY num",
        "SELECT entity_id || entity_type || coalesce(state, '-') FROM world_runtime_entities ORDER BY ALL",
        "SELECT resolution_id || winning_verse FROM verse_resolutions ORDER BY ALL",
        "SELECT resolution_id || token || amount FROM evaporated_values ORDER BY ALL",
        "SELECT operation FROM operation_timings ORDER BY ALL",
    ] {
        let mut stmt = s.connection().prepare(q).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        out.push(rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("\n"));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Property: a random stream of batches (some refused, some larger
    /// than the in-line path's bulk threshold) gives the same tables
    /// through the spool as in line, and the spooled store's answers match
    /// the in-line store's at every step, before the writer has caught up.
    #[test]
    fn spooled_batches_give_the_same_tables_as_inline(seed in any::<u64>(), owners in 1usize..80) {
        let dir = tempfile::tempdir().unwrap();
        let inline = Store::open(&dir.path().join("a.duckdb")).unwrap();
        // The writer lags (2 ms per group), so the answers below come
        // from memory while batches wait.
        let spool = Store::open_with(&dir.path().join("b.duckdb"), &spooled(2)).unwrap();
        let mut rng = SplitMix64::new(seed);
        let first = setup(owners);
        prop_assert_eq!(inline.apply(&first).is_ok(), spool.apply(&first).is_ok());
        for i in 0..20 {
            let n = if i % 7 == 3 { 70 } else { 1 + rng.next_u64() % 4 };
            let batch: Vec<Op> = (0..n).map(|_| random_op(&mut rng, owners)).collect();
            let a = inline.apply(&batch).map_err(|e| e.to_string());
            let b = spool.apply(&batch).map_err(|e| e.to_string());
            prop_assert_eq!(&a.map(|x| x.len()), &b.map(|x| x.len()), "batch {}", i);
            inline.insert_timing("step", None, 1.0).unwrap();
            spool.insert_timing("step", None, 1.0).unwrap();
            prop_assert_eq!(inline.load_ledger().unwrap(), spool.load_ledger().unwrap());
        }
        spool.sync_records().unwrap();
        prop_assert_eq!(spool.records_pending(), 0);
        prop_assert_eq!(tables(&inline), tables(&spool));
        prop_assert_eq!(spool.load_ledger_uncached().unwrap(), spool.replay_journal().unwrap());
        let file = spool_path(&dir.path().join("b.duckdb"));
        prop_assert_eq!(std::fs::metadata(&file).unwrap().len(), 0, "emptied once caught up");
        drop(spool);
        prop_assert!(!file.exists(), "removed when closed");
    }
}

/// Child half of the SIGKILL test: spools batches with a writer that
/// waits ten minutes, reports how far the journal got, and waits to die.
#[test]
#[ignore = "run by a_killed_holder_loses_no_spooled_batch"]
fn spooling_child() {
    let Ok(path) = std::env::var("WORLD_SPOOL_TEST_DB") else {
        return;
    };
    let store = Store::open_with(Path::new(&path), &spooled(600_000)).unwrap();
    store.apply(&setup(3)).unwrap();
    let mut rng = SplitMix64::new(5);
    let mut batches = 1;
    for _ in 0..40 {
        batches += usize::from(store.apply(&[random_op(&mut rng, 3)]).is_ok());
    }
    let root = store.commit_world_root("w-spooled", 9).unwrap();
    store
        .insert_verse_runs(&[run("run-1", root, "w-spooled", Some(3.0))])
        .unwrap();
    let ledger = store.load_ledger().unwrap();
    let json = serde_json::to_string(&ledger).unwrap();
    // Setup, the accepted operations, the root and the run: none written.
    assert_eq!(store.records_pending(), batches + 2);
    println!("pending {} {json}", store.records_pending());
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_killed_holder_loses_no_spooled_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.duckdb");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "spooling_child", "--ignored", "--nocapture"])
        .env("WORLD_SPOOL_TEST_DB", &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let line = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| l.unwrap())
        .find(|l| l.starts_with("pending "))
        .expect("the child reports");
    let (pending, json) = line["pending ".len()..].split_once(' ').unwrap();
    child.kill().unwrap(); // SIGKILL: no destructor, no writer
    child.wait().unwrap();
    assert!(pending.parse::<usize>().unwrap() > 5, "{pending}");
    assert!(std::fs::metadata(spool_path(&path)).unwrap().len() > 0);

    // An ordinary opening replays the spool before anything reads.
    let store = Store::open(&path).unwrap();
    assert_eq!(store.replayed_batches(), pending.parse::<usize>().unwrap());
    let stored = store.load_ledger().unwrap();
    let expected: world_core::ledger::Ledger = serde_json::from_str(json).unwrap();
    assert_eq!(stored, expected, "the child's ledger, every batch of it");
    assert_eq!(stored, store.replay_journal().unwrap());
    let root = store.verse_of_world("w-spooled").unwrap().expect("linked");
    assert_eq!(
        store.latest_scores(&[root]).unwrap(),
        vec![(root, Some(3.0))]
    );
    assert!(!spool_path(&path).exists(), "replayed, then removed");
    drop(store);
    // A second opening finds nothing more to do.
    let again = Store::open(&path).unwrap();
    assert_eq!(again.load_ledger().unwrap(), stored);
    assert_eq!(again.replayed_batches(), 0);
}

#[test]
fn replay_skips_written_lines_and_drops_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.duckdb");
    let store = Store::open_with(&path, &spooled(300)).unwrap();
    store.apply(&setup(2)).unwrap();
    // The batch is durable in the spool before the writer has run.
    let line = std::fs::read_to_string(spool_path(&path)).unwrap();
    assert!(
        line.ends_with('\n') && line.contains("ledger_journal"),
        "{line}"
    );
    store.insert_timing("step", Some("wé"), 1.0).unwrap();
    let timing = std::fs::read_to_string(spool_path(&path)).unwrap()[line.len()..].to_string();
    let ledger = store.load_ledger().unwrap();
    drop(store); // writes both, then removes the spool
    assert!(!spool_path(&path).exists());

    // The same line again (as if emptying the file had been lost in a
    // crash), then half a line (a crash in the middle of an append).
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(spool_path(&path))
        .unwrap();
    f.write_all(line.as_bytes()).unwrap();
    // Cut inside the two bytes of "é": not even valid UTF-8.
    let cut = timing.find('é').unwrap() + 1;
    f.write_all(&timing.as_bytes()[..cut]).unwrap();
    drop(f);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.load_ledger().unwrap(), ledger);
    assert_eq!(store.journal_len().unwrap(), 4);
    assert!(!spool_path(&path).exists(), "replayed, then removed");
}

#[test]
fn a_batch_that_cannot_be_written_keeps_the_database_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.duckdb");
    Store::open(&path).unwrap().apply(&setup(1)).unwrap();
    std::fs::write(
        spool_path(&path),
        "{\"id\":1,\"steps\":[{\"Exec\":[\"INSERT INTO no_such_table VALUES (1)\",[]]}]}\n",
    )
    .unwrap();
    let err = Store::open(&path).unwrap_err().to_string();
    assert!(
        err.contains("w.duckdb.spool")
            && err.contains("batch 1")
            && err.contains("move the file aside"),
        "{err}"
    );
    // The file is kept; set aside, the database opens as it was.
    std::fs::rename(spool_path(&path), dir.path().join("kept.spool")).unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.journal_len().unwrap(), 3);
}

#[test]
fn spooled_links_and_scores_are_read_before_they_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.duckdb");
    // A link made by an earlier, in-line opening comes from the tables.
    let old = Store::open(&path)
        .unwrap()
        .commit_world_root("w-old", 1)
        .unwrap();
    let store = Store::open_with(&path, &spooled(200)).unwrap();
    assert_eq!(store.verse_of_world("w-old").unwrap(), Some(old));
    let v = store.commit_world_root("w-new", 2).unwrap();
    store
        .insert_verse_runs(&[run("run-a", v, "w-new", Some(5.0))])
        .unwrap();
    store
        .insert_verse_runs(&[run("run-b", v, "w-new", None)])
        .unwrap();
    assert!(store.records_pending() >= 2, "the writer has not run yet");
    assert_eq!(store.verse_of_world("w-new").unwrap(), Some(v));
    assert_eq!(store.world_of_verse(v).unwrap().as_deref(), Some("w-new"));
    assert_eq!(
        store.live_verse_worlds(&[v, old]).unwrap().len(),
        2,
        "both live, both linked"
    );
    assert_eq!(store.latest_scores(&[v]).unwrap(), vec![(v, Some(5.0))]);
    let count = |q: &str| -> i64 { store.connection().query_row(q, [], |r| r.get(0)).unwrap() };
    store.sync_records().unwrap();
    assert_eq!(count("SELECT count(*) FROM verse_runs"), 2);
    assert_eq!(count("SELECT count(*) FROM verse_worlds"), 2);
}

#[test]
fn a_writer_that_fails_stops_taking_batches_and_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.duckdb");
    let store = Store::open_with(&path, &spooled(0)).unwrap();
    let v = store.commit_world_root("w", 1).unwrap();
    let run = run("run-twice", v, "w", None);
    store.insert_verse_runs(std::slice::from_ref(&run)).unwrap();
    // The same run id again: accepted into the spool, refused by the
    // table's primary key when written.
    store.insert_verse_runs(std::slice::from_ref(&run)).unwrap();
    let err = store.sync_records().unwrap_err().to_string();
    assert!(err.contains("record writer stopped"), "{err}");
    let err = store
        .insert_timing("after", None, 1.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("record writer stopped"), "{err}");
    drop(store);
    // The batch is kept, and the next opening says so instead of
    // dropping it.
    assert!(std::fs::read_to_string(spool_path(&path))
        .unwrap()
        .contains("run-twice"));
    let err = Store::open(&path).unwrap_err().to_string();
    assert!(err.contains("move the file aside"), "{err}");
}
