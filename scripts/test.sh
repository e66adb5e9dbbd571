#!/usr/bin/env bash
# Set up everything the tests need and run them all: unit, integration (real Redis, bridge,
# edges, SLURM) and browser tests. Extra arguments go to pytest.
#   scripts/test.sh            all tests
#   scripts/test.sh tests/unit fast unit tests only
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$SECONDS
scripts/setup.sh --dev
if [[ $(id -u) == 0 ]]; then
  scripts/slurm_cluster.sh start   # single-node SLURM for the HPC tests (root only)
  export SLURM_CONF; SLURM_CONF=$(scripts/slurm_cluster.sh conf)   # its own config dir
else
  echo "not root: SLURM tests will be skipped" >&2
fi
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@"
rc=$?
set -e
echo "tests finished in $((SECONDS - T0)) s (exit $rc)"
exit $rc
