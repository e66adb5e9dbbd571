"""RhapsodyClient against a fake plugin (httpx.MockTransport): uids, chunking, encoding,
polling fallbacks, and importability without rhapsody or the edge's dependencies."""
from __future__ import annotations

import threading
from pathlib import Path

import httpx
import msgpack
import orjson
import pytest
from blocked_imports import run_without

from radical.edge.plugins.rhapsody import functions
from radical.edge.plugins.rhapsody.client import RhapsodyClient, encode_function
from radical.edge.sdk import EdgeError

SRC = Path(__file__).resolve().parents[2] / "src"


class FakePlugin:
    """Just enough of the plugin's routes; tasks finish when they are submitted."""

    def __init__(self, fail_init: bool = False) -> None:
        self.fail_init = fail_init
        self.requests: list[httpx.Request] = []
        self.tasks: dict[str, dict] = {}
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
        path = request.url.path.split("/rhapsody/", 1)[1]
        if path == "register_session":
            return httpx.Response(200, json={"sid": "s1", "status": "initializing"})
        if path.startswith("session_status/"):
            if self.fail_init:
                return httpx.Response(200, json={"sid": "s1", "status": "failed",
                                                 "error": "RuntimeError: no dragon"})
            return httpx.Response(200, json={"sid": "s1", "status": "ready"})
        if path.startswith("unregister_session/"):
            return httpx.Response(200, json={"ok": True})
        if path.startswith("submit/"):
            if request.headers["content-type"] == "application/msgpack":
                body = msgpack.unpackb(request.content, raw=False)
            else:
                body = orjson.loads(request.content)
            acks = []
            with self.lock:
                for t in body["tasks"]:
                    self.tasks[t["uid"]] = {"uid": t["uid"], "state": "DONE", "exit_code": 0,
                                            "return_value": "aGk=",
                                            "_return_value_encoding": "base64"}
                    acks.append({"uid": t["uid"], "state": None})
            return httpx.Response(200, json=acks)
        if path.startswith("wait/"):
            uids = orjson.loads(request.content)["uids"]
            return httpx.Response(200, json=[self.tasks[u] for u in uids])
        if path.startswith("cancel_all/"):
            return httpx.Response(200, json={"canceled": 0})
        return httpx.Response(404, json={"detail": f"no route {path}"})


def client(fake: FakePlugin) -> RhapsodyClient:
    http = httpx.Client(transport=httpx.MockTransport(fake))
    return RhapsodyClient(http, "http://bridge/e1/rhapsody", edge_id="e1",
                          plugin_name="rhapsody")


def test_register_polls_without_event_stream_and_reports_failure() -> None:
    rh = client(FakePlugin())
    answer = rh.register_session(backends=["noop"], init_timeout=5)
    assert answer["sid"] == "s1" and answer["status"] == "ready" and rh.sid == "s1"
    failing = client(FakePlugin(fail_init=True))
    with pytest.raises(EdgeError) as info:
        failing.register_session(backends="dragon_v3", init_timeout=5)
    assert "no dragon" in str(info.value) and failing.sid is None


def test_submit_assigns_uids_splits_batches_and_waits_by_polling() -> None:
    fake = FakePlugin()
    rh = client(fake)
    rh.register_session(init_timeout=5)
    rh.submit_chunk = 1000
    tasks = [{"function": functions.noop} for _ in range(2500)]
    tasks.append({"uid": "mine", "executable": "/bin/true", "arguments": ("a",)})
    acks = rh.submit_tasks(tasks)
    assert len(acks) == 2501 and all(t.get("uid") for t in tasks)  # uids written back
    assert len({a["uid"] for a in acks}) == 2501
    submits = [r for r in fake.requests if "/submit/" in r.url.path]
    assert len(submits) == 3 and all(r.headers["content-type"] == "application/msgpack"
                                     for r in submits)
    sent = msgpack.unpackb(submits[-1].content, raw=False)["tasks"][-1]
    assert sent == {"uid": "mine", "executable": "/bin/true", "arguments": ["a"]}
    first = msgpack.unpackb(submits[0].content, raw=False)["tasks"][0]
    assert first["function"] == "radical.edge.plugins.rhapsody.functions:noop"
    results = rh.wait_tasks([a["uid"] for a in acks], timeout=10)
    assert len(results) == 2501 and results[0]["return_value"] == b"hi"
    assert rh.cancel_all_tasks() == {"canceled": 0}
    rh.close()
    assert rh.sid is None


def test_json_fallback_and_wait_timeout() -> None:
    fake = FakePlugin()
    rh = client(fake)
    rh.use_msgpack = False
    rh.register_session(init_timeout=5)
    rh.submit_tasks([{"uid": "a", "function": "m:f"}])
    [req] = [r for r in fake.requests if "/submit/" in r.url.path]
    assert req.headers["content-type"] == "application/json"
    assert orjson.loads(req.content) == {"tasks": [{"uid": "a", "function": "m:f"}]}
    fake.tasks["a"]["state"] = "RUNNING"
    with pytest.raises(TimeoutError):
        rh.wait_tasks(["a"], timeout=0.3)


def test_encode_function() -> None:
    assert encode_function("pkg.mod:f") == "pkg.mod:f"
    assert encode_function(functions.echo) == "radical.edge.plugins.rhapsody.functions:echo"
    assert encode_function(b"\x80\x04.").startswith("pickle::")
    try:
        import cloudpickle  # noqa: F401
        assert encode_function(lambda: 1).startswith("cloudpickle::")
    except ImportError:
        with pytest.raises(TypeError, match="cloudpickle"):
            encode_function(lambda: 1)
    with pytest.raises(TypeError):
        encode_function(42)


def test_client_imports_without_rhapsody_or_edge_dependencies() -> None:
    run_without({"rhapsody", "celery", "redis", "fastapi", "starlette", "psutil", "msgpack",
                 "orjson", "cloudpickle", "kombu", "uvicorn"}, """
        from radical.edge.plugins.rhapsody.client import RhapsodyClient
        from radical.edge.sdk.edge import resolve_client_class
        assert resolve_client_class("rhapsody") is RhapsodyClient
        c = RhapsodyClient(None, "http://x/e/rhapsody")
        assert c.use_msgpack is False
    """)
