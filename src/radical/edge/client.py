"""Original module path of the client classes (`from radical.edge.client import ...`)."""
from .sdk import BridgeClient, EdgeClient, EdgeError, PluginClient

__all__ = ["BridgeClient", "EdgeClient", "PluginClient", "EdgeError"]
