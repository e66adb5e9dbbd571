"""The pipelined Redis connection against a real Redis: order, errors, restarts."""
from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from radical.edge import services
from radical.edge.app.pipelined import PipelinedRedis


def test_concurrent_commands_keep_order_and_results(redis_url):
    async def main():
        lean = PipelinedRedis(redis_url.replace("/0", "/3"), timeout=5)
        await lean.call("DEL", "lean:k")
        results = await asyncio.gather(*(lean.call("RPUSH", "lean:k", i) for i in range(500)))
        assert sorted(results) == list(range(1, 501))
        assert await lean.call("LRANGE", "lean:k", 0, 2) == [b"0", b"1", b"2"]
        with pytest.raises(ResponseError):
            await lean.call("INCR", "lean:k")  # WRONGTYPE, and the connection stays usable
        assert await lean.call("LLEN", "lean:k") == 500
        await lean.close()
    asyncio.run(main())


def test_survives_a_redis_restart(log_dir):
    svc = services.start_redis(log_dir=log_dir)
    port = svc.extra["port"]

    async def main():
        nonlocal svc
        lean = PipelinedRedis(svc.extra["url"], timeout=2)
        assert await lean.call("PING") == b"PONG"
        svc.stop()
        with pytest.raises(RedisConnectionError):
            await lean.call("PING")
        svc = services.start_redis(port=port, log_dir=log_dir)
        assert await lean.call("PING") == b"PONG"
        await lean.close()
    try:
        asyncio.run(main())
    finally:
        svc.stop()
