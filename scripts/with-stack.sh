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
set -a
# shellcheck disable=SC1091
source "${STACK_DIR:-.local}/stack.env"
set +a
"$@"
