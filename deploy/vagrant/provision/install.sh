#!/usr/bin/env bash
# Installs the container runtimes and tools wasmbench's Kubernetes runs need (as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

KIND_VERSION=${KIND_VERSION:-v0.29.0}
KUBECTL_VERSION=${KUBECTL_VERSION:-v1.33.1}

apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  ca-certificates curl git build-essential pkg-config docker.io containerd runc crun
systemctl enable --now docker
usermod -aG docker vagrant

if ! command -v kind >/dev/null; then
  curl -sSfLo /usr/local/bin/kind "https://kind.sigs.k8s.io/dl/${KIND_VERSION}/kind-linux-amd64"
  chmod 0755 /usr/local/bin/kind
fi
if ! command -v kubectl >/dev/null; then
  curl -sSfLo /usr/local/bin/kubectl "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/amd64/kubectl"
  chmod 0755 /usr/local/bin/kubectl
fi
# crun with WasmEdge and the runwasi shims live inside the kind node image
# (deploy/kind/node-image), built in provision/run.sh; the host only needs docker + kind.
