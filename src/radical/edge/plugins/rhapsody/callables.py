"""A task's ``function``: import paths resolved to callables, and pickled payloads.

An import path (``module:qualname``) is always allowed and resolved through a cached
`FunctionResolver`.  A pickled callable (``"cloudpickle::<base64>"`` / ``"pickle::<base64>"``,
or raw bytes in msgpack), and pickled ``args``/``kwargs``, are accepted only when the edge opts
in (`allow_pickle`) *and* the caller presented the bridge's token (`pickle_refusal`).
"""
from __future__ import annotations

import base64
import binascii
import importlib
import pickle
import re
import threading
from typing import Any, Callable, Iterable

from .errors import TaskSpecError

__all__ = ["PICKLE_PREFIXES", "FunctionResolver", "is_pickled", "load_pickled",
           "pickle_refusal"]

#: prefixes of pickled values in string form
PICKLE_PREFIXES = ("cloudpickle::", "pickle::")
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?$")


class FunctionResolver:
    """Import-path -> callable, cached (a 10k batch names the same function 10k times)."""

    def __init__(self) -> None:
        self._cache: dict[str, Callable] = {}
        self._lock = threading.Lock()

    def cached(self, path: str) -> Callable | None:
        return self._cache.get(path)

    def resolve(self, path: str) -> Callable:
        """Import `module:qualname` (or `module.attr`); raises `TaskSpecError` (422)."""
        func = self._cache.get(path)
        if func is not None:
            return func
        if not _IMPORT_PATH.match(path):
            raise TaskSpecError(f"function {path!r} is not an import path: use "
                                "'package.module:function'")
        if ":" in path:
            module_name, _, qualname = path.partition(":")
        else:
            module_name, _, qualname = path.rpartition(".")
            if not module_name:
                raise TaskSpecError(f"function {path!r} is not an import path: use "
                                    "'package.module:function'")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except ImportError as exc:
            raise TaskSpecError(f"cannot import function {path!r}: {exc}") from None
        except AttributeError:
            raise TaskSpecError(f"cannot import function {path!r}: module {module_name!r} "
                                f"has no attribute {qualname!r}") from None
        except Exception as exc:  # a module failing at import time
            raise TaskSpecError(f"cannot import function {path!r}: "
                                f"{type(exc).__name__}: {exc}") from None
        if not callable(obj):
            raise TaskSpecError(f"function {path!r} names a {type(obj).__name__}, "
                                "not a callable")
        with self._lock:
            self._cache[path] = obj
        return obj

    def resolve_many(self, paths: Iterable[str]) -> dict[str, Callable | TaskSpecError]:
        """Resolve several paths (run in a thread: imports may touch the disk)."""
        out: dict[str, Callable | TaskSpecError] = {}
        for path in paths:
            try:
                out[path] = self.resolve(path)
            except TaskSpecError as exc:
                out[path] = exc
        return out


def is_pickled(value: Any) -> bool:
    return isinstance(value, (bytes, bytearray)) or (
        isinstance(value, str) and value.startswith(PICKLE_PREFIXES))


def load_pickled(value: Any, what: str) -> Any:
    """Unpickle a ``cloudpickle::``/``pickle::`` base64 string or raw bytes."""
    if isinstance(value, str):
        _, _, b64 = value.partition("::")
        try:
            blob = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise TaskSpecError(f"{what}: invalid base64 after the pickle prefix: {exc}") from None
    else:
        blob = bytes(value)
    try:
        return pickle.loads(blob)
    except ImportError as exc:
        raise TaskSpecError(f"{what}: cannot unpickle on this edge: {exc} (cloudpickled "
                            "functions need cloudpickle installed on the edge)") from None
    except Exception as exc:
        raise TaskSpecError(f"{what}: cannot unpickle: {type(exc).__name__}: {exc}") from None


def pickle_refusal(allow_pickle: bool, auth: bool) -> str | None:
    """Why pickled payloads are refused here, or None when they are accepted."""
    if not allow_pickle:
        return ("pickled functions/arguments are disabled on this edge (start it with "
                "RADICAL_EDGE_ALLOW_PICKLE=true to allow them for 'submit'-scoped callers); "
                "name the function by import path ('package.module:function') instead")
    if not auth:
        return ("pickled functions/arguments are accepted only from callers with the "
                "'submit' scope; name the function by import path "
                "('package.module:function') instead")
    return None
