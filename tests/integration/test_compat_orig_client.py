"""The original 0.2.0 client's wire behaviour (tests/compat/orig_client.py) against this
bridge, on real edges: discovery by `namespace`, its request shapes, its error handling,
HTTP Basic tokens, and the original's extra bridge routes."""
from __future__ import annotations

import threading
import time

import httpx
import pytest

import authed
from compat import orig_client as orig
from radical.edge import services

EDGE = "orig1"
TOKEN = "compat-basic-token"


@pytest.fixture(scope="module")
def edge(module_edges):
    return module_edges(name=EDGE, plugins="sysinfo,queue_info,psij,rhapsody")


def with_token(url: str) -> str:
    """The session's bridge is closed: the original client passes the token as URL user
    info (HTTP Basic), the only way it has."""
    return url.replace("://", f"://:{authed.TOKEN}@")


@pytest.fixture
def bc(bridge_url, edge):
    client = orig.BridgeClient(with_token(bridge_url))
    yield client
    client.close()


def test_discovery_uses_namespace_and_endpoint_type(bc, bridge_url):
    assert EDGE in bc.list_edges()
    plugins = bc.get_edge_client(EDGE).list_plugins()
    assert set(plugins) >= {"sysinfo", "queue_info", "psij", "rhapsody"}
    for name, info in plugins.items():
        assert info["namespace"] == f"/{EDGE}/{name}"
        assert info["enabled"] is True and info["version"]
    data = authed.post(f"{bridge_url}/edge/list").json()["data"]
    assert data["edges"][EDGE]["endpoint"]["type"] == "radical.edge"


def test_sysinfo(bc):
    si = bc.get_edge_client(EDGE).get_plugin("sysinfo")
    assert si.sid.startswith("session.")
    metrics = si.get_metrics()
    assert {"system", "cpu", "memory", "disks", "network", "gpus"} <= set(metrics)
    assert metrics["memory"]["total"] > 0
    assert si.homedir().startswith("/")
    assert si.host_role()["role"] in ("login", "compute")
    si.close()
    assert si.sid is None


def test_queue_info(bc):
    qi = bc.get_edge_client(EDGE).get_plugin("queue_info")
    assert qi.backend() == "slurm"
    queues = qi.get_info(force=True)["queues"]
    assert "debug" in queues and queues["debug"]["name"] == "debug"
    assert isinstance(qi.list_jobs("debug")["jobs"], list)
    assert isinstance(qi.list_all_jobs(user="*")["jobs"], list)
    allocs = qi.list_allocations()["allocations"]
    for row in allocs:  # the scheduler's time string (the original's), not minutes
        assert row["max_wall"] is None or isinstance(row["max_wall"], str)
        assert {"allocated_node_hours", "used_node_hours", "remaining_node_hours"} <= set(row)
    assert qi.job_allocation() is None
    gone = qi.cancel_job("99999999")  # unknown to SLURM: 200, saying so
    assert gone["status"] == "unknown" and gone["canceled"] is False and gone["detail"]
    with pytest.raises(RuntimeError, match="HTTP 404"):
        qi.cancel_job("not-a-job")
    qi.close()


def test_psij_local_job(bc, tmp_path):
    pj = bc.get_edge_client(EDGE).get_plugin("psij")
    notes: list[dict] = []
    final = threading.Event()

    def on_status(_edge, _plugin, _topic, data):
        notes.append(data)
        if data.get("state") in ("COMPLETED", "FAILED"):
            final.set()

    pj.register_notification_callback(on_status, topic="job_status")
    assert bc.connected.wait(10)
    job = pj.submit_job({"executable": "/bin/sh", "arguments": ["-c", "echo out; echo err >&2"],
                         "directory": str(tmp_path)}, executor="local")
    assert job["job_id"]
    deadline = time.monotonic() + 60
    while (st := pj.get_job_status(job["job_id"]))["state"] not in ("COMPLETED", "FAILED"):
        assert time.monotonic() < deadline, st
        time.sleep(0.3)
    assert st["state"] == "COMPLETED" and st["exit_code"] == 0
    assert st["stdout"] == "out\n" and st["stderr"] == "err\n"
    assert job["job_id"] in {j["job_id"] for j in pj.list_jobs()["jobs"]}
    assert final.wait(30), notes
    last = notes[-1]
    assert (last["stdout"], last["stderr"], last["exit_code"]) == ("out\n", "err\n", 0)
    again = pj.cancel_job(job["job_id"])  # ended: 200 with the final state, not 409
    assert again["state"] == "COMPLETED" and again["canceled"] is False
    pj.close()


def test_rhapsody_tasks_complete_through_sse(bc):
    rh = bc.get_edge_client(EDGE).get_plugin("rhapsody", backends=["concurrent"])
    acks = rh.submit_tasks([{"executable": "/bin/echo", "arguments": ["hi", str(i)]}
                            for i in range(2)]
                           # rhapsody's remote backends mark their tasks backend "edge"
                           + [{"function": "radical.edge.plugins.rhapsody.functions:echo",
                               "args": [7], "kwargs": {}, "backend": "edge"}])
    assert all(a["state"] in ("RUNNING", "DONE") for a in acks), acks  # never null
    done = rh.wait_tasks([a["uid"] for a in acks], timeout=60)
    assert [t["state"] for t in done] == ["DONE"] * 3
    got = rh.get_task(acks[0]["uid"])
    assert got["stdout"].strip() == "hi 0" and got["exit_code"] == 0
    # the spec is echoed beside the results, in answers and in notifications
    for task in (got, done[0]):
        assert task["executable"] == "/bin/echo" and task["arguments"] == ["hi", "0"]
        assert task["backend"] == "concurrent" and task["task_type"] == "ComputeTask"
        assert task["function"] is None
    fn = rh.get_task(acks[2]["uid"])
    assert fn["function"] == "radical.edge.plugins.rhapsody.functions:echo"
    assert fn["args"] == [7] and fn["kwargs"] == {} and fn["return_value"] == 7
    assert len(rh.list_tasks()["tasks"]) == 3
    again = rh.cancel_task(acks[0]["uid"])  # ended: 200 with the final state
    assert again["state"] == "DONE" and again["canceled"] is False
    rh.close()


def test_errors_raise_runtime_error_with_status_and_detail(bc):
    ec = bc.get_edge_client(EDGE)
    with pytest.raises(RuntimeError, match="unknown on"):
        ec.get_plugin("nosuch")
    si = ec.get_plugin("sysinfo")
    si._sid = "session.gone"
    with pytest.raises(RuntimeError) as err:
        si.get_metrics()
    assert str(err.value).startswith("HTTP 404 — [orig1/sysinfo]")
    assert "session.gone" in str(err.value)
    with pytest.raises(RuntimeError, match="HTTP 404 .*unknown edge 'nowhere'"):
        bc.get_edge_client("nowhere").list_plugins() or orig.SysInfoClient(
            bc._http, "/nowhere/sysinfo", bc, "nowhere", "sysinfo").register_session()


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/nowhere/sysinfo/health", 404),          # proxy: unknown edge
    ("GET", f"/{EDGE}/nosuch/health", 404),            # proxy: unknown plugin
    ("GET", "/no/such/route/at/all", 404),             # proxy path, unknown edge
    ("GET", "/edge/nosuch", 404),                      # FastAPI: unknown route
    ("POST", "/edge/disconnect/nowhere", 404),         # management
    ("GET", "/plugins/nosuch.js", 404),
    ("GET", "/plugins/..%2Fx.js", 404),
    ("POST", "/edges", 405),
])
def test_bridge_errors_carry_the_original_envelope(bridge_url, edge, method, path, status):
    r = authed.request(method, f"{bridge_url}{path}", timeout=10)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] is True and body["status_code"] == status
    assert isinstance(body["detail"], str) and body["detail"]


def test_plugin_answers_are_relayed_untouched(bridge_url, edge):
    r = authed.get(f"{bridge_url}/{EDGE}/sysinfo/metrics/session.nope", timeout=10)
    assert r.status_code == 404 and "session.nope" in r.json()["detail"]


def test_edges_route(bridge_url, edge):
    body = authed.get(f"{bridge_url}/edges", timeout=10).json()
    assert body["total"] == len(body["edges"])
    mine = next(e for e in body["edges"] if e["name"] == EDGE)
    assert mine["connected"] is True
    assert set(mine["plugins"]) >= {"sysinfo", "psij"}
    assert mine["plugin_count"] == len(mine["plugins"])


def test_docs_redoc_openapi_and_ui_modules(bridge_url):
    for path in ("/docs", "/redoc"):
        r = authed.get(f"{bridge_url}{path}", timeout=10)
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "/edges" in authed.get(f"{bridge_url}/openapi.json", timeout=10).json()["paths"]
    r = httpx.get(f"{bridge_url}/plugins/sysinfo.js", timeout=10, follow_redirects=True)
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert str(r.url).endswith("/portal/js/sysinfo.js")  # relative imports resolve there


def test_http_basic_token_lets_the_unchanged_client_through(redis_url, log_dir, edge):
    svc = services.start_bridge(redis_url, log_dir=log_dir, token=TOKEN)
    try:
        url = svc.extra["url"]
        services.wait_for_edge(url, EDGE, 30, token=TOKEN)
        with pytest.raises(RuntimeError, match="HTTP 401"):
            orig.BridgeClient(url).list_edges()
        r = httpx.post(f"{url}/edge/list", timeout=10)
        assert r.json() == {"error": True, "status_code": 401,
                            "detail": "missing or invalid bearer token"}
        with pytest.raises(RuntimeError, match="HTTP 401"):
            orig.BridgeClient(url.replace("://", "://:wrong@")).list_edges()
        bc = orig.BridgeClient(url.replace("://", f"://:{TOKEN}@"))  # https://:TOKEN@host
        try:
            assert EDGE in bc.list_edges()
            seen = threading.Event()
            bc.register_topology_callback(lambda edges: EDGE in edges and seen.set())
            assert seen.wait(15), "the SSE stream must accept Basic credentials too"
            si = bc.get_edge_client(EDGE).get_plugin("sysinfo")
            assert si.get_metrics()["cpu"]
            si.close()
        finally:
            bc.close()
        # this project's SDK takes the same URL form (httpx sends the user info as Basic)
        from radical.edge import BridgeClient

        sdk = BridgeClient(url.replace("://", f"://:{TOKEN}@"))
        try:
            assert EDGE in sdk.list_edges()
            assert sdk.wait_for_listener(15)
            with sdk.get_edge_client(EDGE).get_plugin("sysinfo") as si:
                assert si.host_role()["role"]
        finally:
            sdk.close()
        # the token as user name (`https://TOKEN@host`) works as well
        r = httpx.post(f"{url}/edge/list", auth=(TOKEN, ""), timeout=10)
        assert r.status_code == 200
    finally:
        svc.stop()
