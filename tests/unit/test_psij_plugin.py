"""The psij plugin in-process: real psij `local` executor, real routing, no Redis/bridge.

Calls go through the edge's router and `dispatch` (the path a Celery-delivered call takes),
so status codes and bodies are what a client sees. The tunnel manager's state machine is
tested with a fake SSH side and fakeredis.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

pytest.importorskip("psij")

from radical.edge.app import keys  # noqa: E402
from radical.edge.app.protocol import CallRequest  # noqa: E402
from radical.edge.plugins.psij.plugin import PsijPlugin  # noqa: E402
from radical.edge.plugins.psij.executors import missing_tool  # noqa: E402
from radical.edge.plugins.psij.spec import EXECUTOR_ALIASES  # noqa: E402
from radical.edge.hpc import launch  # noqa: E402
from radical.edge.workers.call_runner import run_call  # noqa: E402
from radical.edge.hpc.launch import ssh as ssh_mod  # noqa: E402
from radical.edge.hpc.launch import tunnel as tunnel_mod  # noqa: E402
from radical.edge.workers.router import Router  # noqa: E402


class FakeHost:
    edge_name = "unit"
    role = "login"

    def __init__(self, redis: Any = None) -> None:
        self.settings = SimpleNamespace(redis_url="redis://:pw@10.1.2.3:6380/2")
        self.state = SimpleNamespace(batch=None)
        self.router = Router()
        self.notes: list[dict] = []
        self.loop = asyncio.get_running_loop()
        self.redis = redis

    def add_route(self, method: str, path: str, handler: Any) -> None:
        self.router.add(method, path, handler)

    def notify(self, plugin: str, topic: str, data: dict) -> None:
        assert plugin == "psij" and topic == "job_status"
        self.notes.append(orjson.loads(orjson.dumps(data)))

    def states(self, job_id: str) -> list[str]:
        return [n["state"] for n in self.notes if n["job_id"] == job_id]


class Edge:
    def __init__(self, redis: Any = None) -> None:
        self.host = FakeHost(redis)
        self.plugin = PsijPlugin(self.host)

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        raw = b"" if body is None else body if isinstance(body, bytes) else orjson.dumps(body)
        path, _, query = path.partition("?")
        call = CallRequest.new(reply_to="r", timeout=30, method=method, path=f"/psij/{path}",
                               query=query, headers=[["content-type", "application/json"]],
                               body=raw)
        reply = await run_call(self.host.router, call, {})
        data = reply.body_bytes()
        return reply.status, (orjson.loads(data) if data else None)

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = await self.call(method, path, body)
        assert status == 200, answer
        return answer

    async def session(self, **kwargs: Any) -> str:
        return (await self.ok("POST", "register_session", kwargs))["sid"]

    async def wait_state(self, sid: str, job_id: str, states: tuple[str, ...],
                         timeout: float = 10) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = await self.ok("GET", f"status/{sid}/{job_id}")
            if st["state"] in states:
                return st
            await asyncio.sleep(0.05)
        raise AssertionError(f"job {job_id} not in {states}: {st['state']}")


@pytest.fixture(autouse=True)
def psij_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("RADICAL_EDGE_PSIJ_DIR", str(tmp_path / "psij"))
    monkeypatch.setenv("RADICAL_EDGE_TUNNEL_DIR", str(tmp_path / "tunnels"))
    return tmp_path / "psij"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_plugin_description():
    async def main():
        edge = Edge()
        info = edge.plugin.describe()
        assert info["type"] == "psij" and info["client"] == \
            "radical.edge.plugins.psij.client:PsijClient"
        assert info["ui_config"]["notifications"]["topic"] == "job_status"
        assert PsijPlugin.is_enabled(edge.host)
        assert not PsijPlugin.is_enabled(SimpleNamespace(role="bridge"))
        assert PsijPlugin.session_ttl == 86400
        answer = await edge.ok("GET", "executors")
        offered = set(answer["executors"]) | set(answer["unavailable"])
        assert {"local", "slurm", "pbs", "lsf"} <= offered
        assert "local" in answer["executors"]
        for name in answer["executors"]:  # usable: its submit tool is on PATH
            assert missing_tool(EXECUTOR_ALIASES.get(name, name)) is None, name
        for name, why in answer["unavailable"].items():
            assert name not in answer["executors"] and "PATH" in why, (name, why)
        assert answer["default"] == "local"  # the fake host has no batch system
    run(main())


def test_job_lifecycle_and_notifications(psij_dir):
    async def main():
        edge = Edge()
        sid = await edge.session()
        script = "echo one; sleep 0.3; printf 'two\\n'; echo bad >&2; exit 4"
        sub = await edge.ok("POST", f"submit/{sid}", {"job_spec": {
            "executable": "/bin/bash", "arguments": ["-c", script],
            "environment": {"X": "1"}}, "executor": "local"})
        job_id = sub["job_id"]
        assert sub["native_id"].isdigit() and sub["state"] in ("QUEUED", "ACTIVE")
        st = await edge.wait_state(sid, job_id, ("FAILED",))
        assert st["exit_code"] == 4 and st["message"] is None
        assert (st["stdout"], st["stdout_offset"]) == ("one\ntwo\n", 8)
        assert (st["stderr"], st["stderr_offset"]) == ("bad\n", 4)
        assert st["directory"] == str(Path.home())
        part = await edge.ok("GET", f"status/{sid}/{job_id}?stdout_offset=4&stderr_offset=4")
        assert (part["stdout"], part["stderr"]) == ("two\n", "")
        await asyncio.sleep(0.3)
        assert edge.host.states(job_id) == ["QUEUED", "ACTIVE", "FAILED"]
        final = edge.host.notes[-1]
        assert final["exit_code"] == 4 and final["stdout"] == "one\ntwo\n"
        assert final["sid"] == sid and final["executor"] == "local"
        assert Path(st["stdout_path"]).parent == psij_dir / "sessions" / "unit" / sid

        sleeper = await edge.ok("POST", f"submit/{sid}", {"job_spec": {
            "executable": "sleep", "arguments": ["30"]}})
        canceled = await edge.ok("POST", f"cancel/{sid}/{sleeper['job_id']}")
        assert canceled["canceled"] is True
        await edge.wait_state(sid, sleeper["job_id"], ("CANCELED",))
        status, answer = await edge.call("POST", f"cancel/{sid}/{sleeper['job_id']}")
        # idempotent (the original's behaviour): 200 with the final state
        assert status == 200 and answer["state"] == "CANCELED" and answer["canceled"] is False
        jobs = (await edge.ok("GET", f"list_jobs/{sid}"))["jobs"]
        assert [j["job_id"] for j in jobs] == [job_id, sleeper["job_id"]]
        assert "stdout" not in jobs[0] and jobs[1]["state"] == "CANCELED"
    run(main())


@pytest.mark.parametrize("path, body, status, words", [
    ("submit/{sid}", b"[1]", 422, "expected a JSON object"),
    ("submit/{sid}", b"{bad json", 400, "malformed JSON"),
    ("submit/{sid}", {"executor": "local"}, 422, "job_spec is required"),
    ("submit/{sid}", {"job_spec": {"executable": "/bin/true"}, "executor": 7}, 422,
     "executor must be"),
    ("submit/{sid}", {"job_spec": {"executable": "nope-not-here"}}, 422, "not found on PATH"),
    ("submit/session.nope", {"job_spec": {"executable": "/bin/true"}}, 404, "unknown session"),
    ("cancel/{sid}/nope", None, 404, "unknown job 'nope'"),
    ("submit_tunneled/{sid}", {"job_spec": {"arguments": ["-p", "x"]}}, 422, "-n"),
    ("submit_tunneled/{sid}", {"job_spec": {"arguments": "-n x"}}, 422, "list of strings"),
    ("submit_tunneled/{sid}", {"job_spec": {"arguments": ["-n", "edge"]}}, 422, "reserved"),
    ("submit_tunneled/{sid}", {"job_spec": {"arguments": ["-n", "unit"]}}, 409, "own name"),
    ("submit_tunneled/{sid}", {"job_spec": {"arguments": ["-n", "x"]}, "tunnel": "yes"}, 422,
     "true or false"),
])
def test_errors(path, body, status, words):
    async def main():
        edge = Edge()
        sid = await edge.session()
        got, answer = await edge.call("POST", path.format(sid=sid), body)
        assert got == status, answer
        assert words in answer["detail"]
    run(main())


def test_get_errors():
    async def main():
        edge = Edge()
        sid = await edge.session()
        sub = await edge.ok("POST", f"submit/{sid}", {"job_spec": {"executable": "/bin/true"}})
        for query, words in (("stdout_offset=-1", "negative"), ("stderr_offset=x", "whole"),
                             # past what seek() can take: was a 500 (schemathesis run)
                             (f"stdout_offset={2**100}", "at most")):
            got, answer = await edge.call("GET", f"status/{sid}/{sub['job_id']}?{query}")
            assert got == 422 and words in answer["detail"]
        got, answer = await edge.call("GET", f"status/{sid}/nope")
        assert got == 404
        got, answer = await edge.call("POST", "register_session", {"colour": 1})
        assert got == 422
        got, answer = await edge.call("POST", "register_session", {"cancel_on_close": "no"})
        assert got == 422
    run(main())


def test_close_cancels_and_removes_output(psij_dir):
    async def main():
        edge = Edge()
        sid = await edge.session()
        sub = await edge.ok("POST", f"submit/{sid}", {"job_spec": {
            "executable": "/bin/sleep", "arguments": ["30"]}})
        out_dir = psij_dir / "sessions" / "unit" / sid
        assert out_dir.is_dir()
        await edge.ok("POST", f"unregister_session/{sid}")
        assert not out_dir.exists()
        for _ in range(100):
            if "CANCELED" in edge.host.states(sub["job_id"]):
                break
            await asyncio.sleep(0.05)
        assert edge.host.states(sub["job_id"])[-1] == "CANCELED"

        keep = await edge.session(cancel_on_close=False)
        job = await edge.ok("POST", f"submit/{keep}", {"job_spec": {
            "executable": "/bin/sleep", "arguments": ["0.5"]}})
        await edge.ok("POST", f"unregister_session/{keep}")
        assert (psij_dir / "sessions" / "unit" / keep).is_dir()  # still in use
        for _ in range(100):
            if "COMPLETED" in edge.host.states(job["job_id"]):
                break
            await asyncio.sleep(0.05)
        assert edge.host.states(job["job_id"])[-1] == "COMPLETED"
    run(main())


def test_submit_tunneled_builds_the_child_job():
    async def main():
        edge = Edge()
        sid = await edge.session()
        spec = {"executable": "/bin/bash",
                "arguments": ["-c", 'echo "$RADICAL_EDGE_REDIS_URL|$RADICAL_EDGE_PYTHON|$1"; '
                                    "sleep 30", "-n", "child1"],
                "environment": {"RADICAL_EDGE_WALLTIME_MARGIN": "50"}}
        sub = await edge.ok("POST", f"submit_tunneled/{sid}", {"job_spec": spec})
        assert sub["edge_name"] == "child1" and sub["tunnel"] is False
        assert "warning" not in sub  # local executor: same host
        got, answer = await edge.call("POST", f"submit_tunneled/{sid}",
                                      {"job_spec": {"arguments": ["--name=child1"]}})
        assert got == 409 and "already launched" in answer["detail"]
        for _ in range(100):
            st = await edge.ok("GET", f"status/{sid}/{sub['job_id']}")
            if st["stdout"]:
                break
            await asyncio.sleep(0.05)
        url, python, name = st["stdout"].strip().split("|")
        assert url == "redis://:pw@10.1.2.3:6380/2" and python and name == "child1"
        assert st["edge_name"] == "child1"
        note = next(n for n in edge.host.notes if n["job_id"] == sub["job_id"])
        assert note["edge_name"] == "child1"
        await edge.ok("POST", f"cancel/{sid}/{sub['job_id']}")
        await edge.wait_state(sid, sub["job_id"], ("CANCELED",))
        await asyncio.sleep(0.05)
        assert "child1" not in edge.plugin._children  # the name is free again
    run(main())


# -- child job specs ------------------------------------------------------------------------------
@pytest.mark.parametrize("args, name", [
    (["-n", "a"], "a"), (["--name", "b", "-p", "x"], "b"), (["--name=c"], "c"),
    (["-nd"], "d"), (["-p", "x"], None), (["-n"], None), (["--name="], None), (None, None),
])
def test_edge_name_from_args(args, name):
    assert launch.edge_name_from_args(args) == name


def test_child_job_spec():
    plan = launch.TunnelPlan("/t/c.port", "tok")
    spec = launch.child_job_spec({"arguments": ["-n", "c"], "environment": {"A": "1"}}, "c",
                                 "redis://h:1/0", tunnel=plan, python="/venv/bin/python")
    assert spec["executable"].endswith("scripts/radical-edge-wrapper.sh")
    assert spec["arguments"] == ["-n", "c", "--tunnel"]
    assert spec["name"] == "redge-c"
    env = spec["environment"]
    assert env["A"] == "1" and env["RADICAL_EDGE_REDIS_URL"] == "redis://h:1/0"
    assert env["RADICAL_EDGE_PYTHON"] == "/venv/bin/python"
    assert env["RADICAL_EDGE_TUNNEL_FILE"] == "/t/c.port"
    assert env["RADICAL_EDGE_TUNNEL_TOKEN"] == "tok"
    assert Path(env["RADICAL_EDGE_PYTHONPATH"], "radical", "edge").is_dir()
    mine = launch.child_job_spec({"executable": "/my/script", "environment": {
        "RADICAL_EDGE_REDIS_URL": "redis://other:2/0"}}, "c", "redis://h:1/0")
    assert mine["executable"] == "/my/script"
    assert mine["environment"]["RADICAL_EDGE_REDIS_URL"] == "redis://other:2/0"
    assert "--tunnel" not in mine["arguments"]


def test_redis_endpoint_and_loopback():
    assert launch.redis_endpoint("redis://:pw@host:6380/1") == ("host", 6380)
    assert launch.redis_endpoint("rediss://host") == ("host", 6379)
    with pytest.raises(launch.LaunchError):
        launch.redis_endpoint("unix:///tmp/redis.sock")
    assert launch.is_loopback_url("redis://127.0.0.1:1/0")
    assert launch.is_loopback_url("redis://localhost/0")
    assert not launch.is_loopback_url("redis://10.0.0.1/0")
    assert launch.job_node("local", None) == "127.0.0.1"
    assert launch.job_node("slurm", None) is None


# -- tunnel manager (fake SSH side) ---------------------------------------------------------------
class FakeConn:
    def __init__(self) -> None:
        self.closed = asyncio.Event()

    def close(self) -> None:
        self.closed.set()

    async def wait_closed(self) -> None:
        await self.closed.wait()


def test_tunnel_manager_lifecycle(monkeypatch, tmp_path):
    fakeredis = pytest.importorskip("fakeredis")

    async def main():
        redis = fakeredis.FakeAsyncRedis()
        mgr = tunnel_mod.TunnelManager("parent", "redis://:pw@10.0.0.5:6379/0",
                                       asyncio.get_running_loop(), redis)
        opened: list[str] = []

        async def fake_open(self, t):
            opened.append(t.edge_name)
            t.host, t.conn, t.port = "node7", FakeConn(), 40001
            t.connects += 1
            self._set(t, "active")

        monkeypatch.setattr(tunnel_mod.TunnelManager, "_open", fake_open)
        monkeypatch.setattr(tunnel_mod, "GRACE_SECONDS", 0.2)
        t = mgr.plan("kid")
        assert (t.redis_host, t.redis_port) == ("10.0.0.5", 6379)
        assert t.port_file == str(tmp_path / "tunnels" / "kid.port") and len(t.token) == 32
        with pytest.raises(launch.LaunchError) as err:
            mgr.plan("kid")
        assert err.value.status == 409
        mgr.job_state("kid", "ACTIVE", "77")  # before attach: remembered, nothing opened
        await asyncio.sleep(0.05)
        assert opened == [] and (await mgr.lookup("kid"))["status"] == "pending"
        mgr.attach("kid", "job-1", "77", "slurm")
        for _ in range(50):
            if (await mgr.lookup("kid"))["status"] == "active":
                break
            await asyncio.sleep(0.02)
        view = await mgr.lookup("kid")
        assert view["port"] == 40001 and view["host"] == "node7" and view["pid"]
        assert view["parent_edge"] == "parent" and view["native_id"] == "77"
        await asyncio.sleep(0.05)
        record = await redis.hgetall(keys.tunnel_info("kid"))
        assert record[b"status"] == b"active" and record[b"port"] == b"40001"
        assert 0 < await redis.ttl(keys.tunnel_info("kid")) <= tunnel_mod.RECORD_TTL
        # another parent's view comes from Redis
        other = tunnel_mod.TunnelManager("p2", "redis://x:1/0", asyncio.get_running_loop(),
                                         redis)
        remote = await other.lookup("kid")
        assert remote["status"] == "active" and remote["port"] == 40001
        assert remote["parent_edge"] == "parent" and remote["error"] is None
        mgr.job_state("kid", "COMPLETED")
        for _ in range(100):
            if (await mgr.lookup("kid"))["status"] == "done":
                break
            await asyncio.sleep(0.02)
        assert (await mgr.lookup("kid"))["status"] == "done" and t.conn is None
        assert opened == ["kid"]
        await asyncio.sleep(0.05)
        assert (await redis.hget(keys.tunnel_info("kid"), "status")) == b"done"
        assert mgr.plan("kid").status == "pending"  # reusable after done
        assert (await mgr.lookup("ghost"))["status"] == "no_tunnel"
    run(main())


def test_tunnel_failure_cancels_the_job(monkeypatch):
    async def main():
        mgr = tunnel_mod.TunnelManager("parent", "redis://h:1/0", asyncio.get_running_loop())
        attempts = []

        async def failing_open(self, t):
            attempts.append(1)
            raise ConnectionRefusedError("refused")

        monkeypatch.setattr(tunnel_mod.TunnelManager, "_open", failing_open)
        monkeypatch.setattr(tunnel_mod, "RETRY_DELAY", 0.0)
        canceled = []

        async def cancel():
            canceled.append(True)

        mgr.plan("kid")
        mgr.attach("kid", "job-1", "77", "slurm", cancel_job=cancel)
        mgr.job_state("kid", "ACTIVE")
        for _ in range(200):
            if canceled:
                break
            await asyncio.sleep(0.01)
        view = await mgr.lookup("kid")
        assert view["status"] == "failed" and "refused" in view["error"]
        assert len(attempts) == tunnel_mod.FIRST_ATTEMPTS and canceled == [True]
    run(main())


def test_ssh_options(monkeypatch, tmp_path):
    monkeypatch.setenv("RADICAL_EDGE_SSH_USER", "alice")
    monkeypatch.setenv("RADICAL_EDGE_SSH_PORT", "2222")
    monkeypatch.setenv("RADICAL_EDGE_SSH_KEY_FILE", "~/k")
    monkeypatch.setenv("RADICAL_EDGE_SSH_KNOWN_HOSTS", str(tmp_path / "kh"))
    mgr = tunnel_mod.TunnelManager("p", "redis://h:1/0", None)
    with pytest.raises(ssh_mod.TunnelError, match="accept-new"):
        ssh_mod.connect_options(mgr.settings, "node1")  # strict, and no known_hosts file
    (tmp_path / "kh").write_text("")
    opts, record = ssh_mod.connect_options(mgr.settings, "node1")
    assert opts["username"] == "alice" and opts["port"] == 2222
    assert opts["client_keys"] == [str(Path.home() / "k")]
    assert opts["known_hosts"] == str(tmp_path / "kh") and record is False
    monkeypatch.setenv("RADICAL_EDGE_SSH_HOST_KEY_POLICY", "accept-new")
    opts, record = ssh_mod.connect_options(ssh_mod.SSHSettings(), "n")
    assert opts["known_hosts"] is None and record is True
    monkeypatch.setenv("RADICAL_EDGE_SSH_HOST_KEY_POLICY", "ignore")
    opts, _ = ssh_mod.connect_options(ssh_mod.SSHSettings(), "n")
    assert opts["known_hosts"] is None
    monkeypatch.setenv("RADICAL_EDGE_SSH_HOST_KEY_POLICY", "sometimes")
    with pytest.raises(ValueError):
        ssh_mod.SSHSettings()
