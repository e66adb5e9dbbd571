"""Edge-wide housekeeping of the rhapsody plugin: preloading, scratch dirs, freeing memory.

Each session works in a scratch dir ``$TMPDIR/<prefix><edge pid>-<sid>-<random>``; those of
edges that died without closing their sessions are swept when an edge starts.  After a large
session closes, `release_memory` hands the freed task memory back to the OS.
"""
from __future__ import annotations

import asyncio
import functools
import gc
import os
import shutil
import tempfile
from typing import Any

from .backends import default_backends, known_backends

__all__ = ["WORK_DIR_PREFIX", "preload", "sweep_work_dirs", "release_memory"]

#: scratch dirs are ``$TMPDIR/<prefix><edge pid>-<sid>-<random>``
WORK_DIR_PREFIX = "radical-edge-rhapsody-"


def preload() -> None:
    """Import now what sessions use later (called once when the edge starts).

    Objects created by a first import live forever; created in the middle of a 10k-task
    burst they would pin the allocator's arenas full of short-lived task objects and keep
    the edge's memory high after the session closes.
    """
    import msgpack  # noqa: F401  (submit bodies)
    from rhapsody import Session  # noqa: F401
    from rhapsody.backends.execution.noop import NoopExecutionBackend  # noqa: F401

    from . import executor  # noqa: F401

    default_backends()
    known_backends()
    _libc()
    sweep_work_dirs()


def sweep_work_dirs(base: str | None = None) -> list[str]:
    """Remove scratch dirs left by edges that died without closing their sessions (kill -9).

    Only ``radical-edge-rhapsody-<pid>-*`` directories of this user whose edge process is
    gone are touched.  Returns the removed paths.
    """
    from .executor import pid_alive

    base = base or tempfile.gettempdir()
    removed = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(WORK_DIR_PREFIX):
            continue
        pid_text = entry.name[len(WORK_DIR_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        if not pid_alive(int(pid_text)):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


async def release_memory() -> None:
    """Give freed task memory back to the OS (gc, then glibc's malloc_trim off the loop)."""
    gc.collect()
    await asyncio.to_thread(_malloc_trim)


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    """glibc, if that is what this process uses (for malloc_trim), else None."""
    if os.name != "posix":
        return None
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018  (glibc only)
        return libc
    except Exception:
        return None


def _malloc_trim() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
