#!/usr/bin/env python3
"""Redis commands per proxied call, by command: a load-independent check of the fast path.

Latency on a shared 2-core machine is noisy; the number of Redis commands a call costs is
not. Starts its own Redis, bridge and edge, runs `--calls` sequential
`GET /{edge}/sysinfo/health` calls (small replies) and prints the `INFO commandstats` delta
per call. Background traffic (heartbeats, topology polls) is measured over an idle period of
the same length and subtracted.

    python bench/commands_per_call.py [--calls 2000]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402
import redis  # noqa: E402

from radical.edge import services  # noqa: E402


def stats(client: redis.Redis) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): v["calls"]
            for k, v in client.info("commandstats").items()}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()
    log_dir = ROOT / ".run" / "bench-logs"
    red = services.start_redis(log_dir=log_dir)
    url = red.extra["url"]
    bridge = services.start_bridge(url, log_dir=log_dir)
    edge = services.start_edge(url, "bench", "sysinfo", log_dir, bridge_url=bridge.extra["url"])
    try:
        client = redis.Redis.from_url(url)
        target = f"{bridge.extra['url']}/bench/sysinfo/health"
        with httpx.Client(timeout=10) as http:
            for _ in range(50):
                http.get(target).raise_for_status()
            s0, t0 = stats(client), time.monotonic()
            for _ in range(args.calls):
                http.get(target).raise_for_status()
            s1, busy = stats(client), time.monotonic() - t0
        time.sleep(busy)
        idle = delta(s1, stats(client))
        load = delta(s0, s1)
        print(f"{args.calls} calls in {busy:.1f} s; Redis commands per call "
              "(minus the same time idle):")
        for cmd in sorted(set(load) | set(idle)):
            per_call = (load.get(cmd, 0) - idle.get(cmd, 0) * 1.0) / args.calls
            if abs(per_call) >= 0.01:
                print(f"  {cmd:12s} {per_call:6.2f}")
    finally:
        edge.stop()
        bridge.stop()
        red.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
