"""Helpers shared by the psij integration tests: a parent edge, notification capture, waits."""
from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path


import authed
from waiting import wait_for  # noqa: F401  (re-exported to the psij tests)

from radical.edge import BridgeClient, services


def edges(bridge_url: str) -> dict:
    r = authed.post(f"{bridge_url}/edge/list", timeout=5)
    r.raise_for_status()
    return r.json()["data"]["edges"]


class Notes:
    """Every `job_status` notification of one edge's psij plugin, with arrival times."""

    def __init__(self, bc: BridgeClient, edge: str) -> None:
        self._lock = threading.Lock()
        self.items: list[tuple[float, dict]] = []
        self._bc, self._edge = bc, edge
        bc.register_callback(edge, "psij", "job_status", self._add)
        assert bc.wait_for_listener(30), "SSE listener did not connect"

    def _add(self, edge: str, plugin: str, topic: str, data: dict) -> None:
        with self._lock:
            self.items.append((time.time(), data))

    def close(self) -> None:
        self._bc.unregister_callback(self._edge, "psij", "job_status", self._add)

    def of(self, job_id: str) -> list[dict]:
        with self._lock:
            return [d for _t, d in self.items if d.get("job_id") == job_id]

    def states(self, job_id: str) -> list[str]:
        return [d["state"] for d in self.of(job_id)]

    def arrival(self, job_id: str, state: str) -> float | None:
        with self._lock:
            for t, d in self.items:
                if d.get("job_id") == job_id and d.get("state") == state:
                    return t
        return None

    def wait_state(self, job_id: str, state: str, timeout: float = 30.0) -> dict:
        wait_for(lambda: state in self.states(job_id), timeout,
                 what=f"job {job_id} notification {state} (got {self.states(job_id)})")
        return next(d for d in self.of(job_id) if d["state"] == state)


def start_parent(redis_url: str, bridge_url: str, log_dir: Path, psij_dir: Path,
                 extra_env: dict[str, str] | None = None,
                 plugins: str = "psij,sysinfo") -> services.Service:
    """A parent edge with the psij plugin whose files go to `psij_dir`."""
    name = f"p{uuid.uuid4().hex[:6]}"
    env = {"RADICAL_EDGE_PSIJ_DIR": str(psij_dir), **(extra_env or {})}
    return services.start_edge(redis_url, name, plugins, log_dir, env=env,
                               bridge_url=bridge_url)


def child_log(log_dir: Path, name: str) -> str:
    """The wrapper's log of child edge `name` (whatever job id it ran under)."""
    found = sorted(log_dir.glob(f"{name}.*.log"))
    return "\n".join(p.read_text(errors="replace")[-3000:] for p in found)


def pid_connections(pid: int) -> list[tuple[str, int]]:
    """Remote (host, port) of every TCP connection of process `pid`."""
    import psutil

    proc = psutil.Process(pid)
    conns = proc.net_connections("tcp") if hasattr(proc, "net_connections") else \
        proc.connections("tcp")
    return [(c.raddr.ip, c.raddr.port) for c in conns if c.raddr]


def redis_port(url: str) -> int:
    from urllib.parse import urlsplit

    return urlsplit(url).port or 6379


def child_env(log_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a child edge job: logs next to the test logs, quick heartbeats."""
    return {"RADICAL_EDGE_LOG_DIR": str(log_dir), "RADICAL_EDGE_LOG_LEVEL": "INFO", **extra}


__all__ = ["Notes", "child_env", "child_log", "edges", "pid_connections", "redis_port",
           "start_parent", "wait_for"]
