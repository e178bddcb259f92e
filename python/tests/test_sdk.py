"""The sync and asyncio SDK against a live daemon."""

import asyncio

import pytest

from worldruntime import ApiError, AsyncWorld, Client, World


def test_world_lifecycle(client):
    with World.create(client=client, metadata={"purpose": "sdk-test", "n": 1}) as w:
        assert w.metadata == {"purpose": "sdk-test", "n": "1"}
        r = w.exec("echo hello; echo oops >&2; exit 3")
        assert (r.exit_code, r.stdout, r.stderr) == (3, "hello\n", "oops\n")
        r = w.exec(["sh", "-c", "cat; echo $A; pwd"], env={"A": "b"}, cwd="/tmp", stdin="in\n")
        assert r.stdout == "in\nb\n/tmp\n"
        assert w.exec(["no-such-command"]).exit_code == 127
        assert w.exec("sleep 30", timeout=0.5).exit_code == 124
        c = w.execute_code("x = 41\nx + 1")
        assert c.ok and c.value == "42"
        bad = w.execute_code("1/0")
        assert not bad.ok and "ZeroDivisionError" in bad.error
        assert w.id in {x.id for x in World.list(client=client)}
    with pytest.raises(ApiError) as e:
        World.get(w.id, client=client)
    assert e.value.status == 404 and e.value.code == "not_found"


def test_snapshot_and_branch_carry_memory(client):
    with World.create(client=client) as w:
        w.execute_code("counter = 10")
        snap = w.snapshot("sdk-snap")
        a = World.create(snapshot_id=snap, client=client)
        kids = w.branch(2)
        try:
            assert a.execute_code("counter + 1").value == "11"
            assert [k.execute_code("counter").value for k in kids] == ["10", "10"]
            a.execute_code("counter = 99")
            assert w.execute_code("counter").value == "10", "branches are independent"
        finally:
            for k in [a, *kids]:
                k.destroy()
        client.delete_snapshot(snap)
        for s in client.snapshots():
            if s["world"] == w.id:
                client.delete_snapshot(s["id"])


def test_verses_push_down_run_pull_up(client):
    w = World.create(client=client)
    try:
        w.execute_code("base = 1")
        p = w.push_down()
        assert [v.name for v in p.verses] == ["nash", "optimal", "chaos"]
        assert p.gf3_sum == 0
        results = p.run({"nash": "print('WORLD_SCORE', base + 1)", "optimal": "print('WORLD_SCORE', base + 5)", "chaos": "print('WORLD_SCORE', base + 2)"})
        assert sorted(r["run"]["score"] for r in results) == [2.0, 3.0, 6.0]
        up = p.pull_up(oracle="score", game={"nash": 4.0, "optimum": 3.0})
        assert up.winner == p.verse("optimal").verse
        assert len(up.collapsed_worlds) == 2
        assert up.wev is not None
        assert any(r["winning_verse"] == up.winner for r in client.resolutions())
        winner = World.get(up.winner_world, client=client)
        assert winner.execute_code("base").value == "1"
        winner.destroy()
        assert client.metrics(), "metrics are recorded"
        assert client.ledger()["tree"], "the ledger has the verse tree"
    finally:
        w.destroy()
        for s in client.snapshots():
            client.delete_snapshot(s["id"])


def test_async_client_runs_concurrently(client):
    async def go():
        worlds = await asyncio.gather(*(AsyncWorld.create(client=client) for _ in range(3)))
        try:
            rs = await asyncio.gather(*(w.execute_code(f"{i} * 2") for i, w in enumerate(worlds)))
            assert [r.value for r in rs] == ["0", "2", "4"]
            e = await worlds[0].exec("echo async")
            assert e.stdout == "async\n"
        finally:
            await asyncio.gather(*(w.destroy() for w in worlds))

    asyncio.run(go())


def test_wrong_token_is_refused():
    c = Client(token="wrong")
    with pytest.raises(ApiError) as e:
        c.worlds()
    assert e.value.status == 401 and e.value.code == "unauthorized"
