#!/usr/bin/env bash
# Builds the control-plane binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl) from hack/tools into a cache keyed by the tools
# module's content, then links them into _output/bin. A second run, or a fresh
# clone on the same machine, reuses the cache instead of rebuilding.
#
# Usage: hack/build-k8s.sh [BINARY...]
#   With no argument, the control plane. Named binaries instead (e.g.
#   "kubelet", which only make bench runs) are built alone, so make run and
#   make test never pay for them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tools_dir="$EA_ROOT/hack/tools"
k8s_version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$tools_dir/go.mod")
# One cache directory per module state; one binary per main file's content,
# so editing one main rebuilds only that binary.
mod_key=$(cat "$tools_dir/go.mod" "$tools_dir/go.sum" | sha256sum | cut -c1-16)
cache="$EA_CACHE_DIR/k8s-$k8s_version-$mod_key"
bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
if (($#)); then
	bins=("$@")
fi
minor=$(echo "$k8s_version" | cut -d. -f2)
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"

mkdir -p "$cache" "$EA_BIN"
for b in "${bins[@]}"; do
	[[ -f $tools_dir/cmd/$b/main.go ]] || die "no $tools_dir/cmd/$b/main.go"
	main_key=$(sha256sum "$tools_dir/cmd/$b/main.go" | cut -c1-16)
	if [[ ! -x $cache/$b || $(cat "$cache/$b.key" 2>/dev/null) != "$main_key" ]]; then
		log "building $b $k8s_version into $cache (a cold build takes minutes)"
		(cd "$tools_dir" && go build -trimpath -ldflags "$ldflags" -o "$cache/$b.tmp" "./cmd/$b")
		mv "$cache/$b.tmp" "$cache/$b"
		echo "$main_key" >"$cache/$b.key"
	fi
	ln -sf "$cache/$b" "$EA_BIN/$b"
done
