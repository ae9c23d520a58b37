#!/usr/bin/env bash
# make bench-cluster: cluster mode on NATS JetStream (3 servers, R=3, all on this machine) against
# single-node mode, with the same events and the same client (`tally send`), alternated per round;
# then the fail-over time (SIGKILL of a node → the first accepted answer for one of its partitions
# from another node); then 1, 2 and 3 nodes pinned to cores with taskset, as events/s per core.
# Usage: scripts/bench-cluster.sh [TALLY_BINARY] [EVENTS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
TALLY="$(realpath "${1:-.build/release/tally}")"
EVENTS="${2:-200000}"
ROUNDS="${3:-3}"
DIR="$(mktemp -d /tmp/tally-bench-cluster.XXXXXX)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT

# shellcheck source=scripts/cluster-bench-common.sh
. scripts/cluster-bench-common.sh
random_events "$EVENTS" 7 > "$DIR/events.ndjson"

start_nats() {  # fresh JetStream cluster of three
  rm -rf "$DIR/nats" && mkdir -p "$DIR/nats"
  natspids=()
  for i in 1 2 3; do
    cat > "$DIR/nats/s$i.conf" <<CONF
server_name: s$i
listen: 127.0.0.1:$((24220 + i))
jetstream { store_dir: "$DIR/nats/s$i" }
cluster { name: bench, listen: 127.0.0.1:$((26220 + i)), routes: [nats-route://127.0.0.1:26221, nats-route://127.0.0.1:26222, nats-route://127.0.0.1:26223] }
CONF
    nats-server -c "$DIR/nats/s$i.conf" > "$DIR/nats/s$i.log" 2>&1 &
    natspids+=($!); pids+=($!)
  done
  sleep 1.5
}
stop_nats() { for pid in "${natspids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait "${natspids[@]}" 2>/dev/null || true; }

node_config() {  # name, directory, [cluster]
  cat <<CONF
store: { path: $2/store }
ingest: { socket: $2/tally.sock }
meters:
  - { code: api_calls, aggregation: count }
CONF
  if [ "${3:-}" = cluster ]; then cat <<CONF
cluster:
  node: $1
  nats: [nats://127.0.0.1:24221, nats://127.0.0.1:24222, nats://127.0.0.1:24223]
  partitions: 16
  replicas: 3
  failover: ${FAILOVER:-5s}
CONF
  fi
}

start_node() {  # name, mode, [cpu]
  local dir="$DIR/$1"; rm -rf "$dir"; mkdir -p "$dir"
  node_config "$1" "$dir" "$2" > "$dir/tally.yaml"
  if [ -n "${3:-}" ]; then taskset -c "$3" "$TALLY" serve --config "$dir/tally.yaml" > "$dir/log" 2>&1 &
  else "$TALLY" serve --config "$dir/tally.yaml" > "$dir/log" 2>&1 & fi
  eval "pid_$1=$!"; pids+=($!)
  wait_socket "$dir/tally.sock"
}

wait_owned() {  # config, node count: until every partition has an owner
  for _ in $(seq 1 200); do
    if "$TALLY" cluster status --config "$1" --json 2>/dev/null | python3 -c "
import json,sys; s=json.load(sys.stdin)
even = all(len(n['partitions']) >= len(s['partitions']) // $2 for n in s['nodes'])
sys.exit(0 if len(s['nodes'])==$2 and even and not s['unowned'] and all(p['lag']==0 for p in s['partitions']) else 1)"; then return 0; fi
    sleep 0.25
  done
  echo "cluster did not settle" >&2; return 1
}

send_rate() {  # socket → events/s of one `tally send` of the file
  local start end; start=$(now)
  "$TALLY" send --socket "$1" --quiet "$DIR/events.ndjson" > "$DIR/send.out"
  end=$(now)
  python3 -c "print(round($EVENTS / ($end - $start)))"
}

echo "tally bench cluster: $EVENTS events, 10,000 random customers, one tally send per run; NATS: 3 servers on this machine, R=3; cluster: 16 partitions"
echo "round  single-node ev/s  cluster (1 node) ev/s  cluster / single"
for round in $(seq 1 "$ROUNDS"); do
  start_node single single
  single=$(send_rate "$DIR/single/tally.sock")
  kill "$pid_single"; wait "$pid_single" 2>/dev/null || true
  start_nats
  start_node n1 cluster
  wait_owned "$DIR/n1/tally.yaml" 1
  clustered=$(send_rate "$DIR/n1/tally.sock")
  grep -q "$EVENTS accepted" "$DIR/send.out" || { echo "cluster run did not accept every event:"; cat "$DIR/send.out"; }
  kill "$pid_n1"; wait "$pid_n1" 2>/dev/null || true
  stop_nats
  python3 -c "print('%5d  %17d  %21d  %.2f' % ($round, $single, $clustered, $clustered / $single))"
done

echo
echo "fail-over: 2 nodes (cluster.failover ${FAILOVER:-5s}); SIGKILL of n1 → first accepted answer from n2 for a customer of n1's partition"
start_nats
start_node n1 cluster
start_node n2 cluster
wait_owned "$DIR/n1/tally.yaml" 2
# A customer of one of n1's partitions.
probe=""
for c in $(seq 0 400); do
  if "$TALLY" cluster status --config "$DIR/n1/tally.yaml" --customer "probe_$c" --json | grep -q '"owner":"n1"'; then probe="probe_$c"; break; fi
done
[ -n "$probe" ] || { echo "no probe customer found"; exit 1; }
killed=$(now)
kill -9 "$pid_n1"
n=0
while true; do
  n=$((n + 1))
  answer=$(printf '{"id":"probe-%d","customer":"%s","meter":"api_calls"}\n' "$n" "$probe" | "$TALLY" send --socket "$DIR/n2/tally.sock" --json - 2>/dev/null || true)
  if echo "$answer" | grep -q '"accepted":1'; then break; fi
  sleep 0.05
done
python3 -c "print('  fail-over: %.2f s from SIGKILL to the first accepted answer (%d attempts)' % ($(now) - $killed, $n))"
kill "$pid_n2"; wait "$pid_n2" 2>/dev/null || true
stop_nats

echo
echo "nodes pinned with taskset (node i on core (i-1) mod 2); the file split across the nodes, sent in parallel"
echo "nodes  cores  events/s  events/s per core"
for nodes in 1 2 3; do
  start_nats
  for i in $(seq 1 "$nodes"); do start_node "n$i" cluster $(( (i - 1) % 2 )); done
  wait_owned "$DIR/n1/tally.yaml" "$nodes"
  split -n "l/$nodes" -d "$DIR/events.ndjson" "$DIR/part."
  start=$(now)
  sendpids=()
  i=0
  for part in "$DIR"/part.*; do
    i=$((i + 1))
    { "$TALLY" send --socket "$DIR/n$i/tally.sock" --quiet "$part" > "$DIR/send$i.out" || true; } &
    sendpids+=($!)
  done
  wait "${sendpids[@]}"
  end=$(now)
  cores=$(( nodes < 2 ? nodes : 2 ))
  python3 -c "r=$EVENTS/($end-$start); print('%5d  %5d  %8d  %17d' % ($nodes, $cores, r, r/$cores))"
  grep -h "rejected" "$DIR"/send*.out | grep -v " 0 rejected" || true
  for i in $(seq 1 "$nodes"); do eval "kill \$pid_n$i; wait \$pid_n$i 2>/dev/null || true"; done
  rm -f "$DIR"/part.*
  stop_nats
done
