#!/usr/bin/env bash
# Builds metrics-server from its Go module (hack/tools/metrics-server, a
# module of its own: it pins other k8s.io library versions than the control
# plane's) into a cache keyed by that module's content, as build-k8s.sh does
# for the control plane, and links it into _output/bin. Static, so that it
# runs in an image with nothing else in it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mod_dir="$EA_ROOT/hack/tools/metrics-server"
version=$(awk '$1 == "sigs.k8s.io/metrics-server" {print $2; exit}' "$mod_dir/go.mod")
key=$(cat "$mod_dir/go.mod" "$mod_dir/go.sum" | sha256sum | cut -c1-16)
cache="$EA_CACHE_DIR/metrics-server-$version-$key"
if [[ ! -x $cache/metrics-server ]]; then
	log "building metrics-server $version into $cache (a cold build takes minutes)"
	mkdir -p "$cache"
	(cd "$mod_dir" && CGO_ENABLED=0 GOWORK=off go build -trimpath \
		-ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$version" \
		-o "$cache/metrics-server.tmp" sigs.k8s.io/metrics-server/cmd/metrics-server)
	mv "$cache/metrics-server.tmp" "$cache/metrics-server"
fi
mkdir -p "$EA_BIN"
ln -sf "$cache/metrics-server" "$EA_BIN/metrics-server"
