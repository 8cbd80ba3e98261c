#!/usr/bin/env bash
# The control plane, run by up.sh as PID 1 of its own PID and mount namespaces inside the
# control plane's network namespace: etcd, kube-apiserver, kube-controller-manager and
# kube-scheduler. When one of them exits this script exits, and the kernel ends the rest.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
kube=$WBC_DIR/bin/kube pki=$WBC_DIR/pki logs=$WBC_DIR/logs
mkdir -p "$logs" "$WBC_DIR/etcd"

"$kube" etcd --name wbc --data-dir "$WBC_DIR/etcd" \
  --listen-client-urls https://127.0.0.1:2379 --advertise-client-urls https://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster wbc=http://127.0.0.1:2380 \
  --cert-file "$pki/etcd-server.crt" --key-file "$pki/etcd-server.key" \
  --client-cert-auth --trusted-ca-file "$pki/ca.crt" \
  --unsafe-no-fsync --log-level warn >"$logs/etcd.log" 2>&1 &

"$kube" kube-apiserver \
  --etcd-servers https://127.0.0.1:2379 --etcd-cafile "$pki/ca.crt" \
  --etcd-certfile "$pki/etcd-client.crt" --etcd-keyfile "$pki/etcd-client.key" \
  --bind-address "$WBC_API_IP" --advertise-address "$WBC_API_IP" --secure-port 6443 \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$pki/ca.crt" \
  --kubelet-preferred-address-types InternalIP \
  --service-account-issuer https://kubernetes.default.svc \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range "$WBC_SERVICE_CIDR" \
  --authorization-mode Node,RBAC --anonymous-auth=false \
  --enable-admission-plugins NodeRestriction,PodSecurity \
  --allow-privileged=false --profiling=false \
  --cert-dir "$WBC_DIR/apiserver-certs" --v 1 >"$logs/kube-apiserver.log" 2>&1 &

# The controllers read RBAC-protected objects at start: they wait for the API server's
# bootstrap roles.
wait_for 120 "API server" "$kube" kubectl --kubeconfig "$WBC_DIR/admin.kubeconfig" get --raw /readyz ||
  { log "the API server did not become ready"; exit 1; }

"$kube" kube-controller-manager --kubeconfig "$WBC_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$WBC_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$WBC_DIR/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --service-cluster-ip-range "$WBC_SERVICE_CIDR" --cluster-cidr "$WBC_POD_NET.0.0/16" \
  --allocate-node-cidrs=false \
  --v 1 >"$logs/kube-controller-manager.log" 2>&1 &

"$kube" kube-scheduler --kubeconfig "$WBC_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig "$WBC_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig "$WBC_DIR/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --v 1 >"$logs/kube-scheduler.log" 2>&1 &

wait -n
log "a control plane component exited; see $logs"
