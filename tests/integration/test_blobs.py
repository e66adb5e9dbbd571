"""app/blobs.py against a real Redis: order, deletion, backpressure, failure, abandonment."""
from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis.asyncio as aioredis

from radical.edge.app import keys
from radical.edge.app.blobs import BlobError, BlobWriter, abandon, read_blob


def _run(redis_url, fn):
    async def main():
        client = aioredis.Redis.from_url(redis_url, socket_timeout=5)
        try:
            return await fn(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def _key() -> str:
    return keys.blob(uuid.uuid4().hex)


def test_chunks_arrive_in_order_and_are_deleted(redis_url):
    async def fn(r):
        key = _key()
        w = BlobWriter(r, key, chunk=3, ttl=30)
        await w.write(b"abcdefgh")
        await w.write(b"ij")
        await w.close()
        assert 0 < await r.ttl(key) <= 30
        got = [c async for c in read_blob(r, key, time.time() + 5)]
        return got, await r.exists(key)

    got, exists = _run(redis_url, fn)
    assert got == [b"abc", b"def", b"gh", b"ij"] and exists == 0


def test_writer_waits_for_a_slow_reader(redis_url):
    """With a window of 4 the list never holds more than 5 chunks, however much is written."""
    async def fn(r):
        key = _key()
        w = BlobWriter(r, key, chunk=1, ttl=30, window=4, deadline=time.time() + 20)
        peak = 0

        async def write():
            await w.write(b"x" * 40)
            await w.close()

        async def read():
            nonlocal peak
            out = b""
            async for c in read_blob(r, key, time.time() + 20):
                peak = max(peak, await r.llen(key))
                out += c
                await asyncio.sleep(0.01)
            return out

        _, out = await asyncio.gather(write(), read())
        return out, peak

    out, peak = _run(redis_url, fn)
    assert out == b"x" * 40 and peak <= 5


def test_writer_failure_reaches_the_reader(redis_url):
    async def fn(r):
        key = _key()
        w = BlobWriter(r, key, chunk=4, ttl=30)
        await w.write(b"12345")
        await w.fail("disk on fire")
        got = []
        with pytest.raises(BlobError, match="disk on fire"):
            async for c in read_blob(r, key, time.time() + 5):
                got.append(c)
        return got

    assert _run(redis_url, fn) == [b"1234", b"5"]


def test_reader_gives_up_on_a_silent_writer(redis_url):
    async def fn(r):
        with pytest.raises(BlobError, match="timed out"):
            async for _ in read_blob(r, _key(), time.time() + 30, idle=0.5):
                pass

    _run(redis_url, fn)


def test_abandoned_body_stops_its_writer(redis_url):
    async def fn(r):
        key = _key()
        w = BlobWriter(r, key, chunk=1, ttl=30, window=2, deadline=time.time() + 20)
        await abandon(r, key)
        with pytest.raises(BlobError, match="abandoned"):
            await w.write(b"x" * 10)
        await r.delete(key, keys.blob_stop(key))

    _run(redis_url, fn)
