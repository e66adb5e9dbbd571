"""What an edge does with the messages on its queue, proven on the edge itself: calls pushed
straight onto `edge.<name>` (as a bridge would), so nothing on the bridge side can be what
dropped or de-duplicated them. Also: the message is a real Celery task message, notifications
survive a Redis outage, and an edge inside a (fake) allocation drains before its walltime."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import BridgeClient, services
from radical.edge.app import keys
from radical.edge.app.protocol import CallReply, CallRequest, celery_message

ROOT = Path(__file__).resolve().parents[2]


def runs(bridge_url: str, edge: str, tag: str) -> int:
    return authed.get(f"{bridge_url}/{edge}/echo/runs/{tag}", timeout=10).json()["runs"]


class ReplyInbox:
    """A reply channel of our own, subscribed before anything is pushed."""

    def __init__(self, redis_url: str) -> None:
        self.client = redis.Redis.from_url(redis_url)
        self.channel = keys.reply_channel(f"test-{uuid.uuid4().hex[:8]}")
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(self.channel)
        assert self.pubsub.get_message(timeout=5)["type"] == "subscribe"

    def push(self, edge: str, call: CallRequest) -> None:
        self.client.lpush(keys.edge_queue(edge), celery_message(call, keys.edge_queue(edge)))

    def call(self, edge: str, path: str, timeout: float = 30, **kw: object) -> CallRequest:
        call = CallRequest.new(reply_to=self.channel, timeout=timeout, method="GET",
                               path=path, **kw)
        self.push(edge, call)
        return call

    def replies_until(self, call_id: str, timeout: float = 15) -> list[CallReply]:
        """Every reply that arrives up to and including the one for `call_id`."""
        got: list[CallReply] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.pubsub.get_message(timeout=0.5)
            if msg and msg["type"] == "message":
                got.append(CallReply.loads(msg["data"]))
                if got[-1].id == call_id:
                    return got
        pytest.fail(f"no reply for {call_id} within {timeout} s (got {[r.id for r in got]})")

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


@pytest.fixture
def inbox(redis_url):
    box = ReplyInbox(redis_url)
    yield box
    box.close()


def test_expired_call_is_dropped_by_the_edge(make_edge, bridge_url, inbox):
    make_edge("echo", name="deadlined")
    tag = uuid.uuid4().hex[:8]
    expired = inbox.call("deadlined", "/echo/sleep/0", timeout=-1, query=f"tag={tag}")
    # the queue is FIFO: once this later call is answered the edge has taken the expired one
    probe = inbox.call("deadlined", "/echo/version")
    replies = inbox.replies_until(probe.id)
    assert [r.id for r in replies] == [probe.id]  # no answer at all for the expired call
    assert expired.id not in {r.id for r in replies}
    assert inbox.client.llen(keys.edge_queue("deadlined")) == 0  # the edge consumed both
    assert runs(bridge_url, "deadlined", tag) == 0


def test_duplicate_delivery_runs_once(make_edge, bridge_url, inbox):
    make_edge("echo", name="dedup")
    tag = uuid.uuid4().hex[:8]
    call = CallRequest.new(reply_to=inbox.channel, timeout=30, method="GET",
                           path="/echo/sleep/0", query=f"tag={tag}")
    inbox.push("dedup", call)
    inbox.push("dedup", call)  # the same message delivered twice
    first = inbox.replies_until(call.id)
    assert first[-1].status == 200
    probe = inbox.call("dedup", "/echo/version")
    later = inbox.replies_until(probe.id)
    assert [r.id for r in later] == [probe.id]  # the duplicate got no second answer
    assert runs(bridge_url, "dedup", tag) == 1


STOCK_APP = '''
import json, os, pathlib
from celery import Celery

app = Celery("stock", broker=os.environ["STOCK_BROKER"])
app.conf.update(accept_content=["json"], task_serializer="json", worker_hijack_root_logger=False)


@app.task(name="radical.edge.call")
def call(call):
    pathlib.Path(os.environ["STOCK_OUT"]).write_text(json.dumps(call))
'''


def test_stock_celery_worker_accepts_our_message(redis_url, tmp_path, log_dir):
    """`celery_message` is a genuine Celery protocol-v2 message: an unmodified Celery worker
    (default strategy, pool and tracer) runs it with the call as its keyword argument."""
    (tmp_path / "stockapp.py").write_text(STOCK_APP)
    out = tmp_path / "out.json"
    queue = f"stock.{uuid.uuid4().hex[:6]}"
    call = CallRequest.new(reply_to="unused", timeout=120, method="POST", path="/echo/x",
                           query="a=1", body=b'{"k": 1}')
    redis.Redis.from_url(redis_url).lpush(queue, celery_message(call, queue))
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "stockapp", "worker", "-Q", queue, "--pool",
         "solo", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-n", f"stock@{queue}", "--loglevel", "WARNING"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path),
                           "STOCK_BROKER": redis_url, "STOCK_OUT": str(out)},
        stdout=open(log_dir / f"{queue}.log", "wb"), stderr=subprocess.STDOUT)
    try:
        services.wait_until(lambda: out.exists() and out.stat().st_size > 0, 60,
                            "the stock worker to run the task")
    finally:
        worker.terminate()
        worker.wait(20)
    got = json.loads(out.read_text())
    assert got["id"] == call.id
    assert (got["method"], got["path"], got["query"], got["body"]) == \
        ("POST", "/echo/x", "a=1", '{"k": 1}')
    assert abs(got["deadline"] - call.deadline) < 1e-6


def test_notifications_emitted_while_redis_is_down_arrive(log_dir, tmp_path):
    """Redis stops, the edge emits notifications, Redis comes back on the same port: an SSE
    listener connected before the outage receives every one of them."""
    own_redis = services.start_redis(log_dir=log_dir)
    port, url = own_redis.extra["port"], own_redis.extra["url"]
    bridge = services.start_bridge(url, log_dir=log_dir)
    edge = services.start_edge(url, "outage", "echo", log_dir, bridge_url=bridge.extra["url"])
    log_from = edge.log_path.stat().st_size  # the log is appended to: this run's part only
    bc = BridgeClient(bridge.extra["url"])
    got: list[int] = []
    tag, n = uuid.uuid4().hex[:8], 50
    trigger, done = tmp_path / "trigger", tmp_path / "done"
    try:
        bc.register_callback(topic="outage_topic",
                             callback=lambda e, p, t, d: d["tag"] == tag and got.append(d["i"]))
        assert bc.wait_for_listener(15)
        r = authed.post(f"{bridge.extra['url']}/outage/echo/notify_on_file", timeout=10,
                       json={"n": n, "tag": tag, "trigger": str(trigger), "done": str(done)})
        assert r.status_code == 200, r.text
        own_redis.stop()
        trigger.touch()
        services.wait_until(done.exists, 15, "the edge to emit while Redis is down", edge)
        assert got == []  # nothing could have been delivered yet
        own_redis = services.start_redis(port=port, log_dir=log_dir)
        services.wait_until(lambda: len(got) >= n, 30, "the notifications after the outage")
        assert sorted(got) == list(range(n))  # each one, once
        # the edge's Celery consumer lost Redis and takes calls again, and said so without
        # Celery's multi-line deprecation warnings (app/celery_app.py sets their options)
        def this_run() -> str:
            with open(edge.log_path, "rb") as fh:
                fh.seek(log_from)
                return fh.read().decode(errors="replace")

        services.wait_until(lambda: "Connection to broker lost" in this_run(), 15,
                            "the edge's consumer to notice the outage", edge)
        r = authed.post(f"{bridge.extra['url']}/outage/echo/echo/after", json={}, timeout=30)
        assert r.status_code == 200, r.text
        assert [line for line in this_run().splitlines() if "py.warnings" in line] == []
    finally:
        bc.close()
        edge.stop()
        bridge.stop()
        own_redis.stop()


def test_walltime_drain_inside_a_fake_allocation(redis_url, bridge_url, log_dir):
    """An edge whose (fake) batch job ends soon answers 503 once inside its walltime margin,
    and says so in its announcement; no SLURM needed (tests/fixtures/fake_batch)."""
    env = {"PYTHONPATH": str(ROOT / "tests" / "fixtures" / "fake_batch"),
           "FAKE_BATCH_JOB_ID": "4242", "FAKE_BATCH_REMAINING": "40",
           "RADICAL_EDGE_WALLTIME_MARGIN": "35"}
    edge = services.start_edge(redis_url, "walltimed", "echo", log_dir, env=env,
                               bridge_url=bridge_url)
    try:
        info = services.list_edges(bridge_url)["walltimed"]
        assert info["role"] == "compute", info
        assert info["walltime_end"] is not None
        assert authed.get(f"{bridge_url}/walltimed/echo/version", timeout=10).status_code == 200

        def draining() -> bool:
            r = authed.get(f"{bridge_url}/walltimed/echo/version", timeout=10)
            return r.status_code == 503 and "walltime" in r.json()["detail"]

        services.wait_until(draining, 30, "the edge to stop taking calls", edge)
        assert services.list_edges(bridge_url)["walltimed"]["accepting"] is False
    finally:
        edge.stop()
