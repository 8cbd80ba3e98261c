#!/usr/bin/env bash
# After the test suite: fails when a process of this checkout is still running (a server a test
# started, a wasmbench that was never reaped), naming each one. Tests must stop what they start.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
self=$$
left=()
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  [ "$pid" = "$self" ] && continue
  exe=$(readlink "$d/exe" 2>/dev/null) || continue
  # The compiler and linkers name target/ in their arguments while they build it.
  case "${exe##*/}" in rustc|cargo|rustdoc|clippy-driver|cc|gcc|ld|ld.bfd|ld.gold|collect2|cc1) continue ;; esac
  cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)
  case "$exe $cmd" in
    *"$root/target/"*) left+=("$pid: $cmd") ;;
  esac
done
if [ ${#left[@]} -gt 0 ]; then
  printf 'leftovers: %s process(es) of this checkout outlived the tests:\n' "${#left[@]}" >&2
  printf '  %s\n' "${left[@]}" >&2
  exit 1
fi
echo "leftovers: no process of this checkout is running"
