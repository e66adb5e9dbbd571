"""Chunks of one upload in order: a chunk that arrives before its predecessor has finished
waits for it, so a client may keep two chunks in flight (the bridge takes in the next body
while the edge still writes the previous one) and each file is written by one chunk at a time.

A chunk that fails after writing (cut back: damaged, or its body broke off) makes the chunks
waiting behind it answer 409 at once instead of waiting in vain; the client then continues
from the file's size, sending that first chunk alone (so a failure remembered from before can
never refuse the chunks of the new attempt).
"""
from __future__ import annotations

import asyncio
import os

from .policy import StagingError

#: longest wait of a chunk for the chunks before it (s)
WAIT_SECONDS = 60.0


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


class UploadGate:
    """Which paths have a chunk being written, and where a chunk failed (per plugin)."""

    def __init__(self, wait_seconds: float = WAIT_SECONDS) -> None:
        self._cond = asyncio.Condition()
        self._active: set[str] = set()
        self._failed_at: dict[str, int] = {}
        self._wait = wait_seconds

    async def enter(self, path: str, offset: int) -> None:
        """Wait until no chunk writes `path` and the file has reached `offset` (or give up
        with 409: an earlier chunk failed, or it did not come in time)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        async with self._cond:
            while True:
                if path not in self._active:
                    size = await asyncio.to_thread(_size, path) if offset else 0
                    if size >= offset:
                        self._active.add(path)
                        return
                    failed = self._failed_at.get(path)
                    if failed is not None and failed < offset:
                        raise StagingError(f"an earlier chunk of {path} failed: it has "
                                           f"{max(size, 0)} bytes (resume from there)", 409)
                left = deadline - loop.time()
                if left <= 0:
                    raise StagingError(f"cannot write at offset {offset}: {path} has "
                                       f"{max(await asyncio.to_thread(_size, path), 0)} bytes"
                                       " and no chunk before this one arrived in time", 409)
                try:
                    await asyncio.wait_for(self._cond.wait(), left)
                except asyncio.TimeoutError:
                    pass

    async def leave(self, path: str, offset: int, outcome: str) -> None:
        """`outcome`: "ok", "failed" (a chunk was cut back: the ones after it cannot follow)
        or "refused" (nothing was written)."""
        async with self._cond:
            self._active.discard(path)
            if outcome == "ok":
                self._failed_at.pop(path, None)
            elif outcome == "failed":
                self._failed_at[path] = offset
            self._cond.notify_all()
