//! Steps 3 and 4: write the conflict-free plans shard by shard, then
//! commit in batch order, re-executing the flagged operations.

use super::fan_out_each;
use super::speculate::Chunk;
use crate::ledger::store::{set_in, Shard, Store};
use crate::ledger::{Applied, Effect, Ledger, LedgerError, Op};

/// Writes every unflagged successful plan, each thread owning the shards
/// `s` with `s % threads == t`.
pub(super) fn write_clean(store: &mut Store, chunks: &[Chunk], flags: &[bool], threads: usize) {
    let mut groups: Vec<Vec<&mut Shard>> = (0..threads).map(|_| Vec::new()).collect();
    for (s, shard) in store.shards_mut().iter_mut().enumerate() {
        groups[s % threads].push(shard);
    }
    let items: Vec<(usize, Vec<&mut Shard>)> = groups.into_iter().enumerate().collect();
    fan_out_each(items, |(t, mut group)| {
        for chunk in chunks {
            for r in &chunk.reads {
                let s = r.shard as usize;
                if s % threads != t || flags[r.op] {
                    continue;
                }
                if let Ok(plan) = &chunk.plans[r.op - chunk.start] {
                    let (key, value) = &plan.writes[r.slot as usize];
                    set_in(&mut *group[s / threads], key, *value);
                }
            }
        }
    });
}

/// Produces the results in batch order; returns them with the number of
/// re-executed operations.
pub(super) fn finish(
    ledger: &mut Ledger,
    ops: &[Op],
    chunks: Vec<Chunk>,
    flags: &[bool],
) -> (Vec<Result<Applied, LedgerError>>, usize) {
    let mut results = Vec::with_capacity(ops.len());
    let mut reexecuted = 0;
    for chunk in chunks {
        for (k, planned) in chunk.plans.into_iter().enumerate() {
            let i = chunk.start + k;
            let op = &ops[i];
            let result = if flags[i] {
                reexecuted += 1;
                ledger.apply(op)
            } else {
                match planned {
                    Err(e) => Err(e),
                    Ok(plan) if op.changes_tree() => ledger.commit(op, plan),
                    Ok(plan) => Ok(Applied {
                        effect: Effect::Moved,
                        balance_writes: plan.writes,
                    }),
                }
            };
            results.push(result);
        }
    }
    (results, reexecuted)
}
