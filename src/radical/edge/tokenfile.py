"""The bridge's admin token on disk: created once (0600 in a 0700 directory), then reused.

`radical-edge up` and `radical-edge bridge` call `ensure_token` unless started with
`--no-auth`; the SDK, the CLI and `up`'s login link read the same file, so nobody has to copy
the token. The token reaches the bridge process through its environment, never argv.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable

from .sdk.credentials import read_token_file
from .settings import Settings


def token_path(settings: Settings) -> Path:
    return Path(settings.token_file).expanduser()  # env RADICAL_EDGE_TOKEN_FILE


def ensure_token(settings: Settings) -> str:
    """The configured token, else the token file's, else a new one written to the file."""
    configured = settings.token_value()
    if configured:
        return configured
    return ensure_secret(token_path(settings), lambda: secrets.token_urlsafe(32))


def ensure_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in `path` (which must be private), else `make()` written there 0600 in a
    0700 directory; two processes racing both end up with the same secret."""
    existing = read_token_file(path)
    if existing:
        _check_private(path)
        return existing
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    secret = make()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; its file is not written yet?
        return read_token_file(path) or ensure_secret(path, make)
    try:
        os.write(fd, secret.encode() + b"\n")
    finally:
        os.close(fd)
    return secret


def _check_private(path: Path) -> None:
    """Refuse a token file others may read: the token is the keys to every edge."""
    mode = path.stat().st_mode & 0o077
    if mode:
        raise PermissionError(f"{path} is readable by other users (mode "
                              f"{oct(path.stat().st_mode & 0o777)}): chmod 600 it")
