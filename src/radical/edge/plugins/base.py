"""The plugin authoring API: `Plugin` and `PluginSession`.

A plugin owns a URL namespace `/{instance_name}/...` on an edge. Its handlers take a
Starlette `Request` and return a JSON-able dict (or a Starlette `Response`). They run on the
edge's single asyncio loop, so they must not block: wrap blocking work in
`asyncio.to_thread`. Sessions hold per-client state inside the edge process.

This module knows nothing about Celery, Redis or any concrete plugin; the edge's plugin host
(`radical.edge.workers.host`) provides the `PluginHostAPI` it is given (`host_api`,
re-exported here).
"""
from __future__ import annotations

import inspect
import logging
import time
import uuid
from typing import Any, Callable, ClassVar

from starlette.exceptions import HTTPException
from starlette.requests import Request

from . import base_models as bm
from .api_doc import RouteDoc, describe_routes, route_doc
from .authz import identity_of
from .host_api import Handler, HostState, PluginHostAPI  # noqa: F401  (plugin authors' names)
from .sessions import SessionError, SessionStore
from .ui_schema import ui_config_to_dict

log = logging.getLogger(__name__)


class PluginSession:
    """Per-client state of one plugin; subclass it and add async methods.

    `self._plugin` is injected by the plugin after construction so sessions can notify.
    """

    def __init__(self, sid: str, **kwargs: Any) -> None:
        if kwargs:
            names = ", ".join(sorted(kwargs))
            raise TypeError(f"unexpected session argument(s): {names}")
        self._sid = sid
        self._plugin: Plugin | None = None
        #: `notify` as the original base injected it: `self._notify(topic, data)` when set
        self._notify: Callable[[str, dict], None] | None = None
        #: user who created the session (None: created by a call without identity)
        self._owner: str | None = None
        self._closed = False

    @property
    def sid(self) -> str:
        return self._sid

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def is_active(self) -> bool:
        """Not closed yet (the original base's name)."""
        return not self._closed

    def _check_active(self) -> None:
        """Raise if the session was closed (original-style sessions call this first)."""
        if self._closed:
            raise RuntimeError("session is closed")

    @property
    def owner(self) -> str | None:
        return self._owner

    def notify(self, topic: str, data: dict) -> None:
        """Send a notification from async code or any thread."""
        if self._plugin is not None:
            self._plugin._dispatch_notify(topic, data)

    async def close(self) -> dict:
        """Release what the session holds; subclasses extend and call super()."""
        self._closed = True
        return {}


#: plugin classes defined so far, by `plugin_name` (the original's `Plugin._registry`)
_DEFINED: dict[str, type["Plugin"]] = {}


class _KnownPlugins:
    """What the plugin loader knows beyond `_DEFINED`; the loader fills this in when it is
    imported (a base module never imports the module that names its subclasses)."""

    lookup: Callable[[str], type | None] | None = None
    names: Callable[[], list[str]] | None = None


_known = _KnownPlugins()


class Plugin:
    """Base class of every plugin; subclasses with a `plugin_name` register themselves."""

    plugin_name: ClassVar[str | None] = None
    session_class: ClassVar[type[PluginSession] | None] = PluginSession
    #: the client-side class (a `radical.edge.sdk.PluginClient` subclass) or its import path
    client_class: ClassVar[type | str | None] = None
    version: ClassVar[str] = "0.0.1"
    #: idle seconds before a session expires (0 = never)
    session_ttl: ClassVar[float] = 3600
    ui_config: ClassVar[dict | Any | None] = None  # a dict or a ui_schema.UIConfig
    #: the type of `register_session`'s JSON body (the session arguments), for the API docs
    session_args: ClassVar[Any] = None
    ui_module: ClassVar[str | None] = None

    # -- the original's class lookup (public API of radical.edge 0.2.0) ----------------------
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("plugin_name")
        if name:
            _DEFINED[name] = cls

    @classmethod
    def get_plugin_class(cls, name: str) -> type["Plugin"] | None:
        """The plugin class named `name`: one defined in this process, else the one the
        plugin loader knows (built-ins, entry points), imported now; None if there is none."""
        if name in _DEFINED:
            return _DEFINED[name]
        return _known.lookup(name) if _known.lookup is not None else None

    @classmethod
    def get_plugin_names(cls) -> list[str]:
        """Names of every plugin defined in this process or known to the loader."""
        return sorted(set(_DEFINED) | set(_known.names() if _known.names is not None else ()))

    # -- availability -----------------------------------------------------------------------
    @classmethod
    def is_enabled(cls, app: PluginHostAPI) -> bool:
        """Return False to skip loading this plugin on this host (checked before init)."""
        return True

    @classmethod
    def disabled_reason(cls, app: PluginHostAPI) -> str:
        """Why `is_enabled` said no; the edge announces it so the portal can show it."""
        return "not enabled on this host"

    # -- life cycle -------------------------------------------------------------------------
    def __init__(self, app: PluginHostAPI, instance_name: str | None = None) -> None:
        if not self.plugin_name and not instance_name:
            raise ValueError(f"{type(self).__name__} needs a plugin_name or an instance_name")
        self._app = app
        self._instance_name = instance_name or self.plugin_name or ""
        self._uid = f"{self._instance_name}.{uuid.uuid4().hex[:8]}"
        self._started = time.monotonic()
        self._sessions: SessionStore[PluginSession] = SessionStore(self.session_ttl)
        self._route_docs: list[RouteDoc] = []
        self.add_route_post("register_session", self.register_session,
                            response=bm.SessionCreated, summary="Open a session")
        self.add_route_post("unregister_session/{sid}", self.unregister_session, response=bm.Ok,
                            summary="Close a session")
        self.add_route_get("version", self.get_version, response=bm.VersionInfo,
                           summary="The plugin's version")
        self.add_route_get("list_sessions", self.list_sessions, response=bm.SessionList,
                           summary="The caller's sessions")
        self.add_route_get("health", self.health_check, response=bm.Health,
                           summary="Liveness of the plugin")
        self.add_route_get("ui_config", self.get_ui_config, response=bm.UIConfigInfo,
                           summary="The portal's description of the plugin")

    async def startup(self) -> None:
        """Called on the host loop once all plugins exist (start background work here)."""

    async def shutdown(self) -> None:
        """Close every session; called when the edge stops."""
        for sid in self._sessions.ids():
            session = self._sessions.pop(sid)
            if session is not None:
                await self._close_session(session)

    # -- properties -------------------------------------------------------------------------
    @property
    def app(self) -> PluginHostAPI:
        return self._app

    @property
    def instance_name(self) -> str:
        return self._instance_name

    @property
    def namespace(self) -> str:
        return f"/{self._instance_name}"

    @property
    def uid(self) -> str:
        return self._uid

    @property
    def is_bridge(self) -> bool:
        return self._app.role == "bridge"

    @property
    def is_compute_node(self) -> bool:
        return self._app.role == "compute"

    @property
    def is_login_node(self) -> bool:
        return self._app.role == "login"

    # -- routes -----------------------------------------------------------------------------
    def add_route_post(self, path: str, method: Handler, *, body: Any = None,
                       query: Any = None, response: Any = None,
                       summary: str | None = None) -> None:
        """Serve `POST {namespace}/{path}`; the optional types describe it in the API docs
        (plugins written for the original base pass only `path` and `method`)."""
        self._add_route("POST", path, method, body=body, query=query, response=response,
                        summary=summary)

    def add_route_get(self, path: str, method: Handler, *, query: Any = None,
                      response: Any = None, summary: str | None = None) -> None:
        """Serve `GET {namespace}/{path}` (see `add_route_post`)."""
        self._add_route("GET", path, method, query=query, response=response, summary=summary)

    def _add_route(self, verb: str, path: str, method: Handler, **doc: Any) -> None:
        self._app.add_route(verb, f"{self.namespace}/{path.lstrip('/')}", method)
        self._route_docs.append(route_doc(verb, path, method, **doc))

    def describe_api(self) -> dict:
        """This plugin's routes as plain JSON (see plugins/api_doc.py)."""
        return {"type": self.plugin_name, "version": self.version,
                **describe_routes(self._route_docs, self.session_args)}

    # -- sessions ---------------------------------------------------------------------------
    async def create_session(self, sid: str, **kwargs: Any) -> PluginSession:
        """Build a session; override to pass plugin-wide resources to it."""
        return self._create_session(sid, **kwargs)

    def _create_session(self, sid: str, **kwargs: Any) -> PluginSession:
        """Synchronous session factory: the hook plugins written for the original base
        override (e.g. to hand a shared provider to each session)."""
        if self.session_class is None:
            raise HTTPException(400, f"plugin '{self.instance_name}' has no sessions")
        return self.session_class(sid, **kwargs)

    async def _forward(self, sid: str, func: Callable[..., Any], *args: Any,
                       **kwargs: Any) -> Any:
        """Call `func(session, *args, **kwargs)` on session `sid` (404/410 if gone), as the
        original base did; errors other than HTTP ones become a 500 with their message."""
        session = self.get_session(sid)
        try:
            result = func(session, *args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except HTTPException:
            raise
        except Exception as exc:
            log.exception("%s: session %s call %s failed", self.instance_name, sid,
                          getattr(func, "__name__", func))
            raise HTTPException(500, str(exc)) from exc
        return result

    def get_session(self, request_or_sid: Request | str) -> PluginSession:
        """The live session named by `sid` (path parameter), else 404 / 410.

        Given a request, the caller must own the session (or be admin), else 403.
        """
        sid = request_or_sid
        if isinstance(request_or_sid, Request):
            sid = request_or_sid.path_params.get("sid", "")
        try:
            session = self._sessions.get(str(sid))
        except SessionError as exc:
            raise HTTPException(exc.status, exc.detail) from None
        if isinstance(request_or_sid, Request):
            check_owner(request_or_sid, session)
        return session

    def sessions(self) -> list[PluginSession]:
        return self._sessions.values()

    async def register_session(self, request: Request) -> dict:
        kwargs = await json_body(request, default={})
        if not isinstance(kwargs, dict):
            raise HTTPException(422, "register_session expects a JSON object of session arguments")
        sid = f"session.{uuid.uuid4().hex[:12]}"
        try:
            session = await self.create_session(sid, **kwargs)
        except TypeError as exc:
            raise HTTPException(422, f"bad session arguments: {exc}") from None
        self.adopt_session(request, session)
        return {"sid": sid}

    def adopt_session(self, request: Request, session: PluginSession) -> None:
        """Register a new session as owned by the caller (plugins overriding
        `register_session` call this instead of touching the store)."""
        session._plugin = self
        session._notify = self._dispatch_notify
        who = identity_of(request)
        session._owner = who.user if who is not None else None
        self._sessions.add(session.sid, session)

    async def unregister_session(self, request: Request) -> dict:
        sid = request.path_params["sid"]
        session = self._sessions.peek(sid)
        if session is None:
            raise HTTPException(404, f"unknown session '{sid}'")
        check_owner(request, session)
        self._sessions.pop(sid)
        await self._close_session(session)
        return {"ok": True}

    async def reap_expired(self) -> int:
        """Close sessions idle past the TTL; the host calls this periodically."""
        expired = self._sessions.pop_expired()
        for _sid, session in expired:
            await self._close_session(session)
        return len(expired)

    async def _close_session(self, session: PluginSession) -> None:
        try:
            result = session.close()
            if inspect.isawaitable(result):
                await result
        except Exception:  # a broken close must not take the edge down
            log.exception("closing session %s of %s failed", session.sid, self.instance_name)

    # -- built-in routes --------------------------------------------------------------------
    async def get_version(self, request: Request) -> dict:
        return {"version": self.version}

    async def list_sessions(self, request: Request) -> dict:
        """The caller's own sessions; an admin (or a call without identity) sees all."""
        who = identity_of(request)
        if who is None or who.is_admin:
            return {"sessions": self._sessions.ids()}
        return {"sessions": [s.sid for s in self._sessions.values() if s.owner == who.user]}

    async def health_check(self, request: Request) -> dict:
        return {
            "status": "healthy",
            "plugin": self.instance_name,
            "version": self.version,
            "uptime_seconds": round(time.monotonic() - self._started, 3),
            "active_sessions": len(self._sessions),
        }

    async def get_ui_config(self, request: Request) -> dict:
        return {
            "plugin_name": self.plugin_name,
            "instance_name": self.instance_name,
            "version": self.version,
            "ui": ui_config_to_dict(self.ui_config),
        }

    # -- notifications ----------------------------------------------------------------------
    async def send_notification(self, topic: str, data: dict) -> None:
        """Broadcast `data` under `topic` to every SSE listener of every bridge."""
        self._app.notify(self.instance_name, topic, data)

    def _dispatch_notify(self, topic: str, data: dict) -> None:
        """Same as `send_notification`, callable from sync code and any thread."""
        self._app.notify(self.instance_name, topic, data)

    async def on_topology_change(self, edges: dict) -> None:
        """Called when edges join or leave; `edges` maps names to their announcements."""

    # -- description ------------------------------------------------------------------------
    def describe(self) -> dict:
        """What the edge announces about this plugin (feeds /edge/list)."""
        return {
            "type": self.plugin_name,
            "namespace": self.namespace,
            "version": self.version,
            "enabled": True,
            "ui_config": ui_config_to_dict(self.ui_config),
            "ui_module": self.ui_module,
            "client": client_path(self.client_class),
        }


def check_owner(request: Request, session: PluginSession) -> None:
    """403 unless the caller created `session` or is admin.

    Sessions made by calls without identity (local calls, tests) are open to every caller,
    as are calls without identity: the bridge always attaches one, so only edge-local code
    makes such calls.
    """
    who = identity_of(request)
    if who is None or session.owner is None or who.is_admin or who.user == session.owner:
        return
    raise HTTPException(403, f"session '{session.sid}' belongs to another user")


def client_path(client: type | str | None) -> str | None:
    """`module:QualName` of a client class so the SDK can import it without the edge side."""
    if client is None or isinstance(client, str):
        return client
    return f"{client.__module__}:{client.__qualname__}"


async def json_body(request: Request, default: Any = None) -> Any:
    """Parse the JSON body; empty body gives `default`, malformed JSON a 400."""
    raw = await request.body()
    if not raw.strip():
        return default
    try:
        import orjson

        return orjson.loads(raw)
    except ValueError as exc:
        raise HTTPException(400, f"malformed JSON body: {exc}") from None
