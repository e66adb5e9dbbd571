"""Who is alive: read edge announcements from Redis and report changes.

Bridges and edges both run a `TopologyWatcher`. Liveness is decided by Redis itself: an
edge's announcement key carries a TTL that heartbeats renew, so a `kill -9`ed edge vanishes
without anyone's clock being trusted. A pub/sub ping on `keys.TOPOLOGY_CHANNEL` makes joins
and clean leaves visible at once; polling catches silent deaths.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from . import keys
from .aio import raise_if_cancelling, wait_event
from .departures import Departures
from .retry import Backoff

log = logging.getLogger(__name__)

#: announcement fields that change on every heartbeat and are not a topology change
#: (`stats`: the edge's own counters, exported by the bridge's /metrics)
VOLATILE = frozenset({"heartbeat", "stats"})
#: a departed name is forgotten (404 instead of 503) after this long
FORGET_AFTER = 3600.0

OnChange = Callable[[dict[str, dict], set[str], set[str]], Awaitable[None]]


def stable_view(edges: dict[str, dict]) -> dict[str, dict]:
    return {n: {k: v for k, v in a.items() if k not in VOLATILE} for n, a in edges.items()}


class TopologyWatcher:
    """Keeps `edges` (alive announcements) and `departed` (recently gone names) current."""

    def __init__(self, redis: aioredis.Redis, poll_seconds: float,
                 on_change: OnChange | None = None, heartbeat_ttl: float | None = None) -> None:
        self._redis = redis
        self._poll = poll_seconds
        self._on_change = on_change
        self._wake = asyncio.Event()
        self._stable: dict[str, dict] = {}
        self.edges: dict[str, dict] = {}
        self.departed: dict[str, float] = {}
        #: why each departed edge left (shown by the portal until it returns)
        self.departures = Departures()
        self._heartbeat_ttl = heartbeat_ttl
        self.ready = asyncio.Event()
        self.refreshed: float | None = None  # monotonic time of the last successful read

    def ping(self) -> None:
        """Re-read now (a join/leave was announced)."""
        self._wake.set()

    def age(self) -> float | None:
        """Seconds since the view was last read from Redis (None: never)."""
        return None if self.refreshed is None else time.monotonic() - self.refreshed

    def state_of(self, name: str) -> str:
        """'alive', 'gone' (known but not connected) or 'unknown'."""
        if name in self.edges:
            return "alive"
        return "gone" if name in self.departed else "unknown"

    async def refresh(self) -> None:
        names = sorted(n.decode() if isinstance(n, bytes) else n
                       for n in await self._redis.smembers(keys.EDGES))
        raw = await self._redis.mget([keys.edge_info(n) for n in names]) if names else []
        alive: dict[str, dict] = {}
        for name, blob in zip(names, raw):
            if blob is None:
                continue
            try:
                alive[name] = orjson.loads(blob)
            except ValueError:
                log.warning("ignoring malformed announcement of edge %r", name)
        now = time.monotonic()
        for name in set(self.edges) - set(alive):
            self.departed[name] = now
            self.departures.left(name, self.edges[name], self._heartbeat_ttl)
        for name in list(self.departed):
            if name in alive:
                del self.departed[name]
                self.departures.returned(name)
            elif now - self.departed[name] > FORGET_AFTER:
                del self.departed[name]
                self.departures.forget(name)
                await self._redis.srem(keys.EDGES, name)
        stable = stable_view(alive)
        joined = set(alive) - set(self.edges)
        left = set(self.edges) - set(alive)
        changed = stable != self._stable
        self.edges, self._stable = alive, stable
        self.refreshed = now
        self.ready.set()
        if changed and self._on_change is not None:
            await self._on_change(alive, joined, left)

    async def run(self) -> None:
        """Refresh forever; survives Redis outages (keeps the last known view meanwhile)."""
        backoff = Backoff("topology refresh", logger=log)
        while True:
            try:
                await self.refresh()
                backoff.succeeded()
            except (RedisError, OSError) as exc:
                await backoff.wait(exc)
                continue
            except Exception:
                log.exception("topology callback failed")
            raise_if_cancelling()
            await wait_event(self._wake, self._poll)
            self._wake.clear()


def edge_summary(announcement: dict[str, Any]) -> dict[str, Any]:
    """The per-edge entry of `/edge/list` and SSE topology, from an announcement.

    Plugin namespaces become `/<edge>/<plugin>`: the original client builds every plugin URL
    from this field, relative to the bridge.
    """
    out = {k: v for k, v in announcement.items() if k not in VOLATILE}
    end = announcement.get("walltime_end")
    out["walltime_remaining"] = max(0, int(end - time.time())) if end else None
    beat = announcement.get("heartbeat")
    out["heartbeat_age"] = round(max(0.0, time.time() - beat), 3) if isinstance(
        beat, (int, float)) else None
    name = announcement.get("name")
    plugins = announcement.get("plugins")
    if name and isinstance(plugins, dict):
        out["plugins"] = {p: {**info, "namespace": f"/{name}/{p}"} if isinstance(info, dict)
                          else info for p, info in plugins.items()}
    return out
