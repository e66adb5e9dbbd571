"""The container image and the compose stack (docker/), built and run for real.

`scripts/docker_stack.sh up` installs Debian's docker.io/docker-compose/debootstrap when
missing, starts a private dockerd when none answers, builds the image on a debootstrap base
(no image registry is reachable here; the base tarball is cached under .cache/docker) and
brings up docker/compose.yaml (Redis with an ACL file and AOF, a bridge, an edge, Flower) on
free loopback ports. The tests then use it as a client would, and the last one tears it all
down (containers, network, volumes, the dockerd the script started). Tests run in file order.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import orjson
import pytest
import redis

from radical.edge import BridgeClient, services

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "docker_stack.sh"
DOCKER = "/usr/bin/docker"  # Debian's client, the one the script uses
APP_UID = 10001  # docker/Dockerfile's user
#: one stack build at a time on this machine (worktrees share /run/radical-edge-docker)
LOCK = Path("/run/radical-edge-docker.lock")


@dataclass
class Stack:
    env: dict[str, str]
    secrets: Path
    edge: str

    @property
    def bridge_url(self) -> str:
        return f"http://127.0.0.1:{self.env['BRIDGE_PORT']}"

    @property
    def flower_url(self) -> str:
        return f"http://127.0.0.1:{self.env['FLOWER_PORT']}"

    def secret(self, name: str) -> str:
        return (self.secrets / name).read_text().strip()

    @property
    def token(self) -> str:
        return self.secret("admin_token")

    def script(self, *args: str, timeout: float = 120) -> str:
        proc = subprocess.run([str(SCRIPT), *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        assert proc.returncode == 0, f"docker_stack.sh {args}:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def docker(self, *args: str) -> str:
        return subprocess.run([DOCKER, *args], env=self.env, capture_output=True, text=True,
                              timeout=60, check=True).stdout

    def container(self, service: str) -> str:
        cid = self.script("compose", "ps", "-q", service).strip()
        assert cid, f"no container for {service}"
        return cid

    def logs(self) -> str:
        proc = subprocess.run([str(SCRIPT), "compose", "logs", "--no-color", "--tail", "40"],
                              env=self.env, capture_output=True, text=True, timeout=60)
        return proc.stdout[-8000:]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if os.geteuid() != 0:
        pytest.skip("needs root: apt-get and dockerd")
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        secrets = tmp_path_factory.mktemp("docker") / "secrets"
        env = {**os.environ, "RADICAL_EDGE_DOCKER_BASE": "local",
               "COMPOSE_PROJECT_NAME": f"redgetest{uuid.uuid4().hex[:8]}",
               "REDIS_PORT": str(services.free_port()),
               "BRIDGE_PORT": str(services.free_port()),
               "FLOWER_PORT": str(services.free_port()),
               "EDGE_NAME": "dockedge", "RADICAL_EDGE_DOCKER_SECRETS": str(secrets)}
        env.pop("DOCKER_HOST", None)  # the script picks the engine (or starts its own)
        st = Stack(env, secrets, "dockedge")
        try:
            st.script("up", timeout=720)
            # the engine the script chose (the system's, or its own private one)
            out = st.script("dockerd", timeout=60)
            env["DOCKER_HOST"] = out.strip().rpartition("DOCKER_HOST=")[2]
            services.wait_for_edge(st.bridge_url, st.edge, 90, token=st.token)
        except BaseException:
            logs = st.logs()
            subprocess.run([str(SCRIPT), "down"], env=env, timeout=180)
            pytest.fail(f"stack did not come up; logs:\n{logs}")
        yield st
        subprocess.run([str(SCRIPT), "down"], env=env, timeout=180)  # no-op after the last test


def test_edge_answers_through_the_bridge_with_a_token(stack: Stack) -> None:
    anonymous = httpx.post(f"{stack.bridge_url}/edge/list", timeout=10)
    assert anonymous.status_code == 401, "the bridge in the container is closed by default"
    bc = BridgeClient(stack.bridge_url, token=stack.token)
    try:
        assert stack.edge in bc.list_edges()
        sysinfo = bc.get_edge_client(stack.edge).get_plugin("sysinfo")
        assert sysinfo.homedir() == "/home/edge", "the call ran in the edge's container"
        assert sysinfo.get_metrics()["memory"]["total"] > 0
        sysinfo.close()
    finally:
        bc.close()


def _topology_events(stack: Stack, stop: threading.Event) -> Iterator[dict]:
    headers = {"Authorization": f"Bearer {stack.token}"}
    with httpx.stream("GET", f"{stack.bridge_url}/events", headers=headers,
                      timeout=httpx.Timeout(10, read=60)) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if stop.is_set():
                return
            if line.startswith("data:"):
                msg = orjson.loads(line[5:])
                if msg["topic"] == "topology":
                    yield msg["data"]


def test_sse_follows_the_edge_container_restarting(stack: Stack) -> None:
    """SSE from the bridge container: the edge leaves when its container stops and comes
    back (re-claiming its name) when it starts again; a call then works again."""
    def names(data: dict) -> set[str]:
        return set(data.get("edges") or {})

    stop = threading.Event()
    events = _topology_events(stack, stop)
    try:
        assert stack.edge in names(next(events)), "the first event is the topology"
        stack.script("compose", "stop", "--timeout", "20", "edge")
        assert stack.edge not in names(next(e for e in events if stack.edge not in names(e)))
        stack.script("compose", "start", "edge")
        assert stack.edge in names(next(e for e in events if stack.edge in names(e)))
    finally:
        stop.set()
        events.close()
    bc = BridgeClient(stack.bridge_url, token=stack.token)
    try:
        assert bc.get_edge_client(stack.edge).get_plugin("sysinfo").homedir() == "/home/edge"
    finally:
        bc.close()


def _proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def test_containers_run_as_non_root_without_secrets_in_their_config(stack: Stack) -> None:
    secret_values = [stack.secret(p.name) for p in stack.secrets.iterdir()
                     if p.name != "redis_users.acl"]
    for service in ("bridge", "edge", "flower"):
        cid = stack.container(service)
        info = json.loads(stack.docker("inspect", cid))[0]
        status = _proc_status(info["State"]["Pid"])  # the process as the host kernel sees it
        assert status["Uid"].split() == [str(APP_UID)] * 4, (service, status["Uid"])
        assert int(status["CapEff"], 16) == 0, f"{service} holds capabilities"
        assert info["HostConfig"]["ReadonlyRootfs"] is True
        assert info["HostConfig"]["NetworkMode"] == "host"
        config = json.dumps(info["Config"])
        assert not [v for v in secret_values if v in config], f"a secret in {service}'s config"
    redis_pid = json.loads(stack.docker("inspect", stack.container("redis")))[0]["State"]["Pid"]
    assert _proc_status(redis_pid)["Uid"].split()[0] == "999", "Redis runs as its own user"


def test_every_container_passes_its_healthcheck(stack: Stack) -> None:
    def health(service: str) -> str:
        state = json.loads(stack.docker("inspect", stack.container(service)))[0]["State"]
        return state["Health"]["Status"]

    services.wait_until(lambda: all(health(s) == "healthy" for s in
                                    ("redis", "bridge", "edge", "flower")),
                        90, "every container's HEALTHCHECK to pass", interval=1)


def test_redis_refuses_anonymous_clients_and_keeps_an_aof(stack: Stack) -> None:
    anonymous = redis.Redis(port=int(stack.env["REDIS_PORT"]), socket_timeout=5)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    anonymous.close()
    edge_user = redis.Redis(port=int(stack.env["REDIS_PORT"]), socket_timeout=5,
                            username=f"redge-edge-{stack.edge}",
                            password=stack.secret(f"redis_password_edge-{stack.edge}"))
    with pytest.raises(redis.exceptions.NoPermissionError):
        edge_user.lpush("edge.someone-else", "x")  # least privilege: not another edge's queue
    edge_user.close()
    volume = f"{stack.env['COMPOSE_PROJECT_NAME']}_redis-data"
    mount = Path(json.loads(stack.docker("volume", "inspect", volume))[0]["Mountpoint"])
    aof = list((mount / "appendonlydir").glob("*.incr.aof"))
    assert aof and aof[0].stat().st_size > 0, "Redis appends to its AOF on the volume"


def test_flower_needs_its_password_and_sees_the_edge(stack: Stack) -> None:
    assert httpx.get(f"{stack.flower_url}/api/workers", timeout=10).status_code == 401
    user, _, password = stack.secret("flower_auth").partition(":")

    def sees_edge() -> bool:
        r = httpx.get(f"{stack.flower_url}/api/workers", params={"refresh": "1"},
                      auth=(user, password), timeout=15)
        return r.status_code == 200 and f"edge@{stack.edge}" in r.json()

    services.wait_until(sees_edge, 60, "Flower to inspect the edge", interval=1)


def test_down_removes_containers_network_volumes_and_dockerd(stack: Stack) -> None:
    project = stack.env["COMPOSE_PROJECT_NAME"]
    label = f"label=com.docker.compose.project={project}"
    assert stack.docker("ps", "-aq", "--filter", label).strip()
    stack.script("compose-down", timeout=180)
    assert stack.docker("ps", "-aq", "--filter", label).strip() == ""
    assert stack.docker("volume", "ls", "-q", "--filter", label).strip() == ""
    assert stack.docker("network", "ls", "-q", "--filter", label).strip() == ""
    started = Path("/run/radical-edge-docker/started-by-script").exists()
    pid_file = Path("/run/radical-edge-docker/dockerd.pid")
    pid = int(pid_file.read_text()) if started and pid_file.exists() else None
    stack.script("stop-dockerd", timeout=60)
    if pid is not None:
        assert not Path(f"/proc/{pid}").exists(), "the dockerd the script started is gone"
