"""The psij plugin with the `local` executor, end to end: SDK -> bridge -> Redis -> edge.

Covers output streaming by byte offset, exit codes, exactly-once `job_status` over SSE,
cancel, session cleanup, the 4xx answers, and child edges launched with `submit_tunneled`
(directly and through a reverse SSH tunnel to a test sshd on 127.0.0.1).
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path

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


@pytest.fixture(scope="module")
def parent(redis_url, bridge_url, log_dir, psij_dir, test_sshd):
    svc = start_parent(redis_url, bridge_url, log_dir, psij_dir,
                       test_sshd.env(tunnel_dir=psij_dir / "tunnels"))
    yield svc
    svc.stop()


def test_client_class_and_executors(pj):
    assert type(pj).__name__ == "PsijClient"
    info = pj.executors()
    assert {"local", "slurm"} <= set(info["executors"])  # sbatch of the test SLURM is on PATH
    assert "pbs" in info["executors"] or "qsub" in info["unavailable"]["pbs"]
    assert info["default"] in info["executors"]


def test_output_streams_by_offset_and_exit_code(pj, notes):
    script = "for i in 1 2 3 4; do echo line$i; sleep 0.4; done; echo oops >&2; exit 3"
    sub = pj.submit_job({"executable": "/bin/bash", "arguments": ["-c", script]})
    job_id = sub["job_id"]
    assert sub["native_id"] and sub["executor"] == "local"
    chunks, offsets = [], (0, 0)
    while True:
        st = pj.get_job_status(job_id, *offsets)
        if st["stdout"]:
            chunks.append(st["stdout"])
        if st["stdout_offset"] == offsets[0] and st["state"] in ("COMPLETED", "FAILED"):
            break
        offsets = (st["stdout_offset"], st["stderr_offset"])
        time.sleep(0.15)
    assert "".join(chunks) == "line1\nline2\nline3\nline4\n"
    assert len(chunks) >= 3, f"output did not arrive incrementally: {chunks}"
    assert st["state"] == "FAILED" and st["exit_code"] == 3
    full = pj.get_job_status(job_id)
    assert full["stderr"] == "oops\n" and full["stdout_offset"] == 24
    assert pj.get_job_status(job_id, 6, 2)["stdout"].startswith("line2")
    for key in ("job_id", "native_id", "state", "message", "exit_code", "time", "executable",
                "arguments", "executor", "directory", "queue_name", "account", "node_count",
                "duration", "stdout", "stderr", "stdout_offset", "stderr_offset"):
        assert key in full, key
    final = notes.wait_state(job_id, "FAILED")
    assert notes.states(job_id) == ["QUEUED", "ACTIVE", "FAILED"]
    assert final["exit_code"] == 3 and final["stdout"].endswith("line4\n")

    done = pj.submit_job({"executable": "echo", "arguments": ["hi", "there"],
                          "environment": {"X": "a b,c"}})
    result = pj.wait_job(done["job_id"], timeout=30, interval=0.2)
    assert result["state"] == "COMPLETED" and result["exit_code"] == 0
    assert result["stdout"] == "hi there\n"
    notes.wait_state(done["job_id"], "COMPLETED")
    # notifications of one edge arrive in order: a duplicate would come before a later job's
    marker = pj.submit_job({"executable": "true"})
    notes.wait_state(marker["job_id"], "COMPLETED")
    assert notes.states(done["job_id"]) == ["QUEUED", "ACTIVE", "COMPLETED"]


def test_cancel(pj, notes):
    job = pj.submit_job({"executable": "/bin/sleep", "arguments": ["60"]})
    answer = pj.cancel_job(job["job_id"])
    assert answer["job_id"] == job["job_id"] and answer["canceled"] is True
    notes.wait_state(job["job_id"], "CANCELED")
    assert pj.get_job_status(job["job_id"])["state"] == "CANCELED"
    again = pj.cancel_job(job["job_id"])  # idempotent: 200 with the final state
    assert again["state"] == "CANCELED" and again["canceled"] is False
    wait_for(lambda: not _alive(int(job["native_id"])), 10, what="process gone")
    listed = {j["job_id"]: j for j in pj.list_jobs()["jobs"]}
    assert listed[job["job_id"]]["state"] == "CANCELED"
    assert notes.states(job["job_id"]).count("CANCELED") == 1


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("spec, executor, words", [
    ({}, "local", "executable is required"),
    ({"executable": "/bin/true", "arguments": "-l -a"}, "local", "list of strings"),
    ({"executable": "/bin/true", "colour": "red"}, "local", "unknown job_spec field"),
    ({"executable": "/bin/true", "attributes": {"duration": "soon"}}, "local", "duration"),
    ({"executable": "/bin/true", "attributes": {"queue_name": "a\nb"}}, "local", "newline"),
    ({"executable": "/bin/true", "environment": {"1BAD": "x"}}, "local", "variable name"),
    ({"executable": "/bin/true", "attributes": {"custom_attributes": {"x": "1"}}}, "local",
     "scheduler.option"),
    ({"executable": "/no/such/program"}, "local", "does not exist"),
    ({"executable": "/bin/true"}, "condor", "unknown executor"),
])
def test_bad_job_specs_are_422(pj, spec, executor, words):
    with pytest.raises(EdgeError) as err:
        pj.submit_job(spec, executor)
    assert err.value.status == 422, err.value
    assert words in err.value.detail


def test_unknown_job_session_and_offsets(pj, bc, parent):
    for call in (lambda: pj.get_job_status("nope"), lambda: pj.cancel_job("nope")):
        with pytest.raises(EdgeError) as err:
            call()
        assert err.value.status == 404 and "unknown job 'nope'" in err.value.detail
    job = pj.submit_job({"executable": "/bin/true"})
    with pytest.raises(EdgeError) as err:
        pj.get_job_status(job["job_id"], stdout_offset=-1)
    assert err.value.status == 422
    other = bc.get_edge_client(parent.extra["name"]).plugin_client("psij")
    with pytest.raises(EdgeError) as err:
        other._get("list_jobs/session.doesnotexist")
    assert err.value.status == 404
    with pytest.raises(EdgeError) as err:
        pj._post(f"submit/{pj.sid}", json={"executor": "local"})
    assert err.value.status == 422 and "job_spec is required" in err.value.detail


def test_session_close_cancels_and_removes_output(bc, parent, notes):
    pj = bc.get_edge_client(parent.extra["name"]).get_plugin("psij")
    job = pj.submit_job({"executable": "/bin/bash", "arguments": ["-c", "echo x; sleep 60"]})
    st = wait_for(lambda: (s := pj.get_job_status(job["job_id"]))["stdout"] and s, 10)
    out_dir = Path(st["stdout_path"]).parent
    assert out_dir.is_dir() and oct(out_dir.stat().st_mode)[-3:] == "700"
    pj.close()
    notes.wait_state(job["job_id"], "CANCELED")
    assert not out_dir.exists()
    wait_for(lambda: not _alive(int(job["native_id"])), 10, what="process gone")


def test_session_may_keep_jobs(bc, parent, notes):
    pj = bc.get_edge_client(parent.extra["name"]).get_plugin("psij", cancel_on_close=False)
    job = pj.submit_job({"executable": "/bin/sleep", "arguments": ["2"]})
    pj.close()
    notes.wait_state(job["job_id"], "COMPLETED", timeout=15)


# -- child edges ----------------------------------------------------------------------------------
def test_submit_tunneled_validation(pj, parent):
    with pytest.raises(EdgeError) as err:
        pj.submit_tunneled({"arguments": ["-p", "sysinfo"]})
    assert err.value.status == 422 and "-n" in err.value.detail
    with pytest.raises(EdgeError) as err:
        pj.submit_tunneled({"arguments": ["-n", "bad name!"]})
    assert err.value.status == 422 and "invalid edge name" in err.value.detail
    with pytest.raises(EdgeError) as err:  # a live edge's name (here: the parent's own)
        pj.submit_tunneled({"arguments": ["-n", parent.extra["name"]]})
    assert err.value.status == 409
    assert pj.tunnel_status("never-seen") == {"edge_name": "never-seen", "status": "no_tunnel",
                                              "port": None, "pid": None}


def test_child_edge_local(pj, bc, bridge_url, log_dir, notes):
    name = f"c{uuid.uuid4().hex[:6]}"
    t0 = time.monotonic()
    sub = pj.submit_tunneled({"arguments": ["-n", name, "-p", "sysinfo"],
                              "environment": child_env(log_dir)}, "local")
    assert sub["edge_name"] == name and sub["tunnel"] is False
    with pytest.raises(EdgeError) as err:  # the name is taken while the job runs
        pj.submit_tunneled({"arguments": ["--name", name]})
    assert err.value.status == 409
    wait_for(lambda: name in edges(bridge_url), 60,
             what=f"child {name} joins\n{child_log(log_dir, name)}")
    print(f"\nlocal child edge joined in {time.monotonic() - t0:.2f} s")
    si = bc.get_edge_client(name).get_plugin("sysinfo")
    assert si.host_role()["role"] == "login"  # a local process is not in an allocation
    si.close()
    pj.cancel_job(sub["job_id"])
    notes.wait_state(sub["job_id"], "CANCELED")
    wait_for(lambda: name not in edges(bridge_url), 20, what=f"child {name} leaves")


def test_child_edge_through_tunnel(pj, bc, bridge_url, redis_url, log_dir, notes, test_sshd,
                                  psij_dir):
    name = f"t{uuid.uuid4().hex[:6]}"
    forwards_before = len(test_sshd.forward_requests)
    t0 = time.monotonic()
    sub = pj.submit_tunneled({"arguments": ["-n", name, "-p", "sysinfo"],
                              "environment": child_env(log_dir)}, "local", tunnel=True)
    assert sub["tunnel"] is True
    status = wait_for(lambda: (s := pj.tunnel_status(name))["status"] == "active" and s, 30,
                      what=f"tunnel active ({pj.tunnel_status(name)})")
    assert status["port"] and status["pid"] and status["host"] == "127.0.0.1"
    assert len(test_sshd.forward_requests) == forwards_before + 1
    wait_for(lambda: name in edges(bridge_url), 60,
             what=f"child {name} joins\n{child_log(log_dir, name)}")
    print(f"\ntunneled local child edge joined in {time.monotonic() - t0:.2f} s")
    # the child talks to Redis only through the tunnel's port
    child_pid = edges(bridge_url)[name]["pid"]
    remote = pid_connections(child_pid)
    assert ("127.0.0.1", status["port"]) in remote, remote
    assert all(port != redis_port(redis_url) for _h, port in remote), remote
    assert "tunnel up: Redis via 127.0.0.1:" in child_log(log_dir, name)
    record = redis.Redis.from_url(redis_url).hgetall(keys.tunnel_info(name))
    assert record[b"status"] == b"active" and int(record[b"port"]) == status["port"]
    si = bc.get_edge_client(name).get_plugin("sysinfo")
    assert si.get_metrics()["memory"]["total"] > 0
    si.close()
    with pytest.raises(EdgeError) as err:
        pj.submit_tunneled({"arguments": ["-n", name]}, tunnel=True)
    assert err.value.status == 409
    pj.cancel_job(sub["job_id"])
    wait_for(lambda: pj.tunnel_status(name)["status"] == "done", 15, what="tunnel done")
    wait_for(lambda: name not in edges(bridge_url), 20, what=f"child {name} leaves")
    assert not (psij_dir / "tunnels" / f"{name}.port").exists()  # removed over SFTP


def test_tunnel_manager_over_real_ssh(test_sshd, tmp_path, monkeypatch):
    """The parent's SSH side alone: accept-new host keys, remote forward, port file (SFTP)."""
    import asyncio

    from radical.edge.hpc.launch import tunnel as tunnel_mod

    known = tmp_path / "ssh" / "known_hosts"  # does not exist yet: accept-new records it
    for key, value in {**test_sshd.env(tunnel_dir=tmp_path / "tunnels"),
                       "RADICAL_EDGE_SSH_KNOWN_HOSTS": str(known),
                       "RADICAL_EDGE_SSH_HOST_KEY_POLICY": "accept-new"}.items():
        monkeypatch.setenv(key, value)

    async def echo(reader, writer):  # stands in for Redis
        writer.write((await reader.read(100)).upper())
        await writer.drain()
        writer.close()

    async def through(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping")
        await writer.drain()
        data = await reader.read(100)
        writer.close()
        return data

    async def wait_status(mgr, name, status):
        for _ in range(200):
            view = await mgr.lookup(name)
            if view["status"] == status:
                return view
            await asyncio.sleep(0.05)
        raise AssertionError(f"tunnel {name}: {view}")

    async def main():
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        target = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        mgr = tunnel_mod.TunnelManager("p", f"redis://127.0.0.1:{target}/0", loop)
        t = mgr.plan("kid")
        mgr.attach("kid", "job-1", "123", "local")
        mgr.job_state("kid", "ACTIVE")
        view = await wait_status(mgr, "kid", "active")
        port, token = Path(t.port_file).read_text().split()
        assert int(port) == view["port"] != target and token == t.token
        assert await through(view["port"]) == b"PING"
        assert f"[127.0.0.1]:{test_sshd.port} ssh-ed25519" in known.read_text()
        # the recorded key now satisfies the strict policy
        monkeypatch.setenv("RADICAL_EDGE_SSH_HOST_KEY_POLICY", "strict")
        strict = tunnel_mod.TunnelManager("p", f"redis://127.0.0.1:{target}/0", loop)
        strict.settings.tunnel_dir = str(tmp_path / "tunnels2")
        strict.plan("kid2")
        strict.attach("kid2", "job-2", "124", "local")
        strict.job_state("kid2", "ACTIVE")
        view2 = await wait_status(strict, "kid2", "active")
        assert await through(view2["port"]) == b"PING"
        await strict.shutdown()
        assert (await strict.lookup("kid2"))["status"] == "done"
        mgr.job_state("kid", "COMPLETED")
        await wait_status(mgr, "kid", "done")
        assert not Path(t.port_file).exists()
        server.close()

    asyncio.run(asyncio.wait_for(main(), 60))
