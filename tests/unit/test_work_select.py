"""Pure logic of the work index: what a submission keeps, how a stored hash reads back, and
GET /work's filter / sort / paging / validation (the Redis side: tests/integration)."""
from __future__ import annotations

import msgpack
import pytest

from radical.edge.bridge_api import work
from radical.edge.bridge_api.work_api import QueryError, select


def items():
    rows = [("a", "psij", "e1", "COMPLETED", 10.0, 11.0, 15.0, "/bin/echo hi"),
            ("b", "psij", "e2", "ACTIVE", 20.0, 21.0, None, "sleep 60"),
            ("c", "rhapsody", "e1", "FAILED", 30.0, None, 31.0, "exit 2"),
            ("d", "rhapsody", "e1", "DONE", 30.0, 30.5, 31.5, "/bin/echo two")]
    return [work.to_item({"id": i, "kind": k, "edge": e, "state": st, "submitted": str(s),
                          "started": str(b) if b else "", "ended": str(x) if x else "",
                          "name": n, "user": "u"})
            for i, k, e, st, s, b, x, n in rows]


def ids(params):
    return [i["id"] for i in select(items(), params)[0]]


def test_default_is_newest_submission_first():
    assert ids({}) == ["d", "c", "b", "a"]


def test_filters():
    assert ids({"kind": "psij"}) == ["b", "a"]
    assert ids({"edge": "e2"}) == ["b"]
    assert ids({"state": "failed,done"}) == ["d", "c"]
    assert ids({"phase": "active"}) == ["b"]
    assert ids({"phase": "ended"}) == ["d", "c", "a"]
    assert ids({"q": "ECHO"}) == ["d", "a"]


def test_sort_puts_missing_values_last_and_pages():
    assert ids({"sort": "started", "order": "asc"}) == ["a", "b", "d", "c"]
    assert ids({"sort": "duration", "order": "desc"})[:2] == ["b", "a"]  # b still runs
    page, meta = select(items(), {"sort": "submitted", "order": "asc", "offset": "1",
                                  "limit": "2"})
    assert [i["id"] for i in page] == ["b", "c"] and meta["total"] == 4


@pytest.mark.parametrize("params", [{"sort": "x"}, {"order": "up"}, {"limit": "0"},
                                    {"limit": "501"}, {"offset": "-1"}, {"kind": "slurm"},
                                    {"phase": "soon"}, {"limit": "ten"}])
def test_bad_parameters_are_refused(params):
    with pytest.raises(QueryError):
        select(items(), params)


def test_to_item_times_and_duration():
    item = items()[0]
    assert (item["submitted"], item["started"], item["ended"], item["duration"]) == \
        (10.0, 11.0, 15.0, 4.0)
    assert items()[2]["duration"] is None  # never seen running
    assert items()[1]["duration"] > 0  # running: up to now


def test_what_a_psij_submission_keeps():
    req = {"job_spec": {"executable": "/bin/sh", "arguments": ["-c", "true"],
                        "directory": "/tmp", "attributes": {"queue_name": "debug",
                                                            "account": "proj"}},
           "executor": "slurm"}
    got = work.psij_fields(req, {"job_id": "j", "native_id": "42",
                                 "stdout_path": "/tmp/j.out"})
    assert got == {"name": "/bin/sh -c true", "native_id": "42", "executor": "slurm",
                   "directory": "/tmp", "queue": "debug", "account": "proj",
                   "stdout_path": "/tmp/j.out"}


def test_request_bodies_json_msgpack_and_garbage():
    body = {"tasks": [{"executable": "/bin/echo", "arguments": ["x"]}]}
    assert work.decode_body(msgpack.packb(body), "application/msgpack") == body
    assert work.decode_body(b'{"tasks": []}', "application/json") == {"tasks": []}
    assert work.decode_body(b"\xff\x00", "application/json") is None
    assert work.decode_body(None, "application/json") is None
    assert work.task_name(body["tasks"][0]) == "/bin/echo x"
    assert work.task_name({"function": "mod:fn"}) == "mod:fn"


def _note(topic: str, data: dict) -> tuple[bytes, dict]:
    import orjson

    body = {"edge": "e1", "plugin": "rh", "topic": topic, "data": data}
    return b"1700000000000-0", {b"d": orjson.dumps(body)}


@pytest.mark.parametrize("tasks", [True, False])
def test_rhapsody_tasks_are_indexed_unless_switched_off(tasks):
    """settings.work_index_tasks: off, rhapsody submits and task notifications cost the bridge
    nothing (psij jobs are still indexed)."""
    import asyncio

    import fakeredis

    async def main():
        index = work.WorkIndex(fakeredis.aioredis.FakeRedis(), 3600, 100, tasks=tasks)
        n_tasks = index.record_submit("u", "e1", "rh", "rhapsody", "s1",
                                      {"tasks": [{"function": "m:f"}] * 2},
                                      [{"uid": "t1"}, {"uid": "t2"}])
        n_jobs = index.record_submit("u", "e1", "ps", "psij", "s2", {}, {"job_id": "j1"})
        applied = []
        index._update = lambda args: applied.append(args) or asyncio.sleep(0)  # count calls
        await index.apply([_note("task_status_batch", {"tasks": [{"uid": "t1", "state": "DONE"}]}),
                           _note("other_topic", {"uid": "x", "state": "DONE"})])
        return n_tasks, n_jobs, applied

    n_tasks, n_jobs, applied = asyncio.run(main())
    assert n_jobs == 1
    assert n_tasks == (2 if tasks else 0)
    assert len(applied) == (1 if tasks else 0)  # the other topic is never applied
