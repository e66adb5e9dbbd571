"""The queue_info plugin, edge side: partitions, jobs, allocations and cancel over REST.

All sessions share one backend so its cache serves every client; backend calls block
(scheduler commands), so they run in threads via `asyncio.to_thread`. The plugin loads only
on hosts with a batch system.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request

from radical.edge.hpc.batch import BatchSystem, detect_batch_system

from ..base import Plugin, PluginHostAPI, PluginSession
from . import models as m
from .backends import (JobEnded, NotAJobId, QueueInfo, QueueInfoError, UnknownJob,
                       make_queue_info)

log = logging.getLogger(__name__)

_CANCELLABLE = ["PENDING", "RUNNING", "CONFIGURING", "SUSPENDED", "HELD", "REQUEUED"]


def parse_bool(value: str | None) -> bool:
    """Query-string flag: 'true', '1', 'yes', 'on' (any case) are true."""
    return str(value or "").strip().lower() in ("true", "1", "yes", "on")


def _batch_of(app: Any) -> BatchSystem:
    """The host's detected batch system, or a fresh detection when the host has none."""
    batch = getattr(getattr(app, "state", None), "batch", None)
    return batch if batch is not None else detect_batch_system()


class QueueInfoSession(PluginSession):
    """A client's handle on the shared backend; closing it leaves the backend alone."""

    def __init__(self, sid: str, backend: QueueInfo) -> None:
        super().__init__(sid)
        self._backend = backend

    @property
    def backend(self) -> QueueInfo:
        return self._backend

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args)
        except QueueInfoError as exc:
            raise HTTPException(exc.status, exc.detail) from None

    async def get_info(self, user: str | None = None, force: bool = False) -> dict:
        return await self._call(self._backend.get_info, user, force)

    async def list_jobs(self, queue: str, user: str | None = None,
                        force: bool = False) -> dict:
        return await self._call(self._backend.list_jobs, queue, user, force)

    async def list_all_jobs(self, user: str | None = None, force: bool = False) -> dict:
        return await self._call(self._backend.list_all_jobs, user, force)

    async def list_allocations(self, user: str | None = None, force: bool = False) -> dict:
        return await self._call(self._backend.list_allocations, user, force)

    async def cancel_job(self, job_id: str) -> dict:
        """Cancel; idempotent like the original: a job that already ended, or that the
        scheduler no longer knows, answers 200 with `canceled: false` and a `status`
        saying which ("ended" with its final `state`, or "unknown" with a `detail`). An
        id that is not shaped like a job id stays a 404 (bad input)."""
        try:
            answer = await asyncio.to_thread(self._backend.cancel_job, job_id)
        except JobEnded as exc:
            return {"job_id": job_id, "status": "ended", "state": exc.state,
                    "canceled": False, "detail": exc.detail}
        except NotAJobId as exc:
            raise HTTPException(exc.status, exc.detail) from None
        except UnknownJob as exc:
            return {"job_id": job_id, "status": "unknown", "state": None, "canceled": False,
                    "detail": f"{exc.detail}: the scheduler does not know it (never existed, "
                              "or ended and was purged); nothing to cancel"}
        except QueueInfoError as exc:
            raise HTTPException(exc.status, exc.detail) from None
        return {"canceled": True, **answer}


class QueueInfoPlugin(Plugin):
    """Batch queues, jobs and allocations of the host's scheduler (SLURM or PBS)."""

    plugin_name = "queue_info"
    version = "0.1.0"
    session_class = QueueInfoSession
    client_class = "radical.edge.plugins.queue_info.client:QueueInfoClient"
    ui_config = {
        "title": "Queue Info",
        "icon": "📋",
        "description": "Inspect batch partitions, jobs and allocations.",
        "refresh_button": True,
        "monitors": [
            {"id": "allocation", "title": "This edge's job allocation", "type": "card",
             "auto_load": "job_allocation", "field": "allocation",
             "empty_text": "Not inside a batch job (login node).",
             "fields": ["job_id", "partition", "n_nodes", "nodelist", "cpus_per_node",
                        "gpus_per_node", "account", "job_name", "runtime",
                        "remaining_seconds"]},
            {"id": "partitions", "title": "Partitions / Queues", "type": "table",
             "css_class": "queueinfo-content", "auto_load": "get_info/{sid}",
             "field": "queues", "key": "name",
             "columns": [{"field": "name", "label": "Name"},
                         {"field": "state", "label": "State", "badge": True},
                         {"field": "default", "label": "Default"},
                         {"field": "nodes_total", "label": "Nodes"},
                         {"field": "nodes_idle", "label": "Idle"},
                         {"field": "cpus_per_node", "label": "CPUs/node"},
                         {"field": "gpus_per_node", "label": "GPUs/node"},
                         {"field": "mem_per_node_mb", "label": "Mem/node (MB)"},
                         {"field": "time_limit", "label": "Time limit (min)"}],
             "row_link": "list_jobs/{sid}/{name}"},
            {"id": "my_jobs", "title": "My jobs", "type": "table",
             "auto_load": "list_all_jobs/{sid}", "field": "jobs", "key": "job_id",
             "empty_text": "No active jobs.",
             "columns": [{"field": "job_id", "label": "Job ID"},
                         {"field": "job_name", "label": "Name"},
                         {"field": "partition", "label": "Partition"},
                         {"field": "state", "label": "State", "badge": True},
                         {"field": "nodes", "label": "Nodes"},
                         {"field": "time_used", "label": "Time used", "format": "duration"},
                         {"field": "time_limit", "label": "Limit (min)"}],
             "row_actions": [{"id": "cancel", "label": "✕ Cancel", "style": "danger",
                              "method": "POST", "path": "cancel/{sid}/{job_id}",
                              "confirm": "Cancel job {job_id}?",
                              "when": {"field": "state", "in": _CANCELLABLE}}]},
        ],
    }

    @classmethod
    def is_enabled(cls, app: PluginHostAPI) -> bool:
        """Load only where a batch system (SLURM or PBS) exists."""
        try:
            return _batch_of(app).name != "none"
        except Exception:
            log.exception("batch-system detection failed; queue_info stays off")
            return False

    @classmethod
    def disabled_reason(cls, app: PluginHostAPI) -> str:
        return "no batch system detected (SLURM/PBS)"

    def __init__(self, app: PluginHostAPI, instance_name: str | None = None,
                 backend: QueueInfo | None = None) -> None:
        super().__init__(app, instance_name)
        self._batch = backend.batch if backend is not None and backend.batch else _batch_of(app)
        self._backend = backend if backend is not None else make_queue_info(self._batch)
        self.add_route_get("job_allocation", self.job_allocation_endpoint,
                           response=m.JobAllocation)
        self.add_route_get("backend", self.backend_endpoint, response=m.Backend)
        self.add_route_get("get_info/{sid}", self.get_info_endpoint, query=m.UserQuery,
                           response=m.Queues)
        self.add_route_get("list_jobs/{sid}/{queue}", self.list_jobs_endpoint,
                           query=m.UserQuery, response=m.Jobs)
        self.add_route_get("list_all_jobs/{sid}", self.list_all_jobs_endpoint,
                           query=m.UserQuery, response=m.Jobs)
        self.add_route_get("list_allocations/{sid}", self.list_allocations_endpoint,
                           query=m.UserQuery, response=m.Allocations)
        self.add_route_post("cancel/{sid}/{job_id}", self.cancel_endpoint, response=m.Canceled)

    @property
    def backend(self) -> QueueInfo:
        return self._backend

    async def startup(self) -> None:
        """Warm the caches in background threads so the first portal view is quick."""
        self._backend.start_prefetch()

    async def create_session(self, sid: str, **kwargs: Any) -> PluginSession:
        if kwargs:
            raise TypeError(f"unexpected session argument(s): {', '.join(sorted(kwargs))}")
        return QueueInfoSession(sid, self._backend)

    def get_job_allocation(self) -> dict | None:
        """The batch job this edge runs in, or None on a login node."""
        return self._batch.allocation()

    # -- routes ---------------------------------------------------------------------------------
    def _session(self, request: Request) -> QueueInfoSession:
        return self.get_session(request)  # type: ignore[return-value]

    @staticmethod
    def _args(request: Request) -> tuple[str | None, bool]:
        user = (request.query_params.get("user") or "").strip() or None
        return user, parse_bool(request.query_params.get("force"))

    async def job_allocation_endpoint(self, request: Request) -> dict:
        """{"allocation": {...}} inside a batch job, {"allocation": null} elsewhere."""
        return {"allocation": await asyncio.to_thread(self.get_job_allocation)}

    async def backend_endpoint(self, request: Request) -> dict:
        return {"backend": self._backend.backend_name}

    async def get_info_endpoint(self, request: Request) -> dict:
        return await self._session(request).get_info(*self._args(request))

    async def list_jobs_endpoint(self, request: Request) -> dict:
        queue = request.path_params["queue"]
        return await self._session(request).list_jobs(queue, *self._args(request))

    async def list_all_jobs_endpoint(self, request: Request) -> dict:
        return await self._session(request).list_all_jobs(*self._args(request))

    async def list_allocations_endpoint(self, request: Request) -> dict:
        return await self._session(request).list_allocations(*self._args(request))

    async def cancel_endpoint(self, request: Request) -> dict:
        return await self._session(request).cancel_job(request.path_params["job_id"])
