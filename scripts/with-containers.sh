#!/usr/bin/env bash
# Run a command with a container engine in its environment: DOCKER_HOST (podman's Docker
# API), CONTAINERS_CONF and the STREAMCHAOS_*_IMAGE names, from scripts/containers.sh.
# An engine from `scripts/containers.sh up` already running → use it and leave it running;
# otherwise start one and stop it afterwards, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
CT_DIR="${CT_DIR:-.local/containers}"
started=0
if ! scripts/containers.sh status >/dev/null 2>&1; then
  started=1
fi
cleanup() { if [[ $started == 1 ]]; then scripts/containers.sh down || true; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP # the EXIT trap then stops the API service too
scripts/containers.sh up # builds what changed; fails with the reason when no engine can run
set -a
# shellcheck disable=SC1091
source "$CT_DIR/containers.env"
set +a
"$@"
