"""scripts/radical-edge-wrapper.sh: options, environment, logging, tunnel wait, exec.

The interpreter is a stand-in that runs the real Python for the wrapper's own checks and,
for ``-m radical.edge.cli``, prints what the edge would have been started with.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = ROOT / "scripts" / "radical-edge-wrapper.sh"


@pytest.fixture
def fake_python(tmp_path) -> Path:
    path = tmp_path / "venv" / "bin" / "python"
    path.parent.mkdir(parents=True)
    (path.parent / "activate").write_text("# venv marker\n")
    path.write_text(f"""#!/bin/bash
if [[ $1 == -m ]]; then
  echo "PID=$$"
  echo "ARGS=$*"
  echo "URL=$RADICAL_EDGE_REDIS_URL"
  echo "VENV=$VIRTUAL_ENV"
  echo "PATH0=${{PATH%%:*}}"
  echo "PYTHONPATH=$PYTHONPATH"
  exit 0
fi
exec {sys.executable} "$@"
""")
    path.chmod(0o755)
    return path


def run(args, env, timeout=30):
    full = {"PATH": "/usr/bin:/bin", "HOME": env.pop("HOME"), **env}
    return subprocess.run(["bash", str(WRAPPER), *args], capture_output=True, text=True,
                          env=full, timeout=timeout)


def lines(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line
                and not line.startswith("20"))


def test_execs_edge_with_environment(tmp_path, fake_python):
    log = tmp_path / "edge.log"
    proc = run(["-n", "kid", "-p", "sysinfo", "--log", str(log), "--python", str(fake_python)],
               {"HOME": str(tmp_path), "RADICAL_EDGE_REDIS_URL": "redis://:pw@h:1/2",
                "RADICAL_EDGE_PYTHONPATH": "/extra/src", "SLURM_JOB_ID": "42"})
    assert proc.returncode == 0, proc.stderr
    assert "logging to" in proc.stderr and proc.stdout == ""
    out = lines(log.read_text())
    assert out["ARGS"] == "-m radical.edge.cli edge --name kid -p sysinfo"
    assert out["URL"] == "redis://:pw@h:1/2"
    assert out["VENV"] == str(fake_python.parent.parent)
    assert out["PATH0"] == str(fake_python.parent)
    assert out["PYTHONPATH"].startswith("/extra/src")
    assert "job=42 scheduler=slurm" in log.read_text()


def test_default_log_file_and_python_env(tmp_path, fake_python):
    proc = run(["--name=kid2"], {"HOME": str(tmp_path), "RADICAL_EDGE_PYTHON": str(fake_python),
                                 "RADICAL_EDGE_REDIS_URL": "redis://h:1/0", "PBS_JOBID": "7.pbs"})
    assert proc.returncode == 0, proc.stderr
    log = tmp_path / ".radical" / "edge" / "logs" / "kid2.7.pbs.log"
    assert "ARGS=-m radical.edge.cli edge --name kid2" in log.read_text()
    assert "scheduler=pbs" in log.read_text()


@pytest.mark.parametrize("args, env, words", [
    ([], {}, "no edge name"),
    (["-n", "x"], {}, "no Redis URL"),
    (["-n", "x", "--redis-url", "https://bridge:8000"], {}, "not a Redis URL"),
    # --url is the bridge again (as in the original); an unreachable one is reported
    (["-n", "x", "--url", "http://127.0.0.1:9"], {}, "could not get the broker"),
    (["-n", "x", "--url", "ftp://bridge:8000"], {}, "neither a bridge"),
    (["-n", "x", "--python", "/no/python"], {"RADICAL_EDGE_REDIS_URL": "redis://h/0"},
     "no usable Python"),
])
def test_refuses(tmp_path, args, env, words):
    proc = run([*args, "--log", "-"], {"HOME": str(tmp_path), **env})
    assert proc.returncode == 2 and words in proc.stderr


def test_help():
    proc = subprocess.run(["bash", str(WRAPPER), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--tunnel" in proc.stdout and "set -euo" not in proc.stdout


def test_tunnel_waits_for_matching_token(tmp_path, fake_python):
    port_file = tmp_path / "t" / "kid.port"
    port_file.parent.mkdir()
    port_file.write_text("1111 stale-token\n")  # from an earlier run: ignored

    def publish():
        time.sleep(0.8)
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text("45678 tok123\n")
        os.replace(tmp, port_file)

    threading.Thread(target=publish, daemon=True).start()
    t0 = time.monotonic()
    proc = run(["-n", "kid", "--tunnel", "--log", "-", "--python", str(fake_python)],
               {"HOME": str(tmp_path), "RADICAL_EDGE_REDIS_URL": "redis://u:p%40ss@10.0.0.1:6379/3",
                "RADICAL_EDGE_TUNNEL_FILE": str(port_file), "RADICAL_EDGE_TUNNEL_TOKEN": "tok123"})
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - t0 >= 0.7
    out = lines(proc.stdout)
    assert out["URL"] == "redis://u:p%40ss@127.0.0.1:45678/3"
    assert "--tunnel" not in out["ARGS"]  # consumed by the wrapper
    assert "tunnel up: Redis via 127.0.0.1:45678" in proc.stderr


def test_tunnel_gives_up(tmp_path, fake_python):
    proc = run(["-n", "kid", "--tunnel", "--tunnel-wait", "1", "--log", "-",
                "--python", str(fake_python)],
               {"HOME": str(tmp_path), "RADICAL_EDGE_REDIS_URL": "redis://h:1/0",
                "RADICAL_EDGE_TUNNEL_TOKEN": "tok"})
    assert proc.returncode == 2 and "no tunnel after 1s" in proc.stderr
    assert str(tmp_path / ".radical/edge/tunnels/kid.port") in proc.stderr


def test_exec_keeps_the_pid(tmp_path, fake_python):
    """The edge replaces the wrapper (signals from the scheduler reach it directly)."""
    proc = subprocess.Popen(["bash", str(WRAPPER), "-n", "kid", "--log", "-", "--python",
                             str(fake_python)], stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.DEVNULL,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                 "RADICAL_EDGE_REDIS_URL": "redis://h:1/0"})
    out, _ = proc.communicate(timeout=30)
    assert lines(out)["PID"] == str(proc.pid)
