"""The outcome record of one plugin call, kept in Redis so a caller can learn it later.

Why: when the bridge cannot know whether a call ran (the edge was lost mid-call, Redis went
away, the deadline passed after delivery) it answers `"outcome": "unknown"` with the call id,
and `GET /calls/{id}` reads this record. Writers, in order:

- bridge, with its LPUSH (same write):      `queued`
- bridge, after a successful LREM:          `not_delivered` (certainly never runs)
- edge, dropping an expired/refused call:   `not_delivered`
- edge, right before the handler:           `running`
- edge, with its reply PUBLISH (same write): `done`, with the reply (or status + a note when
  the reply is larger than `call_record_max_bytes`)

Each record is one JSON string (a single SET), expiring `retention` seconds after the call's
deadline.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import orjson

from . import keys
from .protocol import CallReply, json_object

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
NOT_DELIVERED = "not_delivered"
STATES = frozenset({QUEUED, RUNNING, DONE, NOT_DELIVERED})


def ttl_ms(deadline: float, retention: float, now: float | None = None) -> int:
    """Milliseconds the record lives: until `retention` after the deadline (at least 1 s)."""
    now = time.time() if now is None else now
    return max(1000, int((deadline - now + retention) * 1000))


def encode(state: str, edge: str = "", note: str | None = None,
           reply: CallReply | None = None, max_bytes: int = 0) -> bytes:
    """One record; a done record carries the reply unless it is larger than `max_bytes`."""
    out: dict[str, Any] = {"state": state, "edge": edge, "at": time.time()}
    if note:
        out["note"] = note
    if reply is not None:
        out["status"] = reply.status
        size = len(reply.body or "") + len(reply.body_b64 or "")
        if reply.stream is not None or reply.body_ref:
            out["note"] = ("reply body sent out of band (large or streamed), not kept; "
                           "the call ran and answered with this status")
        elif size <= max_bytes:
            data = asdict(reply)
            for internal in ("timing", "id", "stream", "body_ref"):
                data.pop(internal, None)
            out["reply"] = data
        else:
            out["note"] = (f"reply of {size} bytes not kept (limit {max_bytes}); "
                           "the call ran and answered with this status")
    return orjson.dumps(out)


def set_command(call_id: str, record: bytes, ttl: int) -> tuple:
    """The Redis command that stores `record` (for pipelining with other commands)."""
    return ("SET", keys.call_record(call_id), record, "PX", ttl)


def decode(raw: bytes | str | None, call_id: str) -> dict[str, Any] | None:
    """The record as the API shows it, or None when there is none (or it is unreadable)."""
    data = json_object(raw)
    if data is None or data.get("state") not in STATES:
        return None
    data["call_id"] = call_id
    data.setdefault("status", None)
    return data
