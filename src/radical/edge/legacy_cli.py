"""The original command names: `radical-edge-bridge` and `radical-edge-service` (also
installed as `radical-edge-service.py`, which original launch scripts put in job specs).

They take the original flags and hand over to `radical-edge bridge` / `radical-edge edge`.
`--url` is the **bridge** URL, as before; the edge finds the Redis it joins through
`app.broker.resolve_redis_url` (`$RADICAL_EDGE_REDIS_URL`, else the bridge). `--plugins`
accepts prefixes (`-p sys,queue` loads sysinfo and queue_info).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger("radical.edge.service")

#: where a parent edge's tunnel watcher writes "<port> <token>" for child NAME
TUNNEL_DIR = Path("~/.radical/edge/tunnels")


def expand_plugins(spec: str | None, known: list[str]) -> str | None:
    """`all`, exact names, or prefixes of known plugin names -> comma-separated names.

    A prefix matching nothing is passed on unchanged, so the loader names it as unknown.
    """
    if not spec or spec.strip() == "all":
        return spec
    out: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        matches = [item] if item in known else sorted(k for k in known if k.startswith(item))
        for name in matches or [item]:
            if name not in out:
                out.append(name)
    return ",".join(out)


def _log_level(value: str | None) -> str | None:
    return value.upper() if value else None


# -- radical-edge-service -----------------------------------------------------------------
def service_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="radical-edge-service",
                                description="Start an edge (original command name).")
    p.add_argument("-n", "--name", help="edge name (default: short hostname)")
    p.add_argument("-u", "--url", help="bridge URL (default $RADICAL_BRIDGE_URL); the edge "
                                       "asks it for the broker unless $RADICAL_EDGE_REDIS_URL "
                                       "is set")
    p.add_argument("-p", "--plugins", help="'all' or comma-separated names or prefixes")
    p.add_argument("-l", "--log-level", help="debug, info, warning, error")
    p.add_argument("--tunnel", action="store_true",
                   help="reach Redis through the parent edge's reverse tunnel: wait for "
                        "~/.radical/edge/tunnels/NAME.port")
    p.add_argument("--tunnel-wait", type=float, default=600.0,
                   help="seconds to wait for the tunnel (default 600)")
    p.add_argument("--tunnel-via", metavar="HOST",
                   help="reach Redis through an SSH tunnel via HOST (ssh -L)")
    p.add_argument("--redis-url", help=argparse.SUPPRESS)  # explicit override (prefer env)
    return p


def service_main(argv: list[str] | None = None) -> int:
    args = service_parser().parse_args(argv)
    from .app.broker import BrokerLookupError, resolve_redis_url
    from .plugins import loader

    logging.basicConfig(level=_log_level(args.log_level) or "WARNING",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    bridge = args.url or os.environ.get("RADICAL_BRIDGE_URL")
    try:
        redis_url = args.redis_url or resolve_redis_url(bridge)
    except BrokerLookupError as exc:
        print(f"radical-edge-service: {exc}", file=sys.stderr)
        return 2
    ssh = None
    if args.tunnel:
        if not args.name:
            print("radical-edge-service: --tunnel needs --name", file=sys.stderr)
            return 2
        port = wait_tunnel_port(args.name, args.tunnel_wait)
        if port is None:
            print(f"radical-edge-service: no tunnel after {args.tunnel_wait:g} s",
                  file=sys.stderr)
            return 2
        redis_url = with_local_port(redis_url, port)
    elif args.tunnel_via:
        ssh, port = ssh_forward(args.tunnel_via, redis_url)
        redis_url = with_local_port(redis_url, port)
    os.environ["RADICAL_EDGE_REDIS_URL"] = redis_url  # not on argv: ps would show it
    if bridge:
        os.environ.setdefault("RADICAL_EDGE_BRIDGE_URL", bridge)
    edge_argv = ["edge"]
    if args.name:
        edge_argv += ["--name", args.name]
    plugins = expand_plugins(args.plugins, sorted(loader.available()))
    if plugins:
        edge_argv += ["--plugins", plugins]
    if args.log_level:
        edge_argv += ["--log-level", _log_level(args.log_level) or ""]
    from .cli import main

    try:
        return main(edge_argv)
    finally:
        if ssh is not None:
            ssh.terminate()


def wait_tunnel_port(name: str, timeout: float) -> int | None:
    """The port a parent edge published for child `name` ("<port> <token>"), or None."""
    path = Path(os.environ.get("RADICAL_EDGE_TUNNEL_FILE")
                or TUNNEL_DIR.expanduser() / f"{name}.port")
    token = os.environ.get("RADICAL_EDGE_TUNNEL_TOKEN") or ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            fields = path.read_text().split()
        except OSError:
            fields = []
        if fields and fields[0].isdigit() and (not token or fields[1:2] == [token]):
            return int(fields[0])
        time.sleep(0.2)
    return None


def with_local_port(redis_url: str, port: int) -> str:
    """`redis_url` pointed at 127.0.0.1:`port`, credentials and db kept."""
    parts = urlsplit(redis_url)
    auth = parts.netloc.rpartition("@")[0]
    netloc = (auth + "@" if auth else "") + f"127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def ssh_forward(host: str, redis_url: str, timeout: float = 30.0) -> tuple[object, int]:
    """`ssh -N -L <free>:<redis host>:<redis port> HOST`; returns (process, local port)."""
    import socket
    import subprocess

    from .hpc.launch import redis_endpoint

    r_host, r_port = redis_endpoint(redis_url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        local = s.getsockname()[1]
    proc = subprocess.Popen(["ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-o",
                             "BatchMode=yes", "-L", f"127.0.0.1:{local}:{r_host}:{r_port}",
                             host], stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"radical-edge-service: ssh to {host} failed ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", local), 0.5).close()
            return proc, local
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"radical-edge-service: no tunnel via {host} after {timeout:g} s")


# -- radical-edge-bridge ------------------------------------------------------------------
def bridge_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="radical-edge-bridge",
                                description="Start the bridge (original command name).")
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("-u", "--url", help="public URL of the bridge ($RADICAL_BRIDGE_URL)")
    p.add_argument("--cert", help="TLS certificate ($RADICAL_BRIDGE_CERT)")
    p.add_argument("--key", help="TLS key ($RADICAL_BRIDGE_KEY)")
    p.add_argument("--redis-url", help="Redis broker URL ($RADICAL_EDGE_REDIS_URL)")
    p.add_argument("-l", "--log-level", help="debug, info, warning, error")
    p.add_argument("-p", "--plugins", help="plugins the bridge hosts (names or prefixes)")
    return p


def bridge_main(argv: list[str] | None = None) -> int:
    args = bridge_parser().parse_args(argv)
    if args.url:
        os.environ["RADICAL_BRIDGE_URL"] = args.url
    out = ["bridge"]
    for flag, value in (("--host", args.host), ("--port", args.port), ("--cert", args.cert),
                        ("--key", args.key), ("--redis-url", args.redis_url),
                        ("--log-level", _log_level(args.log_level))):
        if value is not None:
            out += [flag, str(value)]
    if args.plugins:
        from .plugins import loader

        out += ["--plugins", expand_plugins(args.plugins, sorted(loader.available())) or ""]
    from .cli import main

    return main(out)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(service_main())
