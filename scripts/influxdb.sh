#!/usr/bin/env bash
# influxdb.sh start|stop|env|kill|restart — a real InfluxDB 1.8 for tests.
#
#   start    build influxd once (go install ...@v1.8.10 into .cache/influxdb/bin),
#            start it on a free loopback port with a temp data dir, wait for
#            /ping, create the database, print the env (KEY=value lines)
#   env      print the env of the running instance
#   kill     SIGKILL influxd, keep its port and data dir (outage tests)
#   restart  start it again on the same port and data dir (after kill)
#   stop     stop influxd and remove its data dir
#
# The state of the running instance is kept in $SURGE_INFLUX_STATE
# (default .cache/influxdb/state), so every subcommand finds it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="${INFLUXD_VERSION:-v1.8.10}"
BIN_DIR="$ROOT/.cache/influxdb/bin"
INFLUXD="$BIN_DIR/influxd"
STATE="${SURGE_INFLUX_STATE:-$ROOT/.cache/influxdb/state}"
DB="${SURGE_INFLUX_DB:-surge}"
GO="${GO:-go}"
NAME=influxdb.sh
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

build() {
  if [[ -x "$INFLUXD" ]] && [[ "$(cat "$BIN_DIR/.version" 2>/dev/null)" == "$VERSION" ]]; then
    return
  fi
  echo "influxdb.sh: building influxd $VERSION (once; takes minutes)" >&2
  mkdir -p "$BIN_DIR"
  GOBIN="$BIN_DIR" GOFLAGS=-buildvcs=false "$GO" install "github.com/influxdata/influxdb/cmd/influxd@$VERSION" >&2 \
    || die "go install influxd@$VERSION failed"
  echo "$VERSION" > "$BIN_DIR/.version"
}

write_config() {
  cat > "$DIR/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$RPC_PORT"
[meta]
  dir = "$DIR/meta"
  logging-enabled = false
[data]
  dir = "$DIR/data"
  wal-dir = "$DIR/wal"
  query-log-enabled = false
  trace-logging-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:$PORT"
  auth-enabled = false
  log-enabled = false
  flux-enabled = true
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
CONF
}

launch() {
  write_config
  "$INFLUXD" run -config "$DIR/influxdb.conf" >>"$DIR/influxd.log" 2>&1 &
  PID=$!
  disown "$PID" 2>/dev/null || true
  cat > "$STATE" <<ST
DIR=$DIR
PORT=$PORT
RPC_PORT=$RPC_PORT
PID=$PID
ST
  wait_http "http://127.0.0.1:$PORT/ping" "$PID" "$DIR/influxd.log" 60
}

print_env() {
  echo "SURGE_INFLUX_URL=http://127.0.0.1:$PORT"
  echo "SURGE_INFLUX_BUCKET=$DB/autogen"
  echo "SURGE_INFLUX_DB=$DB"
  echo "SURGE_INFLUX_PID=$PID"
  echo "SURGE_INFLUX_SCRIPT=$ROOT/scripts/influxdb.sh"
  echo "SURGE_INFLUX_STATE=$STATE"
}

cmd="${1:-}"
case "$cmd" in
  start)
    if [[ -f "$STATE" ]]; then
      # shellcheck disable=SC1090
      source "$STATE"
      if kill -0 "$PID" 2>/dev/null; then print_env; exit 0; fi
      rm -rf "$DIR" "$STATE"
    fi
    build
    mkdir -p "$(dirname "$STATE")"
    DIR="$(mktemp -d "${TMPDIR:-/tmp}/surge-influxdb.XXXXXX")"
    PORT="$(free_port)"
    RPC_PORT="$(free_port)"
    launch
    curl -fsS -o /dev/null -XPOST "http://127.0.0.1:$PORT/query" --data-urlencode "q=CREATE DATABASE \"$DB\"" \
      || die "create database $DB failed"
    print_env
    ;;
  env)
    load_state
    print_env
    ;;
  kill)
    load_state
    kill -KILL "$PID" 2>/dev/null || true
    while kill -0 "$PID" 2>/dev/null; do sleep 0.05; done
    ;;
  restart)
    load_state
    if kill -0 "$PID" 2>/dev/null; then die "influxd $PID is still running"; fi
    launch
    print_env
    ;;
  stop)
    [[ -f "$STATE" ]] || exit 0
    load_state
    stop_pid "$PID"
    case "$DIR" in "${TMPDIR:-/tmp}"/surge-influxdb.*) rm -rf "$DIR" ;; esac
    rm -f "$STATE"
    ;;
  *)
    echo "usage: $0 start|stop|env|kill|restart" >&2
    exit 2
    ;;
esac
