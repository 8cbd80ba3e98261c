# Shared settings of the local cluster scripts (sourced, not run).
# Everything the cluster makes lives under $WBC_DIR, in network namespaces named $WBC_PREFIX-*,
# in cgroups named $WBC_PREFIX-* and in processes started by up.sh; down.sh removes all of it.
WBC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WBC_DIR=${WBC_DIR:-/var/tmp/wasmbench-cluster}
WBC_PREFIX=${WBC_PREFIX:-wbc}
WBC_CACHE=${WBC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmbench/cluster}
WBC_K8S_VERSION=v1.33.13
# The nodes' network: a bridge in the control plane's namespace, one veth per node and one to
# the host, so that kubectl and wasmbench on the host reach the API server. Pod and Service
# ranges exist only inside the node namespaces.
WBC_NET=${WBC_NET:-10.201.0}
WBC_API_IP=$WBC_NET.1
WBC_HOST_IP=$WBC_NET.254
# The cluster's registry: Debian's docker-registry in the control plane's namespace, plain
# HTTP on the cluster network; the nodes pull from it, the host pushes to it (push.sh).
WBC_REGISTRY=$WBC_API_IP:5000
WBC_NODES=${WBC_NODES:-2}
WBC_POD_NET=10.244
WBC_SERVICE_CIDR=10.96.0.0/24
WBC_API_SERVICE_IP=10.96.0.1
WBC_SHIM=${WBC_SHIM:-}
# A crun built --with-wasmedge (its `--version` lists +WASM:wasmedge): every node gets it as
# runtime handler `crun`, the demo's RuntimeClass. It loads libwasmedge.so.0 when it runs a
# Wasm container, so that library must be where the dynamic loader finds it.
WBC_CRUN=${WBC_CRUN:-}

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }

node_name() { echo "$WBC_PREFIX-n$1"; }
node_ip() { echo "$WBC_NET.$((10 + $1))"; }
pod_cidr() { echo "$WBC_POD_NET.$1.0/24"; }
netns_path() { echo "/run/netns/$1"; }

# Runs a command in the named network namespace. `ip netns exec` is avoided on purpose: it
# remounts /sys, which hides the cgroup v1 mounts from runc.
in_netns() { local ns=$1; shift; nsenter --net="$(netns_path "$ns")" "$@"; }

kubectl_() { "$WBC_DIR/bin/kube" kubectl --kubeconfig "$WBC_DIR/admin.kubeconfig" "$@"; }

# Waits until the command succeeds, at most $1 seconds.
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
  log "$what ready after $((limit - (deadline - SECONDS))) s"
}
