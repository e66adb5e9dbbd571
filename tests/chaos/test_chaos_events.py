"""Chaos tests of the event stream, with real Redis, bridges, edges and SSE clients.

Every notification of a burst carries a sequence number, so loss and duplication are
counted exactly.  Figures are printed as `EVENTS-FIGURES {...}` lines (run with `-s`) and
recorded in docs/reliability.md, section "Events".
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest
import redis as redis_sync
from chaos_events_helpers import Collector, RssSampler, StalledClient, start_burst

from radical.edge import services
from radical.edge.app import keys

EDGE_ENV_SMALL_CAP = {"RADICAL_EDGE_EVENTS_MAXLEN": "5000"}


def figures(name: str, **values: object) -> None:
    print(f"EVENTS-FIGURES {json.dumps({'test': name, **values})}", flush=True)


@pytest.fixture(scope="module")
def chaos_redis(log_dir: Path) -> Iterator[services.Service]:
    """A private Redis: bursts of 100,000 entries stay out of the session's stream."""
    svc = services.start_redis(log_dir=log_dir)
    yield svc
    svc.stop()


class Stack:
    """Bridges and echo edges on the module's Redis; everything stopped after the test."""

    def __init__(self, redis_url: str, log_dir: Path) -> None:
        self.redis_url, self.log_dir = redis_url, log_dir
        self.started: list[services.Service] = []

    def bridge(self, env: dict[str, str] | None = None, port: int | None = None
               ) -> services.Service:
        svc = services.start_bridge(self.redis_url, port=port, log_dir=self.log_dir, env=env)
        self.started.append(svc)
        return svc

    def edge(self, bridge_url: str, env: dict[str, str] | None = None) -> str:
        name = f"ev{uuid.uuid4().hex[:6]}"
        svc = services.start_edge(self.redis_url, name, "echo", self.log_dir, env=env,
                                  bridge_url=bridge_url)
        self.started.append(svc)
        return name

    def stop_all(self) -> None:
        for svc in reversed(self.started):
            svc.stop()


@pytest.fixture
def stack(chaos_redis: services.Service, log_dir: Path) -> Iterator[Stack]:
    s = Stack(chaos_redis.extra["url"], log_dir)
    yield s
    s.stop_all()


@pytest.fixture
def collectors() -> Iterator[Callable[..., Collector]]:
    made: list[Collector] = []

    def make(*args: object, **kw: object) -> Collector:
        c = Collector(*args, **kw).start()  # type: ignore[arg-type]
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


@pytest.mark.parametrize("resume_on", ["other-bridge", "restarted-bridge"])
def test_bridge_kill9_while_events_flow_loses_nothing(stack, collectors, resume_on):
    n = 12_000
    first = stack.bridge()
    urls = [first.extra["url"]]
    if resume_on == "other-bridge":
        second = stack.bridge()
        urls.append(second.extra["url"])
    edge = stack.edge(urls[0])
    tag = uuid.uuid4().hex[:8]
    c = collectors(lambda: urls, tag)
    assert c.connected.wait(10)
    t0 = time.monotonic()
    start_burst(urls[0], edge, n, tag, rate=3000)
    assert c.wait_for(2000, 30), c.stats(n)
    first.kill9()
    killed_at = len(set(c.seqs))
    if resume_on == "restarted-bridge":
        second = stack.bridge(port=first.extra["port"])
    sampler = RssSampler(second.pid)
    sampler.start()
    assert c.wait_for(n, 120), c.stats(n)
    elapsed = time.monotonic() - t0
    time.sleep(0.5)  # anything duplicated would arrive right behind
    stats = c.stats(n)
    assert stats["lost"] == 0 and stats["duplicates"] == 0 and stats["gaps"] == 0, stats
    assert killed_at < n, "the bridge died while events were still flowing"
    figures(f"kill9-{resume_on}", events=n, received_before_kill=killed_at,
            events_per_s=round(n / elapsed), resume_s=[round(s, 2) for s in c.resume_seconds],
            peak_bridge_rss_mib=round(sampler.stop(), 1), **stats)


def test_burst_of_100k_reaches_every_client_despite_a_small_stream_cap(stack, collectors):
    """The notifier's cap (5,000) is far below the burst: trimming must wait for readers."""
    n = 100_000
    a, b = stack.bridge(), stack.bridge()
    edge = stack.edge(a.extra["url"], env=EDGE_ENV_SMALL_CAP)
    tag = uuid.uuid4().hex[:8]
    c1 = collectors(lambda: [a.extra["url"]], tag)
    c2 = collectors(lambda: [b.extra["url"]], tag)
    assert c1.connected.wait(10) and c2.connected.wait(10)
    sampler = RssSampler(a.pid)
    sampler.start()
    t0 = time.monotonic()
    start_burst(a.extra["url"], edge, n, tag)
    assert c1.wait_for(n, 240), c1.stats(n)
    assert c2.wait_for(n, 60), c2.stats(n)
    elapsed = time.monotonic() - t0
    time.sleep(0.5)
    for c in (c1, c2):
        stats = c.stats(n)
        assert stats["lost"] == 0 and stats["duplicates"] == 0 and stats["gaps"] == 0, stats
    figures("burst-100k", events=n, clients=2, bridges=2, stream_cap=5000,
            events_per_s_each=round(n / elapsed), peak_bridge_rss_mib=round(sampler.stop(), 1),
            **c1.stats(n))


def test_client_away_longer_than_retention_gets_an_explicit_gap(stack, collectors):
    n = 10_000
    bridge = stack.bridge()
    url = bridge.extra["url"]
    edge = stack.edge(url, env={"RADICAL_EDGE_EVENTS_MAXLEN": "2000"})
    before, tag, after = (uuid.uuid4().hex[:8] for _ in range(3))
    away = collectors(lambda: [url], before)
    assert away.connected.wait(10)
    start_burst(url, edge, 5, before)
    assert away.wait_for(5, 20)
    away.stop()
    gone_at = away.last_event_id
    stay = collectors(lambda: [url], tag)
    assert stay.connected.wait(10)
    start_burst(url, edge, n, tag)
    assert stay.wait_for(n, 120), stay.stats(n)
    start_burst(url, edge, 1000, after)  # later writes trim what every live reader has read
    time.sleep(2.0)
    back = collectors(lambda: [url], tag, last_event_id=gone_at)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (back.gaps and back.seqs and back.seqs[-1] == n - 1):
        time.sleep(0.1)
    assert len(back.gaps) == 1, back.gaps
    assert back.gaps[0]["from"] == gone_at
    got = back.seqs
    assert got and got[0] > 0, "entries were really trimmed"
    assert got == list(range(got[0], n)), "after the gap: everything, in order, once"
    assert stay.stats(n)["lost"] == 0 and not stay.gaps
    figures("away-longer-than-retention", stream_cap=2000, burst=n, gap=back.gaps[0],
            replayed_after_gap=len(got))


def test_never_reading_client_is_disconnected_and_others_get_everything(stack, collectors):
    n, send_timeout = 10_000, 3.0
    bridge = stack.bridge(env={"RADICAL_EDGE_EVENTS_SEND_TIMEOUT": str(send_timeout)})
    url = bridge.extra["url"]
    edge = stack.edge(url)
    tag = uuid.uuid4().hex[:8]
    reader = collectors(lambda: [url], tag)
    assert reader.connected.wait(10)
    stalled = StalledClient(bridge.extra["port"])
    try:
        services.wait_until(lambda: stalled.server_side_open(bridge.pid), 10, "stalled client")
        t0 = time.monotonic()
        start_burst(url, edge, n, tag, pad=1000)  # 10 MB: far more than socket buffers hold
        bound = send_timeout + 30
        services.wait_until(lambda: not stalled.server_side_open(bridge.pid), bound,
                            "the bridge to cut the never-reading client", interval=0.2)
        cut_after = time.monotonic() - t0
        assert reader.wait_for(n, 120), reader.stats(n)
        stats = reader.stats(n)
        assert stats["lost"] == 0 and stats["duplicates"] == 0, stats
    finally:
        stalled.close()
    figures("never-reading-client", send_timeout_s=send_timeout,
            cut_after_burst_start_s=round(cut_after, 1), other_client=stats)


def test_slow_client_behind_the_window_gets_everything(stack, collectors):
    n = 10_000
    bridge = stack.bridge(env={"RADICAL_EDGE_EVENTS_BUFFER": "500",
                               "RADICAL_EDGE_SSE_QUEUE_SIZE": "300"})
    url = bridge.extra["url"]
    edge = stack.edge(url)
    tag = uuid.uuid4().hex[:8]
    fast = collectors(lambda: [url], tag)
    slow = collectors(lambda: [url], tag, delay=0.0005)
    assert fast.connected.wait(10) and slow.connected.wait(10)
    t0 = time.monotonic()
    start_burst(url, edge, n, tag)
    assert fast.wait_for(n, 120), fast.stats(n)
    fast_s = time.monotonic() - t0
    assert slow.wait_for(n, 120), slow.stats(n)
    slow_s = time.monotonic() - t0
    time.sleep(0.5)
    for c in (fast, slow):
        stats = c.stats(n)
        assert stats["lost"] == 0 and stats["duplicates"] == 0 and stats["gaps"] == 0, stats
    assert slow.connects == 1, "the slow client was never cut"
    figures("slow-client", events=n, fast_s=round(fast_s, 1), slow_s=round(slow_s, 1),
            **slow.stats(n))


def test_last_event_id_from_the_future_another_epoch_or_garbage_is_a_gap(stack, collectors, chaos_redis):
    bridge = stack.bridge()
    url = bridge.extra["url"]
    edge = stack.edge(url)
    r = redis_sync.Redis.from_url(chaos_redis.extra["url"])
    try:
        epoch = r.get(keys.NOTIFICATIONS_EPOCH).decode()
    finally:
        r.close()
    future = f"{int(time.time() * 1000) + 3_600_000}-0:{epoch}"
    tag = uuid.uuid4().hex[:8]
    made = []
    for last_id, reason in ((future, "ahead of the stream"),
                            ("1-0:0000beef", "another stream epoch"),
                            ("not-an-id", "unknown id")):
        c = collectors(lambda: [url], tag, last_event_id=last_id)
        made.append(c)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not c.gaps:
            time.sleep(0.05)
        assert c.gaps and c.gaps[0]["from"] == last_id and c.gaps[0]["reason"] == reason, c.gaps
        assert c.gaps[0]["to"].endswith(f":{epoch}")
    start_burst(url, edge, 5, tag)
    for c in made:
        assert c.wait_for(5, 20), "after the gap the client is live again, not starved"
        assert len(c.gaps) == 1


def test_stream_lost_in_redis_gives_connected_clients_a_gap(stack, collectors, chaos_redis):
    """Redis lost the stream (here: its keys deleted, as after a restart without
    persistence): connected clients get a `gap` and then every newer notification."""
    bridge = stack.bridge()
    url = bridge.extra["url"]
    edge = stack.edge(url)
    tag, later = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    c = collectors(lambda: [url], tag)
    assert c.connected.wait(10)
    start_burst(url, edge, 100, tag)
    assert c.wait_for(100, 30)
    r = redis_sync.Redis.from_url(chaos_redis.extra["url"])
    try:
        old_epoch = r.get(keys.NOTIFICATIONS_EPOCH).decode()
        r.delete(keys.NOTIFICATIONS, keys.NOTIFICATIONS_EPOCH, keys.NOTIFICATIONS_TRIMMED)
    finally:
        r.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not c.gaps:
        time.sleep(0.05)
    assert c.gaps and c.gaps[0]["reason"] == "stream lost", c.gaps
    assert c.gaps[0]["from"].endswith(f":{old_epoch}")
    assert not c.gaps[0]["to"].endswith(f":{old_epoch}")
    after = collectors(lambda: [url], later, last_event_id=c.last_event_id)
    c.tag = later
    c.seqs.clear()
    start_burst(url, edge, 50, later)
    assert c.wait_for(50, 30) and after.wait_for(50, 30)
    assert c.stats(50)["duplicates"] == 0 and not after.gaps
