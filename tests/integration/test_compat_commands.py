"""The original command names on real processes: `radical-edge-bridge`,
`radical-edge-service` with `--url` = the bridge (the edge asks the bridge for its broker),
and the original example's child-edge job spec (`radical-edge-service.py -n NAME -u BRIDGE`)
submitted through psij's local executor."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import BridgeClient, services

BIN = Path(sys.executable).parent
TOKEN = "compat-cmd-token"
#: edges started here must find Redis through the bridge, not inherit it
NO_REDIS_ENV = {"RADICAL_EDGE_REDIS_URL": ""}


def spawn(argv: list[str], log_dir: Path, name: str, env: dict | None = None):
    return services._spawn(name, argv, log_dir, {**NO_REDIS_ENV, **(env or {})})


def test_service_command_finds_redis_through_the_bridge(bridge_url, log_dir):
    name = f"svc{uuid.uuid4().hex[:6]}"
    svc = spawn([str(BIN / "radical-edge-service"), "-n", name, "-u", bridge_url,
                 "-p", "sys", "-l", "info"], log_dir, f"edge-{name}")
    try:
        services.wait_for_edge(bridge_url, name, 40, svc)
        plugins = services.list_edges(bridge_url)[name]["plugins"]
        assert set(plugins) == {"sysinfo"}  # `-p sys`: prefix of sysinfo
        assert plugins["sysinfo"]["namespace"] == f"/{name}/sysinfo"
    finally:
        svc.stop()
    assert svc.proc.returncode is not None


def test_broker_route_is_token_protected(redis_url, log_dir):
    bridge = services.start_bridge(redis_url, log_dir=log_dir, token=TOKEN)
    url = bridge.extra["url"]
    try:
        assert authed.get(f"{url}/bridge/broker", timeout=10).status_code == 401
        ok = authed.get(f"{url}/bridge/broker", timeout=10,
                       headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.json() == {"redis_url": redis_url}
        name = f"tok{uuid.uuid4().hex[:6]}"
        refused = subprocess.run([str(BIN / "radical-edge-service"), "-n", name, "-u", url],
                                 env={**os.environ, **NO_REDIS_ENV}, capture_output=True,
                                 text=True, timeout=60)
        assert refused.returncode == 2 and "HTTP 401" in refused.stderr
        # the original client's way to carry the token: https://:TOKEN@host
        svc = spawn([str(BIN / "radical-edge-service.py"), "-n", name, "-p", "sysinfo",
                     "-u", url.replace("://", f"://:{TOKEN}@")], log_dir, f"edge-{name}")
        try:
            services.wait_for_edge(url, name, 40, svc, token=TOKEN)
        finally:
            svc.stop()
    finally:
        bridge.stop()


def test_bridge_command(redis_url, log_dir):
    port = services.free_port()
    svc = services._spawn(f"obridge-{port}", [str(BIN / "radical-edge-bridge"), "--port",
                                             str(port), "--redis-url", redis_url, "-l", "info",
                                             "-p", "sys"],
                          log_dir)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = authed.post(f"http://127.0.0.1:{port}/edge/list", timeout=2)
                break
            except httpx.HTTPError:
                assert svc.alive() and time.monotonic() < deadline
                time.sleep(0.2)
        assert r.status_code == 200
        hosted = r.json()["data"]["edges"]["bridge"]  # `-p sys`: sysinfo on the bridge
        assert list(hosted["plugins"]) == ["sysinfo"]
    finally:
        svc.stop()


def test_original_child_edge_job_spec_via_psij(bridge_url, log_dir, module_edges, tmp_path):
    parent = module_edges(name=f"par{uuid.uuid4().hex[:6]}", plugins="psij",
                          env={"PATH": f"{BIN}:{os.environ['PATH']}"})
    child = f"{parent.extra['name']}.child"
    bc = BridgeClient(bridge_url)
    pj = bc.get_edge_client(parent.extra["name"]).get_plugin("psij")
    try:
        job_spec = {  # as in the original examples/example_edge_spawn.py
            "executable": "radical-edge-service.py",
            "arguments": ["--url", bridge_url, "--name", child, "-p", "sysinfo"],
            "directory": str(tmp_path),
            # the parent's own Redis URL (in its environment) must not be what the child uses:
            # it finds the broker through the bridge, as in the original
            "environment": NO_REDIS_ENV,
        }
        job = pj.submit_job(job_spec, executor="local")
        try:
            services.wait_for_edge(bridge_url, child, 60)
        except Exception:
            st = pj.get_job_status(job["job_id"])
            pytest.fail(f"child edge never joined: {st['state']} {st['stderr'][-2000:]}")
        si = bc.get_edge_client(child).get_plugin("sysinfo")
        assert si.get_metrics()["system"]["hostname"]
        si.close()
        pj.cancel_job(job["job_id"])
        services.wait_for_edge(bridge_url, child, 30, present=False)
    finally:
        pj.close()
        bc.close()


def test_wrapper_takes_the_bridge_url_again(bridge_url, log_dir):
    name = f"wrp{uuid.uuid4().hex[:6]}"
    wrapper = Path(__file__).resolve().parents[2] / "scripts" / "radical-edge-wrapper.sh"
    svc = spawn(["bash", str(wrapper), "-n", name, "--url", bridge_url,
                 "--log", "-", "-p", "sysinfo"], log_dir, f"edge-{name}")
    try:
        services.wait_for_edge(bridge_url, name, 40, svc)
    finally:
        svc.stop()
    assert "broker from the bridge" in svc.log_path.read_text()


def test_service_tunnel_flag_waits_for_the_port_file(bridge_url, redis_url, log_dir, tmp_path):
    """`--tunnel`: the edge waits for the parent's "<port> <token>" file, then reaches Redis
    on 127.0.0.1:<port> (here: the real Redis port, published late; the broker URL it starts
    from points at a dead port)."""
    name = f"tun{uuid.uuid4().hex[:6]}"
    port_file = tmp_path / f"{name}.port"
    real_port = urlsplit(redis_url).port
    svc = spawn([str(BIN / "radical-edge-service"), "-n", name, "-p", "sysinfo", "--tunnel",
                 "--tunnel-wait", "60"], log_dir, f"edge-{name}",
                env={"RADICAL_EDGE_REDIS_URL": redis_url.replace(f":{real_port}", ":9"),
                     "RADICAL_EDGE_TUNNEL_FILE": str(port_file),
                     "RADICAL_EDGE_TUNNEL_TOKEN": "tok"})
    try:
        time.sleep(1.0)
        assert svc.alive(), "the edge must wait for the tunnel, not fail"
        port_file.write_text(f"{real_port} tok\n")
        services.wait_for_edge(bridge_url, name, 40, svc)
    finally:
        svc.stop()


def test_original_job_spec_through_the_tunnel(bridge_url, redis_url, log_dir, test_sshd,
                                              tmp_path):
    """`submit_tunneled` with the original example's spec (`radical-edge-service.py --url
    BRIDGE --name NAME`): the parent opens the reverse tunnel, the child's `--tunnel` waits
    for the port file, and the child reaches Redis only through the tunnel."""
    from psij_helpers import pid_connections, start_parent, wait_for

    psij_dir = tmp_path / "psij"
    parent = start_parent(redis_url, bridge_url, log_dir, psij_dir,
                          test_sshd.env(tunnel_dir=psij_dir / "tunnels"))
    bc = BridgeClient(bridge_url)
    name = f"ot{uuid.uuid4().hex[:6]}"
    try:
        pj = bc.get_edge_client(parent.extra["name"]).get_plugin("psij")
        sub = pj.submit_tunneled({
            "executable": "radical-edge-service.py",
            "arguments": ["--url", bridge_url, "--name", name, "-p", "sysinfo"],
            "environment": {"PATH": f"{BIN}:{os.environ['PATH']}"},
            "directory": str(tmp_path)}, "local", tunnel=True)
        status = wait_for(lambda: (s := pj.tunnel_status(name))["status"] == "active" and s,
                          60, what="tunnel active")
        services.wait_for_edge(bridge_url, name, 60)
        child_pid = services.list_edges(bridge_url)[name]["pid"]
        remote = pid_connections(child_pid)
        assert ("127.0.0.1", status["port"]) in remote, remote
        assert all(port != urlsplit(redis_url).port for _h, port in remote), remote
        pj.cancel_job(sub["job_id"])
        services.wait_for_edge(bridge_url, name, 30, present=False)
        pj.close()
    finally:
        bc.close()
        parent.stop()
