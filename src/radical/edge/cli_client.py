"""The user's commands: `radical-edge edges | call | events | jobs`.

They use the SDK only (httpx), so they run with the client install (`pip install
radical.edge`, no extras). Output is a plain table for people and `--json` for scripts;
an error is one line with the server's `detail` (`--debug` shows the traceback).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

#: the bridge `radical-edge up` and `bridge` serve by default
DEFAULT_URL = "http://127.0.0.1:8000"


class CommandError(Exception):
    """A one-line error for the user (bad argument, nothing to show)."""


# -- shared by every client command (cli_access too) -----------------------------------------
def bridge_url(args: argparse.Namespace) -> str:
    """`--url`, else `$RADICAL_BRIDGE_URL`, else the local bridge's public URL."""
    url = getattr(args, "url", None) or os.environ.get("RADICAL_BRIDGE_URL")
    if url:
        return url
    try:  # a server install knows the configured host/port/TLS of the local bridge
        from .settings import get_settings

        return get_settings().public_url()
    except ImportError:  # the client install: no pydantic-settings
        return DEFAULT_URL


def connect(args: argparse.Namespace) -> Any:
    from .sdk import BridgeClient

    return BridgeClient(bridge_url(args))


def run_client(func: Callable[[argparse.Namespace], int],
               args: argparse.Namespace) -> int:
    """Run a client command; errors become one line on stderr (exit 1) unless `--debug`."""
    from .sdk.errors import EdgeConnectionError, EdgeError, EdgeTimeoutError

    debug = bool(getattr(args, "debug", False))
    if debug:
        logging.basicConfig(level=logging.DEBUG)
    else:  # the SDK's warnings (e.g. "generic PluginClient") are not the user's business
        logging.getLogger("radical.edge").setLevel(logging.ERROR)
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except (EdgeError, CommandError, ValueError, OSError) as exc:
        if debug:
            raise
        text = one_line(exc)
        if isinstance(exc, EdgeTimeoutError):
            text = f"no answer from the bridge at {bridge_url(args)} in time: {exc.detail}"
        elif isinstance(exc, EdgeConnectionError):
            text = f"cannot reach the bridge at {bridge_url(args)}: {exc.detail}"
        print(f"radical-edge {args.cmd}: {text}", file=sys.stderr)
        return 1


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def emit_json(obj: Any) -> None:
    print(json.dumps(obj, sort_keys=True, default=str))


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A left-aligned text table (no extra dependency for a few columns)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


@contextlib.contextmanager
def waiting(what: str, show: bool) -> Iterator[None]:
    """Elapsed time on stderr while a long call runs (only on a terminal, after 1 s)."""
    if not show:
        yield
        return
    done = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        while not done.wait(1.0):
            sys.stderr.write(f"\r{what} ... {time.monotonic() - start:.0f} s")
            sys.stderr.flush()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        if time.monotonic() - start >= 1.0:
            sys.stderr.write("\r\033[K")


# -- edges ------------------------------------------------------------------------------------
def cmd_edges(args: argparse.Namespace) -> int:
    with connect(args) as bc:
        edges = bc.topology().get("edges") or {}
    if args.json:
        emit_json(edges)
        return 0
    rows = []
    for name, info in sorted(edges.items()):
        state = "alive" if info.get("accepting", True) else "draining"
        beat = info.get("heartbeat_age")
        rows.append([name, info.get("role") or "-", state,
                     f"{beat:.1f}s" if isinstance(beat, (int, float)) else "-",
                     duration(info.get("walltime_remaining")),
                     ",".join(sorted(info.get("plugins") or {})) or "-"])
    print(table(["edge", "role", "state", "heartbeat", "walltime", "plugins"], rows)
          if rows else "no edges connected")
    return 0


# -- call -------------------------------------------------------------------------------------
def cmd_call(args: argparse.Namespace) -> int:
    body = None
    if args.body is not None:
        text = args.body
        if text.startswith("@"):
            text = sys.stdin.read() if text == "@-" else Path(text[1:]).read_text()
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise CommandError(f"the body is not JSON: {exc}") from None
    method = (args.method or ("POST" if body is not None else "GET")).upper()
    with connect(args) as bc:
        plugin = bc.get_edge_client(args.edge).plugin_client(args.plugin)
        path = args.path
        if args.session:
            plugin.register_session()
            path = path.replace("{sid}", plugin.sid)
        try:
            with waiting(f"{method} /{args.edge}/{args.plugin}/{path}",
                         sys.stderr.isatty() and not args.json):
                answer = plugin._request(method, path, json=body, timeout=args.timeout)
        finally:
            if args.session:
                plugin.close()
    if isinstance(answer, bytes):
        sys.stdout.buffer.write(answer)
    elif isinstance(answer, str):
        print(answer)
    elif args.json:
        emit_json(answer)
    else:
        print(json.dumps(answer, indent=2, sort_keys=True, default=str))
    return 0


# -- events -----------------------------------------------------------------------------------
def cmd_events(args: argparse.Namespace) -> int:
    """Print notifications as they come (optionally topology changes), until Ctrl-C,
    `--count` events or `--timeout` seconds."""
    events: queue.Queue = queue.Queue()

    def on_note(edge: str, plugin: str, topic: str, data: Any) -> None:
        events.put({"edge": edge, "plugin": plugin, "topic": topic, "data": data})

    def on_topology(edges: dict) -> None:
        events.put({"topic": "topology", "edges": sorted(edges)})

    deadline = time.monotonic() + args.timeout if args.timeout else None
    with connect(args) as bc:
        bc.topology()  # fails at once (one line) if the bridge is unreachable or refuses us
        bc.register_callback(args.edge, args.plugin, args.topic, on_note)
        if args.topology:
            bc.register_topology_callback(on_topology)
        if not bc.wait_for_listener(timeout=30):
            raise CommandError(f"no event stream from {bc.url}/events within 30 s")
        print(f"listening to {bc.url}/events (Ctrl-C stops)", file=sys.stderr, flush=True)
        seen = 0
        while args.count is None or seen < args.count:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                event = events.get(timeout=min(left, 1.0) if left is not None else 1.0)
            except queue.Empty:
                continue
            seen += 1
            if args.json:
                emit_json(event)
            elif event["topic"] == "topology":
                print(f"{time.strftime('%H:%M:%S')} topology  edges: "
                      f"{', '.join(event['edges']) or 'none'}", flush=True)
            else:
                print(f"{time.strftime('%H:%M:%S')} {event['edge']}/{event['plugin']} "
                      f"{event['topic']}  {json.dumps(event['data'], default=str)}", flush=True)
    return 0


# -- jobs -------------------------------------------------------------------------------------
def cmd_jobs(args: argparse.Namespace) -> int:
    """Batch jobs as each edge's scheduler sees them (queue_info), across edges."""
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    with connect(args) as bc:
        edges = bc.topology().get("edges") or {}
        wanted = [args.edge] if args.edge else sorted(edges)
        if args.edge and args.edge not in edges:
            raise CommandError(f"unknown edge '{args.edge}' (connected: "
                               f"{', '.join(sorted(edges)) or 'none'})")
        for name in wanted:
            if "queue_info" not in (edges[name].get("plugins") or {}):
                skipped.append(name)
                continue
            with bc.get_edge_client(name).get_plugin("queue_info") as qi:
                for job in qi.list_all_jobs(user=args.user, force=True).get("jobs", []):
                    rows.append({"edge": name, **job})
    if args.json:
        emit_json({"jobs": rows, "skipped": skipped})
        return 0
    if rows:
        cols = ["edge", "job_id", "job_name", "user", "partition", "state", "nodes",
                "time_used", "time_limit"]
        print(table(cols, [[r.get(c, "") for c in cols] for r in rows]))
    else:
        print("no jobs")
    if skipped:
        print(f"(no queue_info plugin on: {', '.join(skipped)})", file=sys.stderr)
    return 0


# -- parsers ----------------------------------------------------------------------------------
def client_flags(p: argparse.ArgumentParser, json_help: str = "machine-readable output") -> None:
    """The flags every client command takes."""
    p.add_argument("--url", help=f"bridge URL (env RADICAL_BRIDGE_URL; default {DEFAULT_URL})")
    p.add_argument("--json", action="store_true", help=json_help)
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def add_client_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("edges", help="list the connected edges (role, liveness, walltime)")
    client_flags(p, "the /edge/list entries as JSON")
    p.set_defaults(func=lambda a: run_client(cmd_edges, a))

    p = sub.add_parser("call", help="call a plugin route: EDGE PLUGIN PATH [JSON]")
    p.add_argument("edge")
    p.add_argument("plugin")
    p.add_argument("path", help="route under the plugin, e.g. 'metrics/{sid}' with --session")
    p.add_argument("body", nargs="?", help="JSON body ('@FILE' or '@-' reads it); makes the "
                                           "default method POST")
    p.add_argument("-X", "--method", help="HTTP method (default GET, POST with a body)")
    p.add_argument("--session", action="store_true",
                   help="open a session first, put its id where PATH says {sid}, close it after")
    p.add_argument("--timeout", type=float, help="deadline of the call in seconds")
    client_flags(p, "compact JSON on one line")
    p.set_defaults(func=lambda a: run_client(cmd_call, a))

    p = sub.add_parser("events", help="follow notifications live (SSE)")
    p.add_argument("--edge", help="only this edge's")
    p.add_argument("--plugin", help="only this plugin's")
    p.add_argument("--topic", help="only this topic")
    p.add_argument("--topology", action="store_true", help="also print topology changes")
    p.add_argument("-n", "--count", type=int, help="stop after N events")
    p.add_argument("--timeout", type=float, help="stop after this many seconds")
    client_flags(p, "one JSON object per event")
    p.set_defaults(func=lambda a: run_client(cmd_events, a))

    p = sub.add_parser("jobs", help="batch jobs on every edge's scheduler (queue_info)")
    p.add_argument("--edge", help="only this edge")
    p.add_argument("--user", help="this user's jobs (default: the edge's user)")
    client_flags(p)
    p.set_defaults(func=lambda a: run_client(cmd_jobs, a))
