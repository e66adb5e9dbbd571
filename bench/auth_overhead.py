#!/usr/bin/env python3
"""CPU cost of the bridge's front door (`BridgeGuard`) per request, in-process.

The end-to-end latency benchmark (bench/latency.py) is too noisy on a shared 2-core VM to
resolve a few microseconds, so this measures the guard alone: a GET through it with the
owner token and with a named token (lookup cached, as on the hot path), a POST with the
audit record, and the bare downstream app as the baseline.

    python bench/auth_overhead.py [--n 200000]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import orjson  # noqa: E402

from radical.edge.bridge_api.audit import AuditLog  # noqa: E402
from radical.edge.bridge_api.auth import BridgeGuard  # noqa: E402
from radical.edge.bridge_api.tokens import TokenStore, digest  # noqa: E402
from radical.edge.settings import Settings  # noqa: E402

OWNER, NAMED = "o" * 43, "n" * 43


class FakeRedis:
    async def hget(self, _key: str, field: str) -> bytes | None:
        if field == digest(NAMED):
            return orjson.dumps({"user": "bench", "scope": "submit", "expires": None})
        return None


async def app(scope: dict, receive: object, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})


async def noop_send(_message: dict) -> None:
    pass


def scope_for(method: str, token: str) -> dict:
    return {"type": "http", "method": method, "path": "/bench/sysinfo/health",
            "query_string": b"", "scheme": "http",
            "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"),
                        (b"accept", b"*/*"), (b"authorization", f"Bearer {token}".encode())]}


async def measure(handler, method: str, token: str, n: int) -> float:
    template = scope_for(method, token)
    for _ in range(1000):
        await handler(dict(template), None, noop_send)
    t0 = time.perf_counter()
    for _ in range(n):
        await handler(dict(template), None, noop_send)
    return (time.perf_counter() - t0) / n * 1e6


async def main(n: int) -> None:
    audit = AuditLog(None, "bench", queue_size=n + 10_000)  # type: ignore[arg-type]
    state = SimpleNamespace(tokens=TokenStore(FakeRedis(), OWNER), audit=audit)  # type: ignore[arg-type]
    guard = BridgeGuard(app, SimpleNamespace(state=SimpleNamespace(bridge=state)), Settings())
    base = await measure(app, "GET", OWNER, n)
    rows = [("downstream app alone", base),
            ("GET, owner token", await measure(guard, "GET", OWNER, n)),
            ("GET, named token (cached)", await measure(guard, "GET", NAMED, n)),
            ("POST, owner token + audit record", await measure(guard, "POST", OWNER, n))]
    print("| request through BridgeGuard | µs/request | guard's own cost µs |")
    print("|---|---:|---:|")
    for name, us in rows:
        print(f"| {name} | {us:.2f} | {us - base:.2f} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200_000)
    import logging

    logging.getLogger("radical.edge.audit").setLevel(logging.WARNING)  # measure the stream part
    asyncio.run(main(ap.parse_args().n))
