#!/usr/bin/env bash
# A local three-master Redis Cluster for cluster-mode tests.
#
#   scripts/redis-cluster.sh up      start the nodes and form the cluster (idempotent)
#   scripts/redis-cluster.sh status  print each node's state; exit 1 unless the cluster is ok
#   scripts/redis-cluster.sh down    stop the nodes and delete their data directories
#
# Env: CONCORD_REDIS_CLUSTER_PORTS (default "7101 7102 7103", spaces or commas, at least 3),
#      CONCORD_REDIS_CLUSTER_DIR (default /var/tmp/concord-redis-cluster),
#      CONCORD_REDIS_APPENDFSYNC (default always; everysec trades the last second of a machine
#      crash for throughput).
# Nodes persist with AOF, so a node restarted by `up` rejoins with its data.
set -euo pipefail

PORTS=(${CONCORD_REDIS_CLUSTER_PORTS:-7101 7102 7103})
PORTS=(${PORTS[@]//,/ })
BASE=${CONCORD_REDIS_CLUSTER_DIR:-/var/tmp/concord-redis-cluster}
# AOF fsync policy: `always` holds every reply until its write is on disk; `everysec` may lose the
# last second on a crash of the machine, not of the process. The cluster script picks its own.
APPENDFSYNC=${CONCORD_REDIS_APPENDFSYNC:-always}
HOST=127.0.0.1

log() { printf '[redis-cluster] %s\n' "$*"; }
die() { log "$*" >&2; exit 1; }

cli() { local port=$1; shift; redis-cli -h "$HOST" -p "$port" "$@"; }
running() { cli "$1" ping 2>/dev/null | grep -q PONG; }
info_field() { cli "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"; }
cluster_ok() {
  local port
  for port in "${PORTS[@]}"; do
    [ "$(info_field "$port" cluster_state)" = ok ] || return 1
    [ "$(info_field "$port" cluster_slots_assigned)" = 16384 ] || return 1
    [ "$(info_field "$port" cluster_known_nodes)" = "${#PORTS[@]}" ] || return 1
  done
}
# A node that has met no other node and serves no slot: safe to hand to `--cluster create`.
pristine() {
  [ "$(info_field "$1" cluster_known_nodes)" = 1 ] && [ "$(info_field "$1" cluster_slots_assigned)" = 0 ]
}

start_node() {
  local port=$1 dir="$BASE/$1"
  if running "$port"; then return; fi
  mkdir -p "$dir"
  redis-server --port "$port" --bind "$HOST" \
    --cluster-enabled yes --cluster-config-file "nodes-$port.conf" --cluster-node-timeout 5000 \
    --appendonly yes --appendfsync "$APPENDFSYNC" --save '' \
    --daemonize yes --dir "$dir" --logfile "$dir/redis.log"
  for _ in $(seq 1 50); do running "$port" && break; sleep 0.1; done
  running "$port" || die "node $port did not start; see $dir/redis.log"
  log "node $port started"
}

up() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null \
    || die "redis-server and redis-cli are required (apt-get install redis-server)"
  [ "${#PORTS[@]}" -ge 3 ] || die "a cluster needs at least 3 masters, got: ${PORTS[*]}"
  local port
  for port in "${PORTS[@]}"; do start_node "$port"; done
  if cluster_ok; then log "cluster is up (${PORTS[*]})"; return; fi
  local all_pristine=1
  for port in "${PORTS[@]}"; do pristine "$port" || all_pristine=0; done
  if [ "$all_pristine" = 1 ]; then
    local addrs=()
    for port in "${PORTS[@]}"; do addrs+=("$HOST:$port"); done
    log "creating cluster ${addrs[*]}"
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
  else
    log "nodes already belong to a cluster; waiting for it to settle"
  fi
  for _ in $(seq 1 150); do cluster_ok && break; sleep 0.2; done
  cluster_ok || die "cluster did not reach cluster_state:ok; run '$0 status', or '$0 down' then '$0 up'"
  log "cluster is up (${PORTS[*]})"
}

down() {
  local port
  for port in "${PORTS[@]}"; do
    if running "$port"; then
      cli "$port" shutdown nosave >/dev/null 2>&1 || true
      for _ in $(seq 1 50); do running "$port" || break; sleep 0.1; done
      running "$port" && die "node $port did not stop"
      log "node $port stopped"
    fi
    rm -rf "${BASE:?}/$port"
  done
  rmdir "$BASE" 2>/dev/null || true
  log "removed the data of ${PORTS[*]} under $BASE"
}

status() {
  local port healthy=0
  for port in "${PORTS[@]}"; do
    if running "$port"; then
      log "node $port: up, cluster_state=$(info_field "$port" cluster_state)," \
        "slots=$(info_field "$port" cluster_slots_assigned), nodes=$(info_field "$port" cluster_known_nodes)"
    else
      log "node $port: down"
    fi
  done
  cluster_ok || healthy=1
  if [ "$healthy" = 0 ]; then log "cluster ok"; else log "cluster not ok"; fi
  return "$healthy"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
