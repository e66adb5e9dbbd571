"""Notifications as clients receive them, with arrival times (tests/deploy)."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

import httpx

from radical.edge import BridgeClient


class Received:
    """Notifications of one topic, with the time each arrived."""

    def __init__(self) -> None:
        self.items: list[tuple[float, dict]] = []
        self.event = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, edge: str, plugin: str, topic: str, data: dict) -> None:
        with self.lock:
            self.items.append((time.monotonic(), data))
        self.event.set()

    def wait_tag(self, tag: str, timeout: float) -> float:
        """Arrival time of the notification with `tag` (AssertionError after `timeout`)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                for at, data in self.items:
                    if data.get("tag") == tag:
                        return at
            self.event.wait(0.05)
            self.event.clear()
        raise AssertionError(f"notification {tag} not received within {timeout} s")


class RawStream:
    """`GET /events` read line by line in a thread, each line with its arrival time: what
    a proxy passes on, and when, without the SDK's reconnects in between."""

    def __init__(self, client: httpx.Client) -> None:
        self.lines: list[tuple[float, str]] = []
        self.status: int | None = None
        self._client = client
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._client.stream("GET", "/events") as r:
                self.status = r.status_code
                for line in r.iter_lines():
                    self.lines.append((time.monotonic(), line))
        except httpx.HTTPError:
            pass

    def arrived(self, text: str) -> float | None:
        return next((t for t, line in list(self.lines) if text in line), None)

    def close(self) -> None:
        self._client.close()  # ends the stream; the thread follows
        self._thread.join(5)


@contextmanager
def echo_listener(url: str, ca: str, edge: str) -> Iterator[tuple[BridgeClient, Received]]:
    """An SDK client (trusting `ca`) that listens to `edge`'s echo notifications (SSE)."""
    got = Received()
    bc = BridgeClient(url, cert=ca)
    try:
        bc.register_callback(edge, "echo", "async_topic", got)
        assert bc.wait_for_listener(30), f"SSE listener did not connect to {url}"
        yield bc, got
    finally:
        bc.close()
