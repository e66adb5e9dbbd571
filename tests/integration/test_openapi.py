"""The bridge's merged OpenAPI document and its Swagger UI / ReDoc pages, on real edges.

The document covers the bridge's own routes and `/{edge}/{plugin}/...` of the edges online,
follows edges joining and leaving, types built-in plugins' bodies and answers, gives an
original-style plugin a generic description, and the pages load nothing from outside.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import authed
import httpx
import pytest
from openapi_spec_validator import validate

from radical.edge import services

EDGE = "oadocs"


@pytest.fixture(scope="module")
def edge(module_edges, tmp_path_factory):
    root = tmp_path_factory.mktemp("oa-staging")
    return module_edges(name=EDGE, plugins="sysinfo,queue_info,psij,staging,counter",
                        env={"RADICAL_EDGE_STAGING_ROOTS": str(root),
                             "RADICAL_EDGE_PSIJ_DIR": str(root / "psij")})


def document(bridge_url: str) -> dict:
    r = authed.get(f"{bridge_url}/openapi.json", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def edges_of(doc: dict, path: str, method: str = "get") -> list[str]:
    """The edges the templated `path` enumerates (empty if the path is not there)."""
    op = doc["paths"].get(path, {}).get(method)
    if op is None:
        return []
    return next(p["schema"]["enum"] for p in op["parameters"] if p["name"] == "edge")


def test_document_is_valid_and_lists_plugin_routes(bridge_url, edge):
    doc = document(bridge_url)
    validate(doc)  # OpenAPI 3.1 and JSON Schema, all $refs resolve
    assert "/edge/list" in doc["paths"] and "/edges" in doc["paths"]  # the bridge's own
    for path in ("/{edge}/sysinfo/metrics/{sid}", "/{edge}/queue_info/get_info/{sid}",
                 "/{edge}/psij/status/{sid}/{job_id}", "/{edge}/staging/put/{sid}",
                 "/{edge}/counter/value/{sid}"):
        assert EDGE in edges_of(doc, path) or EDGE in edges_of(doc, path, "post"), path
    assert doc["components"]["securitySchemes"]["bearer"] == {
        **doc["components"]["securitySchemes"]["bearer"], "type": "http", "scheme": "bearer"}
    assert {"bearer": []} in doc["security"]


def test_built_in_plugins_are_typed(bridge_url, edge):
    doc = document(bridge_url)
    schemas = doc["components"]["schemas"]

    def resolve(schema: dict) -> dict:
        ref = schema.get("$ref", "")
        return schemas[ref.rsplit("/", 1)[1]] if ref else schema

    metrics = doc["paths"]["/{edge}/sysinfo/metrics/{sid}"]["get"]
    answer = resolve(metrics["responses"]["200"]["content"]["application/json"]["schema"])
    assert {"system", "cpu", "memory", "disks", "network", "gpus"} <= set(answer["properties"])
    put = doc["paths"]["/{edge}/staging/put/{sid}"]["post"]
    body = resolve(put["requestBody"]["content"]["application/json"]["schema"])
    assert {"filename", "content", "overwrite"} <= set(body["properties"])
    submit = doc["paths"]["/{edge}/psij/submit/{sid}"]["post"]
    body = resolve(submit["requestBody"]["content"]["application/json"]["schema"])
    assert "job_spec" in body["required"]
    status = doc["paths"]["/{edge}/psij/status/{sid}/{job_id}"]["get"]
    assert {p["name"] for p in status["parameters"] if p["in"] == "query"} == {
        "stdout_offset", "stderr_offset"}
    info = doc["paths"]["/{edge}/queue_info/get_info/{sid}"]["get"]
    assert {p["name"] for p in info["parameters"] if p["in"] == "query"} == {"user", "force"}


def test_original_style_plugin_gets_a_generic_description(bridge_url, edge):
    doc = document(bridge_url)
    add = doc["paths"]["/{edge}/counter/add/{sid}"]["post"]
    assert [p["name"] for p in add["parameters"]] == ["edge", "sid"]
    assert add["requestBody"]["content"]["application/json"]["schema"]["type"] == "object"
    assert add["responses"]["200"]["content"]["application/json"]["schema"] == {}
    # the built-in routes every plugin has are typed all the same
    health = doc["paths"]["/{edge}/counter/health"]["get"]
    assert health["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]


def test_document_follows_edges_joining_and_leaving(bridge_url, edge, make_edge):
    path = "/{edge}/echo/greet/{sid}"
    assert "oajoin" not in edges_of(document(bridge_url), path)
    joined = make_edge(name="oajoin", plugins="echo,sysinfo")
    services.wait_until(lambda: "oajoin" in edges_of(document(bridge_url), path), 15,
                        "the new edge in /openapi.json", joined)
    doc = document(bridge_url)
    validate(doc)
    assert set(edges_of(doc, "/{edge}/sysinfo/homedir")) >= {EDGE, "oajoin"}
    joined.stop()
    services.wait_until(lambda: path not in document(bridge_url)["paths"], 15,
                        "the edge gone from /openapi.json")
    assert "oajoin" not in edges_of(document(bridge_url), "/{edge}/sysinfo/homedir")


def test_document_needs_a_read_token(bridge_url, edge):
    r = httpx.get(f"{bridge_url}/openapi.json", timeout=10)
    assert r.status_code == 401 and r.json()["detail"] == "missing or invalid bearer token"


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]


@pytest.mark.parametrize("page,bundle", [("/docs", "swagger-ui-bundle.js"),
                                         ("/redoc", "redoc.standalone.js")])
def test_docs_pages_load_only_local_assets(bridge_url, edge, page, bundle):
    r = httpx.get(bridge_url + page, timeout=10)  # a shell: no token needed, no data in it
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "script-src 'self'" in r.headers["content-security-policy"]
    parser = _Refs()
    parser.feed(r.text)
    assert any(ref.endswith(bundle) for ref in parser.refs)
    assert not re.search(r"https?://", r.text)  # no absolute URL at all, CDN or other
    for ref in parser.refs:
        if ref.startswith("data:"):
            continue
        url = urljoin(bridge_url + page, ref)
        assert urlsplit(url).netloc == urlsplit(bridge_url).netloc, ref
        asset = httpx.get(url, timeout=10)
        assert asset.status_code == 200, (ref, asset.status_code)
        assert len(asset.content) > 100


def test_plugins_the_bridge_hosts_are_described(make_bridge, edge):
    svc = make_bridge(env={"RADICAL_EDGE_BRIDGE_PLUGINS": "sysinfo"})
    url = svc.extra["url"]
    doc = document(url)
    validate(doc)
    assert {"bridge", EDGE} <= set(edges_of(doc, "/{edge}/sysinfo/host_role"))
    r = authed.get(f"{url}/bridge/sysinfo/host_role", timeout=10)  # the path works as listed
    assert r.status_code == 200 and r.json()["role"] == "bridge"
