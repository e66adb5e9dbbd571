"""radical-edge: run the server parts (up, bridge, edge, flower, enroll) and use them
(edges, call, events, jobs, put, get, token, login).

The client commands need only httpx (`pip install radical.edge`); a server command whose
packages are missing says which extra to install instead of failing with an ImportError.
"""
from __future__ import annotations

import argparse
import sys

from .cli_access import add_access_parsers
from .cli_client import add_client_parsers
from .cli_enroll import add_enroll_parser
from .cli_server import add_bridge_parser, add_edge_parser, add_flower_parser
from .cli_transfer import add_transfer_parsers
from .cli_up import add_up_parser
from .version import __version__


def build_parser() -> argparse.ArgumentParser:
    """Every command, each defined with its implementation (cli_*.py); order is --help's."""
    parser = argparse.ArgumentParser(prog="radical-edge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"radical.edge {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    add_client_parsers(sub)
    add_transfer_parsers(sub)
    add_up_parser(sub)
    add_bridge_parser(sub)
    add_access_parsers(sub)
    add_edge_parser(sub)
    add_enroll_parser(sub)
    add_flower_parser(sub)
    return parser


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
