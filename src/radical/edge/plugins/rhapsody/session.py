"""One client's rhapsody session on the edge: backends, tasks, results, notifications.

Life cycle: ``initializing`` (backends are being built in the background; calls answer 409)
-> ``ready`` or ``failed`` (announced by a ``session_status`` notification) -> ``closed``.

Task bookkeeping: `_live` (uid -> the rhapsody task dict, mutated in place by the backend)
and `_done` (a `ResultStore`: the task's result serialized to JSON once, when it reaches a
terminal state; the same bytes go into the notification and into every later answer as an
`orjson.Fragment`).  Closing
the session cancels every live task (killing executables' process groups), drops both
dicts, rhapsody's own session and the scratch directory.

Submitting: a batch is validated as a whole (first-time imports of task functions off the
event loop), then handed to rhapsody in chunks of `SUBMIT_CHUNK` so the loop keeps
breathing; a tiny batch of function tasks may linger `INLINE_LINGER` s so that the answer
carries results of tasks that finished meanwhile. Building backends lives in `backends`,
scratch dirs and memory release in `housekeeping`.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import shutil
import tempfile
import uuid
from typing import TYPE_CHECKING, Any

import orjson
from starlette.exceptions import HTTPException

from ..base import PluginSession
from .backends import BackendUnavailable, default_backends, known_backends, make_backend
from .errors import TaskSpecError
from .housekeeping import WORK_DIR_PREFIX, release_memory
from .notify import DEFAULT_BATCH, DEFAULT_WINDOW, Coalescer
from .result_store import ResultStore
from .results import TERMINAL, for_notification, shape_task
from .spec import import_paths, normalize_batch

if TYPE_CHECKING:
    from .plugin import RhapsodyPlugin

log = logging.getLogger(__name__)

#: tasks handed to rhapsody per loop turn while submitting a large batch
SUBMIT_CHUNK = 2048
#: batches up to this size get full results (not only uid/state) in the submit answer for
#: tasks that finished while it was being processed (saves the wait for tiny batches)
INLINE_RESULTS_MAX = 64
#: how long the answer to such a batch of function tasks may wait for them to finish (s):
#: a no-op function takes microseconds, a second round trip (the notification) milliseconds
INLINE_LINGER = 0.005


class RhapsodySession(PluginSession):
    """Wraps a `rhapsody.Session`; every method runs on the edge's event loop."""

    def __init__(self, sid: str, backends: list[str] | str | None = None,
                 notify_batch_window: float | None = None,
                 notify_batch_size: int | None = None) -> None:
        super().__init__(sid)
        if backends is None or backends == []:
            names = default_backends()
        elif isinstance(backends, str):
            names = [b.strip() for b in backends.split(",") if b.strip()]
        elif isinstance(backends, list) and all(isinstance(b, str) and b for b in backends):
            names = list(dict.fromkeys(backends))
        else:
            raise ValueError("backends must be a list of backend names")
        if not names:
            raise ValueError("backends must name at least one backend")
        unknown = [n for n in names if n not in known_backends()]
        if unknown:
            raise ValueError(f"unknown backend(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(known_backends()))}")
        window = DEFAULT_WINDOW if notify_batch_window is None else notify_batch_window
        size = DEFAULT_BATCH if notify_batch_size is None else notify_batch_size
        if isinstance(window, bool) or not isinstance(window, (int, float)) or \
                not 0 <= window <= 10:
            raise ValueError("notify_batch_window must be a number of seconds in [0, 10]")
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 100_000:
            raise ValueError("notify_batch_size must be an integer in [1, 100000]")
        self.backend_names = names
        self.notify_window = float(window)
        self.notify_size = int(size)
        self.status = "initializing"
        self.error: str | None = None
        self._rh: Any = None  # rhapsody.Session
        self._backends: dict[str, Any] = {}  # rhapsody backend name -> backend
        self._route: dict[str, str] = {}  # name a task may give -> rhapsody backend name
        self._work_dir: str | None = None
        self._live: dict[str, dict] = {}
        self._done = ResultStore()  # uid -> JSON of the final task dict, and its state
        self._submitting: set[str] = set()  # accepted, not yet handed to rhapsody
        self._coalescer: Coalescer | None = None
        self._init_task: asyncio.Task | None = None
        self._inline_waiters: list[tuple[set[str], asyncio.Future]] = []
        self.submit_lock = asyncio.Lock()
        self._uids = itertools.count(1)
        self._uid_prefix = f"task.{uuid.uuid4().hex[:6]}"
        self.counts = {"submitted": 0, "DONE": 0, "FAILED": 0, "CANCELED": 0}

    @property
    def plugin(self) -> "RhapsodyPlugin":
        assert self._plugin is not None
        return self._plugin  # type: ignore[return-value]

    # -- initialization ---------------------------------------------------------------------
    def start(self) -> None:
        """Begin the asynchronous initialization (called by the plugin after registration)."""
        loop = asyncio.get_running_loop()
        self._coalescer = Coalescer(self._send, loop, window=self.notify_window,
                                    max_batch=self.notify_size, extra={"sid": self.sid})
        self._init_task = loop.create_task(self._initialize())

    async def _initialize(self) -> None:
        try:
            from rhapsody import Session

            self._work_dir = await asyncio.to_thread(
                tempfile.mkdtemp, prefix=f"{WORK_DIR_PREFIX}{os.getpid()}-{self.sid}-")
            backends = []
            for name in self.backend_names:
                backend = await make_backend(name, self.plugin.process_slots,
                                             self.plugin.function_pool)
                backends.append(backend)
                self._backends[backend.name] = backend  # shut down if a later one fails
            self._rh = Session(backends, work_dir=self._work_dir)
            for backend in backends:
                inner = backend._callback_func  # rhapsody's state manager, set by Session

                def on_state(task: dict, state: str, inner: Any = inner) -> None:
                    inner(task, state)
                    self._on_state(task, state)

                backend.register_callback(on_state)
                if hasattr(backend, "on_output"):  # ours: output streams while tasks run
                    backend.on_output = self._on_output
            # tasks name what the client asked for; rhapsody routes by the backend's own
            # name (e.g. dragon_v3 -> dragon)
            self._route = {asked: b.name
                           for asked, b in zip(self.backend_names, backends, strict=True)}
        except asyncio.CancelledError:
            await self._drop_backends()
            raise
        except Exception as exc:
            self.status = "failed"
            self.error = (str(exc) if isinstance(exc, BackendUnavailable)
                          else f"{type(exc).__name__}: {exc}")
            log.warning("rhapsody session %s failed to initialize: %s", self.sid, self.error)
            await self._drop_backends()
            self.notify("session_status", {"sid": self.sid, "status": "failed",
                                           "error": self.error,
                                           "backends": self.backend_names})
            return
        if self.closed:
            return
        self.status = "ready"
        self.notify("session_status", {"sid": self.sid, "status": "ready",
                                       "backends": self.backend_names})

    async def _drop_backends(self) -> None:
        for backend in list(self._backends.values()):
            try:
                await backend.shutdown()
            except Exception:
                log.exception("shutting down backend %s failed", backend)
        self._backends.clear()
        self._rh = None

    def require_ready(self) -> None:
        if self.status == "ready":
            return
        if self.status == "initializing":
            raise HTTPException(409, f"session '{self.sid}' is still initializing; wait for "
                                     "its session_status notification (status 'ready')")
        if self.status == "failed":
            raise HTTPException(409, f"session '{self.sid}' failed to initialize: {self.error}")
        raise HTTPException(409, f"session '{self.sid}' is {self.status}")

    def describe(self) -> dict:
        return {"sid": self.sid, "status": self.status, "error": self.error,
                "backends": self.backend_names, "work_dir": self._work_dir,
                "tasks": len(self._live) + len(self._done),
                "live": len(self._live), **{k.lower(): v for k, v in self.counts.items()}}

    # -- submission (validated as a whole, handed over in chunks) ------------------------
    async def submit(self, raw_tasks: Any, auth: bool) -> list[dict]:
        self.require_ready()
        plugin = self.plugin
        paths = [p for p in import_paths(raw_tasks) if plugin.functions.cached(p) is None]
        if paths:  # first use of these import paths: import off the loop
            await asyncio.to_thread(plugin.functions.resolve_many, paths)
        try:
            tasks = normalize_batch(
                raw_tasks, backends=self.backend_names, functions=plugin.functions,
                allow_pickle=plugin.allow_pickle, auth=auth, known=_Known(self),
                new_uid=self._new_uid)
        except TaskSpecError as exc:
            raise HTTPException(exc.status, exc.detail) from None
        self.require_ready()  # still (the import may have taken a while)
        route = self._route
        for task in tasks:
            task["backend"] = route.get(task["backend"], task["backend"])
            self._live[task["uid"]] = task
        self._submitting.update(t["uid"] for t in tasks)
        self.counts["submitted"] += len(tasks)
        try:
            for start in range(0, len(tasks), SUBMIT_CHUNK):
                chunk = [t for t in tasks[start:start + SUBMIT_CHUNK]
                         if t["state"] not in TERMINAL]  # skip tasks cancelled meanwhile
                if chunk:
                    futures = await self._rh.submit_tasks(chunk)
                    for fut in futures:
                        fut.add_done_callback(_retrieve)
                self._submitting.difference_update(t["uid"] for t in
                                                   tasks[start:start + SUBMIT_CHUNK])
                await asyncio.sleep(0)  # let the loop breathe (and quick tasks finish)
        except Exception as exc:
            # rhapsody refused: fail what was not handed over, so nothing hangs
            log.exception("rhapsody submission failed in session %s", self.sid)
            for task in tasks:
                if task["uid"] in self._submitting and task["uid"] in self._live:
                    task.update({"exception": exc, "error": f"submission failed: {exc}"})
                    self._on_state(task, "FAILED")
            self._submitting.clear()
        if self.closed:
            raise HTTPException(409, f"session '{self.sid}' was closed during the submission")
        inline = len(tasks) <= INLINE_RESULTS_MAX
        if inline and tasks:
            await self._linger(tasks)
        out: list[Any] = []
        done = self._done
        for task in tasks:
            uid = task["uid"]
            state = done.state(uid)
            if state is None:
                out.append({"uid": uid, "state": task.get("state") or "RUNNING"})
            elif inline:
                out.append(orjson.Fragment(done.get(uid)))
            else:
                out.append({"uid": uid, "state": state})
        return out

    async def _linger(self, tasks: list[dict]) -> None:
        """Give a tiny batch of function tasks a few ms to finish before answering."""
        pending = {t["uid"] for t in tasks if t["uid"] in self._live}
        if not pending or any(t.get("function") is None for t in tasks):
            return
        await self._until_done(pending, INLINE_LINGER)

    async def _until_done(self, pending: set[str], timeout: float) -> None:
        """Wait until every uid in `pending` reached a final state, or `timeout` s."""
        fut = asyncio.get_running_loop().create_future()
        entry = (pending, fut)
        self._inline_waiters.append(entry)
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            if entry in self._inline_waiters:
                self._inline_waiters.remove(entry)

    def _new_uid(self) -> str:
        return f"{self._uid_prefix}.{next(self._uids):06d}"

    # -- state changes ----------------------------------------------------------------------
    def _send(self, topic: str, data: dict) -> None:
        self.notify(topic, data)

    def _on_output(self, task: dict, stream: str, offset: int, text: str) -> None:
        """Partial output of a running task (see stream.py), to whoever watches it."""
        uid = task.get("uid")
        if uid in self._live:
            self.notify("task_output", {"sid": self.sid, "uid": uid, "stream": stream,
                                        "offset": offset, "data": text})

    def _on_state(self, task: dict, state: str) -> None:
        uid = task.get("uid")
        if uid not in self._live:
            return  # unknown, or already terminal (a late or duplicate report)
        if state in TERMINAL:
            del self._live[uid]
            task["state"] = state
            record = shape_task(task)
            data = _dumps(record)
            self._done.add(uid, state, data)
            self.counts[state] = self.counts.get(state, 0) + 1
            if self._rh is not None:  # rhapsody keeps every task it saw; we keep the result
                rh_tasks = getattr(self._rh, "_tasks", None)
                if isinstance(rh_tasks, dict):
                    rh_tasks.pop(uid, None)
            if self._coalescer is not None:
                note = for_notification(record)
                self._coalescer.push(data if note is record else _dumps(note), uid, state,
                                     record.get("exit_code"))
                if not self._live:  # the session went idle: nothing left to batch with
                    self._coalescer.hurry()
            if self._inline_waiters:
                for pending, fut in self._inline_waiters:
                    pending.discard(uid)
                    if not pending and not fut.done():
                        fut.set_result(None)
        elif self._coalescer is not None:
            self._coalescer.push(shape_task(task))

    # -- API ----------------------------------------------------------------------------------
    def get(self, uid: str) -> Any:
        """The task dict (an `orjson.Fragment` of it once the task is finished)."""
        done = self._done.get(uid)
        if done is not None:
            return orjson.Fragment(done)
        task = self._live.get(uid)
        if task is None:
            raise HTTPException(404, f"unknown task '{uid}' in session '{self.sid}'")
        return shape_task(task)

    async def wait(self, uids: list[str] | None, timeout: float) -> list[Any]:
        """The named tasks (all when None) once all are finished, or after `timeout` s
        (then as they are). Waits on the loop without blocking it: `_on_state` wakes it."""
        self.snapshot(uids)  # 404 for unknown uids, before waiting for anything
        pending = set(self._live if uids is None else (u for u in uids if u in self._live))
        if pending and timeout > 0:
            await self._until_done(pending, timeout)
        if self.closed:
            raise HTTPException(409, f"session '{self.sid}' was closed while waiting")
        return self.snapshot(uids)

    def snapshot(self, uids: list[str] | None) -> list[Any]:
        if uids is None:
            return self.list()
        missing = [u for u in uids if u not in self._done and u not in self._live]
        if missing:
            shown = ", ".join(repr(u) for u in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise HTTPException(404, f"unknown task(s) {shown}{more} in session '{self.sid}'")
        return [self.get(u) for u in uids]

    def list(self) -> list[Any]:
        return ([shape_task(t) for t in self._live.values()]
                + [orjson.Fragment(d) for d in self._done.records()])

    async def cancel(self, uid: str) -> dict:
        state = self._done.state(uid)
        if state is not None:
            return {"uid": uid, "state": state, "canceled": False}
        task = self._live.get(uid)
        if task is None:
            raise HTTPException(404, f"unknown task '{uid}' in session '{self.sid}'")
        await self._cancel_one(task)
        state = self._done.state(uid) or task.get("state")
        return {"uid": uid, "state": state, "canceled": state == "CANCELED"}

    async def _cancel_one(self, task: dict) -> None:
        uid = task["uid"]
        if uid not in self._submitting:
            backend = self._backends.get(task.get("backend"))
            if backend is not None:
                try:
                    await backend.cancel_task(uid)
                except NotImplementedError:
                    pass
                except Exception:
                    log.exception("cancel of %s in session %s failed", uid, self.sid)
        if uid in self._live:  # the backend could not (or did not know it yet): mark it
            task["state"] = "CANCELED"
            self._on_state(task, "CANCELED")

    async def cancel_all(self) -> dict:
        before = set(self._live)
        for name, backend in list(self._backends.items()):
            if hasattr(backend, "cancel_all_tasks"):
                try:
                    await backend.cancel_all_tasks()
                except Exception:
                    log.exception("cancel_all on backend %s failed", name)
        for uid in list(self._live):
            await self._cancel_one(self._live[uid])
        canceled = sum(1 for uid in before if self._done.state(uid) == "CANCELED")
        return {"canceled": canceled}

    @property
    def busy(self) -> bool:
        return bool(self._live)

    def running_processes(self) -> int:
        backend = self._backends.get("concurrent")
        return getattr(backend, "running_processes", 0) if backend is not None else 0

    # -- close ------------------------------------------------------------------------------
    async def close(self) -> dict:
        if self.closed:
            return {}
        await super().close()
        if self._init_task is not None and not self._init_task.done():
            self._init_task.cancel()
            try:
                await self._init_task
            except (asyncio.CancelledError, Exception):
                pass
        canceled = 0
        if self._live:
            canceled = (await self.cancel_all())["canceled"]
        if self._rh is not None:
            try:
                await self._rh.close()  # shuts every backend down
            except Exception:
                log.exception("closing rhapsody session of %s failed", self.sid)
        if self._coalescer is not None:
            self._coalescer.close()
        for _pending, fut in self._inline_waiters:  # waiters answer now (409: closed)
            if not fut.done():
                fut.set_result(None)
        n_tasks = len(self._live) + len(self._done)
        self.status = "closed"
        self._rh = None
        self._backends.clear()
        self._live.clear()
        self._done.clear()
        self._submitting.clear()
        if self._work_dir:
            await asyncio.to_thread(shutil.rmtree, self._work_dir, True)
            self._work_dir = None
        if n_tasks >= 1000:
            await release_memory()
        return {"canceled": canceled, "tasks": n_tasks}

    @property
    def work_dir(self) -> str | None:
        return self._work_dir


class _Known:
    """`uid in known` over both task dicts, without building a set."""

    __slots__ = ("_s",)

    def __init__(self, session: RhapsodySession) -> None:
        self._s = session

    def __contains__(self, uid: object) -> bool:
        return uid in self._s._live or uid in self._s._done


def _retrieve(fut: asyncio.Future) -> None:
    """Consume rhapsody's per-task future outcome (no 'exception never retrieved' logs)."""
    if not fut.cancelled():
        fut.exception()


def _dumps(record: dict) -> bytes:
    """JSON of a result, in a right-sized bytes object: orjson's own output keeps its
    4 KiB working buffer, 20x what a typical task record needs (10k tasks: 40 MB)."""
    return memoryview(orjson.dumps(record, default=repr,
                                   option=orjson.OPT_SERIALIZE_NUMPY
                                   | orjson.OPT_NON_STR_KEYS)).tobytes()
