"""Original module path of the staging plugin: `PluginStaging`, `StagingClient`,
`StagingSession`."""
from typing import Any

from ._aliases import resolve
from .plugins.staging.client import StagingClient as StagingClient

__all__ = ["PluginStaging", "StagingClient", "StagingSession"]

_LAZY = {
    "PluginStaging": "radical.edge.plugins.staging.plugin:StagingPlugin",
    "StagingSession": "radical.edge.plugins.staging.plugin:StagingSession",
}


def __getattr__(name: str) -> Any:
    return resolve(__name__, _LAZY, name)
