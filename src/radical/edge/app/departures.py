"""Why an edge left: the reason a bridge shows for a departed edge until it returns.

The topology itself only says "gone". The reason comes from what the watcher saw last:
- `disconnected`: a bridge asked it to shut down (`POST /edge/disconnect`);
- `walltime`: its batch job's walltime was ending: its last announcement said it had stopped
  taking calls for that (the drain before the end), or it left at the very end;
- `stopped`: it withdrew cleanly (SIGTERM, its job ended, `Ctrl-C`) and said `leave:` on the
  topology channel;
- `lost`: its announcement expired without a word: killed (`kill -9`), crashed, paused or
  cut off from Redis.
A clean `leave:` ping may arrive just after a poll already counted the edge as lost, so a
late word upgrades a fresh `lost` verdict.
"""
from __future__ import annotations

import time
from typing import Any

#: reason -> what the portal says (a short sentence after "left: ")
REASONS = {
    "disconnected": "disconnected on request from the bridge",
    "walltime": "its batch job reached its walltime",
    "stopped": "the edge shut down (stopped, or its job ended or was cancelled)",
    "lost": "heartbeat stopped: killed, crashed or unreachable",
}
#: stronger words win over weaker ones for the same departure
RANK = {"lost": 0, "stopped": 1, "walltime": 2, "disconnected": 3}
#: how long a word said before (or just after) a departure is believed
WORD_SECONDS = 15.0
#: walltime counts as the reason when the edge left this close to its job's end (seconds)
WALLTIME_SLACK = 30.0

#: announcement fields kept for a departed edge (what the greyed tree node shows)
KEPT = ("role", "host", "scheduler", "job_id")


class Departures:
    """Departed edges with their reasons (kept until the edge returns or is forgotten)."""

    def __init__(self) -> None:
        self._words: dict[str, tuple[str, float]] = {}  # name -> (reason, when said)
        self.gone: dict[str, dict[str, Any]] = {}

    def said(self, name: str, reason: str) -> bool:
        """Someone said why `name` leaves (before or just after it is seen gone).

        Returns True when an already recorded departure changed (publish the topology again).
        """
        now = time.time()
        old = self._words.get(name)
        if old is None or now - old[1] >= WORD_SECONDS or RANK[reason] >= RANK[old[0]]:
            self._words[name] = (reason, now)
        entry = self.gone.get(name)
        if entry and now - entry["since"] < WORD_SECONDS and RANK[reason] > RANK[entry["reason"]]:
            entry.update(reason=reason, detail=REASONS[reason])
            return True
        return False

    def left(self, name: str, last: dict[str, Any], heartbeat_ttl: float | None = None) -> None:
        """`name` is no longer announced; `last` is its last announcement."""
        now = time.time()
        reason = "lost"
        word, when = self._words.pop(name, ("lost", 0.0))
        if now - when < WORD_SECONDS:
            reason = word
        end = last.get("walltime_end")
        ending = end and (last.get("accepting") is False or now >= float(end) - WALLTIME_SLACK)
        if RANK[reason] < RANK["walltime"] and ending:
            reason = "walltime"
        detail = REASONS[reason]
        if reason == "lost" and heartbeat_ttl:
            detail = f"no heartbeat for {heartbeat_ttl:g} s: killed, crashed or unreachable"
        self.gone[name] = {"reason": reason, "detail": detail, "since": now,
                           **{k: last[k] for k in KEPT if last.get(k) is not None}}

    def returned(self, name: str) -> None:
        self.gone.pop(name, None)
        self._words.pop(name, None)

    def forget(self, name: str) -> None:
        self.returned(name)

    def view(self) -> dict[str, dict[str, Any]]:
        """The `departed` object of the topology: name -> {reason, detail, since, ...}."""
        return {n: dict(e) for n, e in sorted(self.gone.items())}
