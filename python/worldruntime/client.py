"""Synchronous client (urllib)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

DEFAULT_URL = "http://127.0.0.1:7077"


class ApiError(Exception):
    """The daemon refused or failed: `status` (HTTP), `code` (stable
    `error_code`), `detail` (message)."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


def _default_token() -> Optional[str]:
    tok = os.environ.get("WORLD_API_TOKEN")
    if tok:
        return tok.strip()
    state = os.environ.get("WORLD_STATE_DIR") or "/var/lib/world-runtime"
    try:
        with open(os.path.join(state, "api-token"), encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


class Client:
    """A connection to the daemon: base URL and token (see module docs)."""

    def __init__(self, base_url: Optional[str] = None, token: Optional[str] = None, timeout: float = 600.0):
        self.base_url = (base_url or os.environ.get("WORLD_API_URL") or DEFAULT_URL).rstrip("/")
        self.token = token or _default_token()
        if not self.token:
            raise ValueError("no API token: set WORLD_API_TOKEN or pass token= (see `world token`)")
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, query: Optional[Dict[str, Any]] = None) -> Any:
        """Sends one request; returns the decoded JSON or raises ApiError."""
        url = self.base_url + path
        if query:
            from urllib.parse import urlencode

            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                j = json.loads(raw)
                raise ApiError(e.code, j.get("error_code", "error"), j.get("detail", raw.decode(errors="replace"))) from None
            except ValueError:
                raise ApiError(e.code, "error", raw.decode(errors="replace")) from None
        return json.loads(raw) if raw else None

    # Records and ledger.
    def ledger(self) -> Dict[str, Any]:
        return self.request("GET", "/v1/ledger")

    def apply(self, op: Dict[str, Any]) -> Dict[str, Any]:
        """Applies one ledger operation, e.g. {"op": "deposit", ...}."""
        return self.request("POST", "/v1/ledger/ops", op)

    def resolutions(self, limit: int = 100) -> List[Dict[str, Any]]:
        return self.request("GET", "/v1/resolutions", query={"limit": limit})

    def metrics(self) -> List[Dict[str, Any]]:
        return self.request("GET", "/v1/metrics")

    def entities(self, entity_type: Optional[str] = None, limit: int = 1000) -> List[Dict[str, Any]]:
        return self.request("GET", "/v1/entities", query={"type": entity_type, "limit": limit})

    def branches(self, limit: int = 1000) -> List[Dict[str, Any]]:
        return self.request("GET", "/v1/branches", query={"limit": limit})

    def worlds(self) -> List["World"]:
        return [World(self, w) for w in self.request("GET", "/v1/worlds")]

    def snapshots(self) -> List[Dict[str, Any]]:
        return self.request("GET", "/v1/snapshots")

    def delete_snapshot(self, snapshot: str) -> None:
        self.request("DELETE", f"/v1/snapshots/{snapshot}")


_default: Optional[Client] = None


def default_client() -> Client:
    """The client made from the environment, shared by World.create()."""
    global _default
    if _default is None:
        _default = Client()
    return _default


@dataclass
class CodeResult:
    """Result of running Python code in a world's session."""

    stdout: str = ""
    stderr: str = ""
    value: Optional[str] = None
    error: Optional[str] = None
    timed_out: bool = False
    duration_ms: float = 0.0
    exit_code: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out

    @classmethod
    def of(cls, j: Dict[str, Any]) -> "CodeResult":
        return cls(**{k: j.get(k) for k in ("stdout", "stderr", "value", "error", "timed_out", "duration_ms", "exit_code")})


@dataclass
class ExecResult:
    """Result of a command: shell-style exit code and captured output."""

    exit_code: int
    stdout: str
    stderr: str
    signal: Optional[int] = None
    timed_out: bool = False
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @classmethod
    def of(cls, j: Dict[str, Any]) -> "ExecResult":
        return cls(**{k: j.get(k) for k in ("exit_code", "stdout", "stderr", "signal", "timed_out", "duration_ms")})


class World:
    """A world (sandbox) on the daemon."""

    def __init__(self, client: Client, info: Dict[str, Any]):
        self.client = client
        self.info = info
        self.id: str = info["id"]

    def __repr__(self) -> str:
        return f"World({self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, World) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def metadata(self) -> Dict[str, str]:
        return self.info.get("metadata", {})

    @classmethod
    def create(
        cls,
        snapshot_id: Optional[str] = None,
        *,
        image: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        vcpus: Optional[int] = None,
        memory_mib: Optional[int] = None,
        client: Optional[Client] = None,
    ) -> "World":
        """A new world from an image, or (snapshot_id) a branch of a snapshot."""
        c = client or default_client()
        body = {"snapshot_id": snapshot_id, "image": image, "metadata": metadata, "vcpus": vcpus, "memory_mib": memory_mib}
        return cls(c, c.request("POST", "/v1/worlds", {k: v for k, v in body.items() if v is not None}))

    @classmethod
    def get(cls, world_id: str, client: Optional[Client] = None) -> "World":
        c = client or default_client()
        return cls(c, c.request("GET", f"/v1/worlds/{world_id}"))

    @classmethod
    def list(cls, client: Optional[Client] = None) -> List["World"]:
        return (client or default_client()).worlds()

    def refresh(self) -> "World":
        self.info = self.client.request("GET", f"/v1/worlds/{self.id}")
        return self

    def execute_code(self, code: str, session: str = "default", timeout: Optional[float] = None) -> CodeResult:
        """Runs Python code in a session (state persists between calls and
        into snapshots and branches). An exception is reported in
        `.error`, not raised."""
        body = {"code": code, "session": session}
        if timeout is not None:
            body["timeout"] = timeout
        return CodeResult.of(self.client.request("POST", f"/v1/worlds/{self.id}/run-code", body))

    def exec(
        self,
        cmd: Union[str, Sequence[str]],
        *,
        env: Optional[Dict[str, str]] = None,
        cwd: Optional[str] = None,
        timeout: Optional[float] = None,
        stdin: Optional[str] = None,
    ) -> ExecResult:
        """Runs a command (a string is a shell line) and captures its output."""
        body: Dict[str, Any] = {"command": cmd} if isinstance(cmd, str) else {"argv": list(cmd)}
        for k, v in (("env", env), ("cwd", cwd), ("timeout", timeout), ("stdin", stdin)):
            if v is not None:
                body[k] = v
        return ExecResult.of(self.client.request("POST", f"/v1/worlds/{self.id}/exec", body))

    def snapshot(self, name: Optional[str] = None) -> str:
        """Snapshots files and session memory; returns the snapshot id."""
        body = {"name": name} if name else {}
        return self.client.request("POST", f"/v1/worlds/{self.id}/snapshot", body)["id"]

    def branch(self, n: int) -> List["World"]:
        """n new worlds continuing from this world's current state."""
        b = self.client.request("POST", f"/v1/worlds/{self.id}/branch", {"count": n})
        return [World.get(c, self.client) for c in b["children"]]

    def push_down(self, children: Optional[List[Dict[str, Any]]] = None, allow_nonconserving: bool = False) -> "PushDown":
        """Splits this world into verses (default nash -1 / optimal 0 /
        chaos +1), one world each, balances pushed down."""
        body: Dict[str, Any] = {"allow_nonconserving": allow_nonconserving}
        if children is not None:
            body["children"] = children
        return PushDown(self.client, self.client.request("POST", f"/v1/worlds/{self.id}/push-down", body))

    def pause(self) -> None:
        self.info = self.client.request("POST", f"/v1/worlds/{self.id}/pause")

    def resume(self) -> None:
        self.info = self.client.request("POST", f"/v1/worlds/{self.id}/resume")

    def destroy(self) -> None:
        self.client.request("DELETE", f"/v1/worlds/{self.id}")

    def __enter__(self) -> "World":
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.destroy()
        except ApiError as e:
            if e.status != 404:
                raise


@dataclass
class Verse:
    """One verse of a push-down and its world."""

    verse: str
    name: str
    trit: int
    prob: str
    seed: int
    world: World


@dataclass
class PushDown:
    """What a push-down made: a partition of verses, one world each."""

    client: Client
    raw: Dict[str, Any]
    verses: List[Verse] = field(init=False)

    def __post_init__(self) -> None:
        self.verses = [
            Verse(v["verse"], v["name"], v["trit"], v["prob"], v["seed"], World(self.client, {"id": v["world"]}))
            for v in self.raw["verses"]
        ]

    @property
    def partition(self) -> str:
        return self.raw["partition"]

    @property
    def gf3_sum(self) -> int:
        return self.raw["gf3_sum"]

    def verse(self, name: str) -> Verse:
        return next(v for v in self.verses if v.name == name)

    def run(self, code: Union[str, Dict[str, str]], timeout: Optional[float] = None) -> List[Dict[str, Any]]:
        """Runs code in every verse (or {verse name: code}) in parallel."""
        if isinstance(code, str):
            return run_verses(partition=self.partition, code=code, timeout=timeout, client=self.client)
        runs = [{"verse": self.verse(n).verse, "code": c} for n, c in code.items()]
        return run_verses(runs=runs, timeout=timeout, client=self.client)

    def pull_up(self, **kw: Any) -> "PulledUp":
        return pull_up(self.partition, client=self.client, **kw)


@dataclass
class PulledUp:
    """What a pull-up did."""

    raw: Dict[str, Any]

    @property
    def winner(self) -> str:
        return self.raw["winner"]

    @property
    def winner_world(self) -> str:
        return self.raw["winner_world"]

    @property
    def collapsed_worlds(self) -> List[str]:
        return self.raw["collapsed_worlds"]

    @property
    def wev(self) -> Optional[Dict[str, Any]]:
        return self.raw.get("wev")


def run_verses(
    partition: Optional[str] = None,
    code: Optional[str] = None,
    runs: Optional[List[Dict[str, str]]] = None,
    session: str = "default",
    timeout: Optional[float] = None,
    client: Optional[Client] = None,
) -> List[Dict[str, Any]]:
    """Runs code in verses' worlds in parallel; each result has `run`
    (stdout, error, score...)."""
    body: Dict[str, Any] = {"session": session}
    for k, v in (("partition", partition), ("code", code), ("runs", runs), ("timeout", timeout)):
        if v is not None:
            body[k] = v
    return (client or default_client()).request("POST", "/v1/verses/run", body)


def pull_up(
    partition: str,
    oracle: str = "score",
    winner: Optional[str] = None,
    lowest: bool = False,
    seed: Optional[int] = None,
    argv: Optional[List[str]] = None,
    game: Optional[Dict[str, Any]] = None,
    client: Optional[Client] = None,
) -> PulledUp:
    """Resolves a partition over worlds: the oracle picks the winner, the
    other verses' worlds are destroyed, balances are pulled up."""
    body: Dict[str, Any] = {"oracle": oracle}
    for k, v in (("winner", winner), ("seed", seed), ("argv", argv), ("game", game)):
        if v is not None:
            body[k] = v
    if lowest:
        body["lowest"] = True
    return PulledUp((client or default_client()).request("POST", f"/v1/partitions/{partition}/pull-up", body))
