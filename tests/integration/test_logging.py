"""What a user sees in logs and on errors: real edges and bridges, started as subprocesses."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import services


def cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "radical.edge.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_edge_logs_json_lines_with_edge_plugin_and_call(redis_url, bridge_url, tmp_path):
    name = f"lj{uuid.uuid4().hex[:6]}"
    edge = services.start_edge(redis_url, name, "echo", tmp_path, bridge_url=bridge_url,
                               env={"RADICAL_EDGE_LOG_JSON": "true",
                                    "RADICAL_EDGE_LOG_LEVEL": "INFO"})
    try:
        r = authed.get(f"{bridge_url}/{name}/echo/boom", timeout=30)
        assert r.status_code == 500
        call_id = r.headers["x-radical-call-id"]
    finally:
        edge.stop()
    lines = edge.log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    up = [r for r in records if r["message"].startswith(f"edge '{name}' up")]
    assert up and up[0]["level"] == "INFO" and up[0]["edge"] == name
    assert any(r["message"] == f"edge '{name}' stopped" and r["level"] == "INFO"
               for r in records)
    failed = [r for r in records if r.get("call") == call_id]
    assert failed and failed[0]["level"] == "ERROR" and failed[0]["plugin"] == "echo"
    assert failed[0]["exc"] == "RuntimeError: deliberate failure"
    assert not any("superuser privileges" in line for line in lines)  # we run as root here
    assert not [r for r in records if r["level"] == "WARNING"], "a clean run warns nothing"


def test_edge_with_unreachable_redis_says_so_in_one_line():
    dead = f"redis://:secret@127.0.0.1:{services.free_port()}/0"
    r = cli("edge", "-n", "nored", "-p", "sysinfo", "--redis-url", dead, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert "radical-edge edge: Redis at redis://:**@127.0.0.1:" in r.stderr
    assert "Connection refused" in r.stderr and "secret" not in r.stderr


def test_bad_urls_and_missing_certs_are_one_line(tmp_path):
    checks = [
        (("edge", "-n", "x", "--redis-url", "http://host:6379"), "bad Redis URL"),
        (("bridge", "--redis-url", "redis://:pw@host:port/0"), "bad Redis URL 'redis://:**@"),
        (("bridge", "--cert", str(tmp_path / "no.pem"), "--key", str(tmp_path / "no.key")),
         f"TLS certificate file '{tmp_path / 'no.pem'}' does not exist"),
        (("bridge", "--cert", str(tmp_path / "no.pem")), "TLS needs both"),
        (("edge", "-n", "x", "--url", f"http://127.0.0.1:{services.free_port()}",
          "--enroll-file", str(tmp_path / "missing-token")), "missing-token"),
        (("flower", "--redis-url", "tcp://x"), "bad Redis URL"),
    ]
    dead_bridge = f"http://127.0.0.1:{services.free_port()}"
    (tmp_path / "token").write_text("some-token\n")
    checks.append((("edge", "-n", "x", "--url", dead_bridge, "--enroll-file",
                    str(tmp_path / "token")), f"cannot reach the bridge at {dead_bridge}"))
    (tmp_path / "bad.pem").write_text("not a certificate\n")
    checks.append((("bridge", "--cert", str(tmp_path / "bad.pem"), "--key",
                    str(tmp_path / "bad.pem")), "cannot use TLS certificate"))
    for argv, expected in checks:
        r = cli(*argv)
        assert r.returncode == 2, (argv, r.stderr)
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, (argv, r.stderr)
        assert r.stderr.startswith(f"radical-edge {argv[0]}: ") and expected in r.stderr, (
            argv, r.stderr)
        assert "pw@" not in r.stderr
