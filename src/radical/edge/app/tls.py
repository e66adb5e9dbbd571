"""TLS to Redis (`rediss://`), configured from the URL alone, the same for every client.

Why one place: the bridge and edges talk to Redis through three clients (redis-py, the lean
pipelined/pub-sub connections on the hot path, and kombu under Celery); each takes TLS
options differently. A URL such as

    rediss://user:pass@redis.example:6380/0?ssl_ca_certs=/etc/ssl/redis-ca.pem

(optionally `ssl_certfile`/`ssl_keyfile` for client certificates, `ssl_cert_reqs=required|
optional|none`, `ssl_check_hostname=false`) is read here and turned into what each needs.
Certificates are verified by default; `ssl_cert_reqs=none` must be asked for explicitly.
"""
from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import parse_qs, urlparse

_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE,
         "cert_required": ssl.CERT_REQUIRED, "cert_optional": ssl.CERT_OPTIONAL,
         "cert_none": ssl.CERT_NONE}


def is_tls(url: str) -> bool:
    return urlparse(url).scheme == "rediss"


def options(url: str) -> dict[str, Any]:
    """The TLS query parameters of `url` (defaults filled in), as redis-py names them."""
    query = {k: v[-1] for k, v in parse_qs(urlparse(url).query).items()}
    reqs = query.get("ssl_cert_reqs", "required").lower()
    if reqs not in _REQS:
        raise ValueError(f"ssl_cert_reqs must be required, optional or none, not {reqs!r}")
    return {
        "ssl_cert_reqs": _REQS[reqs],
        "ssl_ca_certs": query.get("ssl_ca_certs"),
        "ssl_certfile": query.get("ssl_certfile"),
        "ssl_keyfile": query.get("ssl_keyfile"),
        "ssl_check_hostname": query.get("ssl_check_hostname", "true").lower()
        not in ("false", "0", "no") and _REQS[reqs] != ssl.CERT_NONE,
    }


def context(url: str) -> ssl.SSLContext | None:
    """An SSLContext for asyncio connections to `url`, None for plain `redis://`."""
    if not is_tls(url):
        return None
    opts = options(url)
    ctx = ssl.create_default_context(cafile=opts["ssl_ca_certs"])
    ctx.check_hostname = opts["ssl_check_hostname"]
    ctx.verify_mode = opts["ssl_cert_reqs"]
    if opts["ssl_certfile"]:
        ctx.load_cert_chain(opts["ssl_certfile"], opts["ssl_keyfile"])
    return ctx


def celery_broker_ssl(url: str) -> dict[str, Any] | None:
    """Celery's `broker_use_ssl` for `url` (kombu's Redis transport), None without TLS."""
    if not is_tls(url):
        return None
    opts = options(url)
    out = {"ssl_cert_reqs": opts["ssl_cert_reqs"], "ssl_ca_certs": opts["ssl_ca_certs"],
           "ssl_check_hostname": opts["ssl_check_hostname"]}
    if opts["ssl_certfile"]:
        out.update(ssl_certfile=opts["ssl_certfile"], ssl_keyfile=opts["ssl_keyfile"])
    return out


def strip_query(url: str) -> str:
    """`url` without its query (kombu would otherwise read it as transport options)."""
    return urlparse(url)._replace(query="").geturl()
