"""Decoding submit bodies with bounds, off the plugin loop when they are large.

A body turns into Python objects many times its size (a 10 MB msgpack of empty maps is
~700 MB of dicts), and decoding it on the plugin loop blocks every other call and the edge's
heartbeat.  So, before anything is built:

* the body may be at most `max_bytes` (413);
* it may hold at most `max_items` values at all levels (413): for JSON a byte count of
  ``, [ {`` bounds that before parsing; for msgpack the container hooks count as the
  decoder goes and stop it at the budget, and per-container lengths are capped too;
* nesting is bounded by the decoders themselves (1024 levels: 422);
* msgpack ext types are refused (422; timestamps become float seconds), ``bin`` stays
  ``bytes`` (never unpickled): a body decodes to plain data only;
* bodies above `OFF_LOOP_BYTES` are decoded in a thread; the msgpack hooks are Python code,
  so the decoder lets go of the GIL while it works and the loop keeps running.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

__all__ = ["MSGPACK_TYPES", "OFF_LOOP_BYTES", "BodyLimits", "decode_body", "decode_json",
           "decode_msgpack"]

MSGPACK_TYPES = ("application/msgpack", "application/x-msgpack", "application/vnd.msgpack")
#: bodies larger than this are decoded in a worker thread, not on the plugin loop
OFF_LOOP_BYTES = 256 * 1024


@dataclass(frozen=True)
class BodyLimits:
    max_bytes: int = 16 * 1024 * 1024
    max_items: int = 2_000_000


class _TooMany(Exception):
    pass


def _too_large(limits: BodyLimits, what: str) -> HTTPException:
    return HTTPException(413, f"submit body too large: {what} (this edge accepts at most "
                              f"{limits.max_bytes:,} bytes and {limits.max_items:,} values "
                              "per body; RADICAL_EDGE_RHAPSODY_MAX_BODY_BYTES / _ITEMS); "
                              "send the tasks in several smaller batches")


def decode_json(raw: bytes, limits: BodyLimits) -> Any:
    import orjson

    values = raw.count(b",") + raw.count(b"[") + raw.count(b"{")
    if values > limits.max_items:
        raise _too_large(limits, f"about {values:,} JSON values")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "recursion" in str(exc) or "depth" in str(exc):
            raise HTTPException(422, f"JSON body nested too deeply: {exc}") from None
        raise HTTPException(400, f"malformed JSON body: {exc}") from None


def decode_msgpack(raw: bytes, limits: BodyLimits) -> Any:
    try:
        import msgpack
    except ImportError:
        raise HTTPException(415, "msgpack bodies need msgpack installed on the edge; "
                                 "send JSON instead") from None
    budget = limits.max_items
    seen = 0

    def count(obj: Any) -> Any:
        nonlocal seen
        seen += len(obj) + 1
        if seen > budget:
            raise _TooMany
        return obj

    def no_ext(code: int, data: bytes) -> Any:
        raise ValueError(f"msgpack ext type {code} is not accepted")

    per_container = max(1, min(budget, 1 << 24))
    try:
        return msgpack.unpackb(
            raw, raw=False, strict_map_key=False, list_hook=count, object_hook=count,
            ext_hook=no_ext, timestamp=1, max_str_len=limits.max_bytes, max_bin_len=limits.max_bytes,
            max_array_len=per_container, max_map_len=per_container, max_ext_len=1 << 20)
    except _TooMany:
        raise _too_large(limits, f"more than {budget:,} msgpack values") from None
    except msgpack.exceptions.StackError:
        raise HTTPException(422, "msgpack body nested too deeply") from None
    except ValueError as exc:
        if "exceeds max_" in str(exc):
            raise _too_large(limits, str(exc)) from None
        if "ext type" in str(exc):
            raise HTTPException(422, str(exc)) from None
        raise HTTPException(400, f"malformed msgpack body: {exc}") from None
    except Exception as exc:
        raise HTTPException(400, f"malformed msgpack body: {exc}") from None


async def decode_body(request: Request, limits: BodyLimits) -> Any:
    """The request body (msgpack when the content type says so, else JSON), bounded."""
    raw = await request.body()
    if len(raw) > limits.max_bytes:
        raise _too_large(limits, f"{len(raw):,} bytes")
    if not raw or raw.isspace():
        return None
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    decode = decode_msgpack if ctype in MSGPACK_TYPES else decode_json
    if len(raw) > OFF_LOOP_BYTES:
        return await asyncio.to_thread(decode, raw, limits)
    return decode(raw, limits)
