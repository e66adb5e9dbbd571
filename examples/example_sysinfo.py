#!/usr/bin/env python3
"""Print a summary of every edge's system: run `scripts/up.sh` first (or set RADICAL_BRIDGE_URL)."""
import os

from radical.edge import BridgeClient

bc = BridgeClient(os.environ.get("RADICAL_BRIDGE_URL", "http://127.0.0.1:8000"))
try:
    for name in bc.list_edges():
        edge = bc.get_edge_client(name)
        if "sysinfo" not in edge.list_plugins():
            continue
        with edge.get_plugin("sysinfo") as si:
            m = si.get_metrics()
            print(f"{name}: {m['system']['hostname']} {m['cpu']['model']} "
                  f"({m['cpu']['cores_logical']} cores, {m['cpu']['percent']:.0f}% busy), "
                  f"{m['memory']['available'] / 2**30:.1f} of {m['memory']['total'] / 2**30:.1f} GiB free, "
                  f"{len(m['gpus'])} GPU(s), role {si.host_role()['role']}")
finally:
    bc.close()
