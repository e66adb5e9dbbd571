"""What the rhapsody client puts on the wire: task dicts in, request bodies out, and back.

`encode_function` names a task's function (its import path, else pickled by value);
`WireMixin` turns the caller's task dicts into plain ones (assigning uids) and those into a
msgpack body (JSON without msgpack), pickling args/kwargs that are not plain data;
`decode_record` restores the bytes of a result's base64 return value.  Standard library
only: msgpack and cloudpickle are used when installed, never required.
"""
from __future__ import annotations

import base64
import pickle
from typing import Any, Callable

from ...registry import resolve

try:  # optional: smaller and faster bodies than JSON
    import msgpack as _msgpack
except ImportError:  # pragma: no cover - exercised on bare laptops
    _msgpack = None

__all__ = ["HAVE_MSGPACK", "encode_function", "decode_record", "WireMixin"]

#: msgpack is importable (`RhapsodyClient.use_msgpack` defaults to this)
HAVE_MSGPACK = _msgpack is not None
#: result fields a client never needs to send back
_RESULT_FIELDS = ("state", "stdout", "stderr", "exit_code", "return_value", "response",
                  "exception", "error", "traceback", "task_type", "pid",
                  "_return_value_encoding", "stdout_truncated", "stderr_truncated")


def _import_path(func: Callable) -> str | None:
    """``module:qualname`` if `func` can be imported by that name (else None)."""
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    try:
        obj: Any = resolve(f"{module}:{qualname}")
    except Exception:
        return None
    return f"{module}:{qualname}" if obj is func else None


def _pickle(obj: Any) -> str:
    try:
        import cloudpickle  # type: ignore[import-not-found]

        return "cloudpickle::" + base64.b64encode(cloudpickle.dumps(obj)).decode("ascii")
    except ImportError:
        return "pickle::" + base64.b64encode(pickle.dumps(obj)).decode("ascii")


def encode_function(func: Any) -> str:
    """The wire form of a task's ``function``.

    Strings pass as they are (import paths, or already pickled ``cloudpickle::...``);
    an importable module-level callable becomes its import path ``module:qualname``
    (always accepted by edges); anything else (lambdas, closures, ``__main__`` functions)
    is pickled by value with cloudpickle, which edges accept only when they opt in and the
    caller presents the bridge's token.
    """
    if isinstance(func, str):
        return func
    if isinstance(func, (bytes, bytearray)):
        return "pickle::" + base64.b64encode(bytes(func)).decode("ascii")
    if not callable(func):
        raise TypeError(f"function must be callable or an import path, not "
                        f"{type(func).__name__}")
    path = _import_path(func)
    if path is not None:
        return path
    try:
        import cloudpickle  # type: ignore[import-not-found]
    except ImportError:
        raise TypeError(f"{func!r} cannot be named by import path and cloudpickle is not "
                        "installed: define it in an importable module (and install that "
                        "module on the edge) or install cloudpickle") from None
    return "cloudpickle::" + base64.b64encode(cloudpickle.dumps(func)).decode("ascii")


def decode_record(record: dict) -> dict:
    """A copy of a task record with a base64 return value turned back into bytes."""
    if record.get("_return_value_encoding") == "base64":
        record = dict(record)
        record["return_value"] = base64.b64decode(record["return_value"])
        del record["_return_value_encoding"]
    return record


class WireMixin:
    """Encoding of task batches, mixed into `RhapsodyClient` (uses its `use_msgpack` and
    uid counter)."""

    def _wire(self, task: Any) -> dict:
        """The plain dict sent for one task (assigning a uid if it has none)."""
        if not isinstance(task, dict):
            raise TypeError(f"tasks must be dicts, not {type(task).__name__}")
        uid = task.get("uid")
        if not uid:
            uid = f"{self._uid_prefix}.{next(self._uids):06d}"
            try:
                task["uid"] = uid  # the caller's dict learns its uid
            except Exception:
                pass
        out = {k: v for k, v in task.items() if v is not None and k not in _RESULT_FIELDS}
        out["uid"] = uid
        fn = out.get("function")
        if fn is not None and not isinstance(fn, str):
            out["function"] = encode_function(fn)
        for key in ("args", "arguments"):
            if isinstance(out.get(key), tuple):
                out[key] = list(out[key])
        if not out.get("args"):
            out.pop("args", None)
        if not out.get("kwargs"):
            out.pop("kwargs", None)
        if not out.get("arguments"):
            out.pop("arguments", None)
        if out.get("capture_stdio") is False:
            del out["capture_stdio"]
        return out

    def _encode(self, tasks: list[dict]) -> tuple[bytes, str]:
        encoded = self._try_encode({"tasks": tasks})
        if encoded is None:
            # something in args/kwargs is not plain data: pickle those fields (edges accept
            # them only when they allow pickles and the caller presents the token)
            encoded = self._try_encode({"tasks": [self._pickle_fields(t) for t in tasks]})
        if encoded is None:
            raise TypeError("tasks cannot be serialized (msgpack/JSON) even after pickling "
                            "their args/kwargs")
        return encoded

    def _try_encode(self, body: dict) -> tuple[bytes, str] | None:
        if self.use_msgpack and _msgpack is not None:
            try:
                return _msgpack.packb(body, use_bin_type=True), "application/msgpack"
            except (TypeError, ValueError, OverflowError):
                return None
        try:
            import orjson

            return orjson.dumps(body), "application/json"
        except ImportError:
            pass
        except TypeError:
            return None
        import json

        try:
            return json.dumps(body, separators=(",", ":")).encode(), "application/json"
        except (TypeError, ValueError):
            return None

    def _pickle_fields(self, task: dict) -> dict:
        pickled = []
        out = dict(task)
        for key in ("args", "kwargs"):
            if key in out and not _plain(out[key]):
                out[key] = _pickle(out[key])
                pickled.append(key)
        if pickled:
            out["_pickled_fields"] = pickled
        return out


def _plain(value: Any) -> bool:
    """True if `value` is made of JSON/msgpack-able plain data only."""
    if value is None or isinstance(value, (str, int, float, bool, bytes)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False
