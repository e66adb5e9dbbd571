"""Job/task states in notification stream entries, for the work index (bridge_api/work.py).

An entry with a state digest (`keys.STATES_FIELD`, app/state_digest.py: rhapsody task
batches) is read from the digest alone, so the bridge never decodes whole task records;
any other entry (psij `job_status`, a lone task record, older edges) from its note
(`keys.NOTE_FIELD`), which is decoded only when a bytes search finds a followed topic.
"""
from __future__ import annotations

import logging
from typing import Any

import orjson

from ..app import keys, state_digest

log = logging.getLogger(__name__)

#: notification topics that carry job/task states
TOPICS = frozenset({"job_status", "task_status", "task_status_batch"})
#: entry fields as Redis returns them (bytes), and as tests may write them (str)
_NOTE = (keys.NOTE_FIELD.encode(), keys.NOTE_FIELD)
_STATES = (keys.STATES_FIELD.encode(), keys.STATES_FIELD)

#: (member prefix "edge/plugin/", [(uid, state, exit code or "")])
Found = tuple[str, list[tuple[str, str, str]]]


def member(edge: str, plugin: str, uid: str) -> str:
    return f"{edge}/{plugin}/{uid}"


class StateReader:
    """Reads the states of the `topics` an index follows out of stream entries."""

    def __init__(self, topics: frozenset[str]) -> None:
        self.topics = topics
        # notes worth decoding: a bytes search is far cheaper than orjson on the (large)
        # task batches a rhapsody edge streams
        self._markers = tuple(f'"topic":"{t}"'.encode() for t in sorted(topics))
        # digests of state topics not followed (task topics when tasks are not indexed):
        # skipped on sight of their topic (the third item of the head), undecoded
        self._unfollowed = tuple(f'","{t}",['.encode() for t in sorted(TOPICS - topics))
        self.malformed = 0  # digests (or items of them) that were malformed

    def read(self, eid: Any, fields: dict) -> Found | None:
        """The states in one entry; None when it carries none this index follows."""
        digest = fields.get(_STATES[0]) or fields.get(_STATES[1])
        if digest:
            return self._from_digest(eid, digest)
        return self._from_note(fields.get(_NOTE[0]) or fields.get(_NOTE[1]))

    def _from_digest(self, eid: Any, raw: bytes | str) -> Found | None:
        """None also for a malformed digest (logged: a bug or a hostile edge)."""
        if isinstance(raw, str):
            raw = raw.encode()
        if self._unfollowed and any(m in raw[:state_digest.HEAD_BYTES] for m in self._unfollowed):
            return None
        try:
            digest = state_digest.decode(raw)
        except ValueError as exc:
            self._malformed(eid, str(exc))
            return None
        if digest.skipped:
            self._malformed(eid, f"{digest.skipped} malformed state(s) left out")
        if digest.topic not in self.topics:
            return None
        return member(digest.edge, digest.plugin, ""), digest.states

    def _malformed(self, eid: Any, why: str) -> None:
        self.malformed += 1
        if self.malformed % 1000 == 1:  # the first, then every 1000th: no log flood
            sid = eid.decode() if isinstance(eid, bytes) else str(eid)
            log.warning("work index: state digest of notification %s: %s (%d so far)",
                        sid, why, self.malformed)

    def _from_note(self, raw: bytes | str | None) -> Found | None:
        if not raw:
            return None
        if isinstance(raw, str):
            raw = raw.encode()
        if not any(marker in raw for marker in self._markers):
            return None
        try:
            note = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(note, dict) or note.get("topic") not in self.topics:
            return None
        data = note.get("data")
        if not isinstance(data, dict):
            return None
        records = data.get("tasks") if note["topic"] == "task_status_batch" else [data]
        states = []
        for rec in records if isinstance(records, list) else []:
            if not isinstance(rec, dict):
                continue
            uid, state = rec.get("job_id") or rec.get("uid"), rec.get("state")
            if not uid or not isinstance(state, str) or not state:
                continue
            uid, code = str(uid), rec.get("exit_code")
            if len(uid) <= state_digest.MAX_UID:
                states.append((uid, state[:state_digest.MAX_STATE],
                               "" if code is None else str(code)[:state_digest.MAX_CODE]))
        return member(str(note.get("edge")), str(note.get("plugin")), ""), states
