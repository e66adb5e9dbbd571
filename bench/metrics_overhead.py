#!/usr/bin/env python3
"""What the bridge's per-call metrics cost a proxied call.

1. In process: `BridgeMetrics.call_done` (one counter, five Server-Timing histogram parts)
   per call, in µs; the end-to-end numbers on a shared 2-core VM cannot resolve that.
2. End to end, in one run: the Redis floor (LPUSH + BLPOP), then `GET /{edge}/sysinfo/health`
   through two bridges on the same Redis and edge, one counting calls
   (`RADICAL_EDGE_METRICS=true`, the default) and one not, alternating A/B rounds
   sequentially and at 32 connections (bench/latency.py's load generator).

    python bench/metrics_overhead.py [--rounds 3] [--sequential 2000] [--seconds 4]
"""
from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from latency import pct, redis_floor, run_load  # noqa: E402

from radical.edge import services  # noqa: E402
from radical.edge.bridge_api.metrics import BridgeMetrics  # noqa: E402

PARTS = [("total", 0.0012), ("queue", 0.0004), ("handoff", 0.0001), ("handler", 0.0002),
         ("reply", 0.0003)]


def in_process(n: int) -> tuple[float, float]:
    """µs per call of call_done with metrics on, and with them off (the check alone)."""
    out = []
    for per_call in (True, False):
        m = BridgeMetrics(per_call=per_call)
        for _ in range(1000):
            m.call_done("bench", "sysinfo", 200, PARTS)
        t0 = time.perf_counter()
        for _ in range(n):
            m.call_done("bench", "sysinfo", 200, PARTS)
        out.append((time.perf_counter() - t0) / n * 1e6)
    return out[0], out[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sequential", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--n", type=int, default=200_000, help="in-process iterations")
    args = ap.parse_args()
    on_us, off_us = in_process(args.n)
    owner = secrets.token_urlsafe(32)
    log_dir = ROOT / ".run" / "bench-logs"
    redis_svc = services.start_redis(log_dir=log_dir)
    url = redis_svc.extra["url"]
    bridges = {
        "metrics on": services.start_bridge(url, log_dir=log_dir, token=owner),
        "metrics off": services.start_bridge(url, log_dir=log_dir, token=owner,
                                             env={"RADICAL_EDGE_METRICS": "false"}),
    }
    edge = services.start_edge(url, "bench", "sysinfo", log_dir,
                               bridge_url=bridges["metrics on"].extra["url"], token=owner)
    seq: dict[str, list[float]] = {k: [] for k in bridges}
    loaded: dict[str, list[float]] = {k: [] for k in bridges}
    loaded_el: dict[str, float] = {k: 0.0 for k in bridges}
    try:
        floor = redis_floor(url, args.sequential)
        for _ in range(args.rounds):
            for name, svc in bridges.items():
                port = svc.extra["port"]
                s, _el, err = asyncio.run(run_load("127.0.0.1", port, "/bench/sysinfo/health",
                                                   1, 120, args.sequential, token=owner))
                assert err == 0
                seq[name] += s
                s, el, err = asyncio.run(run_load("127.0.0.1", port, "/bench/sysinfo/health",
                                                  32, args.seconds, token=owner))
                assert err == 0
                loaded[name] += s
                loaded_el[name] += el
    finally:
        edge.stop()
        for svc in bridges.values():
            svc.stop()
        redis_svc.stop()

    print(f"in process: call_done {on_us:.2f} µs/call with metrics on, {off_us:.2f} µs off\n")
    print("| run | requests | p50 ms | p90 ms | p99 ms | req/s |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| redis LPUSH+BLPOP (floor) | {len(floor)} | {pct(floor, .5):.3f} | "
          f"{pct(floor, .9):.3f} | {pct(floor, .99):.3f} | - |")
    for name in bridges:
        s = seq[name]
        print(f"| sequential, {name} | {len(s)} | {pct(s, .5):.3f} | {pct(s, .9):.3f} | "
              f"{pct(s, .99):.3f} | - |")
    for name in bridges:
        s = loaded[name]
        print(f"| 32 connections, {name} | {len(s)} | {pct(s, .5):.3f} | {pct(s, .9):.3f} | "
              f"{pct(s, .99):.3f} | {len(s) / loaded_el[name]:.0f} |")
    d_seq = (statistics.median(seq["metrics on"]) - statistics.median(seq["metrics off"])) * 1e3
    rate = {k: len(loaded[k]) / loaded_el[k] for k in bridges}
    print(f"\nsequential p50 on - off = {d_seq * 1000:.0f} µs; 32-connection throughput "
          f"on/off = {rate['metrics on'] / rate['metrics off']:.3f}; floor p50 "
          f"{pct(floor, .5):.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
