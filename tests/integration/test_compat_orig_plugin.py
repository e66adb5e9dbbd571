"""A third-party plugin written for the original 0.2.0 API (tests/fixtures/
orig_style_plugin, found through its entry point) loads on a real edge and its own client
class works, through this SDK and through the original client's way of finding it."""
from __future__ import annotations

import threading

import pytest

from compat import orig_client as orig
import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import BridgeClient, EdgeError

EDGE = "origp"


@pytest.fixture(scope="module")
def edge(module_edges):
    return module_edges(name=EDGE, plugins="counter,sysinfo")


@pytest.fixture
def bc(bridge_url, edge):
    client = BridgeClient(bridge_url)
    yield client
    client.close()


def test_announced_like_any_plugin(bridge_url, edge):
    info = authed.post(f"{bridge_url}/edge/list").json()["data"]["edges"][EDGE]["plugins"]
    counter = info["counter"]
    assert counter["namespace"] == f"/{EDGE}/counter" and counter["version"] == "0.2.0"
    assert counter["ui_config"]["title"] == "Counter"  # a UIConfig model, sent as a dict
    assert counter["ui_config"]["notifications"]["topic"] == "counter"
    ui = authed.get(f"{bridge_url}/{EDGE}/counter/ui_config").json()
    assert ui["plugin_name"] == "counter" and ui["ui"]["forms"][0]["id"] == "add"


def test_client_sessions_forward_and_errors(bc):
    ctr = bc.get_edge_client(EDGE).get_plugin("counter", start=5)
    assert type(ctr).__name__ == "CounterClient"
    assert ctr.add(2) == {"value": 7, "total": 2}
    assert ctr.get() == {"value": 7}
    other = bc.get_edge_client(EDGE).get_plugin("counter")
    assert other.add(3) == {"value": 3, "total": 5}  # `_create_session` shared state
    with pytest.raises(EdgeError) as err:  # a RuntimeError, as the original raised
        ctr.add("x")
    assert err.value.status == 400 and "integer" in str(err.value)
    assert isinstance(err.value, RuntimeError)
    sid = ctr.sid
    ctr.close()
    with pytest.raises(EdgeError) as err:
        ctr._sid = sid
        ctr.get()
    assert err.value.status == 404 and sid in err.value.detail
    other.close()


def test_notifications_from_loop_thread_and_plugin(bc):
    ctr = bc.get_edge_client(EDGE).get_plugin("counter")
    got: list[tuple[str, dict]] = []
    seen = threading.Condition()

    def on_note(edge, plugin, topic, data):
        with seen:
            got.append((topic, data))
            seen.notify_all()

    ctr.register_notification_callback(on_note)
    assert bc.wait_for_listener(15)
    ctr.add(1)
    ctr.add_later(10)
    ctr.broadcast("hi")
    with seen:
        assert seen.wait_for(lambda: len(got) >= 3, 20), got
    values = sorted(d["value"] for t, d in got if t == "counter")
    assert values == [1, 11]
    assert any(d.get("thread") for t, d in got if t == "counter")
    assert ("broadcast", {"text": "hi"}) in got
    ctr.close()


def test_on_topology_change_is_called(bc):
    ctr = bc.get_edge_client(EDGE).plugin_client("counter")
    assert EDGE in ctr.topology()["edges"]


def test_found_the_original_way(bridge_url, edge):
    """The original client resolved `client_class` through `Plugin.get_plugin_class`."""
    ob = orig.BridgeClient(bridge_url.replace("://", f"://:{authed.TOKEN}@"))
    try:
        ctr = ob.get_edge_client(EDGE).get_plugin("counter")
        assert type(ctr).__name__ == "CounterClient"
        assert ctr.add(4)["value"] == 4
        ctr.close()
    finally:
        ob.close()
