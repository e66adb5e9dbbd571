"""lucid without an edge: description checks, and the reason it gives where RADICAL-Pilot
does not import (checked in a fresh interpreter that cannot import radical.pilot)."""
from __future__ import annotations

import subprocess
import sys

import pytest
from starlette.exceptions import HTTPException

from radical.edge.plugins.lucid import spec

ABSENT = """
import sys, types
sys.modules["radical.pilot"] = None  # import radical.pilot now raises ImportError
from radical.edge.plugins.lucid.plugin import LucidPlugin
app = types.SimpleNamespace(role="login")
print(LucidPlugin.is_enabled(app)); print(LucidPlugin.disabled_reason(app))
print(LucidPlugin.disabled_reason(types.SimpleNamespace(role="bridge")))
"""


def test_plugin_says_why_it_is_absent_without_radical_pilot():
    out = subprocess.run([sys.executable, "-c", ABSENT], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    enabled, reason, bridge = out.stdout.splitlines()
    assert enabled == "False"
    assert "radical.pilot does not import" in reason and "radical.edge[lucid]" in reason
    assert "not on the bridge" in bridge


def test_pilot_description_defaults_and_checks():
    assert spec.pilot_description({}) == {"resource": "local.localhost", "runtime": 30,
                                          "cores": 1}
    assert spec.pilot_description({"nodes": 2})["nodes"] == 2
    for bad in ([], {"cores": 0}, {"cores": True}, {"runtime": "1h"}, {"sandbox": "/"}):
        with pytest.raises(HTTPException) as err:
            spec.pilot_description(bad)
        assert err.value.status_code == 422


def test_task_description_checks():
    ok = {"executable": "/bin/echo", "arguments": ["a"], "environment": {"X": "1"}}
    assert spec.task_description(ok) == ok
    for bad in ({}, {"executable": ""}, {"executable": "x", "arguments": "a b"},
                {"executable": "x", "environment": {"X": 1}}, {"executable": "x", "mode": "f"}):
        with pytest.raises(HTTPException) as err:
            spec.task_description(bad)
        assert err.value.status_code == 422
    with pytest.raises(HTTPException):
        spec.body_description({"description": {}, "extra": 1})
