#!/usr/bin/env bash
# Starts a local Kubernetes cluster: a control plane and $WBC_NODES nodes (kubelet, containerd,
# kube-proxy), each in a network namespace of its own, with TLS between all components, RBAC,
# service-account tokens and PodSecurity admission, and an image registry the nodes pull from
# (push.sh). Needs root and Linux; no Docker.
#   scripts/cluster/up.sh [--images DIR]   # DIR: OCI archives (wasmbench image build --archive)
# Ends by printing KUBECONFIG=<path> and REGISTRY=<host:port>. Running it again on a healthy cluster changes nothing
# (images given again are imported again). If a step fails, everything started is torn down.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
images=
while [ $# -gt 0 ]; do
  case $1 in
    --images) images=${2:?--images needs a directory}; shift 2 ;;
    *) die "unknown argument '$1' (usage: up.sh [--images DIR])" ;;
  esac
done
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, mounts, cgroups)"
for tool in containerd ctr runc iptables openssl nsenter unshare docker-registry curl; do
  command -v $tool >/dev/null || die "$tool not found: run scripts/setup.sh --test"
done
[ -x /usr/lib/cni/bridge ] || die "CNI plugins not found in /usr/lib/cni: run scripts/setup.sh --test"
if [ -n "$WBC_CRUN" ]; then
  "$WBC_CRUN" --version 2>/dev/null | grep -q '+WASM:wasmedge' ||
    die "$WBC_CRUN is not a crun built with WasmEdge (its --version lists no +WASM:wasmedge): build crun with ./configure --with-wasmedge, or unset WBC_CRUN"
fi
start=$SECONDS

healthy() {
  [ -s "$WBC_DIR/admin.kubeconfig" ] && kubectl_ get --raw /readyz >/dev/null 2>&1 &&
    [ "$(kubectl_ get nodes --no-headers 2>/dev/null | grep -c ' Ready ')" = "$WBC_NODES" ]
}

if [ -z "$images" ] && healthy; then
  echo "KUBECONFIG=$WBC_DIR/admin.kubeconfig"
  echo "REGISTRY=$WBC_REGISTRY"
  exit 0
fi
if [ -n "$images" ] && healthy; then
  "$(dirname "$0")/load.sh" "$images"/*.tar
  echo "KUBECONFIG=$WBC_DIR/admin.kubeconfig"
  echo "REGISTRY=$WBC_REGISTRY"
  exit 0
fi
# Anything left from a broken cluster goes first.
"$(dirname "$0")/down.sh" >/dev/null 2>&1 || true

ok=
trap '[ -n "$ok" ] || { log "bring-up failed; logs in $WBC_DIR/logs (kept in $WBC_DIR.failed); tearing down"; rm -rf "$WBC_DIR.failed"; cp -r "$WBC_DIR/logs" "$WBC_DIR.failed" 2>/dev/null; "$(dirname "$0")/down.sh" >&2; }' EXIT

bin=$("$(dirname "$0")/build.sh")
mkdir -p "$WBC_DIR"/{bin,logs,images}
ln -sf "$bin/kube" "$WBC_DIR/bin/kube"
[ -z "$WBC_SHIM" ] || ln -sf "$(realpath "$WBC_SHIM")" "$WBC_DIR/bin/containerd-shim-wasmbench-v1"
[ -z "$WBC_CRUN" ] || ln -sf "$(realpath "$WBC_CRUN")" "$WBC_DIR/bin/crun"
"$bin/pause" image "$WBC_DIR/images/pause.tar" localhost/wasmbench/pause:1
[ -z "$images" ] || cp "$images"/*.tar "$WBC_DIR/images/"
for d in /run/containerd /var/lib/cni; do
  [ -d "$d" ] || { mkdir -p "$d"; echo "$d" >>"$WBC_DIR/made-dirs"; }
done

# Network: bridge in the control plane's namespace; nodes and the host join it by veth.
ip route show | grep -q "^$WBC_NET\." && die "$WBC_NET.0/24 is already routed on this machine: set WBC_NET"
cp=$WBC_PREFIX-cp
ip netns add "$cp"
in_netns "$cp" ip link set lo up
in_netns "$cp" ip link add "${WBC_PREFIX}br0" type bridge
in_netns "$cp" ip addr add "$WBC_API_IP/24" dev "${WBC_PREFIX}br0"
in_netns "$cp" ip link set "${WBC_PREFIX}br0" up
ip link add "${WBC_PREFIX}-host" type veth peer name host netns "$cp"
ip addr add "$WBC_HOST_IP/24" dev "${WBC_PREFIX}-host"
ip link set "${WBC_PREFIX}-host" up
in_netns "$cp" ip link set host master "${WBC_PREFIX}br0" up
for i in $(seq 1 "$WBC_NODES"); do
  name=$(node_name "$i")
  ip netns add "$name"
  in_netns "$name" ip link set lo up
  ip link add "n$i" netns "$cp" type veth peer name eth0 netns "$name"
  in_netns "$cp" ip link set "n$i" master "${WBC_PREFIX}br0" up
  in_netns "$name" ip addr add "$(node_ip "$i")/24" dev eth0
  in_netns "$name" ip link set eth0 up
  # Packets for outside addresses end in the control plane's namespace, which forwards nothing.
  in_netns "$name" ip route add default via "$WBC_API_IP"
  in_netns "$name" sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
  in_netns "$cp" ip route add "$(pod_cidr "$i")" via "$(node_ip "$i")"
done
for i in $(seq 1 "$WBC_NODES"); do
  for j in $(seq 1 "$WBC_NODES"); do
    [ "$i" = "$j" ] || in_netns "$(node_name "$i")" ip route add "$(pod_cidr "$j")" via "$(node_ip "$j")"
  done
done

. "$(dirname "$0")/pki.sh"
pki_all

# Each runner is PID 1 of its own namespaces; --kill-child ends it (and so every process of
# its namespace) when the unshare process is killed.
run_in() { # netns script args...
  local ns=$1; shift
  setsid nsenter --net="$(netns_path "$ns")" unshare --mount --pid --fork --kill-child \
    --propagation private --mount-proc "$@" </dev/null >>"$WBC_DIR/logs/runners.log" 2>&1 &
  echo $! >>"$WBC_DIR/runner-pids"
}
run_in "$cp" "$WBC_ROOT/scripts/cluster/control-plane.sh"
mkdir -p "$WBC_DIR/registry"
cat >"$WBC_DIR/registry.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $WBC_DIR/registry}}
http: {addr: "$WBC_REGISTRY"}
YAML
run_in "$cp" docker-registry serve "$WBC_DIR/registry.yml"
wait_for 120 "API server" kubectl_ get --raw /readyz || die "the API server did not become ready in 120 s"
wait_for 30 "registry" curl -sf --max-time 2 "http://$WBC_REGISTRY/v2/" ||
  die "the registry did not answer at $WBC_REGISTRY in 30 s (log: $WBC_DIR/logs/runners.log)"

for i in $(seq 1 "$WBC_NODES"); do
  run_in "$(node_name "$i")" "$WBC_ROOT/scripts/cluster/node.sh" "$i"
done
# Ready, and without the not-ready taints the node controller removes a moment later: only
# then does the scheduler place pods there.
all_ready() {
  [ "$(kubectl_ get nodes --no-headers 2>/dev/null | grep -c ' Ready ')" = "$WBC_NODES" ] &&
    [ -z "$(kubectl_ get nodes -o jsonpath='{.items[*].spec.taints}' 2>/dev/null)" ]
}
wait_for 180 "$WBC_NODES nodes" all_ready || die "the nodes did not become Ready in 180 s"
# A runtime installed on every node brings its RuntimeClass.
runtime_class() {
  kubectl_ apply -f - >/dev/null <<YAML
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: $1}
handler: $1
YAML
}
[ -z "$WBC_SHIM" ] || runtime_class wasmbench
[ -z "$WBC_CRUN" ] || runtime_class crun
ok=1
log "cluster up in $((SECONDS - start)) s"
echo "KUBECONFIG=$WBC_DIR/admin.kubeconfig"
echo "REGISTRY=$WBC_REGISTRY"
