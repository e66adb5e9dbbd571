"""The notification coalescer: immediate for a lone update, batched for bursts, lossless."""
from __future__ import annotations

import asyncio
import random
import threading

from radical.edge.plugins.rhapsody.notify import Coalescer


class Sink:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.messages: list[tuple[float, str, dict]] = []

    def __call__(self, topic: str, data: dict) -> None:
        self.messages.append((self.loop.time(), topic, data))

    def records(self) -> list[dict]:
        out = []
        for _t, topic, data in self.messages:
            out.extend(data["tasks"] if topic == "task_status_batch" else [data])
        return out


def run(coro):
    return asyncio.run(coro)


def test_lone_update_goes_out_on_the_next_loop_turn() -> None:
    async def main():
        loop = asyncio.get_running_loop()
        sink = Sink(loop)
        co = Coalescer(sink, loop, window=0.5, extra={"sid": "s"})
        t0 = loop.time()
        co.push({"uid": "a", "state": "DONE"})
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(sink.messages) == 1
        when, topic, data = sink.messages[0]
        assert topic == "task_status" and data == {"uid": "a", "state": "DONE", "sid": "s"}
        assert when - t0 < 0.01
        # long after: still immediate (no fixed delay)
        await asyncio.sleep(0.6)
        t1 = loop.time()
        co.push({"uid": "b", "state": "DONE"})
        await asyncio.sleep(0.001)
        assert len(sink.messages) == 2 and sink.messages[1][0] - t1 < 0.01
    run(main())


def test_same_turn_updates_share_one_batch_and_size_bounds_it() -> None:
    async def main():
        loop = asyncio.get_running_loop()
        sink = Sink(loop)
        co = Coalescer(sink, loop, window=0.05, max_batch=100, extra={"sid": "s"})
        for i in range(250):
            co.push({"uid": f"t{i}", "state": "DONE"})
        await asyncio.sleep(0.01)
        sizes = [len(d["tasks"]) for _t, topic, d in sink.messages]
        assert sizes == [100, 100, 50]
        assert all(topic == "task_status_batch" and d["sid"] == "s"
                   for _t, topic, d in sink.messages)
    run(main())


def test_burst_is_coalesced_within_the_window() -> None:
    async def main():
        loop = asyncio.get_running_loop()
        sink = Sink(loop)
        co = Coalescer(sink, loop, window=0.05, max_batch=10_000)
        for i in range(2000):  # a steady stream, one update per loop turn
            co.push({"uid": f"t{i}", "state": "DONE"})
            if i % 10 == 0:
                await asyncio.sleep(0.0005)
        await asyncio.sleep(0.1)
        records = sink.records()
        assert [r["uid"] for r in records] == [f"t{i}" for i in range(2000)]
        assert len(sink.messages) < 200  # far fewer messages than updates
        gaps = [b[0] - a[0] for a, b in zip(sink.messages, sink.messages[1:], strict=False)]
        # flushed during the stream, not held until it went quiet; the margin is for a loaded
        # machine (2 cores shared with Celery workers and browsers), the window is 0.05 s
        assert len(gaps) >= 2 and max(gaps) < 0.05 + 0.25
    run(main())


def test_newer_state_supersedes_pending_one_and_nothing_is_lost() -> None:
    async def main():
        loop = asyncio.get_running_loop()
        sink = Sink(loop)
        co = Coalescer(sink, loop, window=0.02, max_batch=5000)
        rng = random.Random(7)
        uids = [f"t{i}" for i in range(3000)]
        for uid in uids:
            co.push({"uid": uid, "state": "RUNNING"})
            if rng.random() < 0.05:
                await asyncio.sleep(0)
        rng.shuffle(uids)
        for uid in uids:
            co.push({"uid": uid, "state": "DONE"})
            if rng.random() < 0.05:
                await asyncio.sleep(0.001)
        co.close()
        done = [r["uid"] for r in sink.records() if r["state"] == "DONE"]
        assert sorted(done) == sorted(uids)  # every terminal record exactly once
        assert co.superseded > 0
        assert all(len(d.get("tasks", [d])) <= 5000 for _t, _topic, d in sink.messages)
    run(main())


def test_push_from_another_thread_hops_to_the_loop() -> None:
    async def main():
        loop = asyncio.get_running_loop()
        sink = Sink(loop)
        co = Coalescer(sink, loop)
        threads = [threading.Thread(target=lambda k=k: [co.push({"uid": f"{k}.{i}",
                                                                 "state": "DONE"})
                                                        for i in range(500)])
                   for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        await asyncio.sleep(0.2)
        assert len(sink.records()) == 2000
    run(main())


def test_running_updates_wait_for_the_window_and_fold_into_completion() -> None:
    async def main():
        loop = asyncio.get_running_loop()
        sink = Sink(loop)
        co = Coalescer(sink, loop, window=0.05)
        co.push({"uid": "a", "state": "RUNNING"})
        await asyncio.sleep(0.01)
        assert sink.messages == []  # not urgent
        co.push({"uid": "a", "state": "DONE"})  # urgent: goes now, replacing RUNNING
        await asyncio.sleep(0.005)
        assert [d for _t, _topic, d in sink.messages] == [{"uid": "a", "state": "DONE"}]
        co.push({"uid": "b", "state": "RUNNING"})
        await asyncio.sleep(0.08)  # alone, it still goes out within the window
        assert sink.messages[-1][2] == {"uid": "b", "state": "RUNNING"}
    run(main())


def test_hurry_flushes_without_waiting_for_the_gap() -> None:
    async def main():
        loop = asyncio.get_running_loop()
        sink = Sink(loop)
        co = Coalescer(sink, loop, window=1.0)
        for i in range(50):  # a burst widens the gap
            co.push({"uid": f"a{i}", "state": "DONE"})
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        co.push({"uid": "last", "state": "DONE"})
        co.hurry()
        await asyncio.sleep(0.005)
        assert sink.records()[-1]["uid"] == "last"
    run(main())


def test_serialized_records_are_embedded_and_get_the_extra_keys() -> None:
    import orjson

    async def main():
        loop = asyncio.get_running_loop()
        sent = []
        co = Coalescer(lambda t, d: sent.append((t, orjson.loads(orjson.dumps(d)))), loop,
                       extra={"sid": "s9"})
        co.push(b'{"uid":"a","state":"DONE"}', "a", "DONE")
        await asyncio.sleep(0.005)
        co.push(b'{"uid":"b","state":"DONE"}', "b", "DONE")
        co.push({"uid": "c", "state": "FAILED"})
        await asyncio.sleep(0.01)
        assert sent[0] == ("task_status", {"uid": "a", "state": "DONE", "sid": "s9"})
        assert sent[1] == ("task_status_batch", {"sid": "s9", "tasks": [
            {"uid": "b", "state": "DONE"}, {"uid": "c", "state": "FAILED"}]})
    run(main())


def test_every_message_of_records_carries_their_states_for_the_digest() -> None:
    """What the notifier turns into the work index's digest matches the records exactly,
    the superseded state included; a lone pre-serialized record goes out without one."""
    import orjson

    from radical.edge.app.state_digest import WithStates

    async def main():
        loop = asyncio.get_running_loop()
        sent = []
        co = Coalescer(lambda t, d: sent.append((t, d)), loop, window=0.02, max_batch=3,
                       extra={"sid": "s1"})
        co.push(b'{"uid":"a","state":"DONE","exit_code":0}', "a", "DONE", 0)
        await asyncio.sleep(0.005)
        co.push({"uid": "b", "state": "RUNNING", "exit_code": None})
        co.push({"uid": "b", "state": "FAILED", "exit_code": 2})  # supersedes RUNNING
        co.push(b'{"uid":"c","state":"CANCELED","exit_code":null}', "c", "CANCELED")
        co.push({"uid": "d", "state": "DONE", "exit_code": 0})
        await asyncio.sleep(0.005)
        co.push({"uid": "e", "state": "RUNNING"})
        await asyncio.sleep(0.05)
        assert [t for t, _ in sent] == ["task_status", "task_status_batch", "task_status"]
        assert not isinstance(sent[0][1], WithStates)  # a Fragment: the bridge reads it
        batch, single = sent[1][1], sent[2][1]
        assert isinstance(batch, WithStates) and isinstance(single, WithStates)
        records = orjson.loads(orjson.dumps(batch))["tasks"]
        assert [(r["uid"], r["state"], r["exit_code"]) for r in records] == batch.states \
            == [("b", "FAILED", 2), ("c", "CANCELED", None), ("d", "DONE", 0)]
        assert single.states == [("e", "RUNNING", None)] and single["sid"] == "s1"
    run(main())
