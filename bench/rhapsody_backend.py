#!/usr/bin/env python3
"""Throughput through rhapsody's `Session` with `EdgeExecutionBackend` vs the plugin's client.

Both paths run n no-op function tasks (``radical.edge.plugins.rhapsody.functions:noop``) on
the same edge, through the same bridge, in the same run, for n = 1, 4, 16, ... `--max-batch`:

* ``client``:  `RhapsodyClient.submit_tasks` + `wait_tasks` (plain dicts, blocking calls);
* ``backend``: ``rhapsody.Session([EdgeExecutionBackend(...)])``, `ComputeTask` objects,
  ``await session.submit_tasks`` + ``await session.wait_tasks`` (asyncio).

tasks/s = n / (build + submit + wait), client-side wall time; small batches are repeated
until they add up to `--min-seconds`.  The two paths alternate per batch size, so a noisy
neighbour hits both alike.  Starts its own Redis, bridge and edge and stops them at the end.

    PYTHONPATH=src .venv/bin/python bench/rhapsody_backend.py
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from radical.edge import BridgeClient, services  # noqa: E402

NOOP = "radical.edge.plugins.rhapsody.functions:noop"
EDGE = "bench-rhb"


def sizes_up_to(largest: int) -> list[int]:
    out, n = [], 1
    while n <= largest:
        out.append(n)
        n *= 4
    return out


def repeat(step, n: int, min_seconds: float, max_reps: int) -> float:
    """tasks/s of `step(n)` (returns seconds), repeated until `min_seconds` in total."""
    total, reps = 0.0, 0
    while True:
        total += step(n)
        reps += 1
        if total >= min_seconds or reps >= max_reps or n >= 4096:
            return reps * n / total


def client_step(rh):
    def step(n: int) -> float:
        t0 = time.perf_counter()
        acks = rh.submit_tasks([{"function": NOOP} for _ in range(n)])
        done = rh.wait_tasks([a["uid"] for a in acks], timeout=300)
        elapsed = time.perf_counter() - t0
        if any(d["state"] != "DONE" for d in done):
            raise RuntimeError("client path: a task did not finish")
        rh.forget([a["uid"] for a in acks])
        return elapsed
    return step


class BackendPath:
    """A rhapsody Session on its own event loop, driven batch by batch."""

    def __init__(self, bridge_url: str, token: str | None, backend: str) -> None:
        from rhapsody import Session

        from radical.edge.plugins.rhapsody.edge_backend import EdgeExecutionBackend

        self.loop = asyncio.new_event_loop()
        self.work = tempfile.mkdtemp(prefix="bench-rhb-")
        self.backend = EdgeExecutionBackend(bridge_url=bridge_url, edge=EDGE,
                                            backends=[backend], token=token)
        self.loop.run_until_complete(self.backend._start())
        self.session = Session([self.backend], work_dir=self.work)

    async def _batch(self, n: int) -> float:
        from rhapsody import ComputeTask

        from radical.edge.plugins.rhapsody.functions import noop

        t0 = time.perf_counter()
        tasks = [ComputeTask(function=noop) for _ in range(n)]
        await self.session.submit_tasks(tasks)
        await self.session.wait_tasks(tasks, timeout=300)
        elapsed = time.perf_counter() - t0
        if any(t["state"] != "DONE" for t in tasks):
            raise RuntimeError("backend path: a task did not finish")
        self.session._tasks.clear()  # keep memory flat across repetitions
        return elapsed

    def step(self, n: int) -> float:
        return self.loop.run_until_complete(self._batch(n))

    def close(self) -> None:
        self.loop.run_until_complete(self.session.close())
        self.loop.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-batch", type=int, default=4096)
    ap.add_argument("--backends", default="noop,concurrent")
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--max-reps", type=int, default=200)
    args = ap.parse_args()
    token = os.environ.get("RADICAL_EDGE_TOKEN")
    sizes = sizes_up_to(args.max_batch)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    started: list[services.Service] = []
    rows: dict[tuple[str, int], dict[str, float]] = {}
    try:
        logs = Path(tempfile.mkdtemp(prefix="bench-rhb-logs-"))
        redis = services.start_redis(log_dir=logs)
        started.append(redis)
        bridge = services.start_bridge(redis.extra["url"], log_dir=logs)
        started.append(bridge)
        bridge_url = bridge.extra["url"]
        started.append(services.start_edge(redis.extra["url"], EDGE, "rhapsody", logs,
                                           bridge_url=bridge_url))
        token = token or bridge.extra.get("token")
        bc = BridgeClient(bridge_url, token=token)
        try:
            for backend in backends:
                rh = bc.get_edge_client(EDGE).get_plugin("rhapsody", backends=[backend])
                path = BackendPath(bridge_url, token, backend)
                try:
                    via_client, via_backend = client_step(rh), path.step
                    via_client(64)  # warm both: imports, pools, connections
                    via_backend(64)
                    for n in sizes:
                        c = repeat(via_client, n, args.min_seconds, args.max_reps)
                        b = repeat(via_backend, n, args.min_seconds, args.max_reps)
                        rows[(backend, n)] = {"client": c, "backend": b}
                        print(f"  {backend:<10} n={n:<6} client {c:>8.0f} tasks/s   "
                              f"backend {b:>8.0f} tasks/s   ({b / c:.2f}x)", flush=True)
                finally:
                    path.close()
                    rh.close()
        finally:
            bc.close()
    finally:
        for svc in reversed(started):
            svc.stop()
    print()
    print(f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print("| edge backend | batch | RhapsodyClient (tasks/s) | rhapsody Session + "
          "EdgeExecutionBackend (tasks/s) | ratio |")
    print("|---|---:|---:|---:|---:|")
    for (backend, n), r in rows.items():
        print(f"| {backend} | {n} | {r['client']:,.0f} | {r['backend']:,.0f} | "
              f"{r['backend'] / r['client']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
