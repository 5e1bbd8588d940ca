#!/usr/bin/env bash
# Runs the discord.py 2.7 end-to-end script against a freshly started Concord.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/concord-target}"
venv="${CONCORD_VENV:-/var/tmp/concord-venv}"
port="${CONCORD_SMOKE_PORT:-18080}"
admin_port="${CONCORD_SMOKE_ADMIN_PORT:-18090}"

if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install -q --disable-pip-version-check 'discord.py==2.7.1'

cargo build -q --bin concord
data=$(mktemp -d)
"$CARGO_TARGET_DIR/debug/concord" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin_port" \
  --data-dir "$data" --shards 2 >"$data/server.log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done
if ! "$venv/bin/python" tests/clients/dpy_smoke.py "http://127.0.0.1:$port"; then
  echo "--- server log ---"; tail -n 50 "$data/server.log"; exit 1
fi
