"""Original module path of the sysinfo plugin: `PluginSysInfo`, `SysInfoClient`, `SysInfoSession`."""
from typing import Any

from ._aliases import resolve
from .plugins.sysinfo.client import SysInfoClient as SysInfoClient

__all__ = ["PluginSysInfo", "SysInfoClient", "SysInfoSession"]

_LAZY = {
    "PluginSysInfo": "radical.edge.plugins.sysinfo.plugin:SysInfoPlugin",
    "SysInfoSession": "radical.edge.plugins.sysinfo.plugin:SysInfoSession",
}


def __getattr__(name: str) -> Any:
    return resolve(__name__, _LAZY, name)
