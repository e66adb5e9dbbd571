"""Task results out: the JSON-safe result dict of a rhapsody task, and its notification form.

Pure code (no rhapsody, no asyncio): `shape_task` turns a task dict the backend filled in
(exceptions, bytes, numpy values, ...) into plain JSON data; `for_notification` cuts huge
stdout/stderr for the notification stream.
"""
from __future__ import annotations

import base64
import functools
import traceback as tb_mod
from typing import Any

import orjson

from ...constants import TASK_TERMINAL_STATES
from .callables import FunctionRef

__all__ = ["TERMINAL", "RESULT_KEYS", "NOTIFY_OUTPUT_LIMIT", "json_safe", "shape_task",
           "for_notification"]

#: states after which a task never changes again
TERMINAL = TASK_TERMINAL_STATES
#: keys every task dict we answer with carries (what existing clients read)
RESULT_KEYS = ("uid", "state", "exit_code", "stdout", "stderr", "return_value", "error",
               "exception")
#: stdout/stderr longer than this are cut in notifications (the full text stays available
#: through `task/{sid}/{uid}`); the record then carries ``<field>_truncated: true``
NOTIFY_OUTPUT_LIMIT = 256 * 1024

_SCALARS = frozenset({str, bool, float, type(None)})
_INT_MAX = 2 ** 63


def json_safe(value: Any) -> tuple[Any, str | None]:
    """A JSON-safe stand-in for `value` and the encoding marker (None = as is).

    bytes become base64 with marker ``"base64"`` (what rhapsody's edge backend decodes);
    anything JSON cannot carry becomes its ``repr`` with marker ``"repr"``.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value, None
    if kind is int:
        return (value, None) if -_INT_MAX <= value < _INT_MAX else (str(value), "repr")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii"), "base64"
    try:
        orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
        return value, None
    except TypeError:
        pass
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__
        text = f"<unrepresentable {type(value).__name__}: {exc}>"
    return text, "repr"


def _text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def shape_task(task: dict, sid: str | None = None) -> dict:
    """The JSON-safe result dict of a rhapsody task (`RESULT_KEYS`, and a few more)."""
    get = task.get
    exc = get("exception")
    error = get("error")
    rv = get("return_value")
    stdout = get("stdout")
    stderr = get("stderr")
    out = {
        "uid": get("uid"),
        "state": get("state"),
        "exit_code": get("exit_code"),
        "stdout": stdout if stdout is None or type(stdout) is str else _text(stdout),
        "stderr": stderr if stderr is None or type(stderr) is str else _text(stderr),
        "return_value": rv,
        "error": error,
        "exception": None,
    }
    if type(rv) not in _SCALARS:
        rv, encoding = json_safe(rv)
        out["return_value"] = rv
        if encoding:
            out["_return_value_encoding"] = encoding
    if exc is not None:
        traceback_text = get("traceback")
        if isinstance(exc, BaseException):
            exception = f"{type(exc).__name__}: {exc}"
            if traceback_text is None and exc.__traceback__ is not None:
                traceback_text = "".join(tb_mod.format_exception(type(exc), exc,
                                                                 exc.__traceback__))
        else:
            exception = str(exc)
        out["exception"] = exception
        if error is None:
            out["error"] = exception
        if traceback_text:
            out["traceback"] = traceback_text
    if get("response") is not None:
        out["response"], _ = json_safe(get("response"))
    echo_spec(task, out)
    pid = get("pid")
    if pid is not None:
        out["pid"] = pid
    if sid is not None:
        out["sid"] = sid
    return out


#: spec fields echoed beside the results, as the original's task dicts did
SPEC_ECHO = ("backend", "executable", "arguments", "name", "task_backend_specific_kwargs",
             "input_files", "output_files", "prompt")


def callable_name(fn: Any) -> Any:
    """An import-path-like name for a resolved function (strings pass through)."""
    if fn is None or isinstance(fn, str):
        return fn
    if isinstance(fn, FunctionRef):  # what the plugin resolves a task's function to
        return fn.path if fn.path is not None else "<pickled function>"
    try:
        return _callable_name(fn)
    except TypeError:  # unhashable callable object
        return _name_of(fn)


@functools.lru_cache(maxsize=4096)
def _callable_name(fn: Any) -> str:
    return _name_of(fn)


def _name_of(fn: Any) -> str:
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return f"{module}:{qualname}" if module and qualname else repr(fn)


def echo_spec(task: dict, out: dict) -> None:
    """Copy the task's spec fields into `out` (JSON-safe), without overwriting results."""
    for key in SPEC_ECHO:
        if key in task and key not in out:
            out[key] = task[key]
    out["function"] = callable_name(task.get("function"))
    for key in ("args", "kwargs"):
        value = task.get(key)
        if not value:  # the common case: () / {} / None
            out[key] = [] if key == "args" and value is not None else value
            continue
        value = list(value) if type(value) is tuple else value
        try:
            orjson.dumps(value)
        except TypeError:
            value, _ = json_safe(value)
        out[key] = value
    kind = task.get("task_type")
    if kind in (None, "", "dict"):  # rhapsody stamps type(task).__name__: ours are dicts
        kind = "AITask" if task.get("prompt") is not None else "ComputeTask"
    out["task_type"] = kind


def for_notification(record: dict, limit: int = NOTIFY_OUTPUT_LIMIT) -> dict:
    """`record` with huge stdout/stderr cut (flagged), for the notification stream."""
    cut = None
    for key in ("stdout", "stderr"):
        value = record.get(key)
        if isinstance(value, str) and len(value) > limit:
            if cut is None:
                cut = dict(record)
            cut[key] = value[:limit]
            cut[f"{key}_truncated"] = True
    return cut or record
