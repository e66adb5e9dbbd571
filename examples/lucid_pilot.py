#!/usr/bin/env python3
"""Start a RADICAL-Pilot pilot on an edge and run a few tasks through it.

Run `scripts/up.sh` with an edge offering the lucid plugin first (or set RADICAL_BRIDGE_URL;
RADICAL_EDGE_NAME picks the edge, default: the first one with lucid).
"""
import os

from radical.edge import BridgeClient

bc = BridgeClient(os.environ.get("RADICAL_BRIDGE_URL", "http://127.0.0.1:8000"))
try:
    name = os.environ.get("RADICAL_EDGE_NAME") or next(
        n for n in bc.list_edges() if "lucid" in bc.get_edge_client(n).list_plugins())
    with bc.get_edge_client(name).get_plugin("lucid") as lucid:
        pid = lucid.pilot_submit({"resource": "local.localhost", "cores": 2, "runtime": 10})["pid"]
        print(f"{name}: pilot {pid} submitted")
        tids = [lucid.task_submit({"executable": "/bin/sh",
                                   "arguments": ["-c", f"echo task {i} on $(hostname)"]})["tid"]
                for i in range(3)]
        for tid in tids:
            task = lucid.wait_final(tid, timeout=300)
            print(f"{tid}: {task['state']} exit {task['exit_code']}: {task['stdout'].strip()}")
        print(f"pilot {pid}: {lucid.pilot_status(pid)['state']}")
finally:
    bc.close()
