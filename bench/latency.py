#!/usr/bin/env python3
"""Latency and throughput of `GET /{edge}/sysinfo/health` through the bridge.

Starts its own Redis, bridge and edge (through radical.edge.services), measures the raw
Redis floor (LPUSH + BLPOP round trip) in the same run, then the bridge sequentially and at
8 and 32 concurrent keep-alive connections. The load generator is a minimal asyncio
HTTP/1.1 client so its own CPU cost stays small on a 2-core machine.

    python bench/latency.py [--seconds 5] [--sequential 3000] [--markdown] [--secure]
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

import httpx  # noqa: E402
import redis  # noqa: E402

from radical.edge import services  # noqa: E402


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000.0


def redis_floor(url: str, n: int) -> list[float]:
    """LPUSH + BLPOP on one connection: the broker round trip every call needs at least."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    out = []
    for i in range(n + 200):
        t0 = time.perf_counter()
        client.lpush("bench:floor", b"x" * 64)
        client.blpop(["bench:floor"], timeout=1)
        if i >= 200:
            out.append(time.perf_counter() - t0)
    client.close()
    return out


class Conn:
    """One keep-alive HTTP/1.1 connection issuing GETs back to back."""

    def __init__(self, host: str, port: int, path: str, token: str = "") -> None:
        self.host, self.port = host, port
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n".encode()

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def get(self, timings: list | None = None) -> int:
        self.writer.write(self.request)
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 30)
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            low = line.lower()
            if low.startswith(b"content-length:"):
                length = int(line[15:])
            elif timings is not None and low.startswith(b"server-timing:"):
                timings.append(parse_server_timing(line[14:].decode()))
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def parse_server_timing(value: str) -> dict[str, float]:
    out = {}
    for part in value.split(","):
        name, _, dur = part.strip().partition(";dur=")
        out[name] = float(dur)
    return out


async def run_load(host: str, port: int, path: str, conns: int, seconds: float,
                   max_requests: int | None = None, timings: list | None = None,
                   token: str = "") -> tuple[list[float], float, int]:
    clients = [Conn(host, port, path, token) for _ in range(conns)]
    await asyncio.gather(*(c.open() for c in clients))
    for c in clients:  # warm up every connection
        await c.get()
    samples: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def loop(c: Conn) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            if max_requests is not None and len(samples) >= max_requests:
                return
            t0 = time.perf_counter()
            status = await c.get(timings)
            samples.append(time.perf_counter() - t0)
            if status != 200:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in clients))
    elapsed = time.perf_counter() - t0
    for c in clients:
        c.close()
    return samples, elapsed, errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="duration of each loaded run")
    ap.add_argument("--sequential", type=int, default=3000, help="sequential requests")
    ap.add_argument("--markdown", action="store_true", help="also print a markdown table")
    ap.add_argument("--named-token", action="store_true",
                    help="call as a named 'read' token (looked up in Redis, cached) instead "
                         "of the bridge's owner token")
    ap.add_argument("--secure", action="store_true",
                    help="Redis with ACL users (bridge and edge on their own credentials)")
    args = ap.parse_args()
    owner = secrets.token_urlsafe(32)  # the bridge is closed, as in production

    log_dir = ROOT / ".run" / "bench-logs"
    redis_svc = services.start_redis(log_dir=log_dir, secure=args.secure)
    url = redis_svc.extra["url"]
    bridge_url = redis_svc.extra["bridge_url"] if args.secure else url
    edge_url = services.create_edge_user(url, "bench") if args.secure else url
    bridge = services.start_bridge(bridge_url, log_dir=log_dir, token=owner)
    edge = services.start_edge(edge_url, "bench", "sysinfo", log_dir,
                               bridge_url=bridge.extra["url"], token=owner)
    token = owner
    if args.named_token:
        r = httpx.post(f"{bridge.extra['url']}/bridge/tokens", json={"user": "bench",
                       "scope": "read"}, headers={"Authorization": f"Bearer {owner}"})
        token = r.json()["token"]
    rows = []
    try:
        floor = redis_floor(url, args.sequential)
        rows.append(("redis LPUSH+BLPOP (floor)", 1, floor, sum(floor), 0))
        host, port = "127.0.0.1", bridge.extra["port"]
        path = "/bench/sysinfo/health"
        timings: list[dict[str, float]] = []
        seq, el, err = asyncio.run(run_load(host, port, path, 1, 120, args.sequential, timings,
                                            token))
        rows.append(("bridge sequential", 1, seq, el, err))
        for n in (8, 32):
            s, el, err = asyncio.run(run_load(host, port, path, n, args.seconds, token=token))
            rows.append((f"bridge {n} connections", n, s, el, err))
    finally:
        edge.stop()
        bridge.stop()
        redis_svc.stop()

    floor_p50 = pct(rows[0][2], 0.5)
    print(f"{'run':28} {'conns':>5} {'n':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}"
          f" {'req/s':>8} {'errors':>6}")
    for name, conns, s, el, err in rows:
        print(f"{name:28} {conns:5d} {len(s):7d} {pct(s, .5):8.3f} {pct(s, .9):8.3f} "
              f"{pct(s, .99):8.3f} {len(s) / el:8.0f} {err:6d}")
    seq_p50 = pct(rows[1][2], 0.5)
    print(f"\nsequential p50 / redis floor p50 = {seq_p50 / floor_p50:.2f}x "
          f"(floor mean {statistics.mean(rows[0][2]) * 1000:.3f} ms)")
    parts = ["queue", "handoff", "handler", "reply", "total"]
    medians = {p: statistics.median(t[p] for t in timings if p in t) for p in parts}
    client_side = pct(rows[1][2], 0.5) - medians["total"]
    print("sequential breakdown (median ms, from Server-Timing): " + ", ".join(
        f"{p} {medians[p]:.3f}" for p in parts) + f", client+HTTP {client_side:.3f}")
    if args.markdown:
        print("\n| run | conns | requests | p50 ms | p90 ms | p99 ms | req/s | errors |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, conns, s, el, err in rows:
            print(f"| {name} | {conns} | {len(s)} | {pct(s, .5):.3f} | {pct(s, .9):.3f} | "
                  f"{pct(s, .99):.3f} | {len(s) / el:.0f} | {err} |")
        print(f"\nsequential p50 = **{seq_p50 / floor_p50:.2f}x** the Redis floor p50\n")
        print("| where (sequential, median) | ms |\n|---|---:|")
        labels = {"queue": "bridge -> LPUSH -> Redis -> edge consumer (incl. kombu decode)",
                  "handoff": "consumer thread -> plugin loop", "handler": "plugin handler",
                  "reply": "PUBLISH -> Redis -> bridge subscriber", "total": "inside the bridge, total"}
        for p in parts:
            print(f"| {labels[p]} | {medians[p]:.3f} |")
        print(f"| HTTP + client, outside the bridge's measurement | {client_side:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
