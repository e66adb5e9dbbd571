#!/usr/bin/env bash
# netns_hosts.sh: a small site of "hosts" made of network namespaces, for the multi-host
# deployment test (tests/deploy/test_netns_site.py, docs/deploy.md). Needs root (CAP_NET_ADMIN).
#
#   scripts/netns_hosts.sh up ID N      create site ID (6 lowercase letters/digits) on the
#                                       subnets 10.231.N.0/24 (site) and 10.231.N+1.0/24
#                                       (compute network); N even, 2..252; prints the layout
#   scripts/netns_hosts.sh down ID      remove it: kill what still runs inside (by PID),
#                                       delete namespaces and links (by name); idempotent
#   scripts/netns_hosts.sh clean        remove every site whose owner process is gone (a
#                                       test run killed with SIGKILL cannot clean up itself)
# `up` records its owner, $NETNS_HOSTS_OWNER (default: the calling process), in
# /run/radical-edge-netns/ID.owner; `clean` never touches a site whose owner still runs.
#
# Layout (all names carry ID, so parallel runs never clash):
#
#   this host (the "internet": clients)  10.231.N.254 ─┐
#   redge-ID-redis   Redis               10.231.N.1   ─┤ site LAN (bridge "lan" in
#   redge-ID-bridge  bridge + nginx      10.231.N.2   ─┤ redge-ID-sw)
#   redge-ID-login   login-node edge     10.231.N.3   ─┘
#                    bridge + nginx      10.231.N+1.2 ─┐ compute LAN (bridge "cn"):
#                    login-node edge     10.231.N+1.3 ─┤ compute nodes reach the login
#   redge-ID-cmp     compute node        10.231.N+1.10─┘ node and nginx (443-style
#                                                        egress), never Redis
# No namespace forwards packets, so the compute node has no route to Redis at all.
set -euo pipefail

die() { echo "netns_hosts.sh: $*" >&2; exit 2; }
OWNERS=/run/radical-edge-netns
cmd=${1:-}; id=${2:-}
if [[ $cmd == clean ]]; then
  for f in "$OWNERS"/*.owner; do
    [[ -e $f ]] || continue
    owner=$(cat "$f"); site=$(basename "$f" .owner)
    if ! kill -0 "$owner" 2>/dev/null; then
      echo "removing site $site (owner $owner is gone)"
      "$0" down "$site"
    fi
  done
  exit 0
fi
[[ $id =~ ^[a-z0-9]{6}$ ]] || die "ID must be 6 lowercase letters/digits (got '${id}')"
ns() { echo "redge-$id-$1"; }
HOSTS=(redis bridge login cmp)

down() {
  local n pids
  for n in "${HOSTS[@]}" sw; do
    if ip netns list | grep -qw "$(ns "$n")"; then
      pids=$(ip netns pids "$(ns "$n")" 2>/dev/null || true)
      [[ -n $pids ]] && kill -9 $pids 2>/dev/null || true
      ip netns del "$(ns "$n")" 2>/dev/null || true
    fi
  done
  ip link del "rg${id}h" 2>/dev/null || true   # gone with its peer already, normally
  rm -f "$OWNERS/$id.owner"
}

up() {
  local net=${1:-}
  [[ $net =~ ^[0-9]+$ ]] && ((net % 2 == 0 && net >= 2 && net <= 252)) ||
    die "N must be an even number 2..252 (got '${net}')"
  local site=10.231.$net cnet=10.231.$((net + 1))
  if ip -o addr show | grep -qE "inet ($site|$cnet)\."; then
    die "subnet $site.0/24 or $cnet.0/24 already in use here"
  fi
  ip netns list | grep -q "redge-$id-" && die "site $id exists already"
  trap 'down' ERR
  mkdir -p "$OWNERS"
  echo "${NETNS_HOSTS_OWNER:-$PPID}" > "$OWNERS/$id.owner"
  local n
  for n in sw "${HOSTS[@]}"; do
    ip netns add "$(ns "$n")"
    ip -n "$(ns "$n")" link set lo up
    ip netns exec "$(ns "$n")" sysctl -qw net.ipv4.ip_forward=0
  done
  local sw; sw=$(ns sw)
  ip -n "$sw" link add lan type bridge
  ip -n "$sw" link add cn type bridge
  ip -n "$sw" link set lan up
  ip -n "$sw" link set cn up
  # plug(host-ns, its interface, switch, address/prefix)
  plug() {
    local port="p${4##*.}${3}"   # switch-side name, unique per switch: p1lan, p10cn, ...
    ip link add "$port" netns "$sw" type veth peer name "$2" netns "$1"
    ip -n "$sw" link set "$port" master "$3" up
    ip -n "$1" addr add "$4/24" dev "$2"
    ip -n "$1" link set "$2" up
  }
  plug "$(ns redis)"  eth0 lan "$site.1"
  plug "$(ns bridge)" eth0 lan "$site.2"
  plug "$(ns login)"  eth0 lan "$site.3"
  plug "$(ns bridge)" eth1 cn  "$cnet.2"
  plug "$(ns login)"  eth1 cn  "$cnet.3"
  plug "$(ns cmp)"    eth0 cn  "$cnet.10"
  # this host joins the site LAN as a client (a route to the site subnet only)
  ip link add "rg${id}h" type veth peer name p254lan netns "$sw"
  ip -n "$sw" link set p254lan master lan up
  ip addr add "$site.254/24" dev "rg${id}h"
  ip link set "rg${id}h" up
  trap - ERR
  for n in "${HOSTS[@]}"; do echo "$n $(ns "$n")"; done
  echo "site $site.0/24"
  echo "compute $cnet.0/24"
}

case $cmd in
  up)   up "${3:-}" ;;
  down) down ;;
  *)    die "usage: netns_hosts.sh up ID N | down ID | clean" ;;
esac
