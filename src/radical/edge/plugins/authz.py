"""What plugins use to check who is calling: the one helper is `require_scope`.

The bridge already refuses calls whose scope does not fit the HTTP method (GET needs
`read`, anything else `submit`); a plugin calls `require_scope` for finer rules (e.g. an
admin-only route). The identity comes from the call the bridge put on this edge's queue.
"""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..app.identity import Identity


def identity_of(request: Request) -> Identity | None:
    """The caller's identity, or None when the call carried none (e.g. a local test call)."""
    return getattr(request.state, "identity", None)


def has_scope(request: Request, scope: str) -> bool:
    who = identity_of(request)
    return who is not None and who.allows(scope)


def require_scope(request: Request, scope: str) -> Identity:
    """The caller's identity if it has `scope`; else 403 with a detail saying what is missing."""
    who = identity_of(request)
    if who is None:
        raise HTTPException(403, f"this call needs the '{scope}' scope and carries no identity")
    if not who.allows(scope):
        raise HTTPException(403, f"user '{who.user}' has scope '{who.scope}'; "
                                 f"this call needs '{scope}'")
    return who
