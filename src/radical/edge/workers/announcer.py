"""An edge announcing itself in Redis and keeping its heartbeat (and its name lease).

The announcement key expires `heartbeat_ttl` seconds after the last beat, which is how
bridges see a `kill -9`ed edge disappear. Every beat renews the name lease and rewrites the
key and the set membership in one script that first checks the lease owner (see lease.py),
so after a Redis restart (no persistence) the edge re-claims and reappears within a beat,
and an edge that lost its name never overwrites its successor's announcement.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..app import keys
from ..app.aio import raise_if_cancelling, wait_event
from .lease import NameLease

log = logging.getLogger(__name__)


class Announcer:
    def __init__(self, redis: aioredis.Redis, lease: NameLease,
                 describe: Callable[[], dict[str, Any]], interval: float,
                 on_lost: Callable[[], Awaitable[bool]]) -> None:
        self._redis = redis
        self._lease = lease
        self._name = lease.name
        self._describe = describe
        self._interval = interval
        self._on_lost = on_lost  # True: the name was re-claimed, keep beating
        self._last_stable: bytes | None = None
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self.visible = False  # announce (True) or only keep the lease (before worker_ready)

    def start(self) -> None:
        if self._task is None or self._task.done():  # worker_ready may fire again
            self._task = asyncio.get_running_loop().create_task(self._run())

    def changed(self) -> None:
        """Announce now (plugins or walltime state changed)."""
        self._wake.set()

    async def beat(self) -> bool:
        """Renew the lease (and the announcement once visible); False if the lease is lost."""
        if not self.visible:
            return await self._lease.renew_and_announce()
        info = self._describe()
        info["heartbeat"] = time.time()
        stable = orjson.dumps({k: v for k, v in info.items() if k != "heartbeat"})
        if not await self._lease.renew_and_announce(orjson.dumps(info)):
            return False
        existed_before = self._last_stable is not None
        if stable != self._last_stable:
            await self._redis.publish(keys.TOPOLOGY_CHANNEL, f"join:{self._name}")
        if not existed_before:
            log.warning("edge '%s' announced", self._name)
        self._last_stable = stable
        return True

    async def _run(self) -> None:
        while True:
            try:
                if not await self.beat():
                    log.error("edge '%s' lost its name lease (paused or partitioned "
                              "past %g s)", self._name, self._lease.ttl)
                    if not await self._on_lost():
                        return
                    self._last_stable = b""
                    continue
            except (RedisError, OSError) as exc:
                log.warning("heartbeat of edge '%s' failed: %s", self._name, exc)
                self._last_stable = b""  # force a topology ping once Redis is back
            raise_if_cancelling()
            await wait_event(self._wake, self._interval)
            self._wake.clear()

    async def withdraw(self) -> None:
        """Leave the topology at once (clean shutdown)."""
        if self._task is not None:
            self._task.cancel()
        try:  # only what is still ours: a successor's announcement stays
            if await self._lease.release():
                await self._redis.publish(keys.TOPOLOGY_CHANNEL, f"leave:{self._name}")
        except (RedisError, OSError) as exc:
            log.warning("could not withdraw edge '%s': %s", self._name, exc)
