#!/usr/bin/env bash
# Pushes an OCI image archive to the cluster's registry, where the nodes pull it from:
#   scripts/cluster/push.sh FILE.tar REPOSITORY:TAG    # e.g. images/kv.tar user/kv:1.0
# Prints the reference the nodes pull ($WBC_REGISTRY/REPOSITORY:TAG).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# = 2 ] || die "usage: push.sh FILE.tar REPOSITORY:TAG"
command -v skopeo >/dev/null || die "skopeo not found: run scripts/setup.sh --test"
[ -s "$1" ] || die "$1 is not an image archive"
curl -sf --max-time 5 "http://$WBC_REGISTRY/v2/" >/dev/null ||
  die "the cluster's registry does not answer at $WBC_REGISTRY: run scripts/cluster/up.sh"
# The registry is plain HTTP on the cluster's own network; no signature policy applies to it.
skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci-archive:$1" "docker://$WBC_REGISTRY/$2" >&2
echo "$WBC_REGISTRY/$2"
