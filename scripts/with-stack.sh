#!/usr/bin/env bash
# Run a command with a real Kafka (+ Schema Registry) in its environment.
# KAFKA_BOOTSTRAP_SERVERS set → use it as is. A stack from `make up` already running →
# use it and leave it running. Otherwise start one and stop it afterwards, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
  exec "$@"
fi
started=0
if ! scripts/stack.sh status >/dev/null 2>&1; then
  scripts/stack.sh up
  started=1
fi
cleanup() { if [[ $started == 1 ]]; then scripts/stack.sh down || true; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP # the EXIT trap then stops the stack too
set -a
# shellcheck disable=SC1091
source "${STACK_DIR:-.local}/stack.env"
set +a
rc=0
"$@" || rc=$?
if [[ $rc != 0 && $started == 1 ]]; then # the logs go with the stack: show them first
  for f in kafka registry; do
    log="${STACK_DIR:-.local}/$f.log"
    [[ -f "$log" ]] && { echo "--- last lines of $log"; tail -n 25 "$log"; }
  done
fi
exit $rc
