#!/usr/bin/env bash
# Starts PostgreSQL (127.0.0.1:5432, trust auth for local connections) and Redis (127.0.0.1:6379)
# when they are not already running, installing them from Debian's packages if they are missing.
set -euo pipefail

log() { printf '[services] %s\n' "$*"; }

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    log "need root to install $*; install them yourself and re-run"; exit 1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

ensure_postgres() {
  if postgres_up; then log "postgresql is up"; return; fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    log "installing postgresql"; apt_install postgresql
  fi
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
  if [ -z "$version" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
    pg_createcluster "$version" main >/dev/null
  fi
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  # The tests connect as postgres over TCP without a password, as on the CI machine.
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main restart
  for _ in $(seq 1 30); do postgres_up && break; sleep 1; done
  postgres_up || { log "postgresql did not start"; exit 1; }
  log "postgresql started"
}

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

ensure_redis() {
  if redis_up; then log "redis is up"; return; fi
  command -v redis-server >/dev/null 2>&1 || { log "installing redis"; apt_install redis-server; }
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/concord-ci.log
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
  redis_up || { log "redis did not start"; exit 1; }
  log "redis started"
}

ensure_postgres
ensure_redis
