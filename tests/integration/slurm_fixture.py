"""Session fixture: a running single-node SLURM cluster (scripts/slurm_cluster.sh).

`start` is idempotent, so a cluster left running by an earlier session is reused at once;
from nothing it installs packages and takes about a minute. The cluster is left running
afterwards (set RADICAL_EDGE_SLURM_STOP=1 to stop it at the end of the session).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "slurm_cluster.sh"


def conf_path() -> str:
    """The cluster's own config file (known before it starts): for edges started before the
    session fixture ran that may launch SLURM jobs later."""
    return subprocess.run(["bash", str(SCRIPT), "conf"], capture_output=True, text=True,
                          timeout=30).stdout.strip()


def running_cluster() -> Iterator[dict]:
    """{"host", "start_seconds"} of a cluster whose node is idle and whose slurmdbd answers
    (the body of the session fixture `slurm_cluster` in tests/conftest.py)."""
    if os.geteuid() != 0:
        pytest.skip("the SLURM test cluster needs root (scripts/slurm_cluster.sh start)")
    if not shutil.which("apt-get") and not shutil.which("slurmctld"):
        pytest.skip("no apt-get to install SLURM and no SLURM installed")
    started = time.monotonic()
    proc = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True,
                          timeout=900)
    took = time.monotonic() - started
    if proc.returncode != 0:
        pytest.fail(f"slurm_cluster.sh start failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    # the cluster has its own config dir; processes started from here (edges, sbatch) use it
    os.environ["SLURM_CONF"] = conf_path()
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip()
    yield {"host": host, "start_seconds": took, "log": proc.stderr}
    if os.environ.get("RADICAL_EDGE_SLURM_STOP") == "1":
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, timeout=120)
