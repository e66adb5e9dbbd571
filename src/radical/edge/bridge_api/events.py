"""SSE fan-out: notifications from the Redis stream and topology changes to every client.

One reader per bridge follows the notification stream (XREAD) into an in-memory window of
the newest entries.  Every client has its own cursor (the last entry it was sent), so none
is ever dropped for being slow: a client inside the window is served from memory, one
behind it (slow, or resuming with `Last-Event-ID`) pages through the stream with XRANGE
until it reaches the window, with no gap and no duplicate at the hand-over.  Entries that
Redis really trimmed, a `Last-Event-ID` from the future or from another stream epoch become
an explicit `gap` event (`{"from": id, "to": id}`); the client then re-reads state.

The bridge records the oldest cursor of its clients in Redis (`event_stream.record_reader`)
so the notifiers' trimming never removes entries a connected client still has to receive.
A client that stops reading is cut by the response's send timeout and can resume.
"""
from __future__ import annotations

import asyncio
import bisect
import logging
from dataclasses import dataclass
from typing import Any, AsyncIterator

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sse_starlette.sse import SendTimeoutError

from ..app import event_stream, keys
from ..app.retry import Backoff
from ..app.event_stream import StreamId, event_id, fmt_sid, parse_event_id, parse_sid

log = logging.getLogger(__name__)

#: how often the bridge records its readers' position and re-checks the stream epoch
RECORD_SECONDS = 0.5
#: most events one client is handed from memory before it re-checks topology
SLICE = 1000


@dataclass(eq=False)
class Client:
    """One SSE connection's position: the last entry it was sent, in which epoch."""

    pos: StreamId = (0, 0)
    epoch: str | None = None
    topology_seen: int = -1
    sent: int = 0
    check: bool = False  # next read must go to Redis (resume: trimmed or future id?)


class EventHub:
    def __init__(self, redis: aioredis.Redis, bridge_id: str, *, buffer_size: int = 20_000,
                 page_size: int = 2000) -> None:
        self._redis = redis
        self._bridge_id = bridge_id
        self._buffer_size = max(buffer_size, 1)
        self._page = max(page_size, 1)
        self._ids: list[StreamId] = []
        self._events: list[bytes] = []  # encoded SSE events, parallel to _ids
        self.covered_from: StreamId = (0, 0)  # every entry after this is in the window
        self.last_id: StreamId = (0, 0)  # newest entry read
        self.epoch: str | None = None
        self.ready = asyncio.Event()
        self.clients: set[Client] = set()
        self.wake = asyncio.Event()  # set (and replaced) whenever something new arrived
        self.topology_event: dict[str, Any] | None = None
        self.topology_version = 0
        self.gaps = 0
        self.received = 0  # notifications read from the stream (metrics)

    # -- clients --------------------------------------------------------------------------
    def connect(self) -> Client:
        client = Client(pos=self.last_id, epoch=self.epoch, topology_seen=self.topology_version)
        self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        self.clients.discard(client)

    def topology(self, data: dict[str, Any]) -> None:
        self.topology_event = {"data": orjson.dumps({"topic": "topology", "data": data}).decode()}
        self.topology_version += 1
        self._notify()

    def _notify(self) -> None:
        wake, self.wake = self.wake, asyncio.Event()
        wake.set()

    def oldest_needed(self) -> StreamId:
        """The oldest position still to be delivered by this bridge (for trimming)."""
        oldest = self.last_id
        for client in self.clients:
            if client.epoch == self.epoch and client.pos < oldest:
                oldest = client.pos
        return oldest

    # -- reading the stream ---------------------------------------------------------------
    async def run(self) -> None:
        """Follow the notification stream forever; survives Redis restarts and data loss."""
        backoff = Backoff("notification stream read", logger=log)
        recorder = asyncio.get_running_loop().create_task(self._record_forever())
        try:
            while True:
                try:
                    if not self.ready.is_set():
                        await self._init()
                    result = await self._redis.xread({keys.NOTIFICATIONS: fmt_sid(self.last_id)},
                                                     count=1000, block=2000)
                    backoff.succeeded()
                except asyncio.CancelledError:
                    raise
                except (RedisError, OSError) as exc:
                    await backoff.wait(exc)
                    await self._check_epoch()
                    continue
                for _stream, entries in result or []:
                    self._append(entries)
        finally:
            recorder.cancel()

    async def _init(self) -> None:
        self.epoch = await event_stream.ensure_epoch(self._redis)
        self.last_id = await event_stream.last_generated(self._redis)
        self.covered_from = self.last_id
        for client in self.clients:  # connected before Redis answered: start from now
            client.pos, client.epoch = self.last_id, self.epoch
        self.ready.set()
        self._notify()

    async def _check_epoch(self) -> None:
        """After Redis trouble: if the stream was lost, start over with the new one."""
        if not self.ready.is_set():
            return
        try:
            epoch = await event_stream.ensure_epoch(self._redis)
        except (RedisError, OSError):
            return
        if epoch != self.epoch:
            log.warning("notification stream epoch %s -> %s: Redis lost the stream",
                        self.epoch, epoch)
            self.epoch = epoch
            self._ids, self._events = [], []
            self.covered_from = self.last_id = (0, 0)
            self._notify()

    def window_ids(self) -> list[StreamId]:
        """Ids of the notifications held in memory, oldest first (metrics: backlog)."""
        return self._ids

    def _append(self, entries: list) -> None:
        epoch = self.epoch or ""
        self.received += len(entries)
        for eid, fields in entries:
            sid = parse_sid(eid)
            self._ids.append(sid)
            self._events.append(_event(sid, epoch, fields))
        if entries:
            self.last_id = self._ids[-1]
        excess = len(self._ids) - self._buffer_size
        if excess > self._buffer_size // 4:  # amortised: drop in chunks
            self.covered_from = self._ids[excess - 1]
            del self._ids[:excess]
            del self._events[:excess]
        self._notify()

    async def _record_forever(self) -> None:
        while True:
            await asyncio.sleep(RECORD_SECONDS)
            if not self.ready.is_set():
                continue
            try:
                await event_stream.record_reader(self._redis, self._bridge_id,
                                                 self.oldest_needed())
                await self._check_epoch()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.debug("could not record reader position: %s", exc)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(event_stream.forget_reader(self._redis, self._bridge_id), 2)
        except (RedisError, OSError, asyncio.TimeoutError):
            pass

    # -- serving one client ---------------------------------------------------------------
    def from_window(self, client: Client) -> Chunk | None:
        """The next events for `client` from memory; None when it is behind the window."""
        if client.pos < self.covered_from:
            return None
        start = bisect.bisect_right(self._ids, client.pos)
        end = start + SLICE
        return self._ids[start:end], self._events[start:end]

    async def page(self, client: Client) -> tuple[dict[str, Any] | None, Chunk]:
        """The next events for `client` from Redis (XRANGE), a `gap` first if entries are gone."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.xinfo_stream(keys.NOTIFICATIONS)
        pipe.get(keys.NOTIFICATIONS_TRIMMED)
        pipe.xrange(keys.NOTIFICATIONS, min=f"({fmt_sid(client.pos)}", max="+", count=self._page)
        info, trimmed_raw, entries = await pipe.execute(raise_on_error=False)
        if isinstance(info, Exception):  # no stream at all
            last, entries = (0, 0), []
        elif isinstance(entries, Exception):
            raise entries
        else:
            last = event_stream.last_of(info)
        trimmed = parse_sid(trimmed_raw) if isinstance(trimmed_raw, bytes) else (0, 0)
        gap = None
        if client.pos > last:
            gap = self.gap(client, last, "ahead of the stream")
        elif client.pos < trimmed:
            gap = self.gap(client, trimmed, "trimmed")
        epoch = self.epoch or ""
        ids = [parse_sid(eid) for eid, _ in entries]
        events = [_event(sid, epoch, fields) for sid, (_, fields) in zip(ids, entries)]
        if gap is None and not ids and client.pos < self.covered_from:
            client.pos = self.covered_from  # nothing in Redis between pos and the window
        return gap, (ids, events)

    def gap(self, client: Client, to: StreamId, why: str,
            from_id: str | None = None) -> dict[str, Any]:
        """A `gap` event from the client's position to `to`; moves the client there."""
        self.gaps += 1
        old = from_id if from_id is not None else event_id(client.pos, client.epoch or "")
        client.pos, client.epoch = to, self.epoch
        new = event_id(to, self.epoch or "")
        log.info("SSE gap %s -> %s (%s)", old, new, why)
        data = {"topic": "gap", "data": {"from": old, "to": new, "reason": why}}
        return {"id": new, "event": "gap", "data": orjson.dumps(data).decode()}

    def resume(self, client: Client, last_event_id: str) -> dict[str, Any] | None:
        """Position a client that sent `Last-Event-ID`; a `gap` event if it cannot resume."""
        try:
            pos, epoch = parse_event_id(last_event_id)
        except ValueError:  # not one of ours: whatever it stood for cannot be replayed
            client.pos, client.epoch = self.last_id, self.epoch
            return self.gap(client, self.last_id, "unknown id", from_id=last_event_id[:64])
        client.pos, client.epoch = pos, epoch
        if epoch is not None and epoch != self.epoch:
            return self.gap(client, self.last_id, "another stream epoch")
        client.epoch = self.epoch
        client.check = True  # compare with Redis first: trimmed, or from the future
        return None


#: the note's field of a stream entry, as Redis returns it and as tests may write it
_NOTE = (keys.NOTE_FIELD.encode(), keys.NOTE_FIELD)
#: stream ids and their encoded SSE events, in order
Chunk = tuple[list[StreamId], list[bytes]]


def _event(sid: StreamId, epoch: str, fields: dict) -> bytes:
    """One notification as a ready SSE event: encoded once, sent to every client as is."""
    note = fields.get(_NOTE[0]) or fields.get(_NOTE[1]) or b"{}"  # never the state digest
    if isinstance(note, str):
        note = note.encode()
    head = b"id: %d-%d:%s\r\n" % (sid[0], sid[1], epoch.encode())
    if b"\n" in note or b"\r" in note:  # JSON never needs raw line breaks; be safe anyway
        lines = note.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        note = b"\r\ndata: ".join(lines)
    return head + b'data: {"topic":"notification","data":' + note + b"}\r\n\r\n"


async def client_events(hub: EventHub, client: Client, first: dict[str, Any],
                        resume_from: str | None) -> AsyncIterator[dict[str, Any] | bytes]:
    """The event sequence of one SSE connection: topology, replay, then live.

    Notifications go out pre-encoded, as many per write as are ready (up to `SLICE`).
    """
    try:
        yield first
        await hub.ready.wait()
        client.pos, client.epoch = hub.last_id, hub.epoch
        if resume_from:
            gap = hub.resume(client, resume_from)
            if gap is not None:
                yield gap
        while True:
            wake = hub.wake
            if client.topology_seen != hub.topology_version:
                client.topology_seen = hub.topology_version
                if hub.topology_event is not None:
                    yield hub.topology_event
            if client.epoch != hub.epoch:
                yield hub.gap(client, (0, 0), "stream lost")
                continue
            window = None if client.check else hub.from_window(client)
            if window is None:
                try:
                    gap, (ids, events) = await hub.page(client)
                except (RedisError, OSError) as exc:
                    log.warning("could not replay notifications: %s", exc)
                    await asyncio.sleep(0.5)
                    continue
                client.check = False
                if gap is not None:
                    yield gap
                if not ids:
                    continue
            else:
                ids, events = window
                if not ids:
                    await wake.wait()
                    continue
            yield b"".join(events)
            client.pos = ids[-1]  # only once written: until then these entries stay protected
            client.sent += len(ids)
    finally:
        hub.disconnect(client)


class _Ending:
    """`send` that notes whether the response was started and whether it was completed."""

    def __init__(self, send: Any) -> None:
        self._send = send
        self.started = self.completed = False

    async def __call__(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            self.completed = True
        await self._send(message)


async def serve_events(app: Any, scope: dict, receive: Any, send: Any) -> None:
    """Run the `/events` route; end every stream properly, cut a client that stopped
    reading (send timeout).

    When the server shuts down, sse_starlette stops its streams without their last (empty)
    chunk: uvicorn then logs "ASGI callable returned without completing response" and the
    client sees a broken chunked body. Ending the stream here makes a shutdown a clean end
    of stream (clients resume with `Last-Event-ID`); after a client went away the send is
    a no-op.

    The server's graceful close waits until its send buffer drained, which a client that
    never reads never allows: the connection is aborted instead, so it cannot pin memory
    or hold back trimming.  `send` is the server's own (uvicorn's bound method).
    """
    ending = _Ending(send)
    try:
        await app(scope, receive, ending)
    except SendTimeoutError:
        client = scope.get("client")
        log.warning("SSE client %s stopped reading; disconnecting it", client and client[0])
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None:
            transport.abort()
            await asyncio.sleep(0)  # let the server see the connection is gone
        return
    if ending.started and not ending.completed:
        log.debug("SSE stream to %s ended (shutdown, or the client left); closing it",
                  (scope.get("client") or ("?",))[0])
        await send({"type": "http.response.body", "body": b"", "more_body": False})
