"""`GET /work`: the caller's psij jobs and rhapsody tasks on every edge, sorted, filtered, paged.

Query: `kind` (psij|rhapsody), `state` (comma-separated states), `phase` (active|ended),
`edge`, `q` (substring of id, name, native id or edge), `sort` (one of `SORT_KEYS`),
`order` (asc|desc), `offset`, `limit` (1..500), `user` (admins only: another identity's work).
Answer: `{"user", "items": [...], "total", "offset", "limit", "sort", "order"}` (items as
`work.to_item`). Everyone sees only their own work: the owner is the identity that submitted.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..app.identity import ANONYMOUS, USER_RE, Identity
from .work import FINAL, SUBMIT_PATHS

router = APIRouter()

SORT_KEYS = ("submitted", "started", "ended", "duration", "state", "edge", "kind", "id", "name")
MAX_LIMIT = 500


class QueryError(ValueError):
    pass


def _int(params: Any, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"{name} must be a whole number, got '{str(raw)[:40]}'") from None
    if not low <= value <= high:
        raise QueryError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _choice(params: Any, name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    if raw not in allowed:
        raise QueryError(f"{name} must be one of {', '.join(allowed)}, got '{str(raw)[:40]}'")
    return raw


def select(items: list[dict], params: Any) -> tuple[list[dict], dict[str, Any]]:
    """Filter, sort and page `items` by the query `params`; QueryError on bad values."""
    kind = _choice(params, "kind", tuple(SUBMIT_PATHS), None)
    sort = _choice(params, "sort", SORT_KEYS, "submitted")
    order = _choice(params, "order", ("asc", "desc"), "desc")
    offset = _int(params, "offset", 0, 0, 10**9)
    limit = _int(params, "limit", 50, 1, MAX_LIMIT)
    phase = _choice(params, "phase", ("active", "ended"), None)
    states = {s.strip().upper() for s in (params.get("state") or "").split(",") if s.strip()}
    edge = params.get("edge") or None
    needle = (params.get("q") or "").strip().lower()[:200]
    out = []
    for item in items:
        st = (item.get("state") or "").upper()
        if kind and item["kind"] != kind or edge and item["edge"] != edge:
            continue
        if states and st not in states or phase and (st in FINAL) != (phase == "ended"):
            continue
        if needle and not any(needle in str(item.get(k) or "").lower()
                              for k in ("id", "name", "native_id", "edge", "state")):
            continue
        out.append(item)
    # missing values sort last whatever the order
    present = [i for i in out if i.get(sort) is not None]
    missing = [i for i in out if i.get(sort) is None]
    present.sort(key=lambda i: (i[sort], i.get("submitted") or 0, i["id"] or ""),
                 reverse=order == "desc")
    out = present + missing
    meta = {"total": len(out), "offset": offset, "limit": limit, "sort": sort, "order": order}
    return out[offset:offset + limit], meta


@router.get("/work")
async def list_work(request: Request) -> JSONResponse:
    state = request.app.state.bridge
    who: Identity = request.scope.get("identity") or ANONYMOUS
    params = request.query_params
    user = params.get("user") or who.user
    if user != who.user:
        if not who.is_admin:
            return JSONResponse({"detail": f"user '{who.user}' may only list their own work; "
                                           "'user=' needs the admin scope"}, status_code=403)
        if not USER_RE.match(user):
            return JSONResponse({"detail": "user= is not a valid user name"}, status_code=422)
    try:
        select([], params)  # validate before touching Redis
        items = await state.work.load(user, await state.work.members(user))
        page, meta = select(items, params)
    except QueryError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    return JSONResponse({"user": user, "items": page, **meta})
