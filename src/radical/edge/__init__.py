"""radical.edge: one HTTP/SSE door to many HPC sites.

The client side (`BridgeClient`, `EdgeClient`, `PluginClient`) needs only httpx; the
edge-side authoring API (`Plugin`, `PluginSession`) is imported lazily so a laptop without
Celery, Starlette or psutil can still `from radical.edge import BridgeClient`.
"""
from __future__ import annotations

from typing import Any

from .version import __version__
from .sdk import BridgeClient, CallOutcomeError, EdgeClient, EdgeError, PluginClient

__all__ = ["BridgeClient", "EdgeClient", "PluginClient", "EdgeError", "CallOutcomeError", "Plugin",
           "PluginSession", "__version__"]


#: the original package exported its plugin classes at the top (`radical.edge.PluginPSIJ`)
_ORIGINAL_NAMES = {name: module for module, names in {
    "plugin_sysinfo": ("PluginSysInfo", "SysInfoClient", "SysInfoSession"),
    "plugin_queue_info": ("PluginQueueInfo", "QueueInfoClient", "QueueInfoSession"),
    "plugin_psij": ("PluginPSIJ", "PSIJClient", "PSIJSession"),
    "plugin_rhapsody": ("PluginRhapsody", "RhapsodyClient", "RhapsodySession"),
}.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in ("Plugin", "PluginSession"):
        from .plugins import base

        return getattr(base, name)
    if name in _ORIGINAL_NAMES:
        import importlib

        return getattr(importlib.import_module(f".{_ORIGINAL_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'radical.edge' has no attribute {name!r}")
