#!/usr/bin/env bash
# bench.sh — surge's benchmarks. Today: the Go micro-benchmarks of the hot
# paths (histogram record, snapshot encode, controller decode+validate+merge),
# with allocations. The side-by-side comparison with wrk, vegeta and hey
# (issue 7) is not built yet.
#
#   scripts/bench.sh           run, and write docs/benchmarks.md
#   scripts/bench.sh --smoke   a few iterations each, to prove the harness runs
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
[[ ${1:-} == --smoke ]] && smoke=1

benchtime=2s
((smoke)) && benchtime=20x

out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench . -benchmem -benchtime "$benchtime" ./hist/ | tee "$out"
grep -q '^Benchmark' "$out" || { echo "bench: no benchmark ran" >&2; exit 1; }

if ((smoke)); then
  echo "bench-smoke: ok"
  exit 0
fi

{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` on $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -m), $(go version | cut -d' ' -f3))."
  echo "These machines are shared and noisy: compare ratios measured in one run, not absolute numbers across runs."
  echo
  echo "## Hot paths (go test -bench)"
  echo
  echo "| benchmark | ns/op | B/op | allocs/op | extra |"
  echo "|---|---:|---:|---:|---|"
  awk '/^Benchmark/ {
    extra = ""
    for (i = 5; i <= NF; i += 2) {
      if ($(i+1) == "B/op") b = $i
      else if ($(i+1) == "allocs/op") a = $i
      else extra = extra $i " " $(i+1) " "
    }
    printf "| %s | %s | %s | %s | %s |\n", $1, $3, b, a, extra
  }' "$out"
  echo
  echo "## Not measured yet"
  echo
  echo "The peer comparison (surge agent vs wrk, vegeta and hey in requests per client"
  echo "CPU-second against one nginx target), pacing precision, latency fidelity and"
  echo "long-connection memory goals of issue 7 are not built yet."
} > docs/benchmarks.md
echo "bench: wrote docs/benchmarks.md"
