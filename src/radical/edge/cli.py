"""`radical-edge up | bridge | edge | flower | login | token`."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

from .cli_access import add_access_parsers
from .settings import Settings, get_settings


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--redis-url", help="Redis broker URL (env RADICAL_EDGE_REDIS_URL)")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING (default), ERROR")


def _settings(args: argparse.Namespace, **more: object) -> Settings:
    return get_settings().with_overrides(redis_url=args.redis_url, log_level=args.log_level,
                                         **more)


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def cmd_bridge(args: argparse.Namespace) -> int:
    from .bridge_api.server import run_bridge

    settings = _settings(args, host=args.host, port=args.port, bridge_cert=args.cert,
                         bridge_key=args.key, bridge_plugins=args.plugins)
    settings = _auth_settings(settings, args.no_auth)
    _logging(settings)
    local_factory = None
    if settings.bridge_plugins:  # plugins hosted by the bridge itself: the edge runtime's host
        from .workers.local_host import hosting

        local_factory = hosting(settings.bridge_plugins)
    run_bridge(settings, local_factory)
    return 0


NO_AUTH_WARNING = ("WARNING: --no-auth: this bridge serves ANYONE who can reach it, as admin: "
                   "they can run code as you on every edge. Use it only on a machine no one "
                   "else can log in to.")


def _auth_settings(settings: Settings, no_auth: bool) -> Settings:
    """Closed by default: the configured token, else the token file (created if missing)."""
    from pydantic import SecretStr

    from .tokenfile import ensure_token

    if no_auth or settings.no_auth:
        print(NO_AUTH_WARNING, file=sys.stderr, flush=True)
        return settings.model_copy(update={"no_auth": True, "token": None})
    return settings.model_copy(update={"token": SecretStr(ensure_token(settings))})


def cmd_edge(args: argparse.Namespace) -> int:
    from .plugins.loader import PluginLoadError
    from .workers.edge import run_edge

    settings = _settings(args)
    _logging(settings)
    try:
        return run_edge(settings, args.name, args.plugins)
    except (PluginLoadError, ValueError, RuntimeError) as exc:
        print(f"radical-edge edge: {exc}", file=sys.stderr)
        return 2


def cmd_flower(args: argparse.Namespace) -> int:
    settings = _settings(args)
    os.environ["RADICAL_EDGE_REDIS_URL"] = settings.redis_url
    argv = [sys.executable, "-m", "celery", "-A", "radical.edge.app.flower_app", "flower",
            f"--address={args.host}", f"--port={args.port}"]
    os.execv(sys.executable, argv)
    return 0  # not reached


def cmd_up(args: argparse.Namespace) -> int:
    """The main job: Redis (configured or embedded), a bridge and one local edge."""
    from . import services
    from .app.redis_conn import redis_reachable

    settings = _settings(args)
    log_dir = Path(args.log_dir or Path.cwd() / ".run" / "logs")
    started: list[services.Service] = []
    no_auth = bool(args.no_auth or settings.no_auth)
    token = None
    if no_auth:
        print(NO_AUTH_WARNING, file=sys.stderr, flush=True)
    else:
        from .tokenfile import ensure_token, token_path

        token = ensure_token(settings)

    def stop_all(*_a: object) -> None:
        for svc in reversed(started):
            svc.stop()
        started.clear()

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        redis_url = settings.redis_url
        if not redis_reachable(redis_url):
            print(f"no Redis at {redis_url}; starting an embedded one", flush=True)
            redis_svc = services.start_redis(args.redis_port, log_dir)
            started.append(redis_svc)
            redis_url = redis_svc.extra["url"]
        bridge = services.start_bridge(redis_url, args.port, log_dir, token=token,
                                       cert=settings.bridge_cert, key=settings.bridge_key,
                                       no_auth=no_auth)
        started.append(bridge)
        name = args.name or settings.edge_name or _short_host()
        edge = services.start_edge(redis_url, name, args.plugins or settings.plugins, log_dir,
                                   bridge_url=bridge.extra["url"], token=token)
        started.append(edge)
        print(f"\nradical.edge is up\n  bridge : {bridge.extra['url']}/\n  edge   : {name}\n"
              f"  redis  : {redis_url}\n  logs   : {log_dir}", flush=True)
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
        stop_all()


def _login_link(url: str, token: str, settings: Settings) -> str:
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


def _bridge_plugins_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--plugins", help="plugins the bridge hosts itself, under "
                                           "/bridge/<plugin>/ (env RADICAL_EDGE_BRIDGE_PLUGINS)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="radical-edge", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("up", help="run Redis (if needed), a bridge and a local edge")
    _common(p)
    p.add_argument("--port", type=int, default=8000, help="bridge port (default 8000)")
    p.add_argument("--redis-port", type=int, help="port of an embedded Redis (default: free)")
    p.add_argument("-n", "--name", help="edge name (default: short hostname)")
    p.add_argument("-p", "--plugins", help="'all' or comma-separated plugin names")
    p.add_argument("--no-auth", action="store_true",
                   help="serve anonymous callers as admin (prints a warning; never on a "
                        "shared machine)")
    p.add_argument("--auth", action="store_true", help=argparse.SUPPRESS)  # the default now
    p.add_argument("--log-dir", help="where service logs go (default ./.run/logs)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("bridge", help="run the HTTP/SSE bridge")
    _common(p)
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--cert", help="TLS certificate (env RADICAL_BRIDGE_CERT)")
    p.add_argument("--key", help="TLS key (env RADICAL_BRIDGE_KEY)")
    _bridge_plugins_flag(p)
    p.add_argument("--no-auth", action="store_true",
                   help="serve anonymous callers as admin (prints a warning)")
    p.set_defaults(func=cmd_bridge)
    add_access_parsers(sub)

    p = sub.add_parser("edge", help="run an edge (a Celery worker edge@NAME)")
    _common(p)
    p.add_argument("-n", "--name", help="edge name (default: short hostname)")
    p.add_argument("-p", "--plugins", help="'all' or comma-separated plugin names")
    p.set_defaults(func=cmd_edge)

    p = sub.add_parser("flower", help="run Flower on the same broker")
    _common(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5555)
    p.set_defaults(func=cmd_flower)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
