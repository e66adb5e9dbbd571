"""The contract between a plugin and the process hosting it (an edge, or the bridge).

`workers.host.PluginHost` and `workers.local_host` implement `PluginHostAPI`; plugins see
only this, so they never import the edge runtime.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol

from starlette.requests import Request

__all__ = ["Handler", "HostState", "PluginHostAPI"]

Handler = Callable[[Request], Awaitable[Any] | Any]


@dataclass
class HostState:
    """Where the hosting process runs, for plugins: its batch system and allocation."""

    scheduler: str | None = None  # "slurm" | "pbs" | None (no batch system, or the bridge)
    job_id: str | None = None  # batch job this process runs in, if any
    allocation: dict[str, Any] | None = None  # the batch system's view of that job
    batch: Any = None  # the detected `hpc.batch.BatchSystem` (None on the bridge)


class PluginHostAPI(Protocol):
    """What a plugin may use of the process hosting it (an edge, or the bridge)."""

    edge_name: str
    role: str  # "login" | "compute" | "bridge"
    settings: Any
    state: HostState

    def add_route(self, method: str, path: str, handler: Handler) -> None: ...

    def notify(self, plugin: str, topic: str, data: dict) -> None:
        """Publish a notification; safe from the loop and from any thread."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...
