"""rhapsody workflows through radical.edge: `EdgeExecutionBackend` under rhapsody's own
`Session` and under a radical-asyncflow `WorkflowEngine`, on a real bridge and a real edge.

The edge ``rh-wf`` allows the functions of ``rh_dag_funcs`` (tests/integration, on the edge's
PYTHONPATH) besides the project's own ``radical.edge.plugins.rhapsody.functions``.
"""
from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
import rh_dag_funcs

rhapsody = pytest.importorskip("rhapsody")

from rhapsody.api.errors import TaskExecutionError  # noqa: E402

from radical.edge import services  # noqa: E402
from radical.edge.plugins.rhapsody import functions  # noqa: E402
from radical.edge.plugins.rhapsody.edge_backend import (EdgeExecutionBackend,  # noqa: E402
                                                        EdgeTaskError)

EDGE = "rh-wf"
FN = "radical.edge.plugins.rhapsody.functions"
HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def wf_edge(redis_url, bridge_url, log_dir):
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    svc = services.start_edge(redis_url, EDGE, "rhapsody", log_dir, bridge_url=bridge_url,
                              env={"PYTHONPATH": path,
                                   "RADICAL_EDGE_RHAPSODY_FUNCTIONS": "rh_dag_funcs:*"})
    yield svc
    svc.stop()


def run(coro, timeout: float = 120):
    """Run one test coroutine with an overall deadline (no test may hang)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def backend(bridge_url: str, **kwargs) -> EdgeExecutionBackend:
    return EdgeExecutionBackend(bridge_url=bridge_url, edge=EDGE, backends=["concurrent"],
                                **kwargs)


def test_session_runs_executables_and_allowed_functions(bridge_url, wf_edge):
    async def main():
        ComputeTask = rhapsody.ComputeTask
        tasks = [
            ComputeTask(executable="/bin/echo", arguments=["hello", "edge"]),
            ComputeTask(executable="/bin/sh", arguments=["-c", "echo oops >&2; exit 3"]),
            ComputeTask(function=functions.add, args=(20, 22)),          # callable -> path
            {"uid": "by-path", "function": f"{FN}:to_bytes",           # a plain dict with
             "args": ["\u00e9t\u00e9"]},                                # an import path
            ComputeTask(function=functions.fail, args=("broken on purpose",)),
            ComputeTask(function=rh_dag_funcs.shout, args=("quiet",)),
        ]
        async with rhapsody.Session(backends=[backend(bridge_url)]) as session:
            futures = await session.submit_tasks(tasks)
            await session.wait_tasks(tasks, timeout=90)
        return tasks, futures

    tasks, futures = run(main())
    echo, exit3, add, as_bytes, fail, shout = tasks
    assert echo["state"] == "DONE" and echo["stdout"].strip() == "hello edge"
    assert echo["exit_code"] == 0 and echo["backend"] == "edge"
    assert exit3["state"] == "FAILED" and exit3["exit_code"] == 3
    assert "oops" in exit3["stderr"]
    assert isinstance(futures[1].exception(), TaskExecutionError)
    assert add["state"] == "DONE" and add["return_value"] == 42
    assert futures[2].result() is add
    assert as_bytes["return_value"] == "\u00e9t\u00e9".encode()
    assert fail["state"] == "FAILED"
    assert isinstance(fail["exception"], EdgeTaskError)
    assert "broken on purpose" in str(fail["exception"])
    assert shout["state"] == "DONE" and shout["return_value"] == "QUIET"


def test_refused_tasks_fail_alone_with_the_edge_detail(bridge_url, wf_edge):
    async def main():
        good = [rhapsody.ComputeTask(function=functions.add, args=(i, 2)) for i in range(5)]
        bad = {"uid": "refused", "function": "os:getcwd"}              # not allowed: 403
        bad2 = {"uid": "refused-too", "function": "subprocess:getoutput", "args": ["id"]}
        wrong = {"uid": "bad-spec", "executable": "/bin/true", "arguments": "a b"}  # 422
        tasks = good[:2] + [bad] + good[2:4] + [wrong, bad2] + good[4:]
        async with rhapsody.Session(backends=[backend(bridge_url)]) as session:
            await session.submit_tasks(tasks)
            await session.wait_tasks(tasks, timeout=90)
        return good, bad, bad2, wrong

    good, bad, bad2, wrong = run(main())
    assert [(t["state"], t["return_value"]) for t in good] == [("DONE", i + 2)
                                                               for i in range(5)]
    for task, path in ((bad, "os:getcwd"), (bad2, "subprocess:getoutput")):
        assert task["state"] == "FAILED"
        exc = task["exception"]
        assert isinstance(exc, EdgeTaskError) and exc.status == 403
        assert path in str(exc) and "not allowed on this edge" in str(exc)
        assert "not allowed on this edge" in task["error"]
    assert wrong["state"] == "FAILED" and wrong["exception"].status == 422
    assert "must be a list" in wrong["error"]


def test_cancel_reaches_the_edge(bridge_url, wf_edge):
    def sleeper():
        return rhapsody.ComputeTask(executable="/bin/sleep", arguments=["300"])

    async def main():
        one, many, left = sleeper(), [sleeper(), sleeper()], sleeper()
        be = backend(bridge_url)
        async with rhapsody.Session(backends=[be]) as session:
            await session.submit_tasks([one] + many)
            assert await be.cancel_task(one["uid"]) is True
            await session.wait_tasks([one], timeout=60)
            assert one["state"] == "CANCELED"
            assert await be.cancel_task(one["uid"]) is False  # no longer outstanding
            assert all(t["state"] != "CANCELED" for t in many)
            assert await be.cancel_all_tasks() == 2
            await session.wait_tasks(many, timeout=60)
            await session.submit_tasks([left])
            remote = be._client
        # closing the session closed the edge session: what ran there was canceled
        return one, many, left, remote

    one, many, left, remote = run(main())
    assert [t["state"] for t in many] == ["CANCELED", "CANCELED"]
    assert left["state"] == "CANCELED"
    assert remote.sid is None


def test_a_stream_gap_repolls_lost_completions(bridge_url, wf_edge):
    async def main():
        be = await backend(bridge_url, poll_idle=3600)  # only the gap may re-poll
        client = be._client
        for topic in ("task_status", "task_status_batch"):  # lose every notification
            client.unregister_notification_callback(be._on_notification, topic)
        task = rhapsody.ComputeTask(executable="/bin/echo", arguments=["after", "gap"])
        async with rhapsody.Session(backends=[be]) as session:
            await session.submit_tasks([task])
            deadline = time.monotonic() + 60
            while (await asyncio.to_thread(client.get_task, task["uid"]))["state"] != "DONE":
                assert time.monotonic() < deadline, "the edge never finished the task"
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            assert task["state"] != "DONE"  # the completion was lost ...
            await asyncio.to_thread(be._bc._on_gap, {"from": "1-0", "to": "2-0",
                                                      "reason": "test"})
            await session.wait_tasks([task], timeout=60)  # ... and the gap recovered it
        return task

    task = run(main())
    assert task["state"] == "DONE" and task["stdout"].strip() == "after gap"


def test_silence_while_tasks_are_outstanding_polls_the_edge(bridge_url, wf_edge):
    async def main():
        be = await backend(bridge_url, poll_idle=0.5)
        for topic in ("task_status", "task_status_batch"):  # lose every notification
            be._client.unregister_notification_callback(be._on_notification, topic)
        tasks = [rhapsody.ComputeTask(executable="/bin/echo", arguments=[str(i)])
                 for i in range(3)]
        async with rhapsody.Session(backends=[be]) as session:
            await session.submit_tasks(tasks)
            await session.wait_tasks(tasks, timeout=60)  # no gap: the idle poll finds them
        return tasks

    tasks = run(main())
    assert [t["stdout"].strip() for t in tasks] == ["0", "1", "2"]


def test_an_unknown_edge_fails_the_submit_clearly(bridge_url, wf_edge):
    async def main():
        be = EdgeExecutionBackend(bridge_url=bridge_url, edge="no-such-edge")
        async with rhapsody.Session(backends=[be]) as session:
            await session.submit_tasks([rhapsody.ComputeTask(executable="/bin/true")])

    with pytest.raises(rhapsody.BackendError, match="'no-such-edge' is not connected"):
        run(main())


def test_registered_by_name(bridge_url, wf_edge):
    be = rhapsody.get_backend("edge", bridge_url=bridge_url, edge=EDGE)
    assert isinstance(be, EdgeExecutionBackend) and be.name == "edge"
    assert be.state() == "INITIALIZED"


def test_asyncflow_dag_runs_on_the_edge(bridge_url, wf_edge):
    asyncflow = pytest.importorskip("radical.asyncflow")

    async def main():
        flow = await asyncflow.WorkflowEngine.create(backend=backend(bridge_url))
        try:
            seed = flow.function_task(rh_dag_funcs.seed)
            square = flow.function_task(rh_dag_funcs.square)
            total = flow.function_task(rh_dag_funcs.total)

            @flow.executable_task
            async def announce(after):  # runs once `after` is done (the command is built
                return "/bin/echo fan-in finished"  # at call time: no value in it)

            values = seed(4)                                   # stage 1
            squares = [square(values, i) for i in range(4)]    # stage 2: fan-out
            summed = total(*squares)                           # stage 3: fan-in
            line = announce(summed)                            # and an executable
            return await summed, await line, await asyncio.gather(*squares)
        finally:
            await flow.shutdown()

    summed, line, squares = run(main(), timeout=180)
    assert squares == [1, 4, 9, 16]
    assert summed == 30
    assert line.strip() == "fan-in finished"
