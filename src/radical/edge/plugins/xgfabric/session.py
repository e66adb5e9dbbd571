"""Sessions of the xgfabric plugin, and the one workflow run an edge drives at a time.

A session is a client's view: its config directory and the calls it makes.  The run itself
belongs to the plugin (`Runner`): one at a time per edge, because a run owns the clusters it
allocates; every session sees its state, and only its starter (or an admin) may stop it.
"""
from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any, Callable, Dict, List

from starlette.exceptions import HTTPException

from radical.edge.sdk.bridge import BridgeClient
from radical.edge.sdk.errors import EdgeError
from radical.edge.settings import XGFabricSettings

from ..base import PluginSession
from .config import BUILTIN_WORKFLOWS, ConfigStore, check_bridge_url, config_to_dict
from .engine import Engine
from .state import StateBox, WorkflowState, now_iso

log = logging.getLogger(__name__)

__all__ = ["Runner", "XGFabricSession"]


class Runner:
    """The workflow run of one xgfabric plugin instance."""

    def __init__(self, edge_name: str, publish: Callable[[dict], None]) -> None:
        self.edge_name = edge_name
        self._publish = publish
        self.box = StateBox(WorkflowState(), publish)
        self.engine: Engine | None = None
        self.owner: str | None = None
        self._starting = False

    @property
    def running(self) -> bool:
        return self._starting or (self.engine is not None and self.engine.running)

    def status(self) -> dict:
        return self.box.snapshot()

    def topology_changed(self, edges: dict) -> None:
        if self.engine is not None and self.engine.running:
            self.engine.topology_changed(edges)

    async def start(self, store: ConfigStore, workflow: str, resource: str,
                    bridge_url: str | None, bridge_cert: str | None,
                    owner: str | None) -> dict:
        if self.running:
            raise HTTPException(409, f"a workflow is already running on edge "
                                     f"'{self.edge_name}' (run {self.box.get('run_id')}, "
                                     f"phase {self.box.get('phase')}); stop it first")
        self._starting = True
        try:
            wf = await asyncio.to_thread(store.workflow, workflow)
            res = await asyncio.to_thread(store.resource, resource)
            url = check_bridge_url(bridge_url or res.bridge_url)
            cert = bridge_cert or res.bridge_cert
            bc = await asyncio.to_thread(_connect, url, cert)
            settings = XGFabricSettings()
            self.box = StateBox(WorkflowState(
                status="running", phase="starting", start_time=now_iso(),
                config_name=wf.name, resource_name=res.name, config_dir=str(store.directory),
                total_simulations=wf.num_simulations), self._publish)
            self.engine = Engine(wf, res, bc, self.edge_name, self.box,
                                 settings.xgfabric_alloc_timeout,
                                 settings.xgfabric_release_timeout)
            self.owner = owner
            self.engine.start()
        finally:
            self._starting = False
        return self.box.snapshot()

    async def stop(self, caller: str | None, is_admin: bool) -> dict:
        engine = self.engine
        if engine is None or not engine.running:
            last = self.box.get("status")
            raise HTTPException(409, f"no workflow is running on edge '{self.edge_name}' "
                                     f"(status: {last})")
        if self.owner and caller and caller != self.owner and not is_admin:
            raise HTTPException(403, "the running workflow was started by another user")
        timeout = XGFabricSettings().xgfabric_release_timeout + 60.0
        report = await asyncio.to_thread(engine.stop, timeout)
        return {"stopped": not engine.running, "cleanup": report, "state": self.box.snapshot()}

    async def shutdown(self) -> None:
        if self.engine is not None and self.engine.running:
            await asyncio.to_thread(self.engine.stop, 90.0)


def _connect(url: str, cert: str | None) -> BridgeClient:
    """A client of the bridge that works, or 502 saying why (the edge's own credentials:
    ``$RADICAL_EDGE_TOKEN`` or, for a bridge on this host, its token file)."""
    bc = BridgeClient(url, cert=cert)
    try:
        bc.topology()
    except EdgeError as exc:
        bc.close()
        if exc.status in (401, 403):
            raise HTTPException(502, f"the bridge at {url} refused this edge ({exc.status}): "
                                     "give the edge a token (RADICAL_EDGE_TOKEN in its "
                                     "environment, or the bridge's token file on this host)")
        raise HTTPException(502, f"cannot use the bridge at {url}: {exc.detail}") from None
    except Exception as exc:
        bc.close()
        raise HTTPException(502, f"cannot reach the bridge at {url}: {exc}") from None
    return bc


class XGFabricSession(PluginSession):
    """XGFabric session - manages workflow configuration and execution."""

    def __init__(self, sid: str, workdir: str | None = None, edge_name: str | None = None,
                 bridge_url: str | None = None, bridge_cert: str | None = None, *,
                 runner: Runner | None = None, default_bridge: str | None = None) -> None:
        super().__init__(sid)
        self._store = ConfigStore(workdir or XGFabricSettings().xgfabric_dir)
        if workdir is not None:
            _check_dir(workdir)
        self.edge_name = edge_name
        self.bridge_url = bridge_url or default_bridge
        self.bridge_cert = bridge_cert
        self._runner = runner or Runner(edge_name or "edge", lambda _s: None)
        self._edges: Dict[str, Any] = {}

    def update_connected_edges(self, edges: Dict[str, Any]) -> None:
        """Update the cached list of connected edges."""
        self._edges = dict(edges)

    async def get_config_dir(self) -> Dict:
        """Get current config directory."""
        return {"path": str(self._store.directory)}

    async def set_config_dir(self, path: str) -> Dict:
        """Set config directory (absolute; created when missing)."""
        _check_dir(path)
        directory = Path(os.path.expanduser(path))
        try:
            await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise HTTPException(422, f"cannot use {path} as config directory: {exc}") from None
        self._store = ConfigStore(str(directory))
        return {"path": str(directory)}

    async def list_configs(self) -> List[Dict]:
        """List all saved configurations (and the built-ins)."""
        return await asyncio.to_thread(self._store.list)

    async def load_config(self, name: str) -> Dict:
        """Load a config by name or builtin alias ('default', 'test', '__default__')."""
        return await asyncio.to_thread(self._store.load, name)

    async def save_config(self, data: Dict) -> Dict:
        """Save a configuration (``kind``: workflow, the default, or resource)."""
        return await asyncio.to_thread(self._store.save, data)

    async def delete_config(self, name: str) -> Dict:
        """Delete a configuration."""
        return await asyncio.to_thread(self._store.delete, name)

    def builtin(self, name: str) -> Dict:
        return {**config_to_dict(BUILTIN_WORKFLOWS[name]()), "kind": "workflow", "builtin": True}

    async def get_status(self) -> Dict:
        """Get current workflow status including cluster info."""
        return self._runner.status()

    async def start_workflow(self, workflow: str = "__default__",
                             resource: str = "__default__") -> Dict:
        """Start workflow execution (409 while one runs)."""
        return await self._runner.start(self._store, workflow, resource, self.bridge_url,
                                        self.bridge_cert, self.owner)

    async def stop_workflow(self, caller: str | None = None, is_admin: bool = True) -> Dict:
        """Stop running workflow (409 when none runs); reports what it released."""
        return await self._runner.stop(caller, is_admin)

    async def close(self) -> dict:
        """Close the session (a run goes on: it belongs to the edge, not to one client)."""
        return await super().close()


def _check_dir(path: Any) -> None:
    if not isinstance(path, str) or not os.path.isabs(os.path.expanduser(path)):
        raise HTTPException(422, f"the config directory must be an absolute path, got {path!r}")
