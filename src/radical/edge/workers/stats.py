"""An edge's own counters, sent with every heartbeat (`stats`) and exported by the bridges'
`/metrics` as `radical_edge_edge_*{edge=...}`: no port to open on a login or compute node."""
from __future__ import annotations

import os
from typing import Any


class EdgeStats:
    """Calls this edge ran and how many failed; the process's CPU time and memory."""

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self._proc: Any = None
        try:
            import psutil

            self._proc = psutil.Process(os.getpid())
        except (ImportError, OSError):  # psutil is in the [edge] extra; without it: CPU only
            self._proc = None

    def call_done(self, status: int) -> None:
        self.calls += 1
        if status >= 500:
            self.errors += 1

    def snapshot(self, running: int) -> dict[str, Any]:
        times = os.times()
        out: dict[str, Any] = {"calls": self.calls, "errors": self.errors, "running": running,
                               "cpu_seconds": round(times.user + times.system, 3)}
        if self._proc is not None:
            try:
                out["rss_bytes"] = self._proc.memory_info().rss
            except Exception:  # the process table may be unreadable (containers): no memory
                pass
        return out
