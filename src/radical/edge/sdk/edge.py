"""`EdgeClient`: one edge as seen through the bridge, and plugin client class resolution.

The original client found a plugin's client class through the edge-side `Plugin` registry,
which dragged the edge's dependencies (FastAPI, psutil, psij, ...) onto every laptop.  Here
the class is found by import path only, and a plugin whose client module cannot be imported
still works through the generic `PluginClient`.

The SDK never imports a module because an edge named it: an edge's announcement is data
from the network, and importing runs code. Client classes come from the built-in map, from
the `radical.edge.clients` entry points of packages the user installed, or from a module the
user's program already imported.
"""
from __future__ import annotations

import functools
import logging
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from ..registry import Registry, resolve
from .errors import EdgeError
from .plugin import PluginClient

if TYPE_CHECKING:
    from .bridge import BridgeClient

log = logging.getLogger("radical.edge.sdk")

__all__ = ["EdgeClient", "BUILTIN_CLIENTS", "ENTRY_POINT_GROUP", "resolve_client_class",
           "load_client_class"]

#: client classes of the plugins shipped with radical.edge, by plugin *type*
BUILTIN_CLIENTS: dict[str, str] = {
    "sysinfo": "radical.edge.plugins.sysinfo.client:SysInfoClient",
    "queue_info": "radical.edge.plugins.queue_info.client:QueueInfoClient",
    "psij": "radical.edge.plugins.psij.client:PsijClient",
    "rhapsody": "radical.edge.plugins.rhapsody.client:RhapsodyClient",
    "xgfabric": "radical.edge.plugins.xgfabric.client:XGFabricClient",
    "lucid": "radical.edge.plugins.lucid.client:LucidClient",
    "staging": "radical.edge.plugins.staging.client:StagingClient",
}

#: third-party packages register ``{plugin type} = "module:Class"`` here
ENTRY_POINT_GROUP = "radical.edge.clients"


def load_client_class(spec: str, import_: bool = True) -> type[PluginClient] | None:
    """Import ``module:Qual.Name``; None (logged) if missing, broken or not a PluginClient.

    With ``import_=False`` only a module already in `sys.modules` is looked at.
    """
    module_name, _, qualname = spec.partition(":")
    if not module_name or not qualname:
        log.warning("ignoring malformed client path %r (want 'module:Class')", spec)
        return None
    if not import_ and module_name not in sys.modules:
        log.debug("not importing %s: announced by an edge, not installed as an entry point",
                  module_name)
        return None
    try:
        obj: Any = resolve(spec)
    except (ImportError, AttributeError, ValueError) as exc:
        log.debug("client class %s not importable: %s", spec, exc)
        return None
    except Exception as exc:  # a module failing at import time must not break get_plugin
        log.warning("client class %s failed to load: %s: %s", spec, type(exc).__name__, exc)
        return None
    if not (isinstance(obj, type) and issubclass(obj, PluginClient)):
        log.warning("client path %s is not a PluginClient subclass", spec)
        return None
    return obj


def _entry_point_class(plugin_type: str) -> type[PluginClient] | None:
    third_party: Registry[type[PluginClient]] = Registry("client")
    third_party.load_entry_points(ENTRY_POINT_GROUP)
    path = third_party.path(plugin_type)
    return load_client_class(path) if path else None


@functools.lru_cache(maxsize=None)
def resolve_client_class(plugin_type: str | None,
                         announced: str | None = None) -> type[PluginClient]:
    """The client class for a plugin type.

    Order: the built-in map, the ``client`` path the edge announces if its module is
    already imported (never imported because of the announcement), the
    ``radical.edge.clients`` entry points, and finally the generic `PluginClient` (which
    still offers sessions, notifications and `_request`).  Cached per process.
    """
    if plugin_type and plugin_type in BUILTIN_CLIENTS:
        cls = load_client_class(BUILTIN_CLIENTS[plugin_type])
        if cls is not None:
            return cls
    if announced:
        cls = load_client_class(announced, import_=False)
        if cls is not None:
            return cls
    if plugin_type:
        cls = _entry_point_class(plugin_type)
        if cls is not None:
            return cls
    log.warning("no client class for plugin type %r (announced %r); using the generic "
                "PluginClient", plugin_type, announced)
    return PluginClient


class EdgeClient:
    """Client of one edge, reached through its bridge; cheap to create, holds no state."""

    def __init__(self, bridge_client: "BridgeClient", name: str) -> None:
        self._bc = bridge_client
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def edge_id(self) -> str:
        """Same as `name` (the original attribute name)."""
        return self._name

    @property
    def bridge_client(self) -> "BridgeClient":
        return self._bc

    @property
    def http(self) -> httpx.Client:
        return self._bc.http

    def __repr__(self) -> str:
        return f"EdgeClient({self._name!r} via {self._bc.url!r})"

    def info(self) -> dict:
        """This edge's entry in ``/edge/list`` (``endpoint``, ``plugins``); {} if unknown."""
        return (self._bc.topology().get("edges") or {}).get(self._name) or {}

    def list_plugins(self) -> dict:
        """Plugin instance name -> info (``type``, ``namespace``, ``version``, ``enabled``...).

        Empty when the edge is not connected, as in the original client.
        """
        return self.info().get("plugins") or {}

    def get_plugin(self, name: str | None = None, **session_kwargs: Any) -> PluginClient:
        """The plugin's own client, with a session opened using `session_kwargs`.

        `name` is the plugin instance name as listed by `list_plugins`; its `type` picks the
        client class.  (``plugin_name=`` is accepted as the original keyword.)
        """
        if name is None:
            name = session_kwargs.pop("plugin_name", None)
        if not name:
            raise ValueError("plugin name required")
        edges = self._bc.topology().get("edges") or {}
        if self._name not in edges:
            raise EdgeError(404, f"edge {self._name!r} is not connected to the bridge",
                            edge=self._name, plugin=name)
        plugins = edges[self._name].get("plugins") or {}
        info = plugins.get(name)
        if info is None:
            known = ", ".join(sorted(plugins)) or "none"
            raise EdgeError(404, f"unknown plugin {name!r} (known: {known})",
                            edge=self._name, plugin=name)
        if info.get("enabled") is False:
            raise EdgeError(409, f"plugin {name!r} is not enabled on this edge",
                            edge=self._name, plugin=name)
        client = self.plugin_client(name, info)
        client.register_session(**session_kwargs)
        return client

    def plugin_client(self, name: str, info: dict | None = None) -> PluginClient:
        """The plugin's client *without* opening a session (for session-less routes)."""
        if info is None:
            info = self.list_plugins().get(name) or {}
        cls = resolve_client_class(info.get("type") or name, info.get("client"))
        base_url = f"{self._bc.url}/{quote(self._name, safe='')}/{quote(name, safe='')}"
        return cls(self._bc.http, base_url, bridge_client=self._bc, edge_id=self._name,
                   plugin_name=name)
