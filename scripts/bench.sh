#!/usr/bin/env bash
# bench.sh — surge's benchmarks: the Go micro-benchmarks of the
# histogram hot paths; the controller side with scripts/fleet (the snapshot
# stream's bytes, a simulated fleet of 500 agents against a real
# controller, and optionally the 10-minute memory soak); then surge side by
# side with wrk, hey and vegeta against one nginx on 127.0.0.1
# (scripts/bench/), pacing, latency fidelity and idle-connection memory.
# Installs its peers itself when missing: wrk, hey and nginx from Debian
# packages (root), vegeta with go install.
#
#   scripts/bench.sh              about ten minutes; writes docs/benchmarks.md
#   scripts/bench.sh --soak 10m   the same and the soak (goal 7): ten more
#                                 minutes; also writes docs/bench-soak.json
#   scripts/bench.sh --soak-only 10m   only the soak: writes
#                                 docs/bench-soak.json, which the next run
#                                 without a soak reports (with its date and
#                                 commit) as goal 7's figure
#   scripts/bench.sh --smoke      about a minute: tiny durations, proves the
#                                 harness runs, prints the goals table
#                                 without verdicts, writes nothing
#
# Knobs (environment): BENCH_CONNS (64), BENCH_DURATION (5s: each
# max-throughput and fidelity run), BENCH_ROUNDS (5: rounds of those, the
# tools' order rotating; medians reported),
# BENCH_PACING_DURATION (30s), BENCH_RATES (1000,10000,50000),
# BENCH_IDLE_VUS (5000), BENCH_HOLD_CONNS (45000: connections three agents
# hold; 0 skips it), BENCH_HOLD (60s), BENCH_FLEET_AGENTS (500),
# BENCH_FLEET_SERIES (20), BENCH_FLEET_DURATION (30s), BENCH_SOAK (empty:
# no soak; e.g. 10m, as --soak).
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0 soak=${BENCH_SOAK:-} soak_only=0
while (($#)); do
  case $1 in
    --smoke) smoke=1 ;;
    --soak | --soak-only)
      [[ $1 == --soak-only ]] && soak_only=1
      [[ -n ${2:-} ]] || { echo "bench: $1 needs a duration (e.g. 10m)" >&2; exit 2; }
      soak=$2
      shift
      ;;
    *) echo "bench: unknown argument $1 (--smoke, --soak D, --soak-only D)" >&2; exit 2 ;;
  esac
  shift
done

VEGETA_VERSION=v12.13.0
HEY_VERSION=v0.1.4 # only when Debian has no hey package
# The tree before the hist/ hot-path changes: the "before" column of the
# micro-benchmarks. Skipped when the commit is not in this clone.
HIST_BASELINE=f9e8675

tools=$PWD/.cache/bin
mkdir -p "$tools"
export PATH=$tools:$PATH

work=$(mktemp -d)
cleanup() {
  # The harness kills what it started; this catches an interrupted harness.
  if [[ -n ${harness_pid:-} ]]; then kill "$harness_pid" 2>/dev/null || true; wait "$harness_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$work/surge" ./cmd/surge
go build -o "$work/fleet" ./scripts/fleet
go build -o "$work/bench" ./scripts/bench

run_harness() {
  "$work/bench" "$@" &
  harness_pid=$!
  wait "$harness_pid"
  harness_pid=
}

# Only the soak (make bench-soak): a controller, an agent and a target.
if ((soak_only)); then
  run_harness -only soak -surge "$work/surge" -fleet "$work/fleet" -soak "$soak"
  exit 0
fi

# --- peers -------------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
command -v taskset >/dev/null || need+=(util-linux)
heydeb=0
if ! command -v hey >/dev/null; then need+=(hey); heydeb=1; fi
if ((${#need[@]})); then
  echo "bench: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if ((heydeb)) && ! apt-cache show hey >/dev/null 2>&1; then
    unset 'need[-1]'
    GOBIN=$tools go install "github.com/rakyll/hey@$HEY_VERSION"
  fi
  if ((${#need[@]})) && ! apt-get install -y -qq "${need[@]}" >/dev/null; then
    # nginx-light is Debian 12's; later releases ship only nginx.
    need=("${need[@]/nginx-light/nginx}")
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi
[[ -x $tools/vegeta ]] || GOBIN=$tools go install "github.com/tsenart/vegeta/v12@$VEGETA_VERSION"
nginx=$(command -v nginx || echo /usr/sbin/nginx)

# --- micro-benchmarks --------------------------------------------------------
benchtime=1s count=3
((smoke)) && benchtime=20x count=1
echo "bench: go test -bench ./hist/"
go test -run '^$' -bench . -benchmem -benchtime "$benchtime" -count "$count" ./hist/ | tee "$work/micro.txt"
grep -q '^Benchmark' "$work/micro.txt" || { echo "bench: no benchmark ran" >&2; exit 1; }

before=()
if ((!smoke)) && git cat-file -e "$HIST_BASELINE^{commit}" 2>/dev/null; then
  echo "bench: go test -bench ./hist/ at $HIST_BASELINE (before)"
  mkdir "$work/before"
  git archive "$HIST_BASELINE" go.mod go.sum gen hist | tar -x -C "$work/before"
  (cd "$work/before" && go test -run '^$' -bench . -benchmem -benchtime "$benchtime" -count "$count" ./hist/) | tee "$work/micro-before.txt"
  before=(-micro-before "$work/micro-before.txt")
fi

# The agent's request path: own HTTP/1.1 client vs net/http (against a
# child-process server; cpu-ns/op is the client's CPU). The executor's
# benchmarks run from the harness, against its nginx.
echo "bench: go test -bench Do ./agent/httpclient/"
go test -run '^$' -bench '^BenchmarkDo$' -benchmem -benchtime "$benchtime" -count "$count" ./agent/httpclient/ | tee "$work/micro-httpclient.txt"
go test -c -o "$work/executor.test" ./agent/executor/

# --- controller side (scripts/fleet), then side by side ----------------------
args=(-surge "$work/surge" -wrk "$(command -v wrk)" -hey "$(command -v hey)" -vegeta "$tools/vegeta" -nginx "$nginx"
  -fleet "$work/fleet" -fleet-agents "${BENCH_FLEET_AGENTS:-500}" -fleet-series "${BENCH_FLEET_SERIES:-20}"
  -fleet-duration "${BENCH_FLEET_DURATION:-30s}" -soak "${soak:-0}"
  -conns "${BENCH_CONNS:-64}" -duration "${BENCH_DURATION:-5s}" -rounds "${BENCH_ROUNDS:-5}"
  -pacing-duration "${BENCH_PACING_DURATION:-30s}" -rates "${BENCH_RATES:-1000,10000,50000}"
  -idle-vus "${BENCH_IDLE_VUS:-5000}" -hold-conns "${BENCH_HOLD_CONNS:-45000}" -hold "${BENCH_HOLD:-60s}"
  -executor-test "$work/executor.test" -micro "$work/micro.txt" -micro-agent "$work/micro-httpclient.txt" "${before[@]}")
((smoke)) && args+=(-smoke)
run_harness "${args[@]}"
