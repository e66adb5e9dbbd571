"""Unit tests of the client SDK: errors, callback routing, class resolution, request building.

HTTP is faked with httpx.MockTransport only to check what requests look like and how error
answers are parsed; end-to-end behaviour against a real bridge is tested elsewhere.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import httpx
import pytest
from blocked_imports import run_without

from radical.edge.plugins.sysinfo.client import SysInfoClient
from radical.edge.sdk import (BridgeClient, EdgeClient, EdgeConnectionError, EdgeError,
                              EdgeTimeoutError, PluginClient)
from radical.edge.sdk import edge as edge_mod
from radical.edge.sdk.bridge import CallbackRegistry, normalize_url
from radical.edge.sdk.errors import detail_from_body

SRC = Path(__file__).resolve().parents[2] / "src"


# -- errors ---------------------------------------------------------------------------------
def test_error_message_has_status_edge_plugin_detail() -> None:
    err = EdgeError(404, "unknown session 'x'", edge="e1", plugin="sysinfo")
    assert str(err) == "HTTP 404 from edge 'e1' plugin 'sysinfo': unknown session 'x'"
    assert (err.status, err.edge, err.plugin, err.detail) == (404, "e1", "sysinfo",
                                                              "unknown session 'x'")
    assert isinstance(err, RuntimeError)  # what the original client raised


def test_error_message_variants() -> None:
    assert str(EdgeError(503, "edge 'e2' not connected", edge="e2")) == \
        "HTTP 503 from edge 'e2': edge 'e2' not connected"
    assert str(EdgeError(500)) == "HTTP 500 from bridge"
    conn = EdgeConnectionError(None, "refused", method="POST", url="http://b/edge/list")
    assert str(conn) == "connection to bridge failed (POST http://b/edge/list): refused"
    assert isinstance(conn, ConnectionError) and isinstance(conn, EdgeError)
    assert isinstance(EdgeTimeoutError(None, "slow"), TimeoutError)


def test_error_pickles() -> None:
    err = pickle.loads(pickle.dumps(EdgeError(410, "expired", edge="e", plugin="p")))
    assert (err.status, err.edge, err.plugin, str(err)) == \
        (410, "e", "p", "HTTP 410 from edge 'e' plugin 'p': expired")


@pytest.mark.parametrize("body, expected", [
    (b'{"detail": "unknown edge \'x\'"}', "unknown edge 'x'"),
    (b'{"detail": [{"loc": ["body"], "msg": "bad"}]}', '[{"loc":["body"],"msg":"bad"}]'),
    (b'{"error": "nope"}', "nope"),
    (b'{"other": 1}', '{"other":1}'),
    (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
    (b"", "Not Found"),
    (b"{broken", "{broken"),
])
def test_detail_from_body(body: bytes, expected: str) -> None:
    assert detail_from_body(body, "Not Found") == expected


def test_detail_is_shortened() -> None:
    assert len(detail_from_body(b"x" * 5000)) < 1100


# -- callback matching ----------------------------------------------------------------------
def test_registry_wildcards() -> None:
    reg = CallbackRegistry()
    calls = {name: (lambda *a, n=name: n) for name in ("all", "edge", "plugin", "topic",
                                                        "other_edge", "topic_only")}
    reg.add((None, None, None), calls["all"])
    reg.add(("e1", None, None), calls["edge"])
    reg.add(("e1", "psij", None), calls["plugin"])
    reg.add(("e1", "psij", "job_status"), calls["topic"])
    reg.add(("e2", None, None), calls["other_edge"])
    reg.add((None, None, "job_status"), calls["topic_only"])
    got = {cb() for cb in reg.match("e1", "psij", "job_status")}
    assert got == {"all", "edge", "plugin", "topic", "topic_only"}
    got = {cb() for cb in reg.match("e1", "rhapsody", "task_status")}
    assert got == {"all", "edge"}
    assert {cb() for cb in reg.match("e2", "psij", "x")} == {"all", "other_edge"}


def test_registry_remove_needs_exact_key() -> None:
    reg = CallbackRegistry()
    cb = lambda *a: None  # noqa: E731
    reg.add(("e1", None, None), cb)
    assert not reg.remove((None, None, None), cb)
    assert reg.remove(("e1", None, None), cb)
    assert reg.match("e1", "p", "t") == [] and len(reg) == 0


def make_bridge(handler=None, **kw) -> BridgeClient:
    transport = httpx.MockTransport(handler or (lambda r: httpx.Response(200, json={})))
    return BridgeClient("http://bridge.test", transport=transport, **kw)


def test_bridge_routes_events_and_survives_bad_callbacks(caplog) -> None:
    bc = make_bridge()
    seen: list = []

    def bad(*args):
        raise RuntimeError("callback bug")

    # register in the table directly: no listener thread in a unit test
    bc._registry.add((None, None, None), bad)
    bc._registry.add(("e1", "psij", "job_status"), lambda *a: seen.append(("n",) + a))
    bc._registry.add_topology(bad)
    bc._registry.add_topology(lambda edges: seen.append(("t", edges)))
    bc._on_event({"topic": "notification", "data": {"edge": "e1", "plugin": "psij",
                                                    "topic": "job_status",
                                                    "data": {"job_id": "j1"}}})
    bc._on_event({"topic": "notification", "data": {"edge": "e1", "plugin": "psij",
                                                    "topic": "other", "data": {}}})
    topo = {"bridge": {"url": "u"}, "edges": {"e1": {"plugins": {}}}}
    bc._on_event({"topic": "topology", "data": topo})
    bc._on_event(["not", "a", "dict"])
    assert seen == [("n", "e1", "psij", "job_status", {"job_id": "j1"}),
                    ("t", {"e1": {"plugins": {}}})]
    assert bc.last_topology == topo
    assert "callback bug" in caplog.text
    bc.close()


# -- client class resolution ----------------------------------------------------------------
@pytest.fixture(autouse=True)
def _clear_resolution_cache():
    edge_mod.resolve_client_class.cache_clear()
    yield
    edge_mod.resolve_client_class.cache_clear()


class CustomClient(PluginClient):
    pass


def test_resolution_builtin() -> None:
    assert edge_mod.resolve_client_class("sysinfo") is SysInfoClient


def test_resolution_announced_then_fallback() -> None:
    here = f"{__name__}:CustomClient"
    assert edge_mod.resolve_client_class("custom", here) is CustomClient
    assert edge_mod.resolve_client_class("custom", "no_such_module_xyz:C") is PluginClient
    assert edge_mod.resolve_client_class("custom", "json:JSONDecoder") is PluginClient
    assert edge_mod.resolve_client_class("custom", "malformed") is PluginClient
    assert edge_mod.resolve_client_class(None) is PluginClient


def test_resolution_builtin_missing_falls_back(monkeypatch) -> None:
    monkeypatch.setitem(edge_mod.BUILTIN_CLIENTS, "psij", "no_such_module_xyz.client:X")
    assert edge_mod.resolve_client_class("psij") is PluginClient
    assert edge_mod.resolve_client_class("psij", f"{__name__}:CustomClient") is CustomClient


def test_resolution_entry_point(monkeypatch) -> None:
    from importlib import metadata
    from importlib.metadata import EntryPoint

    ep = EntryPoint("thirdparty", f"{__name__}:CustomClient", edge_mod.ENTRY_POINT_GROUP)
    monkeypatch.setattr(metadata, "entry_points",
                        lambda group: [ep] if group == edge_mod.ENTRY_POINT_GROUP else [])
    assert edge_mod.resolve_client_class("thirdparty") is CustomClient


# -- request building and error parsing (MockTransport) -------------------------------------
TOPOLOGY = {"data": {"bridge": {"url": "http://bridge.test"}, "edges": {
    "e2": {"plugins": {}},
    "e1": {"endpoint": {"type": "login"}, "plugins": {
        "sysinfo": {"type": "sysinfo", "namespace": "/e1/sysinfo", "version": "1",
                    "enabled": True},
        "si2": {"type": "sysinfo", "namespace": "/e1/si2", "version": "1", "enabled": True},
        "off": {"type": "sysinfo", "namespace": "/e1/off", "version": "1", "enabled": False},
        "odd": {"type": "unknown_type", "namespace": "/e1/odd", "version": "1",
                "enabled": True, "client": "no_such_module_xyz:C"},
    }}}}}


class Recorder:
    def __init__(self, routes: dict) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(404, json={"detail": f"no route {request.url.path}"})
        if isinstance(answer, httpx.Response):
            return answer
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(200, json=answer)


def test_list_edges_sorted_with_token_header(monkeypatch) -> None:
    monkeypatch.setenv("RADICAL_EDGE_TOKEN", "tok")
    rec = Recorder({("POST", "/edge/list"): TOPOLOGY})
    with make_bridge(rec) as bc:
        assert bc.list_edges() == ["e1", "e2"]
    assert rec.requests[0].headers["authorization"] == "Bearer tok"


def test_env_fallbacks_and_url_normalisation(monkeypatch) -> None:
    monkeypatch.setenv("RADICAL_BRIDGE_URL", "ws://envbridge:8000/")
    monkeypatch.delenv("RADICAL_EDGE_TOKEN", raising=False)
    with BridgeClient() as bc:
        assert bc.url == "http://envbridge:8000"
        assert "authorization" not in bc.http.headers
    monkeypatch.delenv("RADICAL_BRIDGE_URL")
    with pytest.raises(ValueError):
        BridgeClient()
    assert normalize_url("wss://h:1/x/") == "https://h:1/x"


def test_get_plugin_session_and_calls() -> None:
    rec = Recorder({
        ("POST", "/edge/list"): TOPOLOGY,
        ("POST", "/e1/si2/register_session"): {"sid": "s1"},
        ("GET", "/e1/si2/metrics/s1"): {"cpu": {}},
        ("GET", "/e1/si2/homedir"): {"homedir": "/home/u"},
        ("POST", "/e1/si2/unregister_session/s1"): {"ok": True},
    })
    with make_bridge(rec) as bc:
        ec = bc.get_edge_client("e1")
        assert isinstance(ec, EdgeClient)
        assert set(ec.list_plugins()) == {"sysinfo", "si2", "off", "odd"}
        with ec.get_plugin("si2", flavour="x") as si:
            assert isinstance(si, SysInfoClient) and si.sid == "s1"
            assert si.get_metrics() == {"cpu": {}}
            assert si.homedir() == "/home/u"
        assert si.sid is None
    reg = next(r for r in rec.requests if r.url.path.endswith("register_session"))
    assert json.loads(reg.content) == {"flavour": "x"}
    assert reg.headers["content-type"] == "application/json"
    assert str(reg.url) == "http://bridge.test/e1/si2/register_session"
    assert rec.requests[-1].url.path == "/e1/si2/unregister_session/s1"


def test_get_plugin_errors() -> None:
    rec = Recorder({("POST", "/edge/list"): TOPOLOGY,
                    ("POST", "/e1/odd/register_session"): {"sid": "s9"}})
    with make_bridge(rec) as bc:
        ec = bc.get_edge_client("e1")
        with pytest.raises(EdgeError, match="unknown plugin 'nope'") as info:
            ec.get_plugin("nope")
        assert info.value.status == 404
        with pytest.raises(EdgeError, match="not enabled"):
            ec.get_plugin("off")
        with pytest.raises(EdgeError, match="not connected"):
            bc.get_edge_client("ghost").get_plugin("sysinfo")
        odd = ec.get_plugin(plugin_name="odd")  # original keyword; generic fallback class
        assert type(odd) is PluginClient and odd.sid == "s9"


def test_http_error_carries_detail_and_close_ignores_gone_session() -> None:
    rec = Recorder({
        ("POST", "/e1/sysinfo/register_session"): {"sid": "s1"},
        ("GET", "/e1/sysinfo/metrics/s1"): httpx.Response(
            410, json={"detail": "session 's1' expired"}),
        ("POST", "/e1/sysinfo/unregister_session/s1"): httpx.Response(
            404, json={"detail": "unknown session 's1'"}),
    })
    with make_bridge(rec) as bc:
        si = SysInfoClient(bc.http, f"{bc.url}/e1/sysinfo", bc, "e1", "sysinfo")
        with pytest.raises(RuntimeError, match="no active session"):
            si.get_metrics()
        si.register_session()
        with pytest.raises(EdgeError) as info:
            si.get_metrics()
        assert str(info.value) == "HTTP 410 from edge 'e1' plugin 'sysinfo': session 's1' expired"
        si.close()  # 404 on unregister: swallowed
        assert si.sid is None


def test_request_params_and_raw_bodies() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("text"):
            return httpx.Response(200, text="plain", headers={"content-type": "text/plain"})
        if request.url.path.endswith("empty"):
            return httpx.Response(204)
        return httpx.Response(200, content=b"\x00\x01",
                              headers={"content-type": "application/octet-stream"})

    with make_bridge(handler) as bc:
        pc = PluginClient(bc.http, "/e1/q", bc, "e1", "q")  # relative namespace works too
        assert pc._get("text", user=None, force=True, n=3) == "plain"
        assert seen[-1].url.query == b"force=true&n=3"
        assert str(seen[-1].url).startswith("http://bridge.test/e1/q/text")
        assert pc._post("empty", json={"a": [1]}) is None
        assert seen[-1].content == b'{"a":[1]}'
        assert pc._request("POST", "bin", content=b"xy",
                           headers={"Content-Type": "application/msgpack"}) == b"\x00\x01"
        assert seen[-1].headers["content-type"] == "application/msgpack"


def test_transport_errors_are_wrapped() -> None:
    rec = Recorder({("POST", "/edge/list"): httpx.ConnectError("refused"),
                    ("GET", "/e1/p/slow"): httpx.ReadTimeout("slow")})
    with make_bridge(rec) as bc:
        with pytest.raises(EdgeConnectionError, match="refused"):
            bc.list_edges()
        pc = PluginClient(bc.http, f"{bc.url}/e1/p", bc, "e1", "p")
        with pytest.raises(EdgeTimeoutError) as info:
            pc._get("slow")
        assert info.value.edge == "e1" and info.value.status is None


def test_plugin_notification_callbacks_delegate_and_close_removes() -> None:
    bc = make_bridge()
    bc._ensure_listener = lambda: None  # no SSE thread in a unit test
    pc = PluginClient(bc.http, f"{bc.url}/e1/psij", bc, "e1", "psij")
    seen: list = []
    cb = lambda *a: seen.append(a)  # noqa: E731
    pc.register_notification_callback(cb, topic="job_status")
    bc._on_event({"topic": "notification", "data": {"edge": "e1", "plugin": "psij",
                                                    "topic": "job_status", "data": 1}})
    bc._on_event({"topic": "notification", "data": {"edge": "e2", "plugin": "psij",
                                                    "topic": "job_status", "data": 2}})
    assert seen == [("e1", "psij", "job_status", 1)]
    pc.close()
    assert len(bc._registry) == 0
    with pytest.raises(RuntimeError, match="cannot receive notifications"):
        PluginClient(bc.http, "/x/y").register_notification_callback(cb)
    del bc._ensure_listener
    bc.close()
    with pytest.raises(RuntimeError, match="closed"):
        bc.wait_for_listener(0.1)


# -- no edge-side imports -------------------------------------------------------------------
def test_sdk_imports_without_edge_dependencies() -> None:
    run_without({"celery", "redis", "psutil", "starlette", "fastapi", "psij", "rhapsody",
                 "kombu", "pydantic", "pydantic_settings", "uvicorn", "orjson", "msgpack"}, """
        from radical.edge import BridgeClient, EdgeClient, PluginClient, EdgeError
        import radical.edge.sdk as sdk
        from radical.edge.sdk.edge import resolve_client_class
        from radical.edge.plugins.sysinfo.client import SysInfoClient
        assert resolve_client_class("sysinfo") is SysInfoClient
        from radical.edge.plugins.psij.client import PsijClient
        assert resolve_client_class("psij") is PsijClient   # no psij-python needed
        assert resolve_client_class("nosuchplugin") is PluginClient   # generic fallback
        from radical.edge.sdk.errors import json_dumps, json_loads
        assert json_loads(json_dumps({"a": 1})) == {"a": 1}   # stdlib fallback
    """)


def test_announced_module_is_never_imported(tmp_path, monkeypatch) -> None:
    """An edge's announcement is network data: naming a module must not make the SDK run it."""
    import sys
    import uuid

    name = f"evil_client_{uuid.uuid4().hex}"
    marker = tmp_path / "imported"
    (tmp_path / f"{name}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "from radical.edge.sdk.plugin import PluginClient\n"
        "class C(PluginClient):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    edge_mod.resolve_client_class.cache_clear()
    assert edge_mod.resolve_client_class("evilplugin", f"{name}:C") is PluginClient
    assert not marker.exists() and name not in sys.modules
