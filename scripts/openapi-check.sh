#!/usr/bin/env bash
# Checks the HTTP API against its OpenAPI document (issue 11), as `make test` runs it:
#   1. starts a daemon on a temporary store with an admin key and HTTP on a free port;
#   2. validates GET /openapi.json with openapi-spec-validator;
#   3. runs a bounded schemathesis pass (50 examples per operation) against the live daemon and
#      fails on any 5xx, any undocumented status or content type, and any response that does not
#      match its schema.
# Usage: scripts/openapi-check.sh [TALLY_BINARY] [PYTHON_TOOLS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
TALLY=${1:-.build/debug/tally}
TOOLS=${2:-.build/pytools}
EXAMPLES=${OPENAPI_MAX_EXAMPLES:-50}

if [ ! -x "$TOOLS/bin/schemathesis" ] || [ ! -x "$TOOLS/bin/openapi-spec-validator" ]; then
  echo "installing openapi-spec-validator and schemathesis into $TOOLS"
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/pip" install -q --disable-pip-version-check "openapi-spec-validator==0.9.0" "schemathesis==4.32.5"
fi

# shellcheck source=scripts/check-daemon.sh
. scripts/check-daemon.sh
check_daemon_prepare "openapi-check-key"
sed '/^# The HTTP API and the dashboard/,$d' config/tally.yaml >"$WORK/tally.yaml"
printf '\nhttp:\n  api_keys_sha256: ["%s"]\n  portal_secret_env: TALLY_OPENAPI_CHECK_PORTAL_SECRET\n' "$DIGEST" >> "$WORK/tally.yaml"
export TALLY_OPENAPI_CHECK_PORTAL_SECRET="openapi-check-portal-secret"
check_daemon_start "$TALLY"
curl -fsS "http://127.0.0.1:$PORT/openapi.json" -o "$WORK/openapi.json"

echo "openapi-spec-validator: GET /openapi.json"
"$TOOLS/bin/openapi-spec-validator" "$WORK/openapi.json"

# A few customers with usage, so that reads find something besides 404s.
for customer in cus_1 cus_2 cus_3; do
  curl -fsS -X POST "http://127.0.0.1:$PORT/v1/events" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' \
    -d "[{\"id\":\"seed-$customer\",\"customer\":\"$customer\",\"meter\":\"api_calls\"}]" >/dev/null
done

echo "schemathesis: $EXAMPLES examples per operation against the live daemon"
status=0
"$TOOLS/bin/schemathesis" run "http://127.0.0.1:$PORT/openapi.json" \
  --header "Authorization: Bearer $KEY" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples "$EXAMPLES" \
  --generation-deterministic \
  --request-timeout 10 \
  --suppress-health-check all \
  --no-color || status=$?
if [ "$status" -ne 0 ]; then
  echo "schemathesis found problems (exit $status); the daemon's log:" >&2
  tail -n 50 "$WORK/daemon.log" >&2
  exit "$status"
fi
echo "OpenAPI check passed"
