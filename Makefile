# ephemeral-agent: make run | make test | make stop (see README.md, make help).
SHELL := /usr/bin/env bash
BIN := _output/bin
VERSION ?= v0.1.0+$(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/ephemeral-agent/ephemeral-agent/pkg/version.Version=$(VERSION)
GO_TEST_FLAGS ?=
# A count, not a duration: Go 1.26's fuzz coordinator can fail a
# duration-bounded run with "context deadline exceeded" when the deadline
# finds a worker mid-input (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 20000x

.PHONY: all build deps control-plane kubelet images bench-binary run stop status test unit fuzz e2e chaos bench vet lint fmt clean help
.DEFAULT_GOAL := all

## all: the default goal, same as build
all: build

## build: the agent and its kubectl plugin (kubectl-ephemeral), into _output/bin (on the PATH of _output/INSTANCE/env)
build:
	go build -ldflags '$(LDFLAGS)' -o $(BIN)/ephemeral-agent ./cmd/ephemeral-agent
	go build -o $(BIN)/kubectl-ephemeral ./cmd/kubectl-ephemeral

## deps: Debian packages and crictl, when missing
deps:
	hack/install-deps.sh

## control-plane: kube-apiserver & co. from hack/tools, cached across clones
control-plane:
	hack/build-k8s.sh

## kubelet: the upstream kubelet from hack/tools (make bench's reference), cached like the control plane
kubelet:
	hack/build-k8s.sh kubelet

## images: the offline test images as OCI archives
images:
	hack/build-images.sh

## run: a local single-node cluster whose node is the agent; stays up
run: deps control-plane images build
	hack/cluster.sh up --instance local
	hack/demo.sh

## stop: stops what make run started
stop:
	hack/cluster.sh down --instance local

## status: which parts of make run's local environment are running
status:
	hack/cluster.sh status --instance local

## test: vet and lint, unit tests (race detector on), a short fuzz run, then the CRI preflight and e2e suite
test: deps control-plane images build vet lint unit fuzz e2e

## unit: the unit tests of every package, race detector on (GO_TEST_FLAGS=... adds flags)
unit:
	go test -race -count=1 $(GO_TEST_FLAGS) ./...

## fuzz: fuzzes the plan, the status and the CRI config builders, FUZZTIME (20000x: inputs) each
fuzz:
	go test -run='^$$' -fuzz='^FuzzPlan$$' -fuzztime=$(FUZZTIME) ./pkg/kuberuntime/
	go test -run='^$$' -fuzz='^FuzzCompute$$' -fuzztime=$(FUZZTIME) ./pkg/status/
	go test -run='^$$' -fuzz='^FuzzBuildContainerConfig$$' -fuzztime=$(FUZZTIME) ./pkg/criconfig/
	go test -run='^$$' -fuzz='^FuzzBuildSandboxConfig$$' -fuzztime=$(FUZZTIME) ./pkg/criconfig/

## e2e: the end-to-end suite (-tags e2e) against a fresh "e2e" environment, torn down after
e2e: deps control-plane images build
	hack/e2e.sh

## chaos: the fault run (longer fuzzing, agent kills, runtime restarts, API server outage, pod churn); prints its figures as one JSON line
chaos: deps control-plane images build
	hack/chaos.sh

## bench: the benchmark (floor, our agent, the upstream kubelet) on a "bench" environment beside make run's; prints a table and one JSON line
bench: deps control-plane kubelet images build bench-binary
	hack/bench.sh

## bench-binary: the benchmark program, into _output/bin
bench-binary:
	go build -o $(BIN)/ephemeral-bench ./cmd/ephemeral-bench

## vet: gofmt check, then go vet on every package, the e2e suite included
vet:
	@unformatted=$$(gofmt -l cmd pkg test hack); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	go vet ./...
	go vet -tags e2e ./test/e2e_node/...

## lint: staticcheck (pinned, built once into the cache) on every package, the e2e suite included
lint:
	hack/lint.sh

## fmt: gofmt -w on the Go sources
fmt:
	gofmt -w cmd pkg test hack

## clean: stops make run's environment and removes _output
clean: stop
	rm -rf _output

## help: this list
help:
	@awk '/^## [A-Za-z0-9_.-]+: / { t = $$2; sub(/:$$/, "", t); d = $$0; sub(/^## [^:]+: +/, "", d); \
		printf "  %-14s %s\n", t, d }' $(MAKEFILE_LIST)
