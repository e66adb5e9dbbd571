"""Coalesce Redis commands issued concurrently into pipelined round trips.

On this kind of machine a socket write costs more than the Redis command itself. One writer
task per process sends whatever accumulated while the previous round trip was in flight as
one pipeline: a lone command goes out at once (no added delay), a burst of 32 concurrent
calls costs a few syscalls instead of 32.
"""
from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

#: commands per pipeline, so one huge burst cannot build an unbounded request
MAX_BATCH = 512


class CommandBatcher:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._busy = False  # a round trip is in flight: newcomers queue for the next one
        self._pending: list[tuple[str, tuple, asyncio.Future]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def call(self, command: str, *args: Any) -> Any:
        """Run a command, pipelined with whatever else is waiting; raises its error."""
        if not self._busy and not self._pending:  # idle: go straight out, no task hop
            self._busy = True
            try:
                return await getattr(self._redis, command)(*args)
            finally:
                self._busy = False
                if self._pending:
                    self._wake.set()
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((command, args, fut))
        self._wake.set()
        return await fut

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending and not self._busy:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                self._busy = True
                try:
                    await self._send(batch)
                finally:
                    self._busy = False

    async def _send(self, batch: list[tuple[str, tuple, asyncio.Future]]) -> None:
        try:
            if len(batch) == 1:
                command, args, _ = batch[0]
                results = [await getattr(self._redis, command)(*args)]
            else:
                pipe = self._redis.pipeline(transaction=False)
                for command, args, _ in batch:
                    getattr(pipe, command)(*args)
                results = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # connection trouble: every queued command failed
            results = [exc] * len(batch)
        for (_command, _args, fut), result in zip(batch, results):
            if not fut.done():
                if isinstance(result, Exception):
                    fut.set_exception(result)
                else:
                    fut.set_result(result)
