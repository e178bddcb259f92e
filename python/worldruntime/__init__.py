"""WorldRuntime Python SDK: sync (`World`, `Client`) and asyncio
(`AsyncWorld`, `AsyncClient`, alias `MorphSandbox`) clients of the
`world serve` daemon. Standard library only."""

from .client import (
    ApiError,
    Client,
    CodeResult,
    ExecResult,
    PushDown,
    Verse,
    World,
    default_client,
    pull_up,
    run_verses,
)
from .aio import AsyncClient, AsyncPushDown, AsyncWorld, MorphSandbox

__all__ = [
    "ApiError",
    "AsyncClient",
    "AsyncPushDown",
    "AsyncWorld",
    "Client",
    "CodeResult",
    "ExecResult",
    "MorphSandbox",
    "PushDown",
    "Verse",
    "World",
    "default_client",
    "pull_up",
    "run_verses",
]
__version__ = "0.1.0"
