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
from . import sentinel

POOL_SIZE = 64
#: fail fast but survive a Redis restart: a pooled socket the server closed is retried
RETRIES = 3


def async_redis(settings: Settings, *, pubsub: bool = False) -> aioredis.Redis:
    """An asyncio client; `pubsub=True` drops the read timeout (a subscriber idles).

    Idle pooled connections are PINGed before reuse (`health_check_interval`), so the first
    command after a Redis restart does not fail on a socket the old server closed.
    """
    if sentinel.is_sentinel(settings.redis_url):
        return _sentinel_async(settings, pubsub)
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


def _retry() -> Retry:
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), RETRIES)


def _sentinel_async(settings: Settings, pubsub: bool) -> aioredis.Redis:
    """A master client found through the sentinels; it re-asks them after a failover.

    redis-py offers no blocking pool for sentinels: the pool is made larger instead.
    """
    from redis.asyncio.sentinel import Sentinel

    conf = sentinel.parse(settings.redis_url)
    timeout = settings.redis_timeout
    manager = Sentinel(conf.hosts, socket_timeout=timeout, socket_connect_timeout=timeout)
    return manager.master_for(
        conf.master, redis_class=aioredis.Redis, db=conf.db, username=conf.username,
        password=conf.password, max_connections=4 * POOL_SIZE,
        socket_timeout=None if pubsub else timeout, socket_connect_timeout=timeout,
        health_check_interval=10 if pubsub else 2,
        retry=_retry(), retry_on_error=[RedisConnectionError, RedisTimeoutError])


def sync_redis(settings: Settings) -> redis.Redis:
    """A thread-safe synchronous client (own pool) for work off the event loops."""
    timeout = settings.redis_timeout
    if sentinel.is_sentinel(settings.redis_url):
        from redis.sentinel import Sentinel

        conf = sentinel.parse(settings.redis_url)
        manager = Sentinel(conf.hosts, socket_timeout=timeout, socket_connect_timeout=timeout)
        return manager.master_for(conf.master, db=conf.db, username=conf.username,
                                  password=conf.password, socket_timeout=timeout,
                                  socket_connect_timeout=timeout)
    return redis.Redis.from_url(settings.redis_url, socket_timeout=timeout,
                                socket_connect_timeout=timeout, health_check_interval=2)


def redacted(url: str) -> str:
    """`url` with its password masked, for logs and error messages."""
    from urllib.parse import urlsplit

    password = urlsplit(url).password
    return url.replace(f":{password}@", ":**@", 1) if password else url


def redis_reachable(url: str, timeout: float = 1.0) -> bool:
    try:
        if sentinel.is_sentinel(url):
            client = sync_redis(Settings(redis_url=url, redis_timeout=timeout))
        else:
            client = redis.Redis.from_url(url, socket_timeout=timeout,
                                          socket_connect_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False
