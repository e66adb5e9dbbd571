"""Checks a server command makes before it starts, so a mistake is one clear line
(`radical-edge bridge: ...`) instead of a traceback from deep inside uvicorn or kombu."""
from __future__ import annotations

import os

#: Redis URL schemes redis-py and kombu both understand (plus our sentinel:// form)
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "sentinel://")


class PreflightError(ValueError):
    """A configuration mistake; `cli.main` prints it as one line and exits with 2."""

    def __init__(self, command: str, message: str) -> None:
        super().__init__(message)
        self.command = command


def check_redis_url(command: str, url: str) -> None:
    """A Redis URL redis-py can parse; never echoes a password."""
    from .app import sentinel
    from .app.redis_conn import redacted

    shown = redacted(url)
    if not url.startswith(REDIS_SCHEMES):
        raise PreflightError(command, f"bad Redis URL '{shown}': it must start with "
                                      f"{', '.join(REDIS_SCHEMES)}")
    try:
        if sentinel.is_sentinel(url):
            sentinel.parse(url)
        else:
            from redis.connection import parse_url

            parse_url(url)
    except ValueError as exc:
        raise PreflightError(command, f"bad Redis URL '{shown}': {exc}") from None


def check_tls_files(command: str, cert: str | None, key: str | None) -> None:
    """Both or neither of certificate and key, and both readable files."""
    if bool(cert) != bool(key):
        raise PreflightError(command, "TLS needs both a certificate and a key "
                                      "(--cert/--key or RADICAL_BRIDGE_CERT/RADICAL_BRIDGE_KEY)")
    for what, path in (("certificate", cert), ("key", key)):
        if path and not os.path.isfile(path):
            raise PreflightError(command, f"TLS {what} file '{path}' does not exist")
        if path and not os.access(path, os.R_OK):
            raise PreflightError(command, f"TLS {what} file '{path}' is not readable")


def check_tls_loads(command: str, cert: str | None, key: str | None) -> None:
    """The certificate and key form a pair Python's ssl accepts."""
    if not (cert and key):
        return
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise PreflightError(command, f"cannot use TLS certificate '{cert}' with key "
                                      f"'{key}': {exc}") from None
