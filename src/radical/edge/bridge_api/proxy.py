"""`/{edge}/{plugin}/{path}`: relay any HTTP call to a plugin on an edge and back.

The bridge answers by itself only when it must: a malformed path (400), an unknown edge or
plugin (404), a body too large (413), an edge that is not connected or is lost mid-call
(503), no answer before the deadline (504). Everything else is the plugin's own answer.
"""
from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..app.protocol import FORWARDED_HEADERS, CallRequest
from .dispatcher import BridgeError
from .state import BridgeState

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
TIMEOUT_HEADER = "x-radical-timeout"
HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


def error(status: int, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def check_path(raw_path: bytes, path: str) -> str | None:
    """Why `path` is refused, or None: no traversal, encoded slashes, NULs or bad names."""
    lowered = raw_path.lower()
    if b"%2f" in lowered or b"%5c" in lowered or b"%00" in lowered or "\x00" in path:
        return "encoded slashes, backslashes and NUL bytes are not allowed in paths"
    parts = path.split("/")
    if any(p in ("..", ".") for p in parts):
        return "'.' and '..' path segments are not allowed"
    return None


def call_timeout(request: Request, state: BridgeState) -> float:
    raw = request.headers.get(TIMEOUT_HEADER)
    if raw is None:
        return state.settings.call_timeout
    try:
        value = float(raw)
    except ValueError:
        raise BridgeError(400, f"{TIMEOUT_HEADER} must be a number of seconds, not {raw!r}")
    if not 0 < value <= state.settings.max_call_timeout:
        raise BridgeError(400, f"{TIMEOUT_HEADER} must be in (0, "
                               f"{state.settings.max_call_timeout:g}] seconds")
    return value


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BridgeError(400, "invalid Content-Length")
        if int(declared) > limit:
            raise BridgeError(413, f"request body of {declared} bytes exceeds the limit of "
                                   f"{limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BridgeError(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def resolve(state: BridgeState, edge: str, plugin: str) -> None:
    """Raise the bridge's own 404/503 unless `edge` is alive and has `plugin`."""
    if not NAME_RE.match(edge):
        raise BridgeError(404, f"unknown edge '{edge[:128]}'")
    where = state.watcher.state_of(edge)
    if where == "unknown":
        raise BridgeError(404, f"unknown edge '{edge}'")
    if where == "gone":
        raise BridgeError(503, f"edge '{edge}' is not connected")
    info = state.watcher.edges[edge]
    if plugin not in info.get("plugins", {}):
        raise BridgeError(404, f"edge '{edge}' has no plugin '{plugin[:128]}'")


async def proxy(request: Request) -> Response:
    state: BridgeState = request.app.state.bridge
    path = request.scope["path"]
    try:
        refused = check_path(request.scope.get("raw_path") or path.encode(), path)
        if refused:
            raise BridgeError(400, refused)
        edge = request.path_params["edge"]
        plugin = request.path_params["plugin"]
        resolve(state, edge, plugin)
        timeout = call_timeout(request, state)
        body = await read_body(request, state.settings.max_body_bytes)
        headers = [[k, v] for k, v in request.headers.items() if k in FORWARDED_HEADERS]
        call = CallRequest.new(
            reply_to=state.dispatcher.reply_channel, timeout=timeout, method=request.method,
            path=f"/{plugin}/{request.path_params.get('rest', '')}",
            query=request.scope.get("query_string", b"").decode("latin-1"),
            headers=headers, body=body, auth=bool(request.scope.get("auth_ok")))
        reply = await state.dispatcher.call(edge, call, timeout)
    except BridgeError as exc:
        return error(exc.status, exc.detail)
    out_headers = {k: v for k, v in reply.headers if k.lower() not in HOP_HEADERS}
    return Response(reply.body_bytes(), status_code=reply.status, headers=out_headers)
