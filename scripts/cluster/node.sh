#!/usr/bin/env bash
# One node, run by up.sh as PID 1 of its own PID and mount namespaces inside the node's
# network namespace: containerd, kubelet and kube-proxy. Sharing one mount namespace lets
# containerd see the volumes the kubelet mounts; bind mounts over /run/containerd and
# /var/lib/cni keep two nodes' shim sockets and IP allocations apart. When a component exits
# this script exits, and the kernel ends every process of the node, its pods included.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
i=$1
name=$(node_name "$i") ip=$(node_ip "$i")
dir=$WBC_DIR/$name kube=$WBC_DIR/bin/kube pki=$WBC_DIR/pki logs=$WBC_DIR/logs
mkdir -p "$dir"/{run-containerd,var-lib-cni,containerd,containerd-state,runc,cni,kubelet,pod-logs} "$logs"
# up.sh made both mount points (and down.sh removes them if it did).
mount --bind "$dir/run-containerd" /run/containerd
mount --bind "$dir/var-lib-cni" /var/lib/cni
# The kubelet insists on four machine-wide kernel settings and would rewrite them; in this
# node's mount namespace it reads the values it wants instead, and the machine's stay as they are.
mkdir -p "$dir/sysctl"
for setting in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1; do
  key=${setting%%=*}
  file=$dir/sysctl/${key//\//.}
  echo "${setting#*=}" >"$file"
  mount --bind -o ro "$file" "/proc/sys/$key"
done
export PATH=$WBC_DIR/bin:$PATH

# The kubelet's cgroupRoot must exist in every hierarchy; a new v1 cpuset starts with no CPUs
# and no memory nodes, so it gets its parent's.
for hierarchy in /sys/fs/cgroup/*/; do
  mkdir -p "$hierarchy$name"
  if [ -f "${hierarchy}cpuset.cpus" ]; then
    cat "${hierarchy}cpuset.cpus" >"$hierarchy$name/cpuset.cpus"
    cat "${hierarchy}cpuset.mems" >"$hierarchy$name/cpuset.mems"
  fi
done

sock=$dir/containerd.sock
extra_runtimes=
if [ -x "$WBC_DIR/bin/containerd-shim-wasmbench-v1" ]; then
  extra_runtimes='
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.wasmbench]
  runtime_type = "io.containerd.wasmbench.v1"'
fi
if [ -x "$WBC_DIR/bin/crun" ]; then
  # crun behind the ordinary runc shim, as in the demo. crun runs the entrypoint as Wasm only
  # when the OCI spec carries the annotation, and containerd copies a pod annotation into the
  # spec only when the runtime lists it.
  mkdir -p "$dir/crun"
  # crun refuses a hybrid cgroup layout whose v2 hierarchy has any controller (here hugetlb,
  # the one controller no v1 hierarchy holds): its cgroup managers are v1 or v2, not both.
  # In this node's mount namespace the v2 root lists none, so crun manages the v1 hierarchies
  # as runc does; the machine's cgroups stay as they are.
  if [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
    : >"$dir/no-v2-controllers"
    mount --bind -o ro "$dir/no-v2-controllers" /sys/fs/cgroup/unified/cgroup.controllers
  fi
  extra_runtimes+="
[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun]
  runtime_type = \"io.containerd.runc.v2\"
  pod_annotations = [\"module.wasm.image/variant\"]
[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun.options]
  BinaryName = \"$WBC_DIR/bin/crun\"
  Root = \"$dir/crun\"
  SystemdCgroup = false"
fi
cat >"$dir/containerd.toml" <<TOML
version = 2
root = "$dir/containerd"
state = "$dir/containerd-state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/wasmbench/pause:1"
  netns_mounts_under_state_dir = true
  # The node runs without CAP_SYS_RESOURCE over the machine's OOM scores.
  restrict_oom_score_adj = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
# The cluster's registry speaks plain HTTP.
[plugins."io.containerd.grpc.v1.cri".registry.mirrors."$WBC_REGISTRY"]
  endpoint = ["http://$WBC_REGISTRY"]
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "$dir/cni"
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  Root = "$dir/runc"
  SystemdCgroup = false$extra_runtimes
TOML

cat >"$dir/cni/10-wasmbench.conflist" <<JSON
{"cniVersion": "0.4.0", "name": "wasmbench", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$(pod_cidr "$i")"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON

containerd --config "$dir/containerd.toml" >"$logs/$name-containerd.log" 2>&1 &
wait_for 60 "$name containerd" ctr --address "$sock" version || { log "$name: containerd did not start"; exit 1; }
for image in "$WBC_DIR"/images/*.tar; do
  ctr --address "$sock" -n k8s.io images import --all-platforms "$image" >/dev/null ||
    { log "$name: cannot import $image"; exit 1; }
done

cat >"$dir/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $pki/$name-serving.crt
tlsPrivateKeyFile: $pki/$name-serving.key
containerRuntimeEndpoint: unix://$sock
cgroupDriver: cgroupfs
cgroupRoot: /$name
failSwapOn: false
failCgroupV1: false
# The machine's OOM scores and kernel settings are not the node's to change.
oomScoreAdj: 0
protectKernelDefaults: true
resolvConf: ""
podCIDR: $(pod_cidr "$i")
podLogsDir: $dir/pod-logs
maxPods: 30
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "0%", nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%", imagefs.inodesFree: "0%"}
serializeImagePulls: false
YAML
"$kube" kubelet --config "$dir/kubelet.yaml" --kubeconfig "$WBC_DIR/$name.kubeconfig" \
  --root-dir "$dir/kubelet" --hostname-override "$name" --node-ip "$ip" --v 1 \
  >"$logs/$name-kubelet.log" 2>&1 &

cat >"$dir/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $WBC_DIR/kube-proxy.kubeconfig}
hostnameOverride: $name
bindAddress: $ip
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
mode: iptables
clusterCIDR: $WBC_POD_NET.0.0/16
# Service traffic is masqueraded, so replies come back through this node wherever the pod is.
iptables: {masqueradeAll: true}
# Zero leaves the machine-wide conntrack table and timeouts as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
"$kube" kube-proxy --config "$dir/kube-proxy.yaml" --v 1 >"$logs/$name-kube-proxy.log" 2>&1 &

wait -n
log "$name: a node component exited; see $logs/$name-*.log"
