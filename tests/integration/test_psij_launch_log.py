"""A launched edge that never joins: its parent serves the job's stderr and the tail of the
edge's own log (`GET launch_log/{sid}/{job_id}`, SDK `PsijClient.get_launch_log`), so the
portal and scripts can say why (issue 15 item 4). Real psij local executor, real
radical-edge-wrapper.sh."""
from __future__ import annotations

import uuid

import pytest

import authed
from psij_helpers import child_env, start_parent

from radical.edge.sdk import EdgeError

pytest.importorskip("psij")


@pytest.fixture(scope="module")
def parent(redis_url, bridge_url, log_dir, psij_dir):
    svc = start_parent(redis_url, bridge_url, log_dir, psij_dir, plugins="psij")
    yield svc
    svc.stop()


def launch_log(bridge_url: str, parent, sid: str, job_id: str):
    return authed.get(f"{bridge_url}/{parent.extra['name']}/psij/launch_log/{sid}/{job_id}",
                      timeout=20)


def test_failed_launch_shows_stderr_and_edge_log(pj, notes, parent, bridge_url, tmp_path):
    name = f"dead{uuid.uuid4().hex[:6]}"
    # the wrapper logs, then finds no interpreter: the edge never starts
    sub = pj.submit_tunneled({"arguments": ["-n", name, "--python", "/nonexistent/python3"],
                              "environment": child_env(tmp_path)}, executor="local")
    final = notes.wait_state(sub["job_id"], "FAILED", timeout=60)
    assert final["edge_name"] == name

    r = launch_log(bridge_url, parent, pj.sid, sub["job_id"])
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["edge_name"] == name and out["state"] == "FAILED" and out["exit_code"] == 2
    assert f"edge '{name}': logging to" in out["stderr"]
    assert out["log_path"] and out["log_path"].startswith(str(tmp_path))
    assert "no usable Python interpreter (tried '/nonexistent/python3')" in out["log"]
    assert out["log_note"] is None
    assert pj.get_launch_log(sub["job_id"]) == out  # the SDK's way to the same answer


def test_launch_log_of_plain_jobs_and_unknown_ids(pj, notes, parent, bridge_url):
    sub = pj.submit_job({"executable": "/bin/true"})
    notes.wait_state(sub["job_id"], "COMPLETED")
    r = launch_log(bridge_url, parent, pj.sid, sub["job_id"])
    assert r.status_code == 404 and "did not launch an edge" in r.json()["detail"]
    r = launch_log(bridge_url, parent, pj.sid, "no-such-job")
    assert r.status_code == 404 and "unknown job" in r.json()["detail"]


def test_sdk_launch_log_errors_are_clear_404s(pj, notes, parent):
    sub = pj.submit_job({"executable": "/bin/true"})
    notes.wait_state(sub["job_id"], "COMPLETED")
    with pytest.raises(EdgeError) as err:
        pj.get_launch_log(sub["job_id"])
    assert err.value.status == 404 and "did not launch an edge" in err.value.detail
    with pytest.raises(EdgeError) as err:
        pj.get_launch_log("no-such-job")
    assert err.value.status == 404 and "unknown job" in err.value.detail
    assert err.value.edge == parent.extra["name"] and err.value.plugin == "psij"
    sid = pj.sid
    pj.unregister_session()
    pj._sid = sid  # a session the edge has closed
    with pytest.raises(EdgeError) as err:
        pj.get_launch_log(sub["job_id"])
    assert err.value.status == 404 and "unknown session" in err.value.detail
    pj._sid = None
