#!/usr/bin/env bash
# regions.sh — surge's multi-region test network, made of Linux network
# namespaces (run as root):
#
#   surge-br            holds the bridge br0 that joins the others
#   surge-ctl           10.77.0.1   the controller
#   surge-target        10.77.0.2   the target
#   surge-<region>      10.77.0.11, .12, ...   one per region, its agents
#
# Each of ctl, target and the regions has eth0, one end of a veth pair whose
# other end (vb-<name>) is a port of br0 in surge-br. Nothing touches the
# root namespace's interfaces or routes, and the 10.77.0.0/24 network exists
# only inside these namespaces: traffic never leaves them.
#
# Usage:
#   regions.sh up [REGION...]     make the network (default: us-east eu-west)
#   regions.sh down               remove every surge-* namespace
#   regions.sh cut REGION         cut REGION off (its bridge port goes down)
#   regions.sh heal REGION        reconnect it
#   regions.sh exec NS CMD...     run CMD in surge-NS (NS: ctl, target, br
#                                 or a region; the surge- prefix is optional)
#   regions.sh addr NS            print NS's address
#   regions.sh list               list the namespaces and their addresses
set -euo pipefail

PREFIX=surge-
BR_NS=${PREFIX}br
NET=10.77.0

die() { echo "regions.sh: $*" >&2; exit 1; }

need_root() {
	[[ $(id -u) == 0 ]] || die "must run as root (network namespaces)"
	command -v ip >/dev/null || die "the ip command (iproute2) is missing"
}

ns_name() { [[ $1 == "$PREFIX"* ]] && echo "$1" || echo "$PREFIX$1"; }

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

# The addresses are stored in the namespaces themselves (eth0), so every
# command after up reads them back from there.
addr_of() {
	local ns
	ns=$(ns_name "$1")
	ns_exists "$ns" || die "no namespace $ns (run regions.sh up)"
	ip -n "$ns" -4 -o addr show dev eth0 | awk '{split($4, a, "/"); print a[1]}'
}

# attach NAME ADDR: make surge-NAME with eth0 at ADDR on the bridge.
attach() {
	local name=$1 addr=$2 ns port
	ns=$(ns_name "$name")
	port="vb-${name}"
	((${#port} <= 15)) || die "name $name is too long (at most 12 characters)"
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip -n "$BR_NS" link add "$port" type veth peer name eth0 netns "$ns"
	ip -n "$BR_NS" link set "$port" master br0 up
	ip -n "$ns" addr add "$addr/24" dev eth0
	ip -n "$ns" link set eth0 up
}

up() {
	local regions=("$@") i=11
	((${#regions[@]})) || regions=(us-east eu-west)
	ns_exists "$BR_NS" && die "already up (run regions.sh down first)"
	for r in "${regions[@]}"; do
		[[ $r =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "region $r: use lowercase letters, digits and -"
		[[ $r != ctl && $r != target && $r != br ]] || die "region $r: the name is taken"
	done
	trap 'echo "regions.sh: up failed; cleaning up" >&2; down' ERR
	ip netns add "$BR_NS"
	ip -n "$BR_NS" link set lo up
	ip -n "$BR_NS" link add br0 type bridge
	ip -n "$BR_NS" link set br0 up
	attach ctl "$NET.1"
	attach target "$NET.2"
	for r in "${regions[@]}"; do
		attach "$r" "$NET.$i"
		i=$((i + 1))
	done
	trap - ERR
	list
}

down() {
	local ns
	for ns in $(ip netns list | awk '{print $1}' | grep "^$PREFIX" || true); do
		# Processes left in a namespace keep its interfaces alive: end them.
		for pid in $(ip netns pids "$ns" 2>/dev/null || true); do
			kill -TERM "$pid" 2>/dev/null || true
		done
		ip netns del "$ns" 2>/dev/null || true
	done
}

port_of() {
	local name=${1#"$PREFIX"}
	[[ $name != ctl && $name != target && $name != br ]] || die "$name is not a region"
	ns_exists "$(ns_name "$name")" || die "no region $name"
	echo "vb-$name"
}

list() {
	local ns
	for ns in $(ip netns list | awk '{print $1}' | grep "^$PREFIX" | sort); do
		[[ $ns == "$BR_NS" ]] && continue
		printf '%-20s %s\n' "$ns" "$(addr_of "$ns")"
	done
}

need_root
cmd=${1:-}
shift || true
case $cmd in
up) up "$@" ;;
down) down ;;
cut) (($# == 1)) || die "usage: cut REGION"; ip -n "$BR_NS" link set "$(port_of "$1")" down ;;
heal) (($# == 1)) || die "usage: heal REGION"; ip -n "$BR_NS" link set "$(port_of "$1")" up ;;
exec)
	(($# >= 2)) || die "usage: exec NS CMD..."
	ns=$(ns_name "$1")
	shift
	ns_exists "$ns" || die "no namespace $ns"
	exec ip netns exec "$ns" "$@"
	;;
addr) (($# == 1)) || die "usage: addr NS"; addr_of "$1" ;;
list) list ;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
