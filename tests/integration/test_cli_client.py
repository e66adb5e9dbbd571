"""The user's commands (`edges`, `call`, `events`, `jobs`, `token`) run for real against the
session's bridge and real edges, as subprocesses: what a user types, what a script parses."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid

import pytest

import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import services


def cli(*args: str, timeout: float = 60, env: dict | None = None
        ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "radical.edge.cli", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def echo_edge(module_edges) -> str:
    name = f"c{uuid.uuid4().hex[:6]}"
    module_edges("echo,sysinfo,staging", name=name)
    return name


def test_edges_table_and_json(bridge_url, echo_edge):
    r = cli("edges", "--url", bridge_url)
    assert r.returncode == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    assert header.split() == ["EDGE", "ROLE", "STATE", "HEARTBEAT", "WALLTIME", "PLUGINS"]
    row = next(line.split() for line in rows if line.split()[0] == echo_edge)
    assert row[1:3] == ["login", "alive"] and row[3].endswith("s") and row[4] == "-"
    assert row[5] == "echo,staging,sysinfo"

    r = cli("edges", "--url", bridge_url, "--json")
    assert r.returncode == 0, r.stderr
    edges = json.loads(r.stdout)
    assert set(edges[echo_edge]["plugins"]) == {"echo", "staging", "sysinfo"}
    assert edges[echo_edge]["heartbeat_age"] >= 0


def test_call_get_post_and_session(bridge_url, echo_edge):
    r = cli("call", echo_edge, "echo", "echo/hello", '{"a": 1}', "--url", bridge_url, "--json")
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert answer["method"] == "POST" and answer["rest"] == "hello"
    assert json.loads(answer["body"]) == {"a": 1}

    r = cli("call", echo_edge, "echo", "echo/x", "-X", "GET", "--url", bridge_url, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["method"] == "GET"

    # --session: a session is opened, its id put into the path, and closed afterwards
    r = cli("call", echo_edge, "sysinfo", "metrics/{sid}", "--session", "--url", bridge_url,
            "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["memory"]["total"] > 0


def test_call_errors_are_one_line_with_the_servers_detail(bridge_url, echo_edge):
    r = cli("call", echo_edge, "nosuch", "x", "--url", bridge_url)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert f"edge '{echo_edge}' has no plugin 'nosuch'" in r.stderr and "404" in r.stderr

    r = cli("call", echo_edge, "echo", "echo/x", "{not json", "--url", bridge_url)
    assert r.returncode == 1 and r.stderr.startswith("radical-edge call: the body is not JSON")

    r = cli("call", echo_edge, "echo", "boom", "--url", bridge_url, "--debug")
    assert r.returncode != 0 and "Traceback" in r.stderr  # --debug shows where


def test_unreachable_bridge_and_bad_url_are_one_line(echo_edge):
    dead = f"http://127.0.0.1:{services.free_port()}"
    r = cli("edges", "--url", dead)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert f"cannot reach the bridge at {dead}: " in r.stderr and "refused" in r.stderr
    r = cli("events", "--url", dead, timeout=20)
    assert r.returncode == 1 and f"cannot reach the bridge at {dead}: " in r.stderr
    r = cli("edges", "--url", "not a url")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_events_follows_notifications_with_filters(bridge_url, echo_edge):
    tag = uuid.uuid4().hex[:8]
    proc = subprocess.Popen(
        [sys.executable, "-m", "radical.edge.cli", "events", "--url", bridge_url, "--edge",
         echo_edge, "--topic", "async_topic", "--count", "3", "--json", "--timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    listening = threading.Event()

    def watch_stderr() -> None:
        for line in proc.stderr:
            if line.startswith("listening to"):
                listening.set()

    threading.Thread(target=watch_stderr, daemon=True).start()
    try:
        services.wait_until(listening.is_set, 30, "`events` to listen")
        r = authed.post(f"{bridge_url}/{echo_edge}/echo/notify", json={"n": 3, "tag": tag},
                        timeout=30)
        assert r.status_code == 200
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert len(events) == 3  # thread_topic notifications were filtered out
    assert all(e["edge"] == echo_edge and e["topic"] == "async_topic" for e in events)
    assert [e["data"] for e in events] == [{"tag": tag, "i": i} for i in range(3)]


def test_put_and_get_with_progress(bridge_url, echo_edge, tmp_path):
    data = os.urandom(5 * 1024 * 1024 + 17)
    (tmp_path / "src.bin").write_bytes(data)
    remote = str(tmp_path / "remote" / "copy.bin")  # the edge runs on this machine
    r = cli("put", echo_edge, str(tmp_path / "src.bin"), remote, "--url", bridge_url,
            "--progress")
    assert r.returncode == 0, r.stderr
    assert "100.0%" in r.stderr and "5.0 MiB/5.0 MiB" in r.stderr  # the bar reached its end
    assert (tmp_path / "remote" / "copy.bin").read_bytes() == data
    r = cli("get", echo_edge, remote, str(tmp_path / "back.bin"), "--url", bridge_url,
            "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["size"] == len(data) and r.stderr == ""  # no bar for scripts
    assert (tmp_path / "back.bin").read_bytes() == data
    r = cli("get", echo_edge, remote, str(tmp_path / "back.bin"), "--url", bridge_url)
    assert r.returncode == 1 and r.stderr.count("\n") == 1  # exists: refused, one line


def test_token_commands_share_the_client_conventions(bridge_url):
    user = f"cl-{uuid.uuid4().hex[:6]}"
    r = cli("token", "create", "--user", user, "--scope", "read", "--url", bridge_url, "--json")
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    assert made["user"] == user and made["token"]
    listed = json.loads(cli("token", "list", "--url", bridge_url, "--json").stdout)
    assert any(t["user"] == user for t in listed)
    r = cli("token", "list", "--url", bridge_url, env={"RADICAL_EDGE_TOKEN": made["token"]})
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "403" in r.stderr
    assert json.loads(cli("token", "revoke", user, "--url", bridge_url, "--json").stdout) == {
        "revoked": 1}


@pytest.mark.slurm
def test_jobs_lists_the_schedulers_jobs_across_edges(bridge_url, module_edges, slurm_cluster):
    name = f"j{uuid.uuid4().hex[:6]}"
    module_edges("queue_info", name=name)
    job_name = f"cli-jobs-{uuid.uuid4().hex[:6]}"
    job_id = subprocess.run(["sbatch", "--parsable", "-J", job_name, "-t", "5", "-o",
                             "/dev/null", "--wrap", "sleep 120"], capture_output=True,
                            text=True, timeout=30, check=True).stdout.strip().split(";")[0]
    try:
        r = cli("jobs", "--url", bridge_url, "--edge", name, "--json")
        assert r.returncode == 0, r.stderr
        jobs = json.loads(r.stdout)["jobs"]
        mine = [j for j in jobs if j["job_id"] == job_id]
        assert mine and mine[0]["edge"] == name and mine[0]["job_name"] == job_name
        table = cli("jobs", "--url", bridge_url, "--edge", name)
        assert table.returncode == 0 and job_id in table.stdout and job_name in table.stdout
        r = cli("jobs", "--url", bridge_url, "--edge", "nosuch-edge")
        assert r.returncode == 1 and "unknown edge 'nosuch-edge'" in r.stderr
    finally:
        subprocess.run(["scancel", job_id], timeout=30)
