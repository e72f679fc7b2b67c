#!/usr/bin/env bash
# bench/engine/run.sh — Berth's berthd vs the shared dockerd fixture vs podman, same run, alternating.
#
#   bench/engine/run.sh            # N=10 runs each (N=20 for more)
#
# Measures (medians of N, engines interleaved per iteration):
#   1. `docker run --rm --network none IMAGE true` latency (berthd, dockerd via /usr/local/bin/docker;
#      podman run with runc; crun refuses this VM's hybrid cgroups)
#   2. `exec C true` latency against a running `sleep 1000` container
#   3. VmRSS: berthd idle and with 10 running containers, berth-shim per container; dockerd+containerd,
#      containerd-shim-runc-v2 per container; conmon per container (podman)
#   4. start rate: 20 sequential `run -d --network none IMAGE sleep 1000`, containers/s (engines
#      interleaved per container; NSTART over the sum of that engine's times)
# berthd is driven twice: by the docker CLI (like dockerd) and by Berth's own `berth` CLI, which is
# what the issue compares (`berth run --rm busybox true` vs `docker run --rm busybox true`).
# Also the CLI floor (`version` round trip) per daemon, and the docker CLI's own `run --rm` time and
# start rate against a do-nothing API server (nulld.py), so the fixed client cost is visible.
# Needs root, target/release/{berth,berthd,berth-shim,berth-runtime} (cargo build --release -p berth-cli -p berth-api
# -p berth-shim -p berth-runtime), the registry on localhost:5000 with busybox:latest, and the shared
# dockerd (/work/shared/fixtures/dockerd.sh start). Starts its own berthd in a temp dir; never stops
# the shared dockerd or registry. Prints a markdown table.
set -uo pipefail
N=${N:-10}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-$ROOT/target/release}
DOCKER=/usr/local/bin/docker
REG_IMG=localhost:5000/busybox:latest
DOCKERD_SOCK=${DOCKERD_SOCK:-/var/run/docker.sock}
DIMG=${DIMG:-busybox:latest}          # image preloaded in the shared dockerd
NSTART=${NSTART:-20}; NMEM=${NMEM:-10}

W=$(mktemp -d /var/tmp/berth-bench-engine.XXXXXX)
BSOCK=$W/berthd.sock
BD=("$DOCKER" -H "unix://$BSOCK")
BC=("$BIN/berth" -H "unix://$BSOCK")
DD=("$DOCKER" -H "unix://$DOCKERD_SOCK")
PM=(podman --root "$W/proot" --runroot "$W/prunroot" --tmpdir "$W/ptmp" --runtime runc
    --cgroup-manager cgroupfs --events-backend file --storage-driver overlay)
capeff=$(awk '/^CapEff/ {print $2}' /proc/self/status)
PRUN=(--network none)
if ! (( (16#$capeff >> 24) & 1 )); then PRUN+=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024); fi
BPID=
cleanup() {
  set +e
  ids=$("${BD[@]}" ps -aq 2>/dev/null); [ -n "$ids" ] && "${BD[@]}" rm -f $ids >/dev/null 2>&1
  [ -s "$W/dd.ids" ] && "${DD[@]}" rm -f $(cat "$W/dd.ids") >/dev/null 2>&1
  ids=$("${PM[@]}" ps -aq 2>/dev/null); [ -n "$ids" ] && "${PM[@]}" rm -f -t 0 $ids >/dev/null 2>&1
  "${PM[@]}" rmi -af >/dev/null 2>&1
  [ -n "$BPID" ] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null
  [ -n "${NPID:-}" ] && kill "$NPID" 2>/dev/null && wait "$NPID" 2>/dev/null
  # our berth-shims / conmons only (matched by our temp dir), by PID
  for p in $(pgrep -f "$W/" 2>/dev/null); do [ "$p" != $$ ] && kill "$p" 2>/dev/null; done
  grep " $W/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s%N; }
ms() { local t0 t1; t0=$(now); "$@" >/dev/null 2>&1 || echo "FAILED: $*" >&2; t1=$(now); echo $(( (t1 - t0) / 1000 )); }  # µs
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }   # kB
sumrss() { local s=0 p; for p in "$@"; do s=$((s + $(rss "$p"))); done; echo $s; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k/1024}'; }

# --- the client floor: the same docker CLI against a do-nothing API server (nulld.py) --------------
python3 "$ROOT/bench/engine/nulld.py" "$W/null.sock" &
NPID=$!
for _ in $(seq 50); do [ -S "$W/null.sock" ] && break; sleep 0.1; done
NUL=("$DOCKER" -H "unix://$W/null.sock")

# --- start berthd, pull images ---------------------------------------------------------------------
"$BIN/berthd" --host "unix://$BSOCK" --root "$W/broot" --exec-root "$W/bexec" >"$W/berthd.log" 2>&1 &
BPID=$!
for _ in $(seq 50); do [ -S "$BSOCK" ] && break; sleep 0.1; done
"${BD[@]}" pull -q "$REG_IMG" >/dev/null || { echo "berthd pull failed" >&2; exit 1; }
"${DD[@]}" image inspect "$DIMG" >/dev/null || { echo "dockerd lacks $DIMG" >&2; exit 1; }
"${PM[@]}" pull -q --tls-verify=false "$REG_IMG" >/dev/null || { echo "podman pull failed" >&2; exit 1; }
BIMG=$REG_IMG; PIMG=$REG_IMG
DPID=$(pgrep -x dockerd | head -1)
CPID=$(pgrep -P "$DPID" -x containerd | head -1)
[ -n "$CPID" ] || CPID=$(pgrep -x containerd | head -1)
echo "berthd pid $BPID; dockerd $DPID ($("${DD[@]}" version -f '{{.Server.Version}}')); containerd $CPID; $(podman --version) + runc; N=$N" >&2

B_IDLE0=$(rss "$BPID")
# warm-up (page cache, first-run setup) — not counted
ms "${BD[@]}" run --rm --network none "$BIMG" true >/dev/null
ms "${DD[@]}" run --rm --network none "$DIMG" true >/dev/null
ms "${PM[@]}" run --rm "${PRUN[@]}" "$PIMG" true >/dev/null

# --- 1. run --rm latency + CLI floor ---------------------------------------------------------------
for i in $(seq "$N"); do
  ms "${BD[@]}" version >>"$W/b.ver"
  ms "${BC[@]}" version >>"$W/bc.ver"
  ms "${DD[@]}" version >>"$W/d.ver"
  ms "${BD[@]}" run --rm --network none "$BIMG" true >>"$W/b.run"
  ms "${BC[@]}" run --rm --network none "$BIMG" true >>"$W/bc.run"
  ms "${DD[@]}" run --rm --network none "$DIMG" true >>"$W/d.run"
  ms "${PM[@]}" run --rm "${PRUN[@]}" "$PIMG" true >>"$W/p.run"
  ms "${NUL[@]}" run --rm --network none "$DIMG" true >>"$W/n.run"
done
B_IDLE=$(rss "$BPID")
D_IDLE=$(sumrss "$DPID" "$CPID")

# --- 2+3. NMEM running containers: memory, exec latency ------------------------------------------------
for i in $(seq "$NMEM"); do
  "${BD[@]}" run -d --network none "$BIMG" sleep 1000 >>"$W/b.ids"
  "${DD[@]}" run -d --network none "$DIMG" sleep 1000 >>"$W/dd.ids"
  "${PM[@]}" run -d "${PRUN[@]}" "$PIMG" sleep 1000 >>"$W/p.ids"
done
sleep 1
B_10=$(rss "$BPID"); D_10=$(sumrss "$DPID" "$CPID")
bshims=$(pgrep -f "berth-shim .*$W/" | tr '\n' ' ')
dshims=; for id in $(cat "$W/dd.ids"); do dshims+="$(pgrep -f "containerd-shim-runc-v2 .*-id $id") "; done
conmons=; for id in $(cat "$W/p.ids"); do conmons+="$(pgrep -f "conmon .*-c $id") "; done
nb=$(wc -w <<<"$bshims"); nd=$(wc -w <<<"$dshims"); np=$(wc -w <<<"$conmons")
BSHIM=$(( $(sumrss $bshims) / (nb ? nb : 1) )); DSHIM=$(( $(sumrss $dshims) / (nd ? nd : 1) )); CONMON=$(( $(sumrss $conmons) / (np ? np : 1) ))
echo "shims found: berth-shim $nb, containerd-shim-runc-v2 $nd, conmon $np" >&2
bc=$(head -1 "$W/b.ids"); dc=$(head -1 "$W/dd.ids"); pc=$(head -1 "$W/p.ids")
for i in $(seq "$N"); do
  ms "${BD[@]}" exec "$bc" true >>"$W/b.exec"
  ms "${BC[@]}" exec "$bc" true >>"$W/bc.exec"
  ms "${DD[@]}" exec "$dc" true >>"$W/d.exec"
  ms "${PM[@]}" exec "$pc" true >>"$W/p.exec"
done
"${BD[@]}" rm -f $(cat "$W/b.ids") >/dev/null; "${DD[@]}" rm -f $(cat "$W/dd.ids") >/dev/null
"${PM[@]}" rm -f -t 0 $(cat "$W/p.ids") >/dev/null 2>&1; : >"$W/dd.ids"

# --- 4. start rate -------------------------------------------------------------------------------------
# Interleaved per container (berthd, dockerd, podman, the client alone), so a change of load during
# the phase weighs on every engine alike; each engine's rate is NSTART over the sum of its own times.
start1() {  # tag image extra-args... ; appends the µs one `run -d` took to $W/rate.<tag>
  local tag=$1 img=$2; shift 2; local -n E=$tag; local t0 t1
  t0=$(now)
  "${E[@]}" run -d "$@" "$img" sleep 1000 >>"$W/rate.$tag.ids" || echo "run -d failed ($tag)" >&2
  t1=$(now)
  echo $(( (t1 - t0) / 1000 )) >>"$W/rate.$tag"
}
for i in $(seq "$NSTART"); do
  start1 BD "$BIMG" --network none
  start1 BC "$BIMG" --network none
  start1 DD "$DIMG" --network none; cp "$W/rate.DD.ids" "$W/dd.ids"
  start1 PM "$PIMG" "${PRUN[@]}"
  start1 NUL "$DIMG" --network none
done
rate() { awk -v n="$NSTART" '{s += $1} END {printf "%.1f", n / (s / 1e6)}' "$W/rate.$1"; }
R_B=$(rate BD); R_BC=$(rate BC); R_D=$(rate DD); R_P=$(rate PM); R_N=$(rate NUL)
"${BD[@]}" rm -f $(cat "$W/rate.BD.ids") $(cat "$W/rate.BC.ids") >/dev/null
"${DD[@]}" rm -f $(cat "$W/dd.ids") >/dev/null; : >"$W/dd.ids"
"${PM[@]}" rm -f -t 0 $(cat "$W/rate.PM.ids") >/dev/null 2>&1

# --- report ----------------------------------------------------------------------------------------
m() { awk '{printf "%.1f", $1/1000}' <<<"$(median <"$W/$1")"; }   # median ms
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
echo "| metric | berthd | dockerd | podman | berthd/dockerd | berthd/podman |"
echo "|---|---|---|---|---|---|"
bv=$(m b.ver); dv=$(m d.ver)
echo "| CLI floor: \`docker version\` (ms, median) | $bv | $dv | – | $(ratio "$bv" "$dv") | – |"
br=$(m b.run); dr=$(m d.run); pr=$(m p.run)
echo "| \`run --rm --network none busybox true\` (ms, median) | $br | $dr | $pr | **$(ratio "$br" "$dr")** | $(ratio "$br" "$pr") |"
be=$(m b.exec); de=$(m d.exec); pe=$(m p.exec)
echo "| \`exec C true\` (ms, median) | $be | $de | $pe | $(ratio "$be" "$de") | $(ratio "$be" "$pe") |"
echo "| daemon RSS idle before runs (MiB) | $(mib "$B_IDLE0") | – | – | – | – |"
echo "| daemon RSS idle after runs (MiB; dockerd+containerd) | $(mib "$B_IDLE") | $(mib "$D_IDLE") | 0 (no daemon) | $(ratio "$B_IDLE" "$D_IDLE") | – |"
echo "| daemon RSS, $NMEM running (MiB) | $(mib "$B_10") | $(mib "$D_10") | 0 | $(ratio "$B_10" "$D_10") | – |"
echo "| shim RSS per container (MiB; berth-shim / containerd-shim-runc-v2 / conmon) | $(mib "$BSHIM") | $(mib "$DSHIM") | $(mib "$CONMON") | $(ratio "$BSHIM" "$DSHIM") | $(ratio "$BSHIM" "$CONMON") |"
echo "| start rate, $NSTART sequential \`run -d\` (containers/s) | $R_B | $R_D | $R_P | **$(ratio "$R_B" "$R_D")** | $(ratio "$R_B" "$R_P") |"
cv=$(m bc.ver); cr=$(m bc.run); ce=$(m bc.exec)
echo "| **berth CLI** → berthd: \`berth version\` (ms) | $cv | $dv (docker CLI → dockerd) | – | $(ratio "$cv" "$dv") | – |"
echo "| **berth CLI**: \`berth run --rm --network none busybox true\` (ms) | $cr | $dr (\`docker run\` → dockerd) | $pr | **$(ratio "$cr" "$dr")** | $(ratio "$cr" "$pr") |"
echo "| **berth CLI**: \`berth exec C true\` (ms) | $ce | $de | $pe | $(ratio "$ce" "$de") | $(ratio "$ce" "$pe") |"
echo "| **berth CLI**: start rate, $NSTART sequential \`berth run -d\` (containers/s) | $R_BC | $R_D | $R_P | **$(ratio "$R_BC" "$R_D")** | $(ratio "$R_BC" "$R_P") |"
nr=$(m n.run)
echo
echo "client floor (the same docker CLI against bench/engine/nulld.py, a do-nothing API server):" \
  "\`run --rm\` $nr ms median (0.1x dockerd's run is $(awk -v d="$dr" 'BEGIN {printf "%.1f", d/10}') ms)," \
  "start rate $R_N containers/s"
echo "raw µs (run): berth CLI $(tr '\n' ' ' <"$W/bc.run")| berthd $(tr '\n' ' ' <"$W/b.run")| dockerd $(tr '\n' ' ' <"$W/d.run")| podman $(tr '\n' ' ' <"$W/p.run")"
