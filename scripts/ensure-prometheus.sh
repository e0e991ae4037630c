#!/usr/bin/env bash
# The real Prometheus server for the integration test that scrapes the bridge and
# evaluates configs/alerts.yml: Debian's `prometheus` package, installed when missing.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "prometheus is missing: install Debian's 'prometheus' package (needs root/apt-get)" >&2
  exit 1
fi
echo "installing Debian's prometheus package (once)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# the package's service is not started: policy-rc.d / no systemd in containers
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v prometheus >/dev/null
