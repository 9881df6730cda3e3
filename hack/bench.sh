#!/usr/bin/env bash
# Runs the benchmark (make bench): on a fresh "bench" environment, the raw CRI
# floor with no node agent, then the same workloads against our agent and
# against the upstream kubelet, one after the other on the same containerd;
# tears the environment down, then prints ephemeral-bench's report (a table,
# and one JSON line last).
#
# BENCH_ONLY=floor,ours,kubelet (any of them, comma-separated) runs only those
# parts; the report then takes the other parts' figures from an earlier run's
# _output/bench/*.json when there are any. BENCH_ARGS adds flags to every
# measuring ephemeral-bench command (floor and node).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$EA_ROOT"

bench=$EA_BIN/ephemeral-bench
out=$EA_OUTPUT/bench
only=${BENCH_ONLY:-floor,ours,kubelet}
read -r -a extra <<<"${BENCH_ARGS:-}"

[[ -x $bench ]] || die "no $bench: run make bench-binary (make bench builds it)"
[[ -x $EA_BIN/kubelet ]] || die "no $EA_BIN/kubelet: run hack/build-k8s.sh kubelet"
for part in ${only//,/ }; do
	case $part in floor | ours | kubelet) ;; *) die "BENCH_ONLY: unknown part $part (floor, ours or kubelet)" ;; esac
done
wanted() { [[ ,$only, == *,$1,* ]]; }

# Whatever happens, the environment goes down and is proved gone; a run
# killed by a signal goes the same way.
down_done=false
teardown() {
	$down_done && return 0
	down_done=true
	instance_down bench
}
trap 'rc=$?; teardown || rc=1; exit $rc' EXIT
trap 'exit 130' INT TERM

# measure_node AGENT NAME: starts that node agent, runs the node workloads
# against it, stops it (which empties the runtime for the next one).
measure_node() {
	local which=$1 name=$2 line node pid
	line=$(hack/bench-node.sh start "$which")
	[[ $line =~ ^NODE=([^ ]+)\ PID=([0-9]+)$ ]] || die "bench-node.sh start $which printed \"$line\""
	node=${BASH_REMATCH[1]} pid=${BASH_REMATCH[2]}
	log "benchmarking $name: node $node, pid $pid"
	rm -f "$out/$name.json"
	"$bench" node --kubeconfig "$KUBECONFIG" --node "$node" --pid "$pid" --name "$name" \
		--out "$out/$name.json" "${extra[@]}"
	hack/bench-node.sh stop "$which"
}

mkdir -p "$out"
log "bench environment (the local one, if up, keeps running beside it)"
hack/cluster.sh up --instance bench --fresh --no-agent
source "$out/env"
# Pods are refused until the controller manager made the default ServiceAccount.
for _ in $(seq 1 300); do
	kubectl get serviceaccount default >/dev/null 2>&1 && break
	sleep 0.2
done
kubectl get serviceaccount default >/dev/null || die "no default ServiceAccount in the bench environment"

if wanted floor; then
	# No node agent runs: the kubelet would remove sandboxes it does not own.
	log "floor: raw CRI on the runtime, no node agent"
	rm -f "$out/floor.json"
	# Its sandboxes go below the instance's cgroup root, as the agents' pods
	# do, and not to the runtime's default parent, outside what down removes.
	"$bench" floor --cri-endpoint "$CONTAINER_RUNTIME_ENDPOINT" --image localhost/busybox:test \
		--cgroup-parent "$EA_CGROUP_ROOT/floor" --out "$out/floor.json" "${extra[@]}"
fi
if wanted ours; then measure_node agent ours; fi
if wanted kubelet; then measure_node kubelet kubelet; fi

trap - EXIT INT TERM
teardown || die "the bench environment was not torn down cleanly"

report=()
for part in ours kubelet floor; do
	if [[ -f $out/$part.json ]]; then
		wanted "$part" || log "report: $part from an earlier run ($(date -r "$out/$part.json" '+%F %T'))"
		report+=("--$part" "$out/$part.json")
	fi
done
"$bench" report "${report[@]}"
