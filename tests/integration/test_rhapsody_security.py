"""rhapsody runs only the code the edge admin allows, and a task cannot take the edge down.

Real Redis, bridges and edges.  Edge ``rs-a`` allows ``rhapsec_tasks:*`` (a module of
tests/fixtures/rhapsody_functions) and has the entry point ``triple`` installed there;
``rs-p`` also allows pickles.  A bridge with a token shows what an authorised caller gets.
Each test names the attack it repels; on the code before this change every one of them
ran (or, for the bodies, inflated the edge to GBs).
"""
from __future__ import annotations

import os
import pickle
import threading
import time
from pathlib import Path

import httpx

import authed
from rhapsody_helpers import rhapsody_session
from waiting import wait_for
import msgpack
import pytest

from radical.edge import services
from radical.edge.plugins.rhapsody.executor import pid_alive

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rhapsody_functions"
FN = "radical.edge.plugins.rhapsody.functions"
TOKEN = "rhapsec-test-token"
MSGPACK = {"content-type": "application/msgpack"}


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(FIXTURES), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "RADICAL_EDGE_RHAPSODY_FUNCTIONS": "rhapsec_tasks:*",
            "RADICAL_EDGE_RHAPSODY_FUNCTION_WORKERS": "2", **extra}


@pytest.fixture(scope="module")
def edges(module_edges):
    module_edges("rhapsody", name="rs-a", env=_env())
    module_edges("rhapsody", name="rs-p", env=_env(RADICAL_EDGE_ALLOW_PICKLE="true"))
    return {svc.extra["name"]: svc for svc in module_edges.started}


@pytest.fixture(scope="module")
def token_url(redis_url, log_dir, edges):
    svc = services.start_bridge(redis_url, log_dir=log_dir, token=TOKEN)
    services.wait_for_edge(svc.extra["url"], "rs-p", 30, token=TOKEN)
    yield svc.extra["url"]
    svc.stop()


@pytest.fixture
def http(bridge_url):
    with httpx.Client(base_url=bridge_url, timeout=60, headers=authed.AUTH) as client:
        yield client


def session(http: httpx.Client, edge: str) -> str:
    return rhapsody_session(http, edge, 30)


def submit(http, edge, sid, tasks, msgpack_body=False) -> httpx.Response:
    url = f"/{edge}/rhapsody/submit/{sid}"
    if msgpack_body:
        return http.post(url, content=msgpack.packb({"tasks": tasks}, use_bin_type=True),
                         headers=MSGPACK)
    return http.post(url, json={"tasks": tasks})


def final(http, edge, sid, uid, timeout=60.0) -> dict:
    def check():
        task = http.get(f"/{edge}/rhapsody/task/{sid}/{uid}").json()
        return task if task["state"] in ("DONE", "FAILED", "CANCELED") else None
    return wait_for(check, timeout)


def run(http, edge, sid, tasks, **kw) -> dict[str, dict]:
    r = submit(http, edge, sid, tasks, **kw)
    assert r.status_code == 200, r.text
    return {t["uid"]: final(http, edge, sid, t["uid"]) for t in tasks}


class _Payload:
    """Unpickling this runs `touch <marker>`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("function", [
    "os:system", "builtins:exec", "builtins:eval", "subprocess:run", "pickle:loads",
    "os:_exit", "posix:system", "os.system", "importlib:import_module",
    "rhapsec_tasks:system",  # imported into an allowed module, not defined there
    f"{FN}:os.getpid",  # an attribute of an attribute of an allowed module
])
def test_functions_outside_the_allow_list_are_refused(http, edges, tmp_path, function):
    marker = tmp_path / "ran"
    sid = session(http, "rs-a")
    arg = f"touch {marker}" if "system" in function or function == "os.system" else 3
    r = submit(http, "rs-a", sid, [{"uid": "evil", "function": function, "args": [arg]}])
    assert r.status_code == 403, r.text
    detail = r.json()["detail"]
    assert repr(function) in detail and "RADICAL_EDGE_RHAPSODY_FUNCTIONS" in detail
    assert "radical.edge.functions" in detail
    assert not marker.exists()
    # the edge is fine and answers the next call
    done = run(http, "rs-a", sid, [{"uid": "ok", "function": f"{FN}:add", "args": [1, 2]}])
    assert done["ok"]["return_value"] == 3


def test_pickle_loads_with_a_bin_argument_is_refused_and_bins_stay_bytes(http, edges, tmp_path):
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Payload(marker))
    for edge in ("rs-a", "rs-p"):  # pickles disabled, and enabled (caller: admin)
        sid = session(http, edge)
        r = submit(http, edge, sid, [{"function": "pickle:loads", "args": [payload]}],
                   msgpack_body=True)
        assert r.status_code == 403 and "'pickle:loads' is not allowed" in r.json()["detail"]
        # the same bytes as an argument of an allowed function arrive as bytes
        done = run(http, edge, sid, [{"uid": "b", "function": "rhapsec_tasks:raw_len",
                                      "args": [payload]}], msgpack_body=True)
        assert done["b"]["state"] == "DONE", done
        assert done["b"]["return_value"] == ["bytes", len(payload)]
        # raw bytes in place of args/kwargs are not taken for a pickle either
        r = submit(http, edge, sid, [{"function": f"{FN}:noop", "args": payload}],
                   msgpack_body=True)
        assert r.status_code == 422 and "args must be a list" in r.json()["detail"]
        if edge == "rs-a":  # a bin as the function is a pickle: refused where pickles are off
            r = submit(http, edge, sid, [{"function": payload}], msgpack_body=True)
            assert r.status_code == 403
    assert not marker.exists()


def test_pickled_functions_need_opt_in_and_an_authorised_caller(http, edges, token_url,
                                                                 tmp_path, bridge_url):
    import base64
    import functools

    marker = tmp_path / "ran-in-worker"
    func = functools.partial(os.system, f"touch {marker}")
    blob = "pickle::" + base64.b64encode(pickle.dumps(func)).decode()
    sid = session(http, "rs-p")
    # a caller without the 'submit' scope gets nothing submitted, pickles included
    reader = http.post("/bridge/tokens", json={"user": "reader", "scope": "read"}).json()["token"]
    with httpx.Client(base_url=bridge_url, timeout=60,
                      headers={"Authorization": f"Bearer {reader}"}) as read_only:
        r = read_only.post(f"/rs-p/rhapsody/submit/{sid}", json={"tasks": [{"function": blob}]})
    assert r.status_code == 403 and "submit" in r.json()["detail"]
    with httpx.Client(base_url=token_url, timeout=60,
                      headers={"Authorization": f"Bearer {TOKEN}"}) as admin:
        sid_a = session(admin, "rs-a")
        r = submit(admin, "rs-a", sid_a, [{"function": blob}])
        assert r.status_code == 403 and "disabled" in r.json()["detail"]
        assert not marker.exists()
        # opted in and authorised: it runs, in a worker process (the edge never unpickles)
        sid_p = session(admin, "rs-p")
        edge_pid = edges["rs-p"].pid
        done = run(admin, "rs-p", sid_p, [{"uid": "p", "function": blob}])
        assert done["p"]["state"] == "DONE" and done["p"]["return_value"] == 0
        assert marker.exists()
        garbage = "pickle::" + base64.b64encode(b"not a pickle").decode()
        done = run(admin, "rs-p", sid_p, [{"uid": "g", "function": garbage}])
        assert done["g"]["state"] == "FAILED" and "UnpicklingError" in done["g"]["exception"]
        assert pid_alive(edge_pid)


def test_allow_listed_and_entry_point_functions_run(http, edges):
    sid = session(http, "rs-a")
    done = run(http, "rs-a", sid, [
        {"uid": "allowed", "function": "rhapsec_tasks:double", "args": [21]},
        {"uid": "packaged", "function": "rhapsec_ep_mod:triple", "args": [5]},
    ])
    assert done["allowed"]["return_value"] == 42
    assert done["packaged"]["return_value"] == 15
    # the entry point allows its function, not its whole module
    r = submit(http, "rs-a", sid, [{"function": "rhapsec_ep_mod:not_exported", "args": [1]}])
    assert r.status_code == 403
    stats = http.get("/rs-a/rhapsody/stats").json()
    assert "rhapsec_ep_mod:triple" in stats["allowed_functions"]
    assert "rhapsec_tasks:*" in stats["allowed_functions"]
    # the task ran in a worker process, not in the edge
    pid = run(http, "rs-a", sid, [{"uid": "pid", "function": "rhapsec_tasks:whoami"}])
    assert pid["pid"]["return_value"] != edges["rs-a"].pid


@pytest.mark.parametrize("crash, needle", [
    ({"function": "rhapsec_tasks:exit_hard", "args": [3]}, "exited with code 3"),
    ({"function": "rhapsec_tasks:segfault"}, "SIGSEGV"),
])
def test_a_crashing_task_fails_alone(http, edges, crash, needle):
    sid = session(http, "rs-a")
    tasks = [{"uid": "crash", **crash}] + [
        {"uid": f"d{i}", "function": "rhapsec_tasks:double", "args": [i]} for i in range(6)]
    done = run(http, "rs-a", sid, tasks)
    assert done["crash"]["state"] == "FAILED", done["crash"]
    assert needle in done["crash"]["error"] and "worker process" in done["crash"]["error"]
    for i in range(6):
        assert done[f"d{i}"]["state"] == "DONE" and done[f"d{i}"]["return_value"] == 2 * i
    assert pid_alive(edges["rs-a"].pid)
    again = run(http, "rs-a", sid, [{"uid": "after", "function": "rhapsec_tasks:double",
                                     "args": [4]}])
    assert again["after"]["return_value"] == 8


def test_cancelling_a_running_function_kills_it(http, edges, tmp_path):
    sid = session(http, "rs-a")
    pidfile = tmp_path / "nap.pid"
    r = submit(http, "rs-a", sid, [{"uid": "nap", "function": "rhapsec_tasks:nap",
                                    "args": [60, str(pidfile)]}])
    assert r.status_code == 200
    wait_for(pidfile.exists)
    pid = int(pidfile.read_text())
    assert pid != edges["rs-a"].pid  # a worker process runs it, not the edge
    r = http.post(f"/rs-a/rhapsody/cancel/{sid}/nap")
    assert r.status_code == 200 and r.json()["state"] == "CANCELED"
    # the process running it is gone (killed, not left sleeping for a minute)
    wait_for(lambda: not pid_alive(pid), 10)
    timed = run(http, "rs-a", sid, [{"uid": "slow", "function": "rhapsec_tasks:nap",
                                     "args": [60], "timeout": 1}])
    assert timed["slow"]["state"] == "FAILED" and "timed out" in timed["slow"]["error"]
    ok = run(http, "rs-a", sid, [{"uid": "next", "function": "rhapsec_tasks:double",
                                  "args": [5]}])
    assert ok["next"]["return_value"] == 10


def _vm_hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("megabytes", [10, 30])
def test_huge_msgpack_bodies_stay_bounded(http, make_edge, bridge_url, megabytes):
    name = f"rs-body{megabytes}"
    svc = make_edge("rhapsody", name=name, env=_env())
    sid = session(http, name)
    n = megabytes * 1_000_000
    # one array of n empty maps: 1 byte each on the wire, ~70 bytes each as Python dicts
    body = b"\xdd" + n.to_bytes(4, "big") + b"\x80" * n
    present: list[bool] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                present.append(name in services.list_edges(bridge_url))
            except httpx.HTTPError:
                pass
            stop.wait(0.25)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        r = http.post(f"/{name}/rhapsody/submit/{sid}", content=body, headers=MSGPACK,
                      timeout=120)
        # nested arrays below the per-container cap hit the value budget instead
        chunk = b"\xdd" + (1_000_000).to_bytes(4, "big") + b"\x80" * 1_000_000
        nested = b"\xdd" + (megabytes // 2).to_bytes(4, "big") + chunk * (megabytes // 2)
        r2 = http.post(f"/{name}/rhapsody/submit/{sid}", content=nested, headers=MSGPACK,
                       timeout=120)
        time.sleep(1.0)
    finally:
        stop.set()
        watcher.join(5)
    peak = _vm_hwm_mb(svc.pid)
    print(f"edge VmHWM after {megabytes} MB bodies: {peak:.0f} MB")
    assert peak < 500, f"edge peaked at {peak:.0f} MB"
    assert present and all(present), "the edge dropped out of the topology"
    assert r.status_code == 413, r.text
    assert "too large" in r.json()["detail"]
    assert r2.status_code in (413, 422), r2.text
    done = run(http, name, sid, [{"uid": "alive", "function": f"{FN}:add", "args": [2, 2]}])
    assert done["alive"]["return_value"] == 4
