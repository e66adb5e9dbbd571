"""Find plugin classes: the built-in ones and third-party ones from entry points.

Plugins are imported by path only when selected, so an edge without psij-python can still
load sysinfo. With `all`, a plugin that cannot be loaded is skipped with a WARNING naming it
and the reason (a third-party bug never stops an edge); a plugin named explicitly must load.

`all` means the built-ins plus the `radical.edge.plugins` entry points. Test fixtures
register in `radical.edge.test_plugins`: they load when named explicitly, or as part of `all`
only when `RADICAL_EDGE_TEST_PLUGINS` is true (never on a production edge by accident).
"""
from __future__ import annotations

import logging
import os

from ..constants import PLUGIN_ENTRY_POINTS, TEST_PLUGIN_ENTRY_POINTS
from ..registry import Registry
from . import base

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = PLUGIN_ENTRY_POINTS
#: entry-point group of test-fixture plugins (echo, xss, broken): never part of `all`
TEST_ENTRY_POINT_GROUP = TEST_PLUGIN_ENTRY_POINTS
#: longest reason reported for a skipped plugin (an exception text can be huge)
MAX_REASON = 500
#: set to 1/true to make `all` include the test-fixture plugins
TEST_PLUGINS_ENV = "RADICAL_EDGE_TEST_PLUGINS"

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


def _test_plugins_opted_in() -> bool:
    return os.environ.get(TEST_PLUGINS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def registry(include_tests: bool | None = None) -> Registry[type]:
    """Built-ins, then entry points (which may add or override); test fixtures on request."""
    reg: Registry[type] = Registry("plugin", BUILTIN)
    reg.load_entry_points(ENTRY_POINT_GROUP)
    if _test_plugins_opted_in() if include_tests is None else include_tests:
        reg.load_entry_points(TEST_ENTRY_POINT_GROUP)
    return reg


def available(include_tests: bool | None = None) -> dict[str, str]:
    """Plugin name -> import path of what `all` loads."""
    reg = registry(include_tests)
    return {n: reg.path(n) or "" for n in reg.names()}


def select_with_reasons(spec: str | list[str]) -> tuple[list[type], dict[str, str]]:
    """Plugin classes for `all` or a list/comma-separated string of names (or of import
    paths `package.module:Class`, which the edge admin thereby allows), and the plugins
    `all` skipped (name -> why)."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip() for n in names if n.strip()]
    want_all = names in (["all"], [])
    known = registry(None if want_all else True)  # an explicit name may be a fixture
    if want_all:
        names = known.names()
    for name in names:
        if ":" in name:  # `package.module:Class`: the edge admin names a plugin by its path
            known.register(name, name)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise PluginLoadError(f"unknown plugin(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(registry(False).names()))}")
    classes: list[type] = []
    skipped: dict[str, str] = {}
    for name in names:
        try:
            classes.append(known.get(name))
        except ImportError as exc:
            if not want_all:
                raise PluginLoadError(f"plugin '{name}' cannot be loaded: {exc}") from exc
            path = known.path(name) or ""
            if name in BUILTIN and path == BUILTIN[name]:
                log.info("skipping plugin %s: %s", name, exc)  # optional extra not installed
                if _is_module_itself(exc, path):
                    continue  # not part of this installation at all: nothing to explain
            else:
                log.warning("skipping plugin %s: it does not import: %s", name, exc)
            skipped[name] = f"does not import: {exc}"[:MAX_REASON]
        except Exception as exc:  # a third-party module failing at import time
            if not want_all:
                raise PluginLoadError(f"plugin '{name}' cannot be loaded: "
                                      f"{type(exc).__name__}: {exc}") from exc
            log.warning("skipping plugin %s: loading it failed: %s: %s", name,
                        type(exc).__name__, exc)
            skipped[name] = f"failed to load: {type(exc).__name__}: {exc}"[:MAX_REASON]
    return classes, skipped


def _is_module_itself(exc: ImportError, path: str) -> bool:
    """True when the plugin's own module is missing (not one of its dependencies)."""
    missing = getattr(exc, "name", None) or ""
    module = path.partition(":")[0]
    return bool(missing) and (module == missing or module.startswith(missing + "."))


def select(spec: str | list[str]) -> list[type]:
    """Plugin classes for `all` or a list/comma-separated string of names."""
    return select_with_reasons(spec)[0]


def _lookup(name: str) -> type | None:
    try:
        return registry(include_tests=True).get(name)
    except Exception:  # unknown, or its dependencies are missing here
        return None


# `Plugin.get_plugin_class` / `get_plugin_names` (the original's API) ask the loader
base._known.lookup = _lookup
base._known.names = lambda: registry(include_tests=True).names()
