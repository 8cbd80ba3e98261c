#!/usr/bin/env bash
# Builds the kind node image with crun+WasmEdge and the Wasm shims.
#   deploy/kind/node-image/build-node-image.sh          -> wasmbench/kind-node:$KIND_NODE_VERSION
#   deploy/kind/node-image/build-node-image.sh --crio   -> wasmbench/kind-node-crio:$KIND_NODE_VERSION
# Needs docker (or podman with CONTAINER_TOOL=podman) and network access to the release sites.
set -euo pipefail
cd "$(dirname "$0")"

KIND_NODE_VERSION=${KIND_NODE_VERSION:-v1.33.1}
CRUN_VERSION=${CRUN_VERSION:-1.24}
WASMEDGE_VERSION=${WASMEDGE_VERSION:-0.14.1}
RUNWASI_VERSION=${RUNWASI_VERSION:-v0.6.0}
SPIN_SHIM_VERSION=${SPIN_SHIM_VERSION:-v0.19.0}
tool=${CONTAINER_TOOL:-docker}

target=containerd-node
name=wasmbench/kind-node
if [ "${1:-}" = "--crio" ]; then
  target=crio-node
  name=wasmbench/kind-node-crio
elif [ -n "${1:-}" ]; then
  echo "usage: $0 [--crio]" >&2
  exit 2
fi

command -v "$tool" >/dev/null || { echo "error: $tool not found: install docker or set CONTAINER_TOOL=podman" >&2; exit 1; }

"$tool" build \
  --target "$target" \
  --build-arg KIND_NODE_VERSION="$KIND_NODE_VERSION" \
  --build-arg CRUN_VERSION="$CRUN_VERSION" \
  --build-arg WASMEDGE_VERSION="$WASMEDGE_VERSION" \
  --build-arg RUNWASI_VERSION="$RUNWASI_VERSION" \
  --build-arg SPIN_SHIM_VERSION="$SPIN_SHIM_VERSION" \
  -t "$name:$KIND_NODE_VERSION" .
echo "built $name:$KIND_NODE_VERSION"
