#!/usr/bin/env bash
# The main job in one command: set up, then run Redis (configured or embedded), a bridge
# and one local edge with every plugin this machine can load. Ctrl-C stops it all.
#   scripts/up.sh [radical-edge up options, e.g. --port 8000 --auth]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/radical-edge up "$@"
