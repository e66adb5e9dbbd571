"""Debian's nginx with TLS (a test CA) and the shipped site file in front of TWO real bridges
on one private Redis, with one real edge, set up as docs/deploy.md says:

* proxied calls and SSE go through nginx and land on both bridges;
* SSE through nginx delivers a notification at once (not when a buffer fills);
* auth and the bridge's Host allow-list work through the proxy;
* a bridge killed with SIGKILL: nginx sends calls to the other one and SSE clients resume
  there without losing the notification sent meanwhile.
"""
from __future__ import annotations

import os
import ssl
import time
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import pytest

import authed
from nginx_proxy import nginx_binary, start_nginx, upstreams_served, wait_listening
from sse_recorder import RawStream, echo_listener
from tls_certs import make_tls_files
from waiting import wait_for

from radical.edge import services

pytestmark = pytest.mark.skipif(nginx_binary() is None,
                                reason="nginx not installed (scripts/setup.sh --dev)")

#: long enough that an SSE ping comment cannot be what pushes an event out of a buffer
PING_SECONDS = "60"


class Stack:
    """What the module's tests share: bridges, edge, nginx and the URL clients use."""

    def __init__(self, tmp: Path, redis_url: str, log_dir: Path) -> None:
        self.tls = make_tls_files(tmp / "tls")
        self.port = services.free_port()
        self.url = f"https://localhost:{self.port}"
        # docs/deploy.md: every bridge gets the public URL (Host allow-list, origin) and
        # binds loopback; all share one Redis
        env = {"RADICAL_BRIDGE_URL": self.url, "RADICAL_EDGE_SSE_PING_SECONDS": PING_SECONDS}
        self.bridges = [services.start_bridge(redis_url, log_dir=log_dir, env=env)
                        for _ in range(2)]
        self.edge_name = f"ng{uuid.uuid4().hex[:6]}"
        self.edge = services.start_edge(redis_url, self.edge_name, "echo,sysinfo", log_dir,
                                        bridge_url=self.bridges[0].extra["url"])
        upstreams = [f"127.0.0.1:{b.extra['port']}" for b in self.bridges]
        self.nginx = start_nginx(tmp / "nginx", f"127.0.0.1:{self.port}", upstreams, self.tls)
        wait_listening(self.nginx, "127.0.0.1", self.port)
        self.verify = ssl.create_default_context(cafile=self.tls.ca)

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.verify, timeout=30,
                            headers={**authed.AUTH, **headers})

    def stop(self) -> None:
        for svc in (self.nginx, self.edge, *self.bridges):
            svc.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str,
          log_dir: Path) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("nginx-stack"), redis_url, log_dir)
    yield s
    s.stop()


def bridge_ports(stack: Stack) -> set[str]:
    return {f"127.0.0.1:{b.extra['port']}" for b in stack.bridges}


def logged(stack: Stack, path_part: str, count: int) -> list[str]:
    """The upstreams of the logged requests for `path_part`, once `count` are logged (nginx
    writes a request's line after its answer went out, so the last may lag the response)."""
    log = stack.nginx.extra["access_log"]

    def enough() -> list[str] | None:
        served = upstreams_served(log, path_part)
        return served if len(served) >= count else None

    return wait_for(enough, 10, what=f"{count} access log lines")


def test_calls_through_nginx_land_on_both_bridges(stack: Stack) -> None:
    with stack.client() as http:
        ids = set()
        for _ in range(6):
            r = http.post("/edge/list")
            assert r.status_code == 200, r.text
            data = r.json()["data"]
            assert data["bridge"]["url"] == stack.url  # the public URL, not a bridge's own
            assert stack.edge_name in data["edges"]
            ids.add(data["bridge"]["id"])
        assert len(ids) == 2, "round robin over two bridges should reach both"
        tag = uuid.uuid4().hex[:8]
        for i in range(6):
            r = http.get(f"/{stack.edge_name}/echo/echo/{tag}/{i}", params={"q": "ü"})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["rest"] == f"{tag}/{i}" and body["query"] == {"q": "ü"}
            assert body["identity"]["user"], body  # the caller's identity crossed the proxy
            assert "total;dur=" in r.headers["server-timing"]  # the bridge's own header
        r = http.post(f"/{stack.edge_name}/echo/echo/{tag}/post", json={"k": 1})
        assert r.status_code == 200 and r.json()["body"] == '{"k":1}'
    served = logged(stack, f"/echo/echo/{tag}/", 7)
    assert len(served) == 7, served
    assert set(served) == bridge_ports(stack), served


def test_auth_and_host_allow_list_through_nginx(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url, verify=stack.verify, timeout=10) as anon:
        r = anon.post("/edge/list")
        assert r.status_code == 401 and r.json()["detail"], r.text
        r = anon.post("/edge/list", headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401, r.text
        # the 0.2.0 clients' form: the token as HTTP Basic credentials
        r = anon.post("/edge/list", auth=("", authed.TOKEN))
        assert r.status_code == 200, r.text
    # nginx passes the client's Host on: a name the bridge does not serve is refused there
    with stack.client(Host="evil.example.org") as http:
        r = http.post("/edge/list")
        assert r.status_code == 400, r.text
        assert "evil.example.org" in r.json()["detail"]
    # a browser write from the public origin passes the same-origin check, another does not
    with stack.client(Origin=stack.url) as http:
        assert http.post(f"/{stack.edge_name}/echo/echo/o", json={}).status_code == 200
    with stack.client(Origin="https://evil.example.org") as http:
        r = http.post(f"/{stack.edge_name}/echo/echo/o", json={})
        assert r.status_code == 403, r.text


def notify(http: httpx.Client, edge: str, tag: str) -> float:
    sent = time.monotonic()
    r = http.post(f"/{edge}/echo/notify", json={"n": 1, "tag": tag})
    assert r.status_code == 200, r.text
    return sent


def test_sse_through_nginx_is_prompt(stack: Stack) -> None:
    with echo_listener(stack.url, stack.tls.ca, stack.edge_name) as (_bc, got):
        with stack.client() as http:
            for _ in range(3):
                tag = uuid.uuid4().hex[:8]
                sent = notify(http, stack.edge_name, tag)
                # buffered, the small event would sit in nginx until the next ping
                # (PING_SECONDS) or a full buffer: a few seconds is a wide margin
                arrived = got.wait_tag(tag, timeout=5)
                print(f"notification via nginx after {arrived - sent:.3f} s")
        with stack.client() as http, http.stream("GET", "/events") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            assert "content-length" not in r.headers  # streamed, not buffered whole


def _events_location(text: str, *directives: str) -> str:
    """The site with `directives` added to its `location = /events` block."""
    marker = "location = /events {\n"
    assert text.count(marker) == 1
    return text.replace(marker, marker + "".join(f"        {d}\n" for d in directives))


@pytest.mark.parametrize("buffering", ["off (shipped)", "on (control)"])
def test_sse_unbuffered_by_the_shipped_location_alone(stack: Stack, tmp_path: Path,
                                                      buffering: str) -> None:
    """nginx told to ignore the bridge's `X-Accel-Buffering: no`: the shipped location keeps
    events prompt on its own; the control (buffering switched back on) holds them back,
    which shows this test would notice a buffering proxy."""
    shipped = buffering.startswith("off")

    def edit(text: str) -> str:
        text = _events_location(text, "proxy_ignore_headers X-Accel-Buffering;")
        return text if shipped else text.replace("proxy_buffering off;", "proxy_buffering on;")

    port = services.free_port()
    nginx = start_nginx(tmp_path / "nginx", f"127.0.0.1:{port}",
                        [f"127.0.0.1:{b.extra['port']}" for b in stack.bridges if b.alive()],
                        stack.tls, edit=edit)
    stream = None
    try:
        wait_listening(nginx, "127.0.0.1", port)
        url = f"https://localhost:{port}"
        stream = RawStream(httpx.Client(base_url=url, verify=stack.verify, timeout=60,
                                        headers=authed.AUTH))
        with stack.client() as http:
            # a notification every 0.25 s until one comes through (the first ones may go
            # out before the stream is connected; those are never delivered to it)
            sent: dict[str, float] = {}
            end = time.monotonic() + 5
            while time.monotonic() < end and not arrivals(stream, sent):
                tag = uuid.uuid4().hex[:8]
                sent[tag] = notify(http, stack.edge_name, tag)
                step_end = time.monotonic() + 0.25
                while time.monotonic() < step_end and not arrivals(stream, sent):
                    time.sleep(0.02)
            got = arrivals(stream, sent)
            if shipped:
                assert got, "every event held back by nginx"
                tag, delay = got[0]
                assert delay < 2.0, f"event {tag} took {delay:.2f} s through nginx"
                print(f"raw SSE via nginx, bridge header ignored: {delay:.3f} s")
            else:
                assert not got, "control: a buffering nginx passed events at once?"
                # fill nginx's buffers: now the held-back events come out too
                r = http.post(f"/{stack.edge_name}/echo/burst",
                              json={"n": 400, "tag": "fill", "pad": 1000})
                assert r.status_code == 200, r.text
                services.wait_until(lambda: bool(arrivals(stream, sent)), 20,
                                    "held-back events after the buffers filled")
    finally:
        if stream is not None:
            stream.close()
        nginx.stop()


def arrivals(stream: RawStream, sent: dict[str, float]) -> list[tuple[str, float]]:
    """(tag, delay after sending) of each sent notification the raw stream has seen."""
    out = []
    for tag, at in sent.items():
        seen = stream.arrived(tag)
        if seen is not None:
            out.append((tag, seen - at))
    return out


def test_a_killed_bridge_fails_over(stack: Stack) -> None:
    with echo_listener(stack.url, stack.tls.ca, stack.edge_name) as (_bc, got):
        with stack.client() as http:
            before = uuid.uuid4().hex[:8]
            notify(http, stack.edge_name, before)
            got.wait_tag(before, 5)
            victim, survivor = stack.bridges
            victim.kill9()
            tag = uuid.uuid4().hex[:8]
            for i in range(6):  # every call succeeds: nginx skips the dead bridge
                r = http.get(f"/{stack.edge_name}/echo/echo/{tag}/{i}")
                assert r.status_code == 200, r.text
            after = uuid.uuid4().hex[:8]
            notify(http, stack.edge_name, after)
            # the SSE client lost its stream if it was on the victim; it reconnects through
            # nginx to the survivor and resumes from its Last-Event-ID
            got.wait_tag(after, 30)
        served = logged(stack, f"/echo/echo/{tag}/", 6)
        alive = f"127.0.0.1:{survivor.extra['port']}"
        # a request nginx first tried on the dead bridge is logged with both addresses
        assert all(s.split(", ")[-1] == alive for s in served), served
        assert len(served) == 6
        with stack.client() as http:
            assert http.post("/edge/list").json()["data"]["edges"][stack.edge_name]
    assert survivor.alive() and not victim.alive()
    assert os.path.getsize(stack.nginx.extra["access_log"]) > 0
