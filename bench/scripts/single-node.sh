#!/usr/bin/env bash
# Measures the single-node figures of bench/README.md ("Measured") on this machine.
#
#   bench/scripts/single-node.sh sqlite|postgres [OUT_DIR]
#
# Starts the all-in-one server in release mode on the chosen database, creates a fixture through
# the REST API, and runs each scenario with --server-pid and --json. Memory figures use a fresh
# server process per scenario (same data), so earlier runs leave nothing in its heap.
# Environment: HOLD_SESSIONS (default 19000) and HOLD_SECONDS (default 600) size the long hold;
# HOLD_SECONDS=0 skips it. CONCORD_BENCH_PG (default postgres://postgres@127.0.0.1:5432) is the
# PostgreSQL server for the postgres run.
set -euo pipefail

db=${1:?usage: single-node.sh sqlite|postgres [OUT_DIR]}
out=${2:-bench-results/$db}
hold_sessions=${HOLD_SESSIONS:-19000}
hold_seconds=${HOLD_SECONDS:-600}
pg=${CONCORD_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
port=18700
admin=18701

root=$(cd "$(dirname "$0")/../.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && cargo build --release -p concord -p concord-bench)
bin=$target_dir/release
mkdir -p "$out"
out=$(cd "$out" && pwd)
data=$out/data
rm -rf "$data"

case $db in
sqlite) url="sqlite://$data/concord.db" ;;
postgres)
    name="concord_bench_$$"
    url="$pg/$name"
    ;;
*)
    echo "unknown database $db" >&2
    exit 2
    ;;
esac

server_pid=
start_server() {
    "$bin/concord" --data-dir "$data" --database-url "$url" \
        --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
        --rate-limit-global 1000000 --rate-limit-route 1000000 \
        >>"$out/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server did not become ready; see $out/server.log" >&2
    exit 2
}
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
cleanup() {
    stop_server
    if [ "$db" = postgres ]; then
        psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $name" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

bench() {
    local name=$1
    shift
    echo "== $name: bench $*" >&2
    "$bin/bench" "$@" --fixture "$out/fixture.json" --server-pid "$server_pid" \
        --json "$out/$name.json" --quiet >"$out/$name.txt" 2>&1 || true
}

start_server
"$bin/bench" setup --target "http://127.0.0.1:$port" --fixture "$out/fixture.json" \
    --users 1000 --guilds 20 --members-per-guild 100 --quiet

# Idle memory: sessions held past a heartbeat (the server's default interval is 41.25 s), so
# each client has acknowledged its READY and GUILD_CREATEs and the replay buffers are trimmed.
for mode in none zlib-stream zstd-stream; do
    stop_server
    start_server
    # Enough sessions that the process's own growth under load (runtime, caches) is spread thin.
    sessions=10000
    [ "$mode" = none ] || sessions=5000
    bench "memory-$mode" connect --sessions "$sessions" --rate 1000 --duration 60s --compress "$mode"
done

# Fan-out: 1 000 sessions in guilds of 100 members, each online once: channels of 100 online.
stop_server
start_server
bench fanout fanout --sessions 1000 --rate 1000 --duration 30s
bench fanout-500 fanout --sessions 1000 --rate 500 --duration 30s
bench post post --concurrency 64 --duration 20s

if [ "$hold_seconds" != 0 ]; then
    stop_server
    start_server
    bench hold connect --sessions "$hold_sessions" --rate 500 --duration "${hold_seconds}s"
fi
stop_server

python3 - "$out" <<'EOF'
import json, os, sys
out = sys.argv[1]
def load(name):
    path = os.path.join(out, name + ".json")
    return json.load(open(path)) if os.path.exists(path) else None
def per_session(name):
    r = load(name)
    if not r: return "n/a"
    s, held = r["server"], r["figures"].get("sessions_held", 0)
    return f'{(s["rss_end_kib"] - s["rss_start_kib"]) / max(held, 1):.1f} KiB ({held} sessions)'
rows = []
hold = load("hold")
if hold:
    f = hold["figures"]
    rows.append(("sessions held, no unplanned disconnect",
                 f'{f.get("sessions_held")} held of {f.get("ready")} ready, {f.get("disconnects", 0)} disconnects, {f.get("hold_seconds", 0):.0f} s'))
rows.append(("RSS per idle session, plain", per_session("memory-none")))
rows.append(("RSS per idle session, zlib-stream", per_session("memory-zlib-stream")))
rows.append(("RSS per idle session, zstd-stream", per_session("memory-zstd-stream")))
for name in ("fanout", "fanout-500"):
  fan = load(name)
  if fan:
    f, s, h = fan["figures"], fan["server"], fan["histograms"]["delivery"]
    tag = f'{name}, {fan["params"]["rate"]:.0f} POST/s asked'
    rows.append((f"{tag}: deliveries per second", f'{f["deliveries_per_second"]:.0f} ({f["posts_per_second"]:.0f} POST/s)'))
    rows.append((f"{tag}: deliveries per server CPU-second", f'{f["deliveries"] / max(s["cpu_seconds"], 1e-9):.0f} (server CPU {s["cpu_seconds"]:.1f} s)'))
    rows.append((f"{tag}: POST→delivery p50 / p99 / max", f'{h["p50_us"]/1000:.1f} / {h["p99_us"]/1000:.1f} / {h["max_us"]/1000:.1f} ms'))
    rows.append((f"{tag}: missing / duplicates / gaps", f'{f["missing"]} / {f["duplicates"]} / {f["gaps"]}'))
post = load("post")
if post:
    f, h = post["figures"], post["histograms"]["post"]
    rows.append(("message POSTs per second (64 concurrent)", f'{f["posts_per_second"]:.0f}, p50 {h["p50_us"]/1000:.1f} ms, p99 {h["p99_us"]/1000:.1f} ms'))
width = max(len(r[0]) for r in rows)
for name, value in rows:
    print(f"{name:<{width}}  {value}")
EOF
