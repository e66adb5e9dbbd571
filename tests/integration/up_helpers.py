"""Start `radical-edge up` as a user would and read its banner (shared by the `up` tests)."""
from __future__ import annotations

import subprocess
import sys
import time
from typing import Callable


def start_up(args: list[str], env: dict[str, str], timeout: float = 90,
             preexec_fn: Callable[[], None] | None = None) -> tuple[subprocess.Popen, list[str]]:
    """`radical-edge up ARGS` with stdout+stderr piped; returns once it printed its
    "Ctrl-C ..." line (it is up), exited, or `timeout` passed, with the lines read so far."""
    proc = subprocess.Popen([sys.executable, "-m", "radical.edge.cli", "up", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, preexec_fn=preexec_fn)
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Ctrl-C"):
            break
    return proc, lines
