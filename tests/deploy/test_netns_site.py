"""A deployment across "hosts" made of network namespaces (scripts/netns_hosts.sh), set up as
docs/deploy.md describes:

* a Redis host (TLS only, ACL users, bound to its site address only);
* a bridge host: the bridge on its loopback, nginx (the shipped site file, TLS) in front,
  on the site LAN and on the compute LAN, plus the shipped Redis TLS pass-through
  (deploy/nginx/radical-edge-redis-stream.conf) on the compute LAN;
* a login node: an edge with its own Redis ACL user and the psij plugin;
* a compute node that can reach the login node and nginx but has NO route to Redis (a
  connect attempt must fail); its edges are launched as children by the login edge and
  enroll through nginx; their only way to Redis is the login edge's reverse SSH tunnel to
  the compute node's real OpenSSH sshd, or nginx's TLS pass-through.

This process is the "internet": it reaches only nginx (and Redis for setup), and drives
everything through nginx with the SDK: calls to both edges, SSE notifications from both.
Needs root (CI runs as root): under CI=true a missing capability fails instead of skipping.
"""
from __future__ import annotations

import shutil
import ssl
import time
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import pytest

import authed
from netns_site import ComputeSSHD, NetnsSite, can_make_namespaces
from nginx_proxy import STREAM_MODULE, nginx_binary, start_nginx, wait_listening
from waiting import wait_for
from sse_recorder import Received, echo_listener
from tls_certs import make_tls_files

from radical.edge import BridgeClient, services
from radical.edge.hpc.launch import find_wrapper

pytestmark = [
    pytest.mark.skipif(can_make_namespaces() is not None, reason=str(can_make_namespaces())),
    pytest.mark.skipif(nginx_binary() is None, reason="nginx not installed (setup.sh --dev)"),
    pytest.mark.skipif(not STREAM_MODULE.exists(),
                       reason="nginx stream module not installed (libnginx-mod-stream)"),
]
pytest.importorskip("psij")
pytest.importorskip("asyncssh")

NGINX_PORT = 443
BRIDGE_PORT = 8001
REDIS_PROXY_PORT = 6443  # the Redis TLS pass-through (443 of its own address in production)


class Site:
    """Every service of the site, started in its namespace; `stop()` in reverse order."""

    def __init__(self, tmp: Path, log_dir: Path) -> None:
        self.tmp, self.log_dir = tmp, log_dir
        self.started: list[services.Service] = []
        self.net = NetnsSite.create()
        self.sshd: ComputeSSHD | None = None
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        net, log_dir = self.net, self.log_dir
        # Redis host: TLS only, ACL users (default user off), only on its site address; the
        # certificate also names 127.0.0.1, where tunneled compute edges meet it
        self.redis_tls = make_tls_files(self.tmp / "redis-tls",
                                        ips=(net.redis_ip, net.bridge_cn_ip))
        self.redis = services.start_redis(services.free_port(), log_dir, secure=True,
                                          tls=self.redis_tls, host=net.redis_ip,
                                          netns=net.ns["redis"])
        self.started.append(self.redis)
        self.tls = make_tls_files(self.tmp / "tls", ips=(net.bridge_ip, net.bridge_cn_ip))
        self.url = f"https://{net.bridge_ip}"           # what clients use (port 443)
        self.cn_url = f"https://{net.bridge_cn_ip}"     # what compute nodes use
        # bridge host: the bridge as its own ACL user, on loopback; nginx in front
        bridge = services.start_bridge(
            self.redis.extra["bridge_url"], BRIDGE_PORT, log_dir, wait=0, netns=net.ns["bridge"],
            env={"RADICAL_BRIDGE_URL": self.url,
                 "RADICAL_EDGE_ALLOWED_HOSTS": net.bridge_cn_ip,
                 "RADICAL_EDGE_ENROLL_REDIS_URL": self.redis.extra["enroll_url"],
                 # enrolled edges get the TLS pass-through on the compute LAN
                 "RADICAL_EDGE_ENROLL_REDIS_PUBLIC_URL":
                     f"rediss://{net.bridge_cn_ip}:{REDIS_PROXY_PORT}/0"
                     f"?ssl_ca_certs={self.redis_tls.ca}"})
        self.started.append(bridge)
        self.nginx = start_nginx(self.tmp / "nginx", f"0.0.0.0:{NGINX_PORT}",
                                 [f"127.0.0.1:{BRIDGE_PORT}"], self.tls,
                                 server_name=net.bridge_ip, netns=net.ns["bridge"],
                                 redis_stream=(f"{net.bridge_cn_ip}:{REDIS_PROXY_PORT}",
                                               f"{net.redis_ip}:{self.redis.extra['port']}"))
        self.started.append(self.nginx)
        wait_listening(self.nginx, net.bridge_ip, NGINX_PORT)
        self.verify = ssl.create_default_context(cafile=self.tls.ca)
        services.wait_until(self._bridge_ready, 30, "bridge behind nginx", bridge)
        # compute node: sshd; login node: an edge with its own Redis ACL user
        self.sshd = ComputeSSHD(self.tmp / "sshd", net).start(log_dir)
        self.login_name = f"lg{net.id}"
        edge_url = services.create_edge_user(self.redis.extra["admin_url"], self.login_name)
        self.tunnels = self.tmp / "tunnels"
        env = {"RADICAL_BRIDGE_URL": self.cn_url,   # where its children enroll
               "RADICAL_EDGE_PSIJ_DIR": str(self.tmp / "psij"),
               **self.sshd.edge_env(self.tunnels)}
        self.login = services.start_edge(edge_url, self.login_name, "psij,sysinfo,echo",
                                         log_dir, env=env, wait=0, netns=net.ns["login"])
        self.started.append(self.login)
        self.wait_edge(self.login_name, 60, self.login)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.verify, timeout=30,
                            headers=authed.AUTH)

    def edges(self) -> dict:
        with self.client() as http:
            r = http.post("/edge/list")
            r.raise_for_status()
            return r.json()["data"]["edges"]

    def _bridge_ready(self) -> bool:
        try:
            self.edges()
            return True
        except httpx.HTTPError:
            return False

    def wait_edge(self, name: str, timeout: float, svc: services.Service | None = None,
                  present: bool = True) -> dict:
        def seen() -> bool:
            try:
                return (name in self.edges()) == present
            except httpx.HTTPError:
                return False

        services.wait_until(seen, timeout, f"edge {name} {'joins' if present else 'leaves'}",
                            svc, interval=0.2)
        return self.edges().get(name, {})

    def stop(self) -> None:
        if self.sshd is not None:
            self.sshd.stop()
        for svc in reversed(self.started):
            svc.stop()
        self.net.remove()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, log_dir: Path) -> Iterator[Site]:
    s = Site(tmp_path_factory.mktemp("netns-site"), log_dir)
    yield s
    s.stop()
    assert not s.net.exists(), "netns_hosts.sh down left namespaces behind"


def call_and_notify(site: Site, bc: BridgeClient, edge: str, got: Received) -> None:
    """A sysinfo call (SDK) and an echo notification (raw HTTP -> SSE), all via nginx."""
    si = bc.get_edge_client(edge).get_plugin("sysinfo")
    try:
        metrics = si.get_metrics()
        assert metrics["memory"]["total"] > 0 and metrics["cpu"]["cores_logical"] >= 1
    finally:
        si.close()
    tag = uuid.uuid4().hex[:8]
    with site.client() as http:
        r = http.post(f"/{edge}/echo/notify", json={"n": 1, "tag": tag})
        assert r.status_code == 200, r.text
    got.wait_tag(tag, 10)


def test_compute_node_has_no_route_to_redis(site: Site) -> None:
    net, port = site.net, site.redis.extra["port"]
    assert site.net.connect_error("login", net.redis_ip, port) is None  # login node: yes
    assert site.redis.extra["url"].startswith("rediss://")
    error = site.net.connect_error("cmp", net.redis_ip, port)
    assert error is not None and "unreachable" in error.lower(), error
    # what the compute node may reach: the login node's sshd path and nginx (HTTPS egress)
    assert site.net.connect_error("cmp", net.bridge_cn_ip, NGINX_PORT) is None
    assert site.net.connect_error("cmp", net.bridge_cn_ip, REDIS_PROXY_PORT) is None
    assert site.net.connect_error("cmp", net.bridge_cn_ip, BRIDGE_PORT) is not None


def test_calls_and_sse_reach_the_login_edge_through_nginx(site: Site) -> None:
    info = site.edges()[site.login_name]
    assert site.net.namespace_of(info["pid"]) == site.net.ns["login"]
    with echo_listener(site.url, site.tls.ca, site.login_name) as (bc, got):
        call_and_notify(site, bc, site.login_name, got)


@pytest.mark.parametrize("path", ["ssh-tunnel", "tls-proxy"])
def test_child_edge_on_the_compute_node(site: Site, path: str) -> None:
    """A child edge launched onto the compute node reaches Redis through the login edge's
    SSH tunnel, or through nginx's TLS pass-through (the address enrollment hands out)."""
    net, tunnel = site.net, path == "ssh-tunnel"
    name = f"cp{uuid.uuid4().hex[:6]}"
    with echo_listener(site.url, site.tls.ca, name) as (bc, got):
        pj = bc.get_edge_client(site.login_name).get_plugin("psij")
        try:
            t0 = time.monotonic()
            # the "batch system" here is psij's local executor on the login node; the job step
            # runs on the compute node, which is what `ip netns exec` stands for
            sub = pj.submit_tunneled({
                "executable": shutil.which("ip"),
                "arguments": ["netns", "exec", net.ns["cmp"], find_wrapper(),
                              "-n", name, "-p", "sysinfo,echo"],
                "environment": {"RADICAL_EDGE_LOG_DIR": str(site.log_dir),
                                "RADICAL_BRIDGE_CERT": site.tls.ca}},  # to trust nginx
                "local", tunnel=tunnel)
            assert sub["tunnel"] is tunnel and sub["edge_name"] == name
            if tunnel:
                status = wait_for(lambda: (s := pj.tunnel_status(name))["status"] == "active"
                                  and s, 60, what=f"tunnel to the compute node ({name})")
                assert status["host"] == net.cmp_ip
                redis_via = ("127.0.0.1", status["port"])  # on the node's own loopback
            else:
                redis_via = (net.bridge_cn_ip, REDIS_PROXY_PORT)
            info = site.wait_edge(name, 90)
            print(f"\ncompute-node edge ({path}) joined {time.monotonic() - t0:.2f} s after submit")
            pid = info["pid"]
            assert net.namespace_of(pid) == net.ns["cmp"]
            # all its Redis connections go the one way it has
            remote = net.tcp_remotes("cmp", pid)
            assert remote and all(r == redis_via for r in remote), remote
            # calls and SSE across all hosts: client -> nginx -> bridge -> Redis -> (tunnel
            # through the login edge | nginx pass-through) -> compute edge, and back
            call_and_notify(site, bc, name, got)
            pj.cancel_job(sub["job_id"])
            site.wait_edge(name, 30, present=False)
            if tunnel:
                wait_for(lambda: pj.tunnel_status(name)["status"] == "done", 20,
                         what="tunnel done")
        finally:
            pj.close()  # cancels the job if the test failed before
