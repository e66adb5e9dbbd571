"""`radical-edge login` and `radical-edge token create|list|revoke`: access management.

Both talk to the bridge (never to Redis) with the token the SDK would use:
`$RADICAL_EDGE_TOKEN`, else the local token file. Token administration needs `admin`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any


def _bridge_call(args: argparse.Namespace, method: str, path: str, **kw: Any) -> Any:
    """Call the bridge; an error ends the command with the bridge's detail."""
    from .sdk import BridgeClient
    from .sdk.errors import EdgeError
    from .settings import get_settings

    url = args.url or os.environ.get("RADICAL_BRIDGE_URL") or get_settings().public_url()
    with BridgeClient(url) as bc:
        try:
            return bc._call(method, path, **kw)
        except EdgeError as exc:
            raise SystemExit(f"radical-edge: {method} {path}: {exc}") from None


def cmd_login(args: argparse.Namespace) -> int:
    """Print a single-use portal login link (the token itself never enters a URL)."""
    print(_bridge_call(args, "POST", "/bridge/login-ticket")["url"])
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    if args.action == "create":
        if not args.user or not args.scope:
            raise SystemExit("radical-edge token create: --user and --scope are required")
        rec = _bridge_call(args, "POST", "/bridge/tokens",
                           json={"user": args.user, "scope": args.scope,
                                 "expires": args.expires})
        info = (f"id {rec['id']}, user {rec['user']}, scope {rec['scope']}, expires "
                f"{_when(rec['expires'])}; the token is shown only now")
        print(rec["token"])
        print(info if args.quiet else f"({info})", file=sys.stderr if args.quiet else sys.stdout)
    elif args.action == "list":
        print(f"{'id':12}  {'user':16} {'scope':6} {'kind':7} expires")
        for t in _bridge_call(args, "GET", "/bridge/tokens")["tokens"]:
            print(f"{t['id']:12}  {t['user']:16} {t['scope']:6} {t.get('kind', ''):7} "
                  f"{_when(t.get('expires'))}")
    else:
        if not args.id:
            raise SystemExit("radical-edge token revoke: give a token id or a user name")
        n = _bridge_call(args, "DELETE", f"/bridge/tokens/{args.id}")["revoked"]
        print(f"revoked {n} token(s)")
    return 0


def _when(epoch: float | None) -> str:
    if not epoch:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def add_access_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("login", help="print a single-use portal login link")
    p.add_argument("--url", help="bridge URL (env RADICAL_BRIDGE_URL)")
    p.set_defaults(func=cmd_login)

    p = sub.add_parser("token", help="named tokens: create, list, revoke (admin)")
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("id", nargs="?", help="revoke: token id or user name")
    p.add_argument("--user", help="create: the user the token identifies")
    p.add_argument("--scope", choices=["read", "submit", "admin"], help="create: its scope")
    p.add_argument("--expires", help="create: lifetime, e.g. 3600, 12h, 30d (default never)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="create: only the token on stdout (details on stderr)")
    p.add_argument("--url", help="bridge URL (env RADICAL_BRIDGE_URL)")
    p.set_defaults(func=cmd_token)
