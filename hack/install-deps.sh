#!/usr/bin/env bash
# Installs what the local environment needs and this machine may lack: the
# runtime, CNI plugins, etcd and image sources from Debian, crictl from the Go
# module proxy. Each step is skipped when its result is already there.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# command -> Debian package that provides it
declare -A packages=(
	[containerd]=containerd
	[runc]=runc
	[/usr/lib/cni/bridge]=containernetworking-plugins
	[etcd]=etcd-server
	[/bin/busybox]=busybox-static
	[docker-registry]=docker-registry
	[ip]=iproute2
	[iptables]=iptables
	[openssl]=openssl
	[curl]=curl
	[jq]=jq
)
missing=()
for cmd in "${!packages[@]}"; do
	if [[ $cmd == /* ]]; then [[ -x $cmd ]] || missing+=("${packages[$cmd]}")
	else command -v "$cmd" >/dev/null || missing+=("${packages[$cmd]}"); fi
done
if ((${#missing[@]})); then
	log "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's packages may start system services of their own; the environment
# runs private instances instead and must not share ports with them.
for svc in containerd etcd docker-registry; do
	if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
		log "note: a system $svc service runs; the environment uses its own instances beside it"
	fi
done

go_tool crictl sigs.k8s.io/cri-tools/cmd/crictl v1.37.0
