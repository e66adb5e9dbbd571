#!/usr/bin/env bash
# radical-edge-wrapper.sh: start a radical.edge edge inside a batch job (SLURM, PBS, LSF) or
# anywhere else, with the environment a batch job usually lacks.
#
# Usage: radical-edge-wrapper.sh -n NAME [options] [other `radical-edge edge` options]
#   -n, --name NAME       edge name (required; or $RADICAL_EDGE_EDGE_NAME)
#   -r, --redis-url URL   Redis the edge joins (default $RADICAL_EDGE_REDIS_URL). Prefer the
#                         environment variable: argv is visible to `ps`.
#   -u, --url URL         the bridge (http[s]://, as in the original): the edge enrolls there
#                         with the one-time token in $RADICAL_EDGE_ENROLL_TOKEN (or
#                         --enroll-file FILE) and gets its own Redis credentials; without a
#                         token it asks the bridge for its broker (GET /bridge/broker, admin
#                         token from the URL's user info or $RADICAL_EDGE_TOKEN). A redis[s]://
#                         URL here is taken as --redis-url (older job scripts).
#   -p, --plugins LIST    plugins to load (default: all that import)
#       --tunnel          reach Redis through the parent edge's reverse SSH tunnel: wait for
#                         $RADICAL_EDGE_TUNNEL_FILE (default ~/.radical/edge/tunnels/NAME.port)
#                         to hold "<port> <token>" (token = $RADICAL_EDGE_TUNNEL_TOKEN), then
#                         use redis://127.0.0.1:<port> (credentials and db kept)
#       --tunnel-wait S   give up waiting for the tunnel after S seconds (default 600)
#       --log FILE        log file ('-': keep stdout/stderr). Default:
#                         ${RADICAL_EDGE_LOG_DIR:-~/.radical/edge/logs}/NAME.<job id>.log
#       --python PY       interpreter (default: $RADICAL_EDGE_PYTHON, $RADICAL_EDGE_VENV/bin/python,
#                         $VIRTUAL_ENV/bin/python, a python next to this script,
#                         this checkout's .venv, python3)
#       --venv DIR        same as --python DIR/bin/python
#   -h, --help
#
# PYTHONPATH: $RADICAL_EDGE_PYTHONPATH is prepended; if radical.edge still does not import,
# this checkout's src/ is. The edge is started with `exec`, so the scheduler's SIGTERM (job
# cancel, walltime) reaches it directly and it leaves the topology cleanly.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NAME=${RADICAL_EDGE_EDGE_NAME:-}
PY=""
LOG=""
TUNNEL=0
TUNNEL_WAIT=${RADICAL_EDGE_TUNNEL_WAIT:-600}
PASS=()

say() { printf '%s [radical-edge-wrapper] %s\n' "$(date '+%F %T')" "$*" >&2; }
die() { say "ERROR: $*"; exit 2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
BRIDGE=""
set_url() {  # --url: the bridge (enrollment), or a Redis URL from older job scripts
  case $1 in
    redis://*|rediss://*|unix://*) export RADICAL_EDGE_REDIS_URL=$1 ;;
    http://*|https://*) BRIDGE=$1 ;;
    *) die "--url '$1' is neither a bridge (http[s]://) nor a Redis URL" ;;
  esac
}

while (($#)); do
  case $1 in
    -n|--name)       NAME=${2:-}; shift 2 || die "$1 needs a value" ;;
    --name=*)        NAME=${1#*=}; shift ;;
    -n?*)            NAME=${1#-n}; shift ;;
    -r|--redis-url)  export RADICAL_EDGE_REDIS_URL=${2:-}; shift 2 || die "$1 needs a value" ;;
    --redis-url=*)   export RADICAL_EDGE_REDIS_URL=${1#*=}; shift ;;
    -u|--url)        set_url "${2:-}"; shift 2 || die "$1 needs a value" ;;
    --url=*)         set_url "${1#*=}"; shift ;;
    --tunnel)        TUNNEL=1; shift ;;
    --tunnel-wait)   TUNNEL_WAIT=${2:-}; shift 2 || die "$1 needs a value" ;;
    --log)           LOG=${2:-}; shift 2 || die "$1 needs a value" ;;
    --python)        PY=${2:-}; shift 2 || die "$1 needs a value" ;;
    --venv)          PY=${2:-}/bin/python; shift 2 || die "$1 needs a value" ;;
    -h|--help)       usage; exit 0 ;;
    *)               PASS+=("$1"); shift ;;
  esac
done

[[ -n $NAME ]] || die "no edge name: pass -n NAME"
URL=${RADICAL_EDGE_REDIS_URL:-}
LOOKUP_BROKER=0
if [[ -n $BRIDGE && ( -n ${RADICAL_EDGE_ENROLL_TOKEN:-} || " ${PASS[*]:-} " == *" --enroll"* ) ]]; then
  PASS=(--url "$BRIDGE" "${PASS[@]}")  # the edge redeems its enrollment token there
  unset RADICAL_EDGE_REDIS_URL
elif [[ -n $BRIDGE && -z $URL ]]; then
  LOOKUP_BROKER=1  # no enrollment token: ask the bridge for its broker (admin token, as 0.2.0)
else
  [[ -n $URL ]] || die "no Redis URL: set RADICAL_EDGE_REDIS_URL (or pass --redis-url), or \
pass --url BRIDGE with an enrollment token"
  case $URL in
    redis://*|rediss://*|unix://*) ;;
    *) die "'${URL%%://*}://...' is not a Redis URL: use --url for the bridge" ;;
  esac
fi

JOB_ID=${SLURM_JOB_ID:-${PBS_JOBID:-${LSB_JOBID:-}}}

# -- log file: everything after this line goes there --------------------------------------------
if [[ $LOG != - ]]; then
  if [[ -z $LOG ]]; then
    LOG_DIR=${RADICAL_EDGE_LOG_DIR:-$HOME/.radical/edge/logs}
    LOG=$LOG_DIR/$NAME.${JOB_ID:-$$}.log
  fi
  mkdir -p "$(dirname "$LOG")"
  say "edge '$NAME': logging to $LOG"
  exec >>"$LOG" 2>&1
fi
say "edge '$NAME' on $(hostname) job=${JOB_ID:-none} scheduler=$([[ -n ${SLURM_JOB_ID:-} ]] && echo slurm || { [[ -n ${PBS_JOBID:-} ]] && echo pbs; } || echo none)"

# -- interpreter, venv, PATH, PYTHONPATH ------------------------------------------------------------
if [[ -z $PY ]]; then
  if [[ -n ${RADICAL_EDGE_PYTHON:-} ]]; then PY=$RADICAL_EDGE_PYTHON
  elif [[ -n ${RADICAL_EDGE_VENV:-} ]]; then PY=$RADICAL_EDGE_VENV/bin/python
  elif [[ -n ${VIRTUAL_ENV:-} && -x ${VIRTUAL_ENV}/bin/python ]]; then PY=$VIRTUAL_ENV/bin/python
  elif [[ -x $HERE/python ]]; then PY=$HERE/python        # installed into a venv's bin/
  elif [[ -x $HERE/../.venv/bin/python ]]; then PY=$HERE/../.venv/bin/python
  else PY=$(command -v python3 || true)
  fi
fi
[[ -n $PY && -x $PY ]] || die "no usable Python interpreter (tried '${PY:-python3}')"
BIN=$(dirname "$PY")
if [[ -f $BIN/activate ]]; then          # a venv: behave as if it were activated
  export VIRTUAL_ENV=$(cd "$BIN/.." && pwd)
  unset PYTHONHOME
fi
export PATH=$BIN:$PATH
if [[ -n ${RADICAL_EDGE_PYTHONPATH:-} ]]; then
  export PYTHONPATH=$RADICAL_EDGE_PYTHONPATH${PYTHONPATH:+:$PYTHONPATH}
fi
if ! "$PY" -c 'import radical.edge.cli' 2>/dev/null; then
  if [[ -d $HERE/../src/radical/edge ]]; then
    export PYTHONPATH=$(cd "$HERE/../src" && pwd)${PYTHONPATH:+:$PYTHONPATH}
  fi
  "$PY" -c 'import radical.edge.cli' || die "radical.edge does not import with $PY"
fi
say "python $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"

# -- bridge without enrollment: ask it for the broker (needs the admin token: URL user info or
# $RADICAL_EDGE_TOKEN), as radical.edge 0.2.0 job scripts expect ----------------------------
if ((LOOKUP_BROKER)); then
  RADICAL_EDGE_REDIS_URL=$(REDGE_BRIDGE=$BRIDGE "$PY" -c '
import os, sys
from radical.edge.app.broker import BrokerLookupError, resolve_redis_url
try:
    print(resolve_redis_url(os.environ["REDGE_BRIDGE"]))
except BrokerLookupError as exc:
    sys.exit(f"{exc}")
') || die "could not get the broker from the bridge (no enrollment token given either)"
  export RADICAL_EDGE_REDIS_URL
  say "broker from the bridge"
fi

# -- tunnel: wait for the parent's port file, then point Redis at it -------------------------------
if ((TUNNEL)); then
  FILE=${RADICAL_EDGE_TUNNEL_FILE:-$HOME/.radical/edge/tunnels/$NAME.port}
  TOKEN=${RADICAL_EDGE_TUNNEL_TOKEN:-}
  say "waiting up to ${TUNNEL_WAIT}s for the tunnel port in $FILE"
  deadline=$(( $(date +%s) + ${TUNNEL_WAIT%.*} ))
  PORT=""
  while :; do
    if [[ -f $FILE ]]; then
      read -r port tok _ <"$FILE" || true
      if [[ ${port:-} =~ ^[0-9]+$ ]] && [[ -z $TOKEN || ${tok:-} == "$TOKEN" ]]; then
        PORT=$port; break
      fi
    fi
    (( $(date +%s) < deadline )) || die "no tunnel after ${TUNNEL_WAIT}s ($FILE)"
    sleep 0.2
  done
  if [[ -n $BRIDGE ]]; then  # the enrolled URL arrives later: the edge swaps host:port
    export RADICAL_EDGE_REDIS_VIA=127.0.0.1:$PORT
    say "tunnel up: Redis via 127.0.0.1:$PORT"
  else
  RADICAL_EDGE_REDIS_URL=$(REDGE_PORT=$PORT "$PY" - <<'EOF'
import os
from urllib.parse import urlsplit, urlunsplit
u = urlsplit(os.environ["RADICAL_EDGE_REDIS_URL"])
auth = u.netloc.rpartition("@")[0]
netloc = (auth + "@" if auth else "") + "127.0.0.1:" + os.environ["REDGE_PORT"]
print(urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment)))
EOF
)
  export RADICAL_EDGE_REDIS_URL
  say "tunnel up: Redis via 127.0.0.1:$PORT"
  fi
fi

SHOWN=$(printf '%s' "${PASS[*]:-}" | sed 's/--enroll [^ ]*/--enroll ***/')
say "exec $PY -m radical.edge.cli edge --name $NAME $SHOWN"
exec "$PY" -m radical.edge.cli edge --name "$NAME" "${PASS[@]}"
