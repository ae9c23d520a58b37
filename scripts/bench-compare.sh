#!/usr/bin/env bash
# Same-run ingest comparison of two tally builds, alternated so both see the same machine:
#   scripts/bench-compare.sh /path/to/tally-before /path/to/tally-after [rounds]
# Prints one line per run: build, customers, durable events/s (1M events, 1M identities, no window).
set -euo pipefail
before=$1 after=$2 rounds=${3:-2}
for round in $(seq 1 "$rounds"); do
  for build in "$before" "$after"; do
    for customers in 10000 100000; do
      figure=$("$build" bench ingest --events 1000000 --customers "$customers" --identities-prefill 1000000 \
        --window 0 --seed "$round" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["events_per_s"])')
      echo "$build $customers $figure"
    done
  done
done
