"""SLURM parsing without a cluster: outputs recorded on Debian 12's slurm 22.05.8 (the test
cluster of scripts/slurm_cluster.sh), a larger hand-made text scenario (drained, down and GPU
nodes), and a 23.02-style JSON sample with wrapped numbers (written from the documented
schema, not recorded). The backend is driven through a fake command runner.
"""
from __future__ import annotations

import json
from typing import Sequence

import pytest

from radical.edge.plugins.queue_info.backends import (BackendUnavailable, CancelConflict,
                                                     CancelDenied, CancelFailed, UnknownJob,
                                                     UnknownQueue)
from radical.edge.plugins.queue_info.backends.shapes import (ALLOCATION_KEYS, JOB_KEYS,
                                                            QUEUE_KEYS)
from radical.edge.plugins.queue_info.backends.slurm import QueueInfoSlurm
from radical.edge.plugins.queue_info.backends.slurm_parse import (
    build_queues, jobs_from_squeue_json, jobs_from_squeue_text, nodes_from_sinfo_json,
    nodes_from_sinfo_text, num, parse_assocs, parse_partitions, states)
from radical.edge.hpc.batch.base import CmdResult

# -- recorded on slurm 22.05.8 -------------------------------------------------------------------
SCONTROL_PARTS = (
    "PartitionName=debug AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL "
    "Default=YES QoS=N/A DefaultTime=00:30:00 DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 "
    "Hidden=NO MaxNodes=UNLIMITED MaxTime=04:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED "
    "Nodes=vm PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO "
    "OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=2 TotalNodes=1 "
    "SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED "
    "MaxMemPerNode=UNLIMITED TRES=cpu=2,mem=22899M,node=1,billing=2\n"
    "PartitionName=batch AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL "
    "Default=NO QoS=N/A DefaultTime=01:00:00 DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 "
    "Hidden=NO MaxNodes=1 MaxTime=1-00:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED "
    "Nodes=vm PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO "
    "OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=2 TotalNodes=1 "
    "SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED "
    "MaxMemPerNode=UNLIMITED TRES=cpu=2,mem=22899M,node=1,billing=2\n")
SINFO_JSON = {"meta": {"plugin": {"type": "openapi/v0.0.38"}}, "errors": [], "nodes": [
    {"name": "vm", "hostname": "vm", "state": "mixed", "state_flags": [], "cpus": 2,
     "real_memory": 22899, "gres": "", "features": "", "partitions": ["debug", "batch"],
     "alloc_cpus": 1, "idle_cpus": 1}]}
SINFO_TEXT = ("vm\x1fdebug*\x1fmixed\x1f2\x1f22899\x1f(null)\x1f(null)\n"
              "vm\x1fbatch\x1fmixed\x1f2\x1f22899\x1f(null)\x1f(null)\n")
SQUEUE_JSON = {"meta": {"plugin": {"type": "openapi/v0.0.38"}}, "errors": [], "jobs": [
    {"account": "radical", "array_job_id": 0, "array_task_id": None, "array_task_string": "",
     "cpus": 1, "job_id": 4, "job_state": "RUNNING", "name": "a|b c", "node_count": 1,
     "nodes": "vm", "partition": "batch", "priority": 4294901756, "qos": "normal",
     "start_time": 1795472321, "state_reason": "None", "submit_time": 1795472321,
     "time_limit": 20, "user_name": "root"},
    {"account": "radical", "array_job_id": 0, "array_task_id": None, "array_task_string": "",
     "cpus": 2, "job_id": 5, "job_state": "PENDING", "name": "wrap", "node_count": 1,
     "nodes": "", "partition": "debug", "priority": 4294901755, "qos": "normal",
     "start_time": 1795473521, "state_reason": "Resources", "submit_time": 1795472321,
     "time_limit": 30, "user_name": "root"},
    {"account": "radical", "array_job_id": 6, "array_task_id": None, "array_task_string": "1-3",
     "cpus": 1, "job_id": 6, "job_state": "PENDING", "name": "wrap", "node_count": 1,
     "nodes": "", "partition": "debug", "priority": 4294901754, "qos": "normal",
     "start_time": 1795478880, "state_reason": "Priority", "submit_time": 1795472321,
     "time_limit": 30, "user_name": "root"}]}
SQUEUE_TEXT = (
    "4\x1fa|b c\x1froot\x1fbatch\x1fRUNNING\x1f1\x1f1\x1f20:00\x1f0:03\x1f2026-11-23T22:18:41"
    "\x1f2026-11-23T22:18:41\x1f4294901756\x1fradical\x1fvm\x1fNone\n"
    "5\x1fwrap\x1froot\x1fdebug\x1fPENDING\x1f1\x1f2\x1f30:00\x1f0:00\x1f2026-11-23T22:18:41"
    "\x1f2026-11-23T22:38:41\x1f4294901755\x1fradical\x1f\x1fResources\n"
    "6_[1-3]\x1fwrap\x1froot\x1fdebug\x1fPENDING\x1f1\x1f1\x1f30:00\x1f0:00\x1f"
    "2026-11-23T22:18:41\x1f2026-11-24T00:08:00\x1f4294901754\x1fradical\x1f\x1fPriority\n")
SACCTMGR_ASSOC = ("radical|root|||1|normal||||||\n"
                  "radical|root|root||1|normal||||||\n"
                  "radical|radical|||1|normal||||||\n"
                  "radical|radical|root||1|normal||20|50|1-00:00:00||\n")

# -- a bigger, hand-made site: GPUs, drained/down nodes, hidden and ACL'd partitions --------------
BIG_PARTS = (
    "PartitionName=cpu Default=YES State=UP MaxTime=2-00:00:00 DefaultTime=01:00:00 "
    "QoS=cpuqos Nodes=c[01-04] TotalNodes=4 TotalCPUs=512 AllowAccounts=ALL Hidden=NO\n"
    "PartitionName=gpu Default=NO State=UP MaxTime=UNLIMITED QoS=N/A Nodes=g[1-2] "
    "TotalNodes=2 TotalCPUs=128 AllowAccounts=mlgrp,admin Hidden=NO\n"
    "PartitionName=maint Default=NO State=DRAIN MaxTime=30 Nodes=c01 Hidden=YES\n")
BIG_SINFO = "\n".join("\x1f".join(r) for r in [
    ("c01", "cpu*", "idle", "128", "515000", "(null)", "avx512,ib"),
    ("c01", "maint", "idle", "128", "515000", "(null)", "avx512,ib"),
    ("c02", "cpu*", "allocated", "128", "515000", "(null)", "avx512,ib"),
    ("c03", "cpu*", "drained", "128", "515000", "(null)", "avx512,ib"),
    ("c04", "cpu*", "idle*", "128", "515000", "(null)", "avx512"),
    ("g1", "gpu", "mixed", "64", "1031000", "gpu:a100:4(S:0-1)", "a100"),
    ("g2", "gpu", "idle", "64", "1031000", "gpu:a100:4(S:0-1)", "a100")]) + "\n"
# 23.02+ `sinfo --json` groups nodes per partition and wraps numbers (schema, not recorded)
SINFO_2302 = {"sinfo": [
    {"partition": {"name": "gpu"}, "node": {"state": ["IDLE"]},
     "nodes": {"nodes": ["g1", "g2"], "total": 2, "idle": 2},
     "cpus": {"maximum": 64}, "memory": {"maximum": 1031000},
     "gres": {"total": "gpu:h100:8"}, "features": {"total": "h100"}},
    {"partition": {"name": "cpu"}, "node": {"state": ["IDLE", "DRAIN"]},
     "nodes": {"nodes": ["c01"], "total": 1}, "cpus": {"maximum": 128},
     "memory": {"maximum": 515000}, "gres": {"total": ""}, "features": {"total": ""}}]}
SQUEUE_2302 = {"jobs": [
    {"job_id": 77, "array_job_id": {"set": True, "number": 70},
     "array_task_id": {"set": True, "number": 7}, "name": "t", "user_name": "ann",
     "partition": "gpu", "job_state": ["RUNNING"], "node_count": {"set": True, "number": 1},
     "cpus": {"set": True, "number": 8}, "time_limit": {"set": False, "infinite": True,
                                                        "number": 0},
     "submit_time": {"set": True, "number": 1700000000},
     "start_time": {"set": True, "number": 1700000100}, "priority": {"set": True, "number": 9},
     "account": "mlgrp", "nodes": "g1"}]}


def test_real_2205_queues_json_and_text_agree() -> None:
    parts = parse_partitions(SCONTROL_PARTS)
    by_json = build_queues(parts, nodes_from_sinfo_json(SINFO_JSON))
    by_text = build_queues(parts, nodes_from_sinfo_text(SINFO_TEXT))
    assert by_json == by_text
    debug, batch = by_json["debug"], by_json["batch"]
    for q in (debug, batch):
        assert set(QUEUE_KEYS) <= set(q)
    assert debug["default"] and not batch["default"]
    assert (debug["time_limit"], batch["time_limit"]) == (240, 1440)
    assert (debug["default_time_limit"], batch["default_time_limit"]) == (30, 60)
    assert (debug["nodes_total"], debug["nodes_available"], debug["nodes_idle"]) == (1, 1, 0)
    assert (debug["cpus_per_node"], debug["mem_per_node_mb"], debug["gpus_per_node"]) == \
        (2, 22899, 0)
    assert debug["features"] == [] and debug["max_jobs_per_user"] is None


def test_real_2205_jobs_json_and_text_agree() -> None:
    now = 1795472324
    by_json = {j["job_id"]: j for j in jobs_from_squeue_json(SQUEUE_JSON, now=now)}
    by_text = {j["job_id"]: j for j in jobs_from_squeue_text(SQUEUE_TEXT)}
    assert set(by_json) == set(by_text) == {"4", "5", "6_[1-3]"}
    for jid, j in by_json.items():
        assert set(JOB_KEYS) <= set(j)
        t = by_text[jid]
        for key in ("job_name", "user", "partition", "state", "nodes", "cpus", "time_limit",
                    "priority", "account", "node_list", "reason"):
            assert j[key] == t[key], (jid, key)
    run = by_json["4"]
    assert run["job_name"] == "a|b c" and run["time_limit"] == 20 and run["time_used"] == 3
    assert by_text["4"]["time_used"] == 3 and by_text["4"]["submit_time"] > 0
    assert by_json["5"]["time_used"] == 0 and by_json["5"]["reason"] == "Resources"


def test_real_2205_associations() -> None:
    rows = parse_assocs(SACCTMGR_ASSOC)
    assert len(rows) == 4
    for row in rows:
        assert set(ALLOCATION_KEYS) <= set(row)
    mine = [r for r in rows if r["account"] == "radical" and r["user"] == "root"][0]
    assert (mine["max_jobs"], mine["max_submit"], mine["max_wall"]) == (20, 50, "1-00:00:00")
    assert mine["max_wall_minutes"] == 1440 and mine["allocated_node_hours"] is None
    assert mine["fairshare"] == 1 and mine["qos"] == "normal" and mine["cluster"] == "radical"
    assert rows[0]["max_jobs"] is None and rows[0]["max_wall"] is None


def test_big_site_text_states_gpus_features_qos() -> None:
    parts = parse_partitions(BIG_PARTS)
    queues = build_queues(parts, nodes_from_sinfo_text(BIG_SINFO), {"cpuqos": 25})
    cpu, gpu, maint = queues["cpu"], queues["gpu"], queues["maint"]
    assert (cpu["nodes_total"], cpu["nodes_available"], cpu["nodes_idle"]) == (4, 2, 1)
    assert cpu["max_jobs_per_user"] == 25 and cpu["time_limit"] == 2880
    assert cpu["features"] == ["avx512", "ib"] and cpu["cpus_total"] == 512
    assert (gpu["gpus_per_node"], gpu["nodes_idle"], gpu["time_limit"]) == (4, 1, "UNLIMITED")
    assert gpu["mem_per_node_mb"] == 1031000 and gpu["features"] == ["a100"]
    assert maint["state"] == "DRAIN" and maint["hidden"] and maint["time_limit"] == 30


def test_2302_json_shapes() -> None:
    nodes = {n["name"]: n for n in nodes_from_sinfo_json(SINFO_2302)}
    assert nodes["g1"]["gpus"] == 8 and nodes["c01"]["states"] == {"IDLE", "DRAIN"}
    queues = build_queues(parse_partitions(BIG_PARTS), list(nodes.values()))
    assert queues["gpu"]["nodes_idle"] == 2 and queues["cpu"]["nodes_available"] == 0
    (job,) = jobs_from_squeue_json(SQUEUE_2302, now=1700000200)
    ended = {"jobs": [{**SQUEUE_2302["jobs"][0], "job_state": ["CANCELLED"]}]}
    assert jobs_from_squeue_json(ended) == []  # like plain squeue: active jobs only
    assert len(jobs_from_squeue_json(ended, active_only=False)) == 1
    assert job["job_id"] == "70_7" and job["state"] == "RUNNING" and job["time_limit"] is None
    assert (job["cpus"], job["time_used"], job["priority"]) == (8, 100, 9)


def test_num_and_states() -> None:
    assert num(4) == 4 and num("7") == 7 and num(None) is None and num("x") is None
    assert num({"set": True, "infinite": False, "number": 3}) == 3
    assert num({"set": False, "number": 0}) is None and num(4294967294) is None
    assert states("down*") == {"DOWN", "NOT_RESPONDING"}
    assert states("idle", ["DRAIN"]) == {"IDLE", "DRAIN"} and states("MIXED+DRAIN") == \
        {"MIXED", "DRAIN"}


# -- the backend through a fake runner -----------------------------------------------------------
class FakeSlurm:
    def __init__(self, json_ok: bool = True) -> None:
        self.json_ok = json_ok
        self.calls: list[list[str]] = []
        self.answers: dict[str, CmdResult] = {}

    def __call__(self, argv: Sequence[str], timeout: float) -> CmdResult:
        argv = list(argv)
        self.calls.append(argv)
        key = " ".join(argv[:2])
        if key in self.answers:
            return self.answers[key]
        if "--json" in argv:
            if not self.json_ok:
                return CmdResult(1, "", "sinfo: error: unrecognized option '--json'")
            return CmdResult(0, json.dumps(SINFO_JSON if argv[0] == "sinfo" else SQUEUE_JSON), "")
        if argv[:3] == ["scontrol", "show", "partition"]:
            return CmdResult(0, SCONTROL_PARTS, "")
        if argv[0] == "sinfo":
            return CmdResult(0, SINFO_TEXT, "")
        if argv[0] == "squeue":
            return CmdResult(0, SQUEUE_TEXT, "")
        if argv[0] == "sacctmgr":
            return CmdResult(0, SACCTMGR_ASSOC, "")
        return CmdResult(1, "", f"unexpected {argv}")


def test_backend_falls_back_to_text_once() -> None:
    fake = FakeSlurm(json_ok=False)
    qi = QueueInfoSlurm(runner=fake, env={})
    assert set(qi.get_info(user="*")["queues"]) == {"debug", "batch"}
    assert {j["job_id"] for j in qi.list_all_jobs(user="*")["jobs"]} == {"4", "5", "6_[1-3]"}
    assert sum("--json" in c for c in fake.calls) == 1  # probed once, then text only
    qi.list_all_jobs(user="root", force=True)
    assert fake.calls[-1][:4] == ["squeue", "-h", "-o", "\x1f".join(
        ("%i", "%j", "%u", "%P", "%T", "%D", "%C", "%l", "%M", "%V", "%S", "%Q", "%a", "%N",
         "%r"))] and fake.calls[-1][-2:] == ["-u", "root"]


def test_backend_user_filter_and_unknown_queue() -> None:
    qi = QueueInfoSlurm(runner=FakeSlurm(), env={})
    assert qi.list_all_jobs(user="alice")["jobs"] == []
    assert [j["job_id"] for j in qi.list_jobs("debug", user="root")["jobs"]] == ["5", "6_[1-3]"]
    with pytest.raises(UnknownQueue):
        qi.list_jobs("gpu", user="*")
    assert [a["account"] for a in qi.list_allocations(user="root")["allocations"]] == \
        ["root", "radical"]


def test_partition_visibility_by_accounts() -> None:
    fake = FakeSlurm()
    fake.answers["scontrol show"] = CmdResult(0, BIG_PARTS, "")
    fake.answers["sinfo --json"] = CmdResult(0, json.dumps({"nodes": []}), "")
    qi = QueueInfoSlurm(runner=fake, env={})
    assert set(qi.get_info(user="*")["queues"]) == {"cpu", "gpu", "maint"}
    assert set(qi.get_info(user="root")["queues"]) == {"cpu"}  # not in mlgrp/admin; maint hidden


def test_sacctmgr_failure_means_no_allocations() -> None:
    fake = FakeSlurm()
    fake.answers["sacctmgr -n"] = CmdResult(1, "", "sacctmgr: error: Problem talking to the "
                                                   "database: Connection refused")
    qi = QueueInfoSlurm(runner=fake, env={})
    assert qi.list_allocations()["allocations"] == []
    assert set(qi.get_info(user="root")["queues"]) == {"debug", "batch"}


def test_controller_down_is_503() -> None:
    fake = FakeSlurm()
    fake.answers["scontrol show"] = CmdResult(1, "", "slurm_load_partitions: Unable to contact "
                                                     "slurm controller (connect failure)")
    with pytest.raises(BackendUnavailable) as err:
        QueueInfoSlurm(runner=fake, env={}).get_info()
    assert err.value.status == 503 and "controller" in err.value.detail


@pytest.mark.parametrize("scontrol,scancel,exc", [
    (CmdResult(1, "", "slurm_load_jobs error: Invalid job id specified"), None, UnknownJob),
    (CmdResult(0, "JobId=5 JobName=x JobState=COMPLETED Partition=debug\n", ""), None,
     CancelConflict),
    (CmdResult(0, "JobId=5 JobState=RUNNING\n", ""),
     CmdResult(1, "", "scancel: error: Kill job error on job id 5: Access/permission denied"),
     CancelDenied),
    (CmdResult(0, "JobId=5 JobState=RUNNING\n", ""),
     CmdResult(1, "", "scancel: error: Kill job error on job id 5: Job/step already "
                      "completing or completed"), CancelConflict),
    (CmdResult(0, "JobId=5 JobState=RUNNING\n", ""),
     CmdResult(1, "", "scancel: error: Something else"), CancelFailed)])
def test_cancel_classification(scontrol: CmdResult, scancel: CmdResult | None,
                               exc: type) -> None:
    fake = FakeSlurm()
    fake.answers["scontrol show"] = scontrol
    if scancel is not None:
        fake.answers["scancel 5"] = scancel
    with pytest.raises(exc):
        QueueInfoSlurm(runner=fake, env={}).cancel_job("5")


def test_cancel_rejects_non_ids_without_running_anything() -> None:
    fake = FakeSlurm()
    qi = QueueInfoSlurm(runner=fake, env={})
    for bad in ("--user=root", "-u root", "5 6", "5;ls", "", "abc"):
        with pytest.raises(UnknownJob):
            qi.cancel_job(bad)
    assert fake.calls == []


def test_cancel_ok() -> None:
    fake = FakeSlurm()
    fake.answers["scontrol show"] = CmdResult(0, "JobId=6 ArrayJobId=6 JobState=PENDING\n", "")
    fake.answers["scancel 6_[1-3]"] = CmdResult(0, "", "")
    result = QueueInfoSlurm(runner=fake, env={}).cancel_job("6_[1-3]")
    assert result == {"job_id": "6_[1-3]", "status": "canceled", "previous_state": "PENDING"}


def test_node_hours_from_grp_tres_mins_and_sshare() -> None:
    """Sites with node-hour budgets (GrpTRESMins node=...) get allocated/used/remaining
    node-hours; a user association shares its account's budget and usage."""
    fake = FakeSlurm()
    fake.answers["sacctmgr -n"] = CmdResult(0, (
        "c1|proj||||normal||||||| node=6000,cpu=99\n"
        "c1|proj|alice||1|normal||||||||\n"
        "c1|other|alice||1|normal||||||||\n"), "")
    fake.answers["sshare -n"] = CmdResult(0, (
        "proj||cpu=5,mem=0,node=1500,billing=0\n"
        " proj|alice|cpu=5,mem=0,node=600,billing=0\n"), "")
    rows = QueueInfoSlurm(runner=fake, env={}).list_allocations(user="alice")["allocations"]
    by_account = {r["account"]: r for r in rows}
    proj = by_account["proj"]
    assert (proj["allocated_node_hours"], proj["used_node_hours"],
            proj["remaining_node_hours"]) == (100.0, 25.0, 75.0)
    assert proj["node_hours_scope"] == "account"
    other = by_account["other"]  # no budget: the keys are there, empty
    assert (other["allocated_node_hours"], other["used_node_hours"],
            other["remaining_node_hours"]) == (None, None, None)


def test_no_budget_no_sshare_call() -> None:
    fake = FakeSlurm()
    QueueInfoSlurm(runner=fake, env={}).list_allocations(user="*")
    assert not any(c[0] == "sshare" for c in fake.calls)
