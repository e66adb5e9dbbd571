"""Job output for the psij plugin: incremental reads by byte offset, and stream tails."""
from __future__ import annotations

import errno
import os

#: largest output chunk one status call returns per stream (the rest comes next call)
MAX_CHUNK = 1024 * 1024
#: bytes of each stream attached to the terminal job_status notification
NOTIFY_TAIL = 4096


def _utf8_safe_end(data: bytes) -> int:
    """Length of `data` without a trailing, incomplete UTF-8 sequence."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # continuation byte: keep looking for the lead byte
            continue
        if byte & 0x80 == 0:  # ASCII
            return len(data)
        need = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4
        return len(data) if back >= need else len(data) - back
    return len(data)


def read_chunk(path: str | None, offset: int, limit: int = MAX_CHUNK,
               complete: bool = False) -> tuple[str, int]:
    """Text from byte `offset` of `path` (at most `limit` bytes) and the next offset.

    A multi-byte character cut at the end of what is there is left for the next call, unless
    `complete` (the job has ended: nothing more will come). A missing file reads as empty.
    """
    if not path:
        return "", offset
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(limit)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return "", offset
    except OSError as exc:  # an offset past what the filesystem can hold: nothing there
        if exc.errno != errno.EINVAL:
            raise
        return "", offset
    if not complete or len(data) == limit:
        data = data[:_utf8_safe_end(data)]
    return data.decode("utf-8", "replace"), offset + len(data)


def tail(path: str | None, size: int = NOTIFY_TAIL) -> str | None:
    """The last `size` bytes of `path` as text, None when there is no such file."""
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            fh.seek(max(0, end - size))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return None
