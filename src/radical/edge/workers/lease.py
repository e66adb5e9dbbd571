"""An edge's name is a lease: one Redis key, claimed atomically, renewed by heartbeat.

Why: an edge paused past its heartbeat TTL (SIGSTOP, a VM freeze, a partition) used to come
back as a twin of its successor, two consumers on one queue. Now whoever holds the lease key
`keys.edge_lease(name)` (value = a random owner id per process) owns the name. Claiming is a
`SET NX PX`; each heartbeat renews the lease *and* rewrites the announcement in one Lua
script that first checks the owner, so a process that lost its lease can never overwrite its
successor's announcement.

`holds()` answers "may I run a call now?" without a round trip on the hot path: a renewal
sent at monotonic time t keeps the key ours at least until t + ttl (Redis expires it no
earlier), so while `now - t < ttl - SAFETY` the lease is certainly ours. Only after a pause
or a failed renewal does the check ask Redis.
"""
from __future__ import annotations

import secrets
import time

import redis
import redis.asyncio as aioredis

from ..app import keys

#: margin (s) kept below the TTL before a lease is considered possibly lost
SAFETY = 0.5

#: KEYS: lease, announcement, edge set; ARGV: owner, ttl ms, announcement, name
RENEW_AND_ANNOUNCE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
  redis.call('SADD', KEYS[3], ARGV[4])
end
return 1
"""

#: KEYS: lease, announcement; ARGV: owner — withdraw only what is still ours
RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
"""


class LeaseLost(RuntimeError):
    """This process no longer owns its edge name."""


class NameLease:
    """The lease on one edge name held by this process."""

    def __init__(self, redis: aioredis.Redis, name: str, ttl: float) -> None:
        self.name = name
        self.owner = secrets.token_hex(8)
        self.key = keys.edge_lease(name)
        self.ttl = ttl
        self._redis = redis
        self._renewed_at: float | None = None  # monotonic time a successful renewal was sent
        self.renewed_wall = 0.0  # the same instant in epoch seconds
        self.lost = False

    async def try_claim(self) -> bool:
        """SET NX: True if the name was free and is now ours (or is ours already)."""
        sent, wall = time.monotonic(), time.time()
        ok = await self._redis.set(self.key, self.owner, nx=True, px=int(self.ttl * 1000))
        if not ok:  # already ours? (two handlers of one lost lease race to re-claim it)
            current = await self._redis.get(self.key)
            ok = current is not None and current.decode() == self.owner
        if ok:
            self._renewed_at, self.renewed_wall, self.lost = sent, wall, False
        return bool(ok)

    def renew_and_announce_sync(self, client: "redis.Redis", info: bytes = b"") -> bool:
        """Renew the lease and (if `info`) write the announcement atomically; False if the
        lease is no longer ours (then nothing is written). Runs on the heartbeat thread, on
        its own synchronous client."""
        sent, wall = time.monotonic(), time.time()
        ok = client.eval(RENEW_AND_ANNOUNCE, 3, self.key, keys.edge_info(self.name),
                         keys.EDGES, self.owner, int(self.ttl * 1000), info, self.name)
        if ok:
            self._renewed_at, self.renewed_wall = sent, wall
        else:
            self.lost = True
        return bool(ok)

    def release_sync(self, client: "redis.Redis") -> bool:
        """Drop the lease and announcement if (and only if) they are still ours."""
        return bool(client.eval(RELEASE, 2, self.key, keys.edge_info(self.name), self.owner))

    def expired_before(self, epoch: float) -> bool:
        """True if our last renewal had certainly run out by `epoch` (bridge clock): a call
        sent after that was meant for a successor, not for this process."""
        return epoch > self.renewed_wall + self.ttl

    def certainly_held(self) -> bool:
        """True if the last renewal guarantees the key is still ours (no round trip)."""
        return (not self.lost and self._renewed_at is not None
                and time.monotonic() - self._renewed_at < self.ttl - SAFETY)

    async def holds(self) -> bool:
        """May this process act as the edge now? Asks Redis only when in doubt."""
        if self.certainly_held():
            return True
        if self.lost:
            return False
        current = await self._redis.get(self.key)
        if current is None or current.decode() != self.owner:
            self.lost = True
            return False
        return True
