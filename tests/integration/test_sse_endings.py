"""How SSE streams end is quiet: a client leaving mid-stream, and a bridge shutting down with
clients connected, leave no ERROR in the bridge's log, and a shutdown ends each stream
cleanly (the last chunk is sent: clients see an end of stream, not a broken body).

Before the fix, a bridge stopping with an open `/events` stream logged uvicorn's "ASGI
callable returned without completing response" and its clients got "incomplete chunked
read". Real Redis, bridges, an echo edge and raw httpx / socket clients.
"""
from __future__ import annotations

import socket
import struct
import threading

import httpx
import pytest

import authed
from test_observability import sample, scrape
from waiting import wait_for

from radical.edge import services

#: what must never be in the log of a bridge whose SSE clients came and went
BAD = ("ASGI callable returned without", " ERROR ", "Traceback")


def bad_lines(svc: services.Service) -> list[str]:
    return [line for line in svc.log_path.read_text(errors="replace").splitlines()
            if any(b in line for b in BAD)]


class Reader(threading.Thread):
    """Follows `/events` until the stream ends; `ended` is "clean" or the error."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.first = threading.Event()
        self.ended: str | None = None

    def run(self) -> None:
        try:
            with httpx.Client(timeout=30) as c, \
                    c.stream("GET", f"{self.url}/events", headers=authed.AUTH) as resp:
                for line in resp.iter_lines():
                    if line.startswith("data:"):
                        self.first.set()
            self.ended = "clean"
        except httpx.HTTPError as exc:
            self.ended = f"{type(exc).__name__}: {exc}"


def test_clients_leaving_mid_stream_log_no_error(make_bridge, make_edge):
    bridge = make_bridge()
    url = bridge.extra["url"]
    edge = make_edge("echo").extra["name"]
    services.wait_for_edge(url, edge, 30)
    for i in range(3):  # httpx clients that close while notifications are pouring in
        with httpx.Client(timeout=30) as c, \
                c.stream("GET", f"{url}/events", headers=authed.AUTH) as resp:
            r = authed.post(f"{url}/{edge}/echo/burst",
                            json={"n": 2000, "tag": f"t{i}", "pad": 500}, timeout=30)
            assert r.status_code == 200, r.text
            got = 0
            for chunk in resp.iter_bytes():
                got += len(chunk)
                if got > 100_000:
                    break
    sock = socket.create_connection(("127.0.0.1", bridge.extra["port"]))
    sock.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Authorization: {authed.AUTH['Authorization']}\r\n\r\n".encode())
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset, not a FIN: the rudest way to leave
    wait_for(lambda: sample(scrape(url), "radical_edge_sse_clients") == 0, 30,
             what="the bridge to notice every SSE client left")
    assert bad_lines(bridge) == []


@pytest.mark.parametrize("clients", [1, 3])
def test_bridge_shutdown_ends_streams_cleanly(make_bridge, clients):
    bridge = make_bridge()
    readers = [Reader(bridge.extra["url"]) for _ in range(clients)]
    for r in readers:
        r.start()
    for r in readers:
        assert r.first.wait(15), "no first event"
    bridge.stop()  # SIGTERM: uvicorn's graceful shutdown
    assert not bridge.alive()
    for r in readers:
        r.join(15)
    assert bad_lines(bridge) == []
    assert [r.ended for r in readers] == ["clean"] * clients
