"""A departed edge stays listed under `departed` with why it left, until it returns: the
portal shows it greyed with that reason instead of letting it vanish (issue 15, item 4)."""
from __future__ import annotations

import uuid
from pathlib import Path

import authed
from radical.edge import services


def topology(bridge_url: str) -> dict:
    r = authed.post(f"{bridge_url}/edge/list", timeout=5)
    r.raise_for_status()
    return r.json()["data"]


def departed(bridge_url: str, name: str) -> dict | None:
    return topology(bridge_url).get("departed", {}).get(name)


def wait_departed(bridge_url: str, name: str, reason: str, svc=None) -> dict:
    services.wait_until(lambda: (departed(bridge_url, name) or {}).get("reason") == reason,
                        30, f"edge {name} listed as departed ({reason})")
    return departed(bridge_url, name)


def test_reasons_of_disconnect_stop_and_kill(bridge_url, make_edge):
    tag = uuid.uuid4().hex[:6]
    names = {w: f"{w}{tag}" for w in ("dis", "stop", "kill")}
    svcs = {w: make_edge(name=n) for w, n in names.items()}
    for n in names.values():
        assert departed(bridge_url, n) is None

    r = authed.post(f"{bridge_url}/edge/disconnect/{names['dis']}", timeout=20)
    assert r.status_code == 200, r.text
    entry = wait_departed(bridge_url, names["dis"], "disconnected")
    assert "disconnected" in entry["detail"] and entry["role"] == "login" and entry["since"] > 0

    svcs["stop"].stop()  # SIGTERM: a clean withdrawal
    assert wait_departed(bridge_url, names["stop"], "stopped")["detail"].startswith("the edge shut down")

    svcs["kill"].kill9()  # no word: the announcement expires
    entry = wait_departed(bridge_url, names["kill"], "lost")
    assert "no heartbeat" in entry["detail"]
    # the departed are not edges: nothing routes to them
    assert names["kill"] not in topology(bridge_url)["edges"]
    # ... and the reasons hold (a later poll does not overwrite them)
    assert departed(bridge_url, names["dis"])["reason"] == "disconnected"


def test_a_returning_edge_is_no_longer_departed(bridge_url, make_edge):
    name = f"back{uuid.uuid4().hex[:6]}"
    make_edge(name=name).stop()
    wait_departed(bridge_url, name, "stopped")
    make_edge(name=name)
    services.wait_until(lambda: departed(bridge_url, name) is None, 30, "departure cleared")
    assert name in topology(bridge_url)["edges"]


def test_an_edge_leaving_at_its_walltime_says_walltime(bridge_url, redis_url, log_dir):
    """Inside a (fake) allocation: the edge drains before its walltime, then the scheduler's
    SIGTERM at the end takes it away (tests/fixtures/fake_batch, no SLURM needed)."""
    root = Path(__file__).resolve().parents[2]
    name = f"wall{uuid.uuid4().hex[:6]}"
    env = {"PYTHONPATH": str(root / "tests" / "fixtures" / "fake_batch"),
           "FAKE_BATCH_JOB_ID": "4343", "FAKE_BATCH_REMAINING": "40",
           "RADICAL_EDGE_WALLTIME_MARGIN": "37"}
    edge = services.start_edge(redis_url, name, "sysinfo", log_dir, env=env, bridge_url=bridge_url)
    try:
        services.wait_until(lambda: topology(bridge_url)["edges"][name]["accepting"] is False,
                            30, "the edge to drain before its walltime", edge)
        edge.stop()
        entry = wait_departed(bridge_url, name, "walltime")
        assert entry["detail"] == "its batch job reached its walltime" and entry["role"] == "compute"
        assert entry["job_id"] == "4343"
    finally:
        edge.stop()
