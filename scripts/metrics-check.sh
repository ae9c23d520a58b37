#!/usr/bin/env bash
# Lints GET /metrics with `promtool check metrics` (issue 12), as `make test` runs it:
#   1. starts a daemon on a temporary store with HTTP on a free port and `archive.interval: 0`
#      (every family must be there even with the archive schedule off);
#   2. scrapes /metrics before any event, then again after a few events over HTTP (accepted,
#      duplicate, rejected);
#   3. runs `promtool check metrics` on both scrapes and fails on any problem it reports
#      (a missing HELP or TYPE, a bad name or unit, …).
# Usage: scripts/metrics-check.sh [TALLY_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
TALLY=${1:-.build/debug/tally}
command -v promtool >/dev/null || { echo "promtool is missing: apt-get install prometheus (or make deps)" >&2; exit 1; }

# shellcheck source=scripts/check-daemon.sh
. scripts/check-daemon.sh
check_daemon_prepare "metrics-check-key"
sed -e '/^# The HTTP API and the dashboard/,$d' -e 's/^  interval: .*/  interval: 0/' config/tally.yaml >"$WORK/tally.yaml"
printf '\nhttp:\n  api_keys_sha256: ["%s"]\n' "$DIGEST" >>"$WORK/tally.yaml"
check_daemon_start "$TALLY"

scrape() {
  curl -fsS "http://127.0.0.1:$PORT/metrics" -H "Authorization: Bearer $KEY" -o "$1"
}

status=0
check() {
  local file=$1 what=$2 problems
  echo "promtool check metrics: $what"
  if ! problems=$(promtool check metrics <"$file" 2>&1) || [ -n "$problems" ]; then
    echo "$problems" >&2
    status=1
  fi
}

scrape "$WORK/start.txt"
check "$WORK/start.txt" "at start, before any event"

curl -fsS -X POST "http://127.0.0.1:$PORT/v1/events" -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' \
  -d '[{"id":"m1","customer":"cus_m","meter":"api_calls"},{"id":"m1","customer":"cus_m","meter":"api_calls"},{"id":"m2","customer":"cus_m","meter":"nope"}]' >/dev/null
scrape "$WORK/after.txt"
check "$WORK/after.txt" "after accepted, duplicate and rejected events"

if [ "$status" -ne 0 ]; then
  echo "promtool found problems in /metrics" >&2
  exit 1
fi
echo "metrics check passed ($(grep -c '^# TYPE' "$WORK/after.txt") families)"
