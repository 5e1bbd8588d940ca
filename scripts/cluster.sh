#!/usr/bin/env bash
# A complete local Concord cluster on loopback: PostgreSQL, Redis (a 3-master Redis Cluster or a
# standalone Redis), A api, R router and N shard processes, each with a pid file in run/.
#
#   scripts/cluster.sh up [--shards N] [--routers R] [--apis A] [--redis cluster|standalone]
#   scripts/cluster.sh add-shard          # one more shard process (the next ordinal)
#   scripts/cluster.sh status             # processes, readiness and the slot table
#   scripts/cluster.sh down               # stops everything `up` started
#
# Ports: api k → 127.0.0.1:(18080+k), router k → 18180+k, shard k links on 17000+k; admin
# listeners (/metrics, /healthz, /readyz) on 19000+k (api), 19100+k (router), 19200+k (shard).
# CONCORD_BIN selects the binary (default: a release build made here); CONCORD_CLUSTER_DB the
# database URL (default postgres://postgres@127.0.0.1:5432/concord_cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN="$ROOT/run"
mkdir -p "$RUN"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/concord-target}"

log() { printf '[cluster] %s\n' "$*"; }

SLOTS="${CONCORD_SLOTS:-16}"
DB_URL="${CONCORD_CLUSTER_DB:-postgres://postgres@127.0.0.1:5432/concord_cluster}"
SECRET_FILE="$RUN/token.secret"
# The cluster's own Redis Cluster, apart from the one the test suite's conformance tests use.
REDIS_CLUSTER_PORTS=(7201 7202 7203)
redis_cluster() {
  CONCORD_REDIS_CLUSTER_PORTS="${REDIS_CLUSTER_PORTS[*]}" \
    CONCORD_REDIS_CLUSTER_DIR=/var/tmp/concord-cluster-redis bash scripts/redis-cluster.sh "$@"
}

binary() {
  if [ -n "${CONCORD_BIN:-}" ]; then echo "$CONCORD_BIN"; return; fi
  cargo build --release --quiet --bin concord >&2
  echo "$CARGO_TARGET_DIR/release/concord"
}

redis_url() {
  case "$(cat "$RUN/redis.mode" 2>/dev/null || echo standalone)" in
    cluster) echo "redis+cluster://127.0.0.1:7201,127.0.0.1:7202,127.0.0.1:7203" ;;
    *) echo "redis://127.0.0.1:6379/${CONCORD_CLUSTER_REDIS_DB:-5}" ;;
  esac
}

wait_ready() { # admin-port name
  for _ in $(seq 1 150); do
    if curl -fsS "http://127.0.0.1:$1/readyz" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  log "$2 did not become ready; its log: $RUN/$2.log"; tail -n 20 "$RUN/$2.log" >&2 || true
  return 1
}

start() { # name admin-port args...
  local name=$1 admin=$2; shift 2
  CONCORD_REDIS_URL="$(redis_url)" CONCORD_DATABASE_URL="$DB_URL" \
    CONCORD_TOKEN_SECRET_FILE="$SECRET_FILE" CONCORD_SLOTS="$SLOTS" \
    CONCORD_ADMIN_LISTEN="127.0.0.1:$admin" CONCORD_LOG_FORMAT="${CONCORD_LOG_FORMAT:-json}" \
    nohup "$BIN" "$@" >"$RUN/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
}

up() {
  local shards=3 routers=2 apis=1 mode=cluster
  while [ $# -gt 0 ]; do
    case "$1" in
      --shards) shards=$2; shift 2 ;;
      --routers) routers=$2; shift 2 ;;
      --apis) apis=$2; shift 2 ;;
      --redis) mode=$2; shift 2 ;;
      *) log "unknown option $1"; exit 2 ;;
    esac
  done
  case "$mode" in cluster|standalone) ;; *) log "--redis must be cluster or standalone"; exit 2 ;; esac
  if ls "$RUN"/*.pid >/dev/null 2>&1; then log "already up (run 'down' first)"; exit 1; fi
  bash scripts/services.sh
  echo "$mode" >"$RUN/redis.mode"
  if [ "$mode" = cluster ]; then
    redis_cluster up
    for port in "${REDIS_CLUSTER_PORTS[@]}"; do redis-cli -p "$port" flushall >/dev/null; done
  else
    redis-cli -n "${CONCORD_CLUSTER_REDIS_DB:-5}" flushdb >/dev/null
  fi
  [ -f "$SECRET_FILE" ] || head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SECRET_FILE"
  chmod 600 "$SECRET_FILE"
  BIN=$(binary)
  CONCORD_REDIS_URL="$(redis_url)" "$BIN" cluster init --slots "$SLOTS" >/dev/null
  local gateway="ws://127.0.0.1:18180"
  # The first API process creates and migrates the database; the others start after it.
  start api-0 19000 api --listen 127.0.0.1:18080 --public-gateway-url "$gateway"
  wait_ready 19000 api-0
  for k in $(seq 1 $((apis - 1))); do
    start "api-$k" $((19000 + k)) api --listen "127.0.0.1:$((18080 + k))" --public-gateway-url "$gateway"
  done
  for k in $(seq 0 $((shards - 1))); do
    start "shard-$k" $((19200 + k)) shard --node-id "$k" --link-listen "127.0.0.1:$((17000 + k))" \
      --public-gateway-url "$gateway"
  done
  for k in $(seq 0 $((routers - 1))); do
    start "router-$k" $((19100 + k)) router --listen "127.0.0.1:$((18180 + k))" \
      --public-gateway-url "$gateway"
  done
  for k in $(seq 1 $((apis - 1))); do wait_ready $((19000 + k)) "api-$k"; done
  for k in $(seq 0 $((shards - 1))); do wait_ready $((19200 + k)) "shard-$k"; done
  for k in $(seq 0 $((routers - 1))); do wait_ready $((19100 + k)) "router-$k"; done
  wait_slots_owned
  log "up: $apis api, $routers router, $shards shard processes; redis $mode"
  echo "REST:    http://127.0.0.1:18080/api/v10"
  echo "Gateway: $gateway"
}

wait_slots_owned() {
  for _ in $(seq 1 100); do
    if CONCORD_REDIS_URL="$(redis_url)" "$BIN" cluster status --slots "$SLOTS" | grep -q unowned; then
      sleep 0.2
    else
      return 0
    fi
  done
  log "some slots have no owner"; return 1
}

add_shard() {
  BIN=$(binary)
  local k=0
  while [ -f "$RUN/shard-$k.pid" ]; do k=$((k + 1)); done
  start "shard-$k" $((19200 + k)) shard --node-id "$k" --link-listen "127.0.0.1:$((17000 + k))" \
    --public-gateway-url "ws://127.0.0.1:18180"
  wait_ready $((19200 + k)) "shard-$k"
  log "shard-$k up"
}

status() {
  for pid in "$RUN"/*.pid; do
    [ -e "$pid" ] || { log "nothing running"; return 0; }
    local name; name=$(basename "$pid" .pid)
    if kill -0 "$(cat "$pid")" 2>/dev/null; then echo "$name running (pid $(cat "$pid"))"; else echo "$name dead"; fi
  done
  BIN=${CONCORD_BIN:-$CARGO_TARGET_DIR/release/concord}
  CONCORD_REDIS_URL="$(redis_url)" "$BIN" cluster status --slots "$SLOTS" || true
}

down() {
  for pid in "$RUN"/*.pid; do
    [ -e "$pid" ] || continue
    kill "$(cat "$pid")" 2>/dev/null || true
  done
  for pid in "$RUN"/*.pid; do
    [ -e "$pid" ] || continue
    for _ in $(seq 1 100); do kill -0 "$(cat "$pid")" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$(cat "$pid")" 2>/dev/null || true
    rm -f "$pid"
  done
  if [ "$(cat "$RUN/redis.mode" 2>/dev/null)" = cluster ]; then redis_cluster down; fi
  rm -f "$RUN/redis.mode"
  log "down"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  add-shard) add_shard ;;
  status) status ;;
  down) down ;;
  *) echo "usage: $0 up [--shards N] [--routers R] [--apis A] [--redis cluster|standalone] | add-shard | status | down" >&2; exit 2 ;;
esac
