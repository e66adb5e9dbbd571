"""A plugin host inside the bridge process: plugins served under `/bridge/<plugin>/...`.

As in the original, a bridge may host plugins itself (`radical-edge bridge --plugins
sysinfo`). They run on the bridge's own asyncio loop and are called directly, with no Redis
hop; their notifications go into the same Redis stream as every edge's, so all bridges'
SSE clients see them. They appear in `/edge/list` under the reserved edge name `bridge`
with `endpoint.type = "radical.edge.bridge"`; `Plugin.is_bridge` is true for them, and a
plugin's `is_enabled(app)` sees `app.role == "bridge"` to decide whether to load here.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Any, Callable

import redis.asyncio as aioredis

from ..app.protocol import CallReply, CallRequest
from ..plugins import loader
from ..plugins.api_doc import api_document
from ..plugins.base import Plugin
from ..plugins.host_api import HostState
from ..settings import Settings
from ..version import __version__
from .call_runner import run_call
from .notifier import Notifier
from .plugin_fanout import reap_sessions_forever, tell_topology
from .router import Router

log = logging.getLogger(__name__)

#: the reserved edge name bridge-hosted plugins are listed under
BRIDGE_EDGE = "bridge"


class LocalPluginHost:
    """Implements `plugins.host_api.PluginHostAPI` for plugins living in the bridge."""

    edge_name = BRIDGE_EDGE
    role = "bridge"

    def __init__(self, settings: Settings, redis: aioredis.Redis) -> None:
        self.settings = settings
        self.state = HostState()
        self.router = Router()
        self.plugins: dict[str, Plugin] = {}
        self._redis = redis
        self._loop: asyncio.AbstractEventLoop | None = None
        self._notifier: Notifier | None = None
        self._reaper: asyncio.Task | None = None
        self._started = time.time()
        #: (digest, JSON) of the hosted plugins' routes; the bridge's OpenAPI reads it
        self.api: tuple[str, bytes] | None = None

    # -- PluginHostAPI ----------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "the bridge plugin host is not started"
        return self._loop

    def add_route(self, method: str, path: str, handler: Callable[..., Any]) -> None:
        self.router.add(method, path, handler)

    def notify(self, plugin: str, topic: str, data: dict) -> None:
        if self._notifier is not None:
            self._notifier.publish(plugin, topic, data)

    # -- life cycle -------------------------------------------------------------------------
    async def start(self, plugin_classes: list[type[Plugin]]) -> None:
        self._loop = asyncio.get_running_loop()
        self._notifier = Notifier(self._redis, BRIDGE_EDGE, self._loop)
        self._notifier.start()
        for cls in plugin_classes:
            if not cls.is_enabled(self):
                log.warning("plugin %s does not load on the bridge", cls.plugin_name)
                continue
            plugin = cls(self)
            self.plugins[plugin.instance_name] = plugin
        for plugin in self.plugins.values():
            await plugin.startup()
        self.api = api_document(self.plugins)
        self._reaper = self._loop.create_task(
            reap_sessions_forever(lambda: self.plugins.values()))
        log.warning("bridge hosts plugins: %s", ", ".join(self.plugins) or "none")

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for plugin in self.plugins.values():
            try:
                await asyncio.wait_for(plugin.shutdown(), 10)
            except Exception:
                log.exception("bridge plugin %s did not shut down cleanly", plugin.instance_name)
        if self._notifier is not None:
            await self._notifier.flush()
            await self._notifier.stop()

    # -- calls ------------------------------------------------------------------------------
    async def call(self, call: CallRequest) -> CallReply:
        """Run one call on this loop (no Redis hop); never raises."""
        return await run_call(self.router, call, {"edge": BRIDGE_EDGE, "host": self})

    async def on_topology_change(self, edges: dict) -> None:
        await tell_topology(self.plugins.values(), edges)

    # -- description ------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The `bridge` entry of `/edge/list` (same shape as an edge's announcement)."""
        return {
            "name": BRIDGE_EDGE,
            "endpoint": {"type": "radical.edge.bridge", "transport": "local"},
            "plugins": {name: p.describe() for name, p in self.plugins.items()},
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "role": "bridge",
            "scheduler": None,
            "job_id": None,
            "allocation": None,
            "walltime_end": None,
            "accepting": True,
            "started": self._started,
            "version": __version__,
        }


def hosting(spec: str) -> Callable[[Settings, aioredis.Redis], Any]:
    """A factory the bridge calls once its Redis client exists: host the plugins `spec`
    names (as `--plugins`) and return the started host."""
    async def start(settings: Settings, redis: aioredis.Redis) -> LocalPluginHost:
        host = LocalPluginHost(settings, redis)
        await host.start(loader.select(spec))
        return host

    return start
