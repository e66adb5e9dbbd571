"""Two deployments on ONE Redis, told apart only by `RADICAL_EDGE_REDIS_PREFIX`: neither sees
the other's edges, calls, notifications or Celery remote control, even with equal edge names."""
from __future__ import annotations

import threading

import pytest
import redis

import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import BridgeClient, services
from radical.edge.settings import REDIS_PREFIX_ENV

OTHER = "other"


@pytest.fixture
def other_bridge(make_bridge) -> str:
    return make_bridge(env={REDIS_PREFIX_ENV: OTHER}).extra["url"]


@pytest.fixture
def other_edge(redis_url, other_bridge, log_dir):
    started = []

    def start(name: str, plugins: str) -> services.Service:
        svc = services.start_edge(redis_url, name, plugins, log_dir, env={REDIS_PREFIX_ENV: OTHER},
                                  bridge_url=other_bridge)
        started.append(svc)
        return svc

    yield start
    for svc in started:
        svc.stop()


def test_two_prefixes_share_one_redis_without_seeing_each_other(
        redis_url, bridge_url, other_bridge, make_edge, other_edge):
    make_edge("sysinfo", name="twin")  # default deployment
    other_edge("twin", "echo")  # same name, other deployment: its own name claim
    mine, theirs = services.list_edges(bridge_url), services.list_edges(other_bridge)
    assert set(mine["twin"]["plugins"]) == {"sysinfo"}
    assert set(theirs["twin"]["plugins"]) == {"echo"}
    assert theirs["twin"]["endpoint"]["queue"] == f"{OTHER}.edge.twin"
    assert mine["twin"]["endpoint"]["queue"] == "edge.twin"

    # calls go to the edge of the bridge's own deployment
    r = authed.get(f"{other_bridge}/twin/echo/echo/hi", timeout=30)
    assert r.status_code == 200 and r.json()["rest"] == "hi"
    assert authed.get(f"{bridge_url}/twin/echo/echo/hi", timeout=30).status_code == 404
    assert authed.get(f"{other_bridge}/twin/sysinfo/version", timeout=30).status_code == 404

    # notifications stay in their deployment's stream
    got = threading.Event()
    with BridgeClient(other_bridge) as bc:
        bc.register_callback("twin", "echo", "async_topic",
                             lambda e, p, t, d: got.set() if d.get("tag") == "prefix-t" else None)
        assert bc.wait_for_listener(30)
        r = authed.post(f"{other_bridge}/twin/echo/notify", json={"n": 1, "tag": "prefix-t"},
                       timeout=30)
        assert r.status_code == 200
        assert got.wait(30), "the other deployment's bridge did not relay its notification"
    rc = redis.Redis.from_url(redis_url)
    try:
        def tagged(stream: str) -> bool:
            return any(b"prefix-t" in v for _id, f in rc.xrange(stream) for v in f.values())

        assert tagged(f"{OTHER}:notifications")
        assert not tagged("redge:notifications")
        # every key of the other deployment (kombu's own too) lies under its prefix
        strays = [k for k in rc.scan_iter(count=1000)
                  if OTHER.encode() in k and not k.startswith(f"{OTHER}:".encode())]
        assert strays == []
        assert any(k.startswith(f"{OTHER}:_kombu.binding.".encode())
                   for k in rc.scan_iter(count=1000))  # kombu's keys did get the prefix
        assert rc.exists(f"{OTHER}:edge:twin") and rc.exists("redge:edge:twin")
    finally:
        rc.close()

    # Celery remote control is per deployment too: disconnecting our twin spares theirs
    with BridgeClient(bridge_url) as bc:
        bc.disconnect_edge("twin")
    services.wait_for_edge(bridge_url, "twin", 30, present=False)
    r = authed.get(f"{other_bridge}/twin/echo/echo/still", timeout=30)
    assert r.status_code == 200 and r.json()["rest"] == "still"
    assert "twin" in services.list_edges(other_bridge)
