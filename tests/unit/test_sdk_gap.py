"""How the SDK reacts to a `gap` event (notifications lost for good): the bridge client
re-reads the topology and calls the gap callbacks; the rhapsody client's waiters re-poll at
once instead of after `poll_idle`; the psij client re-delivers its jobs' states.

No event stream here: events are handed to `_on_event` directly, HTTP goes to a
MockTransport that only answers the routes these reactions use.
"""
from __future__ import annotations

import queue
import threading
import time

import httpx
import orjson

from radical.edge.plugins.psij.client import PsijClient
from radical.edge.plugins.rhapsody.client import RhapsodyClient
from radical.edge.sdk import BridgeClient

GAP = {"topic": "gap", "data": {"from": "5-0:e", "to": "9-0:e", "reason": "trimmed"}}
TOPOLOGY = {"bridge": {"url": "u"}, "edges": {"e1": {"plugins": {}}}}


def routes(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/edge/list":
        return httpx.Response(200, json={"data": TOPOLOGY})
    if path.endswith("/rhapsody/wait/s1"):
        uids = orjson.loads(request.content)["uids"]
        return httpx.Response(200, json=[{"uid": u, "state": "DONE"} for u in uids])
    if path.endswith("/psij/list_jobs/s1"):
        return httpx.Response(200, json={"jobs": [{"job_id": "j1", "state": "COMPLETED"}]})
    return httpx.Response(404, json={"detail": f"no route {path}"})


def test_gap_rereads_topology_and_calls_gap_callbacks() -> None:
    got: list = []
    bc = BridgeClient("http://bridge.test", transport=httpx.MockTransport(routes),
                      on_gap=lambda gap: got.append(("on_gap", gap)))
    bc._registry.add_topology(lambda edges: got.append(("topology", edges)))
    with bc._lock:  # register without starting a listener thread
        bc._gap_callbacks.append(lambda gap: got.append(("cb", gap["reason"])))
    bc._on_event(GAP)
    assert got == [("topology", TOPOLOGY["edges"]), ("on_gap", GAP["data"]), ("cb", "trimmed")]
    assert bc.gaps == 1 and bc.last_topology == TOPOLOGY
    bc.close()


def test_rhapsody_waiter_polls_at_once_after_a_gap() -> None:
    http = httpx.Client(base_url="http://bridge.test", transport=httpx.MockTransport(routes))
    rh = RhapsodyClient(http, "http://bridge.test/e1/rhapsody", edge_id="e1",
                        plugin_name="rhapsody")
    rh._sid, rh._sse_ok, rh.poll_idle = "s1", True, 3600.0  # would not poll for an hour
    done: queue.Queue = queue.Queue()
    waiter = threading.Thread(target=lambda: done.put(rh.wait_tasks(["t1", "t2"], timeout=30)))
    waiter.start()
    deadline = time.monotonic() + 10
    while not rh._waiters and time.monotonic() < deadline:
        time.sleep(0.01)
    rh._on_gap(GAP["data"])
    records = done.get(timeout=10)
    assert [r["uid"] for r in records] == ["t1", "t2"]
    waiter.join(5)


def test_psij_client_redelivers_job_states_after_a_gap() -> None:
    bc = BridgeClient("http://bridge.test", transport=httpx.MockTransport(routes))
    psij = PsijClient(bc.http, "/e1/psij", bridge_client=bc, edge_id="e1", plugin_name="psij")
    psij._sid = "s1"
    got: queue.Queue = queue.Queue()
    bc._ensure_listener = lambda: None  # no stream in a unit test
    psij.register_notification_callback(lambda *a: got.put(a), "job_status")
    bc._on_event(GAP)
    edge, plugin, topic, data = got.get(timeout=10)
    assert (edge, plugin, topic) == ("e1", "psij", "job_status")
    assert data == {"job_id": "j1", "state": "COMPLETED", "sid": "s1", "resync": True}
    bc.close()
