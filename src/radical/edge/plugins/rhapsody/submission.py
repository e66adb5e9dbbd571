"""Submitting a batch of tasks to a rhapsody session (`SubmissionMixin` of `RhapsodySession`).

The batch is validated as a whole (first-time imports of task functions off the event loop),
then handed to rhapsody in chunks of `SUBMIT_CHUNK` so the loop keeps breathing.  A tiny
batch of function tasks may linger for `INLINE_LINGER` s so that the answer can carry the
results of tasks that finished meanwhile (saving the client the wait for a notification).
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson
from starlette.exceptions import HTTPException

from .errors import TaskSpecError
from .results import TERMINAL
from .spec import import_paths, normalize_batch

if TYPE_CHECKING:
    from .session import RhapsodySession

__all__ = ["SUBMIT_CHUNK", "INLINE_RESULTS_MAX", "INLINE_LINGER", "SubmissionMixin"]

log = logging.getLogger("radical.edge.plugins.rhapsody.session")  # part of the session

#: tasks handed to rhapsody per loop turn while submitting a large batch
SUBMIT_CHUNK = 2048
#: batches up to this size get full results (not only uid/state) in the submit answer for
#: tasks that finished while it was being processed (saves the wait for tiny batches)
INLINE_RESULTS_MAX = 64
#: how long the answer to such a batch of function tasks may wait for them to finish (s):
#: a no-op function takes microseconds, a second round trip (the notification) milliseconds
INLINE_LINGER = 0.005


class SubmissionMixin:
    """`submit` and its helpers, mixed into `RhapsodySession`: they fill its task tables
    (`_live`, `_submitting`, `counts`), read `_done`, and report through its `_on_state`."""

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
                # the original acked "RUNNING" for a task handed to the backend: never null
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
        fut = asyncio.get_running_loop().create_future()
        entry = (pending, fut)
        self._inline_waiters.append(entry)
        try:
            await asyncio.wait_for(fut, INLINE_LINGER)
        except asyncio.TimeoutError:
            pass
        finally:
            self._inline_waiters.remove(entry)

    def _new_uid(self) -> str:
        return f"{self._uid_prefix}.{next(self._uids):06d}"


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
