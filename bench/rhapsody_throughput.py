#!/usr/bin/env python3
"""Throughput of the rhapsody plugin through the bridge, against rhapsody's own ceiling.

For each backend (``noop``, ``concurrent``) and batch size n = 1, 2, 4, ... 16384, the
client submits n no-op function tasks (``radical.edge.plugins.rhapsody.functions:noop``)
and waits for all of them:  tasks/s = n / (submit + wait).  Small batches are repeated
until they add up to `--min-seconds` (rate = all tasks / all time).  In the same run,
rhapsody's own local throughput (same backends, stock classes, `ComputeTask` objects, no
bridge) is measured as the ceiling, plus SSE delivery (notifications/s to 1 and to 10
listeners) and the edge's memory (idle, peak, after the sessions are closed).

By default the script starts its own private Redis, bridge and edge (via
`radical.edge.services`) and stops them at the end; ``--bridge-url URL --edge NAME`` uses
running ones instead (memory is then measured only if the edge runs on this host and
``--edge-pid`` is given).  Prints a plain table and a markdown block for bench/RESULTS.md.

    PYTHONPATH=src .venv/bin/python bench/rhapsody_throughput.py
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from radical.edge import BridgeClient, services  # noqa: E402

NOOP = "radical.edge.plugins.rhapsody.functions:noop"


def sizes_up_to(largest: int) -> list[int]:
    out, n = [], 1
    while n <= largest:
        out.append(n)
        n *= 2
    return out


def rss_mb(pid: int | None) -> float | None:
    if not pid:
        return None
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20
    except Exception:
        return None


class Sampler(threading.Thread):
    """Peak RSS of a process, sampled every 50 ms."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self._halt = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.05):
            value = rss_mb(self.pid)
            if value:
                self.peak = max(self.peak, value)

    def stop(self) -> float:
        self._halt.set()
        self.join(2)
        return self.peak


# -- through the bridge ---------------------------------------------------------------------
def run_batches(rh, sizes: list[int], min_seconds: float, max_reps: int) -> dict[int, dict]:
    warm = rh.submit_tasks([{"function": NOOP} for _ in range(64)])  # imports, pool threads
    rh.wait_tasks([a["uid"] for a in warm], timeout=60)
    results = {}
    for n in sizes:
        total_tasks, total_time, reps, sub_t, wait_t = 0, 0.0, 0, 0.0, 0.0
        while True:
            tasks = [{"function": NOOP} for _ in range(n)]
            t0 = time.perf_counter()
            acks = rh.submit_tasks(tasks)
            t1 = time.perf_counter()
            done = rh.wait_tasks([a["uid"] for a in acks], timeout=300)
            t2 = time.perf_counter()
            bad = [d for d in done if d["state"] != "DONE"]
            if bad:
                raise RuntimeError(f"{len(bad)} tasks did not finish: {bad[:2]}")
            rh.forget([a["uid"] for a in acks])
            total_tasks += n
            total_time += t2 - t0
            sub_t += t1 - t0
            wait_t += t2 - t1
            reps += 1
            # one repetition of a large batch was ±30% noise: repeat up to 8,192 as well
            if total_time >= min_seconds or reps >= max_reps or n > 8192:
                break
        results[n] = {"rate": total_tasks / total_time, "reps": reps,
                      "submit_ms": 1000 * sub_t / reps, "wait_ms": 1000 * wait_t / reps}
        print(f"  bridge {rh.backend_label:<10} n={n:<6} {results[n]['rate']:>9.0f} tasks/s"
              f"  (submit {results[n]['submit_ms']:.1f} ms, wait {results[n]['wait_ms']:.1f}"
              f" ms, reps {reps})", flush=True)
    return results


# -- rhapsody alone (the ceiling) -----------------------------------------------------------
async def _local(backend_name: str, sizes: list[int], min_seconds: float,
                 max_reps: int) -> dict[int, dict]:
    from rhapsody import ComputeTask, Session
    from rhapsody.backends.execution import ConcurrentExecutionBackend, NoopExecutionBackend

    from radical.edge.plugins.rhapsody.functions import noop

    work = tempfile.mkdtemp(prefix="bench-rhapsody-")
    if backend_name == "noop":
        backend = await NoopExecutionBackend()
    else:
        backend = await ConcurrentExecutionBackend()
    session = Session([backend], work_dir=work)
    results = {}
    try:
        warm = [ComputeTask(function=noop) for _ in range(64)]
        await session.submit_tasks(warm)
        await session.wait_tasks(warm)
        for n in sizes:
            total_tasks, total_time, reps = 0, 0.0, 0
            while True:
                t0 = time.perf_counter()
                tasks = [ComputeTask(function=noop) for _ in range(n)]
                await session.submit_tasks(tasks)
                await session.wait_tasks(tasks)
                total_time += time.perf_counter() - t0
                total_tasks += n
                reps += 1
                session._tasks.clear()  # keep memory flat across repetitions
                # one repetition of a large batch was ±30% noise: repeat up to 8,192 as well
                if total_time >= min_seconds or reps >= max_reps or n > 8192:
                    break
            results[n] = {"rate": total_tasks / total_time, "reps": reps}
            print(f"  local  {backend_name:<10} n={n:<6} {results[n]['rate']:>9.0f} tasks/s",
                  flush=True)
    finally:
        await session.close()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return results


def run_local(backend: str, sizes: list[int], min_seconds: float, max_reps: int) -> dict:
    return asyncio.run(_local(backend, sizes, min_seconds, max_reps))


# -- SSE delivery ---------------------------------------------------------------------------
def sse_delivery(bridge_url: str, token: str | None, edge: str, listeners: int, n: int,
                 batch_size: int) -> dict:
    """Notifications (and task records) per second reaching `listeners` SSE clients."""
    clients = [BridgeClient(bridge_url, token=token) for _ in range(listeners)]
    main = clients[0]
    rh = main.get_edge_client(edge).get_plugin("rhapsody", backends=["noop"],
                                               notify_batch_size=batch_size)
    lock = threading.Lock()
    counts = [{"messages": 0, "records": 0, "last": 0.0} for _ in range(listeners)]
    done = threading.Event()

    def make_cb(i: int):
        def cb(_edge, _plugin, topic, data):
            if data.get("sid") != rh.sid:
                return
            k = len(data["tasks"]) if topic == "task_status_batch" else 1
            with lock:
                c = counts[i]
                c["messages"] += 1
                c["records"] += k
                c["last"] = time.perf_counter()
                if all(x["records"] >= n for x in counts):
                    done.set()
        return cb

    for i, bc in enumerate(clients):
        for topic in ("task_status", "task_status_batch"):
            bc.register_callback(edge, "rhapsody", topic, make_cb(i))
        bc.wait_for_listener(30)
    try:
        t0 = time.perf_counter()
        rh.submit_tasks([{"function": NOOP} for _ in range(n)])
        ok = done.wait(120)
        elapsed = max(c["last"] for c in counts) - t0
        messages = sum(c["messages"] for c in counts)
        records = sum(c["records"] for c in counts)
        return {"listeners": listeners, "tasks": n, "batch_size": batch_size,
                "complete": ok, "seconds": elapsed,
                "messages_per_s_each": messages / listeners / elapsed,
                "messages_per_s_total": messages / elapsed,
                "records_per_s_total": records / elapsed,
                "lost": sum(max(0, n - c["records"]) for c in counts)}
    finally:
        rh.close()
        for bc in clients:
            bc.close()


# -- main -----------------------------------------------------------------------------------
def main() -> int:
    global NOOP
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bridge-url")
    ap.add_argument("--edge", default="bench-rh")
    ap.add_argument("--edge-pid", type=int)
    ap.add_argument("--token", default=os.environ.get("RADICAL_EDGE_TOKEN"))
    ap.add_argument("--max-batch", type=int, default=16384)
    ap.add_argument("--min-batch", type=int, default=1, help="smallest batch measured")
    ap.add_argument("--backends", default="noop,concurrent")
    ap.add_argument("--min-seconds", type=float, default=0.5,
                    help="repeat small batches until they took this long in total")
    ap.add_argument("--max-reps", type=int, default=200)
    ap.add_argument("--sse-tasks", type=int, default=4000)
    ap.add_argument("--no-local", action="store_true", help="skip rhapsody's local ceiling")
    ap.add_argument("--function", default=NOOP,
                    help="import path of the task function (default: the no-op; e.g. "
                         "radical.edge.plugins.rhapsody.functions:echo measures the worker "
                         "processes, which the no-op skips)")
    ap.add_argument("--no-sse", action="store_true", help="skip the SSE delivery runs")
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args()
    NOOP = args.function

    sizes = [n for n in sizes_up_to(args.max_batch) if n >= args.min_batch]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    started: list[services.Service] = []
    edge_pid = args.edge_pid
    bridge_url = args.bridge_url
    try:
        if bridge_url is None:
            logs = Path(tempfile.mkdtemp(prefix="bench-rhapsody-logs-"))
            redis = services.start_redis(log_dir=logs)
            started.append(redis)
            bridge = services.start_bridge(redis.extra["url"], log_dir=logs)
            started.append(bridge)
            bridge_url = bridge.extra["url"]
            edge = services.start_edge(redis.extra["url"], args.edge, "rhapsody", logs,
                                       bridge_url=bridge_url)
            started.append(edge)
            edge_pid = edge.pid
        time.sleep(1.0)
        report: dict = {"host": platform.node(), "cpus": os.cpu_count(),
                        "python": platform.python_version(), "sizes": sizes,
                        "bridge": {}, "local": {}, "sse": [], "memory_mb": {}}
        try:
            import rhapsody
            report["rhapsody"] = rhapsody.__version__
        except Exception:
            report["rhapsody"] = None
        report["memory_mb"]["idle"] = rss_mb(edge_pid)
        sampler = Sampler(edge_pid)
        sampler.start()

        bc = BridgeClient(bridge_url, token=args.token)
        try:
            print("through the bridge (submit + wait, client-side wall time):", flush=True)
            for backend in backends:
                rh = bc.get_edge_client(args.edge).get_plugin("rhapsody", backends=[backend])
                rh.backend_label = backend
                try:
                    report["bridge"][backend] = run_batches(rh, sizes, args.min_seconds,
                                                            args.max_reps)
                finally:
                    rh.close()
            report["memory_mb"]["peak"] = sampler.stop()
            time.sleep(1.0)
            report["memory_mb"]["after_close"] = rss_mb(edge_pid)

            print("SSE delivery:", flush=True)
            for listeners in (() if args.no_sse else (1, 10)):
                for batch in (1, 1024):
                    r = sse_delivery(bridge_url, args.token, args.edge, listeners,
                                     args.sse_tasks, batch)
                    report["sse"].append(r)
                    print(f"  {listeners:>2} listener(s), notify_batch_size={batch:<5} "
                          f"{r['messages_per_s_each']:>8.0f} notifications/s each, "
                          f"{r['records_per_s_total']:>9.0f} task updates/s total, "
                          f"lost {r['lost']}", flush=True)
        finally:
            bc.close()

        if not args.no_local:
            print("rhapsody alone (no bridge; stock backends, ComputeTask objects):",
                  flush=True)
            for backend in backends:
                report["local"][backend] = run_local(backend, sizes, args.min_seconds,
                                                     args.max_reps)
    finally:
        for svc in reversed(started):
            svc.stop()

    print()
    print(render_table(report, backends))
    print()
    print(render_markdown(report, backends))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    return 0


def _fmt(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def render_table(report: dict, backends: list[str]) -> str:
    head = f"{'batch':>6} " + " ".join(
        f"{'bridge ' + b:>18} {'local ' + b:>18}" for b in backends)
    lines = [head, "-" * len(head)]
    for n in report["sizes"]:
        cells = []
        for b in backends:
            br = report["bridge"].get(b, {}).get(n, {}).get("rate")
            lo = report["local"].get(b, {}).get(n, {}).get("rate")
            cells.append(f"{_fmt(br):>18} {_fmt(lo):>18}")
        lines.append(f"{n:>6} " + " ".join(cells))
    mem = report["memory_mb"]
    lines.append("")
    lines.append("edge RSS (MiB): idle {} / peak {} / after close {}".format(
        *(f"{mem.get(k):.1f}" if mem.get(k) else "-" for k in ("idle", "peak",
                                                              "after_close"))))
    return "\n".join(lines)


def render_markdown(report: dict, backends: list[str]) -> str:
    out = ["| batch | " + " | ".join(f"{b} via bridge (tasks/s) | {b} rhapsody local (tasks/s)"
                                     for b in backends) + " |",
           "|---:|" + "---:|---:|" * len(backends)]
    for n in report["sizes"]:
        cells = []
        for b in backends:
            cells.append(_fmt(report["bridge"].get(b, {}).get(n, {}).get("rate")))
            cells.append(_fmt(report["local"].get(b, {}).get(n, {}).get("rate")))
        out.append(f"| {n} | " + " | ".join(cells) + " |")
    mem = report["memory_mb"]
    out.append("")
    if mem.get("idle"):
        after = mem.get("after_close") or 0
        out.append(f"Edge memory (RSS): idle {mem['idle']:.1f} MiB, peak {mem.get('peak', 0):.1f}"
                   f" MiB, {after:.1f} MiB one second after the sessions closed "
                   f"({100 * (after - mem['idle']) / mem['idle']:+.0f}% vs idle).")
        out.append("")
    out.append("| SSE listeners | notify_batch_size | notifications/s per listener | "
               "task updates/s (all listeners) | lost |")
    out.append("|---:|---:|---:|---:|---:|")
    for r in report["sse"]:
        out.append(f"| {r['listeners']} | {r['batch_size']} | {r['messages_per_s_each']:,.0f} "
                   f"| {r['records_per_s_total']:,.0f} | {r['lost']} |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
