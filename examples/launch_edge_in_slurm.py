#!/usr/bin/env python3
"""Launch a child edge inside a SLURM job from the SDK, use it, and let it go.

Needs a bridge and a *parent* edge with the psij plugin on a host that can `sbatch`
(e.g. `scripts/up.sh` on a login node). Usage:

    RADICAL_BRIDGE_URL=http://127.0.0.1:8000 \\
        examples/launch_edge_in_slurm.py --parent mylogin [--tunnel] [--partition debug]

Steps: submit the wrapper as a batch job (`submit_tunneled`), follow its `job_status`
notifications, wait for the child in /edge/list (role `compute`, with its allocation), call
its sysinfo plugin, then cancel the job and watch the child leave the topology.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

from radical.edge import BridgeClient


def wait(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    sys.exit(f"timed out after {timeout:g} s waiting for {what}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parent", required=True, help="edge that submits the job (has psij)")
    ap.add_argument("--name", default=f"job-edge-{uuid.uuid4().hex[:6]}", help="child edge name")
    ap.add_argument("--partition", help="SLURM partition (default: the cluster's default)")
    ap.add_argument("--account", help="SLURM account")
    ap.add_argument("--minutes", type=int, default=10, help="walltime of the job")
    ap.add_argument("--tunnel", action="store_true",
                    help="child reaches Redis through a reverse SSH tunnel from the parent")
    ap.add_argument("--keep", action="store_true", help="leave the child running")
    args = ap.parse_args()

    bc = BridgeClient(os.environ.get("RADICAL_BRIDGE_URL", "http://127.0.0.1:8000"))
    try:
        psij = bc.get_edge_client(args.parent).get_plugin("psij", cancel_on_close=not args.keep)
        def show(edge: str, plugin: str, topic: str, data: dict) -> None:
            code = data.get("exit_code")
            print(f"  job_status: {data['state']}{'' if code is None else f' (exit {code})'}")

        bc.register_callback(args.parent, "psij", "job_status", show)
        bc.wait_for_listener(10)

        attributes = {"duration": args.minutes * 60}
        if args.partition:
            attributes["queue_name"] = args.partition
        if args.account:
            attributes["account"] = args.account
        job_spec = {
            # no executable: the parent edge uses its scripts/radical-edge-wrapper.sh
            "arguments": ["-n", args.name, "-p", "sysinfo,queue_info"],
            "attributes": attributes,
            # stop taking calls 60 s before the walltime ends (default 120 s)
            "environment": {"RADICAL_EDGE_WALLTIME_MARGIN": "60"},
        }
        t0 = time.monotonic()
        sub = psij.submit_tunneled(job_spec, executor="slurm", tunnel=args.tunnel)
        print(f"submitted SLURM job {sub['native_id']} for edge '{sub['edge_name']}'")
        if sub.get("warning"):
            print(f"  note: {sub['warning']}")

        if args.tunnel:
            t = wait(lambda: (s := psij.tunnel_status(args.name))["status"] != "pending" and s,
                     600, "the tunnel")
            print(f"tunnel {t['status']}: {t.get('host')} port {t.get('port')}"
                  f"{'  error: ' + t['error'] if t.get('error') else ''}")
            if t["status"] != "active":
                return 1

        edge = wait(lambda: bc.topology()["edges"].get(args.name), 600, "the child edge")
        alloc = edge.get("allocation") or {}
        print(f"edge '{args.name}' joined after {time.monotonic() - t0:.1f} s: role "
              f"{edge.get('role')}, job {alloc.get('job_id')} on {alloc.get('nodelist')}, "
              f"{edge.get('walltime_remaining')} s of walltime left")

        child = bc.get_edge_client(args.name)
        with child.get_plugin("sysinfo") as si:
            m = si.get_metrics()
            print(f"  {m['system']['hostname']}: {m['cpu']['cores_logical']} cores, "
                  f"{m['memory']['total'] / 2**30:.1f} GiB, role {si.host_role()['role']}")
        with child.get_plugin("queue_info") as qi:
            print(f"  allocation seen from inside: {qi.job_allocation()}")

        if args.keep:
            print(f"leaving '{args.name}' running (cancel: scancel {sub['native_id']})")
            return 0
        psij.cancel_job(sub["job_id"])
        wait(lambda: args.name not in bc.list_edges(), 120, "the child edge to leave")
        print(f"job canceled; edge '{args.name}' left the topology")
        psij.close()
        return 0
    finally:
        bc.close()


if __name__ == "__main__":
    sys.exit(main())
