"""The original design's Python example, run against WorldRuntime.

Only the import line differs from the design (`from morphcloud import
MorphSandbox`). The example's top-level `await`s are wrapped in
`async def main()` so the file runs as a script; the block between the
markers is verbatim. The design's code calls `load_universe()` and
`evolve()`, which it never defines: those calls report a NameError in
each result (as they would on Morph) rather than crashing the program.

Run: WORLD_API_URL=http://127.0.0.1:7077 WORLD_API_TOKEN=$(world token) python3 original_design.py
"""

import asyncio

from worldruntime import MorphSandbox


async def main():
    # --- verbatim from the original design ---
    # Create base world
    world = await MorphSandbox.create()
    await world.execute_code("import pandas as pd; data = load_universe()")

    # Snapshot at decision point
    snapshot_id = await world.snapshot("pre-event")

    # Branch into parallel verses
    verse_nash = await MorphSandbox.create(snapshot_id=snapshot_id)
    verse_optimal = await MorphSandbox.create(snapshot_id=snapshot_id)
    verse_chaos = await MorphSandbox.create(snapshot_id=snapshot_id)

    # Execute in parallel with GF(3) conservation
    results = await asyncio.gather(
        verse_nash.execute_code("strategy = 'selfish'; evolve()"),  # -1
        verse_optimal.execute_code("strategy = 'cooperative'; evolve()"),  # 0
        verse_chaos.execute_code("strategy = 'random'; evolve()"),  # +1
    )
    # --- end of the original design's code ---

    for name, w, r in zip(("nash", "optimal", "chaos"), (verse_nash, verse_optimal, verse_chaos), results):
        last = (r.error or "").strip().splitlines()[-1:] or ["ok"]
        print(f"{name:8} {w.id}: {last[0]}")
    strategies = await asyncio.gather(*(v.execute_code("strategy") for v in (verse_nash, verse_optimal, verse_chaos)))
    print("strategies:", [s.value for s in strategies])
    for w in (world, verse_nash, verse_optimal, verse_chaos):
        await w.destroy()
    return world, snapshot_id, (verse_nash, verse_optimal, verse_chaos), results, strategies


if __name__ == "__main__":
    asyncio.run(main())
