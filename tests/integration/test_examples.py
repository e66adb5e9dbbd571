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


@pytest.mark.slurm
def test_example_lucid_on_slurm(slurm_cluster, bridge_url, make_edge, tmp_path):
    """The same example with its pilot as a SLURM batch job (`edge.slurm`)."""
    pytest.importorskip("radical.pilot")
    make_edge("lucid", name="example-lucid-slurm", env={"RADICAL_EDGE_LUCID_DIR": str(tmp_path)})
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "lucid_pilot.py")],
                         env={**os.environ, "RADICAL_BRIDGE_URL": bridge_url,
                              "RADICAL_EDGE_NAME": "example-lucid-slurm",
                              "RADICAL_LUCID_RESOURCE": "edge.slurm",
                              "RADICAL_LUCID_QUEUE": "debug"},
                         capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr
    done = [ln for ln in out.stdout.splitlines()
            if ": DONE exit 0: task " in ln and " in job " in ln]
    assert len(done) == 3, out.stdout


def test_example_xgfabric(bridge_url, make_edge, tmp_path):
    pytest.importorskip("rhapsody")
    make_edge("xgfabric", name="example-xgf", env={"RADICAL_BRIDGE_URL": bridge_url,
                                                   "RADICAL_EDGE_XGFABRIC_DIR": str(tmp_path)})
    for name in ("example-site-a", "example-site-b"):
        make_edge("rhapsody,staging", name=name)
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "xgfabric_workflow.py"),
                          "--edge", "example-xgf", "--clusters", "example-site-a,example-site-b"],
                         env={**os.environ, "RADICAL_BRIDGE_URL": bridge_url},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "completed: 6/6 simulations, 2 model(s)" in out.stdout, out.stdout
    assert "[100 %] done: 6/6 simulations" in out.stdout, out.stdout
    done = [ln for ln in out.stdout.splitlines() if ln.startswith("  cluster example-site-")]
    assert len(done) == 2 and all("immediate" in ln for ln in done), out.stdout
