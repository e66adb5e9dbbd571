"""Every Redis key, channel and Celery queue name used by radical.edge, in one place.

Keeping them here means a bridge and an edge can never disagree about where to look,
and a `redis-cli --scan --pattern 'redge:*'` shows all state this project owns.

Every name lives under `PREFIX` (`RADICAL_EDGE_REDIS_PREFIX`, default `redge`, read once at
import), so two deployments with different prefixes can share one Redis. The default
deployment keeps Celery's plain queue names `edge.<name>`; another prefix P gets queues
`P.edge.<name>` and kombu's own keys (bindings, remote control) under `P:` through the
transport option `global_keyprefix` (`KOMBU_PREFIX`).
"""
from __future__ import annotations

import re

from ..settings import DEFAULT_REDIS_PREFIX, redis_prefix_from_env

PREFIX = redis_prefix_from_env()

#: set of every edge name that has announced itself (alive or recently gone)
EDGES = f"{PREFIX}:edges"
#: pub/sub channel pinged whenever an edge joins, leaves or changes its plugins
TOPOLOGY_CHANNEL = f"{PREFIX}:topology"
#: capped stream of plugin notifications; entry ids double as SSE event ids
NOTIFICATIONS = f"{PREFIX}:notifications"
#: approximate cap of the notification stream (bounds Redis memory)
NOTIFICATIONS_MAXLEN = 20_000
#: field of a notification entry holding the note, JSON {edge, plugin, topic, data}: what
#: SSE clients receive
NOTE_FIELD = "d"
#: field holding the note's state digest (app/state_digest.py), for task/job state topics
#: of edges that send one: the bridge's work index reads it instead of the note
STATES_FIELD = "s"

#: first path segments of the bridge's own routes: no edge may be named like them
RESERVED_EDGE_NAMES = frozenset({"edge", "edges", "bridge", "calls", "events", "portal", "plugins",
                                 "docs", "openapi.json", "redoc", "favicon.ico", "static",
                                 "health", "ready", "metrics", "work"})

#: what an edge name may look like (it becomes part of URLs, queue and key names)
EDGE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

#: the Celery task name every plugin call travels as
CALL_TASK = "radical.edge.call"


def edge_info(name: str) -> str:
    """Key holding an edge's JSON announcement; it expires when heartbeats stop."""
    return f"{PREFIX}:edge:{name}"


def api_doc(digest: str) -> str:
    """An edge's API description (JSON), named by its SHA-256 so edges with the same
    plugins share it and a bridge can verify what it reads (bridge_api/openapi.py)."""
    return f"{PREFIX}:api:{digest}"


def edge_queue(name: str) -> str:
    """Celery queue an edge consumes its calls from (its name, as Celery and Flower see it)."""
    return f"{QUEUE_PREFIX}edge.{name}"


def edge_worker(name: str) -> str:
    """Celery worker hostname, as Flower shows it."""
    return f"edge@{name}"


def reply_channel(bridge_id: str) -> str:
    """Per-bridge pub/sub channel carrying call replies back to the bridge that waits."""
    return f"{PREFIX}:reply:{bridge_id}"


def tunnel_info(edge_name: str) -> str:
    """Hash describing a reverse SSH tunnel a parent edge opened for a child edge."""
    return f"{PREFIX}:tunnel:{edge_name}"


def validate_name(name: str) -> str:
    """Return `name` if it may name an edge, else raise ValueError saying why."""
    if name in RESERVED_EDGE_NAMES:
        raise ValueError(f"edge name {name!r} is reserved for the bridge's own routes")
    if not EDGE_NAME_RE.match(name):
        raise ValueError(f"invalid edge name {name!r}: use letters, digits, '.', '_' or '-' "
                         "(at most 128, starting with a letter or digit)")
    return name


# -- layer --
#: what kombu puts before every key it touches ("" for the default deployment)
KOMBU_PREFIX = "" if PREFIX == DEFAULT_REDIS_PREFIX else f"{PREFIX}:"
#: what Celery queue names start with ("" for the default deployment)
QUEUE_PREFIX = "" if PREFIX == DEFAULT_REDIS_PREFIX else f"{PREFIX}."
#: Celery's default queue (nothing is routed there; Celery wants one)
DEFAULT_QUEUE = f"{QUEUE_PREFIX}edge.default"


def edge_queue_key(name: str) -> str:
    """The Redis list holding `edge_queue(name)` (kombu adds `KOMBU_PREFIX` to its keys)."""
    return f"{KOMBU_PREFIX}{edge_queue(name)}"


# -- calls --
def call_record(call_id: str) -> str:
    """JSON record of one call's outcome (queued/running/done/...); expires after retention."""
    return f"{PREFIX}:call:{call_id}"


def idempotency(scope: str) -> str:
    """Call id that first used an `Idempotency-Key` (scope: edge, method, path and key)."""
    return f"{PREFIX}:idem:{scope}"

# -- events --
#: random tag of the current notification stream; changes only when Redis lost the stream
NOTIFICATIONS_EPOCH = f"{PREFIX}:notifications:epoch"
#: hash bridge id -> "<oldest stream id its SSE clients still need> <server ms>"
NOTIFICATIONS_READERS = f"{PREFIX}:notifications:readers"
#: newest notification id removed by retention trimming (a resume before it is a gap)
NOTIFICATIONS_TRIMMED = f"{PREFIX}:notifications:trimmed"

# -- auth --
#: hash of named bearer tokens: sha256(token) hex -> JSON {id, user, scope, created, expires}
TOKENS = f"{PREFIX}:tokens"
#: capped stream of mutating calls: who, edge, plugin, path, status, time
AUDIT = f"{PREFIX}:audit"
#: approximate cap of the audit stream
AUDIT_MAXLEN = 100_000


def ticket(digest: str) -> str:
    """Single-use, short-lived login/SSE ticket (keyed by the sha256 of the ticket)."""
    return f"{PREFIX}:ticket:{digest}"

# -- payloads --
def blob(ref: str) -> str:
    """Redis list carrying one big request or reply body as chunks (out of band, with TTL)."""
    return f"{PREFIX}:blob:{ref}"


def blob_stop(ref_key: str) -> str:
    """Flag a reader sets when it abandons a blob, so its writer stops pushing chunks."""
    return f"{ref_key}:stop"

# -- redis --
def edge_lease(name: str) -> str:
    """Lease key owning an edge name: value = the owner id of the one process that may
    consume `edge_queue(name)`; set with NX, renewed by heartbeat (see workers/lease.py)."""
    return f"{PREFIX}:lease:{name}"


def enroll_token(digest: str) -> str:
    """One-time edge enrollment token, stored by its SHA-256 (never the token itself)."""
    return f"{PREFIX}:enroll:{digest}"


def child_enroll_token(parent: str, digest: str) -> str:
    """One-time enrollment token a parent edge minted for a child it launches (SHA-256);
    only edge `parent` may write under its prefix (see app/acl.py)."""
    return f"{PREFIX}:enroll:child:{parent}:{digest}"

# -- work index --
#: stream position (`<ms>-<seq>`) up to which bridges applied notifications to the work index
WORK_CURSOR = f"{PREFIX}:work:cursor"


def work_index(user: str) -> str:
    """Sorted set of one identity's work items (member `edge/plugin/id`, score: submit time)."""
    return f"{PREFIX}:work:user:{user}"


def work_item(member: str) -> str:
    """Hash of one work item (`member` = `edge/plugin/id`): owner, kind, state, times, ..."""
    return f"{PREFIX}:work:item:{member}"
