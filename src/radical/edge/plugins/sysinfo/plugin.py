"""The sysinfo plugin, edge side: live CPU, memory, disk, network and GPU metrics.

Collection blocks (psutil, statvfs, nvidia-smi), so every call goes through
`asyncio.to_thread`; the edge loop only awaits.
"""
from __future__ import annotations

import asyncio
import threading

from starlette.requests import Request

from ..base import Plugin, PluginHostAPI, PluginSession
from . import metrics
from . import models as m


class SysInfoSession(PluginSession):
    """A client's handle on the metrics; it holds no state, the caches are process-wide."""

    async def get_metrics(self) -> dict:
        """Current metrics, collected off the event loop."""
        return await asyncio.to_thread(metrics.collect_metrics)


class SysInfoPlugin(Plugin):
    """Hardware configuration and utilisation of the host the edge runs on."""

    plugin_name = "sysinfo"
    version = "0.1.0"
    session_class = SysInfoSession
    # a string so the SDK can import the client without psutil or this module
    client_class = "radical.edge.plugins.sysinfo.client:SysInfoClient"
    ui_config = {
        "title": "System Info",
        "icon": "🖥️",
        "description": "Live CPU, memory, disk, network and GPU metrics.",
        "refresh_button": True,
        "monitors": [{
            "id": "metrics",
            "title": "System Metrics",
            "type": "metrics",
            "css_class": "sysinfo-content",
            "auto_load": "metrics/{sid}",
        }],
    }

    def __init__(self, app: PluginHostAPI, instance_name: str | None = None) -> None:
        super().__init__(app, instance_name)
        self._prefetch: threading.Thread | None = None
        self.add_route_get("homedir", self.homedir_endpoint, response=m.HomeDir)
        self.add_route_get("host_role", self.host_role_endpoint, response=m.HostRole)
        self.add_route_get("metrics/{sid}", self.get_metrics_endpoint, response=m.Metrics)

    async def startup(self) -> None:
        """Warm caches (cpu model, mounts, GPU tools) in the background, not on the loop."""
        self._prefetch = metrics.start_prefetch()

    async def homedir_endpoint(self, request: Request) -> dict:
        """Home directory of the edge process (no session needed)."""
        return await asyncio.to_thread(metrics.homedir)  # user lookup may ask LDAP

    async def host_role_endpoint(self, request: Request) -> dict:
        """Role of this host and, inside a batch allocation, its scheduler and job id."""
        state = self.app.state
        return {"role": self.app.role,
                "scheduler": getattr(state, "scheduler", None),
                "job_id": getattr(state, "job_id", None)}

    async def get_metrics_endpoint(self, request: Request) -> dict:
        """Metrics for session `sid` (404 unknown, 410 expired)."""
        session = self.get_session(request)
        return await session.get_metrics()  # type: ignore[attr-defined]
