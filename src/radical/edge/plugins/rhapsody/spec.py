"""Task specs in: validation and normalisation of what a client submits.

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

`function` is either an import path (``module:qualname``) the edge's allow-list permits
(else 403, see `allowlist`) or a pickled callable (``"cloudpickle::<base64>"`` /
``"pickle::<base64>"``, or raw bytes in msgpack), accepted only when the edge opts in
(`allow_pickle`) *and* the caller may (`callables.caller_may_unpickle`), and run only on the
``concurrent`` backend, whose worker process unpickles it (the edge never does).
``_pickled_fields`` may name ``args``/``kwargs`` carried the same way (same rule); any other
bytes in args/kwargs are plain ``bytes``.  The task's ``function`` is a `FunctionRef`.
Result keys a client echoes back (``state``, ``stdout``, ...) are ignored.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from .callables import (PICKLE_PREFIXES, FunctionRef, FunctionResolver, is_pickled,
                        pickle_refusal, pickled_blob)
from .errors import TaskSpecError

__all__ = ["MAX_UID", "normalize_batch", "import_paths", "REMOTE_BACKEND"]

#: what rhapsody's remote (edge) backends put in `backend`: run on the session's default
REMOTE_BACKEND = "edge"

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
_UID_BAD = re.compile(r"[\x00-\x1f\x7f/]")
_NO_RESULT = {"state": None, "stdout": None, "stderr": None, "exit_code": None,
              "return_value": None, "exception": None}


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
        if backend == REMOTE_BACKEND:
            backend = ctx.default
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
    if backend is None or backend == "" or backend == REMOTE_BACKEND:
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
        if pickled_fields:
            if not isinstance(pickled_fields, list) or not set(pickled_fields) <= {
                    "function", "args", "kwargs"}:
                raise _Bad("_pickled_fields may only name 'function', 'args' and 'kwargs'")
        else:
            pickled_fields = ()
        pickled = False
        if type(function) is str and not function.startswith(PICKLE_PREFIXES):
            resolved = ctx.functions.cached(function)
            function = resolved if resolved is not None else ctx.functions.resolve(function)
        elif is_pickled(function):
            if ctx.refusal:
                raise _Bad(ctx.refusal, 403)
            function = FunctionRef(blob=pickled_blob(function, "function"))
            pickled = True
        else:
            raise _Bad("function must be an import path ('package.module:function') or a "
                       "pickled callable")
        # args/kwargs are plain data (msgpack bin = bytes); pickled only when named so
        for key in ("args", "kwargs"):
            value = args if key == "args" else kwargs
            if key in pickled_fields or (isinstance(value, str)
                                         and value.startswith(PICKLE_PREFIXES)):
                if ctx.refusal:
                    raise _Bad(ctx.refusal, 403)
                task[f"_{key}_blob"] = pickled_blob(value, key)
                pickled = True
                if key == "args":
                    args = None
                else:
                    kwargs = None
        if pickled and backend != "concurrent":
            raise _Bad("pickled functions/arguments run only on the 'concurrent' backend "
                       f"(in a worker process), not on {backend!r}")
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
