"""Edge names are leases: a paused edge whose lease ran out never comes back as a twin.

Before leases, an edge SIGSTOPped past its heartbeat TTL resumed next to its successor: it
ran the call it held, consumed the successor's calls from the shared queue and overwrote
its announcement (sessions 404ed half the time).
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import time
from pathlib import Path

import httpx

import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import services

FAST = {"RADICAL_EDGE_HEARTBEAT_TTL": "3", "RADICAL_EDGE_HEARTBEAT_SECONDS": "0.5"}


def touch(bridge_url: str, edge: str, path: Path, timeout: float = 30) -> httpx.Response:
    return authed.post(f"{bridge_url}/{edge}/echo/touch", json={"path": str(path)},
                      headers={"x-radical-timeout": "60"}, timeout=timeout)


def test_paused_edge_never_runs_or_steals_calls_after_losing_its_name(
        make_edge, bridge_url, tmp_path):
    first = make_edge("echo", name="twin", env=FAST)
    held = [tmp_path / f"held-{i}" for i in range(3)]
    os.kill(first.pid, signal.SIGSTOP)
    try:
        # calls sent right now reach the frozen edge's pending BRPOP or wait in its queue
        with cf.ThreadPoolExecutor(3) as pool:
            pending = [pool.submit(touch, bridge_url, "twin", p) for p in held]
            services.wait_for_edge(bridge_url, "twin", 20, present=False)
            statuses = [f.result().status_code for f in pending]
        assert set(statuses) <= {502, 503, 504}, statuses  # not answered; outcome checked below
        second = make_edge("echo", name="twin", env=FAST)
        http = httpx.Client(base_url=bridge_url, timeout=30, headers=authed.AUTH)
        sid = http.post("/twin/echo/register_session", json={"greeting": "hi"}).json()["sid"]
    finally:
        os.kill(first.pid, signal.SIGCONT)

    # drive the successor while the first wakes up: every call must reach the successor
    late = []
    for i in range(30):
        r = http.get(f"/twin/echo/greet/{sid}")
        assert r.status_code == 200, (i, r.status_code, r.text)
        path = tmp_path / f"late-{i}"
        r = touch(bridge_url, "twin", path)
        assert r.status_code == 200, (i, r.status_code, r.text)
        late.append(path)

    code = first.proc.wait(timeout=30)
    assert code != 0, "the paused edge should exit: its name belongs to the successor"
    assert not [p for p in held if p.exists()], "the paused edge ran a call it held"
    pids = {int(p.read_text()) for p in late}
    assert pids == {second.pid}, f"calls ran in {pids}, successor is {second.pid}"
    assert services.list_edges(bridge_url)["twin"]["pid"] == second.pid
    log = first.log_path.read_text(errors="replace")
    assert "lost its name" in log
    # the successor still serves after the first is gone
    assert http.get(f"/twin/echo/greet/{sid}").status_code == 200
    time.sleep(0.1)


def test_second_edge_with_a_live_name_is_refused(make_edge, log_dir, redis_url, bridge_url):
    make_edge("echo", name="single", env=FAST)
    dup = services.start_edge(redis_url, "single", "echo", log_dir, env=FAST, wait=0)
    try:
        assert dup.proc.wait(timeout=30) != 0
        assert "already running" in dup.log_tail()
    finally:
        dup.stop()
    assert "single" in services.list_edges(bridge_url)
