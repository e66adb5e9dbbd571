"""The bridge's front door (`BridgeGuard`) without a network: host, origin, who, scope, body
type, secret query parameters, audit. A fake token store stands in for Redis."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from radical.edge.app.identity import OWNER, Identity
from radical.edge.bridge_api.auth import BridgeGuard, host_name, needed_scope
from radical.edge.bridge_api.tokens import parse_duration
from radical.edge.settings import Settings

USERS = {b"t": OWNER, b"r": Identity("rita", "read"), b"s": Identity("sam", "submit")}


class FakeTokens:
    async def identify(self, token: bytes):
        if token == b"boom":
            from redis.exceptions import ConnectionError

            raise ConnectionError("Redis is down")
        return USERS.get(token)

    async def redeem_ticket(self, ticket: str, kind: str):
        return Identity("tic", "read") if (ticket, kind) == ("good", "events") else None


class FakeAudit:
    def __init__(self):
        self.entries = []

    def record(self, *entry):
        self.entries.append(entry)


def run(path="/edge/list", method="POST", headers=(), qs=b"", no_auth=False, host=b"127.0.0.1:8000"):
    seen = {}
    audit = FakeAudit()

    async def app(scope, receive, send):
        seen.update(identity=scope.get("identity"), qs=scope["query_string"])
        await send({"type": "http.response.start", "status": 200, "headers": []})

    sent = []

    async def send(msg):
        sent.append(msg)

    api = SimpleNamespace(state=SimpleNamespace(bridge=SimpleNamespace(tokens=FakeTokens(),
                                                                        audit=audit)))
    guard = BridgeGuard(app, api, Settings(no_auth=no_auth))
    hdrs = ([(b"host", host)] if host else []) + list(headers)
    scope = {"type": "http", "path": path, "method": method, "headers": hdrs,
             "query_string": qs, "scheme": "http"}
    asyncio.run(guard(scope, None, send))
    return SimpleNamespace(status=sent[0]["status"], audit=audit.entries, **seen)


def bearer(t: bytes) -> list:
    return [(b"authorization", b"Bearer " + t)]


def test_anonymous_refused_and_tokens_resolved():
    assert run().status == 401
    assert run(headers=bearer(b"x")).status == 401
    ok = run(headers=bearer(b"t"))
    assert ok.status == 200 and ok.identity == OWNER
    assert run(headers=[(b"cookie", b"radical_edge_token=t")]).status == 401  # no cookies
    assert run(path="/bridge/login").status == 200  # the ticket exchange is public...
    assert run(path="/bridge/login", method="GET").status == 401  # ...and POST only
    assert run(path="/", method="GET").status == 200  # the portal shell
    assert run(path="/portal/js/app.js", method="GET").status == 200
    assert run(path="/", method="POST").status == 401


def test_query_token_is_not_a_credential_and_is_stripped():
    assert run(qs=b"token=t").status == 401
    r = run(path="/e/p/x", method="GET", headers=bearer(b"t"), qs=b"a=1&token=t&ticket=z")
    assert r.status == 200 and r.qs == b"a=1"


def test_events_ticket_only_on_events():
    assert run(path="/events", method="GET", qs=b"ticket=good").identity.user == "tic"
    assert run(path="/events", method="GET", qs=b"ticket=bad").status == 401
    assert run(path="/e/p/x", method="GET", qs=b"ticket=good").status == 401


def test_no_auth_serves_anonymous_admin():
    r = run(no_auth=True, path="/bridge/terminate")
    assert r.status == 200 and r.identity.user == "anonymous"


@pytest.mark.parametrize("method,path,scope", [
    ("GET", "/e/p/x", "read"), ("POST", "/edge/list", "read"), ("POST", "/e/p/x", "submit"),
    ("DELETE", "/e/p/x", "submit"), ("POST", "/edge/disconnect/e", "admin"),
    ("POST", "/bridge/terminate", "admin"), ("GET", "/bridge/tokens", "admin"),
    ("POST", "/events/ticket", "read"), ("GET", "/events", "read"),
    ("POST", "/bridge/login-ticket", "read"), ("GET", "/docs", "read"),
    ("GET", "/bridge/audit", "admin"), ("DELETE", "/bridge/tokens/x", "admin"),
    ("POST", "/bridge/some-future-route", "admin"), ("GET", "/edge/whatever", "admin"),
])
def test_route_scopes(method, path, scope):
    assert needed_scope(method, path) == scope


def test_scope_enforced():
    assert run(path="/e/p/register_session", headers=bearer(b"r")).status == 403
    assert run(path="/e/p/register_session", headers=bearer(b"s")).status == 200
    assert run(path="/bridge/terminate", headers=bearer(b"s")).status == 403
    assert run(path="/bridge/terminate", headers=bearer(b"t")).status == 200


def test_host_allow_list():
    assert host_name("[::1]:8000") == "[::1]" and host_name("a.b:1") == "a.b"
    assert run(headers=bearer(b"t"), host=b"evil.example:8000").status == 400
    assert run(headers=bearer(b"t"), host=None).status == 400
    assert run(headers=bearer(b"t"), host=b"localhost:8000").status == 200


def test_origin_and_content_type():
    t = bearer(b"t")
    assert run(headers=t + [(b"origin", b"http://evil.example")]).status == 403
    assert run(headers=t + [(b"origin", b"http://127.0.0.1:8000")]).status == 200
    assert run(method="GET", path="/e/p/x", headers=t + [(b"origin", b"http://x")]).status == 200
    form = [(b"content-type", b"application/x-www-form-urlencoded"), (b"content-length", b"3")]
    assert run(path="/e/p/x", headers=t + form).status == 415
    js = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", b"2")]
    assert run(path="/e/p/x", headers=t + js).status == 200
    assert run(path="/e/p/x", headers=t + [(b"content-length", b"0")]).status == 200


def test_mutating_calls_audited():
    r = run(path="/e/p/x", headers=bearer(b"s"))
    assert r.audit == [("sam", "submit", "POST", "/e/p/x", 200)]
    assert run(path="/e/p/x", method="GET", headers=bearer(b"s")).audit == []


def test_parse_duration():
    assert parse_duration("30d") == 30 * 86400 and parse_duration("90m") == 5400
    assert parse_duration(None) is None and parse_duration(12) == 12
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_identity_validation():
    assert Identity("alice@lab", "submit").allows("read")
    assert not Identity("rita", "read").allows("submit")
    for user, scope in [("", "read"), ("a b", "read"), ("x\nfake audit", "read"),
                        ("ok", "root")]:
        with pytest.raises(ValueError):
            Identity(user, scope)
    assert Identity.from_wire({"user": "a", "scope": "root"}) is None
    assert Identity.from_wire(True) is None  # the old caller-settable `auth: true`


def test_token_store_down_is_503_not_500():
    r = run(headers=bearer(b"boom"))
    assert r.status == 503
