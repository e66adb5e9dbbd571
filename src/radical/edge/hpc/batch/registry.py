"""Which batch systems exist, and which one this host has.

Backends register themselves (`@register`) when their sibling module is imported; this
module never imports them, so there is no import circle between the interface and its
implementations. The package `__init__` imports the siblings to fill the registry.
"""
from __future__ import annotations

import logging
from typing import Mapping, TypeVar

from ...registry import Registry
from .base import BatchSystem

log = logging.getLogger(__name__)

#: third-party batch systems register ``{name} = "module:Class"`` here
ENTRY_POINT_GROUP = "radical.edge.batch_systems"

_REGISTRY: Registry[type[BatchSystem]] = Registry("batch system")
_entry_points_loaded = False

B = TypeVar("B", bound=type[BatchSystem])


def register(cls: B) -> B:
    """Class decorator: make `cls` known to `detect_batch_system` under `cls.name`."""
    _REGISTRY.register(cls.name, cls)
    return cls


def _classes() -> list[type[BatchSystem]]:
    global _entry_points_loaded
    if not _entry_points_loaded:  # third-party systems join on first use (not at import)
        _entry_points_loaded = True
        _REGISTRY.load_entry_points(ENTRY_POINT_GROUP)
    out = []
    for name in _REGISTRY.names():
        try:
            out.append(_REGISTRY.get(name))
        except Exception as exc:  # a broken third-party backend must not stop detection
            log.warning("skipping batch system %s: loading it failed: %s: %s", name,
                        type(exc).__name__, exc)
    return out


def backends() -> list[type[BatchSystem]]:
    """Registered classes in detection order (lowest `priority` first)."""
    return sorted(_classes(), key=lambda c: (c.priority, c.name))


def get_backend(name: str) -> type[BatchSystem] | None:
    return next((c for c in _classes() if c.name == name), None)


def _fallback() -> type[BatchSystem]:
    none = get_backend("none")
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
