"""A task's ``function``: allow-listed import paths, and pickles that only a worker loads.

An import path (``module:qualname``) runs only if the edge's allow-list permits it
(`allowlist`); `FunctionResolver` checks and imports it once and hands out a cached
`FunctionRef`.  A pickled callable (``"cloudpickle::<base64>"`` / ``"pickle::<base64>"``,
or raw bytes in msgpack) and pickled ``args``/``kwargs`` (named in ``_pickled_fields``) are
accepted only when the edge opts in (`allow_pickle`) *and* `caller_may_unpickle` says the
caller may; even then the edge only base64-decodes them: the worker process that runs the
task unpickles them.  Nothing else in a payload is ever unpickled: msgpack ``bin`` values
are plain ``bytes`` and ext types stay ``msgpack.ExtType``.
"""
from __future__ import annotations

import base64
import binascii
import pickle
import threading
from typing import Any, Callable, Iterable

from ...registry import resolve
from ..authz import has_scope
from .allowlist import FunctionPolicy, resolve_allowed
from .errors import TaskSpecError

__all__ = ["PICKLE_PREFIXES", "NOOP_PATH", "FunctionRef", "FunctionResolver",
           "caller_may_unpickle", "is_pickled", "pickled_blob", "pickle_refusal"]

#: prefixes of pickled values in string form
PICKLE_PREFIXES = ("cloudpickle::", "pickle::")
#: the benchmark no-op: run inline by the concurrent backend (it cannot crash or block)
NOOP_PATH = "radical.edge.plugins.rhapsody.functions:noop"


class FunctionRef:
    """What a task runs: an allowed import path, or a pickle for the worker to load.

    Callable (imports/unpickles lazily) for backends that call functions themselves;
    the `concurrent` backend sends `path` / `blob` to a worker process instead.
    """

    __slots__ = ("path", "blob", "func", "__weakref__")

    def __init__(self, path: str | None = None, blob: bytes | None = None,
                 func: Callable | None = None) -> None:
        self.path = path
        self.blob = blob
        self.func = func

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.func is None:
            self.func = (resolve(self.path) if self.path is not None
                         else pickle.loads(self.blob))  # type: ignore[arg-type]
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<function {self.path}>" if self.path else "<pickled function>"


class FunctionResolver:
    """Allowed import path -> `FunctionRef`, cached (a 10k batch names one path 10k times)."""

    def __init__(self, policy: FunctionPolicy | None = None) -> None:
        self.policy = policy or FunctionPolicy.from_settings("")
        self._cache: dict[str, FunctionRef] = {}
        self._lock = threading.Lock()

    def cached(self, path: str) -> FunctionRef | None:
        return self._cache.get(path)

    def resolve(self, path: str) -> FunctionRef:
        """Check and import `path`; raises `TaskSpecError` (403 not allowed, 422 bad)."""
        ref = self._cache.get(path)
        if ref is not None:
            return ref
        canonical, func = resolve_allowed(self.policy, path)
        ref = FunctionRef(canonical, func=func)
        with self._lock:
            self._cache[path] = ref
        return ref

    def resolve_many(self, paths: Iterable[str]) -> dict[str, FunctionRef | TaskSpecError]:
        """Resolve several paths (run in a thread: imports may touch the disk)."""
        out: dict[str, FunctionRef | TaskSpecError] = {}
        for path in paths:
            try:
                out[path] = self.resolve(path)
            except TaskSpecError as exc:
                out[path] = exc
        return out


def is_pickled(value: Any) -> bool:
    """A pickled *function*: a prefixed base64 string, or raw bytes (msgpack bin)."""
    return isinstance(value, (bytes, bytearray)) or (
        isinstance(value, str) and value.startswith(PICKLE_PREFIXES))


def pickled_blob(value: Any, what: str) -> bytes:
    """The pickle bytes of a ``cloudpickle::``/``pickle::`` base64 string or raw bytes.

    Only decoded here: the worker process that runs the task unpickles them.
    """
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if not isinstance(value, str) or not value.startswith(PICKLE_PREFIXES):
        raise TaskSpecError(f"{what}: a pickled value must be a 'cloudpickle::<base64>' or "
                            "'pickle::<base64>' string")
    _, _, b64 = value.partition("::")
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TaskSpecError(f"{what}: invalid base64 after the pickle prefix: {exc}") from None


def caller_may_unpickle(request: Any) -> bool:
    """Whether the caller of `request` may have pickles run (the edge must opt in too): its
    identity, as the bridge authenticated it, has the `submit` scope."""
    return has_scope(request, "submit")


def pickle_refusal(allow_pickle: bool, auth: bool) -> str | None:
    """Why pickled payloads are refused here, or None when they are accepted."""
    if not allow_pickle:
        return ("pickled functions/arguments are disabled on this edge (start it with "
                "RADICAL_EDGE_ALLOW_PICKLE=true to allow them for 'submit'-scoped callers); "
                "name an allowed function by import path ('package.module:function') "
                "instead")
    if not auth:
        return ("pickled functions/arguments are accepted only from callers with the "
                "'submit' scope; name an allowed function by import path "
                "('package.module:function') instead")
    return None
