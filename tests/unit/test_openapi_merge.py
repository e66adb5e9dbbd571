"""Plugin route descriptions (edge side) and their merge into one OpenAPI document (bridge
side), on real plugin classes with a minimal host: typed and original-style routes, edges
grouped per identical plugin, another version of a plugin on concrete paths, and the digest
check of what a bridge reads from Redis. The live document is tested in
tests/integration/test_openapi.py."""
from __future__ import annotations

import hashlib

import orjson
import pytest
from openapi_spec_validator import validate
from radical_edge_orig_style import PluginCounter
from typing_extensions import TypedDict

from radical.edge.bridge_api.openapi import ApiDocs, merged
from radical.edge.plugins.api_doc import api_document
from radical.edge.plugins.base import HostState, Plugin
from radical.edge.plugins.staging.plugin import StagingPlugin
from radical.edge.plugins.sysinfo.plugin import SysInfoPlugin
from radical.edge.settings import Settings

BASE = {"openapi": "3.1.0", "info": {"title": "bridge", "version": "1"},
        "paths": {"/edges": {"get": {"operationId": "edges", "responses": {
            "200": {"description": "ok"}}}}}}


class Host:
    """What a plugin needs of its host to register routes (no loop, no Redis)."""

    edge_name, role = "e1", "login"

    def __init__(self) -> None:
        self.settings, self.state, self.routes = Settings(), HostState(), []

    def add_route(self, method: str, path: str, handler: object) -> None:
        self.routes.append((method, path))

    def notify(self, *_: object) -> None:
        pass


def doc_of(*classes: type[Plugin]) -> dict:
    plugins = {p.instance_name: p for p in (cls(Host()) for cls in classes)}
    digest, raw = api_document(plugins)
    assert hashlib.sha256(raw).hexdigest() == digest
    return orjson.loads(raw)


def test_every_registered_route_is_described():
    host = Host()
    plugin = StagingPlugin(host)
    described = {(r["method"], f"/staging/{r['path']}")
                 for r in plugin.describe_api()["routes"]}
    assert described == set(host.routes)  # PUT upload included (a plugin-added verb)


def test_typed_routes_carry_schemas_and_original_style_ones_a_generic_description():
    doc = doc_of(StagingPlugin, PluginCounter)
    staging = {(r["method"], r["path"]): r for r in doc["plugins"]["staging"]["routes"]}
    put = staging[("POST", "put/{sid}")]
    assert put["typed"] and put["path_params"] == ["sid"]
    assert doc["plugins"]["staging"]["schemas"]["PutBody"]["required"] == ["filename",
                                                                           "content"]
    upload = staging[("PUT", "upload/{sid}")]
    assert upload["body_media"] == "application/octet-stream"
    assert [q["name"] for q in upload["query"]] == ["path", "offset", "overwrite", "sha256"]
    counter = {(r["method"], r["path"]): r for r in doc["plugins"]["counter"]["routes"]}
    add = counter[("POST", "add/{sid}")]
    assert not add["typed"] and add["body_optional"] and add["response"] == {}


def test_edges_with_the_same_plugin_share_one_templated_path():
    plugin_doc = doc_of(SysInfoPlugin)
    out = merged(BASE, {"e1": plugin_doc, "e2": plugin_doc})
    validate(out)
    op = out["paths"]["/{edge}/sysinfo/metrics/{sid}"]["get"]
    assert op["parameters"][0]["schema"]["enum"] == ["e1", "e2"]
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/sysinfo.Metrics"
    assert "/edges" in out["paths"] and BASE["paths"].keys() == {"/edges"}  # base untouched


def test_another_version_of_a_plugin_gets_concrete_paths_and_its_own_components():
    class Answer(TypedDict):
        other: int

    class SysInfoV2(SysInfoPlugin):
        version = "9.9.9"

        def __init__(self, app, instance_name=None):
            super().__init__(app, instance_name)
            self.add_route_get("extra", self.homedir_endpoint, response=Answer)

    old = doc_of(SysInfoPlugin)
    new = orjson.loads(api_document({"sysinfo": SysInfoV2(Host(), "sysinfo")})[1])
    out = merged(BASE, {"e1": old, "e2": old, "e3": new})
    validate(out)
    assert out["paths"]["/{edge}/sysinfo/homedir"]["get"]["parameters"][0]["schema"][
        "enum"] == ["e1", "e2"]
    assert "/e3/sysinfo/extra" in out["paths"] and "/{edge}/sysinfo/extra" not in out["paths"]
    ops = [op["operationId"] for ops in out["paths"].values() for op in ops.values()]
    assert len(ops) == len(set(ops))


def test_a_bridge_reads_only_descriptions_that_match_their_digest():
    raw = orjson.dumps({"plugins": {}})
    good = hashlib.sha256(raw).hexdigest()
    assert ApiDocs.verified(good, raw) == {"plugins": {}}
    assert ApiDocs.verified(good, raw + b" ") is None  # tampered
    assert ApiDocs.verified(good, None) is None  # expired or never written
    bad = orjson.dumps(["not", "a", "description"])
    assert ApiDocs.verified(hashlib.sha256(bad).hexdigest(), bad) is None


@pytest.mark.parametrize("path,public", [("/plugins/{filename}", True),
                                         ("/edge/enroll/redeem", True), ("/edges", False)])
def test_public_routes_say_so(path, public):
    base = {**BASE, "paths": {path: {"get" if "plugins" in path or path == "/edges" else "post":
                                     {"responses": {"200": {"description": "ok"}}}}}}
    op = next(iter(merged(base, {})["paths"][path].values()))
    assert (op.get("security") == []) is public


def test_a_malformed_description_costs_only_its_own_entries():
    good = doc_of(SysInfoPlugin)
    broken = {"plugins": {"../x": good["plugins"]["sysinfo"],
                          "p1": {"routes": [{"method": "GET"}]},  # no path
                          "p2": {"routes": "nope"},
                          "p3": {"routes": [{"method": "GET", "path": "{edge}/x"}]},
                          "p4": ["not", "a", "plugin"]}}
    out = merged(BASE, {"e1": good, "e2": broken})
    validate(out)
    assert out["paths"]["/{edge}/sysinfo/homedir"]["get"]["parameters"][0]["schema"][
        "enum"] == ["e1"]
    assert not [p for p in out["paths"] if p.split("/")[2:3] in (["p1"], ["p2"], ["p3"],
                                                                  ["p4"], [".."])]
