"""Failure and load behaviour: dead edges, restarted Redis, many clients, several bridges."""
from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import threading
import time
import uuid


import authed

from radical.edge import BridgeClient, services


def runs(bridge_url: str, edge: str, tag: str) -> int:
    return authed.get(f"{bridge_url}/{edge}/echo/runs/{tag}", timeout=10).json()["runs"]


def test_kill9_mid_call_gives_unknown_outcome_and_edge_leaves(make_edge, bridge_url):
    svc = make_edge("echo", name="victim")
    tag = uuid.uuid4().hex[:8]
    with cf.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(authed.get, f"{bridge_url}/victim/echo/sleep/60",
                              params={"tag": tag}, timeout=30)
        services.wait_until(lambda: runs(bridge_url, "victim", tag) == 1, 10,
                            "the handler to be running")
        t0 = time.monotonic()
        svc.kill9()
        r = pending.result()
        waited = time.monotonic() - t0
    # the handler was running: the bridge cannot know it did not finish, so no 503
    assert r.status_code == 502, r.text
    assert "lost mid-call" in r.json()["detail"] and r.json()["outcome"] == "unknown"
    record = authed.get(f"{bridge_url}/calls/{r.json()['call_id']}", timeout=5).json()
    assert record["state"] == "running"  # it started and never finished
    assert waited < 10, f"the answer took {waited:.1f} s"
    assert "victim" not in services.list_edges(bridge_url)
    r = authed.get(f"{bridge_url}/victim/echo/version", timeout=5)
    assert r.status_code == 503 and "not connected" in r.json()["detail"]


def test_call_for_a_dead_edge_never_runs_later(make_edge, bridge_url):
    svc = make_edge("echo", name="phoenix")
    tag = uuid.uuid4().hex[:8]
    svc.kill9()
    # right after the kill the bridge may still believe the edge alive and queue the call
    statuses = [authed.get(f"{bridge_url}/phoenix/echo/sleep/0", params={"tag": tag},
                          timeout=30).status_code for _ in range(3)]
    assert set(statuses) <= {503}, statuses
    make_edge("echo", name="phoenix")  # same name comes back
    # `runs` is itself a call: it is consumed after anything still queued for the old edge
    assert runs(bridge_url, "phoenix", tag) == 0


def test_call_answered_504_is_withdrawn_and_never_runs(make_edge, bridge_url):
    """The bridge's side of deadlines (LREM of the queued call); the edge's own drop of
    expired calls is proven in test_call_semantics.py."""
    svc = make_edge("echo", name="frozen")
    tag = uuid.uuid4().hex[:8]
    os.kill(svc.pid, signal.SIGSTOP)  # the edge cannot consume; its heartbeat key stays
    try:
        r = authed.get(f"{bridge_url}/frozen/echo/sleep/0", params={"tag": tag},
                      headers={"x-radical-timeout": "1"}, timeout=10)
        assert r.status_code == 504
    finally:
        os.kill(svc.pid, signal.SIGCONT)
    services.wait_for_edge(bridge_url, "frozen", 15)
    # `runs` is itself a call: the queue is FIFO, so an unwithdrawn call would run first
    assert runs(bridge_url, "frozen", tag) == 0


def test_32_clients_x_200_calls_no_mixed_or_lost_replies(make_edge, bridge_url):
    make_edge("echo", name="busy")
    clients, calls = 32, 200
    errors: list[str] = []

    def worker(i: int) -> int:
        bc = BridgeClient(bridge_url)
        try:
            echo = bc.get_edge_client("busy").get_plugin("echo")
            ok = 0
            for j in range(calls):
                token = f"{i}-{j}-{uuid.uuid4().hex}"
                got = echo._request("POST", f"echo/{token}", content=token,
                                    headers=authed.JSON)
                if got["rest"] != token or got["body"] != token:
                    errors.append(f"client {i} call {j}: sent {token}, got {got}")
                else:
                    ok += 1
            echo.close()
            return ok
        finally:
            bc.close()

    with cf.ThreadPoolExecutor(clients) as pool:
        done = sum(pool.map(worker, range(clients)))
    assert errors == []
    assert done == clients * calls


def test_two_bridges_on_one_redis(make_bridge, make_edge, bridge_url):
    make_edge("echo", name="shared")
    other = make_bridge()
    urls = [bridge_url, other.extra["url"]]
    clients = [BridgeClient(u) for u in urls]
    try:
        got = [[], []]
        for k, bc in enumerate(clients):
            bc.register_callback("shared", "echo", None,
                                 lambda e, p, t, d, k=k: got[k].append(d["i"]))
            assert bc.wait_for_listener(10)

        def call(i: int) -> bool:
            url = urls[i % 2]
            token = uuid.uuid4().hex
            r = authed.post(f"{url}/shared/echo/echo/{token}", content=token,
                               headers=authed.JSON, timeout=20)
            return r.status_code == 200 and r.json()["body"] == token

        with cf.ThreadPoolExecutor(16) as pool:
            assert all(pool.map(call, range(400)))
        authed.post(f"{urls[1]}/shared/echo/notify", json={"n": 5, "tag": "two"}, timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(len(g) == 10 for g in got):
            time.sleep(0.05)
        assert [sorted(g) for g in got] == [sorted(list(range(5)) * 2)] * 2
    finally:
        for bc in clients:
            bc.close()


def test_redis_restart_bridge_and_edge_recover(log_dir):
    redis_svc = services.start_redis(log_dir=log_dir)
    port, url = redis_svc.extra["port"], redis_svc.extra["url"]
    bridge = services.start_bridge(url, log_dir=log_dir)
    burl = bridge.extra["url"]
    edge = services.start_edge(url, "survivor", "echo", log_dir, bridge_url=burl)
    bc = BridgeClient(burl)
    got: list = []
    try:
        assert authed.get(f"{burl}/survivor/echo/version", timeout=5).status_code == 200
        bc.register_callback("survivor", "echo", None, lambda e, p, t, d: got.append(d))
        assert bc.wait_for_listener(10)
        redis_svc.stop()
        r = authed.get(f"{burl}/survivor/echo/version", timeout=15)
        assert r.status_code in (503, 504), r.text  # a clear error while Redis is away
        redis_svc = services.start_redis(port=port, log_dir=log_dir)
        t0 = time.monotonic()
        services.wait_for_edge(burl, "survivor", 30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = authed.get(f"{burl}/survivor/echo/version", timeout=5)
            if r.status_code == 200:
                break
            time.sleep(0.2)
        assert r.status_code == 200, r.text
        recovered = time.monotonic() - t0
        assert recovered < 30
        got.clear()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not got:
            authed.post(f"{burl}/survivor/echo/notify", json={"n": 1, "tag": "r"}, timeout=5)
            time.sleep(0.5)
        assert got, "notifications flow again after the restart"
        assert bridge.alive() and edge.alive()
    finally:
        bc.close()
        edge.stop()
        bridge.stop()
        redis_svc.stop()


def test_on_topology_change_reaches_plugins(make_edge, bridge_url):
    make_edge("echo", name="watcher")
    make_edge("sysinfo", name="newcomer")
    deadline = time.monotonic() + 15
    seen: list = []
    while time.monotonic() < deadline:
        seen = authed.get(f"{bridge_url}/watcher/echo/seen_topology", timeout=5).json()["edges"]
        if "newcomer" in seen:
            break
        time.sleep(0.2)
    assert "newcomer" in seen and "watcher" in seen


def test_sse_keeps_up_with_a_notification_burst(make_edge, bridge_url):
    make_edge("echo", name="bursty")
    bc = BridgeClient(bridge_url)
    seen: set = set()
    lock = threading.Lock()

    def cb(e, p, t, d):
        with lock:
            seen.add((t, d["i"]))

    bc.register_callback("bursty", "echo", None, cb)
    try:
        assert bc.wait_for_listener(10)
        authed.post(f"{bridge_url}/bursty/echo/notify", json={"n": 3000, "tag": "b"}, timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(seen) < 6000:
            time.sleep(0.1)
        assert len(seen) == 6000
    finally:
        bc.close()
