"""Redis connections with the options this project relies on.

Async clients use a *blocking* pool: redis.asyncio's default pool raises when exhausted,
which under a burst of concurrent calls would turn into spurious 500s. Every call has a
socket timeout so no network wait is unbounded; pub/sub and blocking reads pass their own.
"""
from __future__ import annotations

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..settings import Settings

POOL_SIZE = 64
#: fail fast but survive a Redis restart: a pooled socket the server closed is retried
RETRIES = 3


def async_redis(settings: Settings, *, pubsub: bool = False) -> aioredis.Redis:
    """An asyncio client; `pubsub=True` drops the read timeout (a subscriber idles).

    Idle pooled connections are PINGed before reuse (`health_check_interval`), so the first
    command after a Redis restart does not fail on a socket the old server closed.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=POOL_SIZE,
        timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        socket_timeout=None if pubsub else settings.redis_timeout,
        health_check_interval=10 if pubsub else 2,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), RETRIES),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return aioredis.Redis(connection_pool=pool)


def redacted(url: str) -> str:
    """`url` with its password masked, for logs and error messages."""
    from urllib.parse import urlsplit

    password = urlsplit(url).password
    return url.replace(f":{password}@", ":**@", 1) if password else url


def redis_reachable(url: str, timeout: float = 1.0) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False
