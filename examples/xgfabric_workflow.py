#!/usr/bin/env python3
"""Run the xgfabric `test` workflow (stub CFD and training tasks, mock sensor data) on the
edges of a bridge, following its progress live.

Needs an edge with the xgfabric plugin (started with RADICAL_BRIDGE_URL set, as `radical-edge
up` does) and edges with the rhapsody and staging plugins to run the tasks:

    RADICAL_BRIDGE_URL=http://127.0.0.1:8000 \\
        examples/xgfabric_workflow.py --edge myhost --clusters site-a,site-b

Without --clusters the built-in `default` resource config is used: every other connected
edge with rhapsody (runs tasks now) or psij on a batch system (gets a child edge in a job).
"""
from __future__ import annotations

import argparse
import os
import sys

from radical.edge import BridgeClient


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edge", help="edge running the xgfabric plugin (default: the first)")
    ap.add_argument("--clusters", help="comma-separated edges to run on (immediate clusters)")
    ap.add_argument("--timeout", type=float, default=600.0, help="longest wait for the run (s)")
    args = ap.parse_args()

    url = os.environ.get("RADICAL_BRIDGE_URL", "http://127.0.0.1:8000")
    bc = BridgeClient(url)
    try:
        name = args.edge or next(n for n in bc.list_edges()
                                 if "xgfabric" in bc.get_edge_client(n).list_plugins())
        with bc.get_edge_client(name).get_plugin("xgfabric") as xgf:
            resource = "__default__"
            if args.clusters:
                clusters = {c: {"edge": c, "type": "immediate"}
                            for c in args.clusters.split(",") if c}
                resource = xgf.save_config({"kind": "resource", "name": "example",
                                            "bridge_url": url,
                                            "cluster_configs": clusters})["name"]
            seen: set[str] = set()

            def progress(_edge: str, _plugin: str, _topic: str, state: dict) -> None:
                line = (f"[{state['progress']:3d} %] {state['phase']}: "
                        f"{state['completed_simulations']}/{state['total_simulations']} "
                        f"simulations")
                if line not in seen:
                    seen.add(line)
                    print(line, flush=True)

            xgf.register_notification_callback(progress, topic="workflow_status")
            test = xgf.get_test_config()
            print(f"{name}: starting workflow 'test' ({test['num_simulations']} simulations in "
                  f"batches of {test['batch_size']}, models {', '.join(test['train_models'])}) "
                  f"on resource '{resource}'")
            xgf.start_workflow("test", resource)
            final = xgf.wait_done(timeout=args.timeout)
            progress(name, "xgfabric", "workflow_status", final)  # if the stream was slower
            for c in final["immediate_clusters"] + final["allocate_clusters"]:
                print(f"  cluster {c['name']} ({c['cluster_type']}, edge {c['edge_name']}): "
                      f"{c['tasks_done']} task(s) done")
            if final["status"] != "completed":
                print(f"workflow failed in phase {final['phase']}: {final['error']}")
                return 1
            print(f"completed: {final['completed_simulations']}/{final['total_simulations']} "
                  f"simulations, {final['completed_training']} model(s); results in "
                  f"{final['results_file']} on {name}")
            return 0
    finally:
        bc.close()


if __name__ == "__main__":
    sys.exit(main())
