"""The bridge's front door, as one pure ASGI middleware (cheap, and safe for streaming).

In order, for every HTTP request:

1. **Host** must be one the bridge answers to (TrustedHost semantics: loopback names, the
   bind and public host, this machine's name, `allowed_hosts`): defeats DNS rebinding.
2. **Origin**, when a browser sends one on POST/PUT/PATCH/DELETE, must be the bridge's own
   origin: a web page elsewhere cannot drive the bridge from the user's browser.
3. **Who**: a bearer token (`Authorization: Bearer`, or the password of HTTP Basic
   credentials for clients that only know URLs: `https://:TOKEN@host:8000`), resolved by
   the `TokenStore`;
   `GET /events` also takes a single-use `?ticket=` (EventSource cannot set headers).
   `?token=` is not accepted and is stripped before anything is forwarded. No cookies: a
   cookie for 127.0.0.1 goes to every port, i.e. to other users' servers on a login node.
   Only the static portal shell and the login-ticket exchange are public.
4. **Scope** of the route: plugin GETs need `read`, other plugin calls `submit`; the bridge's
   own routes need `admin` unless `needed_scope` lists them as reads (403 otherwise).
5. **Body type**: request bodies must be JSON, msgpack or octet-stream (415): types a
   cross-site form or `fetch` without preflight can send are refused.
6. **Audit**: every call that is not GET/HEAD/OPTIONS is recorded after it was answered.
"""
from __future__ import annotations

import base64
import binascii
import logging
import socket
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from redis.exceptions import RedisError

from ..app import keys
from ..app.identity import ANONYMOUS, Identity
from ..settings import Settings
from .envelope import error_bytes

log = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: request body types: none of them can be sent cross-site without a CORS preflight (which
#: the bridge never grants), unlike forms' urlencoded/multipart/text-plain
BODY_TYPES = ("application/json", "application/msgpack", "application/x-msgpack",
              "application/vnd.msgpack", "application/octet-stream")
#: query parameters that carry credentials: never forwarded
SECRET_PARAMS = frozenset({"token", "ticket"})
#: the bridge's own routes that `read` may use; every other one needs `admin`
_READ_GETS = frozenset({"/edge/list", "/edges", "/events", "/docs", "/redoc", "/openapi.json",
                        "/metrics",
                        "/favicon.ico", "/work"})
#: prefixes of the bridge's own read routes (`GET /calls/{id}`: a call's outcome)
_READ_GET_PREFIXES = ("/docs/", "/calls/")
EDGE_LIST = "/edge/list"  # the original's listing is a POST, but only reads
_READ_POSTS = frozenset({EDGE_LIST, "/events/ticket", "/bridge/login-ticket"})
#: edges redeem a one-time enrollment token here; they hold no bridge token (enroll.py)
ENROLL_REDEEM = "/edge/enroll/redeem"


def allowed_hosts(settings: Settings) -> frozenset[str] | None:
    """Host names (no port) the bridge answers to; None means any."""
    extra = {h.strip().lower() for h in settings.allowed_hosts.split(",") if h.strip()}
    if "*" in extra:
        return None
    names = {"localhost", "127.0.0.1", "::1", "[::1]", socket.gethostname().lower(),
             socket.gethostname().split(".")[0].lower()} | extra
    if settings.host not in ("0.0.0.0", "::", ""):
        names.add(settings.host.lower())
    public = urlsplit(settings.public_url()).hostname
    if public:
        names.add(public.lower())
    return frozenset(names)


def host_name(host: str) -> str:
    """`Host` header value without its port (`[::1]:8000` -> `[::1]`)."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def needed_scope(method: str, path: str, hosted: frozenset[str] = frozenset()) -> str:
    """The scope a route needs. The bridge's own routes are admin-only unless listed as
    reads here, so a route added later is closed until someone decides otherwise. Plugins
    the bridge hosts (`hosted`, under `/bridge/<plugin>/`) are plugin calls like any edge's."""
    first, _, rest = path[1:].partition("/")
    if first == "bridge" and rest.partition("/")[0] in hosted:
        first = ""  # a bridge-hosted plugin: the plugin rule below
    if first in keys.RESERVED_EDGE_NAMES:
        if method in READ_METHODS and (path in _READ_GETS or path.startswith(_READ_GET_PREFIXES)):
            return "read"
        if method == "POST" and path in _READ_POSTS:
            return "read"
        return "admin"
    return "read" if method in READ_METHODS else "submit"  # plugin calls


def is_public(method: str, path: str) -> bool:
    """The static portal shell and plugin UI modules (hold no data, run nothing here: the
    browser imports them as ES modules, which cannot carry a header), the API docs pages
    and their assets (shells too: the document itself needs `read`), the ticket exchange
    and the probes `/health` and `/ready` (up/ready and which dependency is down, nothing else)."""
    if method == "POST":  # their bodies hold a one-time credential
        return path in ("/bridge/login", ENROLL_REDEEM)
    return method in ("GET", "HEAD") and (
        path in ("/", "/portal", "/health", "/ready", "/docs", "/redoc")
        or path.startswith(("/portal/", "/plugins/", "/docs/assets/")))


class BridgeGuard:
    def __init__(self, app: Any, api: Any, settings: Settings) -> None:
        self.app = app
        self.api = api  # the FastAPI app: its state.bridge holds the token store and audit
        self.no_auth = settings.no_auth
        self.hosts = allowed_hosts(settings)
        self.public_origin = settings.public_url().lower()
        self.metrics_public = settings.metrics_public
        self._seen_hosts: dict[bytes, bool] = {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method, path = scope["method"], scope["path"]
        host = origin = ctype = bearer = None
        has_body = False
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"authorization":
                if value[:7].lower() == b"bearer ":
                    bearer = value[7:].strip()
                elif value[:6].lower() == b"basic ":  # `https://:TOKEN@host` (0.2.0 clients)
                    bearer = basic_token(value[6:])
            elif name == b"origin":
                origin = value.decode("latin-1").lower()
            elif name == b"content-type":
                ctype = value.decode("latin-1").split(";", 1)[0].strip().lower()
            elif name == b"content-length":
                has_body = value not in (b"0", b"")
            elif name == b"transfer-encoding":
                has_body = True

        if host is None or not self._host_ok(host):
            shown = (host or b"").decode("latin-1")[:100]
            return await deny(send, 400, f"host '{shown}' is not allowed "
                                         "(RADICAL_EDGE_ALLOWED_HOSTS)")
        if origin is not None and method not in READ_METHODS and not self._same_origin(
                origin, host, scope):
            return await deny(send, 403, f"cross-origin {method} from '{origin[:100]}' refused")
        qs = scope.get("query_string", b"")
        ticket = None
        if b"token=" in qs or b"ticket=" in qs:
            ticket = _strip_secrets(scope)
        if is_public(method, path) or (self.metrics_public and path == "/metrics"
                                       and method in READ_METHODS):
            if has_body and ctype not in BODY_TYPES:
                return await deny(send, 415, "request bodies must be application/json")
            return await self.app(scope, receive, send)

        state = self.api.state.bridge
        who: Identity | None
        if self.no_auth:
            who = ANONYMOUS
        else:
            who = None
            try:
                if bearer:
                    who = await state.tokens.identify(bearer)
                elif ticket and method == "GET" and path == "/events":
                    who = await state.tokens.redeem_ticket(ticket, "events")
            except (RedisError, OSError) as exc:  # named tokens live in Redis
                return await deny(send, 503, f"cannot check the token: broker unavailable "
                                             f"({type(exc).__name__})")
            if who is None:
                return await deny(send, 401, "missing or invalid bearer token",
                                  [(b"www-authenticate", b"Bearer")])
            needed = needed_scope(method, path, _hosted(state))
            if not who.allows(needed):
                return await deny(send, 403, f"user '{who.user}' has scope '{who.scope}'; "
                                             f"{method} {path[:200]} needs '{needed}'")
        if has_body and method not in READ_METHODS and ctype not in BODY_TYPES:
            return await deny(send, 415, "request bodies must be application/json, "
                                         "application/msgpack or application/octet-stream, "
                                         f"not '{(ctype or '')[:100]}'")
        scope["identity"] = who
        if method in READ_METHODS or (method == "POST" and path == EDGE_LIST):
            return await self.app(scope, receive, send)  # reads are not audited (tickets are)

        status = 500

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            state.audit.record(who.user, who.scope, method, path, status)

    def _host_ok(self, raw: bytes) -> bool:
        """Is this Host header value allowed? (Memoised: clients repeat the same value.)"""
        ok = self._seen_hosts.get(raw)
        if ok is None:
            ok = self.hosts is None or host_name(raw.decode("latin-1").lower()) in self.hosts
            if len(self._seen_hosts) < 1024:
                self._seen_hosts[raw] = ok
        return ok

    def _same_origin(self, origin: str, host: bytes | None, scope: dict) -> bool:
        if origin == self.public_origin:
            return True
        scheme = "https" if scope.get("scheme") == "https" else "http"
        return host is not None and origin == f"{scheme}://{host.decode('latin-1').lower()}"


def _hosted(state: Any) -> frozenset[str]:
    """Names of the plugins this bridge hosts itself (none unless `--plugins` was given)."""
    local = getattr(state, "local", None)
    return frozenset(local.plugins) if local is not None else frozenset()


def basic_token(credentials: bytes) -> bytes | None:
    """The token inside HTTP Basic credentials (base64 of `user:password`), or None.

    The original client cannot set headers, but httpx turns a URL's user info into Basic
    auth: `RADICAL_BRIDGE_URL=https://:TOKEN@host:8000` sends `:TOKEN`. The password is the
    token; a bare `TOKEN:` (token as the user name) is accepted too.
    """
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, _, password = decoded.partition(b":")
    return password or user or None


def _strip_secrets(scope: dict) -> str | None:
    """Remove `token`/`ticket` from the query string (so nothing downstream, edges and Redis
    included, ever sees them); returns the ticket, if any."""
    pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    ticket = next((v for k, v in pairs if k == "ticket"), None)
    scope["query_string"] = urlencode([(k, v) for k, v in pairs
                                       if k not in SECRET_PARAMS]).encode("latin-1")
    return ticket


async def deny(send: Any, status: int, detail: str,
               headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = error_bytes(status, detail)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
