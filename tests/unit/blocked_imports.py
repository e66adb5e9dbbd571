"""Run a snippet in a fresh interpreter where some top-level packages cannot be imported.

Proves that client-side modules work on a laptop without the edge's dependencies: any
import of a blocked package fails, and the snippet checks nothing blocked got loaded.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

_PRELUDE = """
import sys
BLOCKED = {blocked!r}

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked for the test: {{name}}")
        return None

sys.meta_path.insert(0, Blocker())
"""

_CHECK = """
bad = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not bad, bad
print("ok")
"""


def run_without(blocked: set[str], code: str) -> None:
    """Run `code` with `blocked` packages unimportable; fail with its stderr otherwise."""
    script = _PRELUDE.format(blocked=sorted(blocked)) + textwrap.dedent(code) + _CHECK
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
