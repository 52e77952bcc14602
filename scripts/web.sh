#!/usr/bin/env bash
# The web console (web/): install its Node packages from the committed lock file,
# build it, test it.
#   scripts/web.sh build    npm ci (when the lock file changed) + type check + vite build -> web/dist
#   scripts/web.sh test     npm ci + Vitest + build + Chromium, then the browser e2e
#                           (pytest tests/e2e/web) unless WEB_E2E=pytest (make test runs it with the rest)
#   scripts/web.sh prepare  what the browser e2e needs: build + Chromium
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
cd web

need_node() {
  if ! command -v npm >/dev/null; then
    echo "web: Node.js 20.19+ with npm is needed to build the console" >&2
    exit 1
  fi
}

install() {  # npm ci from package-lock.json; skipped when node_modules already matches it
  local stamp=node_modules/.package-lock.sha256 sum
  sum=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ "${1:-}" = "--always" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
    npm ci --no-audit --no-fund --loglevel=error
    echo "$sum" >"$stamp"
  fi
}

# Debian's chromium, driven by playwright-core (no browser downloads here). `type -P`
# looks for the program only: a shell function of the same name must not count.
install_chromium() {
  type -P chromium >/dev/null && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian package: chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "note: chromium is missing and cannot be installed here; the browser e2e will fail" >&2
  fi
}

case "${1:-}" in
  build)
    need_node
    install
    npm run --silent build
    ;;
  prepare)
    need_node
    install
    npm run --silent build
    install_chromium
    ;;
  test)
    need_node
    install --always
    npm test --silent
    npm run --silent build
    install_chromium
    if [ "${WEB_E2E:-}" != "pytest" ]; then
      "$ROOT/.venv/bin/pytest" -q -p no:cacheprovider "$ROOT/tests/e2e/web"
    fi
    ;;
  *)
    echo "usage: scripts/web.sh build|test|prepare" >&2
    exit 2
    ;;
esac
