"""`--plugins all` on a real edge: test fixtures stay out, broken third-party plugins are
skipped with a WARNING naming them and the reason, and the announcement says what is missing."""
from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from radical.edge import services
from radical.edge.plugins.loader import TEST_ENTRY_POINT_GROUP, TEST_PLUGINS_ENV

FIXTURES = {ep.name for ep in entry_points(group=TEST_ENTRY_POINT_GROUP)}
if not {"echo", "broken_import", "broken_start"} <= FIXTURES:
    pytest.fail("test fixture plugins are not installed (scripts/setup.sh --dev installs "
                "tests/fixtures/*_plugin)", pytrace=False)


def _edge(bridge_url: str, name: str) -> dict:
    return services.list_edges(bridge_url)[name]


def test_all_never_loads_test_fixture_plugins(make_edge, bridge_url):
    make_edge("all", name="allplain", env={TEST_PLUGINS_ENV: ""})
    info = _edge(bridge_url, "allplain")
    assert "sysinfo" in info["plugins"]
    assert FIXTURES.isdisjoint(info["plugins"])
    assert FIXTURES.isdisjoint(info["unavailable"])


def test_all_skips_broken_plugins_with_a_warning(make_edge, bridge_url):
    svc = make_edge("all", name="allbroken", env={TEST_PLUGINS_ENV: "1"})
    info = _edge(bridge_url, "allbroken")
    assert {"sysinfo", "echo"} <= set(info["plugins"])  # the edge runs the healthy ones
    assert "broken_import" not in info["plugins"] and "broken_start" not in info["plugins"]
    why = info["unavailable"]
    assert "always fails at import time" in why["broken_import"]
    assert "startup always fails" in why["broken_start"]
    log = svc.log_path.read_text()
    assert "WARNING" in log
    assert "skipping plugin broken_import" in log and "skipping plugin broken_start" in log


def test_queue_info_absence_is_explained(make_edge, bridge_url, tmp_path):
    # no scheduler tools on PATH (the edge runs by absolute interpreter path), no job id
    make_edge("sysinfo,queue_info", name="nobatch",
              env={"PATH": str(tmp_path), "SLURM_JOB_ID": "", "PBS_JOBID": ""})
    info = _edge(bridge_url, "nobatch")
    assert "queue_info" not in info["plugins"]
    assert info["unavailable"]["queue_info"] == "no batch system detected (SLURM/PBS)"
