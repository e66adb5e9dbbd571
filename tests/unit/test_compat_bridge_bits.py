"""Pure pieces of the original-client compatibility: Basic credentials, the error envelope,
topology namespaces, ui_config models and the original module paths."""
from __future__ import annotations

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
