"""Redis is not the trust boundary: ACL users keep clients from injecting, stealing or
announcing (real Redis with ACLs, real bridge and edges, rules from app/acl.py).

Before: anyone reaching Redis could LPUSH a call into `edge.<name>`, BRPOP calls away from
an edge, write a fake announcement, and a second bridge without credentials drove every edge.
"""
from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import redis
from redis.exceptions import AuthenticationError, NoPermissionError

import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import services
from radical.edge.app import acl, keys
from radical.edge.app.pipelined import encode


class Stack:
    def __init__(self, redis_svc: services.Service, bridge: services.Service) -> None:
        self.redis_svc, self.bridge = redis_svc, bridge
        self.edge_urls: dict[str, str] = {}

    @property
    def base_url(self) -> str:
        return self.redis_svc.extra["base_url"]

    def client(self, url: str | None = None) -> redis.Redis:
        return redis.Redis.from_url(url or self.base_url, socket_timeout=5)


@pytest.fixture(scope="module")
def stack(log_dir: Path) -> Iterator[Stack]:
    started: list[services.Service] = []
    try:
        redis_svc = services.start_redis(log_dir=log_dir, secure=True)
        started.append(redis_svc)
        bridge = services.start_bridge(redis_svc.extra["bridge_url"], log_dir=log_dir)
        started.append(bridge)
        st = Stack(redis_svc, bridge)
        for name in ("alpha", "beta"):
            url = services.create_edge_user(redis_svc.extra["admin_url"], name)
            st.edge_urls[name] = url
            started.append(services.start_edge(url, name, "echo", log_dir,
                                               bridge_url=bridge.extra["url"]))
        yield st
    finally:
        for svc in reversed(started):
            svc.stop()


def fake_call() -> bytes:
    return b'{"body": "", "headers": {"task": "radical.edge.call", "id": "x"}}'


def test_edges_work_through_the_bridge_under_acls(stack):
    for name in ("alpha", "beta"):
        r = authed.get(f"{stack.bridge.extra['url']}/{name}/echo/echo/hi", timeout=30)
        assert r.status_code == 200, r.text
    # each published its API description (keys.api_doc) under its ACL user
    doc = authed.get(f"{stack.bridge.extra['url']}/openapi.json", timeout=30).json()
    op = doc["paths"]["/{edge}/echo/greet/{sid}"]["get"]
    assert {"alpha", "beta"} <= set(op["parameters"][0]["schema"]["enum"])
    assert stack.client(stack.redis_svc.extra["admin_url"]).acl_log() == []


def test_anonymous_client_can_do_nothing(stack):
    port = stack.redis_svc.extra["port"]
    for command in (("LPUSH", keys.edge_queue("alpha"), fake_call()),
                    ("BRPOP", keys.edge_queue("alpha"), 1),
                    ("SET", keys.edge_info("evil"), b"{}"),
                    ("PUBLISH", keys.TOPOLOGY_CHANNEL, b"join:evil")):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(encode(command))
            assert sock.recv(200).startswith(b"-NOAUTH"), command
    with pytest.raises(AuthenticationError):
        stack.client(stack.base_url.replace("redis://", "redis://default:x@")).ping()


@pytest.mark.parametrize("command", [
    pytest.param(("LPUSH", keys.edge_queue("alpha"), fake_call()), id="inject-call"),
    pytest.param(("RPUSH", keys.edge_queue("alpha"), fake_call()), id="inject-call-head"),
    pytest.param(("BRPOP", keys.edge_queue("alpha"), 1), id="steal-call"),
    pytest.param(("LRANGE", keys.edge_queue("alpha"), 0, -1), id="read-queue"),
    pytest.param(("DEL", keys.edge_queue("alpha")), id="purge-queue"),
    pytest.param(("SET", keys.edge_info("alpha"), b"{}"), id="announce-other"),
    pytest.param(("SET", keys.edge_info("evil"), b"{}"), id="announce-new-name"),
    pytest.param(("SET", keys.edge_lease("alpha"), b"me"), id="take-lease"),
    pytest.param(("DEL", keys.edge_lease("alpha")), id="drop-lease"),
    pytest.param(("KEYS", "*"), id="list-keys"),
    pytest.param(("ACL", "SETUSER", "evil", "on", ">pw", "allkeys", "+@all"), id="acl"),
    pytest.param(("CONFIG", "SET", "requirepass", ""), id="config"),
    pytest.param(("FLUSHALL",), id="flush"),
])
def test_another_edges_credentials_cannot_touch_alpha(stack, command):
    beta = stack.client(stack.edge_urls["beta"])
    with pytest.raises(NoPermissionError):
        beta.execute_command(*command)


def test_edge_credentials_allow_its_own_work(stack):
    beta = stack.client(stack.edge_urls["beta"])
    assert beta.get(keys.edge_info("beta"))  # its own announcement
    assert beta.get(keys.edge_info("alpha"))  # others' are readable (topology)
    assert beta.llen(keys.edge_queue("beta")) == 0
    beta.publish(keys.reply_channel(uuid.uuid4().hex), b"x")


def test_bridge_credentials_cannot_administer_redis(stack):
    bridge = stack.client(stack.redis_svc.extra["bridge_url"])
    assert bridge.llen(keys.edge_queue("alpha")) == 0
    for command in (("ACL", "SETUSER", "evil", "on", ">pw", "allkeys", "+@all"),
                    ("CONFIG", "SET", "requirepass", ""), ("FLUSHALL",), ("KEYS", "*")):
        with pytest.raises(NoPermissionError):
            bridge.execute_command(*command)


def test_a_bridge_without_credentials_cannot_drive_edges(stack, make_bridge):
    rogue = make_bridge(redis_url=stack.base_url)
    url = rogue.extra["url"]
    r = authed.post(f"{url}/edge/list", timeout=10)
    assert r.status_code == 200 and r.json()["data"]["edges"] == {}
    r = authed.get(f"{url}/alpha/echo/echo/hi", timeout=30)
    assert r.status_code in (404, 503), r.text
    # the real bridge is unaffected
    r = authed.get(f"{stack.bridge.extra['url']}/alpha/echo/echo/hi", timeout=30)
    assert r.status_code == 200


def test_acl_rules_name_no_other_edge(stack):
    rules = " ".join(acl.edge_rules("beta"))
    assert "alpha" not in rules and "~*" not in rules.split() and "allkeys" not in rules
    assert f"~{keys.edge_queue('beta')}" in rules.split()
