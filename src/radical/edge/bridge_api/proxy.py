"""`/{edge}/{plugin}/{path}`: relay any HTTP call to a plugin on an edge and back.

The bridge answers by itself only when it must: a malformed path (400), an unknown edge or
plugin (404), a body too large (413), an edge that is not connected or is lost mid-call
(503), no answer before the deadline (504). Everything else is the plugin's own answer.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson

from .. import constants
from ..app import keys
from ..app.identity import ANONYMOUS, Identity
from ..app.blobs import abandon
from ..app.protocol import FORWARDED_HEADERS, CallRequest, server_timing, timing_parts
from . import work
from .bodies import BodyAborted, receive_body, send_blob_reply
from .dispatcher import NOT_RUN, UNKNOWN, BridgeError, stopping_cancel
from .envelope import error_bytes
from .idempotency import HEADER as IDEMPOTENCY_HEADER
from .idempotency import MUTATING, idempotent_call
from .metrics import UNRESOLVED
from .state import BridgeState

TIMEOUT_HEADER = constants.TIMEOUT_HEADER.lower()  # ASGI header names are lower case
CALL_ID_HEADER = b"x-radical-call-id"
HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive",
                         "content-security-policy", "x-content-type-options"})
#: plugin content is served on the portal's origin: it must never run script there
SANDBOX_HEADERS = [(b"x-content-type-options", b"nosniff"),
                   (b"content-security-policy", b"sandbox; default-src 'none'")]

log = logging.getLogger(__name__)


def check_path(raw_path: bytes, path: str) -> str | None:
    """Why `path` is refused, or None: no traversal, encoded slashes, NULs or bad names."""
    lowered = raw_path.lower()
    if b"%2f" in lowered or b"%5c" in lowered or b"%00" in lowered or "\x00" in path:
        return "encoded slashes, backslashes and NUL bytes are not allowed in paths"
    parts = path.split("/")
    if any(p in ("..", ".") for p in parts):
        return "'.' and '..' path segments are not allowed"
    return None


def call_timeout(raw: str | None, state: BridgeState) -> float:
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


def resolve(state: BridgeState, edge: str, plugin: str) -> None:
    """Raise the bridge's own 404/503 unless `edge` is alive and has `plugin`."""
    if not keys.EDGE_NAME_RE.match(edge):
        raise BridgeError(404, f"unknown edge '{edge[:128]}'")
    where = state.watcher.state_of(edge)
    if where == "unknown":
        raise BridgeError(404, f"unknown edge '{edge}'")
    if where == "gone":
        raise BridgeError(503, f"edge '{edge}' is not connected", "not_run")
    info = state.watcher.edges[edge]
    if plugin not in info.get("plugins", {}):
        raise BridgeError(404, f"edge '{edge}' has no plugin '{plugin[:128]}'")


def is_proxy_path(path: str) -> bool:
    """True for `/{edge}/{plugin}[/...]` paths (management routes use reserved names)."""
    first, _, rest = path[1:].partition("/")
    return bool(first and rest) and first not in keys.RESERVED_EDGE_NAMES


async def proxy(state: BridgeState, scope: dict, receive: Any, send: Any) -> None:
    """Raw ASGI handler of the proxy route: the hot path skips routing and middleware."""
    path: str = scope["path"]
    began = time.time()
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    edge = plugin = UNRESOLVED  # metric labels: only names the bridge knows
    parts = None
    dispatched = relaying = False
    try:
        refused = check_path(scope.get("raw_path") or path.encode(), path)
        if refused:
            raise BridgeError(400, refused)
        want_edge, _, rest = path[1:].partition("/")
        want_plugin, _, sub = rest.partition("/")
        resolve(state, want_edge, want_plugin)
        edge, plugin = want_edge, want_plugin
        timeout = call_timeout(headers.get(TIMEOUT_HEADER), state)
        body = await receive_body(state.redis, state.settings, headers, receive, timeout)
        call = CallRequest.new(
            reply_to=state.dispatcher.reply_channel, timeout=timeout, method=scope["method"],
            path=f"/{plugin}/{sub}", query=scope.get("query_string", b"").decode("latin-1"),
            headers=[[k, v] for k, v in headers.items() if k in FORWARDED_HEADERS],
            body=body.data, identity=wire_identity(scope.get("identity")))
        call.body_ref, call.body_size = body.ref, body.size
        idem = headers.get(IDEMPOTENCY_HEADER)
        dispatched = True
        try:
            if idem is not None and call.method in MUTATING:
                reply = await idempotent_call(state, edge, call, timeout, idem)
            else:
                reply = await state.dispatcher.call(edge, call, timeout)
        except BridgeError as exc:
            if body.ref and exc.status == 503:  # the call will never run: free its body now
                await abandon(state.redis, body.ref)
            raise
        status, body_out = reply.status, reply.body_bytes()
        submit = submit_kind(state, edge, plugin, sub) if (
            status < 300 and call.method == "POST") else None
        if submit and not reply.body_ref:
            record_work(state, submit, edge, plugin, sub, scope.get("identity"), body.data,
                        headers.get("content-type", ""), body_out, began)
        out = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers
               if k.lower() not in HOP_HEADERS]
        parts = timing_parts(call, reply, time.time())
        out.append((b"server-timing", server_timing(parts).encode()))
        out.append((CALL_ID_HEADER, reply.id.encode()))
        if reply.body_ref:  # a big body follows out of band: relay it as it comes
            length = [v for k, v in reply.headers if k.lower() == "content-length"]
            if length:
                out.append((b"content-length", length[0].encode("latin-1")))
            out += SANDBOX_HEADERS
            state.metrics.call_done(edge, plugin, status, parts)
            relaying = True
            whole = await send_blob_reply(state.redis, reply.body_ref, call.deadline, status,
                                          out, send, receive, WORK_REPLY_MAX if submit else 0)
            if submit and whole is None:
                log.info("work index: the reply of %s/%s/%s was over %d bytes or not relayed "
                         "whole; its items are not indexed", edge, plugin, sub, WORK_REPLY_MAX)
            elif submit:  # e.g. ~5,000+ rhapsody tasks in one submit: the reply came by blob
                record_work(state, submit, edge, plugin, sub, scope.get("identity"),
                            body.data, headers.get("content-type", ""), whole, began)
            return
    except BridgeError as exc:
        status, body_out = exc.status, orjson.dumps(exc.body())
        out = [(b"content-type", b"application/json")]
    except BodyAborted:
        raise
    except asyncio.CancelledError:  # the server is stopping (its graceful timeout is over)
        if relaying:
            raise
        stopping_cancel()
        exc = (BridgeError(502, "the bridge stopped while the call was in progress; its "
                                f"outcome is unknown: GET /calls/{call.id}", UNKNOWN, call.id)
               if dispatched else
               BridgeError(503, "the bridge is stopping; the call was not sent", NOT_RUN))
        status, body_out = exc.status, orjson.dumps(exc.body())
        out = [(b"content-type", b"application/json")]
    except Exception as exc:  # a bridge bug: answer, log, keep serving
        log.exception("proxy failed for %s %s", scope.get("method"), path)
        status = 500
        body_out = error_bytes(500, f"bridge error: {type(exc).__name__}")
        out = [(b"content-type", b"application/json")]
    state.metrics.call_done(edge, plugin, status, parts)
    out += SANDBOX_HEADERS
    out.append((b"content-length", str(len(body_out)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body_out})


#: the biggest out-of-band submit reply the bridge keeps to index (~80,000 rhapsody tasks):
#: parsing it costs the bridge's loop ~0.1 s; bigger submits are relayed, not indexed
WORK_REPLY_MAX = 4 << 20


def submit_kind(state: BridgeState, edge: str, plugin: str, sub: str) -> str | None:
    """The plugin type ("psij", "rhapsody") when `sub` is one of its submit routes."""
    kind = (state.watcher.edges.get(edge, {}).get("plugins", {}).get(plugin) or {}).get("type")
    verb, _, sid = sub.partition("/")
    if verb not in work.SUBMIT_PATHS.get(kind, ()) or not sid or "/" in sid:
        return None
    return kind


def record_work(state: BridgeState, kind: str, edge: str, plugin: str, sub: str,
                who: Identity | None, request: bytes | None, ctype: str,
                reply: bytes, began: float) -> None:
    """Queue a successful psij/rhapsody submission for its caller's work index
    (bridge_api/work.py); trouble is logged, never turned into a failed call that did run."""
    sid = sub.partition("/")[2]
    try:
        state.work.record_submit((who or ANONYMOUS).user, edge, plugin, kind, sid,
                                 work.decode_body(request, ctype), orjson.loads(reply), began)
    except Exception as exc:  # noqa: BLE001 - the call succeeded; only the index missed it
        log.warning("work index: could not record %s/%s/%s: %s", edge, plugin, sub, exc)


def wire_identity(who: Identity | None) -> dict[str, str] | None:
    return who.to_wire() if who is not None else None
