"""The work index (`GET /work`, `BridgeClient.list_work`): a user's psij jobs and rhapsody
tasks across edges and sessions, with times and states from real notifications, kept in Redis
through a bridge restart, and invisible to other users.

Real bridges, a real edge with the psij and rhapsody plugins, named tokens for two users.
"""
from __future__ import annotations

import uuid

import httpx
import orjson
import pytest
import redis
from authed import AUTH, new_token
from rhapsody_helpers import rhapsody_session

from radical.edge import BridgeClient, services
from radical.edge.app import keys, state_digest
from radical.edge.sdk import EdgeError
from radical.edge.settings import Settings

pytest.importorskip("psij")
pytest.importorskip("rhapsody")

NOOP = "radical.edge.plugins.rhapsody.functions:noop"


def wait_for(check, timeout: float = 60.0):
    """`services.wait_until`, returning what `check` found."""
    found = []

    def probe() -> bool:
        value = check()
        if value:
            found.append(value)
        return bool(value)
    services.wait_until(probe, timeout, "the work index to show it", interval=0.1)
    return found[0]


def client(bridge_url: str, tok: str) -> httpx.Client:
    return httpx.Client(base_url=bridge_url, timeout=60,
                        headers={"Authorization": f"Bearer {tok}"})


def psij_job(http: httpx.Client, edge: str, script: str, sid: str | None = None) -> tuple[str, str]:
    if sid is None:
        r = http.post(f"/{edge}/psij/register_session", json={})
        assert r.status_code == 200, r.text
        sid = r.json()["sid"]
    r = http.post(f"/{edge}/psij/submit/{sid}", json={
        "job_spec": {"executable": "/bin/sh", "arguments": ["-c", script]}, "executor": "local"})
    assert r.status_code == 200, r.text
    return sid, r.json()["job_id"]


def work(http: httpx.Client, **params) -> dict:
    r = http.get("/work", params=params)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def edge(module_edges):
    return module_edges.psij_edge("psij,rhapsody", prefix="wk")


@pytest.fixture(scope="module")
def users(bridge_url):
    suffix = uuid.uuid4().hex[:6]
    return {who: new_token(bridge_url, f"{who}{suffix}", "submit") for who in ("alice", "bob")}


def test_my_work_across_sessions_with_times_and_states(bridge_url, edge, users):
    alice, bob = client(bridge_url, users["alice"]), client(bridge_url, users["bob"])
    with alice, bob:
        _, quick = psij_job(alice, edge, "echo done")
        _, other = psij_job(alice, edge, "sleep 0.5; exit 3")  # another session
        sid = rhapsody_session(alice, edge)
        r = alice.post(f"/{edge}/rhapsody/submit/{sid}", json={"tasks": [
            {"executable": "/bin/echo", "arguments": ["hi"]},
            {"executable": "/bin/sh", "arguments": ["-c", "exit 2"]}]})
        assert r.status_code == 200, r.text
        uids = [t["uid"] for t in r.json()]

        def ended():
            items = work(alice, limit=500)["items"]
            mine = {i["id"]: i for i in items if i["edge"] == edge}
            want = [quick, other, *uids]
            return mine if all(w in mine and mine[w]["ended"] for w in want) else None
        mine = wait_for(ended)
        job, failed = mine[quick], mine[other]
        assert job["kind"] == "psij" and job["state"] == "COMPLETED" and job["exit_code"] == 0
        assert job["name"] == "/bin/sh -c echo done" and job["executor"] == "local"
        assert failed["state"] == "FAILED" and failed["exit_code"] == 3
        assert failed["sid"] != job["sid"]  # two sessions, one list
        assert failed["submitted"] <= failed["started"] <= failed["ended"]
        assert failed["duration"] == pytest.approx(failed["ended"] - failed["started"], abs=0.01)
        assert failed["duration"] >= 0.4  # it slept 0.5 s
        assert job["directory"]  # the psij reply names it: the portal links there
        tasks = [mine[u] for u in uids]
        assert [t["kind"] for t in tasks] == ["rhapsody", "rhapsody"]
        assert [t["state"] for t in tasks] == ["DONE", "FAILED"]
        assert tasks[0]["name"] == "/bin/echo hi"

        # filter, sort, page
        psij = work(alice, kind="psij", edge=edge)
        assert {i["id"] for i in psij["items"]} >= {quick, other}
        assert all(i["kind"] == "psij" for i in psij["items"])
        assert [i["id"] for i in work(alice, state="FAILED", edge=edge)["items"]] \
            == [uids[1], other]  # newest submission first
        asc = work(alice, edge=edge, sort="submitted", order="asc")["items"]
        assert [i["submitted"] for i in asc] == sorted(i["submitted"] for i in asc)
        assert asc[0]["id"] == quick
        page = work(alice, edge=edge, sort="submitted", order="asc", offset=1, limit=2)
        assert page["total"] == 4 and [i["id"] for i in page["items"]] == [other, uids[0]]
        assert [i["id"] for i in work(alice, q="exit 3")["items"]] == [other]
        assert work(alice, edge=edge, phase="active")["total"] == 0

        # another user sees none of it, and may not ask for it
        assert work(bob)["items"] == []
        r = bob.get("/work", params={"user": work(alice)["user"]})
        assert r.status_code == 403 and "admin" in r.json()["detail"]
        # an admin may
        admin = httpx.get(f"{bridge_url}/work", params={"user": work(alice)["user"],
                                                         "edge": edge}, headers=AUTH, timeout=30)
        assert admin.status_code == 200 and admin.json()["total"] == 4


def test_a_big_submit_whose_reply_comes_out_of_band_is_indexed(bridge_url, edge, users):
    """~6,000 tasks: the submit reply is over the inline limit and travels by blob; the
    bridge keeps it while relaying and indexes every task (it used to index none)."""
    n = 6000
    with client(bridge_url, users["bob"]) as bob:
        before = work(bob, edge=edge, kind="rhapsody", limit=1)["total"]
        sid = rhapsody_session(bob, edge)
        r = bob.post(f"/{edge}/rhapsody/submit/{sid}",
                     json={"tasks": [{"function": NOOP} for _ in range(n)]})
        assert r.status_code == 200, r.text
        assert len(r.content) > Settings().payload_inline_bytes  # it went out of band
        uids = {t["uid"] for t in r.json()}
        assert len(uids) == n
        wait_for(lambda: work(bob, edge=edge, kind="rhapsody", phase="ended",
                              limit=1)["total"] - before >= n)
        assert work(bob, edge=edge, kind="rhapsody", limit=1)["total"] - before == n
        newest = work(bob, edge=edge, kind="rhapsody", limit=500)["items"]
        assert {i["sid"] for i in newest} == {sid} and {i["id"] for i in newest} <= uids
        assert {i["state"] for i in newest} == {"DONE"}


def test_a_task_burst_is_indexed_from_state_digests(bridge_url, redis_url, edge, users):
    """Tasks finishing together go out as task_status_batch notes with a state digest
    beside them (what the index reads); the digest says exactly what the notes say, and
    every task reaches /work with its final state and exit code."""
    with client(bridge_url, users["alice"]) as alice:
        sid = rhapsody_session(alice, edge)
        tasks = [{"function": "radical.edge.plugins.rhapsody.functions:noop"}] * 300
        tasks += [{"executable": "/bin/sh", "arguments": ["-c", "exit 4"]}]
        r = alice.post(f"/{edge}/rhapsody/submit/{sid}", json={"tasks": tasks})
        assert r.status_code == 200, r.text
        uids = [t["uid"] for t in r.json()]

        def ended():
            mine = {i["id"]: i for i in work(alice, edge=edge, kind="rhapsody",
                                             limit=500)["items"] if i["sid"] == sid}
            return mine if all(u in mine and mine[u]["ended"] for u in uids) else None
        mine = wait_for(ended)
    assert all(mine[u]["state"] == "DONE" for u in uids[:-1])
    assert mine[uids[-1]]["state"] == "FAILED" and mine[uids[-1]]["exit_code"] == 4

    r = redis.Redis.from_url(redis_url)
    try:
        entries = r.xrevrange(keys.NOTIFICATIONS, count=20_000)
    finally:
        r.close()
    batches = 0
    for _, fields in entries:
        note = orjson.loads(fields[b"d"])
        if note.get("topic") != "task_status_batch" or note["data"].get("sid") != sid:
            continue
        batches += 1
        digest = state_digest.decode(fields[b"s"])
        assert (digest.edge, digest.plugin, digest.topic, digest.skipped) == (
            edge, "rhapsody", "task_status_batch", 0)
        assert digest.states == [(t["uid"], t["state"], "" if t["exit_code"] is None
                                  else str(t["exit_code"])) for t in note["data"]["tasks"]]
    assert batches >= 1  # 300 tasks ending together are never all sent one by one


@pytest.mark.parametrize("params, words", [
    ({"sort": "color"}, "sort must be one of"),
    ({"order": "up"}, "order must be one of"),
    ({"limit": "0"}, "limit must be between 1"),
    ({"limit": "many"}, "limit must be a whole number"),
    ({"kind": "slurm"}, "kind must be one of"),
    ({"phase": "later"}, "phase must be one of"),
])
def test_bad_queries_say_what_is_wrong(bridge_url, params, words):
    r = httpx.get(f"{bridge_url}/work", params=params, headers=AUTH, timeout=30)
    assert r.status_code == 422 and words in r.json()["detail"], r.text


def test_sdk_list_work(bridge_url, edge, users):
    with client(bridge_url, users["alice"]) as alice:
        _, job_id = psij_job(alice, edge, "true")
    bc = BridgeClient(bridge_url.replace("://", f"://:{users['alice']}@"))
    try:
        found = wait_for(lambda: [i for i in bc.list_work(kind="psij", q=job_id)["items"]
                                  if i["state"] == "COMPLETED"])
        assert found[0]["id"] == job_id and found[0]["edge"] == edge
        with pytest.raises(EdgeError) as err:
            bc.list_work(sort="nope")
        assert err.value.status == 422
    finally:
        bc.close()


def test_index_survives_a_bridge_restart_and_catches_up(redis_url, log_dir, tmp_path):
    """A private deployment (own key prefix) whose only bridge is down while a job ends:
    the restarted bridge lists the job, with the end it missed."""
    prefix = f"wk{uuid.uuid4().hex[:6]}"
    env = {"RADICAL_EDGE_REDIS_PREFIX": prefix}
    br = services.start_bridge(redis_url, log_dir=log_dir, env=env)
    name = "restart-edge"
    edge = services.start_edge(redis_url, name, "psij", log_dir, bridge_url=br.extra["url"],
                               env={**env, "RADICAL_EDGE_PSIJ_DIR": str(tmp_path / "psij")})
    r = redis.Redis.from_url(redis_url)
    try:
        with httpx.Client(base_url=br.extra["url"], timeout=60, headers=AUTH) as http:
            sid, job_id = psij_job(http, name, "sleep 2; echo late")
            user = work(http)["user"]
            assert [i["id"] for i in wait_for(lambda: work(http)["items"], 30)] == [job_id]
        br.stop()

        def ended_in_stream():  # the edge reports the end while no bridge runs
            return any(b"COMPLETED" in f.get(b"d", b"") and job_id.encode() in f.get(b"d", b"")
                       for _, f in r.xrange(f"{prefix}:notifications"))
        wait_for(ended_in_stream, 60)
        br = services.start_bridge(redis_url, log_dir=log_dir, env=env)
        with httpx.Client(base_url=br.extra["url"], timeout=60, headers=AUTH) as http:
            item = wait_for(lambda: [i for i in work(http)["items"]
                                     if i["state"] == "COMPLETED"], 30)[0]
            assert work(http)["user"] == user
        assert item["id"] == job_id and item["sid"] == sid
        assert item["ended"] - item["started"] >= 1.9  # times of the events, not of the catch-up
    finally:
        edge.stop()
        br.stop()
        for key in r.scan_iter(f"{prefix}:*"):
            r.delete(key)
        r.close()
