"""Container entrypoint: `bridge | edge | flower | healthcheck | secrets [args]`.

Why a script: secrets arrive as files (compose secrets under /run/secrets), never in the
image, the compose file, argv or `docker inspect`'s environment. This script turns them into
what radical.edge reads (a Redis URL with the role's ACL user and password, Flower's basic
auth) just before it execs the real process, so PID 1 is radical-edge itself and gets the
signals. `secrets` writes a fresh set of them (ACL file, passwords, admin token) for
docker/compose.yaml; `healthcheck` is the image's HEALTHCHECK.
"""
from __future__ import annotations

import argparse
import os
import secrets as pysecrets
import socket
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path

from radical.edge.app import acl, keys
from radical.edge.settings import Settings

ROLES = ("bridge", "edge", "flower")
#: files `secrets` writes (compose.yaml mounts each into the one service that needs it)
ACL_FILE, ADMIN_TOKEN, FLOWER_AUTH = "redis_users.acl", "admin_token", "flower_auth"


def redis_user(role: str) -> str:
    if role == "edge":
        return acl.edge_user(edge_name())
    return acl.flower_user() if role == "flower" else acl.bridge_user()


def edge_name() -> str:
    return Settings().edge_name or socket.gethostname().split(".")[0]


def _read_secret(var: str) -> str | None:
    """The content of the file named by `$var` (None when `$var` is not set)."""
    path = os.environ.pop(var, None)
    if not path:
        return None
    value = Path(path).read_text().strip()
    if not value:
        raise SystemExit(f"entrypoint: {var}={path} is empty")
    return value


def configure(role: str) -> None:
    """Put the role's credentials into the environment radical.edge reads."""
    password = _read_secret("REDIS_PASSWORD_FILE")
    if password:
        base = Settings().redis_url  # read now: the environment is what counts
        user = os.environ.pop("REDIS_USER", None) or redis_user(role)
        os.environ["RADICAL_EDGE_REDIS_URL"] = acl.Credentials(user, password).url(base)
    basic_auth = _read_secret("FLOWER_BASIC_AUTH_FILE")
    if basic_auth:  # Flower reads every option from FLOWER_<OPTION>
        os.environ["FLOWER_BASIC_AUTH"] = basic_auth


#: the role this container runs, for `healthcheck` (PID 1's title may be changed by
#: setproctitle, which Celery uses when it is installed)
ROLE_FILE = Path("/tmp/radical-edge-role")


def run(role: str, args: list[str]) -> None:
    configure(role)
    try:
        ROLE_FILE.write_text(role)
    except OSError as exc:  # no writable /tmp: the container runs, its healthcheck fails
        print(f"entrypoint: {ROLE_FILE}: {exc}", file=sys.stderr)
    argv = ["radical-edge", role]
    if role == "flower":
        argv += ["--host", os.environ.get("FLOWER_HOST", "127.0.0.1"),
                 "--port", os.environ.get("FLOWER_PORT", "5555")]
    os.execvp(argv[0], argv + args)


def _http_status(url: str) -> int:
    # the bridge's own certificate on loopback: the name may not match, the check is liveness
    context = ssl._create_unverified_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=4, context=context) as reply:  # noqa: S310
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code


def healthcheck() -> int:
    """0 when the role this container runs answers."""
    role = ROLE_FILE.read_text().strip() if ROLE_FILE.exists() else ""
    try:
        if role == "bridge":
            settings = Settings()  # the bridge's own: host, port, TLS
            host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
            tls = settings.bridge_cert and settings.bridge_key
            base = f"{'https' if tls else 'http'}://{host}:{settings.port}"
            status = _http_status(base + "/health")
            if status in (401, 404):  # a bridge without /health: the public portal page
                status = _http_status(base + "/")
            return 0 if status == 200 else 1
        if role == "flower":
            port = int(os.environ.get("FLOWER_PORT", "5555"))
            socket.create_connection((os.environ.get("FLOWER_HOST", "127.0.0.1"), port),
                                     timeout=4).close()
            return 0
        if role == "edge":
            return _edge_announced()
    except OSError as exc:
        print(f"healthcheck: {exc}", file=sys.stderr)
        return 1
    print(f"healthcheck: no role in {ROLE_FILE}", file=sys.stderr)
    return 1


def _edge_announced() -> int:
    """An edge is healthy while its announcement (renewed by its heartbeat) is in Redis."""
    import redis

    configure("edge")
    client = redis.Redis.from_url(os.environ["RADICAL_EDGE_REDIS_URL"], socket_timeout=4)
    try:
        return 0 if client.exists(keys.edge_info(edge_name())) else 1
    finally:
        client.close()


def write_secrets(out: Path, edges: list[str]) -> None:
    """A fresh ACL file (default user off; bridge, flower and one user per edge), their
    passwords, the bridge's admin token and Flower's basic-auth pair, each file 0600."""
    out.mkdir(parents=True, exist_ok=True)
    users = {acl.bridge_user(): ("bridge", acl.bridge_rules()),
             acl.flower_user(): ("flower", acl.flower_rules())}
    users.update({acl.edge_user(name): (f"edge-{name}", acl.edge_rules(name)) for name in edges})
    lines = {}
    for user, (label, rules) in users.items():
        password = acl.new_password()
        _write(out / f"redis_password_{label}", password)
        lines[user] = (password, rules)
    _write(out / ACL_FILE, "\n".join(acl.acl_file_lines(lines)))
    _write(out / ADMIN_TOKEN, pysecrets.token_urlsafe(32))
    _write(out / FLOWER_AUTH, f"admin:{pysecrets.token_urlsafe(24)}")


def _write(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def main(argv: list[str]) -> int:
    role, rest = (argv[0], argv[1:]) if argv else ("bridge", [])
    if role in ROLES:
        run(role, rest)
    if role == "healthcheck":
        return healthcheck()
    if role == "secrets":
        p = argparse.ArgumentParser(prog="entrypoint secrets")
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--edge", action="append", required=True, help="edge name (repeat)")
        a = p.parse_args(rest)
        write_secrets(a.out, a.edge)
        return 0
    if role.startswith("-") or role == "radical-edge":  # `docker run IMAGE --version` etc.
        os.execvp("radical-edge", ["radical-edge", *(rest if role == "radical-edge" else argv)])
    print(f"entrypoint: unknown role {role!r}: one of {', '.join(ROLES)}, healthcheck, secrets",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
