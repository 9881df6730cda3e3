#!/usr/bin/env bash
# Runs staticcheck over the whole module, the e2e suite included (it builds
# only with -tags e2e): installs the pinned staticcheck first when missing.
#
#   hack/lint.sh
#
# staticcheck 2026.2.2 (module honnef.co/go/tools v0.8.2): the newest release
# on the Go module proxy; its go.mod says go 1.26.0 and it knows the Go 1.26
# API (deprecations included), so it builds and runs with the Go 1.26 of this
# module. Checks: staticcheck's defaults, see staticcheck.conf.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$EA_ROOT"

STATICCHECK_VERSION=v0.8.2
go_tool staticcheck honnef.co/go/tools/cmd/staticcheck "$STATICCHECK_VERSION"

rc=0
log "staticcheck ./..."
"$EA_BIN/staticcheck" ./... || rc=1
# The e2e package alone: with the tag every other package is the same, and
# would report its findings twice.
log "staticcheck -tags e2e ./test/e2e_node/..."
"$EA_BIN/staticcheck" -tags e2e ./test/e2e_node/... || rc=1
((rc == 0)) || die "staticcheck found problems (listed above)"
log "staticcheck: no findings"
