# Certificates and kubeconfigs of the local cluster (sourced by up.sh). One CA signs every
# serving and client certificate; the identities are the ones Kubernetes' RBAC and Node
# authorizer expect (system:kube-controller-manager, system:node:<name> in system:nodes, ...).
pki_cert() { # name CN O "SANs" usage
  local name=$1 cn=$2 org=$3 sans=$4 usage=$5 dir=$WBC_DIR/pki
  [ -s "$dir/$name.crt" ] && return 0
  local subj="/CN=$cn"
  [ -n "$org" ] && subj="/O=$org$subj"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/$name.key" -subj "$subj" -out "$dir/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 30 -sha256 -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
  rm -f "$dir/$name.csr" "$dir/$name.ext"
}

pki_kubeconfig() { # file user-cert-name server
  local file=$1 name=$2 server=$3 dir=$WBC_DIR/pki
  cat >"$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: wasmbench
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 "$dir/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 "$dir/$name.crt")
    client-key-data: $(base64 -w0 "$dir/$name.key")
contexts:
- name: wasmbench
  context: {cluster: wasmbench, user: $name}
current-context: wasmbench
KC
}

pki_all() {
  local dir=$WBC_DIR/pki api=https://$WBC_API_IP:6443
  mkdir -p "$dir"
  if [ ! -s "$dir/ca.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
      -keyout "$dir/ca.key" -out "$dir/ca.crt" -subj "/CN=wasmbench-cluster-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  fi
  # Service-account tokens are signed with their own key pair.
  [ -s "$dir/sa.key" ] || openssl ecparam -name prime256v1 -genkey -noout -out "$dir/sa.key" 2>/dev/null
  [ -s "$dir/sa.pub" ] || openssl ec -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
  # etcd also dials itself with its serving certificate (its gRPC gateway).
  pki_cert etcd-server etcd "" "IP:127.0.0.1" serverAuth,clientAuth
  pki_cert etcd-client kube-apiserver-etcd-client "" "" clientAuth
  pki_cert apiserver kube-apiserver "" \
    "IP:$WBC_API_IP,IP:$WBC_API_SERVICE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc" serverAuth
  pki_cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters "" clientAuth
  pki_cert admin wasmbench-admin system:masters "" clientAuth
  pki_cert controller-manager system:kube-controller-manager "" "" clientAuth
  pki_cert scheduler system:kube-scheduler "" "" clientAuth
  pki_cert kube-proxy system:kube-proxy "" "" clientAuth
  pki_kubeconfig "$WBC_DIR/admin.kubeconfig" admin "$api"
  pki_kubeconfig "$WBC_DIR/controller-manager.kubeconfig" controller-manager "$api"
  pki_kubeconfig "$WBC_DIR/scheduler.kubeconfig" scheduler "$api"
  pki_kubeconfig "$WBC_DIR/kube-proxy.kubeconfig" kube-proxy "$api"
  local i name
  for i in $(seq 1 "$WBC_NODES"); do
    name=$(node_name "$i")
    pki_cert "$name" "system:node:$name" system:nodes "" clientAuth
    pki_cert "$name-serving" "$name" "" "IP:$(node_ip "$i"),DNS:$name" serverAuth
    pki_kubeconfig "$WBC_DIR/$name.kubeconfig" "$name" "$api"
  done
}
