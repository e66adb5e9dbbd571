"""The notification stream's bookkeeping, shared by the edges that write it and the bridges
that read it: event ids, the stream epoch, readers' positions and retention trimming.

Why each piece exists:
- *Event ids* are ``<stream id>:<epoch>``.  A stream id alone cannot tell whether a client's
  ``Last-Event-ID`` belongs to the stream Redis holds now: after Redis lost its data the new
  stream reuses the same id space.  The epoch (a random tag kept next to the stream, created
  by whoever finds it missing) changes exactly then, so a stale id is recognised as a gap.
- *Readers*: every bridge records, every half second, the oldest position any of its SSE
  clients still needs (`READERS` hash, field = bridge id).  Trimming never removes entries a
  live reader has not delivered yet, so a burst cannot be trimmed before it was read.
- *Retention* is by size (keep the newest `maxlen`) and by time (drop entries older than
  `retention` seconds), both bounded below by the slowest live reader; past `hard_maxlen`
  entries the stream is trimmed anyway (readers then get an explicit gap, never silence).
"""
from __future__ import annotations

import secrets
from typing import Any

import redis.asyncio as aioredis

from . import keys

StreamId = tuple[int, int]

#: a reader record older than this (ms) belongs to a dead bridge and protects nothing
READER_STALE_MS = 10_000


def parse_sid(raw: Any) -> StreamId:
    """A stream id (bytes or str, ``ms-seq``) as a comparable tuple; ValueError on garbage."""
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    ms, _, seq = text.partition("-")
    if not ms.isdigit() or (seq and not seq.isdigit()):
        raise ValueError(f"bad stream id {text[:64]!r}")
    return int(ms), int(seq or 0)


def fmt_sid(sid: StreamId) -> str:
    return f"{sid[0]}-{sid[1]}"


def event_id(sid: StreamId, epoch: str) -> str:
    """The SSE id of stream entry `sid` in stream epoch `epoch`."""
    return f"{sid[0]}-{sid[1]}:{epoch}"


def parse_event_id(value: str) -> tuple[StreamId, str | None]:
    """(stream id, epoch or None for a bare stream id); ValueError on garbage."""
    sid, _, epoch = value.strip().partition(":")
    return parse_sid(sid), (epoch or None)


async def ensure_epoch(redis: aioredis.Redis) -> str:
    """The stream's epoch, creating one if Redis has none (fresh or data lost)."""
    pipe = redis.pipeline(transaction=True)
    pipe.set(keys.NOTIFICATIONS_EPOCH, secrets.token_hex(4), nx=True)
    pipe.get(keys.NOTIFICATIONS_EPOCH)
    _, epoch = await pipe.execute()
    return epoch.decode() if isinstance(epoch, bytes) else str(epoch)


async def last_generated(redis: aioredis.Redis) -> StreamId:
    """The stream's last generated id; 0-0 if there is no stream."""
    try:
        info = await redis.xinfo_stream(keys.NOTIFICATIONS)
    except aioredis.ResponseError:  # no such key
        return (0, 0)
    return last_of(info)


def last_of(info: dict) -> StreamId:
    return parse_sid(info.get("last-generated-id", info.get(b"last-generated-id", b"0-0")))


async def record_reader(redis: aioredis.Redis, bridge_id: str, oldest: StreamId) -> None:
    """Say that this bridge still needs every entry after `oldest` (server clock)."""
    await redis.register_script(_RECORD)(keys=[keys.NOTIFICATIONS_READERS],
                                         args=[bridge_id, fmt_sid(oldest)])


async def forget_reader(redis: aioredis.Redis, bridge_id: str) -> None:
    await redis.hdel(keys.NOTIFICATIONS_READERS, bridge_id)


_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. now)
return now
"""

#: KEYS: stream, readers, trimmed marker.  ARGV: maxlen, hard_maxlen, retention_ms, stale_ms.
#: Returns {length after trimming, 1 if live readers held trimming back else 0}.
TRIM_SCRIPT = """
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if not ms then return nil end
  return {tonumber(ms), tonumber(seq)}
end
local function less(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end
local maxlen, hard = tonumber(ARGV[1]), tonumber(ARGV[2])
local retention, stale = tonumber(ARGV[3]), tonumber(ARGV[4])
local len = redis.call('XLEN', KEYS[1])
if len == 0 then return {0, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- wanted: the first id to keep, by size and by time (the later of the two)
local want = {0, 0}
if retention > 0 then want = {now - retention, 0} end
if len > maxlen then
  local n = math.min(len - maxlen + 1, 10000)
  local e = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', n)
  local first = parse(e[#e][1])
  if less(want, first) then want = first end
end
if want[1] == 0 and want[2] == 0 then return {len, 0} end
-- bounded by the slowest live reader (it has delivered up to and including its id)
local held = 0
if len <= hard then
  local r = redis.call('HGETALL', KEYS[2])
  for i = 1, #r, 2 do
    local pos, ts = string.match(r[i + 1], '^(%S+) (%d+)$')
    local p = pos and parse(pos)
    if not p or now - tonumber(ts) > stale then
      redis.call('HDEL', KEYS[2], r[i])
    else
      local nxt = {p[1], p[2] + 1}
      if less(nxt, want) then want = nxt; held = 1 end
    end
  end
end
-- remember the newest entry removed: XINFO's max-deleted-entry-id ignores trimming
local minid = string.format('%d-%d', want[1], want[2])
local gone = redis.call('XREVRANGE', KEYS[1], '(' .. minid, '-', 'COUNT', 1)
if #gone > 0 then
  redis.call('XTRIM', KEYS[1], 'MINID', minid)
  local cur = redis.call('GET', KEYS[3])
  local cur_id = cur and parse(cur)
  if not cur_id or less(cur_id, parse(gone[1][1])) then redis.call('SET', KEYS[3], gone[1][1]) end
end
return {redis.call('XLEN', KEYS[1]), held}
"""


def trim_args(maxlen: int, hard_maxlen: int, retention_s: float,
              stale_ms: int = READER_STALE_MS) -> dict[str, list]:
    """`keys`/`args` of TRIM_SCRIPT for these retention settings."""
    return {"keys": [keys.NOTIFICATIONS, keys.NOTIFICATIONS_READERS, keys.NOTIFICATIONS_TRIMMED],
            "args": [maxlen, max(hard_maxlen, maxlen), int(retention_s * 1000), stale_ms]}


async def trim(redis: aioredis.Redis, maxlen: int, hard_maxlen: int, retention_s: float,
               stale_ms: int = READER_STALE_MS) -> tuple[int, bool]:
    """Apply retention; returns (stream length, whether live readers held trimming back)."""
    length, held = await redis.register_script(TRIM_SCRIPT)(
        **trim_args(maxlen, hard_maxlen, retention_s, stale_ms))
    return int(length), bool(held)
