"""Prometheus metrics of one bridge: what it relays, who is online, what edges report.

Counters that change on the hot path (calls, latency parts) are updated per call;
everything that is a *state* (in-flight calls, SSE clients,
edges online, queue lengths, heartbeat ages, the edges' own counters from their
heartbeats) is read at scrape time by `StateCollector`, so it costs nothing per call.

Each bridge has its own `CollectorRegistry`: two bridges in one process (tests) never
share counters.
"""
from __future__ import annotations

import bisect
import time
from typing import Any, Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, Metric)
from prometheus_client.process_collector import ProcessCollector

#: call latencies range from a fraction of a millisecond (handoff) to the call deadline
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
#: label of calls the bridge refused before it knew the edge/plugin (bad path, unknown edge):
#: a caller's made-up names never become label values (unbounded cardinality)
UNRESOLVED = "-"


class BridgeMetrics:
    """The registry `/metrics` serves, and the per-call instruments of the proxy.

    Calls are counted in plain dicts and lists, not prometheus-client's `Counter` and
    `Histogram`: those take a lock per update (six per call here), which the proxy, running
    on one event loop thread, never needs; measured 11.6 µs against 1-2 µs per call
    (bench/metrics_overhead.py). prometheus-client still renders them (`collect`).
    """

    def __init__(self, per_call: bool = True) -> None:
        self.per_call = per_call  # off: calls are not counted (states are still served)
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls: dict[tuple[str, str, int], int] = {}
        #: (plugin, part) -> [per-bucket counts (last: above every bound), sum]
        self.latency: dict[tuple[str, str], list] = {}
        self.state = StateCollector()
        self.registry.register(self)
        self.registry.register(self.state)
        ProcessCollector(registry=self.registry)  # this bridge's own CPU, memory, fds

    def call_done(self, edge: str, plugin: str, status: int,
                  parts: list[tuple[str, float]] | None) -> None:
        """Count one relayed call; `parts` are its `protocol.timing_parts` when answered."""
        if not self.per_call:
            return
        key = (edge, plugin, status)
        self.calls[key] = self.calls.get(key, 0) + 1
        for part, seconds in parts or ():
            hist = self.latency.get((plugin, part))
            if hist is None:
                hist = self.latency[(plugin, part)] = [[0] * (len(LATENCY_BUCKETS) + 1), 0.0]
            seconds = max(seconds, 0.0)
            hist[0][bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1  # le is inclusive
            hist[1] += seconds

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        calls = CounterMetricFamily("radical_edge_calls", "plugin calls relayed by this "
                                    "bridge, by edge, plugin and HTTP status",
                                    labels=["edge", "plugin", "status"])
        for (edge, plugin, status), count in sorted(self.calls.items()):
            calls.add_metric([edge, plugin, str(status)], count)
        yield calls
        latency = HistogramMetricFamily(
            "radical_edge_call_seconds", "latency of answered plugin calls by Server-Timing "
            "part (total, queue, handoff, handler, reply)", labels=["plugin", "part"])
        for (plugin, part), (counts, total) in sorted(self.latency.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), counts):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            latency.add_metric([plugin, part], buckets, total)
        yield latency


class StateCollector:
    """Gauges read at scrape time from a snapshot the `/metrics` route took just before."""

    def __init__(self) -> None:
        self.snapshot: dict[str, Any] = {}

    def describe(self) -> Iterable[Metric]:
        return []  # unchecked: the families depend on the snapshot

    def collect(self) -> Iterable[Metric]:
        snap = self.snapshot
        if not snap:
            return
        yield _gauge("radical_edge_redis_up", "1 if Redis answered this scrape",
                     value=1.0 if snap["redis_up"] else 0.0)
        yield _gauge("radical_edge_calls_in_flight", "plugin calls awaiting their reply",
                     value=snap["in_flight"])
        yield _gauge("radical_edge_sse_clients", "connected SSE (/events) clients",
                     value=snap["sse_clients"])
        yield _gauge("radical_edge_sse_backlog_events", "notifications read by this bridge "
                     "and not yet sent to an SSE client, summed over clients",
                     value=snap["sse_backlog"])
        notes = CounterMetricFamily("radical_edge_notifications", "notifications this "
                                    "bridge read from the stream (rate() gives per second)")
        notes.add_metric([], snap["notifications"])
        yield notes
        online = GaugeMetricFamily("radical_edge_edges_online", "live edges by role",
                                   labels=["role"])
        for role, count in sorted(snap["roles"].items()):
            online.add_metric([role], count)
        yield online
        yield from _edge_families(snap["edges"], snap["queues"])


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


#: the edges' own counters, from the `stats` of their heartbeats: (stat, metric, kind, doc)
EDGE_STATS = (
    ("calls", "radical_edge_edge_calls", "counter", "calls the edge ran"),
    ("errors", "radical_edge_edge_call_errors", "counter", "calls the edge answered with 5xx"),
    ("running", "radical_edge_edge_calls_running", "gauge", "calls running on the edge"),
    ("cpu_seconds", "radical_edge_edge_cpu_seconds", "counter", "CPU time of the edge process"),
    ("rss_bytes", "radical_edge_edge_memory_rss_bytes", "gauge", "resident memory of the edge"),
)


def _edge_families(edges: dict[str, dict], queues: dict[str, int]) -> Iterable[Metric]:
    now = time.time()
    age = GaugeMetricFamily("radical_edge_edge_heartbeat_age_seconds",
                            "seconds since the edge's last heartbeat", labels=["edge"])
    wall = GaugeMetricFamily("radical_edge_edge_walltime_remaining_seconds",
                             "seconds left of the edge's batch job", labels=["edge"])
    queue = GaugeMetricFamily("radical_edge_edge_queue_length",
                              "calls waiting in the edge's queue", labels=["edge"])
    stats: dict[str, Any] = {
        key: (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(
            name, doc, labels=["edge"]) for key, name, kind, doc in EDGE_STATS}
    for name, info in sorted(edges.items()):
        if isinstance(info.get("heartbeat"), (int, float)):
            age.add_metric([name], max(0.0, now - info["heartbeat"]))
        if isinstance(info.get("walltime_end"), (int, float)):
            wall.add_metric([name], max(0.0, info["walltime_end"] - now))
        if name in queues:
            queue.add_metric([name], queues[name])
        reported = info.get("stats") if isinstance(info.get("stats"), dict) else {}
        for key, family in stats.items():
            if isinstance(reported.get(key), (int, float)):
                family.add_metric([name], reported[key])
    yield from (age, wall, queue, *stats.values())


def sse_backlog(ids: list, clients: Iterable[Any]) -> int:
    """Events in the bridge's window after each client's position, summed."""
    return sum(len(ids) - bisect.bisect_right(ids, c.pos) for c in clients)
