"""How an edge started with the original `--url <bridge>` finds the Redis it must join.

The original edge connected to the bridge itself; here edges join the bridge's Redis. So a
bridge URL is turned into a Redis URL by one function, `resolve_redis_url`: the
`RADICAL_EDGE_REDIS_URL` environment variable when set, else the bridge's `GET
/bridge/broker` (token-protected). Enrollment (`POST /edge/enroll` + `--enroll TOKEN`) can
replace the second step without touching the callers.
"""
from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import httpx

#: the bridge route answering `{"redis_url": ...}`
BROKER_ROUTE = "/bridge/broker"


class BrokerLookupError(RuntimeError):
    """The Redis URL could not be found (bridge unreachable, refused, or odd answer)."""


def http_url(bridge_url: str) -> str:
    """The original took ws(s):// bridge URLs; the bridge's HTTP API is at http(s)://."""
    url = bridge_url.strip().rstrip("/")
    for ws, http in (("wss://", "https://"), ("ws://", "http://")):
        if url.startswith(ws):
            url = http + url[len(ws):]
    if url.endswith("/register"):  # the original's WebSocket endpoint
        url = url[: -len("/register")]
    return url


def split_token(url: str) -> tuple[str, str | None]:
    """`https://:TOKEN@host` -> (`https://host`, TOKEN): the original carried the token
    in the URL; it is sent as a header instead and kept out of logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), \
        (password or user or None)


def resolve_redis_url(bridge_url: str | None, *, token: str | None = None,
                      cert: str | None = None, timeout: float = 15.0,
                      env: dict[str, str] | None = None) -> str:
    """The Redis URL an edge joins: `$RADICAL_EDGE_REDIS_URL`, else asked of the bridge."""
    environ = os.environ if env is None else env
    explicit = (environ.get("RADICAL_EDGE_REDIS_URL") or "").strip()
    if explicit:
        return explicit
    if not bridge_url:
        raise BrokerLookupError("no Redis URL: set RADICAL_EDGE_REDIS_URL or pass the "
                                "bridge URL (--url)")
    url, url_token = split_token(http_url(bridge_url))
    token = token or url_token or environ.get("RADICAL_EDGE_TOKEN") or None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    cert = cert or environ.get("RADICAL_BRIDGE_CERT") or None
    verify: bool | str = cert if (cert and url.startswith("https")) else True
    try:
        resp = httpx.get(url + BROKER_ROUTE, headers=headers, verify=verify, timeout=timeout)
    except httpx.HTTPError as exc:
        raise BrokerLookupError(f"bridge {url} not reachable: {exc}") from exc
    if resp.status_code != 200:
        try:
            detail = resp.json().get("detail")
        except ValueError:
            detail = resp.text[:200]
        raise BrokerLookupError(f"bridge {url} refused to name its broker "
                                f"(HTTP {resp.status_code}): {detail}")
    try:
        redis_url = resp.json()["redis_url"]
    except (ValueError, KeyError, TypeError):
        raise BrokerLookupError(f"bridge {url} gave no redis_url") from None
    if not isinstance(redis_url, str) or not redis_url:
        raise BrokerLookupError(f"bridge {url} gave no redis_url")
    return redis_url
