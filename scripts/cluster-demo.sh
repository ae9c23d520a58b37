#!/usr/bin/env bash
# make cluster-demo: three nats-server processes as a JetStream cluster and three tally nodes on
# this machine (loopback ports), each with its own store and socket under .build/cluster-demo.
# Ctrl-C stops everything. Usage: scripts/cluster-demo.sh [TALLY_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
TALLY="${1:-.build/release/tally}"
DIR="$(pwd)/.build/cluster-demo"
PARTITIONS="${PARTITIONS:-16}"
rm -rf "$DIR" && mkdir -p "$DIR"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

urls=""
for i in 1 2 3; do
  urls="${urls:+$urls, }nats://127.0.0.1:$((4221 + i))"
done
for i in 1 2 3; do
  cat > "$DIR/nats$i.conf" <<CONF
server_name: nats$i
listen: 127.0.0.1:$((4221 + i))
jetstream { store_dir: "$DIR/nats$i" }
cluster { name: tally-demo, listen: 127.0.0.1:$((6221 + i)), routes: [nats-route://127.0.0.1:6222, nats-route://127.0.0.1:6223, nats-route://127.0.0.1:6224] }
CONF
  nats-server -c "$DIR/nats$i.conf" > "$DIR/nats$i.log" 2>&1 &
  pids+=($!)
done
sleep 1
# The meters (and plans) of config/tally.yaml, so examples/events.ndjson counts as in single-node mode.
meters="$(python3 - <<'PY'
import re
text = open("config/tally.yaml").read()
keep, out = False, []
for line in text.splitlines():
    if re.match(r"^[a-z_]+:", line):
        keep = line.split(":")[0] in ("meters", "plans", "default_plan", "billing")
    if keep:
        out.append(line)
print("\n".join(out))
PY
)"
for n in 1 2 3; do
  cat > "$DIR/node$n.yaml" <<CONF
store: { path: $DIR/node$n }
ingest: { socket: $DIR/node$n.sock }
$meters
cluster:
  node: n$n
  nats: [$urls]
  partitions: $PARTITIONS
  replicas: 3
  failover: 10s
  snapshot_interval: 1m
  metrics_listen: 127.0.0.1:946$n
CONF
  "$TALLY" serve --config "$DIR/node$n.yaml" > "$DIR/node$n.log" 2>&1 &
  pids+=($!)
done
for n in 1 2 3; do
  for _ in $(seq 1 300); do [ -S "$DIR/node$n.sock" ] && break; sleep 0.1; done
done
for _ in $(seq 1 120); do
  "$TALLY" cluster status --config "$DIR/node1.yaml" | head -1 | grep -q " 0 without an owner" && break
  sleep 0.5
done
"$TALLY" cluster status --config "$DIR/node1.yaml" | head -5
cat <<TEXT

Three NATS servers (JetStream, R=3) and three tally nodes are running; logs in $DIR.
Send events to any node, then read a customer's usage from any node (the owner answers):
  $TALLY send --socket $DIR/node2.sock examples/events.ndjson
  $TALLY cluster status --config $DIR/node1.yaml
  $TALLY usage --config $DIR/node3.yaml --customer cus_42
  $TALLY rate --config $DIR/node1.yaml --period $(date -u +%Y-%m) --quiet
  curl -s 127.0.0.1:9461/metrics | grep tally_cluster_      # node N's metrics on port 946N
Kill a node (kill -9 on its pid) and watch the others take its partitions within cluster.failover.
Ctrl-C stops everything.
TEXT
wait
