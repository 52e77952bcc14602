#!/usr/bin/env bash
# Installs the Debian packages the local stack and the tests use (Prometheus, promtool,
# Alertmanager, the node, Postgres and Redis exporters, docker-compose to check the
# compose file, wrk) when they are missing and we can.
#
# The exporter and Prometheus packages start system services on their default ports
# when installed. `make up` runs its own on ports from the environment, so the install
# starts none (a policy-rc.d for its duration) and their systemd units are disabled.
set -euo pipefail
missing=()
need() {  # need COMMAND PACKAGE
  command -v "$1" >/dev/null || missing+=("$2")
}
need prometheus prometheus
need promtool prometheus
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null ||
  missing+=(prometheus-alertmanager)
need prometheus-node-exporter prometheus-node-exporter
need prometheus-postgres-exporter prometheus-postgres-exporter
need prometheus-redis-exporter prometheus-redis-exporter
need docker-compose docker-compose
need wrk wrk
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "note: ${missing[*]} missing and cannot be installed here (not root on Debian);" \
       "the stack runs without them and the tests that need them will fail" >&2
  exit 0
fi
packages=$(printf '%s\n' "${missing[@]}" | sort -u)
echo "installing Debian packages:" $packages
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
ours=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && ours=1
fi
trap '[ -n "$ours" ] && rm -f "$policy"' EXIT
apt-get update -qq >/dev/null
# --no-install-recommends keeps the install small.
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $packages >/dev/null
# Only the units of packages installed now: a service set up before us is the admin's.
if [ -d /run/systemd/system ]; then
  for unit in $packages; do
    if systemctl list-unit-files "$unit.service" 2>/dev/null | grep -q "^$unit.service"; then
      systemctl disable --now "$unit.service" >/dev/null 2>&1 || true
    fi
  done
fi
