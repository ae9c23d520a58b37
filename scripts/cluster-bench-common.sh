# Shared by scripts/bench-cluster.sh and scripts/bench-cluster-start.sh (sourced, not run).

# random_events COUNT SEED: COUNT event lines with UUIDv4 ids, customers drawn from 10,000, api_calls.
random_events() {
  python3 - "$1" "$2" <<'PY'
import json, random, sys, uuid
random.seed(int(sys.argv[2]))
for _ in range(int(sys.argv[1])):
    print(json.dumps({"id": str(uuid.UUID(int=random.getrandbits(128), version=4)),
                      "customer": "cus_%d" % random.randrange(10000), "meter": "api_calls"}))
PY
}

now() { date +%s.%N; }
wait_socket() { for _ in $(seq 1 600); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; return 1; }
