"""Append-only audit log of mutating calls: a capped Redis stream plus one log line each.

Recording is a `put_nowait` on a bounded queue; a background task writes the entries to
Redis in pipelined batches, so the hot path never waits on Redis for auditing. If Redis is
down or the queue is full the log line is still written and `dropped` counts the loss.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..app import keys

log = logging.getLogger("radical.edge.audit")
log.setLevel(logging.INFO)  # audit lines show even when the bridge logs only warnings


class AuditLog:
    def __init__(self, redis: aioredis.Redis, bridge_id: str, queue_size: int = 10_000) -> None:
        self._redis = redis
        self._bridge = bridge_id
        self._queue: asyncio.Queue[dict[str, str]] = asyncio.Queue(queue_size)
        self.dropped = 0
        self.written = 0

    def record(self, user: str, scope: str, method: str, path: str, status: int) -> None:
        """Note one mutating call after it was answered (cheap; never blocks)."""
        edge = plugin = ""
        first, _, rest = path[1:].partition("/")
        if first not in keys.RESERVED_EDGE_NAMES and rest:
            edge, plugin = first, rest.partition("/")[0]
        entry = {"time": f"{time.time():.6f}", "user": user, "scope": scope, "edge": edge,
                 "plugin": plugin, "method": method, "path": path, "status": str(status),
                 "bridge": self._bridge}
        log.info("audit user=%s scope=%s %s %s -> %d", user, scope, method, path, status)
        try:
            self._queue.put_nowait(entry)
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self) -> None:
        """Write queued entries to the audit stream forever (batched, survives Redis loss)."""
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < 500:
                batch.append(self._queue.get_nowait())
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for entry in batch:
                        pipe.xadd(keys.AUDIT, entry, maxlen=keys.AUDIT_MAXLEN, approximate=True)
                    await pipe.execute()
                self.written += len(batch)
            except (RedisError, OSError) as exc:
                self.dropped += len(batch)
                log.warning("could not write %d audit entries to Redis: %s", len(batch), exc)
                await asyncio.sleep(0.5)

    async def flush(self, timeout: float = 2.0) -> None:
        """Wait (bounded) until queued entries were handed to Redis; used at shutdown."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._queue.empty() and loop.time() < deadline:
            await asyncio.sleep(0.02)


def audit_view(entry: dict[Any, Any]) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes)
            else v) for k, v in entry.items()}
