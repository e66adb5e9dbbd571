#!/usr/bin/env python3
"""Start a RADICAL-Pilot pilot on an edge and run a few tasks through it.

Run `scripts/up.sh` with an edge offering the lucid plugin first (or set RADICAL_BRIDGE_URL;
RADICAL_EDGE_NAME picks the edge, default: the first one with lucid). On an edge whose host
has SLURM, `RADICAL_LUCID_RESOURCE=edge.slurm` (and RADICAL_LUCID_QUEUE=partition) runs the
pilot as a batch job instead.
"""
import os

from radical.edge import BridgeClient

bc = BridgeClient(os.environ.get("RADICAL_BRIDGE_URL", "http://127.0.0.1:8000"))
try:
    name = os.environ.get("RADICAL_EDGE_NAME") or next(
        n for n in bc.list_edges() if "lucid" in bc.get_edge_client(n).list_plugins())
    with bc.get_edge_client(name).get_plugin("lucid") as lucid:
        desc = {"resource": os.environ.get("RADICAL_LUCID_RESOURCE", "local.localhost"),
                "cores": 2, "runtime": 10}
        if os.environ.get("RADICAL_LUCID_QUEUE"):
            desc["queue"] = os.environ["RADICAL_LUCID_QUEUE"]
        pid = lucid.pilot_submit(desc)["pid"]
        print(f"{name}: pilot {pid} submitted")
        tids = [lucid.task_submit({"executable": "/bin/sh",
                                   "arguments": ["-c", f"echo task {i} on $(hostname) ${{SLURM_JOB_ID:+in job $SLURM_JOB_ID}}"]})["tid"]
                for i in range(3)]
        for tid in tids:
            task = lucid.wait_final(tid, timeout=300)
            print(f"{tid}: {task['state']} exit {task['exit_code']}: {task['stdout'].strip()}")
        print(f"pilot {pid}: {lucid.pilot_status(pid)['state']}")
finally:
    bc.close()
