"""The psij SDK client: request shapes (httpx.MockTransport), wait_job, and that it imports
on a laptop without psij-python, asyncssh, Celery or the edge side."""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from blocked_imports import run_without

from radical.edge.plugins.psij.client import PSIJClient, PsijClient
from radical.edge.sdk import EdgeError

SRC = Path(__file__).resolve().parents[2] / "src"


class Recorder:
    def __init__(self, answers: list | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answers = list(answers or [])

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, httpx.Response):
                return answer
            return httpx.Response(200, json=answer)
        return httpx.Response(200, json={"ok": True})

    def last(self) -> tuple[str, str, dict, object]:
        r = self.requests[-1]
        body = json.loads(r.content) if r.content else None
        return r.method, r.url.path, dict(r.url.params), body


def client(rec: Recorder) -> PsijClient:
    http = httpx.Client(transport=httpx.MockTransport(rec), base_url="http://bridge.test")
    c = PsijClient(http, "http://bridge.test/e1/psij", edge_id="e1", plugin_name="psij")
    c._sid = "session.abc"
    return c


def test_alias():
    assert PSIJClient is PsijClient


def test_request_shapes():
    rec = Recorder()
    c = client(rec)
    spec = {"executable": "/bin/date"}
    c.submit_job(spec)
    assert rec.last() == ("POST", "/e1/psij/submit/session.abc", {},
                          {"job_spec": spec, "executor": "local"})
    c.submit_job(spec, executor="slurm")
    assert rec.last()[3]["executor"] == "slurm"
    c.get_job_status("j/1", stdout_offset=10, stderr_offset=3)
    assert rec.requests[-1].url.raw_path.startswith(b"/e1/psij/status/session.abc/j%2F1?")
    assert rec.last()[1:] == ("/e1/psij/status/session.abc/j/1",
                              {"stdout_offset": "10", "stderr_offset": "3"}, None)
    c.list_jobs()
    assert rec.last()[:2] == ("GET", "/e1/psij/list_jobs/session.abc")
    c.cancel_job("j1")
    assert rec.last()[:2] == ("POST", "/e1/psij/cancel/session.abc/j1")
    c.submit_tunneled({"arguments": ["-n", "c1"]}, "slurm", tunnel=True)
    assert rec.last() == ("POST", "/e1/psij/submit_tunneled/session.abc", {},
                          {"job_spec": {"arguments": ["-n", "c1"]}, "executor": "slurm",
                           "tunnel": True})
    c.submit_tunneled({"arguments": ["-n", "c1"]})
    assert rec.last()[3]["executor"] == "local" and rec.last()[3]["tunnel"] is False
    c.get_launch_log("j/1")
    assert rec.requests[-1].url.raw_path == b"/e1/psij/launch_log/session.abc/j%2F1"
    assert rec.last()[0] == "GET"
    c.tunnel_status("c1")
    assert rec.last()[:2] == ("GET", "/e1/psij/tunnel_status/c1")
    c.executors()
    assert rec.last()[:2] == ("GET", "/e1/psij/executors")


def test_session_needed_and_errors_carry_detail():
    rec = Recorder([httpx.Response(422, json={"detail": "job_spec.executable is required"})])
    c = client(rec)
    with pytest.raises(EdgeError) as err:
        c.submit_job({})
    assert err.value.status == 422 and "executable is required" in str(err.value)
    assert "psij" in str(err.value) and "e1" in str(err.value)
    c._sid = None
    with pytest.raises(RuntimeError, match="register_session"):
        c.list_jobs()
    c.tunnel_status("x")  # no session needed


def test_wait_job_collects_output():
    base = {"job_id": "j", "stderr": "", "stderr_offset": 0}
    rec = Recorder([
        {**base, "state": "ACTIVE", "stdout": "a\n", "stdout_offset": 2},
        {**base, "state": "ACTIVE", "stdout": "", "stdout_offset": 2},
        {**base, "state": "COMPLETED", "stdout": "b\n", "stdout_offset": 4, "exit_code": 0},
        {**base, "state": "COMPLETED", "stdout": "", "stdout_offset": 4, "exit_code": 0},
    ])
    seen = []
    result = client(rec).wait_job("j", timeout=5, interval=0.01,
                                  on_output=lambda o, e: seen.append(o))
    assert result["state"] == "COMPLETED" and result["stdout"] == "a\nb\n"
    assert seen == ["a\n", "b\n"]
    offsets = [dict(r.url.params)["stdout_offset"] for r in rec.requests]
    assert offsets == ["0", "2", "2", "4"]


def test_wait_job_times_out():
    rec = Recorder([{"state": "QUEUED", "stdout": "", "stderr": "", "stdout_offset": 0,
                     "stderr_offset": 0}] * 50)
    with pytest.raises(TimeoutError, match="still QUEUED"):
        client(rec).wait_job("j", timeout=0.05, interval=0.01)


def test_imports_without_edge_dependencies():
    run_without({"psij", "asyncssh", "celery", "redis", "psutil", "starlette", "fastapi",
                 "kombu", "pydantic", "pydantic_settings", "orjson"}, """
        from radical.edge.sdk.edge import resolve_client_class
        from radical.edge.plugins.psij.client import PsijClient, PSIJClient
        assert resolve_client_class("psij") is PsijClient is PSIJClient
    """)


def test_submit_retries_an_unknown_outcome_with_the_same_idempotency_key() -> None:
    from radical.edge.sdk import CallOutcomeError

    lost = httpx.Response(502, json={"detail": "edge lost mid-call", "outcome": "unknown",
                                     "call_id": "c" * 32})
    rec = Recorder([lost, {"job_id": "j1", "native_id": "1", "state": "QUEUED"}])
    c = client(rec)
    c._sid = "s1"
    assert c.submit_job({"executable": "/bin/true"})["job_id"] == "j1"
    keys = [r.headers.get("idempotency-key") for r in rec.requests]
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    rec = Recorder([lost] * 3)
    c = client(rec)
    c._sid = "s1"
    with pytest.raises(CallOutcomeError) as err:
        c.submit_job({"executable": "/bin/true"}, idempotency_key="mine", retries=1)
    assert err.value.outcome == "unknown" and err.value.call_id == "c" * 32
    assert [r.headers["idempotency-key"] for r in rec.requests] == ["mine", "mine"]


def test_submit_does_not_retry_a_refusal() -> None:
    rec = Recorder([httpx.Response(422, json={"detail": "executable is required"})])
    c = client(rec)
    c._sid = "s1"
    with pytest.raises(EdgeError) as err:
        c.submit_job({})
    assert err.value.status == 422 and len(rec.requests) == 1
