#!/usr/bin/env bash
# bench/registry/run.sh — Berth's registry vs the reference registry (Debian docker-registry,
# distribution 2.8), same machine, same run, alternating.
#
#   (a) skopeo push and pull of the `debian` and `multilayer` fixtures (OCI layouts in $FIX),
#       RUNS runs each; every run pushes into a freshly started registry (empty root) so no
#       blob is already there or mountable; the pulled layout is deleted between runs. Medians.
#   (b) N concurrent pullers (N in $CONNS) of the `multilayer` image's blobs (config + 6 layers,
#       ≈ 18 MB), each a keep-alive connection GETting the blobs round-robin for $SECS seconds
#       (loadgen.rs, std-only Rust, compiled here with rustc -O): MB/s, requests/s, p50/p99
#       latency per request.
#   (c) server RSS: VmRSS from /proc/<pid>/status sampled every 50 ms during (b); max reported.
#
# Berth: `berth registry serve --addr 127.0.0.1:5021 --root TMP` (release build).
# Reference: `docker-registry serve config.yml` on 127.0.0.1:5022, its own temp dir, filesystem
# storage, in-memory blob descriptor cache, access log off and log level warn (so it does not pay
# for logging Berth does not do). The shared registry on :5000 is not touched.
#
# Env: BERTH (default target/release/berth), RUNS (5), CONNS ("16 64"), SECS (10), FIX
#      (/var/tmp/berth-fixtures), OUT (results file, default $W/results.txt), PERF=1: record
#      `perf record -g` of each server during the N=64 load into $W/perf.{berth,ref}.data.
set -euo pipefail
cd "$(dirname "$0")/../.."
BERTH=${BERTH:-$PWD/target/release/berth}
REF=${REF:-/usr/bin/docker-registry}
RUNS=${RUNS:-5}
CONNS=${CONNS:-"16 64"}
SECS=${SECS:-10}
FIX=${FIX:-/var/tmp/berth-fixtures}
B_ADDR=127.0.0.1:5021
R_ADDR=127.0.0.1:5022
W=$(mktemp -d /tmp/berth-bench-registry.XXXXXX)
OUT=${OUT:-$W/results.txt}
[ -x "$BERTH" ] || { echo "build first: cargo build --release -p berth-cli" >&2; exit 1; }
rustc -O --edition 2021 -o "$W/loadgen" bench/registry/loadgen.rs

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

up() { for _ in $(seq 200); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$1/v2/")" = 200 ] && return 0; sleep 0.05; done; echo "registry $1 did not come up" >&2; return 1; }

# start_reg berth|ref DIR -> prints pid
start_reg() {
  local which=$1 d=$2
  rm -rf "$d"; mkdir -p "$d"
  if [ "$which" = berth ]; then
    "$BERTH" registry serve --addr "$B_ADDR" --root "$d/root" >"$d/log" 2>&1 &
    echo $! >"$d/pid"; up "$B_ADDR"
  else
    cat >"$d/config.yml" <<YML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $d/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $R_ADDR
YML
    "$REF" serve "$d/config.yml" >"$d/log" 2>&1 &
    echo $! >"$d/pid"; up "$R_ADDR"
  fi
}
stop_reg() { local p; p=$(cat "$1/pid"); kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; }
addr_of() { [ "$1" = berth ] && echo "$B_ADDR" || echo "$R_ADDR"; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.4f\n", (a[NR/2]+a[NR/2+1])/2}'; }

echo "# bench/registry $(date -u +%FT%TZ) $(git rev-parse --short HEAD) nproc=$(nproc)" | tee "$OUT"

# ---- (a) push / pull ----
for run in $(seq "$RUNS"); do
  if [ $((run % 2)) = 1 ]; then order="berth ref"; else order="ref berth"; fi
  for which in $order; do
    d=$W/$which; start_reg "$which" "$d"; PIDS+=("$(cat "$d/pid")")
    a=$(addr_of "$which")
    for img in debian multilayer; do
      t0=$(now)
      skopeo copy -q --dest-tls-verify=false "oci:$FIX/$img:latest" "docker://$a/$img:x" >/dev/null
      t1=$(now)
      rm -rf "$W/pulled"
      skopeo copy -q --src-tls-verify=false "docker://$a/$img:x" "oci:$W/pulled" >/dev/null
      t2=$(now)
      rm -rf "$W/pulled"
      echo "$which $img push $(echo "$t1 - $t0" | bc)" >>"$W/pushpull"
      echo "$which $img pull $(echo "$t2 - $t1" | bc)" >>"$W/pushpull"
    done
    stop_reg "$d"
  done
done
{
  echo "## push/pull (skopeo, seconds, median of $RUNS)"
  printf '%-12s %-5s %10s %10s %8s\n' image op berth ref berth/ref
  for img in debian multilayer; do for op in push pull; do
    b=$(awk -v i=$img -v o=$op '$1=="berth"&&$2==i&&$3==o{print $4}' "$W/pushpull" | median)
    r=$(awk -v i=$img -v o=$op '$1=="ref"&&$2==i&&$3==o{print $4}' "$W/pushpull" | median)
    printf '%-12s %-5s %10.3f %10.3f %8.2f\n' "$img" "$op" "$b" "$r" "$(echo "$b / $r" | bc -l)"
  done; done
} | tee -a "$OUT"

# ---- (b)+(c) concurrent pullers, RSS ----
sample_rss() { # pid file -> max VmRSS kB until killed
  local p=$1 max=0 v
  while :; do
    v=$(awk '/^VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    [ -n "$v" ] && [ "$v" -gt "$max" ] && { max=$v; echo "$max" >"$2"; }
    sleep 0.05
  done
}
for which in berth ref; do
  d=$W/load-$which; start_reg "$which" "$d"; PIDS+=("$(cat "$d/pid")")
  skopeo copy -q --dest-tls-verify=false "oci:$FIX/multilayer:latest" "docker://$(addr_of "$which")/multilayer:x" >/dev/null
  awk '/^VmRSS/{print $2}' "/proc/$(cat "$d/pid")/status" >"$d/rss.idle"
done
man=$(jq -r '.manifests[0].digest' "$FIX/multilayer/index.json")
paths=$(jq -r '.config.digest, .layers[].digest' "$FIX/multilayer/blobs/sha256/${man#sha256:}" | sed 's|^|/v2/multilayer/blobs/|')
for n in $CONNS; do
  for rep in 1 2; do # alternate: berth,ref then ref,berth
    if [ $rep = 1 ]; then order="berth ref"; else order="ref berth"; fi
    for which in $order; do
      d=$W/load-$which; p=$(cat "$d/pid")
      echo 0 >"$d/rss.$n.$rep"
      sample_rss "$p" "$d/rss.$n.$rep" & sp=$!
      pp=
      if [ "${PERF:-0}" = 1 ] && [ "$n" = 64 ] && [ $rep = 1 ]; then
        perf record -g -o "$W/perf.$which.data" -p "$p" -- sleep "$SECS" >/dev/null 2>&1 & pp=$!
      fi
      # shellcheck disable=SC2086
      res=$("$W/loadgen" "$(addr_of "$which")" "$n" "$SECS" $paths)
      kill $sp; wait $sp 2>/dev/null || true
      [ -z "$pp" ] || wait "$pp" 2>/dev/null || true
      echo "$which $n $rep $res rss_kb=$(cat "$d/rss.$n.$rep")" >>"$W/load"
    done
  done
done
kv() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p"; }
{
  echo "## $SECS s of N concurrent pullers of multilayer's 7 blobs (loadgen.rs), best of 2 alternated rounds by MB/s; RSS = max VmRSS over both rounds"
  printf '%-4s %-6s %9s %9s %8s %8s %9s\n' N server MB/s req/s p50_ms p99_ms maxRSS_MB
  for n in $CONNS; do
    for which in berth ref; do
      line=$(awk -v w=$which -v n=$n '$1==w&&$2==n' "$W/load" | while read -r l; do echo "$(echo "$l" | kv mbps) $l"; done | sort -g -r | head -1)
      rss=$(awk -v w=$which -v n=$n '$1==w&&$2==n' "$W/load" | kv rss_kb | sort -g | tail -1)
      eval "${which}_mbps=$(echo "$line" | kv mbps) ${which}_rps=$(echo "$line" | kv rps) ${which}_p50=$(echo "$line" | kv p50_ms) ${which}_p99=$(echo "$line" | kv p99_ms) ${which}_rss=$rss"
      printf '%-4s %-6s %9s %9s %8s %8s %9.1f\n' "$n" "$which" "$(echo "$line" | kv mbps)" "$(echo "$line" | kv rps)" "$(echo "$line" | kv p50_ms)" "$(echo "$line" | kv p99_ms)" "$(echo "$rss / 1024" | bc -l)"
    done
    # shellcheck disable=SC2154
    printf '%-4s %-6s %9.2f %9.2f %8.2f %8.2f %9.2f\n' "$n" "b/r" "$(echo "$berth_mbps / $ref_mbps" | bc -l)" "$(echo "$berth_rps / $ref_rps" | bc -l)" "$(echo "$berth_p50 / $ref_p50" | bc -l)" "$(echo "$berth_p99 / $ref_p99" | bc -l)" "$(echo "$berth_rss / $ref_rss" | bc -l)"
  done
  echo "idle RSS after push (MB): berth $(echo "$(cat "$W/load-berth/rss.idle") / 1024" | bc -l | xargs printf %.1f), ref $(echo "$(cat "$W/load-ref/rss.idle") / 1024" | bc -l | xargs printf %.1f)"
  grep -h errors= "$W/load" | kv errors | awk '{s+=$1} END {print "loadgen errors (all runs): " s+0}'
} | tee -a "$OUT"
echo "raw: $W/pushpull $W/load; results: $OUT" >&2
