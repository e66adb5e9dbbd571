"""The package as PyPI would get it: wheel + sdist built and checked, and the client install
(`pip install radical.edge`, no extras) in a fresh venv with the pip Python ships."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from radical.edge import __version__

ROOT = Path(__file__).resolve().parents[2]

#: what a fresh venv holds before anything is installed
BOOTSTRAP = {"pip", "setuptools"}

CLOSURE = """
import json, re, sys
from importlib import metadata

def name(text):
    return re.sub(r"[-_.]+", "-", text).lower()

seen, todo = set(), ["httpx"]
while todo:
    dist = metadata.distribution(todo.pop())
    if name(dist.metadata["Name"]) in seen:
        continue
    seen.add(name(dist.metadata["Name"]))
    from packaging.requirements import Requirement
    for raw in dist.requires or []:
        req = Requirement(raw)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            todo.append(req.name)
installed = sorted(name(d.metadata["Name"]) for d in metadata.distributions())
print(json.dumps({"closure": sorted(seen), "installed": installed}))
"""


def run(*argv: str, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    return r


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    r = run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(ROOT))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def client_venv(dist, tmp_path_factory) -> Path:
    """A fresh venv (pip as Python ships it) with the wheel and no extras."""
    where = tmp_path_factory.mktemp("client") / "venv"
    venv.create(where, with_pip=True)
    wheel = next(dist.glob("*.whl"))
    r = run(str(where / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return where


def test_wheel_and_sdist_pass_twine_check(dist):
    files = sorted(dist.iterdir())
    assert sorted(f.suffix for f in files) == [".gz", ".whl"]
    r = run(sys.executable, "-m", "twine", "check", "--strict", *map(str, files))
    assert r.returncode == 0, r.stdout + r.stderr
    with zipfile.ZipFile(next(dist.glob("*.whl"))) as whl:
        names = whl.namelist()
        meta = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert f"Version: {__version__}" in meta and "License-Expression: MIT" in meta
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "radical/edge/portal/index.html" in names  # package data travels
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert [r for r in requires if "extra ==" not in r] == ["Requires-Dist: httpx>=0.27"]
    for extra in ("bridge", "edge", "hpc", "flower", "all", "embedded", "lucid", "dev"):
        assert f"Provides-Extra: {extra}" in meta
    assert "Project-URL: Source" in meta and "Classifier: Programming Language :: Python :: 3.11" in meta


def test_client_install_is_httpx_and_its_dependencies_only(client_venv):
    py = str(client_venv / "bin" / "python")
    # `packaging` to evaluate markers comes from pip's vendored copy: nothing is installed
    r = run(py, "-c", CLOSURE.replace("from packaging.requirements",
                                      "from pip._vendor.packaging.requirements"))
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    extra = set(found["installed"]) - BOOTSTRAP - {"radical-edge"}
    assert extra == set(found["closure"]), extra ^ set(found["closure"])
    assert not {"celery", "redis", "fastapi", "pydantic", "starlette", "psutil"} & extra


def test_client_commands_run_from_the_client_install(client_venv, bridge_url):
    exe = str(client_venv / "bin" / "radical-edge")
    r = run(exe, "--version")
    assert r.returncode == 0 and r.stdout.strip() == f"radical.edge {__version__}"
    r = run(exe, "edges", "--help")
    assert r.returncode == 0 and "--json" in r.stdout
    # what the client commands import lazily is there too (put/get: the staging client)
    r = run(str(client_venv / "bin" / "python"), "-c",
            "import radical.edge.plugins.staging.client, radical.edge.cli_transfer")
    assert r.returncode == 0, r.stderr
    # the real thing: the session's bridge, through the client install only
    r = run(exe, "edges", "--url", bridge_url, "--json", env={**os.environ})
    assert r.returncode == 0, r.stderr
    assert isinstance(json.loads(r.stdout), dict)


@pytest.mark.parametrize("command, extra", [
    (["bridge"], "bridge"), (["edge", "-n", "x"], "edge"), (["flower"], "flower"),
    (["up"], "all"), (["enroll", "create", "-n", "x"], "bridge")])
def test_server_commands_name_the_missing_extra(client_venv, command, extra):
    r = run(str(client_venv / "bin" / "radical-edge"), *command)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().endswith(f"pip install 'radical.edge[{extra}]'")


def test_all_extras_resolve_with_the_pip_python_ships(client_venv, dist, tmp_path):
    """`[all]` resolves with pip 23.2 (what Python 3.11 ships; its resolver once failed on
    kombu[redis]'s `packaging` pin against psij-python) to psij-python >= 0.9.11."""
    py = str(client_venv / "bin" / "python")
    pip_version = run(py, "-m", "pip", "--version").stdout.split()[1]
    assert pip_version.startswith("23."), pip_version  # the bundled one, not an upgrade
    report = tmp_path / "report.json"
    wheel = next(dist.glob("*.whl"))
    r = run(py, "-m", "pip", "install", "-q", "--dry-run", "--ignore-installed", "--report",
            str(report), f"{wheel}[all]", timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    versions = {re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower():
                item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}
    major, minor, patch = (int(x) for x in versions["psij-python"].split(".")[:3])
    assert (major, minor, patch) >= (0, 9, 11)
    assert {"celery", "kombu", "redis", "fastapi", "flower", "prometheus-client",
            "rhapsody-py"} <= set(versions)
