"""SSE fan-out: notifications from the Redis stream and topology changes to every client.

One reader per bridge follows the notification stream (XREAD) and copies each entry into
every connected client's bounded queue. A client too slow to keep up is disconnected rather
than allowed to grow memory; it reconnects with `Last-Event-ID` (stream entry ids are the
SSE ids) and the missed entries are replayed from the stream, so nothing is lost.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, AsyncIterator

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..app import keys
from ..app.retry import Backoff

log = logging.getLogger(__name__)

OVERFLOW = object()  # sentinel telling a lagging client's stream to end


def parse_id(entry_id: str) -> tuple[int, int]:
    """A stream id as a comparable tuple; raises ValueError on garbage."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(eq=False)
class Client:
    queue: asyncio.Queue
    min_id: tuple[int, int] = (0, 0)
    lagging: bool = False


class EventHub:
    def __init__(self, redis: aioredis.Redis, queue_size: int) -> None:
        self._redis = redis
        self._queue_size = queue_size
        self.clients: set[Client] = set()
        self.last_id = "$"
        self.dropped_clients = 0

    def connect(self) -> Client:
        client = Client(asyncio.Queue(self._queue_size))
        self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        self.clients.discard(client)

    def broadcast(self, event: dict[str, Any]) -> None:
        for client in list(self.clients):
            if client.lagging:
                continue
            try:
                client.queue.put_nowait(event)
            except asyncio.QueueFull:
                client.lagging = True
                self.dropped_clients += 1
                _force_put(client.queue, OVERFLOW)

    def topology(self, data: dict[str, Any]) -> None:
        self.broadcast({"data": orjson.dumps({"topic": "topology", "data": data}).decode()})

    async def replay(self, client: Client, after: str) -> list[dict[str, Any]]:
        """Entries after `after` still in the stream, for a resuming client."""
        start = parse_id(after)
        entries = await self._redis.xrange(keys.NOTIFICATIONS, min=f"({after}", max="+",
                                           count=self._queue_size)
        events = [_event(eid, fields) for eid, fields in entries]
        if events:
            client.min_id = parse_id(events[-1]["id"])
        else:
            client.min_id = start
        return events

    async def run(self) -> None:
        """Follow the notification stream forever; survives Redis restarts."""
        backoff = Backoff("notification stream read", logger=log)
        while True:
            try:
                if self.last_id == "$":
                    latest = await self._redis.xrevrange(keys.NOTIFICATIONS, count=1)
                    self.last_id = _sid(latest[0][0]) if latest else "0-0"
                result = await self._redis.xread({keys.NOTIFICATIONS: self.last_id},
                                                 count=1000, block=2000)
                backoff.succeeded()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                await backoff.wait(exc)
                continue
            for _stream, entries in result or []:
                for eid, fields in entries:
                    event = _event(eid, fields)
                    self.last_id = event["id"]
                    self.broadcast(event)


def _sid(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _event(eid: Any, fields: dict) -> dict[str, Any]:
    note = fields.get(b"d") or fields.get("d") or b"{}"
    note = note.decode() if isinstance(note, bytes) else note
    return {"id": _sid(eid), "data": '{"topic":"notification","data":' + note + "}"}


def _force_put(queue: asyncio.Queue, item: Any) -> None:
    try:
        queue.get_nowait()
    except asyncio.QueueEmpty:
        pass
    queue.put_nowait(item)


async def client_events(hub: EventHub, client: Client, first: dict[str, Any],
                        resume_from: str | None) -> AsyncIterator[dict[str, Any]]:
    """The event sequence of one SSE connection: topology, replay, then live."""
    try:
        yield first
        if resume_from:
            try:
                parse_id(resume_from)
                for event in await hub.replay(client, resume_from):
                    yield event
            except ValueError:
                log.info("ignoring bad Last-Event-ID %r", resume_from)
            except (RedisError, OSError) as exc:
                log.warning("could not replay notifications: %s", exc)
        while True:
            event = await client.queue.get()
            if event is OVERFLOW:
                log.warning("SSE client too slow; closing its stream so it resumes")
                return
            eid = event.get("id")
            if eid and client.min_id != (0, 0) and parse_id(eid) <= client.min_id:
                continue
            yield event
    finally:
        hub.disconnect(client)
