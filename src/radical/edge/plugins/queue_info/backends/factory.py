"""Pick the QueueInfo backend for a batch system, by name, through a registry.

The registry maps batch-system names to import paths, so choosing a backend imports only
that backend (and the base never imports its subclasses). Sites add their own with
`register_backend("lsf", "mysite.queue_info:QueueInfoLSF")` or an entry point in
`radical.edge.queue_info_backends`.
"""
from __future__ import annotations

from typing import Any

from radical.edge.hpc.batch import BatchSystem, detect_batch_system

from ....registry import Registry
from .base import QueueInfo

#: third-party backends register ``{batch system name} = "module:Class"`` here
ENTRY_POINT_GROUP = "radical.edge.queue_info_backends"

_BACKENDS: Registry[type[QueueInfo]] = Registry("queue_info backend", {
    "slurm": "radical.edge.plugins.queue_info.backends.slurm:QueueInfoSlurm",
    "pbs": "radical.edge.plugins.queue_info.backends.pbs:QueueInfoPBS",
    "none": "radical.edge.plugins.queue_info.backends.none:QueueInfoNone",
})
_BACKENDS.load_entry_points(ENTRY_POINT_GROUP)


def register_backend(batch_name: str, backend: str | type[QueueInfo]) -> None:
    """Use `backend` (a class or 'module:Class') for batch systems named `batch_name`."""
    _BACKENDS.register(batch_name, backend)


def backend_class(batch_name: str) -> type[QueueInfo]:
    """The class registered for `batch_name` (the 'none' backend when there is none)."""
    return _BACKENDS.get(batch_name if batch_name in _BACKENDS else "none")


def make_queue_info(batch: BatchSystem | None = None, **kwargs: Any) -> QueueInfo:
    """A QueueInfo for `batch` (detected when None); kwargs go to the backend (ttl, ...)."""
    batch = batch if batch is not None else detect_batch_system()
    return backend_class(batch.name)(batch=batch, **kwargs)
