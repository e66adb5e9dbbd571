"""Exceptions raised by the client SDK, and the JSON codec it shares.

`EdgeError` derives from `RuntimeError` (and therefore `Exception`) on purpose: the original
radical.edge client raised a bare `RuntimeError` for every HTTP failure, and existing scripts
(and the rhapsody `edge` backend) catch exactly that.  The message keeps the shape users
grep their logs for: ``HTTP 404 from edge 'e1' plugin 'sysinfo': unknown session 'x'``.

The JSON helpers live here because error parsing is the first thing that needs them and
this module imports nothing but the stdlib (orjson is used when present, never required).
"""
from __future__ import annotations

import json
from typing import Any

try:  # orjson is optional: it is faster, but a laptop with only httpx must work too
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised in the "bare laptop" test
    _orjson = None

__all__ = ["EdgeError", "EdgeConnectionError", "EdgeTimeoutError", "CallOutcomeError",
           "json_loads",
           "json_dumps", "detail_from_body"]

#: longest server text quoted in an error message (HTML error pages can be huge)
MAX_DETAIL = 1000


def json_loads(raw: bytes | str) -> Any:
    """Decode JSON with orjson when available, else the stdlib."""
    if _orjson is not None:
        return _orjson.loads(raw)
    return json.loads(raw)


def json_dumps(obj: Any) -> bytes:
    """Encode JSON to bytes; falls back to the stdlib for what orjson refuses."""
    if _orjson is not None:
        try:
            return _orjson.dumps(obj, option=_orjson.OPT_NON_STR_KEYS)
        except TypeError:
            pass  # e.g. an int subclass or an object with __json__: let the stdlib try
    return json.dumps(obj, separators=(",", ":"), default=str).encode()


def detail_from_body(body: bytes | str, reason: str = "") -> str:
    """Extract a human-readable `detail` from an error response body.

    Bridges and plugins answer errors as ``{"detail": "..."}``; FastAPI validation errors
    put a list there; proxies in front of a bridge answer with HTML or plain text.  All of
    them end up as one short string.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            doc = json_loads(stripped)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            for key in ("detail", "error", "message"):
                value = doc.get(key)
                if value not in (None, ""):
                    return _shorten(value if isinstance(value, str)
                                    else json_dumps(value).decode())
        if doc is not None:
            return _shorten(json_dumps(doc).decode())
    return _shorten(stripped) or reason


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL] + "..."


def _origin(edge: str | None, plugin: str | None) -> str:
    if edge and plugin:
        return f"edge {edge!r} plugin {plugin!r}"
    if edge:
        return f"edge {edge!r}"
    if plugin:
        return f"plugin {plugin!r}"
    return "bridge"


class EdgeError(RuntimeError):
    """An error answer (status >= 400) from the bridge, an edge or a plugin.

    Attributes: `status` (HTTP status, None when no answer came), `edge`, `plugin`,
    `detail` (the server's `detail` string), and `method` / `url` of the failed call.
    """

    def __init__(self, status: int | None, detail: str = "", *, edge: str | None = None,
                 plugin: str | None = None, method: str | None = None,
                 url: str | None = None) -> None:
        self.status = status
        self.detail = detail
        self.edge = edge
        self.plugin = plugin
        self.method = method
        self.url = url
        super().__init__(self._format())

    def _format(self) -> str:
        where = _origin(self.edge, self.plugin)
        head = f"HTTP {self.status} from {where}" if self.status is not None else where
        return f"{head}: {self.detail}" if self.detail else head

    def __reduce__(self) -> tuple:  # keep keyword-only attributes across pickling
        return (_rebuild, (type(self), self.status, self.detail, self.edge, self.plugin,
                           self.method, self.url))


def _rebuild(cls: type, status: int | None, detail: str, edge: str | None,
             plugin: str | None, method: str | None, url: str | None) -> EdgeError:
    return cls(status, detail, edge=edge, plugin=plugin, method=method, url=url)


class EdgeConnectionError(EdgeError, ConnectionError):
    """The bridge could not be reached or the transport failed; `status` is None.

    Also a `ConnectionError`, so generic network-retry code keeps working.
    """

    def _format(self) -> str:
        where = _origin(self.edge, self.plugin)
        target = f" ({self.method} {self.url})" if self.url else ""
        return f"connection to {where} failed{target}: {self.detail}"


class EdgeTimeoutError(EdgeConnectionError, TimeoutError):
    """No answer within the client-side timeout (the bridge's own deadline gives a 504)."""

    def _format(self) -> str:
        where = _origin(self.edge, self.plugin)
        target = f" ({self.method} {self.url})" if self.url else ""
        return f"timeout talking to {where}{target}: {self.detail}"


class CallOutcomeError(EdgeError):
    """The bridge answered for a call that got no reply, saying what is known about it.

    `outcome` is ``"not_run"`` (it certainly did not and will not run: safe to retry) or
    ``"unknown"`` (it may have run: ask `BridgeClient.call_status(call_id)`, or retry with
    the same `Idempotency-Key`). `call_id` names the call.
    """

    def __init__(self, status: int | None, detail: str = "", *, outcome: str = "unknown",
                 call_id: str | None = None, **kw: Any) -> None:
        self.outcome = outcome
        self.call_id = call_id
        super().__init__(status, detail, **kw)

    @property
    def may_have_run(self) -> bool:
        return self.outcome != "not_run"

    def __reduce__(self) -> tuple:
        return (_rebuild_outcome, (self.status, self.detail, self.outcome, self.call_id,
                                   self.edge, self.plugin, self.method, self.url))


def _rebuild_outcome(status: int | None, detail: str, outcome: str, call_id: str | None,
                     edge: str | None, plugin: str | None, method: str | None,
                     url: str | None) -> CallOutcomeError:
    return CallOutcomeError(status, detail, outcome=outcome, call_id=call_id, edge=edge,
                            plugin=plugin, method=method, url=url)


def outcome_from_body(body: bytes) -> tuple[str, str | None] | None:
    """`(outcome, call_id)` when an error body is the bridge's answer about a call."""
    if not body or body[:1] != b"{" or b'"outcome"' not in body:
        return None
    try:
        doc = json_loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("outcome") not in ("not_run", "unknown"):
        return None
    call_id = doc.get("call_id")
    return doc["outcome"], call_id if isinstance(call_id, str) else None
