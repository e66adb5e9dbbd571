"""`Idempotency-Key` on mutating calls: a retried request never runs twice.

The first request with a key (per edge, method, path and query) claims it in Redis with its
call id; a retry with the same key does not send a new call but waits for the first one's
outcome record (`app.call_record`) and answers with its stored reply. If the first call
certainly did not run (`not_delivered`), the retry takes the key over and runs. Keys live
`idempotency_ttl` seconds; like every record they are as durable as the Redis holding them.
"""
from __future__ import annotations

import asyncio
import hashlib
import re

from redis.exceptions import RedisError

from ..app import call_record, keys
from ..app.protocol import CallReply, CallRequest
from .dispatcher import NOT_RUN, UNKNOWN, BridgeError
from .state import BridgeState

HEADER = "idempotency-key"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
POLL = 0.1
#: how long a claimed key may lack its call's record (claim and record are two writes)
RECORD_GRACE = 2.0

#: claim the key for ARGV[1] unless taken; returns the current holder (nil if we claimed it)
_CLAIM = ("local prev = redis.call('GET', KEYS[1]) if prev then return prev end "
          "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return false")
#: hand the key from ARGV[1] to ARGV[2]; 1 if done
_TAKEOVER = ("if redis.call('GET', KEYS[1]) == ARGV[1] then "
             "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0")
#: drop the key if ARGV[1] still holds it (its call certainly did not run)
_RELEASE = ("if redis.call('GET', KEYS[1]) == ARGV[1] then "
            "return redis.call('DEL', KEYS[1]) end return 0")


def key_name(edge: str, call: CallRequest, key: str) -> str:
    if not KEY_RE.match(key):
        raise BridgeError(400, "Idempotency-Key must be 1 to 255 printable ASCII characters")
    digest = hashlib.sha256("\n".join((edge, call.method, call.path, call.query, key))
                            .encode("utf-8", "surrogateescape")).hexdigest()
    return keys.idempotency(digest)


async def idempotent_call(state: BridgeState, edge: str, call: CallRequest, timeout: float,
                          key: str) -> CallReply:
    """Run `call` unless a call with the same key ran or runs; then answer with its reply."""
    name = key_name(edge, call, key)
    cmds = state.dispatcher.commands
    ttl = str(int(state.settings.idempotency_ttl * 1000))
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + timeout
    try:
        holder = await cmds.call("EVAL", _CLAIM, 1, name, call.id, ttl)
    except (RedisError, OSError) as exc:
        raise BridgeError(503, f"broker unavailable, call not sent: {exc}", NOT_RUN,
                          call.id) from None
    while holder is not None:
        first = holder.decode() if isinstance(holder, bytes) else str(holder)
        try:
            record = call_record.decode(await cmds.call("GET", keys.call_record(first)), first)
        except (RedisError, OSError) as exc:
            raise BridgeError(502, f"broker unavailable while reading the outcome of call "
                                   f"{first}: {exc}", UNKNOWN, first) from None
        if record is None and loop.time() - started < RECORD_GRACE:
            await asyncio.sleep(POLL)  # the first call's `queued` record is on its way
            continue
        if record is None:
            raise BridgeError(502, f"the first call with this Idempotency-Key ({first}) has no "
                                   "outcome record any more; it may have run", UNKNOWN, first)
        if record["state"] == call_record.DONE:
            return replayed(first, record)
        if record["state"] == call_record.NOT_DELIVERED:
            if await cmds.call("EVAL", _TAKEOVER, 1, name, first, call.id, ttl) == 1:
                break  # the first never ran: this one runs under the key
            holder = await cmds.call("GET", name)
            continue
        if loop.time() >= deadline:
            raise BridgeError(504, f"the first call with this Idempotency-Key ({first}) is "
                                   f"still {record['state']}", UNKNOWN, first)
        await asyncio.sleep(POLL)
    try:
        return await state.dispatcher.call(edge, call, timeout)
    except BridgeError as exc:
        if exc.outcome == NOT_RUN:  # let a retry run it
            try:
                await cmds.call("EVAL", _RELEASE, 1, name, call.id)
            except (RedisError, OSError):
                pass
        raise


def replayed(call_id: str, record: dict) -> CallReply:
    """The first call's reply, as stored in its outcome record."""
    stored = record.get("reply")
    if stored is None:
        return CallReply.error(call_id, int(record["status"]), record.get("note", ""))
    reply = CallReply(id=call_id, status=int(stored["status"]),
                      headers=list(stored.get("headers") or []), body=stored.get("body"),
                      body_b64=stored.get("body_b64"))
    reply.headers.append(["idempotent-replay", call_id])
    return reply
