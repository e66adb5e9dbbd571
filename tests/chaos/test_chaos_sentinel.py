"""Chaos: Redis high availability with Sentinel (issue 11, item 5).

A real master + replica + 3 sentinels (services_sentinel.start_sentinel_cluster), a bridge and an edge
configured with the `sentinel://` URL. The master is killed with SIGKILL while calls are in
flight and an SSE client listens; the sentinels promote the replica and everything must
follow: new calls succeed within seconds, no in-flight call is misreported (a 503 means it
did not run; a 200 carries its real answer; anything else must be an honest "unknown"), and
the SSE client keeps receiving events. Figures go to docs/reliability.md ("Redis HA").

    .venv/bin/python -m pytest -q -p no:cacheprovider tests/chaos/test_chaos_sentinel.py
"""
from __future__ import annotations

import hashlib
import threading
import time
import uuid

import httpx
import pytest
import redis
from chaos_payloads_helpers import SSEReader, record, wait_for
import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical_edge_bulk import pattern_sha256

from radical.edge import services, services_sentinel

IN_FLIGHT = 12
GAP_CALLS = 8
CALL_TIMEOUT = 20.0
#: what "follow within seconds" means here: sentinel detection (1 s) + election + reconnects
FOLLOW_SECONDS = 15.0

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def ha(log_dir):
    cluster = services_sentinel.start_sentinel_cluster(log_dir=log_dir, down_after_ms=1000,
                                              failover_timeout_ms=4000)
    started = []
    try:
        bridge = services.start_bridge(cluster.url, log_dir=log_dir,
                                       env={"RADICAL_EDGE_SSE_PING_SECONDS": "1"})
        started.append(bridge)
        name = f"ha{uuid.uuid4().hex[:6]}"
        edge = services.start_edge(cluster.url, name, "bulk,echo", log_dir,
                                   bridge_url=bridge.extra["url"])
        started.append(edge)
        yield cluster, bridge, edge
    finally:
        for svc in reversed(started):
            svc.stop()
        cluster.stop()


def test_sentinel_url_serves_calls_and_big_replies(ha):
    cluster, bridge, edge = ha
    url, name = bridge.extra["url"], edge.extra["name"]
    assert authed.get(f"{url}/{name}/bulk/wait/1", timeout=30).status_code == 200
    r = authed.get(f"{url}/{name}/bulk/stream/{3 * 1024 * 1024}", timeout=60)
    assert r.status_code == 200
    assert hashlib.sha256(r.content).hexdigest() == pattern_sha256(3 * 1024 * 1024)
    # everything really lives on the sentinel-managed master
    master = redis.Redis(port=cluster.current_master_port())
    assert master.exists(f"redge:edge:{name}")


def _call(url: str, out: dict, tag: str) -> None:
    try:
        r = authed.get(f"{url}?tag={tag}", timeout=CALL_TIMEOUT + 10,
                      headers={"x-radical-timeout": str(CALL_TIMEOUT)})
        try:
            body = r.json()
        except ValueError:
            body = r.text
        out[tag] = (r.status_code, body)
    except httpx.HTTPError as exc:
        out[tag] = (-1, repr(exc))


def test_master_killed_everyone_follows(ha):
    cluster, bridge, edge = ha
    url, name = bridge.extra["url"], edge.extra["name"]
    old_port = cluster.current_master_port()
    assert old_port == cluster.master.extra["port"]
    run = uuid.uuid4().hex[:6]
    with SSEReader(url) as sse:
        assert wait_for(lambda: sse.connects >= 1, 10) is not None
        authed.post(f"{url}/{name}/echo/notify", json={"n": 1, "tag": f"before-{run}"},
                   timeout=30).raise_for_status()
        assert wait_for(lambda: sse.seen(f"before-{run}"), 10) is not None

        results: dict[str, tuple[int, object]] = {}
        threads = [threading.Thread(target=_call, args=(f"{url}/{name}/echo/sleep/4", results,
                                                        f"{run}-{i}"))
                   for i in range(IN_FLIGHT)]
        for t in threads:
            t.start()

        def all_running() -> bool:
            return all(authed.get(f"{url}/{name}/echo/runs/{run}-{i}", timeout=5).json()["runs"]
                       for i in range(IN_FLIGHT))

        assert wait_for(all_running, 20, interval=0.05) is not None, "calls never started"
        killed_at = time.monotonic()
        cluster.master.kill9()
        # calls sent while there is no master: each must be answered truthfully too
        during = [threading.Thread(target=_call, args=(f"{url}/{name}/echo/sleep/0.1", results,
                                                       f"{run}-gap{i}"))
                  for i in range(GAP_CALLS)]
        for t in during:
            t.start()
            time.sleep(0.25)
        all_deadlines_passed = time.time() + CALL_TIMEOUT + 1

        assert wait_for(lambda: cluster.current_master_port() not in (None, old_port),
                        30) is not None, "the sentinels did not promote the replica"
        promoted = time.monotonic() - killed_at

        def serving() -> bool:
            r = authed.get(f"{url}/{name}/bulk/wait/1", timeout=3,
                          headers={"x-radical-timeout": "2"})
            return r.status_code == 200

        served = wait_for(serving, 60, interval=0.2)
        assert served is not None, "no call succeeded after the failover"
        follow = time.monotonic() - killed_at

        for t in threads + during:
            t.join(CALL_TIMEOUT + 20)
        # SSE: the same client keeps receiving (reconnecting on its own if it was cut)
        authed.post(f"{url}/{name}/echo/notify", json={"n": 1, "tag": f"after-{run}"},
                   timeout=30).raise_for_status()
        sse_after = wait_for(lambda: sse.seen(f"after-{run}"), 20)
        connects = sse.connects

    # a 503 promises the call will never run: look only once no call can start any more
    time.sleep(max(0.0, all_deadlines_passed - time.time()))
    outcomes = {"ok": 0, "not_run": 0, "unknown": 0, "misreported": 0}
    misreports = []
    for tag, (status, body) in results.items():
        runs = authed.get(f"{url}/{name}/echo/runs/{tag}", timeout=10).json()["runs"]
        if status == 200:
            slept = 0.1 if "-gap" in tag else 4.0
            ok = body == {"slept": slept, "tag": tag} and runs == 1
            outcomes["ok" if ok else "misreported"] += 1
        elif status == 503:  # promised: it did not and will not run
            outcomes["not_run" if runs == 0 else "misreported"] += 1
        elif status in (502, 504) and (not isinstance(body, dict)
                                       or body.get("outcome", "unknown") == "unknown"):
            outcomes["unknown"] += 1
        else:
            outcomes["misreported"] += 1
        if len(misreports) < outcomes["misreported"]:
            misreports.append((tag, status, body, runs))
    gap = [status for tag, (status, _b) in results.items() if "-gap" in tag]
    figures = dict(promoted_s=round(promoted, 2), first_call_ok_after_kill_s=round(follow, 2),
                   in_flight=IN_FLIGHT, during_outage=len(gap), **outcomes, sse_reconnects=connects - 1,
                   sse_event_after_s=None if sse_after is None else round(sse_after, 2))
    record("sentinel failover", **figures)
    print(figures)
    assert len(results) == IN_FLIGHT + GAP_CALLS
    assert misreports == [], misreports
    assert follow < FOLLOW_SECONDS
    assert sse_after is not None, "the SSE client received nothing after the failover"
