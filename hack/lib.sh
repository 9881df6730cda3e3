#!/usr/bin/env bash
# Shared settings for the hack/ scripts. Sourced, never run.

EA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EA_OUTPUT="$EA_ROOT/_output"
EA_BIN="$EA_OUTPUT/bin"
# The cache outlives a clone: CI builds in a fresh clone on a machine that
# may already hold the control plane built by an earlier run.
EA_CACHE_DIR=${EA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ephemeral-agent}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# go_tool NAME PACKAGE VERSION: the Go command PACKAGE@VERSION (its binary
# called NAME), built with go install from the Go module proxy into
# $EA_CACHE_DIR/NAME-VERSION/ once (the cache outlives a clone), and linked
# into _output/bin. The build is skipped when the binary is already there.
go_tool() {
	local name=$1 pkg=$2 version=$3
	local dir="$EA_CACHE_DIR/$name-$version"
	if [[ ! -x $dir/$name ]]; then
		log "building $name $version into $dir"
		# go install PKG@VERSION ignores the module of the working directory:
		# neither go.mod nor go.sum is touched.
		GOBIN="$dir" GOWORK=off go install "$pkg@$version" || die "go install $pkg@$version failed"
		[[ -x $dir/$name ]] || die "go install $pkg@$version made no $dir/$name"
	fi
	mkdir -p "$EA_BIN"
	ln -sf "$dir/$name" "$EA_BIN/$name"
}

# e2e_down tears the "e2e" environment down, then proves nothing is left:
# CI runs on a machine that must stay clean for the next run.
e2e_down() { instance_down e2e; }

# instance_down INSTANCE tears that environment down, then proves nothing is
# left. It fails when the teardown failed or left mounts, processes, cgroups
# or (bench) the network namespace behind.
instance_down() {
	local instance=$1 rc=0
	"$EA_ROOT/hack/cluster.sh" down --instance "$instance" || rc=1
	local mounts procs cgroups links=""
	mounts=$(awk -v re="^/(var/lib|run)/ephemeral-agent/$instance/" '$5 ~ re {print $5}' /proc/self/mountinfo)
	procs=$(pgrep -af -- "/ephemeral-agent/$instance/" | grep -v pgrep || true)
	cgroups=$(ls -d "/sys/fs/cgroup/ea-$instance" /sys/fs/cgroup/*/"ea-$instance" 2>/dev/null || true)
	if [[ $instance == bench ]]; then
		links=$( (ip netns list | grep -w ea-bench; ip -br link show | grep -E '^(ea-bench-|eabr-bench)') 2>/dev/null || true)
	fi
	if [[ -n $mounts || -n $procs || -n $cgroups || -n $links ]]; then
		log "ERROR: the $instance environment left mounts, processes, cgroups or links behind:"
		printf '%s\n' $mounts "$procs" $cgroups "$links" >&2
		rc=1
	fi
	return "$rc"
}
