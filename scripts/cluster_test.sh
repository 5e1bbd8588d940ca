#!/usr/bin/env bash
# Process-level cluster tests: 2 api + 2 router + 3 shard processes on PostgreSQL and a 3-master
# Redis Cluster (scripts/cluster.sh), then against that cluster: the discord.py, hikari and
# discord.js scripts, the Rust cluster tests (REST through either API process, the gateway and
# resume through either router, joins, logout, fan-out), a shard process added mid-run, and a
# shard process killed with SIGKILL. Expects the client libraries that scripts/dpy_smoke.sh and
# scripts/client_smoke.sh install.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/concord-target}"
dpy_venv="${CONCORD_VENV:-/var/tmp/concord-venv}"
hikari_venv="${CONCORD_HIKARI_VENV:-/var/tmp/concord-hikari-venv}"
djs="${CONCORD_DJS_DIR:-/var/tmp/concord-djs}"
log() { printf '[cluster-test] %s\n' "$*"; }

cargo build -q --bin concord
export CONCORD_BIN="$CARGO_TARGET_DIR/debug/concord"
bash scripts/cluster.sh down >/dev/null 2>&1 || true
trap 'bash scripts/cluster.sh down >/dev/null 2>&1 || true' EXIT
bash scripts/cluster.sh up --shards 3 --routers 2 --apis 2 --redis cluster

rest=http://127.0.0.1:18080
failed=0
run() { # name command...
  local name=$1; shift
  if timeout 240 "$@"; then log "$name passed"; else log "$name FAILED"; failed=1; fi
}
run discord.py "$dpy_venv/bin/python" tests/clients/dpy_smoke.py "$rest" ws://127.0.0.1:18181
run hikari "$hikari_venv/bin/python" tests/clients/hikari_smoke.py "$rest"
run discord.js node tests/clients/djs_smoke.mjs "$rest" "$djs"
run twilight-and-cluster cargo test -q --test e2e -- --ignored --test-threads 4 cluster

# bench fan-out through both routers: every delivery checked per session.
cargo build -q -p concord-bench --bin bench
bench="$CARGO_TARGET_DIR/debug/bench"
run bench-setup "$bench" setup --target "$rest" --users 40 --guilds 4 --members-per-guild 20 \
  --fixture run/bench-fixture.json --quiet
run bench-fanout "$bench" fanout --fixture run/bench-fixture.json --sessions 200 --workers 2 \
  --gateway ws://127.0.0.1:18180,ws://127.0.0.1:18181 --rate 40 --duration 6s \
  --compress zlib-stream --quiet --slo missing=0,duplicates=0,gaps=0,failures=0

# Every process serves /metrics, /healthz and /readyz on its admin port.
metrics_ok=1
for port in 19000 19001 19100 19101 19200 19201 19202; do
  # Read whole before matching: grep -q closing the pipe early would fail curl under pipefail.
  metrics=$(curl -fsS "http://127.0.0.1:$port/metrics" || true)
  if ! curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || ! curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null \
    || ! grep -q '^concord_' <<<"$metrics"; then
    metrics_ok=0; log "admin port $port incomplete"
  fi
done
if [ "$metrics_ok" = 1 ]; then log "admin endpoints passed"; else log "admin endpoints FAILED"; failed=1; fi
# ... and what each serves passes `promtool check metrics` (installed by scripts/ops_check.sh).
if bash scripts/check_metrics.sh $(for p in 19000 19001 19100 19101 19200 19201 19202; do echo "http://127.0.0.1:$p/metrics"; done); then
  log "promtool check metrics passed"
else
  log "promtool check metrics FAILED"; failed=1
fi

# A second process cannot take a live node id; an unreachable Redis is named (without its
# password) and ends the process with a non-zero status.
if out=$(CONCORD_TOKEN_SECRET_FILE=run/token.secret timeout 20 "$CONCORD_BIN" shard --node-id 0 \
    --redis-url redis+cluster://127.0.0.1:7201 --database-url postgres://postgres@127.0.0.1:5432/concord_cluster \
    --link-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 2>&1); then
  log "duplicate node id FAILED: the second node 0 started"; failed=1
elif echo "$out" | grep -q "node id 0 is held"; then
  log "duplicate node id passed"
else
  log "duplicate node id FAILED: $out"; failed=1
fi
if out=$(CONCORD_TOKEN_SECRET_FILE=run/token.secret timeout 20 "$CONCORD_BIN" api \
    --redis-url redis://user:hunter2secret@127.0.0.1:1 --database-url postgres://postgres@127.0.0.1:5432/concord_cluster \
    --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 2>&1); then
  log "unreachable redis FAILED: the process started"; failed=1
elif echo "$out" | grep -q "127.0.0.1:1" && ! echo "$out" | grep -q hunter2secret; then
  log "unreachable redis passed: $(echo "$out" | tail -n 1)"
else
  log "unreachable redis FAILED: $out"; failed=1
fi

slots_of() { # node → the slots the table says it holds, one per line
  "$CONCORD_BIN" cluster status --redis-url redis+cluster://127.0.0.1:7201 2>/dev/null \
    | awk -v n="node $1 " '$1 == "slot" && index($0, n) { print $2 }' | sort -n
}
owners() {
  "$CONCORD_BIN" cluster status --redis-url redis+cluster://127.0.0.1:7201 \
    | awk '$1 == "slot" { print $2, ($3 == "unowned" ? "unowned" : $4) }'
}

# A shard process added mid-run takes only the slots it now wins; no other slot moves.
before=$(owners)
bash scripts/cluster.sh add-shard
for _ in $(seq 1 50); do [ -n "$(slots_of 3)" ] && ! owners | grep -q unowned && break; sleep 0.2; done
after=$(owners)
moved=$( (diff <(echo "$before") <(echo "$after") || true) | awk '/^>/ { print $3 }' | sort -u)
if [ -n "$(slots_of 3)" ] && [ "$moved" = "3" ]; then
  log "add-shard passed: node 3 took slots $(slots_of 3 | tr '\n' ' ')and nothing else moved"
else
  log "add-shard FAILED: moved to '$moved'"; diff <(echo "$before") <(echo "$after") || true; failed=1
fi

# SIGKILL of a shard process: its sessions are told at once (resumable close), then their slots
# get a new owner within the lease and the clients can identify again.
# The victim is the shard process holding the most slots, so that some of the test's users live
# on it whatever the rendezvous assignment.
victim=$(owners | awk '$2 != "unowned" { print $2 }' | sort | uniq -c | sort -rn | awk 'NR == 1 { print $2 }')
run shard-kill "$dpy_venv/bin/python" tests/clients/cluster_kill.py "$rest" ws://127.0.0.1:18180 "run/shard-$victim.pid"

# Redis lost while running: writes refused with 503 (nothing committed), readiness false, and
# everything back by itself once Redis returns (AOF keeps its data).
stop_redis='for p in 7201 7202 7203; do redis-cli -p $p shutdown >/dev/null 2>&1 || true; done'
start_redis="CONCORD_REDIS_CLUSTER_PORTS='7201 7202 7203' CONCORD_REDIS_CLUSTER_DIR=/var/tmp/concord-cluster-redis bash scripts/redis-cluster.sh up"
run redis-outage "$dpy_venv/bin/python" tests/clients/cluster_redis_outage.py "$rest" ws://127.0.0.1:18180 \
  http://127.0.0.1:19000 "$stop_redis" "$start_redis"

if [ "$failed" -ne 0 ]; then
  for f in run/*.log; do echo "--- $f ---"; tail -n 15 "$f"; done
  exit 1
fi
log "all cluster tests passed"
