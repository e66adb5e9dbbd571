"""Lazy attribute lookup for the original module names (`radical.edge.plugin_<name>` ...).

Those modules re-export the new classes under their original names. Edge-side classes are
imported on first access only, so `from radical.edge.plugin_psij import PSIJClient` works on
a laptop without psij-python, Celery or Starlette.
"""
from __future__ import annotations

import importlib
from typing import Any


def resolve(module: str, table: dict[str, str], name: str) -> Any:
    """`table[name]` ("pkg.mod:Attr") imported, or the AttributeError Python expects."""
    target = table.get(name)
    if target is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    mod, _, attr = target.partition(":")
    return getattr(importlib.import_module(mod), attr)
