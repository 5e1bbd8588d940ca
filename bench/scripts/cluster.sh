#!/usr/bin/env bash
# Measures the cluster figures of bench/README.md ("Measured: cluster mode") on this machine, with
# the all-in-one server on the same fixture shape for the ratios.
#
#   bench/scripts/cluster.sh [OUT_DIR]
#
# Starts a local cluster (scripts/cluster.sh: 1 api, 2+ routers, 3 shards, a 3-master Redis
# Cluster, PostgreSQL) from a release build, creates a fixture, and runs: idle sessions across both
# routers (memory summed over router and shard processes), fan-out through both routers at 500
# POST/s (CPU summed over every process, Redis included), and a POST run that counts Redis
# commands per message. Then the same fan-out against the all-in-one server on PostgreSQL.
# SESSIONS (default 10000) sizes the idle run, HOLD_SECONDS (default 60) its length, ROUTERS
# (default: enough for SESSIONS, at least 2) the router count.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-bench-results/cluster}
sessions=${SESSIONS:-10000}
hold=${HOLD_SECONDS:-60}
# Message rates of the fan-out runs (POST/s), and whether to run the idle-session phase.
rates=${RATES:-200 500}
idle=${IDLE:-1}
# A router holds one descriptor per session (links to shard processes are shared) under a
# 20 000 limit.
nrouters=${ROUTERS:-$(( (sessions + 17999) / 18000 > 2 ? (sessions + 17999) / 18000 : 2 ))}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/concord-target}
(cd "$root" && cargo build --release -q -p concord -p concord-bench)
bin=$CARGO_TARGET_DIR/release
export CONCORD_BIN=$bin/concord
mkdir -p "$out"
out=$(cd "$out" && pwd)
rest=http://127.0.0.1:18080
routers=$(for k in $(seq 0 $((nrouters - 1))); do printf 'ws://127.0.0.1:%d,' $((18180 + k)); done)
routers=${routers%,}

# Sum of CPU seconds (user + system) and RSS (KiB) over the given pids.
procstat() {
  python3 - "$@" <<'EOF'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
cpu = rss = 0
for pid in sys.argv[1:]:
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        cpu += (int(fields[11]) + int(fields[12])) / tick
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
    except FileNotFoundError:
        pass
print(f"{cpu:.2f} {rss}")
EOF
}
pids_of() { for f in "$@"; do cat "$f"; done | tr '\n' ' '; }
redis_pids() { for p in 7201 7202 7203; do redis-cli -p "$p" info server | awk -F: '/^process_id/ { printf "%s ", $2 }' | tr -d '\r'; done; }
redis_calls() { for p in 7201 7202 7203; do redis-cli -p "$p" info commandstats; done | awk -F'[=,]' '/^cmdstat_/ { n += $2 } END { print n }'; }

cd "$root"
export CONCORD_RATE_LIMIT_GLOBAL=1000000 CONCORD_RATE_LIMIT_ROUTE=1000000
bash scripts/cluster.sh down >/dev/null 2>&1 || true
trap 'bash scripts/cluster.sh down >/dev/null 2>&1 || true' EXIT
bash scripts/cluster.sh up --shards 3 --routers "$nrouters" --apis 1 --redis cluster
"$bin/bench" setup --target "$rest" --fixture "$out/fixture.json" \
  --users 1000 --guilds 20 --members-per-guild 100 --quiet

gateway_pids=$(pids_of run/router-*.pid run/shard-*.pid)
all_pids="$(pids_of run/*.pid) $(redis_pids)"

# Idle sessions: RSS growth of routers + shards per session.
if [ "$idle" = 1 ]; then
before=$(procstat $gateway_pids)
"$bin/bench" connect --fixture "$out/fixture.json" --gateway "$routers" --sessions "$sessions" \
  --rate 1000 --duration "${hold}s" --workers "$nrouters" --json "$out/idle.json" --quiet \
  >"$out/idle.txt" 2>&1 &
bench_pid=$!
# Sampled near the end of the hold, while every session is still connected.
sleep $((hold + sessions / 1000 + 5))
during=$(procstat $gateway_pids)
wait "$bench_pid" || true
echo "idle: before $before during $during" >"$out/idle-proc.txt"
fi

# Fan-out through the routers, CPU over every process including Redis.
# CPU seconds per role, to show where a delivery's cost goes.
role_cpu() {
  for role in api router shard; do printf '%s=%s ' "$role" "$(procstat $(pids_of run/$role-*.pid) | cut -d' ' -f1)"; done
  printf 'redis=%s\n' "$(procstat $(redis_pids) | cut -d' ' -f1)"
}
for rate in $rates; do
  before=$(procstat $all_pids)
  roles_before=$(role_cpu)
  calls_before=$(redis_calls)
  "$bin/bench" fanout --fixture "$out/fixture.json" --gateway "$routers" --sessions 1000 \
    --rate "$rate" --duration 30s --workers 2 --json "$out/fanout-$rate.json" --quiet \
    >"$out/fanout-$rate.txt" 2>&1 || true
  after=$(procstat $all_pids)
  calls_after=$(redis_calls)
  echo "fanout-$rate: before $before after $after redis_calls $calls_before $calls_after" >"$out/fanout-$rate-proc.txt"
  printf 'before %s\nafter  %s\n' "$roles_before" "$(role_cpu)" >"$out/fanout-$rate-roles.txt"
done

# Redis commands per message POST (no sessions online: interest lookup + appends only).
calls_before=$(redis_calls)
"$bin/bench" post --fixture "$out/fixture.json" --concurrency 64 --duration 20s \
  --json "$out/post.json" --quiet >"$out/post.txt" 2>&1 || true
calls_after=$(redis_calls)
echo "post: redis_calls $calls_before $calls_after" >"$out/post-proc.txt"
bash scripts/cluster.sh down >/dev/null 2>&1 || true

# The all-in-one server on PostgreSQL, same fixture shape, same fan-out.
db="concord_bench_allinone_$$"
data=$(mktemp -d)
"$bin/concord" --data-dir "$data" --database-url "postgres://postgres@127.0.0.1:5432/$db" \
  --listen 127.0.0.1:18700 --admin-listen 127.0.0.1:18701 >"$out/allinone.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; psql postgres://postgres@127.0.0.1:5432/postgres -qc "drop database if exists $db" >/dev/null 2>&1 || true; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -fs http://127.0.0.1:18701/readyz >/dev/null 2>&1 && break; sleep 0.1; done
"$bin/bench" setup --target http://127.0.0.1:18700 --fixture "$out/fixture-allinone.json" \
  --users 1000 --guilds 20 --members-per-guild 100 --quiet
for rate in $rates; do
  before=$(procstat $server)
  "$bin/bench" fanout --fixture "$out/fixture-allinone.json" --sessions 1000 --rate "$rate" \
    --duration 30s --workers 2 --json "$out/allinone-fanout-$rate.json" --quiet \
    >"$out/allinone-fanout-$rate.txt" 2>&1 || true
  after=$(procstat $server)
  echo "allinone-fanout-$rate: before $before after $after" >"$out/allinone-fanout-$rate-proc.txt"
done

python3 - "$out" "$sessions" "$rates" <<'EOF'
import json, os, sys
out, sessions = sys.argv[1], int(sys.argv[2])
def load(name):
    p = os.path.join(out, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None
def proc(name):
    return open(os.path.join(out, name + "-proc.txt")).read().split()
rows = []
idle = load("idle")
if idle:
    p = proc("idle")
    rss = (int(p[6]) - int(p[3]))
    held = idle["figures"].get("sessions_held", 0)
    rows.append(("idle sessions held across the routers", f'{held} of {idle["figures"].get("ready")} ready, {idle["figures"].get("disconnects", 0)} disconnects'))
    rows.append(("RSS per idle session, routers + shards", f'{rss / max(held, 1):.1f} KiB'))
for rate in [int(r) for r in sys.argv[3].split()]:
    c, a = load(f"fanout-{rate}"), load(f"allinone-fanout-{rate}")
    if not c:
        continue
    p = proc(f"fanout-{rate}")
    cpu = float(p[5]) - float(p[2])
    f, h = c["figures"], c["histograms"]["delivery"]
    rows.append((f"cluster fan-out @{rate} POST/s: deliveries/s", f'{f["deliveries_per_second"]:.0f} ({f["posts_per_second"]:.0f} POST/s), missing {f["missing"]}, dup {f["duplicates"]}, gaps {f["gaps"]}'))
    rows.append((f"cluster fan-out @{rate}: deliveries per CPU-second (all processes)", f'{f["deliveries"] / max(cpu, 1e-9):.0f} (CPU {cpu:.1f} s)'))
    rows.append((f"cluster fan-out @{rate}: POST→delivery p50/p99/max", f'{h["p50_us"]/1000:.1f} / {h["p99_us"]/1000:.1f} / {h["max_us"]/1000:.1f} ms'))
    calls = int(p[9]) - int(p[8])
    rows.append((f"cluster fan-out @{rate}: Redis commands per POST", f'{calls / max(f["messages_posted"], 1):.1f}'))
    roles = os.path.join(out, f"fanout-{rate}-roles.txt")
    if os.path.exists(roles):
        lines = [dict(kv.split("=") for kv in line.split()[1:]) for line in open(roles)]
        split = ", ".join(f"{k} {float(lines[1][k]) - float(lines[0][k]):.1f}" for k in lines[0])
        rows.append((f"cluster fan-out @{rate}: CPU seconds by role", split))
    if a:
        pa = proc(f"allinone-fanout-{rate}")
        cpu_a = float(pa[5]) - float(pa[2])
        fa, ha = a["figures"], a["histograms"]["delivery"]
        rows.append((f"all-in-one fan-out @{rate}: deliveries per CPU-second", f'{fa["deliveries"] / max(cpu_a, 1e-9):.0f} (CPU {cpu_a:.1f} s), p99 {ha["p99_us"]/1000:.1f} ms, {fa["posts_per_second"]:.0f} POST/s'))
post = load("post")
if post:
    p = proc("post")
    calls = int(p[3]) - int(p[2])
    rows.append(("POSTs/s through 1 api (64 concurrent)", f'{post["figures"]["posts_per_second"]:.0f}; Redis commands per POST {calls / max(post["figures"]["posts_ok"] if "posts_ok" in post["figures"] else post["figures"].get("posts", 1), 1):.1f}'))
width = max(len(r[0]) for r in rows)
for name, value in rows:
    print(f"{name:<{width}}  {value}")
EOF
