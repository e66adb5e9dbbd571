#!/bin/bash
# A single-node SLURM test cluster (Debian 12: slurm-wlm 22.05, munge, slurmdbd on MariaDB),
# started by hand because test machines and CI containers have no systemd.
#
# Usage (as root):  scripts/slurm_cluster.sh start|stop|status|conf
#   start   install what is missing, write the config, (re)start the daemons, wait for an idle
#           node; a no-op when the cluster this script started is already healthy
#   stop    stop, by pid file, only what this script started (MariaDB only if we started it)
#   status  daemons, sinfo; exit 0 only when the cluster answers
#
# Result: cluster `radical`, partitions `debug` (default) and `batch`, account `radical` with
# root (and $SUDO_USER) associated under QOS `normal`; node = this host, CPUs=2.
# Env: SLURM_CLUSTER_WAIT (seconds, default 60) bounds every wait for a daemon;
#      SLURM_CLUSTER_DB_PORT (default 3306) is where MariaDB is looked for / started;
#      SLURM_CLUSTER_CONF_DIR (default /etc/radical-edge-slurm) holds OUR slurm.conf and
#      slurmdbd.conf: a site's /etc/slurm is never written. Clients of this cluster need
#      SLURM_CONF=<that dir>/slurm.conf (scripts/test.sh exports it; `conf` prints it).
set -euo pipefail

ACTION=${1:-status}
HOST=$(hostname -s)
RUN=/run/radical-edge-slurm              # our pid files: only what WE started lives here
CONF_DIR=${SLURM_CLUSTER_CONF_DIR:-/etc/radical-edge-slurm}
export SLURM_CONF=$CONF_DIR/slurm.conf    # daemons and clients of this script use our config
LOG=/var/log/radical-edge-slurm
STATE=/var/spool/radical-edge-slurm/ctld
SPOOL=/var/spool/radical-edge-slurm/d
DB_PORT=${SLURM_CLUSTER_DB_PORT:-3306}
DB_DATA=/var/lib/radical-edge-slurm/mysql   # only for a MariaDB we start ourselves
DB_RUN=$RUN/mysql                           # its socket (owned by mysql)
DB_NAME=radical_slurm_acct
DB_USER=radical_slurm
DB_PASS=radical_slurm_pw
WAIT=${SLURM_CLUSTER_WAIT:-60}
T0=$(date +%s.%N)

say() { # timestamped line on stderr (and in $LOG/slurm_cluster.log): clock, seconds since start
  local now line; now=$(date +%s.%N)
  line=$(printf '%s [slurm_cluster %s +%6.2fs] %s' "$(date '+%F %H:%M:%S.%3N')" "$ACTION" \
    "$(awk -v a="$now" -v b="$T0" 'BEGIN{print a-b}')" "$*")
  echo "$line" >&2
  [[ -d $LOG && -w $LOG ]] && echo "$line" >>"$LOG/slurm_cluster.log" || true
}
die() { say "ERROR: $*"; exit 1; }

wait_for() { # seconds description command...: poll every 0.2 s until the command succeeds
  local limit=$1 what=$2; shift 2
  local end=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < end )) || { say "timeout after ${limit}s waiting for $what"; return 1; }
    sleep 0.2
  done
}

alive() { [[ -f $RUN/$1.pid ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

stop_daemons() { # names...: SIGTERM what our pid files name (all at once), SIGKILL after 10 s
  local name pid pids=() names=()
  for name in "$@"; do
    [[ -f $RUN/$name.pid ]] || continue
    pid=$(cat "$RUN/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; pids+=("$pid"); names+=("$name"); fi
    rm -f "$RUN/$name.pid"
  done
  ((${#pids[@]})) || return 0
  local end=$(( $(date +%s) + 10 )) i
  for i in "${!pids[@]}"; do
    while kill -0 "${pids[$i]}" 2>/dev/null && (( $(date +%s) < end )); do sleep 0.1; done
    if kill -0 "${pids[$i]}" 2>/dev/null; then kill -9 "${pids[$i]}" 2>/dev/null || true; say "killed ${names[$i]} (pid ${pids[$i]})"
    else say "stopped ${names[$i]} (pid ${pids[$i]})"; fi
  done
}

mariadb_answers() { timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$DB_PORT" 2>/dev/null; }

db_admin() { # run SQL as MariaDB root: our own server's socket, else the system socket, else TCP
  if alive mariadbd; then timeout 30 mariadb -uroot --socket="$DB_RUN/mysqld.sock" "$@"
  else timeout 30 mariadb -uroot "$@" 2>/dev/null || timeout 30 mariadb -uroot -h127.0.0.1 -P"$DB_PORT" "$@"
  fi
}

install_pkgs() {
  local pkgs=(slurm-wlm munge slurmdbd) missing=()
  mariadb_answers || pkgs+=(mariadb-server)
  command -v mariadb >/dev/null || pkgs+=(mariadb-client)
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit) ]]; then
    say "apt-get update (package lists are empty)"
    timeout 600 apt-get update -qq || die "apt-get update failed"
  fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null || die "apt-get install failed"
  say "installed ${missing[*]}"
}

foreign_daemons() { # slurm daemons running that this script did not start
  local d
  for d in slurmctld slurmd slurmdbd; do
    if pgrep -x "$d" >/dev/null && ! alive "$d"; then echo "$d"; fi
  done
}

start_munge() {
  if timeout 5 bash -c 'munge -n | unmunge' >/dev/null 2>&1; then say "munged already answers; reusing it"; return; fi
  if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --force >/dev/null 2>&1 || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
    chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  fi
  mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
  rm -f /run/munge/munged.pid
  timeout 30 runuser -u munge -- /usr/sbin/munged --force
  wait_for "$WAIT" munged bash -c 'munge -n | unmunge' || die "munged does not answer"
  cp /run/munge/munged.pid "$RUN/munged.pid"
  say "munged up (pid $(cat "$RUN/munged.pid"))"
}

start_mariadb() { # reuse a MariaDB on 127.0.0.1:$DB_PORT, else start a private one
  if mariadb_answers; then say "MariaDB answers on 127.0.0.1:$DB_PORT; reusing it"; return; fi
  command -v mariadbd >/dev/null || die "no MariaDB on 127.0.0.1:$DB_PORT and mariadb-server is not installed"
  mkdir -p "$DB_DATA" "$DB_RUN" && chown mysql:mysql "$DB_DATA" "$DB_RUN"
  if [[ ! -d $DB_DATA/mysql ]]; then
    timeout 120 mariadb-install-db --user=mysql --datadir="$DB_DATA" --auth-root-authentication-method=socket \
      >"$LOG/mariadb-install.log" 2>&1 || die "mariadb-install-db failed (see $LOG/mariadb-install.log)"
  fi
  /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$DB_DATA" --bind-address=127.0.0.1 \
    --port="$DB_PORT" --socket="$DB_RUN/mysqld.sock" --pid-file="$DB_RUN/mariadbd.pid" \
    >"$LOG/mariadbd.log" 2>&1 </dev/null &
  echo $! >"$RUN/mariadbd.pid"
  wait_for "$WAIT" MariaDB mariadb -uroot --socket="$DB_RUN/mysqld.sock" -e 'select 1' \
    || die "MariaDB did not start (see $LOG/mariadbd.log)"
  say "MariaDB started by us on 127.0.0.1:$DB_PORT (pid $(cat "$RUN/mariadbd.pid"))"
}

prepare_db() { # a fresh accounting database each start, so job ids and records agree
  db_admin -e "DROP DATABASE IF EXISTS $DB_NAME; CREATE DATABASE $DB_NAME;
    CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
    CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
    GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1'; FLUSH PRIVILEGES;" \
    || die "cannot prepare database $DB_NAME as MariaDB root (socket or passwordless TCP)"
  say "database $DB_NAME ready"
}

node_memory_mb() { # what slurmd itself detects, so the node is never 'more' than the machine
  local mb
  mb=$(timeout 10 slurmd -C 2>/dev/null | grep -o 'RealMemory=[0-9]*' | cut -d= -f2 || true)
  [[ -n $mb ]] || mb=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 ))
  echo $(( mb * 95 / 100 ))
}

write_conf() {
  mkdir -p "$CONF_DIR"
  cat >"$CONF_DIR/slurmdbd.conf" <<EOF
# written by radical.edge scripts/slurm_cluster.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
DebugLevel=info
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
EOF
  chmod 600 "$CONF_DIR/slurmdbd.conf"
  cat >"$CONF_DIR/slurm.conf" <<EOF
# written by radical.edge scripts/slurm_cluster.sh
ClusterName=radical
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
ReturnToService=2
# trust this file over the hardware: CPUs=2 also on 1-core or SMT CI machines
SlurmdParameters=config_overrides
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MinJobAge=300
InactiveLimit=0
KillWait=5
MailProg=/bin/true
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=$(node_memory_mb) State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES DefaultTime=00:30:00 MaxTime=04:00:00 State=UP
PartitionName=batch Nodes=$HOST Default=NO DefaultTime=01:00:00 MaxTime=1-00:00:00 MaxNodes=1 State=UP
EOF
  say "wrote $CONF_DIR/slurm.conf and slurmdbd.conf"
}

start_slurmdbd() {
  timeout 30 slurmdbd
  wait_for "$WAIT" slurmdbd timeout 5 sacctmgr -n -P show cluster || die "slurmdbd does not answer (see $LOG/slurmdbd.log)"
  say "slurmdbd up (pid $(cat "$RUN/slurmdbd.pid"))"
}

add_associations() { # account radical, users root (+ invoking user), QOS normal, some limits
  local q=(timeout 20 sacctmgr -i -Q) u users=(root)
  [[ -n ${SUDO_USER:-} && ${SUDO_USER} != root ]] && users+=("$SUDO_USER")
  "${q[@]}" add cluster radical >/dev/null 2>&1 || true
  "${q[@]}" add qos normal >/dev/null 2>&1 || true
  "${q[@]}" add account radical cluster=radical Description="radical.edge tests" Organization=radical \
    >/dev/null 2>&1 || true
  for u in "${users[@]}"; do
    "${q[@]}" add user "$u" account=radical cluster=radical DefaultAccount=radical qos=normal \
      MaxJobs=20 MaxSubmitJobs=50 MaxWall=1-00:00:00 >/dev/null 2>&1 || true
  done
  timeout 20 sacctmgr -n -P show assoc cluster=radical account=radical format=user | grep -qx root \
    || die "association root/radical missing"
  say "account radical with users ${users[*]} (QOS normal)"
}

cluster_healthy() { # our daemons alive, started with our config, and the node schedulable
  alive slurmctld && alive slurmd && alive slurmdbd || return 1
  [[ -f $RUN/conf && $(cat "$RUN/conf") == "$SLURM_CONF" && -f $SLURM_CONF ]] || return 1
  local st; st=$(timeout 10 sinfo -h -n "$HOST" -o %t 2>/dev/null | head -1) || return 1
  [[ $st =~ ^(idle|mix|alloc|comp)$ ]]
}

do_stop() {
  if alive slurmctld; then # cancel jobs so no slurmstepd outlives its cluster
    timeout 10 scancel --quiet --user=root --full 2>/dev/null || true
    timeout 10 bash -c 'squeue -h -o %i | xargs -r scancel' 2>/dev/null || true
  fi
  stop_daemons slurmd slurmctld   # the controller's last words go to slurmdbd,
  stop_daemons slurmdbd           # which stops before the database it writes to
  stop_daemons mariadbd munged
  rm -f "$RUN/conf"
  say "stopped"
}

do_start() {
  [[ $EUID == 0 ]] || die "run as root"
  mkdir -p "$RUN" "$LOG"
  if cluster_healthy; then say "cluster already up and healthy; nothing to do"; return 0; fi
  install_pkgs
  local foreign; foreign=$(foreign_daemons)
  [[ -z $foreign ]] || die "slurm daemons not started by this script are running: $foreign"
  do_stop
  mkdir -p "$RUN" "$LOG" "$STATE" "$SPOOL"
  rm -rf "${STATE:?}"/* "${SPOOL:?}"/*      # a clean slate each (re)start
  start_munge
  start_mariadb
  prepare_db
  write_conf
  echo "$SLURM_CONF" >"$RUN/conf"
  start_slurmdbd
  add_associations
  timeout 30 slurmctld
  wait_for "$WAIT" slurmctld timeout 5 scontrol ping || die "slurmctld does not answer (see $LOG/slurmctld.log)"
  timeout 30 slurmd
  say "slurmctld pid $(cat "$RUN/slurmctld.pid"), slurmd pid $(cat "$RUN/slurmd.pid")"
  if ! wait_for "$WAIT" "node $HOST idle" bash -c "[[ \$(sinfo -h -n $HOST -o %t | head -1) == idle ]]"; then
    tail -n 20 "$LOG/slurmctld.log" "$LOG/slurmd.log" >&2 || true
    die "node $HOST is not idle"
  fi
  say "node $HOST idle; cluster radical ready"
}

do_status() {
  local d rc=0
  for d in munged mariadbd slurmdbd slurmctld slurmd; do
    if alive "$d"; then echo "up    $d (pid $(cat "$RUN/$d.pid"))"
    elif [[ $d == munged || $d == mariadbd ]]; then echo "-     $d (not started by this script)"
    else echo "down  $d"; rc=1; fi
  done
  timeout 10 sinfo 2>/dev/null || rc=1
  return $rc
}

case $ACTION in
  conf) echo "$SLURM_CONF" ;;
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  *) echo "usage: $0 start|stop|status|conf" >&2; exit 2 ;;
esac
