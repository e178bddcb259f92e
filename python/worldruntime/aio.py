"""asyncio client: the sync client's calls on worker threads
(`asyncio.to_thread`), so concurrent coroutines run concurrently."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Sequence, Union

from .client import Client, CodeResult, ExecResult, PulledUp, PushDown, World, default_client
from . import client as _sync


class AsyncClient:
    """Async wrapper of a Client."""

    def __init__(self, base_url: Optional[str] = None, token: Optional[str] = None, timeout: float = 600.0):
        self.sync = Client(base_url, token, timeout)

    async def request(self, method: str, path: str, body: Any = None, query: Optional[Dict[str, Any]] = None) -> Any:
        return await asyncio.to_thread(self.sync.request, method, path, body, query)

    async def ledger(self) -> Dict[str, Any]:
        return await asyncio.to_thread(self.sync.ledger)

    async def resolutions(self, limit: int = 100) -> List[Dict[str, Any]]:
        return await asyncio.to_thread(self.sync.resolutions, limit)

    async def metrics(self) -> List[Dict[str, Any]]:
        return await asyncio.to_thread(self.sync.metrics)


def _sync_client(client: Any) -> Client:
    if client is None:
        return default_client()
    return client.sync if isinstance(client, AsyncClient) else client


class AsyncWorld:
    """A world, with coroutine methods (same names as World)."""

    def __init__(self, world: World):
        self.sync = world
        self.id = world.id

    def __repr__(self) -> str:
        return f"AsyncWorld({self.id!r})"

    @property
    def info(self) -> Dict[str, Any]:
        return self.sync.info

    @property
    def metadata(self) -> Dict[str, str]:
        return self.sync.metadata

    @classmethod
    async def create(cls, snapshot_id: Optional[str] = None, *, client: Any = None, **kw: Any) -> "AsyncWorld":
        w = await asyncio.to_thread(World.create, snapshot_id, client=_sync_client(client), **kw)
        return cls(w)

    @classmethod
    async def get(cls, world_id: str, client: Any = None) -> "AsyncWorld":
        return cls(await asyncio.to_thread(World.get, world_id, _sync_client(client)))

    async def execute_code(self, code: str, session: str = "default", timeout: Optional[float] = None) -> CodeResult:
        return await asyncio.to_thread(self.sync.execute_code, code, session, timeout)

    async def exec(self, cmd: Union[str, Sequence[str]], **kw: Any) -> ExecResult:
        return await asyncio.to_thread(self.sync.exec, cmd, **kw)

    async def snapshot(self, name: Optional[str] = None) -> str:
        return await asyncio.to_thread(self.sync.snapshot, name)

    async def branch(self, n: int) -> List["AsyncWorld"]:
        return [AsyncWorld(w) for w in await asyncio.to_thread(self.sync.branch, n)]

    async def push_down(self, children: Optional[List[Dict[str, Any]]] = None, allow_nonconserving: bool = False) -> "AsyncPushDown":
        return AsyncPushDown(await asyncio.to_thread(self.sync.push_down, children, allow_nonconserving))

    async def pause(self) -> None:
        await asyncio.to_thread(self.sync.pause)

    async def resume(self) -> None:
        await asyncio.to_thread(self.sync.resume)

    async def destroy(self) -> None:
        await asyncio.to_thread(self.sync.destroy)

    async def __aenter__(self) -> "AsyncWorld":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.to_thread(self.sync.__exit__, *exc)


class AsyncPushDown:
    """A push-down with coroutine run/pull_up."""

    def __init__(self, p: PushDown):
        self.sync = p
        self.partition = p.partition
        self.verses = p.verses

    async def run(self, code: Union[str, Dict[str, str]], timeout: Optional[float] = None) -> List[Dict[str, Any]]:
        return await asyncio.to_thread(self.sync.run, code, timeout)

    async def pull_up(self, **kw: Any) -> PulledUp:
        return await asyncio.to_thread(self.sync.pull_up, **kw)


async def run_verses(**kw: Any) -> List[Dict[str, Any]]:
    """Async `worldruntime.run_verses`."""
    return await asyncio.to_thread(_sync.run_verses, **kw)


async def pull_up(partition: str, **kw: Any) -> PulledUp:
    """Async `worldruntime.pull_up`."""
    return await asyncio.to_thread(_sync.pull_up, partition, **kw)


#: The original design's name: `from worldruntime import MorphSandbox`.
MorphSandbox = AsyncWorld
