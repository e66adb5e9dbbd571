"""Streamed upload and ranged download: files of any size, never held whole in memory.

An upload is the raw request body (application/octet-stream), written at `offset` chunk by
chunk as the bridge relays it; the caller may send the body's sha256 and gets 422 (and the
file cut back to `offset`, so the chunk can simply be sent again) when it does not match.
A download is a `StreamingResponse` over the file from an offset (query `offset`/`length`
or an HTTP `Range: bytes=a-b` header, answered 206 with `Content-Range`). All file I/O runs
in threads: the edge loop only awaits.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import re
from typing import Any, AsyncIterator

from starlette.requests import Request
from starlette.responses import StreamingResponse

from . import files
from .gate import UploadGate
from .policy import StagingError

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def check_digest(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not _HEX64.match(value):
        raise StagingError("sha256 must be 64 hex digits", 400)
    return value.lower()


async def upload(request: Request, path: str, offset: int, overwrite: bool,
                 sha256: str | None, gate: UploadGate) -> dict[str, Any]:
    """Write the request body into `path` at `offset` once the chunks before it are written
    (`gate`); answer the new size and digest."""
    expected = check_digest(sha256)
    await gate.enter(path, offset)
    outcome = "refused"
    try:
        fh = await asyncio.to_thread(files.open_for_upload, path, offset, overwrite)
        outcome = "failed"
        out = await _upload(request, fh, path, offset, expected)
        outcome = "ok"
        return out
    finally:
        await asyncio.shield(gate.leave(path, offset, outcome))


async def _upload(request: Request, fh: Any, path: str, offset: int,
                  expected: str | None) -> dict[str, Any]:
    digest = hashlib.sha256()
    written = 0
    try:
        try:
            written = await _write_body(request, fh, digest)
        finally:
            await asyncio.to_thread(fh.close)
        got = digest.hexdigest()
        if expected is not None and got != expected:
            raise StagingError(f"sha256 mismatch: the body's digest is {got}, expected "
                               f"{expected}; {path} is back at {offset} bytes", 422)
    except BaseException:
        # a damaged or incomplete chunk leaves no trace: the same chunk can be sent again
        await asyncio.shield(asyncio.to_thread(files.undo_upload, path, offset))
        raise
    return {"path": path, "offset": offset, "written": written, "size": offset + written,
            "sha256": got}


async def _write_body(request: Request, fh: Any, digest: Any) -> int:
    """Copy the request body into `fh` in ~1 MiB writes, each off the loop."""
    written = 0
    pending: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if not chunk:
            continue
        digest.update(chunk)
        pending.append(chunk)
        size += len(chunk)
        if size >= files.BLOCK:
            await asyncio.to_thread(fh.write, b"".join(pending))
            written += size
            pending, size = [], 0
    if pending:
        await asyncio.to_thread(fh.write, b"".join(pending))
        written += size
    return written


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """`(start, end_exclusive)` of a single `bytes=a-b` range; None without a header."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        raise StagingError(f"unsupported Range header {header!r} (one bytes=a-b range)", 416)
    if not m.group(1):  # suffix: the last N bytes
        n = int(m.group(2))
        return max(0, size - n), size
    start = int(m.group(1))
    end = int(m.group(2)) + 1 if m.group(2) else size
    if start >= size and size > 0 or start > size:
        raise StagingError(f"range starts at {start}, beyond the file's {size} bytes", 416)
    return start, min(end, size)


async def _chunks(path: str, start: int, end: int) -> AsyncIterator[bytes]:
    fh = await asyncio.to_thread(open, path, "rb")
    try:
        await asyncio.to_thread(fh.seek, start)
        left = end - start
        while left > 0:
            block = await asyncio.to_thread(fh.read, min(files.BLOCK, left))
            if not block:
                break
            left -= len(block)
            yield block
    finally:
        await asyncio.to_thread(fh.close)


def _int_arg(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):  # '²' is a digit to isdigit(), not to int()
        raise StagingError(f"'{name}' must be a non-negative integer", 400)
    return int(raw)


async def download(request: Request, path: str) -> StreamingResponse:
    """The file (or the requested part of it) as a stream; 404 missing, 400 a directory."""
    info = await asyncio.to_thread(files.stat_path, path)
    if info["type"] != "file":
        raise StagingError(f"not a regular file: {path}", 400)
    size = int(info["size"])
    headers = {"x-file-size": str(size), "accept-ranges": "bytes",
               "content-disposition": f"attachment; filename=\"{_quoted(os.path.basename(path))}\""}
    status = 200
    rng = parse_range(request.headers.get("range"), size)
    if rng is not None:
        start, end = rng
        status = 206
        headers["content-range"] = f"bytes {start}-{max(start, end - 1)}/{size}"
    else:
        start = _int_arg(request, "offset", 0) or 0
        length = _int_arg(request, "length", None)
        if start > size:
            raise StagingError(f"offset {start} is beyond the file's {size} bytes", 416)
        end = size if length is None else min(size, start + length)
    headers["x-offset"] = str(start)
    return StreamingResponse(_chunks(path, start, end), status_code=status, headers=headers,
                             media_type="application/octet-stream")


def _quoted(name: str) -> str:
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)


def int_arg(request: Request, name: str, default: int | None) -> int | None:
    """A non-negative integer query argument (400 otherwise)."""
    return _int_arg(request, name, default)
