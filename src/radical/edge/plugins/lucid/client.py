"""Client of the lucid plugin: RADICAL-Pilot pilots and tasks on an edge.

Imports only the SDK, so it loads on a laptop without radical.pilot or the edge side.
"""
from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from radical.edge.sdk.plugin import PluginClient

__all__ = ["LucidClient", "TASK_FINAL"]

TASK_FINAL = frozenset({"DONE", "FAILED", "CANCELED"})


def _q(value: Any) -> str:
    return quote(str(value), safe="")


class LucidClient(PluginClient):
    """Client-side interface of the lucid plugin.

    A pilot description: ``resource`` (default ``local.localhost``), ``cores``, ``gpus``,
    ``nodes``, ``runtime`` (minutes), ``queue``, ``project``, ``access_schema``.
    A task description: ``executable`` (required), ``arguments``, ``environment``, ``name``,
    ``ranks``, ``cores_per_rank``, ``gpus_per_rank``, ``pre_exec``, ``post_exec``.
    """

    def pilot_submit(self, description: dict[str, Any]) -> dict[str, Any]:
        """Start a pilot; returns ``{"pid"}`` at once (it becomes PMGR_ACTIVE later)."""
        return self._post(f"pilot_submit/{self._require_sid()}",
                          json={"description": description})

    def pilot_status(self, pid: str | None = None) -> dict[str, Any]:
        """One pilot's state, or ``{"pilots": [...]}`` for all of this session's pilots."""
        path = f"pilot_status/{self._require_sid()}"
        return self._get(path if pid is None else f"{path}/{_q(pid)}")

    def task_submit(self, description: dict[str, Any]) -> dict[str, Any]:
        """Submit a task to the session's pilots; returns ``{"tid"}``."""
        return self._post(f"task_submit/{self._require_sid()}",
                          json={"description": description})

    def task_wait(self, tid: str, timeout: float = 10.0) -> dict[str, Any]:
        """``{"tid", "task"}`` once the task is final, or its current state after `timeout`
        s (the edge caps one call's wait; see `wait_final` to wait longer)."""
        return self._request("GET", f"task_wait/{self._require_sid()}/{_q(tid)}",
                             params={"timeout": timeout}, timeout=float(timeout) + 10.0)

    def wait_final(self, tid: str, timeout: float = 300.0) -> dict[str, Any]:
        """The task dict once final, calling `task_wait` repeatedly (TimeoutError after
        `timeout` s)."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            task = self.task_wait(tid, timeout=max(0.0, min(left, 20.0)))["task"]
            if task["state"] in TASK_FINAL:
                return task
            if left <= 0:
                raise TimeoutError(f"task {tid} still {task['state']} after {timeout:g} s")

    def task_list(self) -> dict[str, Any]:
        """``{"tasks": [...]}``: every task of this session with its state."""
        return self._get(f"task_list/{self._require_sid()}")

    def task_cancel(self, tid: str) -> dict[str, Any]:
        """Cancel a task (404 unknown, 409 already ended)."""
        return self._post(f"task_cancel/{self._require_sid()}/{_q(tid)}")
