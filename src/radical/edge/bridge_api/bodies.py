"""Big request and reply bodies at the bridge: stream them through Redis, never hold them.

A request body above the inline threshold is pushed into a Redis list chunk by chunk as it
arrives (the Celery message then carries only its key), so a 30 MB upload is neither held
whole by the bridge nor inlined into a task message the edge must decode in one piece.
A reply that arrives as a pointer (`body_ref`) is relayed to the HTTP client chunk by chunk
as the edge writes it: bridge memory stays at a few chunks whatever the size.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..app import keys
from ..app.blobs import BlobError, BlobWriter, abandon, read_blob
from ..settings import Settings
from .dispatcher import BridgeError

log = logging.getLogger(__name__)

#: how long an uploaded body may wait in Redis after the call's deadline
BLOB_GRACE = 60.0


class BodyAborted(Exception):
    """The reply failed after its status line went out: the connection must be dropped."""


class Body:
    """A request body: inline bytes, or the key of the Redis list holding it."""

    def __init__(self, data: bytes = b"", ref: str | None = None, size: int = 0) -> None:
        self.data = data
        self.ref = ref
        self.size = size if ref else len(data)


async def receive_body(redis: aioredis.Redis, settings: Settings, headers: dict[str, str],
                       receive: Any, timeout: float) -> Body:
    """Read the request body; beyond `payload_inline_bytes` it goes to Redis as it arrives."""
    limit = settings.max_body_bytes
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BridgeError(400, "invalid Content-Length")
        if int(declared) > limit:
            raise BridgeError(413, f"request body of {declared} bytes exceeds the limit of "
                                   f"{limit} bytes")
    chunks: list[bytes] = []
    size = 0
    writer: BlobWriter | None = None
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BridgeError(400, "client disconnected while sending the body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BridgeError(413, f"request body exceeds the limit of {limit} bytes")
            if chunk:
                chunks.append(chunk)
            if writer is None and size > settings.payload_inline_bytes:
                writer = BlobWriter(redis, keys.blob(uuid.uuid4().hex),
                                    chunk=settings.payload_chunk_bytes,
                                    ttl=timeout + BLOB_GRACE)
            if writer is not None and (sum(map(len, chunks)) >= settings.payload_chunk_bytes
                                       or not message.get("more_body")):
                await writer.write(b"".join(chunks))
                chunks.clear()
            if not message.get("more_body"):
                break
        if writer is None:
            return Body(b"".join(chunks))
        await writer.close()
        return Body(ref=writer.key, size=size)
    except (RedisError, OSError) as exc:
        if writer is not None:
            await abandon(redis, writer.key)
        raise BridgeError(503, f"broker unavailable, request body not stored: {exc}") from None
    except BaseException:
        if writer is not None:
            await abandon(redis, writer.key)
        raise


async def send_blob_reply(redis: aioredis.Redis, key: str, deadline: float, status: int,
                          headers: list[tuple[bytes, bytes]], send: Any, receive: Any,
                          keep: int = 0) -> bytes | None:
    """Relay a reply body from Redis to the HTTP client as the edge writes it.

    The status line goes out first; if the edge's stream then fails, the response is cut
    short (the client sees an incomplete body, never a silently truncated success). A client
    that hangs up makes the bridge abandon the body, which stops the edge writing it.
    Returns the whole body when it was relayed completely and is at most `keep` bytes (the
    work index reads big submit replies so), else None.
    """
    body = read_blob(redis, key, deadline + BLOB_GRACE)
    hangup = asyncio.ensure_future(receive())  # the request body is read: only disconnect
    started = False
    kept: list[bytes] | None = [] if keep > 0 else None
    size = 0
    try:
        async for chunk in body:
            if hangup.done():
                log.debug("client left during reply body %s", key)  # normal: not news
                await abandon(redis, key)
                return None
            if not started:
                await send({"type": "http.response.start", "status": status, "headers": headers})
                started = True
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if kept is not None:
                size += len(chunk)
                if size <= keep:
                    kept.append(chunk)
                else:
                    kept = None  # too big to index: stop keeping it
        if not started:
            await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return b"".join(kept) if kept is not None else None
    except (BlobError, RedisError, OSError) as exc:
        await abandon(redis, key)
        log.warning("reply body %s failed: %s", key, exc)
        if started:  # the server drops the connection: the client sees an incomplete body
            raise BodyAborted(str(exc)) from None
        raise BridgeError(502, f"the edge's reply body could not be relayed: {exc}") from None
    except BaseException:
        await abandon(redis, key)
        raise
    finally:
        hangup.cancel()
        await body.aclose()
