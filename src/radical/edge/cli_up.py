"""`radical-edge up`: the whole stack on one machine, for one user: a private Redis (or the
configured one), a bridge and a local edge, stopped together (Ctrl-C, SIGTERM, or when the
bridge or edge exits), leaving nothing behind."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .cli_server import NO_AUTH_WARNING, server_flags, server_settings
from .extras import require

if TYPE_CHECKING:
    from .settings import Settings


def cmd_up(args: argparse.Namespace) -> int:
    """The main job: Redis (private, or the one configured), a bridge and one local edge."""
    require("all")
    from . import services

    settings = server_settings(args)
    log_dir = Path(args.log_dir or Path.cwd() / ".run" / "logs")
    started: list[services.Service] = []
    no_auth = bool(args.no_auth or settings.no_auth)
    token = None
    if no_auth:
        print(NO_AUTH_WARNING, file=sys.stderr, flush=True)
    else:
        from .tokenfile import ensure_token, token_path

        token = ensure_token(settings)
    name = args.name or settings.edge_name or _short_host()
    own_redis: services.Service | None = None

    def stop_all(*_a: object) -> None:
        for svc in reversed(started):
            svc.stop()
        started.clear()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # also when run with `&`
        signal.signal(sig, _interrupt)
    try:
        if _redis_configured(args):
            bridge_redis = edge_redis = shown = _check_configured_redis(settings.redis_url)
        else:
            own_redis, bridge_redis, edge_redis = _start_private_redis(args, name, log_dir)
            started.append(own_redis)
            shown = f"{own_redis.extra['base_url']} (private: password + ACL users)"
        enroll_env = ({"RADICAL_EDGE_ENROLL_REDIS_URL": own_redis.extra["enroll_url"]}
                      if own_redis else None)  # the bridge may enroll more edges
        bridge = services.start_bridge(bridge_redis, args.port, log_dir, token=token,
                                       cert=settings.bridge_cert, key=settings.bridge_key,
                                       env=enroll_env, no_auth=no_auth)
        started.append(bridge)
        edge = services.start_edge(edge_redis, name, args.plugins or settings.plugins, log_dir,
                                   bridge_url=bridge.extra["url"], token=token,
                                   env={"RADICAL_BRIDGE_URL": bridge.extra["url"]})
        started.append(edge)
        print(f"\nradical.edge is up\n  bridge : {bridge.extra['url']}/\n  edge   : {name}\n"
              f"  redis  : {shown}\n  logs   : {log_dir}\n"
              f"  pids   : {' '.join(f'{s.name}={s.pid}' for s in started)}", flush=True)
        if token:
            print(f"  token  : in {token_path(settings)} (the SDK and CLI read it there)\n"
                  f"  portal : {_login_link(bridge.extra['url'], token, settings)}\n"
                  "           (single-use login link; `radical-edge login` makes another)",
                  flush=True)
        print("Ctrl-C stops everything started here.", flush=True)
        while True:
            for svc in list(started):
                if not svc.alive():
                    print(f"{svc.name} exited with {svc.proc.returncode}", flush=True)
                    started.remove(svc)
                    if svc is bridge or svc is edge:
                        if svc is bridge:
                            print("bridge terminated; stopping the rest", flush=True)
                        raise KeyboardInterrupt
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    except services.ServiceError as exc:
        print(f"radical-edge up: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not skip the clean-up
        stop_all()
        _clean_up(own_redis, settings.redis_url, name)


def _redis_configured(args: argparse.Namespace) -> bool:
    """Only an explicit `--redis-url` or RADICAL_EDGE_REDIS_URL joins an existing Redis."""
    return bool(args.redis_url or os.environ.get("RADICAL_EDGE_REDIS_URL"))


def _check_configured_redis(url: str) -> str:
    from . import services
    from .app.redis_conn import redacted, redis_reachable

    if not redis_reachable(url):
        raise services.ServiceError(
            f"no Redis answers at the configured URL {redacted(url)}; omit --redis-url and "
            "RADICAL_EDGE_REDIS_URL to run a private one")
    return url


def _start_private_redis(args: argparse.Namespace, name: str, log_dir: Path) -> tuple:
    """Our own redis-server: free port on 127.0.0.1, default user off, ACL users."""
    from . import services

    print("starting a private Redis (password, ACL users) on 127.0.0.1", flush=True)
    svc = services.start_redis(args.redis_port, log_dir, secure=True)
    try:
        edge_url = services.create_edge_user(svc.extra["admin_url"], name)
    except Exception:
        svc.stop()
        raise
    return svc, svc.extra["bridge_url"], edge_url


def _clean_up(own_redis: object, configured_url: str, name: str) -> None:
    """Leave nothing behind: our Redis's temp dir, or our edge's keys in a shared Redis."""
    import shutil

    from . import services

    if own_redis is not None:
        shutil.rmtree(own_redis.extra["workdir"], ignore_errors=True)  # type: ignore[attr-defined]
    elif configured_url:
        services.remove_edge_keys(configured_url, name)


def _login_link(url: str, token: str, settings: "Settings") -> str:
    """A single-use portal login link from the bridge (the token stays out of the URL)."""
    import httpx

    verify: object = True
    if url.startswith("https"):
        from .sdk.sse import ssl_context

        verify = ssl_context(settings.bridge_cert)
    r = httpx.post(f"{url}/bridge/login-ticket", headers={"Authorization": f"Bearer {token}"},
                   timeout=10, verify=verify)  # type: ignore[arg-type]
    r.raise_for_status()
    return r.json()["url"]


def _interrupt(*_args: object) -> None:
    raise KeyboardInterrupt


def _short_host() -> str:
    import socket

    return socket.gethostname().split(".")[0]


def add_up_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="run a private Redis (or join --redis-url), a bridge and "
                                  "a local edge")
    server_flags(p)
    p.add_argument("--port", type=int, default=8000, help="bridge port (default 8000)")
    p.add_argument("--redis-port", type=int, help="port of the private Redis (default: free)")
    p.add_argument("-n", "--name", help="edge name (default: short hostname)")
    p.add_argument("-p", "--plugins", help="'all' or comma-separated plugin names")
    p.add_argument("--no-auth", action="store_true",
                   help="serve anonymous callers as admin (prints a warning; never on a "
                        "shared machine)")
    p.add_argument("--auth", action="store_true", help=argparse.SUPPRESS)  # the default now
    p.add_argument("--log-dir", help="where service logs go (default ./.run/logs)")
    p.set_defaults(func=cmd_up)
