"""Make RADICAL-Pilot usable from an edge process: find it, and give it the environment it
expects from an interactive shell.

RP starts helper processes by command name (`radical-pilot-bridge`, the pilot agent) and
bootstraps the local pilot into the client's virtualenv only when `VIRTUAL_ENV` says which
one; an edge started as `.venv/bin/python -m radical.edge.cli` has neither on its PATH/env.
"""
from __future__ import annotations

import importlib
import os
import sys
from functools import lru_cache


@lru_cache(maxsize=1)
def import_error() -> str | None:
    """None when `radical.pilot` imports here, else why not (shown as `unavailable`)."""
    try:
        importlib.import_module("radical.pilot")
    except Exception as exc:  # ImportError, or a broken install raising anything
        return f"radical.pilot does not import here ({type(exc).__name__}: {exc}); " \
               f"install it with: pip install 'radical.edge[lucid]'"
    return None


def prepare_environment() -> None:
    """Put this interpreter's bin dir on PATH and name its virtualenv (idempotent)."""
    bindir = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join(p for p in (bindir, path) if p)
    if sys.prefix != sys.base_prefix and not os.environ.get("VIRTUAL_ENV"):
        os.environ["VIRTUAL_ENV"] = sys.prefix
    # RP's progress reporter writes banners to stdout, which is the edge log here
    os.environ.setdefault("RADICAL_REPORT", "FALSE")
