"""Original module path of the rhapsody plugin: `PluginRhapsody`, `RhapsodyClient`, `RhapsodySession`."""
from typing import Any

from ._aliases import resolve
from .plugins.rhapsody.client import RhapsodyClient as RhapsodyClient

__all__ = ["PluginRhapsody", "RhapsodyClient", "RhapsodySession"]

_LAZY = {
    "PluginRhapsody": "radical.edge.plugins.rhapsody.plugin:RhapsodyPlugin",
    "RhapsodySession": "radical.edge.plugins.rhapsody.session:RhapsodySession",
}


def __getattr__(name: str) -> Any:
    return resolve(__name__, _LAZY, name)
