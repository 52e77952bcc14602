#!/usr/bin/env bash
# Runs the platform as plain background processes: API (gunicorn), Celery worker,
# beat, Flower, and Prometheus/Alertmanager when installed. Idempotent.
#   scripts/stack.sh up|down|status
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN="$ROOT/.venv/bin"
RUN="$ROOT/var/run"
LOG="$ROOT/var/log"
mkdir -p "$RUN" "$LOG"

if [ -f .env ]; then set -a; . ./.env; set +a; fi
export API_PORT=${API_PORT:-8080}
export WORKER_METRICS_PORT=${WORKER_METRICS_PORT:-9808}
export FLOWER_PORT=${FLOWER_PORT:-5555}
export PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
export ALERTMANAGER_PORT=${ALERTMANAGER_PORT:-9093}
export DATABASE_URL=${DATABASE_URL:-postgresql+psycopg2://postgres@127.0.0.1:5432/intelligent_workflows}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-2}
export PUBLIC_URL=${PUBLIC_URL:-http://127.0.0.1:$API_PORT}

is_running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start() {  # start NAME CMD...: background process with a pid file and a log
  local name=$1; shift
  if is_running "$name"; then echo "  $name already running (pid $(cat "$RUN/$name.pid"))"; return; fi
  setsid nohup "$@" >>"$LOG/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN/$name.pid"
  echo "  $name started (pid $!, log var/log/$name.log)"
}

stop() {
  local name=$1
  if is_running "$name"; then
    local pid; pid=$(cat "$RUN/$name.pid")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    echo "  $name stopped"
  fi
  rm -f "$RUN/$name.pid"
}

wait_ready() {
  for _ in $(seq 1 60); do
    if curl -fsS "http://127.0.0.1:$API_PORT/ready" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "the API did not become ready; see var/log/api.log and: curl http://127.0.0.1:$API_PORT/ready" >&2
  curl -sS "http://127.0.0.1:$API_PORT/ready" >&2 || true
  return 1
}

up() {
  echo "database: migrating $DATABASE_URL"
  "$BIN/python" -m models.manage init
  echo "starting processes"
  # One metrics directory per serving host; it must exist before any process imports the metrics.
  mkdir -p "$ROOT/var/metrics/api" "$ROOT/var/metrics/worker"
  export PROMETHEUS_MULTIPROC_DIR="$ROOT/var/metrics/api"
  start api "$BIN/gunicorn" -c gunicorn.conf.py "api.wsgi:app"
  export PROMETHEUS_MULTIPROC_DIR="$ROOT/var/metrics/worker"
  start worker "$BIN/celery" -A workers.app worker --loglevel INFO --concurrency "$WORKER_CONCURRENCY" \
    -n "worker@%h" --without-gossip --without-mingle
  # beat serves no metrics endpoint; its job runs are recorded by the worker processes.
  unset PROMETHEUS_MULTIPROC_DIR
  start beat "$BIN/celery" -A workers.app beat --loglevel INFO --schedule "$RUN/celerybeat-schedule"
  # Flower must not write multiprocess metric files (its own /metrics is single-process).
  start flower env -u PROMETHEUS_MULTIPROC_DIR "$BIN/celery" -A workers.app flower \
    --address=127.0.0.1 --port="$FLOWER_PORT"
  unset PROMETHEUS_MULTIPROC_DIR
  if command -v prometheus >/dev/null; then
    "$BIN/python" -m monitoring.assets local-config --api-port "$API_PORT" \
      --worker-port "$WORKER_METRICS_PORT" --flower-port "$FLOWER_PORT" \
      --alertmanager-port "$ALERTMANAGER_PORT" --prometheus-port "$PROMETHEUS_PORT" \
      --rule-files "$ROOT/monitoring/alerts/*.yml" >"$RUN/prometheus.yml"
    start prometheus prometheus --config.file="$RUN/prometheus.yml" \
      --storage.tsdb.path="$ROOT/var/prometheus" --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
  else
    echo "  prometheus not installed: skipped (make up installs it when run as root on Debian)"
  fi
  local am; am=$(command -v prometheus-alertmanager || command -v alertmanager || true)
  if [ -n "$am" ]; then
    start alertmanager "$am" --config.file="$ROOT/monitoring/alertmanager/alertmanager.yml" \
      --storage.path="$ROOT/var/alertmanager" --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
      --cluster.listen-address=""
  fi
  wait_ready
  cat <<MSG

Intelligent Workflows is up.
  API         http://127.0.0.1:$API_PORT/api/v1   (docs: /api/v1/docs, health: /ready, metrics: /metrics)
  worker      metrics on http://127.0.0.1:$WORKER_METRICS_PORT/metrics
  Flower      http://127.0.0.1:$FLOWER_PORT
  Prometheus  http://127.0.0.1:$PROMETHEUS_PORT (if installed)
  logs        var/log/

Next (a first session, from the repository root):
  curl -s -XPOST localhost:$API_PORT/api/v1/auth/register -H 'Content-Type: application/json' \\
       -d '{"username":"ada","email":"ada@example.com","password":"a-long-password"}'
  TOKEN=\$(curl -s -XPOST localhost:$API_PORT/api/v1/auth/login -H 'Content-Type: application/json' \\
       -d '{"username":"ada","password":"a-long-password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s -XPOST localhost:$API_PORT/api/v1/workflows -H "Authorization: Bearer \$TOKEN" \\
       -H 'Content-Type: application/json' -d @examples/order-triage.json
  curl -s -XPOST localhost:$API_PORT/api/v1/events -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
       -H 'Idempotency-Key: first-order' -d '{"event_type":"order.placed","payload":{"order":{"id":"o-1","total":120}}}'
  curl -s localhost:$API_PORT/api/v1/executions -H "Authorization: Bearer \$TOKEN"
  curl -s 'localhost:$API_PORT/api/v1/records?entity=order' -H "Authorization: Bearer \$TOKEN"
More workflows in examples/ (see examples/README.md).
Stop everything with: make down
MSG
}

down() {
  for name in alertmanager prometheus flower beat worker api; do stop "$name"; done
}

status() {
  for name in api worker beat flower prometheus alertmanager; do
    if is_running "$name"; then echo "$name: running (pid $(cat "$RUN/$name.pid"))"; else echo "$name: stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
