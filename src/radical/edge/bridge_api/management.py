"""Management routes: list edges, disconnect an edge, terminate the bridge, SSE."""
from __future__ import annotations

import asyncio
import logging
import os
import signal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse

from ..app import keys
from .envelope import error_body
from .events import client_events
from .state import BridgeState

log = logging.getLogger(__name__)
router = APIRouter()

#: how long disconnect waits for the edge to actually leave the topology
DISCONNECT_WAIT = 8.0


def bridge_state(request: Request) -> BridgeState:
    return request.app.state.bridge


def base_url(request: Request, state: BridgeState) -> str:
    return state.settings.bridge_url or str(request.base_url).rstrip("/")


@router.api_route("/edge/list", methods=["POST", "GET"])
async def edge_list(request: Request) -> dict:
    state = bridge_state(request)
    return {"data": state.topology(base_url(request, state))}


@router.post("/edge/disconnect/{edge}")
async def edge_disconnect(edge: str, request: Request) -> JSONResponse:
    state = bridge_state(request)
    if state.watcher.state_of(edge) != "alive":
        return JSONResponse(error_body(404, f"unknown edge '{edge[:128]}'"), status_code=404)
    worker = keys.edge_worker(edge)
    state.edge_leaving(edge, "disconnected")
    try:
        await asyncio.wait_for(asyncio.to_thread(
            state.celery.control.shutdown, destination=[worker]), 10)
    except Exception as exc:  # broker trouble: say so instead of pretending
        return JSONResponse(error_body(503, f"could not reach edge '{edge}': {exc}"),
                            status_code=503)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DISCONNECT_WAIT
    while loop.time() < deadline and state.watcher.state_of(edge) == "alive":
        state.watcher.ping()
        await asyncio.sleep(0.1)
    gone = state.watcher.state_of(edge) != "alive"
    return JSONResponse({"status": "shutdown", "edge": edge, "worker": worker, "gone": gone})


@router.post("/bridge/terminate")
async def bridge_terminate(request: Request) -> dict:
    state = bridge_state(request)
    asyncio.get_running_loop().call_later(0.3, os.kill, os.getpid(), signal.SIGTERM)
    log.warning("bridge terminating on request")
    return {"status": "terminating", "bridge": base_url(request, state), "id": state.bridge_id}


@router.get("/events")
async def events(request: Request) -> EventSourceResponse:
    state = bridge_state(request)
    client = state.hub.connect()
    first = {"data": _dumps({"topic": "topology", "data": state.topology(base_url(request, state))})}
    resume = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    return EventSourceResponse(
        client_events(state.hub, client, first, resume),
        ping=state.settings.sse_ping_seconds,
        send_timeout=state.settings.events_send_timeout or None,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _dumps(obj: object) -> str:
    import orjson

    return orjson.dumps(obj).decode()
