"""The Python SDK against a real bridge and real edges: every client method, SSE included."""
from __future__ import annotations

import queue
import threading
import time

import pytest

from radical.edge import BridgeClient, EdgeError, PluginClient, services


@pytest.fixture(scope="module")
def sdk_edge(module_edges):
    return module_edges(name="sdk1", plugins="echo,sysinfo")


@pytest.fixture
def bc(bridge_url):
    client = BridgeClient(bridge_url)
    yield client
    client.close()


def test_list_edges_and_plugins(bc, sdk_edge):
    assert "sdk1" in bc.list_edges()
    plugins = bc.get_edge_client("sdk1").list_plugins()
    assert set(plugins) >= {"echo", "sysinfo"}
    for name, info in plugins.items():
        assert info["namespace"] == f"/sdk1/{name}" and info["enabled"] is True and info["version"]


def test_sysinfo_client(bc, sdk_edge):
    si = bc.get_edge_client("sdk1").get_plugin("sysinfo")
    assert type(si).__name__ == "SysInfoClient"
    assert si.sid and si.sid.startswith("session.")
    metrics = si.get_metrics()
    for key in ("system", "cpu", "memory", "disks", "network", "gpus"):
        assert key in metrics
    assert metrics["memory"]["total"] > 0
    assert metrics["cpu"]["cores_logical"] >= 1
    assert isinstance(metrics["gpus"], list)
    role = si.host_role()
    assert role["role"] == "login" and "scheduler" in role and "job_id" in role
    home = si.homedir()
    assert home
    sid = si.sid
    si.close()
    with pytest.raises(EdgeError) as err:
        PluginClient(bc.http, f"{bc.url}/sdk1/sysinfo", bc, "sdk1",
                     "sysinfo")._get(f"metrics/{sid}")
    assert err.value.status == 404
    assert "404" in str(err.value) and "sysinfo" in str(err.value)


def test_generic_plugin_client_for_third_party(bc, sdk_edge):
    echo = bc.get_edge_client("sdk1").get_plugin("echo", greeting="moin")
    assert isinstance(echo, PluginClient)
    assert echo._get(f"greet/{echo.sid}")["greeting"] == "moin"
    echo.unregister_session()
    assert echo.sid is None


def test_http_errors_carry_status_and_detail(bc, sdk_edge):
    echo = bc.get_edge_client("sdk1").get_plugin("echo")
    with pytest.raises(EdgeError) as err:
        echo._get("greet/session.nope")
    assert err.value.status == 404
    assert "unknown session" in str(err.value) and "sdk1" in str(err.value)
    with pytest.raises(EdgeError) as err:
        echo._request("GET", "sleep/3", timeout=0.5)
    assert err.value.status == 504
    echo.close()


def test_topology_callback_sees_join_and_leave(bc, sdk_edge, make_edge):
    seen: queue.Queue = queue.Queue()
    bc.register_topology_callback(lambda edges: seen.put(sorted(edges)))
    assert bc.wait_for_listener(10)
    first = seen.get(timeout=10)  # topology comes first on connect
    assert "sdk1" in first  # the module's edge is connected when we subscribe
    svc = make_edge("sysinfo", name="joiner")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if "joiner" in seen.get(timeout=15):
            break
    else:
        pytest.fail("no topology event with the new edge")
    svc.stop()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if "joiner" not in seen.get(timeout=15):
            break
    else:
        pytest.fail("no topology event after the edge left")


def test_notifications_from_async_and_thread(bc, sdk_edge):
    got: queue.Queue = queue.Queue()
    bc.register_callback("sdk1", "echo", None, lambda e, p, t, d: got.put((e, p, t, d)))
    assert bc.wait_for_listener(10)
    echo = bc.get_edge_client("sdk1").get_plugin("echo")
    assert echo._post("notify", {"n": 5, "tag": "nt"}) == {"sent": 10}
    events = [got.get(timeout=10) for _ in range(10)]
    # one edge's notifications arrive in order: after a later one, a duplicate would be in
    echo._post("notify", {"n": 1, "tag": "barrier"})
    rest = [got.get(timeout=10) for _ in range(2)]
    assert [d["tag"] for _e, _p, _t, d in rest] == ["barrier", "barrier"], "nothing duplicated"
    by_topic: dict[str, list[int]] = {}
    for edge, plugin, topic, data in events:
        assert (edge, plugin, data["tag"]) == ("sdk1", "echo", "nt")
        by_topic.setdefault(topic, []).append(data["i"])
    assert by_topic == {"async_topic": list(range(5)), "thread_topic": list(range(5))}
    echo.close()


def test_plugin_level_callback_and_topic_filter(bc, sdk_edge):
    got: list[tuple[str, str]] = []
    everything: queue.Queue = queue.Queue()  # every echo notification, in arrival order
    echo = bc.get_edge_client("sdk1").get_plugin("echo")
    cb = lambda e, p, t, d: got.append((t, d["tag"]))  # noqa: E731
    echo.register_notification_callback(cb, topic="thread_topic")
    bc.register_callback("sdk1", "echo", None, lambda e, p, t, d: everything.put(d["tag"]))
    assert bc.wait_for_listener(10)

    def barrier(tag: str) -> None:
        """Callbacks run in arrival order: once this tag is seen, earlier events were too."""
        echo._post("notify", {"n": 1, "tag": tag})
        services.wait_until(lambda: list(everything.queue).count(tag) == 2, 10, tag)

    echo._post("notify", {"n": 3, "tag": "pl"})
    barrier("b1")
    assert got == [("thread_topic", "pl")] * 3 + [("thread_topic", "b1")]
    echo.unregister_notification_callback(cb, topic="thread_topic")
    echo._post("notify", {"n": 1, "tag": "pl2"})
    barrier("b2")
    assert ("thread_topic", "pl2") not in got and len(got) == 4
    echo.close()


def test_sse_resumes_with_last_event_id(bridge_url, bc, sdk_edge):
    import httpx
    import orjson

    echo = bc.get_edge_client("sdk1").get_plugin("echo")

    connected = threading.Event()

    def read_events(headers: dict, want: int) -> list[tuple[str, dict]]:
        out: list[tuple[str, dict]] = []
        from authed import AUTH

        with httpx.stream("GET", f"{bridge_url}/events", headers={**AUTH, **headers},
                          timeout=10) as r:
            eid = None
            for line in r.iter_lines():
                if line.startswith("id:"):
                    eid = line[3:].strip()
                elif line.startswith("data:"):
                    connected.set()  # the first event (topology) has arrived
                    msg = orjson.loads(line[5:])
                    if msg["topic"] == "notification" and msg["data"]["data"].get("tag") == "resume":
                        out.append((eid, msg["data"]["data"]))
                    if len(out) >= want:
                        return out
        return out

    done = threading.Event()
    first: list = []
    t = threading.Thread(target=lambda: (first.extend(read_events({}, 1)), done.set()))
    t.start()
    assert connected.wait(10)
    echo._post("notify", {"n": 4, "tag": "resume"})  # 8 notifications
    assert done.wait(10)
    resumed = read_events({"Last-Event-ID": first[0][0]}, 7)
    assert len(resumed) == 7, "every notification after the given id is replayed"
    assert len({eid for eid, _ in resumed}) == 7
    echo.close()


def test_wait_for_listener_and_close(bridge_url):
    client = BridgeClient(bridge_url)
    assert client.wait_for_listener(10) is True
    client.close()
    alive = [t for t in threading.enumerate() if "sse" in t.name.lower() and t.is_alive()]
    assert not alive, alive


def test_sse_listener_reconnects_after_bridge_restart(redis_url, log_dir, sdk_edge):
    from radical.edge import services

    port = services.free_port()
    first = services.start_bridge(redis_url, port=port, log_dir=log_dir)
    client = BridgeClient(first.extra["url"])
    got: queue.Queue = queue.Queue()
    client.register_callback("sdk1", "echo", "async_topic", lambda e, p, t, d: got.put(d["tag"]))
    second = None
    try:
        assert client.wait_for_listener(10)
        first.stop()
        second = services.start_bridge(redis_url, port=port, log_dir=log_dir)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            client.get_edge_client("sdk1").plugin_client("echo")._post(
                "notify", {"n": 1, "tag": "after-restart"})
            try:
                assert got.get(timeout=1.0) == "after-restart"
                break
            except queue.Empty:
                continue
        else:
            pytest.fail("no notification after the bridge came back")
    finally:
        client.close()
        if second is not None:
            second.stop()
