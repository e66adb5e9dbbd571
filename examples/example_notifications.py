#!/usr/bin/env python3
"""Follow topology changes and every plugin notification for 60 s."""
import os
import time

from radical.edge import BridgeClient

bc = BridgeClient(os.environ.get("RADICAL_BRIDGE_URL", "http://127.0.0.1:8000"))
bc.register_topology_callback(lambda edges: print("edges:", sorted(edges)))
bc.register_callback(callback=lambda edge, plugin, topic, data:
                     print(f"{edge}/{plugin} {topic}: {data}"))
if not bc.wait_for_listener(10):
    raise SystemExit("could not connect to the bridge's event stream")
try:
    time.sleep(60)
finally:
    bc.close()
