#!/usr/bin/env bash
# How long a node that never held a cluster's partitions (or lost its disk) takes to serve them:
# from the partitions' newest snapshots in JetStream, against replaying their whole logs.
# One nats-server (R=1), 4 partitions; node n1 takes EVENTS events (UUIDv4 ids, 10,000 random
# customers), is SIGKILLed, and n2 starts on an empty store directory; the figure is n2's start to
# its log line "serving partition" for the last of the 4 partitions.
# Usage: scripts/bench-cluster-start.sh [TALLY_BINARY] [EVENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
TALLY="$(realpath "${1:-.build/release/tally}")"
EVENTS="${2:-1000000}"
DIR="$(mktemp -d /tmp/tally-bench-start.XXXXXX)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT

# shellcheck source=scripts/cluster-bench-common.sh
. scripts/cluster-bench-common.sh
random_events "$EVENTS" 11 > "$DIR/events.ndjson"

node_config() {  # NAME PORT SNAPSHOT_INTERVAL
  mkdir -p "$DIR/$1"
  cat > "$DIR/$1/tally.yaml" <<YAML
store: { path: $DIR/$1/data }
ingest: { socket: $DIR/$1/tally.sock }
meters:
  - { code: api_calls, aggregation: count }
cluster: { node: $1, nats: [nats://127.0.0.1:$2], partitions: 4, replicas: 1, failover: 2s, snapshot_interval: $3 }
YAML
}

run() {  # SNAPSHOT_INTERVAL LABEL
  local port=$((15000 + RANDOM % 1000))
  rm -rf "$DIR/nats" "$DIR/n1" "$DIR/n2"
  nats-server -js -p "$port" -sd "$DIR/nats" >"$DIR/nats.log" 2>&1 & pids+=($!)
  sleep 1
  node_config n1 "$port" "$1"; node_config n2 "$port" "$1"
  "$TALLY" serve --config "$DIR/n1/tally.yaml" >"$DIR/n1/log" 2>&1 & local n1=$!; pids+=($n1)
  wait_socket "$DIR/n1/tally.sock"
  until [ "$(grep -c 'serving partition' "$DIR/n1/log")" -ge 4 ]; do sleep 0.1; done
  "$TALLY" send --config "$DIR/n1/tally.yaml" "$DIR/events.ndjson" | tail -1
  if [ "$1" = "1s" ]; then  # until every partition's newest snapshot covers its whole log
    until "$TALLY" cluster status --config "$DIR/n1/tally.yaml" --json | python3 -c '
import json, sys
rows = json.load(sys.stdin)["partitions"]
sys.exit(0 if all(r["snapshot_sequence"] == r["log_sequence"] for r in rows) else 1)'; do sleep 0.5; done
  fi
  kill -9 "$n1"; wait "$n1" 2>/dev/null || true
  sleep 2.5   # past the leases
  local start; start=$(now)
  "$TALLY" serve --config "$DIR/n2/tally.yaml" >"$DIR/n2/log" 2>&1 & pids+=($!)
  until [ "$(grep -c 'serving partition' "$DIR/n2/log")" -ge 4 ]; do sleep 0.02; done
  local end; end=$(now)
  printf '%-34s %6.2f s to serve all 4 partitions (%s)\n' "$2" "$(echo "$end - $start" | bc)" \
    "$(grep -o 'replayed_events=[0-9]*' "$DIR/n2/log" | paste -sd, -)"
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  pids=()
  sleep 0.5
}

echo "tally bench cluster start: $EVENTS events into 4 partitions, then a node with an empty store takes them"
run 1s "from snapshots (interval 1s)"
run 24h "replaying the whole log (no snapshot)"
