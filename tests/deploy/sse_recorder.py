"""Notifications an SDK callback received, with arrival times (tests/deploy)."""
from __future__ import annotations

import threading
import time


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
