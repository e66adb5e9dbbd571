"""Who is calling: a user name and one scope, as the bridge vouches for it to the edges.

Scopes are ordered: `read` (topology, GET reads) < `submit` (sessions, mutating plugin
calls) < `admin` (disconnect edges, terminate the bridge, manage tokens). The bridge puts the
caller's identity into every `CallRequest`; the edge hands it to handlers as
`request.state.identity`. An edge never grants more than the identity on the call says.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: user names end up in logs and audit entries: no spaces, quotes or control characters
USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")
SCOPES: tuple[str, ...] = ("read", "submit", "admin")
_RANK = {name: i for i, name in enumerate(SCOPES)}


@dataclass(frozen=True, slots=True)
class Identity:
    user: str
    scope: str

    def __post_init__(self) -> None:
        if self.scope not in _RANK:
            raise ValueError(f"unknown scope {self.scope!r}: use one of {', '.join(SCOPES)}")
        if not isinstance(self.user, str) or not USER_RE.match(self.user):
            raise ValueError(f"invalid user name {str(self.user)[:64]!r}: use letters, digits, "
                             "'_', '.', '@', '+' or '-' (at most 128)")

    def allows(self, needed: str) -> bool:
        """True if this identity's scope includes `needed`."""
        return _RANK[self.scope] >= _RANK[needed]

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"

    def to_wire(self) -> dict[str, str]:
        return {"user": self.user, "scope": self.scope}

    @classmethod
    def from_wire(cls, data: Any) -> "Identity | None":
        """The identity carried by a call, or None when absent or malformed."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(str(data.get("user") or ""), str(data.get("scope") or ""))
        except ValueError:
            return None


#: the shared bridge token (RADICAL_EDGE_TOKEN / the token file) acts as this identity
OWNER = Identity("admin", "admin")
#: every caller of a bridge started with --no-auth
ANONYMOUS = Identity("anonymous", "admin")
