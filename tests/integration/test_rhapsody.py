"""The rhapsody plugin end to end: real bridge, real edges (Celery workers), real rhapsody
backends, the SDK's RhapsodyClient and raw HTTP.

Two edges serve the module: ``rh-a`` (defaults, at most 4 executables at once) and ``rh-p``
(pickled functions allowed).  A second bridge with a token shows that pickles also need an
authenticated caller.
"""
from __future__ import annotations

import os
import threading
import time
from collections import Counter

import httpx
import pytest
from authed import AUTH
from waiting import wait_for

from radical.edge import BridgeClient, services
from radical.edge.plugins.rhapsody.executor import pid_alive
from radical.edge.sdk import EdgeError

FN = "radical.edge.plugins.rhapsody.functions"
TOKEN = "rhapsody-test-token"
MAX_RUNNING = 4


@pytest.fixture(scope="module")
def rh_edges(redis_url, bridge_url, log_dir):
    started = [
        services.start_edge(redis_url, "rh-a", "rhapsody", log_dir, bridge_url=bridge_url,
                            env={"RADICAL_EDGE_MAX_RUNNING_TASKS": str(MAX_RUNNING)}),
        services.start_edge(redis_url, "rh-p", "rhapsody", log_dir, bridge_url=bridge_url,
                            env={"RADICAL_EDGE_ALLOW_PICKLE": "true"}),
    ]
    yield started
    for svc in started:
        svc.stop()


@pytest.fixture(scope="module")
def token_bridge(redis_url, log_dir, rh_edges):
    svc = services.start_bridge(redis_url, log_dir=log_dir, token=TOKEN)
    services.wait_for_edge(svc.extra["url"], "rh-p", 30, token=TOKEN)
    yield svc
    svc.stop()


@pytest.fixture
def bc(bridge_url):
    client = BridgeClient(bridge_url)
    yield client
    client.close()


@pytest.fixture
def rh(bc, rh_edges):
    client = bc.get_edge_client("rh-a").get_plugin("rhapsody", backends=["concurrent", "noop"])
    yield client
    client.close()


@pytest.fixture
def http(bridge_url):
    with httpx.Client(base_url=bridge_url, timeout=30, headers=AUTH) as client:
        yield client


def register_raw(http: httpx.Client, edge: str, **kwargs) -> str:
    r = http.post(f"/{edge}/rhapsody/register_session", json=kwargs)
    assert r.status_code == 200, r.text
    sid = r.json()["sid"]
    assert r.json()["status"] == "initializing"
    for _ in range(200):
        status = http.get(f"/{edge}/rhapsody/session_status/{sid}").json()["status"]
        if status != "initializing":
            break
        time.sleep(0.02)
    return sid


def test_session_comes_up_ready_through_sse(bc, rh_edges):
    plugins = bc.get_edge_client("rh-a").list_plugins()
    assert plugins["rhapsody"]["enabled"] is True and plugins["rhapsody"]["ui_config"]
    rh = bc.get_edge_client("rh-a").get_plugin("rhapsody", backends=["noop"])
    try:
        assert type(rh).__name__ == "RhapsodyClient"
        assert rh._sse_ok  # readiness came from the session_status notification
        info = rh.session_status()
        assert info["status"] == "ready" and info["backends"] == ["noop"]
    finally:
        rh.close()


def test_unavailable_backend_reports_failure_and_409(bc, http, rh_edges):
    try:
        import dragon  # noqa: F401
        pytest.skip("dragon is installed here")
    except ImportError:
        pass
    with pytest.raises(EdgeError) as info:
        bc.get_edge_client("rh-a").get_plugin("rhapsody", backends=["dragon_v3"],
                                              init_timeout=30)
    assert "failed to initialize" in str(info.value) and "dragon" in str(info.value).lower()
    sid = register_raw(http, "rh-a", backends=["dragon_v3"])
    status = http.get(f"/rh-a/rhapsody/session_status/{sid}").json()
    assert status["status"] == "failed" and "dragon" in status["error"].lower()
    r = http.post(f"/rh-a/rhapsody/submit/{sid}", json={"tasks": [{"executable": "true"}]})
    assert r.status_code == 409 and "failed to initialize" in r.json()["detail"]
    assert http.post(f"/rh-a/rhapsody/unregister_session/{sid}").status_code == 200


def test_executables_and_functions(rh):
    tasks = [
        {"uid": "echo", "executable": "/bin/echo", "arguments": ["hello", "edge"]},
        {"uid": "exit3", "executable": "/bin/sh", "arguments": ["-c", "echo oops >&2; exit 3"]},
        {"uid": "nothere", "executable": "/no/such/binary"},
        {"uid": "add", "function": f"{FN}:add", "args": [20, 22]},
        {"uid": "bytes", "function": f"{FN}:to_bytes", "args": ["\u00e9t\u00e9"]},
        {"uid": "opaque", "function": f"{FN}:opaque"},
        {"uid": "fail", "function": f"{FN}:fail", "args": ["bad input"]},
        {"uid": "noop", "function": f"{FN}:noop", "backend": "noop"},
    ]
    acks = rh.submit_tasks(tasks)
    assert [a["uid"] for a in acks] == [t["uid"] for t in tasks]
    done = {t["uid"]: t for t in rh.wait_tasks([t["uid"] for t in tasks], timeout=30)}
    assert done["echo"]["state"] == "DONE" and done["echo"]["stdout"] == "hello edge\n"
    assert done["exit3"]["state"] == "FAILED" and done["exit3"]["exit_code"] == 3
    assert done["exit3"]["stderr"] == "oops\n"
    assert done["nothere"]["state"] == "FAILED" and done["nothere"]["exit_code"] == 127
    assert done["add"]["return_value"] == 42 and done["add"]["exit_code"] == 0
    assert done["bytes"]["return_value"] == "\u00e9t\u00e9".encode()  # restored by the client
    assert done["opaque"]["return_value"] == "<opaque thing>"
    assert done["fail"]["state"] == "FAILED" and "bad input" in done["fail"]["error"]
    assert "RuntimeError" in done["fail"]["exception"]
    assert done["noop"]["state"] == "DONE"
    for record in done.values():
        for key in ("uid", "state", "exit_code", "stdout", "stderr", "return_value", "error",
                    "exception"):
            assert key in record
    assert rh.get_task("add")["return_value"] == 42
    assert len(rh.list_tasks()["tasks"]) == len(tasks)


def test_bad_specs_answer_clear_4xx(http, rh_edges):
    sid = register_raw(http, "rh-a", backends=["concurrent"])
    url = f"/rh-a/rhapsody/submit/{sid}"
    cases = [
        ({"tasks": [{"uid": "x"}]}, 422, "needs an 'executable' or a 'function'"),
        ({"tasks": [{"executable": "true", "function": f"{FN}:noop"}]}, 422, "not both"),
        ({"tasks": [{"function": "no_such_mod_q:f"}]}, 403, "not allowed on this edge"),
        ({"tasks": [{"function": f"{FN}:nope"}]}, 422, "no attribute"),
        ({"tasks": [{"executable": "true", "arguments": "a b"}]}, 422, "must be a list"),
        ({"tasks": [{"executable": "true", "backend": "noop"}]}, 422, "not part of this session"),
        ({"tasks": "nope"}, 422, "list of task objects"),
        ({"tasks": [{"function": "pickle::gASVAAAAAAAAAAB9lC4="}]}, 403,
         "RADICAL_EDGE_ALLOW_PICKLE"),
    ]
    for body, status, needle in cases:
        r = http.post(url, json=body)
        assert r.status_code == status, (body, r.text)
        assert needle in r.json()["detail"], (body, r.text)
    r = http.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = http.post(url, content=b"\xc1", headers={"content-type": "application/msgpack"})
    assert r.status_code == 400 and "msgpack" in r.json()["detail"]
    r = http.post(url, json={"tasks": [{"uid": "d", "executable": "true"},
                                       {"uid": "d", "executable": "true"}]})
    assert r.status_code == 409
    assert http.post("/rh-a/rhapsody/submit/session.nope", json={"tasks": []}).status_code == 404
    assert http.post("/rh-a/rhapsody/register_session",
                     json={"backends": ["warp_drive"]}).status_code == 422
    http.post(f"/rh-a/rhapsody/unregister_session/{sid}")


def test_pickled_functions_need_opt_in_and_token(http, rh_edges, token_bridge):
    import base64
    import pickle

    from radical.edge.plugins.rhapsody import functions

    blob = "pickle::" + base64.b64encode(pickle.dumps(functions.add)).decode()
    task = {"uid": "p", "function": blob, "args": [1, 2]}
    # edge allows pickles, but a read-only caller may not submit anything
    sid = register_raw(http, "rh-p")
    reader = http.post("/bridge/tokens", json={"user": "rita", "scope": "read"}).json()["token"]
    r = http.post(f"/rh-p/rhapsody/submit/{sid}", json={"tasks": [task]},
                  headers={"Authorization": f"Bearer {reader}"})
    assert r.status_code == 403 and "'submit'" in r.json()["detail"]
    with httpx.Client(base_url=token_bridge.extra["url"], timeout=30,
                      headers={"Authorization": f"Bearer {TOKEN}"}) as authed:
        sid2 = register_raw(authed, "rh-p")
        r = authed.post(f"/rh-p/rhapsody/submit/{sid2}", json={"tasks": [task]})
        assert r.status_code == 200, r.text
        for _ in range(200):
            result = authed.get(f"/rh-p/rhapsody/task/{sid2}/p").json()
            if result["state"] == "DONE":
                break
            time.sleep(0.02)
        assert result["return_value"] == 3
        # authenticated, but the edge did not opt in
        sid3 = register_raw(authed, "rh-a")
        r = authed.post(f"/rh-a/rhapsody/submit/{sid3}", json={"tasks": [task]})
        assert r.status_code == 403 and "disabled" in r.json()["detail"]
        for edge, s in (("rh-p", sid2), ("rh-a", sid3)):
            authed.post(f"/{edge}/rhapsody/unregister_session/{s}")
    http.post(f"/rh-p/rhapsody/unregister_session/{sid}")


def test_cancel_kills_the_process_and_its_children(rh, tmp_path):
    script = f"sleep 300 & echo $! > {tmp_path}/child; wait"
    rh.submit_tasks([{"uid": "sleeper", "executable": "/bin/sh", "arguments": ["-c", script]}])
    task = wait_for(lambda: (t := rh.get_task("sleeper")).get("pid")
                     and (tmp_path / "child").exists() and (tmp_path / "child").read_text()
                     .strip() and t)
    leader, child = task["pid"], int((tmp_path / "child").read_text())
    assert task["state"] == "RUNNING" and pid_alive(leader) and pid_alive(child)
    t0 = time.monotonic()
    answer = rh.cancel_task("sleeper")
    assert answer["state"] == "CANCELED" and answer["canceled"] is True
    wait_for(lambda: not pid_alive(leader) and not pid_alive(child), timeout=5)
    assert time.monotonic() - t0 < 5
    [result] = rh.wait_tasks(["sleeper"], timeout=10)
    assert result["state"] == "CANCELED"


def test_cancel_all_and_the_bound_on_running_executables(rh, http):
    tasks = [{"uid": f"s{i}", "executable": "sleep", "arguments": ["300"]} for i in range(12)]
    rh.submit_tasks(tasks)
    stats = wait_for(lambda: (s := http.get("/rh-a/rhapsody/stats").json())
                      ["running_processes"] == MAX_RUNNING and s)
    # the other tasks wait for a slot: they are queued, never started beyond the bound
    queued = [t for t in rh.list_tasks()["tasks"] if t["state"] != "RUNNING"]
    assert len(queued) == 12 - MAX_RUNNING
    stats = http.get("/rh-a/rhapsody/stats").json()
    assert stats["running_processes"] == MAX_RUNNING  # never more, although 12 were sent
    running = [t for t in rh.list_tasks()["tasks"] if t["state"] == "RUNNING"]
    pids = [t["pid"] for t in running]
    assert len(pids) == MAX_RUNNING and all(pid_alive(p) for p in pids)
    assert rh.cancel_all_tasks() == {"canceled": 12}
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=5)
    results = rh.wait_tasks([t["uid"] for t in tasks], timeout=10)
    assert {r["state"] for r in results} == {"CANCELED"}
    assert http.get("/rh-a/rhapsody/stats").json()["running_processes"] == 0


def test_close_cancels_tasks_and_frees_the_session(bc, http, rh_edges):
    rh = bc.get_edge_client("rh-a").get_plugin("rhapsody", backends=["concurrent", "noop"])
    sid = rh.sid
    acks = rh.submit_tasks([{"function": f"{FN}:noop", "backend": "noop"} for _ in range(2000)])
    rh.wait_tasks([a["uid"] for a in acks], timeout=30)
    rh.submit_tasks([{"uid": f"z{i}", "executable": "sleep", "arguments": ["300"]}
                     for i in range(3)])
    running = wait_for(lambda: len(p := [t["pid"] for t in rh.list_tasks()["tasks"]
                                          if t.get("pid") and t["state"] == "RUNNING"]) == 3
                        and p)
    work_dir = rh.session_status()["work_dir"]
    assert os.path.isdir(work_dir)
    rh.close()
    assert not any(pid_alive(p) for p in running)
    assert not os.path.exists(work_dir)
    assert http.get(f"/rh-a/rhapsody/session_status/{sid}").status_code == 404
    assert sid not in http.get("/rh-a/rhapsody/list_sessions").json()["sessions"]


def test_lone_task_is_delivered_at_once(rh):
    rh.submit_tasks([{"uid": "warm", "function": f"{FN}:noop"}])
    rh.wait_tasks(["warm"], timeout=10)
    times = []
    for i in range(5):
        t0 = time.monotonic()
        rh.submit_tasks([{"uid": f"lone{i}", "function": f"{FN}:sleep", "args": [0.05]}])
        rh.wait_tasks([f"lone{i}"], timeout=10)
        times.append(time.monotonic() - t0 - 0.05)
    assert min(times) < 0.25, times  # no batching window in the way of a single task


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", ["concurrent", "noop"])
def test_ten_thousand_tasks_every_uid_once(bc, rh_edges, backend):
    rh = bc.get_edge_client("rh-a").get_plugin("rhapsody", backends=[backend])
    seen: Counter = Counter()
    lock = threading.Lock()

    def count(edge, plugin, topic, data):
        if data.get("sid") != rh.sid:
            return
        records = data["tasks"] if topic == "task_status_batch" else [data]
        with lock:
            seen.update(r["uid"] for r in records if r["state"] in ("DONE", "FAILED",
                                                                    "CANCELED"))

    rh.register_notification_callback(count, "task_status")
    rh.register_notification_callback(count, "task_status_batch")
    try:
        n = 10_000
        t0 = time.monotonic()
        acks = rh.submit_tasks([{"function": f"{FN}:noop"} for _ in range(n)])
        uids = [a["uid"] for a in acks]
        assert len(set(uids)) == n
        results = rh.wait_tasks(uids, timeout=90)
        elapsed = time.monotonic() - t0
        assert [r["uid"] for r in results] == uids
        assert all(r["state"] == "DONE" for r in results)
        wait_for(lambda: len(seen) == n, timeout=10)
        time.sleep(0.2)
        assert set(seen) == set(uids) and max(seen.values()) == 1  # nothing lost, no dups
        assert elapsed < 60, elapsed
        info = rh.session_status()
        assert info["done"] == n and info["live"] == 0
    finally:
        rh.close()
