"""The shipped systemd units (deploy/systemd/) are valid and start what they say.

* `systemd-analyze verify` accepts both units (unknown keys, bad values and a missing
  ExecStart binary are reported on stderr or by the exit code), and `systemd-analyze
  security` rates their hardening below a threshold;
* every RADICAL_EDGE_* / RADICAL_BRIDGE_* name in the units and example environment files
  is a real setting (a typo there would be silently ignored by pydantic-settings);
* the bridge unit's ExecStart, its example environment (Redis URL pointed at the test's)
  and its admin token read from a 0400 credentials file as LoadCredential provides it,
  start a real bridge that answers with that token; the edge unit's ExecStart with its
  example environment starts an edge that joins.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import authed

from radical.edge import services, settings

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTALLED = "/opt/radical-edge/bin/radical-edge"


def radical_edge_cli() -> str:
    return str(Path(sys.executable).parent / "radical-edge")


def unit_lines(name: str, key: str) -> list[str]:
    """Values of `key=` lines of a unit (comments skipped)."""
    text = (UNITS / name).read_text()
    return [m.group(1) for m in re.finditer(rf"^{key}=(.*)$", text, flags=re.M)]


def env_file(name: str) -> dict[str, str]:
    """KEY=VALUE lines of an example environment file (comments skipped)."""
    out = {}
    for line in (UNITS / name).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def known_env_names() -> set[str]:
    """Every environment variable radical.edge's settings classes read."""
    from pydantic_settings import BaseSettings

    names = set()
    for obj in vars(settings).values():
        if isinstance(obj, type) and issubclass(obj, BaseSettings) and obj is not BaseSettings:
            prefix = obj.model_config.get("env_prefix", "")
            for field_name, field in obj.model_fields.items():
                names.add((prefix + field_name).upper())
                alias = field.validation_alias
                for choice in getattr(alias, "choices", [alias] if alias else []):
                    if isinstance(choice, str):
                        names.add(choice.upper())
    return names


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed (Debian: systemd)")
def test_systemd_analyze_verifies_both_units(tmp_path: Path) -> None:
    for unit in ("radical-edge-bridge.service", "radical-edge-edge.service"):
        text = (UNITS / unit).read_text()
        assert INSTALLED in text
        (tmp_path / unit).write_text(text.replace(INSTALLED, radical_edge_cli()))
    res = subprocess.run(["systemd-analyze", "verify", "--man=no",
                          *(str(p) for p in sorted(tmp_path.glob("*.service")))],
                         capture_output=True, text=True, timeout=120)
    problems = [line for line in res.stderr.splitlines()
                if "radical-edge" in line or "Unknown" in line]
    assert res.returncode == 0 and not problems, res.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed (Debian: systemd)")
@pytest.mark.parametrize("unit, threshold", [("radical-edge-bridge.service", 20),
                                             ("radical-edge-edge.service", 60)])
def test_hardening_exposure(tmp_path: Path, unit: str, threshold: int) -> None:
    """`systemd-analyze security` rates the units' hardening (0 = locked down, 100 = none;
    the bridge rates 17 "OK", the edge 52: batch systems need more of the host)."""
    (tmp_path / unit).write_text((UNITS / unit).read_text().replace(INSTALLED,
                                                                     radical_edge_cli()))
    res = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                          f"--threshold={threshold}", str(tmp_path / unit)],
                         capture_output=True, text=True, timeout=120)
    summary = [line for line in res.stdout.splitlines() if "Overall exposure" in line]
    assert res.returncode == 0, summary or res.stderr


def test_every_variable_named_is_a_setting() -> None:
    known = known_env_names() | {"HOME"}
    named = set()
    for path in UNITS.iterdir():
        named |= set(re.findall(r"\b(RADICAL_(?:EDGE|BRIDGE)_[A-Z0-9_]+)\b", path.read_text()))
    nginx = (ROOT / "deploy" / "nginx" / "radical-edge.conf").read_text()
    named |= set(re.findall(r"\b(RADICAL_(?:EDGE|BRIDGE)_[A-Z0-9_]+)\b", nginx))
    assert named, "no variables found: the files moved?"
    assert named <= known, sorted(named - known)


def exec_argv(unit: str, port: int | None = None) -> list[str]:
    (line,) = unit_lines(unit, "ExecStart")
    argv = shlex.split(line)
    assert argv[0] == INSTALLED
    argv[0] = radical_edge_cli()
    if port is not None:
        argv[argv.index("--port") + 1] = str(port)
    return argv


def test_bridge_unit_starts_a_bridge(tmp_path: Path, redis_url: str, log_dir: Path) -> None:
    env = env_file("bridge.env.example")
    env["RADICAL_EDGE_REDIS_URL"] = redis_url   # the example's is a placeholder
    port = services.free_port()
    public = "https://edge.example.org"
    assert env["RADICAL_BRIDGE_URL"] == public
    # LoadCredential: the file appears read-only for the service in %d
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    (creds / "admin-token").write_text(authed.TOKEN + "\n")
    (creds / "admin-token").chmod(0o400)
    (assignment,) = [v for v in unit_lines("radical-edge-bridge.service", "Environment")
                     if v.startswith("RADICAL_EDGE_TOKEN_FILE=")]
    key, _, value = assignment.partition("=")
    env[key] = value.replace("%d", str(creds))
    env["RADICAL_EDGE_TOKEN"] = ""  # the token comes from the credentials file only
    env["HOME"] = str(tmp_path)
    svc = services._spawn(f"unit-bridge-{port}", exec_argv("radical-edge-bridge.service", port),
                          log_dir, env)
    try:
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                r = authed.post(f"{url}/edge/list", timeout=1)
            except Exception:
                return False
            return r.status_code == 200

        services.wait_until(answers, 30, "bridge started from its unit", svc)
        r = authed.post(f"{url}/edge/list", timeout=5)
        assert r.json()["data"]["bridge"]["url"] == public
        assert authed.post(f"{url}/edge/list", timeout=5,
                           headers={"Authorization": "Bearer wrong"}).status_code == 401
        # the public name from RADICAL_BRIDGE_URL is on the Host allow-list
        assert authed.post(f"{url}/edge/list", timeout=5,
                           headers={"Host": "edge.example.org"}).status_code == 200
        # the edge unit with its example environment joins this bridge's Redis
        edge_env = env_file("edge.env.example")
        name = f"unit{uuid.uuid4().hex[:6]}"
        edge_env.update(RADICAL_EDGE_REDIS_URL=redis_url, RADICAL_EDGE_EDGE_NAME=name,
                        RADICAL_BRIDGE_URL=url, HOME=str(tmp_path))
        edge = services._spawn(f"unit-edge-{name}", exec_argv("radical-edge-edge.service"),
                               log_dir, edge_env)
        try:
            services.wait_for_edge(url, name, 60, edge, authed.TOKEN)
            plugins = services.list_edges(url, authed.TOKEN)[name]["plugins"]
            assert {"sysinfo", "psij", "staging", "queue_info"} <= set(plugins), plugins
        finally:
            edge.stop()
    finally:
        svc.stop()
