"""`GET /health`, `GET /ready` and `GET /metrics`: for load balancers, probes and Prometheus.

`/health` and `/ready` are public (they tell nothing but "up" and which dependency is
down; no URLs, no names). `/metrics` names edges and plugins, so it needs a `read` token
like `/edge/list` does, unless `RADICAL_EDGE_METRICS_PUBLIC=true` (a scraper on a trusted
network that holds no token).
"""
from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from ..app import keys
from ..version import __version__
from .envelope import error_body
from .metrics import sse_backlog
from .state import BridgeState

router = APIRouter()

#: Redis must answer a probe within this (s)
PROBE_TIMEOUT = 2.0
#: the topology view is stale when older than this many poll intervals (and 5 s)
STALE_POLLS = 5


def _state(request: Request) -> BridgeState:
    return request.app.state.bridge


@router.get("/health")
async def health() -> dict:
    """The process is up and serving HTTP (nothing else is checked)."""
    return {"status": "ok", "version": __version__}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Ready to relay calls: Redis answers, the reply subscription is up, the view of the
    edges is current. 503 with a `detail` naming what is not."""
    state = _state(request)
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(state.redis.ping(), PROBE_TIMEOUT)
        checks["redis"] = "ok"
    except (RedisError, OSError, asyncio.TimeoutError) as exc:
        checks["redis"] = f"unreachable ({type(exc).__name__})"
    checks["subscription"] = "ok" if state.dispatcher.subscribed.is_set() else "reconnecting"
    age = state.watcher.age()
    limit = max(5.0, STALE_POLLS * state.settings.topology_poll_seconds)
    checks["topology"] = "ok" if age is not None and age <= limit else (
        "never read" if age is None else f"stale ({age:.1f} s old)")
    failed = {k: v for k, v in checks.items() if v != "ok"}
    if failed:
        detail = "not ready: " + ", ".join(f"{k} {v}" for k, v in failed.items())
        return JSONResponse({**error_body(503, detail), "checks": checks}, status_code=503)
    return JSONResponse({"status": "ready", "checks": checks})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format; states are read now, counters were kept per call."""
    state = _state(request)
    edges = dict(state.watcher.edges)
    queues: dict[str, int] = {}
    redis_up = True
    if edges:
        try:
            pipe = state.redis.pipeline(transaction=False)
            for name in edges:
                pipe.llen(keys.edge_queue_key(name))
            lengths = await asyncio.wait_for(pipe.execute(), PROBE_TIMEOUT)
            queues = dict(zip(edges, (int(n) for n in lengths)))
        except (RedisError, OSError, asyncio.TimeoutError):
            redis_up = False
    else:
        try:
            await asyncio.wait_for(state.redis.ping(), PROBE_TIMEOUT)
        except (RedisError, OSError, asyncio.TimeoutError):
            redis_up = False
    roles: dict[str, int] = {}
    for info in edges.values():
        role = str(info.get("role") or "unknown")
        roles[role] = roles.get(role, 0) + 1
    hub = state.hub
    state.metrics.state.snapshot = {
        "redis_up": redis_up, "in_flight": state.dispatcher.pending,
        "sse_clients": len(hub.clients), "sse_backlog": sse_backlog(hub.window_ids(),
                                                                    hub.clients),
        "notifications": hub.received, "roles": roles, "edges": edges, "queues": queues}
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
