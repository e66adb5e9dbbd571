"""`radical-edge bridge | edge | flower`: run one server part, and the flags and settings
every server command (these and `up`) shares.

Server packages are imported inside the commands, after `require(...)` has said which extra
is missing: the client commands must keep working with httpx alone.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .cli_enroll import edge_enroll_flags, enrolled
from .extras import require
from .preflight import check_redis_url, check_tls_files, check_tls_loads

if TYPE_CHECKING:
    from .settings import Settings

NO_AUTH_WARNING = ("WARNING: --no-auth: this bridge serves ANYONE who can reach it, as admin: "
                   "they can run code as you on every edge. Use it only on a machine no one "
                   "else can log in to.")


def server_flags(p: argparse.ArgumentParser) -> None:
    """Flags of every server command: Redis URL and logging."""
    p.add_argument("--redis-url", help="Redis broker URL (env RADICAL_EDGE_REDIS_URL)")
    p.add_argument("--log-level", help="DEBUG, INFO (default), WARNING, ERROR")
    p.add_argument("--log-json", action="store_true", default=None,
                   help="log JSON lines (env RADICAL_EDGE_LOG_JSON)")


def server_settings(args: argparse.Namespace, **more: object) -> "Settings":
    """The environment's settings with the command line's values on top."""
    from .settings import get_settings

    return get_settings().with_overrides(redis_url=args.redis_url, log_level=args.log_level,
                                         log_json=args.log_json, **more)


def _logging(settings: "Settings", **process: str) -> None:
    from .logs import setup_logging

    setup_logging(settings.log_level, settings.log_json, **process)


def cmd_bridge(args: argparse.Namespace) -> int:
    require("bridge")
    from .bridge_api.server import run_bridge

    settings = server_settings(args, host=args.host, port=args.port, bridge_cert=args.cert,
                               bridge_key=args.key, bridge_plugins=args.plugins)
    check_redis_url("bridge", settings.redis_url)
    check_tls_files("bridge", settings.bridge_cert, settings.bridge_key)
    check_tls_loads("bridge", settings.bridge_cert, settings.bridge_key)
    settings = _auth_settings(settings, args.no_auth)
    _logging(settings, component="bridge")
    local_factory = None
    if settings.bridge_plugins:  # plugins hosted by the bridge itself: the edge runtime's host
        from .workers.local_host import hosting

        local_factory = hosting(settings.bridge_plugins)
    run_bridge(settings, local_factory)
    return 0


def _auth_settings(settings: "Settings", no_auth: bool) -> "Settings":
    """Closed by default: the configured token, else the token file (created if missing)."""
    from pydantic import SecretStr

    from .tokenfile import ensure_token

    if no_auth or settings.no_auth:
        print(NO_AUTH_WARNING, file=sys.stderr, flush=True)
        return settings.model_copy(update={"no_auth": True, "token": None})
    return settings.model_copy(update={"token": SecretStr(ensure_token(settings))})


def cmd_edge(args: argparse.Namespace) -> int:
    require("edge")
    from redis.exceptions import RedisError

    from .plugins.loader import PluginLoadError
    from .workers.edge import run_edge

    settings = server_settings(args)
    _logging(settings, component="edge", edge=args.name or settings.edge_name or "")
    try:
        settings = enrolled(args, settings)
        check_redis_url("edge", settings.redis_url)
        return run_edge(settings, args.name, args.plugins)
    except RedisError as exc:
        from .app.redis_conn import redacted

        print(f"radical-edge edge: Redis at {redacted(settings.redis_url)} is not usable: "
              f"{' '.join(str(exc).split()) or type(exc).__name__}", file=sys.stderr)
        return 2
    except (PluginLoadError, ValueError, RuntimeError, OSError) as exc:
        print(f"radical-edge edge: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


def cmd_flower(args: argparse.Namespace) -> int:
    """Flower on the edges' broker, behind basic auth: `--auth-file`, else the operator's
    FLOWER_BASIC_AUTH (e.g. a container secret), else credentials generated into a 0600
    file (`flower_auth_file`); handed over in the environment, never argv."""
    require("flower")
    import secrets

    from .tokenfile import ensure_secret

    settings = server_settings(args)
    check_redis_url("flower", settings.redis_url)
    given = os.environ.get("FLOWER_BASIC_AUTH")
    if args.auth_file or not given:
        path = Path(args.auth_file or settings.flower_auth_file).expanduser()
        given = ensure_secret(path, lambda: f"admin:{secrets.token_urlsafe(24)}")
        where = f"password in {path}"
    else:
        where = "from FLOWER_BASIC_AUTH"
    if ":" not in given:
        raise SystemExit("radical-edge flower: basic auth must be 'user:password'")
    os.environ.update(RADICAL_EDGE_REDIS_URL=settings.redis_url, FLOWER_BASIC_AUTH=given)
    os.environ.pop("FLOWER_UNAUTHENTICATED_API", None)  # never open: auth is on
    print(f"Flower on http://{args.host}:{args.port}/ (basic auth: user "
          f"'{given.split(':', 1)[0]}', {where})", file=sys.stderr, flush=True)
    argv = [sys.executable, "-m", "celery", "-A", "radical.edge.app.flower_app", "flower",
            f"--address={args.host}", f"--port={args.port}"]
    os.execv(sys.executable, argv)
    return 0  # not reached


def add_bridge_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bridge", help="run the HTTP/SSE bridge")
    server_flags(p)
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--cert", help="TLS certificate (env RADICAL_BRIDGE_CERT)")
    p.add_argument("--key", help="TLS key (env RADICAL_BRIDGE_KEY)")
    p.add_argument("-p", "--plugins", help="plugins the bridge hosts itself, under "
                                           "/bridge/<plugin>/ (env RADICAL_EDGE_BRIDGE_PLUGINS)")
    p.add_argument("--no-auth", action="store_true",
                   help="serve anonymous callers as admin (prints a warning)")
    p.set_defaults(func=cmd_bridge)


def add_edge_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("edge", help="run an edge (a Celery worker edge@NAME)")
    server_flags(p)
    p.add_argument("-n", "--name", help="edge name (default: short hostname)")
    p.add_argument("-p", "--plugins", help="'all' or comma-separated plugin names")
    edge_enroll_flags(p)
    p.set_defaults(func=cmd_edge)


def add_flower_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flower", help="run Flower on the same broker")
    server_flags(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5555)
    p.add_argument("--auth-file", help="file with 'user:password' for Flower's basic auth "
                                       "(default ~/.radical/edge/flower-auth, made if missing)")
    p.set_defaults(func=cmd_flower)
