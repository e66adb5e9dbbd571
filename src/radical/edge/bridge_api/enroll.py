"""Edge enrollment: an admin issues a one-time token for an edge name; the edge redeems it
over HTTPS for its own Redis credentials (an ACL user that may act only as that edge).

Why: with ACLs (app/acl.py) an edge needs a Redis password; handing it around on command
lines or in batch scripts leaks it (ps, job logs). A short-lived, single-use token that
names the edge is much cheaper to lose: once redeemed or expired it is worth nothing, and
it never grants more than one edge name.

Tokens are stored in Redis only as their SHA-256 (`keys.enroll_token`), with the token's
lifetime as TTL; redeeming is a GETDEL, so two edges racing with one token cannot both win.
A parent edge may mint tokens for the child edges it launches, under its own prefix
(`keys.child_enroll_token`, hpc/launch/enroll.py); those redeem only for names no live edge
holds. The bridge creates the edge's ACL user through a separate "enroller" Redis user
(`enroll_redis_url`) that may only run ACL SETUSER: the bridge's own user stays unable to
administer Redis, but whoever holds the enroller password is effectively Redis admin.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlparse, urlunparse

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from ..app import acl, keys
from .state import BridgeState

log = logging.getLogger(__name__)
router = APIRouter()

#: the longest an enrollment token may live (s)
MAX_TTL = 7 * 24 * 3600.0


class EnrollRequest(BaseModel):
    name: str = Field(..., max_length=128)
    ttl: float | None = Field(None, gt=0, le=MAX_TTL, description="token lifetime (s)")


class RedeemRequest(BaseModel):
    name: str = Field(..., max_length=128)
    token: str = Field(..., min_length=16, max_length=256)
    parent: str | None = Field(None, max_length=128,
                               description="the edge that minted the token for its child")


def require_admin(request: Request) -> None:
    """Only an admin may issue enrollment tokens (the guard already requires the `admin` scope
    for the bridge's own routes; checked here again so the route stays closed on its own)."""
    who = request.scope.get("identity")
    if who is None or not who.allows("admin"):
        raise HTTPException(403, "issuing enrollment tokens needs the 'admin' scope")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _state(request: Request) -> BridgeState:
    return request.app.state.bridge


def _valid_name(name: str) -> str:
    try:
        return keys.validate_name(name)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


def public_redis_url(state: BridgeState) -> str:
    """The Redis URL (no credentials) enrolled edges are told to use."""
    if state.settings.enroll_redis_public_url:
        return state.settings.enroll_redis_public_url
    u = urlparse(state.settings.redis_url)
    host = u.hostname or "127.0.0.1"
    netloc = (f"[{host}]" if ":" in host else host) + (f":{u.port}" if u.port else "")
    return urlunparse(u._replace(netloc=netloc))


@router.post("/edge/enroll")
async def issue(body: EnrollRequest, request: Request) -> dict[str, Any]:
    require_admin(request)
    state = _state(request)
    name = _valid_name(body.name)
    if state.settings.enroll_redis_url is None:
        raise HTTPException(503, "this bridge cannot enroll edges: set "
                                 "RADICAL_EDGE_ENROLL_REDIS_URL (a Redis user allowed ACL SETUSER)")
    ttl = body.ttl or min(state.settings.enroll_ttl, MAX_TTL)
    token = secrets.token_urlsafe(32)
    expires = time.time() + ttl
    record = orjson.dumps({"name": name, "expires": expires})
    try:
        await state.redis.set(keys.enroll_token(digest(token)), record, px=int(ttl * 1000))
    except RedisError as exc:
        raise HTTPException(503, f"cannot store the enrollment token: {exc}") from None
    log.warning("enrollment token issued for edge '%s' (valid %g s)", name, ttl)
    return {"name": name, "token": token, "expires": expires}


@router.post("/edge/enroll/redeem")
async def redeem(body: RedeemRequest, request: Request) -> dict[str, Any]:
    """Public (the edge has no bridge token): the enrollment token is the credential."""
    state = _state(request)
    name = _valid_name(body.name)
    key = (keys.child_enroll_token(_valid_name(body.parent), digest(body.token)) if body.parent
           else keys.enroll_token(digest(body.token)))
    try:
        raw = await state.redis.getdel(key)
    except RedisError as exc:
        raise HTTPException(503, f"cannot check the enrollment token: {exc}") from None
    if raw is None:
        raise HTTPException(403, "invalid, already used or expired enrollment token")
    record = orjson.loads(raw)
    if record.get("name") != name:
        log.warning("enrollment token for '%s' presented for '%s' (now void)",
                    record.get("name"), name)
        raise HTTPException(403, "this enrollment token was issued for another edge name")
    if body.parent and await state.redis.exists(keys.edge_lease(name)):
        # a parent vouches for names nobody holds, never for a live edge's name
        raise HTTPException(409, f"edge name '{name}' is in use; a parent edge cannot "
                                 "enroll a child under it")
    creds = await _create_edge_user(state, name)
    log.warning("edge '%s' enrolled: Redis user %s (re)created", name, creds.user)
    return {"name": name, "redis_url": creds.url(public_redis_url(state)), "user": creds.user}


async def _create_edge_user(state: BridgeState, name: str) -> acl.Credentials:
    secret = state.settings.enroll_redis_url
    if secret is None:
        raise HTTPException(503, "this bridge cannot enroll edges (no enroller Redis user)")
    url = secret.get_secret_value()
    db = int((urlparse(url).path or "/0").strip("/") or 0)
    client = aioredis.Redis.from_url(url, socket_timeout=state.settings.redis_timeout,
                                     socket_connect_timeout=state.settings.redis_timeout)
    try:
        return await acl.asetuser(client, acl.edge_user(name), acl.new_password(),
                                  acl.edge_rules(name, db))
    except RedisError as exc:
        raise HTTPException(503, f"cannot create the edge's Redis user: {exc}") from None
    finally:
        await client.aclose()
