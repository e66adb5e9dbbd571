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


def __getattr__(name: str) -> Any:
    if name in ("Plugin", "PluginSession"):
        from .plugins import base

        return getattr(base, name)
    raise AttributeError(f"module 'radical.edge' has no attribute {name!r}")
