"""The psij plugin against the real single-node SLURM (scripts/slurm_cluster.sh).

A job runs, streams its output, completes with its exit code; another is canceled; job
attributes (partition, account, walltime, custom options, environment) reach SLURM as
asked; an unknown partition is a clear 422. State changes arrive within ~2 s.
"""
from __future__ import annotations

import subprocess
import time

import pytest

from radical.edge import EdgeError

from psij_helpers import start_parent, wait_for
pytest.importorskip("psij")
pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout


@pytest.fixture(scope="module")
def parent(slurm_cluster, redis_url, bridge_url, log_dir, psij_dir):
    svc = start_parent(redis_url, bridge_url, log_dir, psij_dir)
    yield svc
    svc.stop()


def test_job_runs_streams_and_completes(pj, notes, parent, psij_dir):
    script = "echo start; sleep 2; echo middle; sleep 2; echo end; echo warn >&2; exit 7"
    t0 = time.time()
    sub = pj.submit_job({"executable": "/bin/bash", "arguments": ["-c", script],
                         "attributes": {"duration": 120}}, "slurm")
    job_id, native = sub["job_id"], sub["native_id"]
    assert native.isdigit() and sub["executor"] == "slurm"
    notes.wait_state(job_id, "ACTIVE", timeout=30)
    running_after = notes.arrival(job_id, "ACTIVE") - t0
    print(f"\nslurm: submit -> ACTIVE notification {running_after:.2f} s")
    seen, offsets = [], (0, 0)
    while True:
        st = pj.get_job_status(job_id, *offsets)
        if st["stdout"]:
            seen.append((st["state"], st["stdout"]))
        new = (st["stdout_offset"], st["stderr_offset"])
        if st["state"] in ("COMPLETED", "FAILED", "CANCELED") and new == offsets:
            break
        offsets = new
        time.sleep(0.3)
    assert "".join(text for _s, text in seen) == "start\nmiddle\nend\n"
    assert any(state == "ACTIVE" for state, _t in seen), f"no output while running: {seen}"
    assert st["state"] == "FAILED" and st["exit_code"] == 7
    assert pj.get_job_status(job_id)["stderr"] == "warn\n"
    final = notes.wait_state(job_id, "FAILED", timeout=10)
    assert final["exit_code"] == 7 and final["native_id"] == native
    # how fast the end was seen: the job's last line is written ~4 s after ACTIVE
    lag = notes.arrival(job_id, "FAILED") - notes.arrival(job_id, "ACTIVE")
    print(f"slurm: ACTIVE -> FAILED notification {lag:.2f} s (job body ~4 s)")
    assert lag < 4 + 3

    ok = pj.submit_job({"executable": "/bin/echo", "arguments": ["fine"]}, "slurm")
    result = pj.wait_job(ok["job_id"], timeout=60, interval=0.5)
    assert result["state"] == "COMPLETED" and result["exit_code"] == 0
    assert result["stdout"] == "fine\n"
    notes.wait_state(ok["job_id"], "COMPLETED", timeout=10)
    assert notes.states(ok["job_id"]) == ["QUEUED", "ACTIVE", "COMPLETED"]
    # notifications of one edge arrive in order: a late duplicate of the first job's states
    # would have come before the second job's end
    assert notes.states(job_id) == ["QUEUED", "ACTIVE", "FAILED"]
    # psij's scripts and exit-code files are gone (psij itself leaves <id>.out behind)
    work = psij_dir / "work" / parent.extra["name"] / "slurm"
    assert work.is_dir() and not [p.name for p in work.iterdir()
                                  if p.name.startswith((native, ok["native_id"]))
                                  or p.suffix == ".job"]


def test_cancel_running_job(pj, notes):
    sub = pj.submit_job({"executable": "/bin/sleep", "arguments": ["300"]}, "slurm")
    notes.wait_state(sub["job_id"], "ACTIVE", timeout=30)
    t0 = time.time()
    pj.cancel_job(sub["job_id"])
    note = notes.wait_state(sub["job_id"], "CANCELED", timeout=15)
    took = notes.arrival(sub["job_id"], "CANCELED") - t0
    print(f"\nslurm: cancel -> CANCELED notification {took:.2f} s")
    assert note["exit_code"] is None
    assert sh("squeue", "-h", "-j", sub["native_id"], "-o", "%T").strip() in ("", "CANCELLED")
    again = pj.cancel_job(sub["job_id"])  # idempotent: 200 with the final state
    assert again["state"] == "CANCELED" and again["canceled"] is False
    assert notes.states(sub["job_id"]) == ["QUEUED", "ACTIVE", "CANCELED"]


def test_attributes_reach_slurm(pj, notes):
    env = {"ODD": "a b,c 'd' \"e\" $HOME", "PLAIN": "1"}
    sub = pj.submit_job({
        "executable": "/bin/bash",
        "arguments": ["-c", 'printf "%s|%s|%s\\n" "$ODD" "$PLAIN" "$SLURM_JOB_PARTITION"; '
                            "sleep 30"],
        "name": "psij-attrs",
        "environment": env,
        "attributes": {"queue_name": "batch", "account": "radical", "duration": "00:02:30",
                       "slurm.comment": "from radical edge",
                       "custom_attributes": {"slurm.nice": "10"}},
        "resources": {"node_count": 1}}, "slurm")
    try:
        notes.wait_state(sub["job_id"], "ACTIVE", timeout=30)
        info = sh("scontrol", "show", "job", "-o", sub["native_id"])
        for expected in ("JobName=psij-attrs", "Partition=batch", "Account=radical",
                         "TimeLimit=00:03:00", "Comment=from radical edge", "Nice=10",
                         "NumNodes=1"):
            assert expected in info, (expected, info)
        st = wait_for(lambda: (s := pj.get_job_status(sub["job_id"]))["stdout"] and s, 20)
        assert st["stdout"] == f"{env['ODD']}|1|batch\n"
        assert st["queue_name"] == "batch" and st["account"] == "radical"
        assert st["duration"] == 150 and st["node_count"] == 1
    finally:
        pj.cancel_job(sub["job_id"])
    notes.wait_state(sub["job_id"], "CANCELED", timeout=15)


def test_long_walltime_is_valid_for_sbatch(pj, notes):
    # str(timedelta(days=1)) is '1 day, 0:00:00', which sbatch refuses; psij would send it
    sub = pj.submit_job({"executable": "/bin/true", "attributes": {"duration": "1-00:00:00",
                                                                 "queue_name": "batch"}},
                        "slurm")
    notes.wait_state(sub["job_id"], "ACTIVE", timeout=30)
    info = sh("scontrol", "show", "job", "-o", sub["native_id"])
    assert "TimeLimit=1-00:00:00" in info, info
    notes.wait_state(sub["job_id"], "COMPLETED", timeout=30)


@pytest.mark.parametrize("attrs, words", [
    ({"queue_name": "nosuchqueue"}, "invalid partition"),
    ({"slurm.constraint": "nosuchfeature"}, "invalid feature"),
    ({"custom_attributes": {"slurm.gres": "gpu:1"}}, "generic resource"),
])
def test_refused_by_slurm_is_422(pj, attrs, words):
    with pytest.raises(EdgeError) as err:
        pj.submit_job({"executable": "/bin/true", "attributes": attrs}, "slurm")
    assert err.value.status == 422, err.value
    assert words in err.value.detail.lower(), err.value.detail
    assert err.value.detail.startswith("slurm refused the job")
