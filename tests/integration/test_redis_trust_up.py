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

PROBE = Path(__file__).with_name("up_private_probe.py")


def _netns_available() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    r = subprocess.run(["unshare", "-r", "-n", "true"], capture_output=True, timeout=30)
    return r.returncode == 0


pytestmark = pytest.mark.skipif(not _netns_available(),
                                reason="needs `unshare -r -n` (network namespaces)")


def run_probe(signal_name: str, background: bool = False) -> dict:
    argv = ["unshare", "-r", "-n", sys.executable, str(PROBE), signal_name]
    if background:
        argv.append("background")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


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
