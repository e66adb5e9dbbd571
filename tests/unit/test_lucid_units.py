"""lucid without an edge: description checks, and the reason it gives where RADICAL-Pilot
does not import (checked in a fresh interpreter that cannot import radical.pilot)."""
from __future__ import annotations

import subprocess
import sys

import pytest
from starlette.exceptions import HTTPException

from radical.edge.plugins.lucid import spec

ABSENT = """
import sys, types
sys.modules["radical.pilot"] = None  # import radical.pilot now raises ImportError
from radical.edge.plugins.lucid.plugin import LucidPlugin
app = types.SimpleNamespace(role="login")
print(LucidPlugin.is_enabled(app)); print(LucidPlugin.disabled_reason(app))
print(LucidPlugin.disabled_reason(types.SimpleNamespace(role="bridge")))
"""


def test_plugin_says_why_it_is_absent_without_radical_pilot():
    out = subprocess.run([sys.executable, "-c", ABSENT], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    enabled, reason, bridge = out.stdout.splitlines()
    assert enabled == "False"
    assert "radical.pilot does not import" in reason and "radical.edge[lucid]" in reason
    assert "not on the bridge" in bridge


def test_pilot_description_defaults_and_checks():
    assert spec.pilot_description({}) == {"resource": "local.localhost", "runtime": 30,
                                          "cores": 1}
    assert spec.pilot_description({"nodes": 2})["nodes"] == 2
    for bad in ([], {"cores": 0}, {"cores": True}, {"runtime": "1h"}, {"sandbox": "/"}):
        with pytest.raises(HTTPException) as err:
            spec.pilot_description(bad)
        assert err.value.status_code == 422


def test_task_description_checks():
    ok = {"executable": "/bin/echo", "arguments": ["a"], "environment": {"X": "1"}}
    assert spec.task_description(ok) == ok
    for bad in ({}, {"executable": ""}, {"executable": "x", "arguments": "a b"},
                {"executable": "x", "environment": {"X": 1}}, {"executable": "x", "mode": "f"}):
        with pytest.raises(HTTPException) as err:
            spec.task_description(bad)
        assert err.value.status_code == 422
    with pytest.raises(HTTPException):
        spec.body_description({"description": {}, "extra": 1})


def test_names_that_reach_a_batch_script_are_strict():
    ok = {"resource": "edge.slurm", "queue": "debug:high", "project": "acct-1:resv_2",
          "access_schema": "local"}
    assert spec.pilot_description(ok)["queue"] == "debug:high"
    for field, bad in [("queue", 'debug"\n#SBATCH --x'), ("queue", "a b"), ("queue", "a:b:c"),
                       ("project", "$(id)"), ("project", ""), ("resource", "../etc"),
                       ("resource", "localhost"), ("access_schema", "ssh;rm")]:
        with pytest.raises(HTTPException) as err:
            spec.pilot_description({field: bad})
        assert err.value.status_code == 422 and field in err.value.detail


PARTS = [{"name": "debug", "default": True, "cpus_per_node": 2, "gpus_per_node": 0,
          "max_minutes": 240},
         {"name": "long", "default": False, "cpus_per_node": 8, "gpus_per_node": 4,
          "max_minutes": None}]


def test_edge_resource_config_is_sized_by_the_default_partition():
    from radical.edge.plugins.lucid.site import resource_config

    cfg = resource_config("slurm", PARTS)
    assert cfg["resource_manager"] == "SLURM" and cfg["default_queue"] == "debug"
    assert cfg["schemas"]["local"]["job_manager_endpoint"] == "slurm://localhost/"
    assert (cfg["cores_per_node"], cfg["gpus_per_node"]) == (2, 0)
    assert cfg["launch_methods"]["order"] == ["FORK", "SRUN"]


def test_edge_pilots_are_checked_against_the_partitions():
    from radical.edge.plugins.lucid.site import SiteInfo, check_pilot

    info = SiteInfo(resources={"edge.slurm": PARTS})
    check_pilot({"resource": "local.localhost", "runtime": 10**5}, SiteInfo())  # not ours
    check_pilot({"resource": "edge.slurm", "runtime": 240}, info)
    check_pilot({"resource": "edge.slurm", "runtime": 10**4, "queue": "long:qos"}, info)
    for desc, info_, words in [
        ({"resource": "edge.slurm", "runtime": 241}, info, "limit of partition 'debug'"),
        ({"resource": "edge.slurm", "runtime": 1, "queue": "nope"}, info, "debug, long"),
        ({"resource": "edge.pbs", "runtime": 1}, info, "edge.slurm"),
        ({"resource": "edge.slurm", "runtime": 1}, SiteInfo(), "no batch system"),
    ]:
        with pytest.raises(HTTPException) as err:
            check_pilot(desc, info_)
        assert err.value.status_code == 422 and words in err.value.detail, err.value.detail


def test_site_dir_keeps_user_configs_and_the_wrapper_drops_edge_secrets(tmp_path, monkeypatch):
    """The user's own RP configs stay visible (as links, ours win), and a process started
    through the wrapper sees no RADICAL_EDGE_* variable (checked with a stand-in target)."""
    import json
    import os
    import sys

    from radical.edge.plugins.lucid import site

    user = tmp_path / "home"
    (user / ".radical" / "pilot" / "configs").mkdir(parents=True)
    (user / ".radical" / "pilot" / "configs" / "resource_mine.json").write_text("{}")
    (user / ".radical" / "pilot" / "configs" / "resource_edge.json").write_text('{"x": 1}')
    monkeypatch.setenv("RADICAL_CONFIG_USER_DIR", str(user))
    for name in ("PATH", "VIRTUAL_ENV", "RADICAL_REPORT"):  # ensure() sets them: restore
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(site, "detect_batch_system", lambda: _FakeSlurm())
    info = site.EdgeSite(tmp_path / "root").ensure()
    assert list(info.resources) == ["edge.slurm"]
    configs = info.config_dir / ".radical" / "pilot" / "configs"
    assert os.environ["RADICAL_CONFIG_USER_DIR"] == str(info.config_dir)
    assert (configs / "resource_mine.json").resolve() == \
        (user / ".radical" / "pilot" / "configs" / "resource_mine.json")
    assert "slurm" in (configs / "resource_edge.json").read_text()
    wrapper = tmp_path / "root" / "rp-bin" / site.LAUNCHER
    assert os.environ["PATH"].split(os.pathsep)[0] == str(wrapper.parent)
    probe = tmp_path / "probe"
    probe.write_text(f"#!{sys.executable}\nimport json, os\n"
                     "print(json.dumps([k for k in os.environ if k.startswith('RADICAL_')]))\n")
    probe.chmod(0o700)
    wrapper.write_text(site.WRAPPER.format(python=sys.executable, prefix=site.DROP_PREFIX,
                                           real=str(probe)))
    env = {**os.environ, "RADICAL_EDGE_REDIS_URL": "redis://:pw@h", "RADICAL_KEEP": "1"}
    out = subprocess.run([site.LAUNCHER], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    names = json.loads(out.stdout)
    assert "RADICAL_KEEP" in names and not [n for n in names if n.startswith("RADICAL_EDGE_")]


class _FakeSlurm:
    """What detection returns on a SLURM login node (its partitions as sinfo lists them)."""

    name = "slurm"

    def partitions(self) -> list[dict]:
        return PARTS
