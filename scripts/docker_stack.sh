#!/usr/bin/env bash
# Build the radical.edge container image and run the compose stack (docker/compose.yaml).
#   scripts/docker_stack.sh up      install what is missing, start dockerd if none answers,
#                                   build the image, write secrets, start the stack
#   scripts/docker_stack.sh down    stop the stack (containers, network, volumes) and the
#                                   dockerd this script started
#   scripts/docker_stack.sh build | secrets | dockerd | stop-dockerd | base
# Environment:
#   RADICAL_EDGE_DOCKER_BASE=local  build on a base made here (debootstrap + docker import)
#                                   instead of python:3.11-slim / redis:7 from a registry:
#                                   for machines that reach no image registry (CI here)
#   COMPOSE_PROJECT_NAME, REDIS_PORT, BRIDGE_PORT, FLOWER_PORT, EDGE_NAME: see docker/README.md
#   RADICAL_EDGE_DOCKER_SECRETS     secrets directory (default docker/secrets, mode 0700)
# Root only (apt, dockerd). Needs no registry when RADICAL_EDGE_DOCKER_BASE=local.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
say() { printf '[docker %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

CACHE=$ROOT/.cache/docker
RUN_DIR=/run/radical-edge-docker            # our dockerd's socket, pid file and exec root
OWN_SOCK=$RUN_DIR/docker.sock
IMAGE=${RADICAL_EDGE_IMAGE:-radical-edge:latest}
LOCAL_BASE_IMAGE=radical-edge-base:bookworm
SECRETS=${RADICAL_EDGE_DOCKER_SECRETS:-$ROOT/docker/secrets}
APP_UID=10001                               # the image's user (docker/Dockerfile)
REDIS_UID=999                               # the redis user of the official redis image
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-radical-edge}
# Debian's docker client speaks the API of Debian's dockerd; a newer client earlier on PATH
# may want buildx, which is not installed.
DOCKER=/usr/bin/docker
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0

install_missing() {
  local missing=()
  [[ -x /usr/sbin/dockerd && -x /usr/bin/docker ]] || missing+=(docker.io)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  if [[ ${RADICAL_EDGE_DOCKER_BASE:-} == local ]]; then
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    [[ -s /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
  fi
  ((${#missing[@]})) || return 0
  say "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    "${missing[@]}" >/dev/null
}

answers() { timeout 10 "$DOCKER" -H "unix://$1" version >/dev/null 2>&1; }

use_dockerd() {
  # An engine that already runs (the system's, or ours from an earlier call) is used as is.
  if [[ -z ${DOCKER_HOST:-} ]]; then
    if [[ -S /var/run/docker.sock ]] && answers /var/run/docker.sock; then
      export DOCKER_HOST=unix:///var/run/docker.sock
    else
      export DOCKER_HOST=unix://$OWN_SOCK
    fi
  fi
}

start_dockerd() {
  use_dockerd
  if answers "${DOCKER_HOST#unix://}"; then return 0; fi
  [[ $DOCKER_HOST == "unix://$OWN_SOCK" ]] || { say "DOCKER_HOST=$DOCKER_HOST does not answer"; exit 1; }
  mkdir -p "$RUN_DIR" "$CACHE/data-root" && chmod 700 "$RUN_DIR"
  say "starting dockerd (data root $CACHE/data-root)"
  # Host networking only: no docker0 bridge, no iptables rules (other tests on this host use
  # network namespaces and forwarding that docker's FORWARD DROP policy would break).
  setsid /usr/sbin/dockerd --host "$DOCKER_HOST" --pidfile "$RUN_DIR/dockerd.pid" \
    --exec-root "$RUN_DIR/exec" --data-root "$CACHE/data-root" --storage-driver overlay2 \
    --bridge none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    >"$CACHE/dockerd.log" 2>&1 < /dev/null &
  local pid=$! deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    answers "$OWN_SOCK" && { touch "$RUN_DIR/started-by-script"; return 0; }
    kill -0 $pid 2>/dev/null || { tail -20 "$CACHE/dockerd.log" >&2; say "dockerd died"; exit 1; }
    sleep 0.2
  done
  say "dockerd did not answer in 60 s (log: $CACHE/dockerd.log)"; exit 1
}

stop_dockerd() {
  [[ -f $RUN_DIR/started-by-script && -f $RUN_DIR/dockerd.pid ]] || return 0
  local pid; pid=$(cat "$RUN_DIR/dockerd.pid")
  say "stopping dockerd $pid"
  kill "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)) && kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  rm -f "$RUN_DIR/started-by-script"
}

debian_mirror() {
  # the mirror apt uses here (deb822 or one-line format)
  local m
  m=$(grep -hs -m1 '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}') || true
  [[ -n $m ]] || m=$(grep -hs -m1 -E '^deb\s' /etc/apt/sources.list | awk '{print $2}') || true
  echo "${m:-http://deb.debian.org/debian}"
}

# What the local base holds: python for the image, redis-server for the Redis service.
BASE_PACKAGES=python3,python3-venv,ca-certificates,redis-server
build_base() {
  "$DOCKER" image inspect "$LOCAL_BASE_IMAGE" >/dev/null 2>&1 && return 0
  local tarball=$CACHE/base-bookworm-$(echo "$BASE_PACKAGES v2" | md5sum | cut -c1-8).tar
  if [[ ! -s $tarball ]]; then
    local dir; dir=$(mktemp -d "$CACHE/rootfs.XXXX")
    say "debootstrap --variant=minbase bookworm from $(debian_mirror)"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$dir" \
      "$(debian_mirror)" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log" >&2; rm -rf "$dir"; exit 1; }
    # pip inside the build trusts what this host trusts (a TLS-intercepting proxy's CA)
    cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
    # Redis's data directory, owned by the uid the official redis image runs as
    install -d -o "$REDIS_UID" -g "$REDIS_UID" -m 700 "$dir/data"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    tar -C "$dir" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
  fi
  say "docker import $LOCAL_BASE_IMAGE"
  "$DOCKER" import "$tarball" "$LOCAL_BASE_IMAGE" >/dev/null
}

pip_index_args() {
  # pip in the build uses the index this host's pip uses (a file:// index cannot be reached)
  local var val
  for var in PIP_INDEX_URL PIP_EXTRA_INDEX_URL; do
    val=${!var:-}
    if [[ -z $val ]] && command -v python3 >/dev/null; then
      local key=index-url; [[ $var == PIP_EXTRA_INDEX_URL ]] && key=extra-index-url
      val=$(python3 -m pip config get "global.$key" 2>/dev/null || true)
    fi
    val=$(tr ' ' '\n' <<<"$val" | grep -E '^https?://' | paste -sd' ' || true)
    [[ -n $val ]] && printf -- '--build-arg\n%s=%s\n' "$var" "$val"
  done
  return 0
}

build_image() {
  local args=(--network host -f docker/Dockerfile -t "$IMAGE")
  if [[ ${RADICAL_EDGE_DOCKER_BASE:-} == local ]]; then
    build_base
    args+=(--build-arg "BASE=$LOCAL_BASE_IMAGE")
  fi
  mapfile -t idx < <(pip_index_args)
  say "docker build $IMAGE"
  if ! "$DOCKER" build -q "${args[@]}" "${idx[@]}" . >/dev/null; then
    [[ ${RADICAL_EDGE_DOCKER_BASE:-} == local ]] \
      || say "build failed; without an image registry use RADICAL_EDGE_DOCKER_BASE=local"
    exit 1
  fi
}

write_secrets() {
  # A fresh set only when there is none: restarts keep passwords, tokens and the AOF data.
  [[ ${1:-} == --force ]] && rm -rf "$SECRETS"
  if [[ ! -s $SECRETS/redis_users.acl || ! -s $SECRETS/redis_password_edge-${EDGE_NAME:-docker-edge} ]]; then
    mkdir -p "$SECRETS" && chmod 700 "$SECRETS"
    say "writing secrets to $SECRETS"
    "$DOCKER" run --rm --network none --user 0 -v "$SECRETS:/out" "$IMAGE" \
      secrets --out /out --edge "${EDGE_NAME:-docker-edge}"
  fi
  # each file readable only by the user of the container that mounts it
  chown "$APP_UID:$APP_UID" "$SECRETS"/*
  chown "$REDIS_UID:$REDIS_UID" "$SECRETS/redis_users.acl"
  chmod 400 "$SECRETS"/*
}

compose() {
  export RADICAL_EDGE_IMAGE=$IMAGE RADICAL_EDGE_DOCKER_SECRETS=$SECRETS
  if [[ ${RADICAL_EDGE_DOCKER_BASE:-} == local ]]; then
    export REDIS_IMAGE=$LOCAL_BASE_IMAGE REDIS_RUN_AS=$REDIS_UID:$REDIS_UID
  fi
  docker-compose -f docker/compose.yaml "$@"
}

stack_up() {
  install_missing
  start_dockerd
  build_image
  write_secrets
  say "compose up (project $COMPOSE_PROJECT_NAME)"
  compose up -d --no-build
}

stack_down() {
  use_dockerd
  if answers "${DOCKER_HOST#unix://}"; then
    say "compose down (project $COMPOSE_PROJECT_NAME): containers, network, volumes"
    compose down --volumes --remove-orphans --timeout 20
  fi
}

main() {
  case ${1:-} in
    up) stack_up ;;
    down) stack_down; stop_dockerd ;;
    compose-down) stack_down ;;
    build) install_missing; start_dockerd; build_image ;;
    base) RADICAL_EDGE_DOCKER_BASE=local install_missing; start_dockerd; build_base ;;
    secrets) start_dockerd; write_secrets --force ;;
    dockerd) install_missing; start_dockerd; echo "DOCKER_HOST=$DOCKER_HOST" ;;
    stop-dockerd) stop_dockerd ;;
    compose) shift; use_dockerd; compose "$@" ;;
    *) sed -n '2,15p' "${BASH_SOURCE[0]}" >&2; return 2 ;;
  esac
}

[[ ${BASH_SOURCE[0]} != "$0" ]] || main "$@"
