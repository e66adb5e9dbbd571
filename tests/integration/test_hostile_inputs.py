"""Bad input never makes a shipped plugin answer 500: a table of hostile requests against
real edges (psij, sysinfo, queue_info, rhapsody) through a real bridge, each must be < 500.

Also an edge where the batch tools are absent (no `sbatch` on PATH): asking for the slurm
executor is a 503 with a clear detail, not a crash.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import services

pytest.importorskip("psij")

HUGE = str(10 ** 30)


@pytest.fixture(scope="module")
def edge(redis_url, bridge_url, log_dir, tmp_path_factory):
    name = f"hostile{uuid.uuid4().hex[:6]}"
    env = {"RADICAL_EDGE_PSIJ_DIR": str(tmp_path_factory.mktemp("psij"))}
    svc = services.start_edge(redis_url, name, "psij,sysinfo,queue_info,rhapsody", log_dir,
                              env=env, bridge_url=bridge_url)
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def sids(edge, bridge_url) -> dict[str, str]:
    name = edge.extra["name"]
    out = {}
    plugins = authed.post(f"{bridge_url}/edge/list", timeout=5).json()["data"]["edges"][name]["plugins"]
    for plugin in ("psij", "sysinfo", "queue_info", "rhapsody"):
        if plugin not in plugins:
            continue
        r = authed.post(f"{bridge_url}/{name}/{plugin}/register_session", json={}, timeout=30)
        assert r.status_code == 200, r.text
        out[plugin] = r.json()["sid"]
    return out


def _spec(**over) -> dict:
    return {"executable": "/bin/true", **over}


#: (plugin, method, path with {sid}, json body or None, query)
PSIJ = [
    ("POST", "submit/{sid}", {"job_spec": _spec(attributes={"duration": 1e30})}, None),
    ("POST", "submit/{sid}", {"job_spec": _spec(attributes={"duration": float("nan")})}, None),
    ("POST", "submit/{sid}", {"job_spec": _spec(attributes={"duration": "nan"})}, None),
    ("POST", "submit/{sid}", {"job_spec": _spec(attributes={"duration": "inf"})}, None),
    ("POST", "submit/{sid}", {"job_spec": _spec(attributes={"duration": -5})}, None),
    ("POST", "submit/{sid}", {"job_spec": _spec(attributes={"duration": HUGE})}, None),
    ("POST", "submit/{sid}", {"job_spec": _spec(attributes={"duration": "99999999-00:00:00"})},
     None),
    ("POST", "submit/{sid}", {"job_spec": _spec(launcher="warp-drive")}, None),
    ("POST", "submit/{sid}", {"job_spec": _spec(launcher=7)}, None),
    ("POST", "submit/{sid}", {"job_spec": _spec(resources={"node_count": 10 ** 30})}, None),
    ("POST", "submit/{sid}", {"job_spec": _spec(resources={"process_count": -1})}, None),
    ("POST", "submit/{sid}", {"job_spec": _spec(resources=[1, 2])}, None),
    ("POST", "submit/{sid}", {"job_spec": _spec(arguments=[1e308, None])}, None),
    ("POST", "submit/{sid}", {"job_spec": _spec(environment=["A=1"])}, None),
    ("POST", "submit/{sid}", {"job_spec": _spec(), "executor": "no-such"}, None),
    ("POST", "submit/{sid}", {"job_spec": _spec(), "executor": 5}, None),
    ("POST", "submit/{sid}", {"job_spec": "x"}, None),
    ("POST", "submit/{sid}", [1, 2, 3], None),
    ("POST", "submit/{sid}", None, None),
    ("GET", "status/{sid}/nope", None, {"stdout_offset": HUGE}),
    ("GET", "status/{sid}/nope", None, {"stdout_offset": "1e400", "stderr_offset": "-0"}),
    ("GET", "status/{sid}/nope", None, {"stderr_offset": "nan"}),
    ("POST", "cancel/{sid}/" + "x" * 5000, None, None),
    ("POST", "submit_tunneled/{sid}", {"job_spec": _spec(), "executor": "no-such"}, None),
    ("POST", "submit_tunneled/{sid}", {"job_spec": _spec(attributes={"duration": 1e30})}, None),
    ("GET", "tunnel_status/" + "%" * 3, None, None),
]
SYSINFO = [
    ("GET", "metrics/{sid}", None, {"interval": "nan"}),
    ("GET", "metrics/{sid}", None, {"interval": HUGE}),
    ("GET", "metrics/not-a-session", None, None),
    ("POST", "register_session", [1], None),
    ("POST", "register_session", "garbage", None),
]
QUEUE_INFO = [
    ("GET", "get_info/{sid}", None, {"force": "maybe"}),
    ("GET", "list_jobs/{sid}/" + "q" * 300, None, {"user": "\x01"}),
    ("GET", "list_jobs/{sid}/debug", None, {"user": "-a;rm"}),
    ("GET", "list_all_jobs/{sid}", None, {"user": "x" * 10000}),
    ("GET", "list_allocations/{sid}", None, {"user": "--help"}),
    ("POST", "cancel/{sid}/" + HUGE, None, None),
    ("POST", "cancel/{sid}/-1", None, None),
    ("POST", "cancel/{sid}/abc;def", None, None),
]
RHAPSODY = [
    ("POST", "submit/{sid}", {"tasks": [{"executable": "/bin/true", "ranks": 10 ** 30}]}, None),
    ("POST", "submit/{sid}", {"tasks": [{"executable": "/bin/true", "duration": float("nan")}]},
     None),
    ("POST", "submit/{sid}", {"tasks": "x"}, None),
    ("POST", "submit/{sid}", {"tasks": [None]}, None),
    ("POST", "submit/{sid}", {"tasks": [{"function": "os:system"}]}, None),
    ("POST", "wait/{sid}", {"uids": 5, "timeout": float("nan")}, None),
    ("POST", "wait/{sid}", {"uids": ["x"], "timeout": 1e30}, None),
    ("POST", "wait/{sid}", {"uids": ["x"], "timeout": -1}, None),
    ("GET", "task/{sid}/" + "u" * 3000, None, None),
    ("GET", "list_tasks/{sid}", None, {"offset": HUGE, "limit": "-5"}),
    ("POST", "cancel/{sid}/nope", None, None),
]
TABLE = ([("psij", *row) for row in PSIJ] + [("sysinfo", *row) for row in SYSINFO]
         + [("queue_info", *row) for row in QUEUE_INFO] + [("rhapsody", *row) for row in RHAPSODY])


def _send(bridge_url: str, edge: str, plugin: str, method: str, path: str, body, query):
    import json

    content = None if body is None else json.dumps(body, allow_nan=True)
    return authed.request(method, f"{bridge_url}/{edge}/{plugin}/{path}", content=content,
                         params=query, headers={"content-type": "application/json"},
                         timeout=60)


@pytest.mark.parametrize("plugin, method, path, body, query", TABLE,
                         ids=[f"{t[0]}-{t[1]}-{i}" for i, t in enumerate(TABLE)])
def test_hostile_input_is_never_a_500(edge, sids, bridge_url, plugin, method, path, body,
                                      query):
    if plugin not in sids:
        pytest.skip(f"{plugin} is not enabled on this edge")
    r = _send(bridge_url, edge.extra["name"], plugin, method, path.format(sid=sids[plugin]),
              body, query)
    assert r.status_code < 500, f"{r.status_code}: {r.text[:500]}"
    assert "detail" in r.json() or r.status_code < 400


def test_executor_without_its_batch_tools_is_503(redis_url, bridge_url, log_dir, tmp_path):
    """An edge on a host without `sbatch`: a slurm submit is refused clearly (503)."""
    bindir = tmp_path / "bin"  # PATH with a shell but without the SLURM client tools
    bindir.mkdir()
    for tool in ("sh", "bash", "env", "cat", "true", "mkdir", "rm", "ls"):
        for where in ("/usr/bin", "/bin"):
            if Path(where, tool).exists():
                os.symlink(Path(where, tool), bindir / tool)
                break
    name = f"nosbatch{uuid.uuid4().hex[:6]}"
    svc = services.start_edge(redis_url, name, "psij", log_dir, bridge_url=bridge_url,
                              env={"PATH": str(bindir),
                                   "RADICAL_EDGE_PSIJ_DIR": str(tmp_path / "psij")})
    try:
        sid = authed.post(f"{bridge_url}/{name}/psij/register_session", json={},
                         timeout=30).json()["sid"]
        for executor in ("slurm", "pbs", "lsf"):
            r = authed.post(f"{bridge_url}/{name}/psij/submit/{sid}",
                           json={"job_spec": _spec(), "executor": executor}, timeout=60)
            assert r.status_code in (422, 503), f"{executor}: {r.status_code} {r.text}"
            assert "not available on this edge" in r.json()["detail"], r.text
    finally:
        svc.stop()
