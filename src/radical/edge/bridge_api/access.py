"""Routes about access: login links for the portal, SSE tickets, named tokens, the audit log.

- `POST /bridge/login-ticket` -> a single-use portal link `/#login=<ticket>` for the caller's
  identity; the portal posts the ticket to `POST /bridge/login` and gets a browser token (12 h)
  for this tab. `radical-edge up` prints such a link, so nobody copies tokens. The ticket is
  in the URL fragment, which browsers never send to a server.
- `POST /events/ticket` -> a single-use, short-lived ticket for `GET /events?ticket=...`, for
  EventSource clients that cannot send headers.
- `POST|GET /bridge/tokens`, `DELETE /bridge/tokens/{id}` (admin): named tokens.
- `GET /bridge/audit?count=N` (admin): the newest audit entries.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..app import keys
from ..app.identity import SCOPES, Identity
from .audit import audit_view
from .state import BridgeState
from .tokens import LOGIN_TICKET_SECONDS, TICKET_SECONDS, parse_duration

router = APIRouter()


def _state(request: Request) -> BridgeState:
    return request.app.state.bridge


def _who(request: Request) -> Identity:
    return request.scope["identity"]


def _base(request: Request, state: BridgeState) -> str:
    return state.settings.bridge_url or str(request.base_url).rstrip("/")


@router.post("/bridge/login-ticket")
async def login_ticket(request: Request) -> dict:
    state = _state(request)
    ticket = await state.tokens.issue_ticket(_who(request), "login", LOGIN_TICKET_SECONDS)
    return {"ticket": ticket, "expires_in": LOGIN_TICKET_SECONDS,
            "url": f"{_base(request, state)}/#login={ticket}"}


class Login(BaseModel):
    ticket: str = Field(min_length=1, max_length=256)


@router.post("/bridge/login")
async def login(body: Login, request: Request) -> Any:
    """Trade a single-use login ticket for a browser token (public: the ticket is the
    credential). The portal keeps the token in `sessionStorage`, which is per origin, port
    included; a cookie would be sent to every port of the host, i.e. to other users' servers
    on a shared login node."""
    state = _state(request)
    who = await state.tokens.redeem_ticket(body.ticket, "login")
    if who is None:
        return JSONResponse({"detail": "login link unknown, used or expired: ask for a new "
                                       "one (`radical-edge login`)"}, status_code=401)
    record = await state.tokens.create(who.user, who.scope, state.settings.login_ttl,
                                       kind="browser")
    return {k: record[k] for k in ("token", "user", "scope", "expires")}


@router.post("/events/ticket")
async def events_ticket(request: Request) -> dict:
    ticket = await _state(request).tokens.issue_ticket(_who(request), "events", TICKET_SECONDS)
    return {"ticket": ticket, "expires_in": TICKET_SECONDS}


class NewToken(BaseModel):
    user: str = Field(min_length=1, max_length=128)
    scope: str
    expires: str | float | None = None  # seconds or '30d', '12h', '90m'


@router.post("/bridge/tokens")
async def create_token(body: NewToken, request: Request) -> dict:
    if body.scope not in SCOPES:
        raise HTTPException(422, f"scope must be one of {', '.join(SCOPES)}")
    try:
        Identity(body.user, body.scope)
        expires_in = parse_duration(body.expires)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return await _state(request).tokens.create(body.user, body.scope, expires_in)


@router.get("/bridge/tokens")
async def list_tokens(request: Request) -> dict:
    return {"tokens": await _state(request).tokens.list()}


@router.delete("/bridge/tokens/{token_id}")
async def revoke_token(token_id: str, request: Request) -> dict:
    n = await _state(request).tokens.revoke(token_id)
    if not n:
        raise HTTPException(404, f"no token with id or user '{token_id[:128]}'")
    return {"revoked": n}


@router.get("/bridge/audit")
async def audit(request: Request, count: int = 100) -> dict:
    count = max(1, min(count, 10_000))
    entries = await _state(request).redis.xrevrange(keys.AUDIT, count=count)
    return {"entries": [{"id": (eid.decode() if isinstance(eid, bytes) else eid),
                         **audit_view(fields)} for eid, fields in entries]}
