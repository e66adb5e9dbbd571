"""The rhapsody plugin in-process: real rhapsody backends, real routing, no Redis/bridge.

Calls go through the edge's own router and `dispatch` (the code path a Celery-delivered
call takes), so status codes and bodies are exactly what a client would see.
"""
from __future__ import annotations

import asyncio
import os
import time
from types import SimpleNamespace
from typing import Any

import msgpack
import orjson
import pytest

pytest.importorskip("rhapsody", reason="needs the hpc extra (rhapsody-py)")

from radical.edge.app.protocol import CallRequest
from radical.edge.plugins.rhapsody import backends, housekeeping
from radical.edge.plugins.rhapsody.executor import pid_alive
from radical.edge.plugins.rhapsody.plugin import RhapsodyPlugin
from radical.edge.workers.call_runner import run_call
from radical.edge.workers.router import Router

FN = "radical.edge.plugins.rhapsody.functions"


class FakeHost:
    edge_name = "unit"
    role = "login"

    def __init__(self, **settings: Any) -> None:
        self.settings = SimpleNamespace(**{"allow_pickle": False, "max_running_tasks": 64,
                                           **settings})
        self.state = SimpleNamespace()
        self.router = Router()
        self.notes: list[tuple[str, dict]] = []

    def add_route(self, method: str, path: str, handler: Any) -> None:
        self.router.add(method, path, handler)

    def notify(self, plugin: str, topic: str, data: dict) -> None:
        self.notes.append((topic, orjson.loads(orjson.dumps(data))))

    def records(self) -> list[dict]:
        out = []
        for topic, data in self.notes:
            if topic == "task_status_batch":
                out.extend(data["tasks"])
            elif topic == "task_status":
                out.append(data)
        return out


class Edge:
    def __init__(self, **settings: Any) -> None:
        self.host = FakeHost(**settings)
        self.plugin = RhapsodyPlugin(self.host)

    async def call(self, method: str, path: str, body: Any = None, *, auth: bool = False,
                   ctype: str = "application/json") -> tuple[int, Any]:
        if body is None:
            raw = b""
        elif isinstance(body, bytes):
            raw = body
        elif ctype == "application/msgpack":
            raw = msgpack.packb(body, use_bin_type=True)
        else:
            raw = orjson.dumps(body)
        call = CallRequest.new(reply_to="r", timeout=30, method=method, path=f"/rhapsody/{path}",
                               headers=[["content-type", ctype]], body=raw,
                               identity={"user": "t", "scope": "submit"} if auth else None)
        reply = await run_call(self.host.router, call, {})
        data = reply.body_bytes()
        return reply.status, (orjson.loads(data) if data else None)

    async def session(self, **kwargs: Any) -> str:
        status, answer = await self.call("POST", "register_session", kwargs)
        assert status == 200, answer
        sid = answer["sid"]
        for _ in range(200):
            if any(t == "session_status" and d["sid"] == sid for t, d in self.host.notes):
                break
            await asyncio.sleep(0.01)
        return sid

    async def wait(self, sid: str, uids: list[str], timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            status, tasks = await self.call("POST", f"wait/{sid}", {"uids": uids})
            assert status == 200, tasks
            if all(t["state"] in ("DONE", "FAILED", "CANCELED") for t in tasks):
                return tasks
            assert time.monotonic() < deadline, tasks
            await asyncio.sleep(0.02)


def run(coro):
    return asyncio.run(coro)


def test_register_answers_initializing_then_ready_and_409_before() -> None:
    async def main():
        edge = Edge()
        status, answer = await edge.call("POST", "register_session", {"backends": ["noop"]})
        assert status == 200 and answer["status"] == "initializing"
        sid = answer["sid"]
        # nothing ran on the loop yet: the session is still initializing
        status, err = await edge.call("POST", f"submit/{sid}", {"tasks": []})
        assert status == 409 and "initializing" in err["detail"]
        await asyncio.sleep(0.05)
        assert ("session_status", {"sid": sid, "status": "ready",
                                   "backends": ["noop"]}) in edge.host.notes
        status, info = await edge.call("GET", f"session_status/{sid}")
        assert info["status"] == "ready"
        await edge.plugin.shutdown()
    run(main())


def test_unavailable_backend_fails_clearly_and_unknown_is_422() -> None:
    async def main():
        edge = Edge()
        sid = await edge.session(backends=["dragon_v3"])
        [(topic, note)] = [n for n in edge.host.notes if n[0] == "session_status"]
        try:
            import dragon  # noqa: F401
            pytest.skip("dragon is installed here")
        except ImportError:
            pass
        assert note["status"] == "failed" and "dragon" in note["error"].lower()
        status, err = await edge.call("POST", f"submit/{sid}", {"tasks": []})
        assert status == 409 and "failed to initialize" in err["detail"]
        status, err = await edge.call("POST", "register_session", {"backends": ["nope"]})
        assert status == 422 and "unknown backend" in err["detail"]
        status, err = await edge.call("POST", "register_session", {"bogus": 1})
        assert status == 422
        status, err = await edge.call("POST", "register_session", {"notify_batch_size": 0})
        assert status == 422 and "notify_batch_size" in err["detail"]
        await edge.plugin.shutdown()
    run(main())


def test_tasks_results_and_msgpack(tmp_path) -> None:
    async def main():
        edge = Edge()
        sid = await edge.session(backends=["concurrent", "noop"])
        tasks = [
            {"uid": "echo", "executable": "/bin/echo", "arguments": ["hello"]},
            {"uid": "exit3", "executable": "/bin/sh", "arguments": ["-c", "echo err >&2; exit 3"]},
            {"uid": "missing", "executable": "/no/such/program"},
            {"uid": "fn", "function": f"{FN}:add", "args": [2, 3]},
            {"uid": "bytes", "function": f"{FN}:to_bytes", "args": ["hé"]},
            {"uid": "opaque", "function": f"{FN}:opaque"},
            {"uid": "boom", "function": f"{FN}:fail", "args": ["no good"]},
            {"uid": "n", "function": f"{FN}:noop", "backend": "noop"},
            {"uid": "cwd", "executable": "pwd", "cwd": str(tmp_path)},
            {"uid": "env", "executable": "/bin/sh", "arguments": ["-c", "echo $RH_X"],
             "env": {"RH_X": "42"}},
            {"uid": "scratch", "executable": "pwd"},
        ]
        status, acks = await edge.call("POST", f"submit/{sid}", {"tasks": tasks},
                                       ctype="application/msgpack")
        assert status == 200, acks
        assert [a["uid"] for a in acks] == [t["uid"] for t in tasks]
        done = {t["uid"]: t for t in await edge.wait(sid, [t["uid"] for t in tasks])}
        assert done["echo"]["state"] == "DONE" and done["echo"]["stdout"] == "hello\n"
        assert done["echo"]["exit_code"] == 0
        assert done["exit3"]["state"] == "FAILED" and done["exit3"]["exit_code"] == 3
        assert done["exit3"]["stderr"] == "err\n"
        assert done["missing"]["state"] == "FAILED" and done["missing"]["exit_code"] == 127
        assert done["fn"]["state"] == "DONE" and done["fn"]["return_value"] == 5
        assert done["bytes"]["_return_value_encoding"] == "base64"
        assert done["opaque"]["return_value"] == "<opaque thing>"
        assert done["opaque"]["_return_value_encoding"] == "repr"
        assert done["boom"]["state"] == "FAILED" and "no good" in done["boom"]["error"]
        assert done["n"]["state"] == "DONE"
        assert done["cwd"]["stdout"].strip() == str(tmp_path)
        assert done["env"]["stdout"] == "42\n"
        work_dir = edge.plugin.get_session(sid).work_dir
        assert done["scratch"]["stdout"].startswith(work_dir)  # not the edge's cwd
        # notifications carried every terminal state exactly once
        terminal = [r["uid"] for r in edge.host.records()
                    if r["state"] in ("DONE", "FAILED", "CANCELED")]
        assert sorted(terminal) == sorted(done)
        status, listing = await edge.call("GET", f"list_tasks/{sid}")
        assert len(listing["tasks"]) == len(tasks)
        status, one = await edge.call("GET", f"task/{sid}/fn")
        assert one["return_value"] == 5
        assert (await edge.call("GET", f"task/{sid}/nope"))[0] == 404
        assert (await edge.call("POST", f"wait/{sid}", {"uids": ["nope"]}))[0] == 404
        assert (await edge.call("POST", f"submit/{sid}", b"{bad"))[0] == 400
        assert (await edge.call("POST", f"submit/{sid}", b"\xc1",
                                ctype="application/msgpack"))[0] == 400
        status, err = await edge.call("POST", f"submit/{sid}", {"tasks": [{"uid": "echo",
                                                                           "executable": "x"}]})
        assert status == 409 and "already exists" in err["detail"]
        await edge.plugin.shutdown()
    run(main())


def test_cancel_kills_the_process_group_and_close_frees_everything(tmp_path) -> None:
    async def main():
        edge = Edge(max_running_tasks=2)
        sid = await edge.session()
        script = f"sleep 300 & echo $! > {tmp_path}/child; wait"
        status, _ = await edge.call("POST", f"submit/{sid}", {"tasks": [
            {"uid": "sleeper", "executable": "/bin/sh", "arguments": ["-c", script]}]})
        assert status == 200
        for _ in range(200):
            status, task = await edge.call("GET", f"task/{sid}/sleeper")
            if task.get("pid") and (tmp_path / "child").exists():
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        leader, child = task["pid"], int((tmp_path / "child").read_text())
        assert pid_alive(leader) and pid_alive(child)
        status, answer = await edge.call("POST", f"cancel/{sid}/sleeper")
        assert answer == {"uid": "sleeper", "state": "CANCELED", "canceled": True}
        assert not pid_alive(leader) and not pid_alive(child)
        # cancelling a finished task is a no-op
        assert (await edge.call("POST", f"cancel/{sid}/sleeper"))[1]["canceled"] is False

        # at most max_running_tasks executables at once; cancel_all kills the running ones
        tasks = [{"uid": f"s{i}", "executable": "sleep", "arguments": ["300"]}
                 for i in range(6)]
        await edge.call("POST", f"submit/{sid}", {"tasks": tasks})
        await asyncio.sleep(0.3)
        status, stats = await edge.call("GET", "stats")
        assert stats["running_processes"] == 2 and stats["live_tasks"] == 6
        session = edge.plugin.get_session(sid)
        pids = session._backends["concurrent"].process_ids()
        status, answer = await edge.call("POST", f"cancel_all/{sid}")
        assert answer == {"canceled": 6}
        assert not any(pid_alive(p) for p in pids)

        # close: running tasks die, the work dir goes, the session is gone
        await edge.call("POST", f"submit/{sid}", {"tasks": [
            {"uid": "last", "executable": "sleep", "arguments": ["300"]}]})
        await asyncio.sleep(0.3)
        pids = session._backends["concurrent"].process_ids()
        work_dir = session.work_dir
        assert pids and os.path.isdir(work_dir)
        assert (await edge.call("POST", f"unregister_session/{sid}"))[0] == 200
        assert not any(pid_alive(p) for p in pids)
        assert not os.path.exists(work_dir)
        assert session._live == {} and len(session._done) == 0 and session._rh is None
        assert (await edge.call("GET", f"task/{sid}/last"))[0] == 404
        status, stats = await edge.call("GET", "stats")
        assert stats["sessions"] == 0 and stats["running_processes"] == 0
    run(main())


def test_timeouts_and_pickles() -> None:
    async def main():
        edge = Edge(allow_pickle=True)
        sid = await edge.session()
        status, _ = await edge.call("POST", f"submit/{sid}", {"tasks": [
            {"uid": "slow", "executable": "sleep", "arguments": ["30"], "timeout": 0.3},
            {"uid": "slowfn", "function": f"{FN}:sleep", "args": [5],
             "task_backend_specific_kwargs": {"timeout": 0.2}}]})
        assert status == 200
        done = {t["uid"]: t for t in await edge.wait(sid, ["slow", "slowfn"])}
        assert done["slow"]["state"] == "FAILED" and "timed out" in done["slow"]["error"]
        assert done["slowfn"]["state"] == "FAILED" and "timed out" in done["slowfn"]["error"]
        import base64
        import pickle
        from radical.edge.plugins.rhapsody import functions
        blob = "pickle::" + base64.b64encode(pickle.dumps(functions.add)).decode()
        task = {"uid": "p", "function": blob, "args": [1, 2]}
        status, err = await edge.call("POST", f"submit/{sid}", {"tasks": [task]}, auth=False)
        assert status == 403 and "submit" in err["detail"]
        status, _ = await edge.call("POST", f"submit/{sid}", {"tasks": [task]}, auth=True)
        assert status == 200
        [result] = await edge.wait(sid, ["p"])
        assert result["return_value"] == 3
        await edge.plugin.shutdown()
    run(main())


def test_big_batch_counts_and_memory_is_released() -> None:
    async def main():
        edge = Edge()
        sid = await edge.session(backends=["noop"], notify_batch_size=500)
        tasks = [{"function": f"{FN}:noop"} for _ in range(5000)]
        status, acks = await edge.call("POST", f"submit/{sid}", {"tasks": tasks})
        assert status == 200 and len({a["uid"] for a in acks}) == 5000
        await edge.wait(sid, [a["uid"] for a in acks])
        await asyncio.sleep(0.1)  # the last batch leaves within the notification window
        records = edge.host.records()
        assert sorted(r["uid"] for r in records) == sorted(a["uid"] for a in acks)
        assert max(len(d["tasks"]) for t, d in edge.host.notes
                   if t == "task_status_batch") <= 500
        status, info = await edge.call("GET", f"session_status/{sid}")
        assert info["done"] == 5000 and info["submitted"] == 5000
        session = edge.plugin.get_session(sid)
        assert getattr(session._rh, "_tasks", {}) == {}  # rhapsody's copies were dropped
        await edge.call("POST", f"unregister_session/{sid}")
    run(main())


def test_default_backends_follow_dragon(monkeypatch) -> None:
    import sys
    import types

    try:
        monkeypatch.setitem(sys.modules, "dragon", None)  # import dragon -> ImportError
        backends.default_backends.cache_clear()
        assert backends.default_backends() == ["concurrent"]
        monkeypatch.setitem(sys.modules, "dragon", types.ModuleType("dragon"))
        backends.default_backends.cache_clear()
        assert backends.default_backends() == ["dragon_v3"]
    finally:
        backends.default_backends.cache_clear()


def test_scratch_dirs_of_dead_edges_are_swept(tmp_path) -> None:
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{housekeeping.WORK_DIR_PREFIX}{dead.pid}-session.x-abc"
    mine = tmp_path / f"{housekeeping.WORK_DIR_PREFIX}{os.getpid()}-session.y-abc"
    other = tmp_path / "radical-edge-rhapsody-notapid-zzz"
    for d in (stale, mine, other):
        (d / "sub").mkdir(parents=True)
    assert housekeeping.sweep_work_dirs(str(tmp_path)) == [str(stale)]
    assert not stale.exists() and mine.exists() and other.exists()


def test_wait_with_timeout_answers_when_the_tasks_finish_without_blocking_the_loop() -> None:
    async def main():
        edge = Edge()
        sid = await edge.session(backends=["concurrent"])
        status, _ = await edge.call("POST", f"submit/{sid}", {"tasks": [
            {"uid": "gate", "executable": "sleep", "arguments": ["300"]},
            {"uid": "quick", "function": f"{FN}:add", "args": [1, 2]}]})
        assert status == 200
        waiter = asyncio.ensure_future(edge.call("POST", f"wait/{sid}",
                                                 {"uids": ["gate", "quick"], "timeout": 60}))
        # the loop stays free: other calls are answered while `wait` holds its answer
        status, quick = await edge.call("POST", f"wait/{sid}", {"uids": ["quick"],
                                                                "timeout": 60})
        assert status == 200 and quick[0]["state"] == "DONE"
        assert not waiter.done()
        status, _ = await edge.call("POST", f"cancel/{sid}/gate")  # finishes the last one
        assert status == 200
        status, tasks = await asyncio.wait_for(waiter, 30)
        assert status == 200
        assert {t["uid"]: t["state"] for t in tasks} == {"gate": "CANCELED", "quick": "DONE"}
        # no timeout: a snapshot, as before; a bad timeout: 422
        status, _ = await edge.call("POST", f"submit/{sid}", {"tasks": [
            {"uid": "slow", "executable": "sleep", "arguments": ["300"]}]})
        status, snap = await edge.call("POST", f"wait/{sid}", {"uids": ["slow"]})
        assert status == 200 and snap[0]["state"] not in ("DONE", "FAILED", "CANCELED")
        status, snap = await edge.call("POST", f"wait/{sid}", {"uids": ["slow"],
                                                               "timeout": 0.05})
        assert status == 200 and snap[0]["state"] not in ("DONE", "FAILED", "CANCELED")
        for bad in (-1, "x", True, 10**9):
            status, err = await edge.call("POST", f"wait/{sid}", {"uids": ["slow"],
                                                                  "timeout": bad})
            assert status == 422 and "timeout" in err["detail"]
        await edge.plugin.shutdown()
    run(main())
