"""Plugin notifications from an edge into the Redis notification stream.

`publish` may be called from the host loop or from any thread. Items are queued in order
and written by one task in pipelined batches, so a burst of thousands of task updates costs
a handful of round trips, while a lone notification goes out at once (no fixed delay).
While Redis is unreachable, items wait (bounded) and go out when it is back.

Retention (`app.event_stream.trim`) runs after every batch instead of `XADD MAXLEN`: MAXLEN
would trim entries no bridge has read yet during a burst.  While live readers hold trimming
back and the stream is over its size cap, the notifier slows down (backpressure).

Each entry holds the note (`keys.NOTE_FIELD`) and, when the data carries record states
(`state_digest.WithStates`, rhapsody's task batches), their digest (`keys.STATES_FIELD`):
the bridge's work index reads that instead of decoding the note. Only this module writes
stream entries.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from ..app import event_stream, keys, state_digest
from ..app.retry import Backoff
from .call_runner import dump_json

log = logging.getLogger(__name__)

#: notifications held while Redis is down before the oldest are dropped
MAX_BACKLOG = 200_000
#: stream entries written per pipeline round trip
BATCH = 500
#: backpressure: seconds of pause per entry above the size cap that readers still need
PAUSE_PER_EXCESS = 1.0 / 50_000


class Notifier:
    def __init__(self, redis: aioredis.Redis, edge_name: str,
                 loop: asyncio.AbstractEventLoop, *, maxlen: int = 50_000,
                 hard_maxlen: int = 500_000, retention_s: float = 3600.0) -> None:
        self._redis = redis
        self._trim_script = redis.register_script(event_stream.TRIM_SCRIPT)
        self._trim_args = event_stream.trim_args(maxlen, hard_maxlen, retention_s)
        self._edge = edge_name
        self._loop = loop
        self._loop_thread: int | None = None
        #: (note, state digest or None), oldest first
        self._items: deque[tuple[bytes, bytes | None]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.dropped = 0
        self.paused = 0.0  # seconds spent in backpressure

    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._task = self._loop.create_task(self._run())

    def publish(self, plugin: str, topic: str, data: Any) -> None:
        """Queue one notification; thread-safe, never blocks, never raises on bad data."""
        try:
            note = dump_json({"edge": self._edge, "plugin": plugin, "topic": topic, "data": data})
            if len(note) < 65536:  # orjson's result keeps its >= 4 KiB buffer: copy it small
                note = memoryview(note).tobytes()
        except TypeError as exc:
            log.error("dropping notification %s/%s: %s", plugin, topic, exc)
            return
        digest = None
        if isinstance(data, state_digest.WithStates):
            try:
                digest = state_digest.encode(self._edge, plugin, topic, data.states)
            except TypeError as exc:  # the note still goes out: the bridge then reads it
                log.warning("no state digest for %s/%s: %s", plugin, topic, exc)
        item = (note, digest)
        if threading.get_ident() == self._loop_thread:
            self._push(item)
        else:
            self._loop.call_soon_threadsafe(self._push, item)

    def _push(self, item: tuple[bytes, bytes | None]) -> None:
        self._items.append(item)
        if len(self._items) > MAX_BACKLOG:
            self._items.popleft()
            self.dropped += 1
            if self.dropped % 1000 == 1:  # the first, then every 1000th: no log flood
                log.warning("notification backlog over %d (Redis unreachable?): dropped %d "
                            "oldest so far", MAX_BACKLOG, self.dropped)
        self._wake.set()

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far has been written (used at shutdown)."""
        deadline = self._loop.time() + timeout
        while self._items and self._loop.time() < deadline:
            self._wake.set()
            await asyncio.sleep(0.01)

    async def _run(self) -> None:
        backoff = Backoff("notification publish", logger=log)
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._items:
                batch = [self._items[i] for i in range(min(BATCH, len(self._items)))]
                try:
                    pipe = self._redis.pipeline(transaction=False)
                    for note, digest in batch:
                        pipe.xadd(keys.NOTIFICATIONS, {keys.NOTE_FIELD: note} if digest is None
                                  else {keys.NOTE_FIELD: note, keys.STATES_FIELD: digest})
                    trim_keys, trim_args = self._trim_args["keys"], self._trim_args["args"]
                    pipe.evalsha(self._trim_script.sha, len(trim_keys), *trim_keys, *trim_args)
                    results = await pipe.execute(raise_on_error=False)  # one round trip
                    failed = next((r for r in results[:-1] if isinstance(r, Exception)), None)
                    if failed is not None:
                        raise failed
                    if isinstance(results[-1], NoScriptError):  # first batch: load it
                        results[-1] = await self._trim_script(**self._trim_args)
                except (RedisError, OSError) as exc:
                    await backoff.wait(exc)
                    continue
                backoff.succeeded()
                for _ in batch:
                    self._items.popleft()
                await self._backpressure(results[-1])

    async def _backpressure(self, trimmed: Any) -> None:
        """Pause while live readers hold the stream above its size cap."""
        if isinstance(trimmed, Exception):
            log.warning("notification stream trim failed (%s)", trimmed)
            return
        length, held = int(trimmed[0]), bool(trimmed[1])
        maxlen = self._trim_args["args"][0]
        if held and length > maxlen:
            pause = min(1.0, (length - maxlen) * PAUSE_PER_EXCESS)
            self.paused += pause
            await asyncio.sleep(pause)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=2)
