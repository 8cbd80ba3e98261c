#!/usr/bin/env bash
# Validates every Kubernetes manifest wasmbench generates and every Kubernetes object in deploy/
# against the Kubernetes OpenAPI schema (kubernetes-validate --strict).
#   scripts/validate-manifests.sh            (K8S_VERSION=1.33.0 by default)
# Files in deploy/ that are not Kubernetes API objects are handled explicitly:
#   - deploy/kind/*.yaml are kind `Cluster` configs (kind.x-k8s.io): checked for their
#     apiVersion/kind/nodes and for TOML-valid containerdConfigPatches, not against the API schema;
#   - kustomization.yaml files are kustomize input: each directory holding one is rendered with
#     `kubectl kustomize` and the rendered objects are validated instead.
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION=${K8S_VERSION:-1.33.0}
die() { printf 'validate-manifests: %s\n' "$*" >&2; exit 1; }
command -v kubernetes-validate >/dev/null || die "kubernetes-validate not found: pip install kubernetes-validate"
command -v kubectl >/dev/null || die "kubectl not found (needed to render kustomizations): apt-get install kubectl"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Generated manifests, rendered by the same code `wasmbench k8s run` uses.
# WASMBENCH_MANIFESTS_DIR: already rendered (the Rust test passes it to avoid a nested cargo).
gen_dir=${WASMBENCH_MANIFESTS_DIR:-$work/generated}
if [ -z "${WASMBENCH_MANIFESTS_DIR:-}" ]; then
  cargo run --quiet -p wasmbench-k8s --example manifests -- "$gen_dir" >/dev/null
fi
mapfile -t generated < <(find "$gen_dir" -name '*.yaml' | sort)
[ "${#generated[@]}" -gt 0 ] || die "the manifests example wrote no files"

# 2. Plain Kubernetes objects in deploy/ (everything except kind configs and kustomizations).
mapfile -t plain < <(find deploy -name '*.yaml' -o -name '*.yml' | grep -v '^deploy/kind/' \
  | grep -v '/kustomization\.yaml$' | sort)

# 3. Kustomizations, rendered.
rendered=()
while IFS= read -r k; do
  dir=$(dirname "$k")
  out="$work/kustomize/${dir//\//_}.yaml"
  mkdir -p "$work/kustomize"
  kubectl kustomize "$dir" > "$out" || die "kubectl kustomize $dir failed"
  rendered+=("$out")
done < <(find deploy -name kustomization.yaml | sort)

kubernetes-validate --strict --quiet -k "$K8S_VERSION" "${generated[@]}" "${plain[@]}" "${rendered[@]}" \
  || die "schema validation failed (Kubernetes $K8S_VERSION)"

# 4. kind cluster configs.
mapfile -t kind_configs < <(find deploy/kind -maxdepth 1 -name '*.yaml' | sort)
python3 - "${kind_configs[@]}" <<'PY' || die "kind config check failed"
import sys, tomllib, yaml
for path in sys.argv[1:]:
    with open(path) as f:
        doc = yaml.safe_load(f)
    assert doc.get("apiVersion") == "kind.x-k8s.io/v1alpha4", f"{path}: apiVersion"
    assert doc.get("kind") == "Cluster", f"{path}: kind"
    roles = [n["role"] for n in doc["nodes"]]
    assert roles.count("control-plane") == 1 and len(roles) >= 2, f"{path}: nodes {roles}"
    for patch in doc.get("containerdConfigPatches", []):
        tomllib.loads(patch)
PY

echo "validate-manifests: ${#generated[@]} generated, ${#plain[@]} deploy/ files, ${#rendered[@]} kustomizations and ${#kind_configs[@]} kind configs valid (Kubernetes $K8S_VERSION, strict)"
