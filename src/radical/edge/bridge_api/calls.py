"""`GET /calls/{id}`: what became of a call whose answer was `"outcome": "unknown"`.

Reads the call's outcome record (see `app.call_record`): `queued`, `running`, `done` (with
the stored reply, or its status and a note when the reply was too large to keep) or
`not_delivered` (it never ran and never will). 404 when there is no record: the id is wrong,
or the record expired (`call_retention` seconds after the call's deadline).
"""
from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from ..app import call_record, keys
from .state import BridgeState

router = APIRouter()

CALL_ID_RE = re.compile(r"^[0-9a-f]{32}$")


@router.get("/calls/{call_id}")
async def call_status(call_id: str, request: Request) -> JSONResponse:
    state: BridgeState = request.app.state.bridge
    if not CALL_ID_RE.match(call_id):
        return JSONResponse({"detail": "a call id is 32 lowercase hex digits"}, status_code=422)
    try:
        raw = await state.redis.get(keys.call_record(call_id))
    except (RedisError, OSError) as exc:
        return JSONResponse({"detail": f"broker unavailable: {exc}"}, status_code=503)
    record = call_record.decode(raw, call_id)
    if record is None:
        return JSONResponse({"detail": f"no record of call {call_id}: unknown id, or its "
                                       "record expired"}, status_code=404)
    return JSONResponse(record)
