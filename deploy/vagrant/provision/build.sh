#!/usr/bin/env bash
# Installs Rust (as the vagrant user) and builds wasmbench from the synced checkout.
set -euo pipefail
if ! command -v cargo >/dev/null && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain none
fi
export PATH="$HOME/.cargo/bin:$PATH"
cd /vagrant
# rust-toolchain.toml pins the compiler; the static targets are for the images.
rustup show active-toolchain >/dev/null
rustup target add x86_64-unknown-linux-musl wasm32-wasip1 wasm32-wasip2
cargo build --release -p wasmbench
