"""A resilient pub/sub subscription: one connection, re-subscribed after Redis restarts."""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes], None]


async def subscribe_forever(redis: aioredis.Redis, channels: list[str], handler: Handler,
                            on_connect: Callable[[], None] | None = None) -> None:
    """Deliver every message on `channels` to `handler(channel, data)` until cancelled.

    `on_connect` runs after each (re)subscription: anything published while we were
    disconnected is lost, so callers use it to re-read state (e.g. topology).
    """
    backoff = 0.1
    while True:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*channels)
            if on_connect is not None:
                on_connect()
            backoff = 0.1
            while True:
                msg = await pubsub.get_message(timeout=30.0)
                if msg is None:
                    continue
                channel = msg["channel"]
                handler(channel.decode() if isinstance(channel, bytes) else channel, msg["data"])
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as exc:
            log.warning("subscription to %s lost (%s); reconnecting", channels, exc)
        except Exception:
            log.exception("subscription handler failed; resubscribing")
        finally:
            try:
                await asyncio.wait_for(pubsub.aclose(), 1.0)
            except Exception:
                pass
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 2.0)
