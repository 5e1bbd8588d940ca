#!/usr/bin/env bash
# Runs the hikari 2.x and discord.js 14 end-to-end scripts against a freshly started Concord.
# The clients are installed outside the repository: hikari into a virtualenv
# ($CONCORD_HIKARI_VENV, default /var/tmp/concord-hikari-venv), discord.js into
# $CONCORD_DJS_DIR/node_modules (default /var/tmp/concord-djs). The server listens on free ports
# (or $CONCORD_CLIENT_SMOKE_PORT / $CONCORD_CLIENT_SMOKE_ADMIN_PORT) with a 1 s heartbeat, so the
# few seconds each client lingers at the end cover heartbeats and zombie detection too.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/concord-target}"
venv="${CONCORD_HIKARI_VENV:-/var/tmp/concord-hikari-venv}"
djs="${CONCORD_DJS_DIR:-/var/tmp/concord-djs}"
client_timeout="${CONCORD_CLIENT_SMOKE_TIMEOUT:-180}"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port="${CONCORD_CLIENT_SMOKE_PORT:-$(free_port)}"
admin_port="${CONCORD_CLIENT_SMOKE_ADMIN_PORT:-$(free_port)}"
if [ "$port" = "$admin_port" ]; then admin_port=$(free_port); fi

if ! command -v npm >/dev/null 2>&1; then
  # A machine without Node.js gets Debian's; discord.js 14 runs on Node 18 and newer.
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
timeout 600 "$venv/bin/pip" install -q --disable-pip-version-check 'hikari>=2.7,<3' aiohttp
mkdir -p "$djs"
if [ ! -f "$djs/package.json" ]; then echo '{"name": "concord-djs-smoke", "private": true}' >"$djs/package.json"; fi
(cd "$djs" && timeout 600 npm install --no-audit --no-fund --loglevel=error 'discord.js@14')

cargo build -q --bin concord
data=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$CARGO_TARGET_DIR/debug/concord" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin_port" \
  --data-dir "$data" --shards 2 --heartbeat-interval-ms 1000 >"$data/server.log" 2>&1 &
server=$!

ready=""
for _ in $(seq 1 60); do
  if curl -fsS "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$server" 2>/dev/null || break
  sleep 0.5
done
if [ -z "$ready" ]; then
  echo "server did not become ready"; tail -n 50 "$data/server.log"; exit 1
fi

export CONCORD_SMOKE_LINGER_S="${CONCORD_SMOKE_LINGER_S:-3}"
failed=0
if ! timeout "$client_timeout" "$venv/bin/python" tests/clients/hikari_smoke.py "http://127.0.0.1:$port"; then
  failed=1
fi
if ! timeout "$client_timeout" node tests/clients/djs_smoke.mjs "http://127.0.0.1:$port" "$djs"; then
  failed=1
fi
if [ "$failed" -ne 0 ]; then
  echo "--- server log ---"; tail -n 50 "$data/server.log"; exit 1
fi
