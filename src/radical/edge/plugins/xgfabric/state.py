"""What a workflow run looks like from outside: `WorkflowState` and `ClusterStatus`.

The whole `WorkflowState` is the body of every ``workflow_status`` notification and of
``GET status/{sid}``.  `status` is ``idle``, ``running``, then ``completed`` or ``failed``
(the contract's two terminal statuses; a run ended by `stop_workflow` is ``failed`` with
phase ``stopped``).
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

__all__ = ["ClusterStatus", "WorkflowState", "StateBox", "now_iso", "TERMINAL", "MAX_LOG"]

TERMINAL = ("completed", "failed")
#: log entries kept in the state (older ones are dropped)
MAX_LOG = 300
#: least time between two notifications of a run (s); a status or phase change goes at once
MIN_INTERVAL = 0.25


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class ClusterStatus:
    """Status of a single cluster.

    `edge_name` is the edge fronting the cluster; for an allocate-type cluster the tasks run
    on `exec_edge`, the child edge inside its batch job (`pilot_job_id`).
    """

    name: str
    edge_name: str
    cluster_type: str
    has_gpu: bool = False
    online: bool = False
    tasks_running: int = 0
    pilot_job_id: Optional[str] = None
    pilot_status: Optional[str] = None
    exec_edge: Optional[str] = None
    tasks_done: int = 0
    error: Optional[str] = None


@dataclass
class WorkflowState:
    """Runtime state of a workflow execution."""

    status: str = "idle"
    phase: str = ""
    progress: int = 0
    message: str = ""
    start_time: Optional[str] = None
    end_time: Optional[str] = None
    error: Optional[str] = None
    active_cluster: Optional[str] = None
    completed_simulations: int = 0
    total_simulations: int = 0
    current_batch: int = 0
    total_batches: int = 0
    pilot_jobs: Dict[str, str] = field(default_factory=dict)
    immediate_clusters: List[Dict] = field(default_factory=list)
    allocate_clusters: List[Dict] = field(default_factory=list)
    log: List[Dict] = field(default_factory=list)
    config_name: Optional[str] = None
    config_dir: Optional[str] = None
    resource_name: Optional[str] = None
    run_id: Optional[str] = None
    completed_training: int = 0
    total_training: int = 0
    results_file: Optional[str] = None
    cleanup: Optional[Dict[str, Any]] = None


class StateBox:
    """One `WorkflowState` shared by the engine's threads and the edge's loop: every change
    goes through `update`/`log` under a lock and is published as a whole.

    Publishing is coalesced: at most one notification per `MIN_INTERVAL`, the last one
    carrying the latest state; a change of `status` or `phase` goes out at once.
    """

    def __init__(self, state: WorkflowState, publish: Any) -> None:
        self._lock = threading.Lock()
        self._out = threading.Lock()  # snapshot + publish as one step: never out of order
        self._state = state
        self._publish = publish
        self._last = 0.0
        self._timer: threading.Timer | None = None

    def snapshot(self) -> dict:
        with self._lock:
            return asdict(self._state)

    def get(self, name: str) -> Any:
        with self._lock:
            return getattr(self._state, name)

    def update(self, publish: bool = True, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(self._state, key, value)
        if publish:
            self._emit("status" in changes or "phase" in changes)

    def log(self, message: str, level: str = "info", publish: bool = True,
            **changes: Any) -> None:
        """Append a log line (and apply `changes`); the message also becomes `message`."""
        with self._lock:
            self._state.log.append({"time": now_iso(), "level": level, "message": message})
            del self._state.log[:-MAX_LOG]
            self._state.message = message
            for key, value in changes.items():
                setattr(self._state, key, value)
        if publish:
            self._emit("status" in changes or "phase" in changes)

    def _emit(self, urgent: bool) -> None:
        with self._out:
            wait = self._last + MIN_INTERVAL - time.monotonic()
            if not urgent and wait > 0:
                if self._timer is None:  # the state as it is then goes out in `wait` s
                    self._timer = threading.Timer(wait, self._flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
            self._send()

    def _flush(self) -> None:
        with self._out:
            self._send()

    def _send(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._last = time.monotonic()
        self._publish(self.snapshot())
