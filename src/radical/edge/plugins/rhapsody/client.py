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

This module holds the public methods; encoding lives in `client_wire`, completion tracking
and polling in `client_completion` (both mixed in, both SDK + standard library only).
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

from radical.edge.constants import TIMEOUT_HEADER
from radical.edge.sdk.errors import EdgeError
from radical.edge.sdk.plugin import PluginClient

from .client_completion import TERMINAL_STATES, CompletionMixin, Waiter
from .client_wire import HAVE_MSGPACK, WireMixin, decode_record, encode_function

__all__ = ["RhapsodyClient", "encode_function", "TERMINAL_STATES"]

log = logging.getLogger("radical.edge.sdk.rhapsody")



class RhapsodyClient(CompletionMixin, WireMixin, PluginClient):
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
        self._waiters: list[Waiter] = []
        self._resync = 0  # bumped on every event-stream gap: waiters re-poll at once
        self._listening = False
        self._sse_ok = False
        self._uid_prefix = f"task.{uuid.uuid4().hex[:8]}"
        self._uids = itertools.count(1)
        self._pool: ThreadPoolExecutor | None = None
        self.use_msgpack = HAVE_MSGPACK

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
            waiter = Waiter(missing)
            if missing:
                self._waiters.append(waiter)
        try:
            poll_every = self.poll_idle if self._sse_ok else 0.05
            last_size = -1
            last_change = time.monotonic()
            resync_seen = self._resync
            while True:
                with self._lock:
                    size = len(waiter.missing)
                    resync = size > 0 and self._resync != resync_seen
                    if resync:  # notifications were lost: ask the edge now
                        resync_seen = self._resync
                        waiter.event.clear()
                if size == 0:
                    break
                if resync:
                    self._poll(sid, waiter)
                    last_change = time.monotonic()
                    continue
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

    def list_tasks(self) -> dict:
        """``{"tasks": [task dicts]}`` for every task of the session."""
        return self._get(f"list_tasks/{self._require_sid()}")

    def snapshot(self, uids: list[str]) -> list[dict]:
        """The current dicts of `uids` in one request (finished or not; no waiting).

        For callers that track completion themselves (the rhapsody execution backend).
        """
        out: list[dict] = []
        sid = self._require_sid()
        for i in range(0, len(uids), self.poll_chunk):
            answer = self._post(f"wait/{sid}", {"uids": uids[i:i + self.poll_chunk]})
            if isinstance(answer, list):
                out.extend(decode_record(r) for r in answer if isinstance(r, dict))
        return out

    def get_task(self, uid: str) -> dict:
        """The current dict of one task (``return_value`` bytes restored)."""
        return decode_record(self._get(f"task/{self._require_sid()}/{uid}"))

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
