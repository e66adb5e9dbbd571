"""Big bodies through a real bridge and edge: out of band, streamed, intact, cleaned up.

The `bulk` fixture plugin (tests/fixtures/bulk_plugin) sends deterministic bytes, so every
reply is checked with a sha256 of what it must be.
"""
from __future__ import annotations

import hashlib
import os

import httpx
import pytest
import redis
import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical_edge_bulk import pattern, pattern_sha256

MB = 1024 * 1024


@pytest.fixture(scope="module")
def bulk_edge(module_edges) -> str:
    return module_edges("bulk").extra["name"]


def _get(bridge_url: str, path: str, timeout: float = 60.0) -> httpx.Response:
    return authed.get(f"{bridge_url}{path}", timeout=timeout)


@pytest.mark.parametrize("kind", ["bytes", "stream", "file"])
def test_big_reply_arrives_intact(bridge_url, bulk_edge, kind):
    size = 5 * MB + 123
    r = _get(bridge_url, f"/{bulk_edge}/bulk/{kind}/{size}")
    assert r.status_code == 200, r.text[:300]
    assert len(r.content) == size
    assert hashlib.sha256(r.content).hexdigest() == pattern_sha256(size)


def test_big_json_reply_arrives_intact(bridge_url, bulk_edge):
    r = _get(bridge_url, f"/{bulk_edge}/bulk/json/{2 * MB}")
    assert r.status_code == 200
    assert r.json()["text"] == "x" * (2 * MB)


def test_plain_big_reply_declares_its_length(bridge_url, bulk_edge):
    size = 3 * MB
    with httpx.stream("GET", f"{bridge_url}/{bulk_edge}/bulk/bytes/{size}", headers=authed.AUTH, timeout=60) as r:
        assert r.headers["content-length"] == str(size)
        assert sum(len(c) for c in r.iter_bytes()) == size


def test_small_replies_stay_inline(bridge_url, bulk_edge, redis_url):
    """Below the threshold a body is one PUBLISH: no blob key is ever created."""
    client = redis.Redis.from_url(redis_url)
    before = set(client.scan_iter("redge:blob:*"))
    for size in (0, 1, 200 * 1024):
        r = _get(bridge_url, f"/{bulk_edge}/bulk/stream/{size}")
        assert r.status_code == 200 and len(r.content) == size
    assert set(client.scan_iter("redge:blob:*")) == before


def test_stream_failing_half_way_is_not_a_complete_body(bridge_url, bulk_edge):
    """The status line has gone out: the bridge must cut the connection, not end cleanly."""
    with pytest.raises(httpx.HTTPError):
        with httpx.stream("GET", f"{bridge_url}/{bulk_edge}/bulk/broken/{8 * MB}",
                          headers=authed.AUTH, timeout=60) as r:
            for _ in r.iter_bytes():
                pass


@pytest.mark.parametrize("size", [0, 100, 300 * 1024, 6 * MB + 7])
def test_request_body_round_trips(bridge_url, bulk_edge, size):
    body = b"".join(pattern(size))
    r = authed.post(f"{bridge_url}/{bulk_edge}/bulk/digest", content=body, timeout=60,
                   headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200, r.text[:300]
    assert r.json() == {"size": size, "sha256": hashlib.sha256(body).hexdigest()}


def test_streamed_upload_without_length(bridge_url, bulk_edge):
    """A chunked upload (no Content-Length) is spooled to Redis as it arrives."""
    size = 4 * MB + 1

    def gen():
        yield from pattern(size, 64 * 1024)

    r = authed.post(f"{bridge_url}/{bulk_edge}/bulk/digest", content=gen(), timeout=60)
    assert r.status_code == 200
    expected = hashlib.sha256(b"".join(pattern(size, 64 * 1024))).hexdigest()
    assert r.json() == {"size": size, "sha256": expected}


def test_oversized_upload_is_413_and_leaves_nothing(bridge_url, bulk_edge, redis_url):
    client = redis.Redis.from_url(redis_url)
    limit = 64 * MB

    def gen():
        for _ in range(limit // MB + 2):
            yield os.urandom(16) * (MB // 16)

    r = authed.post(f"{bridge_url}/{bulk_edge}/bulk/digest", content=gen(), timeout=120)
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]
    assert [k for k in client.scan_iter("redge:blob:*") if not k.endswith(b":stop")] == []


def test_blobs_are_consumed(bridge_url, bulk_edge, redis_url):
    """Out-of-band bodies are deleted once read, on both directions."""
    client = redis.Redis.from_url(redis_url)
    _get(bridge_url, f"/{bulk_edge}/bulk/bytes/{2 * MB}")
    authed.post(f"{bridge_url}/{bulk_edge}/bulk/digest", content=b"y" * (2 * MB), timeout=60)
    assert [k for k in client.scan_iter("redge:blob:*") if not k.endswith(b":stop")] == []


def test_blocked_plugin_loop_keeps_the_edge_listed(bridge_url, make_edge):
    """A handler blocking the plugin loop past the heartbeat TTL: the edge stays in the
    topology (heartbeats run on their own thread) and the call answers normally."""
    from concurrent.futures import ThreadPoolExecutor, wait

    from radical.edge import services

    name = make_edge("bulk", env={"RADICAL_EDGE_HEARTBEAT_SECONDS": "0.5",
                                  "RADICAL_EDGE_HEARTBEAT_TTL": "1.5"}).extra["name"]
    with ThreadPoolExecutor(1) as pool:
        blocked = pool.submit(_get, bridge_url, f"/{name}/bulk/block/4")
        missing = 0
        while not blocked.done():
            if name not in services.list_edges(bridge_url):
                missing += 1
            wait([blocked], timeout=0.2)
        r = blocked.result()
    assert r.status_code == 200 and r.json() == {"blocked": 4.0}
    assert missing == 0


def test_big_reply_nobody_waits_for_is_dropped(bridge_url, bulk_edge, redis_url):
    """The caller got its 504: the edge stops streaming and nothing stays in Redis."""
    import time

    client = redis.Redis.from_url(redis_url)
    r = authed.get(f"{bridge_url}/{bulk_edge}/bulk/late/{40 * MB}?delay=1.5", timeout=30,
                  headers={"x-radical-timeout": "0.5"})
    assert r.status_code == 504

    def leftovers():
        return [k for k in client.scan_iter("redge:blob:*") if not k.endswith(b":stop")]

    deadline, clean = time.monotonic() + 20, 0
    while time.monotonic() < deadline and clean < 5:  # empty for 1 s in a row
        time.sleep(0.2)
        clean = clean + 1 if not leftovers() and client.keys("redge:blob:*:stop") else 0
    assert leftovers() == []
    assert client.keys("redge:blob:*:stop"), "the bridge never told the edge to stop"
    # and the edge still serves
    assert _get(bridge_url, f"/{bulk_edge}/bulk/wait/1").status_code == 200


def test_client_hanging_up_stops_a_streamed_reply(bridge_url, bulk_edge, redis_url):
    import time

    client = redis.Redis.from_url(redis_url)
    with httpx.stream("GET", f"{bridge_url}/{bulk_edge}/bulk/stream/{2000 * MB}",
                      headers=authed.AUTH, timeout=60) as r:
        assert r.status_code == 200
        next(r.iter_bytes())
    # relaying 2 GB to nobody would take far longer than this (~90 MB/s here)
    deadline, clean = time.monotonic() + 6, 0
    while time.monotonic() < deadline and clean < 5:
        time.sleep(0.2)
        left = [k for k in client.scan_iter("redge:blob:*") if not k.endswith(b":stop")]
        clean = clean + 1 if not left else 0
    assert clean == 5, "the edge kept streaming after the client left"
    assert _get(bridge_url, f"/{bulk_edge}/bulk/wait/1").status_code == 200


def test_body_of_a_call_that_will_not_run_is_freed(bridge_url, make_edge, redis_url):
    """A stopped edge is lost mid-call. Its pending BRPOP may already have taken one call
    (502, outcome unknown: that body stays for the edge, until its TTL); every call answered
    503 (withdrawn from the queue, it will never run) has its spooled body removed at once."""
    import concurrent.futures as cf
    import signal

    client = redis.Redis.from_url(redis_url)
    edge = make_edge("bulk", env={"RADICAL_EDGE_HEARTBEAT_SECONDS": "0.5",
                                  "RADICAL_EDGE_HEARTBEAT_TTL": "1.5"})
    name = edge.extra["name"]
    edge.proc.send_signal(signal.SIGSTOP)
    try:
        with cf.ThreadPoolExecutor(3) as pool:
            calls = [pool.submit(authed.post, f"{bridge_url}/{name}/bulk/digest",
                                 content=b"z" * (2 * MB), timeout=60) for _ in range(3)]
            statuses = sorted(c.result().status_code for c in calls)
        left = [k for k in client.scan_iter("redge:blob:*") if not k.endswith(b":stop")]
    finally:
        edge.proc.send_signal(signal.SIGCONT)
    assert statuses.count(503) >= 2 and set(statuses) <= {502, 503}, statuses
    assert len(left) == statuses.count(502), (statuses, left)
