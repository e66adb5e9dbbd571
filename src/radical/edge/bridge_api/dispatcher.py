"""Send plugin calls to edges and await their replies without blocking the event loop.

Publishing is an async LPUSH of a ready-made Celery message (no sync kombu publish). All
replies for this bridge arrive on one pub/sub channel, read by one subscriber that resolves
the waiting future by call id: ids are uuid4, so replies of concurrent clients and of other
bridges on the same Redis can never be mixed up.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import RedisError

from ..app import keys
from ..app.pipelined import Commands
from ..app.protocol import CallReply, CallRequest, celery_message

log = logging.getLogger(__name__)


class BridgeError(Exception):
    """An error the bridge itself answers with (404/503/504...)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class CallDispatcher:
    def __init__(self, commands: Commands, bridge_id: str) -> None:
        self.commands = commands
        self.reply_channel = keys.reply_channel(bridge_id)
        self._pending: dict[str, tuple[asyncio.Future, str]] = {}
        self._cleanups: set[asyncio.Task] = set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def call(self, edge: str, call: CallRequest, timeout: float) -> CallReply:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        self._pending[call.id] = (fut, edge)
        timer = loop.call_later(timeout, _expire, fut, edge, timeout)
        queue = keys.edge_queue(edge)
        message = celery_message(call, queue)
        try:
            try:
                await self.commands.call("LPUSH", queue, message)
            except (RedisError, OSError) as exc:
                raise BridgeError(503, f"broker unavailable, call not sent to edge "
                                       f"'{edge}': {exc}") from None
            return await fut
        except BridgeError as exc:
            if exc.status in (503, 504):
                await self._withdraw(queue, message)
            raise
        finally:
            timer.cancel()
            self._pending.pop(call.id, None)

    async def _withdraw(self, queue: str, message: bytes) -> None:
        """Take an unanswered call back out of the queue so it can never run later."""
        try:
            await asyncio.wait_for(self.commands.call("LREM", queue, 1, message), 1.0)
        except (RedisError, OSError, asyncio.TimeoutError):
            pass  # the edge's deadline check and queue purge still stop it

    def on_reply(self, _channel: str, raw: bytes) -> None:
        """Pub/sub callback: resolve the future waiting for this reply."""
        try:
            reply = CallReply.loads(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring malformed reply on %s", self.reply_channel)
            return
        entry = self._pending.get(reply.id)
        if entry is None or entry[0].done():  # late: the caller got its 503/504 already
            if reply.body_ref:  # and nobody will read its body: tell the edge to stop
                task = asyncio.get_running_loop().create_task(self._drop_body(reply.body_ref))
                self._cleanups.add(task)  # keep a reference until done
                task.add_done_callback(self._cleanups.discard)
            return
        entry[0].set_result(reply)

    async def _drop_body(self, ref: str) -> None:
        try:
            await asyncio.wait_for(self.commands.call("SET", keys.blob_stop(ref), b"1", "EX", 60),
                                   2.0)
            await asyncio.wait_for(self.commands.call("DEL", ref), 2.0)
        except (RedisError, OSError, asyncio.TimeoutError):
            pass  # the writer stops at its deadline; the TTL removes the rest

    def edge_lost(self, edge: str) -> int:
        """Fail every call in flight to `edge` with 503; returns how many."""
        n = 0
        for fut, target in list(self._pending.values()):
            if target == edge and not fut.done():
                fut.set_exception(BridgeError(503, f"edge '{edge}' was lost mid-call"))
                n += 1
        return n

    def fail_all(self, detail: str) -> None:
        for fut, _edge in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(BridgeError(503, detail))


def _expire(fut: asyncio.Future, edge: str, timeout: Any) -> None:
    if not fut.done():
        fut.set_exception(BridgeError(504, f"edge '{edge}' did not answer within {timeout:g} s"))
