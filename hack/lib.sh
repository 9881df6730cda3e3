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
# CI runs on a machine that must stay clean for the next run. It fails when
# the teardown failed or left mounts, processes or cgroups behind.
e2e_down() {
	local rc=0
	"$EA_ROOT/hack/cluster.sh" down --instance e2e || rc=1
	local mounts procs cgroups
	mounts=$(awk '$5 ~ "^/(var/lib|run)/ephemeral-agent/e2e/" {print $5}' /proc/self/mountinfo)
	procs=$(pgrep -af -- "/ephemeral-agent/e2e/" | grep -v pgrep || true)
	cgroups=$(ls -d /sys/fs/cgroup/ea-e2e /sys/fs/cgroup/*/ea-e2e 2>/dev/null || true)
	if [[ -n $mounts || -n $procs || -n $cgroups ]]; then
		log "ERROR: the e2e environment left mounts, processes or cgroups behind:"
		printf '%s\n' $mounts "$procs" $cgroups >&2
		rc=1
	fi
	return "$rc"
}
