#!/usr/bin/env bash
# rss.sh — resident memory (VmRSS) of one container supervisor each, same run, same workload:
# berth-shim (with berth-runtime and with runc), conmon (podman 4, private storage) and
# containerd-shim-runc-v2 (a private containerd, as tests/interop/containerd.sh starts it).
# The container prints a line a second, so every shim is logging, not just idle.
#
#   cargo build --release -p berth-shim -p berth-runtime && bench/shim/rss.sh     # as root
#
# Knobs: SETTLE (seconds before reading, default 2), SKIP_PODMAN=1, SKIP_CONTAINERD=1.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHIM=${SHIM:-$ROOT/target/release/berth-shim}
BERTH_RUNTIME=${BERTH_RUNTIME:-$ROOT/target/release/berth-runtime}
FIXTURES=${BERTH_FIXTURES:-/var/tmp/berth-fixtures}
SETTLE=${SETTLE:-2}
W=$(mktemp -d /var/tmp/berth-bench-shim.XXXXXX)
NS=berthbenchshim$$
CMD='i=0; while :; do echo tick $i; i=$((i+1)); sleep 1; done'
SHIM_PIDS=()

cleanup() {
  set +e
  for p in "${SHIM_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  for rt in "$BERTH_RUNTIME" /usr/sbin/runc; do
    for c in $("$rt" --root "$W/rt-$(basename "$rt")" list -q 2>/dev/null); do
      "$rt" --root "$W/rt-$(basename "$rt")" delete -f "$c" >/dev/null 2>&1
    done
  done
  if [ -n "${PM:-}" ]; then "${PM[@]}" rm -f -t 0 -a >/dev/null 2>&1; "${PM[@]}" rmi -af >/dev/null 2>&1; fi
  if [ -S "$W/containerd.sock" ]; then
    ctr -a "$W/containerd.sock" -n "$NS" task kill -s SIGKILL bench >/dev/null 2>&1; sleep 0.5
    ctr -a "$W/containerd.sock" -n "$NS" task delete -f bench >/dev/null 2>&1
    ctr -a "$W/containerd.sock" -n "$NS" containers rm bench >/dev/null 2>&1
  fi
  [ -f "$W/containerd.pid" ] && kill "$(cat "$W/containerd.pid")" 2>/dev/null && sleep 0.5
  grep -F "$W" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  for d in /sys/fs/cgroup/*/"$NS" /sys/fs/cgroup/unified/"$NS"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kib() { awk -v k="$2" '$1==k":" {print $2}' "/proc/$1/status"; }
row() { # name pid
  printf '%-34s %7s %9s %9s %9s\n' "$1" "$(kib "$2" VmRSS)" "$(kib "$2" RssAnon)" "$(kib "$2" RssFile)" "$(kib "$2" RssShmem)"
}
# What the resident pages are: KiB per mapping, largest first.
mappings() {
  awk '/^[0-9a-f]+-[0-9a-f]+ /{name=($6==""?"[anon]":$6)} /^Rss:/{r[name]+=$2} END{for(n in r) if(r[n]>0) printf "    %6d KiB  %s\n", r[n], n}' \
    "/proc/$1/smaps" | sort -rn | head -8
}

# A busybox bundle (runc spec defaults, no terminal) from the fixture's layers.
B=$W/bundle
mkdir -p "$B/rootfs"
L=$FIXTURES/busybox
man=$(jq -r '.manifests[0].digest' "$L/index.json" | cut -d: -f2)
for d in $(jq -r '.layers[].digest' "$L/blobs/sha256/$man" | cut -d: -f2); do tar -xzf "$L/blobs/sha256/$d" -C "$B/rootfs"; done
(cd "$B" && runc spec)
jq --arg c "$CMD" '.process.terminal=false | .process.args=["sh","-c",$c]' "$B/config.json" >"$B/c.json" && mv "$B/c.json" "$B/config.json"

printf '%-34s %7s %9s %9s %9s   (KiB)\n' supervisor VmRSS RssAnon RssFile RssShmem

berth() { # runtime label
  local rt=$1 id=bench-$(basename "$1")-$$
  out=$("$SHIM" --id "$id" --bundle "$B" --state-dir "$W/s-$id" --runtime "$rt" \
    --runtime-root "$W/rt-$(basename "$rt")" --log-path "$W/$id.log" --start) || { echo "berth-shim failed: $out"; return; }
  pid=$(jq -r .pid <<<"$out"); SHIM_PIDS+=("$pid")
  sleep "$SETTLE"
  row "berth-shim ($2)" "$pid"
  [ "$2" = berth-runtime ] && mappings "$pid"
}
berth "$BERTH_RUNTIME" berth-runtime
berth /usr/sbin/runc runc

if [ "${SKIP_PODMAN:-0}" != 1 ] && command -v podman >/dev/null; then
  PM=(podman --root "$W/p/root" --runroot "$W/p/runroot" --tmpdir "$W/p/tmp" --volumepath "$W/p/vol"
      --cgroup-manager cgroupfs --events-backend file --storage-driver overlay)
  img=$("${PM[@]}" pull -q "oci:$L" 2>/dev/null | tail -1)
  # Without CAP_SYS_RESOURCE (as in some sandboxes) no runtime may raise the rlimits to
  # podman's defaults: ask for the limits we already have (as tests/interop/podman.sh does).
  hn=$(ulimit -Hn); hu=$(ulimit -Hu); { [ "$hu" = unlimited ] || [ "$hu" -gt 32768 ]; } && hu=32768
  cid=$("${PM[@]}" --runtime /usr/sbin/runc run -d --network none --cgroup-parent "/$NS" \
    --ulimit "nofile=$hn:$hn" --ulimit "nproc=$hu:$hu" "$img" sh -c "$CMD" 2>&1 | tail -1)
  cpid=$("${PM[@]}" inspect -f '{{.State.ConmonPid}}' "$cid" 2>/dev/null)
  sleep "$SETTLE"
  if [ -n "$cpid" ] && [ -d "/proc/$cpid" ]; then row "conmon $(conmon --version | awk 'NR==1{print $3}') (podman, runc)" "$cpid"
  else echo "conmon: podman run failed, skipped: $cid"; fi
fi

if [ "${SKIP_CONTAINERD:-0}" != 1 ] && command -v containerd >/dev/null; then
  cat >"$W/config.toml" <<EOT
version = 2
root = "$W/ctd/root"
state = "$W/ctd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$W/containerd.sock"
[ttrpc]
  address = "$W/containerd.sock.ttrpc"
[debug]
  address = "$W/debug.sock"
EOT
  setsid containerd --config "$W/config.toml" >"$W/containerd.log" 2>&1 </dev/null &
  echo $! >"$W/containerd.pid"
  CTR=(ctr -a "$W/containerd.sock" -n "$NS")
  for _ in $(seq 100); do "${CTR[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
  skopeo copy -q "oci:$L" "oci-archive:$W/bb.tar:docker.io/library/busybox:latest" &&
    "${CTR[@]}" images import "$W/bb.tar" >/dev/null 2>&1
  "${CTR[@]}" run -d --null-io docker.io/library/busybox:latest bench sh -c "$CMD" >/dev/null 2>&1
  tpid=$("${CTR[@]}" task ls 2>/dev/null | awk '$1=="bench"{print $2}')
  spid=$([ -n "$tpid" ] && awk '{print $4}' "/proc/$tpid/stat")
  sleep "$SETTLE"
  if [ -n "$spid" ]; then row "containerd-shim-runc-v2 ($(containerd --version | awk '{print $3}'))" "$spid"
  else echo "containerd-shim-runc-v2: ctr run failed, skipped"; fi
fi
echo "berth-shim binary: $(stat -c %s "$SHIM") bytes ($SHIM), repo $(git -C "$ROOT" rev-parse --short HEAD)"
