"""TLS to Redis end to end: a real redis-server on a TLS-only port with a CA made here,
ACL users, a bridge and an edge on `rediss://` URLs, calls on the lean hot path.

Before: `rediss://` fell back to redis-py on the hot path and Celery/kombu was never
given TLS options, and `services` could not start a TLS Redis at all.
"""
from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import redis

import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import services
from radical.edge.app import tls
from radical.edge.app.pipelined import Commands
from tls_certs import make_tls_files


@pytest.fixture(scope="module")
def tls_stack(log_dir: Path, tmp_path_factory) -> Iterator[dict]:
    files = make_tls_files(tmp_path_factory.mktemp("redis-tls"))
    started: list[services.Service] = []
    try:
        rs = services.start_redis(log_dir=log_dir, secure=True, tls=files)
        started.append(rs)
        bridge = services.start_bridge(rs.extra["bridge_url"], log_dir=log_dir)
        started.append(bridge)
        edge_url = services.create_edge_user(rs.extra["admin_url"], "tlsedge")
        started.append(services.start_edge(edge_url, "tlsedge", "echo", log_dir,
                                           bridge_url=bridge.extra["url"]))
        yield {"redis": rs, "bridge": bridge, "files": files, "edge_url": edge_url}
    finally:
        for svc in reversed(started):
            svc.stop()


def test_calls_sessions_and_notifications_over_tls(tls_stack):
    url = tls_stack["bridge"].extra["url"]
    assert tls_stack["edge_url"].startswith("rediss://")
    with httpx.Client(base_url=url, timeout=30, headers=authed.AUTH) as http:
        for i in range(20):
            r = http.get(f"/tlsedge/echo/echo/{i}")
            assert r.status_code == 200 and r.json()["rest"] == str(i), r.text
        sid = http.post("/tlsedge/echo/register_session", json={"greeting": "tls"}).json()["sid"]
        assert http.get(f"/tlsedge/echo/greet/{sid}").json()["greeting"] == "tls"
        assert http.post("/tlsedge/echo/notify", json={"n": 3}).json() == {"sent": 6}
    admin = redis.Redis.from_url(tls_stack["redis"].extra["admin_url"], socket_timeout=5)
    assert admin.xlen("redge:notifications") >= 6
    assert admin.acl_log() == []


def test_redis_speaks_only_tls(tls_stack):
    port = tls_stack["redis"].extra["port"]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        sock.settimeout(5)
        try:
            answer = sock.recv(100)
        except (ConnectionResetError, socket.timeout):
            answer = b""
    assert not answer.startswith(b"+PONG") and b"NOAUTH" not in answer


def test_server_certificate_is_verified(tls_stack):
    """Without the CA the client refuses the server (no silent CERT_NONE)."""
    url = tls_stack["redis"].extra["admin_url"].split("?")[0]
    with pytest.raises(redis.ConnectionError) as err:
        redis.Redis.from_url(url, socket_timeout=5).ping()
    assert "certificate verify failed" in str(err.value).lower()


def test_hot_path_uses_the_lean_tls_connection(tls_stack):
    import asyncio

    url = tls_stack["redis"].extra["admin_url"]
    ctx = tls.context(url)
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED

    async def go() -> bytes:
        cmds = Commands(None, url, 5.0)  # type: ignore[arg-type]
        assert cmds._lean is not None
        try:
            return await cmds.call("PING")
        finally:
            await cmds.close()

    assert asyncio.run(go()) in (b"PONG", "PONG")
