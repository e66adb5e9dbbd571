"""The xgfabric plugin end to end: one edge runs the workflow and drives three other real
edges through the bridge — two immediate clusters (rhapsody + staging) and a cluster on the
real single-node SLURM whose edge has psij + queue_info, so the workflow classifies it as
`allocate` and starts a child edge in a SLURM job to run its share of the tasks.

* the `test` workflow completes with every simulation, training and evaluation accounted
  for, tasks on all three clusters, and the SLURM job and child edge released afterwards;
* a stop mid-run leaves no SLURM job (squeue), no rhapsody session/task and no child edge;
* an edge killed mid-run: its batch moves to the remaining cluster and the run completes; a
  run whose only cluster is killed fails with a clear error;
* the orchestrating edge stopped mid-run releases the SLURM job, tasks and child edge;
* a batch job that never starts: a stop cancels it; after `alloc_timeout` the cluster is
  dropped (job canceled) and the run completes on the others;
* config management and the 4xx answers (bad configs, unknown names, 409s).
"""
from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

import authed
from psij_helpers import child_env, edges, wait_for

from radical.edge import BridgeClient, EdgeError

pytest.importorskip("psij")
pytest.importorskip("rhapsody")
pytestmark = [pytest.mark.slurm]

HOME, SITE_A, SITE_B, HPC = "xgf-home", "xgf-a", "xgf-b", "xgf-hpc"
WORKER_PLUGINS = "rhapsody,staging,queue_info,sysinfo"


@pytest.fixture(scope="module")
def sites(slurm_cluster, module_edges, bridge_url, tmp_path_factory):
    """The orchestrating edge and the three cluster edges (SLURM_CONF set for all). The
    orchestrator gets a token of its own with the `submit` scope only (least privilege)."""
    cfg_dir = tmp_path_factory.mktemp("xgf-configs")
    token = authed.new_token(bridge_url, f"xgf-{uuid.uuid4().hex[:6]}", "submit")
    module_edges("xgfabric", name=HOME, env={"RADICAL_BRIDGE_URL": bridge_url,
                                             "RADICAL_EDGE_TOKEN": token,
                                             "RADICAL_EDGE_XGFABRIC_DIR": str(cfg_dir),
                                             "RADICAL_EDGE_XGFABRIC_ALLOC_TIMEOUT": "120"})
    module_edges(WORKER_PLUGINS, name=SITE_A)
    module_edges(WORKER_PLUGINS, name=SITE_B)
    module_edges("psij,queue_info,sysinfo", name=HPC,
                 env={"RADICAL_EDGE_PSIJ_DIR": str(tmp_path_factory.mktemp("xgf-psij"))})
    return cfg_dir


@pytest.fixture
def xgf(bc, sites):
    client = bc.get_edge_client(HOME).get_plugin("xgfabric")
    yield client
    if client.get_status()["status"] == "running":
        client.stop_workflow()
    client.close()


class States:
    """Every `workflow_status` notification of the orchestrating edge."""

    def __init__(self, bc: BridgeClient) -> None:
        self.items: list[dict] = []
        self.cond = threading.Condition()
        self.bc = bc
        bc.register_callback(HOME, "xgfabric", "workflow_status", self._add)
        assert bc.wait_for_listener(30), "SSE listener did not connect"

    def _add(self, edge: str, plugin: str, topic: str, data: dict) -> None:
        with self.cond:
            self.items.append(data)
            self.cond.notify_all()

    def wait(self, predicate, timeout: float, what: str) -> dict:
        def found():
            return next((d for d in reversed(self.items) if predicate(d)), None)
        with self.cond:
            assert self.cond.wait_for(found, timeout), \
                f"no workflow_status with {what}; last: {self.items[-1:] }"
            return found()

    def close(self) -> None:
        self.bc.unregister_callback(HOME, "xgfabric", "workflow_status", self._add)


@pytest.fixture
def states(bc):
    s = States(bc)
    yield s
    s.close()


def _workflow(xgf, name: str, workspace: Path, **changes) -> str:
    cfg = {**xgf.get_test_config(), "name": name, "local_workspace": str(workspace), **changes}
    cfg.pop("builtin", None)
    xgf.save_config(cfg)
    return name


def _resource(xgf, bridge_url: str, log_dir: Path, name: str, clusters: dict) -> str:
    xgf.save_config({"kind": "resource", "name": name, "bridge_url": bridge_url,
                     "cluster_configs": clusters})
    return name


def _hpc(log_dir: Path) -> dict:
    return {"edge": HPC, "queue": "debug", "duration": 600,
            "environment": child_env(log_dir)}


def _squeue(name: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %T"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def _sessions(bridge_url: str, edge: str, plugin: str) -> list[str]:
    r = authed.get(f"{bridge_url}/{edge}/{plugin}/list_sessions", timeout=10)
    r.raise_for_status()
    return r.json()["sessions"]


def test_configs_and_bad_input(xgf, sites, tmp_path):
    assert xgf.get_workdir()["path"] == str(sites)
    builtin = {(c["kind"], c["name"]) for c in xgf.list_configs() if c["builtin"]}
    assert {("workflow", "default"), ("workflow", "test"), ("resource", "default")} <= builtin
    test = xgf.get_test_config()
    assert test["mock_sensor_data"] is True and test["simulation_task"]["function"].endswith(
        "stubs:simulate")
    assert xgf.get_default_config()["cspot_woof_url"].startswith("woof://")
    assert xgf.load_config("__default__")["name"] == "default"

    xgf.set_workdir(str(tmp_path / "cfg"))
    saved = xgf.save_config({**test, "name": "default", "description": "mine"})
    assert Path(saved["path"]).parent == tmp_path / "cfg"
    assert xgf.load_config("__default__")["description"] == "mine"  # a saved one wins
    mine = [c for c in xgf.list_configs() if c["name"] == "default" and c["kind"] == "workflow"]
    assert len(mine) == 1 and mine[0]["builtin"] is False and mine[0]["modified"]
    assert xgf.delete_config("default") == {"name": "default", "deleted": True}
    assert xgf.load_config("__default__")["description"] != "mine"

    bad = [
        ({**test, "name": "x", "num_simulations": 0}, 422, "num_simulations"),
        ({**test, "name": "x", "batch_size": "4"}, 422, "batch_size"),
        ({**test, "name": "x", "train_models": ["cnn"]}, 422, "no task for it"),
        ({**test, "name": "x", "simulation_task": None}, 422, "nothing to simulate"),
        ({**test, "name": "../evil"}, 422, "not a valid name"),
        ({**test, "name": "x", "kind": "other"}, 422, "kind must be"),
        ({"kind": "resource", "name": "r", "bridge_url": "ftp://x"}, 422, "bridge_url"),
        ({"kind": "resource", "name": "r", "cluster_configs": {"c": {"type": "soon"}}}, 422,
         "immediate, allocate"),
    ]
    for cfg, status, words in bad:
        with pytest.raises(EdgeError) as err:
            xgf.save_config(cfg)
        assert err.value.status == status and words in err.value.detail, (cfg, err.value)
    for call, status, words in [
        (lambda: xgf.load_config("nope"), 404, "no config named 'nope'"),
        (lambda: xgf.delete_config("test"), 409, "built-in"),
        (lambda: xgf.set_workdir("relative/dir"), 422, "absolute path"),
        (lambda: xgf.stop_workflow(), 409, "no workflow is running"),
        (lambda: xgf.start_workflow("test", "nope"), 404, "no resource config named 'nope'"),
        (lambda: xgf.start_workflow("nope", "default"), 404, "no workflow config named"),
    ]:
        with pytest.raises(EdgeError) as err:
            call()
        assert err.value.status == status and words in err.value.detail, err.value
    r = authed.post(f"{xgf.base_url}/start/{xgf.sid}", json={"workflow": 3}, timeout=30)
    assert r.status_code == 422 and "'workflow' must be a config name" in r.json()["detail"]
    assert xgf.get_status()["status"] == "idle"


def test_three_clusters_end_to_end(xgf, states, bc, bridge_url, log_dir, tmp_path):
    wf = _workflow(xgf, "t3", tmp_path)
    res = _resource(xgf, bridge_url, log_dir, "three", {
        "site-a": {"edge": SITE_A, "type": "immediate"},
        "site-b": {"edge": SITE_B, "type": "immediate", "gpu": True},
        "hpc": _hpc(log_dir)})
    t0 = time.monotonic()
    started = xgf.start_workflow(wf, res)
    assert started["status"] == "running" and started["config_name"] == "t3"
    with pytest.raises(EdgeError) as err:
        xgf.start_workflow(wf, res)
    assert err.value.status == 409 and "already running" in err.value.detail

    final = xgf.wait_done(timeout=300)
    took = time.monotonic() - t0
    assert final["status"] == "completed", final["error"]
    print(f"\nxgfabric test workflow on 3 clusters (1 SLURM child edge): {took:.1f} s "
          "from start to completed, release included")
    assert final["progress"] == 100 and final["phase"] == "done"
    assert final["completed_simulations"] == final["total_simulations"] == 6
    assert final["current_batch"] == final["total_batches"] == 3
    assert final["completed_training"] == final["total_training"] == 2
    [hpc] = final["allocate_clusters"]
    assert hpc["name"] == "hpc" and hpc["cluster_type"] == "allocate"  # detected: SLURM login
    assert {c["name"] for c in final["immediate_clusters"]} == {"site-a", "site-b"}
    job = final["pilot_jobs"]["hpc"]
    child = hpc["exec_edge"]
    assert job.isdigit() and child.endswith(f"xgf-{final['run_id']}")
    # every phase was published live, in order
    phases = [s["phase"] for s in states.items]
    order = ["classifying", "sensor_data", "allocating", "staging", "simulation", "training",
             "evaluation", "gathering", "done"]
    assert [p for p in dict.fromkeys(phases) if p in order] == order, phases

    results = json.loads(Path(final["results_file"]).read_text())
    sims = results["simulations"]
    assert [s["sim_id"] for s in sims] == list(range(6))
    assert all(s["result"]["sim_id"] == s["sim_id"] and s["result"]["readings"] == 8
               for s in sims)
    assert {s["cluster"] for s in sims} == {"site-a", "site-b", "hpc"}
    assert {s["edge"] for s in sims if s["cluster"] == "hpc"} == {child}
    assert [m["model"] for m in results["training"]] == ["gnn", "mlp"]
    placed = {m["model"]: m["cluster"] for m in results["training"]}
    assert placed["mlp"] == "site-b" and placed["gnn"] != "site-b"  # the GPU cluster first
    assert all(m["result"]["sim_ids"] == list(range(6)) for m in results["training"])
    assert results["evaluation"]["result"]["best"] in ("gnn", "mlp")

    cleanup = final["cleanup"]
    assert cleanup["jobs_canceled"] == [job] and cleanup["edges_stopped"] == [child]
    assert child not in edges(bridge_url)
    wait_for(lambda: not _squeue(f"xgf-{final['run_id']}"), 30, what="SLURM job gone")
    for edge in (SITE_A, SITE_B):
        assert _sessions(bridge_url, edge, "rhapsody") == []


def test_stop_mid_run_leaves_nothing(xgf, states, bc, bridge_url, log_dir, tmp_path):
    wf = _workflow(xgf, "slow", tmp_path, num_simulations=6, batch_size=2,
                   simulation_task={**xgf.get_test_config()["simulation_task"],
                                    "kwargs": {"sim_id": "{sim_id}", "sensor_file": "{input}",
                                               "seconds": 60}})
    res = _resource(xgf, bridge_url, log_dir, "three-stop", {
        "site-a": {"edge": SITE_A, "type": "immediate"},
        "site-b": {"edge": SITE_B, "type": "immediate"},
        "hpc": _hpc(log_dir)})
    xgf.start_workflow(wf, res)
    busy = states.wait(lambda s: s["phase"] == "simulation" and all(
        c["tasks_running"] > 0 for c in s["immediate_clusters"] + s["allocate_clusters"]),
        180, "tasks running on all three clusters")
    child = busy["allocate_clusters"][0]["exec_edge"]
    run = busy["run_id"]
    assert _squeue(f"xgf-{run}") and child in edges(bridge_url)
    assert _sessions(bridge_url, SITE_A, "rhapsody")

    t0 = time.monotonic()
    answer = xgf.stop_workflow()
    print(f"\nxgfabric stop mid-run: {time.monotonic() - t0:.1f} s until everything released")
    assert answer["stopped"] is True
    cleanup = answer["cleanup"]
    assert cleanup["tasks_canceled"] >= 4  # the two running batches of the immediate sites
    assert cleanup["jobs_canceled"] == [busy["pilot_jobs"]["hpc"]]
    assert cleanup["edges_stopped"] == [child]
    state = answer["state"]
    assert (state["status"], state["phase"]) == ("failed", "stopped")
    assert state["error"] == "stopped by stop_workflow" and state["completed_simulations"] == 0
    # nothing left behind: no SLURM job, no child edge, no rhapsody session anywhere
    wait_for(lambda: not _squeue(f"xgf-{run}"), 15, what="SLURM job gone")
    assert child not in edges(bridge_url)
    for edge in (SITE_A, SITE_B):
        assert _sessions(bridge_url, edge, "rhapsody") == []
    with pytest.raises(EdgeError) as err:
        xgf.stop_workflow()
    assert err.value.status == 409


def test_edge_killed_mid_run(xgf, states, bridge_url, log_dir, module_edges, tmp_path):
    victim = module_edges(WORKER_PLUGINS, name=f"xgf-v{uuid.uuid4().hex[:4]}")
    wf = _workflow(xgf, "kill", tmp_path, num_simulations=4, batch_size=2,
                   simulation_task={**xgf.get_test_config()["simulation_task"],
                                    "kwargs": {"sim_id": "{sim_id}", "sensor_file": "{input}",
                                               "seconds": 4}})
    res = _resource(xgf, bridge_url, log_dir, "two", {
        "site-a": {"edge": SITE_A, "type": "immediate"},
        "victim": {"edge": victim.extra["name"], "type": "immediate"}})
    xgf.start_workflow(wf, res)
    states.wait(lambda s: any(c["name"] == "victim" and c["tasks_running"] > 0
                              for c in s["immediate_clusters"]), 60, "tasks on the victim")
    victim.kill9()
    final = xgf.wait_done(timeout=120)
    assert final["status"] == "completed", final["error"]
    lost = [c for c in final["immediate_clusters"] if c["name"] == "victim"][0]
    assert lost["online"] is False and lost["error"]
    assert any("cluster victim lost" in e["message"] for e in final["log"])
    sims = json.loads(Path(final["results_file"]).read_text())["simulations"]
    assert [s["sim_id"] for s in sims] == [0, 1, 2, 3]
    assert {s["cluster"] for s in sims} == {"site-a"}  # the victim's batch moved

    # the only cluster killed: a clear failure, nothing hangs
    victim2 = module_edges(WORKER_PLUGINS, name=f"xgf-w{uuid.uuid4().hex[:4]}")
    res = _resource(xgf, bridge_url, log_dir, "one", {
        "only": {"edge": victim2.extra["name"], "type": "immediate"}})
    xgf.start_workflow(wf, res)
    states.wait(lambda s: any(c["name"] == "only" and c["tasks_running"] > 0
                              for c in s["immediate_clusters"]), 60, "tasks on the only site")
    victim2.kill9()
    final = xgf.wait_done(timeout=120)
    assert final["status"] == "failed" and final["phase"] == "simulation"
    assert "no cluster left to simulate" in final["error"] and "only:" in final["error"]


def test_orchestrating_edge_stopped_mid_run_releases(bc, bridge_url, log_dir, make_edge, sites,
                                                     tmp_path):
    """SIGTERM to the edge running the workflow: on its way out it cancels the tasks and the
    SLURM job, and the child edge leaves."""
    name = f"xgf-h{uuid.uuid4().hex[:4]}"
    home = make_edge("xgfabric", name=name, env={"RADICAL_BRIDGE_URL": bridge_url,
                                                 "RADICAL_EDGE_XGFABRIC_DIR": str(tmp_path)})
    xgf = bc.get_edge_client(name).get_plugin("xgfabric")
    wf = _workflow(xgf, "slow2", tmp_path, simulation_task={
        **xgf.get_test_config()["simulation_task"],
        "kwargs": {"sim_id": "{sim_id}", "sensor_file": "{input}", "seconds": 60}})
    res = _resource(xgf, bridge_url, log_dir, "a-and-hpc", {
        "site-a": {"edge": SITE_A, "type": "immediate"}, "hpc": _hpc(log_dir)})
    xgf.start_workflow(wf, res)
    state = wait_for(lambda: (s := xgf.get_status())["phase"] == "simulation" and all(
        c["tasks_running"] for c in s["immediate_clusters"] + s["allocate_clusters"]) and s,
        120, what="tasks running on both clusters")
    child, run = state["allocate_clusters"][0]["exec_edge"], state["run_id"]
    assert _squeue(f"xgf-{run}") and _sessions(bridge_url, SITE_A, "rhapsody")
    home.stop(timeout=30)
    wait_for(lambda: not _squeue(f"xgf-{run}"), 15, what="SLURM job gone")
    wait_for(lambda: child not in edges(bridge_url), 30, what="child edge gone")
    assert _sessions(bridge_url, SITE_A, "rhapsody") == []


def test_allocation_that_never_starts(xgf, states, bridge_url, log_dir, tmp_path):
    """A batch job that stays queued (begin time in an hour): a stop cancels it; with an
    allocation timeout the cluster is dropped, its job canceled, and the run completes on
    the immediate cluster."""
    wf = _workflow(xgf, "t-queued", tmp_path)
    queued = {**_hpc(log_dir), "attributes": {"slurm.begin": "now+3600"}}
    res = _resource(xgf, bridge_url, log_dir, "queued", {
        "site-a": {"edge": SITE_A, "type": "immediate"}, "hpc": queued})
    xgf.start_workflow(wf, res)
    waiting = states.wait(lambda s: s["phase"] == "allocating" and s["pilot_jobs"], 60,
                          "a queued batch job")
    job, run = waiting["pilot_jobs"]["hpc"], waiting["run_id"]
    assert _squeue(f"xgf-{run}") == [job, "PENDING"]
    answer = xgf.stop_workflow()
    assert answer["cleanup"]["jobs_canceled"] == [job]
    assert answer["cleanup"]["edges_stopped"] == []  # none had joined
    assert answer["state"]["phase"] == "stopped"
    wait_for(lambda: not _squeue(f"xgf-{run}"), 15, what="SLURM job gone")

    res = _resource(xgf, bridge_url, log_dir, "queued-5s", {
        "site-a": {"edge": SITE_A, "type": "immediate"},
        "hpc": {**queued, "alloc_timeout": 5}})
    xgf.start_workflow(wf, res)
    final = xgf.wait_done(timeout=120)
    assert final["status"] == "completed", final["error"]
    [hpc] = final["allocate_clusters"]
    assert hpc["online"] is False and "did not join within 5 s" in hpc["error"]
    assert hpc["pilot_status"] == "CANCELED"
    assert final["cleanup"]["jobs_canceled"] == [hpc["pilot_job_id"]]
    sims = json.loads(Path(final["results_file"]).read_text())["simulations"]
    assert [s["sim_id"] for s in sims] == list(range(6))
    assert {s["cluster"] for s in sims} == {"site-a"}
    wait_for(lambda: not _squeue(f"xgf-{final['run_id']}"), 15, what="SLURM job gone")
