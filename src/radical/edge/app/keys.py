"""Every Redis key, channel and Celery queue name used by radical.edge, in one place.

Keeping them here means a bridge and an edge can never disagree about where to look,
and a `redis-cli --scan --pattern 'redge:*'` shows all state this project owns.
"""
from __future__ import annotations

import re

PREFIX = "redge"

#: set of every edge name that has announced itself (alive or recently gone)
EDGES = f"{PREFIX}:edges"
#: pub/sub channel pinged whenever an edge joins, leaves or changes its plugins
TOPOLOGY_CHANNEL = f"{PREFIX}:topology"
#: capped stream of plugin notifications; entry ids double as SSE event ids
NOTIFICATIONS = f"{PREFIX}:notifications"
#: approximate cap of the notification stream (bounds Redis memory)
NOTIFICATIONS_MAXLEN = 20_000

#: first path segments of the bridge's own routes: no edge may be named like them
RESERVED_EDGE_NAMES = frozenset({"edge", "bridge", "events", "portal", "docs", "openapi.json",
                                 "redoc", "favicon.ico", "static"})

#: what an edge name may look like (it becomes part of URLs, queue and key names)
EDGE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

#: the Celery task name every plugin call travels as
CALL_TASK = "radical.edge.call"


def edge_info(name: str) -> str:
    """Key holding an edge's JSON announcement; it expires when heartbeats stop."""
    return f"{PREFIX}:edge:{name}"


def edge_queue(name: str) -> str:
    """Celery queue (a Redis list) an edge consumes its calls from."""
    return f"edge.{name}"


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
