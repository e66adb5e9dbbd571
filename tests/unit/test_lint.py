"""The tree has no pyflakes-class errors (undefined names, unused imports, redefinitions):
ruff with the project's configuration (pyproject.toml, [tool.ruff]) over src and tests."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_finds_nothing():
    pytest.importorskip("ruff", reason="ruff comes with the [dev] extra")
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "src", "tests"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
