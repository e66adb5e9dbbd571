"""Session bookkeeping for one plugin instance: lookup, idle TTL, expiry memory.

Unknown sessions answer 404 and expired ones 410, so a client can tell "never existed /
already closed" from "you were idle too long" and react (re-register) accordingly.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

from ..errors import StatusError

S = TypeVar("S")

#: how many expired session ids we remember to answer 410 instead of 404
EXPIRED_MEMORY = 10_000


class SessionError(StatusError, LookupError):
    """A session lookup failed; `status` is the HTTP status to answer with."""

    status = 404

    def __init__(self, sid: str, detail: str) -> None:
        super().__init__(detail)
        self.sid = sid


class SessionNotFound(SessionError):
    status = 404


class SessionExpired(SessionError):
    status = 410


class SessionStore(Generic[S]):
    """Sessions by id with an idle TTL (0 = never expires)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = float(ttl)
        self._sessions: dict[str, S] = {}
        self._last_use: dict[str, float] = {}
        self._expired: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def ids(self) -> list[str]:
        return list(self._sessions)

    def values(self) -> list[S]:
        return list(self._sessions.values())

    def add(self, sid: str, session: S) -> None:
        self._sessions[sid] = session
        self._last_use[sid] = time.monotonic()

    def get(self, sid: str) -> S:
        """Return the live session, refreshing its idle timer."""
        session = self._sessions.get(sid)
        if session is None:
            if sid in self._expired:
                raise SessionExpired(sid, f"session '{sid}' expired after {self.ttl:g} s idle")
            raise SessionNotFound(sid, f"unknown session '{sid}'")
        now = time.monotonic()
        if self.ttl and now - self._last_use[sid] > self.ttl:
            raise SessionExpired(sid, f"session '{sid}' expired after {self.ttl:g} s idle")
        self._last_use[sid] = now
        return session

    def __contains__(self, sid: object) -> bool:
        """Is `sid` a live session (plugins written for the original kept a dict here)."""
        return sid in self._sessions

    def __getitem__(self, sid: str) -> S:
        """`store[sid]` as `get(sid)`: raises `SessionError` (404/410) when gone."""
        return self.get(sid)

    def peek(self, sid: str) -> S | None:
        """The session if live, without touching its idle timer."""
        return self._sessions.get(sid)

    def pop(self, sid: str) -> S | None:
        self._last_use.pop(sid, None)
        return self._sessions.pop(sid, None)

    def pop_expired(self) -> list[tuple[str, S]]:
        """Remove and return sessions idle past the TTL, remembering their ids."""
        if not self.ttl:
            return []
        limit = time.monotonic() - self.ttl
        gone = [sid for sid, t in self._last_use.items() if t < limit]
        out = []
        for sid in gone:
            session = self.pop(sid)
            self._expired[sid] = time.time()
            if session is not None:
                out.append((sid, session))
        while len(self._expired) > EXPIRED_MEMORY:
            self._expired.popitem(last=False)
        return out
