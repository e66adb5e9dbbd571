"""Client side of edge enrollment (see bridge_api/enroll.py): issue and redeem tokens.

An edge started with `--url https://bridge:8000` and a one-time token (env
RADICAL_EDGE_ENROLL_TOKEN, a file, or `--enroll`) asks the bridge for its Redis URL and
credentials; no Redis password ever appears on its command line.
"""
from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import httpx

TIMEOUT = 30.0


class EnrollmentError(RuntimeError):
    pass


def _verify(cafile: str | None) -> ssl.SSLContext | bool:
    """Trust the bridge's own certificate when one is configured (self-signed setups)."""
    return ssl.create_default_context(cafile=cafile) if cafile else True


def _detail(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail", r.text))
    except ValueError:
        return r.text[:200]


def read_token(value: str | None, path: str | None) -> str | None:
    """The enrollment token from a file (preferred), the given value or the environment."""
    if path:
        return Path(path).read_text().strip()
    return value or os.environ.get("RADICAL_EDGE_ENROLL_TOKEN") or None


def redeem(bridge_url: str, name: str, token: str, cafile: str | None = None,
           parent: str | None = None) -> str:
    """Trade `token` for edge `name`'s Redis URL (with its credentials: never log it);
    `parent`: the edge that minted the token for this child."""
    body = {"name": name, "token": token, **({"parent": parent} if parent else {})}
    try:
        r = httpx.post(f"{bridge_url.rstrip('/')}/edge/enroll/redeem", json=body, timeout=TIMEOUT,
                       verify=_verify(cafile))
    except httpx.HTTPError as exc:
        raise EnrollmentError(f"cannot reach the bridge at {bridge_url}: {exc}") from None
    if r.status_code != 200:
        raise EnrollmentError(f"enrollment refused ({r.status_code}): {_detail(r)}")
    return str(r.json()["redis_url"])


def issue(bridge_url: str, name: str, admin_token: str | None, ttl: float | None = None,
          cafile: str | None = None) -> dict[str, Any]:
    """Ask the bridge (as admin) for a one-time enrollment token for edge `name`."""
    headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
    body: dict[str, Any] = {"name": name}
    if ttl:
        body["ttl"] = ttl
    try:
        r = httpx.post(f"{bridge_url.rstrip('/')}/edge/enroll", json=body, headers=headers,
                       timeout=TIMEOUT, verify=_verify(cafile))
    except httpx.HTTPError as exc:
        raise EnrollmentError(f"cannot reach the bridge at {bridge_url}: {exc}") from None
    if r.status_code != 200:
        raise EnrollmentError(f"bridge refused ({r.status_code}): {_detail(r)}")
    return r.json()


def via(url: str, host_port: str) -> str:
    """`url` reaching Redis at `host_port` instead (e.g. a tunnel), credentials kept."""
    from urllib.parse import urlsplit, urlunsplit

    u = urlsplit(url)
    auth = u.netloc.rpartition("@")[0]
    return urlunsplit((u.scheme, (auth + "@" if auth else "") + host_port, u.path, u.query,
                       u.fragment))


def write_secret(path: str, text: str) -> None:
    """Write `text` to a new 0600 file (the token must not be world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
