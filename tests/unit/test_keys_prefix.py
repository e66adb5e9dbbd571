"""`RADICAL_EDGE_REDIS_PREFIX` moves every Redis name, queue and kombu key of a deployment
(`app.keys` reads it once at import, so each case runs in a fresh interpreter)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = ("import json; from radical.edge.app import keys; print(json.dumps(["
         "keys.EDGES, keys.TOPOLOGY_CHANNEL, keys.NOTIFICATIONS, keys.edge_info('e'), "
         "keys.reply_channel('b'), keys.tunnel_info('e'), keys.edge_queue('e'), "
         "keys.edge_queue_key('e'), keys.DEFAULT_QUEUE, keys.KOMBU_PREFIX]))")


def _keys(prefix: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "RADICAL_EDGE_REDIS_PREFIX"}
    if prefix is not None:
        env["RADICAL_EDGE_REDIS_PREFIX"] = prefix
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, timeout=60)
    if out.returncode:
        raise ValueError(out.stderr.strip().splitlines()[-1])
    return json.loads(out.stdout)


def test_default_deployment_keeps_its_names() -> None:
    assert _keys(None) == _keys("redge") == [
        "redge:edges", "redge:topology", "redge:notifications", "redge:edge:e",
        "redge:reply:b", "redge:tunnel:e", "edge.e", "edge.e", "edge.default", ""]


def test_another_prefix_moves_everything() -> None:
    assert _keys("site2") == [
        "site2:edges", "site2:topology", "site2:notifications", "site2:edge:e",
        "site2:reply:b", "site2:tunnel:e", "site2.edge.e", "site2:site2.edge.e",
        "site2.edge.default", "site2:"]


@pytest.mark.parametrize("bad", ["a:b", "-x", "x" * 65, "a b"])
def test_a_bad_prefix_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="RADICAL_EDGE_REDIS_PREFIX"):
        _keys(bad)
