"""Send plugin calls to edges and await their replies without blocking the event loop.

Publishing is an async LPUSH of a ready-made Celery message (no sync kombu publish). All
replies for this bridge arrive on one pub/sub channel, read by one subscriber that resolves
the waiting future by call id: ids are uuid4, so replies of concurrent clients and of other
bridges on the same Redis can never be mixed up.

Every failure answer tells the truth about execution (`outcome`): "not_run" only when the call
certainly did not and will not run (never sent, or taken back out of the queue by an LREM
that removed it); otherwise "unknown", with the call id for `GET /calls/{id}`. A 503 always
means "not_run"; an unknown outcome is a 502 (lost mid-call, Redis gone) or a 504 (deadline).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import RedisError

from ..app import call_record, keys
from ..app.pipelined import Commands, NotSent
from ..app.protocol import CallReply, CallRequest, celery_message
from ..errors import StatusError
from .envelope import error_body

log = logging.getLogger(__name__)


NOT_RUN = "not_run"
UNKNOWN = "unknown"


class BridgeError(StatusError):
    """An error the bridge itself answers with (404/503/504...).

    `outcome` ("not_run"/"unknown") and `call_id` are set once a call was created.
    """

    def __init__(self, status: int, detail: str, outcome: str | None = None,
                 call_id: str | None = None) -> None:
        super().__init__(detail, status)
        self.outcome = outcome
        self.call_id = call_id

    def body(self) -> dict[str, Any]:
        """The bridge's error envelope, plus the call's outcome and id once there is a call."""
        out = error_body(self.status, self.detail)
        if self.outcome is not None:
            out["outcome"] = self.outcome
        if self.call_id is not None:
            out["call_id"] = self.call_id
        return out


class Unanswered(BridgeError):
    """No reply came (edge lost, Redis gone, deadline): whether it ran is not known yet.

    `if_withdrawn` is what to answer instead when the call was taken back out of the queue.
    """

    def __init__(self, status: int, detail: str, if_withdrawn: tuple[int, str]) -> None:
        super().__init__(status, detail, UNKNOWN)
        self.if_withdrawn = if_withdrawn


class CallDispatcher:
    def __init__(self, commands: Commands, bridge_id: str, retention: float = 600.0) -> None:
        self.commands = commands
        self.reply_channel = keys.reply_channel(bridge_id)
        self.retention = retention
        self._pending: dict[str, tuple[asyncio.Future, str]] = {}
        #: set while the reply subscription is up: a call sent without it could run and its
        #: reply be lost, so calls are refused (503, not sent) until it is back
        self.subscribed = asyncio.Event()
        self._cleanups: set[asyncio.Task] = set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def call(self, edge: str, call: CallRequest, timeout: float) -> CallReply:
        if not self.subscribed.is_set():
            raise BridgeError(503, "the bridge is (re)connecting to Redis for replies; call "
                                   f"not sent to edge '{edge}'", NOT_RUN, call.id)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        self._pending[call.id] = (fut, edge)
        timer = loop.call_later(timeout, _expire, fut, edge, timeout)
        queue = keys.edge_queue_key(edge)
        message = celery_message(call, keys.edge_queue(edge))
        ttl = call_record.ttl_ms(call.deadline, self.retention)
        try:
            try:  # the record and the call go out in one write, record first
                self.commands.send(*call_record.set_command(
                    call.id, call_record.encode(call_record.QUEUED, edge), ttl))
                await self.commands.call("LPUSH", queue, message)
            except NotSent as exc:
                raise BridgeError(503, f"broker unavailable, call not sent to edge "
                                       f"'{edge}': {exc}", NOT_RUN) from None
            except (RedisError, OSError) as exc:
                raise Unanswered(502, f"broker failed while sending the call to edge "
                                      f"'{edge}' ({exc}); it may have been queued",
                                 (503, f"broker failed while sending the call to edge "
                                       f"'{edge}' ({exc}); it was not queued")) from None
            try:
                return await fut
            except asyncio.CancelledError:
                stopping_cancel()
                raise Unanswered(
                    502, f"the bridge stopped while waiting for edge '{edge}'",
                    (503, f"the bridge stopped before edge '{edge}' took the call; it was "
                          "withdrawn and did not run")) from None
        except Unanswered as exc:
            if await self._withdraw(queue, message):
                self.commands.send(*call_record.set_command(
                    call.id, call_record.encode(call_record.NOT_DELIVERED, edge,
                                                "withdrawn by the bridge"), ttl))
                exc = BridgeError(*exc.if_withdrawn, NOT_RUN)  # type: ignore[assignment]
            else:
                exc.detail += f"; its outcome is unknown: GET /calls/{call.id}"
            exc.call_id = call.id
            raise exc from None
        except BridgeError as exc:
            exc.call_id = call.id
            raise
        finally:
            timer.cancel()
            self._pending.pop(call.id, None)

    async def _withdraw(self, queue: str, message: bytes) -> bool:
        """Take an unanswered call back out of the queue; True only if it was removed (then
        it can never run). 0 removed means the edge took it (or Redis lost it): unknown."""
        try:
            removed = await asyncio.wait_for(self.commands.call("LREM", queue, 1, message), 1.0)
        except (RedisError, OSError, asyncio.TimeoutError):
            return False
        return removed == 1

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
        """Fail every call in flight to `edge` (unknown outcome unless withdrawn); how many."""
        n = 0
        for fut, target in list(self._pending.values()):
            if target == edge and not fut.done():
                fut.set_exception(Unanswered(
                    502, f"edge '{edge}' was lost mid-call",
                    (503, f"edge '{edge}' was lost before taking the call; it did not run")))
                n += 1
        return n

    def connection_lost(self, why: str) -> int:
        """The reply subscription dropped: replies may be lost, so fail every pending call
        now (seconds, not its deadline) with the honest outcome; returns how many."""
        self.subscribed.clear()
        n = 0
        for fut, edge in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(Unanswered(
                    502, f"the bridge lost its Redis connection ({why}) while waiting for "
                         f"edge '{edge}'",
                    (503, f"the bridge lost its Redis connection ({why}); the call was "
                          "withdrawn and did not run")))
                n += 1
        return n

    async def drain(self, detail: str, timeout: float) -> None:
        """Fail every call in flight with `detail` and wait (at most `timeout` s) until each
        was answered: withdrawn ones as not run, the others as unknown (shutdown)."""
        for fut, _edge in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(Unanswered(502, detail, (503, detail + "; did not run")))
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while self._pending and loop.time() < end:
            await asyncio.sleep(0.01)  # each call's own task withdraws and answers


def stopping_cancel() -> None:
    """Accept the cancellation of a request being served because the server is stopping.

    uvicorn cancels what outlives its graceful shutdown and, for a response not started yet,
    answers a bare 500. The request answers honestly instead (withdrawn: 503 not_run, else
    502 unknown with its call id) and ends normally, so the task's cancel request is taken
    back (`uncancel`) for the awaits that answer needs.
    """
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
    log.info("bridge stopping: answering a call still in flight")


def _expire(fut: asyncio.Future, edge: str, timeout: Any) -> None:
    if not fut.done():
        detail = f"edge '{edge}' did not answer within {timeout:g} s"
        fut.set_exception(Unanswered(504, detail, (504, detail + "; it was withdrawn and "
                                                   "did not run")))
