"""`BridgeClient`: the entry point of the SDK (edge discovery, notifications, bridge admin).

One `BridgeClient` owns one `httpx.Client` (thread-safe, pooled) that every `EdgeClient`
and `PluginClient` made from it shares, and at most one SSE listener thread, started only
when someone asks for notifications: plain request/response scripts never open a stream.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable
from urllib.parse import quote

import httpx

from ..version import __version__
from .credentials import find_token
from .edge import EdgeClient
from .plugin import http_call
from .sse import SSEListener, ssl_context

log = logging.getLogger("radical.edge.sdk")

__all__ = ["BridgeClient", "CallbackRegistry", "DEFAULT_TIMEOUT"]

#: seconds per call; above the bridge's default call deadline (120 s) so its 504 and
#: detail reach the caller instead of a bare client-side timeout
DEFAULT_TIMEOUT = 180.0

NotificationCallback = Callable[[str, str, str, Any], None]
TopologyCallback = Callable[[dict], None]
GapCallback = Callable[[dict], None]
Key = tuple[str | None, str | None, str | None]


class CallbackRegistry:
    """Notification callbacks keyed by (edge, plugin, topic), None meaning "any".

    Kept separate from the client so the matching rules are testable without a network.
    All methods are thread-safe; `match` returns a snapshot so callbacks may (un)register
    other callbacks while being called.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._callbacks: dict[Key, list[NotificationCallback]] = {}
        self._topology: list[TopologyCallback] = []

    @staticmethod
    def matches(key: Key, edge: str | None, plugin: str | None, topic: str | None) -> bool:
        k_edge, k_plugin, k_topic = key
        return ((k_edge is None or k_edge == edge)
                and (k_plugin is None or k_plugin == plugin)
                and (k_topic is None or k_topic == topic))

    def add(self, key: Key, callback: NotificationCallback) -> None:
        with self._lock:
            self._callbacks.setdefault(key, []).append(callback)

    def remove(self, key: Key, callback: NotificationCallback) -> bool:
        """Remove one registration of `callback` under exactly `key`; False if absent."""
        with self._lock:
            callbacks = self._callbacks.get(key)
            if not callbacks or callback not in callbacks:
                return False
            callbacks.remove(callback)
            if not callbacks:
                del self._callbacks[key]
            return True

    def match(self, edge: str | None, plugin: str | None,
              topic: str | None) -> list[NotificationCallback]:
        with self._lock:
            return [cb for key, cbs in self._callbacks.items()
                    if self.matches(key, edge, plugin, topic) for cb in cbs]

    def add_topology(self, callback: TopologyCallback) -> None:
        with self._lock:
            self._topology.append(callback)

    def remove_topology(self, callback: TopologyCallback) -> bool:
        with self._lock:
            if callback in self._topology:
                self._topology.remove(callback)
                return True
            return False

    def topology_callbacks(self) -> list[TopologyCallback]:
        with self._lock:
            return list(self._topology)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(cbs) for cbs in self._callbacks.values()) + len(self._topology)


def normalize_url(url: str) -> str:
    """Strip trailing slashes; map ws(s):// (what edges are given) to http(s)://."""
    url = url.strip().rstrip("/")
    if url.startswith("wss://"):
        url = "https://" + url[len("wss://"):]
    elif url.startswith("ws://"):
        url = "http://" + url[len("ws://"):]
    return url


class BridgeClient:
    """Client of one bridge.

    ``url`` defaults to ``$RADICAL_BRIDGE_URL``; ``cert`` (a CA or the bridge's self-signed
    certificate, used to verify https) to ``$RADICAL_BRIDGE_CERT``; ``token`` (sent as
    ``Authorization: Bearer``) to ``$RADICAL_EDGE_TOKEN``, then to the local bridge's token
    file (for loopback bridges only; see `radical.edge.sdk.credentials`); a URL with user info
    (``https://:TOKEN@host:8000``, the original client's way) sends the token as HTTP Basic
    credentials instead, which the bridge accepts too.  Without a cert, https is verified
    against the system trust store.  Safe to share between threads.  `transport` (an httpx
    transport, for tests or custom networking) is used for calls and the event stream.

    Notification callbacks get ``(edge, plugin, topic, data)`` and topology callbacks the
    ``edges`` mapping of ``/edge/list``.  They run on the SSE listener thread, so they should
    be quick; an exception in one is logged and does not affect the others.

    When the bridge reports a *gap* (notifications that can no longer be delivered: the
    client was away longer than the stream's retention, or Redis lost the stream), the
    client re-reads the topology (topology callbacks run with it), then calls `on_gap` and
    every gap callback with ``{"from": id, "to": id, "reason": ...}``; plugin clients use
    this to re-poll job/task state, so a terminal state is never silently missed.
    """

    def __init__(self, url: str | None = None, cert: str | None = None,
                 token: str | None = None, timeout: float = DEFAULT_TIMEOUT, *,
                 transport: httpx.BaseTransport | None = None,
                 on_gap: GapCallback | None = None) -> None:
        raw = url or os.environ.get("RADICAL_BRIDGE_URL", "")
        if not raw.strip():
            raise ValueError("bridge URL required: pass url= or set RADICAL_BRIDGE_URL")
        self._url = normalize_url(raw)
        self._cert = cert or os.environ.get("RADICAL_BRIDGE_CERT") or None
        self._token = find_token(self._url, token)
        self._verify = ssl_context(self._cert) if self._url.startswith("https") else True
        headers = {"User-Agent": f"radical.edge-sdk/{__version__}"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        self._transport = transport
        self._http = httpx.Client(base_url=self._url, verify=self._verify, headers=headers,
                                  timeout=httpx.Timeout(timeout, connect=10.0),
                                  transport=transport)
        self._registry = CallbackRegistry()
        self._lock = threading.Lock()
        self._listener: SSEListener | None = None
        self._topology: dict | None = None
        self._closed = False
        self._gap_callbacks: list[GapCallback] = [on_gap] if on_gap is not None else []
        self.gaps = 0  # gap events seen

    # -- properties -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._url

    @property
    def cert(self) -> str | None:
        return self._cert

    @property
    def http(self) -> httpx.Client:
        """The shared httpx client (base_url = bridge URL, auth header set)."""
        return self._http

    @property
    def last_topology(self) -> dict | None:
        """The latest topology `data` seen on the event stream (None before the first)."""
        return self._topology

    def __repr__(self) -> str:
        return f"BridgeClient({self._url!r})"

    # -- bridge API -------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, edge: str | None = None, **kw: Any) -> Any:
        return http_call(self._http, method, path, edge=edge, **kw)

    def topology(self) -> dict:
        """The `data` object of ``POST /edge/list``: ``{"bridge": ..., "edges": {...}}``."""
        answer = self._call("POST", "/edge/list")
        return (answer or {}).get("data") or {}

    def list_edges(self) -> list[str]:
        """Names of the connected edges, sorted."""
        return sorted((self.topology().get("edges") or {}).keys())

    def get_edge_client(self, name: str | None = None, *,
                        edge_id: str | None = None) -> "EdgeClient":
        """An `EdgeClient` for edge `name` (``edge_id=`` is the original keyword)."""
        name = name or edge_id
        if not name:
            raise ValueError("edge name required")
        return EdgeClient(self, name)

    def call_status(self, call_id: str) -> dict:
        """What became of a call (``GET /calls/{id}``), e.g. after a `CallOutcomeError`
        with outcome ``"unknown"``: ``{"state": "queued"|"running"|"done"|"not_delivered",
        "status", "reply"?, "note"?, "edge", "call_id"}``; 404 once the record expired."""
        return self._call("GET", f"/calls/{quote(call_id, safe='')}")

    def list_work(self, *, kind: str | None = None, state: str | None = None,
                  phase: str | None = None, edge: str | None = None, q: str | None = None,
                  sort: str = "submitted", order: str = "desc", offset: int = 0,
                  limit: int = 50, user: str | None = None) -> dict:
        """The caller's psij jobs and rhapsody tasks on every edge (``GET /work``), from any
        session: ``{"items": [{id, kind, edge, plugin, sid, state, name, submitted, started,
        ended, duration, exit_code, directory, ...}], "total", "offset", "limit"}``.
        `phase` is "active" or "ended"; `user` (admins only) lists another identity's."""
        params = {k: v for k, v in {"kind": kind, "state": state, "phase": phase, "edge": edge,
                                    "q": q, "sort": sort, "order": order, "offset": offset,
                                    "limit": limit, "user": user}.items() if v is not None}
        return self._call("GET", "/work", params=params)

    def disconnect_edge(self, name: str) -> dict:
        """Ask edge `name` to shut down (``POST /edge/disconnect/{name}``); 404 if unknown."""
        return self._call("POST", f"/edge/disconnect/{quote(name, safe='')}", edge=name)

    def terminate_bridge(self) -> dict:
        """Ask the bridge process to exit (edges keep running)."""
        return self._call("POST", "/bridge/terminate")

    # -- notifications ----------------------------------------------------------------------
    def register_callback(self, edge_id: str | None = None, plugin_name: str | None = None,
                          topic: str | None = None,
                          callback: NotificationCallback | None = None) -> None:
        """Call `callback(edge, plugin, topic, data)` for matching notifications.

        None in `edge_id`, `plugin_name` or `topic` matches anything.  Starts the event
        listener if needed; use `wait_for_listener()` to be sure nothing is missed.
        """
        if callback is None:
            raise ValueError("callback is required")
        self._registry.add((edge_id, plugin_name, topic), callback)
        self._ensure_listener()

    def unregister_callback(self, edge_id: str | None = None, plugin_name: str | None = None,
                            topic: str | None = None,
                            callback: NotificationCallback | None = None) -> None:
        """Undo one `register_callback` made with the same arguments (no-op if absent)."""
        if callback is not None:
            self._registry.remove((edge_id, plugin_name, topic), callback)

    def register_topology_callback(self, callback: TopologyCallback) -> None:
        """Call `callback(edges)` on connect and whenever edges join, leave or change."""
        self._registry.add_topology(callback)
        self._ensure_listener()

    def unregister_topology_callback(self, callback: TopologyCallback) -> None:
        self._registry.remove_topology(callback)

    def register_gap_callback(self, callback: GapCallback) -> None:
        """Call `callback(gap)` when notifications were lost for good (see the class doc)."""
        with self._lock:
            self._gap_callbacks.append(callback)
        self._ensure_listener()

    def unregister_gap_callback(self, callback: GapCallback) -> None:
        with self._lock:
            try:
                self._gap_callbacks.remove(callback)
            except ValueError:
                pass

    def wait_for_listener(self, timeout: float = 30) -> bool:
        """Start the event listener if needed; True once it is connected to the bridge."""
        listener = self._ensure_listener()
        return listener.connected.wait(timeout)

    def _ensure_listener(self) -> SSEListener:
        with self._lock:
            if self._closed:
                raise RuntimeError("BridgeClient is closed")
            if self._listener is None:
                self._listener = SSEListener(self._url, self._on_event, token=self._token,
                                             verify=self._verify, transport=self._transport)
                self._listener.start()
            return self._listener

    def _on_event(self, payload: Any) -> None:
        """Route one `/events` message to the matching callbacks (listener thread)."""
        if not isinstance(payload, dict):
            return
        kind, data = payload.get("topic"), payload.get("data")
        if kind == "notification" and isinstance(data, dict):
            edge, plugin, topic = data.get("edge"), data.get("plugin"), data.get("topic")
            for cb in self._registry.match(edge, plugin, topic):
                try:
                    cb(edge, plugin, topic, data.get("data"))
                except Exception:
                    log.exception("notification callback %r failed (%s/%s %s)",
                                  cb, edge, plugin, topic)
        elif kind == "topology" and isinstance(data, dict):
            self._set_topology(data)
        elif kind == "gap" and isinstance(data, dict):
            self._on_gap(data)
        else:
            log.debug("ignoring event with topic %r", kind)

    def _set_topology(self, data: dict) -> None:
        self._topology = data
        edges = data.get("edges") or {}
        for cb in self._registry.topology_callbacks():
            try:
                cb(edges)
            except Exception:
                log.exception("topology callback %r failed", cb)

    def _on_gap(self, gap: dict) -> None:
        """Notifications were lost for good: re-read the topology, tell the gap callbacks."""
        self.gaps += 1
        log.warning("event stream gap %s -> %s (%s): re-reading state",
                    gap.get("from"), gap.get("to"), gap.get("reason"))
        try:
            self._set_topology(self.topology())
        except Exception as exc:  # the bridge may be restarting: the stream resends it
            log.warning("could not re-read the topology after a gap: %s", exc)
        with self._lock:
            callbacks = list(self._gap_callbacks)
        for cb in callbacks:
            try:
                cb(gap)
            except Exception:
                log.exception("gap callback %r failed", cb)

    # -- life cycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the event listener and close the connection pool (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        self._http.close()

    def __enter__(self) -> "BridgeClient":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()
