"""Shared by the payload and Sentinel chaos tests: memory probes, topology watching, load.

Every figure a test measures is also appended as one JSON line to
`.run/test-logs/chaos-figures.jsonl`, so docs/reliability.md can quote a real run.
"""
from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx

import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import services

FIGURES = Path(os.environ.get("RADICAL_EDGE_TEST_LOGS",
                              Path(__file__).resolve().parents[2] / ".run" / "test-logs")
               ) / "chaos-figures.jsonl"


def record(scenario: str, **figures: Any) -> None:
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    with open(FIGURES, "a") as fh:
        fh.write(json.dumps({"scenario": scenario, "at": time.time(), **figures}) + "\n")


def proc_status_kib(pid: int, field: str) -> int:
    """A `/proc/<pid>/status` field in KiB (VmHWM: peak resident set, VmRSS: current)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def peak_rss_mb(pid: int) -> float:
    return proc_status_kib(pid, "VmHWM") / 1024


def reset_peak_rss(pid: int) -> None:
    """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class TopologyProbe:
    """Polls `/edge/list` from a thread and counts the polls where `edge` was missing."""

    def __init__(self, bridge_url: str, edge: str, interval: float = 0.05) -> None:
        self.bridge_url, self.edge, self.interval = bridge_url, edge, interval
        self.polls = self.missing = self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "TopologyProbe":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.polls += 1
                if self.edge not in services.list_edges(self.bridge_url):
                    self.missing += 1
            except httpx.HTTPError:
                self.errors += 1
            self._stop.wait(self.interval)


async def _get_all(urls: list[str], timeout: float) -> list[tuple[int, Any]]:
    async with httpx.AsyncClient(timeout=timeout, headers=authed.AUTH,
                                 limits=httpx.Limits(max_connections=len(urls) + 4)) as c:
        async def one(url: str) -> tuple[int, Any]:
            try:
                r = await c.get(url)
                return r.status_code, r.json()
            except (httpx.HTTPError, ValueError) as exc:
                return -1, repr(exc)

        return await asyncio.gather(*(one(u) for u in urls))


class Bystanders:
    """`n` small calls started together in a thread; `.results` once joined."""

    def __init__(self, urls: list[str], timeout: float = 60.0) -> None:
        self.results: list[tuple[int, Any]] = []
        self._thread = threading.Thread(
            target=lambda: self.results.extend(asyncio.run(_get_all(urls, timeout))),
            daemon=True)

    def start(self) -> "Bystanders":
        self._thread.start()
        return self

    def join(self, timeout: float) -> list[tuple[int, Any]]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "bystander calls did not finish"
        return self.results


class SSEReader:
    """Reads `GET /events` in a thread, reconnecting with Last-Event-ID like a browser.

    `lines` keeps every `data:` line seen; `connects` counts (re)connections.
    """

    def __init__(self, bridge_url: str) -> None:
        self.url = f"{bridge_url}/events"
        self.lines: list[str] = []
        self.connects = 0
        self.last_id: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "SSEReader":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(15)

    def seen(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def _run(self) -> None:
        while not self._stop.is_set():
            headers = {"Last-Event-ID": self.last_id} if self.last_id else {}
            try:
                with httpx.stream("GET", self.url, headers={**authed.AUTH, **headers},
                                  timeout=httpx.Timeout(5.0, read=3.0)) as r:
                    self.connects += 1
                    for line in r.iter_lines():
                        if line.startswith("id:"):
                            self.last_id = line[3:].strip()
                        elif line.startswith("data:"):
                            self.lines.append(line)
                        if self._stop.is_set():
                            return
            except httpx.HTTPError:
                pass
            self._stop.wait(0.2)


def wait_for(check: Any, timeout: float, interval: float = 0.1) -> float | None:
    """Seconds until `check()` is true, or None after `timeout`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if check():
                return time.monotonic() - t0
        except Exception:
            pass
        time.sleep(interval)
    return None
