"""The lucid plugin end to end: SDK -> bridge -> Redis -> edge -> RADICAL-Pilot, with a real
pilot on `local.localhost` running real tasks (one pilot shared by the module: RP needs
~20-30 s to bootstrap it on a loaded machine)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from authed import AUTH

from radical.edge import BridgeClient, EdgeError, services
from radical.edge.plugins.lucid.session import session_processes

pytest.importorskip("radical.pilot")

EDGE = "lucid-e"


@pytest.fixture(scope="module")
def edge(redis_url, bridge_url, log_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("lucid")
    svc = services.start_edge(redis_url, EDGE, "lucid", log_dir, bridge_url=bridge_url,
                              env={"RADICAL_EDGE_LUCID_DIR": str(root),
                                   "RADICAL_EDGE_LUCID_MAX_WAIT": "20"})
    svc.extra["root"] = root
    yield svc
    svc.stop()


class Notes:
    """`task_status` notifications of the lucid edge."""

    def __init__(self, bc: BridgeClient) -> None:
        self.items: list[dict] = []
        self.cond = threading.Condition()
        bc.register_callback(EDGE, "lucid", "task_status", self._add)
        assert bc.wait_for_listener(30), "SSE listener did not connect"

    def _add(self, edge: str, plugin: str, topic: str, data: dict) -> None:
        with self.cond:
            self.items.append(data)
            self.cond.notify_all()

    def wait(self, tid: str, state: str, timeout: float = 60) -> dict:
        def found() -> dict | None:
            return next((d for d in self.items if d["tid"] == tid and d["state"] == state), None)
        with self.cond:
            assert self.cond.wait_for(found, timeout), f"no {state} notification for {tid}"
            return found()


@pytest.fixture(scope="module")
def lc(bc, edge):
    client = bc.get_edge_client(EDGE).get_plugin("lucid")
    notes = Notes(bc)
    pid = client.pilot_submit({"resource": "local.localhost", "cores": 2, "runtime": 15})["pid"]
    client.extra = {"pid": pid, "notes": notes}
    yield client
    client.close()


def test_tasks_run_and_report_stdout(lc):
    tids = [lc.task_submit({"executable": "/bin/echo", "arguments": ["hello", str(i)]})["tid"]
            for i in range(3)]
    for i, tid in enumerate(tids):
        task = lc.wait_final(tid, timeout=240)
        assert task["state"] == "DONE", task
        assert task["exit_code"] == 0 and task["stdout"] == f"hello {i}\n"
        note = lc.extra["notes"].wait(tid, "DONE")
        assert note["stdout"] == f"hello {i}\n" and note["sid"] == lc.sid
    listed = {t["tid"]: t["state"] for t in lc.task_list()["tasks"]}
    assert all(listed[t] == "DONE" for t in tids)
    pilot = lc.pilot_status(lc.extra["pid"])
    assert pilot["state"] == "PMGR_ACTIVE" and pilot["resource"] == "local.localhost"
    assert [p["pid"] for p in lc.pilot_status()["pilots"]] == [lc.extra["pid"]]


def test_failing_task_has_exit_code_and_stderr(lc):
    tid = lc.task_submit({"executable": "/bin/sh",
                          "arguments": ["-c", "echo out; echo bad >&2; exit 3"]})["tid"]
    task = lc.wait_final(tid, timeout=240)
    assert task["state"] == "FAILED" and task["exit_code"] == 3
    assert task["stdout"] == "out\n" and "bad" in task["stderr"]


def test_wait_answers_current_state_before_the_end_and_cancel(lc):
    tid = lc.task_submit({"executable": "/bin/sleep", "arguments": ["300"]})["tid"]
    answer = lc.task_wait(tid, timeout=1)
    assert answer["tid"] == tid and answer["task"]["state"] not in ("DONE", "FAILED", "CANCELED")
    assert lc.task_cancel(tid) == {"tid": tid, "canceled": True}
    assert lc.wait_final(tid, timeout=120)["state"] == "CANCELED"
    lc.extra["notes"].wait(tid, "CANCELED")
    with pytest.raises(EdgeError) as err:
        lc.task_cancel(tid)
    assert err.value.status == 409


def test_bad_input_is_4xx(bridge_url, lc):
    base = f"{bridge_url}/{EDGE}/lucid"
    cases = [
        ("post", f"task_submit/{lc.sid}", {"description": {"arguments": ["x"]}}, 422),
        ("post", f"task_submit/{lc.sid}", {"description": {"executable": 5}}, 422),
        ("post", f"task_submit/{lc.sid}", {"description": {"executable": "x", "bogus": 1}}, 422),
        ("post", f"task_submit/{lc.sid}", {"descr": {}}, 422),
        ("post", f"pilot_submit/{lc.sid}", {"description": {"cores": -1}}, 422),
        ("post", f"pilot_submit/{lc.sid}", {"description": "local"}, 422),
        ("get", f"task_wait/{lc.sid}/task.999999", None, 404),
        ("get", f"task_wait/{lc.sid}/task.000000?timeout=abc", None, 422),
        ("get", f"pilot_status/{lc.sid}/pilot.9999", None, 404),
        ("post", f"task_cancel/{lc.sid}/nope", None, 404),
        ("get", "task_list/session.nope", None, 404),
    ]
    with httpx.Client(headers=AUTH, timeout=60) as http:
        for method, path, body, status in cases:
            r = getattr(http, method)(f"{base}/{path}", **({"json": body} if body else {}))
            assert r.status_code == status, (path, body, r.text)
            assert r.json()["detail"], path


def test_task_before_pilot_is_409(bc, edge):
    with bc.get_edge_client(EDGE).get_plugin("lucid") as fresh:
        with pytest.raises(EdgeError) as err:
            fresh.task_submit({"executable": "/bin/true"})
        assert err.value.status == 409


def cmdlines(procs: list[psutil.Process]) -> list[str]:
    """Command lines of those still there (RP's short-lived helpers may exit meanwhile)."""
    out = []
    for proc in procs:
        try:
            out.append(" ".join(proc.cmdline()))
        except psutil.NoSuchProcess:
            continue
    return out


def test_close_leaves_no_processes(bc, edge):
    client = bc.get_edge_client(EDGE).get_plugin("lucid")
    client.pilot_submit({"cores": 1, "runtime": 10})
    tid = client.task_submit({"executable": "/bin/sleep", "arguments": ["300"]})["tid"]
    end = time.monotonic() + 240
    while client.task_wait(tid, timeout=5)["task"]["state"] != "AGENT_EXECUTING":
        assert time.monotonic() < end, "task never started"
    where = edge.extra["root"] / EDGE / client.sid
    rp_uid = next((where).glob("rp.session.*")).name
    running = session_processes(where)
    names = " ".join(cmdlines(running))
    assert "rp.agent.0" in names and "rp.client_queue" in names and "sleep 300" in names, names
    client.close()
    left = [p for p in running if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left and not session_processes(where), cmdlines(left)
    assert not where.exists()
    assert not list((Path.home() / ".radical" / "utils").glob(f"{rp_uid}*"))


def test_edge_stop_leaves_no_processes(bc, make_edge, tmp_path):
    svc = make_edge("lucid", name="lucid-stop", env={"RADICAL_EDGE_LUCID_DIR": str(tmp_path)})
    client = bc.get_edge_client("lucid-stop").get_plugin("lucid")
    client.pilot_submit({"cores": 1, "runtime": 10})
    tid = client.task_submit({"executable": "/bin/sleep", "arguments": ["300"]})["tid"]
    end = time.monotonic() + 240
    while client.task_wait(tid, timeout=5)["task"]["state"] != "AGENT_EXECUTING":
        assert time.monotonic() < end, "task never started"
    assert session_processes(tmp_path)
    svc.stop(timeout=60)
    assert svc.proc.returncode == 0
    left = session_processes(tmp_path)
    assert not left, [p.cmdline() for p in left]
