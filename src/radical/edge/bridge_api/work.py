"""The work index: every identity's psij jobs and rhapsody tasks, across edges and sessions.

Why on the bridge: every submission passes through it with the caller's identity, and every
state change reaches it as a notification. Recording here needs no new Redis right for
edges (an edge could otherwise write into any user's index; see app/acl.py), and the index
survives page reloads and bridge restarts because it lives in Redis:

- `record_submit` runs after a successful psij `submit`/`submit_tunneled` or rhapsody
  `submit` reply and writes one hash per job/task (`keys.work_item`) plus its member in the
  owner's sorted set (`keys.work_index`, score = submit time).
- `run` follows the notification stream from a cursor kept in Redis (`keys.WORK_CURSOR`),
  so state changes that happened while no bridge was up are applied after a restart, as
  long as the stream still holds them. A notification may overtake the submit reply (a
  quick local job); its state is written anyway and the submit keeps it. Of an entry that
  carries a state digest (`keys.STATES_FIELD`, app/state_digest.py: rhapsody task states)
  only the digest is read; others (psij jobs, older edges) are decoded in full.

Times are the stream entries' own (ms since the epoch), so several bridges applying the
same entry write the same values.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..app import keys
from ..app.event_stream import fmt_sid, last_generated, parse_sid
from ..app.retry import Backoff
from ..constants import JOB_FINAL_STATES, TASK_TERMINAL_STATES
from .work_states import TOPICS, StateReader, member

log = logging.getLogger(__name__)

#: plugin types whose submissions are indexed, and the paths (first segment) that submit
SUBMIT_PATHS = {"psij": ("submit", "submit_tunneled"), "rhapsody": ("submit",)}
FINAL = JOB_FINAL_STATES | TASK_TERMINAL_STATES
RUNNING = frozenset({"ACTIVE", "RUNNING"})
#: a state seen before its submit was recorded is kept this long waiting for its owner
ORPHAN_TTL = 3600
#: most notification entries read per round
READ_COUNT = 2000
#: most submissions queued for writing (Redis down for long): beyond it new ones are dropped
MAX_PENDING = 100_000
#: pause after a round that found entries (they gather meanwhile)
GATHER_SECONDS = 0.25

# Both scripts take their items as ONE JSON argument (decoded by cjson inside Redis) and
# build the item keys from their members: a 4,096-task submit is then one short command to
# pack instead of ~16k arguments, which cost the bridge more CPU than the calls themselves
# (bench/RESULTS.md, "work index").
_ITEM_PREFIX = keys.work_item("")

# Few Redis calls per item: inside these scripts each call costs about as much as a whole
# command, and at batch 4,096 the scripts were the index's largest cost (bench/RESULTS.md,
# "state digest").

# ARGV: ttl, JSON [[member, state, time, exit_code ("" = none)], ...]
# An item is done once a final state was applied (its end time is set): a submit reply may
# already say DONE (a task that finished inline) and the item still needs its end and code.
_UPDATE = """
local ttl = tonumber(ARGV[1])
local final = {COMPLETED=1, FAILED=1, CANCELED=1, DONE=1}
local items = cjson.decode(ARGV[2])
for _, it in ipairs(items) do
  local key, state, t, code = '%s' .. it[1], it[2], it[3], it[4]
  local have = redis.call('HMGET', key, 'ended', 'user')
  if not have[1] then
    if final[state] then
      if code ~= '' then
        redis.call('HSET', key, 'state', state, 'ended', t, 'exit_code', code)
      else
        redis.call('HSET', key, 'state', state, 'ended', t)
      end
    else
      redis.call('HSET', key, 'state', state)
      if state == 'ACTIVE' or state == 'RUNNING' then redis.call('HSETNX', key, 'started', t) end
    end
    redis.call('EXPIRE', key, have[2] and ttl or math.min(ttl, %d))
  end
end
return #items
""" % (_ITEM_PREFIX, ORPHAN_TTL)

# KEYS: the owner's index; ARGV: ttl, max items, JSON [[member, state, submit time,
# {field: value}], ...]
_SUBMIT = """
local ttl, cap = tonumber(ARGV[1]), tonumber(ARGV[2])
local items = cjson.decode(ARGV[3])
local scores = {}
for _, it in ipairs(items) do
  local key, fields = '%s' .. it[1], {}
  for k, v in pairs(it[4]) do
    fields[#fields + 1] = k
    fields[#fields + 1] = v
  end
  if redis.call('EXISTS', key) == 0 then
    fields[#fields + 1] = 'state'
    fields[#fields + 1] = it[2]
    fields[#fields + 1] = 'submitted'
    fields[#fields + 1] = it[3]
    redis.call('HSET', key, unpack(fields))
  else  -- a state seen before the submit was recorded: keep it
    if #fields > 0 then redis.call('HSET', key, unpack(fields)) end
    redis.call('HSETNX', key, 'state', it[2])
    redis.call('HSETNX', key, 'submitted', it[3])
  end
  redis.call('EXPIRE', key, ttl)
  scores[#scores + 1] = it[3]
  scores[#scores + 1] = it[1]
end
if #scores > 0 then redis.call('ZADD', KEYS[1], unpack(scores)) end
local excess = redis.call('ZCARD', KEYS[1]) - cap
if excess > 0 then
  local old = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
  for _, m in ipairs(old) do redis.call('DEL', '%s' .. m) end
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
end
redis.call('EXPIRE', KEYS[1], ttl)
return #items
""" % (_ITEM_PREFIX, _ITEM_PREFIX)
#: items per script call: bounded, so Redis stays responsive to everyone else
SCRIPT_CHUNK = 1000


def _text(value: Any, limit: int = 400) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value)
    return str(value)[:limit]


def psij_fields(request: Any, reply: dict) -> dict[str, str]:
    """What the index keeps of a psij submission (request body and reply)."""
    spec = request.get("job_spec") if isinstance(request, dict) else None
    spec = spec if isinstance(spec, dict) else {}
    attrs = spec.get("attributes") if isinstance(spec.get("attributes"), dict) else {}
    res = spec.get("resources") if isinstance(spec.get("resources"), dict) else {}
    name = " ".join(filter(None, [_text(spec.get("executable")), _text(spec.get("arguments"))]))
    return {k: v for k, v in {
        "name": name[:400], "native_id": _text(reply.get("native_id")),
        "executor": _text(reply.get("executor") or (request or {}).get("executor")),
        "directory": _text(spec.get("directory") or reply.get("directory")),
        "queue": _text(attrs.get("queue_name") or spec.get("queue_name")),
        "account": _text(attrs.get("account") or attrs.get("project_name")
                         or spec.get("account")),
        "nodes": _text(res.get("node_count") or spec.get("node_count")),
        "edge_name": _text(reply.get("edge_name")),
        "stdout_path": _text(reply.get("stdout_path")),
        "stderr_path": _text(reply.get("stderr_path")),
    }.items() if v}


def decode_body(data: bytes | None, ctype: str) -> Any:
    """A submit request body (JSON, or msgpack for rhapsody), or None when unreadable or
    sent out of band (big bodies: the index then keeps only what the reply says)."""
    if not data:
        return None
    try:
        if "msgpack" in ctype:
            import msgpack

            return msgpack.unpackb(data, raw=False, strict_map_key=False)
        return orjson.loads(data)
    except Exception:  # noqa: BLE001 - any malformed body: the edge already judged it
        return None


def task_name(task: Any) -> str:
    """A short label of a rhapsody task dict (its function or command)."""
    if not isinstance(task, dict):
        return ""
    for key in ("name", "function", "executable", "command"):
        if task.get(key):
            args = task.get("arguments") if key in ("executable", "command") else None
            return _text([task[key], *(args or [])] if isinstance(args, list) else task[key])
    return ""


class WorkIndex:
    """Writes and reads the work index (see the module doc)."""

    def __init__(self, redis: aioredis.Redis, retention: float, max_items: int,
                 tasks: bool = True) -> None:
        self.redis = redis
        self.tasks = tasks  # index rhapsody tasks too (settings.work_index_tasks)
        self._states = StateReader(
            frozenset(t for t in TOPICS if tasks or not t.startswith("task_")))
        self.ttl = max(int(retention), 60)
        self.max_items = max(int(max_items), 1)
        self._update = redis.register_script(_UPDATE)
        self._submit = redis.register_script(_SUBMIT)
        #: user -> [(member, state, submit time, {field: value})]
        self._pending: dict[str, list[tuple[str, str, str, dict[str, str]]]] = {}
        self._wanted = asyncio.Event()
        self.applied = 0  # notifications applied (tests and logs)

    # -- submissions ----------------------------------------------------------------------
    def record_submit(self, user: str, edge: str, plugin: str, kind: str, sid: str,
                      request: Any, reply: Any, began: float | None = None) -> int:
        """Queue the jobs/tasks a successful submit reply names for the index; returns how
        many. Written behind (`run_writer`), so the caller's reply never waits for Redis and
        submissions arriving together share one script. `began`: when the bridge received
        the call (the submit time: a job may start, even end, before its reply is back)."""
        items: list[tuple[str, str, dict[str, str]]] = []
        base = {"user": user, "kind": kind, "edge": edge, "plugin": plugin, "sid": sid}
        if kind == "psij" and isinstance(reply, dict) and reply.get("job_id"):
            uid = str(reply["job_id"])
            items.append((uid, _text(reply.get("state")) or "NEW",
                          {**base, "id": uid, **psij_fields(request, reply)}))
        elif kind == "rhapsody" and self.tasks and isinstance(reply, list):
            tasks = request.get("tasks") if isinstance(request, dict) else None
            tasks = tasks if isinstance(tasks, list) and len(tasks) == len(reply) else []
            for i, answer in enumerate(reply):
                if isinstance(answer, dict) and answer.get("uid"):
                    uid = str(answer["uid"])
                    name = task_name(tasks[i]) if tasks else ""
                    fields = {**base, "id": uid, **({"name": name} if name else {})}
                    items.append((uid, _text(answer.get("state")) or "NEW", fields))
        if items and sum(map(len, self._pending.values())) + len(items) > MAX_PENDING:
            log.warning("work index: %d submissions queued (Redis unreachable?); %d of %s "
                        "not indexed", MAX_PENDING, len(items), user)
            return 0
        if items:
            when = f"{began or time.time():.3f}"
            queue = self._pending.setdefault(user, [])
            queue += [(member(edge, plugin, uid), state, when, fields)
                      for uid, state, fields in items]
            self._wanted.set()
        return len(items)

    async def flush(self) -> None:
        """Write what is queued (the writer does this continuously; stop() once more)."""
        pending, self._pending = self._pending, {}
        for user, items in pending.items():
            for start in range(0, len(items), SCRIPT_CHUNK):
                await self._submit(keys=[keys.work_index(user)],
                                   args=[self.ttl, self.max_items,
                                         orjson.dumps(items[start:start + SCRIPT_CHUNK])])

    async def run_writer(self) -> None:
        """Write queued submissions as they come; Redis trouble is retried, nothing dropped
        while this bridge lives."""
        backoff = Backoff("work index writer", logger=log)
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            pending = self._pending
            try:
                await self.flush()
                backoff.succeeded()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                for user, items in pending.items():  # put them back, keep the order
                    self._pending[user] = items + self._pending.get(user, [])
                self._wanted.set()
                await backoff.wait(exc)

    # -- notifications --------------------------------------------------------------------
    async def apply(self, entries: list) -> int:
        """Apply the state changes in notification stream `entries` ([(id, fields)])."""
        updates: list[tuple[str, str, str, str]] = []
        for eid, fields in entries:
            found = self._states.read(eid, fields)
            if found is None:
                continue
            prefix, states = found
            t = f"{parse_sid(eid)[0] / 1000:.3f}"
            updates += [(prefix + uid, state, t, code) for uid, state, code in states]
        for start in range(0, len(updates), SCRIPT_CHUNK):
            await self._update(args=[self.ttl,
                                     orjson.dumps(updates[start:start + SCRIPT_CHUNK])])
        self.applied += len(updates)
        return len(updates)

    async def run(self) -> None:
        """Follow the notification stream from the shared cursor forever."""
        backoff = Backoff("work index", logger=log)
        cursor: str | None = None
        while True:
            try:
                if cursor is None:
                    raw = await self.redis.get(keys.WORK_CURSOR)
                    cursor = raw.decode() if raw else fmt_sid(await last_generated(self.redis))
                result = await self.redis.xread({keys.NOTIFICATIONS: cursor},
                                                count=READ_COUNT, block=2000)
                for _stream, entries in result or []:
                    if entries:
                        await self.apply(entries)
                        last = entries[-1][0]
                        cursor = last.decode() if isinstance(last, bytes) else str(last)
                        await self.redis.set(keys.WORK_CURSOR, cursor)
                        # the index needs no millisecond latency: let entries gather, so a
                        # busy stream costs one script per pause, not one per entry
                        await asyncio.sleep(GATHER_SECONDS)
                backoff.succeeded()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                await backoff.wait(exc)

    @property
    def malformed(self) -> int:
        """State digests (or items of them) found malformed so far (tests and logs)."""
        return self._states.malformed

    # -- reading --------------------------------------------------------------------------
    async def members(self, user: str) -> list[str]:
        """The identity's item members, newest submission first."""
        raw = await self.redis.zrevrange(keys.work_index(user), 0, -1)
        return [m.decode() for m in raw]

    async def load(self, user: str, members: list[str]) -> list[dict[str, Any]]:
        """The items of `members` as dicts; entries that expired are dropped from the index."""
        if not members:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for m in members:
            pipe.hgetall(keys.work_item(m))
        rows = await pipe.execute()
        items, gone = [], []
        for m, row in zip(members, rows):
            fields = {k.decode(): v.decode() for k, v in (row or {}).items()}
            if fields.get("user") != user:
                gone.append(m)
                continue
            items.append(to_item(fields))
        if gone:
            await self.redis.zrem(keys.work_index(user), *gone)
        return items


def to_item(fields: dict[str, str]) -> dict[str, Any]:
    """A stored hash as the JSON item of `GET /work`."""
    def num(name: str) -> float | None:
        try:
            return float(fields[name]) if fields.get(name) else None
        except ValueError:
            return None

    item: dict[str, Any] = {k: fields.get(k) or None for k in (
        "id", "kind", "edge", "plugin", "sid", "state", "name", "native_id", "executor",
        "directory", "queue", "account", "edge_name", "stdout_path", "stderr_path")}
    item.update(submitted=num("submitted"), started=num("started"), ended=num("ended"))
    code = num("exit_code")
    item["exit_code"] = int(code) if code is not None else None
    nodes = num("nodes")
    item["nodes"] = int(nodes) if nodes is not None else None
    start = item["started"] or None
    item["duration"] = (round(item["ended"] - start, 3) if start and item["ended"]
                        else round(time.time() - start, 3) if start and item["state"] in RUNNING
                        else None)
    return item
