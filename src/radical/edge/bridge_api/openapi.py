"""One OpenAPI document: the bridge's own routes plus every online edge's plugin routes.

Edges publish their plugins' routes as JSON in Redis under `keys.api_doc(sha256)` and name
that digest in their announcement (`"api"`), so the bridge learns plugin routes without
importing plugin code. Edges whose plugin has the same description share one templated
path `/{edge}/<plugin>/...` whose `edge` parameter enumerates them; an edge whose plugin of
the same name differs (another version) gets concrete paths `/<edge>/<plugin>/...`.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import re
from collections import OrderedDict
from typing import Any

import orjson

from ..app import keys
from .auth import is_public

log = logging.getLogger(__name__)

#: an edge's description is refused past this size (it is read on every /openapi.json)
MAX_DOC_BYTES = 4 * 1024 * 1024
#: descriptions kept parsed (by digest; edges with the same plugins share one)
CACHE_SIZE = 64
DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
REF_PREFIX = "#/components/schemas/"
JSON = "application/json"
#: Starlette's `{name:converter}` in route paths: OpenAPI knows only `{name}`
CONVERTER_RE = re.compile(r"{([^{}/:]+):[^{}/]*}")
COMPONENT_RE = re.compile(r"[^A-Za-z0-9._-]")
PARAM_RE = re.compile(r"{[^{}]*}")
PATH_PARAM_RE = re.compile(r"{([^{}]+)}")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

ERROR_SCHEMA = {"type": "object", "required": ["detail"], "properties": {
    "detail": {"type": "string", "description": "what is wrong"},
    "error": {"type": "boolean"}, "status_code": {"type": "integer"}}}
_ERROR_JSON = {"application/json": {"schema": {"$ref": REF_PREFIX + "Error"}}}
#: the bridge's and plugins' refusals, shared by every plugin operation
RESPONSES = {
    "Refused": {"description": "refused: the `detail` says why (404 unknown edge, plugin or "
                               "session; 410 expired session; 422 bad arguments ...)",
                "content": _ERROR_JSON},
    "EdgeUnavailable": {"description": "edge not connected, or lost during the call",
                        "content": _ERROR_JSON},
    "Timeout": {"description": "no answer in time", "content": _ERROR_JSON},
}
ERROR_RESPONSES = {"4XX": {"$ref": "#/components/responses/Refused"},
                   "503": {"$ref": "#/components/responses/EdgeUnavailable"},
                   "504": {"$ref": "#/components/responses/Timeout"}}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "a bridge token (`radical-edge token`), scope read/submit/admin"},
    "basic": {"type": "http", "scheme": "basic",
              "description": "the same token as the password (`https://:TOKEN@host`), for "
                             "clients that can only put credentials into the URL"},
}


class ApiDocs:
    """Reads and verifies edges' API descriptions from Redis (cached by digest)."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self._cache: OrderedDict[str, dict] = OrderedDict()

    async def for_edges(self, edges: dict[str, dict]) -> dict[str, dict]:
        """Edge name -> its description, for every edge whose description can be read."""
        wanted = {n: a.get("api") for n, a in edges.items()
                  if isinstance(a.get("api"), str) and DIGEST_RE.match(a["api"])}
        missing = sorted({d for d in wanted.values() if d not in self._cache})
        if missing:
            raws = await self._redis.mget([keys.api_doc(d) for d in missing])
            for digest, raw in zip(missing, raws):
                doc = self.verified(digest, raw)
                if doc is not None:
                    self._cache[digest] = doc
                    while len(self._cache) > CACHE_SIZE:
                        self._cache.popitem(last=False)
        return {n: self._cache[d] for n, d in wanted.items() if d in self._cache}

    @staticmethod
    def verified(digest: str, raw: bytes | None) -> dict | None:
        if raw is None or len(raw) > MAX_DOC_BYTES:
            return None
        if hashlib.sha256(raw).hexdigest() != digest:  # not what the edge announced
            log.warning("API description %s… does not match its digest; ignored", digest[:12])
            return None
        try:
            doc = orjson.loads(raw)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) and isinstance(doc.get("plugins"), dict) else None


def merged(base: dict[str, Any], edge_docs: dict[str, dict]) -> dict[str, Any]:
    """`base` (the bridge's own OpenAPI) plus the plugin routes of `edge_docs`."""
    doc = copy.deepcopy(base)
    paths = doc.setdefault("paths", {})
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = SECURITY_SCHEMES
    components.setdefault("responses", {}).update(RESPONSES)
    doc["security"] = [{"bearer": []}, {"basic": []}]
    doc.setdefault("info", {})["description"] = (
        "The bridge's own routes (tag `bridge`) and the plugin routes of the edges online "
        "now, `/{edge}/{plugin}/...` (a tag per plugin): this document changes as edges "
        "join and leave.")
    _secure_own_routes(paths)
    tags = {t["name"]: t for t in doc.get("tags", [])}
    for (instance, _digest), group in _groups(edge_docs).items():
        plugin, edges = group["plugin"], group["edges"]
        templated = not any(_owns(paths, instance, r) for r in plugin.get("routes", []))
        names = _component_names(instance, plugin.get("schemas", {}), schemas, _digest)
        for name, schema in plugin.get("schemas", {}).items():
            schemas[names[name]] = _renamed(schema, names)
        targets = [None] if templated else sorted(edges)
        for edge in targets:
            for route in plugin.get("routes", []):
                path, op = _operation(instance, route, names, edge, sorted(edges))
                paths.setdefault(path, {})[route["method"].lower()] = op
        tags.setdefault(instance, {"name": instance, "description":
                                   f"plugin {plugin.get('type') or instance} "
                                   f"{plugin.get('version') or ''}".strip()})
    doc["tags"] = list(tags.values())
    return doc


def _groups(edge_docs: dict[str, dict]) -> dict[tuple[str, str], dict]:
    """(instance, digest of its description) -> {"plugin", "edges"}, largest group first."""
    groups: dict[tuple[str, str], dict] = {}
    for edge, doc in sorted(edge_docs.items()):
        for instance, plugin in (doc.get("plugins") or {}).items():
            if not _well_formed(instance, plugin):
                log.warning("edge '%s': malformed description of plugin %r ignored", edge,
                            str(instance)[:64])
                continue
            digest = hashlib.sha256(orjson.dumps(plugin, option=orjson.OPT_SORT_KEYS)).hexdigest()
            group = groups.setdefault((instance, digest), {"plugin": plugin, "edges": []})
            group["edges"].append(edge)
    return dict(sorted(groups.items(), key=lambda kv: (-len(kv[1]["edges"]), kv[0])))


def _well_formed(instance: Any, plugin: Any) -> bool:
    """Edges write these documents: only what can become valid paths is merged, so a
    broken or hostile edge can cost its own entries, never the whole document."""
    if not (isinstance(instance, str) and NAME_RE.match(instance) and isinstance(plugin, dict)
            and isinstance(plugin.get("routes"), list)
            and isinstance(plugin.get("schemas", {}), dict)):
        return False
    return all(isinstance(r, dict) and r.get("method") in METHODS
               and isinstance(r.get("path"), str)
               and not re.search(r"{edge[}:]", r["path"])  # `edge` names the edge here
               and isinstance(r.get("query", []), list)
               and all(isinstance(q, dict) and isinstance(q.get("name"), str)
                       and q.get("in") == "query" for q in r.get("query", []))
               for r in plugin["routes"])


def _owns(paths: dict, instance: str, route: dict) -> bool:
    """Does a templated path for this route exist already (another group got it)?"""
    path, _ = _template(instance, route)
    return route.get("method", "").lower() in paths.get(path, {})


def _template(instance: str, route: dict, edge: str | None = None) -> tuple[str, str]:
    param = "edge"
    head = edge if edge is not None else "{edge}"
    rest = CONVERTER_RE.sub(r"{\1}", str(route.get("path", "")))
    return f"/{head}/{instance}/{rest}".rstrip("/") if rest else f"/{head}/{instance}", param


def _operation(instance: str, route: dict, names: dict[str, str], edge: str | None,
               edges: list[str]) -> tuple[str, dict]:
    path, param = _template(instance, route, edge)
    method = str(route.get("method", "GET")).upper()
    params: list[dict] = []
    if edge is None:
        params.append({"name": param, "in": "path", "required": True,
                       "description": "an online edge offering this plugin",
                       "schema": {"type": "string", "enum": edges}})
    for name in dict.fromkeys(PATH_PARAM_RE.findall(path)):  # from the path, not the edge
        if name == "edge" and edge is None:
            continue
        params.append({"name": name, "in": "path", "required": True,
                       "schema": {"type": "string"}})
    for q in route.get("query", []):
        params.append(_renamed(q, names))
    op_id = COMPONENT_RE.sub("_", f"{instance}.{method.lower()}.{route.get('path', '')}"
                                  + (f".{edge}" if edge else ""))
    op: dict[str, Any] = {
        "tags": [instance], "operationId": op_id,
        "summary": route.get("summary") or f"{method} {route.get('path', '')}",
        "parameters": params,
        "responses": {"200": {"description": "the plugin's answer", "content": {
            str(route.get("response_media", JSON)): {
                "schema": _renamed(route.get("response") or {}, names)}}},
            **ERROR_RESPONSES},
    }
    if route.get("description"):
        op["description"] = route["description"]
    if "body" in route:
        op["requestBody"] = {"required": not route.get("body_optional", False), "content": {
            str(route.get("body_media", JSON)): {"schema": _renamed(route["body"], names)}}}
    return path, op


def _component_names(instance: str, plugin_schemas: dict, existing: dict,
                     digest: str) -> dict[str, str]:
    """Plugin-local schema names -> component names (`<instance>.<Name>`, with the
    description's digest added when another version of the plugin took that name)."""
    out = {}
    for name, schema in plugin_schemas.items():
        wanted = COMPONENT_RE.sub("_", f"{instance}.{name}")
        if wanted in existing and existing[wanted] != schema:
            wanted = COMPONENT_RE.sub("_", f"{instance}.{digest[:8]}.{name}")
        out[name] = wanted
    return out


def _renamed(node: Any, names: dict[str, str]) -> Any:
    """A copy of `node` with `$ref`s to plugin-local schemas pointing at their components."""
    if isinstance(node, dict):
        out = {k: _renamed(v, names) for k, v in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            name = names.get(ref[len(REF_PREFIX):])
            if name is None:  # a dangling reference would break the document: any JSON
                return {k: v for k, v in out.items() if k != "$ref"}
            out["$ref"] = REF_PREFIX + name
        return out
    if isinstance(node, list):
        return [_renamed(v, names) for v in node]
    return node


def _secure_own_routes(paths: dict) -> None:
    """Routes anyone may call say so (`security: []`); the rest inherit the bearer rule.
    Operation ids are made unique (FastAPI repeats one for a route with two methods)."""
    seen: set[str] = set()
    for path, ops in paths.items():
        for method, op in ops.items():
            if not isinstance(op, dict):
                continue
            if is_public(method.upper(), PARAM_RE.sub("x", path)):
                op["security"] = []
            op.setdefault("tags", ["bridge"])
            if op.get("operationId") in seen:
                op["operationId"] = f"{op['operationId']}_{method}"
            seen.add(op.get("operationId", ""))
