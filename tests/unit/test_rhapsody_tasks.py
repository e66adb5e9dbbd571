"""Task spec validation/normalisation and JSON-safe result shaping (pure, no rhapsody)."""
from __future__ import annotations

import base64
import pickle

import orjson
import pytest

from radical.edge.plugins.rhapsody import functions
from radical.edge.plugins.rhapsody.callables import FunctionResolver
from radical.edge.plugins.rhapsody.errors import TaskSpecError
from radical.edge.plugins.rhapsody.results import for_notification, json_safe, shape_task
from radical.edge.plugins.rhapsody.spec import import_paths, normalize_batch

NOOP = "radical.edge.plugins.rhapsody.functions:noop"


def norm(tasks, *, backends=("concurrent", "noop"), allow_pickle=False, auth=False,
         known=(), resolver=None):
    counter = iter(range(1, 10**6))
    return normalize_batch(tasks, backends=list(backends),
                           functions=resolver or FunctionResolver(),
                           allow_pickle=allow_pickle, auth=auth, known=set(known),
                           new_uid=lambda: f"gen.{next(counter)}")


def refused(tasks, status=422, **kw) -> str:
    with pytest.raises(TaskSpecError) as info:
        norm(tasks, **kw)
    assert info.value.status == status, info.value.detail
    return info.value.detail


def test_executable_task_is_normalised() -> None:
    [task] = norm([{"uid": "a", "executable": "/bin/echo", "arguments": ["x", 3, 1.5],
                    "cwd": "/tmp", "env": {"A": 1}, "timeout": "2.5",
                    "state": "DONE", "stdout": "old"}])
    assert task["uid"] == "a" and task["backend"] == "concurrent"
    assert task["executable"] == "/bin/echo" and task["function"] is None
    assert task["arguments"] == ["x", "3", "1.5"]
    assert task["task_backend_specific_kwargs"] == {"cwd": "/tmp", "env": {"A": "1"},
                                                    "timeout": 2.5}
    assert task["state"] is None and task["stdout"] is None  # echoed results are ignored


def test_function_by_import_path_and_generated_uid() -> None:
    [task] = norm([{"function": NOOP, "args": [1, 2], "kwargs": {"k": 3}, "backend": "noop"}])
    assert task["function"].func is functions.noop and task["function"].path == NOOP
    assert task["args"] == (1, 2) and task["kwargs"] == {"k": 3}
    assert task["uid"] == "gen.1" and task["backend"] == "noop"


def test_dotted_import_path_and_cache() -> None:
    resolver = FunctionResolver()
    norm([{"function": "radical.edge.plugins.rhapsody.functions.echo"}], resolver=resolver)
    ref = resolver.cached("radical.edge.plugins.rhapsody.functions.echo")
    assert ref.func is functions.echo
    assert ref.path == "radical.edge.plugins.rhapsody.functions:echo"
    assert import_paths([{"function": NOOP}, {"function": "pickle::AAAA"}, {}]) == {NOOP}


@pytest.mark.parametrize("spec, status, needle", [
    ({}, 422, "needs an 'executable' or a 'function'"),
    ({"executable": "/bin/true", "function": NOOP}, 422, "not both"),
    ({"executable": ""}, 422, "non-empty string"),
    ({"executable": "/bin/echo", "arguments": "x y"}, 422, "arguments must be a list"),
    ({"executable": "/bin/echo", "arguments": [{"a": 1}]}, 422, "strings or numbers"),
    ({"function": "no_such_module_xyz:f"}, 403, "not allowed on this edge"),
    ({"function": "os:system"}, 403, "RADICAL_EDGE_RHAPSODY_FUNCTIONS"),
    ({"function": "builtins:exec"}, 403, "'builtins:exec' is not allowed"),
    ({"function": "subprocess:run"}, 403, "not allowed"),
    ({"function": "pickle:loads"}, 403, "not allowed"),
    ({"function": "os._exit"}, 403, "not allowed"),
    ({"function": "radical.edge.plugins.rhapsody.functions:os.system"}, 403, "not allowed"),
    ({"function": "radical.edge.plugins.rhapsody.functions:_Opaque"}, 403, "not allowed"),
    ({"function": "radical.edge.plugins.rhapsody.functions:nope"}, 422, "no attribute"),
    ({"function": "not a path!"}, 422, "not an import path"),
    ({"function": 42}, 422, "import path"),
    ({"function": NOOP, "args": "x"}, 422, "args must be a list"),
    ({"function": NOOP, "kwargs": [1]}, 422, "kwargs must be an object"),
    ({"executable": "/bin/true", "backend": "dragon"}, 422, "not part of this session"),
    ({"executable": "/bin/true", "timeout": -1}, 422, "timeout"),
    ({"executable": "/bin/true", "env": ["A=1"]}, 422, "env"),
    ({"executable": "/bin/true", "uid": "a/b"}, 422, "uid"),
    ({"executable": "/bin/true", "uid": 7}, 422, "uid"),
    ({"prompt": "hi", "model": "m"}, 422, "not AI"),
])
def test_bad_specs_are_refused_clearly(spec, status, needle) -> None:
    detail = refused([{"uid": "t1", **spec} if "uid" not in spec else spec], status)
    assert needle in detail
    assert detail.startswith("task 0")


def test_batch_level_errors() -> None:
    assert "list of task objects" in refused({"executable": "/bin/true"})
    assert "task 1" in refused([{"executable": "/bin/true"}, "nope"])
    assert "twice" in refused([{"uid": "a", "executable": "x"}, {"uid": "a", "executable": "x"}],
                              409)
    assert "already exists" in refused([{"uid": "a", "executable": "x"}], 409, known={"a"})


def test_pickled_function_refused_by_default_and_without_token() -> None:
    blob = "pickle::" + base64.b64encode(pickle.dumps(functions.echo)).decode()
    detail = refused([{"function": blob}], 403)
    assert "RADICAL_EDGE_ALLOW_PICKLE" in detail
    detail = refused([{"function": blob}], 403, allow_pickle=True, auth=False)
    assert "submit" in detail
    detail = refused([{"function": pickle.dumps(functions.echo)}], 403)  # raw msgpack bytes
    assert "disabled" in detail
    # pickled args are refused the same way even with an import-path function
    args = "pickle::" + base64.b64encode(pickle.dumps((1, 2))).decode()
    refused([{"function": NOOP, "args": args, "_pickled_fields": ["args"]}], 403)


def test_pickled_function_accepted_when_allowed_and_authenticated() -> None:
    blob = "pickle::" + base64.b64encode(pickle.dumps(functions.add)).decode()
    args = "pickle::" + base64.b64encode(pickle.dumps([2, 3])).decode()
    [task] = norm([{"function": blob, "args": args, "_pickled_fields": ["args"]}],
                  allow_pickle=True, auth=True)
    # the edge only decodes base64: the worker process running the task unpickles
    assert task["function"].blob == pickle.dumps(functions.add) and task["function"].func is None
    assert task["_args_blob"] == pickle.dumps([2, 3]) and task["args"] == ()
    assert "only on the 'concurrent' backend" in refused(
        [{"function": blob, "backend": "noop"}], 422, allow_pickle=True, auth=True)
    assert "invalid base64" in refused([{"function": "cloudpickle::@@@"}], 422,
                                        allow_pickle=True, auth=True)


def test_json_safe() -> None:
    assert json_safe(None) == (None, None)
    assert json_safe([1, {"a": 2.5}]) == ([1, {"a": 2.5}], None)
    assert json_safe(b"\x00\xff") == (base64.b64encode(b"\x00\xff").decode(), "base64")
    assert json_safe(2 ** 70) == (str(2 ** 70), "repr")
    value, enc = json_safe(functions.opaque())
    assert (value, enc) == ("<opaque thing>", "repr")
    value, enc = json_safe({"x": object()})
    assert enc == "repr" and value.startswith("{'x': <object")


def test_shape_task_is_json_safe_and_complete() -> None:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        error = exc
    task = {"uid": "u", "state": "FAILED", "exit_code": 1, "stdout": b"out\xff",
            "stderr": "err", "return_value": b"bin", "exception": error, "pid": 12}
    out = shape_task(task)
    for key in ("uid", "state", "exit_code", "stdout", "stderr", "return_value", "error",
                "exception"):
        assert key in out
    assert out["stdout"] == "out\ufffd"
    assert out["return_value"] == base64.b64encode(b"bin").decode()
    assert out["_return_value_encoding"] == "base64"
    assert out["exception"] == "ValueError: boom" and out["error"] == "ValueError: boom"
    assert "Traceback" in out["traceback"] and out["pid"] == 12
    orjson.dumps(out)


def test_notification_cuts_huge_output() -> None:
    record = {"uid": "u", "state": "DONE", "stdout": "x" * 1000, "stderr": "ok"}
    cut = for_notification(record, limit=10)
    assert cut["stdout"] == "x" * 10 and cut["stdout_truncated"] is True
    assert "stderr_truncated" not in cut and record["stdout"] == "x" * 1000
    assert for_notification({"uid": "u", "stdout": "short"}) == {"uid": "u", "stdout": "short"}


def test_the_edge_never_unpickles() -> None:
    """A garbage pickle is handed to the worker as is; bytes args stay bytes."""
    blob = "pickle::" + base64.b64encode(b"not a pickle").decode()
    [task] = norm([{"function": blob}], allow_pickle=True, auth=True)
    assert task["function"].blob == b"not a pickle"
    payload = pickle.dumps(functions.fail)
    [task] = norm([{"function": f"{NOOP[:-5]}:echo", "args": [payload]}])
    assert task["args"] == (payload,)  # msgpack bin / bytes: plain data, not a pickle
    assert "args must be a list" in refused([{"function": NOOP, "args": payload}])


def test_result_store_packs_records_and_states() -> None:
    from radical.edge.plugins.rhapsody.result_store import ResultStore

    store = ResultStore()
    store.SEGMENT = 64  # force several segments and a "big" record
    records = {f"u{i}": (("DONE", "FAILED", "CANCELED")[i % 3],
                         orjson.dumps({"uid": f"u{i}", "pad": "x" * (i % 7)}))
               for i in range(50)}
    records["big"] = ("DONE", orjson.dumps({"uid": "big", "stdout": "y" * 500}))
    for uid, (state, data) in records.items():
        store.add(uid, state, data)
    assert len(store) == 51 and "u7" in store and "nope" not in store
    for uid, (state, data) in records.items():
        assert store.get(uid) == data and store.state(uid) == state
    assert sorted(store.records()) == sorted(d for _s, d in records.values())
    assert store.get("nope") is None and store.state("nope") is None
    store.clear()
    assert len(store) == 0
