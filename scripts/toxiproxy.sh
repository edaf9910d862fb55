#!/usr/bin/env bash
# toxiproxy.sh start|stop|env — a real toxiproxy server for the system tests.
#
#   start  build toxiproxy-server once (go install
#          github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION,
#          outside the module: go.mod is not touched) into .cache/bin, start
#          it on a free loopback port, wait for its API, print the env
#          (KEY=value lines). Idempotent: a running instance is reused.
#   env    print the env of the running instance
#   stop   stop it (nothing to do when it is not running)
#
# Tests create their proxies and toxics through its HTTP API
# (SURGE_TOXIPROXY_URL) and delete them when they end.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="${TOXIPROXY_VERSION:-v2.12.0}"
BIN_DIR="$ROOT/.cache/bin"
SERVER="$BIN_DIR/toxiproxy-server"
DIR="$ROOT/.cache/toxiproxy"
STATE="$DIR/state"
GO="${GO:-go}"
NAME=toxiproxy.sh
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

build() {
  if [[ -x "$SERVER" ]] && [[ "$(cat "$DIR/version" 2>/dev/null)" == "$VERSION" ]]; then
    return
  fi
  echo "toxiproxy.sh: building toxiproxy-server $VERSION (once)" >&2
  mkdir -p "$BIN_DIR" "$DIR"
  local tmp
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/surge-toxiproxy-build.XXXXXX")"
  # `go install pkg@version` builds in module-aware mode apart from the
  # current module; the command's binary is named after its directory.
  (cd "$tmp" && GOBIN="$tmp" GOFLAGS=-buildvcs=false "$GO" install "github.com/Shopify/toxiproxy/v2/cmd/server@$VERSION") >&2 \
    || { rm -rf "$tmp"; die "go install github.com/Shopify/toxiproxy/v2/cmd/server@$VERSION failed"; }
  mv "$tmp/server" "$SERVER"
  rm -rf "$tmp"
  echo "$VERSION" > "$DIR/version"
}

print_env() {
  echo "SURGE_TOXIPROXY_URL=http://127.0.0.1:$PORT"
  echo "SURGE_TOXIPROXY_PID=$PID"
}

cmd="${1:-}"
case "$cmd" in
  start)
    if [[ -f "$STATE" ]]; then
      # shellcheck disable=SC1090
      source "$STATE"
      if kill -0 "$PID" 2>/dev/null && curl -fsS -o /dev/null "http://127.0.0.1:$PORT/version" 2>/dev/null; then
        print_env
        exit 0
      fi
      rm -f "$STATE"
    fi
    build
    mkdir -p "$DIR"
    PORT="$(free_port)"
    "$SERVER" -host 127.0.0.1 -port "$PORT" >"$DIR/server.log" 2>&1 &
    PID=$!
    disown "$PID" 2>/dev/null || true
    printf 'PORT=%s\nPID=%s\n' "$PORT" "$PID" > "$STATE"
    wait_http "http://127.0.0.1:$PORT/version" "$PID" "$DIR/server.log" 30
    print_env
    ;;
  env)
    load_state
    print_env
    ;;
  stop)
    [[ -f "$STATE" ]] || exit 0
    load_state
    stop_pid "$PID"
    rm -f "$STATE"
    ;;
  *)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
