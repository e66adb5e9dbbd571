"""An edge announcing itself in Redis and keeping its heartbeat.

The announcement key expires `heartbeat_ttl` seconds after the last beat, which is how
bridges see a `kill -9`ed edge disappear. Every beat rewrites the key and the set
membership, so after a Redis restart (no persistence) the edge reappears within a beat.

The heartbeat runs on its own thread with its own Redis connection, not on the plugin loop:
a handler that blocks the loop (a `time.sleep`, a long decode) must not make a live edge
vanish from the topology and fail every call in flight with "edge lost".
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Callable

import orjson
import redis
from redis.exceptions import RedisError

from ..app import keys
from ..app.retry import Backoff

log = logging.getLogger(__name__)


class Announcer:
    def __init__(self, client: redis.Redis, name: str, describe: Callable[[], dict[str, Any]],
                 interval: float, ttl: float) -> None:
        self._redis = client
        self._name = name
        self._describe = describe
        self._interval = interval
        self._ttl_ms = int(ttl * 1000)
        self._last_stable: bytes | None = None
        self._last_info: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one beat at a time (thread and `beat()` callers)

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():  # worker_ready may fire again
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self._name}",
                                            daemon=True)
            self._thread.start()

    def changed(self) -> None:
        """Announce now (plugins or walltime state changed); callable from any thread."""
        self._wake.set()

    def reannounce(self) -> None:
        """Announce now with a topology ping: Redis may have restarted empty (called when a
        subscription reconnects), and bridges route here only once they see the key again."""
        if self._last_stable is not None:
            self._last_stable = b""
        self._wake.set()

    async def beat(self) -> None:
        await asyncio.to_thread(self.beat_now)

    def beat_now(self) -> None:
        with self._lock:
            info = self._snapshot()
            info["heartbeat"] = time.time()
            stable = orjson.dumps({k: v for k, v in info.items() if k != "heartbeat"})
            pipe = self._redis.pipeline(transaction=False)
            pipe.set(keys.edge_info(self._name), orjson.dumps(info), px=self._ttl_ms)
            pipe.sadd(keys.EDGES, self._name)
            existed_before = self._last_stable is not None
            if stable != self._last_stable:
                pipe.publish(keys.TOPOLOGY_CHANNEL, f"join:{self._name}")
            pipe.execute()
            if not existed_before:
                log.warning("edge '%s' announced", self._name)
            self._last_stable = stable

    def _snapshot(self) -> dict[str, Any]:
        """The edge's description; read from this thread while the plugin loop runs, so a
        rare race with a plugin changing its state falls back to the last good one."""
        try:
            self._last_info = self._describe()
        except RuntimeError:
            if self._last_info is None:
                raise
        return dict(self._last_info)

    def _run(self) -> None:
        backoff = Backoff(f"heartbeat of edge '{self._name}'", logger=log)
        while not self._stop.is_set():
            wait = self._interval
            try:
                self.beat_now()
                backoff.succeeded()
            except (RedisError, OSError) as exc:
                self._last_stable = b""  # force a topology ping once Redis is back
                # re-announce as soon as Redis is back, not a whole interval later
                wait = min(self._interval, backoff.failed(exc))
            except Exception:
                log.exception("heartbeat of edge '%s' failed", self._name)
            self._wake.wait(wait)
            self._wake.clear()

    async def withdraw(self) -> None:
        """Leave the topology at once (clean shutdown)."""
        await asyncio.to_thread(self._withdraw)

    def _withdraw(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            with self._lock:
                pipe = self._redis.pipeline(transaction=False)
                pipe.delete(keys.edge_info(self._name))
                pipe.publish(keys.TOPOLOGY_CHANNEL, f"leave:{self._name}")
                pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("could not withdraw edge '%s': %s", self._name, exc)
        finally:
            self._redis.close()
