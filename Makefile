# ephemeral-agent: make run | make test | make stop (see README.md).
SHELL := /usr/bin/env bash
BIN := _output/bin
VERSION ?= v0.1.0+$(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/ephemeral-agent/ephemeral-agent/pkg/version.Version=$(VERSION)
GO_TEST_FLAGS ?=

.PHONY: all build deps control-plane images run stop status test unit e2e critest vet fmt clean

all: build

## build: the agent binary, into _output/bin
build:
	go build -ldflags '$(LDFLAGS)' -o $(BIN)/ephemeral-agent ./cmd/ephemeral-agent

## deps: Debian packages and crictl, when missing
deps:
	hack/install-deps.sh

## control-plane: kube-apiserver & co. from hack/tools, cached across clones
control-plane:
	hack/build-k8s.sh

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

status:
	hack/cluster.sh status --instance local

## test: unit tests (race detector on), then the CRI preflight and e2e suite
test: deps control-plane images build vet unit e2e

unit:
	go test -race -count=1 $(GO_TEST_FLAGS) ./...

## e2e: the end-to-end suite against a fresh "e2e" environment, torn down after
e2e: deps control-plane images build
	hack/e2e.sh

vet:
	@unformatted=$$(gofmt -l cmd pkg test hack); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	go vet ./...

fmt:
	gofmt -w cmd pkg test hack

clean: stop
	rm -rf _output
