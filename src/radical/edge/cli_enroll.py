"""Enrollment on the command line: `radical-edge enroll create` (an admin issues a one-time
token for an edge name) and the edge's side, `radical-edge edge --url BRIDGE --enroll...`
(redeem it for the Redis URL and credentials, so no Redis URL has to be handed out)."""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING

from .extras import require

if TYPE_CHECKING:
    from .settings import Settings


def enrolled(args: argparse.Namespace, settings: "Settings") -> "Settings":
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


def edge_enroll_flags(p: argparse.ArgumentParser) -> None:
    """The `radical-edge edge` flags that enroll it at a bridge."""
    p.add_argument("--url", help="bridge URL to enroll at (then no Redis URL is needed)")
    p.add_argument("--enroll", metavar="TOKEN",
                   help="one-time enrollment token (prefer env RADICAL_EDGE_ENROLL_TOKEN or "
                        "--enroll-file: argv is visible to other users)")
    p.add_argument("--enroll-file", metavar="FILE", help="read the enrollment token from FILE")


def add_enroll_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("enroll", help="issue one-time enrollment tokens for edges (admin)")
    esub = p.add_subparsers(dest="enroll_cmd", required=True)
    c = esub.add_parser("create", help="token for one edge name (admin token: "
                                       "RADICAL_EDGE_TOKEN)")
    c.add_argument("-n", "--name", required=True, help="edge name the token is valid for")
    c.add_argument("--url", help="bridge URL (default: RADICAL_BRIDGE_URL or local)")
    c.add_argument("--ttl", type=float, help="lifetime in seconds (default 3600)")
    c.add_argument("--out", help="write the token to this new 0600 file instead of stdout")
    c.set_defaults(func=cmd_enroll)
