#!/usr/bin/env bash
# bench/pull: pull `debian` and `multilayer` from the localhost:5000 registry
# with Berth (release build; `berth pull` through a private berthd, the image
# removed before each run so layers come from the registry), `skopeo copy` to an OCI dir
# (download only, no unpack), `podman pull` (fresh --root/--runroot) and
# `docker pull` (shared dockerd fixture, image removed first), alternating
# tools within each round so load changes hit all of them alike. Prints
# medians, p10/p90 and ratios, plus the decompression limit on this machine.
#
#   cargo build --release -p berth-cli -p berth-api && cargo build --release -p berth-image --example gunzip
#   bench/pull/run.sh            # as root; RUNS=5 by default
#   TOOLS="berth skopeo" RUNS=9 bench/pull/run.sh
#   PROFILE=1 bench/pull/run.sh  # + perf record of berthd during one debian pull
#
# Docker note: the shared dockerd holds the fixture tags (debian:bookworm,
# busybox:latest, ...) on the same image IDs. Each docker run removes every
# tag of the image(s) it pulls (for multilayer also busybox, whose layer it
# shares) so the pull starts from nothing, and puts the tags back right after.
set -euo pipefail
# A failing pull inside $(run_one ...) must stop the run, not time an error.
shopt -s inherit_errexit

RUNS=${RUNS:-5}
TOOLS=${TOOLS:-berth skopeo podman docker}
IMAGES=${IMAGES:-debian:bookworm multilayer:latest}
REG=localhost:5000
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SHARED=${BERTH_SHARED:-/work/shared}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

T=$(mktemp -d /var/tmp/bench-pull.XXXXXX)
BERTHD_PID=
cleanup() {
  [ -n "$BERTHD_PID" ] && { kill "$BERTHD_PID" 2>/dev/null; wait "$BERTHD_PID" 2>/dev/null || true; }
  # berthd keeps its default bridge and nftables table across restarts (as
  # dockerd keeps docker0); this store goes away, so do they. Ours carry
  # the alias berth-root:<root>.
  for b in $(ip -br link show type bridge 2>/dev/null | awk '{print $1}'); do
    if ip -d link show "$b" 2>/dev/null | grep -q "alias berth-root:$T/"; then
      ip link del "$b" 2>/dev/null; nft delete table ip "$b" 2>/dev/null
    fi
  done
  for d in "$T"/podman-*; do
    [ -d "$d" ] && podman --root "$d/root" --runroot "$d/run" system reset -f >/dev/null 2>&1
  done
  rm -rf "$T"
}
trap cleanup EXIT

# A private copy of the binary: a concurrent rebuild can't change it mid-run.
cp "${BERTH:-$REPO/target/release/berth}" "$T/berth"
cp "${BERTHD:-$(dirname "${BERTH:-$REPO/target/release/berth}")/berthd}" "$T/berthd"
GUNZIP=${GUNZIP:-$REPO/target/release/examples/gunzip}

bash "$SHARED/fixtures/registry.sh" status 2>/dev/null | grep -q '^running' || bash "$SHARED/fixtures/registry.sh" start >/dev/null
if [[ " $TOOLS " == *" docker "* ]]; then
  # `status` exits 0 when down too: look at what it says.
  "$SHARED/fixtures/dockerd.sh" status 2>/dev/null | grep -q '^up' || "$SHARED/fixtures/dockerd.sh" start >/dev/null
fi

now() { echo "${EPOCHREALTIME/./}"; }  # microseconds, no fork

if [[ " $TOOLS " == *" berth "* || "${PROFILE:-0}" = 1 ]]; then
  "$T/berthd" --host "unix://$T/berthd.sock" --root "$T/berth-root" --exec-root "$T/run" >"$T/berthd.log" 2>&1 &
  BERTHD_PID=$!
  for _ in $(seq 100); do curl -fs --unix-socket "$T/berthd.sock" http://x/_ping >/dev/null && break; sleep 0.1; done
fi
B=("$T/berth" -H "unix://$T/berthd.sock" --root "$T/berth-root")

docker_tags_of() { docker image inspect --format '{{join .RepoTags " "}}' "$1" 2>/dev/null || true; }

# Removes the images `docker pull REG/$1` would share layers with; prints
# "id tag tag..." lines to restore afterwards.
docker_clear() {
  local img=$1 ids=() id
  id=$(docker image inspect --format '{{.Id}}' "$REG/$img" 2>/dev/null || true)
  [ -n "$id" ] && ids+=("$id")
  if [[ $img == multilayer* ]]; then
    id=$(docker image inspect --format '{{.Id}}' "busybox:latest" 2>/dev/null || true)
    [ -n "$id" ] && ids+=("$id")
  fi
  for id in "${ids[@]}"; do
    echo "$id $(docker_tags_of "$id")"
    docker rmi -f "$id" >/dev/null 2>&1 || true
  done
}

docker_restore() {  # lines "id tag..." on stdin
  local id tags t
  while read -r id tags; do
    for t in $tags; do
      if ! docker image inspect "$id" >/dev/null 2>&1; then
        # busybox for multilayer: fetch it back (untimed).
        docker pull -q "$REG/${t##*/}" >/dev/null 2>&1 || docker pull -q "$REG/busybox:latest" >/dev/null
      fi
      docker tag "$id" "$t"
    done
  done
}

run_one() {  # tool image -> seconds on stdout
  local tool=$1 img=$2 s e
  # Each tool starts with no dirty pages left by the one before (its
  # writeback would otherwise land on whoever runs next); untimed.
  sync
  case $tool in
    # A new empty dir per run, all deleted at the end: on ext4 creating
    # files right after deleting many (rm -rf of the last run) makes inode
    # allocation scan recently deleted inodes (`recently_deleted`), which
    # cost seconds per pull here.
    berth)
      # rmi drops the layers no other image holds: the pull starts empty.
      "${B[@]}" rmi -f "$REG/$img" >/dev/null 2>&1 || true
      sync
      s=$(now); "${B[@]}" pull -q "$REG/$img" >/dev/null; e=$(now) ;;
    skopeo)
      d="$T/oci-$RANDOM$RANDOM"
      s=$(now); skopeo copy -q --src-tls-verify=false "docker://$REG/$img" "oci:$d:x" >/dev/null; e=$(now) ;;
    podman)
      d="$T/podman-$RANDOM$RANDOM"
      s=$(now); podman --root "$d/root" --runroot "$d/run" pull -q --tls-verify=false "$REG/$img" >/dev/null; e=$(now) ;;
    docker)
      docker_clear "$img" >"$T/restore"
      sync
      s=$(now); docker pull -q "$REG/$img" >/dev/null; e=$(now)
      docker_restore <"$T/restore" ;;
  esac
  echo $(( e - s ))
}

load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "# bench/pull $(date -u +%FT%TZ) host $(hostname) nproc $(nproc) load $(load)"
echo "# berth $(git -C "$REPO" rev-parse --short HEAD) sha256 $(sha256sum "$T/berth" | cut -c1-12); RUNS=$RUNS"
declare -A times
for r in $(seq 1 "$RUNS"); do
  for img in $IMAGES; do
    for tool in $TOOLS; do
      us=$(run_one "$tool" "$img")
      times[$tool,$img]+="$us "
      printf '%s run %d %-8s %-18s %7.3f s\n' "$(load)" "$r" "$tool" "$img" "$(echo "$us/1000000" | bc -l)" >&2
    done
  done
done

stats() {  # microsecond list -> "median p10 p90" in seconds
  tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {
    m = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2
    p10 = a[int(0.1*(NR-1))+1]; p90 = a[int(0.9*(NR-1)+0.999)+1]
    printf "%.3f %.3f %.3f", m/1e6, p10/1e6, p90/1e6 }'
}

echo
echo "| image | tool | median s | p10 | p90 | berth ÷ tool |"
echo "|---|---|---|---|---|---|"
for img in $IMAGES; do
  read -r bm _ _ <<<"$(echo "${times[berth,$img]:-}" | stats)"
  for tool in $TOOLS; do
    read -r m p10 p90 <<<"$(echo "${times[$tool,$img]}" | stats)"
    ratio=$(echo "scale=2; $bm / $m" | bc -l 2>/dev/null || echo "-")
    echo "| $img | $tool | $m | $p10 | $p90 | $ratio |"
  done
done

# The decompression limit: the debian layer through gzip -dc and through
# zlib-rs (Berth's decoder), alone and with the two sha256 passes.
layer=$(python3 - "$SHARED" <<'EOF'
import json, sys
root = "/var/tmp/berth-fixtures/debian"
idx = json.load(open(f"{root}/index.json"))
m = json.load(open(f"{root}/blobs/sha256/" + idx["manifests"][0]["digest"].split(":")[1]))
print(f"{root}/blobs/sha256/" + m["layers"][0]["digest"].split(":")[1])
EOF
)
echo
echo "# decompression limit, debian layer ($(stat -c %s "$layer") bytes gz), load $(load)"
for i in 1 2 3; do
  s=$(now); gzip -dc "$layer" >/dev/null; e=$(now)
  printf 'gzip -dc %.3f s\n' "$(echo "($e-$s)/1000000" | bc -l)"
done
[ -x "$GUNZIP" ] && for i in 1 2 3; do "$GUNZIP" "$layer"; done

if [ "${PROFILE:-0}" = 1 ]; then
  "${B[@]}" rmi -f "$REG/debian:bookworm" >/dev/null 2>&1 || true
  perf record -g -o "$T/perf.data" -p "$BERTHD_PID" -- "${B[@]}" pull -q "$REG/debian:bookworm" >/dev/null 2>&1
  perf report -i "$T/perf.data" --no-children --percent-limit 2 --stdio 2>/dev/null | grep -v '^$' | head -60
fi
