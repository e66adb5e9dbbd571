"""Unit tests of the SDK's SSE parser and listener (no network: httpx.MockTransport)."""
from __future__ import annotations

import threading
import time

import httpx

from radical.edge.sdk.sse import SSEEvent, SSEListener, SSEParser


def parse_lines(lines: list[str]) -> tuple[list[SSEEvent], SSEParser]:
    parser = SSEParser()
    events = [ev for line in lines if (ev := parser.feed_line(line)) is not None]
    return events, parser


# -- parser ---------------------------------------------------------------------------------
def test_single_event() -> None:
    events, _ = parse_lines(['data: {"topic": "topology"}', ""])
    assert events == [SSEEvent(data='{"topic": "topology"}')]


def test_multi_line_data_joined_by_newline() -> None:
    events, _ = parse_lines(["data: line1", "data: line2", "data:line3", ""])
    assert events[0].data == "line1\nline2\nline3"


def test_only_one_leading_space_is_stripped() -> None:
    events, _ = parse_lines(["data:   x", ""])
    assert events[0].data == "  x"


def test_no_event_without_blank_line() -> None:
    events, _ = parse_lines(["data: a", "data: b"])
    assert events == []


def test_id_is_remembered_across_events() -> None:
    events, parser = parse_lines(["id: 7", "data: a", "", "data: b", ""])
    assert [e.id for e in events] == ["7", "7"]
    assert parser.last_event_id == "7"


def test_id_without_data_updates_last_id_but_dispatches_nothing() -> None:
    events, parser = parse_lines(["id: 42", ""])
    assert events == []
    assert parser.last_event_id == "42"


def test_id_with_nul_is_ignored() -> None:
    _, parser = parse_lines(["id: 1", "id: a\0b", ""])
    assert parser.last_event_id == "1"


def test_comments_are_not_dispatched() -> None:
    events, parser = parse_lines([": keep-alive", ":", "data: x", ": ping", ""])
    assert [e.data for e in events] == ["x"]


def test_event_type_and_retry_and_unknown_field() -> None:
    events, parser = parse_lines(["event: update", "retry: 3000", "foo: bar", "data: d", "",
                                  "data: e", ""])
    assert events[0].event == "update"
    assert events[1].event == "message"  # the type does not leak into the next event
    assert parser.retry_ms == 3000


def test_field_without_colon() -> None:
    events, _ = parse_lines(["data", ""])
    assert events == [SSEEvent(data="")]


def test_leading_bom_is_dropped() -> None:
    events, _ = parse_lines(["\ufeffdata: x", ""])
    assert events[0].data == "x"


def test_feed_line_accepts_line_endings() -> None:
    events, _ = parse_lines(["data: x\r\n", "\r\n"])
    assert events[0].data == "x"


def test_reset_stream_drops_partial_event_keeps_id() -> None:
    parser = SSEParser()
    for line in ("id: 5", "data: partial"):
        assert parser.feed_line(line) is None
    parser.reset_stream()
    assert parser.feed_line("data: next") is None
    assert parser.feed_line("") == SSEEvent(data="next", id="5")


# -- listener (MockTransport: request building and reconnect logic only) -------------------
class FakeBridge:
    """Answers /events with a finite stream per connection, recording request headers."""

    def __init__(self, bodies: list[bytes], status: int = 200) -> None:
        self.bodies = bodies
        self.status = status
        self.requests: list[httpx.Request] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            n = len(self.requests)
        body = self.bodies[min(n - 1, len(self.bodies) - 1)]
        return httpx.Response(self.status, content=body,
                              headers={"content-type": "text/event-stream"})


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_listener_dispatches_json_and_reconnects_with_last_event_id() -> None:
    fake = FakeBridge([
        b'id: 1\ndata: {"topic": "topology", "data": {"edges": {}}}\n\n'
        b': ping\nid: 2\ndata: {"n": 2}\n\ndata: not json\n\n',
        b'id: 3\ndata: {"n": 3}\n\n',
    ])
    got: list = []
    listener = SSEListener("http://bridge.test/", got.append, token="s3cret",
                           transport=httpx.MockTransport(fake))
    listener.start()
    try:
        assert wait_until(lambda: len(got) >= 3)
        assert wait_until(lambda: listener.last_event_id == "3")
    finally:
        listener.stop()
    assert not listener.is_alive()
    assert got[:3] == [{"topic": "topology", "data": {"edges": {}}}, {"n": 2}, {"n": 3}]
    first, second = fake.requests[0], fake.requests[1]
    assert str(first.url) == "http://bridge.test/events"
    assert first.headers["authorization"] == "Bearer s3cret"
    assert first.headers["accept"] == "text/event-stream"
    assert "last-event-id" not in first.headers
    assert second.headers["last-event-id"] == "2"


def test_handler_exception_does_not_kill_listener() -> None:
    fake = FakeBridge([b'data: {"n": 1}\n\ndata: {"n": 2}\n\n'])
    seen: list = []

    def handler(payload: dict) -> None:
        seen.append(payload)
        raise ValueError("boom")

    listener = SSEListener("http://bridge.test", handler, transport=httpx.MockTransport(fake))
    listener.start()
    try:
        assert wait_until(lambda: len(seen) >= 2)
        assert listener.is_alive()
    finally:
        listener.stop()


def test_listener_backs_off_on_http_error_and_stops() -> None:
    fake = FakeBridge([b"no"], status=503)
    listener = SSEListener("http://bridge.test", lambda p: None,
                           transport=httpx.MockTransport(fake))
    listener.start()
    time.sleep(0.5)  # backoff 0.2 s then 0.4 s: two or three attempts, not hundreds
    listener.stop()
    assert not listener.is_alive()
    assert 1 <= len(fake.requests) <= 4
    assert not listener.connected.is_set()


def test_stop_before_start_thread_and_twice() -> None:
    listener = SSEListener("http://bridge.test", lambda p: None,
                           transport=httpx.MockTransport(FakeBridge([b""])))
    listener.start()
    listener.stop()
    listener.stop()
    assert not listener.is_alive()
