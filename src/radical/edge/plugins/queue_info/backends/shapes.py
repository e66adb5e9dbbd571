"""The result shapes existing clients read, in one place.

Units, shared by every backend (they follow the original plugin, which the portal reads):
queue `time_limit` in minutes or the string "UNLIMITED"; job `time_limit` in minutes (None =
unlimited), `time_used` in seconds, `submit_time`/`start_time` as epoch seconds (0 = not
known); allocation `max_wall` as the scheduler's own time string, e.g. "1-00:00:00" (what
the original returned; None = no limit) with `max_wall_minutes` beside it, and
`allocated/used/remaining_node_hours` (SLURM GrpTRESMins node budgets and sshare usage;
None where the site does not provide them). Counts are ints (0 = unknown);
limits are None when there is none.
"""
from __future__ import annotations

from typing import Any

QUEUE_KEYS = ("name", "state", "time_limit", "default", "nodes_total", "nodes_available",
              "nodes_idle", "cpus_per_node", "mem_per_node_mb", "gpus_per_node",
              "max_jobs_per_user", "features")
JOB_KEYS = ("job_id", "job_name", "user", "partition", "state", "nodes", "cpus", "time_limit",
            "time_used", "submit_time", "start_time", "priority", "account", "node_list")
ALLOCATION_KEYS = ("account", "user", "fairshare", "qos", "max_jobs", "max_submit", "max_wall",
                   "max_wall_minutes", "allocated_node_hours", "used_node_hours",
                   "remaining_node_hours")

_QUEUE_DEFAULTS: dict[str, Any] = {
    "state": "UNKNOWN", "time_limit": "UNLIMITED", "default": False, "nodes_total": 0,
    "nodes_available": 0, "nodes_idle": 0, "cpus_per_node": 0, "mem_per_node_mb": 0,
    "gpus_per_node": 0, "max_jobs_per_user": None, "features": []}
_JOB_DEFAULTS: dict[str, Any] = {
    "job_name": "", "user": "", "partition": "", "state": "UNKNOWN", "nodes": 0, "cpus": 0,
    "time_limit": None, "time_used": 0, "submit_time": 0, "start_time": 0, "priority": 0,
    "account": "", "node_list": ""}
_ALLOC_DEFAULTS: dict[str, Any] = {
    "account": "", "user": "", "fairshare": None, "qos": "", "max_jobs": None,
    "max_submit": None, "max_wall": None, "max_wall_minutes": None,
    "allocated_node_hours": None, "used_node_hours": None, "remaining_node_hours": None}

#: states after which a job can no longer be cancelled
TERMINAL_STATES = frozenset({"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL",
                             "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY",
                             "REVOKED", "SPECIAL_EXIT"})


def _shape(defaults: dict[str, Any], keys: tuple[str, ...], values: dict[str, Any]) -> dict:
    out = {k: values.get(k, defaults.get(k)) for k in keys}
    for k, v in values.items():  # extra keys are welcome, after the contract's
        out.setdefault(k, v)
    for k, v in defaults.items():
        if out.get(k) is None and v is not None:
            out[k] = v if not isinstance(v, list) else list(v)
    return out


def queue_record(name: str, **values: Any) -> dict:
    """A queue/partition dict with every contract key (defaults for the missing ones)."""
    return _shape(_QUEUE_DEFAULTS, QUEUE_KEYS, {"name": name, **values})


def job_record(job_id: str, **values: Any) -> dict:
    """A job dict with every contract key."""
    return _shape(_JOB_DEFAULTS, JOB_KEYS, {"job_id": str(job_id), **values})


def allocation_record(**values: Any) -> dict:
    """An allocation/association dict with every contract key."""
    return _shape(_ALLOC_DEFAULTS, ALLOCATION_KEYS, values)


def minutes(seconds: int | None) -> int | None:
    """Seconds -> whole minutes (rounded up, so 30 s is not shown as 0); None stays None."""
    return None if seconds is None else -(-seconds // 60)


def job_in_queue(job: dict, queue: str) -> bool:
    """A pending SLURM job may name several partitions ('debug,batch')."""
    return queue in str(job.get("partition") or "").split(",")
