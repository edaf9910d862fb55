# lib.sh — shell helpers shared by the scripts that start a service for the
# tests (influxdb.sh, prometheus.sh, toxiproxy.sh). Source it after setting NAME (the
# script's name, for messages) and STATE (the file holding the running
# instance's variables).

die() { echo "$NAME: $*" >&2; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints a loopback TCP port nothing listens on, below the
# kernel's ephemeral range (an outbound connection took a port picked in
# it between the check and the server's bind: toxiproxy failed so in CI).
free_port() {
  local p lo=32768
  [[ -r /proc/sys/net/ipv4/ip_local_port_range ]] && read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
  ((lo > 11000)) || lo=32768
  for _ in $(seq 1 200); do
    p=$((10000 + RANDOM % (lo - 10000)))
    if port_free "$p"; then echo "$p"; return; fi
  done
  die "no free loopback port"
}

load_state() {
  [[ -f "$STATE" ]] || die "not running (no $STATE): run start first"
  # shellcheck disable=SC1090
  source "$STATE"
}

# wait_http URL PID LOG SECONDS: wait until URL answers, failing when the
# process PID exits first or SECONDS pass (showing the end of LOG).
wait_http() {
  local url=$1 pid=$2 log=$3 deadline=$((SECONDS + $4))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { tail -20 "$log" >&2; die "process $pid exited"; }
    ((SECONDS < deadline)) || { tail -20 "$log" >&2; die "$url did not answer within $4s"; }
    sleep 0.1
  done
}

# stop_pid PID: SIGTERM, up to 10 s to exit, then SIGKILL.
stop_pid() {
  kill -0 "$1" 2>/dev/null || return 0
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}
