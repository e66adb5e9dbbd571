"""BridgeMetrics: the per-call counters render as valid Prometheus text with the right
cumulative buckets (checked with prometheus-client's own parser)."""
from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from radical.edge.bridge_api.metrics import LATENCY_BUCKETS, BridgeMetrics


def samples(m: BridgeMetrics) -> dict:
    text = generate_latest(m.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_calls_and_histogram_buckets():
    m = BridgeMetrics()
    for value in (0.0005, 0.0007, 0.3, 500.0, -1.0):  # a bound itself counts in its bucket
        m.call_done("e", "p", 200, [("total", value)])
    m.call_done("-", "-", 404, None)
    got = samples(m)
    assert got[("radical_edge_calls_total", (("edge", "e"), ("plugin", "p"),
                                             ("status", "200")))] == 5
    assert got[("radical_edge_calls_total", (("edge", "-"), ("plugin", "-"),
                                             ("status", "404")))] == 1

    def bucket(le: str) -> float:
        return got[("radical_edge_call_seconds_bucket",
                    (("le", le), ("part", "total"), ("plugin", "p")))]

    assert bucket("0.0005") == 2  # 0.0005 itself and the negative (clamped to 0)
    assert bucket("0.001") == 3 and bucket("0.25") == 3 and bucket("0.5") == 4
    assert bucket(repr(LATENCY_BUCKETS[-1])) == 4 and bucket("+Inf") == 5
    labels = (("part", "total"), ("plugin", "p"))
    assert got[("radical_edge_call_seconds_count", labels)] == 5
    assert abs(got[("radical_edge_call_seconds_sum", labels)] - 500.3012) < 1e-9


def test_switched_off_counts_nothing():
    m = BridgeMetrics(per_call=False)
    m.call_done("e", "p", 200, [("total", 0.1)])
    assert not [k for k in samples(m) if k[0].startswith("radical_edge_call")]
