"""Closed by default: `radical-edge up` and `radical-edge bridge` refuse anonymous callers,
the token lives in a private file the SDK finds, the portal logs in with a single-use link,
and `--no-auth` is explicit and loud. Real Redis, bridges and edges throughout."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import psutil

from radical.edge import BridgeClient, services

from up_helpers import start_up


def _start_up(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, list[str], int, dict]:
    port, redis_port = services.free_port(), services.free_port()
    # no Redis configured: `up` starts a private one (on `redis_port`)
    env = {k: v for k, v in os.environ.items()
           if k not in ("RADICAL_EDGE_TOKEN", "RADICAL_EDGE_REDIS_URL")}
    env.update(RADICAL_EDGE_TOKEN_FILE=str(tmp_path / "home" / ".radical" / "edge" / "token"))
    proc, lines = start_up(["--port", str(port), "--name", "upedge", "--redis-port",
                            str(redis_port), "--log-dir", str(tmp_path / "logs"), *extra], env)
    return proc, lines, port, env


def _stop(proc: subprocess.Popen, children: list) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"orphans left: {alive}"


def test_up_is_closed_by_default_and_the_sdk_finds_the_token(tmp_path, monkeypatch):
    proc, lines, port, env = _start_up(tmp_path)
    try:
        out = "".join(lines)
        assert "starting a private Redis" in out and "Ctrl-C" in out, out
        url = f"http://127.0.0.1:{port}"
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 3  # redis, bridge, edge

        # a private token file was created: 0600 in a 0700 directory
        token_file = Path(env["RADICAL_EDGE_TOKEN_FILE"])
        token = token_file.read_text().strip()
        assert len(token) >= 40
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
        # ... and is neither printed nor on any command line
        assert token not in out
        for child in children:
            assert token not in " ".join(child.cmdline())

        # anonymous callers are refused on every data route
        assert httpx.post(f"{url}/edge/list", timeout=5).status_code == 401
        assert httpx.get(f"{url}/upedge/sysinfo/version", timeout=5).status_code == 401

        # the README's SDK example, unchanged: the SDK reads the token file
        monkeypatch.delenv("RADICAL_EDGE_TOKEN", raising=False)
        monkeypatch.setenv("RADICAL_EDGE_TOKEN_FILE", str(token_file))
        bc = BridgeClient(url)
        try:
            assert bc.list_edges() == ["upedge"]
            si = bc.get_edge_client(bc.list_edges()[0]).get_plugin("sysinfo")
            assert si.get_metrics()["memory"]["total"] > 0
            si.close()
        finally:
            bc.close()

        # the portal link `up` printed logs a browser tab in once; the ticket is in the
        # fragment (never sent to a server) and no cookie is set (cookies ignore ports)
        link = [ln.split(":", 1)[1].strip() for ln in lines if ln.strip().startswith("portal")][0]
        assert link.startswith(f"{url}/#login=")
        ticket = link.split("#login=", 1)[1]
        r = httpx.post(f"{url}/bridge/login", json={"ticket": ticket}, timeout=5)
        assert r.status_code == 200 and "set-cookie" not in r.headers
        assert r.json()["scope"] == "admin"
        tab = {"Authorization": f"Bearer {r.json()['token']}"}
        assert httpx.post(f"{url}/edge/list", headers=tab, timeout=5).status_code == 200
        again = httpx.post(f"{url}/bridge/login", json={"ticket": ticket}, timeout=5)
        assert again.status_code == 401  # single use

        # `radical-edge login` makes another link from the same file
        made = subprocess.run([sys.executable, "-m", "radical.edge.cli", "login", "--url", url],
                              capture_output=True, text=True, timeout=60, env=env)
        assert made.returncode == 0, made.stderr
        assert made.stdout.strip().startswith(f"{url}/#login=")
        _stop(proc, children)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_second_start_reuses_the_token_file(tmp_path, monkeypatch):
    from radical.edge.settings import Settings
    from radical.edge.tokenfile import ensure_token

    monkeypatch.delenv("RADICAL_EDGE_TOKEN", raising=False)
    s = Settings(token_file=str(tmp_path / "d" / "token"))
    first = ensure_token(s)
    assert ensure_token(s) == first
    os.chmod(tmp_path / "d" / "token", 0o644)  # others could read it: refuse to use it
    try:
        ensure_token(s)
    except PermissionError as exc:
        assert "chmod 600" in str(exc)
    else:
        raise AssertionError("a world-readable token file was accepted")


def test_no_auth_is_explicit_and_warns(redis_url, log_dir):
    svc = services.start_bridge(redis_url, log_dir=log_dir, no_auth=True)
    try:
        url = svc.extra["url"]
        r = httpx.post(f"{url}/edge/list", timeout=5)
        assert r.status_code == 200
        assert "WARNING: --no-auth" in svc.log_path.read_text()
    finally:
        svc.stop()


def test_bridge_cli_refuses_anonymous_by_default(redis_url, tmp_path):
    """`radical-edge bridge` with no token configured: makes one, and refuses anonymous calls."""
    port = services.free_port()
    token_file = tmp_path / "edge" / "token"
    env = {k: v for k, v in os.environ.items() if k != "RADICAL_EDGE_TOKEN"}
    env["RADICAL_EDGE_TOKEN_FILE"] = str(token_file)
    log = open(tmp_path / "bridge.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "radical.edge.cli", "bridge", "--port",
                             str(port), "--redis-url", redis_url], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    svc = services.Service("bridge-default", proc, tmp_path / "bridge.log")
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.post(f"{url}/edge/list", timeout=1).status_code > 0
        except httpx.HTTPError:
            return False

    try:
        services.wait_until(answers, 30, "the bridge to answer", svc)
        for method, path in [("POST", "/edge/list"), ("GET", "/events"),
                             ("POST", "/bridge/terminate"), ("GET", "/openapi.json"),
                             ("GET", "/any/echo/version")]:
            r = httpx.request(method, url + path, timeout=5)
            assert r.status_code == 401, (method, path)
            assert r.json()["detail"] == "missing or invalid bearer token"
        assert httpx.get(url + "/", timeout=5).status_code == 200  # the portal shell
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        ok = httpx.post(f"{url}/edge/list", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
    finally:
        svc.stop()
        log.close()
