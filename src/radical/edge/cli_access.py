"""`radical-edge login` and `radical-edge token create|list|revoke`: access management.

Both talk to the bridge (never to Redis) with the token the SDK would use:
`$RADICAL_EDGE_TOKEN`, else the local token file. Token administration needs `admin`.
Client commands like `edges` and `call` (cli_client.py): SDK only, `--json`, one-line errors.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .cli_client import CommandError, client_flags, connect, emit_json, run_client, table


def _bridge_call(args: argparse.Namespace, method: str, path: str, **kw: Any) -> Any:
    with connect(args) as bc:
        return bc._call(method, path, **kw)


def cmd_login(args: argparse.Namespace) -> int:
    """Print a single-use portal login link (the token itself never enters a URL)."""
    answer = _bridge_call(args, "POST", "/bridge/login-ticket")
    if args.json:
        emit_json(answer)
    else:
        print(answer["url"])
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    if args.action == "create":
        if not args.user or not args.scope:
            raise CommandError("--user and --scope are required")
        rec = _bridge_call(args, "POST", "/bridge/tokens",
                           json={"user": args.user, "scope": args.scope,
                                 "expires": args.expires})
        if args.json:
            emit_json(rec)
            return 0
        info = (f"id {rec['id']}, user {rec['user']}, scope {rec['scope']}, expires "
                f"{_when(rec['expires'])}; the token is shown only now")
        print(rec["token"])
        print(info if args.quiet else f"({info})", file=sys.stderr if args.quiet else sys.stdout)
    elif args.action == "list":
        tokens = _bridge_call(args, "GET", "/bridge/tokens")["tokens"]
        if args.json:
            emit_json(tokens)
            return 0
        print(table(["id", "user", "scope", "kind", "expires"],
                    [[t["id"], t["user"], t["scope"], t.get("kind", ""),
                      _when(t.get("expires"))] for t in tokens]))
    else:
        if not args.id:
            raise CommandError("give a token id or a user name")
        n = _bridge_call(args, "DELETE", f"/bridge/tokens/{args.id}")["revoked"]
        if args.json:
            emit_json({"revoked": n})
        else:
            print(f"revoked {n} token(s)")
    return 0


def _when(epoch: float | None) -> str:
    if not epoch:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def add_access_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("login", help="print a single-use portal login link")
    client_flags(p)
    p.set_defaults(func=lambda a: run_client(cmd_login, a))

    p = sub.add_parser("token", help="named tokens: create, list, revoke (admin)")
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("id", nargs="?", help="revoke: token id or user name")
    p.add_argument("--user", help="create: the user the token identifies")
    p.add_argument("--scope", choices=["read", "submit", "admin"], help="create: its scope")
    p.add_argument("--expires", help="create: lifetime, e.g. 3600, 12h, 30d (default never)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="create: only the token on stdout (details on stderr)")
    client_flags(p)
    p.set_defaults(func=lambda a: run_client(cmd_token, a))
