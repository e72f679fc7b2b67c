#!/usr/bin/env bash
# The main job, end to end on a fresh machine (as root): install what is
# needed, build Berth, then
#   1. start berthd and build an image from the example Dockerfile
#      (examples/hello) with `berth build` (the berth CLI talks to berthd),
#   2. run it with berth-runtime, printing the container's isolated view
#      (hostname, ps with itself as PID 1, mounts, cgroup limits),
#   3. run the image with the docker CLI against berthd,
#   4. push it to Berth's own registry (`berth registry serve`), remove it, pull it
#      back through berthd and run it again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -p berth-runtime -p berth-cli -p berth-shim -p berth-api
BIN=$PWD/target/release
RT=$BIN/berth-runtime
BERTH=$BIN/berth
DOCKER=${DOCKER:-/usr/local/bin/docker}
[ -x "$DOCKER" ] || DOCKER=$(command -v docker)

work=$(mktemp -d /var/tmp/berth-demo.XXXXXX)
store="$work/store"
sock="$work/berthd.sock"
pids=()
cleanup() {
  set +e
  if [ -S "$sock" ]; then
    for c in $(DOCKER_HOST="unix://$sock" "$DOCKER" ps -aq 2>/dev/null); do
      DOCKER_HOST="unix://$sock" "$DOCKER" rm -f "$c" >/dev/null 2>&1 || true
    done
  fi
  # The default network's bridge (named after the store) and its packet
  # rules outlive a stopped berthd, as docker0 does; the store goes, so they go.
  bridge=""
  if [ -S "$sock" ]; then
    bridge=$(BERTH_HOST="unix://$sock" "$BERTH" network inspect \
      -f '{{index .Options "com.docker.network.bridge.name"}}' bridge 2>/dev/null)
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
  if [ -n "$bridge" ] && [ "$bridge" != berth0 ]; then
    ip link del "$bridge" 2>/dev/null
    nft delete table ip "$bridge" 2>/dev/null
  fi
  "$BERTH" --root "$store" image umount "$work/bundle/rootfs" >/dev/null 2>&1 || true
  grep -o " $work[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
  true
}
trap cleanup EXIT

# berthd first: the berth CLI talks to it (BERTH_HOST), as the docker CLI does.
"$BIN/berthd" --host "unix://$sock" --root "$store" --exec-root "$work/run" >"$work/berthd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$sock" ] && curl -fs --unix-socket "$sock" http://x/_ping >/dev/null && break; sleep 0.1; done
export BERTH_HOST="unix://$sock"

echo "== 1. berth build -t demo/hello:1 examples/hello"
"$BERTH" build -t demo/hello:1 examples/hello
"$BERTH" images

echo "== 2. berth-runtime run (the container's isolated view)"
"$BERTH" --root "$store" image bundle demo/hello:1 "$work/bundle" >/dev/null
jq '.hostname = "berth-demo"
  | .process.terminal = false
  | .linux.resources = {"memory": {"limit": 67108864}, "pids": {"limit": 64}, "cpu": {"quota": 50000, "period": 100000}}
  | .process.args = ["sh", "-c", "cat /etc/message; echo \"hostname: $(hostname)\"; echo \"--- ps (PID 1 is this shell)\"; ps; echo \"--- mounts\"; cat /proc/mounts; echo \"--- cgroup limits\"; echo \"memory.limit_in_bytes $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)\"; echo \"pids.max $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)\"; echo \"cpu quota/period $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null)\""]' \
  "$work/bundle/config.json" > "$work/config.json"
mv "$work/config.json" "$work/bundle/config.json"
"$RT" --root "$work/state" run --bundle "$work/bundle" "demo-$$"
"$BERTH" --root "$store" image umount "$work/bundle/rootfs" >/dev/null

echo "== 3. berthd + docker CLI: docker run --rm demo/hello:1"
export DOCKER_HOST="unix://$sock"
"$DOCKER" version --format 'docker CLI {{.Client.Version}} -> berthd {{.Server.Version}} (API {{.Server.APIVersion}})'
"$DOCKER" run --rm demo/hello:1

echo "== 4. push to berth's registry, remove, pull back through berthd, run"
"$BERTH" registry serve --addr 127.0.0.1:5001 --root "$work/registry" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs http://127.0.0.1:5001/v2/ >/dev/null && break; sleep 0.1; done
"$BERTH" tag demo/hello:1 127.0.0.1:5001/demo/hello:1
"$BERTH" push 127.0.0.1:5001/demo/hello:1
"$DOCKER" rmi demo/hello:1 127.0.0.1:5001/demo/hello:1 >/dev/null
"$DOCKER" pull 127.0.0.1:5001/demo/hello:1
"$DOCKER" run --rm 127.0.0.1:5001/demo/hello:1
echo "== done"
