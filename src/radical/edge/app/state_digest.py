"""The state digest of a task/job notification: (uid, state, exit_code) per record, compact.

Why: the bridge's work index (bridge_api/work.py) needs only these three values of every
task in a `task_status_batch`, but the notification (`keys.NOTE_FIELD`) carries whole task
records (output, return values ...). Decoding those on the bridge cost more than anything
else the index does (bench/RESULTS.md). So the edge's notifier writes a digest beside the
note (`keys.STATES_FIELD`) for data that carries one (`WithStates`), and the bridge reads
the digest instead. Edges that do not send it (older ones, psij's `job_status`) are still
indexed from the note itself.

Wire form (JSON): ``[edge, plugin, topic, [[uid, state, exit_code], ...]]``, exit_code
null, a number or a string. The digest comes from an edge and is not trusted: `decode`
checks every value and bounds every length, like the bridge does for the note's records.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson

__all__ = ["MAX_CODE", "MAX_STATE", "MAX_UID", "Digest", "WithStates", "decode", "encode"]

#: longest uid indexed (longer ones are skipped: a cut uid would name another task)
MAX_UID = 256
#: states and exit codes are cut to these lengths (as the index always did)
MAX_STATE = 32
MAX_CODE = 16
#: edge, plugin and topic names longer than this make the whole digest invalid
MAX_NAME = 128
#: a digest's head (edge, plugin, topic) fits in this many bytes unless its names are
#: escaped heavily: readers may look for the topic there before decoding the rest
HEAD_BYTES = 1024

State = tuple[str, str, Any]  # uid, state, exit_code (None when not known)


class WithStates(dict):
    """Notification data (a plain dict to every host and JSON encoder) that also carries
    the state of each record it holds, so the notifier can write a digest without
    decoding or re-reading the records."""

    __slots__ = ("states",)

    def __init__(self, data: dict, states: list[State]) -> None:
        super().__init__(data)
        self.states = states


class Digest(NamedTuple):
    edge: str
    plugin: str
    topic: str
    #: (uid, state, exit_code as text, "" when none): the checked items
    states: list[tuple[str, str, str]]
    #: items that were malformed and left out
    skipped: int


def encode(edge: str, plugin: str, topic: str, states: Iterable[State]) -> bytes:
    """The digest as written to the stream (only the notifier calls this)."""
    return orjson.dumps([edge, plugin, topic, list(states)])


def _code(value: Any) -> str | None:
    """An exit code as the index stores it: text, "" for none; None when malformed."""
    if value is None:
        return ""
    if isinstance(value, bool):  # JSON true/false are no exit codes
        return None
    if isinstance(value, (int, float, str)):
        return str(value)[:MAX_CODE]
    return None


def decode(raw: bytes | str) -> Digest:
    """The checked digest; ValueError (saying why) when it is not a digest at all.
    Malformed items are left out and counted in `skipped`."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    shape = [type(v) for v in value] if type(value) is list else None
    if shape != [str, str, str, list]:
        raise ValueError("not a list of [edge, plugin, topic, states]")
    edge, plugin, topic, items = value
    for what, name in (("edge", edge), ("plugin", plugin), ("topic", topic)):
        if not 0 < len(name) <= MAX_NAME:
            raise ValueError(f"{what} is empty or too long")
    states: list[tuple[str, str, str]] = []
    skipped = 0
    for item in items:
        if type(item) is list and len(item) == 3:
            uid, state, code = item
            if (type(uid) is str and 0 < len(uid) <= MAX_UID and type(state) is str and state):
                text = "" if code is None else _code(code)
                if text is not None:
                    states.append((uid, state[:MAX_STATE], text))
                    continue
        skipped += 1
    return Digest(edge, plugin, topic, states, skipped)
