"""Batch-system detection shared by the edge and its plugins.

`detect_batch_system()` returns the local scheduler (`slurm`, `pbs` or `none`) as a
`BatchSystem`; `host_role()` says whether this process runs inside one of its jobs.
Backends are sibling modules that register themselves; importing them here fills the
registry (the interface in `base` never imports its implementations).
"""
from __future__ import annotations

from . import none, pbs, slurm  # noqa: F401  (import = registration)
from .base import ALLOCATION_KEYS, BatchSystem, CmdResult, run_command
from .registry import backends, detect_batch_system, get_backend, host_role, register

__all__ = ["ALLOCATION_KEYS", "BatchSystem", "CmdResult", "backends", "detect_batch_system",
           "get_backend", "host_role", "register", "run_command"]
