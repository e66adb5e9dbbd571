"""Identities and scopes, route by route, on a real bridge and edge: named tokens (CLI and
API), read/submit/admin, session ownership, revocation, expiry and the audit log."""
from __future__ import annotations

import subprocess
import sys
import uuid

import httpx
import pytest

import authed
from authed import new_token
from radical.edge import services


@pytest.fixture(scope="module")
def scoped_edge(module_edges):
    return module_edges(name="scoped", plugins="echo,sysinfo")


def as_(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def users(bridge_url):
    tag = uuid.uuid4().hex[:6]
    return {name: new_token(bridge_url, f"{name}-{tag}", scope)
            for name, scope in [("rita", "read"), ("alice", "submit"), ("bob", "submit"),
                                ("ada", "admin")]}


def call(bridge_url, who, method, path, **kw):
    return httpx.request(method, bridge_url + path, headers=as_(who), timeout=20, **kw)


def test_read_scope_reads_only(bridge_url, scoped_edge, users):
    rita = users["rita"]
    assert call(bridge_url, rita, "POST", "/edge/list").status_code == 200
    assert call(bridge_url, rita, "GET", "/scoped/sysinfo/version").status_code == 200
    for method, path in [("POST", "/scoped/echo/register_session"),
                         ("POST", "/scoped/echo/echo/x"), ("PUT", "/scoped/echo/echo/x"),
                         ("DELETE", "/scoped/echo/echo/x"), ("POST", "/edge/disconnect/scoped"),
                         ("POST", "/bridge/terminate"), ("GET", "/bridge/tokens")]:
        r = call(bridge_url, rita, method, path, json={})
        assert r.status_code == 403, (method, path, r.text)
        assert "needs" in r.json()["detail"]


def test_submit_scope_runs_work_but_administers_nothing(bridge_url, scoped_edge, users):
    alice = users["alice"]
    r = call(bridge_url, alice, "POST", "/scoped/echo/echo/x", json={"a": 1})
    assert r.status_code == 200
    assert r.json()["identity"]["user"].startswith("alice-")  # the edge knows who called
    assert r.json()["identity"]["scope"] == "submit"
    for method, path in [("POST", "/edge/disconnect/scoped"), ("POST", "/bridge/terminate"),
                         ("POST", "/bridge/tokens"), ("GET", "/bridge/audit")]:
        assert call(bridge_url, alice, method, path, json={}).status_code == 403, path
    assert services.list_edges(bridge_url)["scoped"]  # still there


def test_admin_may_administer(bridge_url, make_edge, make_bridge, users):
    ada = users["ada"]
    make_edge("sysinfo", name="to-go")
    r = call(bridge_url, ada, "POST", "/edge/disconnect/to-go")
    assert r.status_code == 200 and r.json()["status"] == "shutdown"
    extra = make_bridge()
    r = httpx.post(f"{extra.extra['url']}/bridge/terminate", headers=as_(ada), timeout=10)
    assert r.status_code == 200
    services.wait_until(lambda: not extra.alive(), 20, "terminated bridge to exit")


def test_sessions_belong_to_their_creator(bridge_url, scoped_edge, users):
    alice, bob, ada = users["alice"], users["bob"], users["ada"]
    sid = call(bridge_url, alice, "POST", "/scoped/echo/register_session",
               json={"greeting": "hi"}).json()["sid"]
    assert call(bridge_url, alice, "GET", f"/scoped/echo/greet/{sid}").status_code == 200
    r = call(bridge_url, bob, "GET", f"/scoped/echo/greet/{sid}")
    assert r.status_code == 403 and "another user" in r.json()["detail"]
    assert call(bridge_url, bob, "POST",
                f"/scoped/echo/unregister_session/{sid}").status_code == 403
    assert sid not in call(bridge_url, bob, "GET", "/scoped/echo/list_sessions").json()["sessions"]
    assert sid in call(bridge_url, alice, "GET", "/scoped/echo/list_sessions").json()["sessions"]
    assert sid in call(bridge_url, ada, "GET", "/scoped/echo/list_sessions").json()["sessions"]
    assert call(bridge_url, ada, "GET", f"/scoped/echo/greet/{sid}").status_code == 200
    assert call(bridge_url, alice, "POST",
                f"/scoped/echo/unregister_session/{sid}").status_code == 200


def test_revoked_and_expired_tokens_refused(bridge_url, scoped_edge):
    tag = uuid.uuid4().hex[:6]
    gone = new_token(bridge_url, f"gone-{tag}", "read")
    brief = new_token(bridge_url, f"brief-{tag}", "read", expires="2s")
    assert call(bridge_url, gone, "POST", "/edge/list").status_code == 200
    assert call(bridge_url, brief, "POST", "/edge/list").status_code == 200
    r = authed.request("DELETE", f"{bridge_url}/bridge/tokens/gone-{tag}", timeout=10)
    assert r.status_code == 200 and r.json()["revoked"] == 1
    assert call(bridge_url, gone, "POST", "/edge/list").status_code == 401
    services.wait_until(lambda: call(bridge_url, brief, "POST", "/edge/list").status_code == 401,
                        15, "the 2 s token to expire")
    listed = authed.get(f"{bridge_url}/bridge/tokens", timeout=10).json()["tokens"]
    users_listed = {t["user"] for t in listed}
    assert f"gone-{tag}" not in users_listed and f"brief-{tag}" not in users_listed
    assert all("token" not in t for t in listed)  # only hashes are kept


def test_token_cli_create_list_revoke(bridge_url, scoped_edge):
    user = f"cli-{uuid.uuid4().hex[:6]}"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "radical.edge.cli", "token", *args,
                               "--url", bridge_url], capture_output=True, text=True, timeout=60)

    made = cli("create", "--user", user, "--scope", "read", "--expires", "30d", "-q")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert call(bridge_url, token, "POST", "/edge/list").status_code == 200
    listed = cli("list")
    assert user in listed.stdout and token not in listed.stdout
    assert cli("revoke", user).returncode == 0
    assert call(bridge_url, token, "POST", "/edge/list").status_code == 401
    # a non-admin cannot manage tokens through the CLI either
    import os
    env = {**os.environ, "RADICAL_EDGE_TOKEN": new_token(bridge_url, user, "submit")}
    r = subprocess.run([sys.executable, "-m", "radical.edge.cli", "token", "list", "--url",
                        bridge_url], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode != 0 and "403" in r.stderr


def test_mutating_calls_are_audited(bridge, bridge_url, scoped_edge, users):
    bob = users["bob"]
    tag = uuid.uuid4().hex
    assert call(bridge_url, bob, "POST", "/edge/list", json={}).status_code == 200  # a read
    assert call(bridge_url, bob, "POST", f"/scoped/echo/echo/{tag}", json={}).status_code == 200
    assert call(bridge_url, bob, "GET", f"/scoped/echo/echo/read-{tag}").status_code == 200

    def entry() -> dict | None:
        got = authed.get(f"{bridge_url}/bridge/audit", params={"count": 500}, timeout=10)
        return next((e for e in got.json()["entries"] if tag in e["path"]), None)

    services.wait_until(lambda: entry() is not None, 10, "the audit entry")
    e = entry()
    assert e["user"].startswith("bob-") and e["scope"] == "submit"
    assert (e["edge"], e["plugin"], e["method"], e["status"]) == ("scoped", "echo", "POST", "200")
    assert float(e["time"]) > 0
    entries = authed.get(f"{bridge_url}/bridge/audit", params={"count": 500}).json()["entries"]
    assert not any(f"read-{tag}" in x["path"] for x in entries)  # reads are not audited
    # ... nor the original's listing, a POST (recorded before the call above, in order)
    assert not any(x["path"] == "/edge/list" and x["user"] == e["user"] for x in entries)
    assert f"POST /scoped/echo/echo/{tag} -> 200" in bridge.log_path.read_text()


def test_bad_token_requests_are_4xx_with_detail(bridge_url):
    for body in ({"user": "x", "scope": "root"}, {"user": "a b", "scope": "read"},
                 {"user": "x", "scope": "read", "expires": "soon"}, {"scope": "read"}):
        r = authed.post(f"{bridge_url}/bridge/tokens", json=body, timeout=10)
        assert r.status_code == 422 and r.json()["detail"], body
    r = authed.request("DELETE", f"{bridge_url}/bridge/tokens/nobody-{uuid.uuid4().hex[:6]}")
    assert r.status_code == 404 and "no token" in r.json()["detail"]
    r = httpx.post(f"{bridge_url}/bridge/login", json={"ticket": "forged"}, timeout=10)
    assert r.status_code == 401 and "login link" in r.json()["detail"]
