#!/usr/bin/env bash
# prometheus.sh start|stop|env|kill|restart|scrape — a real Prometheus for tests.
#
#   start    build prometheus and promtool once (go install ...@v0.316.0, i.e.
#            Prometheus 3.16, into .cache/prometheus/bin), start prometheus on
#            a free loopback port with a temp data dir, the remote-write
#            receiver on and an out-of-order window of 1h (for backfill after
#            an outage), scraping SURGE_PROM_SCRAPE (host:port list) when set;
#            wait until it is ready; print the env (KEY=value lines)
#   scrape HOST:PORT[,HOST:PORT]
#            scrape these targets from now on (the config rewritten and
#            reloaded), e.g. a `surge target --metrics` playing production
#   env      print the env of the running instance
#   kill     SIGKILL prometheus, keep its port and data dir (outage tests)
#   restart  start it again on the same port and data dir (after kill)
#   stop     stop prometheus and remove its data dir
#
# The state of the running instance is kept in $SURGE_PROM_STATE (default
# .cache/prometheus/state), so every subcommand finds it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
BIN_DIR="$ROOT/.cache/prometheus/bin"
STATE="${SURGE_PROM_STATE:-$ROOT/.cache/prometheus/state}"
GO="${GO:-go}"
NAME=prometheus.sh
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

build() {
  if [[ -x "$BIN_DIR/prometheus" && -x "$BIN_DIR/promtool" ]] && [[ "$(cat "$BIN_DIR/.version" 2>/dev/null)" == "$VERSION" ]]; then
    return
  fi
  echo "prometheus.sh: building prometheus and promtool $VERSION (once; takes minutes)" >&2
  mkdir -p "$BIN_DIR"
  GOBIN="$BIN_DIR" GOFLAGS=-buildvcs=false "$GO" install \
    "github.com/prometheus/prometheus/cmd/prometheus@$VERSION" "github.com/prometheus/prometheus/cmd/promtool@$VERSION" >&2 \
    || die "go install prometheus@$VERSION failed"
  echo "$VERSION" > "$BIN_DIR/.version"
}

write_config() {
  {
    echo "global:"
    echo "  scrape_interval: 1s"
    echo "  evaluation_interval: 1s"
    echo "storage:"
    echo "  tsdb:"
    echo "    out_of_order_time_window: 1h"
    if [[ -n "${SCRAPE:-}" ]]; then
      echo "scrape_configs:"
      echo "  - job_name: surge-target"
      echo "    static_configs:"
      echo "      - targets: [$(sed 's/[^,][^,]*/"&"/g' <<<"$SCRAPE")]"
    fi
  } > "$DIR/prometheus.yml"
}

launch() {
  write_config
  "$BIN_DIR/prometheus" --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/data" \
    --web.listen-address="127.0.0.1:$PORT" --web.enable-remote-write-receiver \
    --web.enable-lifecycle --log.level=warn >>"$DIR/prometheus.log" 2>&1 &
  PID=$!
  disown "$PID" 2>/dev/null || true
  cat > "$STATE" <<ST
DIR=$DIR
PORT=$PORT
PID=$PID
SCRAPE=${SCRAPE:-}
ST
  wait_http "http://127.0.0.1:$PORT/-/ready" "$PID" "$DIR/prometheus.log" 60
}

print_env() {
  echo "SURGE_PROM_URL=http://127.0.0.1:$PORT"
  echo "SURGE_PROM_WRITE_URL=http://127.0.0.1:$PORT/api/v1/write"
  echo "SURGE_PROM_PID=$PID"
  echo "SURGE_PROMTOOL=$BIN_DIR/promtool"
  echo "SURGE_PROM_SCRIPT=$ROOT/scripts/prometheus.sh"
  echo "SURGE_PROM_STATE=$STATE"
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
    DIR="$(mktemp -d "${TMPDIR:-/tmp}/surge-prometheus.XXXXXX")"
    PORT="$(free_port)"
    SCRAPE="${SURGE_PROM_SCRAPE:-}"
    launch
    print_env
    ;;
  env)
    load_state
    print_env
    ;;
  scrape)
    load_state
    SCRAPE="${2:?usage: $0 scrape HOST:PORT[,HOST:PORT]}"
    write_config
    sed -i "s/^SCRAPE=.*/SCRAPE=$SCRAPE/" "$STATE"
    curl -fsS -o /dev/null -XPOST "http://127.0.0.1:$PORT/-/reload" || die "reload failed (see $DIR/prometheus.log)"
    ;;
  kill)
    load_state
    kill -KILL "$PID" 2>/dev/null || true
    while kill -0 "$PID" 2>/dev/null; do sleep 0.05; done
    ;;
  restart)
    load_state
    if kill -0 "$PID" 2>/dev/null; then die "prometheus $PID is still running"; fi
    launch
    print_env
    ;;
  stop)
    [[ -f "$STATE" ]] || exit 0
    load_state
    stop_pid "$PID"
    case "$DIR" in "${TMPDIR:-/tmp}"/surge-prometheus.*) rm -rf "$DIR" ;; esac
    rm -f "$STATE"
    ;;
  *)
    echo "usage: $0 start|stop|env|kill|restart|scrape HOST:PORT" >&2
    exit 2
    ;;
esac
