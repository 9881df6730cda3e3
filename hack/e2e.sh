#!/usr/bin/env bash
# Runs the end-to-end suite: a fresh "e2e" environment (no agent: the tests
# start the agent binary themselves), the CRI conformance preflight, then the
# Go tests in test/e2e_node. The environment is torn down whatever happens.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$EA_ROOT"

# Tear down whatever happens, then prove nothing is left: CI runs on a
# machine that must stay clean for the next run.
teardown() {
	local rc=$?
	hack/cluster.sh down --instance e2e || rc=1
	local mounts procs cgroups
	mounts=$(awk '$5 ~ "^/(var/lib|run)/ephemeral-agent/e2e/" {print $5}' /proc/self/mountinfo)
	procs=$(pgrep -af -- "/ephemeral-agent/e2e/" | grep -v pgrep || true)
	cgroups=$(ls -d /sys/fs/cgroup/ea-e2e /sys/fs/cgroup/*/ea-e2e 2>/dev/null || true)
	if [[ -n $mounts || -n $procs || -n $cgroups ]]; then
		log "ERROR: the e2e environment left mounts, processes or cgroups behind:"
		printf '%s\n' $mounts "$procs" $cgroups >&2
		rc=1
	fi
	exit "$rc"
}
trap teardown EXIT
hack/cluster.sh up --instance e2e --fresh --no-agent
source "$EA_OUTPUT/e2e/env"

log "CRI conformance preflight (critest)"
if ! hack/critest.sh --runtime-endpoint "$CONTAINER_RUNTIME_ENDPOINT" --registry "$EA_REGISTRY" --work-dir "$EA_OUTPUT/e2e/critest"; then
	die "the container runtime failed the critest preflight: fix the runtime before reading e2e results"
fi

log "e2e suite"
# The suite builds only with the e2e tag (go test ./... leaves it out).
go test -tags e2e -count=1 -v -timeout 25m ./test/e2e_node/... ${E2E_FLAGS:-}
