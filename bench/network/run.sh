#!/usr/bin/env bash
# bench/network/run.sh — what networking costs: Berth (berthd) vs Docker vs Podman, same run.
#
#   bench/network/run.sh           # N=10 rounds (engines and modes interleaved per round)
#
# 1. `run --rm IMAGE true` latency with the default bridge vs `--network none`, per engine;
#    ratios bridge/none and engine/berth.
# 2. TCP throughput between two containers on the default bridge (busybox nc, 256 MiB, timed
#    by the sender), vs the same between two plain network namespaces joined by a veth.
#
# Safety: Docker and Podman change iptables (Docker sets the FORWARD policy to DROP), so
# their private daemons run inside a network namespace of this script's own (entered with
# nsenter --net only: `ip netns exec` remounts /sys and dockerd then finds no cgroups),
# never on the host's; images come from `docker save` of the shared dockerd fixture.
# berthd runs on the host with a private root (its own bridge, subnet and nftables table,
# all removed at the end). Traffic goes only to containers/namespaces made here, after
# checking their bridge exists, is up and holds the gateway.
# Needs root, target/release/{berthd,berth-shim,berth-runtime}, the registry fixture on
# localhost:5000 and the shared dockerd (/work/shared/fixtures/dockerd.sh start).
set -uo pipefail
N=${N:-10}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-$ROOT/target/release}
DOCKER=/usr/local/bin/docker
REG_IMG=localhost:5000/busybox:latest
IMG=busybox:latest
COUNT=${COUNT:-4096}    # 64 KiB blocks: 256 MiB (busybox nc is slow; the run stays short)

W=$(mktemp -d /var/tmp/berth-bench-net.XXXXXX)
NS=bnb$$                      # the private netns of dockerd and podman
BSOCK=$W/berthd.sock; DSOCK=$W/dockerd.sock
BD=("$DOCKER" -H "unix://$BSOCK")
DD=("$DOCKER" -H "unix://$DSOCK")
PM=(nsenter --net=/run/netns/"$NS" podman --root "$W/proot" --runroot "$W/prunroot" --tmpdir "$W/ptmp"
    --runtime runc --cgroup-manager cgroupfs --events-backend file --storage-driver overlay)
# Without CAP_SYS_RESOURCE in our bounding set, runc cannot raise podman's default rlimits.
capeff=$(awk '/^CapEff/ {print $2}' /proc/self/status)
PUL=()
if ! (( (16#$capeff >> 24) & 1 )); then PUL=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024); fi
BPID=; DPID=; VETH_NS=()
cleanup() {
  set +e
  # A daemon that died mid-run: show why before its log goes with $W.
  [ -n "$DPID" ] && ! kill -0 "$DPID" 2>/dev/null && { echo "private dockerd exited; log tail:" >&2; tail -5 "$W/dockerd.log" >&2; }
  [ -n "$BPID" ] && ! kill -0 "$BPID" 2>/dev/null && { echo "berthd exited; log tail:" >&2; tail -5 "$W/berthd.log" >&2; }
  ids=$("${BD[@]}" ps -aq 2>/dev/null); [ -n "$ids" ] && "${BD[@]}" rm -f $ids >/dev/null 2>&1
  ids=$("${DD[@]}" ps -aq 2>/dev/null); [ -n "$ids" ] && "${DD[@]}" rm -f $ids >/dev/null 2>&1
  ids=$("${PM[@]}" ps -aq 2>/dev/null); [ -n "$ids" ] && "${PM[@]}" rm -f -t 0 $ids >/dev/null 2>&1
  "${PM[@]}" rmi -af >/dev/null 2>&1
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
  # berthd removes its rules when its networks go; its default bridge stays by design,
  # so remove it (and its table) here, after the daemon.
  if [ -n "$BPID" ]; then
    br=$("${BD[@]}" network inspect bridge -f '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null)
    kill "$BPID" 2>/dev/null; wait "$BPID" 2>/dev/null
    [ -n "$br" ] && ip link del "$br" 2>/dev/null
    nft delete table ip "$br" 2>/dev/null
  fi
  for p in $(pgrep -f "$W/" 2>/dev/null); do [ "$p" != $$ ] && kill "$p" 2>/dev/null; done
  for n in "${VETH_NS[@]}"; do ip netns del "$n" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  grep " $W/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s%N; }
us() { local t0 t1; t0=$(now); "$@" >/dev/null 2>&1 || echo "FAILED: $*" >&2; t1=$(now); echo $(( (t1 - t0) / 1000 )); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
msf() { awk -v u="$1" 'BEGIN {printf "%.0f", u/1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
# The bridge exists, is up and holds the gateway (else container traffic could leave the host).
bridge_ok() { # [netns] bridge gateway
  local pre=(); [ "$1" != - ] && pre=(ip netns exec "$1")
  "${pre[@]}" ip -o link show dev "$2" 2>/dev/null | grep -q '[<,]UP[,>]' &&
    "${pre[@]}" ip -o -4 addr show dev "$2" | grep -q "inet $3/" ||
    { echo "bridge $2 not ready (missing, down or without $3): refusing to send" >&2; exit 1; }
}
# The sender prints two /proc/uptime stamps around the transfer (10 ms resolution; a 1 GiB
# transfer takes seconds) → MB/s. busybox dd here prints no rate.
# $BB: "busybox" on the host (plain netns), empty in containers (busybox's own PATH).
SEND="read t0 x </proc/uptime; \$BB dd if=/dev/zero bs=65536 count=$COUNT 2>/dev/null | \$BB nc \$DST 5001; read t1 x </proc/uptime; echo \$t0 \$t1"
# The listener's stdin must not hit EOF (busybox nc quits on it), hence the sleep.
RECV='$BB sleep 1000 | $BB nc -l -p 5001 >/dev/null'
rate() { awk -v b=$((COUNT * 65536)) 'NF == 2 {printf "%.0f\n", b / 1e6 / ($2 - $1)}'; }

# --- daemons ---------------------------------------------------------------------------------------
ip netns add "$NS" && ip -n "$NS" link set lo up
"$BIN/berthd" --host "unix://$BSOCK" --root "$W/broot" --exec-root "$W/bexec" >"$W/berthd.log" 2>&1 &
BPID=$!
nsenter --net=/run/netns/"$NS" dockerd -H "unix://$DSOCK" --data-root "$W/droot" --exec-root "$W/dexec" \
  --pidfile "$W/dockerd.pid" --bip 10.213.0.1/24 --storage-driver overlay2 >"$W/dockerd.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do [ -S "$BSOCK" ] && [ -S "$DSOCK" ] && break; sleep 0.1; done
"${BD[@]}" pull -q "$REG_IMG" >/dev/null && "${BD[@]}" tag "$REG_IMG" "$IMG" ||
  { echo "berthd pull failed ($W/berthd.log)" >&2; exit 1; }
"$DOCKER" save "$IMG" -o "$W/img.tar" || { echo "shared dockerd lacks $IMG" >&2; exit 1; }
"${DD[@]}" load -q -i "$W/img.tar" >/dev/null || { echo "private dockerd load failed ($W/dockerd.log)" >&2; exit 1; }
"${PM[@]}" load -q -i "$W/img.tar" >/dev/null || { echo "podman load failed" >&2; exit 1; }
echo "berthd $("${BD[@]}" version -f '{{.Server.Version}}'); dockerd $("${DD[@]}" version -f '{{.Server.Version}}') (private, own netns, iptables on there); $(podman --version) (CNI, runc, same netns); N=$N" >&2
# Podman's image name after load.
PIMG=$("${PM[@]}" images --format '{{.Repository}}:{{.Tag}}' | grep busybox | head -1)

ENG=(berth docker podman)
run_cmd() { # engine mode
  case $1 in
    berth)  "${BD[@]}" run --rm --network "$2" "$IMG" true ;;
    docker) "${DD[@]}" run --rm --network "$2" "$IMG" true ;;
    podman) "${PM[@]}" run --rm "${PUL[@]}" --network "$2" "$PIMG" true ;;
  esac
}
for e in "${ENG[@]}"; do for m in bridge none; do run_cmd "$e" "$m" >/dev/null 2>&1 || echo "warm-up $e $m failed" >&2; done; done

# --- 1. start latency ------------------------------------------------------------------------------
for i in $(seq "$N"); do
  for e in "${ENG[@]}"; do
    for m in bridge none; do us run_cmd "$e" "$m" >>"$W/lat.$e.$m"; done
  done
done
echo
echo "| run --rm true (ms, median of $N) | bridge | none | bridge/none | bridge vs berth |"
echo "|---|---|---|---|---|"
bb=$(median <"$W/lat.berth.bridge")
for e in "${ENG[@]}"; do
  b=$(median <"$W/lat.$e.bridge"); n=$(median <"$W/lat.$e.none")
  echo "| $e | $(msf "$b") | $(msf "$n") | $(ratio "$b" "$n") | $(ratio "$b" "$bb") |"
done

# --- 2. throughput ---------------------------------------------------------------------------------
tput_engine() { # label cli... (docker-CLI compatible)
  local label=$1; shift
  local cli=("$@") srv ip gw br ns=-
  srv=$("${cli[@]}" run -d "$IMG" sh -c "$RECV")
  ip=$("${cli[@]}" inspect -f '{{.NetworkSettings.IPAddress}}' "$srv")
  gw=$("${cli[@]}" inspect -f '{{.NetworkSettings.Gateway}}' "$srv")
  br=$("${cli[@]}" network inspect bridge -f '{{index .Options "com.docker.network.bridge.name"}}')
  [ "$label" = docker ] && ns=$NS
  bridge_ok "$ns" "$br" "$gw"
  sleep 0.3
  "${cli[@]}" run --rm -e DST="$ip" "$IMG" sh -c "$SEND" | rate
  "${cli[@]}" rm -f "$srv" >/dev/null
}
tput_veth() {
  local a=bna$$ b=bnb2$$
  ip netns add "$a"; ip netns add "$b"; VETH_NS+=("$a" "$b")
  ip link add bnv$$ netns "$a" type veth peer name bnw$$ netns "$b"
  ip -n "$a" link set lo up; ip -n "$b" link set lo up
  ip -n "$a" addr add 10.214.0.1/24 dev bnv$$; ip -n "$a" link set bnv$$ up
  ip -n "$b" addr add 10.214.0.2/24 dev bnw$$; ip -n "$b" link set bnw$$ up
  # busybox's sh runs its applets (dd, nc) as the container's busybox does.
  ip netns exec "$b" env BB=busybox busybox sh -c "$RECV" &
  local spid=$!
  sleep 0.3
  ip netns exec "$a" env DST=10.214.0.2 BB=busybox busybox sh -c "$SEND" | rate
  # Everything left in the namespaces is this function's (the listener's sleep).
  for p in $(ip netns pids "$a") $(ip netns pids "$b"); do kill "$p" 2>/dev/null; done
  wait "$spid" 2>/dev/null
  ip netns del "$a"; ip netns del "$b"
}
echo
echo "| TCP throughput, 256 MiB busybox nc (MB/s, median of 3) | MB/s | vs veth |"
echo "|---|---|---|"
for i in 1 2 3; do tput_veth >>"$W/tp.veth"; tput_engine berth "${BD[@]}" >>"$W/tp.berth"; tput_engine docker "${DD[@]}" >>"$W/tp.docker"; done
v=$(median <"$W/tp.veth")
for k in veth berth docker; do
  t=$(median <"$W/tp.$k")
  label=$k; [ $k = veth ] && label="two netns, plain veth"; [ $k = berth ] && label="berth, 2 containers on the default bridge"; [ $k = docker ] && label="docker, 2 containers on docker0"
  echo "| $label | $t | $(ratio "$t" "$v") |"
done
