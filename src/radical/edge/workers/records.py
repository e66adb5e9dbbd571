"""The edge's writer of call outcome records (see `app.call_record`).

Records normally go out fire-and-forget on the reply connection, in the same write as the
reply. When that write fails (Redis away), the `done` record is kept (bounded) and written
once Redis is back, so a caller who got `"outcome": "unknown"` during the outage can still
learn with `GET /calls/{id}` that the call ran, and its reply.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from redis.exceptions import RedisError

from ..app import call_record
from ..app.pipelined import Commands
from ..app.retry import Backoff

log = logging.getLogger(__name__)

#: records kept for re-writing while Redis is away (oldest dropped beyond this)
MAX_UNSENT = 10_000


class RecordWriter:
    def __init__(self, commands: Commands) -> None:
        self._commands = commands
        self._unsent: deque[tuple[str, bytes, float]] = deque(maxlen=MAX_UNSENT)
        self._wake = asyncio.Event()

    def write(self, call_id: str, record: bytes, ttl_ms: int) -> None:
        """Send now, pipelined with whatever else goes out in this loop iteration."""
        self._commands.send(*call_record.set_command(call_id, record, ttl_ms))

    def write_later(self, call_id: str, record: bytes, ttl_ms: int) -> None:
        """The write carrying this record failed: keep it until Redis is back."""
        self._unsent.append((call_id, record, time.time() + ttl_ms / 1000))
        self._wake.set()

    async def run(self) -> None:
        backoff = Backoff("re-writing call records", logger=log)
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._unsent:
                call_id, record, expires = self._unsent[0]
                ttl = int((expires - time.time()) * 1000)
                if ttl > 0:
                    try:
                        await self._commands.call(*call_record.set_command(call_id, record,
                                                                           ttl))
                    except (RedisError, OSError) as exc:
                        await backoff.wait(exc)
                        continue
                    backoff.succeeded()
                self._unsent.popleft()
