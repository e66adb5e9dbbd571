"""The lucid plugin, edge side: RADICAL-Pilot pilots and tasks.

Routes (all under ``/{edge}/lucid/``; `sid` = session id)::

    POST register_session             {} -> {"sid"}
    POST pilot_submit/{sid}           {"description": {resource?, cores?, gpus?, nodes?,
                                       runtime?, queue?, project?, access_schema?}} -> {"pid"}
    GET  pilot_status/{sid}           -> {"pilots": [...]}
    GET  pilot_status/{sid}/{pid}     -> {"pid", "state", "resource", "cores", ...}
    POST task_submit/{sid}            {"description": {executable, arguments?, environment?,
                                       name?, ranks?, cores_per_rank?, gpus_per_rank?,
                                       pre_exec?, post_exec?}} -> {"tid"}
    GET  task_wait/{sid}/{tid}?timeout=s -> {"tid", "task": {..., "state", "stdout"}}
    GET  task_list/{sid}              -> {"tasks": [...]}
    POST task_cancel/{sid}/{tid}      -> {"tid", "canceled": true}

`task_wait` never outlasts the call: after `timeout` (capped below the call's deadline) it
answers with the task's current state; the final state is also published as a
``task_status`` notification ``{sid, tid, state[, exit_code, stdout, stderr, ...]}``, and
pilots' states as ``pilot_status`` ``{sid, pid, state}``.

Errors: 422 bad description / pilot refused by RP, 404 unknown session, pilot or task,
409 task before any pilot or cancel of an ended task.
"""
from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from radical.edge.constants import TIMEOUT_HEADER
from radical.edge.settings import LucidSettings

from ..base import Plugin, PluginHostAPI, json_body
from . import models as m
from .rp_env import import_error
from .session import LucidSession
from .site import EdgeSite
from .spec import body_description, pilot_description, task_description

#: how much of the call's deadline a task_wait leaves for the reply to travel back (s)
WAIT_MARGIN = 5.0
DEADLINE_HEADER = TIMEOUT_HEADER.lower()


class LucidPlugin(Plugin):
    """Run pilots and tasks through RADICAL-Pilot on the edge's resources."""

    plugin_name = "lucid"
    version = "0.1.0"
    session_class = LucidSession
    client_class = "radical.edge.plugins.lucid.client:LucidClient"
    session_ttl = 24 * 3600.0
    ui_module = "lucid"
    ui_config = {
        "title": "RADICAL-Pilot",
        "icon": "🛩️",
        "description": "Pilots and tasks through RADICAL-Pilot.",
        "notifications": {"topic": "task_status", "id_field": "tid", "state_field": "state"},
    }

    @classmethod
    def is_enabled(cls, app: PluginHostAPI) -> bool:
        """Only on edges, and only where radical.pilot imports."""
        return app.role != "bridge" and import_error() is None

    @classmethod
    def disabled_reason(cls, app: PluginHostAPI) -> str:
        if app.role == "bridge":
            return "lucid runs on edges, not on the bridge"
        return import_error() or "not enabled on this host"

    def __init__(self, app: PluginHostAPI, instance_name: str | None = None) -> None:
        super().__init__(app, instance_name)
        base = Path(os.path.expanduser(LucidSettings().lucid_dir))
        self._root = base / app.edge_name
        self._site = EdgeSite(self._root)
        self.add_route_post("pilot_submit/{sid}", self.pilot_submit, body=m.DescriptionBody,
                            response=m.PilotSubmitted)
        self.add_route_get("pilot_status/{sid}", self.pilot_status)
        self.add_route_get("pilot_status/{sid}/{pid}", self.pilot_status)
        self.add_route_post("task_submit/{sid}", self.task_submit, body=m.DescriptionBody,
                            response=m.TaskSubmitted)
        self.add_route_get("task_wait/{sid}/{tid}", self.task_wait, response=m.TaskResult)
        self.add_route_get("task_list/{sid}", self.task_list)
        self.add_route_post("task_cancel/{sid}/{tid}", self.task_cancel)

    async def create_session(self, sid: str, **kwargs: Any) -> LucidSession:
        return LucidSession(sid, root=self._root, loop=asyncio.get_running_loop(),
                            site=self._site, **kwargs)

    async def shutdown(self) -> None:
        """Close every session at once: each RP close takes seconds and the edge's stop
        is bounded, so closing them one after the other could leave pilots running."""
        gone = [s for s in (self._sessions.pop(sid) for sid in self._sessions.ids()) if s]
        await asyncio.gather(*(self._close_session(s) for s in gone))

    def _session(self, request: Request) -> LucidSession:
        session = self.get_session(request)
        assert isinstance(session, LucidSession)
        return session

    async def pilot_submit(self, request: Request) -> dict:
        desc = pilot_description(body_description(await json_body(request)))
        return await self._session(request).pilot_submit(desc)

    async def pilot_status(self, request: Request) -> dict:
        return self._session(request).pilot_status(request.path_params.get("pid"))

    async def task_submit(self, request: Request) -> dict:
        desc = task_description(body_description(await json_body(request)))
        return await self._session(request).task_submit(desc)

    async def task_wait(self, request: Request) -> dict:
        session = self._session(request)
        timeout = _wait_timeout(request, LucidSettings().lucid_max_wait)
        return await session.task_wait(request.path_params["tid"], timeout)

    async def task_list(self, request: Request) -> dict:
        return self._session(request).task_list()

    async def task_cancel(self, request: Request) -> dict:
        return await self._session(request).task_cancel(request.path_params["tid"])


def _wait_timeout(request: Request, cap: float) -> float:
    """`?timeout=` (default: `cap`), bounded by `cap` and by the caller's deadline."""
    raw = request.query_params.get("timeout")
    try:
        wanted = cap if raw in (None, "") else float(raw)
    except ValueError:
        raise HTTPException(422, f"timeout must be a number of seconds, got {raw!r}") from None
    if not 0 <= wanted < float("inf"):
        raise HTTPException(422, f"timeout must be >= 0 seconds, got {raw!r}")
    limit = cap
    deadline = request.headers.get(DEADLINE_HEADER)
    if deadline:
        try:
            limit = min(limit, max(0.0, float(deadline) - WAIT_MARGIN))
        except ValueError:
            pass
    return min(wanted, limit)
