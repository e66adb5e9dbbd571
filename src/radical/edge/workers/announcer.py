"""An edge announcing itself in Redis and keeping its heartbeat (and its name lease).

The announcement key expires `heartbeat_ttl` seconds after the last beat, which is how
bridges see a `kill -9`ed edge disappear. Every beat renews the name lease and rewrites the
key and the set membership in one script that first checks the lease owner (see lease.py),
so after a Redis restart (no persistence) the edge re-claims and reappears within a beat,
and an edge that lost its name never overwrites its successor's announcement.

The heartbeat runs on its own thread with its own (synchronous) Redis connection, not on the
plugin loop: a handler that blocks the loop (a `time.sleep`, a long decode) must not make a
live edge vanish from the topology and fail every call in flight with "edge lost".
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Callable

import orjson
import redis
from redis.exceptions import RedisError, ResponseError

from ..app import keys
from ..app.retry import Backoff
from ..app.topology import VOLATILE
from .lease import NameLease

log = logging.getLogger(__name__)

#: life (s) of the side documents an edge publishes (its API description); rewritten with
#: every topology change and at least every DOC_TTL / 4, so a live edge's never lapses
DOC_TTL = 86_400


class Announcer:
    def __init__(self, client: redis.Redis, lease: NameLease,
                 describe: Callable[[], dict[str, Any]], interval: float,
                 on_lost: Callable[[], bool],
                 documents: Callable[[], dict[str, bytes]] | None = None) -> None:
        self._redis = client
        self._lease = lease
        self._name = lease.name
        self._describe = describe
        self._interval = interval
        self._on_lost = on_lost  # (this thread) True: the name was re-claimed, keep beating
        self._documents = documents  # key -> value written before the announcement
        self._docs_written = 0.0  # monotonic time they were last written
        self._last_stable: bytes | None = None
        self._last_info: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one beat at a time (thread and `beat()` callers)
        self.visible = False  # announce (True) or only keep the lease (before worker_ready)

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

    async def beat(self) -> bool:
        return await asyncio.to_thread(self.beat_now)

    def beat_now(self) -> bool:
        """Renew the lease (and the announcement once visible); False if the lease is lost."""
        with self._lock:
            if not self.visible:
                return self._lease.renew_and_announce_sync(self._redis)
            info = self._snapshot()
            info["heartbeat"] = time.time()
            stable = orjson.dumps({k: v for k, v in info.items() if k not in VOLATILE})
            if stable != self._last_stable or time.monotonic() - self._docs_written > DOC_TTL / 4:
                self._write_documents()
            if not self._lease.renew_and_announce_sync(self._redis, orjson.dumps(info)):
                return False
            existed_before = self._last_stable is not None
            if stable != self._last_stable:
                self._redis.publish(keys.TOPOLOGY_CHANNEL, f"join:{self._name}")
            if not existed_before:
                log.info("edge '%s' announced", self._name)
            self._last_stable = stable
            return True

    def _write_documents(self) -> None:
        """Publish the side documents before the announcement that names them. A refusal
        (an ACL from an older release) costs only the documents, never the announcement."""
        if self._documents is None:
            return
        try:
            for key, value in self._documents().items():
                self._redis.set(key, value, ex=DOC_TTL)
            self._docs_written = time.monotonic()
        except ResponseError as exc:
            log.warning("edge '%s' cannot publish its API description: %s", self._name, exc)
            self._docs_written = time.monotonic()

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
                held = self.beat_now()
                backoff.succeeded()
                if not held:
                    log.error("edge '%s' lost its name lease (paused or partitioned past %g s)",
                              self._name, self._lease.ttl)
                    if not self._on_lost():
                        return
                    self._last_stable = b""
                    continue
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
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        try:
            with self._lock:  # only what is still ours: a successor's announcement stays
                if self._lease.release_sync(self._redis):
                    self._redis.publish(keys.TOPOLOGY_CHANNEL, f"leave:{self._name}")
        except (RedisError, OSError) as exc:
            log.warning("could not withdraw edge '%s': %s", self._name, exc)
        finally:
            self._redis.close()
