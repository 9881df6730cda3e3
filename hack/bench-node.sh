#!/usr/bin/env bash
# Starts or stops the node agent of the "bench" environment (hack/cluster.sh
# up --instance bench --no-agent): ours or the upstream kubelet, one at a
# time, on the same containerd.
#
# Usage: hack/bench-node.sh start|stop agent|kubelet
#   start agent     ephemeral-agent as node ea-bench-agent (--max-pods 300)
#   start kubelet   the upstream kubelet as node ea-bench-kubelet, in the
#                   instance's network namespace
#   Both wait for the Node to be Ready, write the agent's pid to
#   /run/ephemeral-agent/bench/node.pid and print "NODE=<name> PID=<pid>".
#   stop agent|kubelet
#                   stops that agent, force-deletes its pods and its Node,
#                   then removes every CRI pod sandbox, its mounts and pod
#                   cgroups, so the next agent starts on an empty runtime.
#                   Idempotent.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cmd=${1:-} which=${2:-}
case $which in
agent) component=ephemeral-agent node=ea-bench-agent ;;
kubelet) component=kubelet node=ea-bench-kubelet ;;
*) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

RUN=/run/ephemeral-agent/bench
CERTS=/var/lib/ephemeral-agent/bench/pki
cluster() { "$EA_ROOT/hack/cluster.sh" "$@" --instance bench; }
kubectl() { "$EA_BIN/kubectl" --kubeconfig "$CERTS/admin.kubeconfig" "$@"; }

# gone PID: the process has exited. A killed daemon nobody reaps lingers as
# a zombie, which kill -0 still finds.
gone() {
	local state
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
	[[ $state == Z ]]
}

start() {
	[[ -f $CERTS/admin.kubeconfig ]] || die "the bench environment is not up: hack/cluster.sh up --instance bench --no-agent"
	local other=ephemeral-agent
	[[ $component == ephemeral-agent ]] && other=kubelet
	if [[ -f $RUN/$other.pid ]] && ! gone "$(cat "$RUN/$other.pid")"; then
		die "$other runs on this runtime: hack/bench-node.sh stop first (one node agent at a time)"
	fi
	cluster start "$component"
	local pid
	pid=$(cat "$RUN/$component.pid")
	# The benchmark reads RSS and CPU of this pid from /proc: it must be the
	# agent itself, not a wrapper.
	[[ $(readlink "/proc/$pid/exe") == */$component ]] ||
		die "pid $pid runs $(readlink "/proc/$pid/exe"), not $component"
	echo "$pid" >"$RUN/node.pid"
	echo "NODE=$node PID=$pid"
}

stop() {
	local pid=""
	pid=$(cat "$RUN/$component.pid" 2>/dev/null) || true
	cluster stop "$component"
	if [[ -n $pid ]]; then
		for _ in $(seq 1 100); do gone "$pid" && break; sleep 0.1; done
		gone "$pid" || die "$component (pid $pid) did not exit"
	fi
	rm -f "$RUN/node.pid"
	# Without the agent nothing finishes a graceful deletion: force it.
	if [[ -f $CERTS/admin.kubeconfig ]] && kubectl get --raw /readyz >/dev/null 2>&1; then
		log "deleting the pods bound to $node and the Node"
		kubectl delete pods --all-namespaces --field-selector "spec.nodeName=$node" \
			--grace-period 0 --force --wait=false >/dev/null 2>&1 || true
		local left
		for _ in $(seq 1 150); do
			left=$(kubectl get pods --all-namespaces --field-selector "spec.nodeName=$node" -o name 2>/dev/null | wc -l)
			((left == 0)) && break
			sleep 0.2
		done
		((left == 0)) || die "$left pod(s) bound to $node are still in the API"
		kubectl delete node "$node" --ignore-not-found --wait=true >/dev/null
	else
		log "WARNING: the bench API server does not answer: pods and Node of $node left in the API"
	fi
	if [[ -f /var/lib/ephemeral-agent/bench/containerd/config.toml ]] &&
		pgrep -f -- "containerd --config /var/lib/ephemeral-agent/bench/containerd/config.toml" >/dev/null; then
		cluster reset-runtime
	fi
}

case $cmd in
start) start ;;
stop) stop ;;
*) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
