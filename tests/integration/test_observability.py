"""`/health`, `/ready` and the Prometheus `/metrics` of a real bridge with a real edge."""
from __future__ import annotations

import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import BridgeClient, services


def scrape(url: str, headers: dict | None = None) -> dict[tuple, float]:
    """Every sample of `/metrics` as {(name, sorted labels): value}, parsed by Prometheus's
    own text-format parser."""
    r = httpx.get(f"{url}/metrics", headers=authed.AUTH if headers is None else headers,
                  timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


def sample(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_health_and_ready_are_public(bridge_url):
    r = httpx.get(f"{bridge_url}/health", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["version"]
    r = httpx.get(f"{bridge_url}/ready", timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"redis": "ok", "subscription": "ok", "topology": "ok"}
    assert "redis://" not in r.text  # says what is down, never where


def test_ready_is_503_without_redis(make_bridge):
    dead = f"redis://127.0.0.1:{services.free_port()}/0"
    url = make_bridge(redis_url=dead).extra["url"]
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200  # the process is up
    r = httpx.get(f"{url}/ready", timeout=10)
    assert r.status_code == 503
    assert r.json()["detail"].startswith("not ready: redis unreachable")
    assert r.json()["checks"]["subscription"] == "reconnecting"
    assert "127.0.0.1" not in r.text
    metrics = scrape(url)
    assert sample(metrics, "radical_edge_redis_up") == 0.0


def test_metrics_need_a_read_token_unless_public(bridge_url, make_bridge):
    assert httpx.get(f"{bridge_url}/metrics", timeout=10).status_code == 401
    url = make_bridge(env={"RADICAL_EDGE_METRICS_PUBLIC": "true"}).extra["url"]
    assert sample(scrape(url, headers={}), "radical_edge_redis_up") == 1.0


def test_metrics_count_calls_edges_and_events(bridge_url, make_edge):
    name = f"m{uuid.uuid4().hex[:6]}"
    make_edge("echo", name=name)
    # latency histograms are labelled by plugin, not edge (bounded cardinality), and the
    # session's bridge has served other echo calls: count what this test adds
    before = scrape(bridge_url)
    for i in range(5):
        r = authed.post(f"{bridge_url}/{name}/echo/echo/{i}", json={"i": i}, timeout=30)
        assert r.status_code == 200, r.text
    assert authed.get(f"{bridge_url}/{name}/nosuch/x", timeout=30).status_code == 404
    assert authed.get(f"{bridge_url}/nosuch-{name}/echo/x", timeout=30).status_code == 404

    with BridgeClient(bridge_url) as bc:
        got: list = []
        bc.register_callback(name, "echo", "async_topic", lambda *a: got.append(a))
        assert bc.wait_for_listener(30)
        r = authed.post(f"{bridge_url}/{name}/echo/notify", json={"n": 3, "tag": "m"},
                        timeout=30)
        assert r.status_code == 200
        services.wait_until(lambda: len(got) >= 3, 30, "3 notifications over SSE")
        during = scrape(bridge_url)
    assert sample(during, "radical_edge_sse_clients") >= 1
    assert sample(during, "radical_edge_notifications_total") >= 6  # async + thread topics

    after = scrape(bridge_url)
    assert sample(after, "radical_edge_calls_total", edge=name, plugin="echo",
                  status="200") == 6.0  # five echoes and the notify call
    # a caller's made-up names never become labels: refused calls are counted as "-"
    assert sample(after, "radical_edge_calls_total", edge="-", plugin="-", status="404") >= 1
    assert sample(after, "radical_edge_calls_total", edge=name, plugin="nosuch",
                  status="404") is None
    for part in ("total", "queue", "handoff", "handler", "reply"):
        added = sample(after, "radical_edge_call_seconds_count", plugin="echo", part=part) - (
            sample(before, "radical_edge_call_seconds_count", plugin="echo", part=part) or 0)
        assert added == 6, part
    assert sample(after, "radical_edge_call_seconds_sum", plugin="echo", part="total") > 0
    assert sample(after, "radical_edge_calls_in_flight") == 0
    assert sample(after, "radical_edge_edges_online", role="login") >= 1
    assert sample(after, "radical_edge_edge_queue_length", edge=name) == 0
    age = sample(after, "radical_edge_edge_heartbeat_age_seconds", edge=name)
    assert age is not None and 0 <= age < 30
    assert sample(after, "radical_edge_edge_memory_rss_bytes", edge=name) > 1e6
    assert sample(after, "process_cpu_seconds_total") > 0  # the bridge's own process

    # the edge's own counters arrive with its heartbeats
    def edge_counted() -> bool:
        return sample(scrape(bridge_url), "radical_edge_edge_calls_total", edge=name) == 6.0

    services.wait_until(edge_counted, 30, "the edge's heartbeat to report 6 calls")


def test_edge_list_reports_heartbeat_age(bridge_url, make_edge):
    name = f"h{uuid.uuid4().hex[:6]}"
    make_edge("sysinfo", name=name)
    edges = authed.post(f"{bridge_url}/edge/list", timeout=10).json()["data"]["edges"]
    assert 0 <= edges[name]["heartbeat_age"] < 30
    assert "stats" not in edges[name] and "heartbeat" not in edges[name]  # volatile: metrics
