"""Batch-system backends of the queue_info plugin, behind one `QueueInfo` interface.

Concrete backends (slurm, pbs, none) are imported only when `make_queue_info` picks them.
"""
from __future__ import annotations

from .base import (ALL_USERS, BackendUnavailable, CancelConflict, CancelDenied, CancelFailed,
                   JobEnded, NotAJobId, QueueInfo, QueueInfoError, UnknownJob, UnknownQueue)
from .factory import backend_class, make_queue_info, register_backend

__all__ = ["ALL_USERS", "BackendUnavailable", "CancelConflict", "CancelDenied", "CancelFailed",
           "JobEnded", "NotAJobId", "QueueInfo", "QueueInfoError", "UnknownJob", "UnknownQueue", "backend_class",
           "make_queue_info", "register_backend"]
