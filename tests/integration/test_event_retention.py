"""Retention of the notification stream (the Lua script in app/event_stream.py) on a real
Redis: size and time targets, held back by live readers, forced past them at the hard cap,
and the marker of the newest trimmed id that gap detection relies on."""
from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from radical.edge.app import event_stream, keys


def run(redis_url: str, body) -> object:
    async def main():
        redis = aioredis.Redis.from_url(redis_url)
        try:
            return await body(redis)
        finally:
            await redis.delete(keys.NOTIFICATIONS, keys.NOTIFICATIONS_READERS,
                               keys.NOTIFICATIONS_TRIMMED, keys.NOTIFICATIONS_EPOCH)
            await redis.aclose()
    return asyncio.run(main())


async def fill(redis: aioredis.Redis, n: int) -> list[tuple[int, int]]:
    pipe = redis.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(keys.NOTIFICATIONS, {"d": b"{}"}, id=f"1000-{i}")
    return [event_stream.parse_sid(i) for i in await pipe.execute()]


def test_size_retention_held_back_by_a_live_reader(redis_url, stream_keys):
    async def body(redis):
        ids = await fill(redis, 100)
        await event_stream.record_reader(redis, "bridge-a", ids[9])  # delivered up to #9
        # time retention off: only the size target (newest 20) applies
        length, held = await event_stream.trim(redis, 20, 1000, 0)
        assert (length, held) == (90, True)  # #10.. kept: the reader still needs them
        first = await redis.xrange(keys.NOTIFICATIONS, count=1)
        assert event_stream.parse_sid(first[0][0]) == ids[10]
        assert event_stream.parse_sid(await redis.get(keys.NOTIFICATIONS_TRIMMED)) == ids[9]
        await event_stream.record_reader(redis, "bridge-a", ids[99])
        assert await event_stream.trim(redis, 20, 1000, 0) == (20, False)
        assert event_stream.parse_sid(await redis.get(keys.NOTIFICATIONS_TRIMMED)) == ids[79]
    run(redis_url, body)


def test_stale_readers_and_the_hard_cap_do_not_hold_trimming(redis_url, stream_keys):
    async def body(redis):
        ids = await fill(redis, 100)
        await redis.hset(keys.NOTIFICATIONS_READERS, "dead-bridge", "1000-0 1")  # ts 1 ms
        assert await event_stream.trim(redis, 20, 1000, 0) == (20, False)
        assert not await redis.hexists(keys.NOTIFICATIONS_READERS, "dead-bridge")
        await fill_more(redis, 100)
        await event_stream.record_reader(redis, "slow", ids[0])
        length, _ = await event_stream.trim(redis, 20, 50, 0)  # 120 > hard cap 50
        assert length == 20
    run(redis_url, body)


async def fill_more(redis: aioredis.Redis, n: int) -> None:
    pipe = redis.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(keys.NOTIFICATIONS, {"d": b"{}"}, id=f"2000-{i}")
    await pipe.execute()


def test_time_retention_trims_old_entries_below_the_size_cap(redis_url, stream_keys):
    async def body(redis):
        await fill(redis, 10)  # ids at 1970 + 1 s: far older than any retention
        await redis.xadd(keys.NOTIFICATIONS, {"d": b"{}"})  # now
        length, _ = await event_stream.trim(redis, 1000, 10_000, 60)
        assert length == 1
        assert event_stream.parse_sid(await redis.get(keys.NOTIFICATIONS_TRIMMED)) == (1000, 9)
    run(redis_url, body)


def test_epoch_is_created_once(redis_url, stream_keys):
    async def body(redis):
        first = await event_stream.ensure_epoch(redis)
        assert await event_stream.ensure_epoch(redis) == first
        await redis.delete(keys.NOTIFICATIONS_EPOCH)  # Redis lost it
        assert await event_stream.ensure_epoch(redis) != first
    run(redis_url, body)
