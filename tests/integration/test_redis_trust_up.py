"""`radical-edge up` is private by default (issue 14 item 2).

Before: without a configured Redis, `up` silently joined whatever answered on
127.0.0.1:6379 (on a login node: another user's broker) and left its temp dirs behind. Each
run happens in its own network namespace, so a decoy Redis can own 127.0.0.1:6379 there
without touching the machine's Redis.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from up_helpers import start_up

PROBE = Path(__file__).with_name("up_private_probe.py")


def _netns_available() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    r = subprocess.run(["unshare", "-r", "-n", "true"], capture_output=True, timeout=30)
    return r.returncode == 0


needs_netns = pytest.mark.skipif(not _netns_available(),
                                 reason="needs `unshare -r -n` (network namespaces)")


def run_probe(signal_name: str, background: bool = False) -> dict:
    argv = ["unshare", "-r", "-n", sys.executable, str(PROBE), signal_name]
    if background:
        argv.append("background")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@needs_netns
@pytest.mark.parametrize("signal_name,background", [("TERM", False), ("INT", True)],
                         ids=["sigterm-foreground", "sigint-background"])
def test_up_runs_its_own_redis_and_leaves_nothing(signal_name, background):
    res = run_probe(signal_name, background)
    out = res["output"]
    assert "radical.edge is up" in out, out
    assert "(private: password + ACL users)" in out and ":6379" not in out, out
    assert res["decoy_keys"] == 0, "up wrote into the Redis on the default port"
    assert res["decoy_connections"] <= 2, "up connected to the Redis on the default port"
    assert len(res["pids"]) == 3, out  # redis, bridge, edge
    assert res["up_exit"] == 0, res
    assert res["alive"] == [], f"left running: {res['alive']}"
    assert res["tmp_left"] == [], f"temp files left: {res['tmp_left']}"


def test_up_with_an_explicit_redis_url_uses_it_and_cleans_its_keys(redis_url, tmp_path):
    """`--redis-url` joins that Redis (no private one) and removes the edge's keys on exit."""
    import os
    import signal

    import redis as redis_py

    from radical.edge import services
    from radical.edge.app import keys

    name = f"explicit{os.getpid()}"
    port = services.free_port()
    env = {k: v for k, v in os.environ.items() if k != "RADICAL_EDGE_REDIS_URL"}
    proc, lines = start_up(["--port", str(port), "--name", name, "--redis-url", redis_url,
                            "--log-dir", str(tmp_path), "-p", "sysinfo"], env)
    try:
        out = "".join(lines)
        assert "radical.edge is up" in out and "private" not in out, out
        client = redis_py.Redis.from_url(redis_url)
        assert client.exists(keys.edge_info(name)) and client.exists(keys.edge_lease(name))
        assert client.exists(f"_kombu.binding.{keys.edge_queue(name)}")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        left = [k for k in (keys.edge_info(name), keys.edge_lease(name), keys.edge_queue(name),
                            f"_kombu.binding.{keys.edge_queue(name)}",
                            f"_kombu.binding_permanent.{keys.edge_queue(name)}")
                if client.exists(k)]
        assert left == [], left
    finally:
        if proc.poll() is None:
            proc.kill()
