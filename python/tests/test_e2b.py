"""The official E2B SDK (`e2b` from PyPI, unchanged) against the daemon's
E2B door: E2B_API_URL and E2B_SANDBOX_URL are the daemon's address,
E2B_API_KEY its token (set by the Rust test that starts the daemon)."""

import asyncio
import os
import time

import pytest

e2b = pytest.importorskip("e2b")
from e2b import (  # noqa: E402
    AsyncSandbox,
    CommandExitException,
    NotFoundException,
    Sandbox,
    SandboxQuery,
)
from e2b.exceptions import AuthenticationException, SandboxException  # noqa: E402


@pytest.fixture(autouse=True)
def e2b_env():
    if not os.environ.get("E2B_API_URL"):
        pytest.skip("no daemon")


def test_sandbox_commands_and_files():
    sbx = Sandbox.create(metadata={"suite": "e2b", "who": "alice smith"}, envs={"GREETING": "hi"}, timeout=300)
    try:
        # Output callbacks, sandbox env vars, per-command env and cwd.
        seen = []
        r = sbx.commands.run(
            'echo "$GREETING $EXTRA"; pwd; echo oops >&2',
            envs={"EXTRA": "there"},
            cwd="/tmp",
            on_stdout=seen.append,
        )
        assert (r.exit_code, r.stdout, r.stderr) == (0, "hi there\n/tmp\n", "oops\n")
        assert "".join(seen) == r.stdout
        # A failing command raises the SDK's own exception with its output.
        with pytest.raises(CommandExitException) as e:
            sbx.commands.run("echo partial; exit 3")
        assert e.value.exit_code == 3 and e.value.stdout == "partial\n"
        # A command's timeout ends it.
        t = time.time()
        with pytest.raises(Exception):
            sbx.commands.run("sleep 30", timeout=1)
        assert time.time() - t < 15
        # Background process, then kill.
        h = sbx.commands.run("sleep 300", background=True)
        assert h.pid > 0
        assert sbx.commands.kill(h.pid) is True
        with pytest.raises(CommandExitException):
            h.wait()
        assert sbx.commands.kill(h.pid) is False
        # Input to a background command, listing, then end of input.
        cat = sbx.commands.run("cat > /root/fed; echo fed", background=True, stdin=True)
        assert cat.pid in [p.pid for p in sbx.commands.list()]
        listed = [p for p in sbx.commands.list() if p.pid == cat.pid][0]
        assert listed.cmd == "/bin/bash" and listed.args[-1] == "cat > /root/fed; echo fed"
        sbx.commands.send_stdin(cat.pid, "first line\n")
        sbx.commands.send_stdin(cat.pid, b"second\n")
        sbx.commands.close_stdin(cat.pid)
        assert cat.wait().stdout == "fed\n"
        assert sbx.files.read("/root/fed") == "first line\nsecond\n"
        assert cat.pid not in [p.pid for p in sbx.commands.list()]
        with pytest.raises(Exception):
            sbx.commands.send_stdin(cat.pid, "late")

        # Files: write (text and bytes), read, list, make_dir, exists, remove.
        sbx.files.write("/root/work/notes.txt", "line one\n")
        blob = bytes(range(256)) * 4096
        sbx.files.write("/root/work/blob.bin", blob)
        assert sbx.files.read("/root/work/notes.txt") == "line one\n"
        assert bytes(sbx.files.read("/root/work/blob.bin", format="bytes")) == blob
        names = sorted(e.name for e in sbx.files.list("/root/work"))
        assert names == ["blob.bin", "notes.txt"]
        assert sbx.files.make_dir("/root/work/sub") is True
        assert sbx.files.make_dir("/root/work/sub") is False
        assert sbx.files.exists("/root/work/notes.txt") is True
        info = sbx.files.get_info("/root/work/blob.bin")
        assert info.size == len(blob) and info.name == "blob.bin"
        moved = sbx.files.rename("/root/work/notes.txt", "/root/work/renamed/notes2.txt")
        assert moved.name == "notes2.txt" and moved.path == "/root/work/renamed/notes2.txt"
        assert sbx.files.read("/root/work/renamed/notes2.txt") == "line one\n"
        sbx.files.rename("/root/work/renamed/notes2.txt", "/root/work/notes.txt")
        sbx.files.remove("/root/work/notes.txt")
        assert sbx.files.exists("/root/work/notes.txt") is False
        with pytest.raises(NotFoundException):
            sbx.files.read("/root/work/notes.txt")
        with pytest.raises(NotFoundException):
            sbx.files.list("/root/no-such-dir")
        # What the SDK wrote is a file of the world.
        assert sbx.commands.run("wc -c < /root/work/blob.bin").stdout.strip() == str(len(blob))

        # Listing by metadata (E2B's double-encoded filter).
        ids = [s.sandbox_id for s in Sandbox.list(query=SandboxQuery(metadata={"who": "alice smith"})).next_items()]
        assert ids == [sbx.sandbox_id]
        assert Sandbox.list(query=SandboxQuery(metadata={"who": "bob"})).next_items() == []
        info = sbx.get_info()
        assert info.metadata == {"suite": "e2b", "who": "alice smith"} and info.sandbox_id == sbx.sandbox_id

        # Pause, then connect: the world's state is kept.
        sbx.commands.run("echo kept > /root/state")
        assert sbx.pause() is True
        with pytest.raises(SandboxException):
            sbx.commands.run("true")
        again = Sandbox.connect(sbx.sandbox_id)
        assert again.commands.run("cat /root/state").stdout == "kept\n"
        sbx.set_timeout(120)
        assert sbx.is_running()
    finally:
        sbx.kill()
    assert Sandbox.kill(sbx.sandbox_id) is False
    assert not sbx.is_running()


def test_fork_carries_files_then_diverges():
    parent = Sandbox.create(metadata={"role": "parent"}, envs={"FROM": "parent-env"})
    kids = []
    try:
        parent.files.write("/root/shared.txt", "before the fork\n")
        kids = parent.fork(count=3)
        assert len(kids) == 3 and all(isinstance(k, Sandbox) for k in kids)
        assert len({k.sandbox_id for k in kids} | {parent.sandbox_id}) == 4
        for i, k in enumerate(kids):
            assert k.files.read("/root/shared.txt") == "before the fork\n"
            assert k.commands.run("echo $FROM").stdout == "parent-env\n"
            k.files.write("/root/mine.txt", f"child {i}")
        for i, k in enumerate(kids):
            assert k.files.read("/root/mine.txt") == f"child {i}"
        assert parent.files.exists("/root/mine.txt") is False
        assert parent.commands.run("cat /root/shared.txt").stdout == "before the fork\n"
        assert {k.get_info().metadata["role"] for k in kids} == {"parent"}
        with pytest.raises(Exception):
            parent.fork(count=21)
    finally:
        for k in kids:
            if isinstance(k, Sandbox):
                k.kill()
        parent.kill()


def test_timeout_kills_the_sandbox():
    sbx = Sandbox.create(timeout=2)
    deadline = time.time() + 20
    while time.time() < deadline and sbx.is_running():
        time.sleep(0.5)
    assert not sbx.is_running(), "the timeout did not end the sandbox"
    assert Sandbox.kill(sbx.sandbox_id) is False


def test_errors_are_the_sdks_own():
    with pytest.raises(AuthenticationException):
        Sandbox.create(api_key="not-the-token")
    with pytest.raises(SandboxException):
        Sandbox.create(template="no-such-template")


def test_async_sdk():
    async def go():
        a, b = await asyncio.gather(AsyncSandbox.create(), AsyncSandbox.create())
        try:
            ra, rb = await asyncio.gather(a.commands.run("hostname"), b.commands.run("hostname"))
            assert ra.stdout.strip() == a.sandbox_id and rb.stdout.strip() == b.sandbox_id
            await a.files.write("/root/x", "async")
            assert await a.files.read("/root/x") == "async"
            with pytest.raises(CommandExitException):
                await b.commands.run("exit 7")
        finally:
            await asyncio.gather(a.kill(), b.kill())

    asyncio.run(go())


ci = pytest.importorskip("e2b_code_interpreter")


def test_code_interpreter_keeps_state_and_returns_rich_results():
    from e2b_code_interpreter import Sandbox as CodeSandbox

    sbx = CodeSandbox.create()
    kids = []
    restored = None
    try:
        lines = []
        ex = sbx.run_code("x = 41\nprint('working')\nx + 1", on_stdout=lambda m: lines.append(m.line))
        assert ex.text == "42" and ex.logs.stdout == ["working\n"] and ex.error is None
        assert lines == ["working\n"] and ex.execution_count >= 1
        assert sbx.run_code("x").text == "41", "state is kept across calls"
        ex = sbx.run_code("class Table:\n    def _repr_html_(self):\n        return '<table><tr><td>1</td></tr></table>'\nTable()")
        assert ex.results[0].html == "<table><tr><td>1</td></tr></table>" and ex.results[0].is_main_result
        ex = sbx.run_code("import json\nclass J:\n    def _repr_json_(self):\n        return {'a': 1}\nJ()")
        assert ex.results[0].json == {"a": 1}
        # An exception in the code is the execution's error, not a raise.
        ex = sbx.run_code("undefined_name + 1")
        assert ex.error.name == "NameError" and "undefined_name" in ex.error.value
        assert "Traceback" in ex.error.traceback
        assert sbx.run_code("import os; os.environ.get('ONLY_HERE')", envs={"ONLY_HERE": "yes"}).text == "'yes'"
        assert sbx.run_code("import os; os.environ.get('ONLY_HERE')").text is None
        # Contexts are separate interpreters.
        ctx = sbx.create_code_context(cwd="/tmp")
        assert ctx.cwd == "/tmp" and ctx.language == "python"
        assert sbx.run_code("import os; os.getcwd()", context=ctx).text == "'/tmp'"
        sbx.run_code("only_in_ctx = 1", context=ctx)
        assert sbx.run_code("'only_in_ctx' in dir()").text == "False"
        assert {c.id for c in sbx.list_code_contexts()} >= {ctx.id}
        sbx.restart_code_context(ctx)
        assert sbx.run_code("only_in_ctx", context=ctx).error.name == "NameError"
        sbx.remove_code_context(ctx)
        assert ctx.id not in {c.id for c in sbx.list_code_contexts()}
        with pytest.raises(NotFoundException):
            sbx.run_code("1", context=ctx)
        with pytest.raises(SandboxException):
            sbx.run_code("1", language="javascript")
        # fork(3): each child has the parent's variables, then diverges.
        kids = sbx.fork(count=3)
        assert [k.run_code("x").text for k in kids] == ["41", "41", "41"]
        for i, k in enumerate(kids):
            k.run_code(f"x = {i}")
        assert [k.run_code("x").text for k in kids] == ["0", "1", "2"]
        assert sbx.run_code("x").text == "41"
        # Pause, then connect: the interpreter's memory is still there.
        assert sbx.pause() is True
        assert CodeSandbox.connect(sbx.sandbox_id).run_code("x + 1").text == "42"
        # A snapshot is a template: a sandbox from it has the variables.
        snap = sbx.create_snapshot(name="ci-snap")
        assert snap.names == ["ci-snap"]
        assert snap.snapshot_id in [s.snapshot_id for s in CodeSandbox.list_snapshots(sandbox_id=sbx.sandbox_id).next_items()]
        restored = CodeSandbox.create(snap.snapshot_id)
        assert restored.run_code("x").text == "41"
        restored.kill()
        restored = None
        assert CodeSandbox.delete_snapshot(snap.snapshot_id) is True
        assert CodeSandbox.delete_snapshot(snap.snapshot_id) is False
    finally:
        for k in kids:
            if isinstance(k, CodeSandbox):
                k.kill()
        if restored is not None:
            restored.kill()
        sbx.kill()
