"""queue_info's SLURM backend against a real single-node SLURM (22.05 + slurmdbd).

Every answer is compared with what `sinfo`, `squeue` and `sacctmgr` print themselves.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from radical.edge.plugins.queue_info.backends import (CancelConflict, UnknownJob,
                                                     UnknownQueue, make_queue_info)
from radical.edge.plugins.queue_info.backends.shapes import (ALLOCATION_KEYS, JOB_KEYS,
                                                            QUEUE_KEYS)
from radical.edge.plugins.queue_info.backends.slurm import QueueInfoSlurm
from radical.edge.hpc.batch import detect_batch_system
from radical.edge.hpc.batch.slurm import SlurmBatchSystem

from psij_helpers import wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]
SRC = Path(__file__).resolve().parents[2] / "src"


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout


@pytest.fixture(params=["json", "text"])
def qi(request) -> QueueInfoSlurm:
    """The backend as the factory builds it, and once more forced onto the text fallback."""
    if request.param == "json":
        backend = make_queue_info(detect_batch_system(), ttl=30)
        assert isinstance(backend, QueueInfoSlurm)
        return backend
    return QueueInfoSlurm(SlurmBatchSystem(), ttl=30, use_json=False)


def test_detects_slurm_login() -> None:
    batch = detect_batch_system({k: v for k, v in os.environ.items()
                                 if not k.startswith("SLURM_")})
    assert batch.name == "slurm" and not batch.in_allocation()


def test_partitions_match_sinfo(qi: QueueInfoSlurm, slurm_cluster: dict) -> None:
    queues = qi.get_info(user="*", force=True)["queues"]
    rows = [line.split() for line in sh("sinfo", "-h", "-o", "%P %a %D %c %l").splitlines()]
    assert set(queues) == {r[0].rstrip("*") for r in rows} == {"debug", "batch"}
    for part, avail, nodes, cpus, _limit in rows:
        q = queues[part.rstrip("*")]
        assert set(QUEUE_KEYS) <= set(q)
        assert q["default"] == part.endswith("*")
        assert q["state"] == avail.upper() and q["nodes_total"] == int(nodes)
        assert q["cpus_per_node"] == int(cpus)
    assert (queues["debug"]["time_limit"], queues["batch"]["time_limit"]) == (240, 1440)
    real_mem = int(sh("sinfo", "-h", "-N", "-o", "%m").split()[0])
    assert queues["debug"]["mem_per_node_mb"] == real_mem
    assert queues["debug"]["nodes_available"] == 1
    assert qi.get_info(force=True)["queues"].keys() == queues.keys()  # root sees both


def test_job_listed_then_cancelled(qi: QueueInfoSlurm) -> None:
    job_id = sh("sbatch", "--parsable", "-p", "batch", "-J", "qi-real", "-t", "5",
                "-o", "/dev/null", "--wrap", "sleep 60").strip().split(";")[0]
    try:
        def listed():
            jobs = qi.list_jobs("batch", force=True)["jobs"]
            return next((j for j in jobs if j["job_id"] == job_id), None)
        job = wait_for(listed)
        assert set(JOB_KEYS) <= set(job)
        squeue = sh("squeue", "-h", "-j", job_id, "-o", "%T|%j|%u|%P|%a|%l").strip().split("|")
        assert job["job_name"] == "qi-real" == squeue[1] and job["user"] == "root" == squeue[2]
        assert job["partition"] == "batch" and job["account"] == squeue[4] == "radical"
        assert job["state"] in ("PENDING", "RUNNING") and job["time_limit"] == 5
        assert job["submit_time"] > time.time() - 120
        assert any(j["job_id"] == job_id for j in qi.list_all_jobs()["jobs"])
        assert not any(j["job_id"] == job_id for j in qi.list_jobs("debug", force=True)["jobs"])
        assert qi.list_all_jobs(user="nobody", force=True)["jobs"] == []

        answer = qi.cancel_job(job_id)
        assert answer["status"] == "canceled" and answer["job_id"] == job_id
        wait_for(lambda: sh("squeue", "-h", "-j", job_id, "-o", "%T").strip()
                 in ("", "CANCELLED", "COMPLETING"))
        wait_for(lambda: all(j["job_id"] != job_id  # ended jobs are not listed
                             for j in qi.list_all_jobs(force=True)["jobs"]))
        with pytest.raises(CancelConflict) as err:  # scontrol still knows it (MinJobAge)
            qi.cancel_job(job_id)
        assert err.value.status == 409
    finally:
        subprocess.run(["scancel", job_id], capture_output=True, timeout=30)


def test_allocations_match_sacctmgr(qi: QueueInfoSlurm) -> None:
    rows = qi.list_allocations(force=True)["allocations"]
    raw = sh("sacctmgr", "-n", "-P", "show", "assoc", "users=root",
             "format=Account,User,MaxJobs,MaxSubmit").split()
    assert sorted((r["account"], r["user"]) for r in rows) == \
        sorted(tuple(line.split("|")[:2]) for line in raw)
    ours = next(r for r in rows if r["account"] == "radical")
    assert set(ALLOCATION_KEYS) <= set(ours)
    assert (ours["max_jobs"], ours["max_submit"], ours["max_wall"]) == (20, 50, "1-00:00:00")
    assert ours["max_wall_minutes"] == 1440
    assert ours["qos"] == "normal" and ours["cluster"] == "radical"
    everyone = qi.list_allocations(user="*", force=True)["allocations"]
    assert any(r["account"] == "radical" and r["user"] == "" for r in everyone)


def test_unknown_queue_and_job(qi: QueueInfoSlurm) -> None:
    with pytest.raises(UnknownQueue) as err:
        qi.list_jobs("no-such-partition")
    assert err.value.status == 404 and "debug" in err.value.detail
    for bad in ("999999", "--user=root", "12;ls"):
        with pytest.raises(UnknownJob) as err:
            qi.cancel_job(bad)
        assert err.value.status == 404


def test_allocation_inside_a_real_job(tmp_path: Path) -> None:
    """srun a probe: inside the job, detection says compute and summarises the allocation."""
    probe = ("import json; from radical.edge.hpc.batch import detect_batch_system, "
             "host_role; b = detect_batch_system(); "
             "print(json.dumps({'role': host_role(), 'alloc': b.allocation()}))")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(["srun", "-p", "debug", "-J", "alloc-probe", "-t", "10", "-N", "1",
                          "-n", "1", sys.executable, "-c", probe], capture_output=True,
                         text=True, timeout=120, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    alloc = seen["alloc"]
    assert seen["role"] == "compute"
    host = sh("hostname", "-s").strip()
    assert alloc["partition"] == "debug" and alloc["n_nodes"] == 1 and alloc["nodelist"] == host
    assert alloc["job_name"] == "alloc-probe" and alloc["account"] == "radical"
    assert alloc["cpus_per_node"] >= 1 and alloc["runtime"] == 600
    assert 0 < alloc["remaining_seconds"] <= 600
