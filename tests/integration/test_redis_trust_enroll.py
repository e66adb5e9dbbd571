"""Edge enrollment: a one-time, expiring token for one edge name, redeemed over HTTP(S)
for that edge's own Redis ACL user; the edge never sees a Redis password on its argv.

Before: there was no enrollment; an edge needed the full Redis URL (with any password) on
its command line or environment.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import psutil
import pytest
import redis
from redis.exceptions import NoPermissionError

import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import services
from radical.edge.app import keys

ADMIN = "enroll-admin-token-0123456789"


@pytest.fixture(scope="module")
def enroll_stack(log_dir: Path) -> Iterator[dict]:
    started: list[services.Service] = []
    try:
        rs = services.start_redis(log_dir=log_dir, secure=True)
        started.append(rs)
        bridge = services.start_bridge(
            rs.extra["bridge_url"], log_dir=log_dir, token=ADMIN,
            env={"RADICAL_EDGE_ENROLL_REDIS_URL": rs.extra["enroll_url"]})
        started.append(bridge)
        yield {"redis": rs, "bridge": bridge, "url": bridge.extra["url"], "started": started}
    finally:
        for svc in reversed(started):
            svc.stop()


def issue(url: str, name: str, token: str | None = ADMIN, **body) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return authed.post(f"{url}/edge/enroll", json={"name": name, **body}, headers=headers,
                      timeout=10)


def redeem(url: str, name: str, token: str) -> httpx.Response:
    return authed.post(f"{url}/edge/enroll/redeem", json={"name": name, "token": token},
                      timeout=10)


def test_enrolled_edge_runs_without_a_redis_password_on_argv(enroll_stack, log_dir):
    url = enroll_stack["url"]
    token = issue(url, "enrolled").json()["token"]
    edge = services.start_enrolled_edge(url, "enrolled", token, "echo", log_dir,
                                        bridge_token=ADMIN)
    enroll_stack["started"].append(edge)
    r = authed.get(f"{url}/enrolled/echo/echo/x", headers={"Authorization": f"Bearer {ADMIN}"},
                  timeout=30)
    assert r.status_code == 200, r.text
    argv = " ".join(psutil.Process(edge.pid).cmdline())
    assert "redis://" not in argv and "rediss://" not in argv and token not in argv
    # the token was used up
    again = redeem(url, "enrolled", token)
    assert again.status_code == 403 and "already used" in again.json()["detail"]


def test_token_is_single_use(enroll_stack):
    url = enroll_stack["url"]
    token = issue(url, "once").json()["token"]
    first = redeem(url, "once", token)
    assert first.status_code == 200, first.text
    assert first.json()["redis_url"].startswith("redis://")
    second = redeem(url, "once", token)
    assert second.status_code == 403, second.text


def test_token_expires(enroll_stack):
    url = enroll_stack["url"]
    token = issue(url, "shortlived", ttl=0.5).json()["token"]
    time.sleep(1.0)  # past the token's Redis TTL
    r = redeem(url, "shortlived", token)
    assert r.status_code == 403 and "expired" in r.json()["detail"]


def test_token_is_bound_to_its_name(enroll_stack):
    url = enroll_stack["url"]
    token = issue(url, "rightname").json()["token"]
    r = redeem(url, "othername", token)
    assert r.status_code == 403 and "another edge name" in r.json()["detail"]
    assert redeem(url, "rightname", token).status_code == 403  # burnt by the misuse


def test_redeemed_credentials_act_only_as_that_edge(enroll_stack):
    url = enroll_stack["url"]
    token = issue(url, "narrow").json()["token"]
    redis_url = redeem(url, "narrow", token).json()["redis_url"]
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    assert client.llen(keys.edge_queue("narrow")) == 0
    for command in (("LPUSH", keys.edge_queue("enrolled"), b"x"),
                    ("SET", keys.edge_info("someone"), b"{}"),
                    ("ACL", "SETUSER", "evil", "on", ">pw", "allkeys", "+@all")):
        with pytest.raises(NoPermissionError):
            client.execute_command(*command)


def test_issuing_needs_admin_and_valid_input(enroll_stack):
    url = enroll_stack["url"]
    assert issue(url, "x", token=None).status_code == 401
    assert issue(url, "x", token="wrong").status_code == 401
    bad = issue(url, "bad/name")
    assert bad.status_code == 400 and "invalid edge name" in bad.json()["detail"]
    r = authed.post(f"{url}/edge/enroll", content=b"{", timeout=10,
                   headers={"Authorization": f"Bearer {ADMIN}",
                            "content-type": "application/json"})
    assert r.status_code == 422 and "detail" in r.json()
    r = authed.post(f"{url}/edge/enroll/redeem", json={"name": "x"}, timeout=10)
    assert r.status_code == 422 and "detail" in r.json()
    r = redeem(url, "x", "not-a-real-token-at-all")
    assert r.status_code == 403


def test_cli_enroll_create_writes_a_private_file(enroll_stack, tmp_path):
    out = tmp_path / "token"
    env = {**os.environ, "RADICAL_EDGE_TOKEN": ADMIN}
    r = subprocess.run([sys.executable, "-m", "radical.edge.cli", "enroll", "create", "--name",
                        "clied", "--url", enroll_stack["url"], "--out", str(out)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_mode & 0o077 == 0
    token = out.read_text().strip()
    assert token not in r.stdout
    assert redeem(enroll_stack["url"], "clied", token).status_code == 200


def test_batch_wrapper_takes_the_bridge_url_and_enrolls(enroll_stack, log_dir):
    """The wrapper's `--url` is the bridge; the token comes from the job environment."""
    import os
    import subprocess

    root = Path(__file__).resolve().parents[2]
    url = enroll_stack["url"]
    token = issue(url, "wrapped").json()["token"]
    env = {k: v for k, v in os.environ.items() if k != "RADICAL_EDGE_REDIS_URL"}
    env["RADICAL_EDGE_ENROLL_TOKEN"] = token
    log = log_dir / "edge-wrapped.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen([str(root / "scripts" / "radical-edge-wrapper.sh"), "-n",
                                 "wrapped", "--url", url, "-p", "echo", "--log", "-"],
                                stdout=fh, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    svc = services.Service("edge-wrapped", proc, log)
    enroll_stack["started"].append(svc)
    services.wait_for_edge(url, "wrapped", 60, svc, ADMIN)
    r = authed.get(f"{url}/wrapped/echo/echo/w", headers={"Authorization": f"Bearer {ADMIN}"},
                  timeout=30)
    assert r.status_code == 200, r.text
    assert token not in log.read_text(errors="replace")
    assert redeem(url, "wrapped", token).status_code == 403


def test_parent_edge_launches_an_enrolling_child(enroll_stack, log_dir, tmp_path):
    """Under ACLs a child cannot use its parent's credentials: the parent mints a token
    for it (job environment, not arguments) and the child enrolls at the bridge."""
    pytest.importorskip("psij")
    from radical.edge import BridgeClient
    from psij_helpers import child_env, child_log, wait_for

    url = enroll_stack["url"]
    token = issue(url, "parent1").json()["token"]
    parent = services.start_enrolled_edge(
        url, "parent1", token, "psij,sysinfo", log_dir, bridge_token=ADMIN,
        env={"RADICAL_EDGE_PSIJ_DIR": str(tmp_path / "psij")})
    enroll_stack["started"].append(parent)
    bc = BridgeClient(url, token=ADMIN)
    pj = bc.get_edge_client("parent1").get_plugin("psij")
    try:
        sub = pj.submit_tunneled({"arguments": ["-n", "kid1", "-p", "sysinfo"],
                                  "environment": child_env(log_dir)}, "local")
        assert sub["edge_name"] == "kid1"
        wait_for(lambda: "kid1" in services.list_edges(url, ADMIN), 90,
                 what=f"child joins\n{child_log(log_dir, 'kid1')}")
        r = authed.get(f"{url}/kid1/sysinfo/homedir",
                      headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)
        assert r.status_code == 200, r.text
        log = child_log(log_dir, "kid1")
        import re

        assert not re.search(r"rediss?://[^:\s/]+:(?!\*\*@)[^@\s]+@", log), "password logged"
        assert "--enroll " not in log
        pj.cancel_job(sub["job_id"])
        wait_for(lambda: "kid1" not in services.list_edges(url, ADMIN), 30, what="child leaves")
    finally:
        pj.close()
        bc.close()


def test_parent_minted_tokens_never_take_a_live_name(enroll_stack, log_dir):
    import asyncio

    import redis.asyncio as aioredis

    from radical.edge.hpc.launch import enroll as child_enroll

    url = enroll_stack["url"]
    token = issue(url, "liveone").json()["token"]
    edge = services.start_enrolled_edge(url, "liveone", token, "echo", log_dir,
                                        bridge_token=ADMIN)
    enroll_stack["started"].append(edge)
    parent_url = redeem(url, "rogueparent", issue(url, "rogueparent").json()["token"]).json()[
        "redis_url"]

    async def mint(parent: str, child: str) -> str:
        client = aioredis.Redis.from_url(parent_url, socket_timeout=5)
        try:
            return await child_enroll.mint(client, parent, child)
        finally:
            await client.aclose()

    minted = asyncio.run(mint("rogueparent", "liveone"))
    r = authed.post(f"{url}/edge/enroll/redeem",
                   json={"name": "liveone", "token": minted, "parent": "rogueparent"}, timeout=10)
    assert r.status_code == 409, r.text
    with pytest.raises(NoPermissionError):  # nor mint under another edge's prefix
        asyncio.run(mint("liveone", "freshname"))


def test_cli_enroll_finds_the_admin_token_in_the_token_file(enroll_stack, tmp_path):
    """As the README says: on the bridge's host the admin token file is enough."""
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN + "\n")
    token_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k != "RADICAL_EDGE_TOKEN"}
    env["RADICAL_EDGE_TOKEN_FILE"] = str(token_file)
    out = tmp_path / "token"
    r = subprocess.run([sys.executable, "-m", "radical.edge.cli", "enroll", "create", "--name",
                        "filed", "--url", enroll_stack["url"], "--out", str(out)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert redeem(enroll_stack["url"], "filed", out.read_text().strip()).status_code == 200
    env["RADICAL_EDGE_TOKEN_FILE"] = str(tmp_path / "none")  # no token anywhere: one line, 2
    r = subprocess.run([sys.executable, "-m", "radical.edge.cli", "enroll", "create", "--name",
                        "nofile", "--url", enroll_stack["url"]],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
