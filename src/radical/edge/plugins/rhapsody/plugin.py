"""The rhapsody plugin, edge side: remote task execution through rhapsody-py sessions.

Routes (all under ``/{edge}/rhapsody/``; `sid` = session id)::

    POST register_session        {backends?, notify_batch_window?, notify_batch_size?}
                                 -> {"sid", "status": "initializing"}; then a
                                 session_status notification (ready | failed)
    GET  session_status/{sid}    -> {"sid", "status", "error", "backends", ...}
    POST submit/{sid}            {"tasks": [...]} (JSON or msgpack) -> [{"uid", "state"}]
    POST wait/{sid}              {"uids": [...] | null, "timeout"?} -> [task dicts], once all
                                 are finished or after `timeout` s (default 0: a snapshot;
                                 keep it below the call deadline, X-Radical-Timeout)
    GET  list_tasks/{sid}        -> {"tasks": [task dicts]}
    GET  task/{sid}/{uid}        -> task dict
    POST cancel/{sid}/{uid}      -> {"uid", "state", "canceled"}
    POST cancel_all/{sid}        -> {"canceled": n}
    GET  stats                   -> edge-wide counters (sessions, running processes, ...)

Every task route answers 409 while the session is initializing or after it failed.
Notifications: ``session_status``, ``task_status`` (one task), ``task_status_batch``
(``{"sid", "tasks": [...]}``), ``task_output`` (``{"sid", "uid", "stream", "offset", "data"}``:
output of an executable task still running for more than 0.5 s; see stream.py).

Unlike the original (compute nodes only), the plugin is enabled on any edge where
rhapsody-py imports, login nodes and laptops included.
"""
from __future__ import annotations

import asyncio
import logging
import os
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..base import Plugin
from . import models as m
from .allowlist import FunctionPolicy
from .backends import default_backends
from .bodies import BodyLimits, decode_body
from .callables import FunctionResolver, caller_may_unpickle
from .housekeeping import preload
from .procpool import WorkerPool
from .session import RhapsodySession

log = logging.getLogger(__name__)

#: longest a `wait` call may hold its answer (s); the call's own deadline still applies
MAX_WAIT = 3600


class RhapsodyPlugin(Plugin):
    """Submit, watch and cancel rhapsody tasks (executables and Python functions)."""

    plugin_name = "rhapsody"
    version = "0.1.0"
    session_args = m.SessionArgs
    session_class = RhapsodySession
    # a string: the SDK imports the client without rhapsody or the edge side
    client_class = "radical.edge.plugins.rhapsody.client:RhapsodyClient"
    ui_config = {
        "title": "Rhapsody Tasks",
        "icon": "🎼",
        "description": "Submit compute tasks, wait for results, view stdout/stderr.",
        "forms": [{
            "id": "submit",
            "title": "📝 Submit Task",
            "layout": "single",
            "fields": [
                {"name": "exec", "type": "text", "label": "Executable",
                 "default": "/bin/echo", "css_class": "rh-exec"},
                {"name": "args", "type": "text", "label": "Arguments (space-separated)",
                 "default": "hello from rhapsody", "css_class": "rh-args"},
                {"name": "backends", "type": "select", "label": "Backend",
                 "options": ["concurrent", "noop", "dragon_v3"], "css_class": "rh-backends"},
                {"name": "timeout", "type": "number", "label": "Timeout (s)", "default": "",
                 "css_class": "rh-timeout"},
                {"name": "ranks", "type": "number", "label": "MPI Ranks", "default": "",
                 "css_class": "rh-ranks"},
                {"name": "type", "type": "select", "label": "Task Type", "options": ["", "mpi"],
                 "css_class": "rh-type"},
                {"name": "cwd", "type": "text", "label": "Working Dir", "default": "",
                 "css_class": "rh-cwd"},
            ],
            "submit": {"label": "▶ Submit Task", "style": "success"},
        }],
        "monitors": [{"id": "tasks", "title": "📊 Task Monitor", "type": "task_list",
                      "css_class": "rh-output", "empty_text": "No tasks submitted yet."}],
        "notifications": {"topic": "task_status", "id_field": "uid", "state_field": "state"},
    }

    @classmethod
    def is_enabled(cls, app: Any) -> bool:
        """Enabled wherever rhapsody-py imports (the original: compute nodes only)."""
        try:
            import rhapsody  # noqa: F401
        except Exception as exc:
            log.info("rhapsody plugin disabled: rhapsody-py does not import: %s", exc)
            return False
        return True

    @classmethod
    def disabled_reason(cls, app: Any) -> str:
        return "rhapsody-py is not installed (or does not import)"

    def __init__(self, app: Any, instance_name: str | None = None) -> None:
        super().__init__(app, instance_name)
        settings = getattr(app, "settings", None)
        self.allow_pickle = bool(getattr(settings, "allow_pickle", False))
        self.max_running = max(1, int(getattr(settings, "max_running_tasks", 64) or 64))
        #: executables running at once, across all sessions of this edge
        self.process_slots = asyncio.Semaphore(self.max_running)
        #: import paths tasks may name (403 otherwise): see `allowlist`
        self.functions = FunctionResolver(FunctionPolicy.from_settings(
            getattr(settings, "rhapsody_functions", "")))
        workers = int(getattr(settings, "rhapsody_function_workers", 0) or 0)
        #: worker processes running function tasks, shared by all sessions
        self.function_pool = WorkerPool(workers if workers > 0 else (os.cpu_count() or 2))
        self.body_limits = BodyLimits(
            int(getattr(settings, "rhapsody_max_body_bytes", 0) or BodyLimits.max_bytes),
            int(getattr(settings, "rhapsody_max_body_items", 0) or BodyLimits.max_items))
        self.add_route_get("session_status/{sid}", self.session_status)
        self.add_route_post("submit/{sid}", self.submit_tasks, body=m.SubmitBody,
                            response=list[m.Task])
        self.add_route_post("wait/{sid}", self.wait_tasks, body=m.WaitBody,
                            response=list[m.Task])
        self.add_route_get("list_tasks/{sid}", self.list_tasks)
        self.add_route_get("task/{sid}/{uid}", self.get_task, response=m.Task)
        self.add_route_post("cancel/{sid}/{uid}", self.cancel_task, response=m.Task)
        self.add_route_post("cancel_all/{sid}", self.cancel_all_tasks, response=m.Canceled)
        self.add_route_get("stats", self.stats)

    async def startup(self) -> None:
        # first imports allocate long-lived objects: do them now, not amid a task burst
        await asyncio.to_thread(preload)

    async def shutdown(self) -> None:
        await super().shutdown()
        await self.function_pool.shutdown()

    # -- sessions ---------------------------------------------------------------------------
    async def register_session(self, request: Request) -> dict:
        """Create a session; its backends come up in the background (see module doc)."""
        kwargs = await decode_body(request, self.body_limits)
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, dict):
            raise HTTPException(422, "register_session expects a JSON object of session "
                                     "arguments")
        sid = f"session.{uuid.uuid4().hex[:12]}"
        try:
            session = RhapsodySession(sid, **kwargs)
        except TypeError as exc:
            raise HTTPException(422, f"bad session arguments: {exc}") from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        self.adopt_session(request, session)
        session.start()
        return {"sid": sid, "status": session.status, "backends": session.backend_names}

    def _session(self, request: Request) -> RhapsodySession:
        return self.get_session(request)  # type: ignore[return-value]

    async def session_status(self, request: Request) -> dict:
        return self._session(request).describe()

    async def reap_expired(self) -> int:
        # a session with tasks still running is in use even if its client is quiet
        for session in self.sessions():
            if getattr(session, "busy", False):
                try:
                    self._sessions.get(session.sid)
                except LookupError:
                    pass
        return await super().reap_expired()

    # -- tasks ------------------------------------------------------------------------------
    async def submit_tasks(self, request: Request) -> list[dict]:
        session = self._session(request)
        session.require_ready()
        may_unpickle = caller_may_unpickle(request)
        # one submit of a session at a time: parallel requests of a big batch would
        # otherwise all be unpacked at once (peak memory) for no gain on a single loop
        async with session.submit_lock:
            body = await decode_body(request, self.body_limits)
            raw = body.get("tasks") if isinstance(body, dict) else body
            if raw is None:
                raise HTTPException(422, "expected a body {\"tasks\": [...]}")
            del body
            return await session.submit(raw, may_unpickle)

    async def wait_tasks(self, request: Request) -> list[dict]:
        """The named tasks once all are finished, or after `timeout` s as they are then
        (default 0: a snapshot; the client waits for notifications and polls this)."""
        session = self._session(request)
        session.require_ready()
        body = await decode_body(request, self.body_limits) or {}
        timeout: Any = 0
        if isinstance(body, list):
            uids = body
        elif isinstance(body, dict):
            uids = body.get("uids")
            timeout = body.get("timeout", 0) or 0
        else:
            raise HTTPException(422, "expected a body {\"uids\": [...]}")
        if uids is not None and (not isinstance(uids, list)
                                 or not all(isinstance(u, str) for u in uids)):
            raise HTTPException(422, "uids must be a list of task uids")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or \
                not 0 <= timeout <= MAX_WAIT:
            raise HTTPException(422, f"timeout must be a number of seconds in [0, {MAX_WAIT}]")
        return await session.wait(uids, float(timeout))

    async def list_tasks(self, request: Request) -> dict:
        session = self._session(request)
        session.require_ready()
        return {"tasks": session.list()}

    async def get_task(self, request: Request) -> dict:
        session = self._session(request)
        session.require_ready()
        return session.get(request.path_params["uid"])

    async def cancel_task(self, request: Request) -> dict:
        session = self._session(request)
        session.require_ready()
        return await session.cancel(request.path_params["uid"])

    async def cancel_all_tasks(self, request: Request) -> dict:
        session = self._session(request)
        session.require_ready()
        return await session.cancel_all()

    async def stats(self, request: Request) -> dict:
        sessions = [s for s in self.sessions() if isinstance(s, RhapsodySession)]
        return {
            "sessions": len(sessions),
            "live_tasks": sum(len(s._live) for s in sessions),
            "stored_results": sum(len(s._done) for s in sessions),
            "running_processes": sum(s.running_processes() for s in sessions),
            "max_running_tasks": self.max_running,
            "allow_pickle": self.allow_pickle,
            "function_workers": self.function_pool.workers,
            "function_worker_pids": self.function_pool.worker_pids(),
            "allowed_functions": self.functions.policy.describe(),
            "default_backends": default_backends(),
        }

