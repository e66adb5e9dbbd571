"""`EdgeExecutionBackend` without a bridge: what it imports, what it sends, how it fails tasks.

(End to end with a real bridge and edge: tests/integration/test_rhapsody_backend.py.)
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("rhapsody", reason="needs the hpc extra (rhapsody-py)")

from rhapsody.api.errors import TaskExecutionError  # noqa: E402

from radical.edge.plugins.rhapsody import functions
from radical.edge.plugins.rhapsody.edge_backend import (EdgeExecutionBackend, EdgeTaskError,
                                                        _failure, _same_function, _spec)


def test_client_side_only():
    code = ("import sys, json, radical.edge.plugins.rhapsody.edge_backend\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    mods = json.loads(out.strip().splitlines()[-1])
    assert "rhapsody" in mods and "httpx" in mods  # the check sees real imports
    edge_side = [m for m in mods if m.split(".")[0] in ("celery", "kombu", "redis", "fastapi",
                                                        "starlette", "uvicorn")
                 or m.startswith(("radical.edge.app", "radical.edge.workers",
                                  "radical.edge.bridge_api", "radical.edge.hpc",
                                  "radical.edge.plugins.base", "radical.edge.settings"))]
    assert edge_side == []


def test_spec_sends_only_spec_fields():
    task = {"uid": "t.1", "backend": "edge", "function": functions.add, "args": (1, 2),
            "kwargs": {}, "state": None, "future": object(), "is_service": False,
            "metadata": {"dependencies": [{"uid": "t.0"}]}, "target_backend": None,
            "_tel_task_type": "function", "name": "add", "capture_stdio": False,
            "task_backend_specific_kwargs": {}, "executable": None}
    assert _spec(task) == {"uid": "t.1", "function": functions.add, "args": [1, 2],
                           "kwargs": {}, "name": "add"}
    exe = {"uid": "t.2", "executable": "/bin/echo", "arguments": ["a"], "capture_stdio": True,
           "task_backend_specific_kwargs": {"timeout": 5}}
    assert _spec(exe) == exe


def test_failures_become_the_exceptions_rhapsody_expects():
    exited = _failure("t", {"state": "FAILED", "exit_code": 3, "stderr": "oops"})
    assert isinstance(exited, TaskExecutionError) and "oops" in str(exited)
    raised = _failure("t", {"state": "FAILED", "exit_code": None,
                            "exception": "RuntimeError: boom", "error": "RuntimeError: boom"})
    assert isinstance(raised, EdgeTaskError) and "boom" in str(raised)
    assert "failed on the edge" in str(_failure("t", {"state": "FAILED"}))


def test_needs_an_edge_and_registers_by_name():
    import rhapsody

    with pytest.raises(ValueError, match="edge"):
        EdgeExecutionBackend(bridge_url="http://127.0.0.1:9")
    backend = rhapsody.get_backend("edge", bridge_url="http://127.0.0.1:9", edge="e1")
    assert isinstance(backend, EdgeExecutionBackend)
    assert backend.state() == "INITIALIZED"
    assert set(backend.get_task_states_map().terminal_states) == {"DONE", "FAILED",
                                                                   "CANCELED"}


def test_a_batch_of_one_function_is_not_bisected():
    assert _same_function([{"function": "os:getcwd"}, {"function": "os:getcwd"}])
    assert _same_function([{"function": functions.add}, {"function": functions.add}])
    assert not _same_function([{"function": "os:getcwd"}, {"function": functions.add}])
    assert not _same_function([{"function": "os:getcwd"}, {"executable": "/bin/true"}])


def test_an_unreachable_bridge_is_a_backend_error():
    import asyncio

    from rhapsody.api.errors import BackendError

    backend = EdgeExecutionBackend(bridge_url="http://127.0.0.1:9", edge="e1", token="t")

    async def main():
        await asyncio.wait_for(backend._start(), 60)

    with pytest.raises(BackendError, match="cannot open a rhapsody session on edge 'e1'"):
        asyncio.run(main())
    assert backend._bc is None and backend._client is None  # nothing left running
