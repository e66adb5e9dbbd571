"""Original module path of the psij plugin: `PluginPSIJ`, `PSIJClient`, `PSIJSession`."""
from typing import Any

from ._aliases import resolve
from .plugins.psij.client import PsijClient as PSIJClient

__all__ = ["PluginPSIJ", "PSIJClient", "PSIJSession"]

_LAZY = {
    "PluginPSIJ": "radical.edge.plugins.psij.plugin:PsijPlugin",
    "PSIJSession": "radical.edge.plugins.psij.session:PsijSession",
}


def __getattr__(name: str) -> Any:
    return resolve(__name__, _LAZY, name)
