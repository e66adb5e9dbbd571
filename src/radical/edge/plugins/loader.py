"""Find plugin classes: the built-in ones and third-party ones from entry points.

Plugins are imported by path only when selected, so an edge without psij-python can still
load sysinfo, and `--plugins all` quietly skips plugins whose dependencies are missing.
"""
from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "radical.edge.plugins"

BUILTIN: dict[str, str] = {
    "sysinfo": "radical.edge.plugins.sysinfo.plugin:SysInfoPlugin",
    "queue_info": "radical.edge.plugins.queue_info.plugin:QueueInfoPlugin",
    "psij": "radical.edge.plugins.psij.plugin:PsijPlugin",
    "rhapsody": "radical.edge.plugins.rhapsody.plugin:RhapsodyPlugin",
    "xgfabric": "radical.edge.plugins.xgfabric.plugin:XGFabricPlugin",
    "lucid": "radical.edge.plugins.lucid.plugin:LucidPlugin",
    "staging": "radical.edge.plugins.staging.plugin:StagingPlugin",
}


class PluginLoadError(RuntimeError):
    pass


def available() -> dict[str, str]:
    """Plugin name -> import path, built-ins first, entry points may add or override."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.value
    return found


def import_class(path: str) -> type:
    module, _, attr = path.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[return-value]


def select(spec: str | list[str]) -> list[type]:
    """Plugin classes for `all` or a list/comma-separated string of names."""
    known = available()
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip() for n in names if n.strip()]
    want_all = names in (["all"], [])
    if want_all:
        names = list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise PluginLoadError(f"unknown plugin(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(known))}")
    classes = []
    for name in names:
        try:
            classes.append(import_class(known[name]))
        except ImportError as exc:
            if not want_all:
                raise PluginLoadError(f"plugin '{name}' cannot be loaded: {exc}") from exc
            log.info("skipping plugin %s: %s", name, exc)
    return classes
