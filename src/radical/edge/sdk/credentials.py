"""Where the SDK finds its bearer token without anyone copying it around.

Order: the `token=` argument, `$RADICAL_EDGE_TOKEN`, then the token file the local bridge
wrote (`$RADICAL_EDGE_TOKEN_FILE`, default `~/.radical/edge/token`, mode 0600). The file's
token is only ever sent to a bridge on this machine's loopback interface, so a script
pointed at a remote bridge cannot leak the local admin token to it.
"""
from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_TOKEN_FILE = "~/.radical/edge/token"


def token_file() -> Path:
    return Path(os.environ.get("RADICAL_EDGE_TOKEN_FILE") or DEFAULT_TOKEN_FILE).expanduser()


def read_token_file(path: Path | None = None) -> str | None:
    """The token stored in `path` (default: `token_file()`), or None if there is none."""
    try:
        text = (path or token_file()).read_text().strip()
    except OSError:
        return None
    return text or None


def is_local(url: str) -> bool:
    """True when `url` points at this host only (a token may go there; a child on
    another node cannot reach it)."""
    host = (urlsplit(url).hostname or "").strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def find_token(url: str, explicit: str | None = None) -> str | None:
    """The token to present to the bridge at `url` (see the module doc for the order)."""
    if explicit:
        return explicit
    env = os.environ.get("RADICAL_EDGE_TOKEN")
    if env:
        return env
    return read_token_file() if is_local(url) else None
