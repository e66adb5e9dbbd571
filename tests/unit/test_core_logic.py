"""Fast tests of the core's pure logic: wire protocol, routing, sessions, paths, SSE hub (auth: test_auth_guard.py)."""
from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import asdict

import orjson
import pytest

from radical.edge.app import keys
from radical.edge.app.protocol import (CallReply, CallRequest, call_from_task_body,
                                       celery_message)
from radical.edge.app.topology import edge_summary, stable_view
from radical.edge.app.event_stream import parse_event_id, parse_sid
from radical.edge.bridge_api.events import EventHub
from radical.edge.bridge_api.proxy import check_path, is_proxy_path
from radical.edge.plugins.sessions import SessionExpired, SessionNotFound, SessionStore
from radical.edge.workers.edge import validate_name
from radical.edge.workers.delivery import SeenCalls
from radical.edge.workers.router import RouteNotFound, Router


# -- protocol --------------------------------------------------------------------------------
def test_text_and_binary_bodies_round_trip():
    text = CallRequest.new(reply_to="r", timeout=5, method="POST", path="/p/x", body=b"h\xc3\xa9")
    assert text.body == "hé" and text.body_b64 is None and text.body_bytes() == b"h\xc3\xa9"
    raw = bytes(range(256))
    binary = CallRequest.new(reply_to="r", timeout=5, method="POST", path="/p/x", body=raw)
    assert binary.body is None and base64.b64decode(binary.body_b64) == raw
    assert binary.body_bytes() == raw


def test_celery_message_is_a_protocol_v2_task_message():
    call = CallRequest.new(reply_to="redge:reply:b", timeout=30, method="GET", path="/s/health",
                           query="a=1", headers=[["accept", "application/json"]])
    env = orjson.loads(celery_message(call, "edge.e1"))
    assert env["content-type"] == "application/json"
    assert env["headers"]["task"] == keys.CALL_TASK and env["headers"]["id"] == call.id
    assert env["properties"]["delivery_info"]["routing_key"] == "edge.e1"
    assert env["properties"]["correlation_id"] == call.id
    expires = env["headers"]["expires"]
    assert abs(time.mktime(time.strptime(expires[:19], "%Y-%m-%dT%H:%M:%S"))
               - time.mktime(time.gmtime(call.deadline))) < 2
    args, kwargs, embed = orjson.loads(env["body"])
    assert args == [] and set(embed) == {"callbacks", "errbacks", "chain", "chord"}
    assert call_from_task_body(env["body"]) == call


def test_stock_kombu_body_decodes_too():
    call = CallRequest.new(reply_to="r", timeout=5, method="GET", path="/p/v")
    body = orjson.dumps([[], {"call": asdict(call)}, {}])
    assert call_from_task_body(body) == call
    assert call_from_task_body(orjson.loads(body)) == call


@pytest.mark.parametrize("bad", [b"[]", b'{"x": 1}', b"[[], {}, {}]", b'[[], {"call": {"id": 1}}, {}]'])
def test_malformed_task_bodies_are_refused(bad):
    with pytest.raises(ValueError):
        call_from_task_body(bad)


def test_deadline():
    call = CallRequest.new(reply_to="r", timeout=0.01, method="GET", path="/p")
    assert not call.expired(call.deadline - 1)
    assert call.expired(call.deadline + 0.001)


def test_reply_round_trip_and_error():
    reply = CallReply.build("id1", 201, b'{"a":1}', [["content-type", "application/json"]])
    back = CallReply.loads(reply.dumps())
    assert back == reply
    err = CallReply.error("id2", 404, "nope")
    assert orjson.loads(err.body_bytes()) == {"detail": "nope"} and err.status == 404


# -- routing ---------------------------------------------------------------------------------
def test_router_matches_params_and_methods():
    r = Router()
    r.add("GET", "/p/metrics/{sid}", "h1")
    r.add("POST", "/p/cancel/{sid}/{job_id}", "h2")
    r.add("GET", "/p/files/{rest:path}", "h3")
    assert r.match("GET", "/p/metrics/s1") == ("h1", {"sid": "s1"})
    assert r.match("POST", "/p/cancel/s1/42[]") == ("h2", {"sid": "s1", "job_id": "42[]"})
    assert r.match("GET", "/p/files/a/b/c") == ("h3", {"rest": "a/b/c"})
    with pytest.raises(RouteNotFound) as e:
        r.match("DELETE", "/p/metrics/s1")
    assert e.value.status == 405 and e.value.allow == ["GET"]
    with pytest.raises(RouteNotFound) as e:
        r.match("GET", "/p/nothing")
    assert e.value.status == 404 and "no route GET /p/nothing" in e.value.detail
    with pytest.raises(RouteNotFound) as e:
        r.match("GET", "/q/metrics/s1")
    assert e.value.status == 404 and "no plugin 'q'" in e.value.detail


# -- sessions --------------------------------------------------------------------------------
def test_session_store_ttl(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    store: SessionStore[str] = SessionStore(ttl=10)
    store.add("a", "A")
    now[0] += 5
    assert store.get("a") == "A"  # refreshes the idle timer
    now[0] += 9
    assert store.get("a") == "A"
    now[0] += 11
    with pytest.raises(SessionExpired):
        store.get("a")
    assert store.pop_expired() == [("a", "A")]
    with pytest.raises(SessionExpired):
        store.get("a")  # remembered after reaping
    with pytest.raises(SessionNotFound):
        store.get("b")


def test_session_store_without_ttl_never_expires(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    store: SessionStore[str] = SessionStore(ttl=0)
    store.add("a", "A")
    now[0] += 1e9
    assert store.get("a") == "A" and store.pop_expired() == []


def test_seen_calls_until_deadline(monkeypatch):
    seen = SeenCalls()
    assert seen.first_time("x", time.time() + 60)
    assert not seen.first_time("x", time.time() + 60)
    assert seen.first_time("y", time.time() - 1)
    seen._next_prune = 0
    seen.first_time("z", time.time() + 60)
    assert "y" not in seen._ids and "x" in seen._ids


# -- names and paths -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["edge", "events", "a/b", "", "-x", "x" * 129, "a b"])
def test_bad_edge_names(name):
    with pytest.raises(ValueError):
        validate_name(name)


def test_good_edge_names():
    for name in ("site", "site.1", "perlmutter-login_2", "A0"):
        assert validate_name(name) == name


@pytest.mark.parametrize("path,proxied", [
    ("/e/p/x", True), ("/e/p", True), ("/edge/list", False), ("/events", False),
    ("/", False), ("/portal/app.js", False), ("/e", False), ("/docs", False),
])
def test_is_proxy_path(path, proxied):
    assert is_proxy_path(path) is proxied


@pytest.mark.parametrize("raw,path,ok", [
    (b"/e/p/a/b", "/e/p/a/b", True),
    (b"/e/p/..%2Fx", "/e/p/../x", False),
    (b"/e/p/a/../b", "/e/p/a/../b", False),
    (b"/e/p/./b", "/e/p/./b", False),
    (b"/e/p/a%5Cb", "/e/p/a\\b", False),
    (b"/e/p/a%00", "/e/p/a\x00", False),
])
def test_check_path(raw, path, ok):
    assert (check_path(raw, path) is None) is ok


# -- SSE hub ---------------------------------------------------------------------------------
def test_parse_sid_orders_stream_ids_and_event_ids_carry_the_epoch():
    assert parse_sid("5-1") < parse_sid("5-2") < parse_sid("6-0")
    assert parse_sid("7") == (7, 0) and parse_sid(b"8-1") == (8, 1)
    for bad in ("abc", "1-x", "-1", ""):
        with pytest.raises(ValueError):
            parse_sid(bad)
    assert parse_event_id("5-1:ab12") == ((5, 1), "ab12")
    assert parse_event_id("5-1") == ((5, 1), None)


def test_hub_window_serves_slow_clients_without_dropping():
    """A slow client is never cut: it reads on from its cursor, from memory while it is
    inside the window, and is sent to Redis (None) once the window moved past it."""
    async def main():
        hub = EventHub(redis=None, bridge_id="b", buffer_size=8)
        hub.epoch = "e"
        fast, slow = hub.connect(), hub.connect()
        hub._append([(f"1-{i}", {b"d": b'{"i":%d}' % i}) for i in range(3)])
        ids, events = hub.from_window(fast)
        assert ids == [(1, 0), (1, 1), (1, 2)]
        assert events[0] == b'id: 1-0:e\r\ndata: {"topic":"notification","data":{"i":0}}\r\n\r\n'
        fast.pos = (1, 2)
        assert hub.from_window(fast) == ([], [])
        hub._append([(f"1-{i}", {b"d": b"{}"}) for i in range(3, 6)])
        fast.pos = (1, 5)
        hub._append([(f"1-{i}", {b"d": b"{}"}) for i in range(6, 12)])
        assert hub.covered_from == (1, 3)
        assert hub.from_window(slow) is None  # behind the window: page from Redis
        assert hub.oldest_needed() == (0, 0)  # and its position protects the stream
        assert hub.from_window(fast)[0][0] == (1, 6)
    asyncio.run(main())


def test_event_encoding_keeps_multiline_data_valid():
    from radical.edge.bridge_api.events import _event
    from radical.edge.sdk.sse import SSEParser

    raw = _event((5, 1), "e", {b"d": b'{"a":\n1}'})
    parser = SSEParser()
    events = [e for line in raw.decode().splitlines() + [""] if (e := parser.feed_line(line))]
    [event] = events
    assert event.id == "5-1:e" and event.data == '{"topic":"notification","data":{"a":\n1}}'


# -- topology --------------------------------------------------------------------------------
def test_stable_view_ignores_heartbeats_and_summary_computes_walltime():
    a = {"e": {"plugins": {}, "heartbeat": 1.0}}
    b = {"e": {"plugins": {}, "heartbeat": 2.0}}
    assert stable_view(a) == stable_view(b)
    s = edge_summary({"name": "e", "heartbeat": 1.0, "walltime_end": time.time() + 100})
    assert "heartbeat" not in s and 98 <= s["walltime_remaining"] <= 100
    assert edge_summary({"name": "e"})["walltime_remaining"] is None
