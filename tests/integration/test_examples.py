"""The examples in examples/ run against a real bridge and edge."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_example_sysinfo(bridge_url, make_edge):
    make_edge("sysinfo", name="example-edge")
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "example_sysinfo.py")],
                         env={**os.environ, "RADICAL_BRIDGE_URL": bridge_url},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("example-edge:")]
    assert line and "cores" in line[0] and "role login" in line[0]
