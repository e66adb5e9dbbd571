"""Chaos: big payloads must not hurt anyone (issue 11, item 3).

Real Redis with its default `client-output-buffer-limit pubsub 32mb 8mb 60`, a real bridge
and edge. Figures (time to answer, peak RSS from /proc/<pid>/status VmHWM, bystander
failures) go to .run/test-logs/chaos-figures.jsonl and docs/reliability.md ("Payloads").

    .venv/bin/python -m pytest -q -p no:cacheprovider tests/chaos/test_chaos_payloads.py
"""
from __future__ import annotations

import hashlib
import time

import httpx
import pytest
import redis
from chaos_payloads_helpers import (Bystanders, TopologyProbe, peak_rss_mb, record,
                                    reset_peak_rss)
import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical_edge_bulk import pattern, pattern_sha256

MB = 1024 * 1024
BYSTANDERS = 30

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def stack(make_bridge, make_edge):
    """A bridge and a `bulk` edge of this test only (so their peak RSS is this test's)."""
    bridge = make_bridge()
    edge = make_edge("bulk", env={"RADICAL_EDGE_HEARTBEAT_SECONDS": "0.5",
                                  "RADICAL_EDGE_HEARTBEAT_TTL": "2"})
    return bridge, edge


def test_redis_has_the_default_pubsub_limit(redis_url):
    """The scenario means something only with Redis's stock limit on subscribers."""
    limits = redis.Redis.from_url(redis_url).config_get("client-output-buffer-limit")
    assert "pubsub 33554432 8388608 60" in limits["client-output-buffer-limit"]


@pytest.mark.parametrize("kind,size_mb", [("bytes", 40), ("stream", 40), ("file", 64)])
def test_big_reply_with_bystanders(stack, redis_url, kind, size_mb):
    """A 40 MB reply (and a 64 MB file: the body limit) while 30 small calls are in flight."""
    bridge, edge = stack
    client = redis.Redis.from_url(redis_url)
    url, name = bridge.extra["url"], edge.extra["name"]
    size = size_mb * MB
    authed.get(f"{url}/{name}/bulk/wait/1", timeout=30).raise_for_status()  # warm
    reset_peak_rss(bridge.pid)
    reset_peak_rss(edge.pid)
    base_bridge, base_edge = peak_rss_mb(bridge.pid), peak_rss_mb(edge.pid)
    subscribers = {c["id"] for c in client.client_list(_type="pubsub")}
    bystanders = Bystanders([f"{url}/{name}/bulk/wait/6000?tag={i}"
                             for i in range(BYSTANDERS)]).start()
    time.sleep(0.5)  # let them reach the edge; overlap is asserted below, not assumed
    t0 = time.time()
    digest, got = hashlib.sha256(), 0
    with httpx.stream("GET", f"{url}/{name}/bulk/{kind}/{size}", headers=authed.AUTH, timeout=120) as r:
        status = r.status_code
        for chunk in r.iter_bytes():
            digest.update(chunk)
            got += len(chunk)
    t1 = time.time()
    results = bystanders.join(60)
    dropped = subscribers - {c["id"] for c in client.client_list(_type="pubsub")}
    failures = [res for res in results if res[0] != 200]
    overlapping = [b for s, b in results if s == 200 and b["started"] < t1 and b["ended"] > t0]
    figures = dict(kind=kind, size_mb=size_mb, seconds=round(t1 - t0, 2), bystanders=len(results),
                   bystander_failures=len(failures), subscribers_dropped=len(dropped),
                   overlapping=len(overlapping),
                   bridge_peak_growth_mb=round(peak_rss_mb(bridge.pid) - base_bridge, 1),
                   edge_peak_growth_mb=round(peak_rss_mb(edge.pid) - base_edge, 1))
    record("big reply + bystanders", **figures)
    print(figures)
    assert not dropped, "Redis disconnected a pub/sub subscriber (output buffer limit)"
    assert status == 200 and got == size
    assert digest.hexdigest() == pattern_sha256(size)
    assert failures == [] and len(results) == BYSTANDERS
    assert len(overlapping) >= 24, "bystanders were not in flight during the big reply"
    # the bridge relays chunk by chunk: it never holds the 40 MB body
    assert figures["bridge_peak_growth_mb"] < 20
    if kind != "bytes":  # a streamed body or a file is never whole on the edge either
        assert figures["edge_peak_growth_mb"] < 30


@pytest.mark.parametrize("size_mb", [10, 30])
def test_big_request_body_keeps_edge_listed_and_small(stack, size_mb):
    bridge, edge = stack
    url, name = bridge.extra["url"], edge.extra["name"]
    size = size_mb * MB
    body = b"".join(pattern(size))
    reset_peak_rss(edge.pid)
    reset_peak_rss(bridge.pid)
    base_edge, base_bridge = peak_rss_mb(edge.pid), peak_rss_mb(bridge.pid)
    with TopologyProbe(url, name) as probe:
        t0 = time.time()
        r = authed.post(f"{url}/{name}/bulk/digest?whole=1", content=body, timeout=120,
                       headers={"content-type": "application/msgpack"})
        seconds = time.time() - t0
        # the edge must also still answer other calls right after
        small = authed.get(f"{url}/{name}/bulk/wait/1", timeout=30)
    figures = dict(size_mb=size_mb, seconds=round(seconds, 2), status=r.status_code,
                   edge_peak_growth_mb=round(peak_rss_mb(edge.pid) - base_edge, 1),
                   bridge_peak_growth_mb=round(peak_rss_mb(bridge.pid) - base_bridge, 1),
                   topology_polls=probe.polls, edge_missing=probe.missing)
    record(f"{size_mb}MB request body", **figures)
    print(figures)
    assert r.status_code == 200, r.text[:300]
    assert r.json() == {"size": size, "sha256": hashlib.sha256(body).hexdigest()}
    assert small.status_code == 200
    assert probe.polls > 0 and probe.missing == 0
    # whole-body handler: the body once plus its chunks while joining, not 80x as before
    assert figures["edge_peak_growth_mb"] < 3 * size_mb + 16
