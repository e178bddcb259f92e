"""`world bench clients`: the same work through the clients people use and
through our native API, interleaved in one run against a running daemon.
Prints one JSON object: {"rows": [{"name", "baseline", "ms": [...]}]}.

Argument: samples per row. Environment: WORLD_API_URL, WORLD_API_TOKEN,
and WORLD_SSH_PORT when the daemon serves SSH."""

import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse

n = int(sys.argv[1])
url, tok = os.environ["WORLD_API_URL"], os.environ["WORLD_API_TOKEN"]
os.environ["E2B_API_URL"] = os.environ["E2B_SANDBOX_URL"] = url
os.environ["E2B_API_KEY"] = tok
u = urllib.parse.urlparse(url)
conn = http.client.HTTPConnection(u.hostname, u.port)


def call(method, path, body=None):
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit(f"{method} {path}: {r.status} {data[:300]!r}")
    return json.loads(data) if data else None


def ms(t0):
    return (time.perf_counter() - t0) * 1000.0


from e2b import Sandbox  # noqa: E402

rows = {}


def add(name, baseline, v):
    rows.setdefault(name, {"name": name, "baseline": baseline, "ms": []})["ms"].append(v)


sbx = Sandbox.create(timeout=3600)
wid = sbx.sandbox_id
ssh = None
if os.environ.get("WORLD_SSH_PORT"):
    ssh = ["ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
           "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ControlMaster=auto",
           "-o", f"ControlPath=/tmp/world-bench-ssh-{os.getpid()}", "-o", "ControlPersist=60",
           "-p", os.environ["WORLD_SSH_PORT"], f"{wid}:{tok}@127.0.0.1", "true"]
try:
    # Warm every path once.
    call("POST", f"/v1/worlds/{wid}/exec", {"command": "true"})
    sbx.commands.run("true")
    if ssh:
        subprocess.run(ssh, check=True)
    for _ in range(n):
        t = time.perf_counter()
        call("POST", f"/v1/worlds/{wid}/exec", {"command": "true"})
        add("exec true: native HTTP", None, ms(t))
        t = time.perf_counter()
        sbx.commands.run("true")
        add("exec true: E2B SDK commands.run", "exec true: native HTTP", ms(t))
        if ssh:
            t = time.perf_counter()
            subprocess.run(ssh, check=True)
            add("exec true: OpenSSH (multiplexed)", "exec true: native HTTP", ms(t))
    for _ in range(max(3, n // 3)):
        t = time.perf_counter()
        b = call("POST", f"/v1/worlds/{wid}/branch", {"count": 3})
        add("branch 3: native HTTP", None, ms(t))
        for c in b["children"]:
            call("DELETE", f"/v1/worlds/{c}")
        t = time.perf_counter()
        kids = sbx.fork(count=3)
        add("fork 3: E2B SDK sbx.fork", "branch 3: native HTTP", ms(t))
        for k in kids:
            k.kill()
finally:
    sbx.kill()
    if ssh:
        subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath=/tmp/world-bench-ssh-{os.getpid()}", "x"],
                       capture_output=True)
print(json.dumps({"rows": list(rows.values())}))
