"""asyncio helpers that the standard library gets subtly wrong on Python 3.11."""
from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait for `event` at most `timeout` seconds; True if it was set.

    Not `asyncio.wait_for(event.wait(), ...)`: on 3.11 that swallows a cancellation that
    arrives just as the event is set, and a loop built on it then never ends (seen: an
    edge hanging at shutdown when its own "leave" ping woke the topology watcher).
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
        return True
    except TimeoutError:
        return False


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that a library swallowed (seen in redis-py's asyncio client:
    a command cancelled mid-flight can return normally), so loops still end when cancelled."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
