"""The psij plugin, edge side: batch jobs through psij-python, and child edges in batch jobs.

Routes (all under ``/{edge}/psij/``; `sid` = session id)::

    POST register_session              {cancel_on_close?: bool = true} -> {"sid"}
    POST submit/{sid}                  {"job_spec", "executor": "local"}
                                       -> {"job_id", "native_id", "state", "executor"}
    POST submit_tunneled/{sid}         {"job_spec", "executor", "tunnel": false}
                                       -> adds "edge_name", "tunnel" (422 without -n/--name)
    GET  tunnel_status/{edge_name}     -> {"edge_name", "status", "port", "pid", ...}
    GET  status/{sid}/{job_id}?stdout_offset=&stderr_offset=
                                       -> job status (`JobRecord.status`), output from the offsets
    GET  list_jobs/{sid}               -> {"jobs": [...]}
    POST cancel/{sid}/{job_id}         -> {"job_id", "native_id", "state", "canceled": true}
    GET  executors                     -> {"executors": [usable...], "unavailable": {name: why},
                                           "default": "slurm"|"pbs"|"local"}
    GET  launch_log/{sid}/{job_id}     a launched edge's job stderr and edge log tail (why it
                                       did not join) -> {"stderr", "log_path", "log", ...}

Notifications: ``job_status`` ``{job_id, native_id, state, time, executor, sid[, edge_name]}``
once per state; the terminal one adds ``exit_code``, ``message`` and the last 4 KiB of
``stdout``/``stderr``.

Errors: 422 bad job spec / unknown or unavailable executor / scheduler refused the job
(unknown queue ...),
404 unknown session or job, 409 cancel of an ended job or a child edge name in use,
503 scheduler unreachable.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import psij  # noqa: F401  (no psij-python: `--plugins all` skips this plugin)
from starlette.exceptions import HTTPException
from starlette.requests import Request

from radical.edge.app import keys
from radical.edge.hpc import launch
from radical.edge.hpc.launch.ssh import SSHSettings
from radical.edge.hpc.launch.tunnel import TunnelManager

from ..base import Plugin, PluginHostAPI, PluginSession, json_body
from . import launch_log, models as m
from .executors import ExecutorPool, missing_tool, psij_root
from .jobs import FINAL_STATES, JobRecord
from .session import PsijSession
from .spec import normalize_executor

log = logging.getLogger(__name__)


#: largest byte offset a file position can hold (off_t)
MAX_OFFSET = 2**63 - 1


def _offset(request: Request, name: str) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(422, f"{name} must be a whole number of bytes, got {raw!r}") from None
    if value < 0:
        raise HTTPException(422, f"{name} must not be negative, got {value}")
    if value > MAX_OFFSET:  # seek() cannot even represent it
        raise HTTPException(422, f"{name} must be at most {MAX_OFFSET}, got {raw[:40]}")
    return value


def _default_executor(app: Any) -> str:
    batch = getattr(getattr(app, "state", None), "batch", None)
    name = getattr(batch, "psij_executor", None) or "local"
    return name


class PsijPlugin(Plugin):
    """Submit and monitor HPC batch jobs via PSI/J; launch child edges inside them."""

    plugin_name = "psij"
    version = "0.1.0"
    session_class = PsijSession
    # a string: the SDK imports the client without psij-python or the edge side
    client_class = "radical.edge.plugins.psij.client:PsijClient"
    #: batch jobs wait in queues for hours; a session idle this long is closed (and its
    #: running jobs canceled, see PsijSession)
    session_ttl = 24 * 3600.0
    ui_config = {
        "title": "PsiJ Jobs",
        "icon": "🚀",
        "description": "Submit and monitor HPC batch jobs via PsiJ.",
        "forms": [{
            "id": "submit",
            "title": "📝 Submit Job",
            "layout": "grid2",
            "fields": [
                {"name": "exec", "type": "text", "label": "Executable", "column": 0,
                 "default": "radical-edge-wrapper.sh", "css_class": "p-exec"},
                {"name": "args", "type": "text", "label": "Arguments (space-separated)",
                 "column": 0, "placeholder": "auto-filled with --name", "css_class": "p-args"},
                {"name": "executor", "type": "select", "label": "Executor", "column": 0,
                 "options": ["local", "slurm", "pbs", "lsf"], "css_class": "p-executor"},
                {"name": "queue", "type": "text", "label": "Queue / Partition", "column": 1,
                 "required": False, "placeholder": "optional", "css_class": "p-queue"},
                {"name": "account", "type": "text", "label": "Account / Project", "column": 1,
                 "required": False, "placeholder": "optional", "css_class": "p-account"},
                {"name": "duration", "type": "text", "label": "Duration (seconds)", "column": 1,
                 "required": False, "placeholder": "e.g. 600", "css_class": "p-duration"},
                {"name": "node_count", "type": "number", "label": "Number of Nodes",
                 "column": 1, "required": False, "placeholder": "e.g. 1",
                 "css_class": "p-node-count"},
                {"name": "custom", "type": "custom_attributes", "label": "🔧 Custom Attributes",
                 "column": 1, "required": False, "css_class": "p-custom-attr"},
            ],
            "submit": {"label": "🚀 Submit Job", "style": "success"},
        }],
        "monitors": [{"id": "jobs", "title": "📊 Job Monitor", "type": "task_list",
                      "css_class": "psij-output", "empty_text": "No jobs submitted yet."}],
        "notifications": {"topic": "job_status", "id_field": "job_id", "state_field": "state"},
    }

    @classmethod
    def is_enabled(cls, app: PluginHostAPI) -> bool:
        """PsiJ loads on edges (login or compute nodes), not on the bridge."""
        return app.role != "bridge"

    @classmethod
    def disabled_reason(cls, app: PluginHostAPI) -> str:
        return "psij runs on edges, not on the bridge"

    def __init__(self, app: PluginHostAPI, instance_name: str | None = None) -> None:
        super().__init__(app, instance_name)
        root = psij_root()
        self._pool = ExecutorPool(root / "work" / app.edge_name)
        self._out_root = root / "sessions" / app.edge_name
        settings = getattr(app, "settings", None)
        self._redis_url = getattr(settings, "redis_url", None) or "redis://127.0.0.1:6379/0"
        self.tunnels = TunnelManager(app.edge_name, self._redis_url, self._loop(),
                                     getattr(app, "redis", None), SSHSettings())
        #: child edge name -> {"sid", "job_id"} for children whose job has not ended
        self._children: dict[str, dict[str, Any]] = {}
        self.add_route_post("submit/{sid}", self.submit_job, body=m.SubmitBody,
                            response=m.Submitted)
        self.add_route_post("submit_tunneled/{sid}", self.submit_tunneled,
                            body=m.SubmitTunneledBody, response=m.Submitted)
        self.add_route_get("tunnel_status/{edge_name}", self.tunnel_status)
        self.add_route_get("status/{sid}/{job_id}", self.get_job_status, query=m.StatusQuery,
                           response=m.JobStatus)
        self.add_route_get("list_jobs/{sid}", self.list_jobs, response=m.JobList)
        self.add_route_post("cancel/{sid}/{job_id}", self.cancel_job, response=m.Canceled)
        self.add_route_get("executors", self.executors, response=m.Executors)
        self.add_route_get("launch_log/{sid}/{job_id}", self.launch_log, response=m.LaunchLog)

    def _loop(self) -> asyncio.AbstractEventLoop | None:
        try:
            return self.app.loop
        except Exception:
            return None

    async def startup(self) -> None:
        if self.tunnels.loop is None:
            self.tunnels.loop = asyncio.get_running_loop()
        if self.tunnels.redis is None:
            self.tunnels.redis = getattr(self.app, "redis", None)

    async def shutdown(self) -> None:
        await super().shutdown()  # closes sessions: their running jobs are canceled
        await self.tunnels.shutdown()

    async def create_session(self, sid: str, **kwargs: Any) -> PluginSession:
        return PsijSession(sid, pool=self._pool, out_root=self._out_root, **kwargs)

    def _session(self, request: Request) -> PsijSession:
        return self.get_session(request)  # type: ignore[return-value]

    @staticmethod
    async def _body(request: Request) -> dict:
        body = await json_body(request, default=None)
        if not isinstance(body, dict):
            raise HTTPException(422, "expected a JSON object {\"job_spec\": {...}, "
                                     "\"executor\": \"local\"}")
        if "job_spec" not in body:
            raise HTTPException(422, "job_spec is required")
        return body

    # -- routes -----------------------------------------------------------------------------
    async def submit_job(self, request: Request) -> dict:
        session = self._session(request)
        body = await self._body(request)
        return await session.submit(body["job_spec"], body.get("executor") or "local")

    async def submit_tunneled(self, request: Request) -> dict:
        """Start a child edge in a batch job; with ``tunnel`` it reaches Redis over SSH."""
        session = self._session(request)
        body = await self._body(request)
        spec, executor = body["job_spec"], body.get("executor") or "local"
        tunnel = body.get("tunnel", False)
        if not isinstance(tunnel, bool):
            raise HTTPException(422, "tunnel must be true or false")
        if not isinstance(spec, dict):
            raise HTTPException(422, "job_spec must be a JSON object")
        args = spec.get("arguments")
        if args is not None and not isinstance(args, list):
            raise HTTPException(422, "job_spec.arguments must be a list of strings")
        name = launch.edge_name_from_args(args)
        if not name:
            raise HTTPException(422, "submit_tunneled needs the child edge's name in "
                                     "job_spec.arguments: [\"-n\", \"<edge_name>\", ...]")
        from radical.edge.app.keys import validate_name

        try:
            validate_name(name)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        await self._check_name_free(name)
        self._children[name] = {"sid": session.sid, "job_id": None}  # reserved, no await yet
        plan = None
        try:
            if tunnel:
                plan = self.tunnels.plan(name).plan()
            child = launch.child_job_spec(spec, name, self._redis_url, tunnel=plan)
            child = await self._delegate_enrollment(child, name)
            result = await session.submit(child, executor, edge_name=name,
                                          on_change=self._child_hook(name))
        except launch.LaunchError as exc:
            self._children.pop(name, None)
            if tunnel:
                self.tunnels.release(name, exc.detail)
            raise HTTPException(exc.status, exc.detail) from None
        except BaseException as exc:
            self._children.pop(name, None)
            if tunnel:
                self.tunnels.release(name, getattr(exc, "detail", None) or str(exc))
            raise
        record = session.record(result["job_id"])
        if record.final:
            self._children.pop(name, None)
        else:
            self._children[name]["job_id"] = result["job_id"]
        if tunnel:
            job_id = result["job_id"]
            self.tunnels.attach(name, job_id, record.native_id, record.executor,
                                cancel_job=lambda: session.cancel_job(job_id))
            self.tunnels.job_state(name, record.state, record.native_id, job_id)
        answer = {**result, "edge_name": name, "tunnel": tunnel}
        if not tunnel and record.executor != "local" and launch.is_loopback_url(
                child["environment"].get("RADICAL_EDGE_REDIS_URL") or ""):
            answer["warning"] = ("the child edge gets a loopback Redis URL: it can only "
                                 "connect when its job runs on this host; use tunnel=true or "
                                 "set RADICAL_EDGE_REDIS_URL in job_spec.environment")
        return answer

    async def _delegate_enrollment(self, child: dict, name: str) -> dict:
        """Under Redis ACLs the child enrolls at the bridge with a token this edge mints."""
        from radical.edge.hpc.launch import enroll as child_enroll

        env = child.get("environment") or {}
        if "RADICAL_EDGE_ENROLL_TOKEN" in env or not child_enroll.uses_edge_acl_user(
                self._redis_url, self.app.edge_name):
            return child
        bridge = getattr(getattr(self.app, "settings", None), "bridge_url", None)
        if not bridge:
            raise launch.LaunchError(
                "this edge uses its own Redis ACL user, so a child edge must enroll at the "
                "bridge: start this edge with --url BRIDGE (or set RADICAL_BRIDGE_URL), or "
                "pass RADICAL_EDGE_ENROLL_TOKEN and --url in job_spec", status=422)
        token = await child_enroll.mint(self.app.redis, self.app.edge_name, name)
        return child_enroll.delegate(child, self.app.edge_name, token, bridge)

    async def _check_name_free(self, name: str) -> None:
        if name == self.app.edge_name:
            raise HTTPException(409, f"'{name}' is this edge's own name")
        if name in self._children:
            raise HTTPException(409, f"a child edge named '{name}' was already launched "
                                     "from this edge and its job has not ended")
        if self.tunnels.busy(name):
            raise HTTPException(409, f"a tunnel for edge '{name}' is already active")
        redis = getattr(self.app, "redis", None)
        if redis is not None:
            try:
                alive = await redis.exists(keys.edge_info(name))
            except Exception:
                alive = 0
            if alive:
                raise HTTPException(409, f"an edge named '{name}' is already connected")

    def _child_hook(self, name: str):
        """psij-thread callback for a child's job: hand state changes to the loop."""
        tunnels = self.tunnels
        loop = self._loop()

        def hook(record: JobRecord, note: dict) -> None:
            tunnels.job_state(name, note["state"], record.native_id, record.job_id)
            if note["state"] in FINAL_STATES:
                if loop is not None and loop.is_running():
                    loop.call_soon_threadsafe(self._child_ended, name, record.job_id)
                else:
                    self._child_ended(name, record.job_id)

        return hook

    def _child_ended(self, name: str, job_id: str) -> None:
        child = self._children.get(name)
        if child is not None and child.get("job_id") in (job_id, None):
            self._children.pop(name, None)

    async def tunnel_status(self, request: Request) -> dict:
        return await self.tunnels.lookup(request.path_params["edge_name"])

    async def get_job_status(self, request: Request) -> dict:
        session = self._session(request)
        return await session.get_job_status(request.path_params["job_id"],
                                            _offset(request, "stdout_offset"),
                                            _offset(request, "stderr_offset"))

    async def launch_log(self, request: Request) -> dict:
        """A launched child edge's job stderr and log tail (why it did not join)."""
        record = self._session(request).record(request.path_params["job_id"])
        if not record.edge_name:
            raise HTTPException(404, f"job '{record.job_id}' did not launch an edge "
                                     "(use status/ for its output)")
        return await asyncio.to_thread(launch_log.launch_log, record)

    async def list_jobs(self, request: Request) -> dict:
        return await self._session(request).list_jobs()

    async def cancel_job(self, request: Request) -> dict:
        return await self._session(request).cancel_job(request.path_params["job_id"])

    async def executors(self, request: Request) -> dict:
        """Executors this edge can use (psij has them and their submit tool is on PATH);
        the others under `unavailable` with the reason, so a portal offers only usable ones."""
        known = await asyncio.to_thread(self._pool.known)
        usable, unavailable = [], {}
        for name in sorted(known | {"pbs"}):
            tool = missing_tool(normalize_executor(name, known | {"pbs"}))
            if tool is None:
                usable.append(name)
            else:
                unavailable[name] = f"'{tool}' is not on this edge's PATH"
        dflt = _default_executor(self.app)
        return {"executors": usable, "unavailable": unavailable,
                "default": dflt if dflt in usable else "local"}
