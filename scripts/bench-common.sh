# Shared by the benchmark scripts (sourced, not run): builds the native echo workload and the
# load generator, and starts the echo server on a free loopback port.
# Expects ROOT (the checkout) and TARGET_DIR (cargo's target directory) to be set.

# Builds target/artifact/echo and sets LOAD to the load generator command: `$WASMBENCH load`
# when WASMBENCH is set, else the engine's release `loadgen` example.
build_echo_and_load() {
  cargo build --quiet --manifest-path "$ROOT/Cargo.toml" -p wasmbench-echo --profile artifact
  if [[ -n "${WASMBENCH:-}" ]]; then
    LOAD=("$WASMBENCH" load)
  else
    cargo build --quiet --manifest-path "$ROOT/Cargo.toml" -p wasmbench-load --release --example loadgen
    LOAD=("$TARGET_DIR/release/examples/loadgen")
  fi
}

# Starts the echo server with its stdout in $1; sets ECHO_PID and URL (http://ip:port/).
start_echo() {
  local out="$1"
  PORT=0 ECHO_HOST=127.0.0.1 "$TARGET_DIR/artifact/echo" >"$out" &
  ECHO_PID=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$out" 2>/dev/null && break; sleep 0.05; done
  local addr
  addr="$(sed -n 's/^listening on //p' "$out")"
  [[ -n "$addr" ]] || { echo "echo did not start" >&2; exit 1; }
  URL="http://$addr/"
}
