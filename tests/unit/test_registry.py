"""The one name -> implementation registry and the one `module:qualname` resolver."""
from __future__ import annotations

import sys
from importlib import metadata
from importlib.metadata import EntryPoint

import pytest

from radical.edge.registry import Registry, resolve


class Outer:
    class Inner:
        pass


def test_resolve_both_forms_and_nested_qualnames() -> None:
    assert resolve(f"{__name__}:Outer.Inner") is Outer.Inner
    assert resolve("os.path:join") is sys.modules["os.path"].join
    assert resolve("os.path.join") is sys.modules["os.path"].join


@pytest.mark.parametrize("path, exc", [
    ("", ValueError), (":x", ValueError), (".x", ValueError),
    ("no_such_module_xyz:f", ImportError), (f"{__name__}:Outer.Missing", AttributeError),
])
def test_resolve_refuses_what_names_nothing(path: str, exc: type) -> None:
    with pytest.raises(exc):
        resolve(path)


def test_registry_imports_a_path_only_when_looked_up() -> None:
    reg: Registry[type] = Registry("thing", {"lazy": "no_such_module_xyz:X"})
    reg.register("inner", f"{__name__}:Outer.Inner")
    reg.register("obj", Outer)
    assert reg.names() == ["lazy", "inner", "obj"] and "lazy" in reg and len(reg) == 3
    assert reg.get("inner") is Outer.Inner
    assert reg.path("inner") is None  # resolved once, then kept as the object
    assert reg.path("lazy") == "no_such_module_xyz:X"
    with pytest.raises(ImportError):
        reg.get("lazy")
    with pytest.raises(KeyError):
        reg.get("unknown")


def test_registry_entry_points_add_and_override(monkeypatch) -> None:
    group = wanted = "radical.edge.test_registry"
    eps = [EntryPoint("obj", f"{__name__}:Outer.Inner", group),
           EntryPoint("new", f"{__name__}:Outer", group)]
    monkeypatch.setattr(metadata, "entry_points", lambda group: eps if group == wanted else [])
    reg: Registry[type] = Registry("thing", {"obj": Outer})
    assert reg.load_entry_points(group) == ["obj", "new"]
    assert reg.get("obj") is Outer.Inner and reg.get("new") is Outer


def test_registry_survives_broken_metadata(monkeypatch) -> None:
    def boom(group: str) -> list:
        raise RuntimeError("broken METADATA")

    monkeypatch.setattr(metadata, "entry_points", boom)
    reg: Registry[type] = Registry("thing", {"a": Outer})
    assert reg.load_entry_points("any") == [] and reg.names() == ["a"]


def test_every_status_error_is_one_class() -> None:
    """One base with `status` and `detail`: every layer's HTTP-mapped error derives from it."""
    from radical.edge.bridge_api.dispatcher import BridgeError
    from radical.edge.errors import StatusError
    from radical.edge.hpc.launch import LaunchError
    from radical.edge.plugins.psij.spec import JobSpecError
    from radical.edge.plugins.queue_info.backends.base import QueueInfoError, UnknownJob
    from radical.edge.plugins.rhapsody.errors import TaskSpecError
    from radical.edge.plugins.sessions import SessionExpired
    from radical.edge.workers.router import RouteNotFound

    errors = [BridgeError(503, "b"), LaunchError("l"), JobSpecError("j"), UnknownJob("u"),
              QueueInfoError("q"), TaskSpecError("t", 413), SessionExpired("s1", "s"),
              RouteNotFound(405, "r", ["GET"])]
    assert all(isinstance(e, StatusError) for e in errors)
    assert [(e.status, e.detail) for e in errors] == [
        (503, "b"), (422, "l"), (422, "j"), (404, "u"), (500, "q"), (413, "t"), (410, "s"),
        (405, "r")]
    assert isinstance(JobSpecError("x"), ValueError)  # old bases kept for callers' excepts


def test_a_plugin_named_by_import_path_loads_without_an_entry_point():
    """`--plugins package.module:Class`: the edge admin allows that class explicitly."""
    from radical.edge.plugins import loader
    from radical.edge.plugins.sysinfo.plugin import SysInfoPlugin

    assert loader.select("radical.edge.plugins.sysinfo.plugin:SysInfoPlugin") == [SysInfoPlugin]
    with pytest.raises(loader.PluginLoadError, match="cannot be loaded"):
        loader.select("radical.edge.no_such_module:Plugin")
