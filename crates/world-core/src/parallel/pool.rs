//! The threads of one [`super::execute_parallel`] call: `threads - 1`
//! scoped workers plus the calling thread, kept for the whole batch and
//! stepped through every block with a [`Barrier`]:
//!
//! ```text
//! every thread:  speculate | scan one group | write own results |
//! calling thread:                                                finish (in order)
//!               ^ start    ^ barrier        ^ barrier           ^ barrier
//! ```
//!
//! The shards are split into one group per thread (shard `s` is in group
//! `s % threads`), each behind a lock, and the tree is behind a lock too.
//! Every thread holds read locks on everything while speculating; thread
//! `t` then looks for conflicts among the cells of group `t`; each thread
//! writes the conflict-free results it speculated itself, taking one
//! group's write lock at a time; the calling thread holds every write lock
//! while finishing. Only the writes ever wait on a lock, briefly, when two
//! threads want the same group.

use std::collections::BTreeMap;
use std::ops::DerefMut;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, RwLock, RwLockWriteGuard};

use super::barrier::Barrier;
use super::commit::finish;
use super::conflicts::{scan, tree_flags};
use super::speculate::{speculate_chunk, Chunk, Snapshot};
use crate::ids::{Token, VerseId};
use crate::ledger::logic::{StateMut, StateView};
use crate::ledger::store::{set_in, shard_of, Shard};
use crate::ledger::{evaporated_value, Applied, BalanceKey, Ledger, LedgerError, Op};
use crate::verse::VerseTree;

/// State shared by the threads of one batch.
struct Shared<'a, 'o> {
    threads: usize,
    blocks: Vec<&'o [Op]>,
    /// The block to run next (`blocks.len()` to stop).
    block: AtomicUsize,
    tree: RwLock<&'a mut VerseTree>,
    groups: Vec<RwLock<Vec<&'a mut Shard>>>,
    slots: Vec<RwLock<Option<Chunk>>>,
    hits: Vec<Mutex<Vec<usize>>>,
    barrier: Barrier,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(l: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    l.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `ops` in blocks of `block_ops` on `threads` threads; appends the
/// results to `results` and returns the number of re-executed operations.
pub(super) fn run(
    ledger: &mut Ledger,
    ops: &[Op],
    threads: usize,
    block_ops: usize,
    results: &mut Vec<Result<Applied, LedgerError>>,
) -> usize {
    let block_ops = block_ops.max(1);
    let threads = threads.clamp(1, block_ops.min(ops.len()).max(1));
    let (tree, store) = ledger.parts_mut();
    let mut groups: Vec<Vec<&mut Shard>> = (0..threads).map(|_| Vec::new()).collect();
    for (s, shard) in store.shards_mut().iter_mut().enumerate() {
        groups[s % threads].push(shard);
    }
    let shared = Shared {
        threads,
        blocks: ops.chunks(block_ops).collect(),
        block: AtomicUsize::new(0),
        tree: RwLock::new(tree),
        groups: groups.into_iter().map(RwLock::new).collect(),
        slots: (0..threads).map(|_| RwLock::new(None)).collect(),
        hits: (0..threads).map(|_| Mutex::new(Vec::new())).collect(),
        barrier: Barrier::new(threads),
    };
    let shared = &shared;
    std::thread::scope(|s| {
        for t in 0..threads - 1 {
            s.spawn(move || {
                let _poison = shared.barrier.guard();
                loop {
                    shared.barrier.wait();
                    let b = shared.block.load(Ordering::Acquire);
                    let Some(ops) = shared.blocks.get(b) else {
                        return;
                    };
                    step(shared, ops, t);
                }
            });
        }
        let _poison = shared.barrier.guard();
        let mut reexecuted = 0;
        for (b, ops) in shared.blocks.iter().enumerate() {
            shared.block.store(b, Ordering::Release);
            shared.barrier.wait();
            step(shared, ops, threads - 1);
            reexecuted += finish_block(shared, ops, results);
        }
        shared.block.store(shared.blocks.len(), Ordering::Release);
        shared.barrier.wait();
        reexecuted
    })
}

/// Speculate, find conflicts and write this thread's shards.
fn step(sh: &Shared<'_, '_>, ops: &[Op], t: usize) {
    let n = sh.threads;
    let size = ops.len().div_ceil(n);
    let start = (t * size).min(ops.len());
    let end = (start + size).min(ops.len());
    let chunk = {
        let tree = read(&sh.tree);
        let guards: Vec<_> = sh.groups.iter().map(read).collect();
        let snapshot = Snapshot {
            tree: &tree,
            groups: &guards,
        };
        speculate_chunk(&snapshot, &ops[start..end], start)
    };
    *write(&sh.slots[t]) = Some(chunk);
    sh.barrier.wait();

    let chunks: Vec<_> = sh.slots.iter().map(read).collect();
    let parts: Vec<&Chunk> = chunks.iter().filter_map(|c| c.as_ref()).collect();
    *lock(&sh.hits[t]) = scan(&parts, t);
    sh.barrier.wait();

    let flags = merge(tree_flags(ops), &sh.hits);
    if let Some(own) = chunks[t].as_ref() {
        write_own(sh, own, t, &flags);
    }
    drop(parts);
    drop(chunks);
    sh.barrier.wait();
}

/// Step 3: writes the conflict-free results this thread speculated (their
/// cells are still in its cache), one shard group at a time, starting with
/// its own so that the threads rarely want the same group at once.
fn write_own(sh: &Shared<'_, '_>, chunk: &Chunk, t: usize, flags: &[bool]) {
    let n = sh.threads;
    for k in 0..n {
        let g = (t + k) % n;
        let mut group = write(&sh.groups[g]);
        for r in &chunk.reads[g] {
            if flags[r.op] {
                continue;
            }
            if let Ok(applied) = &chunk.results[r.op - chunk.start] {
                let (key, value) = &applied.balance_writes[r.slot as usize];
                set_in(group[r.shard as usize / n], key, *value);
            }
        }
    }
}

/// Commit the block in order on the calling thread.
fn finish_block(
    sh: &Shared<'_, '_>,
    ops: &[Op],
    results: &mut Vec<Result<Applied, LedgerError>>,
) -> usize {
    let chunks: Vec<Chunk> = sh.slots.iter().filter_map(|s| write(s).take()).collect();
    let flags = merge(tree_flags(ops), &sh.hits);
    let mut tree = write(&sh.tree);
    let mut groups: Vec<_> = sh.groups.iter().map(write).collect();
    let mut state = Locked {
        tree: &mut tree,
        groups: &mut groups,
    };
    finish(&mut state, ops, chunks, &flags, results)
}

fn merge(mut flags: Vec<bool>, hits: &[Mutex<Vec<usize>>]) -> Vec<bool> {
    for h in hits {
        for &op in lock(h).iter() {
            flags[op] = true;
        }
    }
    flags
}

/// The whole ledger, assembled from the write guards, for the in-order
/// commit.
struct Locked<'g, G> {
    tree: &'g mut VerseTree,
    groups: &'g mut [G],
}

impl<'m, G: DerefMut<Target = Vec<&'m mut Shard>>> StateView for Locked<'_, G> {
    fn tree(&self) -> &VerseTree {
        self.tree
    }

    fn read(&mut self, key: &BalanceKey) -> u64 {
        let s = shard_of(key);
        let n = self.groups.len();
        self.groups[s % n][s / n].get(key).copied().unwrap_or(0)
    }

    fn evaporated_value(&mut self, verses: &[VerseId]) -> BTreeMap<Token, u128> {
        let shards = self.groups.iter().flat_map(|g| g.iter());
        evaporated_value(shards.flat_map(|s| s.iter().map(|(k, v)| (k, *v))), verses)
    }
}

impl<'m, G: DerefMut<Target = Vec<&'m mut Shard>>> StateMut for Locked<'_, G> {
    fn tree_mut(&mut self) -> &mut VerseTree {
        self.tree
    }

    fn write(&mut self, key: &BalanceKey, value: u64) {
        let s = shard_of(key);
        let n = self.groups.len();
        set_in(self.groups[s % n][s / n], key, value);
    }
}
