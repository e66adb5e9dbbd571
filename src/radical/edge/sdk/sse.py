"""Server-Sent Events for the client: a pure parser and a self-healing listener thread.

The parser follows the WHATWG event-stream rules that matter here (multi-line `data:`,
`id:` persistence, comments, a leading BOM; httpx splits the CR/LF/CRLF lines), so it can
be unit-tested without a network.  The listener keeps one long-lived GET on ``{url}/events`` and reconnects
by itself, because a bridge restart or a proxy idle-timeout must not silently end the
notifications a script waits for.  It sends ``Last-Event-ID`` so the bridge replays
what was missed (from any bridge of the same Redis); when that is impossible the bridge
sends a ``gap`` event, which `BridgeClient` turns into a state refresh.
"""
from __future__ import annotations

import logging
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any, Callable

import httpx

from .errors import json_loads

log = logging.getLogger("radical.edge.sdk.sse")

__all__ = ["SSEEvent", "SSEParser", "SSEListener"]

#: the bridge sends a keep-alive comment every 15 s; silence for three intervals (two
#: missed pings plus slack) means a dead stream worth reconnecting
KEEPALIVE_SECONDS = 15.0
READ_TIMEOUT = 3 * KEEPALIVE_SECONDS
CONNECT_TIMEOUT = 10.0
BACKOFF_MIN = 0.2
BACKOFF_MAX = 5.0


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event: its `data` (lines joined by newline), type and last id."""

    data: str
    event: str = "message"
    id: str | None = None


class SSEParser:
    """Turn event-stream lines into `SSEEvent`s; pure and incremental.

    Fed with already split lines (httpx `iter_lines`).  `last_event_id` survives across
    events, as the spec wants, so a reconnect can resume from it.
    """

    def __init__(self) -> None:
        self.last_event_id: str | None = None
        self.retry_ms: int | None = None
        self._data: list[str] = []
        self._event = ""
        self._first = True

    def feed_line(self, line: str) -> SSEEvent | None:
        """Process one line (without or with its line end); return an event on a blank line."""
        line = line.rstrip("\r\n")
        if self._first:
            self._first = False
            if line.startswith("\ufeff"):
                line = line[1:]
        if not line:
            return self._dispatch()
        if line.startswith(":"):  # a comment (the bridge's keep-alive)
            return None
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif field == "retry":
            if value.isdigit():
                self.retry_ms = int(value)
        # unknown fields are ignored, as the spec says
        return None

    def _dispatch(self) -> SSEEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return SSEEvent(data="\n".join(data), event=event or "message", id=self.last_event_id)

    def reset_stream(self) -> None:
        """Forget a half-received event (after a disconnect); keep `last_event_id`."""
        self._data, self._event = [], ""
        self._first = True


def ssl_context(cert: str | None) -> ssl.SSLContext | bool:
    """`verify=` value for httpx: the given CA/cert file, else the system trust store."""
    return ssl.create_default_context(cafile=cert) if cert else True


class SSEListener:
    """Daemon thread that follows ``{url}/events`` and hands every event's JSON to `handler`.

    `connected` is set once the stream delivered its first event or keep-alive (the bridge
    sends the topology first, so by then it is subscribed), and cleared while reconnecting.
    `stop()` shuts the socket down so a thread blocked in a read ends at once.
    """

    def __init__(self, url: str, handler: Callable[[Any], None], *, token: str | None = None,
                 verify: ssl.SSLContext | bool = True, read_timeout: float = READ_TIMEOUT,
                 connect_timeout: float = CONNECT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/") + "/events"
        self._handler = handler
        self._headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            verify=verify,
            timeout=httpx.Timeout(connect_timeout, read=read_timeout),
            transport=transport,
        )
        self.parser = SSEParser()
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, name="radical-edge-sse", daemon=True)

    @property
    def last_event_id(self) -> str | None:
        return self.parser.last_event_id

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread: set the flag, break the blocked read, join (unless called from it)."""
        self._stop.set()
        with self._lock:
            response = self._response
        if response is not None:
            _shutdown_socket(response)
            try:
                response.close()
            except Exception:  # closing from another thread may race the reader: harmless
                pass
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            self._thread.join(timeout)
        self.connected.clear()
        self._client.close()

    # -- thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        delay = BACKOFF_MIN
        while not self._stop.is_set():
            try:
                if self._stream_once():
                    delay = self._base_delay()  # we were connected: start backing off afresh
            except (httpx.HTTPError, OSError, RuntimeError) as exc:
                if self._stop.is_set():
                    break
                log.debug("SSE %s: %s: %s", self.url, type(exc).__name__, exc)
            finally:
                self.connected.clear()
                with self._lock:
                    self._response = None
                self.parser.reset_stream()
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, BACKOFF_MAX)
        log.debug("SSE listener for %s ended", self.url)

    def _base_delay(self) -> float:
        retry = self.parser.retry_ms
        return min(max(retry / 1000.0, BACKOFF_MIN), BACKOFF_MAX) if retry else BACKOFF_MIN

    def _stream_once(self) -> bool:
        """One connection; returns True when it got as far as receiving data."""
        headers = dict(self._headers)
        if self.parser.last_event_id:
            headers["Last-Event-ID"] = self.parser.last_event_id
        got_data = False
        with self._client.stream("GET", self.url, headers=headers) as response:
            with self._lock:
                if self._stop.is_set():
                    return False
                self._response = response
            if response.status_code != 200:
                response.read()
                level = logging.WARNING if response.status_code in (401, 403) else logging.DEBUG
                log.log(level, "SSE %s answered HTTP %s", self.url, response.status_code)
                return False
            for line in response.iter_lines():
                if self._stop.is_set():
                    return got_data
                event = self.parser.feed_line(line)
                if event is not None or line.startswith(":"):
                    got_data = True
                    self.connected.set()
                if event is not None:
                    self._deliver(event)
        return got_data

    def _deliver(self, event: SSEEvent) -> None:
        try:
            payload = json_loads(event.data)
        except ValueError:
            log.warning("SSE: ignoring non-JSON event data: %.200s", event.data)
            return
        try:
            self._handler(payload)
        except Exception:  # a broken handler must never kill the listener
            log.exception("SSE event handler failed")


def _shutdown_socket(response: httpx.Response) -> None:
    """Wake a reader blocked in recv(): close() alone does not on Linux, shutdown() does."""
    stream = response.extensions.get("network_stream")
    if stream is None:
        return
    try:
        sock = stream.get_extra_info("socket")
        if sock is not None:
            # the plain-socket method: SSLSocket.shutdown would also drop its SSL object
            # under the feet of the reading thread
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except Exception:
        pass
