#!/usr/bin/env bash
# Shows what make run brought up and what to do next.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$EA_OUTPUT/local/env"

echo
kubectl get nodes -o wide
cat <<EOT

The cluster runs, and its node is ephemeral-agent. To use it:

  source _output/local/env          # KUBECONFIG, CONTAINER_RUNTIME_ENDPOINT, NODE_NAME, PATH
  kubectl describe node \$NODE_NAME
  crictl info                       # the node's private containerd
  make status                       # which components run
  make stop                         # stop everything make run started

Logs of every component: $EA_LOG_DIR
EOT
