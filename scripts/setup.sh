#!/usr/bin/env bash
# Set up radical.edge on a fresh Debian/Ubuntu machine (idempotent; a second run is fast).
#   scripts/setup.sh          runtime: venv in .venv with radical.edge and its plugins
#   scripts/setup.sh --dev    also what the tests need: redis-server, chromium, openssh,
#                             nginx, openssh-server, iproute2 (tests/deploy),
#                             SLURM packages (installed by scripts/slurm_cluster.sh), test deps
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0; [[ ${1:-} == --dev ]] && DEV=1
PY=${PYTHON:-python3}
say() { printf '[setup %(%H:%M:%S)T] %s\n' -1 "$*"; }

apt_missing=()
need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || apt_missing+=("$1"); }
if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
  command -v redis-server >/dev/null || need_pkg redis-server
  command -v redis-sentinel >/dev/null || need_pkg redis-sentinel  # Redis HA (tests, docs)
  if ((DEV)); then
    need_pkg chromium; need_pkg fonts-noto-color-emoji; need_pkg openssh-client; need_pkg openssl
    # deployment tests (tests/deploy): nginx in front of bridges, sshd on a "compute node",
    # network namespaces
    need_pkg nginx; need_pkg libnginx-mod-stream; need_pkg openssh-server; need_pkg iproute2
    command -v systemd-analyze >/dev/null || need_pkg systemd  # checks deploy/systemd units
    command -v npm >/dev/null || need_pkg npm  # axe-core for the portal's accessibility tests
  fi
  if ((${#apt_missing[@]})); then
    say "apt-get install ${apt_missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
  fi
fi

if [[ ! -x .venv/bin/python ]]; then
  say "creating .venv"
  $PY -m venv .venv
fi
stamp=.venv/.radical-edge-setup$DEV
if [[ ! -f $stamp || pyproject.toml -nt $stamp || -n $(find tests/fixtures -name pyproject.toml -newer "$stamp") ]]; then
  say "pip install (this takes a minute the first time)"
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel >/dev/null
  extras="all"  # bridge, edge, hpc plugins, flower (a laptop client needs none: httpx only)
  ((DEV)) && extras="all,embedded,dev"
  .venv/bin/python -m pip install -q -e ".[${extras}]"
  ((DEV)) && .venv/bin/python -m pip install -q -e tests/fixtures/echo_plugin \
             $(ls -d tests/fixtures/*_plugin | grep -v echo_plugin | sed 's/^/-e /')
  touch "$stamp"
fi
# axe-core (npm) checks the portal's contrast and keyboard access in the browser tests; it
# lives in a project-local node_modules and is injected into the page by tests/e2e, never served.
if ((DEV)) && [[ ! -f tests/e2e/a11y/node_modules/axe-core/axe.min.js ]]; then
  say "npm install axe-core (tests/e2e/a11y)"
  npm install --prefix tests/e2e/a11y --no-package-lock --no-audit --no-fund --silent
fi
say "ready: $(.venv/bin/python -c 'import radical.edge as r; print("radical.edge", r.__version__)')"
