"""psij submission errors say what is wrong, in plain words: a missing or wrong working
directory is a 422 naming the path (not a Python `PosixPath(...)` repr, not a 503 saying the
executor is missing); an executor whose submit tool the edge lacks is a 422, never a 5xx."""
from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from authed import AUTH

from radical.edge import services

pytest.importorskip("psij")


@pytest.fixture(scope="module")
def edge(module_edges):
    return module_edges.psij_edge("psij", prefix="pe")


@pytest.fixture
def http(bridge_url):
    with httpx.Client(base_url=bridge_url, headers=AUTH, timeout=60) as client:
        yield client


@pytest.mark.parametrize("directory, words", [
    ("/nonexistent/dir", "directory '/nonexistent/dir' does not exist on this edge"),
    ("/etc/passwd", "directory '/etc/passwd' is not a directory"),
])
def test_bad_working_directory_is_a_plain_422(http, edge, directory, words):
    sid = http.post(f"/{edge}/psij/register_session", json={}).json()["sid"]
    r = http.post(f"/{edge}/psij/submit/{sid}",
                  json={"job_spec": {"executable": "/bin/true", "directory": directory}})
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == words
    assert "Path(" not in r.text


def test_unavailable_executor_is_a_4xx_and_not_offered(http, edge):
    info = http.get(f"/{edge}/psij/executors").json()
    missing = [n for n in ("lsf", "pbs") if n not in info["executors"]]
    assert missing, "the test host has bsub and qsub: nothing to refuse"
    sid = http.post(f"/{edge}/psij/register_session", json={}).json()["sid"]
    for name in missing:
        assert name in info["unavailable"]
        r = http.post(f"/{edge}/psij/submit/{sid}",
                      json={"job_spec": {"executable": "/bin/true"}, "executor": name})
        assert r.status_code == 422, r.text
        assert "not available on this edge" in r.json()["detail"]


def test_a_good_directory_still_runs(http, edge, tmp_path):
    sid = http.post(f"/{edge}/psij/register_session", json={}).json()["sid"]
    r = http.post(f"/{edge}/psij/submit/{sid}", json={"job_spec": {
        "executable": "/bin/sh", "arguments": ["-c", "pwd > here.txt"],
        "directory": str(tmp_path)}})
    assert r.status_code == 200, r.text
    assert r.json()["directory"] == str(tmp_path)
    job_id = r.json()["job_id"]
    st = {}

    def ended():
        st.update(http.get(f"/{edge}/psij/status/{sid}/{job_id}").json())
        return st["state"] in ("COMPLETED", "FAILED")
    services.wait_until(ended, 30, "the job to end")
    assert st["state"] == "COMPLETED", st
    assert Path(tmp_path, "here.txt").read_text().strip() == os.path.realpath(tmp_path)
