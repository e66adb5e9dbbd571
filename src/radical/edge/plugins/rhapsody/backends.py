"""The backends of a rhapsody session: which names exist, the default one, building one.

``concurrent`` (the managed executor of `executor`) and ``noop`` are built here; any other
name goes through rhapsody's `BackendRegistry`.  rhapsody is imported lazily (sessions of an
edge without it never get this far).
"""
from __future__ import annotations

import asyncio
import functools
import inspect
from typing import Any

__all__ = ["BUILTIN_BACKENDS", "BackendUnavailable", "default_backends", "known_backends",
           "make_backend"]

#: backends this plugin builds itself; any other name goes through rhapsody's registry
BUILTIN_BACKENDS = ("concurrent", "noop")


class BackendUnavailable(RuntimeError):
    """A backend cannot be built on this edge (missing package, failed start-up)."""


@functools.lru_cache(maxsize=1)
def default_backends() -> list[str]:
    """``["dragon_v3"]`` where Dragon is importable (as the original), else ``["concurrent"]``."""
    try:
        import dragon  # type: ignore[import-not-found]  # noqa: F401
        return ["dragon_v3"]
    except Exception:
        return ["concurrent"]


@functools.lru_cache(maxsize=1)
def known_backends() -> frozenset[str]:
    """Backend names rhapsody knows (importable or not) plus ours."""
    try:
        from rhapsody.backends.discovery import BackendRegistry
        names = set(BackendRegistry.list_backends())
    except Exception:
        names = set()
    return frozenset(names | set(BUILTIN_BACKENDS))


async def make_backend(name: str, process_slots: Any, pool: Any = None) -> Any:
    """Build and start the backend `name`; raises `BackendUnavailable`.

    `process_slots` is the edge-wide semaphore that bounds the processes of the
    ``concurrent`` backend, `pool` the edge's function worker processes.
    """
    if name == "concurrent":
        from .executor import ManagedConcurrentBackend

        backend = ManagedConcurrentBackend(slots=process_slots, pool=pool, name="concurrent")
        return await backend
    if name == "noop":
        from rhapsody.backends.execution.noop import NoopExecutionBackend

        return await NoopExecutionBackend(name="noop")
    from rhapsody.backends.discovery import BackendRegistry

    try:
        cls = BackendRegistry.get_backend_class(name)
    except (ImportError, ValueError) as exc:
        raise BackendUnavailable(f"backend {name!r} is not available on this edge: "
                                 f"{exc}") from exc
    try:
        # constructors of external backends may block (cluster start-up): not on the loop
        backend = await asyncio.to_thread(cls)
        if inspect.isawaitable(backend):
            backend = await backend
    except Exception as exc:
        raise BackendUnavailable(f"backend {name!r} is not available on this edge: "
                                 f"{type(exc).__name__}: {exc}") from exc
    return backend
