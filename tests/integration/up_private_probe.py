"""Run inside a fresh network namespace by test_redis_trust_up.py (own 127.0.0.1:6379).

Starts a decoy Redis on the default port 6379, then `radical-edge up` without any Redis
configured, waits until it is up, checks the decoy was never used, stops `up` with the
given signal and reports (JSON on stdout) what was left behind.

    python up_private_probe.py TERM|INT [background]
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from radical.edge import services

from up_helpers import start_up


def main() -> int:
    sig = getattr(signal, f"SIG{sys.argv[1]}")
    background = len(sys.argv) > 2 and sys.argv[2] == "background"
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    work = Path(tempfile.mkdtemp(prefix="up-probe-"))
    tmp, logs = work / "tmp", work / "logs"
    tmp.mkdir()
    decoy = subprocess.Popen([services.redis_server_binary(), "--port", "6379", "--bind",
                              "127.0.0.1", "--save", "", "--dir", str(work)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result: dict = {}
    try:
        services.wait_until(lambda: services.redis_reachable("redis://127.0.0.1:6379/0"), 15,
                            "decoy redis")
        env = {k: v for k, v in os.environ.items() if k != "RADICAL_EDGE_REDIS_URL"}
        env["TMPDIR"] = str(tmp)

        def ignore_sigint() -> None:  # what a shell does to a `cmd &` job
            signal.signal(signal.SIGINT, signal.SIG_IGN)

        up, lines = start_up(["--port", "8000", "--name", "probe-edge", "--log-dir", str(logs),
                              "--auth"], env,
                             preexec_fn=ignore_sigint if background else None)
        result["output"] = "".join(lines)
        pids = [int(p.split("=")[1]) for ln in lines if ln.strip().startswith("pids")
                for p in ln.split(":", 1)[1].split()]
        result["pids"] = pids
        decoy_client = redis.Redis(port=6379, socket_timeout=5)
        result["decoy_keys"] = decoy_client.dbsize()
        # our own two connections (reachability probe + this one) are the only ones
        result["decoy_connections"] = decoy_client.info("stats")["total_connections_received"]
        up.send_signal(sig)
        try:
            result["up_exit"] = up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
            result["up_exit"] = "timeout"
        time.sleep(0.5)
        result["alive"] = [p for p in pids if Path(f"/proc/{p}").exists()
                           and "zombie" not in Path(f"/proc/{p}/status").read_text().lower()]
        result["tmp_left"] = sorted(os.listdir(tmp))
    finally:
        decoy.terminate()
        decoy.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
