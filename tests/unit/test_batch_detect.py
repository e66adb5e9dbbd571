"""Batch-system detection, host role and allocation summaries (fake scheduler tools).

Detection takes an `env`, so each test builds a PATH holding only the fake `sinfo`,
`squeue`, `qstat`... it needs; no real scheduler is touched.
"""
from __future__ import annotations

import importlib
import os
import stat
import sys
from pathlib import Path

import pytest

from radical.edge.hpc.batch import (ALLOCATION_KEYS, backends, detect_batch_system,
                                        host_role, run_command)
from radical.edge.hpc.batch.pbs import (exec_hosts, loads_pbs_json, parse_pbs_mem_mb,
                                           parse_pbs_walltime, select_chunk)
from radical.edge.hpc.batch.slurm import expand_hostlist, gpus_from_text, parse_slurm_time

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pbs"


def tool(bindir: Path, name: str, body: str = "exit 0") -> None:
    path = bindir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def bindir(tmp_path: Path) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    for name in ("sh", "cat", "sleep"):  # fake tools are shell scripts
        real = next((Path(p) / name for p in ("/bin", "/usr/bin") if (Path(p) / name).exists()))
        (d / name).symlink_to(real)
    return d


def env_with(bindir: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PATH": str(bindir), "HOME": str(tmp_path),
            "PBS_CONF_FILE": str(tmp_path / "no-pbs.conf"), **extra}


# -- registry -----------------------------------------------------------------------------------
def test_registry_order_and_names() -> None:
    assert [c.name for c in backends()] == ["slurm", "pbs", "none"]


def test_base_and_registry_do_not_import_backends() -> None:
    for mod in ("base", "registry"):
        src = Path(importlib.import_module(f"radical.edge.hpc.batch.{mod}").__file__)
        text = src.read_text()
        assert "from .slurm" not in text and "from .pbs" not in text, mod
        assert "import slurm" not in text and "import pbs" not in text, mod


def test_no_scheduler_is_none(bindir: Path, tmp_path: Path) -> None:
    batch = detect_batch_system(env_with(bindir, tmp_path))
    assert batch.name == "none"
    assert batch.in_allocation() is False and batch.allocation() is None
    assert host_role(env_with(bindir, tmp_path)) == "login"


def test_slurm_tools_make_slurm_login(bindir: Path, tmp_path: Path) -> None:
    tool(bindir, "sinfo")
    tool(bindir, "squeue")
    env = env_with(bindir, tmp_path)
    batch = detect_batch_system(env)
    assert batch.name == "slurm" and batch.psij_executor == "slurm"
    assert not batch.in_allocation() and batch.allocation() is None
    assert host_role(env) == "login"
    assert batch.describe() == {"scheduler": "slurm", "role": "login", "job_id": None}


def test_torque_style_qstat_is_not_pbs(bindir: Path, tmp_path: Path) -> None:
    tool(bindir, "qstat", 'echo "Version: 6.1.2"')  # Torque / slurm-wlm-torque wrapper
    assert detect_batch_system(env_with(bindir, tmp_path)).name == "none"


def test_pbs_pro_detected_by_version_or_conf(bindir: Path, tmp_path: Path) -> None:
    tool(bindir, "qstat", 'echo "pbs_version = 2022.1.3.20230614134139"')
    assert detect_batch_system(env_with(bindir, tmp_path)).name == "pbs"
    tool(bindir, "qstat", "exit 1")
    conf = tmp_path / "pbs.conf"
    conf.write_text("PBS_EXEC=/opt/pbs\n")
    assert detect_batch_system(env_with(bindir, tmp_path, PBS_CONF_FILE=str(conf))).name == "pbs"


def test_slurm_wins_over_pbs_on_login_but_job_env_decides(bindir: Path, tmp_path: Path) -> None:
    for name in ("sinfo", "squeue"):
        tool(bindir, name)
    tool(bindir, "qstat", 'echo "pbs_version = 2022.1.3"')
    env = env_with(bindir, tmp_path)
    assert detect_batch_system(env).name == "slurm"
    env["PBS_JOBID"] = "4101.sched01"
    assert detect_batch_system(env).name == "pbs"
    assert host_role(env) == "compute"


# -- SLURM allocation ---------------------------------------------------------------------------
SLURM_ENV = {"SLURM_JOB_ID": "812", "SLURM_JOB_PARTITION": "gpu", "SLURM_JOB_NUM_NODES": "2",
             "SLURM_JOB_NODELIST": "gpu[03-04]", "SLURM_CPUS_ON_NODE": "64",
             "SLURM_GPUS_ON_NODE": "4", "SLURM_JOB_ACCOUNT": "proj7",
             "SLURM_JOB_NAME": "radical-edge"}


def test_slurm_allocation_from_env_and_squeue(bindir: Path, tmp_path: Path) -> None:
    tool(bindir, "sinfo")
    tool(bindir, "squeue", 'echo "1:15:00|2:00:00"')
    env = env_with(bindir, tmp_path, **SLURM_ENV)
    batch = detect_batch_system(env)
    assert batch.name == "slurm" and batch.in_allocation() and host_role(env) == "compute"
    alloc = batch.allocation()
    assert set(ALLOCATION_KEYS) <= set(alloc)
    assert alloc == {"job_id": "812", "partition": "gpu", "n_nodes": 2, "nodelist": "gpu[03-04]",
                     "cpus_per_node": 64, "gpus_per_node": 4, "account": "proj7",
                     "job_name": "radical-edge", "runtime": 7200, "remaining_seconds": 4500}


def test_slurm_allocation_falls_back_to_scontrol(bindir: Path, tmp_path: Path) -> None:
    tool(bindir, "sinfo")
    tool(bindir, "squeue", "exit 1")
    line = ("JobId=812 JobName=edge UserId=alice(1000) Account=proj7 JobState=RUNNING "
            "RunTime=00:10:00 TimeLimit=01:00:00 Partition=debug NodeList=n[1-3] NumNodes=3 "
            "NumCPUs=6 TRES=cpu=6,node=3,billing=6,gres/gpu=6")
    tool(bindir, "scontrol", f"echo '{line}'")
    env = env_with(bindir, tmp_path, SLURM_JOB_ID="812")
    alloc = detect_batch_system(env).allocation()
    assert alloc["partition"] == "debug" and alloc["n_nodes"] == 3
    assert alloc["nodelist"] == "n[1-3]" and alloc["account"] == "proj7"
    assert alloc["runtime"] == 3600 and alloc["remaining_seconds"] == 3000
    assert alloc["gpus_per_node"] == 6  # from TRES when the env says nothing


def test_slurm_allocation_survives_broken_tools(bindir: Path, tmp_path: Path) -> None:
    tool(bindir, "squeue", "sleep 5")  # hangs: the timeout must cut it
    env = env_with(bindir, tmp_path, SLURM_JOB_ID="9", SLURM_JOB_NUM_NODES="1")
    batch = detect_batch_system(env)
    batch.timeout = 0.5
    alloc = batch.allocation()
    assert alloc["job_id"] == "9" and alloc["n_nodes"] == 1
    assert alloc["runtime"] is None and alloc["remaining_seconds"] is None


# -- PBS allocation -----------------------------------------------------------------------------
def test_pbs_allocation_from_qstat_json(bindir: Path, tmp_path: Path) -> None:
    tool(bindir, "qstat", f'[ "$1" = --version ] && echo "pbs_version = 2022.1.3" '
                          f'|| cat "{FIXTURES / "qstat_f_4101.json"}"')
    nodefile = tmp_path / "nodes"
    nodefile.write_text("x1001c0s0b0n0.hsn\n" * 4 + "x1001c0s1b0n0.hsn\n" * 4)
    env = env_with(bindir, tmp_path, PBS_JOBID="4101.sched01", PBS_QUEUE="small",
                   PBS_NODEFILE=str(nodefile), PBS_JOBNAME="lammps_scale")
    batch = detect_batch_system(env)
    assert batch.name == "pbs" and host_role(env) == "compute"
    alloc = batch.allocation()
    assert alloc == {"job_id": "4101.sched01", "partition": "small", "n_nodes": 2,
                     "nodelist": "x1001c0s0b0n0,x1001c0s1b0n0", "cpus_per_node": 64,
                     "gpus_per_node": 4, "account": "ProjA", "job_name": "lammps_scale",
                     "runtime": 7200, "remaining_seconds": 7200 - (42 * 60 + 17)}


def test_pbs_allocation_without_qstat(bindir: Path, tmp_path: Path) -> None:
    env = env_with(bindir, tmp_path, PBS_JOBID="77.srv", PBS_QUEUE="workq", NCPUS="8")
    alloc = detect_batch_system(env).allocation()
    assert alloc["job_id"] == "77.srv" and alloc["partition"] == "workq"
    assert alloc["cpus_per_node"] == 8 and alloc["runtime"] is None


# -- helpers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,seconds", [
    ("UNLIMITED", None), ("", None), ("N/A", None), ("30", 1800), ("5:07", 307),
    ("01:00:00", 3600), ("1-00:00:00", 86400), ("2-12", 2 * 86400 + 12 * 3600),
    ("1-02:03", 86400 + 2 * 3600 + 180), ("junk", None)])
def test_parse_slurm_time(text: str, seconds: int | None) -> None:
    assert parse_slurm_time(text) == seconds


def test_expand_hostlist() -> None:
    assert expand_hostlist("n[01-03,07],gpu1") == ["n01", "n02", "n03", "n07", "gpu1"]
    assert expand_hostlist("r[1-2]-n[1-2]") == ["r1-n1", "r1-n2", "r2-n1", "r2-n2"]
    assert expand_hostlist("") == []


@pytest.mark.parametrize("text,gpus", [
    ("gpu:a100:4(S:0-1)", 4), ("gpu:2,gpu:v100:2", 4), ("4", 4), ("a100:8", 8),
    ("(null)", None), ("", None), ("cpu=6,node=3,gres/gpu:a100=2,gres/gpu=2", 2),
    ("gpu:a100:4(S:0-1),shard:8", 4)])
def test_gpus_from_text(text: str, gpus: int | None) -> None:
    assert gpus_from_text(text) == gpus


def test_pbs_helpers() -> None:
    assert parse_pbs_walltime("72:00:00") == 259200 and parse_pbs_walltime("90") == 90
    assert parse_pbs_walltime(None) is None and parse_pbs_walltime("x") is None
    assert parse_pbs_mem_mb("527672488kb") == 515305 and parse_pbs_mem_mb("32gb") == 32768
    assert parse_pbs_mem_mb("2tb") == 2 * 1024 * 1024 and parse_pbs_mem_mb("1048576") == 1
    assert parse_pbs_mem_mb("1024kw") == 8
    assert exec_hosts("a/0*64+b/0*64+a/1") == ["a", "b"]
    assert select_chunk("2:ncpus=64:ngpus=4+1:ncpus=8") == {"count": "2", "ncpus": "64",
                                                             "ngpus": "4"}


def test_loads_pbs_json_repairs_known_bugs() -> None:
    text = '{"a":"\\u@\\h","b":"x\\,y","c":007,"d":"ok\\n","q":1,"q":2}'
    doc = loads_pbs_json(text)
    assert doc == {"a": "\\u@\\h", "b": "x\\,y", "c": "007", "d": "ok\n", "q": [1, 2]}
    with pytest.raises(ValueError):
        loads_pbs_json("{not json")


def test_run_command_never_raises(bindir: Path, tmp_path: Path) -> None:
    env = env_with(bindir, tmp_path)
    assert run_command(["definitely-not-a-tool-xyz"], env=env).rc == -1
    tool(bindir, "slow", "sleep 5")
    res = run_command([str(bindir / "slow")], timeout=0.3, env=env)
    assert res.rc == -1 and "timed out" in res.stderr
    res = run_command([sys.executable, "-c", "print('hi')"], env=dict(os.environ))
    assert res.ok and res.stdout.strip() == "hi"


def test_sinfo_partitions_smallest_node_wins_and_default_is_marked():
    from radical.edge.hpc.batch.slurm import parse_sinfo_partitions

    text = ("gpu*|64+|gpu:a100:4(S:0-1)|2-00:00:00\ngpu*|32|gpu:a100:2|2-00:00:00\n"
            "cpu|8|(null)|infinite\nbroken line\n")
    assert parse_sinfo_partitions(text) == [
        {"name": "gpu", "default": True, "cpus_per_node": 32, "gpus_per_node": 2,
         "max_minutes": 2880},
        {"name": "cpu", "default": False, "cpus_per_node": 8, "gpus_per_node": 0,
         "max_minutes": None}]
