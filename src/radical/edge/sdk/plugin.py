"""`PluginClient`: the base every plugin's own client class builds on.

Plugin clients are thin: each method is one HTTP call under ``{bridge}/{edge}/{plugin}/``.
The protected helpers (`_request`, `_get`, `_post`, `_require_sid`) are the stable surface
those classes are written against, so their names and semantics must not change.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

import httpx

from ..constants import TIMEOUT_HEADER
from .errors import (CallOutcomeError, EdgeConnectionError, EdgeError, EdgeTimeoutError,
                     detail_from_body, json_dumps, json_loads, outcome_from_body)

if TYPE_CHECKING:
    from .bridge import BridgeClient

log = logging.getLogger("radical.edge.sdk")

__all__ = ["PluginClient", "http_call", "decode_body"]

#: statuses meaning "the session is already gone" (unknown / expired)
SESSION_GONE = (404, 410)

#: asks the bridge for a per-call deadline (seconds)
DEADLINE_HEADER = TIMEOUT_HEADER


def decode_body(response: httpx.Response) -> Any:
    """Parsed JSON for JSON answers, text for text/*, bytes for anything else, None if empty."""
    content = response.content
    if not content:
        return None
    ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json" or ctype.endswith("+json") or not ctype:
        try:
            return json_loads(content)
        except ValueError:  # mislabelled body: hand over the text rather than fail
            return response.text
    if ctype.startswith("text/"):
        return response.text
    return content


def http_call(http: httpx.Client, method: str, url: str, *, edge: str | None = None,
              plugin: str | None = None, raw: bool = False, **kwargs: Any) -> Any:
    """Send one request; map failures to `EdgeError` and decode the answer.

    Transport failures become `EdgeConnectionError` / `EdgeTimeoutError`, answers >= 400 an
    `EdgeError` carrying the server's `detail`.  With `raw=True` the `httpx.Response` itself
    is returned (after the status check), e.g. for downloads.
    """
    try:
        response = http.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise EdgeTimeoutError(None, str(exc) or type(exc).__name__, edge=edge,
                               plugin=plugin, method=method, url=str(url)) from exc
    except httpx.TransportError as exc:
        raise EdgeConnectionError(None, str(exc) or type(exc).__name__, edge=edge,
                                  plugin=plugin, method=method, url=str(url)) from exc
    if response.status_code >= 400:
        detail = detail_from_body(response.content, response.reason_phrase)
        known = outcome_from_body(response.content) if response.status_code >= 500 else None
        if known is not None:
            raise CallOutcomeError(response.status_code, detail, outcome=known[0],
                                   call_id=known[1], edge=edge, plugin=plugin, method=method,
                                   url=str(response.request.url))
        raise EdgeError(response.status_code, detail, edge=edge, plugin=plugin,
                        method=method, url=str(response.request.url))
    return response if raw else decode_body(response)


class PluginClient:
    """Generic client of one plugin instance on one edge.

    ``base_url`` is ``{bridge}/{edge}/{plugin}`` (absolute), or the namespace
    ``/{edge}/{plugin}`` when `http_client` has the bridge as its ``base_url``.
    Usable as a context manager: leaving the block closes the session.

    Notification callbacks registered here have the same signature as the bridge-level
    ones, ``cb(edge, plugin, topic, data)`` (as in the original radical.edge client), and
    only see this plugin instance's notifications.
    """

    def __init__(self, http_client: httpx.Client, base_url: str,
                 bridge_client: "BridgeClient | None" = None, edge_id: str | None = None,
                 plugin_name: str | None = None) -> None:
        self._http = http_client
        self._base_url = base_url.rstrip("/")
        self._bc = bridge_client
        self._edge_id = edge_id
        self._plugin_name = plugin_name
        self._sid: str | None = None
        self._callbacks: list[tuple[Callable[..., Any], str | None]] = []
        self._gap_hooked = False

    # -- identity ---------------------------------------------------------------------------
    @property
    def sid(self) -> str | None:
        """The current session id (None before `register_session` / after close)."""
        return self._sid

    @property
    def edge_id(self) -> str | None:
        return self._edge_id

    @property
    def plugin_name(self) -> str | None:
        return self._plugin_name

    @property
    def base_url(self) -> str:
        return self._base_url

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(edge={self._edge_id!r}, plugin={self._plugin_name!r},"
                f" sid={self._sid!r})")

    # -- HTTP helpers (stable API for subclasses) ------------------------------------------
    def _url(self, path: str) -> str:
        return f"{self._base_url}/{path.lstrip('/')}" if path else self._base_url

    def _request(self, method: str, path: str, *, params: dict | None = None,
                 json: Any = None, content: bytes | str | None = None,
                 headers: dict | None = None, timeout: float | None = None,
                 **kwargs: Any) -> Any:
        """Call ``{base_url}/{path}``; return the decoded answer, raise `EdgeError` on >= 400.

        `params` entries that are None are dropped (so optional query arguments can be
        passed unconditionally); booleans are sent as ``true``/``false``.  `json` is
        encoded with orjson when available.  Extra keywords (`files`, `data`, `raw`) go to
        httpx / `http_call`.
        """
        if json is not None:
            if content is not None:
                raise ValueError("pass either json= or content=, not both")
            content = json_dumps(json)
            headers = {"Content-Type": "application/json", **(headers or {})}
        if params:
            params = {k: _query_value(v) for k, v in params.items() if v is not None}
        if timeout is not None:
            # the bridge enforces the deadline (504 with a detail); httpx waits a bit longer
            headers = {**(headers or {}), DEADLINE_HEADER: f"{float(timeout):g}"}
            kwargs["timeout"] = float(timeout) + 5.0
        return http_call(self._http, method, self._url(path), edge=self._edge_id,
                         plugin=self._plugin_name, params=params or None, content=content,
                         headers=headers, **kwargs)

    def _raise(self, response: httpx.Response, context: str = "") -> None:
        """Raise `EdgeError` for an error answer (>= 400): the helper plugin clients written
        for the original client call after each `self._http` request."""
        if response.status_code >= 400:
            detail = detail_from_body(response.content, response.reason_phrase)
            raise EdgeError(response.status_code, f"{context}: {detail}" if context else detail,
                            edge=self._edge_id, plugin=self._plugin_name,
                            method=response.request.method, url=str(response.request.url))

    def _get(self, path: str, **params: Any) -> Any:
        """GET with query parameters given as keywords (None values are left out)."""
        return self._request("GET", path, params=params)

    def _post(self, path: str, json: Any = None, **kw: Any) -> Any:
        """POST a JSON body; keywords as for `_request`."""
        return self._request("POST", path, json=json, **kw)

    def _require_sid(self) -> str:
        """The session id, or a clear error when there is none."""
        if not self._sid:
            raise RuntimeError(
                f"no active session for plugin {self._plugin_name!r} on edge "
                f"{self._edge_id!r}: call register_session() first (or the client was closed)")
        return self._sid

    # -- sessions ---------------------------------------------------------------------------
    def register_session(self, **kwargs: Any) -> dict:
        """Open a session on the plugin; `kwargs` become the JSON body. Returns the answer."""
        answer = self._post("register_session", json=kwargs)
        if not isinstance(answer, dict) or not answer.get("sid"):
            raise EdgeError(None, f"register_session answered without a sid: {answer!r}",
                            edge=self._edge_id, plugin=self._plugin_name)
        if self._sid:
            log.debug("%r: replacing session %s by %s", self, self._sid, answer["sid"])
        self._sid = answer["sid"]
        return answer

    def unregister_session(self) -> None:
        """Close the session on the edge.  A 404/410 (already gone) still forgets the sid."""
        if not self._sid:
            return
        sid = self._sid
        try:
            self._post(f"unregister_session/{sid}")
        except EdgeError as exc:
            if exc.status in SESSION_GONE:
                self._sid = None
            raise
        self._sid = None

    def close(self) -> None:
        """Unregister the session (ignoring one that is already gone) and drop callbacks.

        Never raises: it runs in ``finally`` blocks and ``__exit__``.
        """
        for callback, topic in list(self._callbacks):
            self.unregister_notification_callback(callback, topic)
        if self._gap_hooked and self._bc is not None:
            self._bc.unregister_gap_callback(self._on_gap)
            self._gap_hooked = False
        if self._sid:
            try:
                self.unregister_session()
            except EdgeError as exc:
                if exc.status not in SESSION_GONE:
                    log.warning("%r: could not unregister session: %s", self, exc)
            except Exception as exc:
                log.warning("%r: could not unregister session: %s", self, exc)
            self._sid = None

    def __enter__(self) -> "PluginClient":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    # -- notifications ----------------------------------------------------------------------
    def _require_bridge(self) -> "BridgeClient":
        if self._bc is None or not self._edge_id or not self._plugin_name:
            raise RuntimeError(
                f"{type(self).__name__} was made without bridge_client/edge_id/plugin_name;"
                " it cannot receive notifications")
        return self._bc

    def register_notification_callback(self, callback: Callable[[str, str, str, Any], None],
                                       topic: str | None = None) -> None:
        """Call ``callback(edge, plugin, topic, data)`` for this plugin's notifications.

        `topic` None means every topic.  Runs on the bridge client's listener thread.
        """
        bc = self._require_bridge()
        bc.register_callback(self._edge_id, self._plugin_name, topic, callback)
        self._callbacks.append((callback, topic))
        if not self._gap_hooked:
            self._gap_hooked = True
            bc.register_gap_callback(self._on_gap)

    def _on_gap(self, gap: dict) -> None:
        """Notifications of this plugin may have been lost for good (listener thread).

        Subclasses re-poll the state they follow by notification; keep it quick (hand
        slow work to another thread).
        """

    def unregister_notification_callback(self, callback: Callable[[str, str, str, Any], None],
                                         topic: str | None = None) -> None:
        """Undo one `register_notification_callback(callback, topic)` (no-op if absent)."""
        bc = self._require_bridge()
        bc.unregister_callback(self._edge_id, self._plugin_name, topic, callback)
        try:
            self._callbacks.remove((callback, topic))
        except ValueError:
            pass


def _query_value(value: Any) -> Any:
    """Booleans as the lowercase words FastAPI/Starlette parsers expect."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
