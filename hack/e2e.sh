#!/usr/bin/env bash
# Runs the end-to-end suite: a fresh "e2e" environment (no agent: the tests
# start the agent binary themselves), the CRI conformance preflight, then the
# Go tests in test/e2e_node. The environment is torn down whatever happens.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$EA_ROOT"

# Torn down whatever happens.
trap 'rc=$?; e2e_down || rc=1; exit $rc' EXIT
hack/cluster.sh up --instance e2e --fresh --no-agent
source "$EA_OUTPUT/e2e/env"

log "CRI conformance preflight (critest)"
if ! hack/critest.sh --runtime-endpoint "$CONTAINER_RUNTIME_ENDPOINT" --registry "$EA_REGISTRY" --work-dir "$EA_OUTPUT/e2e/critest"; then
	die "the container runtime failed the critest preflight: fix the runtime before reading e2e results"
fi

log "e2e suite"
# The suite builds only with the e2e tag (go test ./... leaves it out).
go test -tags e2e -count=1 -v -timeout 35m ./test/e2e_node/... ${E2E_FLAGS:-}
