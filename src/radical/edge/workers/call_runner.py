"""Run one `CallRequest` against the plugin routes and turn the outcome into a `CallReply`.

Handlers receive a real Starlette `Request` (path params, query, headers, body,
`state.identity`: the caller's `Identity` or None)
built from the call, with no HTTP server in between; whatever they return or raise becomes
an HTTP status and body the bridge relays unchanged.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import AsyncIterator, Mapping
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from ..app.identity import Identity
from ..app.blobs import BlobError
from ..app.protocol import CallReply, CallRequest
from ..errors import StatusError
from .router import RouteNotFound, Router

log = logging.getLogger(__name__)

JSON = [["content-type", "application/json"]]
#: `inline=None`: every body inline (direct callers, tests); the edge passes its threshold
NO_LIMIT = 1 << 62
#: read size of files a handler returns (FileResponse)
FILE_CHUNK = 1024 * 1024


def make_request(call: CallRequest, params: dict[str, Any], state: dict[str, Any],
                 body_source: AsyncIterator[bytes] | None = None) -> Request:
    """A Starlette request for `call`; an out-of-band body is read lazily from `body_source`
    (so a handler that streams `request.stream()` never holds it whole)."""
    body = call.body_bytes()
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        if body_source is not None:
            try:
                chunk = await anext(body_source, None)
            except BlobError as exc:
                raise HTTPException(503, f"request body no longer available: {exc}") from None
            if chunk is not None:
                return {"type": "http.request", "body": chunk, "more_body": True}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http", "http_version": "1.1", "method": call.method, "scheme": "http",
        "path": call.path, "raw_path": call.path.encode(), "root_path": "",
        "query_string": call.query.encode("latin-1", "replace"),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1", "replace"))
                    for k, v in call.headers],
        "path_params": params, "client": None, "server": None,
        "state": {"identity": Identity.from_wire(call.identity), "call_id": call.id, **state},
    }
    return Request(scope, receive)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, (bytes, bytearray)):
        return obj.decode("utf-8", "replace")
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def dump_json(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_json_default,
                        option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def _read_file(path: Any) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _reply(call_id: str, status: int, body: bytes, headers: list[list[str]],
           inline: int) -> CallReply:
    if len(body) <= inline:
        return CallReply.build(call_id, status, body, headers)
    return CallReply(id=call_id, status=status, headers=headers, stream=body)


async def _file_chunks(path: str) -> AsyncIterator[bytes]:
    """A file in chunks, each read off the loop: a big file never blocks other calls."""
    fh = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(fh.read, FILE_CHUNK):
            yield chunk
    finally:
        fh.close()


async def _stream_reply(call_id: str, status: int, headers: list[list[str]],
                        chunks: AsyncIterator[Any], inline: int) -> CallReply:
    """Inline if the stream ends within `inline` bytes, else the read part + the rest."""
    head: list[bytes] = []
    size = 0
    async for c in chunks:
        c = c if isinstance(c, bytes) else str(c).encode()
        head.append(c)
        size += len(c)
        if size > inline:
            return CallReply(id=call_id, status=status, headers=headers,
                             stream=_chain(b"".join(head), chunks))
    return CallReply.build(call_id, status, b"".join(head), headers)


async def _chain(first: bytes, rest: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    yield first
    async for c in rest:
        yield c if isinstance(c, bytes) else str(c).encode()


async def render(call_id: str, result: Any, inline: int | None = None) -> CallReply:
    """A handler's return value as a reply: JSON for plain data, Responses as they are.

    Bodies above `inline` bytes are not encoded into the reply: they ride in `stream`
    (bytes, or an async iterator for files and streaming responses, never read whole).
    """
    inline = NO_LIMIT if inline is None else inline
    if isinstance(result, Response):
        headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in result.raw_headers
                   if k.lower() != b"content-length"]
        if isinstance(result, FileResponse):  # off the loop: the file may be on a hung NFS
            if await asyncio.to_thread(os.path.getsize, result.path) <= inline:
                body = await asyncio.to_thread(_read_file, result.path)
                return CallReply.build(call_id, result.status_code, body, headers)
            return CallReply(id=call_id, status=result.status_code, headers=headers,
                             stream=_file_chunks(str(result.path)))
        if isinstance(result, StreamingResponse):
            return await _stream_reply(call_id, result.status_code, headers,
                                       result.body_iterator, inline)
        return _reply(call_id, result.status_code, bytes(result.body or b""), headers, inline)
    return _reply(call_id, 200, dump_json(result), JSON, inline)


async def run_call(router: Router, call: CallRequest, state: dict[str, Any],
                   body_source: AsyncIterator[bytes] | None = None,
                   inline: int | None = None) -> CallReply:
    """Route and run one call; never raises (errors become 4xx/5xx replies)."""
    try:
        handler, params = router.match(call.method, call.path)
    except RouteNotFound as exc:
        reply = CallReply.error(call.id, exc.status, exc.detail)
        if exc.allow:
            reply.headers.append(["allow", ", ".join(exc.allow)])
        return reply
    try:
        result = handler(make_request(call, params, state, body_source))
        if inspect.isawaitable(result):
            result = await result
        return await render(call.id, result, inline)
    except HTTPException as exc:
        reply = CallReply.error(call.id, exc.status_code, str(exc.detail))
        for k, v in (exc.headers or {}).items():
            reply.headers.append([k, v])
        return reply
    except StatusError as exc:  # any of the project's own errors carries its status
        return CallReply.error(call.id, exc.status, exc.detail)
    except Exception as exc:  # a plugin bug must not crash the edge
        # one line (logs.py folds the exception; DEBUG keeps the traceback)
        log.error("plugin handler %s %s failed", call.method, call.path, exc_info=True)
        return CallReply.error(call.id, 500, f"plugin error: {type(exc).__name__}: {exc}")
