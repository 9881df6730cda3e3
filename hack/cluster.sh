#!/usr/bin/env bash
# Runs a single-node cluster of real components on this machine: a private
# containerd, etcd, kube-apiserver, kube-controller-manager, kube-scheduler, a
# local image registry and ephemeral-agent as the node.
#
# Usage: hack/cluster.sh COMMAND [--instance local|e2e|bench] [--fresh] [--no-agent]
#   up                 start what is not running (idempotent); --fresh wipes
#                      etcd and every CRI pod first; --no-agent leaves the
#                      node agent to the caller (the e2e suite starts its own)
#   down               stop everything, remove CRI pods, unmount, clean up
#   status             show which components run
#   start COMPONENT    start one component (e.g. containerd), used by e2e tests;
#                      "kubelet" (bench only) starts the upstream kubelet
#   stop COMPONENT     stop one component
#   reset-runtime      (bench only) remove every CRI pod, the node agents'
#                      mounts and pod cgroups: an empty runtime for the next agent
#
# Three instances can run side by side: "local" for make run, "e2e" for
# make test and "bench" for make bench. Each has fixed ports and fixed state
# paths outside the checkout, so a fresh clone finds and cleans what a killed
# earlier run left behind. The bench instance also has a network namespace
# (veth 10.250.0.1 on the host, 10.250.0.2 inside) where the upstream
# kubelet runs, as it refuses a loopback node IP.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

instance=local fresh=false with_agent=true
cmd=${1:-}; shift || true
arg=""
while (($#)); do
	case $1 in
	--instance) instance=$2; shift ;;
	--fresh) fresh=true ;;
	--no-agent) with_agent=false ;;
	-*) die "unknown flag $1" ;;
	*) arg=$1 ;;
	esac
	shift
done

# netns (bench only): the network namespace of the upstream kubelet, joined
# to the host by a veth pair; the API server and containerd's streaming
# server listen on its host side.
netns="" agent_extra_args=()
case $instance in
local)
	port_base=0 node_name=${NODE_NAME:-$(hostname | tr '[:upper:]_' '[:lower:]-')} node_ip=10.89.0.1
	pod_subnet=10.88.1.0/24 service_cidr=10.96.0.0/16
	# make run shows the TARGET preflight's node condition and runs a
	# debug policy; the e2e and bench agents start without either (their
	# tests pass the flags themselves).
	agent_extra_args=(--debug-target-preflight --debug-policy-config /var/lib/ephemeral-agent/local/debug-policy.yaml)
	;;
e2e)
	port_base=10000 node_name=${NODE_NAME:-ea-e2e-node} node_ip=10.89.0.2
	pod_subnet=10.88.2.0/24 service_cidr=10.97.0.0/16
	;;
bench)
	# The benchmark names its nodes: NODE_NAME of another instance's env
	# must not rename them. The /22 holds the 250-pod workload and more.
	port_base=20000 node_name=ea-bench-agent node_ip=10.89.0.3
	pod_subnet=10.88.4.0/22 service_cidr=10.98.0.0/16
	netns=ea-bench netns_host_ip=10.250.0.1 netns_ip=10.250.0.2
	veth_host=ea-bench-h veth_ns=ea-bench-n
	kubelet_node_name=ea-bench-kubelet
	agent_extra_args=(--max-pods 300)
	;;
*) die "unknown instance $instance (local, e2e or bench)" ;;
esac

STATE=/var/lib/ephemeral-agent/$instance
RUN=/run/ephemeral-agent/$instance
CERTS=$STATE/pki
LOGS=$STATE/logs
OUT=$EA_OUTPUT/$instance
SOCK=$RUN/containerd.sock
ETCD_PORT=$((2379 + port_base)) ETCD_PEER_PORT=$((2380 + port_base))
APISERVER_PORT=$((6443 + port_base))
KCM_PORT=$((10257 + port_base)) SCHEDULER_PORT=$((10259 + port_base))
AGENT_PORT=$((10250 + port_base)) HEALTHZ_PORT=$((10248 + port_base))
REGISTRY_PORT=$((5000 + port_base / 10000))
METRICS_SERVER_PORT=$((4443 + port_base))
BRIDGE=eabr-$instance
# Each instance's pods live below a cgroup root of their own, so one agent
# never sweeps the other's pod cgroups.
CGROUP_ROOT=/ea-$instance
# A kubelet in the bench netns reaches the API server and the CRI streaming
# server (exec, attach) at the veth's host side; the kube-apiserver takes one
# bind address, hence all of them there.
APISERVER_BIND=127.0.0.1 STREAM_ADDRESS=127.0.0.1
if [[ -n $netns ]]; then
	APISERVER_BIND=0.0.0.0 STREAM_ADDRESS=$netns_host_ip
fi
KUBECTL=$EA_BIN/kubectl
CRICTL="$EA_BIN/crictl --runtime-endpoint unix://$SOCK --image-endpoint unix://$SOCK --timeout 30s"

mkdir -p "$STATE" "$RUN" "$LOGS" "$OUT"

# --- process helpers ------------------------------------------------------

pidfile() { echo "$RUN/$1.pid"; }

running() {
	local pid
	pid=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	# A pid may be reused after a reboot or kill: trust it only when the
	# process still runs the binary we started.
	grep -qF "$2" "/proc/$pid/cmdline" 2>/dev/null
}

# start_bg NAME CMD... runs CMD detached in its own session, logging to LOGS.
start_bg() {
	local name=$1; shift
	log "starting $name (log: $LOGS/$name.log)"
	# Daemons must not inherit the caller's descriptors: one holding a
	# flock(1) lock (fd 3 and up) would keep it after the caller is gone.
	setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	echo $! >"$(pidfile "$name")"
}

stop_bg() {
	local name=$1 pid i
	pid=$(cat "$(pidfile "$name")" 2>/dev/null) || return 0
	if kill -0 "$pid" 2>/dev/null; then
		log "stopping $name"
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$(pidfile "$name")"
}

wait_for() {
	local what=$1 timeout=$2 i; shift 2
	for ((i = 0; i < timeout * 5; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	die "$what did not come up within ${timeout}s"
}

# Kills processes left by an earlier run whose pidfiles are gone: every
# process this script starts names a path of its instance on its command line.
kill_strays() {
	local pat=$1
	pkill -KILL -f -- "$pat" 2>/dev/null || true
}

# unmount_under unmounts everything below the given directories, deepest
# first. A mount hidden under a later mount on a parent (a bind mount of the
# agent's root dir onto itself) only becomes reachable once that parent is
# gone, hence the passes.
unmount_under() {
	local dir pass left
	for pass in 1 2 3 4 5; do
		left=0
		for dir in "$@"; do
			while read -r m; do
				left=1
				umount -l "$m" 2>/dev/null || true
			done < <(awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
		done
		((left)) || return 0
	done
}

# --- certificates and kubeconfigs ----------------------------------------

sign() { # sign NAME SUBJECT EXTENSIONS
	local name=$1 subj=$2 ext=$3
	local ca=${SIGN_CA:-ca}
	[[ -f $CERTS/$name.crt ]] && return
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$CERTS/$name.key" -subj "$subj" -out "$CERTS/$name.csr" 2>/dev/null
	openssl x509 -req -in "$CERTS/$name.csr" -CA "$CERTS/$ca.crt" -CAkey "$CERTS/$ca.key" \
		-CAcreateserial -days 3650 -out "$CERTS/$name.crt" \
		-extfile <(printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" "$ext") 2>/dev/null
	rm -f "$CERTS/$name.csr"
}

kubeconfig() { # kubeconfig NAME USER [SERVER]
	cat >"$CERTS/$1.kubeconfig" <<-EOF
		apiVersion: v1
		kind: Config
		clusters:
		- name: $instance
		  cluster:
		    server: ${3:-https://127.0.0.1:$APISERVER_PORT}
		    certificate-authority: $CERTS/ca.crt
		users:
		- name: $2
		  user:
		    client-certificate: $CERTS/$1.crt
		    client-key: $CERTS/$1.key
		contexts:
		- name: $instance
		  context: {cluster: $instance, user: $2}
		current-context: $instance
	EOF
}

gen_certs() {
	mkdir -p "$CERTS"
	# The node's client certificate names the node: regenerate all when the
	# node name changed so the Node authorizer lets the agent act as itself.
	if [[ -f $CERTS/node-name && $(cat "$CERTS/node-name") != "$node_name" ]]; then
		rm -f "$CERTS"/*
	fi
	if [[ ! -f $CERTS/ca.crt ]]; then
		log "generating certificates in $CERTS"
		openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$CERTS/ca.key" -subj "/CN=ephemeral-agent-$instance-ca" -days 3650 \
			-out "$CERTS/ca.crt" 2>/dev/null
	fi
	local client="extendedKeyUsage=clientAuth" server="extendedKeyUsage=serverAuth"
	sign admin "/O=system:masters/CN=admin" "$client"
	sign node "/O=system:nodes/CN=system:node:$node_name" "$client"
	sign controller-manager "/CN=system:kube-controller-manager" "$client"
	sign scheduler "/CN=system:kube-scheduler" "$client"
	sign apiserver-kubelet-client "/O=ephemeral-agent:apiserver-kubelet-clients/CN=kube-apiserver-kubelet-client" "$client"
	local svc_ip=${service_cidr%/*}
	svc_ip=${svc_ip%.*}.1 # the first address: the kubernetes Service's ClusterIP
	# The kubelet in the bench netns reaches the API server at the veth's host side.
	local netns_san=""
	[[ -n $netns ]] && netns_san=",IP:$netns_host_ip"
	if [[ -n $netns && -f $CERTS/apiserver.crt ]] && ! openssl x509 -in "$CERTS/apiserver.crt" -noout -ext subjectAltName 2>/dev/null | grep -qF "IP Address:$netns_host_ip"; then
		rm -f "$CERTS/apiserver.crt"
	fi
	sign apiserver "/CN=kube-apiserver" "$server
subjectAltName=IP:127.0.0.1,IP:$svc_ip$netns_san,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
	# The API server and metrics-server reach the agent at the node's IP.
	if [[ -f $CERTS/agent.crt ]] && ! openssl x509 -in "$CERTS/agent.crt" -noout -ext subjectAltName 2>/dev/null | grep -qF "IP Address:$node_ip"; then
		rm -f "$CERTS/agent.crt"
	fi
	sign agent "/CN=$node_name" "$server
subjectAltName=IP:127.0.0.1,IP:$node_ip,DNS:localhost,DNS:$node_name"
	# The aggregation layer (metrics.k8s.io): the API server proxies to
	# extension API servers with a client certificate of its own CA.
	if [[ ! -f $CERTS/front-proxy-ca.crt ]]; then
		openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$CERTS/front-proxy-ca.key" -subj "/CN=ephemeral-agent-$instance-front-proxy-ca" -days 3650 \
			-out "$CERTS/front-proxy-ca.crt" 2>/dev/null
	fi
	SIGN_CA=front-proxy-ca sign front-proxy-client "/CN=front-proxy-client" "$client"
	if [[ ! -f $CERTS/sa.key ]]; then
		openssl genrsa -out "$CERTS/sa.key" 2048 2>/dev/null
		openssl rsa -in "$CERTS/sa.key" -pubout -out "$CERTS/sa.pub" 2>/dev/null
	fi
	if [[ -n $netns ]]; then
		sign kubelet "/O=system:nodes/CN=system:node:$kubelet_node_name" "$client"
		sign kubelet-serving "/CN=$kubelet_node_name" "$server
subjectAltName=IP:$netns_ip,DNS:$kubelet_node_name"
		kubeconfig kubelet "system:node:$kubelet_node_name" "https://$netns_host_ip:$APISERVER_PORT"
	fi
	kubeconfig admin admin
	kubeconfig node "system:node:$node_name"
	kubeconfig controller-manager system:kube-controller-manager
	kubeconfig scheduler system:kube-scheduler
	echo "$node_name" >"$CERTS/node-name"
}

# --- containerd -----------------------------------------------------------

write_containerd_config() {
	mkdir -p "$STATE/cni/net.d" "$STATE/containerd"
	cat >"$STATE/cni/net.d/10-ephemeral-agent.conflist" <<-EOF
		{
		  "cniVersion": "0.4.0",
		  "name": "ea-$instance",
		  "plugins": [
		    {
		      "type": "bridge",
		      "bridge": "$BRIDGE",
		      "isGateway": true,
		      "ipMasq": false,
		      "hairpinMode": true,
		      "ipam": {
		        "type": "host-local",
		        "dataDir": "$STATE/cni/ipam",
		        "ranges": [[{"subnet": "$pod_subnet"}]],
		        "routes": [{"dst": "0.0.0.0/0"}]
		      }
		    },
		    {"type": "portmap", "capabilities": {"portMappings": true}}
		  ]
		}
	EOF
	cat >"$STATE/containerd/config.toml" <<-EOF
		version = 2
		root = "$STATE/containerd"
		state = "$RUN/containerd"
		[grpc]
		  address = "$SOCK"
		[ttrpc]
		  address = "$SOCK.ttrpc"
		[plugins."io.containerd.internal.v1.opt"]
		  path = "$STATE/containerd/opt"
		[plugins."io.containerd.grpc.v1.cri"]
		  sandbox_image = "localhost/pause:test"
		  # This machine lacks CAP_SYS_RESOURCE: without it runc fails every start.
		  restrict_oom_score_adj = true
		  stream_server_address = "$STREAM_ADDRESS"
		  stream_server_port = "0"
		  [plugins."io.containerd.grpc.v1.cri".containerd]
		    snapshotter = "overlayfs"
		    default_runtime_name = "runc"
		    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
		      runtime_type = "io.containerd.runc.v2"
		  [plugins."io.containerd.grpc.v1.cri".cni]
		    bin_dir = "/usr/lib/cni"
		    conf_dir = "$STATE/cni/net.d"
	EOF
}

start_containerd() {
	running containerd "$STATE/containerd/config.toml" && return
	# The streaming server listens on the netns' veth: it must exist first.
	ensure_netns
	write_containerd_config
	rm -f "$SOCK" "$SOCK.ttrpc"
	start_bg containerd containerd --config "$STATE/containerd/config.toml"
	wait_for containerd 30 $CRICTL info
}

stop_containerd() {
	stop_bg containerd
	kill_strays "containerd --config $STATE/containerd/config.toml"
	# Shims outlive containerd by design; they serve no one once it is gone.
	# A shim serving a task has "-id ID" before its address (one that a
	# runtime restart orphaned has no container to remove through CRI).
	kill_strays "containerd-shim-runc-v2 -namespace k8s.io (-id [0-9a-f]+ )?-address $SOCK"
	unmount_under "$RUN/containerd" "$STATE/containerd"
}

# Removes every pod sandbox (and so its containers, netns and mounts) through
# CRI, so nothing of an earlier run survives into this one.
remove_all_pods() {
	local pods
	pods=$($CRICTL pods -q 2>/dev/null) || return 0
	[[ -n $pods ]] || return 0
	log "removing $(wc -w <<<"$pods") CRI pod sandbox(es) left on the runtime"
	$CRICTL stopp $pods >/dev/null 2>&1 || true
	$CRICTL rmp -f $pods >/dev/null 2>&1 || true
}

# cgroup_mounts lists the mount points of the cgroup hierarchies (v1
# controllers, and the v2 unified one).
cgroup_mounts() {
	awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts
}

# make_cgroup_root creates the instance's --cgroup-root in every hierarchy:
# the agent, as the kubelet, requires it to exist.
make_cgroup_root() {
	local mnt
	while read -r mnt; do
		mkdir -p "$mnt$CGROUP_ROOT"
		# A new v1 cpuset starts empty; its children could hold no task.
		if [[ -f $mnt$CGROUP_ROOT/cpuset.cpus && -z $(cat "$mnt$CGROUP_ROOT/cpuset.cpus") ]]; then
			cat "$mnt/cpuset.cpus" >"$mnt$CGROUP_ROOT/cpuset.cpus"
			cat "$mnt/cpuset.mems" >"$mnt$CGROUP_ROOT/cpuset.mems"
		fi
	done < <(cgroup_mounts)
}

# remove_cgroup_root removes the instance's cgroup tree, deepest first, once
# its pods are gone.
remove_cgroup_root() {
	local mnt
	while read -r mnt; do
		[[ -d $mnt$CGROUP_ROOT ]] || continue
		find "$mnt$CGROUP_ROOT" -depth -type d -exec rmdir {} + 2>/dev/null ||
			log "WARNING: cgroups left under $mnt$CGROUP_ROOT (processes still in them?)"
	done < <(cgroup_mounts)
}

import_images() {
	local img name
	"$EA_ROOT/hack/build-images.sh"
	for img in "$EA_OUTPUT"/images/*.tar; do
		name=localhost/$(basename "$img" .tar):test
		# Importing an unchanged archive is cheap but not free; compare digests.
		local want have
		want=$(sha256sum "$img" | cut -c1-64)
		have=$(cat "$STATE/images/$(basename "$img").sha256" 2>/dev/null || true)
		if [[ $want != "$have" ]] || ! $CRICTL inspecti "$name" >/dev/null 2>&1; then
			log "importing $name"
			ctr -n k8s.io --address "$SOCK" images import "$img" >/dev/null
			mkdir -p "$STATE/images"
			echo "$want" >"$STATE/images/$(basename "$img").sha256"
		fi
	done
}

# --- registry -------------------------------------------------------------

start_registry() {
	"$EA_ROOT/hack/registry.sh" start "$STATE/registry" "$REGISTRY_PORT"
	"$EA_ROOT/hack/registry.sh" push "$SOCK" "$REGISTRY_PORT" localhost/busybox:test localhost/distroless-app:test localhost/pause:test
}

stop_registry() {
	[[ -d $STATE/registry ]] && "$EA_ROOT/hack/registry.sh" stop "$STATE/registry" || true
}

# --- etcd and control plane ----------------------------------------------

start_etcd() {
	running etcd "$STATE/etcd" && return
	kill_strays "etcd --name ea-$instance"
	start_bg etcd etcd --name "ea-$instance" --data-dir "$STATE/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster "ea-$instance=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn
	wait_for etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"
}

apiserver_ready() {
	curl -sf --cacert "$CERTS/ca.crt" --cert "$CERTS/admin.crt" --key "$CERTS/admin.key" \
		"https://127.0.0.1:$APISERVER_PORT/readyz"
}

start_apiserver() {
	running kube-apiserver "$CERTS/apiserver.crt" && return
	start_bg kube-apiserver "$EA_BIN/kube-apiserver" \
		--etcd-servers "http://127.0.0.1:$ETCD_PORT" \
		--bind-address "$APISERVER_BIND" --secure-port "$APISERVER_PORT" \
		--advertise-address 127.0.0.1 --endpoint-reconciler-type none \
		--cert-dir "$STATE/apiserver" \
		--tls-cert-file "$CERTS/apiserver.crt" --tls-private-key-file "$CERTS/apiserver.key" \
		--client-ca-file "$CERTS/ca.crt" \
		--service-account-key-file "$CERTS/sa.pub" --service-account-signing-key-file "$CERTS/sa.key" \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-cluster-ip-range "$service_cidr" \
		--authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
		--allow-privileged=true \
		--kubelet-client-certificate "$CERTS/apiserver-kubelet-client.crt" \
		--kubelet-client-key "$CERTS/apiserver-kubelet-client.key" \
		--kubelet-certificate-authority "$CERTS/ca.crt" \
		--kubelet-preferred-address-types InternalIP,Hostname \
		--requestheader-client-ca-file "$CERTS/front-proxy-ca.crt" \
		--requestheader-allowed-names front-proxy-client \
		--requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
		--requestheader-extra-headers-prefix X-Remote-Extra- \
		--proxy-client-cert-file "$CERTS/front-proxy-client.crt" --proxy-client-key-file "$CERTS/front-proxy-client.key" \
		--enable-aggregator-routing=true
	wait_for kube-apiserver 90 apiserver_ready
	# The API server's identity towards nodes needs the kubelet API, as in kubeadm.
	"$KUBECTL" --kubeconfig "$CERTS/admin.kubeconfig" apply -f - >/dev/null <<-EOF
		apiVersion: rbac.authorization.k8s.io/v1
		kind: ClusterRoleBinding
		metadata:
		  name: ephemeral-agent:apiserver-kubelet-client
		roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kubelet-api-admin}
		subjects:
		- {apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-apiserver-kubelet-client}
		---
		# A debug policy's namespaceSelectors need the namespaces' labels,
		# which the Node authorizer does not give nodes.
		apiVersion: rbac.authorization.k8s.io/v1
		kind: ClusterRole
		metadata:
		  name: ephemeral-agent:debug-policy
		rules:
		- {apiGroups: [""], resources: [namespaces], verbs: [get, list, watch]}
		---
		apiVersion: rbac.authorization.k8s.io/v1
		kind: ClusterRoleBinding
		metadata:
		  name: ephemeral-agent:debug-policy
		roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ephemeral-agent:debug-policy}
		subjects:
		- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:nodes}
	EOF
}

start_controller_manager() {
	running kube-controller-manager "$CERTS/controller-manager.kubeconfig" && return
	start_bg kube-controller-manager "$EA_BIN/kube-controller-manager" \
		--kubeconfig "$CERTS/controller-manager.kubeconfig" \
		--authentication-kubeconfig "$CERTS/controller-manager.kubeconfig" \
		--authorization-kubeconfig "$CERTS/controller-manager.kubeconfig" \
		--bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
		--use-service-account-credentials=true \
		--service-account-private-key-file "$CERTS/sa.key" --root-ca-file "$CERTS/ca.crt" \
		--cluster-signing-cert-file "$CERTS/ca.crt" --cluster-signing-key-file "$CERTS/ca.key" \
		--service-cluster-ip-range "$service_cidr"
	wait_for kube-controller-manager 60 curl -sfk "https://127.0.0.1:$KCM_PORT/healthz"
}

start_scheduler() {
	running kube-scheduler "$CERTS/scheduler.kubeconfig" && return
	start_bg kube-scheduler "$EA_BIN/kube-scheduler" \
		--kubeconfig "$CERTS/scheduler.kubeconfig" \
		--authentication-kubeconfig "$CERTS/scheduler.kubeconfig" \
		--authorization-kubeconfig "$CERTS/scheduler.kubeconfig" \
		--bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false
	wait_for kube-scheduler 60 curl -sfk "https://127.0.0.1:$SCHEDULER_PORT/healthz"
}

# --- the node agent -------------------------------------------------------

agent_args() {
	printf '%s\n' \
		--kubeconfig "$CERTS/node.kubeconfig" \
		--node-name "$node_name" --node-ip "$node_ip" \
		--container-runtime-endpoint "unix://$SOCK" \
		--root-dir "$STATE/agent" --pod-logs-dir "$STATE/pod-logs" \
		--address 0.0.0.0 --port "$AGENT_PORT" --healthz-port "$HEALTHZ_PORT" \
		--tls-cert-file "$CERTS/agent.crt" --tls-private-key-file "$CERTS/agent.key" \
		--client-ca-file "$CERTS/ca.crt" \
		--debug-audit-log "$LOGS/debug-audit.log" \
		--cgroup-root "$CGROUP_ROOT" \
		"${agent_extra_args[@]}"
}

start_agent() {
	running ephemeral-agent "$CERTS/node.kubeconfig" && return
	# make run's debug policy: a copy the user may edit, made once.
	if [[ $instance == local && ! -e $STATE/debug-policy.yaml ]]; then
		install -m 0644 "$EA_ROOT/hack/manifests/debug-policy.yaml" "$STATE/debug-policy.yaml"
	fi
	local args
	mapfile -t args < <(agent_args)
	# AGENT_V raises its log verbosity: 4 logs every sync and runtime event.
	start_bg ephemeral-agent "$EA_BIN/ephemeral-agent" "${args[@]}" --v "${AGENT_V:-2}"
	wait_for "node $node_name Ready" 60 node_ready
}

node_ready() {
	[[ $("$KUBECTL" --kubeconfig "$CERTS/admin.kubeconfig" get node "${1:-$node_name}" \
		-o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

# --- the upstream kubelet (bench only) -------------------------------------

write_kubelet_config() {
	mkdir -p "$STATE/kubelet"
	cat >"$STATE/kubelet-config.yaml" <<-EOF
		apiVersion: kubelet.config.k8s.io/v1beta1
		kind: KubeletConfiguration
		# The node as the agent runs it: cgroupfs on this cgroup v1 machine,
		# the same runtime, the instance's cgroup root, 300 pods.
		cgroupDriver: cgroupfs
		cgroupsPerQOS: true
		cgroupRoot: $CGROUP_ROOT
		failSwapOn: false
		failCgroupV1: false
		enforceNodeAllocatable: []
		maxPods: 300
		serializeImagePulls: false
		containerRuntimeEndpoint: unix://$SOCK
		imageServiceEndpoint: unix://$SOCK
		podLogsDir: $STATE/kubelet-pod-logs
		address: $netns_ip
		port: $AGENT_PORT
		healthzBindAddress: 127.0.0.1
		healthzPort: $HEALTHZ_PORT
		readOnlyPort: 0
		tlsCertFile: $CERTS/kubelet-serving.crt
		tlsPrivateKeyFile: $CERTS/kubelet-serving.key
		authentication:
		  anonymous: {enabled: false}
		  x509: {clientCAFile: $CERTS/ca.crt}
		  webhook: {enabled: true}
		authorization:
		  mode: Webhook
		# The test images are imported, not pulled: image GC must keep them,
		# and a full disk must not evict the benchmark's pods.
		imageGCHighThresholdPercent: 100
		imageGCLowThresholdPercent: 99
		evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%"}
	EOF
}

start_kubelet() {
	[[ -n $netns ]] || die "the kubelet runs in the bench instance only"
	running kubelet "$CERTS/kubelet.kubeconfig" && return
	[[ -x $EA_BIN/kubelet ]] || die "no $EA_BIN/kubelet: run hack/build-k8s.sh kubelet"
	ensure_netns
	write_kubelet_config
	# The kubelet also writes to two fixed host paths: remember which of
	# them it creates, for clean_kubelet_traces.
	local d
	for d in /var/lib/kubelet /var/log/containers; do
		[[ -e $d ]] || echo "$d" >>"$STATE/kubelet-created-dirs"
	done
	# nsenter, not ip netns exec: that remounts /sys, and the kubelet then
	# finds no cgroup mounts. nsenter execs the kubelet: the pid is its own.
	start_bg kubelet nsenter --net="/var/run/netns/$netns" "$EA_BIN/kubelet" \
		--config "$STATE/kubelet-config.yaml" \
		--kubeconfig "$CERTS/kubelet.kubeconfig" \
		--root-dir "$STATE/kubelet" --cert-dir "$STATE/kubelet/pki" \
		--hostname-override "$kubelet_node_name" --node-ip "$netns_ip" \
		--v "${KUBELET_V:-2}"
	wait_for "node $kubelet_node_name Ready" 90 node_ready "$kubelet_node_name"
}

# clean_kubelet_traces removes what the kubelet leaves outside the instance's
# paths: its log symlinks in /var/log/containers (to logs of this instance), its
# device-plugin socket, and those two directories when the kubelet made them.
clean_kubelet_traces() {
	[[ -n $netns ]] || return 0
	local link d
	for link in /var/log/containers/*.log; do
		[[ -L $link && $(readlink "$link") == "$STATE"/* ]] && rm -f "$link"
	done
	[[ -f $STATE/kubelet-created-dirs ]] || return 0
	while read -r d; do
		case $d in
		/var/lib/kubelet)
			rm -f /var/lib/kubelet/device-plugins/kubelet.sock /var/lib/kubelet/device-plugins/kubelet_internal_checkpoint
			rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null || true
			;;
		/var/log/containers) rmdir /var/log/containers 2>/dev/null || true ;;
		esac
	done <"$STATE/kubelet-created-dirs"
	rm -f "$STATE/kubelet-created-dirs"
}

# reset_runtime leaves the runtime as a fresh node finds it, once the node
# agent is stopped: no pod sandbox, no volume mount of either agent, no pod
# cgroup. The upstream kubelet removes what it does not own, and leftovers
# would count against the next agent's figures.
reset_runtime() {
	[[ -n $netns ]] || die "reset-runtime is for the bench instance only"
	running ephemeral-agent "$CERTS/node.kubeconfig" && die "stop the agent first"
	running kubelet "$CERTS/kubelet.kubeconfig" && die "stop the kubelet first"
	remove_all_pods
	unmount_under "$STATE/agent" "$STATE/kubelet"
	# Both agents bind-mount their root dir onto itself.
	local dir
	for dir in "$STATE/agent" "$STATE/kubelet"; do
		while mountpoint -q "$dir"; do umount -l "$dir"; done
	done
	rm -rf "$STATE/agent" "$STATE/kubelet" "$STATE/pod-logs" "$STATE/kubelet-pod-logs"
	clean_kubelet_traces
	remove_cgroup_root
	make_cgroup_root
}

write_env() {
	local args
	args=$(agent_args | tr '\n' ' ')
	cat >"$OUT/env" <<-EOF
		# Written by hack/cluster.sh for the "$instance" environment: source it.
		export KUBECONFIG=$CERTS/admin.kubeconfig
		export CONTAINER_RUNTIME_ENDPOINT=unix://$SOCK
		export IMAGE_SERVICE_ENDPOINT=unix://$SOCK
		export NODE_NAME=$node_name
		export PATH=$EA_BIN:\$PATH
		export EA_INSTANCE=$instance
		export EA_CLUSTER_SCRIPT=$EA_ROOT/hack/cluster.sh
		export EA_AGENT_BINARY=$EA_BIN/ephemeral-agent
		export EA_AGENT_ARGS="$args"
		export EA_AGENT_HEALTHZ_PORT=$HEALTHZ_PORT
		export EA_AGENT_PORT=$AGENT_PORT
		export EA_CERT_DIR=$CERTS
		export EA_AGENT_ROOT_DIR=$STATE/agent
		export EA_LOG_DIR=$LOGS
		export EA_REGISTRY=127.0.0.1:$REGISTRY_PORT
		export EA_NODE_IP=$node_ip
		export EA_CGROUP_ROOT=$CGROUP_ROOT
		export EA_APISERVER_PORT=$APISERVER_PORT
		export EA_METRICS_SERVER_PORT=$METRICS_SERVER_PORT
	EOF
}

# --- metrics-server -------------------------------------------------------

# deploy_metrics_server applies metrics-server (kubectl top) without
# waiting for it: it answers some 20 s after the node runs it. The e2e suite
# deploys it itself, from the same manifest, in the test that needs it.
deploy_metrics_server() {
	log "deploying metrics-server"
	sed -e "s/@APISERVER_PORT@/$APISERVER_PORT/g" -e "s/@METRICS_SERVER_PORT@/$METRICS_SERVER_PORT/g" \
		"$EA_ROOT/hack/manifests/metrics-server.yaml" |
		"$KUBECTL" --kubeconfig "$CERTS/admin.kubeconfig" apply -f - >/dev/null
}

# --- network leftovers ----------------------------------------------------

# The node's address: on loopback, but not a loopback address, which the
# API server refuses to proxy to (nodes/proxy, the aggregation layer) and
# which pods could not reach.
ensure_node_ip() {
	ip -4 addr show dev lo | grep -qF " $node_ip/" || ip addr add "$node_ip/32" dev lo
}

# ensure_netns creates the bench instance's network namespace and veth pair
# (idempotent; nothing for the other instances).
ensure_netns() {
	[[ -n $netns ]] || return 0
	if ! ip -n "$netns" link show lo >/dev/null 2>&1; then
		ip netns del "$netns" 2>/dev/null || true
		ip link del "$veth_host" 2>/dev/null || true
		log "creating network namespace $netns ($netns_host_ip <-> $netns_ip)"
		ip netns add "$netns"
	fi
	if ! ip link show "$veth_host" >/dev/null 2>&1; then
		ip link add "$veth_host" type veth peer name "$veth_ns" netns "$netns"
	fi
	ip -4 addr show dev "$veth_host" | grep -qF " $netns_host_ip/" || ip addr add "$netns_host_ip/30" dev "$veth_host"
	ip link set "$veth_host" up
	ip -n "$netns" link set lo up
	ip -n "$netns" -4 addr show dev "$veth_ns" | grep -qF " $netns_ip/" || ip -n "$netns" addr add "$netns_ip/30" dev "$veth_ns"
	ip -n "$netns" link set "$veth_ns" up
	ip -n "$netns" route replace default via "$netns_host_ip"
}

clean_network() {
	ip link del "$BRIDGE" 2>/dev/null || true
	ip addr del "$node_ip/32" dev lo 2>/dev/null || true
	if [[ -n $netns ]]; then
		# Deleting the namespace deletes the veth pair with it.
		ip netns del "$netns" 2>/dev/null || true
		ip link del "$veth_host" 2>/dev/null || true
	fi
	rm -rf "$STATE/cni/ipam"
}

# --- commands -------------------------------------------------------------

up() {
	[[ -x $EA_BIN/kube-apiserver && -x $EA_BIN/crictl ]] || die "run make deps control-plane first"
	gen_certs
	ensure_node_ip
	if $fresh; then
		stop_agent_and_control_plane
		rm -rf "$STATE/etcd"
	fi
	start_containerd
	if $fresh; then
		# containerd, started on the old state, tears down what an earlier
		# (perhaps killed) run left: netns, mounts, shims.
		remove_all_pods
		remove_cgroup_root
	fi
	make_cgroup_root
	import_images
	start_registry
	start_etcd
	start_apiserver
	start_controller_manager
	start_scheduler
	write_env
	if $with_agent; then
		start_agent
		deploy_metrics_server
	fi
	log "environment \"$instance\" is up; source $OUT/env"
}

stop_agent_and_control_plane() {
	stop_bg ephemeral-agent
	stop_bg kubelet
	# The control plane has nothing to hand over on the way down: stop it at once.
	local c
	for c in kube-scheduler kube-controller-manager kube-apiserver; do
		stop_bg "$c" &
	done
	wait
	stop_bg etcd
	kill_strays "$CERTS/"
	kill_strays "etcd --name ea-$instance"
}

down() {
	stop_agent_and_control_plane
	if [[ -f $STATE/containerd/config.toml ]]; then
		if ! running containerd "$STATE/containerd/config.toml"; then
			# containerd must run to tear down what it set up (netns, mounts).
			start_containerd || true
		fi
		remove_all_pods
	fi
	stop_containerd
	remove_cgroup_root
	stop_registry
	clean_kubelet_traces
	clean_network
	unmount_under "$RUN" "$STATE"
	rm -f "$RUN/node.pid" # hack/bench-node.sh's
	log "environment \"$instance\" is down"
}

status() {
	local c
	for c in containerd etcd kube-apiserver kube-controller-manager kube-scheduler ephemeral-agent kubelet; do
		[[ $c == kubelet && -z $netns ]] && continue
		if [[ -f $(pidfile "$c") ]] && kill -0 "$(cat "$(pidfile "$c")")" 2>/dev/null; then
			echo "$c: running (pid $(cat "$(pidfile "$c")"))"
		else
			echo "$c: stopped"
		fi
	done
}

case $cmd in
up) up ;;
down) down ;;
status) status ;;
start)
	case $arg in
	containerd) start_containerd ;;
	kube-apiserver) start_apiserver ;;
	ephemeral-agent) start_agent ;;
	kubelet) start_kubelet ;;
	*) die "start: unknown component $arg" ;;
	esac
	;;
stop)
	case $arg in
	containerd) stop_bg containerd ;; # shims and containers stay, as after a crash
	kube-apiserver) stop_bg kube-apiserver ;; # an API server outage; etcd keeps the state
	ephemeral-agent) stop_bg ephemeral-agent ;;
	kubelet) stop_bg kubelet ;;
	*) die "stop: unknown component $arg" ;;
	esac
	;;
reset-runtime) reset_runtime ;;
*) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
