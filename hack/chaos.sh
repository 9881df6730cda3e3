#!/usr/bin/env bash
# make chaos: the fault run. A longer fuzzing of the plan, the status and
# the CRI config builders (FUZZTIME each, 1m by default), then the fault
# tests (test/e2e_node, TestChaos*) at full scale against a fresh "e2e"
# environment: 100 debuggers across 20 pods through 20 agent SIGKILLs and
# 5 containerd restarts, a 60s API server outage, 1000 pod create/delete
# cycles, pods deleted while their debugger is created. The environment is
# torn down whatever happens. The last line printed is the run's figures,
# one JSON object (also in _output/chaos/figures.json); docs/reliability.md
# says what each means.
#
# EA_CHAOS_SEED=N replays the kill timeline of an earlier run (its seed is
# in the log); CHAOS_RUN=REGEXP runs some of the fault tests only.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$EA_ROOT"

fuzztime=${FUZZTIME:-1m}
out="$EA_OUTPUT/chaos"
mkdir -p "$out"
report="$out/figures.json"
rm -f "$report"

log "fuzzing, $fuzztime per target"
started=$(date +%s)
make --no-print-directory fuzz FUZZTIME="$fuzztime"
fuzz_s=$(($(date +%s) - started))

# Torn down whatever happens; the figures are printed last.
finish() {
	local rc=$?
	e2e_down || rc=1
	if [[ -s $report ]]; then
		log "figures (also in $report):"
		cat "$report"
	fi
	exit "$rc"
}
trap finish EXIT
hack/cluster.sh up --instance e2e --fresh --no-agent
source "$EA_OUTPUT/e2e/env"

log "fault tests, full scale"
started=$(date +%s)
# A failing test still reports its figures: the run goes on to print them.
set +e
EA_CHAOS_SCALE=full EA_CHAOS_REPORT="$report" \
	go test -tags e2e -count=1 -v -timeout 80m -run "${CHAOS_RUN:-^TestChaos}" ./test/e2e_node/ 2>&1 | tee "$out/test.log"
rc=${PIPESTATUS[0]}
set -e
faults_s=$(($(date +%s) - started))

[[ -s $report ]] || die "the fault tests wrote no figures (see $out/test.log)"
# The run's own figures join the tests' (one JSON object, one line).
sed -i "s/}\$/,\"fuzz_time_per_target\":\"$fuzztime\",\"fuzz_s\":$fuzz_s,\"faults_s\":$faults_s,\"passed\":$([[ $rc == 0 ]] && echo true || echo false)}/" "$report"
exit "$rc"
