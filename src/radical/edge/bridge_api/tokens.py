"""Named bearer tokens and single-use tickets, kept in Redis so every bridge shares them.

Only sha256 digests of tokens are stored (tokens are 256-bit random, so a plain hash is
enough). A bridge caches lookups for `CACHE_SECONDS` to keep Redis off the hot path; a
revocation therefore takes effect at once on the bridge that revoked and within that many
seconds on the others. Tickets (login links, EventSource URLs) live `TICKET_SECONDS` at most
and are consumed atomically with GETDEL: a second use finds nothing.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from typing import Any

import orjson
import redis.asyncio as aioredis

from ..app import keys
from ..app.identity import OWNER, Identity
from ..app.protocol import json_object

CACHE_SECONDS = 2.0
TICKET_SECONDS = 60.0
LOGIN_TICKET_SECONDS = 600.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def digest(token: str | bytes) -> str:
    raw = token.encode() if isinstance(token, str) else token
    return hashlib.sha256(raw).hexdigest()


def parse_duration(text: str | float | int | None) -> float | None:
    """'30d', '12h', '90m', '45s' or a number of seconds -> seconds; None/''/0 = no expiry."""
    if text is None or text == "" or text == 0:
        return None
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError("expiry must be positive")
        return float(text)
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"bad duration {text!r}: use e.g. 3600, 90m, 12h or 30d")
    return float(m.group(1)) * _UNITS[m.group(2)] or None


class TokenStore:
    """Resolve presented tokens to identities; create, list and revoke named tokens."""

    def __init__(self, redis: aioredis.Redis, owner_token: str | None) -> None:
        self._redis = redis
        self._owner = owner_token.encode() if owner_token else None
        self._cache: dict[str, tuple[float, Identity | None]] = {}

    async def identify(self, token: bytes) -> Identity | None:
        """The identity a presented token stands for, or None (unknown, revoked, expired)."""
        if self._owner is not None and hmac.compare_digest(token, self._owner):
            return OWNER
        key = digest(token)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        record = json_object(await self._redis.hget(keys.TOKENS, key))
        who, ttl = None, CACHE_SECONDS
        if record is not None and not _expired(record):
            who = Identity.from_wire(record)
            if record.get("expires"):  # never cache past the expiry
                ttl = min(ttl, float(record["expires"]) - time.time())
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + ttl, who)
        return who

    async def create(self, user: str, scope: str, expires_in: float | None,
                     kind: str = "token") -> dict[str, Any]:
        """A new token for `user` with `scope`; the token itself is returned only here."""
        who = Identity(user, scope)
        token = secrets.token_urlsafe(32)
        key = digest(token)
        now = time.time()
        record = {"id": key[:12], "user": who.user, "scope": who.scope, "kind": kind,
                  "created": now, "expires": now + expires_in if expires_in else None}
        await self._redis.hset(keys.TOKENS, key, orjson.dumps(record))
        return {**record, "token": token}

    async def list(self) -> list[dict[str, Any]]:
        """Every live token's record (never the token); expired ones are pruned."""
        out, dead = [], []
        for key, raw in (await self._redis.hgetall(keys.TOKENS)).items():
            record = json_object(raw)
            if record is None or _expired(record):
                dead.append(key)
            else:
                out.append(record)
        if dead:
            await self._redis.hdel(keys.TOKENS, *dead)
        return sorted(out, key=lambda r: r.get("created") or 0)

    async def revoke(self, token_id: str) -> int:
        """Remove the tokens whose id is `token_id`, or all tokens of user `token_id`."""
        gone = []
        for key, raw in (await self._redis.hgetall(keys.TOKENS)).items():
            record = json_object(raw) or {}
            if token_id in (record.get("id"), record.get("user")):
                gone.append(key)
        if gone:
            await self._redis.hdel(keys.TOKENS, *gone)
        for key in gone:
            k = key.decode() if isinstance(key, bytes) else key
            self._cache.pop(k, None)
        return len(gone)

    # -- tickets ----------------------------------------------------------------------------
    async def issue_ticket(self, who: Identity, kind: str, ttl: float) -> str:
        ticket = secrets.token_urlsafe(24)
        payload = orjson.dumps({**who.to_wire(), "kind": kind})
        await self._redis.set(keys.ticket(digest(ticket)), payload, px=int(ttl * 1000))
        return ticket

    async def redeem_ticket(self, ticket: str, kind: str) -> Identity | None:
        """The identity a ticket was issued for; the ticket is gone afterwards."""
        if not ticket or len(ticket) > 256:
            return None
        raw = await self._redis.getdel(keys.ticket(digest(ticket)))
        data = json_object(raw)
        if not data or data.get("kind") != kind:
            return None
        return Identity.from_wire(data)


def _expired(record: dict[str, Any]) -> bool:
    expires = record.get("expires")
    return bool(expires) and float(expires) <= time.time()
