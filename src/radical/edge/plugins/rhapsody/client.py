"""Client of the rhapsody plugin: submit tasks to an edge, wait for them, cancel them.

Imports only the SDK and the standard library (msgpack and cloudpickle are used when
installed, never required), so it works on a laptop without rhapsody-py as long as tasks
are plain dicts.  rhapsody's `ComputeTask` objects (dict subclasses) work too.

Completion is push-based: the client follows the bridge's event stream
(``task_status`` / ``task_status_batch`` notifications of its own session) and
`wait_tasks` returns as soon as every requested task has reported a terminal state.  If
the stream is unavailable, or stays silent while tasks are missing, it falls back to
polling the ``wait`` snapshot route, so a lost notification can delay a result but never
lose it.
"""
from __future__ import annotations

import base64
import itertools
import logging
import pickle
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

from radical.edge.sdk.errors import EdgeError, EdgeTimeoutError
from radical.edge.sdk.plugin import PluginClient

try:  # optional: smaller and faster bodies than JSON
    import msgpack as _msgpack
except ImportError:  # pragma: no cover - exercised on bare laptops
    _msgpack = None

__all__ = ["RhapsodyClient", "encode_function", "TERMINAL_STATES"]

log = logging.getLogger("radical.edge.sdk.rhapsody")

TERMINAL_STATES = frozenset({"DONE", "FAILED", "CANCELED"})
#: result fields a client never needs to send back
_RESULT_FIELDS = ("state", "stdout", "stderr", "exit_code", "return_value", "response",
                  "exception", "error", "traceback", "task_type", "pid",
                  "_return_value_encoding", "stdout_truncated", "stderr_truncated")
TIMEOUT_HEADER = "X-Radical-Timeout"


def _import_path(func: Callable) -> str | None:
    """``module:qualname`` if `func` can be imported by that name (else None)."""
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    try:
        import importlib

        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
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


def _decode(record: dict) -> dict:
    """A copy of a task record with a base64 return value turned back into bytes."""
    if record.get("_return_value_encoding") == "base64":
        record = dict(record)
        record["return_value"] = base64.b64decode(record["return_value"])
        del record["_return_value_encoding"]
    return record


class _Waiter:
    __slots__ = ("missing", "event")

    def __init__(self, missing: set[str]) -> None:
        self.missing = missing
        self.event = threading.Event()


class RhapsodyClient(PluginClient):
    """Client-side interface of the rhapsody plugin (see the module doc)."""

    #: most tasks per submit request (larger batches are split and sent in parallel)
    submit_chunk = 4096
    #: submit requests in flight at once for one `submit_tasks` call
    submit_parallel = 4
    #: seconds a submit request may take on the edge
    submit_timeout = 600.0
    #: while waiting with the event stream up: poll for missing tasks after this much silence
    poll_idle = 5.0
    #: uids per ``wait`` snapshot request when polling
    poll_chunk = 10_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._status_cond = threading.Condition(self._lock)
        self._session_status: dict[str, dict] = {}
        self._completed: dict[str, dict] = {}
        self._waiters: list[_Waiter] = []
        self._listening = False
        self._sse_ok = False
        self._uid_prefix = f"task.{uuid.uuid4().hex[:8]}"
        self._uids = itertools.count(1)
        self._pool: ThreadPoolExecutor | None = None
        self._last_note = 0.0
        self.use_msgpack = _msgpack is not None

    # -- notifications ----------------------------------------------------------------------
    def _listen(self, timeout: float) -> bool:
        """Subscribe to this plugin's notifications (once); True when the stream is up."""
        if self._bc is None or not self._edge_id or not self._plugin_name:
            return False
        if not self._listening:
            for topic in ("session_status", "task_status", "task_status_batch"):
                self.register_notification_callback(self._on_notification, topic)
            self._listening = True
        try:
            self._sse_ok = self._bc.wait_for_listener(timeout)
        except Exception as exc:
            log.debug("event stream unavailable: %s", exc)
            self._sse_ok = False
        return self._sse_ok

    def _on_notification(self, edge: str, plugin: str, topic: str, data: Any) -> None:
        """SSE listener thread: record session states and finished tasks of this session."""
        if not isinstance(data, dict):
            return
        if topic == "session_status":
            with self._status_cond:
                sid = data.get("sid")
                if sid:
                    self._session_status[sid] = data  # other clients' sessions too: bounded
                    while len(self._session_status) > 256:
                        self._session_status.pop(next(iter(self._session_status)))
                    self._status_cond.notify_all()
            return
        if data.get("sid") != self._sid:
            return
        if topic == "task_status_batch":
            records = data.get("tasks") or []
        else:
            records = [data]
        self._last_note = time.monotonic()
        self._record(records)

    def _record(self, records: Iterable[dict]) -> None:
        with self._lock:
            completed = self._completed
            waiters = self._waiters
            for record in records:
                if not isinstance(record, dict) or record.get("state") not in TERMINAL_STATES:
                    continue
                uid = record.get("uid")
                if uid is None or uid in completed:
                    continue
                completed[uid] = record
                for waiter in waiters:
                    missing = waiter.missing
                    if uid in missing:
                        missing.discard(uid)
                        if not missing:
                            waiter.event.set()

    # -- session ----------------------------------------------------------------------------
    def register_session(self, backends: list[str] | str | None = None,
                         init_timeout: float = 120, notify_batch_window: float | None = None,
                         notify_batch_size: int | None = None, **kwargs: Any) -> dict:
        """Open a session and block until the edge reports it ready.

        The edge builds the backends in the background and announces the outcome with a
        ``session_status`` notification; without an event stream this polls
        ``session_status/{sid}``.  Raises `EdgeError` if initialization fails and
        `EdgeTimeoutError` after `init_timeout` seconds (the session is closed then).
        """
        body: dict[str, Any] = dict(kwargs)
        if backends is not None:
            body["backends"] = [backends] if isinstance(backends, str) else list(backends)
        if notify_batch_window is not None:
            body["notify_batch_window"] = notify_batch_window
        if notify_batch_size is not None:
            body["notify_batch_size"] = notify_batch_size
        deadline = time.monotonic() + init_timeout
        self._listen(min(15.0, max(1.0, init_timeout)))
        with self._lock:
            self._completed.clear()
        answer = super().register_session(**body)
        sid = answer["sid"]
        try:
            status = self._await_status(sid, deadline)
        except BaseException:
            self._discard_session()
            raise
        if status.get("status") != "ready":
            self._discard_session()
            raise EdgeError(409, f"rhapsody session {sid} failed to initialize: "
                                 f"{status.get('error')}", edge=self._edge_id,
                            plugin=self._plugin_name)
        return {**answer, **{k: v for k, v in status.items() if k in ("status", "backends")}}

    def _await_status(self, sid: str, deadline: float) -> dict:
        interval = 2.0 if self._sse_ok else 0.05  # polling is the fallback with a stream
        next_poll = time.monotonic() + (interval if self._sse_ok else 0.0)
        while True:
            with self._status_cond:
                status = self._session_status.get(sid)
            if status is not None and status.get("status") in ("ready", "failed"):
                return status
            now = time.monotonic()
            if now >= deadline:
                raise EdgeTimeoutError(None, f"rhapsody session {sid} not ready in time",
                                       edge=self._edge_id, plugin=self._plugin_name)
            if now >= next_poll:
                polled = self._get(f"session_status/{sid}")
                if isinstance(polled, dict) and polled.get("status") in ("ready", "failed"):
                    return polled
                if not self._sse_ok:
                    interval = min(interval * 2, 1.0)
                next_poll = time.monotonic() + interval
            with self._status_cond:
                if sid not in self._session_status:
                    self._status_cond.wait(max(0.001, min(next_poll, deadline)
                                               - time.monotonic()))

    def _discard_session(self) -> None:
        try:
            self.unregister_session()
        except Exception as exc:
            log.debug("could not close the failed session: %s", exc)
            self._sid = None

    def session_status(self) -> dict:
        """``{"sid", "status", "error", "backends", counts...}`` of the current session."""
        return self._get(f"session_status/{self._require_sid()}")

    # -- tasks ------------------------------------------------------------------------------
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

    def _submit_chunk(self, sid: str, tasks: list[dict]) -> list[dict]:
        content, ctype = self._encode(tasks)
        answer = self._request("POST", f"submit/{sid}", content=content,
                               headers={"Content-Type": ctype,
                                        TIMEOUT_HEADER: str(self.submit_timeout)},
                               timeout=self.submit_timeout + 30)
        if not isinstance(answer, list):
            raise EdgeError(None, f"submit answered {type(answer).__name__}, not a list",
                            edge=self._edge_id, plugin=self._plugin_name)
        self._record(answer)  # small batches come back already finished
        return answer

    def submit_tasks(self, task_dicts: list[dict]) -> list[dict]:
        """Submit tasks; returns ``[{"uid", "state"}, ...]`` in input order.

        UIDs are assigned here when absent (and written into the given dicts), so the
        caller can wait for them at once.  Batches larger than `submit_chunk` go out as
        several requests in parallel; if one of them is refused (e.g. a bad spec answers
        422) the error is raised, and tasks of the other requests may have been accepted.
        """
        sid = self._require_sid()
        wire = [self._wire(t) for t in task_dicts]
        if not wire:
            return []
        chunks = [wire[i:i + self.submit_chunk] for i in range(0, len(wire), self.submit_chunk)]
        if len(chunks) == 1:
            return self._submit_chunk(sid, chunks[0])
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.submit_parallel,
                                            thread_name_prefix="rhapsody-submit")
        futures = [self._pool.submit(self._submit_chunk, sid, c) for c in chunks]
        out: list[dict] = []
        error: BaseException | None = None
        for fut in futures:
            try:
                out.extend(fut.result())
            except BaseException as exc:  # wait for the others before raising
                error = error or exc
        if error is not None:
            raise error
        return out

    def wait_tasks(self, uids: list[str] | list[dict], timeout: float | None = None
                   ) -> list[dict]:
        """Block until every task in `uids` is DONE, FAILED or CANCELED; return their dicts.

        Completion comes from the event stream; missing tasks are polled after
        `poll_idle` seconds without news (or continuously without a stream).  Raises
        `TimeoutError` after `timeout` seconds.  ``return_value`` bytes are restored.
        """
        sid = self._require_sid()
        wanted = [u if isinstance(u, str) else u["uid"] for u in uids]
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            missing = {u for u in wanted if u not in self._completed}
            waiter = _Waiter(missing)
            if missing:
                self._waiters.append(waiter)
        try:
            poll_every = self.poll_idle if self._sse_ok else 0.05
            last_size = -1
            last_change = time.monotonic()
            while True:
                with self._lock:
                    size = len(waiter.missing)
                if size == 0:
                    break
                now = time.monotonic()
                if size != last_size:
                    last_size, last_change = size, now
                if deadline is not None and now >= deadline:
                    raise TimeoutError(f"{size} of {len(wanted)} tasks not finished after "
                                       f"{timeout:g} s")
                if now - last_change >= poll_every:
                    self._poll(sid, waiter)
                    last_change = time.monotonic()
                    if not self._sse_ok:
                        poll_every = min(poll_every * 1.5, 1.0)
                    continue
                step = last_change + poll_every - now
                if deadline is not None:
                    step = min(step, deadline - now)
                waiter.event.wait(max(step, 0.001))
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        with self._lock:
            records = [self._completed[u] for u in wanted]
        return [self._full(r) for r in records]

    def _poll(self, sid: str, waiter: _Waiter) -> None:
        with self._lock:
            missing = list(waiter.missing)
        for i in range(0, len(missing), self.poll_chunk):
            answer = self._post(f"wait/{sid}", {"uids": missing[i:i + self.poll_chunk]})
            if isinstance(answer, list):
                self._record(answer)

    def _full(self, record: dict) -> dict:
        """Fetch the complete record when the notification carried cut output."""
        if record.get("stdout_truncated") or record.get("stderr_truncated"):
            full = self._get(f"task/{self._require_sid()}/{record['uid']}")
            if isinstance(full, dict):
                with self._lock:
                    self._completed[record["uid"]] = full
                record = full
        return _decode(record)

    def list_tasks(self) -> dict:
        """``{"tasks": [task dicts]}`` for every task of the session."""
        return self._get(f"list_tasks/{self._require_sid()}")

    def get_task(self, uid: str) -> dict:
        """The current dict of one task (``return_value`` bytes restored)."""
        return _decode(self._get(f"task/{self._require_sid()}/{uid}"))

    def cancel_task(self, uid: str) -> dict:
        """Cancel one task (a running executable's process group is killed)."""
        return self._post(f"cancel/{self._require_sid()}/{uid}")

    def cancel_all_tasks(self) -> dict:
        """Cancel every unfinished task of the session; ``{"canceled": n}``."""
        return self._post(f"cancel_all/{self._require_sid()}")

    def forget(self, uids: Iterable[str] | None = None) -> None:
        """Drop finished task records kept by this client (all when `uids` is None)."""
        with self._lock:
            if uids is None:
                self._completed.clear()
            else:
                for uid in uids:
                    self._completed.pop(uid, None)

    # -- life cycle -------------------------------------------------------------------------
    def unregister_session(self) -> None:
        super().unregister_session()
        with self._lock:
            self._completed.clear()

    def close(self) -> None:
        super().close()  # drops our notification callbacks too
        self._listening = False
        with self._lock:
            self._completed.clear()
            self._session_status.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


def _plain(value: Any) -> bool:
    """True if `value` is made of JSON/msgpack-able plain data only."""
    if value is None or isinstance(value, (str, int, float, bool, bytes)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False
