"""Big bodies out of band: a Redis list of chunks, written by one side, popped by the other.

Pub/sub is the wrong pipe for a 40 MB reply: Redis disconnects a subscriber whose output
buffer passes `client-output-buffer-limit pubsub 32mb 8mb 60`, and with it every other reply
on that bridge's channel. Lists have no such limit and can be read chunk by chunk, so neither
side ever holds more than a few chunks: the writer RPUSHes, the reader BLPOPs (which also
deletes what it read), and a TTL removes whatever a crashed side leaves behind.

Each list element is one tagged chunk: `d<bytes>` data, `e` end, `x<detail>` the writer
failed half-way. A streaming writer waits while more than `window` chunks are unread (so
Redis memory per call stays bounded too) and stops when the reader raises the stop flag.
"""
from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator

import redis.asyncio as aioredis

from . import keys

DATA, END, FAIL = b"d", b"e", b"x"
#: a reader gives up when no chunk arrived for this long (the writer is presumably gone)
IDLE_SECONDS = 30.0
#: longest single BLPOP: below every client's socket timeout
POLL_SECONDS = 1.0


class BlobError(Exception):
    """The body could not be transferred (writer failed, reader timed out, reader left)."""


class BlobAbandoned(BlobError):
    """The reader left (its caller timed out or disconnected): stop writing."""


class BlobWriter:
    """Append a body to `key` chunk by chunk; every push refreshes the key's TTL."""

    def __init__(self, redis: aioredis.Redis, key: str, *, chunk: int, ttl: float,
                 window: int | None = None, deadline: float | None = None) -> None:
        self._redis = redis
        self.key = key
        self._chunk = max(1, chunk)
        self._ttl = max(1, int(ttl))
        self._window = window
        self._deadline = deadline
        self.size = 0

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        for start in range(0, len(view), self._chunk):
            await self._push(DATA + bytes(view[start:start + self._chunk]))
            self.size += min(self._chunk, len(view) - start)

    async def close(self) -> None:
        await self._push(END)

    async def fail(self, detail: str) -> None:
        try:
            await self._push(FAIL + detail.encode("utf-8", "replace")[:1000])
        except Exception:
            pass  # the reader then times out; nothing better to do

    async def _push(self, item: bytes) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.rpush(self.key, item)
        pipe.expire(self.key, self._ttl)
        length, _ = await pipe.execute()
        if self._window is not None and length > self._window:
            await self._drain()

    async def _drain(self) -> None:
        """Wait until the reader caught up to half the window (bounded by the deadline)."""
        assert self._window is not None
        pause = 0.005
        while True:
            pipe = self._redis.pipeline(transaction=False)
            pipe.llen(self.key)
            pipe.exists(keys.blob_stop(self.key))
            length, stopped = await pipe.execute()
            if stopped:
                raise BlobAbandoned("the reader abandoned this body")
            if length <= self._window // 2:
                return
            if self._deadline is not None and time.time() > self._deadline:
                raise BlobError("the reader did not keep up before the call's deadline")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)


async def read_blob(redis: aioredis.Redis, key: str, deadline: float,
                    idle: float = IDLE_SECONDS) -> AsyncIterator[bytes]:
    """Yield the data chunks of `key` in order, consuming (deleting) them as it goes.

    Raises `BlobError` if the writer reports a failure, goes silent for `idle` seconds or
    the deadline passes first.
    """
    last = time.monotonic()
    while True:
        left = min(deadline - time.time(), idle - (time.monotonic() - last))
        if left <= 0:
            raise BlobError("body transfer timed out")
        item = await redis.blpop([key], timeout=min(left, POLL_SECONDS))
        if item is None:
            continue
        chunk = item[1]
        last = time.monotonic()
        tag = chunk[:1]
        if tag == DATA:
            yield chunk[1:]
        elif tag == END:
            return
        elif tag == FAIL:
            raise BlobError(chunk[1:].decode("utf-8", "replace"))
        else:
            raise BlobError("malformed body chunk")


async def abandon(redis: aioredis.Redis, key: str, ttl: float = 60.0) -> None:
    """Drop a half-read body and tell its writer to stop (best effort, bounded)."""
    try:
        pipe = redis.pipeline(transaction=False)
        pipe.delete(key)
        pipe.set(keys.blob_stop(key), b"1", ex=max(1, int(ttl)))
        await asyncio.wait_for(pipe.execute(), 2.0)
    except Exception:
        pass  # the TTL removes it anyway
