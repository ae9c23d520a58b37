# Sourced by the `make test` checks that run against a live daemon (openapi-check.sh,
# metrics-check.sh): a temporary directory, an admin key, a free port, and the daemon's lifecycle.
#   check_daemon_prepare KEY   sets WORK, KEY, DIGEST, PORT and removes WORK (and stops the daemon) at exit
#   check_daemon_start TALLY   starts `TALLY serve` on $WORK/tally.yaml with HTTP on $PORT, waits for /healthz
WORK=
DAEMON=
check_daemon_cleanup() {
  if [ -n "$DAEMON" ]; then kill -TERM "$DAEMON" 2>/dev/null || true; wait "$DAEMON" 2>/dev/null || true; fi
  if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
}

check_daemon_prepare() {
  WORK=$(mktemp -d)
  trap check_daemon_cleanup EXIT
  KEY=$1
  DIGEST=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
}

check_daemon_start() {
  "$1" serve --config "$WORK/tally.yaml" --store "$WORK/data" --socket "$WORK/tally.sock" \
    --http "127.0.0.1:$PORT" >"$WORK/daemon.log" 2>&1 &
  DAEMON=$!
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the daemon did not answer /healthz; its log:" >&2
  tail -n 50 "$WORK/daemon.log" >&2
  return 1
}
