#!/usr/bin/env bash
# validate.sh — the daily staging validation: run a plan against staging,
# compare the run with production, fail on drift. staging-validation.yml
# calls it; it runs anywhere the surge CLI reaches a controller, and
# cmd/surge/e2e's TestCIValidateScript runs it against a local cluster.
#
# Environment:
#   SURGE_CONTROLLER (and SURGE_TOKEN, SURGE_TLS_CA/CERT/KEY)  the controller
#   PLAN                 the plan file (required)
#   BASE_URL             staging's base URL, if the plan's paths need one
#   COMMIT               tagged on the run (commit=...)
#   BASELINE_PROMETHEUS  production's Prometheus: compare against its figures
#                        over BASELINE_RANGE (1h); else judge against the
#                        newest run tagged environment=production
#   ALLOWED_INCREASE     the judge's allowed latency increase (0.05)
#   OUT                  where the reports go (surge-reports)
#   SURGE                the surge binary (surge)
#
# Exit: 0 staging matches production; 1 drift (or the run failed); 3 the
# judge is marginal; 99 the plan's thresholds failed.
set -euo pipefail
surge=${SURGE:-surge}
out=${OUT:-surge-reports}
plan=${PLAN:?set PLAN to the plan file}
mkdir -p "$out"

args=(run "$plan" -q --tag environment=staging --tag "commit=${COMMIT:-unknown}"
  --json "$out/summary.json" --junit "$out/run.xml")
[[ -n ${BASE_URL:-} ]] && args+=(--base-url "$BASE_URL")
status=0
"$surge" "${args[@]}" > "$out/run.txt" || status=$?
cat "$out/run.txt"
if ((status != 0)); then
  echo "validate: the staging run failed (exit $status)" >&2
  exit "$status"
fi

status=0
if [[ -n ${BASELINE_PROMETHEUS:-} ]]; then
  "$surge" compare latest:environment=staging --baseline-prometheus "$BASELINE_PROMETHEUS" \
    --last "${BASELINE_RANGE:-1h}" --junit "$out/compare.xml" > "$out/compare.txt" || status=$?
else
  "$surge" compare latest:environment=production latest:environment=staging --judge \
    --allowed-increase "${ALLOWED_INCREASE:-0.05}" --junit "$out/compare.xml" > "$out/compare.txt" || status=$?
fi
cat "$out/compare.txt"
case $status in
  0) echo "validate: staging matches production" ;;
  3) echo "validate: the judge is marginal" >&2 ;;
  *) echo "validate: staging drifted from production (exit $status)" >&2 ;;
esac
exit "$status"
