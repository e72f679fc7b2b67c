#!/usr/bin/env bash
# The main job, end to end on a fresh machine (as root): install what is
# needed, build Berth, make an OCI bundle from the busybox fixture image and
# run a container with berth-runtime that prints its isolated view.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -p berth-runtime
RT=$PWD/target/release/berth-runtime
FIX=${BERTH_FIXTURES:-/var/tmp/berth-fixtures}

work=$(mktemp -d /var/tmp/berth-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs"
manifest=$(jq -r '.manifests[0].digest' "$FIX/busybox/index.json")
for layer in $(jq -r '.layers[].digest' "$FIX/busybox/blobs/sha256/${manifest#sha256:}"); do
  tar -xzf "$FIX/busybox/blobs/sha256/${layer#sha256:}" -C "$work/bundle/rootfs"
done
(cd "$work/bundle" && "$RT" spec)
jq '.hostname = "berth-demo"
  | .process.terminal = false
  | .linux.resources = {"memory": {"limit": 67108864}, "pids": {"limit": 64}, "cpu": {"quota": 50000, "period": 100000}}
  | .process.args = ["sh", "-c", "echo \"hostname: $(hostname)\"; echo \"--- ps (PID 1 is this shell)\"; ps; echo \"--- mounts\"; cat /proc/mounts; echo \"--- cgroup limits\"; echo \"memory.limit_in_bytes $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)\"; echo \"pids.max $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)\"; echo \"cpu quota/period $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null)\""]' \
  "$work/bundle/config.json" > "$work/config.json"
mv "$work/config.json" "$work/bundle/config.json"
echo "== berth-runtime run (bundle from the busybox fixture)"
"$RT" --root "$work/state" run --bundle "$work/bundle" "demo-$$"
