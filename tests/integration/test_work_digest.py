"""The state digest on a real Redis: the edge's notifier writes it beside the note for data
that carries states, the bridge's work index reads only the digest when there is one (and
the whole note when not: psij, older edges), a malformed digest from an edge is skipped with
a warning, and SSE clients never see the digest."""
from __future__ import annotations

import asyncio
import logging
import uuid

import orjson
import redis.asyncio as aioredis

from radical.edge.app import keys, state_digest
from radical.edge.bridge_api import events
from radical.edge.bridge_api.work import WorkIndex, member
from radical.edge.workers.notifier import Notifier


def run(redis_url: str, edge: str, body) -> object:
    """`body(redis)` on a fresh connection; the stream and the edge's work items go after."""
    async def main():
        redis = aioredis.Redis.from_url(redis_url)
        try:
            return await body(redis)
        finally:
            await redis.delete(keys.NOTIFICATIONS, keys.NOTIFICATIONS_READERS,
                               keys.NOTIFICATIONS_TRIMMED, keys.NOTIFICATIONS_EPOCH)
            async for key in redis.scan_iter(keys.work_item(f"{edge}/*")):
                await redis.delete(key)
            await redis.aclose()
    return asyncio.run(main())


async def item(redis: aioredis.Redis, edge: str, plugin: str, uid: str) -> dict[str, str]:
    raw = await redis.hgetall(keys.work_item(member(edge, plugin, uid)))
    return {k.decode(): v.decode() for k, v in raw.items()}


def note(edge: str, plugin: str, topic: str, data: object) -> bytes:
    return orjson.dumps({"edge": edge, "plugin": plugin, "topic": topic, "data": data})


def test_notifier_writes_the_digest_and_the_index_applies_it(redis_url, stream_keys):
    edge = f"dg{uuid.uuid4().hex[:6]}"
    tasks = [{"uid": "t.1", "state": "DONE", "exit_code": 0, "stdout": "x" * 500},
             {"uid": "t.2", "state": "FAILED", "exit_code": 3, "stdout": ""}]

    async def body(redis):
        notifier = Notifier(redis, edge, asyncio.get_running_loop())
        notifier.start()
        try:
            notifier.publish("rhapsody", "task_status_batch", state_digest.WithStates(
                {"tasks": tasks, "sid": "s"}, [(t["uid"], t["state"], t["exit_code"])
                                               for t in tasks]))
            notifier.publish("psij", "job_status",
                             {"job_id": "j.1", "state": "COMPLETED", "exit_code": 0})
            await notifier.flush()
        finally:
            await notifier.stop()
        entries = await redis.xrange(keys.NOTIFICATIONS)
        (_, batch), (_, job) = entries
        assert set(batch) == {b"d", b"s"} and set(job) == {b"d"}  # psij: no digest
        assert orjson.loads(batch[b"d"])["data"] == {"tasks": tasks, "sid": "s"}
        assert state_digest.decode(batch[b"s"]) == (
            edge, "rhapsody", "task_status_batch",
            [("t.1", "DONE", "0"), ("t.2", "FAILED", "3")], 0)
        # SSE clients get the note only, byte for byte as without a digest
        sid = (1, 0)
        assert events._event(sid, "ep", batch) == events._event(sid, "ep", {b"d": batch[b"d"]})
        assert batch[b"s"] not in events._event(sid, "ep", batch)

        index = WorkIndex(redis, retention=3600, max_items=100)
        assert await index.apply(entries) == 3
        done, failed = [await item(redis, edge, "rhapsody", u) for u in ("t.1", "t.2")]
        assert done["state"] == "DONE" and done["exit_code"] == "0" and done["ended"]
        assert failed["state"] == "FAILED" and failed["exit_code"] == "3"
        job = await item(redis, edge, "psij", "j.1")
        assert job["state"] == "COMPLETED" and job["exit_code"] == "0"
        assert index.malformed == 0
    run(redis_url, edge, body)


def test_the_digest_wins_and_malformed_ones_are_skipped_with_a_warning(
        redis_url, stream_keys, caplog):
    edge = f"dg{uuid.uuid4().hex[:6]}"
    good_note = note(edge, "rhapsody", "task_status_batch",
                     {"tasks": [{"uid": "n.1", "state": "DONE", "exit_code": 0}]})

    def digest(topic: str, states: list) -> bytes:
        return orjson.dumps([edge, "rhapsody", topic, states])

    async def body(redis):
        pipe = redis.pipeline(transaction=False)
        # the digest is what counts: a note the bridge could not even parse
        pipe.xadd(keys.NOTIFICATIONS, {"d": b"not json", "s": digest(
            "task_status_batch", [["d.1", "RUNNING", None], ["d.2", "DONE", 0]])})
        # an older edge: no digest, the note is read
        pipe.xadd(keys.NOTIFICATIONS, {"d": good_note})
        # a malformed digest: skipped, its (valid) note is not read instead
        pipe.xadd(keys.NOTIFICATIONS, {"d": note(edge, "rhapsody", "task_status_batch", {
            "tasks": [{"uid": "m.1", "state": "DONE"}]}), "s": b'["half'})
        # some malformed items: the others still count
        pipe.xadd(keys.NOTIFICATIONS, {"d": b"{}", "s": digest(
            "task_status", [["p.1", "FAILED", 9], ["p.2", {"x": 1}, 0], [None, "DONE", 0]])})
        # a topic the index does not follow
        pipe.xadd(keys.NOTIFICATIONS, {"d": b"{}", "s": digest("task_output",
                                                             [["o.1", "DONE", 0]])})
        # a later state of d.1 (a terminal state stays)
        pipe.xadd(keys.NOTIFICATIONS, {"d": b"{}", "s": digest(
            "task_status", [["d.1", "CANCELED", None], ["d.2", "RUNNING", None]])})
        await pipe.execute()
        entries = await redis.xrange(keys.NOTIFICATIONS)

        index = WorkIndex(redis, retention=3600, max_items=100)
        with caplog.at_level(logging.WARNING, logger="radical.edge.bridge_api.work_states"):
            assert await index.apply(entries) == 6
        assert index.malformed == 2
        assert any("state digest of notification" in r.getMessage() and "not JSON"
                   in r.getMessage() for r in caplog.records)
        got = {u: await item(redis, edge, "rhapsody", u)
               for u in ("d.1", "d.2", "n.1", "m.1", "p.1", "o.1")}
        assert got["d.1"]["state"] == "CANCELED" and got["d.1"]["started"]
        assert "exit_code" not in got["d.1"]
        assert got["d.2"]["state"] == "DONE" and got["d.2"]["exit_code"] == "0"
        assert got["n.1"]["state"] == "DONE"
        assert got["p.1"]["state"] == "FAILED" and got["p.1"]["exit_code"] == "9"
        assert got["m.1"] == {} and got["o.1"] == {}

        # with task indexing off, task digests are ignored like task notes, and not even
        # decoded (their malformed items go unnoticed; an undecodable digest does not)
        quiet = WorkIndex(redis, retention=3600, max_items=100, tasks=False)
        assert await quiet.apply(entries) == 0
        assert quiet.malformed == 1
    run(redis_url, edge, body)
