"""Client SDK of radical.edge: talk to a bridge, its edges and their plugins over HTTP + SSE.

Needs only httpx (orjson is used when installed).  Nothing here imports the edge side
(Celery, Redis, Starlette, psutil, psij, rhapsody), so a laptop can drive every plugin.

    from radical.edge import BridgeClient
    with BridgeClient() as bc:                       # $RADICAL_BRIDGE_URL
        ec = bc.get_edge_client(bc.list_edges()[0])
        with ec.get_plugin("sysinfo") as si:
            print(si.get_metrics()["cpu"])
"""
from __future__ import annotations

from .bridge import BridgeClient
from .edge import EdgeClient
from .errors import CallOutcomeError, EdgeConnectionError, EdgeError, EdgeTimeoutError
from .plugin import PluginClient
from .sse import SSEEvent, SSEListener, SSEParser

__all__ = ["BridgeClient", "EdgeClient", "PluginClient", "EdgeError", "EdgeConnectionError",
           "EdgeTimeoutError", "CallOutcomeError", "SSEParser", "SSEListener", "SSEEvent"]
