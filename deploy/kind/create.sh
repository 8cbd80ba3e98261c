#!/usr/bin/env bash
# Creates a kind cluster for wasmbench and loads the wasmbench images into it.
#   deploy/kind/create.sh [crun|runwasi|crio]     (default: runwasi, which also has crun)
# Env: CLUSTER_NAME (default from the config), WASMBENCH (path to the wasmbench binary,
#      default: build it), IMAGE_TAG (default: the wasmbench version).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
flavour=${1:-runwasi}

case "$flavour" in
  crun) config=$here/cluster-crun.yaml; node_args=() ;;
  runwasi) config=$here/cluster-runwasi.yaml; node_args=() ;;
  crio) config=$here/cluster-crio.yaml; node_args=(--crio) ;;
  *) echo "usage: $0 [crun|runwasi|crio]" >&2; exit 2 ;;
esac

for t in kind kubectl docker; do
  command -v "$t" >/dev/null || { echo "error: $t not found: install it (see docs/kubernetes.md)" >&2; exit 1; }
done

node_image=$(sed -n 's/^ *image: *//p' "$config" | head -n1)
if ! docker image inspect "$node_image" >/dev/null 2>&1; then
  echo "building node image $node_image (once)"
  "$here/node-image/build-node-image.sh" "${node_args[@]}"
fi

name=${CLUSTER_NAME:-$(sed -n 's/^name: *//p' "$config")}
if ! kind get clusters | grep -qx "$name"; then
  kind create cluster --name "$name" --config "$config" --wait 120s
fi
kubectl --context "kind-$name" apply -k "$repo/deploy/runtimeclasses"

wasmbench=${WASMBENCH:-}
if [ -z "$wasmbench" ]; then
  (cd "$repo" && cargo build --release -p wasmbench)
  wasmbench=$repo/target/release/wasmbench
fi
images=$(mktemp -d)
trap 'rm -rf "$images"' EXIT
tag_args=()
[ -n "${IMAGE_TAG:-}" ] && tag_args=(--image-tag "$IMAGE_TAG")
"$wasmbench" image build --out "$images" --archive "${tag_args[@]}"
for archive in "$images"/*.tar; do
  kind load image-archive --name "$name" "$archive"
done
echo "cluster $name ready: run  $wasmbench k8s run --context kind-$name"
