"""Original module path of the queue_info plugin: `PluginQueueInfo`, `QueueInfoClient`, `QueueInfoSession`."""
from typing import Any

from ._aliases import resolve
from .plugins.queue_info.client import QueueInfoClient as QueueInfoClient

__all__ = ["PluginQueueInfo", "QueueInfoClient", "QueueInfoSession"]

_LAZY = {
    "PluginQueueInfo": "radical.edge.plugins.queue_info.plugin:QueueInfoPlugin",
    "QueueInfoSession": "radical.edge.plugins.queue_info.plugin:QueueInfoSession",
}


def __getattr__(name: str) -> Any:
    return resolve(__name__, _LAZY, name)
