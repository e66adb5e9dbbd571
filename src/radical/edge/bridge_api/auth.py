"""Optional bearer-token auth, as a pure ASGI middleware (cheap, and safe for streaming).

When a token is configured every route needs it, SSE included; only the static portal shell
(`GET /` and `/portal/*`, which hold no data and execute nothing) loads without it so the
page can ask the user for the token. The token may come as `Authorization: Bearer`, as a
`radical_edge_token` cookie, or (for EventSource, which cannot set headers) as `?token=`.
Request logs redact query strings, so tokens never reach the logs.
"""
from __future__ import annotations

import hmac
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

import orjson

COOKIE = "radical_edge_token"
#: edges redeem a one-time enrollment token here; they hold no bridge token (enroll.py)
ENROLL_REDEEM = "/edge/enroll/redeem"


class TokenAuth:
    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.token is None:
            scope["auth_ok"] = False
            return await self.app(scope, receive, send)
        valid = self._valid(scope)
        if valid or self._public(scope):
            scope["auth_ok"] = valid
            return await self.app(scope, receive, send)
        body = orjson.dumps({"detail": "missing or invalid bearer token"})
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"www-authenticate", b"Bearer"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _public(scope: dict) -> bool:
        path = scope["path"]
        if path == ENROLL_REDEEM and scope["method"] == "POST":  # the body holds a credential
            return True
        return scope["method"] in ("GET", "HEAD") and (path == "/" or path.startswith("/portal/"))

    def _valid(self, scope: dict) -> bool:
        for presented in _presented(scope):
            if hmac.compare_digest(presented, self.token or b""):
                return True
        return False


def _presented(scope: dict) -> list[bytes]:
    found = []
    for name, value in scope.get("headers", []):
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            found.append(value[7:].strip())
        elif name == b"cookie":
            cookie = SimpleCookie()
            try:
                cookie.load(value.decode("latin-1"))
            except Exception:
                continue
            if COOKIE in cookie:
                found.append(cookie[COOKIE].value.encode())
    qs = scope.get("query_string", b"")
    if b"token=" in qs:
        found += [t.encode() for t in parse_qs(qs.decode("latin-1")).get("token", [])]
    return found
