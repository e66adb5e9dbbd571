"""Web hardening on a real bridge and edge: Host allow-list, Origin check, body types,
sandboxed proxied responses, and credentials in query strings that never reach an edge or
Redis (checked with Redis MONITOR), with single-use SSE tickets instead."""
from __future__ import annotations

import threading
import uuid

import httpx
import pytest
import redis

import authed


@pytest.fixture(scope="module")
def web_edge(module_edges):
    return module_edges(name="webedge", plugins="echo")


def test_forged_host_refused(bridge_url, web_edge):
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.nip.io"):
        r = authed.post(f"{bridge_url}/edge/list", headers={"Host": host}, timeout=5)
        assert r.status_code == 400 and "not allowed" in r.json()["detail"], host
    port = bridge_url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert authed.post(f"{bridge_url}/edge/list", headers={"Host": host}).status_code == 200


def test_cross_site_origin_refused(bridge, bridge_url, web_edge):
    for path in ("/bridge/terminate", "/webedge/echo/register_session", "/edge/list"):
        r = authed.post(bridge_url + path, headers={"Origin": "http://evil.example"}, json={})
        assert r.status_code == 403 and "cross-origin" in r.json()["detail"], path
    assert authed.post(bridge_url + "/webedge/echo/echo/x", json={},
                       headers={"Origin": bridge_url}).status_code == 200
    assert bridge.alive()


def test_form_bodies_refused_415(bridge, bridge_url, web_edge):
    for ctype in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
        for path in ("/bridge/terminate", "/webedge/echo/echo/x"):
            r = authed.post(bridge_url + path, content=b"a=b", headers={"Content-Type": ctype})
            assert r.status_code == 415, (ctype, path)
            assert "application/json" in r.json()["detail"]
    r = authed.post(bridge_url + "/webedge/echo/echo/x", content=b"\x80",
                    headers={"Content-Type": "application/msgpack"})
    assert r.status_code == 200
    assert bridge.alive()


def test_proxied_responses_are_sandboxed(bridge_url, web_edge):
    for path in ("/webedge/echo/echo/x", "/webedge/echo/nope", "/webedge/nosuchplugin/x"):
        r = authed.get(bridge_url + path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        csp = r.headers["content-security-policy"]
        assert "sandbox" in csp and "default-src 'none'" in csp, path


class Monitor:
    """Every command Redis executes while active, as raw text (redis MONITOR)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=10)
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.client.monitor() as m:
            self.ready.set()
            for event in m.listen():
                self.lines.append(str(event.get("command", "")))
                if self.stop.is_set() and "monitor-stop-marker" in self.lines[-1]:
                    return

    def __enter__(self) -> "Monitor":
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        redis.Redis.from_url(self.url, socket_timeout=5).get("monitor-stop-marker")
        self.thread.join(10)

    def text(self) -> str:
        return "\n".join(self.lines)


def test_query_token_never_reaches_edge_or_redis(redis_url, bridge_url, web_edge):
    secret = f"qs-secret-{uuid.uuid4().hex}"
    with Monitor(redis_url) as mon:
        r = authed.get(f"{bridge_url}/webedge/echo/echo/x",
                       params={"a": "1", "token": secret, "ticket": secret})
        assert r.status_code == 200
        assert r.json()["query"] == {"a": "1"}  # the edge saw no token
        marker = uuid.uuid4().hex
        authed.get(f"{bridge_url}/webedge/echo/echo/{marker}")  # a call MONITOR must show
    seen = mon.text()
    assert marker in seen, "MONITOR did not capture the calls"
    assert secret not in seen
    # and alone it is no credential
    assert httpx.get(f"{bridge_url}/webedge/echo/echo/x", params={"token": authed.TOKEN},
                     timeout=5).status_code == 401


def test_sse_ticket_is_single_use_and_stays_out_of_redis(redis_url, bridge_url, web_edge):
    with Monitor(redis_url) as mon:
        ticket = authed.post(f"{bridge_url}/events/ticket").json()["ticket"]
        with httpx.stream("GET", f"{bridge_url}/events", params={"ticket": ticket},
                          timeout=10) as r:
            assert r.status_code == 200
            first = next(line for line in r.iter_lines() if line.startswith("data:"))
            assert '"topology"' in first
        again = httpx.get(f"{bridge_url}/events", params={"ticket": ticket}, timeout=5)
        assert again.status_code == 401
    assert ticket not in mon.text()  # only its hash is stored
    r = httpx.get(f"{bridge_url}/webedge/echo/version", params={"ticket": "x"}, timeout=5)
    assert r.status_code == 401  # tickets open the event stream, nothing else
