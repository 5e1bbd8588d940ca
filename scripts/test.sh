#!/usr/bin/env bash
# The test command: services, formatting, lints, every workspace test (SQLite, PostgreSQL, real
# sockets, twilight, Redis standalone and Redis Cluster), the discord.py, hikari and discord.js
# end-to-end scripts against a running server, the offline checks of the Kubernetes manifests,
# image and monitoring rules, then the same clients and the cluster tests against a local cluster
# of separate api, router and shard processes.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/concord-target}"
export CONCORD_TEST_POSTGRES_URL="${CONCORD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

bash scripts/services.sh
# A 3-master Redis Cluster (ports 7101-7103) for the Redis adapter's conformance suite; the
# cluster tests start their own on 7201-7203.
bash scripts/redis-cluster.sh up

# Scratch databases from earlier runs are dropped so they do not pile up.
psql "$CONCORD_TEST_POSTGRES_URL" -Atc "select datname from pg_database where datname like 'concord_test_%'" \
  | while read -r db; do psql "$CONCORD_TEST_POSTGRES_URL" -qc "drop database if exists \"$db\"" || true; done

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
bash scripts/dpy_smoke.sh
bash scripts/client_smoke.sh
# Kubernetes manifests, image, compose file, Prometheus rules and dashboard, checked offline.
bash scripts/ops_check.sh
bash scripts/cluster_test.sh
