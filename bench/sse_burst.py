#!/usr/bin/env python3
"""SSE delivery rate of notification bursts from the echo test plugin, counted by sequence
number (lost / duplicated must be 0): `n` events to 1 listener and `n/2` to each of 5.

Starts a private Redis, one bridge and one echo edge (the echo plugin is installed by
`scripts/setup.sh --dev` from tests/fixtures/echo_plugin), and stops them at the end.

    PYTHONPATH=src .venv/bin/python bench/sse_burst.py [--events 20000]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "chaos"))

from chaos_events_helpers import Collector, start_burst  # noqa: E402

from radical.edge import services  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20_000)
    args = ap.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="bench-sse-"))
    started = [services.start_redis(log_dir=logs)]
    url = started[0].extra["url"]
    out: dict = {}
    try:
        bridge = services.start_bridge(url, log_dir=logs)
        started.append(bridge)
        started.append(services.start_edge(url, "bench-sse", "echo", logs,
                                           bridge_url=bridge.extra["url"]))
        for listeners, n in ((1, args.events), (5, args.events // 2)):
            tag = uuid.uuid4().hex[:8]
            clients = [Collector(lambda: [bridge.extra["url"]], tag).start()
                       for _ in range(listeners)]
            for c in clients:
                assert c.connected.wait(10)
            t0 = time.monotonic()
            start_burst(bridge.extra["url"], "bench-sse", n, tag)
            for c in clients:
                c.wait_for(n, 300)
            elapsed = time.monotonic() - t0
            stats = [c.stats(n) for c in clients]
            for c in clients:
                c.stop()
            out[listeners] = {"events_per_s_each": round(n / elapsed),
                              "lost": sum(s["lost"] for s in stats),
                              "duplicates": sum(s["duplicates"] for s in stats)}
            print(f"{listeners} listener(s): {out[listeners]}", flush=True)
    finally:
        for svc in reversed(started):
            svc.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
