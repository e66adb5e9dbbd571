"""The xgfabric plugin, edge side: CFD-and-AI workflows across several clusters.

Runs on an edge and drives other edges through the bridge as a client of their queue_info,
psij, staging and rhapsody plugins (see `engine`).  Routes (under ``/{edge}/xgfabric/``)::

    GET  workdir/{sid}                 -> {"path"}            (the config directory)
    POST workdir/{sid}   {"path"}      -> {"path"}
    GET  configs/{sid}                 -> [{name, kind, description, modified, builtin}]
    GET  config/{sid}/default | test   -> the built-in workflow template
    GET  config/{sid}/{name}           -> the config (saved first, then built-in; __default__)
    POST config/{sid}    {config}      -> {"name", "kind", "path"}   (save)
    POST config/{sid}/{name}/delete    -> {"name", "deleted"}
    GET  status/{sid}                  -> WorkflowState
    POST start/{sid}     {"workflow", "resource"} -> WorkflowState   (409 while one runs)
    POST stop/{sid}                    -> {"stopped", "cleanup", "state"}  (409 when idle)

Every change of a run is published as ``workflow_status`` with the whole WorkflowState.
The edge reaches the bridge with its own credentials (``$RADICAL_EDGE_TOKEN``, or the token
file of a bridge on the same host); none travel in calls or notifications.  The bridge URL:
the session's ``bridge_url``, else the edge's ``RADICAL_BRIDGE_URL``, else the resource
config's ``bridge_url``.
"""
from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..authz import identity_of
from ..base import Plugin, PluginHostAPI, json_body
from .config import DEFAULT_ALIAS
from .session import Runner, XGFabricSession


class XGFabricPlugin(Plugin):
    """XGFabric plugin: configuration management and workflow execution via REST."""

    plugin_name = "xgfabric"
    version = "0.1.0"
    session_class = XGFabricSession
    client_class = "radical.edge.plugins.xgfabric.client:XGFabricClient"
    session_ttl = 24 * 3600.0
    ui_module = "xgfabric"
    ui_config = {
        "custom_template": True,
        "title": "XGFabric Workflow",
        "icon": "🌊",
        "description": "CFDaAI workflow orchestrator for HPC clusters.",
        "notifications": {"topic": "workflow_status", "id_field": "run_id",
                          "state_field": "status"},
    }

    @classmethod
    def is_enabled(cls, app: PluginHostAPI) -> bool:
        """XGFabric loads on edge nodes (login or compute) — not on the bridge."""
        return app.role != "bridge"

    @classmethod
    def disabled_reason(cls, app: PluginHostAPI) -> str:
        return "xgfabric runs on edges, not on the bridge"

    def __init__(self, app: PluginHostAPI, instance_name: str | None = None) -> None:
        super().__init__(app, instance_name)
        self.runner = Runner(app.edge_name, self._publish)
        for path, handler in (("workdir/{sid}", self.get_workdir),
                              ("configs/{sid}", self.list_configs),
                              ("config/{sid}/default", self.get_default_config),
                              ("config/{sid}/test", self.get_test_config),
                              ("config/{sid}/{name}", self.load_config),
                              ("status/{sid}", self.get_status)):
            self.add_route_get(path, handler)
        for path, handler in (("workdir/{sid}", self.set_workdir),
                              ("config/{sid}", self.save_config),
                              ("config/{sid}/{name}/delete", self.delete_config),
                              ("start/{sid}", self.start_workflow),
                              ("stop/{sid}", self.stop_workflow)):
            self.add_route_post(path, handler)

    def _publish(self, state: dict) -> None:
        self._dispatch_notify("workflow_status", state)

    async def create_session(self, sid: str, **kwargs: Any) -> XGFabricSession:
        settings = getattr(self.app, "settings", None)
        kwargs.setdefault("edge_name", self.app.edge_name)
        return XGFabricSession(sid, runner=self.runner,
                               default_bridge=getattr(settings, "bridge_url", None), **kwargs)

    async def shutdown(self) -> None:
        await self.runner.shutdown()
        await super().shutdown()

    async def on_topology_change(self, edges: dict) -> None:
        """Handle topology updates from the bridge: a run loses clusters whose edge left."""
        for session in self.sessions():
            if isinstance(session, XGFabricSession):
                session.update_connected_edges(edges)
        self.runner.topology_changed(edges)

    def _session(self, request: Request) -> XGFabricSession:
        session = self.get_session(request)
        assert isinstance(session, XGFabricSession)
        return session

    async def get_workdir(self, request: Request) -> dict:
        return await self._session(request).get_config_dir()

    async def set_workdir(self, request: Request) -> dict:
        body = await json_body(request, default={})
        if not isinstance(body, dict) or not isinstance(body.get("path"), str):
            raise HTTPException(422, "set_workdir expects {\"path\": \"/absolute/dir\"}")
        return await self._session(request).set_config_dir(body["path"])

    async def list_configs(self, request: Request) -> list:
        return await self._session(request).list_configs()

    async def get_default_config(self, request: Request) -> dict:
        return self._session(request).builtin("default")

    async def get_test_config(self, request: Request) -> dict:
        return self._session(request).builtin("test")

    async def load_config(self, request: Request) -> dict:
        return await self._session(request).load_config(request.path_params["name"])

    async def save_config(self, request: Request) -> dict:
        body = await json_body(request)
        if isinstance(body, dict) and isinstance(body.get("config"), dict) and "name" not in body:
            body = body["config"]
        return await self._session(request).save_config(body)

    async def delete_config(self, request: Request) -> dict:
        return await self._session(request).delete_config(request.path_params["name"])

    async def get_status(self, request: Request) -> dict:
        return await self._session(request).get_status()

    async def start_workflow(self, request: Request) -> dict:
        session = self._session(request)
        body = await json_body(request, default={})
        if not isinstance(body, dict):
            raise HTTPException(422, "start expects {\"workflow\": NAME, \"resource\": NAME}")
        names = {k: body.get(k) or DEFAULT_ALIAS for k in ("workflow", "resource")}
        for key, value in names.items():
            if not isinstance(value, str):
                raise HTTPException(422, f"'{key}' must be a config name, got {value!r}")
        return await session.start_workflow(names["workflow"], names["resource"])

    async def stop_workflow(self, request: Request) -> dict:
        who = identity_of(request)
        return await self._session(request).stop_workflow(
            who.user if who else None, who is None or who.is_admin)


__all__ = ["XGFabricPlugin"]
