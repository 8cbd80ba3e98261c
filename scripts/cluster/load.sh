#!/usr/bin/env bash
# Imports OCI image archives into every node's containerd (the cluster has no registry):
#   scripts/cluster/load.sh FILE.tar...
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -gt 0 ] || die "usage: load.sh FILE.tar..."
for i in $(seq 1 "$WBC_NODES"); do
  sock=$WBC_DIR/$(node_name "$i")/containerd.sock
  [ -S "$sock" ] || die "node $(node_name "$i") is not running: run scripts/cluster/up.sh"
  for f in "$@"; do
    ctr --address "$sock" -n k8s.io images import --all-platforms "$f" >/dev/null ||
      die "cannot import $f into $(node_name "$i")"
  done
done
mkdir -p "$WBC_DIR/images"
cp "$@" "$WBC_DIR/images/"
log "imported $# image(s) into $WBC_NODES node(s)"
