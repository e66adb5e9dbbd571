"""Task specs in, task results out: validation, normalisation and JSON-safe result shaping.

Pure code (no rhapsody, no asyncio): the session calls `normalize_batch` on what a client
posted and hands the resulting plain dicts to rhapsody's `Session.submit_tasks` (rhapsody
takes plain dicts as well as `ComputeTask` objects; skipping the ~20 µs `ComputeTask`
constructor per task matters at 10k tasks/s, and the checks below are the same ones).

Wire format of a task (JSON, or msgpack when the request's content type says so)::

    {"uid": "t.1",                       # optional; the edge assigns one when absent
     "executable": "/bin/echo", "arguments": ["hi"],          # an executable task, or
     "function": "package.module:func", "args": [...], "kwargs": {...},  # a function task
     "backend": "concurrent",            # optional; default: the session's first backend
     "task_backend_specific_kwargs": {"cwd": ..., "env": {...}, "shell": false,
                                      "timeout": 10},
     "capture_stdio": false, "input_files": [...], "output_files": [...], "name": "..."}

`function` is either an import path (``module:qualname``, always allowed) or a pickled
callable (``"cloudpickle::<base64>"`` / ``"pickle::<base64>"``, or raw bytes in msgpack),
accepted only when the edge opts in (`allow_pickle`) *and* the caller presented the bridge's
token.  ``_pickled_fields`` may name ``args``/``kwargs`` carried the same way (same rule).
Result keys a client echoes back (``state``, ``stdout``, ...) are ignored.
"""
from __future__ import annotations

import base64
import binascii
import importlib
import pickle
import re
import threading
import traceback as tb_mod
from typing import Any, Callable, Iterable

import orjson

__all__ = [
    "TERMINAL", "RESULT_KEYS", "TaskSpecError", "FunctionResolver", "normalize_batch",
    "shape_task", "for_notification", "json_safe", "PICKLE_PREFIXES",
]

#: states after which a task never changes again
TERMINAL = frozenset({"DONE", "FAILED", "CANCELED"})
#: keys every task dict we answer with carries (contract §6)
RESULT_KEYS = ("uid", "state", "exit_code", "stdout", "stderr", "return_value", "error",
               "exception")
#: prefixes of pickled values in string form
PICKLE_PREFIXES = ("cloudpickle::", "pickle::")
#: stdout/stderr longer than this are cut in notifications (the full text stays available
#: through `task/{sid}/{uid}`); the record then carries ``<field>_truncated: true``
NOTIFY_OUTPUT_LIMIT = 256 * 1024
#: longest accepted uid
MAX_UID = 256

#: what a client may echo back from a previous result: ignored on input
_IGNORED = frozenset({
    "state", "stdout", "stderr", "exit_code", "return_value", "response", "exception",
    "error", "traceback", "task_type", "future", "pid", "_return_value_encoding",
    "stdout_truncated", "stderr_truncated", "sid",
})
#: top-level shortcuts merged into task_backend_specific_kwargs (the portal's form fields)
_SHORTCUTS = ("cwd", "env", "shell", "timeout", "ranks", "type")
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?$")
_UID_BAD = re.compile(r"[\x00-\x1f\x7f/]")
_NO_RESULT = {"state": None, "stdout": None, "stderr": None, "exit_code": None,
              "return_value": None, "exception": None}


class TaskSpecError(ValueError):
    """A task spec the edge refuses; `status` is the HTTP status to answer with."""

    def __init__(self, detail: str, status: int = 422) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


# -- functions --------------------------------------------------------------------------
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
                "RADICAL_EDGE_ALLOW_PICKLE=true to allow them for authenticated callers); "
                "name the function by import path ('package.module:function') instead")
    if not auth:
        return ("pickled functions/arguments are accepted only from callers that present "
                "the bridge's token; name the function by import path "
                "('package.module:function') instead")
    return None


# -- validation -------------------------------------------------------------------------
class _Bad(Exception):
    """A problem with one task; `normalize_batch` adds which task it was."""

    def __init__(self, msg: str, status: int = 422) -> None:
        super().__init__(msg)
        self.msg = msg
        self.status = status


def _where(index: int, uid: Any) -> str:
    return f"task {index}" + (f" (uid {uid!r})" if isinstance(uid, str) else "")


_SHORTCUT_SET = frozenset(_SHORTCUTS) | {"task_backend_specific_kwargs"}


def _backend_kwargs(raw: dict) -> dict:
    if _SHORTCUT_SET.isdisjoint(raw):
        return {}
    tbsk = raw.get("task_backend_specific_kwargs")
    if tbsk is None:
        tbsk = {}
    elif not isinstance(tbsk, dict):
        raise _Bad("task_backend_specific_kwargs must be an object")
    else:
        tbsk = dict(tbsk)
    for key in _SHORTCUTS:
        if key in raw and key not in tbsk:
            tbsk[key] = raw[key]
    # the portal's form sends '' for empty fields
    for key in ("timeout", "ranks", "cwd", "type"):
        if tbsk.get(key, 0) in ("", None):
            tbsk.pop(key, None)
    if "cwd" in tbsk and not isinstance(tbsk["cwd"], str):
        raise _Bad("cwd must be a string")
    if "env" in tbsk:
        env = tbsk["env"]
        if env is None:
            tbsk.pop("env")
        elif not isinstance(env, dict) or not all(isinstance(k, str) for k in env):
            raise _Bad("env must be an object of strings")
        else:
            tbsk["env"] = {k: v if isinstance(v, str) else str(v) for k, v in env.items()}
    if "shell" in tbsk and not isinstance(tbsk["shell"], bool):
        raise _Bad("shell must be true or false")
    if "timeout" in tbsk:
        t = tbsk["timeout"]
        if isinstance(t, str):
            try:
                t = float(t)
            except ValueError:
                raise _Bad("timeout must be a number of seconds") from None
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
            raise _Bad("timeout must be a positive number of seconds")
        tbsk["timeout"] = float(t)
    if "ranks" in tbsk:
        r = tbsk["ranks"]
        if isinstance(r, str) and r.isdigit():
            r = int(r)
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise _Bad("ranks must be a positive integer")
        tbsk["ranks"] = r
    return tbsk


def _str_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise _Bad(f"{name} must be a list, got {type(value).__name__}")
    out = []
    for item in value:
        if type(item) is str:
            out.append(item)
        elif isinstance(item, str):
            out.append(str(item))
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            out.append(str(item))
        else:
            raise _Bad(f"{name} must hold strings or numbers, got {type(item).__name__}")
    return out


def normalize_batch(raw_tasks: Any, *, backends: list[str], functions: FunctionResolver,
                    allow_pickle: bool, auth: bool, known: Any, new_uid: Callable[[], str],
                    no_ai: frozenset[str] = frozenset({"concurrent"})) -> list[dict]:
    """Validate a whole batch (all or nothing) and return rhapsody task dicts.

    `known` is a container of uids the session already has (a duplicate answers 409).
    Import paths are resolved through `functions` (resolve them off the event loop first,
    see `import_paths`; unresolvable ones raise here).  Raises `TaskSpecError` naming the
    offending task by index and uid.
    """
    if not isinstance(raw_tasks, list):
        raise TaskSpecError("expected {\"tasks\": [...]} with a list of task objects", 422)
    ctx = _Ctx(backends, functions, pickle_refusal(allow_pickle, auth), no_ai)
    seen: set[str] = set()
    out: list[dict] = []
    append = out.append
    for index, raw in enumerate(raw_tasks):
        try:
            if type(raw) is not dict:
                if not isinstance(raw, dict):
                    raise _Bad(f"expected an object, got {type(raw).__name__}")
            uid = raw.get("uid")
            if uid is None:
                uid = new_uid()
            elif type(uid) is not str or not uid or len(uid) > MAX_UID or _UID_BAD.search(uid):
                raise _Bad(f"uid must be a non-empty string of at most {MAX_UID} "
                           "characters without '/' or control characters")
            if uid in seen:
                raise _Bad("uid appears twice in this batch", 409)
            if uid in known:
                raise _Bad("a task with this uid already exists in the session", 409)
            seen.add(uid)
            append(_normalize_one(raw, uid, ctx))
        except _Bad as exc:
            where = _where(index, raw.get("uid") if isinstance(raw, dict) else None)
            raise TaskSpecError(f"{where}: {exc.msg}", exc.status) from None
        except TaskSpecError as exc:
            raise TaskSpecError(f"{_where(index, raw.get('uid'))}: {exc.detail}",
                                exc.status) from None
    return out


class _Ctx:
    __slots__ = ("backends", "default", "functions", "refusal", "no_ai")

    def __init__(self, backends: list[str], functions: FunctionResolver,
                 refusal: str | None, no_ai: frozenset[str]) -> None:
        self.backends = backends
        self.default = backends[0]
        self.functions = functions
        self.refusal = refusal
        self.no_ai = no_ai


#: keys of the common function task that `_normalize_one` handles on its fast path
_FAST_FN_KEYS = frozenset({"uid", "function", "args", "kwargs", "backend"})


def _normalize_one(raw: dict, uid: str, ctx: _Ctx) -> dict:
    function = raw.get("function")
    if type(function) is str and raw.keys() <= _FAST_FN_KEYS:
        # fast path: {uid, function: "mod:f", args?, kwargs?, backend?} (10k-task batches)
        resolved = ctx.functions.cached(function)
        args = raw.get("args")
        kwargs = raw.get("kwargs")
        backend = raw.get("backend") or ctx.default
        if (resolved is not None and (args is None or type(args) is list)
                and (kwargs is None or (type(kwargs) is dict and not kwargs))
                and backend in ctx.backends):
            return {"uid": uid, "backend": backend, "state": None, "stdout": None,
                    "stderr": None, "exit_code": None, "return_value": None,
                    "exception": None, "executable": None, "function": resolved,
                    "arguments": [], "args": tuple(args) if args else (), "kwargs": {},
                    "task_backend_specific_kwargs": {}, "capture_stdio": False,
                    "input_files": None, "output_files": None}
    backend = raw.get("backend")
    if backend is None or backend == "":
        backend = ctx.default
    elif backend not in ctx.backends:
        raise _Bad(f"backend {backend!r} is not part of this session "
                   f"(it has {', '.join(ctx.backends)})")
    executable = raw.get("executable")
    task: dict[str, Any] = {"uid": uid, "backend": backend, "state": None, "stdout": None,
                            "stderr": None, "exit_code": None, "return_value": None,
                            "exception": None}
    if executable is not None:
        if function is not None:
            raise _Bad("give either 'executable' or 'function', not both")
        if not isinstance(executable, str) or not executable.strip():
            raise _Bad("executable must be a non-empty string")
        task["executable"] = executable
        task["function"] = None
        arguments = raw.get("arguments")
        task["arguments"] = _str_list(arguments, "arguments") if arguments else []
        task["args"] = ()
        task["kwargs"] = {}
    elif function is not None:
        args = raw.get("args")
        kwargs = raw.get("kwargs")
        pickled_fields = raw.get("_pickled_fields")
        if type(function) is str and not function.startswith(PICKLE_PREFIXES):
            resolved = ctx.functions.cached(function)
            function = resolved if resolved is not None else ctx.functions.resolve(function)
        elif is_pickled(function):
            if ctx.refusal:
                raise _Bad(ctx.refusal, 403)
            function = load_pickled(function, "function")
            if not callable(function):
                raise _Bad(f"the pickled function is a {type(function).__name__}, "
                           "not a callable")
        else:
            raise _Bad("function must be an import path ('package.module:function') or a "
                       "pickled callable")
        if pickled_fields:
            if not isinstance(pickled_fields, list) or not set(pickled_fields) <= {
                    "function", "args", "kwargs"}:
                raise _Bad("_pickled_fields may only name 'function', 'args' and 'kwargs'")
        else:
            pickled_fields = ()
        if "args" in pickled_fields or is_pickled(args):
            if ctx.refusal:
                raise _Bad(ctx.refusal, 403)
            args = load_pickled(args, "args")
        if "kwargs" in pickled_fields or is_pickled(kwargs):
            if ctx.refusal:
                raise _Bad(ctx.refusal, 403)
            kwargs = load_pickled(kwargs, "kwargs")
        if args is None:
            args = ()
        elif not isinstance(args, (list, tuple)):
            raise _Bad(f"args must be a list, got {type(args).__name__}")
        if kwargs is None:
            kwargs = {}
        elif not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise _Bad("kwargs must be an object with string keys")
        task["executable"] = None
        task["function"] = function
        task["arguments"] = []
        task["args"] = tuple(args)
        task["kwargs"] = kwargs
    elif raw.get("prompt") is not None:
        prompt = raw["prompt"]
        if backend in ctx.no_ai:
            raise _Bad(f"backend {backend!r} runs executables and functions only, not AI "
                       "(prompt) tasks")
        if not isinstance(prompt, (str, list)):
            raise _Bad("prompt must be a string or a list of strings")
        for key, value in raw.items():
            if key not in _IGNORED and key not in task:
                task[key] = value
        task["response"] = None
        task["task_backend_specific_kwargs"] = _backend_kwargs(raw)
        return task
    else:
        raise _Bad("a task needs an 'executable' or a 'function'")

    task["task_backend_specific_kwargs"] = _backend_kwargs(raw)
    capture = raw.get("capture_stdio", False)
    if capture is not False and not isinstance(capture, bool):
        if capture is None:
            capture = False
        else:
            raise _Bad("capture_stdio must be true or false")
    task["capture_stdio"] = capture
    for key in ("input_files", "output_files"):
        value = raw.get(key)
        task[key] = None if value is None else _str_list(value, key)
    name = raw.get("name")
    if name is not None:
        if not isinstance(name, str):
            raise _Bad("name must be a string")
        task["name"] = name
    return task


def import_paths(raw_tasks: Any) -> set[str]:
    """Import-path functions named in a raw batch (to resolve off the event loop first)."""
    paths: set[str] = set()
    if isinstance(raw_tasks, list):
        for raw in raw_tasks:
            if isinstance(raw, dict):
                fn = raw.get("function")
                if isinstance(fn, str) and not fn.startswith(PICKLE_PREFIXES):
                    paths.add(fn)
    return paths


# -- results ----------------------------------------------------------------------------
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
    """The JSON-safe result dict of a rhapsody task (contract §6 keys, and a few more)."""
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
    pid = get("pid")
    if pid is not None:
        out["pid"] = pid
    if sid is not None:
        out["sid"] = sid
    return out


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


# -- storage ----------------------------------------------------------------------------
_STATES = ("DONE", "FAILED", "CANCELED")
_STATE_CODE = {s: i for i, s in enumerate(_STATES)}


class ResultStore:
    """Finished tasks' JSON records, packed into large buffers.

    One small `bytes` per task would put tens of thousands of long-lived objects into
    CPython's small-object arenas, among the short-lived objects of every request; an arena
    is only returned to the OS once *all* its objects are gone, so after the session closes
    the edge would keep much of that memory.  Here records are appended to 256 KiB
    `bytearray` segments (ordinary heap memory, handed back by `malloc_trim`), and each uid
    maps to one int packing segment, offset, length and final state.
    """

    SEGMENT = 1 << 18

    def __init__(self) -> None:
        self._segments: list[bytearray] = [bytearray()]
        self._big: list[bytes] = []  # records larger than a segment
        self._where: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, uid: object) -> bool:
        return uid in self._where

    def add(self, uid: str, state: str, data: bytes) -> None:
        size = len(data)
        if size >= self.SEGMENT:
            self._big.append(data)
            segment, offset = -len(self._big), 0
        else:
            current = self._segments[-1]
            if len(current) + size > self.SEGMENT:
                current = bytearray()
                self._segments.append(current)
            offset = len(current)
            current += data
            segment = len(self._segments) - 1
        # segment (signed) | offset (18 bits) | length (24 bits) | state (2 bits)
        self._where[uid] = (((segment << 18 | offset) << 24 | min(size, (1 << 24) - 1)) << 2
                            | _STATE_CODE[state])

    def state(self, uid: str) -> str | None:
        code = self._where.get(uid)
        return None if code is None else _STATES[code & 3]

    def get(self, uid: str) -> bytes | None:
        code = self._where.get(uid)
        return None if code is None else self._read(code)

    def _read(self, code: int) -> bytes:
        code >>= 2
        size = code & ((1 << 24) - 1)
        code >>= 24
        offset = code & ((1 << 18) - 1)
        segment = code >> 18
        if segment < 0:
            return self._big[-segment - 1]
        return memoryview(self._segments[segment])[offset:offset + size].tobytes()

    def records(self) -> list[bytes]:
        return [self._read(code) for code in self._where.values()]

    def clear(self) -> None:
        self._segments = [bytearray()]
        self._big = []
        self._where = {}
