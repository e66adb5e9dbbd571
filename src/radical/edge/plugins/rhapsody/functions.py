"""Small functions every edge can run by import path (examples, tests, benchmarks).

Submit them as ``{"function": "radical.edge.plugins.rhapsody.functions:noop"}``.
"""
from __future__ import annotations

import os
import time
from typing import Any


def noop(*args: Any, **kwargs: Any) -> None:
    """Do nothing (throughput benchmarks)."""
    return None


def echo(*args: Any, **kwargs: Any) -> Any:
    """Return the arguments: the single positional one, else ``{"args", "kwargs"}``."""
    if len(args) == 1 and not kwargs:
        return args[0]
    return {"args": list(args), "kwargs": kwargs}


def add(a: Any, b: Any) -> Any:
    return a + b


def sleep(seconds: float) -> float:
    """Sleep, then return the seconds slept."""
    time.sleep(float(seconds))
    return float(seconds)


def fail(message: str = "task failed on purpose") -> None:
    """Raise RuntimeError(message)."""
    raise RuntimeError(message)


def to_bytes(text: str = "", encoding: str = "utf-8") -> bytes:
    """Return `text` encoded (a bytes return value)."""
    return text.encode(encoding)


def opaque() -> object:
    """Return an object JSON cannot carry (comes back as its repr)."""
    return _Opaque()


def getpid() -> int:
    return os.getpid()


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque thing>"
