"""Schemathesis against a real bridge and a real edge (sysinfo, queue_info, psij, staging):
no request answers a 5xx, none hangs, and every refusal says why (`detail`).

Schemathesis generates valid and invalid requests for every operation of the bridge's
merged `/openapi.json`. Path parameters named `sid` get the live session of that plugin
(so requests reach the handlers, not just the 404 of an unknown session). Operations that
would harm the machine or the test session are left out: stopping the bridge or an edge,
the SSE stream (it never ends), running executables (psij submit) and cancelling batch
jobs of the shared SLURM cluster (queue_info cancel). Examples per operation are bounded
(`FUZZ_EXAMPLES`) to keep the run in CI near a minute.
"""
from __future__ import annotations

import os
import re

import authed
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from radical.edge.app import keys

pytestmark = pytest.mark.slurm
EDGE = "oafuzz"
PLUGINS = ("sysinfo", "queue_info", "psij", "staging")
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
#: (method, path regex) of operations not fuzzed, and why
EXCLUDED = [
    ("POST", r"^/bridge/terminate$"),  # stops the session's bridge
    ("POST", r"^/edge/disconnect/"),  # stops edges
    ("GET", r"^/events$"),  # an endless stream
    ("POST", r"/psij/submit(_tunneled)?/"),  # runs executables named by the fuzzer
    ("POST", r"/queue_info/cancel/"),  # scancel on the shared cluster
]
#: answers 5xx by design: the service is not configured on this bridge (says so in `detail`)
ALLOWED_5XX = {("POST", "/edge/enroll"): 503}


@pytest.fixture(scope="module")
def fuzz_edge(slurm_cluster, module_edges, tmp_path_factory):
    """queue_info on the real single-node SLURM (the fixture puts SLURM_CONF in the env)."""
    root = tmp_path_factory.mktemp("oa-fuzz")
    (root / "files").mkdir()
    (root / "files" / "a.txt").write_text("some text\n")
    svc = module_edges(name=EDGE, plugins=",".join(PLUGINS),
                       env={"RADICAL_EDGE_STAGING_ROOTS": str(root / "files"),
                            "RADICAL_EDGE_PSIJ_DIR": str(root / "psij")})
    svc.extra["root"] = str(root / "files")
    return svc


@pytest.fixture(scope="module")
def sessions(bridge_url, fuzz_edge) -> dict[str, str]:
    """A live session per plugin of the edge."""
    out = {}
    for plugin in PLUGINS:
        r = authed.post(f"{bridge_url}/{EDGE}/{plugin}/register_session", json={}, timeout=30)
        assert r.status_code == 200, r.text
        out[plugin] = r.json()["sid"]
    # a real (harmless) job, so status/cancel reach a job and not only the 404 of an id
    r = authed.post(f"{bridge_url}/{EDGE}/psij/submit/{out['psij']}", timeout=30,
                    json={"job_spec": {"executable": "/bin/echo", "arguments": ["fuzz"]}})
    assert r.status_code == 200, r.text
    out["job_id"] = r.json()["job_id"]
    return out


def inside(root: str, value: object) -> object:
    """A fuzzed path moved under the staging root half of the time (so requests reach the
    file code, not only the policy's 403/400), keeping what the fuzzer made of it."""
    if isinstance(value, str) and len(value) % 2 == 0:
        return f"{root}/{value.lstrip('/')}"
    return value


def steer(case, root: str):
    """Point paths of staging calls under the root (see `inside`)."""
    if isinstance(case.body, dict):
        for key in ("filename", "path"):
            if key in case.body:
                case.body[key] = inside(root, case.body[key])
    if isinstance(case.query, dict) and "path" in case.query:
        case.query["path"] = inside(root, case.query["path"])
    return case


def ours(doc: dict) -> dict:
    """The document narrowed to this module's edge and the bridge's own routes (other
    modules' edges may still be listed) and without the excluded operations."""
    paths = {}
    for path, ops in doc["paths"].items():
        first = path.split("/")[1]
        if first not in keys.RESERVED_EDGE_NAMES and not first.startswith("{"):
            continue  # a concrete path of another edge
        kept = {}
        for method, op in ops.items():
            if any(m == method.upper() and re.search(rx, path) for m, rx in EXCLUDED):
                continue
            for param in op.get("parameters", []):
                if param["name"] == "edge" and "enum" in param["schema"]:
                    param["schema"]["enum"] = [EDGE] if EDGE in param["schema"]["enum"] else []
            if all(p["schema"].get("enum", [EDGE]) for p in op.get("parameters", [])
                   if p["name"] == "edge"):
                kept[method] = op
        if kept:
            paths[path] = kept
    return {**doc, "paths": paths}


@pytest.fixture(scope="module")
def api_schema(bridge_url, fuzz_edge, sessions):
    r = authed.get(f"{bridge_url}/openapi.json", timeout=30)
    assert r.status_code == 200, r.text
    doc = ours(r.json())
    assert any(p.startswith("/{edge}/staging/") for p in doc["paths"])  # the edge is in it
    return schemathesis.openapi.from_dict(doc)


def operations(schema, group: str) -> list:
    """The operations of one plugin (`/{edge}/<plugin>/...`) or of the bridge itself."""
    out = []
    for result in schema.get_all_operations():
        op = result.ok()
        parts = op.path.split("/")
        mine = parts[1].startswith("{") and len(parts) > 2 and parts[2] == group
        if mine if group in PLUGINS else parts[1] in keys.RESERVED_EDGE_NAMES:
            out.append(op)
    return out


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["valid", "invalid"])
@pytest.mark.parametrize("group", ["bridge", *PLUGINS])
def test_no_server_error_and_honest_refusals(api_schema, bridge_url, fuzz_edge, sessions, group,
                                            mode):
    ops = operations(api_schema, group)
    assert ops, f"no operation of {group} in the document"
    failures: list[str] = []
    for op in ops:
        # the live session, except where it would end it for the operations after this one
        fixed = ({"sid": sessions[group]} if group in sessions and "{sid}" in op.path
                 and "/unregister_session/" not in op.path else None)
        if fixed and group == "psij" and "{job_id}" in op.path:
            fixed["job_id"] = sessions["job_id"]
        strategy = op.as_strategy(mode, path_parameters=fixed)
        if group == "staging":
            strategy = strategy.map(lambda case: steer(case, fuzz_edge.extra["root"]))

        @given(case=strategy)
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def run(case) -> None:
            response = case.call(base_url=bridge_url, headers=authed.AUTH, timeout=60)
            where = (f"{case.method} {case.formatted_path} query={case.query} "
                     f"body={str(case.body)[:200]} -> {response.status_code}: "
                     f"{response.content[:300]!r}")
            assert response.status_code < 500 or ALLOWED_5XX.get(
                (case.method, op.path)) == response.status_code, where
            if response.status_code >= 400:
                ctype = (response.headers.get("content-type") or [""])[0]  # a list here
                assert ctype.startswith("application/json"), where
                detail = response.json().get("detail")
                assert detail and isinstance(detail, (str, list)), where

        try:
            run()
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
        except Exception as exc:  # schemathesis could not build a case, or a flaky failure
            if "Unsatisfiable" not in type(exc).__name__:
                inner = "; ".join(f"{type(e).__name__}: {str(e)[:300]}"
                                  for e in getattr(exc, "exceptions", ()))  # an exception group
                failures.append(f"{op.label}: {type(exc).__name__}: {str(exc)[:300]} {inner}")
    assert not failures, "\n".join(failures)
    assert fuzz_edge.alive(), "the edge died under the fuzzer"
