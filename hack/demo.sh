#!/usr/bin/env bash
# Shows what make run brought up: the node, then a debug session on a
# distroless pod (no shell in it) through kubectl debug --target.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$EA_OUTPUT/local/env"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step kubectl get nodes -o wide
kubectl get nodes -o wide

kubectl create namespace demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# kube-controller-manager creates the namespace's default ServiceAccount a
# moment after the namespace; a pod created before it is refused. On a fresh
# machine the controller may still be starting, so give it a minute.
for _ in $(seq 1 120); do
	kubectl -n demo get serviceaccount default >/dev/null 2>&1 && break
	sleep 0.5
done
kubectl -n demo get serviceaccount default >/dev/null 2>&1 ||
	die "namespace demo has no default ServiceAccount after 60s: is kube-controller-manager running? (make status; logs in $EA_LOG_DIR)"
kubectl apply -f - >/dev/null <<EOT
apiVersion: v1
kind: Pod
metadata: {name: app, namespace: demo}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - {name: app, image: localhost/distroless-app:test, imagePullPolicy: Never}
EOT
step kubectl -n demo wait --for=condition=Ready pod/app
kubectl -n demo wait --for=condition=Ready pod/app --timeout=120s

debugger=debugger-$(date +%H%M%S)
step kubectl -n demo debug app --image=localhost/busybox:test --image-pull-policy=Never --target=app -c "$debugger" -- ps -o pid,user,args
kubectl -n demo debug app --image=localhost/busybox:test --image-pull-policy=Never --target=app -c "$debugger" -- ps -o pid,user,args
for _ in $(seq 1 120); do
	reason=$(kubectl -n demo get pod app -o jsonpath="{.status.ephemeralContainerStatuses[?(@.name==\"$debugger\")].state.terminated.reason}")
	[[ -n $reason ]] && break
	sleep 0.5
done
[[ -n $reason ]] || die "debug container $debugger did not finish within 60s; see kubectl -n demo describe pod app and $EA_LOG_DIR"
step kubectl -n demo logs app -c "$debugger"
kubectl -n demo logs app -c "$debugger"
step "kubectl -n demo describe pod app   # the Ephemeral Containers section"
kubectl -n demo describe pod app | sed -n '/^Ephemeral Containers:/,/^Conditions:/p' | sed '$d'
# The node's debug policy (hack/manifests/debug-policy.yaml) denies
# privileged debug containers: kubectl debug returns at once with the reason
# (the debug container's status is final: Terminated, DebugPolicyDenied).
denied=denied-$(date +%H%M%S)
step kubectl -n demo debug -i app --image=localhost/busybox:test --image-pull-policy=Never --profile=sysadmin -c "$denied" -- sh
kubectl -n demo debug -i app --image=localhost/busybox:test --image-pull-policy=Never --profile=sysadmin -c "$denied" -- sh </dev/null 2>&1 || true
# The kubectl plugin (cmd/kubectl-ephemeral, on PATH from _output/bin): the
# pod's debug containers, and the debug policy the node's agent enforces.
step "kubectl ephemeral ls -n demo"
kubectl ephemeral ls -n demo
step "kubectl ephemeral policy"
kubectl ephemeral policy

cat <<EOT

The debugger ran in the app's PID namespace: its ps shows /app, a process of a
container that has no shell of its own. The cluster keeps running:

  source _output/local/env          # KUBECONFIG, CONTAINER_RUNTIME_ENDPOINT, NODE_NAME, PATH
  kubectl -n demo debug -it app --image=localhost/busybox:test --image-pull-policy=Never --target=app -- sh
  tail -1 $EA_LOG_DIR/debug-audit.log   # one JSON line per debug session
  kubectl ephemeral ls -A           # debug containers; stop POD NAME asks the agent to stop one
  \$EDITOR /var/lib/ephemeral-agent/local/debug-policy.yaml    # the node's debug policy, reloaded on save
  crictl ps -a                      # the node's private containerd
  make status                       # which components run
  make stop                         # stop everything make run started

Logs of every component: $EA_LOG_DIR
EOT
