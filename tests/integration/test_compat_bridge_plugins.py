"""Plugins hosted by the bridge itself (`radical-edge bridge --plugins ...`), served under
the reserved edge name `bridge` on a real bridge process, as in the original."""
from __future__ import annotations

import threading

import pytest

from compat import orig_client as orig
import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import BridgeClient, services


@pytest.fixture(scope="module")
def hosting_bridge(redis_url, log_dir):
    # psij declines (`is_enabled(app)` is False where app.role == "bridge")
    svc = services.start_bridge(redis_url, log_dir=log_dir,
                                env={"RADICAL_EDGE_BRIDGE_PLUGINS": "sysinfo,counter,psij"})
    yield svc
    svc.stop()


@pytest.fixture
def url(hosting_bridge):
    return hosting_bridge.extra["url"]


def test_listed_as_edge_bridge(url):
    edges = authed.post(f"{url}/edge/list", timeout=10).json()["data"]["edges"]
    bridge = edges["bridge"]
    assert bridge["endpoint"]["type"] == "radical.edge.bridge"
    assert bridge["role"] == "bridge"
    assert set(bridge["plugins"]) == {"sysinfo", "counter"}  # psij chose not to load
    assert bridge["plugins"]["sysinfo"]["namespace"] == "/bridge/sysinfo"


def test_original_client_drives_a_bridge_plugin(url):
    bc = orig.BridgeClient(url.replace("://", f"://:{authed.TOKEN}@"))  # the 0.2.0 way
    try:
        assert "bridge" in bc.list_edges()
        si = bc.get_edge_client("bridge").get_plugin("sysinfo")
        assert si.get_metrics()["memory"]["total"] > 0
        assert si.host_role()["role"] == "bridge"  # Plugin.is_bridge on the host side
        si.close()
    finally:
        bc.close()


def test_sdk_sessions_errors_and_notifications(url):
    bc = BridgeClient(url)
    try:
        ctr = bc.get_edge_client("bridge").get_plugin("counter", start=1)
        got: list[dict] = []
        seen = threading.Event()
        ctr.register_notification_callback(
            lambda e, p, t, d: (got.append({"edge": e, **d}), seen.set()), topic="counter")
        assert bc.wait_for_listener(15)
        assert ctr.add(2)["value"] == 3
        assert seen.wait(15) and got[0]["edge"] == "bridge" and got[0]["value"] == 3
        r = authed.get(f"{url}/bridge/counter/value/session.nope", timeout=10)
        assert r.status_code == 404 and "session.nope" in r.json()["detail"]
        r = authed.get(f"{url}/bridge/sysinfo/no/such/route", timeout=10)
        assert r.status_code == 404 and r.json()["detail"]
        ctr.close()
    finally:
        bc.close()


def test_management_routes_still_answer(url):
    assert authed.get(f"{url}/bridge/broker", timeout=10).status_code == 200
    r = authed.get(f"{url}/bridge/nosuch/version", timeout=10)  # not hosted: bridge 404
    assert r.status_code == 404 and r.json()["error"] is True
