"""rhapsody task output streams over SSE while the task runs (`task_output`), through a real
bridge and edge, and `task/{uid}` of the running task already answers with it."""
from __future__ import annotations

import threading
import uuid

import httpx
import pytest
from authed import AUTH

from radical.edge import BridgeClient, services

pytest.importorskip("rhapsody")


@pytest.fixture(scope="module")
def edge(module_edges):
    name = f"rs{uuid.uuid4().hex[:6]}"
    module_edges("rhapsody", name=name)
    return name


def test_output_arrives_while_the_task_runs(bridge_url, edge):
    got: list[dict] = []
    first = threading.Event()
    bc = BridgeClient(bridge_url.replace("://", f"://:{AUTH['Authorization'][7:]}@"))

    def on_output(_edge, _plugin, _topic, data):
        got.append(data)
        first.set()
    bc.register_callback(edge_id=edge, topic="task_output", callback=on_output)
    assert bc.wait_for_listener(30)
    try:
        with httpx.Client(base_url=bridge_url, headers=AUTH, timeout=60) as http:
            sid = http.post(f"/{edge}/rhapsody/register_session",
                            json={"backends": ["concurrent"]}).json()["sid"]
            services.wait_until(lambda: http.get(f"/{edge}/rhapsody/session_status/{sid}")
                                .json()["status"] == "ready", 60, "the session")
            r = http.post(f"/{edge}/rhapsody/submit/{sid}", json={"tasks": [{
                "executable": "/bin/sh",
                "arguments": ["-c", "echo one; sleep 2; echo two >&2; sleep 2; echo three"]}]})
            uid = r.json()[0]["uid"]
            assert first.wait(30), "no task_output while the task ran"
            task = http.get(f"/{edge}/rhapsody/task/{sid}/{uid}").json()
            assert task["state"] == "RUNNING" and task["stdout"] == "one\n"
            services.wait_until(lambda: http.get(f"/{edge}/rhapsody/task/{sid}/{uid}")
                                .json()["state"] == "DONE", 30, "the task to end")
            final = http.get(f"/{edge}/rhapsody/task/{sid}/{uid}").json()
        assert final["stdout"] == "one\nthree\n" and final["stderr"] == "two\n"
        mine = [d for d in got if d["uid"] == uid]
        assert mine[0] == {"sid": sid, "uid": uid, "stream": "stdout", "offset": 0,
                           "data": "one\n"}
        assert {"sid": sid, "uid": uid, "stream": "stderr", "offset": 0,
                "data": "two\n"} in mine
    finally:
        bc.close()
