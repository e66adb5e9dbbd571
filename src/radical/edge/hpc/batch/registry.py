"""Which batch systems exist, and which one this host has.

Backends register themselves (`@register`) when their sibling module is imported; this
module never imports them, so there is no import circle between the interface and its
implementations. The package `__init__` imports the siblings to fill the registry.
"""
from __future__ import annotations

import logging
from typing import Mapping, TypeVar

from .base import BatchSystem

log = logging.getLogger(__name__)

_REGISTRY: dict[str, type[BatchSystem]] = {}

B = TypeVar("B", bound=type[BatchSystem])


def register(cls: B) -> B:
    """Class decorator: make `cls` known to `detect_batch_system` under `cls.name`."""
    _REGISTRY[cls.name] = cls
    return cls


def backends() -> list[type[BatchSystem]]:
    """Registered classes in detection order (lowest `priority` first)."""
    return sorted(_REGISTRY.values(), key=lambda c: (c.priority, c.name))


def get_backend(name: str) -> type[BatchSystem] | None:
    return _REGISTRY.get(name)


def _fallback() -> type[BatchSystem]:
    none = _REGISTRY.get("none")
    if none is None:  # only when someone imported registry without the package
        raise RuntimeError("no 'none' batch system registered; import radical.edge.hpc.batch")
    return none


def detect_batch_system(env: Mapping[str, str] | None = None) -> BatchSystem:
    """The scheduler of this host (a `none` backend when there is none).

    A job id in the environment decides first (an edge inside a PBS job on a host that also
    has SLURM tools is a PBS compute node); otherwise the first available backend wins.
    """
    ordered = [c for c in backends() if c.name != "none"]
    for cls in ordered:
        if cls.job_id_from_env(env):
            return cls(env)
    for cls in ordered:
        try:
            if cls.available(env):
                return cls(env)
        except Exception:  # a broken probe must not stop an edge
            log.exception("probing batch system %s failed", cls.name)
    return _fallback()(env)


def host_role(env: Mapping[str, str] | None = None) -> str:
    """"compute" inside a batch job (SLURM_JOB_ID / PBS_JOBID set), else "login"."""
    for cls in backends():
        if cls.job_id_from_env(env):
            return "compute"
    return "login"
