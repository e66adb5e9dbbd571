"""A parent edge mints one-time enrollment tokens for the child edges it launches.

Why: under Redis ACLs a child edge cannot use its parent's credentials (they act only as the
parent). The parent may write tokens only under its own prefix
`keys.child_enroll_token(parent, *)`; the bridge redeems such a token only for the child
name it names and only while that name is free (bridge_api/enroll.py). The token travels
in the job's environment (never its arguments) and is worth nothing once used or expired.
"""
from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from ...app import acl, keys

#: batch jobs may wait in the queue for days before the child redeems its token
CHILD_TOKEN_TTL = 7 * 24 * 3600.0


def uses_edge_acl_user(redis_url: str, edge_name: str) -> bool:
    """True if this edge talks to Redis as its own ACL user (then children need tokens)."""
    user = urlsplit(redis_url).username
    return bool(user) and unquote(user) == acl.edge_user(edge_name)


async def mint(redis: Any, parent: str, child: str, ttl: float = CHILD_TOKEN_TTL) -> str:
    """Store a token for `child` under `parent`'s prefix; returns the token itself."""
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    record = orjson.dumps({"name": child, "parent": parent, "expires": time.time() + ttl})
    await redis.set(keys.child_enroll_token(parent, digest), record, px=int(ttl * 1000))
    return token


def delegate(spec: dict, parent: str, token: str, bridge_url: str) -> dict:
    """The child's job spec enrolling at `bridge_url` with `token` instead of using the
    parent's Redis URL."""
    env = dict(spec.get("environment") or {})
    env.pop("RADICAL_EDGE_REDIS_URL", None)
    env["RADICAL_EDGE_ENROLL_TOKEN"] = token
    env["RADICAL_EDGE_ENROLL_PARENT"] = parent
    args = list(spec.get("arguments") or [])
    if "--url" not in args and not any(a.startswith("--url=") for a in args):
        args += ["--url", bridge_url]
    return {**spec, "environment": env, "arguments": args}
