#!/usr/bin/env python3
"""Staging throughput: a 1 GiB file up and down through the bridge, against `cp` and a raw
Redis transfer of the same bytes, all measured in the same run on this machine.

Starts its own Redis, bridge and edge (radical.edge.services). Baselines: `cp` of the file
(page cache warm, as for the transfers) and LPUSH/BRPOP of 1 MiB chunks through the same
Redis (one producer thread, one consumer: the broker floor any Redis-relayed transfer pays).
Also reports the bridge's and edge's peak RSS (VmHWM).

    python bench/staging.py [--size-mib 1024] [--repeat 1] [--markdown]
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import redis  # noqa: E402

from radical.edge import BridgeClient, services  # noqa: E402

MIB = 1024 * 1024


def make_file(path: Path, size: int) -> None:
    block = os.urandom(8 * MIB)
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            fh.write(block[:min(len(block), left)])
            left -= min(len(block), left)


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def redis_transfer(url: str, path: Path, chunk: int = MIB) -> None:
    """Read the file in 1 MiB chunks, LPUSH them; a consumer BRPOPs and writes them out."""
    key = f"bench:staging:{secrets.token_hex(4)}"
    out_path = path.with_suffix(".redis")
    prod = redis.Redis.from_url(url, socket_timeout=30)
    cons = redis.Redis.from_url(url, socket_timeout=30)
    size = path.stat().st_size

    def consume() -> None:
        got = 0
        with open(out_path, "wb") as out:
            while got < size:
                item = cons.brpop([key], timeout=10)
                if item is None:
                    raise RuntimeError("redis transfer stalled")
                out.write(item[1])
                got += len(item[1])

    t = threading.Thread(target=consume)
    t.start()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            while prod.llen(key) > 32:  # bounded, as the blob window is
                time.sleep(0.001)
            prod.lpush(key, block)
    t.join()
    out_path.unlink()
    prod.close()
    cons.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    size = args.size_mib * MIB
    owner = secrets.token_urlsafe(32)
    log_dir = ROOT / ".run" / "bench-logs"
    work = Path(os.path.realpath(tempfile.mkdtemp(prefix="bench-staging-")))
    src = work / "src.bin"
    make_file(src, size)
    (work / "root").mkdir()
    redis_svc = services.start_redis(log_dir=log_dir)
    url = redis_svc.extra["url"]
    bridge = services.start_bridge(url, log_dir=log_dir, token=owner)
    edge = services.start_edge(url, "benchstage", "staging", log_dir,
                               env={"RADICAL_EDGE_STAGING_ROOTS": str(work)},
                               bridge_url=bridge.extra["url"], token=owner)
    rows: dict[str, list[float]] = {"cp": [], "redis LPUSH/BRPOP 1 MiB": [],
                                    "staging upload (1 chunk in flight)": [],
                                    "staging upload (2 chunks in flight)": [],
                                    "staging download": []}
    client = BridgeClient(bridge.extra["url"], token=owner)
    try:
        st = client.get_edge_client("benchstage").get_plugin("staging")
        for i in range(args.repeat):
            dst = work / f"cp-{i}.bin"
            rows["cp"].append(timed(lambda: subprocess.run(["cp", str(src), str(dst)],
                                                           check=True)))
            dst.unlink()
            rows["redis LPUSH/BRPOP 1 MiB"].append(timed(lambda: redis_transfer(url, src)))
            for n in (1, 2):
                tgt = work / "root" / f"up-{i}-{n}.bin"
                rows[f"staging upload ({n} chunk{'s' if n > 1 else ''} in flight)"].append(
                    timed(lambda: st.upload(str(src), str(tgt), parallel=n, verify=False)))
                if n == 1:
                    tgt.unlink()
            back = work / f"down-{i}.bin"
            rows["staging download"].append(timed(lambda: st.download(str(tgt), str(back),
                                                                      verify=False)))
            tgt.unlink()
            back.unlink()
        st.close()
        rss = (vm_hwm_mib(bridge.pid), vm_hwm_mib(edge.pid))
    finally:
        client.close()
        edge.stop()
        bridge.stop()
        redis_svc.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"{'transfer of ' + str(args.size_mib) + ' MiB':28} {'best s':>8} {'MiB/s':>8}")
    for name, secs in rows.items():
        print(f"{name:28} {min(secs):8.2f} {args.size_mib / min(secs):8.0f}")
    print(f"peak RSS: bridge {rss[0]:.0f} MiB, edge {rss[1]:.0f} MiB")
    if args.markdown:
        print("\n| transfer | best s | MiB/s |\n|---|---:|---:|")
        for name, secs in rows.items():
            print(f"| {name} | {min(secs):.2f} | {args.size_mib / min(secs):.0f} |")
        print(f"\npeak RSS (VmHWM): bridge {rss[0]:.0f} MiB, edge {rss[1]:.0f} MiB")


if __name__ == "__main__":
    main()
