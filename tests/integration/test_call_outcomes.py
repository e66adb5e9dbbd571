"""Exact call outcomes through a real bridge and edge: call records, `GET /calls/{id}`,
the `outcome` of unanswered calls, and `Idempotency-Key` with a real psij submit retried."""
from __future__ import annotations

import uuid

import pytest

import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import BridgeClient, CallOutcomeError, EdgeError, services

from psij_helpers import start_parent, wait_for


def test_answered_call_has_a_done_record_with_its_reply(make_edge, bridge_url):
    edge = make_edge("echo")
    name = edge.extra["name"]
    r = authed.post(f"{bridge_url}/{name}/echo/echo/x", content="hello", timeout=10)
    assert r.status_code == 200
    call_id = r.headers["x-radical-call-id"]
    with BridgeClient(bridge_url) as bc:
        record = bc.call_status(call_id)
    assert record["state"] == "done" and record["status"] == 200 and record["edge"] == name
    assert '"body":"hello"' in record["reply"]["body"]


def test_call_status_of_unknown_and_malformed_ids(bridge_url):
    assert authed.get(f"{bridge_url}/calls/{uuid.uuid4().hex}", timeout=5).status_code == 404
    r = authed.get(f"{bridge_url}/calls/..%2fetc", timeout=5)
    assert 400 <= r.status_code < 500
    r = authed.get(f"{bridge_url}/calls/NOT-AN-ID", timeout=5)
    assert r.status_code == 422 and "detail" in r.json()


def test_deadline_after_delivery_is_unknown_then_done(make_edge, bridge_url):
    edge = make_edge("echo")
    name, tag = edge.extra["name"], uuid.uuid4().hex[:8]
    r = authed.get(f"{bridge_url}/{name}/echo/sleep/2", params={"tag": tag},
                  headers={"x-radical-timeout": "0.5"}, timeout=10)
    assert r.status_code == 504, r.text
    body = r.json()
    assert body["outcome"] == "unknown" and "GET /calls/" in body["detail"]
    with BridgeClient(bridge_url) as bc:
        assert bc.call_status(body["call_id"])["state"] == "running"
        record = wait_for(lambda: (lambda c: c if c["state"] == "done" else None)(
            bc.call_status(body["call_id"])), 15, what="call to finish")
    assert record["status"] == 200 and tag in record["reply"]["body"]


def test_unconnected_edge_is_503_not_run(make_edge, bridge_url):
    edge = make_edge("echo")
    name = edge.extra["name"]
    edge.stop()
    services.wait_for_edge(bridge_url, name, 15, present=False)
    r = authed.get(f"{bridge_url}/{name}/echo/version", timeout=5)
    assert r.status_code == 503 and r.json()["outcome"] == "not_run"


def test_sdk_raises_call_outcome_error(make_edge, bridge_url):
    edge = make_edge("echo")
    with BridgeClient(bridge_url) as bc:
        echo = bc.get_edge_client(edge.extra["name"]).get_plugin("echo")
        with pytest.raises(CallOutcomeError) as err:
            echo._request("GET", "sleep/2", timeout=0.5)
        assert err.value.status == 504 and err.value.outcome == "unknown"
        assert err.value.may_have_run and len(err.value.call_id) == 32
        assert isinstance(err.value, EdgeError)  # existing `except EdgeError` still catches


# -- idempotency with a real psij submit ----------------------------------------------------
@pytest.fixture(scope="module")
def psij_edge(redis_url, bridge_url, log_dir, tmp_path_factory):
    pytest.importorskip("psij")
    svc = start_parent(redis_url, bridge_url, log_dir, tmp_path_factory.mktemp("psij"),
                       plugins="psij")
    yield svc
    svc.stop()


def test_retried_psij_submit_with_the_same_key_submits_once(psij_edge, bridge_url):
    name = psij_edge.extra["name"]
    with BridgeClient(bridge_url) as bc:
        pj = bc.get_edge_client(name).get_plugin("psij")
        spec = {"executable": "/bin/sleep", "arguments": ["0.5"]}
        key = uuid.uuid4().hex
        first = pj.submit_job(spec, idempotency_key=key)
        again = pj.submit_job(spec, idempotency_key=key)
        assert again["job_id"] == first["job_id"]
        other = pj.submit_job(spec)  # a fresh key is a new job
        assert other["job_id"] != first["job_id"]
        jobs = [j["job_id"] for j in pj.list_jobs()["jobs"]]
        assert sorted(jobs) == sorted({first["job_id"], other["job_id"]})
        pj.close()


def test_retry_while_the_first_submit_still_runs_waits_for_its_reply(psij_edge, bridge_url):
    """The client gives up on the first request (its own timeout) while the edge is still
    submitting; the retry with the same key gets the first submit's reply, not a 2nd job."""
    import concurrent.futures as cf

    name = psij_edge.extra["name"]
    with BridgeClient(bridge_url) as bc:
        pj = bc.get_edge_client(name).get_plugin("psij")
        pj.register_session()
        url = f"{bridge_url}/{name}/psij/submit/{pj.sid}"
        key = uuid.uuid4().hex
        body = {"job_spec": {"executable": "/bin/true"}, "executor": "local"}
        headers = {"Idempotency-Key": key}
        with cf.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: authed.post(url, json=body, headers=headers,
                                                         timeout=30), range(4)))
        assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
        assert len({a.json()["job_id"] for a in answers}) == 1
        replays = [a for a in answers if "idempotent-replay" in a.headers]
        assert len(replays) == 3
        assert len(pj.list_jobs()["jobs"]) == 1
        pj.close()


def test_idempotency_key_is_validated(psij_edge, bridge_url):
    name = psij_edge.extra["name"]
    r = authed.post(f"{bridge_url}/{name}/psij/register_session", json={},
                   headers={"Idempotency-Key": "x" * 300}, timeout=10)
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["detail"]


def test_edge_never_starts_a_call_whose_deadline_passed(make_edge, redis_url, bridge_url):
    """Messages put straight on the edge's queue (no bridge, so no LREM can help): the one
    whose deadline passed before the edge took it never runs and is recorded as such."""
    import redis as redis_sync

    from radical.edge.app import call_record, keys
    from radical.edge.app.protocol import CallRequest, celery_message

    edge = make_edge("echo")
    name = edge.extra["name"]
    r = redis_sync.Redis.from_url(redis_url, socket_timeout=5)
    try:
        calls = {}
        for label, timeout in (("expired", -1.0), ("fresh", 30.0)):
            tag = uuid.uuid4().hex
            call = CallRequest.new(reply_to=f"{keys.PREFIX}:reply:test", timeout=timeout,
                                   method="GET", path="/echo/sleep/0", query=f"tag={tag}")
            calls[label] = (call, tag)
            r.lpush(keys.edge_queue(name), celery_message(call, keys.edge_queue(name)))

        def state(label: str) -> str | None:
            rec = call_record.decode(r.get(keys.call_record(calls[label][0].id)), "x")
            return rec and rec["state"]

        wait_for(lambda: state("fresh") == "done", 15, what="the fresh call to run")
        wait_for(lambda: state("expired") == "not_delivered", 15, what="the expired call drop")
        rec = call_record.decode(r.get(keys.call_record(calls["expired"][0].id)), "x")
        assert "deadline passed" in rec["note"]
        def runs(tag: str) -> dict:
            return authed.get(f"{bridge_url}/{name}/echo/runs/{tag}", timeout=5).json()
        assert runs(calls["fresh"][1])["runs"] == 1
        assert runs(calls["expired"][1])["runs"] == 0
    finally:
        r.close()
