"""Child edges inside real SLURM jobs, launched through the psij plugin's `submit_tunneled`.

* a child joins the broker, shows up in /edge/list with role `compute` and its allocation,
  answers a sysinfo call, and leaves the topology when its job is canceled;
* the same through a reverse SSH tunnel (parent edge -> test sshd on 127.0.0.1 standing in
  for the compute node's sshd): the child's only Redis connection is the tunnel's port;
* walltime awareness: in a 1-minute job with RADICAL_EDGE_WALLTIME_MARGIN=50 the child stops
  taking calls ~10 s in, answering 503 with a clear detail, and says so in /edge/list.
"""
from __future__ import annotations

import time
import uuid

import pytest
import redis

from radical.edge import EdgeError
from radical.edge.app import keys

from psij_helpers import (
    child_env,
    child_log,
    edges,
    pid_connections,
    redis_port,
    start_parent,
    wait_for,
)

pytest.importorskip("psij")
pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


@pytest.fixture(scope="module")
def parent(slurm_cluster, redis_url, bridge_url, log_dir, psij_dir, test_sshd):
    svc = start_parent(redis_url, bridge_url, log_dir, psij_dir,
                       test_sshd.env(tunnel_dir=psij_dir / "tunnels"))
    yield svc
    svc.stop()


def _join(bridge_url, log_dir, name, t0, what):
    wait_for(lambda: name in edges(bridge_url), 90,
             what=f"child {name} joins\n{child_log(log_dir, name)}")
    took = time.monotonic() - t0
    print(f"\n{what}: submit -> in /edge/list {took:.2f} s")
    return edges(bridge_url)[name]


def test_child_edge_in_slurm_job(pj, bc, bridge_url, log_dir, notes):
    name = f"s{uuid.uuid4().hex[:6]}"
    t0 = time.monotonic()
    sub = pj.submit_tunneled({"arguments": ["-n", name, "-p", "sysinfo"],
                              "environment": child_env(log_dir),
                              "attributes": {"duration": 300, "queue_name": "debug"}}, "slurm")
    assert sub["edge_name"] == name and sub["native_id"].isdigit()
    assert "warning" in sub  # loopback Redis without a tunnel: fine on one node, said so
    info = _join(bridge_url, log_dir, name, t0, "slurm child edge")
    # the child may join before psij's next poll of the queue sees the job running
    notes.wait_state(sub["job_id"], "ACTIVE", timeout=30)
    assert info["role"] == "compute" and info["scheduler"] == "slurm"
    assert info["job_id"] == sub["native_id"]
    alloc = info["allocation"]
    assert alloc["job_id"] == sub["native_id"] and alloc["partition"] == "debug"
    assert alloc["runtime"] == 300 and 0 < info["walltime_remaining"] <= 300
    assert info["accepting"] is True
    si = bc.get_edge_client(name).get_plugin("sysinfo")
    role = si.host_role()
    assert role == {"role": "compute", "scheduler": "slurm", "job_id": sub["native_id"]} or \
        (role["role"], role["job_id"]) == ("compute", sub["native_id"])
    assert si.get_metrics()["cpu"]["cores_logical"] >= 1
    si.close()
    t1 = time.monotonic()
    pj.cancel_job(sub["job_id"])
    wait_for(lambda: name not in edges(bridge_url), 30, what=f"child {name} leaves")
    print(f"slurm child edge: cancel -> gone from /edge/list {time.monotonic() - t1:.2f} s")
    notes.wait_state(sub["job_id"], "CANCELED", timeout=15)
    assert notes.states(sub["job_id"]) == ["QUEUED", "ACTIVE", "CANCELED"]


def test_child_edge_through_tunnel(pj, bc, bridge_url, redis_url, log_dir, notes, test_sshd,
                                   psij_dir):
    name = f"r{uuid.uuid4().hex[:6]}"
    users_before = len(test_sshd.users)
    t0 = time.monotonic()
    sub = pj.submit_tunneled({"arguments": ["-n", name, "-p", "sysinfo"],
                              "environment": child_env(log_dir),
                              "attributes": {"duration": 300}}, "slurm", tunnel=True)
    assert sub["tunnel"] is True and "warning" not in sub
    assert pj.tunnel_status(name)["status"] in ("pending", "active")
    status = wait_for(lambda: (s := pj.tunnel_status(name))["status"] == "active" and s, 60,
                      what=f"tunnel active ({pj.tunnel_status(name)})")
    print(f"\ntunnel active {time.monotonic() - t0:.2f} s after submit")
    assert status["host"] == "127.0.0.1"  # the job's node, by its SLURM NodeAddr
    assert status["native_id"] == sub["native_id"] and status["job_state"] == "ACTIVE"
    assert len(test_sshd.users) > users_before
    info = _join(bridge_url, log_dir, name, t0, "tunneled slurm child edge")
    assert info["role"] == "compute" and info["allocation"]["job_id"] == sub["native_id"]
    remote = pid_connections(info["pid"])
    assert ("127.0.0.1", status["port"]) in remote, remote
    assert all(port != redis_port(redis_url) for _h, port in remote), remote
    port_file = psij_dir / "tunnels" / f"{name}.port"
    assert port_file.read_text().split()[0] == str(status["port"])
    record = redis.Redis.from_url(redis_url).hgetall(keys.tunnel_info(name))
    assert record[b"status"] == b"active" and record[b"parent_edge"] == \
        pj.edge_id.encode()
    si = bc.get_edge_client(name).get_plugin("sysinfo")
    assert si.host_role()["role"] == "compute"
    si.close()
    pj.cancel_job(sub["job_id"])
    wait_for(lambda: name not in edges(bridge_url), 30, what=f"child {name} leaves")
    wait_for(lambda: pj.tunnel_status(name)["status"] == "done", 15, what="tunnel done")
    assert not port_file.exists()
    assert redis.Redis.from_url(redis_url).hget(keys.tunnel_info(name), "status") == b"done"


def test_tunnel_to_unreachable_node_fails_and_cancels(bc, parent, redis_url, bridge_url,
                                                      log_dir, tmp_path, notes):
    """A parent whose SSH settings cannot work: the tunnel fails, the job is canceled."""
    other = start_parent(redis_url, bridge_url, log_dir, tmp_path,
                         {"RADICAL_EDGE_SSH_PORT": "1", "RADICAL_EDGE_SSH_CONNECT_TIMEOUT": "2",
                          "RADICAL_EDGE_SSH_HOST_KEY_POLICY": "ignore"})
    try:
        pj = bc.get_edge_client(other.extra["name"]).get_plugin("psij")
        name = f"u{uuid.uuid4().hex[:6]}"
        sub = pj.submit_tunneled({"arguments": ["-n", name],
                                  "environment": child_env(log_dir)}, "slurm", tunnel=True)
        status = wait_for(lambda: (s := pj.tunnel_status(name))["status"] == "failed" and s,
                          60, what="tunnel failed")
        assert "refused" in status["error"].lower() or "connect" in status["error"].lower()
        wait_for(lambda: pj.get_job_status(sub["job_id"])["state"] == "CANCELED", 20,
                 what="job canceled after the tunnel failed")
        assert name not in edges(bridge_url)
        pj.close()
    finally:
        other.stop()


def test_walltime_drain_in_short_job(pj, bc, bridge_url, log_dir, notes):
    name = f"w{uuid.uuid4().hex[:6]}"
    t0 = time.monotonic()
    sub = pj.submit_tunneled({"arguments": ["-n", name, "-p", "sysinfo"],
                              "environment": child_env(log_dir,
                                                       RADICAL_EDGE_WALLTIME_MARGIN="50"),
                              "attributes": {"duration": 60}}, "slurm")
    info = _join(bridge_url, log_dir, name, t0, "1-minute slurm child edge")
    assert info["allocation"]["runtime"] == 60
    assert info["walltime_end"] and 0 < info["walltime_remaining"] <= 60
    si = bc.get_edge_client(name).get_plugin("sysinfo")
    if info["accepting"]:
        assert si.host_role()["role"] == "compute"
    drained = wait_for(lambda: edges(bridge_url).get(name, {}).get("accepting") is False and
                       edges(bridge_url)[name], 30, what="edge announces it drains")
    print(f"walltime drain announced {time.monotonic() - t0:.2f} s after submit, "
          f"{drained['walltime_remaining']} s of walltime left")
    assert 40 <= drained["walltime_remaining"] <= 51
    with pytest.raises(EdgeError) as err:
        si.get_metrics()
    assert err.value.status == 503
    assert "walltime" in err.value.detail and name in err.value.detail
    pj.cancel_job(sub["job_id"])
    wait_for(lambda: name not in edges(bridge_url), 30, what=f"child {name} leaves")
