#!/usr/bin/env bash
# The dashboard in a real browser (issue 13), as `make test` runs it: headless Chromium driven by
# Selenium against a live daemon fed with known events (scripts/browser-check.py says what it checks).
# Saves the customer page's screenshots (dashboard-customer.png, dashboard-customer-390.png) in
# SCREENSHOT_DIR: `make test` keeps them in .build/screenshots, `make browser-check` writes the
# README's in docs/.
# Usage: scripts/browser-check.sh [TALLY_BINARY] [PYTHON_TOOLS_DIR] [SCREENSHOT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
TALLY=${1:-.build/debug/tally}
TOOLS=${2:-.build/pytools}
SHOTS=${3:-.build/screenshots}
mkdir -p "$SHOTS"

for tool in chromium chromedriver; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "browser-check: $tool is missing: install Debian's chromium and chromium-driver (make deps does)" >&2
    exit 1
  fi
done
if [ ! -x "$TOOLS/bin/python" ]; then python3 -m venv "$TOOLS"; fi
if ! "$TOOLS/bin/python" -c 'import selenium' 2>/dev/null; then
  echo "installing selenium into $TOOLS"
  "$TOOLS/bin/pip" install -q --disable-pip-version-check "selenium==4.27.1"
fi

# shellcheck source=scripts/check-daemon.sh
. scripts/check-daemon.sh
check_daemon_prepare "browser-check-admin-key"
READ_KEY="browser-check-read-key"
READ_DIGEST=$(printf %s "$READ_KEY" | sha256sum | cut -d' ' -f1)
# The example config without its http section, a second plan, and keys for the check.
sed -e '/^# The HTTP API and the dashboard/,$d' -e 's/^  interval: .*/  interval: 0/' config/tally.yaml \
  | sed '/^default_plan:/i\  - code: pro\n    currency: EUR\n    prices:\n      - { meter: api_calls, model: per_unit, unit_amount: "0.01" }' >"$WORK/tally.yaml"
cat >>"$WORK/tally.yaml" <<YAML
http:
  api_keys:
    - { name: operator, sha256: "$DIGEST", scopes: [admin] }
    - { name: viewer, sha256: "$READ_DIGEST", scopes: [read] }
  portal_secret_env: TALLY_BROWSER_CHECK_PORTAL_SECRET
YAML
export TALLY_BROWSER_CHECK_PORTAL_SECRET="browser-check-portal-secret"
"$TALLY" check-config "$WORK/tally.yaml" >/dev/null
check_daemon_start "$TALLY"

if ! "$TOOLS/bin/python" scripts/browser-check.py --tally "$TALLY" --work "$WORK" --port "$PORT" \
    --admin-key "$KEY" --read-key "$READ_KEY" --screenshots "$SHOTS"; then
  echo "browser-check failed; the daemon's log:" >&2
  tail -n 40 "$WORK/daemon.log" >&2
  exit 1
fi
