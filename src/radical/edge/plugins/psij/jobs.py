"""Job state for the psij plugin: pure Python.

`JobRecord` is one job's state as the edge reports it. `JobRecord.apply` decides whether a
psij status is a *new* transition: states only move forward (NEW < QUEUED < ACTIVE <
terminal), so every state is notified exactly once and at most one terminal state exists,
whatever thread psij reports from and however often. Specs are parsed in `.spec`, turned
into psij specs in `.build`; output is read through `.output`.
"""
from __future__ import annotations

import threading
import time
from typing import Any

from ...constants import JOB_FINAL_STATES
from .output import read_chunk, tail
from .spec import JobRequest

#: PSI/J states and their order (terminal states share the last rank)
STATE_ORDER = {"NEW": 0, "QUEUED": 1, "ACTIVE": 2, "COMPLETED": 3, "FAILED": 3, "CANCELED": 3}
FINAL_STATES = JOB_FINAL_STATES


class JobRecord:
    """One job of a session: its spec, where its output goes, and its reported state.

    psij calls back from its own threads (submit caller, queue poller, process reaper); all
    changes go through `apply` under `lock`.
    """

    def __init__(self, job_id: str, executor: str, req: JobRequest, stdout_path: str,
                 stderr_path: str, *, edge_name: str | None = None) -> None:
        self.lock = threading.RLock()
        self.job_id = job_id
        self.executor = executor
        self.request = req
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.edge_name = edge_name
        self.native_id: str | None = None
        self.state = "NEW"
        self.exit_code: int | None = None
        self.message: str | None = None
        self.time = time.time()
        self.submitted = self.time
        self.notified: list[str] = []
        self.job: Any = None  # the psij.Job
        #: called (any thread) after each new transition: on_change(record, notification)
        self.on_change: Any = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def apply(self, state: str, *, exit_code: int | None = None, message: str | None = None,
              when: float | None = None, native_id: Any = None) -> dict | None:
        """Record a status; the job_status notification to send, or None if not new.

        Only forward moves count: a repeated or older state (a late callback from another
        thread, a poller reporting ACTIVE twice) is ignored, so each state is announced once.
        """
        with self.lock:
            if native_id is not None and self.native_id is None:
                self.native_id = str(native_id)
            rank = STATE_ORDER.get(state)
            if rank is None or rank <= STATE_ORDER[self.state]:
                return None
            self.state = state
            self.time = when or time.time()
            if message is not None:
                self.message = message
            if exit_code is not None:
                self.exit_code = exit_code
            self.notified.append(state)
            note: dict[str, Any] = {"job_id": self.job_id, "native_id": self.native_id,
                                    "state": state, "time": self.time,
                                    "executor": self.executor}
            if self.edge_name:
                note["edge_name"] = self.edge_name
            if state in FINAL_STATES:
                note["exit_code"] = self.exit_code
                note["message"] = self.message
                note["stdout"] = tail(self.stdout_path)
                note["stderr"] = tail(self.stderr_path)
            return note

    def describe(self) -> dict[str, Any]:
        """The status fields without output (list_jobs rows)."""
        with self.lock:
            out: dict[str, Any] = {"job_id": self.job_id, "native_id": self.native_id,
                                   "state": self.state, "message": self.message,
                                   "exit_code": self.exit_code, "time": self.time,
                                   "submitted": self.submitted, "executor": self.executor,
                                   **self.request.summary(),
                                   "stdout_path": self.stdout_path,
                                   "stderr_path": self.stderr_path}
            if self.edge_name:
                out["edge_name"] = self.edge_name
            return out

    def status(self, stdout_offset: int = 0, stderr_offset: int = 0) -> dict[str, Any]:
        """`describe()` plus output from the given byte offsets (the `status` answer)."""
        out = self.describe()
        done = out["state"] in FINAL_STATES
        out["stdout"], out["stdout_offset"] = read_chunk(self.stdout_path, stdout_offset,
                                                         complete=done)
        out["stderr"], out["stderr_offset"] = read_chunk(self.stderr_path, stderr_offset,
                                                         complete=done)
        return out
