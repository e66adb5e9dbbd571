"""Coalescing of task-state notifications: no fixed delay, bursts in batches.

A terminal task update (DONE/FAILED/CANCELED) goes out on the next turn of the event loop
when the coalescer is idle, so a lone task's completion is delivered at once (everything
that changed in the same loop turn shares one message).  Intermediate updates (RUNNING)
are not urgent: they wait up to one window and ride along with the next flush, so a quick
task costs one message, not two.  When updates keep coming, each flush pushes the next one
further out - the gap doubles from `MIN_GAP` up to `window` - so a burst of 10k updates
becomes a handful of ``task_status_batch`` messages of at most `max_batch` tasks; the gap
falls back to zero as soon as the updates stop.  Nothing is dropped: a task's record is
replaced by a newer one only while both are still pending (RUNNING superseded by DONE in
the same batch), and a task's terminal record is emitted exactly once.

Every message's data also carries the (uid, state, exit_code) of its records
(`state_digest.WithStates`), which the notifier writes as a compact digest for the bridge's
work index. A single record already serialized to JSON goes out as it is, without one (the
bridge then reads that one record).

Must be used from the event loop thread (`push` hops over from other threads).
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

import orjson

from ...app.state_digest import WithStates
from ...constants import TASK_TERMINAL_STATES

__all__ = ["Coalescer", "MIN_GAP", "DEFAULT_WINDOW", "DEFAULT_BATCH"]

#: first non-zero gap between two flushes once updates arrive back to back (s)
MIN_GAP = 0.001
#: states whose records go out without waiting for the window
URGENT = TASK_TERMINAL_STATES
#: default upper bound of the gap, i.e. the longest any update waits (s)
DEFAULT_WINDOW = 0.05
#: default largest number of tasks in one notification
DEFAULT_BATCH = 1024

Send = Callable[[str, dict], None]


class Coalescer:
    """Collects task records keyed by uid and emits them as notifications.

    `send(topic, data)` gets ``("task_status", record)`` for a flush of one task and
    ``("task_status_batch", {"tasks": [...], **extra})`` otherwise; `extra` (e.g. the
    session id) is added to both shapes.
    """

    def __init__(self, send: Send, loop: asyncio.AbstractEventLoop, *,
                 window: float = DEFAULT_WINDOW, max_batch: int = DEFAULT_BATCH,
                 extra: dict | None = None) -> None:
        if window < 0:
            raise ValueError("window must be >= 0")
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self._send = send
        self._loop = loop
        self._loop_thread: int | None = (threading.get_ident()
                                         if _loop_thread_id(loop) is not None else None)
        self.window = float(window)
        self.max_batch = int(max_batch)
        self._extra = dict(extra or {})
        #: uid -> (record, its (uid, state, exit_code))
        self._pending: dict[str, tuple[dict | bytes, tuple[str, Any, Any]]] = {}
        self._handle: asyncio.Handle | asyncio.TimerHandle | None = None
        self._handle_lazy = False  # the scheduled flush only carries non-urgent records
        self._last_flush = float("-inf")
        self._gap = 0.0
        self._closed = False
        #: records replaced by a newer state before they went out (tests read it)
        self.superseded = 0

    # -- input ------------------------------------------------------------------------------
    def push(self, record: dict | bytes, uid: str | None = None,
             state: str | None = None, exit_code: Any = None) -> None:
        """Queue one task record: a dict with ``uid``/``state`` (``exit_code``), or the
        record already serialized to JSON bytes (then `uid`, `state` and `exit_code` must
        be given)."""
        if self._closed:
            return
        if threading.get_ident() != self._loop_thread:
            if self._loop_thread is None and _loop_thread_id(self._loop) is not None:
                self._loop_thread = threading.get_ident()
            else:
                self._loop.call_soon_threadsafe(self.push, record, uid, state, exit_code)
                return
        if uid is None:
            uid = record["uid"]  # type: ignore[index]
            state = record.get("state")  # type: ignore[union-attr]
            exit_code = record.get("exit_code")  # type: ignore[union-attr]
        if uid in self._pending:
            self.superseded += 1
        self._pending[uid] = (record, (uid, state, exit_code))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif state not in URGENT:
            if self._handle is None:
                self._handle = self._loop.call_later(self.window, self._flush)
                self._handle_lazy = True
        elif self._handle is None or self._handle_lazy:
            if self._handle is not None:
                self._handle.cancel()
            self._schedule()

    def _schedule(self) -> None:
        self._handle_lazy = False
        now = self._loop.time()
        since = now - self._last_flush
        if since >= self._gap:
            # idle long enough: go out on the next loop turn, and forget past bursts if the
            # line has been quiet for a whole window
            if since >= self.window:
                self._gap = 0.0
            self._handle = self._loop.call_soon(self._flush)
        else:
            self._handle = self._loop.call_at(self._last_flush + self._gap, self._flush)

    # -- output -----------------------------------------------------------------------------
    def _flush(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        records = list(pending.values())
        for start in range(0, len(records), self.max_batch):
            self._emit(records[start:start + self.max_batch])
        self._last_flush = self._loop.time()
        if len(records) > 1:
            # updates are arriving back to back: widen the gap (bounded by the window)
            self._gap = min(self.window, max(MIN_GAP, self._gap * 2))
        elif self._gap > 0:
            # a flush of a single record: the burst is over, narrow the gap again
            self._gap = self._gap / 4 if self._gap / 4 >= MIN_GAP else 0.0

    def _emit(self, records: list[tuple[dict | bytes, tuple[str, Any, Any]]]) -> None:
        if len(records) == 1:
            data, state = records[0]
            if isinstance(data, bytes):
                if self._extra:  # splice the extra keys into the serialized object
                    data = data[:-1] + b"," + orjson.dumps(self._extra)[1:]
                self._send("task_status", orjson.Fragment(data))  # type: ignore[arg-type]
            else:
                self._send("task_status", WithStates({**data, **self._extra}, [state]))
        else:
            tasks = [orjson.Fragment(r) if isinstance(r, bytes) else r for r, _ in records]
            self._send("task_status_batch",
                       WithStates({"tasks": tasks, **self._extra}, [s for _, s in records]))

    def flush(self) -> None:
        """Emit everything pending now (loop thread)."""
        self._flush()

    def hurry(self) -> None:
        """Flush on the next loop turn: the caller knows no more updates are coming soon
        (e.g. the session has no unfinished task left), so waiting for the gap only adds
        latency."""
        if not self._pending or self._closed:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._handle_lazy = False
        self._handle = self._loop.call_soon(self._flush)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        """Flush what is pending and stop accepting records."""
        self._flush()
        self._closed = True


def _loop_thread_id(loop: asyncio.AbstractEventLoop) -> int | None:
    """The id of the thread running `loop`, when it can be told (else None)."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return threading.get_ident() if running is loop else None
