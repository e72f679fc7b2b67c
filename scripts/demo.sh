#!/usr/bin/env bash
# The main job, end to end on a fresh machine (as root): install what is
# needed, build Berth, then
#   1. pull the busybox fixture image from the local reference registry,
#   2. turn it into an OCI bundle and run it with berth-runtime, printing the
#      container's isolated view (hostname, ps with itself as PID 1, mounts,
#      cgroup limits),
#   3. push it to Berth's own registry (`berth registry serve`), pull it back
#      into an empty store and run it again.
# (Building from a Dockerfile comes with `berth build`.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -p berth-runtime -p berth-cli
BIN=$PWD/target/release
RT=$BIN/berth-runtime
BERTH=$BIN/berth

work=$(mktemp -d /var/tmp/berth-demo.XXXXXX)
reg_pid=""
cleanup() {
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null; wait "$reg_pid" 2>/dev/null || true; fi
  for b in "$work"/bundle*; do [ -d "$b" ] && "$BERTH" --root "$work/store" image umount "$b/rootfs" 2>/dev/null; done
  "$BERTH" --root "$work/store2" image umount "$work/bundle2/rootfs" 2>/dev/null || true
  rm -rf "$work"
  true
}
trap cleanup EXIT

echo "== berth pull localhost:5000/busybox:latest"
"$BERTH" --root "$work/store" pull localhost:5000/busybox:latest
"$BERTH" --root "$work/store" images

echo "== berth image bundle + berth-runtime run (the container's isolated view)"
"$BERTH" --root "$work/store" image bundle localhost:5000/busybox:latest "$work/bundle"
jq '.hostname = "berth-demo"
  | .process.terminal = false
  | .linux.resources = {"memory": {"limit": 67108864}, "pids": {"limit": 64}, "cpu": {"quota": 50000, "period": 100000}}
  | .process.args = ["sh", "-c", "echo \"hostname: $(hostname)\"; echo \"--- ps (PID 1 is this shell)\"; ps; echo \"--- mounts\"; cat /proc/mounts; echo \"--- cgroup limits\"; echo \"memory.limit_in_bytes $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)\"; echo \"pids.max $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)\"; echo \"cpu quota/period $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null)\""]' \
  "$work/bundle/config.json" > "$work/config.json"
mv "$work/config.json" "$work/bundle/config.json"
"$RT" --root "$work/state" run --bundle "$work/bundle" "demo-$$"

echo "== berth registry serve on 127.0.0.1:5001; push, pull back into an empty store, run"
"$BERTH" registry serve --addr 127.0.0.1:5001 --root "$work/registry" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 50); do curl -fs http://127.0.0.1:5001/v2/ >/dev/null && break; sleep 0.1; done
"$BERTH" --root "$work/store" tag localhost:5000/busybox:latest 127.0.0.1:5001/demo/busybox:v1
"$BERTH" --root "$work/store" push 127.0.0.1:5001/demo/busybox:v1
"$BERTH" --root "$work/store2" pull 127.0.0.1:5001/demo/busybox:v1
"$BERTH" --root "$work/store2" image bundle 127.0.0.1:5001/demo/busybox:v1 "$work/bundle2"
jq '.process.terminal = false | .process.args = ["sh", "-c", "echo pulled back from the berth registry, running as PID $$"]' \
  "$work/bundle2/config.json" > "$work/config.json"
mv "$work/config.json" "$work/bundle2/config.json"
"$RT" --root "$work/state" run --bundle "$work/bundle2" "demo2-$$"
echo "== done"
