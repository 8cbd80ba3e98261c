#!/usr/bin/env bash
# Builds the cluster's binaries from the Go module proxy (cluster/: Kubernetes and etcd as
# libraries of one dispatching program, plus the pod sandbox's pause program) into a
# directory keyed by the sources' content, and prints that directory. A second call with the
# same sources builds nothing; Go's own module and build caches make a changed build cheaper.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
src=$WBC_ROOT/cluster
command -v go >/dev/null || die "go not found: install Go 1.24 or newer (the cluster's components are built from the Go module proxy)"

ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  minor=${WBC_K8S_VERSION#v1.}; minor=${minor%%.*}
  ldflags+=" -X $p.gitVersion=$WBC_K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
key=$( (cd "$src" && cat go.mod go.sum $(find . -name '*.go' | sort); go version; echo "$ldflags") | sha256sum | cut -c1-16)
out=$WBC_CACHE/$key
if [ -x "$out/kube" ] && [ -x "$out/pause" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$WBC_CACHE"
tmp=$(mktemp -d "$WBC_CACHE/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
log "building Kubernetes $WBC_K8S_VERSION components and etcd (cluster/, cached in $out)"
(cd "$src" && CGO_ENABLED=0 go build -mod=readonly -trimpath -tags selinux,notest -ldflags "$ldflags" -o "$tmp/kube" .)
(cd "$src" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w" -o "$tmp/pause" ./pause)
log "built in $((SECONDS - start)) s"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$out"
