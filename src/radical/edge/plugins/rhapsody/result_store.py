"""The compact store of finished tasks' JSON records (one int per uid, large buffers)."""
from __future__ import annotations

from ...constants import TASK_TERMINAL_STATES

__all__ = ["ResultStore"]

#: the terminal states in a fixed order: a state is stored as its index in two bits
_STATES = tuple(sorted(TASK_TERMINAL_STATES))
_STATE_CODE = {s: i for i, s in enumerate(_STATES)}


class ResultStore:
    """Finished tasks' JSON records, packed into large buffers.

    One small `bytes` per task would put tens of thousands of long-lived objects into
    CPython's small-object arenas, among the short-lived objects of every request; an arena
    is only returned to the OS once *all* its objects are gone, so after the session closes
    the edge would keep much of that memory.  Here records are appended to 256 KiB
    `bytearray` segments (ordinary heap memory, handed back by `malloc_trim`), and each uid
    maps to one int packing segment, offset, length and final state.
    """

    SEGMENT = 1 << 18

    def __init__(self) -> None:
        self._segments: list[bytearray] = [bytearray()]
        self._big: list[bytes] = []  # records larger than a segment
        self._where: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, uid: object) -> bool:
        return uid in self._where

    def add(self, uid: str, state: str, data: bytes) -> None:
        size = len(data)
        if size >= self.SEGMENT:
            self._big.append(data)
            segment, offset = -len(self._big), 0
        else:
            current = self._segments[-1]
            if len(current) + size > self.SEGMENT:
                current = bytearray()
                self._segments.append(current)
            offset = len(current)
            current += data
            segment = len(self._segments) - 1
        # segment (signed) | offset (18 bits) | length (24 bits) | state (2 bits)
        self._where[uid] = (((segment << 18 | offset) << 24 | min(size, (1 << 24) - 1)) << 2
                            | _STATE_CODE[state])

    def state(self, uid: str) -> str | None:
        code = self._where.get(uid)
        return None if code is None else _STATES[code & 3]

    def get(self, uid: str) -> bytes | None:
        code = self._where.get(uid)
        return None if code is None else self._read(code)

    def _read(self, code: int) -> bytes:
        code >>= 2
        size = code & ((1 << 24) - 1)
        code >>= 24
        offset = code & ((1 << 18) - 1)
        segment = code >> 18
        if segment < 0:
            return self._big[-segment - 1]
        return memoryview(self._segments[segment])[offset:offset + size].tobytes()

    def records(self) -> list[bytes]:
        return [self._read(code) for code in self._where.values()]

    def clear(self) -> None:
        self._segments = [bytearray()]
        self._big = []
        self._where = {}
