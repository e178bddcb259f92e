"""The real `morphcloud` SDK (PyPI) against the daemon's Morph-compatible
subset under /api (instance = world)."""

import asyncio
import os
import time

import pytest

morphcloud = pytest.importorskip("morphcloud")
from morphcloud.api import ApiError, MorphCloudClient  # noqa: E402


@pytest.fixture(scope="module")
def morph():
    if not os.environ.get("WORLD_API_URL"):
        pytest.skip("no daemon")
    port = os.environ.get("WORLD_SSH_PORT")
    return MorphCloudClient(
        api_key=os.environ["WORLD_API_TOKEN"],
        base_url=os.environ["WORLD_API_URL"] + "/api",
        ssh_hostname="127.0.0.1",
        ssh_port=int(port) if port else None,
    )


@pytest.fixture(scope="module")
def base(morph):
    snap = morph.snapshots.create(image_id="host", vcpus=1, memory=256, disk_size=1024, metadata={"kind": "base"})
    yield snap
    for i in morph.instances.list():
        i.stop()
    for s in morph.snapshots.list():
        s.delete()


def test_images_and_snapshots(morph, base):
    assert "host" in [i.id for i in morph.images.list()]
    assert base.status == "ready" and base.spec.memory == 256 and base.refs.image_id == "host"
    assert base.id in [s.id for s in morph.snapshots.list(metadata={"kind": "base"})]
    assert morph.snapshots.list(metadata={"kind": "other"}) == []
    got = morph.snapshots.get(base.id)
    assert got.id == base.id and got.metadata == {"kind": "base"}
    base.set_metadata({"kind": "base", "extra": "1"})
    assert base.metadata == {"kind": "base", "extra": "1"}
    base.set_ttl(3600)
    assert base.ttl.ttl_seconds == 3600 and base.ttl.ttl_expire_at > time.time()
    base.set_ttl(None)
    assert base.ttl.ttl_seconds is None
    with pytest.raises(ApiError) as e:
        morph.snapshots.get("no-such-snapshot")
    assert e.value.status_code == 404


def test_instance_lifecycle(morph, base):
    inst = morph.instances.start(base.id, metadata={"role": "worker"}, ttl_seconds=3600, ttl_action="pause")
    try:
        assert inst.status == "ready" and inst.refs.snapshot_id == base.id
        assert inst.ttl.ttl_action == "pause"
        assert [i.id for i in morph.instances.list(metadata={"role": "worker"})] == [inst.id]
        assert morph.instances.list(metadata={"role": "nobody"}) == []
        assert morph.instances.get(inst.id).id == inst.id
        r = inst.exec("echo hello; echo oops >&2; exit 3")
        assert (r.exit_code, r.stdout, r.stderr) == (3, "hello\n", "oops\n")
        r = inst.exec(["python3", "-c", "print(6*7)"])
        assert r.stdout == "42\n"
        chunks = []
        r = inst.exec("for i in 1 2 3; do echo line$i; done; echo err >&2; exit 5", on_stdout=chunks.append)
        assert r.exit_code == 5 and r.stdout == "line1\nline2\nline3\n" and r.stderr == "err\n"
        assert "".join(chunks) == r.stdout
        inst.set_metadata({"role": "worker", "stage": "2"})
        assert inst.metadata == {"role": "worker", "stage": "2"}
        inst.set_ttl(7200)
        assert inst.ttl.ttl_seconds == 7200 and inst.ttl.ttl_action == "pause"
        inst.pause()
        assert inst.status == "paused"
        with pytest.raises(ApiError) as e:
            inst.exec("true")
        assert e.value.status_code == 409
        inst.resume()
        assert inst.status == "ready" and inst.exec("echo back").stdout == "back\n"
        inst.exec("echo kept > /root/state.txt")
        snap = inst.snapshot(metadata={"from": inst.id})
        assert snap.status == "ready" and snap.metadata == {"from": inst.id}
        child = morph.instances.start(snap.id)
        assert child.exec("cat /root/state.txt").stdout == "kept\n"
        child.stop()
        with pytest.raises(ApiError) as e:
            morph.instances.get(child.id)
        assert e.value.status_code == 404
        with pytest.raises(ApiError) as e:
            inst.ssh_key()
        assert e.value.status_code == 501 and "unsupported" in e.value.response_body
    finally:
        inst.stop()


def test_branch(morph, base):
    inst = morph.instances.start(base.id)
    try:
        inst.exec("echo parent > /root/who")
        snap, kids = inst.branch(2)
        assert len(kids) == 2 and all(k.status == "ready" for k in kids)
        assert all(k.refs.snapshot_id == snap.id for k in kids)
        assert [k.exec("cat /root/who").stdout for k in kids] == ["parent\n", "parent\n"]
        for k in kids:
            k.stop()
    finally:
        inst.stop()


def test_async_sdk(morph, base):
    async def go():
        a, b = await asyncio.gather(morph.instances.astart(base.id), morph.instances.astart(base.id))
        try:
            ra, rb = await asyncio.gather(a.aexec("hostname"), b.aexec("hostname"))
            assert ra.stdout.strip() == a.id and rb.stdout.strip() == b.id
            r = await a.aexec("echo streamed", on_stdout=lambda s: None)
            assert r.stdout == "streamed\n"
        finally:
            await asyncio.gather(a.astop(), b.astop())

    asyncio.run(go())


def test_ttl_stop_and_pause(morph, base):
    gone = morph.instances.start(base.id, ttl_seconds=1, ttl_action="stop")
    paused = morph.instances.start(base.id, ttl_seconds=1, ttl_action="pause")
    try:
        deadline = time.time() + 15
        while time.time() < deadline:
            ids = [i.id for i in morph.instances.list()]
            if gone.id not in ids and morph.instances.get(paused.id).status == "paused":
                break
            time.sleep(0.5)
        assert gone.id not in [i.id for i in morph.instances.list()]
        assert morph.instances.get(paused.id).status == "paused"
    finally:
        paused.stop()


def test_expose_http_service(morph, base):
    import httpx

    inst = morph.instances.start(base.id)
    try:
        inst.exec("mkdir -p /srv && echo served-from-world > /srv/index.txt")
        inst.exec("nohup python3 -m http.server 8080 --bind 127.0.0.1 --directory /srv >/dev/null 2>&1 &")
        deadline = time.time() + 10
        while inst.exec(["python3", "-c", "import socket; socket.create_connection(('127.0.0.1', 8080))"]).exit_code != 0:
            assert time.time() < deadline, "http.server did not start"
            time.sleep(0.2)
        url = inst.expose_http_service("web", 8080)
        assert url.endswith(f"/v1/services/{inst.id}/web/")
        assert [s.name for s in inst.networking.http_services] == ["web"]
        auth = {"Authorization": f"Bearer {os.environ['WORLD_API_TOKEN']}"}
        r = httpx.get(url + "index.txt", headers=auth)
        assert r.status_code == 200 and r.text == "served-from-world\n"
        assert httpx.get(url + "index.txt").status_code == 401, "the token is required"
        assert httpx.get(url + "missing", headers=auth).status_code == 404
        inst.hide_http_service("web")
        assert inst.networking.http_services == []
        assert httpx.get(url + "index.txt", headers=auth).status_code == 404
    finally:
        inst.stop()


def test_ssh_upload_download(morph, base, tmp_path):
    """`instance.ssh()`, `upload` and `download` over the daemon's SSH door
    (Morph's convention: user `INSTANCE_ID:API_KEY`, any key)."""
    if not os.environ.get("WORLD_SSH_PORT"):
        pytest.skip("the daemon serves no SSH")
    inst = morph.instances.start(base.id)
    try:
        with inst.ssh() as ssh:
            r = ssh.run("echo over-ssh; echo err >&2; exit 4", get_pty=False)
            assert (r.returncode, r.stdout, r.stderr) == (4, "over-ssh\n", "err\n")
            r = ssh.run("tty")
            assert r.returncode == 0 and r.stdout.strip() == "/dev/pts/0"
        src = tmp_path / "data"
        (src / "sub").mkdir(parents=True)
        (src / "a.txt").write_text("alpha\n")
        (src / "sub" / "b.bin").write_bytes(bytes(range(256)) * 1000)
        inst.upload(str(src), "/root/data", recursive=True)
        assert inst.exec("cat /root/data/a.txt").stdout == "alpha\n"
        assert inst.exec("wc -c < /root/data/sub/b.bin").stdout.strip() == "256000"
        back = tmp_path / "back"
        inst.download("/root/data", str(back), recursive=True)
        assert (back / "sub" / "b.bin").read_bytes() == (src / "sub" / "b.bin").read_bytes()
    finally:
        inst.stop()


def test_snapshot_build_is_cached_by_digest(morph, base):
    """`snapshot.exec` and `snapshot.build` run their steps over SSH and
    keep each step as a snapshot keyed by digest: the second run of the
    same steps starts no instance."""
    if not os.environ.get("WORLD_SSH_PORT"):
        pytest.skip("the daemon serves no SSH")
    steps = ["echo one > /root/one", "cat /root/one > /root/two && echo two >> /root/two"]
    first = base.build(steps)
    before = len(morph.instances.list())
    t = time.time()
    second = base.build(steps)
    assert second.id == first.id and second.digest == first.digest
    assert len(morph.instances.list()) == before
    assert time.time() - t < 5
    one = base.exec("echo single > /root/s")
    assert base.exec("echo single > /root/s").id == one.id
    inst = morph.instances.start(first.id)
    try:
        assert inst.exec("cat /root/two").stdout == "one\ntwo\n"
    finally:
        inst.stop()
    with pytest.raises(RuntimeError):
        base.exec("exit 3")
