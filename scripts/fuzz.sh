#!/usr/bin/env bash
# Runs each libFuzzer target of Fuzz/ for SECONDS, one after another (`make fuzz`, docs/FUZZING.md).
#
#   scripts/fuzz.sh SECONDS TARGET...
#
# Each target reads its committed corpus, Fuzz/Corpus/TARGET, and writes the inputs it finds to
# .build/fuzz/corpus/TARGET (libFuzzer writes into the first corpus directory it is given), so the
# repository stays clean; a crash's input goes to .build/fuzz/artifacts/. Exits 1 when any target
# crashed, timed out or ran out of memory, after running all of them.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=$1
shift
binaries=Fuzz/.build/debug
work=.build/fuzz
mkdir -p "$work/artifacts"
# Swift's own crash backtracer and AddressSanitizer's handlers fight over the fault; let ASan and
# libFuzzer report it.
export SWIFT_BACKTRACE=enable=no
failed=()
for target in "$@"; do
  mkdir -p "$work/corpus/$target"
  dictionary=()
  case $target in
    FuzzEventLine|FuzzJSONScanner|FuzzBackupManifest) dictionary=(-dict=Fuzz/Dictionaries/json.dict) ;;
    FuzzConfig) dictionary=(-dict=Fuzz/Dictionaries/yaml.dict) ;;
  esac
  log=$work/$target.log
  echo "fuzz: $target for ${seconds}s (log: $log)"
  if "$binaries/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/$target-" "${dictionary[@]}" \
      "$work/corpus/$target" "Fuzz/Corpus/$target" >"$log" 2>&1; then
    grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | sed "s/^/  /"
  else
    echo "fuzz: $target FAILED; the end of $log:"
    tail -40 "$log"
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]} (inputs in $work/artifacts/)"
  exit 1
fi
