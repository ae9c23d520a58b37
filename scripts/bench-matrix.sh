#!/usr/bin/env bash
# The ingest matrix of BENCHMARKS.md: customers 1k/10k/100k/1M × remembered identities 1M/50M, in
# random (uniform) customer order, then the half-load latency run and the 16-connection run. Each
# run appends one JSON line to $OUT; scripts/plot-bench.py draws docs/ingest-vs-customers.svg from it.
#
#   scripts/bench-matrix.sh            # the full matrix (the 50M runs take minutes each to prefill)
#   scripts/bench-matrix.sh --quick    # 200,000 events, 100,000 and 1,000,000 identities: a few minutes
set -euo pipefail
cd "$(dirname "$0")/.."
TALLY=${TALLY:-.build/release/tally}
OUT=${OUT:-bench-results.ndjson}
EVENTS=1000000
IDENTITIES="1000000 50000000"
if [ "${1:-}" = "--quick" ]; then
  EVENTS=200000
  IDENTITIES="100000 1000000"
fi
[ -x "$TALLY" ] || { echo "build first: make build (or set TALLY=path/to/tally)" >&2; exit 2; }

run() {  # run LABEL ARGS…
  local label=$1; shift
  echo "== $label: tally bench ingest $*" >&2
  "$TALLY" bench ingest --json "$@" | sed "s/^{/{\"run\":\"$label\",/" | tee -a "$OUT"
}

for identities in $IDENTITIES; do
  for customers in 1000 10000 100000 1000000; do
    run matrix --events "$EVENTS" --customers "$customers" --identities-prefill "$identities" --window 0
  done
done

# Half the saturated rate at 100,000 customers, open loop: the latency target's run.
smallest=${IDENTITIES%% *}
saturated=$(run saturated --events "$EVENTS" --customers 100000 --identities-prefill "$smallest" --window 0 \
  | python3 -c 'import json,sys; print(int(json.loads(sys.stdin.read())["events_per_s"]))')
run half-load --events "$EVENTS" --customers 100000 --identities-prefill "$smallest" --rate $((saturated / 2))
run connections-16 --events "$EVENTS" --customers 100000 --identities-prefill "$smallest" --connections 16
python3 scripts/plot-bench.py "$OUT" docs/ingest-vs-customers.svg
