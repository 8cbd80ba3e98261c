#!/usr/bin/env bash
# Creates the kind cluster (building the node image once) and runs the comparison.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd /vagrant
# Group membership from install.sh applies to new logins only.
sg docker -c "WASMBENCH=/vagrant/target/release/wasmbench deploy/kind/create.sh ${KIND_FLAVOUR:-runwasi}"
cluster=wasmbench
[ "${KIND_FLAVOUR:-runwasi}" = crio ] && cluster=wasmbench-crio
sg docker -c "target/release/wasmbench k8s run --context kind-$cluster \
  --variants ${WASMBENCH_VARIANTS:-native,crun-wasmedge,wasmtime} \
  --vus ${WASMBENCH_VUS:-50} --duration ${WASMBENCH_DURATION:-30s} --out \$HOME/results"
echo "results in ~/results"
