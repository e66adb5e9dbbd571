"""The suite itself: under CI=true a skip is a failure, and the unit tests run on a machine
without the `hpc` extra (psij-python, rhapsody-py, asyncssh)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = '''
import pytest

def test_needs_a_missing_component():
    pytest.skip("component X is not installed")

def test_fine():
    assert True
'''


def _pytest(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "conftest", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "tests"), **env})


def test_a_skip_fails_under_ci_and_skips_locally(tmp_path):
    (tmp_path / "test_probe.py").write_text(PROBE)
    ci = _pytest([str(tmp_path / "test_probe.py")], {"CI": "true"}, tmp_path)
    assert ci.returncode == 1, ci.stdout
    assert "1 failed, 1 passed" in ci.stdout
    assert "skipped under CI=true" in ci.stdout and "component X is not installed" in ci.stdout
    local = _pytest([str(tmp_path / "test_probe.py"), "-rs"], {"CI": ""}, tmp_path)
    assert local.returncode == 0, local.stdout
    assert "1 passed, 1 skipped" in local.stdout


BLOCK_HPC = (
    "import sys\n"
    "for name in ('asyncssh', 'psij', 'rhapsody'):\n"
    "    sys.modules[name] = None  # as if the hpc extra were not installed\n"
    "import pytest\n"
    "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/unit']))\n"
)


def test_unit_tests_run_without_the_hpc_extra():
    proc = subprocess.run([sys.executable, "-c", BLOCK_HPC], capture_output=True, text=True,
                          timeout=600, cwd=ROOT, env={**os.environ, "CI": ""})
    tail = "\n".join(proc.stdout.splitlines()[-15:])
    assert proc.returncode == 0, tail
    assert " passed" in tail and "error" not in tail.lower(), tail
