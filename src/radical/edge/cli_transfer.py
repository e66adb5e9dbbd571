"""`radical-edge put | get`: files to and from an edge (the staging plugin), with progress.

SDK only (the staging plugin's client, httpx): runs with the client install. Transfers
are chunked, sha256-checked and resumable (`--resume`); see docs/staging.md.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable

from .cli_client import CommandError, client_flags, connect, emit_json, run_client

Progress = Callable[[int, int], None]


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def progress_bar(label: str, show: bool, width: int = 30) -> Progress | None:
    """A `(done, total)` callback drawing a bar on stderr (at most 5 times a second)."""
    if not show:
        return None
    start = time.monotonic()
    last = [0.0]

    def update(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.2 and done < total:
            return
        last[0] = now
        frac = done / total if total else 1.0
        fill = int(width * frac)
        rate = done / max(now - start, 1e-6)
        sys.stderr.write(f"\r{label} [{'#' * fill}{'.' * (width - fill)}] {frac * 100:5.1f}% "
                         f"{_human(done)}/{_human(total)} {_human(rate)}/s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return update


def _staging(bc: Any, edge: str) -> Any:
    from .plugins.staging.client import StagingClient

    client = bc.get_edge_client(edge).plugin_client("staging")
    if not isinstance(client, StagingClient):  # an edge announcing another client class
        raise CommandError(f"edge '{edge}' has no usable staging plugin")
    client.register_session()
    return client


def _show(args: argparse.Namespace) -> bool:
    return args.progress or (sys.stderr.isatty() and not args.json)


def _transfer(args: argparse.Namespace, upload: bool) -> int:
    """`put` (upload) or `get` (download) through a staging session on the edge."""
    remote, local = (args.tgt, args.src) if upload else (args.src, args.tgt)
    label = (f"{local} -> {args.edge}:{remote}" if upload
             else f"{args.edge}:{remote} -> {local}")
    with connect(args) as bc:
        with _staging(bc, args.edge) as st:
            move = st.upload if upload else st.download
            done = move(args.src, args.tgt, overwrite=args.overwrite, resume=args.resume,
                        progress=progress_bar(label, _show(args)))
    if args.json:
        emit_json(done)
    else:
        print(f"{label} ({done['size']} bytes, sha256 {done['sha256']})")
    return 0


def cmd_put(args: argparse.Namespace) -> int:
    return _transfer(args, upload=True)


def cmd_get(args: argparse.Namespace) -> int:
    return _transfer(args, upload=False)


def add_transfer_parsers(sub: argparse._SubParsersAction) -> None:
    for name, func, what in (("put", cmd_put, "upload a local file SRC to TGT on EDGE"),
                             ("get", cmd_get, "download SRC on EDGE to the local file TGT")):
        p = sub.add_parser(name, help=f"{what} (staging plugin; sha256-checked, resumable)")
        p.add_argument("edge")
        p.add_argument("src")
        p.add_argument("tgt")
        p.add_argument("--overwrite", action="store_true", help="replace an existing TGT")
        p.add_argument("--resume", action="store_true", help="continue a partial TGT")
        p.add_argument("--progress", action="store_true",
                       help="draw the progress bar even when stderr is not a terminal")
        client_flags(p)
        p.set_defaults(func=lambda a, f=func: run_client(f, a))
