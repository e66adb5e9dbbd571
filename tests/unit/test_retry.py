"""The one back-off policy: capped, jittered, logged once per outage and once on recovery."""
from __future__ import annotations

import asyncio
import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from radical.edge.app import retry
from radical.edge.app.retry import Backoff, retry_async, retry_sync


def test_delays_grow_exponentially_and_stay_under_the_cap() -> None:
    b = Backoff("x", first=0.1, cap=1.0)
    delays = [b.failed("down") for _ in range(12)]
    assert all(0.05 <= d <= 1.0 for d in delays)
    assert delays[0] <= 0.1
    assert max(delays[6:]) > 0.5  # reached the cap region
    assert all(d >= 0.5 for d in delays[6:])  # never below half the cap once there


def test_logs_warning_once_per_outage_and_info_on_recovery(caplog: pytest.LogCaptureFixture) -> None:
    b = Backoff("heartbeat", first=0.001, cap=0.002)
    with caplog.at_level(logging.DEBUG, logger="radical.edge.app.retry"):
        for _ in range(5):
            b.failed(OSError("refused"))
        b.succeeded()
        b.succeeded()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(warnings) == 1 and "heartbeat failed" in warnings[0].getMessage()
    assert len(infos) == 1 and "5 attempts" in infos[0].getMessage()
    assert not b.failing


def test_retry_async_waits_out_transient_errors() -> None:
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise RedisConnectionError("down")
        return "ok"

    b = Backoff("flaky", first=0.001, cap=0.005)
    assert asyncio.run(retry_async(flaky, "flaky", backoff=b)) == "ok"
    assert len(calls) == 4 and not b.failing


def test_retry_async_does_not_swallow_other_errors() -> None:
    async def broken() -> None:
        raise ValueError("bug")

    with pytest.raises(ValueError):
        asyncio.run(retry_async(broken, "broken"))


def test_retry_sync_gives_up_at_its_deadline() -> None:
    import time

    def down() -> None:
        raise OSError("refused")

    with pytest.raises(OSError):
        retry_sync(down, "down", backoff=Backoff("down", first=0.001, cap=0.002),
                   deadline=time.monotonic() + 0.05)


def test_kombu_schedule_is_capped_like_ours() -> None:
    k = retry.kombu_intervals()
    assert k["interval_max"] == retry.CAP <= 1.0
    assert k["interval_start"] < 0.5
