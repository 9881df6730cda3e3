#!/usr/bin/env bash
# A throwaway local image registry (Debian's docker-registry, distribution 2.8)
# so that tests can do real image pulls on a machine without network.
#
#   hack/registry.sh start DIR PORT        serve 127.0.0.1:PORT, data in DIR/data
#   hack/registry.sh stop DIR              stop the registry started with DIR
#   hack/registry.sh push SOCK PORT IMAGE...
#
# start runs the registry in the background (its own session, so it outlives
# the caller) with DIR/registry.pid, DIR/registry.port, DIR/config.yml and
# DIR/registry.log, and returns once it answers GET /v2/. It is idempotent: a
# registry already running from DIR on the same PORT is left as it is; one on
# another PORT is an error.
#
# stop is idempotent too (nothing running is not an error); the data stays in
# DIR/data for the next start.
#
# push copies images from a containerd (SOCK: its socket path, with or without
# unix://) into the registry: each IMAGE already in the runtime's k8s.io
# namespace, e.g. localhost/busybox:test, goes to 127.0.0.1:PORT/busybox:test
# (a leading "localhost/" is dropped, other names keep their path; no tag means
# :latest). The temporary 127.0.0.1:PORT/... tag is removed from the runtime
# again, so an IfNotPresent pull of that name really pulls. containerd 1.6's
# CRI pulls from localhost:PORT and 127.0.0.1:PORT over plain HTTP with no
# extra configuration.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

registry_answers() { # PORT
	curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/v2/" 2>/dev/null
}

# registry_pid DIR: the pid from DIR/registry.pid if that process is still the
# registry serving DIR's config, else nothing.
registry_pid() {
	local dir=$1 pid
	[[ -f "$dir/registry.pid" ]] || return 0
	pid=$(<"$dir/registry.pid")
	[[ "$pid" =~ ^[0-9]+$ ]] || return 0
	if [[ -r "/proc/$pid/cmdline" ]] &&
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$dir/config.yml"; then
		echo "$pid"
	fi
}

cmd_start() {
	[[ $# -eq 2 ]] || usage
	local dir=$1 port=$2 pid
	[[ "$port" =~ ^[0-9]+$ ]] || die "registry: bad port '$port'"
	command -v docker-registry >/dev/null ||
		die "registry: docker-registry not found (apt-get install docker-registry)"
	mkdir -p "$dir/data"
	dir=$(cd "$dir" && pwd)

	pid=$(registry_pid "$dir")
	if [[ -n "$pid" ]]; then
		local running_port
		running_port=$(cat "$dir/registry.port" 2>/dev/null || true)
		[[ "$running_port" == "$port" ]] ||
			die "registry: $dir already serves port ${running_port:-?} (pid $pid), not $port"
	else
		if registry_answers "$port"; then
			die "registry: something else already answers on 127.0.0.1:$port"
		fi
		cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
EOF
		echo "$port" >"$dir/registry.port"
		# Like start_bg in cluster.sh: no inherited descriptors, so a caller's
		# flock(1) lock does not outlive the caller in the registry.
		# Not a process group leader here, so setsid execs in place and $! is
		# the registry itself.
		setsid docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
		pid=$!
		echo "$pid" >"$dir/registry.pid"
	fi

	local i
	for ((i = 0; i < 100; i++)); do
		registry_answers "$port" && { log "registry: 127.0.0.1:$port up (pid $pid, $dir)"; return 0; }
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 20 "$dir/registry.log" >&2 || true
	die "registry: 127.0.0.1:$port did not answer /v2/ (see $dir/registry.log)"
}

cmd_stop() {
	[[ $# -eq 1 ]] || usage
	local dir=$1 pid i
	[[ -d "$dir" ]] || return 0
	dir=$(cd "$dir" && pwd)
	pid=$(registry_pid "$dir")
	if [[ -n "$pid" ]]; then
		kill "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
		log "registry: stopped pid $pid ($dir)"
	fi
	rm -f "$dir/registry.pid" "$dir/registry.port"
}

cmd_push() {
	[[ $# -ge 3 ]] || usage
	local sock=${1#unix://} port=$2 image name target
	shift 2
	[[ -S "$sock" ]] || die "registry: no containerd socket at $sock"
	registry_answers "$port" || die "registry: nothing answers on 127.0.0.1:$port"
	local ctr=(ctr -n k8s.io --address "$sock")
	for image in "$@"; do
		name=${image#localhost/}
		[[ "${name##*/}" == *:* ]] || name+=":latest"
		target="127.0.0.1:$port/$name"
		"${ctr[@]}" images tag --force "$image" "$target" >/dev/null ||
			die "registry: cannot tag $image (is it imported in the k8s.io namespace?)"
		if ! "${ctr[@]}" images push --plain-http "$target" >/dev/null; then
			"${ctr[@]}" images rm "$target" >/dev/null 2>&1 || true
			die "registry: push of $target failed"
		fi
		"${ctr[@]}" images rm "$target" >/dev/null 2>&1 || true
		log "registry: pushed $image as $target"
	done
}

[[ $# -ge 1 ]] || usage
sub=$1
shift
case "$sub" in
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
push) cmd_push "$@" ;;
*) usage ;;
esac
