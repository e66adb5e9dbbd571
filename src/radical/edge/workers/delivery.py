"""Checks on each delivered call before it runs: a call whose caller was already answered
(its deadline passed) never starts, and a message delivered twice runs once."""
from __future__ import annotations

import logging
import time

from ..app.protocol import CallRequest

log = logging.getLogger("radical.edge.workers.host")  # the records keep their old logger

__all__ = ["SeenCalls", "too_late"]


def too_late(call: CallRequest, now: float) -> bool:
    """The deadline check at the moment of execution: a call whose caller has been answered
    (504) must never start, however long it sat in a buffer or behind a SIGSTOP."""
    if not call.expired(now):
        return False
    log.warning("dropped call %s %s: its deadline passed %.1f s ago", call.method, call.path,
                now - call.deadline)
    return True


class SeenCalls:
    """Call ids already run, each kept until its deadline: a redelivered message (e.g. a
    publish retried after a connection drop) is recognised and never runs twice."""

    def __init__(self) -> None:
        self._ids: dict[str, float] = {}
        self._next_prune = time.time() + 30

    def first_time(self, call_id: str, deadline: float) -> bool:
        if call_id in self._ids:
            return False
        self._ids[call_id] = deadline
        now = time.time()
        if now > self._next_prune:
            self._ids = {k: d for k, d in self._ids.items() if d > now}
            self._next_prune = now + 30
        return True
