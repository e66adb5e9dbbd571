"""An edge announcing itself in Redis and keeping its heartbeat.

The announcement key expires `heartbeat_ttl` seconds after the last beat, which is how
bridges see a `kill -9`ed edge disappear. Every beat rewrites the key and the set
membership, so after a Redis restart (no persistence) the edge reappears within a beat.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..app import keys
from ..app.aio import raise_if_cancelling, wait_event
from ..app.retry import Backoff

log = logging.getLogger(__name__)


class Announcer:
    def __init__(self, redis: aioredis.Redis, name: str, describe: Callable[[], dict[str, Any]],
                 interval: float, ttl: float) -> None:
        self._redis = redis
        self._name = name
        self._describe = describe
        self._interval = interval
        self._ttl_ms = int(ttl * 1000)
        self._last_stable: bytes | None = None
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        if self._task is None or self._task.done():  # worker_ready may fire again
            self._task = asyncio.get_running_loop().create_task(self._run())

    def changed(self) -> None:
        """Announce now (plugins or walltime state changed)."""
        self._wake.set()

    def reannounce(self) -> None:
        """Announce now with a topology ping: Redis may have restarted empty (called when a
        subscription reconnects), and bridges route here only once they see the key again."""
        if self._last_stable is not None:
            self._last_stable = b""
        self._wake.set()

    async def beat(self) -> None:
        info = self._describe()
        info["heartbeat"] = time.time()
        stable = orjson.dumps({k: v for k, v in info.items() if k != "heartbeat"})
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(keys.edge_info(self._name), orjson.dumps(info), px=self._ttl_ms)
        pipe.sadd(keys.EDGES, self._name)
        existed_before = self._last_stable is not None
        if stable != self._last_stable:
            pipe.publish(keys.TOPOLOGY_CHANNEL, f"join:{self._name}")
        await pipe.execute()
        if not existed_before:
            log.warning("edge '%s' announced", self._name)
        self._last_stable = stable

    async def _run(self) -> None:
        backoff = Backoff(f"heartbeat of edge '{self._name}'", logger=log)
        while True:
            try:
                await self.beat()
                backoff.succeeded()
            except (RedisError, OSError) as exc:
                self._last_stable = b""  # force a topology ping once Redis is back
                # re-announce as soon as Redis is back, not a whole interval later
                await wait_event(self._wake, min(self._interval, backoff.failed(exc)))
                self._wake.clear()
                continue
            raise_if_cancelling()
            await wait_event(self._wake, self._interval)
            self._wake.clear()

    async def withdraw(self) -> None:
        """Leave the topology at once (clean shutdown)."""
        if self._task is not None:
            self._task.cancel()
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.delete(keys.edge_info(self._name))
            pipe.publish(keys.TOPOLOGY_CHANNEL, f"leave:{self._name}")
            await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("could not withdraw edge '%s': %s", self._name, exc)
