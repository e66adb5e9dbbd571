"""xgfabric without edges: config checks and the config directory, placeholder filling, the
stub task functions, and the state's shape (the seed's fields)."""
from __future__ import annotations

import dataclasses
import json

import pytest

from radical.edge.plugins.xgfabric import stubs
from radical.edge.plugins.xgfabric.config import (ConfigError, ConfigStore, WorkflowConfig,
                                                  config_to_dict, dict_to_config,
                                                  dict_to_resource_config)
from radical.edge.plugins.xgfabric.units import render
from radical.edge.plugins.xgfabric.state import MAX_LOG, StateBox, WorkflowState

SEED_STATE = ["status", "phase", "progress", "message", "start_time", "end_time", "error",
              "active_cluster", "completed_simulations", "total_simulations", "current_batch",
              "total_batches", "pilot_jobs", "immediate_clusters", "allocate_clusters", "log",
              "config_name", "config_dir"]
SEED_WORKFLOW = ["name", "description", "local_workspace", "cspot_woof_url", "cspot_limit",
                 "num_simulations", "batch_size", "train_models", "simulation_task",
                 "training_tasks", "evaluation_task", "mock_sensor_data"]


def test_seed_fields_and_defaults():
    names = [f.name for f in dataclasses.fields(WorkflowState)]
    assert names[:len(SEED_STATE)] == SEED_STATE
    assert [f.name for f in dataclasses.fields(WorkflowConfig)] == SEED_WORKFLOW
    wf = WorkflowConfig()
    assert (wf.num_simulations, wf.batch_size, wf.cspot_limit) == (16, 4, 10)
    assert dict_to_resource_config({"unknown": 1}).bridge_url == "https://localhost:8000"


def test_store_round_trip_aliases_and_builtins(tmp_path):
    store = ConfigStore(str(tmp_path / "cfg"))
    assert store.load("__default__")["name"] == "default"
    test = store.workflow("test")
    assert test.mock_sensor_data and test.simulation_task["function"].endswith("stubs:simulate")
    saved = store.save({**config_to_dict(test), "name": "mine", "extra": "ignored"})
    assert json.loads(open(saved["path"]).read())["kind"] == "workflow"
    assert "extra" not in store.load("mine")
    store.save({"kind": "resource", "name": "default", "bridge_url": "http://h:1"})
    assert store.resource("__default__").bridge_url == "http://h:1"  # saved wins
    assert store.workflow("__default__").name == "default"  # the workflow kind: built-in
    listed = {(c["kind"], c["name"], c["builtin"]) for c in store.list()}
    assert {("workflow", "mine", False), ("resource", "default", False),
            ("workflow", "test", True)} <= listed
    assert ("resource", "default", True) not in listed
    with pytest.raises(ConfigError) as err:
        store.save({"kind": "resource", "name": "r", "bridge_url": "https://:tok@h:1"})
    assert "must not carry credentials" in err.value.detail
    with pytest.raises(ConfigError) as err:
        store.resource("mine")
    assert err.value.status == 404
    assert store.delete("mine")["deleted"] and store.delete("default")["deleted"]
    for name, status in (("mine", 404), ("test", 409), ("../x", 422)):
        with pytest.raises(ConfigError) as err:
            store.delete(name)
        assert err.value.status == status


@pytest.mark.parametrize("change, words", [
    ({"num_simulations": -1}, "num_simulations"),
    ({"num_simulations": True}, "num_simulations"),
    ({"local_workspace": "rel"}, "absolute"),
    ({"train_models": "mlp"}, "list of model names"),
    ({"simulation_task": {"executable": "x", "function": "y"}}, "not both"),
    ({"evaluation_task": "x"}, "rhapsody task object"),
    ({"mock_sensor_data": "yes"}, "true or false"),
])
def test_bad_workflows(change, words):
    base = config_to_dict(ConfigStore("/nonexistent").workflow("test"))
    with pytest.raises(ConfigError) as err:
        dict_to_config({**base, **change})
    assert err.value.status == 422 and words in err.value.detail


def test_render_fills_placeholders():
    tpl = {"kwargs": {"sim_id": "{sim_id}", "f": "{input}", "results": "{results}",
                      "case": "{workspace}/sim_{sim_id}", "keep": "{unknown}"},
           "args": ["{cluster}", 3]}
    out = render(tpl, {"sim_id": 4, "input": "/w/s.json", "results": [{"a": 1}],
                       "workspace": "/w", "cluster": "c1"})
    assert out == {"kwargs": {"sim_id": 4, "f": "/w/s.json", "results": [{"a": 1}],
                              "case": "/w/sim_4", "keep": "{unknown}"}, "args": ["c1", 3]}
    assert tpl["kwargs"]["sim_id"] == "{sim_id}"  # the template is not changed


def test_stubs(tmp_path):
    sensor = tmp_path / "sensor.json"
    sensor.write_text(json.dumps({"readings": [{"wind_speed": 2.0, "temperature": 10},
                                               {"wind_speed": 4.0, "temperature": 20}]}))
    sims = [stubs.simulate(i, str(sensor), steps=5) for i in range(4)]
    assert [s["sim_id"] for s in sims] == [0, 1, 2, 3] and sims[0]["inflow"] == 3.0
    assert sims[0]["temperature"] == 15 and sims[1]["inflow"] != sims[0]["inflow"]
    model = stubs.train("mlp", sims)
    assert model["samples"] == 4 and model["sim_ids"] == [0, 1, 2, 3] and model["loss"] >= 0
    best = stubs.evaluate([model, {**model, "model": "gnn", "loss": model["loss"] + 1}])
    assert best["best"] == "mlp"
    (tmp_path / "bad.json").write_text("[1, 2]")
    for call in (lambda: stubs.simulate(0, str(tmp_path / "bad.json")),
                 lambda: stubs.simulate(0, "relative.json"),
                 lambda: stubs.train("mlp", []), lambda: stubs.evaluate([])):
        with pytest.raises(ValueError):
            call()


def test_state_box_publishes_whole_state_and_caps_the_log():
    seen: list[dict] = []
    box = StateBox(WorkflowState(), seen.append)
    for i in range(MAX_LOG + 5):
        box.log(f"line {i}", publish=False)
    box.update(status="running", progress=7)
    assert len(seen) == 1 and seen[0]["status"] == "running" and seen[0]["progress"] == 7
    assert len(seen[0]["log"]) == MAX_LOG and seen[0]["log"][-1]["message"] == f"line {MAX_LOG + 4}"
    assert seen[0]["message"] == f"line {MAX_LOG + 4}"


def test_pick_and_classify_without_network():
    from radical.edge.plugins.xgfabric.clusters import (ClusterLost, WorkflowError, classify,
                                                        pick_clusters)
    from radical.edge.plugins.xgfabric.config import ResourceConfig

    edges = {"home": {"plugins": {"xgfabric": {}}},
             "a": {"plugins": {"rhapsody": {}, "staging": {}}},
             "login": {"plugins": {"psij": {}, "queue_info": {}}},
             "psij-only": {"plugins": {"psij": {}}},
             "login.xgf-abc123": {"role": "compute", "plugins": {"rhapsody": {}}}}
    auto = pick_clusters(ResourceConfig(), edges, "home")
    assert [c.name for c in auto] == ["a", "login"]  # not itself, not children of runs
    with pytest.raises(WorkflowError):
        pick_clusters(ResourceConfig(), {"home": edges["home"]}, "home")
    forced = pick_clusters(ResourceConfig(cluster_configs={
        "x": {"edge": "a", "type": "immediate", "gpu": True},
        "y": {"edge": "psij-only", "type": "immediate"},
        "z": {"edge": "gone", "type": "allocate"}}), edges, "home")
    assert classify(None, forced[0], edges) == "immediate"  # type given: nothing asked
    assert forced[0].exec_edge == "a" and forced[0].status.has_gpu
    for cluster, words in ((forced[1], "no rhapsody plugin"), (forced[2], "not connected")):
        with pytest.raises(ClusterLost) as err:
            classify(None, cluster, edges)
        assert words in str(err.value)


def test_client_needs_no_edge_side():
    from blocked_imports import run_without

    run_without({"celery", "redis", "psutil", "starlette", "fastapi", "psij", "rhapsody",
                 "kombu", "pydantic", "pydantic_settings", "uvicorn", "orjson", "msgpack"}, """
        from radical.edge.sdk.edge import resolve_client_class
        from radical.edge.plugins.xgfabric.client import XGFabricClient
        assert resolve_client_class("xgfabric") is XGFabricClient
        from radical.edge.plugin_xgfabric import XGFabricClient as Alias
        assert Alias is XGFabricClient
    """)


def test_state_box_coalesces_notifications():
    import threading

    seen: list[dict] = []
    last = threading.Event()

    def publish(state: dict) -> None:
        seen.append(state)
        if state["progress"] == 49:
            last.set()

    box = StateBox(WorkflowState(), publish)
    box.update(status="running", phase="simulation")  # urgent: out at once
    assert len(seen) == 1
    for i in range(50):
        box.update(progress=i)
    assert last.wait(5), "the latest state was never published"
    assert len(seen) <= 3 and seen[-1]["progress"] == 49  # not one per update
    box.update(status="completed")
    assert seen[-1]["status"] == "completed" and seen[-1]["progress"] == 49
