"""What a plugin's routes look like, as data the bridge can publish as OpenAPI.

Why here, on the edge side: the bridge never imports plugin code (an edge may run plugins
the bridge has never heard of), so each edge turns its plugins' routes into plain JSON
(JSON Schema for bodies, query parameters and answers) and publishes that; the bridge only
merges documents (bridge_api/openapi.py).

A plugin declares types where it has them (`add_route_post(path, handler, body=Model,
response=Model)`; a pydantic model, a TypedDict or any type pydantic can describe). Routes
added the original way (`add_route_get(path, handler)`) still get a generic description:
their path parameters, the first line of the handler's docstring, any JSON object as body
and any JSON as answer.
"""
from __future__ import annotations

import hashlib
import inspect
import logging
import re
from dataclasses import dataclass
from typing import Any, Iterable

import orjson
from pydantic import TypeAdapter

log = logging.getLogger(__name__)

#: `$ref`s in the published schemas point here; the bridge renames them per plugin
REF_TEMPLATE = "#/components/schemas/{model}"
OCTETS = "application/octet-stream"
BINARY = {"type": "string", "format": "binary"}
PATH_PARAM = re.compile(r"{([^{}/:]+)(?::[^{}/]*)?}")


@dataclass(frozen=True)
class RouteDoc:
    """One route of a plugin: what the bridge needs to describe it."""

    method: str
    path: str  # relative to the plugin namespace, e.g. "metrics/{sid}"
    summary: str = ""
    description: str = ""
    query: Any = None  # a model whose fields are the query parameters
    body: Any = None  # the JSON request body's type
    response: Any = None  # the JSON answer's type (status 200)


def route_doc(method: str, path: str, handler: Any, *, query: Any = None, body: Any = None,
              response: Any = None, summary: str | None = None) -> RouteDoc:
    """A `RouteDoc` from what `add_route_*` was given; the docstring fills in the text."""
    doc = inspect.getdoc(handler) or ""
    first, _, rest = doc.partition("\n")
    return RouteDoc(method, path.lstrip("/"), summary if summary is not None else first.strip(),
                    rest.strip(), query, body, response)


def path_params(path: str) -> list[str]:
    """Names of the `{param}` segments of a route path (Starlette converters dropped)."""
    return PATH_PARAM.findall(path)


class _Schemas:
    """Turns types into JSON Schemas, collecting shared definitions once per plugin."""

    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def of(self, tp: Any) -> dict[str, Any]:
        schema = TypeAdapter(tp).json_schema(ref_template=REF_TEMPLATE)
        for name, sub in schema.pop("$defs", {}).items():
            self.defs.setdefault(name, sub)
        title = getattr(tp, "__name__", None)
        if title and schema.get("type") == "object" and "properties" in schema:
            self.defs.setdefault(title, schema)  # named models become components too
            return {"$ref": REF_TEMPLATE.format(model=title)}
        return schema

    def query(self, tp: Any) -> list[dict[str, Any]]:
        """OpenAPI query parameters from a model's fields."""
        schema = TypeAdapter(tp).json_schema(ref_template=REF_TEMPLATE)
        for name, sub in schema.pop("$defs", {}).items():
            self.defs.setdefault(name, sub)
        required = set(schema.get("required", ()))
        out = []
        for name, prop in schema.get("properties", {}).items():
            param: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                     "schema": prop}
            if "description" in prop:
                param["description"] = prop["description"]
            out.append(param)
        return out


def describe_routes(routes: Iterable[RouteDoc], session_args: Any = None) -> dict[str, Any]:
    """`{"routes": [...], "schemas": {...}}` for one plugin (plain JSON).

    `session_args` types the body of `register_session` when the plugin declares it.
    """
    schemas = _Schemas()
    out = []
    for route in routes:
        body = route.body
        if route.path == "register_session" and body is None and session_args is not None:
            body = session_args
        entry: dict[str, Any] = {
            "method": route.method, "path": route.path, "summary": route.summary,
            "description": route.description, "path_params": path_params(route.path),
            "typed": any(t is not None for t in (route.query, body, route.response)),
        }
        if route.query is not None:
            entry["query"] = schemas.query(route.query)
        if body is bytes:  # a raw body (uploads)
            entry["body"], entry["body_media"] = BINARY, OCTETS
        elif body is not None:
            entry["body"] = schemas.of(body)
            if route.path == "register_session":  # no body: no session arguments
                entry["body_optional"] = True
        elif route.method not in ("GET", "HEAD", "DELETE"):
            entry["body"] = {"type": "object", "description": "any JSON object"}
            entry["body_optional"] = True
        if route.response is bytes:  # a raw answer (downloads)
            entry["response"], entry["response_media"] = BINARY, OCTETS
        else:
            entry["response"] = schemas.of(route.response) if route.response is not None else {}
        out.append(entry)
    return {"routes": out, "schemas": schemas.defs}


def api_document(plugins: dict[str, Any]) -> tuple[str, bytes]:
    """(sha256 hex, bytes) of an edge's whole API description: `{"plugins": {instance:
    {"type", "version", "routes", "schemas"}}}`. The digest names it in Redis, so edges
    with the same plugins share one copy and a bridge can check what it reads."""
    doc = {"plugins": {name: _describe(name, plugin) for name, plugin in sorted(plugins.items())}}
    raw = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest(), raw


def _describe(name: str, plugin: Any) -> dict[str, Any]:
    """One plugin's description; a type pydantic cannot describe costs only the types."""
    try:
        return plugin.describe_api()
    except Exception as exc:  # a third-party type we cannot turn into a schema
        log.warning("plugin %s: no typed API description (%s: %s)", name,
                    type(exc).__name__, exc)
        untyped = [RouteDoc(r.method, r.path, r.summary, r.description)
                   for r in getattr(plugin, "_route_docs", [])]
        return {"type": getattr(plugin, "plugin_name", None),
                "version": getattr(plugin, "version", None), **describe_routes(untyped)}
