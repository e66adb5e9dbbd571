"""radical-edge: run the server parts (up, bridge, edge, flower, enroll) and use them
(edges, call, events, jobs, put, get, token, login).

The client commands need only httpx (`pip install radical.edge`); a server command whose
packages are missing says which extra to install instead of failing with an ImportError.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .cli_access import add_access_parsers
from .cli_client import add_client_parsers
from .cli_transfer import add_transfer_parsers
from .extras import require
from .preflight import check_redis_url, check_tls_files, check_tls_loads
from .version import __version__

if TYPE_CHECKING:
    from .settings import Settings


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--redis-url", help="Redis broker URL (env RADICAL_EDGE_REDIS_URL)")
    p.add_argument("--log-level", help="DEBUG, INFO (default), WARNING, ERROR")
    p.add_argument("--log-json", action="store_true", default=None,
                   help="log JSON lines (env RADICAL_EDGE_LOG_JSON)")


def _settings(args: argparse.Namespace, **more: object) -> "Settings":
    from .settings import get_settings

    return get_settings().with_overrides(redis_url=args.redis_url, log_level=args.log_level,
                                         log_json=args.log_json, **more)


def _logging(settings: "Settings", **process: str) -> None:
    from .logs import setup_logging

    setup_logging(settings.log_level, settings.log_json, **process)


def cmd_bridge(args: argparse.Namespace) -> int:
    require("bridge")
    from .bridge_api.server import run_bridge

    settings = _settings(args, host=args.host, port=args.port, bridge_cert=args.cert,
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


NO_AUTH_WARNING = ("WARNING: --no-auth: this bridge serves ANYONE who can reach it, as admin: "
                   "they can run code as you on every edge. Use it only on a machine no one "
                   "else can log in to.")


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

    settings = _settings(args)
    _logging(settings, component="edge", edge=args.name or settings.edge_name or "")
    try:
        settings = _enrolled(args, settings)
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


def _enrolled(args: argparse.Namespace, settings: "Settings") -> "Settings":
    """With `--url BRIDGE` and an enrollment token: Redis URL + credentials from the bridge."""
    from . import enrollment

    token = enrollment.read_token(args.enroll, args.enroll_file) or (
        settings.enroll_token.get_secret_value() if settings.enroll_token else None)
    if not args.url:
        if token:
            raise ValueError("--enroll needs --url (the bridge that issued the token)")
        return settings
    if not token:
        raise ValueError("--url needs an enrollment token: RADICAL_EDGE_ENROLL_TOKEN, "
                         "--enroll-file FILE or --enroll TOKEN")
    from .workers.edge import default_edge_name

    name = args.name or settings.edge_name or default_edge_name()
    os.environ.pop("RADICAL_EDGE_ENROLL_TOKEN", None)  # single use: not for child processes
    parent = os.environ.pop("RADICAL_EDGE_ENROLL_PARENT", None)
    url = enrollment.redeem(args.url, name, token, settings.bridge_cert, parent)
    via = os.environ.get("RADICAL_EDGE_REDIS_VIA")  # the wrapper's tunnel: host:port
    # bridge_url: where this edge's own children enroll (psij submit_tunneled)
    return settings.with_overrides(redis_url=enrollment.via(url, via) if via else url,
                                   bridge_url=settings.bridge_url or args.url)


def cmd_enroll(args: argparse.Namespace) -> int:
    """`radical-edge enroll create --name N`: a one-time token for edge N (admin)."""
    require("bridge")
    from . import enrollment
    from .sdk.credentials import find_token
    from .settings import get_settings

    settings = get_settings()
    url = args.url or settings.public_url()
    # like every client command: the configured token, else the local token file (loopback)
    admin = find_token(url, settings.token_value())
    try:
        answer = enrollment.issue(url, args.name, admin, args.ttl, settings.bridge_cert)
    except enrollment.EnrollmentError as exc:
        print(f"radical-edge enroll: {exc}", file=sys.stderr)
        return 2
    if args.out:
        enrollment.write_secret(args.out, answer["token"])
        print(f"enrollment token for edge '{answer['name']}' written to {args.out} "
              f"(single use, expires {time.ctime(answer['expires'])})")
    else:
        print(answer["token"])
    return 0


def cmd_flower(args: argparse.Namespace) -> int:
    """Flower on the edges' broker, behind basic auth: `--auth-file`, else the operator's
    FLOWER_BASIC_AUTH (e.g. a container secret), else credentials generated into a 0600
    file (`flower_auth_file`); handed over in the environment, never argv."""
    require("flower")
    import secrets

    from .tokenfile import ensure_secret

    settings = _settings(args)
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


def cmd_up(args: argparse.Namespace) -> int:
    """The main job: Redis (private, or the one configured), a bridge and one local edge."""
    require("all")
    from . import services

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


def _bridge_plugins_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--plugins", help="plugins the bridge hosts itself, under "
                                           "/bridge/<plugin>/ (env RADICAL_EDGE_BRIDGE_PLUGINS)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="radical-edge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"radical.edge {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    add_client_parsers(sub)
    add_transfer_parsers(sub)

    p = sub.add_parser("up", help="run a private Redis (or join --redis-url), a bridge and "
                                  "a local edge")
    _common(p)
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
    _edge_enroll_flags(p)
    p.set_defaults(func=cmd_edge)
    _enroll_parser(sub)

    p = sub.add_parser("flower", help="run Flower on the same broker")
    _common(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5555)
    p.add_argument("--auth-file", help="file with 'user:password' for Flower's basic auth "
                                       "(default ~/.radical/edge/flower-auth, made if missing)")
    p.set_defaults(func=cmd_flower)
    return parser


def _edge_enroll_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="bridge URL to enroll at (then no Redis URL is needed)")
    p.add_argument("--enroll", metavar="TOKEN",
                   help="one-time enrollment token (prefer env RADICAL_EDGE_ENROLL_TOKEN or "
                        "--enroll-file: argv is visible to other users)")
    p.add_argument("--enroll-file", metavar="FILE", help="read the enrollment token from FILE")


def _enroll_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("enroll", help="issue one-time enrollment tokens for edges (admin)")
    esub = p.add_subparsers(dest="enroll_cmd", required=True)
    c = esub.add_parser("create", help="token for one edge name (admin token: "
                                       "RADICAL_EDGE_TOKEN)")
    c.add_argument("-n", "--name", required=True, help="edge name the token is valid for")
    c.add_argument("--url", help="bridge URL (default: RADICAL_BRIDGE_URL or local)")
    c.add_argument("--ttl", type=float, help="lifetime in seconds (default 3600)")
    c.add_argument("--out", help="write the token to this new 0600 file instead of stdout")
    c.set_defaults(func=cmd_enroll)


def main(argv: list[str] | None = None) -> int:
    from .extras import MissingExtra
    from .preflight import PreflightError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (MissingExtra, PreflightError) as exc:
        print(f"radical-edge {args.cmd}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
