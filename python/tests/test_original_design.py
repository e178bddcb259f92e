"""The original design's example (examples/original_design.py) runs
against the daemon with only its import line changed."""

import asyncio
import importlib.util
import os


def test_original_design_example_runs(client):
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "original_design.py")
    spec = importlib.util.spec_from_file_location("original_design", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    world, snapshot_id, verses, results, strategies = asyncio.run(mod.main())
    assert snapshot_id
    assert len({v.id for v in verses}) == 3 and world.id not in {v.id for v in verses}
    # The design never defines load_universe()/evolve(): each verse
    # reports the NameError (or a missing pandas) instead of crashing.
    for r in results:
        assert r.error and ("NameError" in r.error or "ModuleNotFoundError" in r.error)
    # The assignments before evolve() ran, each in its own verse.
    assert [s.value for s in strategies] == ["'selfish'", "'cooperative'", "'random'"]
    for s in world.sync.client.snapshots():
        world.sync.client.delete_snapshot(s["id"])
