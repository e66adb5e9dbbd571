"""A lean, pipelined Redis connection for the two commands on every call's path.

The bridge LPUSHes each call and the edge PUBLISHes each reply. Through redis-py's asyncio
client each costs a pool checkout, a lock and a round trip; here commands are written as RESP
into a buffer flushed once per event-loop iteration (concurrent commands share one write and
one round trip), and replies, parsed by hiredis, resolve futures in FIFO order. A connection
that fails or times out fails every command in flight and is replaced on the next call.
`redis://` and `rediss://` (TLS, see tls.py) URLs take this path; unix sockets use redis-py.
"""
from __future__ import annotations

import asyncio
import collections
from typing import Any
from urllib.parse import unquote, urlparse

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import tls


class NotSent(RedisConnectionError):
    """No connection could be made: the command certainly never reached Redis."""


def encode(args: tuple) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, (bytes, bytearray)) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def parse_url(url: str) -> dict[str, Any]:
    u = urlparse(url)
    return {"host": u.hostname or "127.0.0.1", "port": u.port or 6379,
            "db": int((u.path or "/0").strip("/") or 0),
            "user": unquote(u.username) if u.username else None,
            "password": unquote(u.password) if u.password else None}


def auth_commands(conf: dict[str, Any]) -> list[tuple]:
    if not conf["password"]:
        return []
    if conf["user"]:
        return [("AUTH", conf["user"], conf["password"])]
    return [("AUTH", conf["password"])]


def lean_url(url: str) -> bool:
    """TCP URLs (plain or TLS) take the lean path; unix sockets do not."""
    return url.startswith(("redis://", "rediss://"))


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while self.waiting:
            reply = self.reader.gets()
            if reply is False:
                return
            fut = self.waiting.popleft()
            if fut.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                fut.set_exception(ResponseError(str(reply)))
            else:
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.fail(RedisConnectionError(f"redis connection lost: {exc or 'closed'}"))

    def fail(self, exc: Exception) -> None:
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(exc)


class PipelinedRedis:
    """`await lean.call("LPUSH", key, value)`; safe for many concurrent callers."""

    def __init__(self, url: str, timeout: float) -> None:
        self._conf = parse_url(url)
        self._ssl = tls.context(url)
        self._timeout = timeout
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Future | None = None
        self._buffer: list[bytes] = []
        self._flush_scheduled = False

    async def _connection(self) -> _Protocol:
        if self._proto is not None and not self._proto.lost:
            return self._proto
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        try:
            return await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(_Protocol, self._conf["host"], self._conf["port"],
                                       ssl=self._ssl,
                                       server_hostname=self._conf["host"] if self._ssl else None),
                self._timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise NotSent(f"cannot connect to redis at {self._conf['host']}:"
                                       f"{self._conf['port']}: {exc}") from None
        self._buffer.clear()
        setup = auth_commands(self._conf)
        if self._conf["db"]:
            setup.append(("SELECT", self._conf["db"]))
        for args in setup:
            fut = loop.create_future()
            proto.waiting.append(fut)
            proto.transport.write(encode(args))
            await asyncio.wait_for(fut, self._timeout)
        self._proto = proto
        return proto

    async def call(self, *args: Any) -> Any:
        proto = await self._connection()
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        proto.waiting.append(fut)
        self._buffer.append(encode(args))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush, proto)
        try:
            return await asyncio.wait_for(fut, self._timeout)
        except asyncio.TimeoutError:
            self._drop(proto, RedisTimeoutError(f"redis did not answer {args[0]} within "
                                                f"{self._timeout:g} s"))
            raise RedisTimeoutError(f"redis did not answer {args[0]} in time") from None

    def send(self, *args: Any) -> None:
        """Queue a command nobody awaits; it goes out with the next flush (same write as
        the commands issued in this loop iteration), its answer or failure is discarded."""
        proto = self._proto
        if proto is None or proto.lost:
            _keep(asyncio.ensure_future(self.call(*args)))
            return
        fut = asyncio.get_running_loop().create_future()
        fut.add_done_callback(_discard)
        proto.waiting.append(fut)
        self._buffer.append(encode(args))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush, proto)

    def _flush(self, proto: _Protocol) -> None:
        self._flush_scheduled = False
        if self._buffer and not proto.lost and proto.transport is not None:
            proto.transport.write(b"".join(self._buffer))
        self._buffer.clear()

    def _drop(self, proto: _Protocol, exc: Exception) -> None:
        """A late reply would now pair with the wrong future: abandon this connection."""
        proto.fail(exc)
        if proto.transport is not None:
            proto.transport.close()
        if self._proto is proto:
            self._proto = None

    async def close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None


def _discard(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()  # retrieved: no "exception was never retrieved" noise


_background: set[asyncio.Future] = set()


def _keep(task: asyncio.Future) -> None:
    """Hold a reference until done (the loop keeps only weak ones)."""
    _background.add(task)
    task.add_done_callback(_background.discard)
    task.add_done_callback(_discard)


class Commands:
    """Hot-path commands: lean for `redis://` and `rediss://`, redis-py otherwise."""

    def __init__(self, redis: aioredis.Redis, url: str, timeout: float) -> None:
        self._redis = redis
        self._lean = PipelinedRedis(url, timeout) if lean_url(url) else None

    async def call(self, *args: Any) -> Any:
        if self._lean is not None:
            return await self._lean.call(*args)
        return await self._redis.execute_command(*args)

    def send(self, *args: Any) -> None:
        """Fire-and-forget `call` (pipelined with whatever else goes out now)."""
        if self._lean is not None:
            self._lean.send(*args)
            return
        _keep(asyncio.ensure_future(self._redis.execute_command(*args)))

    async def close(self) -> None:
        if self._lean is not None:
            await self._lean.close()
