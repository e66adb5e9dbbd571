"""A bridge stopping with calls in flight answers each honestly, never with a bare 500.

uvicorn waits 3 s for running requests, then cancels them and answers a request that has
not started its response with "500 Internal Server Error" (text/plain). The proxy answers
instead: 503 ``not_run`` when it could take the call back out of the edge's queue (it never
runs), 502 ``unknown`` with the call id otherwise (the call went on; another bridge's
``GET /calls/{id}`` tells how it ended). Real Redis, bridges and echo edges.
"""
from __future__ import annotations

import os
import signal
import threading
import uuid

import httpx
import redis

import authed
from test_observability import sample, scrape
from waiting import wait_for

from radical.edge import services
from radical.edge.app import keys


class Caller(threading.Thread):
    """One call through `url`, answered or failed, kept for the test."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.response: httpx.Response | None = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.response = authed.get(self.url, headers={"x-radical-timeout": "60"},
                                       timeout=60)
        except httpx.HTTPError as exc:
            self.error = exc


def in_flight(url: str) -> float:
    return sample(scrape(url), "radical_edge_calls_in_flight") or 0


def runs(bridge_url: str, edge: str, tag: str) -> int:
    r = authed.get(f"{bridge_url}/{edge}/echo/runs/{tag}", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["runs"]


def stop_with_call_in_flight(bridge: services.Service, path: str) -> httpx.Response:
    url = bridge.extra["url"]
    caller = Caller(f"{url}{path}")
    caller.start()
    wait_for(lambda: in_flight(url) == 1, 15, what="the call to be in flight")
    bridge.stop(timeout=30)  # SIGTERM: uvicorn's graceful shutdown, then its cancel
    caller.join(30)
    assert caller.error is None, caller.error
    assert caller.response is not None
    return caller.response


def test_a_call_the_edge_is_running_is_answered_unknown_with_its_id(
        make_bridge, make_edge, bridge_url):
    edge = make_edge("echo").extra["name"]
    tag = uuid.uuid4().hex[:8]
    bridge = make_bridge()
    r = stop_with_call_in_flight(bridge, f"/{edge}/echo/sleep/6?tag={tag}")
    assert r.status_code == 502, r.text
    body = r.json()
    assert body["outcome"] == "unknown"
    assert "bridge stopped" in body["detail"] and f"/calls/{body['call_id']}" in body["detail"]
    # the call did go on: the edge ran it, and any other bridge knows how it ended
    record = wait_for(lambda: (lambda rec: rec if rec.get("state") == "done" else None)(
        authed.get(f"{bridge_url}/calls/{body['call_id']}", timeout=10).json()), 30,
        what="the call's record to say done")
    assert record["reply"]["status"] == 200
    assert runs(bridge_url, edge, tag) == 1


def test_a_call_still_queued_is_withdrawn_and_never_runs(make_bridge, make_edge, redis_url):
    # an edge killed while its heartbeat key lives on (TTL 15 s): still listed, nobody
    # consumes its queue (a stopped process may still take a call off its queue: the
    # blocking pop it had asked for is served into its socket)
    svc = make_edge("echo", env={"RADICAL_EDGE_HEARTBEAT_TTL": "15"})
    edge = svc.extra["name"]
    bridge = make_bridge()
    os.kill(svc.pid, signal.SIGKILL)
    svc.proc.wait(10)
    queue = keys.edge_queue_key(edge)
    with redis.Redis.from_url(redis_url) as r:
        answer = stop_with_call_in_flight(bridge, f"/{edge}/echo/sleep/0")
        assert answer.status_code == 503, answer.text
        body = answer.json()
        assert body["outcome"] == "not_run"
        assert "bridge stopped" in body["detail"] and "did not run" in body["detail"]
        assert r.llen(queue) == 0  # taken back out of the queue: it can never run
    assert "500 Internal Server Error" not in bridge.log_path.read_text(errors="replace")
