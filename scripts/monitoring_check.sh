#!/usr/bin/env bash
# Checks monitoring/: the rules parse (`promtool check rules`), their unit tests pass
# (`promtool test rules`), every Grafana query and the prometheus-adapter query parse as PromQL
# (extracted into rule files and given to `promtool check rules`), and every metric they read
# is one the code exports with help text (scripts/monitoring_check.py).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v promtool >/dev/null || { echo "promtool is missing (Debian package prometheus)" >&2; exit 2; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
promtool check rules monitoring/*rules.yml
promtool test rules monitoring/tests/*.test.yml
python3 scripts/monitoring_check.py "$out"
promtool check rules "$out/dashboard-rules.yml" "$out/adapter-rules.yml"
echo "[monitoring-check] ok"
