"""The examples in examples/ run against a real bridge and edge."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_example_sysinfo(bridge_url, make_edge):
    make_edge("sysinfo", name="example-edge")
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "example_sysinfo.py")],
                         env={**os.environ, "RADICAL_BRIDGE_URL": bridge_url},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("example-edge:")]
    assert line and "cores" in line[0] and "role login" in line[0]


def test_example_lucid(bridge_url, make_edge, tmp_path):
    pytest.importorskip("radical.pilot")
    make_edge("lucid", name="example-lucid", env={"RADICAL_EDGE_LUCID_DIR": str(tmp_path)})
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "lucid_pilot.py")],
                         env={**os.environ, "RADICAL_BRIDGE_URL": bridge_url,
                              "RADICAL_EDGE_NAME": "example-lucid"},
                         capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr
    done = [ln for ln in out.stdout.splitlines() if ": DONE exit 0: task " in ln]
    assert len(done) == 3, out.stdout
