"""Pure pieces of the original-client compatibility: Basic credentials, the error envelope,
topology namespaces, ui_config models and the original module paths."""
from __future__ import annotations

import pytest

import base64

import orjson

from radical.edge.app.topology import edge_summary
from radical.edge.bridge_api.auth import basic_token
from radical.edge.bridge_api.envelope import error_body, error_bytes


def b64(text: str) -> bytes:
    return base64.b64encode(text.encode())


def test_basic_token_is_the_password_or_the_user():
    assert basic_token(b64(":s3cret")) == b"s3cret"
    assert basic_token(b64("s3cret:")) == b"s3cret"
    assert basic_token(b64("user:s3cret")) == b"s3cret"
    assert basic_token(b64(":")) is None
    assert basic_token(b"%%%not-base64") is None


def test_error_envelope():
    assert error_body(404, "x") == {"error": True, "status_code": 404, "detail": "x"}
    assert orjson.loads(error_bytes(503, "y"))["status_code"] == 503


def test_namespaces_are_edge_qualified():
    out = edge_summary({"name": "e1", "plugins": {"sysinfo": {"namespace": "/sysinfo"}},
                        "heartbeat": 1.0})
    assert out["plugins"]["sysinfo"]["namespace"] == "/e1/sysinfo"
    assert "heartbeat" not in out


def test_original_module_paths_are_aliases():
    pytest.importorskip("psij", reason="the psij plugin class needs the hpc extra (psij-python)")
    from radical.edge import client, plugin_base, plugin_session_base, ui_schema
    from radical.edge.plugin_psij import PSIJClient, PSIJSession, PluginPSIJ
    from radical.edge.plugin_sysinfo import PluginSysInfo, SysInfoClient
    from radical.edge.plugins.base import Plugin, PluginSession
    from radical.edge.sdk import BridgeClient

    assert client.BridgeClient is BridgeClient
    assert plugin_base.Plugin is Plugin and plugin_session_base.PluginSession is PluginSession
    assert Plugin.get_plugin_class("psij") is PluginPSIJ
    assert PluginPSIJ.client_class in (PSIJClient, "radical.edge.plugins.psij.client:PsijClient")
    assert issubclass(PSIJSession, PluginSession) and PluginSysInfo.plugin_name == "sysinfo"
    assert SysInfoClient.__name__ == "SysInfoClient"
    import radical.edge as re

    assert re.PluginPSIJ is PluginPSIJ and re.SysInfoClient is SysInfoClient
    cfg = ui_schema.UIConfig(title="T", monitors=[ui_schema.UIMonitor(id="m", title="M")])
    assert ui_schema.ui_config_to_dict(cfg)["monitors"][0]["type"] == "raw"
    assert ui_schema.ui_config_to_dict({"title": "x"}) == {"title": "x"}


def test_rhapsody_task_dicts_echo_the_spec():
    from radical.edge.plugins.rhapsody.functions import add
    from radical.edge.plugins.rhapsody.results import shape_task

    fn = shape_task({"uid": "a", "state": "DONE", "return_value": 3, "function": add,
                     "args": (1, 2), "kwargs": {"x": object()}, "backend": "concurrent",
                     "executable": None, "arguments": [], "task_type": "dict"})
    assert fn["function"] == "radical.edge.plugins.rhapsody.functions:add"
    assert fn["args"] == [1, 2] and isinstance(fn["kwargs"], str)  # repr: not JSON-able
    assert fn["task_type"] == "ComputeTask" and fn["backend"] == "concurrent"
    ex = shape_task({"uid": "b", "state": "FAILED", "executable": "/bin/false",
                     "arguments": ["x"], "args": (), "kwargs": {}, "function": None,
                     "task_backend_specific_kwargs": {"cwd": "/tmp"}, "name": "n"})
    assert (ex["executable"], ex["arguments"], ex["args"], ex["kwargs"]) == \
        ("/bin/false", ["x"], [], {})
    assert ex["task_backend_specific_kwargs"] == {"cwd": "/tmp"} and ex["name"] == "n"
    assert orjson.dumps(fn) and orjson.dumps(ex)
