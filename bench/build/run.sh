#!/usr/bin/env bash
# bench/build: build a realistic multi-stage Dockerfile (generated in a temp dir:
# base localhost:5000/busybox:latest, RUN steps generating files and a small
# compile-like sh loop, COPY of a 2000-file / ~30 MB tree, COPY --from between
# stages) with Berth, docker BuildKit (DOCKER_BUILDKIT=1 /usr/bin/docker, 20.10),
# the legacy docker builder (DOCKER_BUILDKIT=0) and `buildah bud --layers`,
# alternating tools in each round. Three scenarios:
#   cold    no build cache; the base image is already present for every tool
#           (berth: a private berthd on a fresh --root + untimed `berth pull`, builds
#           through it; docker: `builder prune -af`
#           + built images removed + --no-cache; buildah: fresh storage root +
#           untimed `buildah pull`)
#   cached  the same build again, nothing changed
#   onefile one source file in the context changes content, then rebuild
# Prints medians, p10/p90 and ratios vs BuildKit.
#
#   cargo build --release -p berth-cli -p berth-api && bench/build/run.sh   # as root; RUNS=3
#   TOOLS="berth buildkit" RUNS=5 bench/build/run.sh
#   FILES=2000 MB=30 bench/build/run.sh
#   PROFILE=1 bench/build/run.sh   # + perf stat / perf record of one more Berth cold build
set -euo pipefail

RUNS=${RUNS:-3}
TOOLS=${TOOLS:-berth buildkit legacy buildah}
FILES=${FILES:-2000}
MB=${MB:-30}
BASE=localhost:5000/busybox:latest
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SHARED=${BERTH_SHARED:-/work/shared}
DOCKER=/usr/bin/docker
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

T=$(mktemp -d /var/tmp/bench-build.XXXXXX)
# berthd's exec root: short, shim socket paths must fit in sun_path.
BX=$(mktemp -d /run/bbx.XXXXXX)
TAG=bench-build-$$
BERTHD_PID=
stop_berthd() {
  if [ -n "$BERTHD_PID" ]; then kill "$BERTHD_PID" 2>/dev/null || true; wait "$BERTHD_PID" 2>/dev/null || true; BERTHD_PID=; fi
}
cleanup() {
  stop_berthd
  rm -rf "$BX"
  for t in buildkit legacy; do $DOCKER rmi -f "$TAG-$t:latest" >/dev/null 2>&1 || true; done
  for d in "$T"/buildah-*; do
    [ -d "$d" ] && buildah --root "$d/root" --runroot "$d/run" --storage-driver overlay rm -a >/dev/null 2>&1 || true
    [ -d "$d" ] && umount -R "$d/root/overlay" >/dev/null 2>&1 || true
  done
  rm -rf "$T"
}
trap cleanup EXIT

cp "${BERTH:-$REPO/target/release/berth}" "$T/berth"
cp "${BERTHD:-$REPO/target/release/berthd}" "$T/berthd"
bash "$SHARED/fixtures/registry.sh" status >/dev/null 2>&1 || bash "$SHARED/fixtures/registry.sh" start >/dev/null
if [[ " $TOOLS " == *" buildkit "* || " $TOOLS " == *" legacy "* ]]; then
  "$SHARED/fixtures/dockerd.sh" status 2>/dev/null | grep -q '^up' || "$SHARED/fixtures/dockerd.sh" start >/dev/null
  $DOCKER pull -q $BASE >/dev/null
fi

# ---- context -------------------------------------------------------------
C=$T/ctx
mkdir -p "$C/src" "$C/data"
for i in $(seq 1 20); do
  printf 'unit %d\nline a\nline b\n' "$i" >"$C/src/unit$i.c"
done
# FILES files, MB megabytes total, in 20 directories (incompressible data)
per=$(( MB * 1024 * 1024 / FILES ))
head -c $(( MB * 1024 * 1024 )) /dev/urandom >"$T/blob"
python3 - "$T/blob" "$C/data" "$FILES" "$per" <<'PY'
import sys, os
blob, out, n, per = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = open(blob, 'rb').read()
for i in range(n):
    d = os.path.join(out, 'd%02d' % (i % 20)); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, 'f%05d.bin' % i), 'wb').write(data[i*per:(i+1)*per])
PY
rm -f "$T/blob"
cat >"$C/Dockerfile" <<DF
FROM $BASE AS gen
WORKDIR /gen
RUN mkdir -p out && for i in \$(seq 1 200); do echo "generated \$i" > out/g\$i.txt; done
RUN for i in \$(seq 1 50); do seq 1 200 | md5sum > out/h\$i; done

FROM $BASE AS compile
WORKDIR /build
COPY src/ ./src/
RUN mkdir -p obj && for f in src/*.c; do b=\$(basename \$f .c); sed 's/line/LINE/' \$f | md5sum > obj/\$b.o; done && cat obj/*.o > app.bin
RUN ls obj | wc -l > count.txt

FROM $BASE
WORKDIR /app
COPY data/ ./data/
COPY --from=gen /gen/out ./gen/
COPY --from=compile /build/app.bin /build/count.txt ./
RUN du -s /app > /app/size.txt && echo ok
CMD ["cat", "/app/count.txt"]
DF
echo "context: $(find "$C" -type f | wc -l) files, $(du -sm "$C" | cut -f1) MB"

# ---- tools ---------------------------------------------------------------
now() { echo "${EPOCHREALTIME/./}"; }
LOGS=$T/logs; mkdir -p "$LOGS"

# Berth builds go through its daemon, as `berth build` does by default: a
# private berthd on a fresh --root for every cold round (berth build, as
# root on the daemon's host, has berthd read the context directory in place;
# docker build sends a tar).
export BERTH_HOST=unix://$BX/berthd.sock
b_prep_cold() {
  stop_berthd
  rm -rf "$T/berth-root" "$BX"/*
  "$T/berthd" -H "$BERTH_HOST" --root "$T/berth-root" --exec-root "$BX" >"$LOGS/berthd.log" 2>&1 &
  BERTHD_PID=$!
  for _ in $(seq 200); do [ -S "$BX/berthd.sock" ] && break; sleep 0.05; done
  "$T/berth" pull "$BASE" >/dev/null 2>&1
}
b_build() { "$T/berth" build --progress plain -t "$TAG:latest" "$C"; }

d_prep_cold() { # $1=buildkit|legacy
  $DOCKER rmi -f "$TAG-buildkit:latest" "$TAG-legacy:latest" >/dev/null 2>&1 || true
  $DOCKER builder prune -af >/dev/null
  $DOCKER image prune -f >/dev/null  # dangling intermediates of the legacy builder
}
d_build() { # $1=buildkit|legacy  [--no-cache]
  local bk=1; [ "$1" = legacy ] && bk=0
  local t=$1; shift
  DOCKER_BUILDKIT=$bk $DOCKER build --network none -t "$TAG-$t:latest" "$@" "$C"
}

ba_root=
ba_prep_cold() {
  ba_root=$T/buildah-$RANDOM$RANDOM; mkdir -p "$ba_root"
  buildah --root "$ba_root/root" --runroot "$ba_root/run" --storage-driver overlay \
    pull -q --tls-verify=false "$BASE" >/dev/null
}
ba_build() {
  buildah --root "$ba_root/root" --runroot "$ba_root/run" --storage-driver overlay \
    bud --layers --isolation chroot --network host --tls-verify=false -t "$TAG:latest" "$C"
}
ba_drop() {
  [ -n "$ba_root" ] || return 0
  buildah --root "$ba_root/root" --runroot "$ba_root/run" --storage-driver overlay rm -a >/dev/null 2>&1 || true
  buildah --root "$ba_root/root" --runroot "$ba_root/run" --storage-driver overlay rmi -af >/dev/null 2>&1 || true
  umount -R "$ba_root/root/overlay" >/dev/null 2>&1 || true
  rm -rf "$ba_root"; ba_root=
}

build() { # tool scenario
  case $1 in
    berth) b_build ;;
    buildkit|legacy) if [ "$2" = cold ]; then d_build "$1" --no-cache; else d_build "$1"; fi ;;
    buildah) ba_build ;;
  esac
}
prep_cold() {
  case $1 in
    berth) b_prep_cold ;;
    buildkit|legacy) d_prep_cold "$1" ;;
    buildah) ba_drop; ba_prep_cold ;;
  esac
}

declare -A R
timed() { # tool scenario round
  local t0 t1 log=$LOGS/$1-$2-$3.log
  t0=$(now)
  if ! build "$1" "$2" >"$log" 2>&1; then echo "FAILED: $1 $2 (log $log)"; tail -20 "$log"; exit 1; fi
  t1=$(now)
  R[$1,$2]+="$(( (t1 - t0) / 1000 )) "
  printf '  %-8s %-8s %6d ms\n' "$1" "$2" $(( (t1 - t0) / 1000 ))
}

# One round per tool = cold, cached, onefile in sequence (each needs the previous
# state); tools alternate within a round, order rotated each round.
SRC=$C/src/unit7.c
tools=($TOOLS)
for r in $(seq 1 "$RUNS"); do
  echo "round $r"
  n=${#tools[@]}
  for k in $(seq 0 $(( n - 1 ))); do
    tool=${tools[$(( (k + r) % n ))]}
    printf 'unit 7\nline a\nline b\n' >"$SRC"   # reset the source to its base content
    prep_cold "$tool"
    sync
    timed "$tool" cold "$r"
    timed "$tool" cached "$r"
    printf 'unit 7\nline a\nline b\nchanged %d %s\n' "$r" "$tool" >"$SRC"
    timed "$tool" onefile "$r"
  done
done
ba_drop
for t in buildkit legacy; do $DOCKER rmi -f "$TAG-$t:latest" >/dev/null 2>&1 || true; done

# ---- summary ---------------------------------------------------------------
stat() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; p10=a[int((NR-1)*0.1)+1]; p90=a[int((NR-1)*0.9+0.999)+1]; if(p90=="")p90=a[NR]; printf "%d %d %d", m, p10, p90}'; }
echo
printf '%-9s %-8s %9s %9s %9s %12s\n' tool scenario median_ms p10 p90 vs_buildkit
declare -A MED
for s in cold cached onefile; do
  for t in $TOOLS; do
    read -r m p10 p90 <<<"$(echo "${R[$t,$s]}" | stat)"; MED[$t,$s]=$m
  done
  for t in $TOOLS; do
    read -r m p10 p90 <<<"$(echo "${R[$t,$s]}" | stat)"
    ratio=-; [ -n "${MED[buildkit,$s]:-}" ] && ratio=$(awk -v a="$m" -v b="${MED[buildkit,$s]}" 'BEGIN{printf "%.2f", a/b}')
    printf '%-9s %-8s %9d %9d %9d %12s\n' "$t" "$s" "$m" "$p10" "$p90" "$ratio"
  done
done
if [ -n "${MED[berth,cold]:-}" ] && [ -n "${MED[buildkit,cold]:-}" ]; then
  echo
  chk() { awk -v a="$2" -v b="$3" -v f="$4" 'BEGIN{r=a/b; printf "  %-8s berth/buildkit %.2f (target <= %s): %s\n", "'"$1"'", r, f, (r<=f)?"MET":"NOT MET"}'; }
  chk cold "${MED[berth,cold]}" "${MED[buildkit,cold]}" 1
  chk cached "${MED[berth,cached]}" "${MED[buildkit,cached]}" 0.5
  chk onefile "${MED[berth,onefile]}" "${MED[buildkit,onefile]}" 1
fi
if [ -n "${PROFILE:-}" ] && [[ " $TOOLS " == *" berth "* ]]; then
  echo; echo "perf: one more Berth cold build (perf stat + perf record -g)"
  printf 'unit 7\nline a\nline b\n' >"$C/src/unit7.c"; b_prep_cold
  # The daemon does the work: profile berthd (whole system, for the build's duration).
  perf stat -a -e task-clock,context-switches,page-faults -o "$T/perf.stat" -- "$T/berth" build --progress plain -t "$TAG:p" "$C" >"$LOGS/berth-perf-stat.log" 2>&1
  grep -E 'task-clock|elapsed|user|sys' "$T/perf.stat"
  grep -E 'COPY data|DONE' "$LOGS/berth-perf-stat.log" | paste - - | grep -v 'DONE 0.0s' | head -12 || true
  b_prep_cold
  perf record -q -g -p "$BERTHD_PID" -o "$T/perf.data" -- "$T/berth" build -t "$TAG:p" "$C" >/dev/null 2>&1
  perf report -i "$T/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -12 || true
  if command -v strace >/dev/null; then
    b_prep_cold
    strace -f -c -p "$BERTHD_PID" -o "$T/strace.txt" & SP=$!; sleep 0.5
    "$T/berth" build -t "$TAG:p" "$C" >/dev/null 2>&1 || true
    kill -INT "$SP"; wait "$SP" 2>/dev/null || true
    head -14 "$T/strace.txt"
  fi
fi
if [ -n "${KEEPLOGS:-}" ]; then mkdir -p "$KEEPLOGS"; cp "$LOGS"/* "$KEEPLOGS"/; echo "logs in $KEEPLOGS"; fi
