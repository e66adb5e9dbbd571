"""The one retry/back-off policy of radical.edge: capped exponential back-off with jitter.

Every loop that must outlive a Redis outage (topology watcher, SSE stream reader, notifier,
reply/topology subscriber, heartbeat, the edge's Celery consumer) waits through a `Backoff`.
Why one helper: recovery time is a promise (serving within 2 s of Redis coming back), and
five hand-written loops had five different caps, one of them linear. The cap bounds the
time between Redis returning and the next attempt; jitter keeps many edges from
reconnecting in lock-step; logging is WARNING once per outage and INFO on recovery, so an
outage costs two log lines, not one per attempt.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any, Awaitable, Callable, TypeVar

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: first delay after a failure (s)
FIRST = 0.05
#: longest delay between two attempts (s): recovery happens at most this long after Redis is back
CAP = 1.0
#: errors that mean "the broker is away", worth waiting out
TRANSIENT: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)


class Backoff:
    """Delays for one retrying loop; `failed()` after each failure, `succeeded()` after success.

    Delay n is uniformly drawn from [d/2, d] with d = min(cap, first * 2**n) ("equal jitter":
    never zero, never above the cap).
    """

    def __init__(self, what: str, *, first: float = FIRST, cap: float = CAP,
                 logger: logging.Logger | None = None) -> None:
        self.what = what
        self.first = first
        self.cap = cap
        self.log = logger or log
        self.attempts = 0
        self._since: float | None = None

    @property
    def failing(self) -> bool:
        return self._since is not None

    def next_delay(self) -> float:
        d = min(self.cap, self.first * (2 ** min(self.attempts, 30)))
        return random.uniform(d / 2, d)

    def failed(self, exc: BaseException | str) -> float:
        """Record a failure; return how long to wait before the next attempt."""
        if self._since is None:
            self._since = time.monotonic()
            self.log.warning("%s failed (%s); retrying every <= %g s until it works",
                             self.what, exc, self.cap)
        else:
            self.log.debug("%s failed again (%s)", self.what, exc)
        delay = self.next_delay()
        self.attempts += 1
        return delay

    def succeeded(self) -> None:
        """Record a success; logs the recovery once if there was an outage."""
        if self._since is not None:
            self.log.info("%s works again after %.1f s (%d attempts)", self.what,
                          time.monotonic() - self._since, self.attempts)
        self._since = None
        self.attempts = 0

    async def wait(self, exc: BaseException | str) -> None:
        """`failed(exc)` then sleep for the returned delay (async form)."""
        await asyncio.sleep(self.failed(exc))

    def wait_sync(self, exc: BaseException | str) -> None:
        """`failed(exc)` then sleep for the returned delay (thread form)."""
        time.sleep(self.failed(exc))


async def retry_async(fn: Callable[[], Awaitable[T]], what: str,
                      retry_on: tuple[type[BaseException], ...] = TRANSIENT,
                      backoff: Backoff | None = None) -> T:
    """Await `fn()` until it returns, waiting out `retry_on` errors with back-off."""
    b = backoff or Backoff(what)
    while True:
        try:
            result = await fn()
        except retry_on as exc:
            await b.wait(exc)
            continue
        b.succeeded()
        return result


def retry_sync(fn: Callable[[], T], what: str,
               retry_on: tuple[type[BaseException], ...] = TRANSIENT,
               backoff: Backoff | None = None, deadline: float | None = None) -> T:
    """Call `fn()` until it returns; `deadline` (monotonic) re-raises the last error."""
    b = backoff or Backoff(what)
    while True:
        try:
            result = fn()
        except retry_on as exc:
            if deadline is not None and time.monotonic() >= deadline:
                raise
            b.wait_sync(exc)
            continue
        b.succeeded()
        return result


def kombu_intervals(backoff_cap: float = CAP) -> dict[str, Any]:
    """The same policy in kombu's linear terms, for Celery's own broker reconnection."""
    return {"interval_start": FIRST, "interval_step": backoff_cap / 4,
            "interval_max": backoff_cap}
