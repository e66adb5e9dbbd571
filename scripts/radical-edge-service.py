#!/usr/bin/env python3
"""`radical-edge-service.py`: the original edge command, as launch scripts and job specs
written for radical.edge 0.2.0 call it (`-n NAME -u BRIDGE_URL -p PLUGINS`)."""
import sys

from radical.edge.legacy_cli import service_main

if __name__ == "__main__":
    sys.exit(service_main())
