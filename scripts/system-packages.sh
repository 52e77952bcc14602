#!/usr/bin/env bash
# Installs the Debian packages the local stack and the end-to-end tests use
# (Prometheus, promtool, Alertmanager, wrk) when they are missing and we can.
set -euo pipefail
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || missing+=(prometheus-alertmanager)
command -v wrk >/dev/null || missing+=(wrk)
command -v prometheus-node-exporter >/dev/null || missing+=(prometheus-node-exporter)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "note: ${missing[*]} missing and cannot be installed here (not root on Debian);" \
       "the stack runs without them and the tests that need them will fail" >&2
  exit 0
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# --no-install-recommends keeps the install small; the services are started by us, not by init.
apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
