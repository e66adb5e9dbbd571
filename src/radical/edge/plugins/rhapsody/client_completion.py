"""Completion tracking of the rhapsody client: the event stream first, polling as fallback.

The client follows the bridge's event stream (``session_status``, ``task_status`` and
``task_status_batch`` notifications of its own session) and records every task that
reaches a terminal state; a `Waiter` is woken when its last missing task arrives.  Without
a stream, or while it stays silent, the ``wait`` snapshot route (and for session readiness
``session_status/{sid}``) is polled, so a lost notification can delay a result but never
lose it.  A `gap` on the stream (notifications lost for good) makes every waiter poll at once.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Iterable

from radical.edge.constants import TASK_TERMINAL_STATES
from radical.edge.sdk.errors import EdgeTimeoutError

from .client_wire import decode_record

__all__ = ["TERMINAL_STATES", "Waiter", "CompletionMixin"]

log = logging.getLogger("radical.edge.sdk.rhapsody")

TERMINAL_STATES = TASK_TERMINAL_STATES


class Waiter:
    """The uids one `wait_tasks` call still misses; `event` is set when none are."""

    __slots__ = ("missing", "event")

    def __init__(self, missing: set[str]) -> None:
        self.missing = missing
        self.event = threading.Event()


class CompletionMixin:
    """Notification handling and polling, mixed into `RhapsodyClient` (its `__init__`
    creates the lock, the records and the waiter list used here)."""

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
        self._record(records)

    def _on_gap(self, gap: dict) -> None:
        """Listener thread: notifications were lost; wake the waiters so they re-poll."""
        with self._lock:
            self._resync += 1
            for waiter in self._waiters:
                waiter.event.set()
            self._status_cond.notify_all()

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


    def _poll(self, sid: str, waiter: Waiter) -> None:
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
        return decode_record(record)
