#!/usr/bin/env bash
# Removes everything up.sh made: its processes (every runner's namespaces end with it, pods
# included), network namespaces and the host's veth, the nodes' cgroups, mount points it
# created and $WBC_DIR. Safe to run at any time, also when nothing is up.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || die "needs root"

if [ -s "$WBC_DIR/runner-pids" ]; then
  while read -r pid; do kill -KILL "$pid" 2>/dev/null; done <"$WBC_DIR/runner-pids"
fi
# Whatever still runs inside the cluster's network namespaces (nothing, normally).
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$WBC_PREFIX-"); do
  pids=$(ip netns pids "$ns" 2>/dev/null)
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null
done
for _ in $(seq 1 50); do
  left=
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$WBC_PREFIX-"); do
    [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] || left=1
  done
  [ -z "$left" ] && break
  sleep 0.1
done
[ -z "${left:-}" ] || log "processes still in the cluster's network namespaces"

ip link del "${WBC_PREFIX}-host" 2>/dev/null
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$WBC_PREFIX-"); do
  ip netns del "$ns"
done

# The kubelets' cgroups (cgroupRoot /<node>), innermost first.
for hierarchy in /sys/fs/cgroup/*/; do
  for root in "$hierarchy$WBC_PREFIX"-n*; do
    [ -d "$root" ] || continue
    find "$root" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$root" ] && log "cannot remove cgroup $root"
  done
done

if [ -s "$WBC_DIR/made-dirs" ]; then
  while read -r d; do rmdir "$d" 2>/dev/null; done <"$WBC_DIR/made-dirs"
fi
# Mounts live in the runners' private mount namespaces and end with them; a leftover here
# would be a bug, and removing the directory must not cross into it.
if grep -q " $WBC_DIR/" /proc/self/mounts; then
  die "mounts left under $WBC_DIR: $(grep " $WBC_DIR/" /proc/self/mounts | awk '{print $2}' | tr '\n' ' ')"
fi
rm -rf "$WBC_DIR"
log "cluster removed"
