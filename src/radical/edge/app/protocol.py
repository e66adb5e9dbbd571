"""The wire protocol between bridges and edges.

A plugin call travels as a genuine Celery (protocol v2) task message named
`radical.edge.call` on the edge's queue; its single keyword argument `call` is a
`CallRequest`. The edge answers with a `CallReply` published on the calling bridge's reply
channel. Everything is JSON: nothing here is ever pickled.

The bridge builds the Celery message itself (`celery_message`) instead of going through
`apply_async`: kombu's publish is synchronous (~1 ms of CPU here) and would block the
bridge's event loop. A stock `app.send_task(CALL_TASK, kwargs={"call": ...})` produces a
message the edge accepts just the same (see tests/unit/test_core_logic.py).
"""
from __future__ import annotations

import base64
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

from . import keys

#: headers a plugin handler may care about; everything else (cookies, auth) stays at the bridge
FORWARDED_HEADERS = frozenset({"content-type", "accept", "user-agent", "x-request-id",
                               "range"})  # range: resumable downloads (staging)


@dataclass(slots=True)
class CallRequest:
    """One HTTP request for a plugin, as the edge will replay it."""

    id: str
    reply_to: str
    deadline: float  # epoch seconds; an edge drops the call once this has passed
    method: str
    path: str  # edge-relative: /{plugin}/{rest}
    query: str = ""
    headers: list[list[str]] = field(default_factory=list)
    body: str | None = None  # utf-8 text bodies travel as-is
    body_b64: str | None = None  # binary bodies (e.g. msgpack) travel base64-encoded
    #: {"user", "scope"} of the caller as the bridge authenticated it (None: unknown)
    identity: dict[str, str] | None = None
    sent: float = 0.0  # epoch seconds when the bridge created it
    received: float = 0.0  # set by the edge when its consumer took it (not sent back)
    #: a body above the inline threshold waits in this Redis list instead (see app/blobs.py)
    body_ref: str | None = None
    body_size: int = 0

    @classmethod
    def new(cls, *, reply_to: str, timeout: float, method: str, path: str, query: str = "",
            headers: list[list[str]] | None = None, body: bytes = b"",
            identity: dict[str, str] | None = None) -> "CallRequest":
        text, b64 = encode_body(body)
        now = time.time()
        return cls(id=uuid.uuid4().hex, reply_to=reply_to, deadline=now + timeout,
                   method=method, path=path, query=query, headers=headers or [], body=text,
                   body_b64=b64, identity=identity, sent=now)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CallRequest":
        try:
            return cls(**{k: data[k] for k in data if k in _CALL_FIELDS})
        except TypeError as exc:
            raise ValueError(f"malformed call: {exc}") from None

    def body_bytes(self) -> bytes:
        return decode_body(self.body, self.body_b64)

    def expired(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) > self.deadline


_CALL_FIELDS = frozenset(CallRequest.__dataclass_fields__)


@dataclass(slots=True)
class CallReply:
    """The edge's HTTP answer for one `CallRequest`."""

    id: str
    status: int
    headers: list[list[str]] = field(default_factory=list)
    body: str | None = None
    body_b64: str | None = None
    #: edge-side epoch timestamps [received by consumer, handler started, reply sent]
    timing: list[float] = field(default_factory=list)
    #: the body follows out of band in this Redis list (see app/blobs.py)
    body_ref: str | None = None
    #: edge-local, never on the wire: a body too big to inline (bytes or an async iterator)
    stream: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def build(cls, call_id: str, status: int, body: bytes,
              headers: list[list[str]] | None = None) -> "CallReply":
        text, b64 = encode_body(body)
        return cls(id=call_id, status=status, headers=headers or [], body=text, body_b64=b64)

    @classmethod
    def error(cls, call_id: str, status: int, detail: str) -> "CallReply":
        return cls.build(call_id, status, orjson.dumps({"detail": detail}),
                         [["content-type", "application/json"]])

    def dumps(self) -> bytes:
        data: dict[str, Any] = {"id": self.id, "status": self.status, "headers": self.headers,
                                "body": self.body, "body_b64": self.body_b64,
                                "timing": self.timing}
        if self.body_ref:
            data["body_ref"] = self.body_ref
        return orjson.dumps(data)

    @classmethod
    def loads(cls, raw: bytes | str) -> "CallReply":
        data = orjson.loads(raw)
        return cls(id=data["id"], status=int(data["status"]), headers=data.get("headers") or [],
                   body=data.get("body"), body_b64=data.get("body_b64"),
                   timing=data.get("timing") or [], body_ref=data.get("body_ref"))

    def body_bytes(self) -> bytes:
        return decode_body(self.body, self.body_b64)


def timing_parts(call: CallRequest, reply: CallReply, now: float) -> list[tuple[str, float]]:
    """Where the time of one call went, in seconds, as (part, duration) pairs.

    queue: bridge -> edge consumer; handoff: consumer thread -> plugin loop; handler: the
    plugin; reply: edge -> bridge; total: as seen by the bridge. queue and reply compare
    clocks of two hosts when bridge and edge run on different machines.
    """
    parts = [("total", now - call.sent)]
    if len(reply.timing) == 3:
        received, started, replied = reply.timing
        parts += [("queue", received - call.sent), ("handoff", started - received),
                  ("handler", replied - started), ("reply", now - replied)]
    return parts


def server_timing(parts: list[tuple[str, float]]) -> str:
    """A `Server-Timing` header value from `timing_parts` (milliseconds)."""
    return ", ".join(f"{name};dur={dur * 1000:.3f}" for name, dur in parts)


def json_object(raw: bytes | str | None) -> dict[str, Any] | None:
    """`raw` decoded as a JSON object, or None when absent, unreadable or not an object:
    records read back from Redis are data, and a damaged one must not raise."""
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def encode_body(body: bytes) -> tuple[str | None, str | None]:
    """Text stays text (cheap, readable in Redis); anything else becomes base64."""
    if not body:
        return None, None
    try:
        return body.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, base64.b64encode(body).decode("ascii")


def decode_body(text: str | None, b64: str | None) -> bytes:
    if b64:
        return base64.b64decode(b64)
    return text.encode("utf-8") if text else b""


_ORIGIN = f"bridge@{socket.gethostname()}"
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def celery_message(call: CallRequest, queue: str) -> bytes:
    """Serialize `call` as the kombu/Redis envelope of a Celery protocol-v2 task message.

    Pushed with LPUSH onto the list named `queue`, it is exactly what a Celery worker
    consuming that queue expects; `expires` lets stock Celery honour the deadline too.
    """
    body = orjson.dumps([[], {"call": asdict(call)}, _EMBED])
    expires = datetime.fromtimestamp(call.deadline, tz=timezone.utc).isoformat()
    envelope = {
        "body": body.decode("utf-8"),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py", "task": keys.CALL_TASK, "id": call.id, "shadow": None, "eta": None,
            "expires": expires, "group": None, "group_index": None, "retries": 0,
            "timelimit": [None, None], "root_id": call.id, "parent_id": None,
            "argsrepr": "()", "kwargsrepr": f"{{'call': {call.method} {call.path}}}",
            "origin": _ORIGIN, "ignore_result": True,
        },
        "properties": {
            "correlation_id": call.id, "reply_to": call.reply_to, "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0,
            "body_encoding": None, "delivery_tag": call.id,
        },
    }
    return orjson.dumps(envelope)


def call_from_task_body(body: Any) -> CallRequest:
    """Extract the `CallRequest` from a decoded or raw protocol-v2 task body."""
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        body = orjson.loads(bytes(body) if not isinstance(body, str) else body)
    try:
        _args, kwargs, _embed = body
        return CallRequest.from_dict(kwargs["call"])
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"not a radical.edge call message: {exc}") from None
