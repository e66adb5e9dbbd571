"""In-process routing of plugin calls: method + path -> handler, Starlette path syntax.

Routes are grouped by their first path segment (the plugin instance) so a call only tries
the regexes of its own plugin.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from starlette.routing import compile_path

from ..errors import StatusError


@dataclass(slots=True)
class Route:
    method: str
    path: str
    regex: Any
    convertors: dict[str, Any]
    handler: Callable[..., Any]


class RouteNotFound(StatusError, LookupError):
    """No route for a call: 404, or 405 with the methods that `allow` the path."""

    def __init__(self, status: int, detail: str, allow: list[str] | None = None) -> None:
        super().__init__(detail, status)
        self.allow = allow or []


class Router:
    def __init__(self) -> None:
        self._by_prefix: dict[str, list[Route]] = {}

    def add(self, method: str, path: str, handler: Callable[..., Any]) -> None:
        if not path.startswith("/"):
            path = "/" + path
        regex, _fmt, convertors = compile_path(path)
        prefix = path.split("/", 2)[1]
        self._by_prefix.setdefault(prefix, []).append(
            Route(method.upper(), path, regex, convertors, handler))

    def remove_prefix(self, prefix: str) -> None:
        """Forget every route of one plugin instance (it failed to start)."""
        self._by_prefix.pop(prefix, None)

    def prefixes(self) -> list[str]:
        return sorted(self._by_prefix)

    def match(self, method: str, path: str) -> tuple[Callable[..., Any], dict[str, Any]]:
        """The handler and converted path parameters, or `RouteNotFound` (404/405)."""
        prefix = path.split("/", 2)[1] if path.startswith("/") else ""
        routes = self._by_prefix.get(prefix)
        if routes is None:
            raise RouteNotFound(404, f"no plugin '{prefix}' on this edge")
        allowed: list[str] = []
        for route in routes:
            m = route.regex.match(path)
            if m is None:
                continue
            if route.method != method.upper():
                allowed.append(route.method)
                continue
            params = {k: route.convertors[k].convert(v) for k, v in m.groupdict().items()}
            return route.handler, params
        if allowed:
            raise RouteNotFound(405, f"method {method} not allowed for {path}", sorted(set(allowed)))
        raise RouteNotFound(404, f"no route {method} {path} in plugin '{prefix}'")
