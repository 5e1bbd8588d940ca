#!/usr/bin/env bash
# Lints the /metrics output of running Concord processes with `promtool check metrics` (names,
# types, HELP text, counter suffixes), and checks each page holds Concord's own series.
#
#   scripts/check_metrics.sh http://127.0.0.1:19000/metrics http://127.0.0.1:19100/metrics ...
#
# A page with no concord_* series fails too: a process whose recorder was never installed would
# otherwise pass with an empty page.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 <metrics-url>..." >&2; exit 2; }
command -v promtool >/dev/null || { echo "promtool is missing (Debian package prometheus)" >&2; exit 2; }

status=0
for url in "$@"; do
  page=$(curl -fsS --max-time 10 "$url") || { echo "FAIL $url: not reachable" >&2; status=1; continue; }
  if ! report=$(printf '%s\n' "$page" | promtool check metrics 2>&1); then
    printf 'FAIL %s:\n%s\n' "$url" "$report" >&2
    status=1
  elif ! printf '%s\n' "$page" | grep -q '^concord_'; then
    echo "FAIL $url: no concord_* series" >&2
    status=1
  else
    echo "ok $url ($(printf '%s\n' "$page" | grep -c '^# HELP') metrics)"
  fi
done
exit "$status"
