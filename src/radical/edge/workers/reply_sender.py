"""Send a call's reply to the waiting bridge: inline on pub/sub, or big bodies out of band.

A reply whose body fits the inline threshold is one PUBLISH, as before (the fast path). A
bigger one publishes a small pointer (status, headers, `body_ref`) and then streams the body
into a Redis list (`app/blobs.py`) that the bridge pops while relaying it to its client, so
no single PUBLISH can exceed Redis's pub/sub output-buffer limit and drop the bridge's
subscriber, and neither side holds more than a window of chunks of a streamed body.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..app import keys
from ..app.blobs import BlobAbandoned, BlobError, BlobWriter
from ..app.pipelined import Commands
from ..app.protocol import CallReply, CallRequest

log = logging.getLogger(__name__)

#: how long a streamed body may wait in Redis after the call's deadline before expiring
BLOB_GRACE = 60.0


class ReplySender:
    def __init__(self, commands: Commands, redis: aioredis.Redis, *, chunk: int,
                 window: int) -> None:
        self._commands = commands
        self._redis = redis
        self._chunk = chunk
        self._window = window

    async def send(self, call: CallRequest, reply: CallReply) -> bool:
        """Deliver `reply`; False when no bridge got it before the call's deadline."""
        body: Any = reply.stream
        if body is None:
            return await self._publish(call, reply.dumps())
        reply.stream = None
        reply.body_ref = keys.blob(uuid.uuid4().hex)
        if isinstance(body, (bytes, bytearray, memoryview)):
            reply.headers = [h for h in reply.headers if h[0].lower() != "content-length"]
            reply.headers.append(["content-length", str(len(body))])
        if not await self._publish(call, reply.dumps()):  # nobody would read the body
            await _close(body)
            return False
        ttl = max(1.0, call.deadline - time.time()) + BLOB_GRACE
        writer = BlobWriter(self._redis, reply.body_ref, chunk=self._chunk, ttl=ttl,
                            window=self._window, deadline=call.deadline + BLOB_GRACE)
        try:
            if isinstance(body, (bytes, bytearray, memoryview)):
                await writer.write(body)
            else:
                async for piece in body:
                    await writer.write(piece if isinstance(piece, bytes) else str(piece).encode())
            await writer.close()
        except BlobAbandoned:
            log.warning("reply body of call %s abandoned by the bridge after %d bytes",
                        call.id, writer.size)
            await self._delete(reply.body_ref)
        except (BlobError, RedisError, OSError) as exc:
            log.warning("streaming the reply of call %s stopped after %d bytes: %s",
                        call.id, writer.size, exc)
            await writer.fail(str(exc))
        except Exception as exc:  # the plugin's iterator failed half-way
            log.error("reply body of call %s %s failed after %d bytes: %s", call.method,
                      call.path, writer.size, exc)
            await writer.fail(f"plugin error: {type(exc).__name__}: {exc}")
        finally:
            await _close(body)
        return True

    async def _delete(self, key: str) -> None:
        try:
            await self._redis.delete(key)
        except (RedisError, OSError):
            pass  # its TTL removes it

    async def _publish(self, call: CallRequest, data: bytes) -> bool:
        """PUBLISH until a bridge received it or the call's deadline passed.

        Zero receivers or a Redis error means nobody got the reply (pub/sub keeps nothing),
        so trying again cannot deliver it twice. This bridges the seconds in which a bridge's
        subscriber re-subscribes after a Redis restart or a Sentinel failover.
        """
        pause, why = 0.05, ""
        while True:
            try:
                if await self._commands.call("PUBLISH", call.reply_to, data):
                    return True
                why = "no bridge listens on it"
            except (RedisError, OSError) as exc:
                why = str(exc)
            if time.time() + pause > call.deadline:
                log.warning("reply to %s lost: %s", call.reply_to, why)
                return False
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)


async def _close(body: Any) -> None:
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            pass
