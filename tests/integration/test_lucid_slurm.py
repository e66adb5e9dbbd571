"""The lucid plugin on the edge's own SLURM (scripts/slurm_cluster.sh): a real RADICAL-Pilot
pilot runs as a SLURM batch job (resource `edge.slurm`, written by the plugin from what the
edge detected), its tasks run inside that job, closing the session cancels the job and leaves
no process behind, and the edge's secrets do not reach the job script."""
from __future__ import annotations

import subprocess
import time
import uuid

import pytest
from test_lucid import cmdlines
from waiting import wait_for

from radical.edge import EdgeError, services
from radical.edge.plugins.lucid.session import session_processes

pytest.importorskip("radical.pilot")
pytest.importorskip("psij")
pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

EDGE = "lucid-slurm-e"
SECRET = f"s3cret-{uuid.uuid4().hex}"


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout


def jobs_under(path: str) -> dict[str, str]:
    """{job id: state} of the SLURM jobs whose working directory lies under `path`."""
    out = {}
    for line in sh("squeue", "-h", "-o", "%i|%T|%Z").splitlines():
        job, state, workdir = line.split("|", 2)
        if workdir.startswith(path):
            out[job] = state
    return out


@pytest.fixture(scope="module")
def edge(slurm_cluster, redis_url, bridge_url, log_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("lucid-slurm")
    svc = services.start_edge(redis_url, EDGE, "lucid", log_dir, bridge_url=bridge_url,
                              env={"RADICAL_EDGE_LUCID_DIR": str(root),
                                   "RADICAL_EDGE_LUCID_MAX_WAIT": "20",
                                   "RADICAL_EDGE_TEST_SECRET": SECRET})
    svc.extra["root"] = root
    yield svc
    svc.stop(timeout=60)  # RP's close takes ~15 s


def test_bad_pilots_are_422(bc, edge):
    with bc.get_edge_client(EDGE).get_plugin("lucid") as lc:
        for desc, words in [
            ({"resource": "edge.pbs"}, "edge.slurm"),
            ({"resource": "edge.slurm", "queue": "nosuch"}, "debug"),
            ({"resource": "edge.slurm", "queue": "debug", "runtime": 241}, "240 min"),
            ({"resource": "edge.slurm", "queue": 'debug"\n#SBATCH --x'}, "queue"),
            ({"resource": "edge.slurm", "project": "a b"}, "project"),
            ({"resource": "../etc"}, "resource"),
        ]:
            with pytest.raises(EdgeError) as err:
                lc.pilot_submit(desc)
            assert err.value.status == 422 and words in str(err.value), (desc, err.value)


def test_pilot_is_a_slurm_job_running_tasks_and_close_cancels_it(bc, edge):
    lc = bc.get_edge_client(EDGE).get_plugin("lucid")
    started = time.monotonic()
    pid = lc.pilot_submit({"resource": "edge.slurm", "cores": 2, "runtime": 10,
                           "queue": "debug"})["pid"]
    where = edge.extra["root"] / EDGE / lc.sid
    jobs = wait_for(lambda: jobs_under(str(where)), 120, 0.5, "the pilot's SLURM job")
    [(job_id, _state)] = jobs.items()
    queued = time.monotonic() - started
    wait_for(lambda: lc.pilot_status(pid)["state"] in ("PMGR_ACTIVE", "FAILED", "CANCELED"),
             300, 0.5, "pilot active")
    active = time.monotonic() - started
    print(f"\nlucid edge.slurm: pilot_submit -> job {job_id} in squeue {queued:.1f} s, "
          f"-> PMGR_ACTIVE {active:.1f} s")
    pilot = lc.pilot_status(pid)
    assert pilot["state"] == "PMGR_ACTIVE" and pilot["resource"] == "edge.slurm", pilot
    assert jobs_under(str(where)) == {job_id: "RUNNING"}

    # the job script (kept by SLURM) carries none of the edge's RADICAL_EDGE_* values
    script = sh("scontrol", "write", "batch_script", job_id, "-")
    assert "bootstrap_0.sh" in script and "RADICAL_CONFIG_USER_DIR" in script, script
    assert SECRET not in script and "RADICAL_EDGE_" not in script

    tids = [lc.task_submit({"executable": "/bin/sh",
                            "arguments": ["-c", f"echo task {i} in job $SLURM_JOB_ID"]})["tid"]
            for i in range(3)]
    t0 = time.monotonic()
    for i, tid in enumerate(tids):
        task = lc.wait_final(tid, timeout=120)
        assert task["state"] == "DONE" and task["exit_code"] == 0, task
        assert task["stdout"] == f"task {i} in job {job_id}\n"
    print(f"lucid edge.slurm: 3 tasks DONE {time.monotonic() - t0:.1f} s after submit")

    sleeper = lc.task_submit({"executable": "/bin/sleep", "arguments": ["300"]})["tid"]
    wait_for(lambda: lc.task_wait(sleeper, timeout=2)["task"]["state"] == "AGENT_EXECUTING",
             120, 0.1, "sleep task running")
    running = session_processes(where)
    names = " ".join(cmdlines(running))
    assert "rp.agent.0" in names and "sleep 300" in names, names

    t0 = time.monotonic()
    lc.close()
    print(f"lucid edge.slurm: close {time.monotonic() - t0:.1f} s")
    assert job_id not in jobs_under("/"), "closing the session left the pilot job queued"
    state = sh("sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State").strip()
    assert state.startswith(("CANCELLED", "COMPLETED")), state
    left = [p for p in running if p.is_running() and p.status() != "zombie"]
    assert not left and not session_processes(where), cmdlines(left)
    assert not where.exists()


def test_edge_stop_cancels_the_pilot_job(bc, make_edge, tmp_path):
    svc = make_edge("lucid", name="lucid-slurm-stop",
                    env={"RADICAL_EDGE_LUCID_DIR": str(tmp_path)})
    lc = bc.get_edge_client("lucid-slurm-stop").get_plugin("lucid")
    lc.pilot_submit({"resource": "edge.slurm", "cores": 1, "runtime": 10})
    tid = lc.task_submit({"executable": "/bin/sleep", "arguments": ["300"]})["tid"]
    wait_for(lambda: lc.task_wait(tid, timeout=5)["task"]["state"] == "AGENT_EXECUTING",
             300, 0.1, "sleep task running")
    [job_id] = jobs_under(str(tmp_path))
    assert session_processes(tmp_path)
    svc.stop(timeout=60)
    assert svc.proc.returncode == 0
    assert job_id not in jobs_under("/"), "the edge stopped but its pilot job is still queued"
    left = session_processes(tmp_path)
    assert not left, cmdlines(left)


def test_leftover_jobs_of_a_session_dir_are_cancelled(tmp_path):
    """The last resort after RP's close: jobs working under the session dir are cancelled,
    a job in a sibling dir whose name merely starts the same is not."""
    from radical.edge.hpc.batch.slurm import SlurmBatchSystem

    ours, sibling = tmp_path / "session.1" / "sandbox", tmp_path / "session.12"
    for where in (ours, sibling):
        where.mkdir(parents=True)
    ids = [sh("sbatch", "--parsable", "-t", "5", "-o", "/dev/null", f"--chdir={where}",
              "--wrap", "sleep 300").strip() for where in (ours, sibling)]
    assert all(i.isdigit() for i in ids), ids
    try:
        assert SlurmBatchSystem().cancel_jobs_under(str(tmp_path / "session.1")) == [ids[0]]
        wait_for(lambda: ids[0] not in jobs_under("/"), 30, 0.2, "job cancelled")
        assert ids[1] in jobs_under(str(sibling))
    finally:
        sh("scancel", *ids)
