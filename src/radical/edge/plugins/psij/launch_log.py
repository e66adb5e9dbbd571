"""Why a launched child edge did not come up: its job's stderr and the tail of its own log.

The child's log is written on the node its job runs on, by radical-edge-wrapper.sh, which
first says on the job's stderr where it logs (``edge 'NAME': logging to PATH``). The parent
edge reads that line from the job's stderr and, where the file is visible from here (a
shared home or work filesystem, or a local executor), the log's tail: the portal shows both
when a launched edge's job ends before the edge joined.
"""
from __future__ import annotations

import os
import re
from typing import Any

from .jobs import JobRecord
from .output import read_chunk, tail

#: bytes of each text returned (the end of it, where the error is)
TAIL_BYTES = 8192
#: how much of the job's stderr is searched for the wrapper's "logging to" line
HEAD_BYTES = 65536
LOG_LINE = re.compile(r"edge '(?P<name>[^']+)': logging to (?P<path>/\S+\.log)\s*$", re.M)


def edge_log_path(stderr_path: str | None, edge_name: str) -> str | None:
    """Where the wrapper of `edge_name` said it logs (None if it did not get that far)."""
    head, _ = read_chunk(stderr_path, 0, HEAD_BYTES, complete=True)
    for m in LOG_LINE.finditer(head):
        if m.group("name") == edge_name:
            return m.group("path")
    return None


def launch_log(record: JobRecord) -> dict[str, Any]:
    """The answer of `GET launch_log/{sid}/{job_id}` for a child-edge job."""
    name = record.edge_name or ""
    path = edge_log_path(record.stderr_path, name)
    log = note = None
    if path is None:
        note = "the job's stderr names no edge log (the wrapper stopped before it logged)"
    elif not os.path.isfile(path):
        note = (f"the edge log {path} is not visible from this edge's host (not on a "
                "shared filesystem, or not written yet)")
    else:
        log = tail(path, TAIL_BYTES)
    with record.lock:
        state, code, message = record.state, record.exit_code, record.message
    return {"job_id": record.job_id, "native_id": record.native_id, "edge_name": name,
            "state": state, "exit_code": code, "message": message,
            "stderr": tail(record.stderr_path, TAIL_BYTES) or "",
            "log_path": path, "log": log, "log_note": note}
