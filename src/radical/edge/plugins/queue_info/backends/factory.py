"""Pick the QueueInfo backend for a batch system, by name, through a registry.

The registry maps batch-system names to import paths, so choosing a backend imports only
that backend (and the base never imports its subclasses). Sites add their own with
`register_backend("lsf", "mysite.queue_info:QueueInfoLSF")`.
"""
from __future__ import annotations

import importlib
from typing import Any

from radical.edge.hpc.batch import BatchSystem, detect_batch_system

from .base import QueueInfo

_BACKENDS: dict[str, str | type[QueueInfo]] = {
    "slurm": "radical.edge.plugins.queue_info.backends.slurm:QueueInfoSlurm",
    "pbs": "radical.edge.plugins.queue_info.backends.pbs:QueueInfoPBS",
    "none": "radical.edge.plugins.queue_info.backends.none:QueueInfoNone",
}


def register_backend(batch_name: str, backend: str | type[QueueInfo]) -> None:
    """Use `backend` (a class or 'module:Class') for batch systems named `batch_name`."""
    _BACKENDS[batch_name] = backend


def backend_class(batch_name: str) -> type[QueueInfo]:
    """The class registered for `batch_name` (the 'none' backend when there is none)."""
    entry = _BACKENDS.get(batch_name) or _BACKENDS["none"]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
    return entry


def make_queue_info(batch: BatchSystem | None = None, **kwargs: Any) -> QueueInfo:
    """A QueueInfo for `batch` (detected when None); kwargs go to the backend (ttl, ...)."""
    batch = batch if batch is not None else detect_batch_system()
    return backend_class(batch.name)(batch=batch, **kwargs)
