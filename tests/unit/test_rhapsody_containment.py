"""The rhapsody allow-list, bounded body decoding and the function worker pool (real
worker processes, no bridge)."""
from __future__ import annotations

import asyncio
import os
import pickle

import msgpack
import pytest
from starlette.exceptions import HTTPException

from radical.edge.plugins.rhapsody.allowlist import FunctionPolicy, resolve_allowed
from radical.edge.plugins.rhapsody.bodies import BodyLimits, decode_json, decode_msgpack
from radical.edge.plugins.rhapsody.errors import TaskSpecError
from radical.edge.plugins.rhapsody.procpool import Job, WorkerPool, load_plain
from radical.edge.plugins.rhapsody.worker_main import REPR_MARK, plain

FN = "radical.edge.plugins.rhapsody.functions"


# -- allow-list -----------------------------------------------------------------------------
def test_policy_allows_only_what_the_admin_listed() -> None:
    policy = FunctionPolicy.from_settings("json:dumps, os.path:*, bad entry!, :x",
                                          entry_point_group=None)
    assert policy.match(f"{FN}:noop") and policy.match(f"{FN}.echo")
    assert policy.match("json:dumps") and not policy.match("json:loads")
    assert policy.match("os.path:join")
    for path in ("os:system", "builtins:exec", "pickle:loads", "os.path:_private",
                 "os.path:sep.join", f"{FN}:os.system", "os", ""):
        assert policy.match(path) is None, path
    assert "json:dumps" in policy.describe() and "os.path:*" in policy.describe()


def test_resolve_allowed_names_the_function_and_the_fix() -> None:
    policy = FunctionPolicy.from_settings("os.path:*", entry_point_group=None)
    assert resolve_allowed(policy, f"{FN}:add")[0] == f"{FN}:add"
    with pytest.raises(TaskSpecError) as info:
        resolve_allowed(policy, "subprocess:run")
    assert info.value.status == 403 and "'subprocess:run'" in info.value.detail
    assert "RADICAL_EDGE_RHAPSODY_FUNCTIONS" in info.value.detail
    # os.path:* covers what posixpath defines, not `exists` it imports from genericpath
    with pytest.raises(TaskSpecError) as info:
        resolve_allowed(FunctionPolicy.from_settings("posixpath:*", entry_point_group=None),
                        "posixpath:exists")
    assert info.value.status == 403 and "defined in" in info.value.detail
    with pytest.raises(TaskSpecError) as info:
        resolve_allowed(policy, f"{FN}:missing")
    assert info.value.status == 422


# -- bodies ---------------------------------------------------------------------------------
LIMITS = BodyLimits(max_bytes=1 << 20, max_items=1000)


def _status(fn, raw: bytes) -> int:
    with pytest.raises(HTTPException) as info:
        fn(raw, LIMITS)
    return info.value.status_code


def test_msgpack_decoding_is_bounded() -> None:
    ok = decode_msgpack(msgpack.packb({"tasks": [{"args": [b"\x80\x04"]}]}), LIMITS)
    assert ok == {"tasks": [{"args": [b"\x80\x04"]}]}  # bin stays bytes
    assert _status(decode_msgpack, msgpack.packb([{}] * 5000)) == 413  # one big array
    assert _status(decode_msgpack, msgpack.packb([[{}] * 900] * 3)) == 413  # the budget
    assert _status(decode_msgpack, msgpack.packb([msgpack.ExtType(1, b"x")])) == 422
    assert decode_msgpack(msgpack.packb([msgpack.Timestamp(1, 0)]), LIMITS) == [1.0]
    assert _status(decode_msgpack, b"\x91" * 5000 + b"\xc0") == 422  # nested too deep
    assert _status(decode_msgpack, b"\xc1") == 400


def test_json_decoding_is_bounded() -> None:
    assert decode_json(b'{"tasks": [1, 2]}', LIMITS) == {"tasks": [1, 2]}
    assert _status(decode_json, b"[" + b"{}," * 2000 + b"{}]") == 413
    with pytest.raises(HTTPException) as info:
        decode_json(b"[" * 2000 + b"]" * 2000, BodyLimits(max_items=10_000))
    assert info.value.status_code == 422 and "nested" in info.value.detail
    assert _status(decode_json, b"{nope") == 400


# -- results from workers -------------------------------------------------------------------
def test_worker_results_are_plain_data_only() -> None:
    assert plain({"a": (1, b"x", [None, 2.5])}) == {"a": (1, b"x", [None, 2.5])}
    assert plain(object())[0] == REPR_MARK
    assert plain([object()])[0].startswith("<object")
    assert load_plain(pickle.dumps([1, {"a": b"b"}, (None, True)])) == [1, {"a": b"b"},
                                                                        (None, True)]
    with pytest.raises(pickle.UnpicklingError):
        load_plain(pickle.dumps(os.getpid))


# -- the pool -------------------------------------------------------------------------------
class Owner:
    def __init__(self) -> None:
        self.results: dict[str, tuple] = {}
        self.event = asyncio.Event()
        self.expected = 0

    def _got(self, uid: str, value: tuple) -> None:
        self.results[uid] = value
        if len(self.results) >= self.expected:
            self.event.set()

    def function_finished(self, task: dict, ok: bool, value) -> None:
        self._got(task["uid"], ("ok" if ok else "err", value))

    def function_crashed(self, task: dict, detail: str, exit_code) -> None:
        self._got(task["uid"], ("crash", detail, exit_code))


def job(owner: Owner, uid: str, path: str, *args) -> Job:
    return Job({"uid": uid}, owner, path, None, args, {}, None, None)


def test_pool_survives_a_dying_worker_and_kills_a_cancelled_task() -> None:
    async def main() -> None:
        pool = WorkerPool(2)
        owner = Owner()
        try:
            jobs = [job(owner, "exit", "os:_exit", 7)] + [
                job(owner, f"a{i}", f"{FN}:add", i, 1) for i in range(20)]
            owner.expected = len(jobs)
            pool.submit(jobs)
            await asyncio.wait_for(owner.event.wait(), 60)
            assert owner.results["exit"][0] == "crash"
            assert "exited with code 7" in owner.results["exit"][1]
            assert all(owner.results[f"a{i}"] == ("ok", i + 1) for i in range(20))
            assert pool.deaths == 1
            # a running task is cancelled by killing its worker; the pool goes on
            owner.results.clear()
            owner.event.clear()
            nap = job(owner, "nap", f"{FN}:sleep", 60)
            pool.submit([nap])
            for _ in range(600):
                if nap.worker is not None and nap.worker.running() == nap.seq:
                    break
                await asyncio.sleep(0.05)
            victim = nap.worker
            pool.cancel_many([nap])
            await asyncio.wait_for(victim.proc.wait(), 10)
            owner.expected = 1
            pool.submit([job(owner, "after", f"{FN}:add", 2, 2)])
            await asyncio.wait_for(owner.event.wait(), 60)
            assert owner.results == {"after": ("ok", 4)}
        finally:
            await pool.shutdown()

    asyncio.run(main())
