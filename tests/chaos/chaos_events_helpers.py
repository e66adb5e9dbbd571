"""Helpers of the event chaos tests: SSE collectors that count by sequence number, burst
generation through the echo plugin, a never-reading raw client and an RSS sampler."""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import httpx
import orjson
import psutil

import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge.sdk.sse import SSEParser

TOPIC = "burst"


def start_burst(bridge_url: str, edge: str, n: int, tag: str, rate: float = 0.0,
                pad: int = 0) -> None:
    """Ask the echo plugin on `edge` to emit `n` notifications {tag, seq} (it answers at once)."""
    r = authed.post(f"{bridge_url}/{edge}/echo/burst",
                   json={"n": n, "tag": tag, "rate": rate, "pad": pad}, timeout=30)
    r.raise_for_status()


@dataclass
class Collector:
    """Follows ``/events`` of the first answering bridge in `urls()`, resumes with
    ``Last-Event-ID`` after any failure (possibly on another bridge) and records the `seq`
    of every `burst` notification carrying `tag`, every `gap` event and the resume times."""

    urls: Callable[[], list[str]]
    tag: str
    delay: float = 0.0  # seconds slept per event: a slow reader
    last_event_id: str | None = None
    seqs: list[int] = field(default_factory=list)
    gaps: list[dict] = field(default_factory=list)
    resume_seconds: list[float] = field(default_factory=list)
    connects: int = 0

    def __post_init__(self) -> None:
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"collect-{self.tag}")
        self._response: httpx.Response | None = None
        self._lost_at: float | None = None

    # -- control ---------------------------------------------------------------------------
    def start(self) -> "Collector":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            response = self._response
        if response is not None:
            try:
                stream = response.extensions.get("network_stream")
                sock = stream.get_extra_info("socket") if stream else None
                if sock is not None:
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(10)

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(set(self.seqs)) >= count:
                return True
            time.sleep(0.1)
        return False

    def stats(self, n: int) -> dict:
        unique = set(self.seqs)
        return {"received": len(self.seqs), "unique": len(unique),
                "duplicates": len(self.seqs) - len(unique),
                "lost": len(set(range(n)) - unique), "gaps": len(self.gaps)}

    # -- thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            for url in self.urls():
                if self._stop.is_set():
                    return
                try:
                    self._follow(url)
                except (httpx.HTTPError, OSError, RuntimeError):
                    pass
                if self._lost_at is None:
                    self._lost_at = time.monotonic()
            self._stop.wait(0.2)

    def _follow(self, url: str) -> None:
        headers = {"Accept": "text/event-stream"}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        parser = SSEParser()
        timeout = httpx.Timeout(5.0, read=30.0)
        with httpx.stream("GET", f"{url}/events", headers={**authed.AUTH, **headers},
                          timeout=timeout) as r:
            if r.status_code != 200:
                return
            with self._lock:
                self._response = r
            self.connects += 1
            resumed = False
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                event = parser.feed_line(line)
                if event is None:
                    continue
                if event.id:
                    self.last_event_id = event.id
                msg = orjson.loads(event.data)
                self.connected.set()
                if event.event == "gap":
                    self.gaps.append(msg["data"])
                    continue
                if msg.get("topic") != "notification":
                    continue
                note = msg["data"]
                if note.get("topic") != TOPIC or note["data"].get("tag") != self.tag:
                    continue
                if not resumed and self._lost_at is not None:
                    self.resume_seconds.append(time.monotonic() - self._lost_at)
                    self._lost_at = None
                resumed = True
                self.seqs.append(note["data"]["seq"])
                if self.delay:
                    time.sleep(self.delay)


class StalledClient:
    """A raw HTTP client that opens ``/events`` with a tiny receive buffer and never reads."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Accept: text/event-stream\r\n\r\n")
        self.local_port = self.sock.getsockname()[1]

    def server_side_open(self, server_pid: int) -> bool:
        """Whether the server process still holds its end of this connection open."""
        for conn in psutil.Process(server_pid).net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == self.local_port:
                return conn.status == psutil.CONN_ESTABLISHED
        return False

    def close(self) -> None:
        self.sock.close()


class RssSampler(threading.Thread):
    """Peak RSS (MiB) of a process, sampled every 100 ms until `stop()`."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.1):
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss / 2**20)
            except psutil.Error:
                return

    def stop(self) -> float:
        self._stop_event.set()
        self.join(2)
        return self.peak
