"""One logging setup for bridges, edges and Flower: one line per record, with context.

Lifecycle (start, stop, joins, leaves) is INFO, trouble WARNING/ERROR. Every record carries
the process's edge name and, inside a plugin call, the plugin and call id (`log_context`),
so a line found in a log says where it came from. `--log-json` (RADICAL_EDGE_LOG_JSON)
writes JSON lines for log shippers. Tracebacks are kept for DEBUG; at other levels an
exception is folded into its one line (`... | ValueError: bad`) so logs stay greppable.

Celery's "running the worker with superuser privileges" warning is filtered: edges never
accept pickle (the case that warning is about), and containers and test machines run as
root by design; it would otherwise print seven lines at every start.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
import time
import warnings
from typing import Any, Iterator

#: per-call context (plugin, call id), set around a call's handler on the plugin loop
_CALL: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "radical_edge_call", default=None)
#: per-process context (component, edge name)
_PROCESS: dict[str, str] = {}

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def log_context(**fields: str) -> Iterator[None]:
    """Add `fields` (e.g. plugin=, call=) to every record logged inside the block."""
    token = _CALL.set({**(_CALL.get() or {}), **fields})
    try:
        yield
    finally:
        _CALL.reset(token)


def set_call_context(**fields: str) -> None:
    """Set `fields` for the rest of the current task (each plugin call is its own task, so
    this never leaks into another call)."""
    _CALL.set({k: v for k, v in fields.items() if v})


def set_process_context(**fields: str) -> None:
    """Fields of every record of this process (component=bridge|edge, edge=NAME)."""
    _PROCESS.update({k: v for k, v in fields.items() if v})


def context() -> dict[str, str]:
    return {**_PROCESS, **(_CALL.get() or {})}


def _one_line(record: logging.LogRecord, keep_traceback: bool) -> str | None:
    """The exception of `record` as one line (None without one), or its whole traceback."""
    if not record.exc_info or not record.exc_info[1]:
        return None
    if keep_traceback:
        return logging.Formatter().formatException(record.exc_info)
    exc = record.exc_info[1]
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


class TextFormatter(logging.Formatter):
    def __init__(self, keep_traceback: bool) -> None:
        super().__init__(TEXT_FORMAT)
        self.keep_traceback = keep_traceback

    def format(self, record: logging.LogRecord) -> str:
        ctx = context()
        message = super().formatMessage(self._prepare(record))
        if ctx:
            message += " [" + " ".join(f"{k}={v}" for k, v in ctx.items()) + "]"
        exc = _one_line(record, self.keep_traceback)
        if exc:
            message += ("\n" + exc) if self.keep_traceback else f" | {exc}"
        return message

    def _prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record)
        return record


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context fields, exc."""

    def __init__(self, keep_traceback: bool) -> None:
        super().__init__()
        self.keep_traceback = keep_traceback

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                    + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            **context()}
        exc = _one_line(record, self.keep_traceback)
        if exc:
            out["exc"] = exc
        return json.dumps(out, default=str)


def setup_logging(level: str = "INFO", json_lines: bool = False, **process: str) -> None:
    """Configure the root logger (idempotent: replaces handlers a previous call added)."""
    set_process_context(**process)
    level = (level or "INFO").upper()
    keep = level == "DEBUG"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter(keep) if json_lines else TextFormatter(keep))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_radical_edge", False):
            root.removeHandler(old)
    handler._radical_edge = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    if not keep:  # one INFO line per HTTP request (enrollment, tunnels) is noise here
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
    quiet_celery_root_warning()


def signal_safe_say(msg: str, f: Any = None) -> None:
    """Celery's `safe_say` (lines its signal handlers print, e.g. "worker: Warm shutdown"),
    as a record of our format: formatted without any lock and written with one os.write,
    so it is safe inside a signal handler and a JSON log stays all JSON."""
    text = " ".join(str(msg).split())
    if not text:
        return
    record = logging.LogRecord("celery.apps.worker", logging.INFO, __file__, 0, text, None,
                               None)
    handler = next((h for h in logging.getLogger().handlers
                    if getattr(h, "_radical_edge", False)), None)
    line = handler.format(record) if handler is not None else text
    try:
        os.write(2, (line + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def quiet_celery_root_warning() -> None:
    """Drop Celery's superuser warning (see the module doc for why that is safe here)."""
    warnings.filterwarnings("ignore", message=r"(?s).*running the worker with superuser "
                                              r"privileges")
